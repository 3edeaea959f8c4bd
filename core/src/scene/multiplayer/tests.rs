//! The machine against the bytes Godot 4.6.3 sends and expects (`scene-multiplayer.md` §2–§5,
//! §10), and two machines talking through the WebSocket server and clients in memory.

use std::vec;
use std::vec::Vec;

use super::*;
use crate::peer::TransferMode;
use crate::scene::{RpcConfig, RpcMode};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.chunks(2).map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
}

fn id(n: u32) -> PeerId {
    PeerId::new(n).unwrap()
}

const T0: Instant = Instant::ZERO;
const SIMPLIFY_PROBE: &str =
    "01 3664313736323065356639303564613139303863313131343462326366376462 00 01000000 50726f626500";

/// `Probe` of `harness/scene/rpc_client_g4.gd`: its methods, modes and arities.
fn probe() -> RpcNode {
    let any = RpcConfig { rpc_mode: RpcMode::AnyPeer, ..RpcConfig::default() };
    let mut node = RpcNode::new();
    for (name, arity) in [
        ("ping", Arity::exactly(1)),
        ("args6", Arity::exactly(6)),
        ("bytes_only", Arity { min: 0, max: 1 }),
        ("noargs", Arity::exactly(0)),
        ("Zeta", Arity::exactly(0)),
        ("_under", Arity::exactly(1)),
        ("echo_reply", Arity::exactly(1)),
    ] {
        node.script_method(name, any, arity).unwrap();
    }
    let unrel = RpcConfig { transfer_mode: TransferMode::Unreliable, channel: 2, ..any };
    node.script_method("unrel", unrel, Arity::exactly(1)).unwrap();
    node.script_method("auth_only", RpcConfig::default(), Arity::exactly(1)).unwrap();
    node.script_method("echo", RpcConfig { call_local: true, ..any }, Arity::exactly(1)).unwrap();
    node.node_method("node_cfg", any, Arity::exactly(1)).unwrap();
    // Godot 3 (`harness/scene/rpc_client_g3.gd`): `remote`, `puppet`, `master` and `remotesync`
    // functions and a `remote var`.
    node.remote_method("ping", RemoteMode::Remote, Arity::exactly(1))
        .remote_method("args6", RemoteMode::Remote, Arity::exactly(6))
        .remote_method("noargs", RemoteMode::Remote, Arity::exactly(0))
        .remote_method("puppet_only", RemoteMode::Puppet, Arity::exactly(1))
        .remote_method("master_only", RemoteMode::Master, Arity::exactly(1))
        .remote_method("echo", RemoteMode::RemoteSync, Arity::exactly(1))
        .remote_method("master_sync", RemoteMode::MasterSync, Arity::exactly(1))
        .remote_property("prop", RemoteMode::Remote)
        .remote_property("puppet_prop", RemoteMode::PuppetSync);
    node
}

fn machine(local: u32, config: SceneConfig) -> SceneMultiplayer {
    let mut mp = SceneMultiplayer::new(config);
    mp.set_unique_id(Some(id(local)));
    mp.add_node("Probe", probe());
    mp
}

fn events(mp: &mut SceneMultiplayer) -> Vec<SceneEvent> {
    core::iter::from_fn(|| mp.poll_event()).collect()
}

fn sent(mp: &mut SceneMultiplayer) -> Vec<(u32, Vec<u8>)> {
    core::iter::from_fn(|| mp.poll_transmit()).map(|t| (t.to.to_godot() as u32, t.data)).collect()
}

fn rpc(sender: u32, method: &str, args: Vec<Variant>) -> SceneEvent {
    SceneEvent::Rpc(RpcCall { sender: id(sender), node: "Probe".into(), method: method.into(), args })
}

fn refused(events: &[SceneEvent]) -> Vec<&Refusal> {
    events
        .iter()
        .filter_map(|e| match e {
            SceneEvent::Refused { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

/// §2 and §3.1: what a 4.6.3 client sends to a server, and the server's answers.
#[test]
fn server_receives_godot_client_calls() {
    let mut server = machine(1, SceneConfig::default());
    server.handle_peer_connected(T0, id(7));
    assert_eq!(events(&mut server), vec![SceneEvent::PeerConnected(id(7))]);
    // The first call comes before the CONFIRM: the full-path form.
    server.handle_packet(T0, id(7), &hex(SIMPLIFY_PROBE));
    assert_eq!(sent(&mut server), vec![(7, hex("02 01 01000000"))]);
    let cases: Vec<(&str, SceneEvent)> = vec![
        ("20 13000080 08 01 04000000 02000000 68690000 50726f626500", rpc(7, "ping", vec!["hi".into()])),
        ("00 01 08 01 040000000200000068690000", rpc(7, "ping", vec!["hi".into()])),
        (
            "00 01 02 06 81 01 0205 4238ff 8270110100 c200f2052a01000000",
            rpc(
                7,
                "args6",
                vec![
                    true.into(),
                    false.into(),
                    5.into(),
                    (-200).into(),
                    70000.into(),
                    5_000_000_000_i64.into(),
                ],
            ),
        ),
        ("80 01 04 010203", rpc(7, "bytes_only", vec![Variant::PackedByteArray(vec![1, 2, 3])])),
        ("80 01 04", rpc(7, "bytes_only", vec![])),
        ("80 01 07", rpc(7, "noargs", vec![])),
        ("40 01 0080 01 0201", rpc(7, "node_cfg", vec![1.into()])),
    ];
    for (bytes, expected) in cases {
        server.handle_packet(T0, id(7), &hex(bytes));
        assert_eq!(events(&mut server), vec![expected], "{bytes}");
        assert_eq!(server.remote_sender_id(), Some(id(7)));
    }
    // Refusals (§3.3, §10): not the authority, unknown method / cache id / path, arity, a bad
    // argument (Godot would call ping(null)), an unknown SYS, a RAW that is too short.
    let refusals = [
        "00 01 03 01 0201",
        "00 01 63 00",
        "00 09 08 01 0201",
        "20 06000080 80 4e6f706500",
        "00 01 08 02 0201 0202",
        "00 01 08 01 04000000 01000000 ff000000",
        "07 09 00000000",
        "03",
    ];
    for bytes in refusals {
        server.handle_packet(T0, id(7), &hex(bytes));
        let events = events(&mut server);
        assert_eq!(refused(&events).len(), 1, "{bytes}: {events:?}");
    }
    // A second SIMPLIFY for the same id gets no second CONFIRM (4.3+).
    server.handle_packet(T0, id(7), &hex(SIMPLIFY_PROBE));
    assert_eq!(refused(&events(&mut server)), vec![&Refusal::DuplicateCacheId(1)]);
    assert_eq!(sent(&mut server), vec![]);
    assert_eq!(server.stats().rpcs_in, 7);
    // Only the first call named the node by path.
    assert_eq!(server.stats().rpcs_in_by_path, 1);
}

/// §2's sender state machine, as counted: the full-path form until the peer confirmed, the
/// cache id after, and a `valid=0` CONFIRM counts as confirmed.
#[test]
fn calls_by_path_until_confirmed() {
    let mut client = machine(9, SceneConfig::default());
    client.handle_peer_connected(T0, id(1));
    let _ = events(&mut client);
    for _ in 0..2 {
        client.rpc(Target::Server, "Probe", "ping", &["a".into()]).unwrap();
    }
    let packets = sent(&mut client);
    assert_eq!(packets.len(), 3, "one SIMPLIFY and two calls: {packets:?}");
    assert_eq!(packets[1].1[0], 0x20, "full path");
    assert_eq!(packets[2].1[0], 0x20, "full path until the CONFIRM");
    client.handle_packet(T0, id(1), &hex("02 00 01000000"));
    assert!(matches!(events(&mut client)[..], [SceneEvent::ChecksumMismatch { .. }]));
    client.rpc(Target::Server, "Probe", "ping", &["a".into()]).unwrap();
    assert_eq!(sent(&mut client), vec![(1, hex("00 01 08 01 04000000 01000000 61000000"))]);
    let stats = client.stats();
    assert_eq!((stats.rpcs_out, stats.rpcs_out_by_path), (3, 2));
}

/// §10: what a 4.6.3 client executed when it came from peer 1 (`Probe` cached as id 5), and
/// §3.1's relayed call from peer 42.
#[test]
fn client_receives_godot_server_calls() {
    let mut client = machine(9, SceneConfig::default());
    client.handle_peer_connected(T0, PeerId::SERVER);
    assert_eq!(events(&mut client), vec![SceneEvent::ConnectedToServer, SceneEvent::PeerConnected(id(1))]);
    let simplify = hex(&SIMPLIFY_PROBE.replace("01000000 5072", "05000000 5072"));
    client.handle_packet(T0, id(1), &simplify);
    assert_eq!(sent(&mut client), vec![(1, hex("02 01 05000000"))]);
    for (bytes, expected) in [
        ("00050801 040000000300000061626300", rpc(1, "ping", vec!["abc".into()])),
        ("20 13000080 08 01 04000000 04000000 66756c6c 50726f626500", rpc(1, "ping", vec!["full".into()])),
        ("4005080001 0201", rpc(1, "ping", vec![1.into()])),
        ("20050000000801 0203", rpc(1, "ping", vec![3.into()])),
        ("800504", rpc(1, "bytes_only", vec![])),
        ("00 05 03 01 0201", rpc(1, "auth_only", vec![1.into()])),
    ] {
        client.handle_packet(T0, id(1), &hex(bytes));
        assert_eq!(events(&mut client), vec![expected], "{bytes}");
    }
    // Peer 42: announced, its SIMPLIFY relayed (the CONFIRM goes back through the server).
    client.handle_packet(T0, id(1), &hex("07 01 2a000000"));
    assert_eq!(events(&mut client), vec![SceneEvent::PeerConnected(id(42))]);
    let relayed_simplify = [&hex("07 03 2a000000")[..], &hex(SIMPLIFY_PROBE)].concat();
    client.handle_packet(T0, id(1), &relayed_simplify);
    assert_eq!(sent(&mut client), vec![(1, hex("07 03 2a000000 02 01 01000000"))]);
    client.handle_packet(T0, id(1), &hex("07032a000000 0001080102 09"));
    assert_eq!(events(&mut client), vec![rpc(42, "ping", vec![9.into()])]);
    // Verified on 4.6.3: `auth_only` relayed from 42 is refused (the authority is 1).
    client.handle_packet(T0, id(1), &hex("07032a000000 0001030102 09"));
    assert!(matches!(refused(&events(&mut client))[..], [Refusal::NotAllowed { .. }]));
    // A relay from a peer never announced, a RELAY inside a RELAY, an ADD_PEER from a peer.
    client.handle_packet(T0, id(1), &hex("07032b000000 0001080102 09"));
    client.handle_packet(T0, id(1), &hex("07032a000000 07032a000000 0302"));
    client.handle_packet(T0, id(42), &hex("07 01 2b000000"));
    assert_eq!(refused(&events(&mut client)).len(), 3);
    client.handle_packet(T0, id(1), &hex("07 02 2a000000"));
    assert_eq!(events(&mut client), vec![SceneEvent::PeerDisconnected(id(42))]);
}

/// §2 sender side and §3.1: SIMPLIFY before the first call, the full path until CONFIRM,
/// compact ids after; a relayed call from a client; call_local; targets.
#[test]
fn client_sends_godot_bytes() {
    let mut client = machine(9, SceneConfig::default());
    client.handle_peer_connected(T0, PeerId::SERVER);
    client.rpc(Target::Server, "Probe", "ping", &["hi".into()]).unwrap();
    let first =
        vec![(1, hex(SIMPLIFY_PROBE)), (1, hex("20 13000080 08 01 04000000 02000000 68690000 50726f626500"))];
    assert_eq!(sent(&mut client), first);
    client.rpc(Target::Server, "Probe", "ping", &["hi".into()]).unwrap();
    assert_eq!(sent(&mut client), vec![first[1].clone()], "SIMPLIFY is not repeated");
    client.handle_packet(T0, id(1), &hex("02 01 01000000"));
    let _ = events(&mut client);
    client.rpc(Target::Server, "Probe", "ping", &["hi".into()]).unwrap();
    client
        .rpc(
            Target::Server,
            "Probe",
            "args6",
            &[true.into(), false.into(), 5.into(), (-200).into(), 70000.into(), 5_000_000_000_i64.into()],
        )
        .unwrap();
    client.rpc(Target::Server, "Probe", "bytes_only", &[Variant::PackedByteArray(vec![1, 2, 3])]).unwrap();
    client.rpc(Target::Server, "Probe", "noargs", &[]).unwrap();
    client.rpc(Target::Server, "Probe", "node_cfg", &[1.into()]).unwrap();
    let expected = [
        "00 01 08 01 040000000200000068690000",
        "00 01 02 06 81 01 0205 4238ff 8270110100 c200f2052a01000000",
        "80 01 04 010203",
        "80 01 07",
        "40 01 0080 01 0201",
    ];
    assert_eq!(sent(&mut client), expected.iter().map(|h| (1, hex(h))).collect::<Vec<_>>());
    // Peer 42 through the relay: its own SIMPLIFY, then the full-path call (§3.1's vector).
    client.handle_packet(T0, id(1), &hex("07 01 2a000000"));
    let _ = events(&mut client);
    client.rpc(Target::Peer(id(42)), "Probe", "ping", &["relay".into()]).unwrap();
    let relay = hex("07 03 2a000000");
    assert_eq!(
        sent(&mut client),
        vec![
            (1, [&relay[..], &hex(SIMPLIFY_PROBE)].concat()),
            (1, hex("07 03 2a000000 20 17000080 08 01 0400000005000000 72656c6179000000 50726f626500")),
        ]
    );
    // Broadcast: one packet per target; call_local runs here too.
    client.rpc(Target::Broadcast, "Probe", "echo", &[1.into()]).unwrap();
    let packets = sent(&mut client);
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[0].1, hex("00 01 05 01 0201"));
    assert_eq!(packets[1].1, hex("07 03 2a000000 20 09000080 05 01 0201 50726f626500"));
    assert_eq!(events(&mut client), vec![rpc(9, "echo", vec![1.into()])]);
    // −42: only the server.
    client.rpc(Target::AllExcept(id(42)), "Probe", "ping", &[1.into()]).unwrap();
    assert_eq!(sent(&mut client).len(), 1);
    // Errors: nothing queued.
    assert_eq!(client.rpc(Target::Peer(id(9)), "Probe", "ping", &[1.into()]), Err(SendError::SelfTarget));
    assert_eq!(client.rpc(Target::Peer(id(5)), "Probe", "ping", &[]), Err(SendError::UnknownPeer(id(5))));
    assert_eq!(client.rpc(Target::Server, "Probe", "nope", &[]), Err(SendError::UnknownMethod));
    assert_eq!(client.rpc(Target::Server, "Nope", "ping", &[]), Err(SendError::UnknownNode));
    let many = vec![Variant::Nil; 256];
    assert!(matches!(client.rpc(Target::Server, "Probe", "ping", &many), Err(SendError::Encode(_))));
    assert_eq!(sent(&mut client), vec![]);
    // RAW.
    client.send_bytes(Target::Server, &[0xee], TransferMode::Reliable, 0).unwrap();
    assert_eq!(sent(&mut client), vec![(1, hex("03 ee"))]);
    assert_eq!(client.send_bytes(Target::Server, &[], TransferMode::Reliable, 0), Err(SendError::Empty));
    client.handle_packet(T0, id(1), &hex("03 ee"));
    assert_eq!(events(&mut client), vec![SceneEvent::PeerPacket { from: id(1), data: vec![0xee] }]);
}

/// §5: a 4.6.3 client with `auth_callback` against a server that answers "srv" and completes,
/// byte for byte, seen from both machines.
#[test]
fn auth_exchange() {
    let auth = SceneConfig { auth: true, ..SceneConfig::default() };
    let mut client = machine(9, auth);
    client.handle_peer_connected(T0, PeerId::SERVER);
    assert_eq!(events(&mut client), vec![SceneEvent::PeerAuthenticating(id(1))]);
    client.handle_packet(T0, id(1), &hex("07 00 737276"));
    assert_eq!(events(&mut client), vec![SceneEvent::AuthData { peer: id(1), data: b"srv".to_vec() }]);
    client.send_auth(id(1), b"cli").unwrap();
    client.complete_auth(id(1)).unwrap();
    assert_eq!(sent(&mut client), vec![(1, hex("07 00 636c69")), (1, hex("07 00"))]);
    assert_eq!(client.send_auth(id(1), b"x"), Err(SendError::AuthCompleted));
    assert_eq!(client.rpc(Target::Server, "Probe", "ping", &[1.into()]), Err(SendError::UnknownPeer(id(1))));
    // Anything but AUTH from a pending peer is dropped (4.6.3 dropped this RAW).
    client.handle_packet(T0, id(1), &hex("03 ee"));
    assert_eq!(refused(&events(&mut client)), vec![&Refusal::NotAuthenticated]);
    client.handle_packet(T0, id(1), &hex("07 00"));
    assert_eq!(events(&mut client), vec![SceneEvent::ConnectedToServer, SceneEvent::PeerConnected(id(1))]);
    // A completion after admission is ignored silently.
    client.handle_packet(T0, id(1), &hex("07 00"));
    assert_eq!(events(&mut client), vec![]);

    // The server side of §5's second sequence: the client completes last.
    let mut server = machine(1, auth);
    server.handle_peer_connected(T0, id(0x47d1_bf4e));
    let peer = id(0x47d1_bf4e);
    assert_eq!(events(&mut server), vec![SceneEvent::PeerAuthenticating(peer)]);
    server.send_auth(peer, b"srv").unwrap();
    server.handle_packet(T0, peer, &hex("07 00 636c69"));
    assert_eq!(events(&mut server), vec![SceneEvent::AuthData { peer, data: b"cli".to_vec() }]);
    server.complete_auth(peer).unwrap();
    assert_eq!(
        sent(&mut server),
        vec![(peer.get() as u32, hex("07 00 737276")), (peer.get() as u32, hex("07 00"))]
    );
    assert_eq!(events(&mut server), vec![]);
    server.handle_packet(T0, peer, &hex("07 00"));
    assert_eq!(events(&mut server), vec![SceneEvent::PeerConnected(peer)]);
    server.rpc(Target::Peer(peer), "Probe", "ping", &["from-server".into()]).unwrap();
    let packets = sent(&mut server);
    assert_eq!(
        packets[1].1,
        hex("20 1b000080 08 01 04000000 0b000000 66726f6d2d73657276657200 50726f626500")
    );
}

/// §5: `auth_timeout` counts from the transport connect; the peer is reported and dropped.
#[test]
fn auth_timeout_and_departure() {
    let config = SceneConfig { auth: true, ..SceneConfig::default() };
    let mut server = machine(1, config);
    server.handle_peer_connected(T0, id(5));
    server.handle_peer_connected(T0 + core::time::Duration::from_secs(1), id(6));
    assert_eq!(server.poll_timeout(), Some(T0 + core::time::Duration::from_secs(3)));
    server.handle_timeout(T0 + core::time::Duration::from_millis(2999));
    assert_eq!(server.poll_disconnect(), None);
    let _ = events(&mut server);
    server.handle_timeout(T0 + core::time::Duration::from_secs(3));
    assert_eq!(events(&mut server), vec![SceneEvent::PeerAuthenticationFailed(id(5))]);
    assert_eq!((server.poll_disconnect(), server.poll_disconnect()), (Some(id(5)), None));
    server.handle_peer_disconnected(T0, id(5));
    server.handle_peer_disconnected(T0, id(6));
    assert_eq!(events(&mut server), vec![SceneEvent::PeerAuthenticationFailed(id(6))]);
    assert_eq!(server.poll_timeout(), None);
    // Packets from a peer that is gone, or never was.
    server.handle_packet(T0, id(6), &hex("07 00"));
    assert_eq!(refused(&events(&mut server)), vec![&Refusal::NotConnected]);
}

/// The server relay: admission announces peers both ways, relayed packets are forwarded as
/// `RELAY(source, …)`, broadcasts are processed here too, departures are announced.
#[test]
fn server_relays_between_clients() {
    let mut server = machine(1, SceneConfig::default());
    server.handle_peer_connected(T0, id(5));
    server.handle_peer_connected(T0, id(6));
    assert_eq!(sent(&mut server), vec![(5, hex("07 01 06000000")), (6, hex("07 01 05000000"))]);
    server.handle_packet(T0, id(5), &hex("07 03 06000000 03 ab"));
    assert_eq!(sent(&mut server), vec![(6, hex("07 03 05000000 03 ab"))]);
    assert_eq!(events(&mut server)[2..], []);
    server.handle_packet(T0, id(5), &hex("07 03 00000000 03 ab"));
    assert_eq!(sent(&mut server), vec![(6, hex("07 03 05000000 03 ab"))]);
    assert_eq!(events(&mut server), vec![SceneEvent::PeerPacket { from: id(5), data: vec![0xab] }]);
    server.handle_packet(T0, id(5), &hex("07 03 ffffffff 03 ab"));
    assert_eq!(sent(&mut server).len(), 1);
    assert_eq!(events(&mut server), vec![]);
    for bad in ["07 03 01000000 03 ab", "07 03 05000000 03 ab", "07 03 09000000 03 ab", "07 01 06000000"] {
        server.handle_packet(T0, id(5), &hex(bad));
        assert_eq!(refused(&events(&mut server)).len(), 1, "{bad}");
    }
    server.handle_peer_disconnected(T0, id(5));
    assert_eq!(sent(&mut server), vec![(6, hex("07 02 05000000"))]);
    assert_eq!(events(&mut server), vec![SceneEvent::PeerDisconnected(id(5))]);
}

/// 4.0–4.2 confirm by path.
#[test]
fn confirm_by_path_before_4_3() {
    let config =
        SceneConfig { version: crate::variant::Version::Godot4 { minor: 2 }, ..SceneConfig::default() };
    let mut server = machine(1, config);
    server.handle_peer_connected(T0, id(5));
    server.handle_packet(T0, id(5), &hex(SIMPLIFY_PROBE));
    assert_eq!(sent(&mut server), vec![(5, hex("02 01 50726f626500"))]);
    server.rpc(Target::Peer(id(5)), "Probe", "ping", &[1.into()]).unwrap();
    let _ = sent(&mut server);
    server.handle_packet(T0, id(5), &hex("02 00 50726f626500"));
    let events = events(&mut server);
    assert!(events.contains(&SceneEvent::ChecksumMismatch { peer: id(5), path: "Probe".into() }));
    server.rpc(Target::Peer(id(5)), "Probe", "ping", &[1.into()]).unwrap();
    assert_eq!(sent(&mut server), vec![(5, hex("00 01 08 01 0201"))]);
}

/// Bounds: the path cache per peer and the outbound queue.
#[test]
fn limits() {
    let config = SceneConfig { max_cached_paths: 1, max_queued_packets: 3, ..SceneConfig::default() };
    let mut server = machine(1, config);
    server.add_node("Other", RpcNode::new());
    server.handle_peer_connected(T0, id(5));
    server.handle_packet(T0, id(5), &hex(SIMPLIFY_PROBE));
    let other = hex(&SIMPLIFY_PROBE.replace("01000000 50726f626500", "02000000 4f7468657200"));
    server.handle_packet(T0, id(5), &other);
    assert_eq!(refused(&events(&mut server)), vec![&Refusal::CacheFull]);
    server.rpc(Target::Peer(id(5)), "Probe", "ping", &[1.into()]).unwrap();
    assert_eq!(server.rpc(Target::Peer(id(5)), "Probe", "ping", &[1.into()]), Err(SendError::Full));
    assert_eq!(sent(&mut server).len(), 3);
    // A client learns at most `max_relayed_peers` peers from the server.
    let mut client = machine(9, SceneConfig { max_relayed_peers: 1, ..SceneConfig::default() });
    client.handle_peer_connected(T0, PeerId::SERVER);
    client.handle_packet(T0, id(1), &hex("07 01 2a000000"));
    client.handle_packet(T0, id(1), &hex("07 01 2b000000"));
    assert_eq!(refused(&events(&mut client)), vec![&Refusal::CacheFull]);
    assert_eq!(client.peers().count(), 2);
}

/// A broadcast with nobody to reach sends nothing and is no error (Godot returns OK).
#[test]
fn broadcast_to_nobody() {
    let mut server = machine(1, SceneConfig::default());
    assert_eq!(server.rpc(Target::Broadcast, "Probe", "ping", &[1.into()]), Ok(()));
    assert_eq!(server.send_bytes(Target::Broadcast, b"x", TransferMode::Reliable, 0), Ok(()));
    assert_eq!(server.rpc(Target::Server, "Probe", "ping", &[1.into()]), Err(SendError::SelfTarget));
    assert_eq!(sent(&mut server), vec![]);
    assert_eq!(server.rpc(Target::Server, "Probe", "echo", &[1.into()]), Ok(()));
    assert_eq!(events(&mut server), vec![rpc(1, "echo", vec![1.into()])]);
    // A new session starts from nothing: SIMPLIFY again, ids from 1.
    server.handle_peer_connected(T0, id(5));
    server.rpc(Target::Peer(id(5)), "Probe", "ping", &[1.into()]).unwrap();
    server.clear();
    server.set_unique_id(Some(id(1)));
    server.handle_peer_connected(T0, id(5));
    let _ = events(&mut server);
    server.rpc(Target::Peer(id(5)), "Probe", "ping", &[1.into()]).unwrap();
    let packets = sent(&mut server);
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[0].1, hex(SIMPLIFY_PROBE));
}

#[path = "tests_net.rs"]
mod net;

#[path = "tests_godot3.rs"]
mod godot3;

#[path = "tests_flow.rs"]
mod flow;

/// §6: the replication headers of a 4.6.3 server's capture, reported as events.
#[test]
fn replication_headers() {
    let mut client = machine(9, SceneConfig::default());
    client.handle_peer_connected(T0, PeerId::SERVER);
    let _ = events(&mut client);
    let spawn = "04 ff 02000000 01000000 01000000 06000000 02000000 5468696e6700 \
                 1c000000 1b000000 01000000 0400000002000000 68700000 0200000005000000 \
                 05000000 0000803f 00000040";
    let cases = [
        (spawn, Replication::Spawn { spawner: 2, scene: 0xff, net_id: 1 }),
        ("06 1400 02000000 0c000000 050000000000803f00000040", Replication::Sync { time: Some(20) }),
        ("16 02000000 0100000000000000 08000000 0300000000000000", Replication::Sync { time: None }),
        ("05 01000000", Replication::Despawn { net_id: 1 }),
    ];
    for (bytes, header) in cases {
        client.handle_packet(T0, id(1), &hex(bytes));
        assert_eq!(events(&mut client), vec![SceneEvent::Replication { from: id(1), header }], "{bytes}");
    }
    for short in ["04 ff 02000000", "05 0100", "06 1400 02000000", "16 02000000"] {
        client.handle_packet(T0, id(1), &hex(short));
        assert_eq!(refused(&events(&mut client)), vec![&Refusal::Malformed], "{short}");
    }
}

/// Found by `scene_machine`: a client with peers connected to it directly (a WebRTC mesh)
/// sends to them directly, and wraps only peers it knows through the server in `RELAY`.
#[test]
fn direct_peers_of_a_client_are_not_relayed() {
    let mut client = machine(9, SceneConfig::default());
    client.handle_peer_connected(T0, PeerId::SERVER);
    client.handle_peer_connected(T0, id(5));
    client.handle_packet(T0, id(1), &hex("07 01 2a000000"));
    client.send_bytes(Target::Broadcast, b"x", TransferMode::Reliable, 0).unwrap();
    assert_eq!(
        sent(&mut client),
        vec![(1, hex("03 78")), (5, hex("03 78")), (1, hex("07 03 2a000000 03 78"))]
    );
}
