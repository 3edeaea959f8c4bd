//! The packets waiting for the application.
//!
//! Most are copied, sender id first, into one ring shared by every peer, in arrival order. A
//! large packet that is the only message its connection holds is not copied: the ring records
//! where it lies (the connection's slot) and the packet stays at the front of that connection's
//! queue until the application reads it. Reading it there (`peek_packet`, `get_packet_with`)
//! copies nothing, and echoing it to its sender (`forward_packet`) sends it from where it lies.
//! The copy into the shared ring and the copy out of it were most of the multiplayer server's
//! user-space work per large packet (tests/bench/PROFILE.md, section 10).
//!
//! While a connection's packet is held, its later messages wait behind it (its input fills and
//! the adapter stops reading it, as when the inbox is full), so the application reads them in
//! order. A server that relays does not let relayed traffic wait for the application: when
//! more messages arrive behind a held packet, the packet is copied out of the connection into
//! the inbox ("orphaned", within the inbox's byte limit) and routing goes on. A sender that
//! leaves leaves at once, but its connection stays until the application has read the packet
//! it holds: held bytes are always a live connection's, bounded by its limits.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::peer::PeerId;
use crate::queue::{PacketQueue, QueueLimits};

/// Bytes stored in front of each copied packet: the sender's id and its connection's slot
/// index (which lets a reply to the sender skip looking the peer up).
const FROM_LEN: usize = 8;
/// Bytes of a held packet's record: its connection's slot index and generation.
const HELD_LEN: usize = 8;
const COPIED: u8 = 0;
const HELD: u8 = 1;

/// From this many bytes a packet for the application may be held in its connection instead of
/// copied into the ring. Releasing a held packet routes its connection again (moving the
/// connection's state out of its slot and back, about 3 KB of copying), so below this size a
/// copy costs less.
pub(super) const HOLD_MIN: usize = 2048;

/// A held packet copied out of its connection before the application read it.
struct Orphan {
    from: PeerId,
    data: Vec<u8>,
}

/// The application's queue of received packets.
#[derive(Default)]
pub(super) struct Inbox {
    ring: PacketQueue<Vec<u8>>,
    /// Orphaned packets by (slot index, generation, sequence). A connection holds one packet
    /// at a time and it is orphaned before it holds the next, so for one connection the oldest
    /// orphan belongs to its oldest record in the ring.
    orphans: BTreeMap<(u32, u32, u64), Orphan>,
    orphan_bytes: usize,
    orphan_sequence: u64,
}

/// The oldest packet.
pub(super) enum Front<'a> {
    /// In the inbox: copied into the ring, or orphaned. `index` is the slot the sender's
    /// connection had when the packet arrived (it may since have left, and the slot been
    /// reused).
    Here { from: PeerId, index: u32, data: &'a [u8] },
    /// Held at the front of the queue of the connection at this slot.
    Held { index: u32, generation: u32 },
}

impl Inbox {
    /// An empty inbox for `limits` of payload (the records' own bytes come on top).
    pub(super) fn new(limits: QueueLimits) -> Self {
        let ring = QueueLimits {
            max_bytes: limits.max_bytes.saturating_add(limits.max_packets.saturating_mul(HELD_LEN)),
            max_packets: limits.max_packets,
        };
        Self { ring: PacketQueue::new(ring), ..Self::default() }
    }

    /// Packets waiting, held ones included.
    pub(super) fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no packet is waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Bytes of storage held (held packets are their connections').
    pub(super) fn footprint(&self) -> usize {
        self.ring.footprint() + self.orphans.values().map(|o| o.data.capacity()).sum::<usize>()
    }

    /// Whether a copy of `len` bytes fits now.
    pub(super) fn fits_copy(&self, len: usize) -> bool {
        self.fits(FROM_LEN + len)
    }

    /// Whether a held packet's record fits now.
    pub(super) fn fits_held(&self) -> bool {
        self.fits(HELD_LEN)
    }

    /// Whether a packet slot is free.
    pub(super) fn has_packet_room(&self) -> bool {
        self.ring.packets_space_left() > 0
    }

    fn fits(&self, record: usize) -> bool {
        // Orphans count against the byte limit as if they were in the ring.
        self.ring.fits(record) && record.saturating_add(self.orphan_bytes) <= self.ring.space_left()
    }

    /// Queues a copy of `data` from `from`, whose connection is at slot `index`; the caller
    /// checked [`fits_copy`](Self::fits_copy).
    pub(super) fn push_copy(&mut self, from: PeerId, index: u32, data: &[u8]) {
        let mut head = [0; FROM_LEN];
        head[..4].copy_from_slice(&from.0.get().to_le_bytes());
        head[4..].copy_from_slice(&index.to_le_bytes());
        let _ = self.ring.push_parts(COPIED, &[&head, data]);
    }

    /// Records a packet held by the connection at slot `index`; the caller checked
    /// [`fits_held`](Self::fits_held).
    pub(super) fn push_held(&mut self, index: u32, generation: u32) {
        let mut record = [0; HELD_LEN];
        record[..4].copy_from_slice(&index.to_le_bytes());
        record[4..].copy_from_slice(&generation.to_le_bytes());
        let _ = self.ring.push(HELD, &record);
    }

    /// Takes over the packet the connection at slot `index` held, copied out of it; the caller
    /// checked [`fits_copy`](Self::fits_copy).
    pub(super) fn orphan(&mut self, index: u32, generation: u32, from: PeerId, data: Vec<u8>) {
        self.orphan_sequence += 1;
        self.orphan_bytes += FROM_LEN + data.len();
        self.orphans.insert((index, generation, self.orphan_sequence), Orphan { from, data });
    }

    fn first_orphan(&self, index: u32, generation: u32) -> Option<(&(u32, u32, u64), &Orphan)> {
        self.orphans.range((index, generation, 0)..=(index, generation, u64::MAX)).next()
    }

    /// The oldest packet, if any.
    pub(super) fn front(&self) -> Option<Front<'_>> {
        let record = self.ring.front()?;
        if record.meta == HELD {
            let (index, generation) = held_record(record.payload)?;
            return Some(match self.first_orphan(index, generation) {
                Some((_, o)) => Front::Here { from: o.from, index, data: &o.data },
                None => Front::Held { index, generation },
            });
        }
        let (head, data) = record.payload.split_first_chunk::<FROM_LEN>()?;
        let (from, index) = held_record(head)?;
        Some(Front::Here { from: PeerId::new(from)?, index, data })
    }

    /// Removes the oldest packet. Returns `None` when there was none, `Some(Some(slot))` when
    /// it was held by the connection at that slot (index, generation), which must now let it
    /// go, and `Some(None)` otherwise.
    pub(super) fn pop(&mut self) -> Option<Option<(u32, u32)>> {
        let record = self.ring.front()?;
        let held = if record.meta == HELD { held_record(record.payload) } else { None };
        self.ring.pop();
        let Some((index, generation)) = held else { return Some(None) };
        match self.first_orphan(index, generation).map(|(key, _)| *key) {
            Some(key) => {
                if let Some(o) = self.orphans.remove(&key) {
                    self.orphan_bytes -= FROM_LEN + o.data.len();
                }
                Some(None)
            }
            None => Some(Some((index, generation))),
        }
    }

    /// Drops every packet; the caller lets go of the held ones.
    pub(super) fn clear(&mut self) {
        self.ring.clear();
        self.orphans.clear();
        self.orphan_bytes = 0;
    }

    /// Gives the ring's storage back if it is empty.
    pub(super) fn release_if_empty(&mut self) {
        self.ring.release_if_empty();
    }
}

fn held_record(payload: &[u8]) -> Option<(u32, u32)> {
    let (index, generation) = payload.split_first_chunk::<4>()?;
    let generation: [u8; 4] = generation.try_into().ok()?;
    Some((u32::from_le_bytes(*index), u32::from_le_bytes(generation)))
}
