//! Bounded queues of bytes and of packets.
//!
//! [`PacketQueue`] is Godot's `PacketBuffer` idea (a payload ring plus per-packet metadata) with
//! two differences: every packet is stored contiguously, so readers get a plain `&[u8]` without
//! copying, and a full queue is always reported to the caller (`Err(QueueFull)`), never a
//! silent drop. Packets may be written incrementally (`begin`, `extend`, `commit`) so a
//! WebSocket message is reassembled in place as its frames arrive.
//!
//! The packet queue is a ring: popping a packet never moves bytes, and a queue kept full (a
//! server inbox under load) places each new packet where the oldest ones left room, instead of
//! moving the whole queue to the front as a compacting buffer would.
//!
//! Storage is any [`Buffer`]: a `Vec<u8>` that grows only as bytes arrive (and that its owner
//! gives back once the queue has stayed empty, [`PacketQueue::release_if_empty`]), or a fixed
//! array without `alloc`.

use core::fmt;

use crate::buffer::{Buffer, CapacityError};
use crate::copy::copy_bytes;

mod bytes;

pub(crate) use bytes::ByteQueue;
use bytes::Ring;

/// Limits of a [`PacketQueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most payload bytes queued at once (Godot: `inbound_buffer_size` / `outbound_buffer_size`).
    pub max_bytes: usize,
    /// Most packets queued at once (Godot: `max_queued_packets`).
    pub max_packets: usize,
}

impl QueueLimits {
    /// Godot 4.4+ defaults: 65535 bytes and 4096 packets.
    pub const GODOT: Self = Self { max_bytes: 65535, max_packets: 4096 };
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self::GODOT
    }
}

/// A packet could not be queued: the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueFull {
    /// No room for that many more payload bytes.
    Bytes {
        /// Payload bytes that did not fit.
        needed: usize,
        /// Payload bytes still free.
        free: usize,
    },
    /// No free packet slot.
    Packets {
        /// The packet limit.
        limit: usize,
    },
    /// The storage itself could not grow (fixed storage too small, or the allocator refused).
    Storage(CapacityError),
}

impl fmt::Display for QueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes { needed, free } => {
                write!(f, "queue full: {needed} bytes do not fit in the {free} bytes left")
            }
            Self::Packets { limit } => write!(f, "queue full: {limit} packets already queued"),
            Self::Storage(e) => write!(f, "queue storage exhausted: {e}"),
        }
    }
}

impl core::error::Error for QueueFull {}

/// Bytes of bookkeeping stored in front of every packet: u32 LE length and a metadata byte.
const RECORD_HEADER: usize = 5;

/// Room left in front of a packet started in an empty queue: with the record header, room for
/// the longest unmasked frame header (10 bytes), so that a WebSocket connection can send the
/// packet on from where it lies (`forward_message`) whatever its size.
const FRONT_ROOM: usize = 5;

/// One queued packet, borrowed from the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The metadata byte given when the packet was queued.
    pub meta: u8,
    /// The payload, contiguous.
    pub payload: &'a [u8],
}

/// The complete packets of a [`PacketQueue`], oldest first ([`PacketQueue::iter`]).
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    /// The rest of the run being read.
    run: &'a [u8],
    /// The newer run, once the older one is read (empty unless the bytes wrap).
    next: &'a [u8],
    /// Complete packets not yet returned (the open one, after them, is never read).
    left: usize,
}

impl<'a> Iterator for Packets<'a> {
    type Item = Packet<'a>;

    fn next(&mut self) -> Option<Packet<'a>> {
        if self.left == 0 {
            return None;
        }
        if self.run.is_empty() {
            self.run = core::mem::take(&mut self.next);
        }
        let (len, meta) = read_header(self.run.get(..RECORD_HEADER)?);
        let payload = self.run.get(RECORD_HEADER..RECORD_HEADER + len)?;
        self.run = &self.run[RECORD_HEADER + len..];
        self.left -= 1;
        Some(Packet { meta, payload })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// A bounded FIFO of packets; each packet contiguous, each push all-or-nothing.
#[derive(Debug, Default)]
pub struct PacketQueue<B> {
    ring: Ring<B>,
    limits: QueueLimits,
    /// Complete packets.
    packets: usize,
    /// Payload bytes of complete packets and of the open one.
    payload: usize,
    /// Bytes written for the packet being built (header included); zero when none is open.
    open: usize,
    is_open: bool,
}

impl<B: Buffer + Default> PacketQueue<B> {
    /// An empty queue with the given limits; no storage is touched until the first packet.
    #[must_use]
    pub fn new(limits: QueueLimits) -> Self {
        Self { ring: Ring::default(), limits, packets: 0, payload: 0, open: 0, is_open: false }
    }
}

impl<B: Buffer> PacketQueue<B> {
    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    /// Changes the limits; packets already queued stay.
    pub fn set_limits(&mut self, limits: QueueLimits) {
        self.limits = limits;
    }

    /// Complete packets queued.
    #[must_use]
    pub fn len(&self) -> usize {
        self.packets
    }

    /// Whether no complete packet is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// Payload bytes queued, including a packet still being written.
    #[must_use]
    pub fn payload_len(&self) -> usize {
        self.payload
    }

    /// Payload bytes that can still be queued (Godot 4.4 `payload_space_left`).
    #[must_use]
    pub fn space_left(&self) -> usize {
        self.limits.max_bytes.saturating_sub(self.payload)
    }

    /// Packet slots still free (Godot 4.4 `packets_space_left`).
    #[must_use]
    pub fn packets_space_left(&self) -> usize {
        let used = self.packets + usize::from(self.is_open);
        self.limits.max_packets.saturating_sub(used)
    }

    /// Bytes of storage currently held, for memory accounting.
    #[must_use]
    pub fn footprint(&self) -> usize {
        self.ring.footprint()
    }

    /// The most storage the queue may hold: its limits' worth of records, and half as much
    /// again so that a ring kept nearly full still finds each new record a contiguous place
    /// (with no slack, the free space is split around the skipped end of the storage and every
    /// record would move the whole queue).
    fn physical_limit(&self) -> usize {
        let records =
            self.limits.max_bytes.saturating_add(self.limits.max_packets.saturating_mul(RECORD_HEADER));
        records.saturating_add(records / 2)
    }

    /// Whether a packet of `len` payload bytes would be accepted now.
    #[must_use]
    pub fn fits(&self, len: usize) -> bool {
        !self.is_open && self.packets_space_left() > 0 && len <= self.space_left()
    }

    /// Queues a whole packet, or nothing.
    ///
    /// # Errors
    /// [`QueueFull`] when the packet or byte limit would be exceeded or storage cannot grow.
    pub fn push(&mut self, meta: u8, payload: &[u8]) -> Result<(), QueueFull> {
        self.push_parts(meta, &[payload])
    }

    /// Queues a whole packet made of `parts` one after the other, or nothing: one reservation
    /// where [`begin`](Self::begin), [`extend`](Self::extend) and [`commit`](Self::commit)
    /// take one per call.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn push_parts(&mut self, meta: u8, parts: &[&[u8]]) -> Result<(), QueueFull> {
        if self.packets_space_left() == 0 || self.is_open {
            return Err(QueueFull::Packets { limit: self.limits.max_packets });
        }
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        if len > self.space_left() {
            return Err(QueueFull::Bytes { needed: len, free: self.space_left() });
        }
        let limit = self.physical_limit();
        let total = RECORD_HEADER + len;
        let dst = self.ring.reserve(0, total, limit).map_err(QueueFull::Storage)?;
        write_header(dst, len, meta);
        let mut at = RECORD_HEADER;
        for part in parts {
            copy_bytes(&mut dst[at..at + part.len()], part);
            at += part.len();
        }
        self.ring.advance(total);
        self.packets += 1;
        self.payload += len;
        Ok(())
    }

    /// Starts a packet to be filled by [`extend`](Self::extend) and closed by
    /// [`commit`](Self::commit) or [`abort`](Self::abort).
    ///
    /// # Errors
    /// [`QueueFull::Packets`] when no slot is free (or a packet is already open).
    pub fn begin(&mut self, meta: u8) -> Result<(), QueueFull> {
        if self.is_open || self.packets_space_left() == 0 {
            return Err(QueueFull::Packets { limit: self.limits.max_packets });
        }
        let limit = self.physical_limit();
        self.leave_front_room(limit);
        let dst = self.ring.reserve(0, RECORD_HEADER, limit).map_err(QueueFull::Storage)?;
        write_header(dst, 0, meta);
        self.ring.advance(RECORD_HEADER);
        self.open = RECORD_HEADER;
        self.is_open = true;
        Ok(())
    }

    /// In an empty queue, starts the next packet [`FRONT_ROOM`] bytes into the storage.
    fn leave_front_room(&mut self, limit: usize) {
        if self.ring.len() == 0 && self.ring.wrap.is_none() {
            // Storage not grown yet grows to hold the room first; if it cannot, the packet
            // starts at the front.
            if self.ring.buf.try_grow(FRONT_ROOM + RECORD_HEADER, limit).is_ok() {
                self.ring.head = FRONT_ROOM;
                self.ring.tail = FRONT_ROOM;
            }
        }
    }

    /// Queues a whole packet of `len` payload bytes that `fill` writes (it gets exactly
    /// `len`), or nothing: [`begin`](Self::begin), [`extend_with`](Self::extend_with) and
    /// [`commit`](Self::commit) in one reservation, leaving the same room in front.
    ///
    /// # Errors
    /// As [`push`](Self::push); `fill` is not called then.
    pub fn push_with(&mut self, meta: u8, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), QueueFull> {
        if self.packets_space_left() == 0 || self.is_open {
            return Err(QueueFull::Packets { limit: self.limits.max_packets });
        }
        if len > self.space_left() {
            return Err(QueueFull::Bytes { needed: len, free: self.space_left() });
        }
        let limit = self.physical_limit();
        self.leave_front_room(limit);
        let total = RECORD_HEADER + len;
        let dst = self.ring.reserve(0, total, limit).map_err(QueueFull::Storage)?;
        write_header(dst, len, meta);
        fill(&mut dst[RECORD_HEADER..]);
        self.ring.advance(total);
        self.packets += 1;
        self.payload += len;
        Ok(())
    }

    /// Whether a packet is being written.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.is_open
    }

    /// Payload bytes written so far into the open packet.
    #[must_use]
    pub fn open_len(&self) -> usize {
        self.open.saturating_sub(RECORD_HEADER)
    }

    /// Appends to the open packet `n` bytes produced by `fill`, which gets exactly `n` bytes.
    ///
    /// # Errors
    /// [`QueueFull::Packets`] when no packet is open (as [`begin`](Self::begin) reports one
    /// already open); [`QueueFull`] when the bytes do not fit. Nothing is written then.
    pub fn extend_with(&mut self, n: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), QueueFull> {
        // Bytes without a record header in front would be read as one by the next `pop`.
        if !self.is_open {
            return Err(QueueFull::Packets { limit: self.limits.max_packets });
        }
        if n > self.space_left() {
            return Err(QueueFull::Bytes { needed: n, free: self.space_left() });
        }
        let limit = self.physical_limit();
        fill(self.ring.reserve(self.open, n, limit).map_err(QueueFull::Storage)?);
        self.ring.advance(n);
        self.open += n;
        self.payload += n;
        Ok(())
    }

    /// Appends `bytes` to the open packet.
    ///
    /// # Errors
    /// As [`extend_with`](Self::extend_with).
    pub fn extend(&mut self, bytes: &[u8]) -> Result<(), QueueFull> {
        self.extend_with(bytes.len(), |dst| copy_bytes(dst, bytes))
    }

    /// The payload written so far into the open packet.
    #[must_use]
    pub fn open_payload(&self) -> &[u8] {
        self.ring.newest(self.open).get(RECORD_HEADER..).unwrap_or_default()
    }

    /// Closes the open packet and makes it readable.
    pub fn commit(&mut self) {
        if !self.is_open {
            return;
        }
        let len = self.open - RECORD_HEADER;
        let header = self.ring.newest_mut(self.open);
        let meta = header[4];
        write_header(header, len, meta);
        self.open = 0;
        self.is_open = false;
        self.packets += 1;
    }

    /// Discards the open packet.
    pub fn abort(&mut self) {
        if !self.is_open {
            return;
        }
        self.payload -= self.open - RECORD_HEADER;
        self.ring.truncate_back(self.open);
        self.open = 0;
        self.is_open = false;
    }

    /// The oldest complete packet.
    #[must_use]
    pub fn front(&self) -> Option<Packet<'_>> {
        if self.packets == 0 {
            return None;
        }
        let bytes = self.ring.as_slice();
        let (len, meta) = read_header(bytes);
        Some(Packet { meta, payload: bytes.get(RECORD_HEADER..RECORD_HEADER + len)? })
    }

    /// The complete packets, oldest first; nothing is removed.
    pub fn iter(&self) -> Packets<'_> {
        let [run, next] = self.ring.runs();
        Packets { run, next, left: self.packets }
    }

    /// The oldest complete packets, oldest first, into `out` (as many as fit); returns how
    /// many. Nothing is removed (a sender offering several to one vectored write).
    pub fn front_packets<'a>(&'a self, out: &mut [Packet<'a>]) -> usize {
        out.iter_mut().zip(self.iter()).map(|(slot, packet)| *slot = packet).count()
    }

    /// Removes the oldest complete packet; returns whether there was one.
    pub fn pop(&mut self) -> bool {
        if self.packets == 0 {
            return false;
        }
        let (len, _) = read_header(self.ring.as_slice());
        self.ring.consume(RECORD_HEADER + len);
        self.packets -= 1;
        self.payload -= len;
        true
    }

    /// Gives the storage back if nothing is queued or being written; returns whether it did.
    ///
    /// The queue keeps its storage while it drains and fills again (freeing and regrowing it
    /// on every message costs more than the message itself); its owner calls this once the
    /// queue has been idle for a while, so idle memory still returns to zero.
    pub fn release_if_empty(&mut self) -> bool {
        if self.packets == 0 && !self.is_open && self.ring.footprint() > 0 {
            self.ring.release();
            return true;
        }
        false
    }

    /// Copies the oldest packet into `dst` and removes it; returns its metadata and length.
    ///
    /// # Errors
    /// [`ReadError::Empty`], or [`ReadError::TooSmall`] (the packet stays queued).
    pub fn pop_into(&mut self, dst: &mut [u8]) -> Result<(u8, usize), ReadError> {
        let packet = self.front().ok_or(ReadError::Empty)?;
        let len = packet.payload.len();
        let out = dst.get_mut(..len).ok_or(ReadError::TooSmall { needed: len })?;
        copy_bytes(out, packet.payload);
        let meta = packet.meta;
        self.pop();
        Ok((meta, len))
    }

    /// Where the only packet lies when it is all the storage holds (nothing wrapped, nothing
    /// being written after it): the offset of its payload in the storage, and its length.
    pub(crate) fn lone_packet(&self) -> Option<(usize, usize)> {
        if self.packets != 1 || self.is_open || self.ring.wrap.is_some() {
            return None;
        }
        let (len, _) = read_header(self.ring.as_slice());
        let at = self.ring.head + RECORD_HEADER;
        (at + len == self.ring.tail).then_some((at, len))
    }

    /// The storage, for a caller that takes the lone packet's bytes over and puts other
    /// storage in place; [`forget_all`](Self::forget_all) then empties the queue.
    pub(crate) fn storage_mut(&mut self) -> &mut B {
        &mut self.ring.buf
    }

    /// Empties the queue without reading its storage, which was replaced through
    /// [`storage_mut`](Self::storage_mut).
    pub(crate) fn forget_all(&mut self) {
        self.ring.head = 0;
        self.ring.tail = 0;
        self.ring.wrap = None;
        self.packets = 0;
        self.payload = 0;
        self.open = 0;
        self.is_open = false;
    }

    /// The raw bytes, for a connection's opening handshake before any packet is queued.
    pub(crate) fn scratch(&mut self) -> &mut Ring<B> {
        debug_assert!(self.packets == 0 && !self.is_open);
        &mut self.ring
    }

    /// The raw bytes written through [`scratch`](Self::scratch).
    pub(crate) fn scratch_slice(&self) -> &[u8] {
        self.ring.as_slice()
    }

    /// Drops every packet, the open one included.
    pub fn clear(&mut self) {
        self.abort();
        while self.pop() {}
        self.ring.release();
    }
}

/// A packet could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// No packet is queued.
    Empty,
    /// The destination is shorter than the packet.
    TooSmall {
        /// The packet's length.
        needed: usize,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no packet queued"),
            Self::TooSmall { needed } => write!(f, "destination too small for {needed} bytes"),
        }
    }
}

impl core::error::Error for ReadError {}

fn write_header(dst: &mut [u8], len: usize, meta: u8) {
    // Lengths are bounded by QueueLimits, which callers keep far below u32::MAX.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    dst[..4].copy_from_slice(&len.to_le_bytes());
    dst[4] = meta;
}

fn read_header(bytes: &[u8]) -> (usize, u8) {
    let mut len = [0; 4];
    len.copy_from_slice(&bytes[..4]);
    (u32::from_le_bytes(len) as usize, bytes[4])
}

#[cfg(test)]
mod tests;
