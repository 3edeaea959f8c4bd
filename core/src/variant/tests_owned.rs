//! [`Variant`] vectors: containers, paths, packed arrays, objects, typed containers, limits.

use std::boxed::Box;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use super::super::*;
use super::{G3, G4, hex};

fn array(items: Vec<Variant>) -> Variant {
    Variant::from(items)
}

fn typed(element_type: ContainerType, items: Vec<Variant>) -> Variant {
    Variant::from(Array { element_type, items })
}

fn dict(entries: Vec<(Variant, Variant)>) -> Variant {
    Variant::from(Dictionary { entries, ..Dictionary::default() })
}

fn typed_dict(
    key_type: ContainerType,
    value_type: ContainerType,
    entries: Vec<(Variant, Variant)>,
) -> Variant {
    Variant::from(Dictionary { key_type, value_type, entries })
}

fn s(text: &str) -> Variant {
    Variant::from(text)
}

fn path(text: &str) -> Variant {
    Variant::from(NodePath::parse(text))
}

fn as_id() -> ContainerType {
    ContainerType::Class("EncodedObjectAsID".to_string())
}

fn decode(version: Version, bytes: &[u8]) -> Result<(Variant, usize), DecodeError> {
    Variant::from_bytes(bytes, &DecodeOptions::new(version))
}

fn with_objects(version: Version) -> DecodeOptions {
    DecodeOptions { allow_objects: true, ..DecodeOptions::new(version) }
}

fn refcounted(class: &str) -> Variant {
    Variant::Object(Object::Full(Box::new(FullObject {
        class: class.to_string(),
        properties: vec![("script".to_string(), Variant::Nil)],
    })))
}

/// §8 vectors of the types only [`Variant`] holds: decode to the value, encode to the bytes.
#[test]
fn vectors_round_trip() {
    use ContainerType::Builtin;
    let v2 = |x, y| Vector2 { x, y };
    let v3 = |x, y, z| Vector3 { x, y, z };
    let cases: Vec<(Version, &str, Variant)> = vec![
        (
            G4,
            "1600000002000080020000000100000004000000726f6f7407000000527063546573740008000000706f736974696f6e0100000078000000",
            path("/root/RpcTest:position:x"),
        ),
        (G4, "1600000002000080000000000000000001000000610000000100000062000000", path("a/b")),
        (G4, "16000000000000800000000000000000", path("")),
        (G4, "1b00000000000000", dict(vec![])),
        (G4, "1b000000010000000400000001000000610000000200000001000000", dict(vec![(s("a"), 1.into())])),
        (G4, "1c00000000000000", array(vec![])),
        (G4, "1c000000020000000200000001000000040000000100000061000000", array(vec![1.into(), s("a")])),
        (G4, "1c000000010000001c000000010000000100000001000000", array(vec![array(vec![true.into()])])),
        (
            G4,
            "1c000100020000000200000002000000010000000200000002000000",
            typed(Builtin(VariantType::Int), vec![1.into(), 2.into()]),
        ),
        (G4, "1c00020011000000456e636f6465644f626a65637441734944000000 00000000", typed(as_id(), vec![])),
        (
            G4,
            "1b0005000400000002000000010000000400000001000000780000000200000001000000",
            typed_dict(Builtin(VariantType::String), Builtin(VariantType::Int), vec![(s("x"), 1.into())]),
        ),
        (
            G4,
            "1b0009000200000011000000456e636f6465644f626a6563744173494400000000000000",
            typed_dict(Builtin(VariantType::Int), as_id(), vec![]),
        ),
        (
            G4,
            "1b000400010000000100000002000000010000000100000001000000",
            typed_dict(ContainerType::Variant, Builtin(VariantType::Bool), vec![(1.into(), true.into())]),
        ),
        (G4, "1e0000000200000001000000ffffffff", vec![1i32, -1].into()),
        (G4, "1f0000000200000001000000000000000000000000010000", vec![1i64, 1 << 40].into()),
        (G4, "20000000010000000000c03f", vec![1.5f32].into()),
        (G4, "21000000010000009a9999999999b93f", vec![0.1f64].into()),
        (
            G4,
            "2200000003000000020000006100000004000000626364000100000000000000",
            vec!["a".to_string(), "bcd".into(), String::new()].into(),
        ),
        (G4, "23000000010000000000803f00000040", vec![v2(1.0, 2.0)].into()),
        (G4, "24000000010000000000803f0000004000004040", vec![v3(1.0, 2.0, 3.0)].into()),
        (
            G4,
            "25000000010000000000803f00000000000000000000803f",
            vec![Color { r: 1.0, g: 0.0, b: 0.0, a: 1.0 }].into(),
        ),
        (
            G4,
            "26000000010000000000803f000000400000404000008040",
            vec![Vector4 { x: 1.0, y: 2.0, z: 3.0, w: 4.0 }].into(),
        ),
        (G4, "2300010001000000 000000000000f03f 9a9999999999b93f", vec![v2(1.0, 0.1)].into()),
        (G3, "0f00000002000080000000000000000001000000610000000100000062000000", path("a/b")),
        (G3, "12000000010000000400000001000000610000000200000001000000", dict(vec![(s("a"), 1.into())])),
        (G3, "13000000020000000200000001000000040000000100000061000000", array(vec![1.into(), s("a")])),
        (G3, "150000000200000001000000ffffffff", vec![1i32, -1].into()),
        (G3, "16000000010000000000c03f", vec![1.5f32].into()),
        (
            G3,
            "1700000003000000020000006100000004000000626364000100000000000000",
            vec!["a".to_string(), "bcd".into(), String::new()].into(),
        ),
        (G3, "18000000010000000000803f00000040", vec![v2(1.0, 2.0)].into()),
        (G3, "19000000010000000000803f0000004000004040", vec![v3(1.0, 2.0, 3.0)].into()),
        (
            G3,
            "1a000000010000000000803f00000000000000000000803f",
            vec![Color { r: 1.0, g: 0.0, b: 0.0, a: 1.0 }].into(),
        ),
    ];
    for (version, vector, value) in cases {
        let bytes = hex(vector);
        assert_eq!(decode(version, &bytes), Ok((value.clone(), bytes.len())), "{vector}");
        assert_eq!(value.to_bytes(version).as_deref(), Ok(&bytes[..]), "{value:?}");
        assert_eq!(value.encoded_len(version), Ok(bytes.len()));
        let mut out = vec![0; bytes.len()];
        assert_eq!(value.encode_into(version, &mut out), Ok(bytes.len()));
        assert_eq!(out, bytes);
    }
}

#[test]
fn full_objects_only_when_allowed() {
    let cases = [
        (
            G4,
            "180000000a000000526566436f756e74656400000100000006000000736372697074000000000000",
            "RefCounted",
        ),
        (G3, "11000000090000005265666572656e63650000000100000006000000736372697074000000000000", "Reference"),
    ];
    for (version, vector, class) in cases {
        let bytes = hex(vector);
        assert_eq!(decode(version, &bytes), Err(DecodeError::ObjectNotAllowed));
        let value = refcounted(class);
        assert_eq!(Variant::from_bytes(&bytes, &with_objects(version)), Ok((value.clone(), bytes.len())));
        assert_eq!(value.to_bytes(version).unwrap(), bytes);
    }
    // An empty class name is a null object; a null object is sent as Nil.
    let null = hex("1800000000000000");
    assert_eq!(Variant::from_bytes(&null, &with_objects(G4)), Ok((Variant::Object(Object::Null), 8)));
    assert_eq!(Variant::Object(Object::Null).to_bytes(G4).unwrap(), hex("00000000"));
    assert_eq!(decode(G4, &hex("180001000000000000000000")), Ok((Variant::Object(Object::Null), 12)));
    assert_eq!(decode(G4, &hex("1800010002a0000000000000")), Ok((Variant::Object(Object::Id(0xa002)), 12)));
}

/// §10: what Godot's `bytes_to_var` makes of inputs that are not its own canonical output.
#[test]
fn lenient_inputs() {
    use ContainerType::Builtin;
    let cases: Vec<(Version, &str, Variant, &str)> = vec![
        (G4, "1600000001000080010000000100000004000000726f6f740100000078000000", path("/root:x"), ""),
        (G4, "160000000100008000000000000000000100000061000000", path("a"), ""),
        (
            G4,
            "1600000001000080000000000200000001000000610000000100000062000000",
            path("a:b"),
            "1600000001000080010000000000000001000000610000000100000062000000",
        ),
        (
            G3,
            "0f00000002000080000000000000000001000000610000000100000062004040",
            path("a/b"),
            "0f00000002000080000000000000000001000000610000000100000062000000",
        ),
        (
            G4,
            "1b000000010000800000000000000000",
            dict(vec![(Variant::Nil, Variant::Nil)]),
            "1b000000010000000000000000000000",
        ),
        (
            G4,
            "1b000000020000000200000001000000020000000500000002000000010000000200000006000000",
            dict(vec![(1.into(), 6.into())]),
            "1b0000000100000002000000010000000200000006000000",
        ),
        (
            G4,
            "1b00050004000000020000000100000002000000070000000200000001000000",
            typed_dict(Builtin(VariantType::String), Builtin(VariantType::Int), vec![]),
            "1b000500040000000200000000000000",
        ),
        (G4, "1c0000000100008000000000", array(vec![Variant::Nil]), "1c0000000100000000000000"),
        (
            G4,
            "1c0001000200000001000000040000000100000061000000",
            typed(Builtin(VariantType::Int), vec![]),
            "1c0001000200000000000000",
        ),
        (
            G4,
            "1c000200040000004e6f646500000000",
            typed(as_id(), vec![]),
            "1c00020011000000456e636f6465644f626a6563744173494400000000000000",
        ),
        (
            G4,
            "1c00030004000000612e676400000000",
            typed(as_id(), vec![]),
            "1c00020011000000456e636f6465644f626a6563744173494400000000000000",
        ),
        (G4, "22000000ffffffff", Variant::PackedStringArray(vec![]), "2200000000000000"),
        (G4, "22000000010000000200000061000000", vec!["a".to_string()].into(), ""),
        (
            G4,
            "22000000010000000100000061000000",
            vec!["a".to_string()].into(),
            "22000000010000000200000061000000",
        ),
        (
            G4,
            "230001000100000000000000000000400000000000000840",
            vec![Vector2 { x: 2.0, y: 3.0 }].into(),
            "230000000100000000000040 00004040",
        ),
        (G4, "20000100010000000000c03f", vec![1.5f32].into(), "20000000010000000000c03f"),
        // Godot's typed-container conversions (4.6.3): int → float, String ↔ StringName.
        (
            G4,
            "1c00010003000000010000000200000001000000",
            typed(Builtin(VariantType::Float), vec![1.0.into()]),
            "1c0001000300000001000000030000000000803f",
        ),
        (
            G4,
            "1c0001000400000001000000150000000100000061000000",
            typed(Builtin(VariantType::String), vec![s("a")]),
            "1c0001000400000001000000040000000100000061000000",
        ),
        (
            G4,
            "1c0001001500000001000000040000000100000061000000",
            typed(Builtin(VariantType::StringName), vec![Variant::StringName("a".into())]),
            "1c0001001500000001000000150000000100000061000000",
        ),
        (
            G4,
            "1c000100180000000100000000000000",
            typed(as_id(), vec![Variant::Nil]),
            "1c00020011000000456e636f6465644f626a656374417349440000000100000000000000",
        ),
        (
            G4,
            "1c000200040000004e6f6465010000000200000001000000",
            typed(as_id(), vec![]),
            "1c00020011000000456e636f6465644f626a6563744173494400000000000000",
        ),
        (
            G4,
            "1c00010000000000010000000200000001000000",
            array(vec![1.into()]),
            "1c000000010000000200000001000000",
        ),
        // Key identity: -0.0 is 0.0, "a" is &"a"; 1 and 1.0 differ. The first key stays.
        (
            G4,
            "1b000000020000000300000000000000020000000100000003000000000000800200000002000000",
            dict(vec![(0.0.into(), 2.into())]),
            "1b0000000100000003000000000000000200000002000000",
        ),
        (
            G4,
            "1b000000020000000400000001000000610000000200000001000000150000000100000061000000 0200000002000000",
            dict(vec![(s("a"), 2.into())]),
            "1b000000010000000400000001000000610000000200000002000000",
        ),
        (
            G4,
            "1b00000002000000020000000100000002000000010000000300000000 00803f0200000002000000",
            dict(vec![(1.into(), 1.into()), (1.0.into(), 2.into())]),
            "",
        ),
    ];
    for (version, input, value, canonical) in cases {
        let bytes = hex(input);
        assert_eq!(decode(version, &bytes), Ok((value.clone(), bytes.len())), "{input}");
        let canonical = if canonical.is_empty() { bytes } else { hex(canonical) };
        assert_eq!(value.to_bytes(version).unwrap(), canonical, "{input}");
    }
}

#[test]
fn duplicate_keys_keep_first_position_and_last_value() {
    let mut bytes = hex("1b00000004000000");
    for (k, v) in [(1, 10), (2, 20), (1, 11), (1, 12)] {
        bytes.extend(Variant::Int(k).to_bytes(G4).unwrap());
        bytes.extend(Variant::Int(v).to_bytes(G4).unwrap());
    }
    let expected = dict(vec![(1.into(), 12.into()), (2.into(), 20.into())]);
    assert_eq!(decode(G4, &bytes).unwrap().0, expected);
    // Every NaN is one key.
    let nan = |bits: u64| Variant::Float(f64::from_bits(bits));
    let mut bytes = hex("1b00000002000000");
    for (k, v) in [(nan(0x7ff8_0000_0000_0000), 1), (nan(0xfff8_0000_0000_0001), 2)] {
        bytes.extend(k.to_bytes(G4).unwrap());
        bytes.extend(Variant::Int(v).to_bytes(G4).unwrap());
    }
    let Variant::Dictionary(d) = decode(G4, &bytes).unwrap().0 else { panic!() };
    assert_eq!(d.entries.len(), 1);
    assert_eq!(d.entries[0].1, Variant::Int(2));
}

#[test]
fn errors() {
    use DecodeError as E;
    let cases: &[(Version, &str, DecodeError)] = &[
        (G4, "160000000100000061000000", E::OldNodePath),
        (G4, "1c000000ffffff7f", E::Truncated),
        (G4, "1c00000002000000 00000000", E::Truncated),
        (G4, "1c0001002700000000000000", E::InvalidContainerType),
        (G4, "1d00000005000000ab", E::Truncated),
        (G4, "1e000000ffffffff", E::InvalidLength),
        (G4, "1e00000000000040", E::InvalidLength),
        (G4, "1e00000002000000 01000000", E::Truncated),
        (G4, "1800000000000000", E::ObjectNotAllowed),
        (G4, "1b000000010000000200000001000000", E::Truncated),
        (G4, "1c000000010000000400000001000000ff000000", E::InvalidUtf8),
        (G3, "13000000010000001c000000", E::UnknownType(0x1c)),
        (Version::Godot4 { minor: 2 }, "1c0000000100000026000000", E::UnknownType(38)),
    ];
    for (version, input, error) in cases {
        assert_eq!(decode(*version, &hex(input)), Err(*error), "{input}");
    }
}

fn nested(levels: usize, array_type: &str) -> Vec<u8> {
    let mut bytes = hex(&array_type.repeat(levels));
    bytes.extend([0; 4]);
    bytes
}

/// §9.3: a value may sit at depth 1024 (1024 arrays around a Nil), not deeper, in 4.x and
/// (unlike 3.2.3, which crashes) in 3.x; encoding has the same limit.
#[test]
fn depth_limit() {
    for (version, level) in [(G4, "1c00000001000000"), (G3, "1300000001000000")] {
        let (value, used) = decode(version, &nested(MAX_DEPTH, level)).unwrap();
        assert_eq!(used, MAX_DEPTH * 8 + 4);
        assert_eq!(value.to_bytes(version).unwrap(), nested(MAX_DEPTH, level));
        assert_eq!(decode(version, &nested(MAX_DEPTH + 1, level)), Err(DecodeError::TooDeep));
        assert_eq!(decode(version, &nested(200_000, level)), Err(DecodeError::TooDeep));
        let deeper = array(vec![value]);
        assert_eq!(deeper.to_bytes(version), Err(EncodeError::TooDeep));
        let mut out = vec![1, 2];
        assert_eq!(deeper.encode(version, &mut out), Err(EncodeError::TooDeep));
        assert_eq!(out, [1, 2], "nothing appended on error");
    }
    let shallow = DecodeOptions { max_depth: 3, ..DecodeOptions::new(G4) };
    assert!(Variant::from_bytes(&nested(3, "1c00000001000000"), &shallow).is_ok());
    assert_eq!(Variant::from_bytes(&nested(4, "1c00000001000000"), &shallow), Err(DecodeError::TooDeep));
}

#[test]
fn budget_bounds_what_is_allocated() {
    let bytes = Variant::PackedByteArray(vec![7; 1000]).to_bytes(G4).unwrap();
    let tight = |budget| DecodeOptions { budget, ..DecodeOptions::new(G4) };
    assert!(Variant::from_bytes(&bytes, &tight(1000)).is_ok());
    assert_eq!(Variant::from_bytes(&bytes, &tight(999)), Err(DecodeError::OverBudget));
    // 1000 Nils: 4 input bytes each, but a Variant slot each in memory.
    let mut nils = hex("1c000000e8030000");
    nils.extend([0; 4000]);
    let slots = core::mem::size_of::<Array>() + 1000 * core::mem::size_of::<Variant>();
    assert!(Variant::from_bytes(&nils, &tight(slots)).is_ok());
    assert_eq!(Variant::from_bytes(&nils, &tight(slots - 1)), Err(DecodeError::OverBudget));
    // A count the input cannot hold is refused before anything is reserved.
    assert_eq!(decode(G4, &hex("1c000000ffffff7f00000000")), Err(DecodeError::Truncated));
    assert_eq!(decode(G4, &hex("1b000000ffffff7f00000000")), Err(DecodeError::Truncated));
}

#[test]
fn versions_gate_typed_containers_and_types() {
    let typed_ints = typed(ContainerType::Builtin(VariantType::Int), vec![1.into()]);
    // Before 4.2, and in 3.x, the element type is not sent.
    let v4_1 = Version::Godot4 { minor: 1 };
    assert_eq!(typed_ints.to_bytes(v4_1).unwrap(), hex("1c000000010000000200000001000000"));
    assert_eq!(typed_ints.to_bytes(G3).unwrap(), hex("13000000010000000200000001000000"));
    let typed_dict = typed_dict(ContainerType::Builtin(VariantType::Int), ContainerType::Variant, vec![]);
    assert_eq!(typed_dict.to_bytes(Version::Godot4 { minor: 3 }).unwrap(), hex("1b00000000000000"));
    assert_eq!(
        Variant::from(Vector2i::default()).to_bytes(G3),
        Err(EncodeError::NotInVersion(VariantType::Vector2i))
    );
    assert_eq!(
        Variant::PackedVector4Array(vec![]).to_bytes(Version::Godot4 { minor: 2 }),
        Err(EncodeError::NotInVersion(VariantType::PackedVector4Array))
    );
    assert_eq!(
        Variant::PackedInt64Array(vec![]).to_bytes(G3),
        Err(EncodeError::NotInVersion(VariantType::PackedInt64Array))
    );
}

#[test]
fn compressed_arguments() {
    let opts = DecodeOptions::new(G4);
    let cases: Vec<(&str, Variant)> = vec![
        ("81", true.into()),
        ("c20000008000000000", 2_147_483_648i64.into()),
        ("1b000000010000000400000002000000687000000200000005000000", dict(vec![(s("hp"), 5.into())])),
        ("1c000000010000000100000001000000", array(vec![true.into()])),
    ];
    for (vector, value) in cases {
        let bytes = hex(vector);
        assert_eq!(compressed::decode(&bytes, &opts), Ok((value.clone(), bytes.len())), "{vector}");
        let mut out = vec![9];
        compressed::encode(&value, G4, &mut out).unwrap();
        assert_eq!(out[1..], bytes[..]);
    }
    // §3.1: args6(true, false, 5, -200, 70000, 5000000000), one after another.
    let args = hex("81 01 0205 4238ff 8270110100 c200f2052a01000000");
    let mut rest = &args[..];
    let mut decoded = Vec::new();
    while !rest.is_empty() {
        let (value, used) = compressed::decode(rest, &opts).unwrap();
        decoded.push(value);
        rest = &rest[used..];
    }
    let expected: Vec<Variant> =
        vec![true.into(), false.into(), 5.into(), (-200).into(), 70000.into(), 5_000_000_000i64.into()];
    assert_eq!(decoded, expected);
}

#[test]
fn conversions() {
    assert_eq!(i64::try_from(Variant::from(5u8)), Ok(5));
    assert_eq!(
        u8::try_from(Variant::from(300)),
        Err(TypeMismatch { expected: VariantType::Int, found: VariantType::Int })
    );
    assert_eq!(
        f64::try_from(Variant::from(1)),
        Err(TypeMismatch { expected: VariantType::Float, found: VariantType::Int })
    );
    assert_eq!(String::try_from(Variant::StringName("a".into())), Ok("a".to_string()));
    assert_eq!(Vec::<u8>::try_from(Variant::from(&[1u8, 2][..])), Ok(vec![1, 2]));
    let pair = Variant::from(("move", 3i64));
    assert_eq!(pair, array(vec![s("move"), 3.into()]));
    assert_eq!(<(String, i64)>::try_from(pair.clone()), Ok(("move".to_string(), 3)));
    assert!(<(String, i64, bool)>::try_from(pair).is_err());
    assert_eq!(Variant::from(None::<i64>), Variant::Nil);
    assert_eq!(Transform3D::try_from(Variant::from(Transform3D::default())), Ok(Transform3D::default()));
    assert_eq!(NodePath::parse("/root/A/B:pos:x").to_string(), "/root/A/B:pos:x");
    assert_eq!(NodePath::parse("a//b:").to_string(), "a/b");
}

/// A `Variant` is as small as its largest inline case (four f64s) allows.
#[test]
fn variant_is_forty_bytes() {
    assert_eq!(core::mem::size_of::<Variant>(), 40);
}

/// Hostile nesting costs heap, not call stack: the decoder keeps its open containers in a
/// `Vec`, and only the dictionary-key comparison and `Drop` recurse. 1024-deep dictionaries,
/// and a dictionary with two 1022-deep keys to compare, decode on a 768 KiB thread (measured:
/// about 0.5 KiB of stack per level in debug builds, 70 KiB in all in release).
#[test]
fn deep_values_decode_on_a_small_stack() {
    let mut deep_dicts = hex(&"1b000000010000000200000001000000".repeat(MAX_DEPTH));
    deep_dicts.extend([0; 4]);
    let key = nested(MAX_DEPTH - 2, "1c00000001000000");
    let mut deep_keys = hex("1b00000002000000");
    for value in [1u8, 2] {
        deep_keys.extend(&key);
        deep_keys.extend([2, 0, 0, 0, value, 0, 0, 0]);
    }
    let run = move || {
        let (value, _) = decode(G4, &deep_dicts).unwrap();
        assert!(matches!(value, Variant::Dictionary(_)));
        let (value, _) = decode(G4, &deep_keys).unwrap();
        let Variant::Dictionary(d) = value else { panic!() };
        assert_eq!(d.entries.len(), 1, "the two keys are one key");
        assert_eq!(d.entries[0].1, Variant::Int(2));
    };
    std::thread::Builder::new().stack_size(768 << 10).spawn(run).unwrap().join().unwrap();
}
