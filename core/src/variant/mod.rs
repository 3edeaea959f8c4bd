//! Godot's binary Variant encoding (`var_to_bytes` / `bytes_to_var`, `PacketPeer.put_var`,
//! `core/io/marshalls`), for Godot 4.x and 3.x, and 4.x's compressed RPC-argument form.
//!
//! Every value is a little-endian `u32` header (bits 0–7 the type id, bits 16+ flags) and a
//! body padded to a multiple of 4 bytes. The type ids and a few bodies differ between 3.x and
//! 4.x, and 4.x grew typed Array (4.2) and typed Dictionary (4.4) headers and
//! `PackedVector4Array` (4.3), so every entry point takes a [`Version`].
//!
//! Two layers:
//!
//! * [`VariantRef`] (no allocation): every type whose body has a fixed shape — scalars, strings
//!   and `StringName`s as borrowed `&str`, the math types, `RID`, objects sent by id,
//!   `Callable`, `Signal` and `PackedByteArray` as `&[u8]`. It encodes into caller storage and
//!   decodes without copying.
//! * [`Variant`] (feature `alloc`): every type, containers included, decoded under
//!   [`DecodeOptions`]: a nesting limit (1024, as 4.x), a budget on the memory the decoded value
//!   may take, strict UTF-8, every length checked against the input before anything is
//!   allocated, and full objects refused unless allowed.
//!
//! [`compressed`] is the 4.x encoding of RPC arguments (1-byte bool, 1–9-byte int, plain for
//! the rest).
//!
//! Decoding never panics, whatever the bytes. Godot's leniencies that are harmless are kept
//! (header byte 1 and count bit 31 ignored, `PackedByteArray` padding optional at the end,
//! strings cut at the first NUL, a leading BOM dropped, trailing bytes left to the caller);
//! its bugs are not (3.2.3 recurses without limit; 4.x reads a null `Object` it cannot
//! decode).

pub mod compressed;
mod error;
mod math;
mod reference;
mod wire;

#[cfg(feature = "alloc")]
mod convert;
#[cfg(feature = "alloc")]
mod decode;
#[cfg(feature = "alloc")]
mod encode;
#[cfg(feature = "alloc")]
mod order;
#[cfg(feature = "alloc")]
mod value;

#[cfg(test)]
mod tests;

pub use error::{DecodeError, EncodeError};
pub use math::{
    Aabb, Basis, Color, Plane, Projection, Quaternion, Rect2, Rect2i, Transform2D, Transform3D, Vector2,
    Vector2i, Vector3, Vector3i, Vector4, Vector4i,
};
pub use reference::VariantRef;

#[cfg(feature = "alloc")]
pub use convert::{
    __array, __dictionary, __element, __elements, __field, ConvertError, ConvertErrorKind, FromVariant,
    PathPart, ToVariant, TypeMismatch,
};
#[cfg(feature = "alloc")]
pub use decode::{DEFAULT_BUDGET, DecodeOptions, MAX_DEPTH};
#[cfg(feature = "alloc")]
pub use value::{Array, ContainerType, Dictionary, FullObject, NodePath, Object, Signal, Variant};

/// The Godot release whose encoding is read or written.
///
/// 3.x and 4.x number their types differently; within 4.x, typed Array headers need 4.2,
/// `PackedVector4Array` 4.3 and typed Dictionary headers 4.4. Godot itself promises no
/// compatibility between minor versions, so pick the exact one of the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Godot 3.x (`var2bytes`, verified against 3.2.3).
    Godot3,
    /// Godot 4.`minor` (`var_to_bytes`, verified against 4.6.3).
    Godot4 {
        /// The minor version: 0 for 4.0, 6 for 4.6.
        minor: u8,
    },
}

impl Version {
    /// Godot 4.6, the newest 4.x release this encoding was verified against.
    pub const GODOT_4_6: Self = Self::Godot4 { minor: 6 };

    /// Whether this is a 4.x version.
    #[must_use]
    pub const fn is_godot4(self) -> bool {
        matches!(self, Self::Godot4 { .. })
    }

    /// Typed Array headers (4.2+, godotengine/godot#78219).
    #[must_use]
    pub const fn has_typed_arrays(self) -> bool {
        matches!(self, Self::Godot4 { minor } if minor >= 2)
    }

    /// Typed Dictionary headers (4.4+, godotengine/godot#98120).
    #[must_use]
    pub const fn has_typed_dictionaries(self) -> bool {
        matches!(self, Self::Godot4 { minor } if minor >= 4)
    }

    /// `PackedVector4Array` (4.3+).
    #[must_use]
    pub const fn has_packed_vector4(self) -> bool {
        matches!(self, Self::Godot4 { minor } if minor >= 3)
    }
}

/// A Variant type, numbered as Godot 4 numbers `Variant::Type`; [`VariantType::id`] gives the
/// wire id of any version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
#[allow(missing_docs)] // Each variant is the Godot type of the same name.
pub enum VariantType {
    Nil = 0,
    Bool,
    Int,
    Float,
    String,
    Vector2,
    Vector2i,
    Rect2,
    Rect2i,
    Vector3,
    Vector3i,
    Transform2D,
    Vector4,
    Vector4i,
    Plane,
    Quaternion,
    Aabb,
    Basis,
    Transform3D,
    Projection,
    Color,
    StringName,
    NodePath,
    Rid,
    Object,
    Callable,
    Signal,
    Dictionary,
    Array,
    PackedByteArray,
    PackedInt32Array,
    PackedInt64Array,
    PackedFloat32Array,
    PackedFloat64Array,
    PackedStringArray,
    PackedVector2Array,
    PackedVector3Array,
    PackedColorArray,
    PackedVector4Array,
}

/// Godot 4 type ids in 4.x order; the index is the id.
const GODOT4_TYPES: [VariantType; 39] = {
    use VariantType as T;
    [
        T::Nil,
        T::Bool,
        T::Int,
        T::Float,
        T::String,
        T::Vector2,
        T::Vector2i,
        T::Rect2,
        T::Rect2i,
        T::Vector3,
        T::Vector3i,
        T::Transform2D,
        T::Vector4,
        T::Vector4i,
        T::Plane,
        T::Quaternion,
        T::Aabb,
        T::Basis,
        T::Transform3D,
        T::Projection,
        T::Color,
        T::StringName,
        T::NodePath,
        T::Rid,
        T::Object,
        T::Callable,
        T::Signal,
        T::Dictionary,
        T::Array,
        T::PackedByteArray,
        T::PackedInt32Array,
        T::PackedInt64Array,
        T::PackedFloat32Array,
        T::PackedFloat64Array,
        T::PackedStringArray,
        T::PackedVector2Array,
        T::PackedVector3Array,
        T::PackedColorArray,
        T::PackedVector4Array,
    ]
};

/// Godot 3 type ids (`NIL` … `POOL_COLOR_ARRAY`); the index is the id. `REAL` is
/// [`VariantType::Float`], `QUAT` [`VariantType::Quaternion`], `TRANSFORM`
/// [`VariantType::Transform3D`], `POOL_INT_ARRAY` / `POOL_REAL_ARRAY` the 32-bit packed arrays.
const GODOT3_TYPES: [VariantType; 27] = {
    use VariantType as T;
    [
        T::Nil,
        T::Bool,
        T::Int,
        T::Float,
        T::String,
        T::Vector2,
        T::Rect2,
        T::Vector3,
        T::Transform2D,
        T::Plane,
        T::Quaternion,
        T::Aabb,
        T::Basis,
        T::Transform3D,
        T::Color,
        T::NodePath,
        T::Rid,
        T::Object,
        T::Dictionary,
        T::Array,
        T::PackedByteArray,
        T::PackedInt32Array,
        T::PackedFloat32Array,
        T::PackedStringArray,
        T::PackedVector2Array,
        T::PackedVector3Array,
        T::PackedColorArray,
    ]
};

impl VariantType {
    /// The type with wire id `id` in `version` (`VARIANT_MAX` is 27 in 3.x, 38 in 4.0–4.2 and
    /// 39 from 4.3).
    #[must_use]
    pub fn from_id(version: Version, id: u32) -> Option<Self> {
        let table: &[Self] = match version {
            Version::Godot3 => &GODOT3_TYPES,
            Version::Godot4 { .. } if version.has_packed_vector4() => &GODOT4_TYPES,
            Version::Godot4 { .. } => &GODOT4_TYPES[..38],
        };
        table.get(usize::try_from(id).ok()?).copied()
    }

    /// This type's wire id in `version`, or `None` when that version has no such type.
    #[must_use]
    pub fn id(self, version: Version) -> Option<u8> {
        let table: &[Self] = match version {
            Version::Godot3 => &GODOT3_TYPES,
            Version::Godot4 { .. } if version.has_packed_vector4() => &GODOT4_TYPES,
            Version::Godot4 { .. } => &GODOT4_TYPES[..38],
        };
        let index = table.iter().position(|&t| t == self)?;
        u8::try_from(index).ok()
    }
}
