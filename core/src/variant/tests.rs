//! The vectors of `scene-multiplayer.md` §8 (encodings of every type), §10 (decoding edge
//! cases and errors) and §4 (compressed arguments), all observed on Godot 4.6.3 and 3.2.3.

use std::vec::Vec;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

const G4: Version = Version::GODOT_4_6;
const G3: Version = Version::Godot3;

/// Leaf vectors: decoded without allocation, re-encoded byte-exact.
#[test]
fn leaf_vectors_round_trip_without_alloc() {
    let v2 = |x, y| VariantRef::Vector2(Vector2 { x, y });
    let cases: &[(Version, &str, VariantRef<'_>)] = &[
        (G4, "00000000", VariantRef::Nil),
        (G4, "0100000001000000", VariantRef::Bool(true)),
        (G4, "0100000000000000", VariantRef::Bool(false)),
        (G4, "0200000001000000", VariantRef::Int(1)),
        (G4, "020001000000008000000000", VariantRef::Int(1 << 31)),
        (G4, "0200000000000080", VariantRef::Int(-(1 << 31))),
        (G4, "02000100ffffff7fffffffff", VariantRef::Int(-(1 << 31) - 1)),
        (G4, "020001000000000000000080", VariantRef::Int(i64::MIN)),
        (G4, "030000000000c03f", VariantRef::Float(1.5)),
        (G4, "030001009a9999999999b93f", VariantRef::Float(0.1)),
        (G4, "0300000000000080", VariantRef::Float(-0.0)),
        (G4, "030000000000807f", VariantRef::Float(f64::INFINITY)),
        (G4, "03000100a55cc3f129633d48", VariantRef::Float(1e40)),
        (G4, "040000000200000068690000", VariantRef::String("hi")),
        (G4, "0400000000000000", VariantRef::String("")),
        (G4, "040000000400000061626364", VariantRef::String("abcd")),
        (G4, "0400000002000000c3a90000", VariantRef::String("é")),
        (G4, "050000000000c03f000000c0", v2(1.5, -2.0)),
        (G4, "0600000001000000feffffff", VariantRef::Vector2i(Vector2i { x: 1, y: -2 })),
        (G4, "070000000000803f000000400000404000008040", VariantRef::Rect2(rect2())),
        (G4, "08000000010000000200000003000000fcffffff", VariantRef::Rect2i(rect2i())),
        (G4, "090000000000803f0000004000004040", VariantRef::Vector3(vec3(1.0, 2.0, 3.0))),
        (G4, "0a0000000100000002000000fdffffff", VariantRef::Vector3i(Vector3i { x: 1, y: 2, z: -3 })),
        (
            G4,
            "0b0000000000803f0000004000004040000080400000a0400000c040",
            VariantRef::Transform2D(transform2d()),
        ),
        (G4, "0c0000000000803f000000400000404000008040", VariantRef::Vector4(vec4(1.0, 2.0, 3.0, 4.0))),
        (
            G4,
            "0d000000010000000200000003000000fcffffff",
            VariantRef::Vector4i(Vector4i { x: 1, y: 2, z: 3, w: -4 }),
        ),
        (G4, "0e000000000000000000803f000000000000a040", VariantRef::Plane(plane())),
        (G4, "0f0000000000000000000000000000000000803f", VariantRef::Quaternion(quat())),
        (G4, "100000000000803f0000004000004040000080400000a0400000c040", VariantRef::Aabb(aabb())),
        (
            G4,
            "110000000000803f000080400000e040000000400000a04000000041000040400000c04000001041",
            VariantRef::Basis(basis()),
        ),
        (G4, TRANSFORM3D, VariantRef::Transform3D(transform3d())),
        (G4, PROJECTION, VariantRef::Projection(projection())),
        (G4, "140000000000803f0000003f000000000000803f", VariantRef::Color(color(1.0, 0.5, 0.0, 1.0))),
        (G4, "150000000300000061626300", VariantRef::StringName("abc")),
        (G4, "170000000000000000000000", VariantRef::Rid(0)),
        (G4, "170000002a00000000000000", VariantRef::Rid(42)),
        (G4, "18000100ea21007322000080", VariantRef::ObjectId(0x8000_0022_7300_21ea)),
        (G4, "19000000", VariantRef::Callable),
        (G4, SIGNAL, VariantRef::Signal { name: "tree_changed", object: 0x05_f700_059f }),
        (G4, "1d0000000300000001020300", VariantRef::PackedByteArray(&[1, 2, 3])),
        (G4, "1d00000000000000", VariantRef::PackedByteArray(&[])),
        // 3.2.3 var2bytes.
        (G3, "00000000", VariantRef::Nil),
        (G3, "0100000001000000", VariantRef::Bool(true)),
        (G3, "0200000001000000", VariantRef::Int(1)),
        (G3, "020001000000008000000000", VariantRef::Int(1 << 31)),
        (G3, "030000000000c03f", VariantRef::Float(1.5)),
        (G3, "030001009a9999999999b93f", VariantRef::Float(0.1)),
        (G3, "040000000200000068690000", VariantRef::String("hi")),
        (G3, "050000000000c03f000000c0", v2(1.5, -2.0)),
        (G3, "060000000000803f000000400000404000008040", VariantRef::Rect2(rect2())),
        (G3, "070000000000803f0000004000004040", VariantRef::Vector3(vec3(1.0, 2.0, 3.0))),
        (
            G3,
            "080000000000803f0000004000004040000080400000a0400000c040",
            VariantRef::Transform2D(transform2d()),
        ),
        (G3, "09000000000000000000803f000000000000a040", VariantRef::Plane(plane())),
        (G3, "0a0000000000000000000000000000000000803f", VariantRef::Quaternion(quat())),
        (G3, "0b0000000000803f0000004000004040000080400000a0400000c040", VariantRef::Aabb(aabb())),
        (
            G3,
            "0c0000000000803f000080400000e040000000400000a04000000041000040400000c04000001041",
            VariantRef::Basis(basis()),
        ),
        (G3, &TRANSFORM3D.replacen("12", "0d", 1), VariantRef::Transform3D(transform3d())),
        (G3, "0e0000000000803f0000003f000000000000803f", VariantRef::Color(color(1.0, 0.5, 0.0, 1.0))),
        (G3, "10000000", VariantRef::Rid(0)),
        (G3, "110001000905000000000000", VariantRef::ObjectId(1289)),
        (G3, "140000000300000001020300", VariantRef::PackedByteArray(&[1, 2, 3])),
    ];
    for (version, vector, value) in cases {
        let bytes = hex(vector);
        assert_eq!(VariantRef::decode(&bytes, *version), Ok((*value, bytes.len())), "{vector}");
        let mut out = [0u8; 80];
        let n = value.encode(*version, &mut out).unwrap();
        assert_eq!(&out[..n], &bytes[..], "{value:?}");
        assert_eq!(value.encoded_len(*version), Ok(n));
        assert_eq!(value.encode(*version, &mut out[..n - 1]), Err(EncodeError::BufferTooSmall { needed: n }));
    }
}

const TRANSFORM3D: &str = "120000000000803f0000000000000000000000000000803f0000000000000000000000000000803f0000803f0000004000004040";
const PROJECTION: &str = "130000000000803f0000004000004040000080400000a0400000c0400000e040000000410000104100002041000030410000404100005041000060410000704100008041";
const SIGNAL: &str = "1a0000000c000000747265655f6368616e6765649f0500f705000000";

fn vec3(x: f64, y: f64, z: f64) -> Vector3 {
    Vector3 { x, y, z }
}
fn vec4(x: f64, y: f64, z: f64, w: f64) -> Vector4 {
    Vector4 { x, y, z, w }
}
fn color(r: f32, g: f32, b: f32, a: f32) -> Color {
    Color { r, g, b, a }
}
fn rect2() -> Rect2 {
    Rect2 { position: Vector2 { x: 1.0, y: 2.0 }, size: Vector2 { x: 3.0, y: 4.0 } }
}
fn rect2i() -> Rect2i {
    Rect2i { position: Vector2i { x: 1, y: 2 }, size: Vector2i { x: 3, y: -4 } }
}
fn transform2d() -> Transform2D {
    let v = |x, y| Vector2 { x, y };
    Transform2D { x: v(1.0, 2.0), y: v(3.0, 4.0), origin: v(5.0, 6.0) }
}
fn plane() -> Plane {
    Plane { normal: vec3(0.0, 1.0, 0.0), d: 5.0 }
}
fn quat() -> Quaternion {
    Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 1.0 }
}
fn aabb() -> Aabb {
    Aabb { position: vec3(1.0, 2.0, 3.0), size: vec3(4.0, 5.0, 6.0) }
}
/// GDScript's `Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9))`: columns.
fn basis() -> Basis {
    Basis { rows: [vec3(1.0, 4.0, 7.0), vec3(2.0, 5.0, 8.0), vec3(3.0, 6.0, 9.0)] }
}
fn transform3d() -> Transform3D {
    Transform3D {
        basis: Basis { rows: [vec3(1.0, 0.0, 0.0), vec3(0.0, 1.0, 0.0), vec3(0.0, 0.0, 1.0)] },
        origin: vec3(1.0, 2.0, 3.0),
    }
}
fn projection() -> Projection {
    let c = |i: f64| vec4(i, i + 1.0, i + 2.0, i + 3.0);
    Projection { columns: [c(1.0), c(5.0), c(9.0), c(13.0)] }
}

/// Lenient inputs decode as Godot decodes them, and re-encode in Godot's canonical form.
#[test]
fn lenient_leaf_inputs() {
    let cases: &[(Version, &str, VariantRef<'_>, usize, &str)] = &[
        (G4, "0100000002000000", VariantRef::Bool(true), 8, "0100000001000000"),
        (G4, "02ff000005000000", VariantRef::Int(5), 8, "0200000005000000"),
        (G4, "0200010005000000ffffffff", VariantRef::Int(-4_294_967_291), 12, "02000100 05000000ffffffff"),
        (G4, "0200000005000000ffff", VariantRef::Int(5), 8, "0200000005000000"),
        (G4, "040000000300000061006200", VariantRef::String("a"), 12, "040000000100000061000000"),
        (G4, "0400000004000000efbbbf41", VariantRef::String("A"), 12, "040000000100000041000000"),
        (G4, "0400000003000000efbbbf00", VariantRef::String(""), 12, "0400000000000000"),
        (
            G4,
            "0400000006000000efbbbfefbbbf4100",
            VariantRef::String("\u{feff}"),
            16,
            "0400000003000000efbbbf00",
        ),
        (G4, "040000000300000061000ff0", VariantRef::String("a"), 12, "040000000100000061000000"),
        (
            G4,
            "050001000000000000000040000000000000f03f",
            VariantRef::Vector2(Vector2 { x: 2.0, y: 1.0 }),
            20,
            "05000000 00000040 0000803f",
        ),
        (
            G4,
            "140001000000803f0000003f000000000000803f",
            VariantRef::Color(color(1.0, 0.5, 0.0, 1.0)),
            20,
            "140000000000803f0000003f000000000000803f",
        ),
        (G4, "180001000000000000000000", VariantRef::ObjectId(0), 12, "00000000"),
        (G4, "19000000deadbeef", VariantRef::Callable, 4, "19000000"),
        (
            G4,
            "1a00000003000000616263000100000000000000",
            VariantRef::Signal { name: "abc", object: 1 },
            20,
            "1a00000003000000616263000100000000000000",
        ),
        (G4, "1d00000001000000ab", VariantRef::PackedByteArray(&[0xab]), 9, "1d00000001000000ab000000"),
        (G3, "100000002a000000", VariantRef::Rid(0), 4, "10000000"),
        (
            G3,
            "050001000000c03f000000c0",
            VariantRef::Vector2(Vector2 { x: 1.5, y: -2.0 }),
            12,
            "050000000000c03f000000c0",
        ),
        (G3, "110001002a00000000000000", VariantRef::ObjectId(42), 12, "110001002a00000000000000"),
        (G3, "1400000001000000ab", VariantRef::PackedByteArray(&[0xab]), 9, "1400000001000000ab000000"),
    ];
    for (version, input, value, used, canonical) in cases {
        let bytes = hex(input);
        assert_eq!(VariantRef::decode(&bytes, *version), Ok((*value, *used)), "{input}");
        let mut out = [0u8; 32];
        let n = value.encode(*version, &mut out).unwrap();
        assert_eq!(&out[..n], &hex(canonical)[..], "{input}");
    }
}

#[test]
fn leaf_errors() {
    use DecodeError as E;
    let cases: &[(Version, &str, DecodeError)] = &[
        (G4, "", E::Truncated),
        (G4, "020000", E::Truncated),
        (G4, "02000000050000", E::Truncated),
        (G4, "27000000", E::UnknownType(39)),
        (G4, "ff000000", E::UnknownType(255)),
        (G4, "4200000005000000", E::UnknownType(0x42)),
        (Version::Godot4 { minor: 2 }, "26000000", E::UnknownType(38)),
        (G3, "1b000000", E::UnknownType(27)),
        (G4, "040000000100000061", E::Truncated),
        (G4, "0400000001000000ff000000", E::InvalidUtf8),
        (G3, "0400000001000000ff000000", E::InvalidUtf8),
        (G4, "0400000003000000eda080ff", E::InvalidUtf8),
        (G4, "0400000004000000c0af0000", E::InvalidUtf8),
        (G4, "0400000004000000f4908080", E::InvalidUtf8),
        (G4, "0400000002000000e2820000", E::InvalidUtf8),
        (G4, "04000000ffffffff", E::InvalidLength),
        (G4, "1800000000000000", E::ObjectNotAllowed),
        (G3, "1100000000000000", E::ObjectNotAllowed),
        (G4, "1d00000005000000ab", E::Truncated),
        (G4, "1d000000ffffffff", E::InvalidLength),
        (G4, "1c00000000000000", E::NeedsAlloc(VariantType::Array)),
    ];
    for (version, input, error) in cases {
        assert_eq!(VariantRef::decode(&hex(input), *version), Err(*error), "{input}");
    }
}

#[test]
fn types_that_a_version_lacks_are_refused() {
    let mut out = [0; 16];
    let cases =
        [VariantRef::Vector2i(Vector2i::default()), VariantRef::StringName("a"), VariantRef::Callable];
    for value in cases {
        assert_eq!(value.encode(G3, &mut out), Err(EncodeError::NotInVersion(value.variant_type())));
    }
    assert_eq!(VariantType::from_id(G3, 27), None);
    assert_eq!(VariantType::from_id(Version::Godot4 { minor: 2 }, 38), None);
    assert_eq!(VariantType::PackedVector4Array.id(G4), Some(38));
    assert_eq!(VariantType::PackedColorArray.id(G3), Some(26));
}

/// Compressed arguments (§4, §10): bool and int forms, plain for the rest.
#[test]
fn compressed_leaf_vectors() {
    let cases: &[(&str, VariantRef<'_>)] = &[
        ("01", VariantRef::Bool(false)),
        ("81", VariantRef::Bool(true)),
        ("02ff", VariantRef::Int(-1)),
        ("027f", VariantRef::Int(127)),
        ("0280", VariantRef::Int(-128)),
        ("428000", VariantRef::Int(128)),
        ("427fff", VariantRef::Int(-129)),
        ("42ff7f", VariantRef::Int(32767)),
        ("8200800000", VariantRef::Int(32768)),
        ("82ffffff7f", VariantRef::Int(2_147_483_647)),
        ("c20000008000000000", VariantRef::Int(2_147_483_648)),
        ("030000000000c03f", VariantRef::Float(1.5)),
        ("00000000", VariantRef::Nil),
        ("0a000000010000000200000003000000", VariantRef::Vector3i(Vector3i { x: 1, y: 2, z: 3 })),
        ("18000100ad05008522000000", VariantRef::ObjectId(0x22_8500_05ad)),
        ("0405 0000 02000000 68690000", VariantRef::String("hi")),
    ];
    for (vector, value) in cases {
        let bytes = hex(vector);
        assert_eq!(compressed::decode_ref(&bytes, G4), Ok((*value, bytes.len())), "{vector}");
        let mut out = [0u8; 16];
        let n = compressed::encode_ref(value, G4, &mut out).unwrap();
        // The header byte 1 is ignored on decode and written as zero.
        let canonical = if vector.starts_with("0405") { hex("040000000200000068690000") } else { bytes };
        assert_eq!(&out[..n], &canonical[..], "{value:?}");
    }
    // Bit 6 of a bool is ignored; a type byte with bits 6-7 set is no plain type.
    assert_eq!(compressed::decode_ref(&hex("41"), G4), Ok((VariantRef::Bool(false), 1)));
    assert_eq!(compressed::decode_ref(&hex("44000000"), G4), Err(DecodeError::UnknownType(0x44)));
    assert_eq!(compressed::decode_ref(&hex("c2000000"), G4), Err(DecodeError::Truncated));
    assert_eq!(compressed::decode_ref(&[], G4), Err(DecodeError::Truncated));
    // 3.x has no compressed form: plain in, plain out.
    assert_eq!(compressed::decode_ref(&hex("0100000001000000"), G3), Ok((VariantRef::Bool(true), 8)));
    let mut out = [0u8; 8];
    assert_eq!(compressed::encode_ref(&VariantRef::Int(5), G3, &mut out), Ok(8));
}

#[cfg(feature = "alloc")]
#[path = "tests_owned.rs"]
mod owned;

#[cfg(feature = "alloc")]
#[path = "tests_convert.rs"]
mod convert;
