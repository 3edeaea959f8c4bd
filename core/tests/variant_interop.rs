//! The Variant codec against captures from the real Godot 4.6.3 and 3.2.3.
//!
//! `tests/interop/variant/variants_g4.gd` and `variants_g3.gd` print `var_to_bytes` of one value
//! of every type (plus nested and edge cases) under a label, and what `bytes_to_var` makes of
//! hand-made inputs. This test holds the same values under the same labels and checks, for every
//! line: our decoder gives the value, our encoder gives Godot's bytes; for every decoding, we
//! accept exactly what Godot accepts, and our re-encoding equals Godot's.
//!
//! By default it reads the captures committed in `tests/interop/variant/captured/`;
//! `tests/interop/variant/run.sh` (CI step `variant_interop`) captures fresh ones from the
//! binaries and points `MP_VARIANT_CAPTURES` at them.
#![cfg(feature = "alloc")]

use std::collections::BTreeMap;
use std::path::PathBuf;

use multipeer::variant::DecodeOptions;
use multipeer::variant::{
    Aabb, Array, Basis, Color, ContainerType, Dictionary, NodePath, Object, Plane, Projection, Quaternion,
    Rect2, Rect2i, Transform2D, Transform3D, Variant, VariantType, Vector2, Vector2i, Vector3, Vector3i,
    Vector4, Vector4i, Version,
};

/// What a label's bytes must be.
enum Expect {
    /// Decodes to this value, which encodes to the bytes.
    Same(Variant),
    /// Godot encoded a value our decoder reads back as another (a null object becomes Nil).
    OneWay { from: Variant, decodes_to: Variant },
    /// A live object by instance id (the id differs from run to run).
    ObjectId,
    /// NaN, which is not equal to itself.
    Nan,
}

use Expect::Same;

struct Decoding {
    input: Vec<u8>,
    /// Godot's `typeof` and re-encoding, or `None` when 3.x aborted the call.
    result: Option<(u32, Vec<u8>)>,
}

#[derive(Default)]
struct Capture {
    encodings: BTreeMap<String, (u32, Vec<u8>)>,
    decodings: BTreeMap<String, Decoding>,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex: {s}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn load(name: &str) -> Capture {
    let dir = std::env::var_os("MP_VARIANT_CAPTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/variant/captured"),
        PathBuf::from,
    );
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    eprintln!("reading {}", path.display());
    let mut capture = Capture::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('|').collect();
        match fields[..] {
            ["ENC", label, ty, bytes] => {
                capture.encodings.insert(label.into(), (ty.parse().unwrap(), hex(bytes)));
            }
            ["DECIN", label, input] => {
                capture.decodings.insert(label.into(), Decoding { input: hex(input), result: None });
            }
            ["DEC", label, _, ty, bytes] => {
                let d = capture.decodings.get_mut(label).expect("DEC after its DECIN");
                d.result = Some((ty.parse().unwrap(), hex(bytes)));
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    capture
}

fn s(text: &str) -> Variant {
    text.into()
}
fn sn(text: &str) -> Variant {
    Variant::StringName(text.into())
}
fn f(x: f32) -> f64 {
    x.into()
}
fn v2(x: f64, y: f64) -> Vector2 {
    Vector2 { x, y }
}
fn v3(x: f64, y: f64, z: f64) -> Vector3 {
    Vector3 { x, y, z }
}
fn v4(x: f64, y: f64, z: f64, w: f64) -> Vector4 {
    Vector4 { x, y, z, w }
}
fn color(r: f32, g: f32, b: f32, a: f32) -> Color {
    Color { r, g, b, a }
}
fn arr(items: Vec<Variant>) -> Variant {
    items.into()
}
fn typed(element_type: ContainerType, items: Vec<Variant>) -> Variant {
    Array { element_type, items }.into()
}
fn dict(entries: Vec<(Variant, Variant)>) -> Variant {
    Dictionary { entries, ..Dictionary::default() }.into()
}
fn typed_dict(
    key_type: ContainerType,
    value_type: ContainerType,
    entries: Vec<(Variant, Variant)>,
) -> Variant {
    Dictionary { key_type, value_type, entries }.into()
}
fn builtin(t: VariantType) -> ContainerType {
    ContainerType::Builtin(t)
}
fn as_id() -> ContainerType {
    ContainerType::Class("EncodedObjectAsID".into())
}
fn path(text: &str) -> Variant {
    NodePath::parse(text).into()
}
fn nest(levels: usize, inner: Variant) -> Variant {
    (0..levels).fold(inner, |v, _| arr(vec![v]))
}
fn null_object() -> Expect {
    Expect::OneWay { from: Variant::Object(Object::Null), decodes_to: Variant::Nil }
}

/// The values both scripts print in common (3.x names where they differ are mapped below).
fn common() -> Vec<(&'static str, Expect)> {
    vec![
        ("nil", Same(Variant::Nil)),
        ("bool_true", Same(true.into())),
        ("bool_false", Same(false.into())),
        ("int_0", Same(0.into())),
        ("int_1", Same(1.into())),
        ("int_m1", Same((-1).into())),
        ("int_max32", Same(i32::MAX.into())),
        ("int_2p31", Same((1i64 << 31).into())),
        ("int_min32_m1", Same((i64::from(i32::MIN) - 1).into())),
        ("int_max64", Same(i64::MAX.into())),
        ("float_0", Same(0.0.into())),
        ("float_1_5", Same(1.5.into())),
        ("float_0_1", Same(0.1.into())),
        ("float_inf", Same(f64::INFINITY.into())),
        ("float_1e40", Same(1e40.into())),
        ("string_empty", Same(s(""))),
        ("string_hi", Same(s("hi"))),
        ("string_abcd", Same(s("abcd"))),
        ("string_e_acute", Same(s("é"))),
        ("string_cjk", Same(s("日本語"))),
        ("vector2", Same(v2(1.5, -2.0).into())),
        ("vector2_0_1", Same(v2(f(0.1), 0.0).into())),
        ("rect2", Same(Rect2 { position: v2(1.0, 2.0), size: v2(3.0, 4.0) }.into())),
        ("vector3", Same(v3(1.0, 2.0, 3.0).into())),
        ("transform2d", Same(Transform2D { x: v2(1.0, 2.0), y: v2(3.0, 4.0), origin: v2(5.0, 6.0) }.into())),
        ("plane", Same(Plane { normal: v3(0.0, 1.0, 0.0), d: 5.0 }.into())),
        ("aabb", Same(Aabb { position: v3(1.0, 2.0, 3.0), size: v3(4.0, 5.0, 6.0) }.into())),
        ("basis", Same(Basis { rows: [v3(1.0, 4.0, 7.0), v3(2.0, 5.0, 8.0), v3(3.0, 6.0, 9.0)] }.into())),
        ("color", Same(color(1.0, 0.5, 0.0, 1.0).into())),
        ("color_0_1", Same(color(0.1, 0.2, 0.3, 0.4).into())),
        ("nodepath_rel", Same(path("a/b"))),
        ("object_freed", null_object()),
        ("object_live", Expect::ObjectId),
        ("dict_empty", Same(dict(vec![]))),
        ("dict_a1", Same(dict(vec![(s("a"), 1.into())]))),
        (
            "dict_nested",
            Same(dict(vec![
                (s("k"), arr(vec![1.into(), dict(vec![(s("z"), Variant::Nil)])])),
                (s("n"), dict(vec![])),
            ])),
        ),
        ("array_empty", Same(arr(vec![]))),
        ("array_1_a", Same(arr(vec![1.into(), s("a")]))),
        ("array_nested", Same(arr(vec![arr(vec![true.into()])]))),
        ("array_depth_1024", Same(nest(1024, Variant::Nil))),
    ]
}

fn identity() -> Transform3D {
    Transform3D {
        basis: Basis { rows: [v3(1.0, 0.0, 0.0), v3(0.0, 1.0, 0.0), v3(0.0, 0.0, 1.0)] },
        origin: v3(1.0, 2.0, 3.0),
    }
}

fn godot4() -> Vec<(&'static str, Expect)> {
    use VariantType as T;
    let pba_1000: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let mut expected = common();
    expected.extend([
        ("int_min32", Same(i32::MIN.into())),
        ("int_min64", Same(i64::MIN.into())),
        ("float_ninf", Same(f64::NEG_INFINITY.into())),
        ("float_nan", Expect::Nan),
        ("string_abc", Same(s("abc"))),
        ("string_emoji", Same(s("😀!"))),
        ("vector2i", Same(Vector2i { x: 1, y: -2 }.into())),
        ("rect2i", Same(Rect2i { position: Vector2i { x: 1, y: 2 }, size: Vector2i { x: 3, y: -4 } }.into())),
        ("vector3i", Same(Vector3i { x: 1, y: 2, z: -3 }.into())),
        ("vector4", Same(v4(1.0, 2.0, 3.0, 4.0).into())),
        ("vector4i", Same(Vector4i { x: 1, y: 2, z: 3, w: -4 }.into())),
        ("quaternion", Same(Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 1.0 }.into())),
        ("transform3d", Same(identity().into())),
        (
            "projection",
            Same(
                Projection { columns: [1.0, 5.0, 9.0, 13.0].map(|i| v4(i, i + 1.0, i + 2.0, i + 3.0)) }
                    .into(),
            ),
        ),
        ("stringname", Same(sn("abc"))),
        ("stringname_empty", Same(sn(""))),
        ("nodepath_abs", Same(path("/root/RpcTest:position:x"))),
        ("nodepath_subnames_only", Same(path(":position:x"))),
        ("nodepath_empty", Same(path(""))),
        ("rid_empty", Same(Variant::Rid(0))),
        ("object_null", null_object()),
        ("callable", Same(Variant::Callable)),
        ("callable_empty", Same(Variant::Callable)),
        (
            "dict_mixed_keys",
            Same(dict(vec![
                (1.into(), s("int")),
                (1.0.into(), s("float")),
                (s("1"), s("string")),
                (v2(1.0, 1.0).into(), Variant::Nil),
            ])),
        ),
        (
            "dict_typed_string_int",
            Same(typed_dict(
                builtin(T::String),
                builtin(T::Int),
                vec![(s("x"), 1.into()), (s("y"), 2.into())],
            )),
        ),
        ("dict_typed_int_node", Same(typed_dict(builtin(T::Int), as_id(), vec![]))),
        (
            "dict_typed_variant_bool",
            Same(typed_dict(ContainerType::Variant, builtin(T::Bool), vec![(1.into(), true.into())])),
        ),
        (
            "dict_typed_sn_pba",
            Same(typed_dict(
                builtin(T::StringName),
                builtin(T::PackedByteArray),
                vec![(sn("k"), vec![9u8].into())],
            )),
        ),
        (
            "array_every_scalar",
            Same(arr(vec![
                Variant::Nil,
                false.into(),
                7.into(),
                2.5.into(),
                s("s"),
                v2(1.0, 2.0).into(),
                color(0.0, 0.0, 0.0, 1.0).into(),
                sn("n"),
                path("x"),
            ])),
        ),
        ("array_typed_int", Same(typed(builtin(T::Int), vec![1.into(), 2.into()]))),
        ("array_typed_float", Same(typed(builtin(T::Float), vec![1.5.into(), 2.0.into()]))),
        ("array_typed_stringname", Same(typed(builtin(T::StringName), vec![sn("a")]))),
        ("array_typed_node", Same(typed(as_id(), vec![]))),
        ("array_typed_inner_script", Same(typed(as_id(), vec![]))),
        ("array_typed_packed", Same(typed(builtin(T::PackedInt32Array), vec![vec![3i32].into()]))),
        ("array_dicts_deep", Same(nest(100, dict(vec![(s("leaf"), arr(vec![1.5.into()]))])))),
        ("pba", Same(vec![1u8, 2, 3].into())),
        ("pba_empty", Same(Vec::<u8>::new().into())),
        ("pba_4", Same(vec![1u8, 2, 3, 4].into())),
        ("pba_1000", Same(pba_1000.into())),
        ("pi32", Same(vec![1i32, -1, i32::MAX].into())),
        ("pi64", Same(vec![1i64, 1 << 40, i64::MIN].into())),
        ("pf32", Same(vec![1.5f32, 0.0].into())),
        ("pf64", Same(vec![0.1f64, 1e300].into())),
        ("pstr", Same(vec!["a".to_string(), "bcd".into(), String::new(), "é".into()].into())),
        ("pstr_empty", Same(Vec::<String>::new().into())),
        ("pv2", Same(vec![v2(1.0, 2.0), v2(-3.0, 0.5)].into())),
        ("pv3", Same(vec![v3(1.0, 2.0, 3.0)].into())),
        ("pcolor", Same(vec![color(1.0, 0.0, 0.0, 1.0), color(0.1, 0.2, 0.3, 0.4)].into())),
        ("pv4", Same(vec![v4(1.0, 2.0, 3.0, 4.0)].into())),
        ("pv4_empty", Same(Vec::<Vector4>::new().into())),
    ]);
    expected
}

fn godot3() -> Vec<(&'static str, Expect)> {
    let mut expected = common();
    expected.extend([
        ("quat", Same(Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 1.0 }.into())),
        ("transform", Same(identity().into())),
        ("nodepath_aligned", Same(path("/root/abcd:wxyz"))),
        ("rid_empty", Same(Variant::Rid(0))),
        (
            "array_every_scalar",
            Same(arr(vec![
                Variant::Nil,
                false.into(),
                7.into(),
                2.5.into(),
                s("s"),
                v2(1.0, 2.0).into(),
                color(0.0, 0.0, 0.0, 1.0).into(),
                path("x"),
            ])),
        ),
        ("pool_byte", Same(vec![1u8, 2, 3].into())),
        ("pool_byte_empty", Same(Vec::<u8>::new().into())),
        ("pool_int", Same(vec![1i32, -1, i32::MAX].into())),
        ("pool_real", Same(vec![1.5f32, 0.1].into())),
        ("pool_string", Same(vec!["a".to_string(), "bcd".into(), String::new(), "é".into()].into())),
        ("pool_vector2", Same(vec![v2(1.0, 2.0), v2(-3.0, 0.5)].into())),
        ("pool_vector3", Same(vec![v3(1.0, 2.0, 3.0)].into())),
        ("pool_color", Same(vec![color(1.0, 0.0, 0.0, 1.0)].into())),
    ]);
    expected
}

/// 3.2.3 leaves `NodePath` padding uninitialised: where our encoding pads with zeros, Godot's
/// bytes may hold anything.
fn same_bytes(version: Version, value: &Variant, godot: &[u8], ours: &[u8]) -> bool {
    if version != Version::Godot3 || !contains_node_path(value) {
        return godot == ours;
    }
    godot.len() == ours.len() && godot.iter().zip(ours).all(|(g, o)| g == o || *o == 0)
}

fn contains_node_path(v: &Variant) -> bool {
    match v {
        Variant::NodePath(_) => true,
        Variant::Array(a) => a.items.iter().any(contains_node_path),
        Variant::Dictionary(d) => {
            d.entries.iter().any(|(k, v)| contains_node_path(k) || contains_node_path(v))
        }
        _ => false,
    }
}

fn check(version: Version, capture: &Capture, expected: Vec<(&'static str, Expect)>) {
    let options = DecodeOptions::new(version);
    let mut checked = 0;
    let labels: Vec<&str> = expected.iter().map(|(l, _)| *l).collect();
    for label in capture.encodings.keys() {
        assert!(
            labels.contains(&label.as_str()),
            "{version:?}: Godot printed {label}, which this test does not check"
        );
    }
    for (label, expect) in expected {
        let (ty, bytes) =
            capture.encodings.get(label).unwrap_or_else(|| panic!("{version:?}: no capture of {label}"));
        let decoded = Variant::from_bytes(bytes, &options);
        let (value, used) = decoded.clone().unwrap_or_else(|e| panic!("{version:?} {label}: {e}"));
        assert_eq!(used, bytes.len(), "{version:?} {label}: the whole encoding is one value");
        match expect {
            Same(want) => {
                assert_eq!(value, want, "{version:?} {label}: decoded");
                let ours = want.to_bytes(version).unwrap();
                assert!(same_bytes(version, &want, bytes, &ours), "{version:?} {label}: ours {ours:02x?}");
                assert_eq!(
                    u32::from(want.variant_type().id(version).unwrap()),
                    *ty,
                    "{version:?} {label}: typeof"
                );
            }
            Expect::OneWay { from, decodes_to } => {
                assert_eq!(value, decodes_to, "{version:?} {label}");
                assert_eq!(&from.to_bytes(version).unwrap(), bytes, "{version:?} {label}");
            }
            Expect::ObjectId => {
                assert!(
                    matches!(value, Variant::Object(Object::Id(id)) if id != 0),
                    "{version:?} {label}: {value:?}"
                );
                assert_eq!(&value.to_bytes(version).unwrap(), bytes, "{version:?} {label}");
            }
            Expect::Nan => {
                assert!(matches!(value, Variant::Float(x) if x.is_nan()), "{version:?} {label}: {value:?}");
                assert_eq!(&value.to_bytes(version).unwrap(), bytes, "{version:?} {label}");
            }
        }
        checked += 1;
    }
    let (mut agreed, mut rounded) = (0, 0);
    let mut disagreements = Vec::new();
    for (label, d) in &capture.decodings {
        match decoding_agrees(version, &options, d) {
            Ok(narrowed) => {
                agreed += 1;
                rounded += usize::from(narrowed);
            }
            Err(why) => disagreements.push(format!("{version:?} {label}: {why}")),
        }
    }
    eprintln!(
        "{version:?}: {checked} encodings and {agreed} decodings agree with Godot \
         ({rounded} of them where Godot rounded f64 math to f32)"
    );
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
    assert!(checked > 40 && agreed > 200, "{checked} encodings, {agreed} decodings");
}

/// Whether our decoder accepts what Godot accepted, refuses what it refused, and re-encodes
/// what it decoded as Godot re-encoded it; `Ok(true)` when only Godot's f32 rounding of f64 math
/// components tells the two apart.
fn decoding_agrees(version: Version, options: &DecodeOptions, d: &Decoding) -> Result<bool, String> {
    let ours = Variant::from_bytes(&d.input, options);
    let godot_failed = match &d.result {
        None => true,
        // 4.x returns null on failure; a real Nil needs a whole NIL header (type byte 0).
        Some((ty, bytes)) => *ty == 0 && bytes == &[0; 4] && !(d.input.len() >= 4 && d.input[0] == 0),
    };
    let (value, godot, ty) = match (&d.result, ours) {
        (_, Err(_)) if godot_failed => return Ok(false),
        (_, Err(e)) => return Err(format!("Godot decodes it, we refuse it ({e})")),
        (None, Ok((value, _))) => return Err(format!("Godot refuses it, we decode {value:?}")),
        (Some(_), Ok((value, _))) if godot_failed => {
            return Err(format!("Godot refuses it, we decode {value:?}"));
        }
        (Some((ty, godot)), Ok((value, _))) => (value, godot, *ty),
    };
    let id = u32::from(value.variant_type().id(version).unwrap());
    if id != ty {
        return Err(format!("typeof {ty} in Godot, ours {value:?}"));
    }
    let again = value.to_bytes(version).unwrap();
    // Godot re-encodes a decoded object id as its own EncodedObjectAsID's id.
    if contains_object_id(&value) {
        return if godot.len() == again.len() {
            Ok(false)
        } else {
            Err(format!("{value:?} → {again:02x?}"))
        };
    }
    if same_bytes(version, &value, godot, &again) {
        return Ok(false);
    }
    // A standard Godot build keeps math types in f32 where we keep what the wire carried (an
    // f64 flag): then Godot's bytes are ours rounded to f32.
    let narrowed = narrow(&value);
    if narrowed != value && narrowed.to_bytes(version).unwrap() == *godot {
        return Ok(true);
    }
    Err(format!("{value:?} → ours {again:02x?}, Godot {godot:02x?}"))
}

fn contains_object_id(v: &Variant) -> bool {
    match v {
        Variant::Object(Object::Id(_)) => true,
        Variant::Array(a) => a.items.iter().any(contains_object_id),
        Variant::Dictionary(d) => {
            d.entries.iter().any(|(k, v)| contains_object_id(k) || contains_object_id(v))
        }
        _ => false,
    }
}

/// `v` with every real component of its math types rounded to f32, as a standard build keeps it.
fn narrow(v: &Variant) -> Variant {
    #[allow(clippy::cast_possible_truncation)]
    let r = |x: f64| f64::from(x as f32);
    let v2 = |v: &Vector2| v2(r(v.x), r(v.y));
    let v3 = |v: &Vector3| v3(r(v.x), r(v.y), r(v.z));
    let v4 = |v: &Vector4| v4(r(v.x), r(v.y), r(v.z), r(v.w));
    let basis = |b: &Basis| Basis { rows: [v3(&b.rows[0]), v3(&b.rows[1]), v3(&b.rows[2])] };
    match v {
        Variant::Vector2(x) => v2(x).into(),
        Variant::Vector3(x) => v3(x).into(),
        Variant::Vector4(x) => v4(x).into(),
        Variant::Rect2(x) => Rect2 { position: v2(&x.position), size: v2(&x.size) }.into(),
        Variant::Transform2D(x) => Transform2D { x: v2(&x.x), y: v2(&x.y), origin: v2(&x.origin) }.into(),
        Variant::Plane(x) => Plane { normal: v3(&x.normal), d: r(x.d) }.into(),
        Variant::Quaternion(q) => Quaternion { x: r(q.x), y: r(q.y), z: r(q.z), w: r(q.w) }.into(),
        Variant::Aabb(x) => Aabb { position: v3(&x.position), size: v3(&x.size) }.into(),
        Variant::Basis(x) => basis(x).into(),
        Variant::Transform3D(x) => Transform3D { basis: basis(&x.basis), origin: v3(&x.origin) }.into(),
        Variant::Projection(x) => Projection { columns: x.columns.each_ref().map(v4) }.into(),
        Variant::PackedVector2Array(a) => a.iter().map(v2).collect::<Vec<_>>().into(),
        Variant::PackedVector3Array(a) => a.iter().map(v3).collect::<Vec<_>>().into(),
        Variant::PackedVector4Array(a) => a.iter().map(v4).collect::<Vec<_>>().into(),
        Variant::Array(a) => {
            Array { element_type: a.element_type.clone(), items: a.items.iter().map(narrow).collect() }.into()
        }
        Variant::Dictionary(d) => Dictionary {
            key_type: d.key_type.clone(),
            value_type: d.value_type.clone(),
            entries: d.entries.iter().map(|(k, v)| (narrow(k), narrow(v))).collect(),
        }
        .into(),
        other => other.clone(),
    }
}

#[test]
fn godot_4_6_3_encodings_and_decodings() {
    check(Version::GODOT_4_6, &load("g4.txt"), godot4());
}

#[test]
fn godot_3_2_3_encodings_and_decodings() {
    check(Version::Godot3, &load("g3.txt"), godot3());
}
