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
use core::num::NonZeroUsize;

use crate::buffer::{Buffer, CapacityError};
use crate::copy::copy_bytes;

/// A queue of bytes in one contiguous region, compacted when the free space runs out at the end
/// (outbound frames: the transport usually takes them all, and an empty queue starts over at the
/// front, so the compaction moves only what a partial write left).
#[derive(Debug, Default)]
pub(crate) struct ByteQueue<B> {
    buf: B,
    head: usize,
    tail: usize,
}

impl<B: Buffer> ByteQueue<B> {
    pub(crate) fn len(&self) -> usize {
        self.tail - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// The queued bytes, oldest first.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf.as_slice()[self.head..self.tail]
    }

    /// Drops the `n` oldest bytes (at most all of them).
    pub(crate) fn consume(&mut self, n: usize) {
        self.head += n.min(self.len());
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// A writable region of exactly `n` bytes at the end; [`advance`](Self::advance) commits it.
    ///
    /// `limit` bounds the physical size of the storage.
    pub(crate) fn reserve(&mut self, n: usize, limit: usize) -> Result<&mut [u8], CapacityError> {
        let needed = self.tail.checked_add(n).ok_or(CapacityError { requested: usize::MAX })?;
        if needed > self.buf.as_slice().len() {
            if self.head > 0 {
                self.buf.as_mut_slice().copy_within(self.head..self.tail, 0);
                self.tail -= self.head;
                self.head = 0;
            }
            let needed = self.tail + n;
            if needed > self.buf.as_slice().len() {
                self.buf.try_grow(needed, limit)?;
            }
        }
        let tail = self.tail;
        Ok(&mut self.buf.as_mut_slice()[tail..tail + n])
    }

    /// Whether [`reserve`](Self::reserve) of `n` bytes under `limit` would succeed (unless the
    /// allocator refuses).
    pub(crate) fn fits(&self, n: usize, limit: usize) -> bool {
        // What `reserve` does: use the storage held (after compaction), or grow to the limit.
        self.len().checked_add(n).is_some_and(|needed| {
            needed <= self.buf.as_slice().len() || needed <= limit.min(self.buf.max_len())
        })
    }

    /// Commits `n` bytes written into the region returned by [`reserve`](Self::reserve).
    pub(crate) fn advance(&mut self, n: usize) {
        self.tail += n;
        debug_assert!(self.tail <= self.buf.as_slice().len());
    }

    /// Gives memory back while the queue is empty.
    pub(crate) fn release(&mut self) {
        if self.is_empty() {
            // `truncate` can leave an empty queue at a nonzero offset; past a shrink, that
            // offset would point outside the storage.
            self.head = 0;
            self.tail = 0;
            self.buf.shrink(0);
        }
    }

    /// Bytes of storage currently held (initialized), for memory accounting.
    pub(crate) fn footprint(&self) -> usize {
        self.buf.as_slice().len()
    }

    /// The storage, for a caller that takes over what it holds (see
    /// [`adopt`](Self::adopt)).
    pub(crate) fn storage_mut(&mut self) -> &mut B {
        &mut self.buf
    }

    /// Makes `head..tail` of the storage the queued bytes, for storage just put in place
    /// whose bytes there are already written.
    pub(crate) fn adopt(&mut self, head: usize, tail: usize) {
        debug_assert!(head <= tail && tail <= self.buf.as_slice().len());
        self.head = head;
        self.tail = tail;
    }
}

/// Bytes in a ring whose records never split: a record that does not fit before the end of
/// the storage starts again at the front, and the unused end is skipped until the reader gets
/// there. Reading never moves bytes; writing moves bytes only to make room when the free space
/// is split (see [`reserve`](Self::reserve)), so a queue that stays full costs no memmove per
/// packet.
#[derive(Debug, Default)]
pub(crate) struct Ring<B> {
    buf: B,
    /// The oldest byte.
    head: usize,
    /// One past the newest byte.
    tail: usize,
    /// When the bytes wrap: the end of the older run `head..wrap`; the newer run is `..tail`.
    wrap: Option<NonZeroUsize>,
}

impl<B: Buffer> Ring<B> {
    /// The end of the older run, when the bytes wrap (never zero: that run is not empty).
    fn wrap_end(&self) -> Option<usize> {
        self.wrap.map(NonZeroUsize::get)
    }

    pub(crate) fn len(&self) -> usize {
        match self.wrap_end() {
            None => self.tail - self.head,
            Some(wrap) => wrap - self.head + self.tail,
        }
    }

    /// The bytes from the oldest to the end of its run (all of them unless they wrap).
    pub(crate) fn as_slice(&self) -> &[u8] {
        let end = self.wrap_end().unwrap_or(self.tail);
        &self.buf.as_slice()[self.head..end]
    }

    /// The older run and the newer one (empty unless the bytes wrap), in order.
    fn runs(&self) -> [&[u8]; 2] {
        let newer = if self.wrap.is_some() { &self.buf.as_slice()[..self.tail] } else { &[] };
        [self.as_slice(), newer]
    }

    /// The newest `n` bytes, which the writer keeps contiguous (the open record).
    fn newest(&self, n: usize) -> &[u8] {
        &self.buf.as_slice()[self.tail - n..self.tail]
    }

    fn newest_mut(&mut self, n: usize) -> &mut [u8] {
        let tail = self.tail;
        &mut self.buf.as_mut_slice()[tail - n..tail]
    }

    /// Drops the `n` oldest bytes, which must not cross the end of their run (one record).
    pub(crate) fn consume(&mut self, n: usize) {
        let end = self.wrap_end().unwrap_or(self.tail);
        self.head += n.min(end - self.head);
        if self.wrap_end() == Some(self.head) {
            self.head = 0;
            self.wrap = None;
        }
        self.settle();
    }

    /// Drops the `n` newest bytes (at most the newer run).
    fn truncate_back(&mut self, n: usize) {
        let start = if self.wrap.is_some() { 0 } else { self.head };
        self.tail -= n.min(self.tail - start);
        if let (Some(wrap), 0) = (self.wrap_end(), self.tail) {
            self.tail = wrap;
            self.wrap = None;
        }
        self.settle();
    }

    /// An empty ring starts over at the front, so a queue that drains keeps touching the same
    /// few cache lines instead of cycling through all its storage.
    fn settle(&mut self) {
        if self.wrap.is_none() && self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// A writable region of exactly `n` bytes right after the newest `written` bytes, which
    /// stay contiguous with it; [`advance`](Self::advance) commits it.
    ///
    /// In order of preference: the room already there; the front of the storage, when the
    /// record fits before the oldest byte (the newest `written` bytes move there); more
    /// storage, up to `limit`; and last, when storage cannot grow, everything moved to the
    /// front (the only case that moves more than the record being written).
    #[inline]
    pub(crate) fn reserve(
        &mut self,
        written: usize,
        n: usize,
        limit: usize,
    ) -> Result<&mut [u8], CapacityError> {
        let overflow = CapacityError { requested: usize::MAX };
        let record = written.checked_add(n).ok_or(overflow)?;
        let cap = self.buf.as_slice().len();
        let room_end = self.wrap.map_or(cap, |_| self.head);
        if self.tail.checked_add(n).ok_or(overflow)? > room_end {
            self.make_room(written, record, limit)?;
        }
        let tail = self.tail;
        Ok(&mut self.buf.as_mut_slice()[tail..tail + n])
    }

    // Out of line: the common case (room at the tail) then inlines as a few compares.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, written: usize, record: usize, limit: usize) -> Result<(), CapacityError> {
        let start = self.tail - written;
        match self.wrap_end() {
            None if start == self.head && record <= self.buf.as_slice().len() => {
                // Only the record itself is queued: it moves to the front.
                self.buf.as_mut_slice().copy_within(start..self.tail, 0);
                self.head = 0;
                self.tail = written;
                return Ok(());
            }
            None if record <= self.head && start > self.head => {
                self.buf.as_mut_slice().copy_within(start..self.tail, 0);
                // `start` is past `head`, so not zero.
                self.wrap = NonZeroUsize::new(start);
                self.tail = written;
                return Ok(());
            }
            None => {
                if self.buf.try_grow(start + record, limit).is_ok() {
                    return Ok(());
                }
            }
            Some(wrap) => {
                // The newer run moves after the older one, if the storage can hold both.
                if self.buf.try_grow(wrap + self.tail + (record - written), limit).is_ok() {
                    self.buf.as_mut_slice().copy_within(..self.tail, wrap);
                    self.tail += wrap;
                    self.wrap = None;
                    return Ok(());
                }
            }
        }
        self.make_linear();
        let needed = self.tail - written + record;
        if needed > self.buf.as_slice().len() {
            self.buf.try_grow(needed, limit)?;
        }
        Ok(())
    }

    /// Moves every byte to the front of the storage, in order.
    fn make_linear(&mut self) {
        if let Some(wrap) = self.wrap.take().map(NonZeroUsize::get) {
            // [newer | free | older | unused] becomes [older | newer | ...].
            self.buf.as_mut_slice()[..wrap].rotate_left(self.head);
            self.tail += wrap - self.head;
        } else if self.head > 0 {
            self.buf.as_mut_slice().copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
        }
        self.head = 0;
    }

    /// Commits `n` bytes written into the region returned by [`reserve`](Self::reserve).
    pub(crate) fn advance(&mut self, n: usize) {
        self.tail += n;
        debug_assert!(self.tail <= self.buf.as_slice().len());
    }

    /// Appends `bytes` whole, or nothing, keeping all bytes in one run (for raw bytes that are
    /// read back with [`as_slice`](Self::as_slice), such as a handshake head).
    pub(crate) fn push(&mut self, bytes: &[u8], limit: usize) -> Result<(), CapacityError> {
        self.make_linear();
        let needed = self.tail.checked_add(bytes.len()).ok_or(CapacityError { requested: usize::MAX })?;
        if needed > self.buf.as_slice().len() {
            self.buf.try_grow(needed, limit)?;
        }
        let tail = self.tail;
        copy_bytes(&mut self.buf.as_mut_slice()[tail..needed], bytes);
        self.tail = needed;
        Ok(())
    }

    /// Gives memory back while the ring is empty.
    pub(crate) fn release(&mut self) {
        if self.len() == 0 {
            self.head = 0;
            self.tail = 0;
            self.wrap = None;
            self.buf.shrink(0);
        }
    }

    /// Bytes of storage currently held (initialized), for memory accounting.
    pub(crate) fn footprint(&self) -> usize {
        self.buf.as_slice().len()
    }
}

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
