//! Byte storage behind every queue: heap-backed and growing on demand, or fixed-size.
//!
//! A machine never allocates from a length the peer claims: storage grows only when bytes have
//! actually arrived (or the application queued them), and never beyond the limit the machine
//! passes in. Fixed storage works without `alloc`; its capacity is a const generic.

use core::fmt;

/// Contiguous, initialized byte storage that can grow up to a limit.
///
/// The slice returned by [`as_slice`](Buffer::as_slice) is the whole initialized region; queues
/// built on top keep their own read and write positions inside it.
pub trait Buffer {
    /// The initialized region.
    fn as_slice(&self) -> &[u8];
    /// The initialized region, mutably.
    fn as_mut_slice(&mut self) -> &mut [u8];
    /// Grows the initialized region to at least `min_len` bytes and at most `limit` bytes.
    ///
    /// Implementations may grow by more than asked (amortized doubling) but never beyond
    /// `limit`.
    ///
    /// # Errors
    /// [`CapacityError`] when `min_len` exceeds `limit` or what the storage can hold, or when the
    /// allocator refuses.
    fn try_grow(&mut self, min_len: usize, limit: usize) -> Result<(), CapacityError>;
    /// Gives back memory beyond the first `len` bytes, where the storage can (heap storage).
    fn shrink(&mut self, len: usize);
    /// The most bytes this storage can ever hold, whatever limit it is given.
    fn max_len(&self) -> usize {
        usize::MAX
    }
}

/// A buffer could not grow to the size asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityError {
    /// The size that was asked for.
    pub requested: usize,
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buffer cannot grow to {} bytes", self.requested)
    }
}

impl core::error::Error for CapacityError {}

/// Fixed storage of `N` bytes, for targets without an allocator.
pub struct Fixed<const N: usize>(pub [u8; N]);

impl<const N: usize> Default for Fixed<N> {
    fn default() -> Self {
        Self([0; N])
    }
}

impl<const N: usize> fmt::Debug for Fixed<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fixed<{N}>")
    }
}

impl<const N: usize> Buffer for Fixed<N> {
    fn as_slice(&self) -> &[u8] {
        &self.0
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }

    fn try_grow(&mut self, min_len: usize, limit: usize) -> Result<(), CapacityError> {
        if min_len <= N && min_len <= limit { Ok(()) } else { Err(CapacityError { requested: min_len }) }
    }

    fn shrink(&mut self, _len: usize) {}

    fn max_len(&self) -> usize {
        N
    }
}

#[cfg(feature = "alloc")]
impl Buffer for alloc::vec::Vec<u8> {
    fn as_slice(&self) -> &[u8] {
        self
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        self
    }

    fn try_grow(&mut self, min_len: usize, limit: usize) -> Result<(), CapacityError> {
        if min_len <= self.len() {
            return Ok(());
        }
        if min_len > limit {
            return Err(CapacityError { requested: min_len });
        }
        // Small first step, then doubling: an idle connection holds nothing, a chatty one
        // reaches a steady size after a few steps.
        let target = min_len.max(self.len().saturating_mul(2)).max(256).min(limit);
        self.try_reserve_exact(target - self.len()).map_err(|_| CapacityError { requested: target })?;
        self.resize(target, 0);
        Ok(())
    }

    fn shrink(&mut self, len: usize) {
        if len < self.len() {
            self.truncate(len);
            self.shrink_to(len);
        }
    }
}

/// The pair of buffers a connection uses: inbound messages and outbound frames.
pub trait Storage {
    /// Received messages waiting for the application (and the opening handshake head).
    type Inbound: Buffer + Default;
    /// Encoded frames waiting for the transport.
    type Outbound: Buffer + Default;

    /// Swaps the two buffers when they are of one kind (heap storage), so that a received
    /// message can be sent on from where it lies; returns whether it did. Fixed storage,
    /// whose two sides may differ in size, does not. Godot has no counterpart (its peers copy
    /// packets in and out of fixed ring buffers).
    fn exchange(_inbound: &mut Self::Inbound, _outbound: &mut Self::Outbound) -> bool {
        false
    }
}

/// Heap storage that grows on demand up to the configured limits and shrinks when idle.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, Copy, Default)]
pub struct VecStorage;

#[cfg(feature = "alloc")]
impl Storage for VecStorage {
    type Inbound = alloc::vec::Vec<u8>;
    type Outbound = alloc::vec::Vec<u8>;

    fn exchange(inbound: &mut Self::Inbound, outbound: &mut Self::Outbound) -> bool {
        core::mem::swap(inbound, outbound);
        true
    }
}

/// Fixed storage for targets without an allocator: `IN` bytes inbound, `OUT` bytes outbound.
///
/// `IN` bounds the opening handshake and the largest message (plus 4 bytes of bookkeeping per
/// queued message); `OUT` bounds the frames queued for the transport.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedStorage<const IN: usize = 8192, const OUT: usize = 8192>;

impl<const IN: usize, const OUT: usize> Storage for FixedStorage<IN, OUT> {
    type Inbound = Fixed<IN>;
    type Outbound = Fixed<OUT>;
}

/// Heap storage for the crate's own tests, which run with or without the `alloc` feature.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct VecStorageForTests;

#[cfg(test)]
impl Storage for VecStorageForTests {
    type Inbound = std::vec::Vec<u8>;
    type Outbound = std::vec::Vec<u8>;

    fn exchange(inbound: &mut Self::Inbound, outbound: &mut Self::Outbound) -> bool {
        core::mem::swap(inbound, outbound);
        true
    }
}

#[cfg(all(test, not(feature = "alloc")))]
impl Buffer for std::vec::Vec<u8> {
    fn as_slice(&self) -> &[u8] {
        self
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        self
    }

    fn try_grow(&mut self, min_len: usize, limit: usize) -> Result<(), CapacityError> {
        if min_len <= self.len() {
            return Ok(());
        }
        if min_len > limit {
            return Err(CapacityError { requested: min_len });
        }
        let target = min_len.max(self.len().saturating_mul(2)).max(256).min(limit);
        self.resize(target, 0);
        Ok(())
    }

    fn shrink(&mut self, len: usize) {
        self.truncate(len);
        self.shrink_to(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_never_exceeds_its_size() {
        let mut b = Fixed::<16>::default();
        assert!(b.try_grow(16, 100).is_ok());
        assert_eq!(b.try_grow(17, 100), Err(CapacityError { requested: 17 }));
        assert_eq!(b.as_slice().len(), 16);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn vec_grows_lazily_and_respects_limit() {
        let mut v = alloc::vec::Vec::new();
        assert_eq!(v.capacity(), 0);
        v.try_grow(10, 1000).unwrap();
        assert_eq!(v.len(), 256);
        v.try_grow(300, 1000).unwrap();
        assert_eq!(v.len(), 512);
        v.try_grow(900, 1000).unwrap();
        assert_eq!(v.len(), 1000);
        assert!(v.try_grow(1001, 1000).is_err());
        v.shrink(0);
        assert_eq!(v.capacity(), 0);
    }
}
