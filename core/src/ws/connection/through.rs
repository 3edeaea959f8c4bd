//! Write-through: a frame offered to the transport straight from where its payload lies, for
//! an adapter that holds the socket and can write at once. Only what the transport did not
//! take is copied into the outbound queue, so a large message (an echo, a forward, a send of
//! the application's buffer) is copied by the kernel alone when the socket has room.
//!
//! The machine stays sans-IO: it never sees the socket, only a function that returns how many
//! bytes the transport took. That number is all the queue's accounting needs.

use super::writer::OutQueue;
use super::{Connection, MaskKeys, Phase};
use crate::buffer::Storage;
use crate::queue::Packet;
use crate::ws::frame::{FrameHeader, MAX_HEADER_LEN};
use crate::ws::{MessageKind, Role, SendError};

impl<S: Storage, R: MaskKeys> Connection<S, R> {
    /// [`forward_message`](Self::forward_message), offering the frame to `write` first when
    /// nothing is queued to send: header and payload, as two slices for one vectored write,
    /// straight from the inbound queue. `write` returns how many bytes the transport took (0
    /// when it would block or failed: a failed transport fails again when the queue is
    /// written); the rest is queued as usual.
    ///
    /// Where write-through does not apply — a client (which masks), a compressing connection,
    /// output already queued (which must go first) — this is `forward_message` and `write` is
    /// not called.
    ///
    /// # Errors
    /// As [`forward_message`](Self::forward_message); on an error nothing was written and the
    /// message stays queued. [`SendError::NotOpen`] also when the transport took part of the
    /// frame and storage for the rest could not be had: the connection is then aborted, as
    /// its stream cannot go on mid-frame.
    pub fn forward_message_through(
        &mut self,
        write: impl FnOnce(&[&[u8]]) -> usize,
    ) -> Result<Option<MessageKind>, SendError> {
        let Some(front) = self.inbound.front() else { return Ok(None) };
        let kind = MessageKind::from_meta(front.meta);
        if !self.writes_through() {
            return self.forward_message_as(kind);
        }
        let header = self.data_frame_header(kind.opcode(), front.payload.len())?;
        let limit = self.data_limit();
        // Distinct fields: the inbound queue is read while the outbound one is written.
        let payload = self.inbound.front().map_or(&[][..], |p| p.payload);
        match write_frame_through(&mut self.out, &header, payload, limit, write) {
            Through::NotOffered => return self.forward_message_as(kind),
            Through::Broken => return Err(self.cut_mid_frame()),
            Through::Sent => {}
        }
        self.timers.carried_data = true;
        self.pop_message();
        Ok(Some(kind))
    }

    /// Forwards every message received so far, oldest first, as
    /// [`forward_message`](Self::forward_message) does; returns how many. Stops at the first
    /// that cannot be forwarded, which stays queued. Only what was received before the call is
    /// forwarded: forwarding frees inbound room, which can let a held frame complete into a new
    /// message, and that one waits for the next call.
    ///
    /// # Errors
    /// As [`forward_message`](Self::forward_message), when the first message cannot be
    /// forwarded (later ones that cannot are left queued, and the count says so).
    pub fn forward_messages(&mut self) -> Result<usize, SendError> {
        self.forward_present(|c, _| c.forward_message().map(|kind| usize::from(kind.is_some())))
    }

    /// [`forward_messages`](Self::forward_messages), offering the messages to `write` together
    /// when nothing is queued to send: each frame's header and payload from where it lies, up
    /// to 16 frames in one vectored write, the frames the transport did not take (or took part
    /// of) queued. An echo server or a proxy sends what one read brought with one write and no
    /// copy.
    ///
    /// Where write-through does not apply (see
    /// [`forward_message_through`](Self::forward_message_through)) each message is
    /// forwarded through the queue and `write` is not called.
    ///
    /// # Errors
    /// As [`forward_messages`](Self::forward_messages).
    pub fn forward_messages_through(
        &mut self,
        mut write: impl FnMut(&[&[u8]]) -> usize,
    ) -> Result<usize, SendError> {
        self.forward_present(|c, left| {
            if c.writes_through() {
                c.forward_batch_through(left, &mut write)
            } else {
                c.forward_message().map(|kind| usize::from(kind.is_some()))
            }
        })
    }

    /// Runs `step` (given how many messages are left to forward; it returns how many it
    /// forwarded) until the messages queued at the start are forwarded or one cannot be.
    fn forward_present(
        &mut self,
        mut step: impl FnMut(&mut Self, usize) -> Result<usize, SendError>,
    ) -> Result<usize, SendError> {
        let present = self.available_messages();
        let mut forwarded = 0;
        while forwarded < present {
            match step(self, present - forwarded) {
                Ok(n) => forwarded += n,
                Err(e) if forwarded == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(forwarded)
    }

    /// One vectored write of as many front messages as fit the outbound limits together
    /// (at most `most` and `THROUGH_BATCH`); the queue is empty.
    fn forward_batch_through(
        &mut self,
        most: usize,
        write: &mut impl FnMut(&[&[u8]]) -> usize,
    ) -> Result<usize, SendError> {
        if self.phase != Phase::Open {
            return Err(SendError::NotOpen);
        }
        let limit = self.data_limit();
        let mut packets = [Packet { meta: 0, payload: &[] }; THROUGH_BATCH];
        let n = self.inbound.front_packets(&mut packets[..most.min(THROUGH_BATCH)]);
        let mut headers = [(UNUSED_HEADER, [0; MAX_HEADER_LEN], 0); THROUGH_BATCH];
        let (mut bytes, mut messages, mut total, mut fit) =
            (self.out.data_bytes, self.out.data_messages, 0, 0);
        for (packet, slot) in packets[..n].iter().zip(&mut headers) {
            let len = packet.payload.len();
            let header = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: MessageKind::from_meta(packet.meta).opcode(),
                mask: None,
                payload_len: len as u64,
            };
            let (head, hlen) = header.encode();
            let fits_limits = len <= self.config.outbound_buffer_size
                && messages < self.config.max_outbound_messages
                && bytes + len <= self.config.outbound_queue_limit();
            // Room for every frame so far whole: whatever the transport leaves, the queue
            // can finish.
            if !fits_limits || !self.out.has_data_room(total + hlen + len, limit) {
                break;
            }
            *slot = (header, head, hlen);
            (bytes, messages, total, fit) = (bytes + len, messages + 1, total + hlen + len, fit + 1);
        }
        if fit == 0 {
            // The first does not fit: the single path says why (or queues it, should the
            // limits have been misjudged here).
            return self.forward_message().map(|kind| usize::from(kind.is_some()));
        }
        let mut parts: [&[u8]; 2 * THROUGH_BATCH] = [&[]; 2 * THROUGH_BATCH];
        for (i, (packet, (_, head, hlen))) in packets[..fit].iter().zip(&headers).enumerate() {
            parts[2 * i] = &head[..*hlen];
            parts[2 * i + 1] = packet.payload;
        }
        let mut taken = write(&parts[..2 * fit]).min(total);
        let mut queued = Ok(());
        for (packet, (header, head, hlen)) in packets[..fit].iter().zip(&headers) {
            let frame = hlen + packet.payload.len();
            let step = taken.min(frame);
            taken -= step;
            if step == frame || queued.is_err() {
                continue;
            }
            queued = if step > 0 {
                self.out.push_frame_rest(&head[..*hlen], packet.payload, step, limit)
            } else {
                self.out.push_frame(*header, &[packet.payload], limit)
            };
        }
        if queued.is_err() {
            return Err(self.cut_mid_frame());
        }
        for _ in 0..fit {
            self.pop_message();
        }
        Ok(fit)
    }

    /// [`send`](Self::send), offering the frame to `write` first as
    /// [`forward_message_through`](Self::forward_message_through) does, straight from
    /// `payload`.
    ///
    /// # Errors
    /// As [`send`](Self::send); on an error nothing was written or queued, but for the abort
    /// [`forward_message_through`](Self::forward_message_through) describes.
    pub fn send_through(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        write: impl FnOnce(&[&[u8]]) -> usize,
    ) -> Result<(), SendError> {
        if kind == MessageKind::Text && core::str::from_utf8(payload).is_err() {
            return Err(SendError::InvalidUtf8);
        }
        if !self.writes_through() {
            return self.send(kind, payload);
        }
        let header = self.data_frame_header(kind.opcode(), payload.len())?;
        let limit = self.data_limit();
        match write_frame_through(&mut self.out, &header, payload, limit, write) {
            Through::NotOffered => return self.send(kind, payload),
            Through::Broken => return Err(self.cut_mid_frame()),
            Through::Sent => {}
        }
        self.timers.carried_data = true;
        self.hold_buffers();
        Ok(())
    }

    /// Ends the connection whose stream a partial write cut mid-frame (see [`Through::Broken`]):
    /// its end is reported as an abort.
    fn cut_mid_frame(&mut self) -> SendError {
        self.abort();
        SendError::NotOpen
    }

    /// Whether a frame may bypass the queue: a server's frames go unmasked, uncompressed
    /// ones as they are, and nothing queued must be written before them.
    fn writes_through(&self) -> bool {
        self.role == Role::Server && !self.deflate_active() && self.out.is_empty()
    }
}

/// Most frames [`Connection::forward_messages_through`] offers to one vectored write (two
/// slices each; Linux takes up to 1024 slices per write).
const THROUGH_BATCH: usize = 16;

/// Fills the batch's header slots until they are used.
const UNUSED_HEADER: FrameHeader =
    FrameHeader { fin: true, rsv: 0, opcode: crate::ws::OpCode::Binary, mask: None, payload_len: 0 };

/// What became of a frame offered for write-through.
enum Through {
    /// Not offered: the queue could not hold the whole frame, and a write must never start
    /// what the queue cannot finish. Nothing was written or queued.
    NotOffered,
    /// Written, and whatever the transport did not take queued behind it.
    Sent,
    /// Partly written, and storage for the rest could not be had (the allocator failed):
    /// the stream is cut mid-frame, so the connection must end.
    Broken,
}

/// Offers the frame to `write` and queues the part it did not take.
fn write_frame_through<B: crate::buffer::Buffer>(
    out: &mut OutQueue<B>,
    header: &FrameHeader,
    payload: &[u8],
    data_limit: usize,
    write: impl FnOnce(&[&[u8]]) -> usize,
) -> Through {
    let (head, hlen) = header.encode();
    let total = hlen + payload.len();
    if !out.has_data_room(total, data_limit) {
        return Through::NotOffered;
    }
    let taken = write(&[&head[..hlen], payload]).min(total);
    if taken == total || out.push_frame_rest(&head[..hlen], payload, taken, data_limit).is_ok() {
        Through::Sent
    } else {
        Through::Broken
    }
}
