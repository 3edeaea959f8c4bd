//! Reading and writing the little-endian fields of the Variant format.

use super::{DecodeError, EncodeError};

/// Header bit 16: INT/FLOAT (and 4.x math types) are 64-bit; OBJECT is sent as an id.
pub(crate) const FLAG_64: u32 = 1 << 16;

/// A cursor over input bytes; every read checks the remaining length first.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Bytes read so far.
    pub(crate) const fn position(&self) -> usize {
        self.pos
    }

    pub(crate) const fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// Skips up to `n` bytes: padding that may be missing at the end of the input.
    pub(crate) fn skip_at_most(&mut self, n: usize) {
        self.pos += n.min(self.remaining());
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        self.array().map(i32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_le_bytes)
    }

    pub(crate) fn f32(&mut self) -> Result<f32, DecodeError> {
        self.array().map(f32::from_le_bytes)
    }

    pub(crate) fn f64(&mut self) -> Result<f64, DecodeError> {
        self.array().map(f64::from_le_bytes)
    }

    /// A real component: f64 when `wide`, else f32 widened.
    pub(crate) fn real(&mut self, wide: bool) -> Result<f64, DecodeError> {
        if wide { self.f64() } else { self.f32().map(f64::from) }
    }

    /// A non-negative 31-bit length or count (Godot reads them as `int32_t`).
    pub(crate) fn length(&mut self) -> Result<usize, DecodeError> {
        let n = self.i32()?;
        usize::try_from(n).map_err(|_| DecodeError::InvalidLength)
    }

    /// A `vstr`: `u32` length, the bytes, and zero to three padding bytes that must be present.
    pub(crate) fn vstr(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.length()?;
        let padded = len.checked_add(pad(len)).ok_or(DecodeError::InvalidLength)?;
        let bytes = self.take(padded)?;
        text(&bytes[..len])
    }
}

/// Zero to three bytes that bring `len` to a multiple of 4.
pub(crate) const fn pad(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Godot's reading of UTF-8 text: cut at the first NUL, strict UTF-8, one leading BOM dropped.
pub(crate) fn text(bytes: &[u8]) -> Result<&str, DecodeError> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let s = core::str::from_utf8(&bytes[..end]).map_err(|_| DecodeError::InvalidUtf8)?;
    Ok(s.strip_prefix('\u{feff}').unwrap_or(s))
}

/// Where encoded bytes go: caller storage, a `Vec`, or nowhere (to measure).
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError>;

    fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    fn i32(&mut self, v: i32) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    fn u64(&mut self, v: u64) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    fn i64(&mut self, v: i64) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    fn f32(&mut self, v: f32) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    fn f64(&mut self, v: f64) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    /// A real component, f64 when `wide`.
    #[allow(clippy::cast_possible_truncation)] // Narrowing is the f32 encoding itself.
    fn real(&mut self, v: f64, wide: bool) -> Result<(), EncodeError> {
        if wide { self.f64(v) } else { self.f32(v as f32) }
    }

    /// A length or count as Godot's `int32_t`.
    fn length(&mut self, n: usize) -> Result<(), EncodeError> {
        self.u32(count(n)?)
    }

    fn zeros(&mut self, n: usize) -> Result<(), EncodeError> {
        self.put(&[0; 3][..n])
    }

    /// A `vstr`: length, bytes, zero padding.
    fn vstr(&mut self, s: &[u8]) -> Result<(), EncodeError> {
        self.length(s.len())?;
        self.put(s)?;
        self.zeros(pad(s.len()))
    }
}

/// `n` as a 31-bit count.
pub(crate) fn count(n: usize) -> Result<u32, EncodeError> {
    u32::try_from(n).ok().filter(|&n| n <= i32::MAX as u32).ok_or(EncodeError::TooLong)
}

/// Writes into a caller's slice, counting what did not fit.
pub(crate) struct SliceSink<'a> {
    pub(crate) buf: &'a mut [u8],
    pub(crate) len: usize,
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.len.checked_add(bytes.len()).ok_or(EncodeError::TooLong)?;
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
        Ok(())
    }
}

impl SliceSink<'_> {
    /// The length written, or `BufferTooSmall` with the length needed.
    pub(crate) fn finish(self) -> Result<usize, EncodeError> {
        if self.len <= self.buf.len() {
            Ok(self.len)
        } else {
            Err(EncodeError::BufferTooSmall { needed: self.len })
        }
    }
}

#[cfg(feature = "alloc")]
impl Sink for alloc::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// Whether `v` survives a round trip through f32 (NaN counts as surviving: standard Godot builds
/// send every math component as f32).
pub(crate) fn fits_f32(v: f64) -> bool {
    #[allow(clippy::cast_possible_truncation)]
    let narrow = v as f32;
    v.is_nan() || f64::from(narrow).to_bits() == v.to_bits()
}
