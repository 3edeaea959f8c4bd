//! Replays every committed fuzz seed and regression input through the fuzz harness, on stable.
//!
//! The harness (`fuzz/src/`) is the same code the cargo-fuzz targets run, so an input that
//! once crashed a target keeps failing here until the bug is fixed, and keeps passing after.
//! `MULTIPEER_WRITE_SEEDS=1 cargo test -p multipeer --features alloc --test fuzz_replay -- seeds_on_disk`
//! rewrites `fuzz/seeds/` from `harness::seeds`.
#![cfg(feature = "alloc")]

#[path = "../../fuzz/src/lib.rs"]
pub mod harness;

use std::fs;
use std::path::{Path, PathBuf};

use harness::connection::{Op, Setup, run_connection};
use harness::input::{Input, Output};
use multipeer::ws::{Event, Role};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn seeds_on_disk_match_the_generator() {
    let write = std::env::var_os("MULTIPEER_WRITE_SEEDS").is_some();
    for seed in harness::seeds::seeds() {
        let path = fuzz_dir().join("seeds").join(seed.target).join(seed.name);
        if write {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &seed.bytes).unwrap();
        } else {
            let on_disk = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(on_disk == seed.bytes, "{} is stale; rerun with MULTIPEER_WRITE_SEEDS=1", path.display());
        }
    }
}

#[test]
fn every_seed_and_regression_replays() {
    let mut replayed = 0;
    for (target, run) in harness::TARGETS {
        for kind in ["seeds", "regressions"] {
            for path in files(&fuzz_dir().join(kind).join(target)) {
                eprintln!("replaying {}", path.display());
                run(&fs::read(&path).unwrap());
                replayed += 1;
            }
        }
    }
    let generated = harness::seeds::seeds().len();
    assert!(replayed >= generated, "replayed {replayed} files, but there are {generated} seeds");
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    let seeds = harness::seeds::seeds();
    seeds.into_iter().find(|s| s.target == target && s.name == name).unwrap().bytes
}

/// The connection seeds reach the states they are named after, so the fuzzer starts deep.
#[test]
fn connection_seeds_reach_their_states() {
    let server = |name| run_connection(Role::Server, &seed("connection_server", name));
    let client = |name| run_connection(Role::Client, &seed("connection_client", name));

    let s = server("godot4-session");
    assert!(s.opened);
    assert_eq!(s.messages, 3, "direct, relay and the reassembled fragmented text");
    let Some(Event::Closed(info)) = s.terminal else { panic!("{s:?}") };
    assert_eq!((info.code.0, info.reason.as_str(), info.clean), (1001, "going", true));

    let c = client("godot4-session");
    assert!(c.opened);
    assert_eq!(c.messages, 3);
    assert!(matches!(c.terminal, Some(Event::Closed(ref i)) if i.code.0 == 4000 && i.clean));

    let s = server("message-too-big");
    assert!(matches!(s.terminal, Some(Event::Closed(ref i)) if i.code.0 == 1009));
    let s = server("invalid-utf8-across-fragments");
    assert!(matches!(s.terminal, Some(Event::Closed(ref i)) if i.code.0 == 1007));
    let s = server("godot-lenient-unmasked");
    assert!(s.opened && matches!(s.terminal, Some(Event::Closed(ref i)) if i.code.0 == 1002));
    let s = server("rfc-request-rejected");
    assert!(!s.opened && matches!(s.terminal, Some(Event::HandshakeFailed(_))));
    let s = server("handshake-timeout");
    assert!(!s.opened && s.written > 0, "a timed-out request is answered (408)");
    let s = server("echo-forward");
    assert!(s.opened, "{s:?}");
    assert_eq!(s.messages, 3, "every message forwarded, the last once the first ones were written");
    let s = server("write-through");
    assert_eq!(s.messages, 8 + 8 * 5, "every message echoed through, one by one and all at once");
    // Eight echoes and sixteen sends, written through or queued (the harness checks that the
    // wire parses as whole frames; the core's unit tests check their bytes).
    assert!(s.written > 8 * 204 + 8 * 304 + 8 * 9, "{s:?}");

    assert!(client("protocol-first-offered").opened);
    assert!(!client("protocol-never-offered").opened);
    assert!(!client("http-400").opened);
    let c = client("heartbeat-timeout");
    assert!(c.opened && matches!(c.terminal, Some(Event::Closed(ref i)) if i.code.0 == 1006));
    let c = client("client-closes");
    assert!(matches!(c.terminal, Some(Event::Closed(ref i)) if i.clean && i.code.0 == 1000));
}

#[test]
fn ops_decode_what_they_encode() {
    let ops = [
        Op::Receive(vec![1, 2, 3]),
        Op::Frame { head: 0x81, flags: 7, payload: b"hi".to_vec() },
        Op::Transmit(300),
        Op::Pop,
        Op::Recv(9),
        Op::Send { kind: 1, len: 513 },
        Op::Ping(125),
        Op::Close { code: 2, reason: 5 },
        Op::Advance(0xc3),
        Op::Decide(4),
        Op::Events,
        Op::Eof,
        Op::Abort,
    ];
    let mut out = Output::default();
    Setup::TIGHT.encode(&mut out);
    ops.iter().for_each(|op| op.encode(&mut out));
    let mut input = Input::new(&out.bytes);
    assert_eq!(Setup::decode(&mut input), Setup::TIGHT);
    let decoded: Vec<Op> =
        core::iter::from_fn(|| (!input.is_empty()).then(|| Op::decode(&mut input))).collect();
    assert_eq!(decoded, ops);
}

/// The seeds of the multiplayer, WebRTC and signalling targets reach what they are named after.
#[test]
fn multiplayer_seeds_reach_their_states() {
    use harness::lobby_client::run_lobby_client;
    use harness::multiplayer::{run_client, run_server};
    use harness::signaling::run_signaling;
    use harness::webrtc::run_mesh;
    use multipeer::peer::ConnectionStatus;

    let s = run_server(&seed("server_stateful", "godot4-relay-session"));
    assert_eq!((s.joined, s.left), (3, 3), "{s:?}");
    assert!(s.packets >= 2 && s.released == 3, "{s:?}");
    for name in ["held-large-packets", "held-large-packets-no-relay"] {
        // Three of the large packets read (two forwarded, one popped; the last read into too
        // small a buffer stays), every connection released after `close`.
        let s = run_server(&seed("server_stateful", name));
        assert_eq!((s.joined, s.left, s.packets, s.released), (3, 3, 3, 3), "{name}: {s:?}");
    }
    let s = run_server(&seed("server_stateful", "godot3-session"));
    assert!(s.joined == 2 && s.packets >= 1, "{s:?}");
    let s = run_server(&seed("server_stateful", "tight-limits"));
    assert!(s.joined == 2 && s.packets >= 2, "{s:?}");
    let s = run_server(&seed("server_stateful", "origins-addresses-refusal"));
    assert_eq!(s.joined, 1, "one good Origin, one bad, one refused: {s:?}");
    let s = run_server(&seed("server_stateful", "peer-closes"));
    assert_eq!((s.joined, s.left, s.released), (2, 2, 2), "{s:?}");

    let c = run_client(&seed("client_stateful", "godot4-relay"));
    assert!(c.succeeded && c.packets == 2 && c.peers == 2, "{c:?}");
    let c = run_client(&seed("client_stateful", "godot3"));
    assert!(c.succeeded && c.packets >= 1 && c.peers == 1, "{c:?}");
    for name in ["godot4-id-5-bytes", "godot4-id-1", "http-400", "id-timeout"] {
        let c = run_client(&seed("client_stateful", name));
        assert!(!c.succeeded && c.status == Some(ConnectionStatus::Disconnected), "{name}: {c:?}");
    }
    assert!(run_client(&seed("client_stateful", "godot3-id-then-add")).succeeded);

    let m = run_mesh(&seed("mesh_stateful", "mesh-godot-channels"));
    assert!(m.connected == 2 && m.packets == 2 && m.sends >= 2, "{m:?}");
    assert_eq!(run_mesh(&seed("mesh_stateful", "client")).connected, 1);
    assert_eq!(run_mesh(&seed("mesh_stateful", "server-compatibility")).connected, 2);
    assert!(run_mesh(&seed("mesh_stateful", "server-tight-lanes")).packets >= 2);

    let l = run_signaling(&seed("signaling", "lobby-mesh-relay-seal"));
    assert!(l.lobbies == 1 && l.relayed >= 2 && l.closed >= 3, "{l:?}");
    let l = run_signaling(&seed("signaling", "host-leaves"));
    assert!(l.closed >= 2, "{l:?}");

    let c = run_lobby_client(&seed("lobby_client", "mesh-offers-both-ways"));
    // Id 7 offers to 1 and 2 (lower ids) and answers 1000; each with a candidate.
    assert!(c.id == Some(7) && c.signals >= 6 && c.refused == 0, "{c:?}");
    let c = run_lobby_client(&seed("lobby_client", "server-client"));
    assert_eq!((c.id, c.peers), (Some(7), 1), "a client connects to the host only: {c:?}");
    let c = run_lobby_client(&seed("lobby_client", "hostile-server"));
    assert!(c.id == Some(7) && c.refused >= 8 && c.unreported > 0, "{c:?}");
}

/// The Variant seeds are what they are named after: Godot's vectors, which decode.
#[test]
fn variant_seeds_decode() {
    use harness::variant::options;
    use multipeer::variant::{Variant, compressed};

    for s in harness::seeds::seeds().into_iter().filter(|s| s.target == "variant") {
        let (&setup, bytes) = s.bytes.split_first().unwrap();
        let (_, used) =
            Variant::from_bytes(bytes, &options(setup)).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        // One value, whole (the Callable and 3.x RID seeds keep four trailing bytes on purpose).
        assert!(used + 4 > bytes.len() || ["4-callable", "3-rid"].contains(&s.name), "{}", s.name);
    }
    for s in harness::seeds::seeds().into_iter().filter(|s| s.target == "variant_compressed") {
        let (&setup, mut rest) = s.bytes.split_first().unwrap();
        let mut args = 0;
        while let Ok((_, used)) = compressed::decode(rest, &options(setup)) {
            rest = &rest[used..];
            args += 1;
        }
        assert_eq!(
            rest.is_empty(),
            s.name != "bad-type-byte",
            "{}: {args} arguments, then {rest:02x?}",
            s.name
        );
    }
}

/// Findings of the fuzz targets, as readable tests next to their raw inputs in
/// `fuzz/regressions/`.
mod findings {
    use core::time::Duration;

    use multipeer::ws::{Config, Connection, Event, State};
    use multipeer::{Instant, VecStorage};

    use super::harness::connection::server_request;

    fn open_server(config: Config) -> Connection<VecStorage> {
        let mut server = Connection::<VecStorage>::server(Instant::ZERO, config);
        let request = server_request(1).unwrap();
        assert_eq!(server.handle_input(Instant::ZERO, &request), request.len());
        assert_eq!(server.poll_event(), Some(Event::Request));
        server.accept(Instant::ZERO, None, &[]).unwrap();
        server
    }

    /// `heartbeat-zero-interval`: a zero heartbeat interval was due again at once, so the
    /// second `handle_timeout` at the same instant declared the peer dead, and `poll_timeout`
    /// never moved past now. Godot reads 0 as "off"; so does the core now.
    #[test]
    fn zero_heartbeat_interval_is_off() {
        let config = Config { heartbeat_interval: Some(Duration::ZERO), ..Config::GODOT };
        let mut server = open_server(config);
        assert_eq!(server.config().heartbeat_interval, None);
        let sent = server.buffered_amount();
        server.handle_timeout(Instant::ZERO);
        server.handle_timeout(Instant::ZERO);
        assert_eq!((server.state(), server.buffered_amount()), (State::Open, sent));
        assert_eq!(server.poll_timeout(), None);
    }

    /// `can-send-after-pings`: pings the application queued filled the outbound storage, and
    /// `can_send` (which looked at the data limits only) promised room that `send` then
    /// refused with `Full`.
    #[test]
    fn can_send_counts_the_storage_pings_hold() {
        let config = Config { outbound_buffer_size: 232, max_outbound_messages: 1, ..Config::GODOT };
        let mut server = open_server(config);
        while server.ping(&[0x70; 49]).is_ok() {}
        for len in [200, 50, 0] {
            let predicted = server.can_send(len);
            assert_eq!(server.send_binary(&vec![0; len]).is_ok(), predicted, "{len} bytes");
        }
        assert!(!server.can_send(200), "the pings hold the room 200 bytes need");
    }

    /// `empty-message-held-for-a-slot`: an empty message whose header arrived while the queue
    /// had no free slot was accepted whole but only completed by the next `handle_input`; with
    /// nothing more from the peer it never became readable. Reading a message now completes it.
    #[test]
    fn empty_message_waiting_for_a_slot_arrives_when_one_frees() {
        let mut server = open_server(Config { max_queued_messages: 1, ..Config::GODOT });
        let key = [1, 2, 3, 4];
        let mut frames = vec![0x82, 0x83];
        frames.extend_from_slice(&key);
        frames.extend(b"abc".iter().zip(key).map(|(b, k)| b ^ k));
        frames.extend_from_slice(&[0x82, 0x80]);
        frames.extend_from_slice(&key);
        assert_eq!(server.handle_input(Instant::ZERO, &frames), frames.len(), "all accepted");
        assert_eq!(server.peek_message().map(|m| m.data), Some(&b"abc"[..]));
        assert!(server.pop_message());
        assert_eq!(server.peek_message().map(|m| m.data), Some(&b""[..]), "no further input needed");
    }

    /// `signaling/binary-after-close-closes-again`: `LobbyServer::binary` on a connection it
    /// had already closed (or never knew) asked for a second Close, which an adapter that
    /// reuses keys would deliver to a new connection. It is now ignored, as `message` is.
    #[test]
    fn lobby_binary_from_a_closed_connection_is_ignored() {
        use chacha20::ChaCha8Rng;
        use multipeer::rand_core::SeedableRng;
        use multipeer::signaling::{LobbyConfig, LobbyOutput, LobbyServer};

        let mut server = LobbyServer::new(LobbyConfig::default(), ChaCha8Rng::seed_from_u64(1));
        server.connect(Instant::ZERO, 7);
        server.binary(7);
        assert!(matches!(server.poll_output(), Some(LobbyOutput::Close { conn: 7, code: 4000, .. })));
        server.binary(7);
        server.binary(8);
        assert_eq!(server.poll_output(), None);
        assert_eq!(server.connections(), 0);
    }

    /// `signaling/json-unknown-value-recursed`: a JSON value that is neither a string, object,
    /// array, literal nor number (`{"type":x}`) sent `skip_value` and `number_or_skip` into
    /// each other forever: one text message overflowed the lobby server's stack.
    #[test]
    fn json_value_of_no_type_is_invalid() {
        use multipeer::signaling::{InvalidMessage, Message};

        for text in [r#"{"type":x}"#, r#"{"x":?,"type":0,"id":0}"#, r#"{"type":0,"id":0,"data":[+]}"#] {
            assert_eq!(Message::decode(text), Err(InvalidMessage), "{text}");
        }
        assert!(Message::decode(r#"{"type":0,"id":0,"x":[-1.5,{},null]}"#).is_ok());
    }

    /// `variant/null-object-and-nil-keys` (and the compressed one): a dictionary with a Nil key
    /// and a null-object key (an object id of 0) keeps both, as Godot does, but a null object
    /// encodes as Nil, so the next decode merges the two keys. The codec is right; the harness
    /// now expects a fixed point after two rounds for values holding null objects.
    #[test]
    fn nil_and_null_object_keys_merge_on_the_next_round() {
        use multipeer::variant::{DecodeOptions, Variant, Version};

        let version = Version::GODOT_4_6;
        let options = DecodeOptions::new(version);
        let mut bytes = vec![0x1b, 0, 0, 0, 2, 0, 0, 0];
        bytes.extend([0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0]);
        bytes.extend([0x18, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0]);
        let (first, _) = Variant::from_bytes(&bytes, &options).unwrap();
        let Variant::Dictionary(d) = &first else { panic!("{first:?}") };
        assert_eq!(d.entries.len(), 2, "Nil and a null object are different keys");
        let once = first.to_bytes(version).unwrap();
        let (second, _) = Variant::from_bytes(&once, &options).unwrap();
        let Variant::Dictionary(d) = &second else { panic!("{second:?}") };
        assert_eq!(d.entries, [(Variant::Nil, Variant::Int(2))], "both became Nil: one key, the last value");
        assert_eq!(Variant::from_bytes(&second.to_bytes(version).unwrap(), &options).unwrap().0, second);
    }

    /// `scene_rpc/empty-byte-array-argument`: a call with one empty `PackedByteArray` argument
    /// was re-encoded in the byte-only form, as Godot sends it, which every receiver (Godot
    /// included) reads as a call with no argument. `encode_call` now keeps such a call in the
    /// compressed form, so the arity survives.
    #[test]
    fn one_empty_byte_array_keeps_its_arity() {
        use multipeer::scene::{NodeTarget, RemoteCall, encode_call};
        use multipeer::variant::{DecodeOptions, Variant, Version};

        let args = [Variant::PackedByteArray(Vec::new())];
        let mut packet = Vec::new();
        encode_call(NodeTarget::Cached(5), 8, &args, Version::GODOT_4_6, &mut packet).unwrap();
        let call = RemoteCall::decode(&packet).unwrap();
        assert_eq!(call.args.decode(&DecodeOptions::new(Version::GODOT_4_6)).unwrap(), args);
    }
}
