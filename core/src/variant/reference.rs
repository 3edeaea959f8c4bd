//! [`VariantRef`]: the Variant types whose bodies have a fixed shape, borrowed, without `alloc`.

use super::math::{Ints, Reals};
use super::wire::{FLAG_64, Reader, Sink, SliceSink, pad};
use super::{
    Aabb, Basis, Color, DecodeError, EncodeError, Plane, Projection, Quaternion, Rect2, Rect2i, Transform2D,
    Transform3D, VariantType, Vector2, Vector2i, Vector3, Vector3i, Vector4, Vector4i, Version,
};

/// A Variant that needs no allocation: Godot's scalar, math, string, id and byte-array types,
/// borrowing text and bytes from the input.
///
/// It mirrors Godot's `Variant` for those types; containers, `NodePath`, the other packed
/// arrays and full objects need [`Variant`](super::Variant) (feature `alloc`). Encoding writes
/// exactly Godot's `var_to_bytes` bytes into caller storage.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)] // Each variant holds the Godot type of the same name.
pub enum VariantRef<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(&'a str),
    Vector2(Vector2),
    Vector2i(Vector2i),
    Rect2(Rect2),
    Rect2i(Rect2i),
    Vector3(Vector3),
    Vector3i(Vector3i),
    Transform2D(Transform2D),
    Vector4(Vector4),
    Vector4i(Vector4i),
    Plane(Plane),
    Quaternion(Quaternion),
    Aabb(Aabb),
    Basis(Basis),
    Transform3D(Transform3D),
    Projection(Projection),
    Color(Color),
    StringName(&'a str),
    /// An `RID` by its id (3.x sends no id: it decodes as 0).
    Rid(u64),
    /// An `Object` sent by instance id; Godot decodes it as an `EncodedObjectAsID` (0: a null
    /// object, which Godot encodes as `Nil`).
    ObjectId(u64),
    /// A `Callable`; Godot sends no body and always decodes an empty one.
    Callable,
    /// A `Signal`: its name and the instance id of its object.
    Signal {
        /// The signal name.
        name: &'a str,
        /// The instance id of the object that owns it.
        object: u64,
    },
    PackedByteArray(&'a [u8]),
}

impl<'a> VariantRef<'a> {
    /// The Godot type of this value.
    #[must_use]
    pub const fn variant_type(&self) -> VariantType {
        use VariantType as T;
        match self {
            Self::Nil => T::Nil,
            Self::Bool(_) => T::Bool,
            Self::Int(_) => T::Int,
            Self::Float(_) => T::Float,
            Self::String(_) => T::String,
            Self::Vector2(_) => T::Vector2,
            Self::Vector2i(_) => T::Vector2i,
            Self::Rect2(_) => T::Rect2,
            Self::Rect2i(_) => T::Rect2i,
            Self::Vector3(_) => T::Vector3,
            Self::Vector3i(_) => T::Vector3i,
            Self::Transform2D(_) => T::Transform2D,
            Self::Vector4(_) => T::Vector4,
            Self::Vector4i(_) => T::Vector4i,
            Self::Plane(_) => T::Plane,
            Self::Quaternion(_) => T::Quaternion,
            Self::Aabb(_) => T::Aabb,
            Self::Basis(_) => T::Basis,
            Self::Transform3D(_) => T::Transform3D,
            Self::Projection(_) => T::Projection,
            Self::Color(_) => T::Color,
            Self::StringName(_) => T::StringName,
            Self::Rid(_) => T::Rid,
            Self::ObjectId(_) => T::Object,
            Self::Callable => T::Callable,
            Self::Signal { .. } => T::Signal,
            Self::PackedByteArray(_) => T::PackedByteArray,
        }
    }

    /// Decodes one value from the start of `bytes`, as Godot's `bytes_to_var` (objects by id
    /// only); returns it and the bytes it used. Trailing bytes are left alone.
    ///
    /// # Errors
    /// [`DecodeError`] for malformed input, and [`DecodeError::NeedsAlloc`] for a container,
    /// `NodePath` or packed array other than `PackedByteArray`.
    pub fn decode(bytes: &'a [u8], version: Version) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(bytes);
        let (header, ty) = read_header(&mut r, version)?;
        let value = Self::decode_body(&mut r, header, ty, version)?;
        Ok((value, r.position()))
    }

    /// The body of a leaf type whose header was read.
    pub(crate) fn decode_body(
        r: &mut Reader<'a>,
        header: u32,
        ty: VariantType,
        version: Version,
    ) -> Result<Self, DecodeError> {
        use VariantType as T;
        let flag64 = header & FLAG_64 != 0;
        // 3.x honours the 64-bit flag for INT and REAL only.
        let wide = flag64 && version.is_godot4();
        Ok(match ty {
            T::Nil => Self::Nil,
            T::Bool => Self::Bool(r.u32()? != 0),
            T::Int => Self::Int(if flag64 { r.i64()? } else { i64::from(r.i32()?) }),
            T::Float => Self::Float(if flag64 { r.f64()? } else { f64::from(r.f32()?) }),
            T::String => Self::String(r.vstr()?),
            T::StringName => Self::StringName(r.vstr()?),
            T::Vector2 => Self::Vector2(Reals::decode(r, wide)?),
            T::Rect2 => Self::Rect2(Reals::decode(r, wide)?),
            T::Vector3 => Self::Vector3(Reals::decode(r, wide)?),
            T::Transform2D => Self::Transform2D(Reals::decode(r, wide)?),
            T::Vector4 => Self::Vector4(Reals::decode(r, wide)?),
            T::Plane => Self::Plane(Reals::decode(r, wide)?),
            T::Quaternion => Self::Quaternion(Reals::decode(r, wide)?),
            T::Aabb => Self::Aabb(Reals::decode(r, wide)?),
            T::Basis => Self::Basis(Reals::decode(r, wide)?),
            T::Transform3D => Self::Transform3D(Reals::decode(r, wide)?),
            T::Projection => Self::Projection(Reals::decode(r, wide)?),
            T::Vector2i => Self::Vector2i(Ints::decode(r)?),
            T::Rect2i => Self::Rect2i(Ints::decode(r)?),
            T::Vector3i => Self::Vector3i(Ints::decode(r)?),
            T::Vector4i => Self::Vector4i(Ints::decode(r)?),
            T::Color => Self::Color(Color::decode(r)?),
            T::Rid => Self::Rid(if version.is_godot4() { r.u64()? } else { 0 }),
            T::Object if flag64 => Self::ObjectId(r.u64()?),
            T::Object => return Err(DecodeError::ObjectNotAllowed),
            T::Callable => Self::Callable,
            T::Signal => Self::Signal { name: r.vstr()?, object: r.u64()? },
            T::PackedByteArray => {
                let n = r.length()?;
                let bytes = r.take(n)?;
                // Godot does not require the padding after the last byte of the input.
                r.skip_at_most(pad(n));
                Self::PackedByteArray(bytes)
            }
            T::NodePath
            | T::Dictionary
            | T::Array
            | T::PackedInt32Array
            | T::PackedInt64Array
            | T::PackedFloat32Array
            | T::PackedFloat64Array
            | T::PackedStringArray
            | T::PackedVector2Array
            | T::PackedVector3Array
            | T::PackedColorArray
            | T::PackedVector4Array => return Err(DecodeError::NeedsAlloc(ty)),
        })
    }

    /// Encodes the value into `out` as Godot's `var_to_bytes` does; returns the length used.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] (nothing useful is written then) or
    /// [`EncodeError::NotInVersion`].
    pub fn encode(&self, version: Version, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut sink = SliceSink { buf: out, len: 0 };
        self.encode_to(version, &mut sink)?;
        sink.finish()
    }

    /// The length [`encode`](Self::encode) needs.
    ///
    /// # Errors
    /// [`EncodeError::NotInVersion`] or [`EncodeError::TooLong`].
    pub fn encoded_len(&self, version: Version) -> Result<usize, EncodeError> {
        let mut sink = SliceSink { buf: &mut [], len: 0 };
        self.encode_to(version, &mut sink)?;
        Ok(sink.len)
    }

    pub(crate) fn encode_to(&self, version: Version, out: &mut dyn Sink) -> Result<(), EncodeError> {
        let ty = self.variant_type();
        let id = u32::from(ty.id(version).ok_or(EncodeError::NotInVersion(ty))?);
        // Math types go as f64 only when f32 would change them, and never to 3.x.
        let wide = |fits: bool| version.is_godot4() && !fits;
        let header = |flag: bool| if flag { id | FLAG_64 } else { id };
        match *self {
            Self::Nil | Self::Callable => out.u32(id),
            Self::Bool(b) => {
                out.u32(id)?;
                out.u32(u32::from(b))
            }
            Self::Int(v) => match i32::try_from(v) {
                Ok(small) => {
                    out.u32(id)?;
                    out.i32(small)
                }
                Err(_) => {
                    out.u32(header(true))?;
                    out.i64(v)
                }
            },
            Self::Float(v) => {
                #[allow(clippy::cast_possible_truncation)]
                // Godot's own test: f64 whenever the f32 round trip is not equal (NaN included).
                let wide = f64::from(v as f32) != v;
                out.u32(header(wide))?;
                out.real(v, wide)
            }
            Self::String(s) | Self::StringName(s) => {
                out.u32(id)?;
                out.vstr(s.as_bytes())
            }
            Self::Vector2(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Rect2(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Vector3(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Transform2D(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Vector4(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Plane(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Quaternion(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Aabb(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Basis(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Transform3D(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Projection(v) => reals(out, header, &v, wide(v.fits_f32())),
            Self::Vector2i(v) => ints(out, id, &v),
            Self::Rect2i(v) => ints(out, id, &v),
            Self::Vector3i(v) => ints(out, id, &v),
            Self::Vector4i(v) => ints(out, id, &v),
            Self::Color(c) => {
                out.u32(id)?;
                c.encode(out)
            }
            Self::Rid(rid) => {
                out.u32(id)?;
                if version.is_godot4() { out.u64(rid) } else { Ok(()) }
            }
            // Godot sends a null object as Nil.
            Self::ObjectId(0) => out.u32(0),
            Self::ObjectId(object) => {
                out.u32(header(true))?;
                out.u64(object)
            }
            Self::Signal { name, object } => {
                out.u32(id)?;
                out.vstr(name.as_bytes())?;
                out.u64(object)
            }
            Self::PackedByteArray(bytes) => {
                out.u32(id)?;
                out.vstr(bytes)
            }
        }
    }
}

fn reals(
    out: &mut dyn Sink,
    header: impl Fn(bool) -> u32,
    v: &impl Reals,
    wide: bool,
) -> Result<(), EncodeError> {
    out.u32(header(wide))?;
    v.encode(out, wide)
}

fn ints(out: &mut dyn Sink, id: u32, v: &impl Ints) -> Result<(), EncodeError> {
    out.u32(id)?;
    v.encode(out)
}

/// Reads a header and resolves its type id (bits 0–7; bits 8–15 are ignored, as Godot does).
pub(crate) fn read_header(r: &mut Reader<'_>, version: Version) -> Result<(u32, VariantType), DecodeError> {
    let header = r.u32()?;
    let id = header & 0xff;
    let ty = VariantType::from_id(version, id).ok_or(DecodeError::UnknownType(id))?;
    Ok((header, ty))
}
