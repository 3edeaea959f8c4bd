//! Targets for the Variant codec: `variant` (plain, Godot 3 and 4) and `variant_compressed`
//! (4.x RPC arguments, one after another).
//!
//! The first input byte is the setup: bit 0 selects Godot 3, bits 1–3 the 4.x minor version
//! (mod 7), bit 4 allows full objects, bit 5 tightens the limits (depth 4, a 512-byte budget).

use multipeer::variant::{DecodeError, DecodeOptions, Object, Variant, VariantRef, Version, compressed};

/// The setup byte's decoding options.
pub fn options(setup: u8) -> DecodeOptions {
    let version =
        if setup & 1 != 0 { Version::Godot3 } else { Version::Godot4 { minor: (setup >> 1 & 7) % 7 } };
    let mut options = DecodeOptions::new(version);
    options.allow_objects = setup & 0x10 != 0;
    if setup & 0x20 != 0 {
        options.max_depth = 4;
        options.budget = 512;
    }
    options
}

/// The setup byte of Godot 4.6 with Godot's defaults.
pub const SETUP_4_6: u8 = 6 << 1;
/// The setup byte of Godot 3 with Godot's defaults.
pub const SETUP_3: u8 = 1;

/// Whether a string in `v` starts with a BOM: Godot drops one leading BOM when it decodes, so
/// such a value does not survive encode → decode unchanged (in Godot either).
fn has_leading_bom(v: &Variant) -> bool {
    let bom = |s: &str| s.starts_with('\u{feff}');
    match v {
        Variant::String(s) | Variant::StringName(s) => bom(s),
        Variant::Signal(s) => bom(&s.name),
        Variant::NodePath(p) => p.names.iter().chain(&p.subnames).any(|s| bom(s)),
        Variant::PackedStringArray(a) => a.iter().any(|s| bom(s)),
        Variant::Array(a) => a.items.iter().any(has_leading_bom),
        Variant::Dictionary(d) => d.entries.iter().any(|(k, v)| has_leading_bom(k) || has_leading_bom(v)),
        Variant::Object(Object::Full(o)) => {
            bom(&o.class) || o.properties.iter().any(|(name, v)| bom(name) || has_leading_bom(v))
        }
        _ => false,
    }
}

/// Whether `v` holds a null object: Godot encodes it as Nil, so as a dictionary key it may
/// merge with a Nil key on the next decode (in Godot too); one more round is a fixed point.
fn has_null_object(v: &Variant) -> bool {
    match v {
        Variant::Object(Object::Null) => true,
        Variant::Object(Object::Full(o)) => o.properties.iter().any(|(_, v)| has_null_object(v)),
        Variant::Array(a) => a.items.iter().any(has_null_object),
        Variant::Dictionary(d) => d.entries.iter().any(|(k, v)| has_null_object(k) || has_null_object(v)),
        _ => false,
    }
}

/// Whether `v` comes back unchanged from encode → decode (see [`has_leading_bom`] and
/// [`has_null_object`] for the two exceptions, which Godot shares).
pub fn reencodes_unchanged(v: &Variant) -> bool {
    !has_leading_bom(v) && !has_null_object(v)
}

/// Checks one decoded value: it encodes; its encoding decodes back and is stable; the encoding
/// length agrees with `encoded_len` and `encode_into`.
fn check_value(value: &Variant, options: &DecodeOptions) {
    let version = options.version;
    let bytes = value.to_bytes(version).expect("a decoded value encodes in its version");
    assert_eq!(bytes.len() % 4, 0);
    assert_eq!(value.encoded_len(version), Ok(bytes.len()));
    let mut out = vec![0; bytes.len()];
    assert_eq!(value.encode_into(version, &mut out), Ok(bytes.len()));
    assert_eq!(out, bytes);
    let (back, used) = Variant::from_bytes(&bytes, options).expect("a canonical encoding decodes");
    assert_eq!(used, bytes.len());
    let again = back.to_bytes(version).expect("encodes again");
    if has_leading_bom(value) {
        return;
    }
    if has_null_object(value) {
        let (third, _) = Variant::from_bytes(&again, options).expect("decodes again");
        assert_eq!(third.to_bytes(version).expect("encodes again"), again, "a fixed point after two rounds");
    } else {
        assert_eq!(again, bytes, "the canonical encoding is stable");
    }
}

/// `Variant::from_bytes` on the input, then the checks of [`check_value`], agreement with the
/// allocation-free [`VariantRef`] decoder, and independence from trailing bytes.
pub fn variant(data: &[u8]) {
    let Some((&setup, bytes)) = data.split_first() else { return };
    let options = options(setup);
    let result = Variant::from_bytes(bytes, &options);
    let leaf = VariantRef::decode(bytes, options.version);
    match (&result, &leaf) {
        (Ok((value, used)), _) => {
            assert!(*used >= 4 && *used <= bytes.len());
            check_value(value, &options);
            // The value depends on its own bytes only.
            let again = Variant::from_bytes(&bytes[..*used], &options).expect("its own bytes decode");
            assert_eq!(again.0.to_bytes(options.version).ok(), value.to_bytes(options.version).ok());
            if let Ok((leaf, n)) = leaf {
                assert_eq!(n, *used);
                assert_eq!(Variant::from(leaf).to_bytes(options.version), value.to_bytes(options.version));
            }
        }
        // A leaf is refused for the same reason, or for its size in the budget.
        (Err(e), Err(l)) if !matches!(l, DecodeError::NeedsAlloc(_)) => {
            assert!(
                e == l || (*l == DecodeError::ObjectNotAllowed && options.allow_objects),
                "{e:?} vs {l:?}"
            );
        }
        (Err(e), Ok(_)) => assert_eq!(*e, DecodeError::OverBudget),
        (Err(_), Err(_)) => {}
    }
}

/// Compressed arguments one after another, as an RPC carries them: each decoded argument
/// re-encodes compressed to bytes that decode to it, ints take the fewest bytes, and the
/// allocation-free decoder agrees on leaves.
pub fn variant_compressed(data: &[u8]) {
    let Some((&setup, mut rest)) = data.split_first() else { return };
    let options = options(setup);
    let version = options.version;
    for _ in 0..256 {
        if rest.is_empty() {
            break;
        }
        let leaf = compressed::decode_ref(rest, version);
        let (value, used) = match compressed::decode(rest, &options) {
            Ok(decoded) => decoded,
            Err(e) => {
                // A leaf the allocation-free decoder reads fails here only for its size.
                assert!(leaf.is_err() || e == DecodeError::OverBudget, "{e:?} but {leaf:?}");
                break;
            }
        };
        assert!(used > 0 && used <= rest.len());
        if let Ok((leaf, n)) = leaf {
            assert_eq!(n, used);
            assert_eq!(Variant::from(leaf).to_bytes(version), value.to_bytes(version));
        }
        let mut packed = Vec::new();
        compressed::encode(&value, version, &mut packed).expect("a decoded argument encodes");
        let (back, n) = compressed::decode(&packed, &options).expect("its compressed form decodes");
        assert_eq!(n, packed.len());
        if let (true, Variant::Int(i)) = (version.is_godot4(), &value) {
            let width = if i8::try_from(*i).is_ok() {
                1
            } else if i16::try_from(*i).is_ok() {
                2
            } else if i32::try_from(*i).is_ok() {
                4
            } else {
                8
            };
            assert_eq!(packed.len(), 1 + width, "the smallest int form");
        }
        if version.is_godot4() && matches!(value, Variant::Bool(_)) {
            assert_eq!(packed.len(), 1);
        }
        if !has_leading_bom(&value) && !has_null_object(&value) {
            let mut again = Vec::new();
            compressed::encode(&back, version, &mut again).expect("encodes again");
            assert_eq!(again, packed, "the compressed encoding is stable");
        }
        check_value(&value, &options);
        rest = &rest[used..];
    }
}

/// Seeds: the vectors of `scene-multiplayer.md` §8, §10 and §4 behind their setup byte.
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    let hex = |s: &str| -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0))
            .collect()
    };
    let mut add = |target: &'static str, name: &'static str, setup: u8, bytes: &str| {
        let mut input = vec![setup];
        input.extend(hex(bytes));
        seeds.push((target, name, input));
    };
    for (name, vector) in PLAIN_4 {
        add("variant", name, SETUP_4_6, vector);
    }
    for (name, vector) in PLAIN_3 {
        add("variant", name, SETUP_3, vector);
    }
    add("variant", "4-full-object-allowed", SETUP_4_6 | 0x10, FULL_OBJECT_4);
    add("variant", "3-full-object-allowed", SETUP_3 | 0x10, FULL_OBJECT_3);
    add(
        "variant",
        "4-2-typed-array-ignored",
        2 << 1,
        "1c000100020000000200000002000000010000000200000002000000",
    );
    add(
        "variant",
        "4-tight-nested",
        SETUP_4_6 | 0x20,
        "1c000000010000001c000000010000001c00000001000000 00000000",
    );
    add("variant_compressed", "args6", SETUP_4_6, "81 01 0205 4238ff 8270110100 c200f2052a01000000");
    add(
        "variant_compressed",
        "ints",
        SETUP_4_6,
        "02ff 027f 0280 428000 427fff 8200800000 82ffffff7f c20000008000000000",
    );
    add(
        "variant_compressed",
        "plain-args",
        SETUP_4_6,
        "030000000000c03f 00000000 0a000000010000000200000003000000 18000100ad05008522000000",
    );
    add(
        "variant_compressed",
        "dict-arg",
        SETUP_4_6,
        "1b000000010000000400000002000000687000000200000005000000 41",
    );
    add(
        "variant_compressed",
        "string-args",
        SETUP_4_6,
        "04000000 02000000 68690000 040000000400000066756c6c",
    );
    add(
        "variant_compressed",
        "godot3-plain",
        SETUP_3,
        "0100000001000000 0200000038ffffff 0200010000f2052a01000000 1400000003000000 01020300",
    );
    add("variant_compressed", "bad-type-byte", SETUP_4_6, "44000000");
    seeds
}

/// §8 and §10 inputs for 4.6.
const PLAIN_4: &[(&str, &str)] = &[
    ("4-int-64", "020001000000008000000000"),
    ("4-float-64", "030001009a9999999999b93f"),
    ("4-string", "0400000002000000c3a90000"),
    ("4-string-bom-nul", "0400000008000000efbbbf4100ff0000"),
    ("4-vector2-64", "050001000000000000000040000000000000f03f"),
    ("4-rect2i", "08000000010000000200000003000000fcffffff"),
    ("4-transform2d", "0b0000000000803f0000004000004040000080400000a0400000c040"),
    ("4-basis", "110000000000803f000080400000e040000000400000a04000000041000040400000c04000001041"),
    (
        "4-projection",
        "130000000000803f0000004000004040000080400000a0400000c0400000e040000000410000104100002041000030410000404100005041000060410000704100008041",
    ),
    ("4-color", "140000000000803f0000003f000000000000803f"),
    (
        "4-nodepath",
        "1600000002000080020000000100000004000000726f6f7407000000527063546573740008000000706f736974696f6e0100000078000000",
    ),
    ("4-nodepath-flag2", "1600000001000080000000000200000001000000610000000100000062000000"),
    ("4-rid", "170000002a00000000000000"),
    ("4-object-id", "18000100ea21007322000080"),
    ("4-callable", "19000000deadbeef"),
    ("4-signal", "1a0000000c000000747265655f6368616e6765649f0500f705000000"),
    ("4-dict", "1b000000010000000400000001000000610000000200000001000000"),
    ("4-dict-dup-keys", "1b000000020000000200000001000000020000000500000002000000010000000200000006000000"),
    ("4-dict-typed", "1b0005000400000002000000010000000400000001000000780000000200000001000000"),
    ("4-dict-typed-class", "1b0009000200000011000000456e636f6465644f626a6563744173494400000000000000"),
    ("4-array", "1c000000020000000200000001000000040000000100000061000000"),
    ("4-array-typed", "1c000100020000000200000002000000010000000200000002000000"),
    ("4-array-typed-mismatch", "1c0001000200000001000000040000000100000061000000"),
    ("4-array-typed-script", "1c00030004000000612e676400000000"),
    ("4-pba-nopad", "1d00000001000000ab"),
    ("4-pi64", "1f0000000200000001000000000000000000000000010000"),
    ("4-pf64", "21000000010000009a9999999999b93f"),
    ("4-pstr", "2200000003000000020000006100000004000000626364000100000000000000"),
    ("4-pv2-64", "230001000100000000000000000000400000000000000840"),
    ("4-pcolor", "25000000010000000000803f00000000000000000000803f"),
    ("4-pv4", "26000000010000000000803f000000400000404000008040"),
    ("4-nested", "1c000000010000001b00000001000000040000000100000061000000 1c000000010000000000000000"),
];

/// §8 (3.2.3 column) and §10 inputs for Godot 3.
const PLAIN_3: &[(&str, &str)] = &[
    ("3-int-64", "020001000000008000000000"),
    ("3-vector2-flag", "050001000000c03f000000c0"),
    (
        "3-transform",
        "0d0000000000803f0000000000000000000000000000803f0000000000000000000000000000803f0000803f0000004000004040",
    ),
    ("3-nodepath-garbage-pad", "0f000000020000800000000000000000010000006100a0400100000062004040"),
    ("3-rid", "100000002a000000"),
    ("3-object-id", "110001002a00000000000000"),
    ("3-dict", "12000000010000000400000001000000610000000200000001000000"),
    ("3-array", "13000000020000000200000001000000040000000100000061000000"),
    ("3-pool-string", "1700000003000000020000006100000004000000626364000100000000000000"),
    ("3-pool-color", "1a000000010000000000803f00000000000000000000803f"),
];

const FULL_OBJECT_4: &str =
    "180000000a000000526566436f756e74656400000100000006000000736372697074000000000000";
const FULL_OBJECT_3: &str =
    "11000000090000005265666572656e63650000000100000006000000736372697074000000000000";
