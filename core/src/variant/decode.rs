//! Decoding a [`Variant`] from untrusted bytes (Godot's `decode_variant`, `bytes_to_var`).
//!
//! Every length is checked against the input left before anything is allocated, every
//! allocation is charged to a budget first, and nesting is limited. Containers claim a count,
//! but each element takes at least four input bytes, so a count the input cannot hold is
//! refused at once instead of being reserved.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem::size_of;

use super::math::Reals;
use super::order::dedup;
use super::reference::read_header;
use super::value::{Array, ContainerType, Dictionary, FullObject, NodePath, Object, Variant};
use super::wire::{FLAG_64, Reader};
use super::{Color, DecodeError, VariantRef, VariantType, Vector2, Vector3, Vector4, Version};

/// The deepest a value may sit (the top level is depth 0), as Godot 4.x's decoder allows;
/// 3.x has no limit and crashes, so the same limit applies to 3.x input here.
pub const MAX_DEPTH: usize = 1024;

/// The default memory budget of one decoded value: 16 MiB, twice Godot's 8 MiB
/// `encode_buffer_max_size`.
pub const DEFAULT_BUDGET: usize = 16 << 20;

/// How [`Variant::from_bytes`] decodes: the version and the limits (Godot's `bytes_to_var`
/// arguments plus the limits Godot lacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The encoding's Godot version.
    pub version: Version,
    /// Whether full objects (class name and properties) are accepted (Godot's
    /// `allow_objects` / `allow_object_decoding`, default false). Objects sent by id are
    /// always accepted.
    pub allow_objects: bool,
    /// The deepest nesting accepted; [`MAX_DEPTH`] by default.
    pub max_depth: usize,
    /// The most memory, in bytes, the decoded value may take (counted as `Variant` slots plus
    /// the text, bytes and elements they own); [`DEFAULT_BUDGET`] by default.
    pub budget: usize,
}

impl DecodeOptions {
    /// Godot's defaults for `version`: no objects, depth 1024, a 16 MiB budget.
    #[must_use]
    pub const fn new(version: Version) -> Self {
        Self { version, allow_objects: false, max_depth: MAX_DEPTH, budget: DEFAULT_BUDGET }
    }
}

impl Variant {
    /// Godot's `bytes_to_var` (`bytes_to_var_with_objects` when `options.allow_objects`):
    /// decodes one value from the start of `bytes`; returns it and the bytes it used. Trailing
    /// bytes are left to the caller, as Godot ignores them.
    ///
    /// Godot's leniencies are kept (see the [module docs](super)); where Godot silently drops
    /// elements of the wrong type from a typed container, so does this decoder.
    ///
    /// # Errors
    /// [`DecodeError`] says which rule the bytes broke.
    pub fn from_bytes(bytes: &[u8], options: &DecodeOptions) -> Result<(Self, usize), DecodeError> {
        let mut decoder = Decoder { options, budget: options.budget };
        let mut r = Reader::new(bytes);
        let value = decoder.value(&mut r)?;
        Ok((value, r.position()))
    }
}

pub(crate) struct Decoder<'o> {
    pub(crate) options: &'o DecodeOptions,
    /// Bytes the value may still take.
    pub(crate) budget: usize,
}

impl Decoder<'_> {
    fn charge(&mut self, bytes: usize) -> Result<(), DecodeError> {
        self.budget = self.budget.checked_sub(bytes).ok_or(DecodeError::OverBudget)?;
        Ok(())
    }

    /// Charges `n` elements of `T`; fails first when `n × min_input` bytes are not left.
    fn elements<T>(&mut self, r: &Reader<'_>, n: usize, min_input: usize) -> Result<(), DecodeError> {
        if n.checked_mul(min_input).is_none_or(|need| need > r.remaining()) {
            return Err(DecodeError::Truncated);
        }
        self.charge(n.saturating_mul(size_of::<T>()))
    }

    /// One value. Containers are read with an explicit stack of open containers rather than by
    /// recursion, so hostile nesting costs heap (bounded by the depth limit), not call stack.
    pub(crate) fn value(&mut self, r: &mut Reader<'_>) -> Result<Variant, DecodeError> {
        let mut open: Vec<Open> = Vec::new();
        loop {
            // An object property's name comes before its value.
            if let Some(Open::Object { name: name @ None, .. }) = open.last_mut() {
                *name = Some(self.string(r)?);
            }
            if open.len() > self.options.max_depth {
                return Err(DecodeError::TooDeep);
            }
            let (header, ty) = read_header(r, self.options.version)?;
            let started = match ty {
                VariantType::Array => self.array(r, header)?,
                VariantType::Dictionary => self.dictionary(r, header)?,
                VariantType::Object if header & FLAG_64 == 0 => self.full_object(r)?,
                _ => Opened::Done(self.flat(r, header, ty)?),
            };
            let mut done = match started {
                Opened::Done(value) => value,
                Opened::Open(container) => {
                    // At most `max_depth` frames of 136 bytes; not charged to the budget.
                    open.try_reserve(1).map_err(|_| DecodeError::OverBudget)?;
                    open.push(container);
                    continue;
                }
            };
            // Hand the finished value to its container; containers it fills finish in turn.
            loop {
                let Some(mut top) = open.pop() else { return Ok(done) };
                if top.accept(done) {
                    done = top.finish();
                } else {
                    // Back where it was popped from: the capacity is still there.
                    open.push(top);
                    break;
                }
            }
        }
    }

    /// A value that holds no other values.
    #[inline(never)]
    fn flat(&mut self, r: &mut Reader<'_>, header: u32, ty: VariantType) -> Result<Variant, DecodeError> {
        use VariantType as T;
        let version = self.options.version;
        let wide = header & FLAG_64 != 0 && version.is_godot4();
        Ok(match ty {
            T::NodePath => Variant::NodePath(self.node_path(r)?),
            T::PackedInt32Array => Variant::PackedInt32Array(self.packed(r, 4, Reader::i32)?),
            T::PackedInt64Array => Variant::PackedInt64Array(self.packed(r, 8, Reader::i64)?),
            T::PackedFloat32Array => Variant::PackedFloat32Array(self.packed(r, 4, Reader::f32)?),
            T::PackedFloat64Array => Variant::PackedFloat64Array(self.packed(r, 8, Reader::f64)?),
            T::PackedStringArray => Variant::PackedStringArray(self.strings(r)?),
            T::PackedVector2Array => Variant::PackedVector2Array(self.reals::<Vector2>(r, 2, wide)?),
            T::PackedVector3Array => Variant::PackedVector3Array(self.reals::<Vector3>(r, 3, wide)?),
            T::PackedVector4Array => Variant::PackedVector4Array(self.reals::<Vector4>(r, 4, wide)?),
            T::PackedColorArray => Variant::PackedColorArray(self.packed(r, 16, Color::decode)?),
            _ => {
                let leaf = VariantRef::decode_body(r, header, ty, version)?;
                match leaf {
                    VariantRef::String(s)
                    | VariantRef::StringName(s)
                    | VariantRef::Signal { name: s, .. } => {
                        self.charge(s.len())?;
                    }
                    VariantRef::PackedByteArray(b) => self.charge(b.len())?,
                    VariantRef::Transform2D(_)
                    | VariantRef::Aabb(_)
                    | VariantRef::Basis(_)
                    | VariantRef::Transform3D(_)
                    | VariantRef::Projection(_) => self.charge(size_of::<VariantRef<'_>>())?,
                    _ => {}
                }
                leaf.into()
            }
        })
    }

    fn string(&mut self, r: &mut Reader<'_>) -> Result<String, DecodeError> {
        let s = r.vstr()?;
        self.charge(s.len())?;
        Ok(s.into())
    }

    fn full_object(&mut self, r: &mut Reader<'_>) -> Result<Opened, DecodeError> {
        if !self.options.allow_objects {
            return Err(DecodeError::ObjectNotAllowed);
        }
        self.charge(size_of::<FullObject>())?;
        let class = self.string(r)?;
        if class.is_empty() {
            return Ok(Opened::Done(Variant::Object(Object::Null)));
        }
        let left = r.length()?;
        self.elements::<(String, Variant)>(r, left, 8)?;
        let properties = Vec::with_capacity(left);
        Ok(Open::Object { object: FullObject { class, properties }, name: None, left }.start())
    }

    fn node_path(&mut self, r: &mut Reader<'_>) -> Result<Box<NodePath>, DecodeError> {
        self.charge(size_of::<NodePath>())?;
        let names = r.u32()?;
        if names & 0x8000_0000 == 0 {
            return Err(DecodeError::OldNodePath);
        }
        let names = (names & 0x7fff_ffff) as usize;
        let mut subnames = r.u32()? as usize;
        let flags = r.u32()?;
        // Flag 2: an obsolete format that carried the property as one more subname.
        if flags & 2 != 0 {
            subnames = subnames.checked_add(1).ok_or(DecodeError::InvalidLength)?;
        }
        let total = names.checked_add(subnames).ok_or(DecodeError::InvalidLength)?;
        self.elements::<String>(r, total, 4)?;
        let mut path =
            NodePath { absolute: flags & 1 != 0, names: Vec::with_capacity(names), subnames: Vec::new() };
        for _ in 0..names {
            path.names.push(self.string(r)?);
        }
        path.subnames.reserve_exact(subnames);
        for _ in 0..subnames {
            path.subnames.push(self.string(r)?);
        }
        Ok(Box::new(path))
    }

    /// The element type of a typed container: `kind` from the header, the type after it.
    fn container_type(&mut self, r: &mut Reader<'_>, kind: u32) -> Result<ContainerType, DecodeError> {
        let version = self.options.version;
        // Without object decoding Godot types every object container as EncodedObjectAsID.
        let as_id = || ContainerType::Class("EncodedObjectAsID".into());
        Ok(match kind {
            0 => ContainerType::Variant,
            1 => match VariantType::from_id(version, r.u32()?) {
                None => return Err(DecodeError::InvalidContainerType),
                Some(VariantType::Nil) => ContainerType::Variant,
                Some(VariantType::Object) if !self.options.allow_objects => as_id(),
                Some(t) => ContainerType::Builtin(t),
            },
            2 | 3 => {
                let name = self.string(r)?;
                match (self.options.allow_objects, kind) {
                    (false, _) => as_id(),
                    (true, 2) => ContainerType::Class(name),
                    (true, _) => ContainerType::Script(name),
                }
            }
            _ => return Err(DecodeError::InvalidContainerType),
        })
    }

    fn array(&mut self, r: &mut Reader<'_>, header: u32) -> Result<Opened, DecodeError> {
        self.charge(size_of::<Array>())?;
        let kind = if self.options.version.has_typed_arrays() { header >> 16 & 3 } else { 0 };
        let element_type = self.container_type(r, kind)?;
        // Bit 31 is an old "shared" flag; Godot ignores it.
        let left = (r.u32()? & 0x7fff_ffff) as usize;
        self.elements::<Variant>(r, left, 4)?;
        let array = Array { element_type, items: Vec::with_capacity(left) };
        Ok(Open::Array { array, left }.start())
    }

    fn dictionary(&mut self, r: &mut Reader<'_>, header: u32) -> Result<Opened, DecodeError> {
        self.charge(size_of::<Dictionary>())?;
        let typed = self.options.version.has_typed_dictionaries();
        let (key_kind, value_kind) = if typed { (header >> 16 & 3, header >> 18 & 3) } else { (0, 0) };
        let key_type = self.container_type(r, key_kind)?;
        let value_type = self.container_type(r, value_kind)?;
        let left = (r.u32()? & 0x7fff_ffff) as usize;
        self.elements::<(Variant, Variant)>(r, left, 8)?;
        let dictionary = Dictionary { key_type, value_type, entries: Vec::with_capacity(left) };
        Ok(Open::Dictionary { dictionary, key: None, left }.start())
    }

    fn packed<'a, T>(
        &mut self,
        r: &mut Reader<'a>,
        size: usize,
        read: impl Fn(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = r.length()?;
        // Godot refuses a byte size that overflows its int32.
        if n.checked_mul(size).is_none_or(|bytes| bytes > i32::MAX as usize) {
            return Err(DecodeError::InvalidLength);
        }
        self.elements::<T>(r, n, size)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(read(r)?);
        }
        Ok(items)
    }

    fn reals<T: Reals>(
        &mut self,
        r: &mut Reader<'_>,
        components: usize,
        wide: bool,
    ) -> Result<Vec<T>, DecodeError> {
        let size = components * if wide { 8 } else { 4 };
        self.packed(r, size, |r| T::decode(r, wide))
    }

    fn strings(&mut self, r: &mut Reader<'_>) -> Result<Vec<String>, DecodeError> {
        // A negative count is an empty array in Godot, not an error.
        let Ok(n) = usize::try_from(r.i32()?) else { return Ok(Vec::new()) };
        self.elements::<String>(r, n, 4)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.string(r)?);
        }
        Ok(items)
    }
}

/// A container whose header was read.
enum Opened {
    /// Complete already (no elements).
    Done(Variant),
    /// Waiting for its elements.
    Open(Open),
}

/// A container being filled: the elements so far and how many are still to come.
enum Open {
    Array { array: Array, left: usize },
    Dictionary { dictionary: Dictionary, key: Option<Variant>, left: usize },
    Object { object: FullObject, name: Option<String>, left: usize },
}

impl Open {
    fn start(self) -> Opened {
        match self {
            Self::Array { left: 0, .. } | Self::Dictionary { left: 0, .. } | Self::Object { left: 0, .. } => {
                Opened::Done(self.finish())
            }
            open => Opened::Open(open),
        }
    }

    /// Takes the next element; true when that was the last one.
    fn accept(&mut self, value: Variant) -> bool {
        match self {
            Self::Array { array, left } => {
                array.items.extend(admit(&array.element_type, value));
                *left -= 1;
                *left == 0
            }
            Self::Dictionary { dictionary: d, key, left } => {
                let Some(k) = key.take() else {
                    *key = Some(value);
                    return false;
                };
                if let (Some(k), Some(v)) = (admit(&d.key_type, k), admit(&d.value_type, value)) {
                    d.entries.push((k, v));
                }
                *left -= 1;
                *left == 0
            }
            Self::Object { object, name, left } => {
                object.properties.push((name.take().unwrap_or_default(), value));
                *left -= 1;
                *left == 0
            }
        }
    }

    fn finish(self) -> Variant {
        match self {
            Self::Array { array, .. } => Variant::Array(Box::new(array)),
            Self::Dictionary { mut dictionary, .. } => {
                dictionary.entries = dedup(core::mem::take(&mut dictionary.entries));
                Variant::Dictionary(Box::new(dictionary))
            }
            Self::Object { object, .. } => Variant::Object(Object::Full(Box::new(object))),
        }
    }
}

/// Godot's typed-container check: the value as the container stores it, or `None` when Godot
/// drops it (with an error, while decoding carries on).
fn admit(ty: &ContainerType, value: Variant) -> Option<Variant> {
    use VariantType as T;
    match ty {
        ContainerType::Variant => Some(value),
        ContainerType::Builtin(t) if *t == value.variant_type() => Some(value),
        ContainerType::Builtin(t) => match (t, value) {
            #[allow(clippy::cast_precision_loss)] // Godot converts int to float here.
            (T::Float, Variant::Int(i)) => Some(Variant::Float(i as f64)),
            (T::String, Variant::StringName(s)) => Some(Variant::String(s)),
            (T::StringName, Variant::String(s)) => Some(Variant::StringName(s)),
            (T::Object, Variant::Nil) => Some(Variant::Nil),
            _ => None,
        },
        ContainerType::Class(_) | ContainerType::Script(_) => {
            matches!(value, Variant::Nil | Variant::Object(_)).then_some(value)
        }
    }
}
