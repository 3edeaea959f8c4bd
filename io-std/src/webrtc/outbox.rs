//! Messages of one peer waiting for room in str0m's send buffer, in the order they were sent.
//!
//! A message on a channel with `maxPacketLifetime` (Godot's unreliable lanes) expires here as it
//! would in a browser's SCTP send queue: its lifetime starts when the application sends it, not
//! when str0m finally takes it. Without this, a message that waited out a full send buffer would
//! start a fresh lifetime in str0m and arrive late instead of not at all.

use std::collections::VecDeque;
use std::time::Instant;

use multipeer::peer::PutError;

struct Waiting {
    stream: u16,
    data: Vec<u8>,
    /// Past this instant the message is abandoned unsent (`None`: it waits for ever).
    expires: Option<Instant>,
}

/// A bounded FIFO of unsent messages; expired ones are dropped and counted, never sent late.
pub(crate) struct Outbox {
    waiting: VecDeque<Waiting>,
    bytes: usize,
    limit: usize,
    /// The earliest deadline among waiting messages, so a flush scans only when one is due.
    next_expiry: Option<Instant>,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Self {
        Self { waiting: VecDeque::new(), bytes: 0, limit, next_expiry: None }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether a message of `len` bytes fits behind the others now (without counting room
    /// that expiring messages would make).
    pub(crate) fn has_room(&self, len: usize) -> bool {
        self.bytes.saturating_add(len) <= self.limit
    }

    /// Queues a message behind the others. Expired messages make room first; returns how many
    /// expired.
    ///
    /// # Errors
    /// [`PutError::Full`] when the message does not fit within the byte limit.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        stream: u16,
        data: Vec<u8>,
        expires: Option<Instant>,
    ) -> Result<u64, PutError> {
        let mut expired = 0;
        if self.bytes + data.len() > self.limit {
            expired = self.expire(now);
            if self.bytes + data.len() > self.limit {
                return Err(PutError::Full);
            }
        }
        if let Some(at) = expires {
            self.next_expiry = Some(self.next_expiry.map_or(at, |next| next.min(at)));
        }
        self.bytes += data.len();
        self.waiting.push_back(Waiting { stream, data, expires });
        Ok(expired)
    }

    /// Drops every message whose lifetime ended before `now`; returns how many.
    pub(crate) fn expire(&mut self, now: Instant) -> u64 {
        if self.next_expiry.is_none_or(|next| now <= next) {
            return 0;
        }
        let before = self.waiting.len();
        let mut next_expiry = None::<Instant>;
        let mut bytes = self.bytes;
        self.waiting.retain(|w| match w.expires {
            Some(at) if now > at => {
                bytes -= w.data.len();
                false
            }
            Some(at) => {
                next_expiry = Some(next_expiry.map_or(at, |next| next.min(at)));
                true
            }
            None => true,
        });
        self.bytes = bytes;
        self.next_expiry = next_expiry;
        (before - self.waiting.len()) as u64
    }

    /// Expires what is due, then hands messages to `write` in order until it has no room
    /// (`Ok(false)`). A message `write` fails on is dropped: its channel closed under it, and
    /// the mesh hears of that through the close event. Returns how many expired.
    pub(crate) fn flush(
        &mut self,
        now: Instant,
        mut write: impl FnMut(u16, &[u8]) -> Result<bool, PutError>,
    ) -> u64 {
        let expired = self.expire(now);
        while let Some(front) = self.waiting.front() {
            if let Ok(false) = write(front.stream, &front.data) {
                break;
            }
            if let Some(sent) = self.waiting.pop_front() {
                self.bytes -= sent.data.len();
            }
        }
        if self.waiting.is_empty() {
            self.next_expiry = None;
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn expired_messages_are_dropped_and_the_rest_keep_their_order() {
        let t0 = Instant::now();
        let mut outbox = Outbox::new(1 << 20);
        outbox.push(t0, 1, vec![1], None).unwrap();
        outbox.push(t0, 3, vec![2], Some(t0 + ms(1))).unwrap();
        outbox.push(t0, 1, vec![3], None).unwrap();
        outbox.push(t0, 2, vec![4], Some(t0 + ms(50))).unwrap();
        // Nothing is due yet, and a full send buffer takes nothing.
        assert_eq!(outbox.flush(t0 + ms(1), |_, _| Ok(false)), 0);
        assert_eq!(outbox.len(), 4);
        let mut sent = Vec::new();
        let expired = outbox.flush(t0 + ms(10), |stream, data| {
            sent.push((stream, data[0]));
            Ok(true)
        });
        assert_eq!(expired, 1, "the 1 ms message waited 10 ms");
        assert_eq!(sent, [(1, 1), (1, 3), (2, 4)]);
        assert!(outbox.is_empty());
        assert_eq!(outbox.next_expiry, None);
    }

    #[test]
    fn a_full_outbox_makes_room_from_expired_messages_before_refusing() {
        let t0 = Instant::now();
        let mut outbox = Outbox::new(10);
        outbox.push(t0, 3, vec![0; 6], Some(t0 + ms(1))).unwrap();
        outbox.push(t0, 1, vec![0; 4], None).unwrap();
        assert_eq!(outbox.push(t0, 1, vec![0; 1], None), Err(PutError::Full), "nothing expired yet");
        assert_eq!(outbox.push(t0 + ms(2), 1, vec![0; 6], None), Ok(1), "the expired 6 bytes made room");
        assert_eq!(outbox.bytes, 10);
        assert_eq!(
            outbox.push(t0 + ms(3), 1, vec![0; 1], None),
            Err(PutError::Full),
            "reliable ones never expire"
        );
    }

    #[test]
    fn a_failed_write_drops_that_message_only() {
        let t0 = Instant::now();
        let mut outbox = Outbox::new(100);
        for i in 0..4u8 {
            outbox.push(t0, u16::from(i), vec![i], None).unwrap();
        }
        let mut sent = Vec::new();
        outbox.flush(t0, |stream, data| {
            if stream == 1 {
                return Err(PutError::Full);
            }
            if stream == 3 {
                return Ok(false);
            }
            sent.push(data[0]);
            Ok(true)
        });
        assert_eq!(sent, [0, 2]);
        assert_eq!((outbox.len(), outbox.bytes), (1, 1), "the last waits for room");
    }

    #[test]
    fn the_expiry_scan_runs_only_when_a_deadline_has_passed() {
        let t0 = Instant::now();
        let mut outbox = Outbox::new(100);
        outbox.push(t0, 3, vec![1], Some(t0 + ms(5))).unwrap();
        outbox.push(t0 + ms(3), 3, vec![2], Some(t0 + ms(8))).unwrap();
        assert_eq!(outbox.next_expiry, Some(t0 + ms(5)));
        assert_eq!(outbox.expire(t0 + ms(5)), 0, "a message expires after its deadline, not at it");
        assert_eq!(outbox.expire(t0 + ms(6)), 1);
        assert_eq!(outbox.next_expiry, Some(t0 + ms(8)), "the next deadline is recomputed");
        assert_eq!(outbox.expire(t0 + ms(9)), 1);
        assert_eq!(outbox.next_expiry, None);
    }
}
