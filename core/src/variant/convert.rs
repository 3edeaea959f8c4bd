//! Conversions between [`Variant`] and ordinary Rust types.
//!
//! Into a `Variant`: the scalar types, strings, the math types, byte and number vectors (as
//! the matching packed arrays), `Vec<Variant>` and tuples (as untyped Arrays). Out of a
//! `Variant` (`TryFrom`): the same, exactly: an `int` does not become an `f64`, only a `String`
//! or `StringName` becomes a `String`; Godot's implicit conversions are the caller's choice.
//!
//! [`ToVariant`] and [`FromVariant`] go further, for application data: `Option` (`null`),
//! `Vec` and slices (the packed array where Godot has one, else an Array), `BTreeMap`
//! (Dictionary), tuples (Array), and structs declared with
//! [`impl_variant_dictionary!`](crate::impl_variant_dictionary) (a Dictionary keyed by field
//! name) or [`impl_variant_array!`](crate::impl_variant_array) (an Array in field order).
//! A failure says where: `at .items[0].count: expected a Int, found a String`.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::value::{Array, Dictionary, NodePath, Object, Variant};
use super::{
    Aabb, Basis, Color, Plane, Projection, Quaternion, Rect2, Rect2i, Transform2D, Transform3D, VariantType,
    Vector2, Vector2i, Vector3, Vector3i, Vector4, Vector4i,
};

/// A `Variant` of another type than the one asked for (or, when both types are the same, an
/// `int` out of range of the integer asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeMismatch {
    /// The type the conversion needs.
    pub expected: VariantType,
    /// The type the value has.
    pub found: VariantType,
}

impl fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.expected == self.found {
            // A narrowing conversion (an `int` into a `u8`).
            write!(f, "{:?} out of range", self.found)
        } else {
            write!(f, "expected a {:?}, found a {:?}", self.expected, self.found)
        }
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

// ----- FromVariant / ToVariant: containers, options and structs ----------------------------

/// One step into a value, for [`ConvertError`]'s path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPart {
    /// A struct field (a Dictionary key or an Array position, named).
    Field(&'static str),
    /// An element of an Array (or a tuple).
    Index(usize),
    /// An entry of a Dictionary (its key or its value), by position.
    Entry(usize),
}

/// What went wrong in a [`FromVariant`] conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertErrorKind {
    /// A value of another type than the one asked for (or an `int` out of range).
    Type(TypeMismatch),
    /// A struct field whose key is not in the Dictionary.
    MissingField(&'static str),
    /// An Array with the wrong number of elements for a tuple or a positional struct.
    Length {
        /// The elements needed.
        expected: usize,
        /// The elements found.
        found: usize,
    },
}

/// A [`FromVariant`] conversion that failed: what, and where in the value (outermost first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    /// What went wrong.
    pub kind: ConvertErrorKind,
    /// Innermost first (the order the error bubbles up in); [`path`](Self::path) reverses it.
    inner_first: Vec<PathPart>,
}

impl ConvertError {
    /// An error at the top of the value.
    #[must_use]
    pub fn new(kind: ConvertErrorKind) -> Self {
        Self { kind, inner_first: Vec::new() }
    }

    /// The same error one level down, under `part` (used by container and struct conversions).
    #[must_use]
    pub fn within(mut self, part: PathPart) -> Self {
        self.inner_first.push(part);
        self
    }

    /// Where the error is, outermost first (empty: the value itself).
    pub fn path(&self) -> impl Iterator<Item = PathPart> + '_ {
        self.inner_first.iter().rev().copied()
    }
}

impl From<TypeMismatch> for ConvertError {
    fn from(e: TypeMismatch) -> Self {
        Self::new(ConvertErrorKind::Type(e))
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.inner_first.is_empty() {
            f.write_str("at ")?;
            for part in self.path() {
                match part {
                    PathPart::Field(name) => write!(f, ".{name}")?,
                    PathPart::Index(i) => write!(f, "[{i}]")?,
                    PathPart::Entry(i) => write!(f, "{{entry {i}}}")?,
                }
            }
            f.write_str(": ")?;
        }
        match self.kind {
            ConvertErrorKind::Type(e) => write!(f, "{e}"),
            ConvertErrorKind::MissingField(name) => write!(f, "no {name:?} key"),
            ConvertErrorKind::Length { expected, found } => {
                write!(f, "expected {expected} elements, found {found}")
            }
        }
    }
}

impl core::error::Error for ConvertError {}

/// A Rust value that becomes a [`Variant`] (Godot's `Variant(value)`): the types with a
/// `From` conversion, and `Option`, `Vec`, slices, `BTreeMap` and tuples of them, and structs
/// declared with [`impl_variant_dictionary!`](crate::impl_variant_dictionary) or
/// [`impl_variant_array!`](crate::impl_variant_array).
pub trait ToVariant {
    /// This value as a `Variant`.
    fn to_variant(&self) -> Variant;

    /// A sequence of this type: an untyped Array unless the type has a packed array
    /// (`u8` → `PackedByteArray`, `i32`, `i64`, `f32`, `f64`, `String`, `Vector2`, `Vector3`,
    /// `Color`, `Vector4`), as the `From` conversions do.
    fn slice_to_variant(items: &[Self]) -> Variant
    where
        Self: Sized,
    {
        Variant::from(items.iter().map(Self::to_variant).collect::<Vec<_>>())
    }
}

/// A Rust value read out of a [`Variant`], exactly (no implicit conversions: an `int` is not
/// an `f64`), with an error that says where it failed; implemented for the same types as
/// [`ToVariant`].
pub trait FromVariant: Sized {
    /// Converts, or says which part of the value has which wrong type.
    ///
    /// # Errors
    /// [`ConvertError`].
    fn from_variant(v: Variant) -> Result<Self, ConvertError>;

    /// A `Vec` of this type: from an Array (typed or not) of convertible elements, and for
    /// the types that have one, from their packed array too.
    ///
    /// # Errors
    /// [`ConvertError`], with the index of the element that failed.
    fn vec_from_variant(v: Variant) -> Result<Vec<Self>, ConvertError> {
        let items = Vec::<Variant>::try_from(v)?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Self::from_variant(item).map_err(|e| e.within(PathPart::Index(i))))
            .collect()
    }
}

impl ToVariant for Variant {
    fn to_variant(&self) -> Variant {
        self.clone()
    }
}

impl FromVariant for Variant {
    fn from_variant(v: Variant) -> Result<Self, ConvertError> {
        Ok(v)
    }
}

/// Types with `From<T> for Variant` and `TryFrom<Variant>`; `$packed` ones also have a packed
/// array for `Vec<T>`.
macro_rules! via_from {
    ($($t:ty),+ $(,)?) => {$(
        impl ToVariant for $t {
            fn to_variant(&self) -> Variant {
                Variant::from(self.clone())
            }
        }

        impl FromVariant for $t {
            fn from_variant(v: Variant) -> Result<Self, ConvertError> {
                Ok(Self::try_from(v)?)
            }
        }
    )+};
}

via_from!(
    bool,
    i8,
    i16,
    u16,
    u32,
    Vector2i,
    Rect2,
    Rect2i,
    Vector3i,
    Vector4i,
    Plane,
    Quaternion,
    Transform2D,
    Aabb,
    Basis,
    Transform3D,
    Projection,
    NodePath,
    Object,
    Array,
    Dictionary,
);

macro_rules! packed {
    ($($t:ty => $case:ident),+ $(,)?) => {$(
        impl ToVariant for $t {
            fn to_variant(&self) -> Variant {
                Variant::from(self.clone())
            }

            fn slice_to_variant(items: &[Self]) -> Variant {
                Variant::$case(items.to_vec())
            }
        }

        impl FromVariant for $t {
            fn from_variant(v: Variant) -> Result<Self, ConvertError> {
                Ok(Self::try_from(v)?)
            }

            fn vec_from_variant(v: Variant) -> Result<Vec<Self>, ConvertError> {
                match v {
                    Variant::$case(items) => Ok(items),
                    other => {
                        let items = Vec::<Variant>::try_from(other).map_err(|e| TypeMismatch {
                            expected: VariantType::$case,
                            ..e
                        })?;
                        items
                            .into_iter()
                            .enumerate()
                            .map(|(i, item)| Self::from_variant(item).map_err(|e| e.within(PathPart::Index(i))))
                            .collect()
                    }
                }
            }
        }
    )+};
}

packed!(
    u8 => PackedByteArray,
    i32 => PackedInt32Array,
    i64 => PackedInt64Array,
    f64 => PackedFloat64Array,
    String => PackedStringArray,
    Vector2 => PackedVector2Array,
    Vector3 => PackedVector3Array,
    Color => PackedColorArray,
    Vector4 => PackedVector4Array,
);

// f32 has no `TryFrom<Variant>`: a float narrows.
impl ToVariant for f32 {
    fn to_variant(&self) -> Variant {
        Variant::from(*self)
    }

    fn slice_to_variant(items: &[Self]) -> Variant {
        Variant::PackedFloat32Array(items.to_vec())
    }
}

impl FromVariant for f32 {
    /// A `float`, narrowed to f32 (Godot's own `float` → `f32` conversion does the same).
    fn from_variant(v: Variant) -> Result<Self, ConvertError> {
        #[allow(clippy::cast_possible_truncation)] // Narrowing is the point.
        Ok(f64::try_from(v)? as f32)
    }

    fn vec_from_variant(v: Variant) -> Result<Vec<Self>, ConvertError> {
        match v {
            Variant::PackedFloat32Array(items) => Ok(items),
            other => {
                let items = Vec::<Variant>::try_from(other)
                    .map_err(|e| TypeMismatch { expected: VariantType::PackedFloat32Array, ..e })?;
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| Self::from_variant(item).map_err(|e| e.within(PathPart::Index(i))))
                    .collect()
            }
        }
    }
}

impl ToVariant for str {
    fn to_variant(&self) -> Variant {
        Variant::from(self)
    }
}

impl ToVariant for u64 {
    fn to_variant(&self) -> Variant {
        // Godot's int is i64: larger values wrap, as a u64 passed to GDScript does.
        #[allow(clippy::cast_possible_wrap)]
        Variant::Int(*self as i64)
    }
}

impl FromVariant for u64 {
    /// A non-negative `int`.
    fn from_variant(v: Variant) -> Result<Self, ConvertError> {
        let found = v.variant_type();
        let mismatch = TypeMismatch { expected: VariantType::Int, found };
        u64::try_from(i64::try_from(v)?).map_err(|_| mismatch.into())
    }
}

impl<T: ToVariant + ?Sized> ToVariant for &T {
    fn to_variant(&self) -> Variant {
        (**self).to_variant()
    }
}

impl<T: ToVariant> ToVariant for Option<T> {
    /// `None` is `null`.
    fn to_variant(&self) -> Variant {
        self.as_ref().map_or(Variant::Nil, T::to_variant)
    }
}

impl<T: FromVariant> FromVariant for Option<T> {
    /// `null` is `None`.
    fn from_variant(v: Variant) -> Result<Self, ConvertError> {
        match v {
            Variant::Nil => Ok(None),
            other => T::from_variant(other).map(Some),
        }
    }
}

impl<T: ToVariant> ToVariant for [T] {
    fn to_variant(&self) -> Variant {
        T::slice_to_variant(self)
    }
}

impl<T: ToVariant> ToVariant for Vec<T> {
    fn to_variant(&self) -> Variant {
        T::slice_to_variant(self)
    }
}

impl<T: FromVariant> FromVariant for Vec<T> {
    fn from_variant(v: Variant) -> Result<Self, ConvertError> {
        T::vec_from_variant(v)
    }
}

impl<K: ToVariant, V: ToVariant> ToVariant for BTreeMap<K, V> {
    /// An untyped Dictionary, in key order.
    fn to_variant(&self) -> Variant {
        let entries = self.iter().map(|(k, v)| (k.to_variant(), v.to_variant())).collect();
        Variant::from(Dictionary { entries, ..Dictionary::default() })
    }
}

impl<K: FromVariant + Ord, V: FromVariant> FromVariant for BTreeMap<K, V> {
    /// From a Dictionary (typed or not) whose keys and values convert; two keys that convert
    /// to the same `K` keep the last value, as Godot's dictionaries keep the last.
    fn from_variant(v: Variant) -> Result<Self, ConvertError> {
        let dictionary = Dictionary::try_from(v)?;
        let mut map = BTreeMap::new();
        for (i, (key, value)) in dictionary.entries.into_iter().enumerate() {
            let at = |e: ConvertError| e.within(PathPart::Entry(i));
            map.insert(K::from_variant(key).map_err(at)?, V::from_variant(value).map_err(at)?);
        }
        Ok(map)
    }
}

macro_rules! variant_tuples {
    ($(($($name:ident $i:tt),+) = $n:expr;)+) => {$(
        impl<$($name: ToVariant),+> ToVariant for ($($name,)+) {
            /// An untyped Array of the elements.
            fn to_variant(&self) -> Variant {
                Variant::from(alloc::vec![$(self.$i.to_variant()),+])
            }
        }

        impl<$($name: FromVariant),+> FromVariant for ($($name,)+) {
            /// An Array of exactly that many elements, each converting.
            fn from_variant(v: Variant) -> Result<Self, ConvertError> {
                let items = Vec::<Variant>::try_from(v)?;
                let found = items.len();
                let mut items = items.into_iter();
                if found != $n {
                    return Err(ConvertError::new(ConvertErrorKind::Length { expected: $n, found }));
                }
                Ok(($(
                    $name::from_variant(items.next().unwrap_or_default())
                        .map_err(|e| e.within(PathPart::Index($i)))?,
                )+))
            }
        }
    )+};
}

variant_tuples! {
    (A 0) = 1;
    (A 0, B 1) = 2;
    (A 0, B 1, C 2) = 3;
    (A 0, B 1, C 2, D 3) = 4;
    (A 0, B 1, C 2, D 3, E 4) = 5;
    (A 0, B 1, C 2, D 3, E 4, F 5) = 6;
}

/// A struct's Dictionary (for [`impl_variant_dictionary!`](crate::impl_variant_dictionary)).
#[doc(hidden)]
#[must_use]
pub fn __dictionary<const N: usize>(fields: [(&'static str, Variant); N]) -> Variant {
    let entries = fields.into_iter().map(|(name, value)| (Variant::from(name), value)).collect();
    Variant::from(Dictionary { entries, ..Dictionary::default() })
}

/// The value of `field` in a struct's Dictionary: a `String` or `StringName` key of that name
/// (a missing key reads as `null`, so an `Option` field may be left out).
#[doc(hidden)]
pub fn __field<T: FromVariant>(dictionary: &mut Dictionary, field: &'static str) -> Result<T, ConvertError> {
    let at = dictionary.entries.iter().position(|(k, _)| match k {
        Variant::String(s) | Variant::StringName(s) => s == field,
        _ => false,
    });
    let value = at.map(|i| core::mem::take(&mut dictionary.entries[i].1));
    let missing = value.is_none();
    T::from_variant(value.unwrap_or_default()).map_err(|e| {
        let e = if missing { ConvertError::new(ConvertErrorKind::MissingField(field)) } else { e };
        e.within(PathPart::Field(field))
    })
}

/// A positional struct's Array (for [`impl_variant_array!`](crate::impl_variant_array)).
#[doc(hidden)]
#[must_use]
pub fn __array<const N: usize>(fields: [Variant; N]) -> Variant {
    Variant::from(Vec::from(fields))
}

/// The elements of a positional struct's Array, which must have `fields` of them.
#[doc(hidden)]
pub fn __elements(v: Variant, fields: usize) -> Result<alloc::vec::IntoIter<Variant>, ConvertError> {
    let items = Vec::<Variant>::try_from(v)?;
    if items.len() != fields {
        let found = items.len();
        return Err(ConvertError::new(ConvertErrorKind::Length { expected: fields, found }));
    }
    Ok(items.into_iter())
}

/// The next element of a positional struct's Array, as the field `field`.
#[doc(hidden)]
pub fn __element<T: FromVariant>(
    items: &mut alloc::vec::IntoIter<Variant>,
    field: &'static str,
) -> Result<T, ConvertError> {
    T::from_variant(items.next().unwrap_or_default()).map_err(|e| e.within(PathPart::Field(field)))
}

/// Converts a struct to and from a Godot Dictionary keyed by its field names
/// (`{"name": "Ada", "hp": 5}`), the shape a GDScript game sends for a record: implements
/// [`ToVariant`] and [`FromVariant`] for it. Every field type must implement both. Keys that
/// are not fields are ignored; a missing key is an error unless the field is an `Option`.
///
/// ```
/// use multipeer::variant::{FromVariant, ToVariant, Variant};
///
/// #[derive(Debug, PartialEq)]
/// struct Player { name: String, hp: i64, buffs: Vec<String>, guild: Option<String> }
/// multipeer::impl_variant_dictionary!(Player { name, hp, buffs, guild });
///
/// let ada = Player { name: "Ada".into(), hp: 5, buffs: vec!["haste".into()], guild: None };
/// let v: Variant = ada.to_variant();
/// assert_eq!(Player::from_variant(v).unwrap(), ada);
/// let broken = [("name", 1)].into_iter().collect::<std::collections::BTreeMap<_, _>>().to_variant();
/// let error = Player::from_variant(broken).unwrap_err();
/// assert_eq!(error.to_string(), "at .name: expected a String, found a Int");
/// ```
#[macro_export]
macro_rules! impl_variant_dictionary {
    ($name:ident { $($field:ident),+ $(,)? }) => {
        impl $crate::variant::ToVariant for $name {
            fn to_variant(&self) -> $crate::variant::Variant {
                $crate::variant::__dictionary([$((
                    stringify!($field),
                    $crate::variant::ToVariant::to_variant(&self.$field),
                )),+])
            }
        }

        impl $crate::variant::FromVariant for $name {
            fn from_variant(v: $crate::variant::Variant) -> Result<Self, $crate::variant::ConvertError> {
                let mut dictionary = $crate::variant::Dictionary::try_from(v)?;
                Ok(Self { $($field: $crate::variant::__field(&mut dictionary, stringify!($field))?),+ })
            }
        }
    };
}

/// Converts a struct to and from a Godot Array of its fields in declaration order
/// (`[x, y]`), the compact shape for RPC arguments: implements [`ToVariant`] and
/// [`FromVariant`] for it. The Array must have exactly one element per field.
///
/// ```
/// use multipeer::variant::{FromVariant, ToVariant, Variant, Vector2};
///
/// #[derive(Debug, PartialEq)]
/// struct Move { to: Vector2, run: bool }
/// multipeer::impl_variant_array!(Move { to, run });
///
/// let m = Move { to: Vector2 { x: 3.0, y: 4.0 }, run: true };
/// assert_eq!(Move::from_variant(m.to_variant()).unwrap(), m);
/// ```
#[macro_export]
macro_rules! impl_variant_array {
    ($name:ident { $($field:ident),+ $(,)? }) => {
        impl $crate::variant::ToVariant for $name {
            fn to_variant(&self) -> $crate::variant::Variant {
                $crate::variant::__array([$($crate::variant::ToVariant::to_variant(&self.$field)),+])
            }
        }

        impl $crate::variant::FromVariant for $name {
            fn from_variant(v: $crate::variant::Variant) -> Result<Self, $crate::variant::ConvertError> {
                let fields = [$(stringify!($field)),+];
                let mut items = $crate::variant::__elements(v, fields.len())?;
                Ok(Self { $($field: $crate::variant::__element(&mut items, stringify!($field))?),+ })
            }
        }
    };
}
