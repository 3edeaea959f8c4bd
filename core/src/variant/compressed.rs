//! Godot 4's compressed Variant encoding of RPC arguments, spawn arguments and synchronizer
//! states (`MultiplayerAPI::encode_and_compress_variant` / `decode_and_decompress_variant`).
//!
//! Only the top level is compressed: a `bool` is one byte, `0x01 | value << 7`; an `int` is a
//! meta byte `0x02 | mode << 6` and 1, 2, 4 or 8 bytes (the smallest that holds it); every other
//! value, and everything nested inside containers, uses the plain encoding. Godot 3 has no
//! compressed form: for [`Version::Godot3`] these functions read and write plain Variants,
//! which is what 3.x RPCs carry.

use super::wire::{Reader, Sink, SliceSink};
use super::{DecodeError, EncodeError, VariantRef, Version};

/// The low 6 bits of the first byte: the type.
const TYPE_MASK: u8 = 0x3f;
const BOOL: u8 = 1;
const INT: u8 = 2;

/// Writes the compressed form of a leaf into `out`; returns the length used.
///
/// # Errors
/// As [`VariantRef::encode`].
pub fn encode_ref(value: &VariantRef<'_>, version: Version, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut sink = SliceSink { buf: out, len: 0 };
    encode_leaf(value, version, &mut sink)?;
    sink.finish()
}

/// The compressed scalar forms; `false` when the value takes the plain encoding.
fn encode_scalar(value: &VariantRef<'_>, out: &mut dyn Sink) -> Result<bool, EncodeError> {
    match *value {
        VariantRef::Bool(b) => out.put(&[BOOL | u8::from(b) << 7])?,
        VariantRef::Int(v) => {
            if let Ok(v) = i8::try_from(v) {
                out.put(&[INT])?;
                out.put(&v.to_le_bytes())?;
            } else if let Ok(v) = i16::try_from(v) {
                out.put(&[INT | 1 << 6])?;
                out.put(&v.to_le_bytes())?;
            } else if let Ok(v) = i32::try_from(v) {
                out.put(&[INT | 2 << 6])?;
                out.i32(v)?;
            } else {
                out.put(&[INT | 3 << 6])?;
                out.i64(v)?;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn encode_leaf(value: &VariantRef<'_>, version: Version, out: &mut dyn Sink) -> Result<(), EncodeError> {
    if version.is_godot4() && encode_scalar(value, out)? {
        return Ok(());
    }
    value.encode_to(version, out)
}

/// Decodes one compressed leaf from the start of `bytes`; returns it and the bytes used.
///
/// # Errors
/// As [`VariantRef::decode`].
pub fn decode_ref(bytes: &[u8], version: Version) -> Result<(VariantRef<'_>, usize), DecodeError> {
    let mut r = Reader::new(bytes);
    if let Some(scalar) = decode_scalar(&mut r, version)? {
        return Ok((scalar, r.position()));
    }
    VariantRef::decode(bytes, version)
}

/// A compressed bool or int; `None` (nothing read) when the value is in the plain encoding.
fn decode_scalar<'a>(r: &mut Reader<'a>, version: Version) -> Result<Option<VariantRef<'a>>, DecodeError> {
    if !version.is_godot4() {
        return Ok(None);
    }
    let mut peek = r.clone();
    let meta = peek.u8()?;
    let value = match meta & TYPE_MASK {
        // Only bit 7 carries the value; Godot ignores bit 6.
        BOOL => VariantRef::Bool(meta & 0x80 != 0),
        #[allow(clippy::cast_possible_wrap)] // The payload is two's complement.
        INT => VariantRef::Int(match meta >> 6 {
            0 => i64::from(peek.u8()? as i8),
            1 => i64::from(peek.u16()? as i16),
            2 => i64::from(peek.i32()?),
            _ => peek.i64()?,
        }),
        _ => return Ok(None),
    };
    *r = peek;
    Ok(Some(value))
}

#[cfg(feature = "alloc")]
pub use self::owned::{decode, encode};

#[cfg(feature = "alloc")]
mod owned {
    use alloc::vec::Vec;

    use super::super::decode::Decoder;
    use super::super::encode::encode_value;
    use super::super::wire::Reader;
    use super::super::{DecodeError, DecodeOptions, EncodeError, Variant, Version};
    use super::{decode_scalar, encode_scalar};

    /// Appends the compressed form of `value` to `out` (Godot's `encode_and_compress_variant`);
    /// on error `out` is unchanged.
    ///
    /// # Errors
    /// As [`Variant::encode`].
    pub fn encode(value: &Variant, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = match value.as_ref() {
            Some(leaf) if version.is_godot4() && encode_scalar(&leaf, out)? => Ok(()),
            _ => encode_value(value, version, out, 0),
        };
        result.inspect_err(|_| out.truncate(start))
    }

    /// Decodes one compressed value from the start of `bytes` (Godot's
    /// `decode_and_decompress_variant`); returns it and the bytes used.
    ///
    /// # Errors
    /// As [`Variant::from_bytes`].
    pub fn decode(bytes: &[u8], options: &DecodeOptions) -> Result<(Variant, usize), DecodeError> {
        let mut r = Reader::new(bytes);
        if let Some(scalar) = decode_scalar(&mut r, options.version)? {
            return Ok((scalar.into(), r.position()));
        }
        let mut decoder = Decoder { options, budget: options.budget };
        let value = decoder.value(&mut r)?;
        Ok((value, r.position()))
    }
}
