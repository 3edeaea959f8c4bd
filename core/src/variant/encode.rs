//! Encoding a [`Variant`] (Godot's `encode_variant`, `var_to_bytes`).

use alloc::vec::Vec;

use super::decode::MAX_DEPTH;
use super::math::Reals;
use super::value::{Array, ContainerType, Dictionary, FullObject, NodePath, Object, Variant};
use super::wire::{FLAG_64, Sink, SliceSink, count, pad};
use super::{EncodeError, VariantType, Version};

/// Bit 31 of a `NodePath` name count: the current format.
const NODE_PATH_NEW_FORMAT: u32 = 0x8000_0000;

impl Variant {
    /// Godot's `var_to_bytes` (and `var_to_bytes_with_objects` for [`Object::Full`]): the
    /// encoding of this value for `version`.
    ///
    /// # Errors
    /// [`EncodeError::NotInVersion`] for a type `version` lacks, [`EncodeError::TooDeep`] past
    /// [`MAX_DEPTH`] levels (Godot returns an empty array there), [`EncodeError::TooLong`].
    pub fn to_bytes(&self, version: Version) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(version, &mut out)?;
        Ok(out)
    }

    /// Appends the encoding to `out` (`PacketPeer.put_var`'s body); on error `out` is unchanged.
    ///
    /// # Errors
    /// As [`to_bytes`](Self::to_bytes).
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        encode_value(self, version, out, 0).inspect_err(|_| out.truncate(start))
    }

    /// Encodes into caller storage; returns the length used.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] with the length needed, or as [`to_bytes`](Self::to_bytes).
    pub fn encode_into(&self, version: Version, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut sink = SliceSink { buf: out, len: 0 };
        encode_value(self, version, &mut sink, 0)?;
        sink.finish()
    }

    /// The length of the encoding, without writing it.
    ///
    /// # Errors
    /// As [`to_bytes`](Self::to_bytes).
    pub fn encoded_len(&self, version: Version) -> Result<usize, EncodeError> {
        let mut sink = SliceSink { buf: &mut [], len: 0 };
        encode_value(self, version, &mut sink, 0)?;
        Ok(sink.len)
    }
}

fn type_id(ty: VariantType, version: Version) -> Result<u32, EncodeError> {
    ty.id(version).map(u32::from).ok_or(EncodeError::NotInVersion(ty))
}

/// The recursive path: the elements of containers here, their headers and everything that
/// cannot nest in `#[inline(never)]` helpers, so each level's frame stays small.
pub(crate) fn encode_value(
    v: &Variant,
    version: Version,
    out: &mut dyn Sink,
    depth: usize,
) -> Result<(), EncodeError> {
    if depth > MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    match v {
        Variant::Array(a) => {
            array_header(a, version, out)?;
            for item in &a.items {
                encode_value(item, version, out, depth + 1)?;
            }
        }
        Variant::Dictionary(d) => {
            dictionary_header(d, version, out)?;
            for (key, value) in &d.entries {
                encode_value(key, version, out, depth + 1)?;
                encode_value(value, version, out, depth + 1)?;
            }
        }
        Variant::Object(Object::Full(object)) => {
            object_header(object, version, out)?;
            for (name, value) in &object.properties {
                out.vstr(name.as_bytes())?;
                encode_value(value, version, out, depth + 1)?;
            }
        }
        _ => encode_flat(v, version, out)?,
    }
    Ok(())
}

#[inline(never)]
fn object_header(object: &FullObject, version: Version, out: &mut dyn Sink) -> Result<(), EncodeError> {
    out.u32(type_id(VariantType::Object, version)?)?;
    out.vstr(object.class.as_bytes())?;
    out.length(object.properties.len())
}

#[inline(never)]
fn encode_flat(v: &Variant, version: Version, out: &mut dyn Sink) -> Result<(), EncodeError> {
    if let Some(leaf) = v.as_ref() {
        return leaf.encode_to(version, out);
    }
    let id = type_id(v.variant_type(), version)?;
    match v {
        Variant::NodePath(path) => node_path(path, id, out),
        Variant::PackedInt32Array(a) => packed(out, id, a, |out, &x| out.i32(x)),
        Variant::PackedInt64Array(a) => packed(out, id, a, |out, &x| out.i64(x)),
        Variant::PackedFloat32Array(a) => packed(out, id, a, |out, &x| out.f32(x)),
        Variant::PackedFloat64Array(a) => packed(out, id, a, |out, &x| out.f64(x)),
        Variant::PackedStringArray(a) => packed(out, id, a, |out, s| {
            // Each element's length counts a NUL terminator, which is sent.
            let len = s.len().checked_add(1).ok_or(EncodeError::TooLong)?;
            out.length(len)?;
            out.put(s.as_bytes())?;
            out.put(&[0])?;
            out.zeros(pad(len))
        }),
        Variant::PackedVector2Array(a) => packed_reals(out, id, version, a),
        Variant::PackedVector3Array(a) => packed_reals(out, id, version, a),
        Variant::PackedVector4Array(a) => packed_reals(out, id, version, a),
        Variant::PackedColorArray(a) => packed(out, id, a, |out, c| c.encode(out)),
        // Leaves were written above; containers and full objects by `encode_value`.
        _ => Err(EncodeError::NotInVersion(v.variant_type())),
    }
}

fn node_path(path: &NodePath, id: u32, out: &mut dyn Sink) -> Result<(), EncodeError> {
    out.u32(id)?;
    out.u32(count(path.names.len())? | NODE_PATH_NEW_FORMAT)?;
    out.length(path.subnames.len())?;
    out.u32(u32::from(path.absolute))?;
    path.names.iter().chain(&path.subnames).try_for_each(|s| out.vstr(s.as_bytes()))
}

fn packed<T>(
    out: &mut dyn Sink,
    id: u32,
    items: &[T],
    mut each: impl FnMut(&mut dyn Sink, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    out.u32(id)?;
    out.length(items.len())?;
    items.iter().try_for_each(|item| each(out, item))
}

fn packed_reals<T: Reals>(
    out: &mut dyn Sink,
    id: u32,
    version: Version,
    items: &[T],
) -> Result<(), EncodeError> {
    let wide = version.is_godot4() && !items.iter().all(Reals::fits_f32);
    packed(out, if wide { id | FLAG_64 } else { id }, items, |out, v| v.encode(out, wide))
}

/// The kind (bits) and the trailing type field of a container element type.
fn container_kind(ty: &ContainerType) -> u32 {
    match ty {
        ContainerType::Variant => 0,
        ContainerType::Builtin(_) => 1,
        ContainerType::Class(_) => 2,
        ContainerType::Script(_) => 3,
    }
}

fn container_type(ty: &ContainerType, version: Version, out: &mut dyn Sink) -> Result<(), EncodeError> {
    match ty {
        ContainerType::Variant => Ok(()),
        ContainerType::Builtin(t) => out.u32(type_id(*t, version)?),
        ContainerType::Class(name) | ContainerType::Script(name) => out.vstr(name.as_bytes()),
    }
}

#[inline(never)]
fn array_header(a: &Array, version: Version, out: &mut dyn Sink) -> Result<(), EncodeError> {
    let id = type_id(VariantType::Array, version)?;
    let kind = if version.has_typed_arrays() { container_kind(&a.element_type) } else { 0 };
    out.u32(id | kind << 16)?;
    if kind != 0 {
        container_type(&a.element_type, version, out)?;
    }
    out.length(a.items.len())
}

#[inline(never)]
fn dictionary_header(d: &Dictionary, version: Version, out: &mut dyn Sink) -> Result<(), EncodeError> {
    let id = type_id(VariantType::Dictionary, version)?;
    let typed = version.has_typed_dictionaries();
    let (key, value) =
        if typed { (container_kind(&d.key_type), container_kind(&d.value_type)) } else { (0, 0) };
    out.u32(id | key << 16 | value << 18)?;
    if key != 0 {
        container_type(&d.key_type, version, out)?;
    }
    if value != 0 {
        container_type(&d.value_type, version, out)?;
    }
    out.length(d.entries.len())
}
