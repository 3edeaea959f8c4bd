//! Target for the SceneMultiplayer RPC codecs: `REMOTE_CALL`, `SIMPLIFY_PATH` and
//! `CONFIRM_PATH` (`scene-multiplayer.md` §2–§3), for the version the first byte selects (as in
//! [`super::variant::options`]), and Godot 3's calls by name (§7).

use multipeer::scene::{
    Arguments, ConfirmPath, NamedArguments, NamedCall, RemoteCall, RemoteCallError, SimplifyPath, encode_call,
};
use multipeer::variant::Variant;

use super::variant::{options, reencodes_unchanged};

/// Decodes the rest of the input as each packet type. Checks: errors name the cause the bytes
/// hold; a decoded packet re-encodes (Godot's canonical widths) to bytes that decode to the same
/// packet; decoded arguments re-encode into a call that decodes to the same arguments.
pub fn scene_rpc(data: &[u8]) {
    let Some((&setup, packet)) = data.split_first() else { return };
    let options = options(setup);
    let version = options.version;
    match RemoteCall::decode(packet) {
        Ok(call) => {
            assert_eq!(packet[0] & 7, 0);
            let mut out = vec![0; call.encoded_len()];
            assert_eq!(call.encode(&mut out), Ok(out.len()));
            assert!(
                out.len() <= packet.len() + 1,
                "canonical widths are never longer (but for a path's NUL)"
            );
            assert_eq!(RemoteCall::decode(&out), Ok(call));
            if let Ok(args) = call.args.decode(&options) {
                match call.args {
                    Arguments::Bytes(bytes) => assert_eq!(args.len(), usize::from(!bytes.is_empty())),
                    Arguments::Compressed { count, .. } => assert_eq!(args.len(), usize::from(count)),
                }
                let mut again = Vec::new();
                if encode_call(call.node, call.method, &args, version, &mut again).is_ok() {
                    let back = RemoteCall::decode(&again).expect("an encoded call decodes");
                    assert_eq!((back.node, back.method), (call.node, call.method));
                    let decoded = back.args.decode(&options).expect("encoded arguments decode");
                    assert_eq!(decoded.len(), args.len());
                    if args.iter().all(reencodes_unchanged) {
                        let bytes =
                            |v: &[Variant]| v.iter().map(|a| a.to_bytes(version).ok()).collect::<Vec<_>>();
                        assert_eq!(bytes(&decoded), bytes(&args));
                    }
                }
            }
        }
        Err(RemoteCallError::WrongCommand(c)) => assert!(c != 0 && c == packet[0] & 7),
        Err(RemoteCallError::InvalidNodeWidth) => assert_eq!(packet[0] >> 4 & 3, 3),
        Err(
            RemoteCallError::Truncated | RemoteCallError::InvalidPathOffset | RemoteCallError::InvalidPath,
        ) => {}
        Err(e) => panic!("a decoding error that only encoding gives: {e:?}"),
    }
    match NamedCall::decode(packet) {
        Ok(call) => {
            assert!(packet[0] <= 1);
            let mut out = vec![0; call.encoded_len()];
            assert_eq!(call.encode(&mut out), Ok(out.len()));
            assert!(out.len() <= packet.len() + 1, "only a path's missing NUL makes it longer");
            assert_eq!(NamedCall::decode(&out), Ok(call));
            if let Ok(values) = call.args.decode(&options) {
                let count = match call.args {
                    NamedArguments::Call { count, .. } => usize::from(count),
                    NamedArguments::Set(_) => 1,
                };
                assert_eq!(values.len(), count);
            }
        }
        Err(RemoteCallError::WrongCommand(c)) => assert!(c > 1 && c == packet[0]),
        Err(
            RemoteCallError::Truncated | RemoteCallError::InvalidPathOffset | RemoteCallError::InvalidPath,
        ) => {}
        Err(e) => panic!("a decoding error that only encoding gives: {e:?}"),
    }
    if let Ok(simplify) = SimplifyPath::decode(packet, version) {
        let mut out = vec![0; packet.len() + 40];
        let n = simplify.encode(version, &mut out).expect("a decoded SIMPLIFY encodes");
        assert_eq!(SimplifyPath::decode(&out[..n], version), Ok(simplify));
        assert!(n <= packet.len() + 1);
    }
    if let Ok(confirm) = ConfirmPath::decode(packet, version) {
        let mut out = vec![0; packet.len() + 8];
        let n = confirm.encode(version, &mut out).expect("a decoded CONFIRM encodes");
        assert_eq!(ConfirmPath::decode(&out[..n], version), Ok(confirm));
    }
}

/// Seeds: the packets of §2, §3.1 and §10 behind a setup byte.
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let hex = |s: &str| -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0))
            .collect()
    };
    let g4 = super::variant::SETUP_4_6;
    let cases: &[(&str, u8, &str)] = &[
        ("call-full-path", g4, "20 13000080 08 01 04000000 02000000 68690000 50726f626500"),
        ("call-cached", g4, "00 01 08 01 040000000200000068690000"),
        ("call-args6", g4, "00 01 02 06 81 01 0205 4238ff 8270110100 c200f2052a01000000"),
        ("call-bytes-only", g4, "80 01 04 010203"),
        ("call-node-config", g4, "40 01 0080 01 0201"),
        ("call-node-16", g4, "90 2d01 00"),
        ("call-path-no-args", g4, "a0 06000080 00 50726f62652f4d3000"),
        ("call-node-32", g4, "20 05000000 08 01 0203"),
        ("call-object-arg", g4, "00 05 08 01 1800000000000000"),
        (
            "call-objects-allowed",
            g4 | 0x10,
            "00 05 08 01 180000000a000000526566436f756e74656400000100000006000000736372697074000000000000",
        ),
        (
            "simplify",
            g4,
            "01 3664313736323065356639303564613139303863313131343462326366376462 00 01000000 50726f626500",
        ),
        ("confirm", g4, "02 01 01000000"),
        ("confirm-4-2", 2 << 1, "02 00 50726f626500"),
        ("simplify-3", super::variant::SETUP_3, "02 01000000 50726f626500"),
        ("confirm-3", super::variant::SETUP_3, "03 50726f626500"),
        (
            "call-3-path",
            super::variant::SETUP_3,
            "00 17000080 70696e6700 01 04000000 02000000 68690000 50726f626500",
        ),
        (
            "call-3-args6",
            super::variant::SETUP_3,
            "00 01000000 617267733600 06 0100000001000000 0100000000000000 0200000005000000 0200000038ffffff 0200000070110100 0200010000f2052a01000000",
        ),
        ("set-3", super::variant::SETUP_3, "01 01000000 70726f7000 020000002a000000"),
    ];
    cases
        .iter()
        .map(|(name, setup, packet)| {
            let mut input = vec![*setup];
            input.extend(hex(packet));
            ("scene_rpc", *name, input)
        })
        .collect()
}
