//! Conversions between [`Variant`] and ordinary Rust types.
//!
//! Into a `Variant`: the scalar types, strings, the math types, byte and number vectors (as
//! the matching packed arrays), `Vec<Variant>` and tuples (as untyped Arrays). Out of a
//! `Variant` (`TryFrom`): the same, exactly: an `int` does not become an `f64`, only a `String`
//! or `StringName` becomes a `String`; Godot's implicit conversions are the caller's choice.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::value::{Array, Dictionary, NodePath, Object, Variant};
use super::{
    Aabb, Basis, Color, Plane, Projection, Quaternion, Rect2, Rect2i, Transform2D, Transform3D, VariantType,
    Vector2, Vector2i, Vector3, Vector3i, Vector4, Vector4i,
};

/// A `Variant` of another type than the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeMismatch {
    /// The type the conversion needs.
    pub expected: VariantType,
    /// The type the value has.
    pub found: VariantType,
}

impl fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected a {:?}, found a {:?}", self.expected, self.found)
    }
}

impl core::error::Error for TypeMismatch {}

macro_rules! both_ways {
    ($($t:ty => $case:ident),+ $(,)?) => {$(
        impl From<$t> for Variant {
            fn from(v: $t) -> Self {
                Self::$case(v)
            }
        }

        impl TryFrom<Variant> for $t {
            type Error = TypeMismatch;
            fn try_from(v: Variant) -> Result<Self, TypeMismatch> {
                match v {
                    Variant::$case(x) => Ok(x),
                    other => Err(TypeMismatch { expected: VariantType::$case, found: other.variant_type() }),
                }
            }
        }
    )+};
}

macro_rules! boxed_both_ways {
    ($($t:ty => $case:ident),+ $(,)?) => {$(
        impl From<$t> for Variant {
            fn from(v: $t) -> Self {
                Self::$case(Box::new(v))
            }
        }

        impl TryFrom<Variant> for $t {
            type Error = TypeMismatch;
            fn try_from(v: Variant) -> Result<Self, TypeMismatch> {
                match v {
                    Variant::$case(x) => Ok(*x),
                    other => Err(TypeMismatch { expected: VariantType::$case, found: other.variant_type() }),
                }
            }
        }
    )+};
}

both_ways!(
    bool => Bool,
    i64 => Int,
    f64 => Float,
    Vector2 => Vector2,
    Vector2i => Vector2i,
    Rect2 => Rect2,
    Rect2i => Rect2i,
    Vector3 => Vector3,
    Vector3i => Vector3i,
    Vector4 => Vector4,
    Vector4i => Vector4i,
    Plane => Plane,
    Quaternion => Quaternion,
    Color => Color,
    Object => Object,
    Vec<u8> => PackedByteArray,
    Vec<i32> => PackedInt32Array,
    Vec<i64> => PackedInt64Array,
    Vec<f32> => PackedFloat32Array,
    Vec<f64> => PackedFloat64Array,
    Vec<String> => PackedStringArray,
    Vec<Vector2> => PackedVector2Array,
    Vec<Vector3> => PackedVector3Array,
    Vec<Color> => PackedColorArray,
    Vec<Vector4> => PackedVector4Array,
);

boxed_both_ways!(
    Transform2D => Transform2D,
    Aabb => Aabb,
    Basis => Basis,
    Transform3D => Transform3D,
    Projection => Projection,
    NodePath => NodePath,
    Array => Array,
    Dictionary => Dictionary,
);

macro_rules! int_into {
    ($($t:ty),+) => {$(
        impl From<$t> for Variant {
            fn from(v: $t) -> Self {
                Self::Int(v.into())
            }
        }

        impl TryFrom<Variant> for $t {
            type Error = TypeMismatch;
            /// An `int` that fits; any other value (or an `int` out of range) is a mismatch.
            fn try_from(v: Variant) -> Result<Self, TypeMismatch> {
                let found = v.variant_type();
                i64::try_from(v)
                    .ok()
                    .and_then(|i| <$t>::try_from(i).ok())
                    .ok_or(TypeMismatch { expected: VariantType::Int, found })
            }
        }
    )+};
}

int_into!(i8, i16, i32, u8, u16, u32);

impl From<f32> for Variant {
    fn from(v: f32) -> Self {
        Self::Float(v.into())
    }
}

impl From<&str> for Variant {
    fn from(v: &str) -> Self {
        Self::String(v.into())
    }
}

impl From<String> for Variant {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}

impl From<&[u8]> for Variant {
    fn from(v: &[u8]) -> Self {
        Self::PackedByteArray(v.into())
    }
}

impl From<Vec<Variant>> for Variant {
    fn from(items: Vec<Variant>) -> Self {
        Self::Array(Box::new(Array { items, ..Array::default() }))
    }
}

impl<T: Into<Variant>> From<Option<T>> for Variant {
    /// `None` is `Nil`.
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Nil, Into::into)
    }
}

impl TryFrom<Variant> for String {
    type Error = TypeMismatch;
    /// A `String` or a `StringName`.
    fn try_from(v: Variant) -> Result<Self, TypeMismatch> {
        match v {
            Variant::String(s) | Variant::StringName(s) => Ok(s),
            other => Err(TypeMismatch { expected: VariantType::String, found: other.variant_type() }),
        }
    }
}

impl TryFrom<Variant> for Vec<Variant> {
    type Error = TypeMismatch;
    /// The elements of an Array, typed or not.
    fn try_from(v: Variant) -> Result<Self, TypeMismatch> {
        Array::try_from(v).map(|a| a.items)
    }
}

macro_rules! tuples {
    ($(($($name:ident),+) = $n:expr;)+) => {$(
        impl<$($name: Into<Variant>),+> From<($($name,)+)> for Variant {
            /// An untyped Array of the tuple's elements.
            #[allow(non_snake_case)]
            fn from(($($name,)+): ($($name,)+)) -> Self {
                Self::from(alloc::vec![$($name.into()),+])
            }
        }

        impl<$($name: TryFrom<Variant, Error = TypeMismatch>),+> TryFrom<Variant> for ($($name,)+) {
            type Error = TypeMismatch;
            /// An Array of exactly that many elements, each converting.
            #[allow(non_snake_case)]
            fn try_from(v: Variant) -> Result<Self, TypeMismatch> {
                let found = v.variant_type();
                let items = Vec::<Variant>::try_from(v)?;
                let Ok([$($name),+]) = <[Variant; $n]>::try_from(items) else {
                    return Err(TypeMismatch { expected: VariantType::Array, found });
                };
                Ok(($($name::try_from($name)?,)+))
            }
        }
    )+};
}

tuples! {
    (A) = 1;
    (A, B) = 2;
    (A, B, C) = 3;
    (A, B, C, D) = 4;
    (A, B, C, D, E) = 5;
    (A, B, C, D, E, F) = 6;
}
