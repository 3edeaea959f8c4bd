//! [`Variant`]: every Godot type, owned.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::{
    Aabb, Basis, Color, Plane, Projection, Quaternion, Rect2, Rect2i, Transform2D, Transform3D, VariantRef,
    VariantType, Vector2, Vector2i, Vector3, Vector3i, Vector4, Vector4i,
};

/// Godot's `Variant`, owned: one case per Godot 4 type (3.x types map onto them: `REAL` is
/// `Float`, `Quat` `Quaternion`, `Transform` `Transform3D`, `PoolIntArray`
/// `PackedInt32Array`, `PoolRealArray` `PackedFloat32Array`).
///
/// Equality is structural (`NaN != NaN`, as in Godot's `==`). Containers, paths and the 48- to
/// 128-byte math types are boxed (Godot holds them by pointer too), so a `Variant` takes 40
/// bytes.
#[derive(Debug, Clone, PartialEq, Default)]
#[allow(missing_docs)] // Each variant holds the Godot type of the same name.
pub enum Variant {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Vector2(Vector2),
    Vector2i(Vector2i),
    Rect2(Rect2),
    Rect2i(Rect2i),
    Vector3(Vector3),
    Vector3i(Vector3i),
    Transform2D(Box<Transform2D>),
    Vector4(Vector4),
    Vector4i(Vector4i),
    Plane(Plane),
    Quaternion(Quaternion),
    Aabb(Box<Aabb>),
    Basis(Box<Basis>),
    Transform3D(Box<Transform3D>),
    Projection(Box<Projection>),
    Color(Color),
    StringName(String),
    NodePath(Box<NodePath>),
    /// An `RID` by its id (3.x sends no id: it decodes as 0).
    Rid(u64),
    Object(Object),
    /// A `Callable`; Godot sends no body and always decodes an empty one.
    Callable,
    Signal(Signal),
    Dictionary(Box<Dictionary>),
    Array(Box<Array>),
    PackedByteArray(Vec<u8>),
    PackedInt32Array(Vec<i32>),
    PackedInt64Array(Vec<i64>),
    PackedFloat32Array(Vec<f32>),
    PackedFloat64Array(Vec<f64>),
    PackedStringArray(Vec<String>),
    PackedVector2Array(Vec<Vector2>),
    PackedVector3Array(Vec<Vector3>),
    PackedColorArray(Vec<Color>),
    PackedVector4Array(Vec<Vector4>),
}

impl Variant {
    /// The Godot type of this value (Godot's `typeof`).
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
            Self::NodePath(_) => T::NodePath,
            Self::Rid(_) => T::Rid,
            Self::Object(_) => T::Object,
            Self::Callable => T::Callable,
            Self::Signal(_) => T::Signal,
            Self::Dictionary(_) => T::Dictionary,
            Self::Array(_) => T::Array,
            Self::PackedByteArray(_) => T::PackedByteArray,
            Self::PackedInt32Array(_) => T::PackedInt32Array,
            Self::PackedInt64Array(_) => T::PackedInt64Array,
            Self::PackedFloat32Array(_) => T::PackedFloat32Array,
            Self::PackedFloat64Array(_) => T::PackedFloat64Array,
            Self::PackedStringArray(_) => T::PackedStringArray,
            Self::PackedVector2Array(_) => T::PackedVector2Array,
            Self::PackedVector3Array(_) => T::PackedVector3Array,
            Self::PackedColorArray(_) => T::PackedColorArray,
            Self::PackedVector4Array(_) => T::PackedVector4Array,
        }
    }

    /// This value as a [`VariantRef`] when it is one of the fixed-shape types.
    #[must_use]
    pub fn as_ref(&self) -> Option<VariantRef<'_>> {
        use VariantRef as R;
        Some(match self {
            Self::Nil => R::Nil,
            Self::Bool(b) => R::Bool(*b),
            Self::Int(v) => R::Int(*v),
            Self::Float(v) => R::Float(*v),
            Self::String(s) => R::String(s),
            Self::Vector2(v) => R::Vector2(*v),
            Self::Vector2i(v) => R::Vector2i(*v),
            Self::Rect2(v) => R::Rect2(*v),
            Self::Rect2i(v) => R::Rect2i(*v),
            Self::Vector3(v) => R::Vector3(*v),
            Self::Vector3i(v) => R::Vector3i(*v),
            Self::Transform2D(v) => R::Transform2D(**v),
            Self::Vector4(v) => R::Vector4(*v),
            Self::Vector4i(v) => R::Vector4i(*v),
            Self::Plane(v) => R::Plane(*v),
            Self::Quaternion(v) => R::Quaternion(*v),
            Self::Aabb(v) => R::Aabb(**v),
            Self::Basis(v) => R::Basis(**v),
            Self::Transform3D(v) => R::Transform3D(**v),
            Self::Projection(v) => R::Projection(**v),
            Self::Color(v) => R::Color(*v),
            Self::StringName(s) => R::StringName(s),
            Self::Rid(v) => R::Rid(*v),
            Self::Object(Object::Null) => R::ObjectId(0),
            Self::Object(Object::Id(id)) => R::ObjectId(*id),
            Self::Callable => R::Callable,
            Self::Signal(s) => R::Signal { name: &s.name, object: s.object },
            Self::PackedByteArray(b) => R::PackedByteArray(b),
            _ => return None,
        })
    }
}

impl From<VariantRef<'_>> for Variant {
    fn from(v: VariantRef<'_>) -> Self {
        use VariantRef as R;
        match v {
            R::Nil => Self::Nil,
            R::Bool(b) => Self::Bool(b),
            R::Int(v) => Self::Int(v),
            R::Float(v) => Self::Float(v),
            R::String(s) => Self::String(s.into()),
            R::Vector2(v) => Self::Vector2(v),
            R::Vector2i(v) => Self::Vector2i(v),
            R::Rect2(v) => Self::Rect2(v),
            R::Rect2i(v) => Self::Rect2i(v),
            R::Vector3(v) => Self::Vector3(v),
            R::Vector3i(v) => Self::Vector3i(v),
            R::Transform2D(v) => Self::Transform2D(Box::new(v)),
            R::Vector4(v) => Self::Vector4(v),
            R::Vector4i(v) => Self::Vector4i(v),
            R::Plane(v) => Self::Plane(v),
            R::Quaternion(v) => Self::Quaternion(v),
            R::Aabb(v) => Self::Aabb(Box::new(v)),
            R::Basis(v) => Self::Basis(Box::new(v)),
            R::Transform3D(v) => Self::Transform3D(Box::new(v)),
            R::Projection(v) => Self::Projection(Box::new(v)),
            R::Color(v) => Self::Color(v),
            R::StringName(s) => Self::StringName(s.into()),
            R::Rid(v) => Self::Rid(v),
            R::ObjectId(0) => Self::Object(Object::Null),
            R::ObjectId(id) => Self::Object(Object::Id(id)),
            R::Callable => Self::Callable,
            R::Signal { name, object } => Self::Signal(Signal { name: name.into(), object }),
            R::PackedByteArray(b) => Self::PackedByteArray(b.into()),
        }
    }
}

/// Godot's `NodePath`: node names, property subnames and whether it starts at the root.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct NodePath {
    /// Whether the path is absolute (`/root/…`).
    pub absolute: bool,
    /// The node names (`root`, `Player`).
    pub names: Vec<String>,
    /// The property subnames after `:` (`position`, `x`).
    pub subnames: Vec<String>,
}

impl NodePath {
    /// Parses Godot's text form, `/root/Player:position:x` (empty names are skipped).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let absolute = text.starts_with('/');
        let mut parts = text.split(':');
        let names =
            parts.next().unwrap_or("").split('/').filter(|n| !n.is_empty()).map(String::from).collect();
        let subnames = parts.filter(|s| !s.is_empty()).map(String::from).collect();
        Self { absolute, names, subnames }
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.absolute {
            f.write_str("/")?;
        }
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(name)?;
        }
        self.subnames.iter().try_for_each(|s| write!(f, ":{s}"))
    }
}

/// A Godot `Object` as the wire carries it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Object {
    /// A null object. Godot encodes it as `Nil`, so it decodes back as [`Variant::Nil`].
    #[default]
    Null,
    /// An object sent by instance id (never 0); Godot decodes it as an `EncodedObjectAsID`.
    Id(u64),
    /// A full object (`var_to_bytes_with_objects`): decoded only when
    /// [`DecodeOptions::allow_objects`](super::DecodeOptions::allow_objects) is set.
    Full(Box<FullObject>),
}

/// An object sent whole: its class name and its properties, in Godot's order.
///
/// Godot instantiates any class by name from this and sets every property (a script path
/// included), which is why it is refused from untrusted peers unless asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FullObject {
    /// The class name (`RefCounted`).
    pub class: String,
    /// The properties, `script` first when Godot sends it.
    pub properties: Vec<(String, Variant)>,
}

/// Godot's `Signal` (4.x): a signal name and the instance id of its object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct Signal {
    /// The signal name.
    pub name: String,
    /// The instance id of the object that owns it.
    pub object: u64,
}

/// The element type of a typed container (4.2+ `Array[T]`, 4.4+ `Dictionary[K, V]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub enum ContainerType {
    /// Untyped (`Variant`).
    #[default]
    Variant,
    /// A built-in type (`Array[int]`).
    Builtin(VariantType),
    /// A native class (`Array[Node]`); Godot 4.3+ sends `EncodedObjectAsID` unless it sends
    /// full objects.
    Class(String),
    /// A script class, by script path; sent as [`Class`](Self::Class) `EncodedObjectAsID` too.
    Script(String),
}

/// Godot's `Array`, untyped or typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Array {
    /// The element type.
    pub element_type: ContainerType,
    /// The elements.
    pub items: Vec<Variant>,
}

/// Godot's `Dictionary`, untyped or typed, in insertion order.
///
/// Decoding keeps one entry per key, as Godot does: a repeated key keeps its first position
/// and takes the last value. Keys compare as Godot's dictionaries compare them (`String` and
/// `StringName` alike, `0.0` and `-0.0` alike, every NaN alike, `1` and `1.0` distinct).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dictionary {
    /// The key type.
    pub key_type: ContainerType,
    /// The value type.
    pub value_type: ContainerType,
    /// The entries.
    pub entries: Vec<(Variant, Variant)>,
}
