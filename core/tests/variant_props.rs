//! Property tests of the Variant codec: every value of the canonical domain survives
//! encode → decode unchanged, in the plain and the compressed form, for 4.x and 3.x; encodings
//! are stable; and arbitrary bytes never make the decoder panic or disagree with itself.
#![cfg(feature = "alloc")]

use multipeer::variant::{
    Aabb, Array, Basis, Color, ContainerType, DecodeOptions, Dictionary, FullObject, NodePath, Object, Plane,
    Projection, Quaternion, Rect2, Rect2i, Signal, Transform2D, Transform3D, Variant, VariantRef,
    VariantType, Vector2, Vector2i, Vector3, Vector3i, Vector4, Vector4i, Version, compressed,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

const G4: Version = Version::GODOT_4_6;
const G3: Version = Version::Godot3;

/// Any non-NaN f64 (NaN is not equal to itself, so it cannot round-trip by `==`).
fn real() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        any::<f64>().prop_filter("not NaN", |x| !x.is_nan()),
        any::<f32>().prop_filter("not NaN", |x| !x.is_nan()).prop_map(f64::from)
    ]
}

/// A real Godot 3 can carry: an f32.
fn real32() -> impl Strategy<Value = f64> + Clone {
    any::<f32>().prop_filter("not NaN", |x| !x.is_nan()).prop_map(f64::from)
}

fn f32s() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("not NaN", |x| !x.is_nan())
}

/// Text Godot reads back as it was written: no NUL (it cuts there), no leading BOM (dropped).
fn text() -> impl Strategy<Value = String> {
    "[^\u{0}\u{feff}][^\u{0}]{0,11}|".prop_map(String::from)
}

fn v2(r: impl Strategy<Value = f64> + Clone) -> impl Strategy<Value = Vector2> {
    (r.clone(), r).prop_map(|(x, y)| Vector2 { x, y })
}
fn v3(r: impl Strategy<Value = f64> + Clone) -> impl Strategy<Value = Vector3> {
    (r.clone(), r.clone(), r).prop_map(|(x, y, z)| Vector3 { x, y, z })
}
fn v4(r: impl Strategy<Value = f64> + Clone) -> impl Strategy<Value = Vector4> {
    (r.clone(), r.clone(), r.clone(), r).prop_map(|(x, y, z, w)| Vector4 { x, y, z, w })
}
fn color() -> impl Strategy<Value = Color> {
    (f32s(), f32s(), f32s(), f32s()).prop_map(|(r, g, b, a)| Color { r, g, b, a })
}
fn node_path() -> impl Strategy<Value = NodePath> {
    (any::<bool>(), vec(text(), 0..3), vec(text(), 0..3)).prop_map(|(absolute, names, subnames)| NodePath {
        absolute,
        names,
        subnames,
    })
}

/// The math and scalar types both versions have, with reals from `r`.
fn shared_leaf(r: impl Strategy<Value = f64> + Clone + 'static) -> BoxedStrategy<Variant> {
    prop_oneof![
        Just(Variant::Nil),
        any::<bool>().prop_map(Variant::from),
        any::<i64>().prop_map(Variant::from),
        real().prop_map(Variant::from),
        text().prop_map(Variant::from),
        v2(r.clone()).prop_map(Variant::from),
        (v2(r.clone()), v2(r.clone())).prop_map(|(position, size)| Rect2 { position, size }.into()),
        v3(r.clone()).prop_map(Variant::from),
        (v2(r.clone()), v2(r.clone()), v2(r.clone()))
            .prop_map(|(x, y, origin)| Transform2D { x, y, origin }.into()),
        (v3(r.clone()), r.clone()).prop_map(|(normal, d)| Plane { normal, d }.into()),
        v4(r.clone()).prop_map(|v| Quaternion { x: v.x, y: v.y, z: v.z, w: v.w }.into()),
        (v3(r.clone()), v3(r.clone())).prop_map(|(position, size)| Aabb { position, size }.into()),
        (v3(r.clone()), v3(r.clone()), v3(r.clone())).prop_map(|(a, b, c)| Basis { rows: [a, b, c] }.into()),
        (v3(r.clone()), v3(r.clone()), v3(r.clone()), v3(r.clone()))
            .prop_map(|(a, b, c, origin)| Transform3D { basis: Basis { rows: [a, b, c] }, origin }.into()),
        color().prop_map(Variant::from),
        node_path().prop_map(Variant::from),
        any::<u64>().prop_filter("not null", |&id| id != 0).prop_map(|id| Variant::Object(Object::Id(id))),
        vec(any::<u8>(), 0..9).prop_map(Variant::from),
        vec(any::<i32>(), 0..4).prop_map(Variant::from),
        vec(f32s(), 0..4).prop_map(Variant::from),
        vec(text(), 0..4).prop_map(Variant::from),
        vec(v2(r.clone()), 0..3).prop_map(Variant::from),
        vec(v3(r), 0..3).prop_map(Variant::from),
        vec(color(), 0..3).prop_map(Variant::from),
    ]
    .boxed()
}

/// The types only 4.x has.
fn godot4_leaf() -> BoxedStrategy<Variant> {
    let i = any::<i32>;
    prop_oneof![
        shared_leaf(real()),
        (i(), i()).prop_map(|(x, y)| Vector2i { x, y }.into()),
        (i(), i(), i(), i()).prop_map(|(a, b, c, d)| Rect2i {
            position: Vector2i { x: a, y: b },
            size: Vector2i { x: c, y: d }
        }
        .into()),
        (i(), i(), i()).prop_map(|(x, y, z)| Vector3i { x, y, z }.into()),
        v4(real()).prop_map(Variant::from),
        (i(), i(), i(), i()).prop_map(|(x, y, z, w)| Vector4i { x, y, z, w }.into()),
        (v4(real()), v4(real()), v4(real()), v4(real()))
            .prop_map(|(a, b, c, d)| Projection { columns: [a, b, c, d] }.into()),
        text().prop_map(Variant::StringName),
        any::<u64>().prop_map(Variant::Rid),
        Just(Variant::Callable),
        (text(), any::<u64>()).prop_map(|(name, object)| Variant::Signal(Signal { name, object })),
        vec(any::<i64>(), 0..4).prop_map(Variant::from),
        vec(real(), 0..4).prop_map(Variant::from),
        vec(v4(real()), 0..3).prop_map(Variant::from),
    ]
    .boxed()
}

/// Containers around `leaf`: untyped arrays, typed `int` arrays, dictionaries with distinct
/// keys, and (4.x) typed dictionaries and full objects.
fn tree(leaf: BoxedStrategy<Variant>, godot4: bool) -> impl Strategy<Value = Variant> {
    leaf.prop_recursive(4, 48, 6, move |inner| {
        let dict = (btree_map(any::<i64>(), inner.clone(), 0..4), btree_map(text(), inner.clone(), 0..4))
            .prop_map(|(ints, texts)| {
                let entries = ints
                    .into_iter()
                    .map(|(k, v)| (k.into(), v))
                    .chain(texts.into_iter().map(|(k, v)| (k.into(), v)));
                Variant::from(Dictionary { entries: entries.collect(), ..Dictionary::default() })
            });
        let mut options = vec![vec(inner.clone(), 0..5).prop_map(Variant::from).boxed(), dict.boxed()];
        if godot4 {
            options.push(
                vec(any::<i64>(), 0..4)
                    .prop_map(|items| {
                        let items = items.into_iter().map(Variant::from).collect();
                        Array { element_type: ContainerType::Builtin(VariantType::Int), items }.into()
                    })
                    .boxed(),
            );
            options.push(
                btree_map(text(), any::<bool>(), 0..4)
                    .prop_map(|m| {
                        Variant::from(Dictionary {
                            key_type: ContainerType::Builtin(VariantType::String),
                            value_type: ContainerType::Builtin(VariantType::Bool),
                            entries: m.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
                        })
                    })
                    .boxed(),
            );
            options.push(
                (text(), vec((text(), inner), 0..3))
                    .prop_filter("a class name", |(class, _)| !class.is_empty())
                    .prop_map(|(class, properties)| {
                        Variant::Object(Object::Full(Box::new(FullObject { class, properties })))
                    })
                    .boxed(),
            );
        }
        proptest::strategy::Union::new(options)
    })
}

fn round_trip(version: Version, value: &Variant) -> Result<(), TestCaseError> {
    let options = DecodeOptions { allow_objects: true, ..DecodeOptions::new(version) };
    let bytes = value.to_bytes(version).unwrap();
    prop_assert_eq!(bytes.len() % 4, 0, "every encoding is a multiple of 4 bytes");
    prop_assert_eq!(value.encoded_len(version), Ok(bytes.len()));
    let (decoded, used) = Variant::from_bytes(&bytes, &options).unwrap();
    prop_assert_eq!(&decoded, value);
    prop_assert_eq!(used, bytes.len());
    // Trailing bytes are left to the caller.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0xee; 5]);
    prop_assert_eq!(Variant::from_bytes(&longer, &options), Ok((value.clone(), bytes.len())));
    let mut out = vec![0; bytes.len()];
    prop_assert_eq!(value.encode_into(version, &mut out), Ok(bytes.len()));
    prop_assert_eq!(&out, &bytes);
    // Compressed (plain for 3.x): the same value back, and bools and ints shorter.
    let mut packed = Vec::new();
    compressed::encode(value, version, &mut packed).unwrap();
    prop_assert_eq!(compressed::decode(&packed, &options), Ok((value.clone(), packed.len())));
    if version.is_godot4() && matches!(value, Variant::Bool(_) | Variant::Int(_)) {
        prop_assert!(packed.len() < bytes.len());
    }
    // A leaf decodes the same without allocation.
    if let Some(leaf) = value.as_ref() {
        let (borrowed, n) = VariantRef::decode(&bytes, version).unwrap();
        prop_assert_eq!(n, bytes.len());
        prop_assert_eq!(Variant::from(borrowed), value.clone());
        let mut small = [0u8; 256];
        if let Ok(n) = leaf.encode(version, &mut small) {
            prop_assert_eq!(&small[..n], &bytes[..]);
        }
    }
    Ok(())
}

/// Checks arbitrary bytes as the fuzz target does, more briefly: no panic, the used length fits,
/// and a decoded value re-encodes to bytes that decode to it again.
fn never_panics(version: Version, bytes: &[u8]) -> Result<(), TestCaseError> {
    for allow_objects in [false, true] {
        let options = DecodeOptions { allow_objects, ..DecodeOptions::new(version) };
        if let Ok((value, used)) = Variant::from_bytes(bytes, &options) {
            prop_assert!(used <= bytes.len());
            let again = value.to_bytes(version).unwrap();
            let (back, _) = Variant::from_bytes(&again, &options).unwrap();
            prop_assert_eq!(back.to_bytes(version).unwrap(), again);
        }
        let _ = compressed::decode(bytes, &options);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn godot4_values_round_trip(value in tree(godot4_leaf(), true)) {
        round_trip(G4, &value)?;
    }

    #[test]
    fn godot3_values_round_trip(value in tree(shared_leaf(real32()), false)) {
        round_trip(G3, &value)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..64), typ in 0u8..40) {
        // Steer the first byte to a valid type id half of the time.
        let mut bytes = bytes;
        if let Some(first) = bytes.first_mut() {
            if *first & 1 == 0 {
                *first = typ;
            }
        }
        never_panics(G4, &bytes)?;
        never_panics(G3, &bytes)?;
    }
}
