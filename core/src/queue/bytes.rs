//! The byte storage under the queues: [`ByteQueue`], contiguous and compacted (outbound
//! frames), and [`Ring`], whose records never split (the packet queue's storage).

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
    pub(super) buf: B,
    /// The oldest byte.
    pub(super) head: usize,
    /// One past the newest byte.
    pub(super) tail: usize,
    /// When the bytes wrap: the end of the older run `head..wrap`; the newer run is `..tail`.
    pub(super) wrap: Option<NonZeroUsize>,
}

impl<B: Buffer> Ring<B> {
    /// The end of the older run, when the bytes wrap (never zero: that run is not empty).
    pub(super) fn wrap_end(&self) -> Option<usize> {
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
    pub(super) fn runs(&self) -> [&[u8]; 2] {
        let newer = if self.wrap.is_some() { &self.buf.as_slice()[..self.tail] } else { &[] };
        [self.as_slice(), newer]
    }

    /// The newest `n` bytes, which the writer keeps contiguous (the open record).
    pub(super) fn newest(&self, n: usize) -> &[u8] {
        &self.buf.as_slice()[self.tail - n..self.tail]
    }

    pub(super) fn newest_mut(&mut self, n: usize) -> &mut [u8] {
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
    pub(super) fn truncate_back(&mut self, n: usize) {
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
    pub(super) fn settle(&mut self) {
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
    pub(super) fn make_room(
        &mut self,
        written: usize,
        record: usize,
        limit: usize,
    ) -> Result<(), CapacityError> {
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
    pub(super) fn make_linear(&mut self) {
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
