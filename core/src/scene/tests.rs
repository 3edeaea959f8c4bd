//! Vectors of `scene-multiplayer.md` §2, §3 and §10, all captured from Godot 4.6.3 and 3.2.3.

use std::vec;
use std::vec::Vec;

use super::*;
use crate::variant::Version;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.chunks(2).map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
}

const G4: Version = Version::GODOT_4_6;
const MD5_PROBE: &[u8] = b"6d17620e5f905da1908c11144b2cf7db";

#[test]
fn simplify_and_confirm_vectors() {
    let simplify =
        hex("01 3664313736323065356639303564613139303863313131343462326366376462 00 01000000 50726f626500");
    let decoded = SimplifyPath::decode(&simplify, G4).unwrap();
    assert_eq!(decoded, SimplifyPath { checksum: Some(MD5_PROBE), id: 1, path: "Probe" });
    let mut out = [0; 64];
    let n = decoded.encode(G4, &mut out).unwrap();
    assert_eq!(&out[..n], &simplify[..]);
    assert_eq!(decoded.encode(G4, &mut out[..n - 1]), Err(PathError::BufferTooSmall { needed: n }));

    let confirm = hex("02 01 01000000");
    let decoded = ConfirmPath::decode(&confirm, G4).unwrap();
    assert_eq!(decoded, ConfirmPath::Id { valid: true, id: 1 });
    assert_eq!(decoded.encode(G4, &mut out), Ok(6));
    assert_eq!(&out[..6], &confirm[..]);
    // 4.3+ CONFIRM is exactly 6 bytes; 4.0–4.2 carries the path instead.
    assert_eq!(ConfirmPath::decode(&hex("02010100000000"), G4), Err(PathError::BadLength));
    let v4_2 = Version::Godot4 { minor: 2 };
    let old = hex("02 00 50726f626500");
    assert_eq!(ConfirmPath::decode(&old, v4_2), Ok(ConfirmPath::Path { valid: false, path: "Probe" }));
    assert_eq!(ConfirmPath::Path { valid: false, path: "Probe" }.encode(v4_2, &mut out), Ok(old.len()));
    assert_eq!(ConfirmPath::Id { valid: true, id: 1 }.encode(v4_2, &mut out), Err(PathError::Unencodable));

    // 3.2.3 (§7): SIMPLIFY `02 id path`, CONFIRM `03 path`.
    let simplify3 = hex("02 01000000 50726f626500");
    let decoded = SimplifyPath::decode(&simplify3, Version::Godot3).unwrap();
    assert_eq!(decoded, SimplifyPath { checksum: None, id: 1, path: "Probe" });
    assert_eq!(decoded.encode(Version::Godot3, &mut out), Ok(simplify3.len()));
    assert_eq!(&out[..simplify3.len()], &simplify3[..]);
    let confirm3 = hex("03 50726f626500");
    assert_eq!(
        ConfirmPath::decode(&confirm3, Version::Godot3),
        Ok(ConfirmPath::Path { valid: true, path: "Probe" })
    );
}

#[test]
fn path_cache_errors() {
    assert_eq!(SimplifyPath::decode(&hex("01"), G4), Err(PathError::BadLength));
    let short = [&[1u8][..], MD5_PROBE, &[0, 1, 0, 0]].concat();
    assert_eq!(SimplifyPath::decode(&short, G4), Err(PathError::BadLength));
    let no_path = [&[1u8][..], MD5_PROBE, &[0, 1, 0, 0, 0]].concat();
    assert_eq!(SimplifyPath::decode(&no_path, G4).map(|s| s.path), Ok(""), "38 bytes: an empty path");
    let bad = [&[1u8][..], MD5_PROBE, &[0, 1, 0, 0, 0, 0xff, 0]].concat();
    assert_eq!(SimplifyPath::decode(&bad, G4), Err(PathError::InvalidText));
    assert_eq!(SimplifyPath::decode(&hex("02010000"), G4), Err(PathError::WrongCommand(2)));
    assert_eq!(ConfirmPath::decode(&[], G4), Err(PathError::BadLength));
    let nul = SimplifyPath { checksum: Some(MD5_PROBE), id: 1, path: "a\0b" };
    assert_eq!(nul.encode(G4, &mut [0; 64]), Err(PathError::Unencodable));
}

/// §3.2's worked example: the ids and the checksum Godot derived for `Probe`.
#[cfg(feature = "alloc")]
fn probe_methods() -> RpcMethods {
    let mut methods = RpcMethods::new();
    for name in [
        "ping",
        "args6",
        "bytes_only",
        "noargs",
        "unrel",
        "Zeta",
        "_under",
        "auth_only",
        "echo",
        "echo_reply",
    ] {
        methods.add_script_method(name, RpcConfig::default()).unwrap();
    }
    methods
        .add_node_method("node_cfg", RpcConfig { rpc_mode: RpcMode::AnyPeer, ..RpcConfig::default() })
        .unwrap();
    methods
}

#[cfg(feature = "alloc")]
#[test]
fn method_ids_and_checksum() {
    let methods = probe_methods();
    let order = [
        "Zeta",
        "_under",
        "args6",
        "auth_only",
        "bytes_only",
        "echo",
        "echo_reply",
        "noargs",
        "ping",
        "unrel",
    ];
    for (id, name) in order.iter().enumerate() {
        assert_eq!(methods.id(name), Some(id as u16), "{name}");
        assert_eq!(methods.method(id as u16).map(|(n, _)| n), Some(*name));
    }
    assert_eq!(methods.id("node_cfg"), Some(0x8000));
    assert_eq!(methods.method(0x8000).map(|(n, c)| (n, c.rpc_mode)), Some(("node_cfg", RpcMode::AnyPeer)));
    assert_eq!((methods.id("nope"), methods.method(10), methods.method(0x8001)), (None, None, None));
    assert_eq!(&methods.checksum(), MD5_PROBE);
    assert_eq!(&RpcMethods::new().checksum(), b"d41d8cd98f00b204e9800998ecf8427e");
    // A name in both tables is sent with its script id.
    let mut both = probe_methods();
    both.add_script_method("node_cfg", RpcConfig::default()).unwrap();
    assert_eq!(both.id("node_cfg"), Some(8));
    assert_eq!(both.method(0x8000).map(|(n, _)| n), Some("node_cfg"));
}

/// §3.1 and §10: every width, the full-path and byte-only forms.
#[test]
fn remote_call_vectors() {
    use Arguments::{Bytes, Compressed};
    let ping_hi = hex("01 04000000 02000000 68690000");
    let abc = hex("040000000300000061626300");
    let cases: Vec<(&str, RemoteCall<'_>)> = vec![
        (
            "20 13000080 08 01 04000000 02000000 68690000 50726f626500",
            RemoteCall {
                node: NodeTarget::Path("Probe"),
                method: 8,
                args: Compressed { count: 1, data: &ping_hi[1..] },
            },
        ),
        (
            "00 01 08 01 040000000200000068690000",
            RemoteCall {
                node: NodeTarget::Cached(1),
                method: 8,
                args: Compressed { count: 1, data: &ping_hi[1..] },
            },
        ),
        ("80 01 04 010203", RemoteCall { node: NodeTarget::Cached(1), method: 4, args: Bytes(&[1, 2, 3]) }),
        ("80 01 04", RemoteCall { node: NodeTarget::Cached(1), method: 4, args: Bytes(&[]) }),
        ("80 01 07", RemoteCall { node: NodeTarget::Cached(1), method: 7, args: Bytes(&[]) }),
        (
            "40 01 0080 01 0201",
            RemoteCall {
                node: NodeTarget::Cached(1),
                method: 0x8000,
                args: Compressed { count: 1, data: &[2, 1] },
            },
        ),
        ("90 2d01 00", RemoteCall { node: NodeTarget::Cached(301), method: 0, args: Bytes(&[]) }),
        (
            "a0 06000080 00 50726f62652f4d3000",
            RemoteCall { node: NodeTarget::Path("Probe/M0"), method: 0, args: Bytes(&[]) },
        ),
        (
            "00 05 08 01 040000000300000061626300",
            RemoteCall { node: NodeTarget::Cached(5), method: 8, args: Compressed { count: 1, data: &abc } },
        ),
    ];
    for (vector, call) in &cases {
        let bytes = hex(vector);
        assert_eq!(RemoteCall::decode(&bytes), Ok(*call), "{vector}");
        let mut out = [0; 64];
        let n = call.encode(&mut out).unwrap();
        assert_eq!(&out[..n], &bytes[..], "{vector}");
        assert_eq!(call.encoded_len(), n);
    }
    // Any width works for a cached id: 16-bit method id, 32-bit node id (§10).
    let wide_method = hex("40 05 0800 01 0201");
    assert_eq!(RemoteCall::decode(&wide_method).map(|c| (c.node, c.method)), Ok((NodeTarget::Cached(5), 8)));
    let wide_node = hex("20 05000000 08 01 0203");
    assert_eq!(RemoteCall::decode(&wide_node).map(|c| (c.node, c.method)), Ok((NodeTarget::Cached(5), 8)));
    // The relayed call of §3.1 is a SYS RELAY around a full-path call.
    let relayed = hex("07 03 2a000000 20 17000080 08 01 0400000005000000 72656c6179000000 50726f626500");
    let inner = RemoteCall::decode(&relayed[6..]).unwrap();
    assert_eq!((inner.node, inner.method), (NodeTarget::Path("Probe"), 8));
}

#[test]
fn remote_call_errors() {
    use RemoteCallError as E;
    let cases: &[(&str, RemoteCallError)] = &[
        ("", E::Truncated),
        ("00", E::Truncated),
        ("00 05", E::Truncated),
        ("00 05 08", E::Truncated),
        ("30 05 08 00", E::InvalidNodeWidth),
        ("01 05 08 00", E::WrongCommand(1)),
        ("20 07000080 08 00", E::InvalidPathOffset),
        ("20 04000080 08 00 41", E::InvalidPathOffset),
        ("20 07000080 08 00 ff00", E::InvalidPath),
        ("20 06000080 00 41", E::Truncated),
    ];
    for (vector, error) in cases {
        assert_eq!(RemoteCall::decode(&hex(vector)), Err(*error), "{vector}");
    }
    // A path offset that cuts the header short: the method id is read from the call part only.
    assert_eq!(RemoteCall::decode(&hex("60 06000080 08 41")), Err(E::Truncated));
    let mut out = [0; 16];
    let bad = RemoteCall { node: NodeTarget::Cached(0x8000_0001), method: 0, args: Arguments::Bytes(&[]) };
    assert_eq!(bad.encode(&mut out), Err(E::Unencodable));
    let call = RemoteCall { node: NodeTarget::Cached(1), method: 1, args: Arguments::Bytes(&[7; 20]) };
    assert_eq!(call.encode(&mut out), Err(E::BufferTooSmall { needed: 23 }));
}

#[cfg(feature = "alloc")]
#[test]
fn arguments_decode_and_encode() {
    use crate::variant::{DecodeError, DecodeOptions, Variant};
    let options = DecodeOptions::new(G4);
    // args6(true, false, 5, -200, 70000, 5000000000) as the client sent it (§3.1).
    let packet = hex("00 01 02 06 81 01 0205 4238ff 8270110100 c200f2052a01000000");
    let call = RemoteCall::decode(&packet).unwrap();
    let args = call.args.decode(&options).unwrap();
    let expected: Vec<Variant> =
        std::vec![true.into(), false.into(), 5.into(), (-200).into(), 70000.into(), 5_000_000_000i64.into()];
    assert_eq!(args, expected);
    let mut out = Vec::new();
    encode_call(NodeTarget::Cached(1), 2, &expected, G4, &mut out).unwrap();
    assert_eq!(out, packet);
    // Byte-only: one PackedByteArray or nothing.
    let mut out = Vec::new();
    encode_call(NodeTarget::Cached(1), 4, &[Variant::PackedByteArray(std::vec![1, 2, 3])], G4, &mut out)
        .unwrap();
    assert_eq!(out, hex("80 01 04 010203"));
    assert_eq!(
        RemoteCall::decode(&out).unwrap().args.decode(&options).unwrap(),
        [Variant::from(std::vec![1u8, 2, 3])]
    );
    // An empty one keeps its arity in the compressed form (Godot's byte-only form would drop it).
    let mut out = Vec::new();
    encode_call(NodeTarget::Cached(1), 4, &[Variant::PackedByteArray(Vec::new())], G4, &mut out).unwrap();
    assert_eq!(out, hex("00 01 04 01 1d000000 00000000"));
    assert_eq!(
        RemoteCall::decode(&out).unwrap().args.decode(&options).unwrap(),
        [Variant::PackedByteArray(Vec::new())]
    );
    let mut out = Vec::new();
    encode_call(NodeTarget::Path("Probe"), 8, &["hi".into()], G4, &mut out).unwrap();
    assert_eq!(out, hex("20 13000080 08 01 04000000 02000000 68690000 50726f626500"));
    // Where Godot calls the method with null, the codec names the argument that failed:
    // a malformed string, an object, a 0x44 type byte, a missing second argument.
    for (vector, index, error) in [
        ("00 05 08 01 0400000001000000ff000000", 0, DecodeError::InvalidUtf8),
        ("00 05 08 01 1800000000000000", 0, DecodeError::ObjectNotAllowed),
        ("00 05 08 01 44000000", 0, DecodeError::UnknownType(0x44)),
        ("00 05 08 02 0201", 1, DecodeError::Truncated),
    ] {
        let bytes = hex(vector);
        let call = RemoteCall::decode(&bytes).unwrap();
        assert_eq!(call.args.decode(&options), Err(ArgumentError { index, error }), "{vector}");
    }
    let many: Vec<Variant> = (0..256).map(Variant::from).collect();
    assert_eq!(
        encode_call(NodeTarget::Cached(1), 0, &many, G4, &mut Vec::new()),
        Err(RemoteCallError::TooManyArguments)
    );
}

/// §7: 3.2.3 calls and sets by name, as a client sent them and a client ran them.
#[test]
fn godot3_named_call_vectors() {
    use NamedArguments::{Call, Set};
    let hi = hex("04000000 02000000 68690000");
    let args6 = hex(
        "0100000001000000 0100000000000000 0200000005000000 0200000038ffffff 0200000070110100 0200010000f2052a01000000",
    );
    let int42 = hex("020000002a000000");
    let pba = hex("14000000 03000000 01020300");
    let cases: Vec<(&str, NamedCall<'_>)> = vec![
        (
            "00 17000080 70696e6700 01 04000000 02000000 68690000 50726f626500",
            NamedCall { node: NodeTarget::Path("Probe"), name: "ping", args: Call { count: 1, data: &hi } },
        ),
        (
            "00 01000000 70696e6700 01 04000000 02000000 68690000",
            NamedCall { node: NodeTarget::Cached(1), name: "ping", args: Call { count: 1, data: &hi } },
        ),
        (
            "00 01000000 617267733600 06",
            NamedCall { node: NodeTarget::Cached(1), name: "args6", args: Call { count: 6, data: &[] } },
        ),
        (
            "01 01000000 70726f7000 020000002a000000",
            NamedCall { node: NodeTarget::Cached(1), name: "prop", args: Set(&int42) },
        ),
        (
            "00 01000000 6e6f6172677300 00",
            NamedCall { node: NodeTarget::Cached(1), name: "noargs", args: Call { count: 0, data: &[] } },
        ),
        (
            "00 01000000 70696e6700 01 14000000 03000000 01020300",
            NamedCall { node: NodeTarget::Cached(1), name: "ping", args: Call { count: 1, data: &pba } },
        ),
    ];
    for (vector, call) in &cases {
        let bytes = hex(vector);
        let decoded = NamedCall::decode(&bytes);
        if call.name == "args6" {
            // The vector above stops at argc; the full packet follows.
            let full = [&bytes[..], &args6[..]].concat();
            let decoded = NamedCall::decode(&full).unwrap();
            assert_eq!((decoded.node, decoded.name), (call.node, call.name));
            assert_eq!(decoded.args, Call { count: 6, data: &args6 });
            continue;
        }
        assert_eq!(decoded, Ok(*call), "{vector}");
        let mut out = [0; 64];
        let n = call.encode(&mut out).unwrap();
        assert_eq!(&out[..n], &bytes[..], "{vector}");
    }
    use RemoteCallError as E;
    for (vector, error) in [
        ("02 01000000 6100 00", E::WrongCommand(2)),
        ("00 01000000 6e6f6172677300", E::Truncated),
        ("00 01000000 6e6f61726773", E::Truncated),
        ("00 04000080 6100 00", E::InvalidPathOffset),
        ("00 08000080 6100 00 ff00", E::InvalidPath),
    ] {
        assert_eq!(NamedCall::decode(&hex(vector)), Err(error), "{vector}");
    }
}

#[cfg(feature = "alloc")]
#[test]
fn godot3_arguments_decode() {
    use crate::variant::{DecodeOptions, Variant};
    let options = DecodeOptions::new(Version::Godot3);
    let packet = hex(
        "00 01000000 617267733600 06 0100000001000000 0100000000000000 0200000005000000 0200000038ffffff 0200000070110100 0200010000f2052a01000000",
    );
    let args = NamedCall::decode(&packet).unwrap().args.decode(&options).unwrap();
    let expected: Vec<Variant> =
        vec![true.into(), false.into(), 5.into(), (-200).into(), 70000.into(), 5_000_000_000i64.into()];
    assert_eq!(args, expected);
    let set = hex("01 05000000 70726f7000 0200000007000000");
    assert_eq!(NamedCall::decode(&set).unwrap().args.decode(&options).unwrap(), [Variant::Int(7)]);
    // 3.2.3 drops a call whose argument fails; the codec says which one.
    let bad = hex("00 05000000 70696e6700 02 0200000001000000 0400000001000000ff000000");
    let error = NamedCall::decode(&bad).unwrap().args.decode(&options).unwrap_err();
    assert_eq!((error.index, error.error), (1, crate::variant::DecodeError::InvalidUtf8));
}
