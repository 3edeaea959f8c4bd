//! `ToVariant` / `FromVariant`: containers, options, tuples and structs, with the path of what
//! failed; and that what they build is what Godot's bytes decode to.

use std::collections::BTreeMap;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use super::super::*;
use super::{G4, hex};

#[derive(Debug, Clone, PartialEq)]
struct Item {
    name: String,
    count: u32,
}
crate::impl_variant_dictionary!(Item { name, count });

#[derive(Debug, Clone, PartialEq)]
struct Player {
    name: String,
    hp: i64,
    position: Vector2,
    items: Vec<Item>,
    tags: Vec<String>,
    guild: Option<String>,
    stats: BTreeMap<String, f64>,
}
crate::impl_variant_dictionary!(Player { name, hp, position, items, tags, guild, stats });

#[derive(Debug, Clone, Copy, PartialEq)]
struct Move {
    to: Vector2,
    run: bool,
}
crate::impl_variant_array!(Move { to, run });

fn ada() -> Player {
    Player {
        name: "Ada".into(),
        hp: 5,
        position: Vector2 { x: 1.5, y: -2.0 },
        items: vec![Item { name: "key".into(), count: 2 }],
        tags: vec!["a".into(), "b".into()],
        guild: None,
        stats: [("speed".to_string(), 1.5)].into_iter().collect(),
    }
}

fn decode(hex_bytes: &str) -> Variant {
    Variant::from_bytes(&hex(hex_bytes), &DecodeOptions::new(G4)).unwrap().0
}

fn at(error: &ConvertError) -> Vec<PathPart> {
    error.path().collect()
}

#[test]
fn structs_round_trip_as_dictionaries_and_arrays() {
    let v = ada().to_variant();
    let Variant::Dictionary(d) = &v else { panic!("{v:?}") };
    let keys: Vec<&Variant> = d.entries.iter().map(|(k, _)| k).collect();
    let names = ["name", "hp", "position", "items", "tags", "guild", "stats"];
    assert_eq!(keys, names.iter().map(|n| Variant::from(*n)).collect::<Vec<_>>().iter().collect::<Vec<_>>());
    // Vec<String> is a PackedStringArray, Vec<Item> an Array of Dictionaries, None is null.
    assert_eq!(d.entries[4].1, Variant::PackedStringArray(vec!["a".into(), "b".into()]));
    assert!(matches!(&d.entries[3].1, Variant::Array(a) if matches!(a.items[..], [Variant::Dictionary(_)])));
    assert_eq!(d.entries[5].1, Variant::Nil);
    assert_eq!(Player::from_variant(v.clone()), Ok(ada()));
    // Through Godot's encoding and back.
    let mut bytes = Vec::new();
    v.encode(G4, &mut bytes).unwrap();
    assert_eq!(
        Player::from_variant(Variant::from_bytes(&bytes, &DecodeOptions::new(G4)).unwrap().0),
        Ok(ada())
    );

    let m = Move { to: Vector2 { x: 3.0, y: 4.0 }, run: true };
    assert_eq!(m.to_variant(), Variant::from(vec![Variant::from(m.to), true.into()]));
    assert_eq!(Move::from_variant(m.to_variant()), Ok(m));
}

#[test]
fn a_dictionary_from_godot_converts() {
    // var_to_bytes({"name": "key", "count": 2}) from Godot 4.6.3 (keys as GDScript writes them),
    // with an extra key that is ignored and StringName keys accepted.
    let item = decode(
        "1b000000 02000000 04000000 04000000 6e616d65 04000000 03000000 6b657900 \
         04000000 05000000 636f756e 74000000 02000000 02000000",
    );
    assert_eq!(Item::from_variant(item), Ok(Item { name: "key".into(), count: 2 }));
    let mut extra = Dictionary::default();
    extra.entries.push((Variant::StringName("count".into()), 7.into()));
    extra.entries.push(("name".into(), Variant::StringName("k".into())));
    extra.entries.push(("unused".into(), Variant::Nil));
    assert_eq!(Item::from_variant(extra.into()), Ok(Item { name: "k".into(), count: 7 }));
}

#[test]
fn errors_name_the_field_and_the_type() {
    let mut v = ada().to_variant();
    let Variant::Dictionary(d) = &mut v else { unreachable!() };
    // items[0].count is a String.
    let Variant::Array(items) = &mut d.entries[3].1 else { unreachable!() };
    let Variant::Dictionary(item) = &mut items.items[0] else { unreachable!() };
    item.entries[1].1 = "two".into();
    let error = Player::from_variant(v.clone()).unwrap_err();
    assert_eq!(at(&error), [PathPart::Field("items"), PathPart::Index(0), PathPart::Field("count")]);
    assert_eq!(
        error.kind,
        ConvertErrorKind::Type(TypeMismatch { expected: VariantType::Int, found: VariantType::String })
    );
    assert_eq!(error.to_string(), "at .items[0].count: expected a Int, found a String");

    // A missing key; an Option field may be missing.
    let Variant::Dictionary(d) = &mut v else { unreachable!() };
    d.entries.retain(|(k, _)| *k != Variant::from("hp") && *k != Variant::from("guild"));
    let error = Player::from_variant(v).unwrap_err();
    assert_eq!(error.kind, ConvertErrorKind::MissingField("hp"));
    assert_eq!(error.to_string(), "at .hp: no \"hp\" key");

    // Not a Dictionary at all; an Array of the wrong length; an int out of range.
    assert_eq!(Player::from_variant(5.into()).unwrap_err().to_string(), "expected a Dictionary, found a Int");
    let short = Variant::from(vec![Variant::from(Vector2::default())]);
    let error = Move::from_variant(short).unwrap_err();
    assert_eq!(error.kind, ConvertErrorKind::Length { expected: 2, found: 1 });
    let error = Move::from_variant(vec![Variant::from(Vector2::default()), 1.into()].into()).unwrap_err();
    assert_eq!(at(&error), [PathPart::Field("run")]);
    let negative: Variant = vec![("name", Variant::from("x")), ("count", (-1).into())]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect::<BTreeMap<_, _>>()
        .to_variant();
    assert_eq!(Item::from_variant(negative).unwrap_err().to_string(), "at .count: Int out of range");
}

#[test]
fn vecs_use_packed_arrays_where_godot_has_them() {
    assert_eq!(vec![1_u8, 2].to_variant(), Variant::PackedByteArray(vec![1, 2]));
    assert_eq!([1_i64, 2][..].to_variant(), Variant::PackedInt64Array(vec![1, 2]));
    assert_eq!(vec![0.5_f32].to_variant(), Variant::PackedFloat32Array(vec![0.5]));
    assert_eq!(vec![true, false].to_variant(), Variant::from(vec![Variant::from(true), false.into()]));
    let nested = vec![vec![1_i32], vec![]];
    assert_eq!(
        nested.to_variant(),
        Variant::from(vec![Variant::PackedInt32Array(vec![1]), Variant::PackedInt32Array(vec![])])
    );
    assert_eq!(Vec::<Vec<i32>>::from_variant(nested.to_variant()), Ok(nested));
    // Both the packed array and a plain or typed Array of the elements convert back.
    assert_eq!(Vec::<u8>::from_variant(decode("1d000000 03000000 01020300")), Ok(vec![1, 2, 3]));
    assert_eq!(
        Vec::<i64>::from_variant(decode("1c000100 02000000 02000000 0200000001000000 0200000002000000")),
        Ok(vec![1, 2])
    );
    assert_eq!(Vec::<f32>::from_variant(vec![Variant::from(1.5)].into()), Ok(vec![1.5]));
    let error = Vec::<u8>::from_variant(vec![Variant::from(1), 300.into()].into()).unwrap_err();
    assert_eq!(at(&error), [PathPart::Index(1)]);
    let error = Vec::<u8>::from_variant("x".into()).unwrap_err();
    assert_eq!(error.to_string(), "expected a PackedByteArray, found a String");
}

#[test]
fn options_tuples_and_maps() {
    assert_eq!(Option::<i64>::from_variant(Variant::Nil), Ok(None));
    assert_eq!(Option::<i64>::from_variant(3.into()), Ok(Some(3)));
    assert_eq!(Some("x").to_variant(), Variant::from("x"));
    assert_eq!(None::<i64>.to_variant(), Variant::Nil);

    let t = (1_i64, String::from("a"), Some(Vector2i { x: 1, y: 2 }));
    assert_eq!(t.to_variant(), decode_tuple());
    assert_eq!(<(i64, String, Option<Vector2i>)>::from_variant(t.to_variant()), Ok(t));
    let error = <(i64, bool)>::from_variant(vec![Variant::from(1), 2.into()].into()).unwrap_err();
    assert_eq!(at(&error), [PathPart::Index(1)]);
    let error = <(i64, bool)>::from_variant(vec![Variant::from(1)].into()).unwrap_err();
    assert_eq!(error.kind, ConvertErrorKind::Length { expected: 2, found: 1 });

    let map: BTreeMap<i64, Vec<String>> = [(2, vec!["b".into()]), (1, vec![])].into_iter().collect();
    let v = map.to_variant();
    let Variant::Dictionary(d) = &v else { panic!() };
    assert_eq!(d.entries[0].0, Variant::Int(1), "in key order");
    assert_eq!(BTreeMap::<i64, Vec<String>>::from_variant(v.clone()), Ok(map));
    let error = BTreeMap::<String, Vec<String>>::from_variant(v).unwrap_err();
    assert_eq!(at(&error), [PathPart::Entry(0)]);
    assert!(u64::from_variant((-1).into()).is_err());
    assert_eq!(u64::from_variant(7.into()), Ok(7));
}

/// `[1, "a", Vector2i(1, 2)]` as Godot 4.6.3's `var_to_bytes` writes it.
fn decode_tuple() -> Variant {
    decode("1c000000 03000000 02000000 01000000 04000000 01000000 61000000 06000000 01000000 02000000")
}
