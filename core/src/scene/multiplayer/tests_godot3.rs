//! The machine in Godot 3 mode against the bytes 3.2.3 sends and expects
//! (`scene-multiplayer.md` §7): a 3.2.3 client (id 0x12345678) calling a server, the server
//! calling it, the client's side of the permissions, and `rset`.

use std::format;
use std::vec;
use std::vec::Vec;

use super::{T0, events, hex, id, machine, refused, sent};
use crate::peer::{PeerId, Target, TransferMode};
use crate::scene::{Refusal, RpcCall, RsetCall, SceneConfig, SceneEvent, SendError};
use crate::variant::Variant;

const CLIENT: u32 = 0x1234_5678;

fn rpc(sender: u32, method: &str, args: Vec<Variant>) -> SceneEvent {
    SceneEvent::Rpc(RpcCall { sender: id(sender), node: "Probe".into(), method: method.into(), args })
}

fn rset(sender: u32, property: &str, value: Variant) -> SceneEvent {
    SceneEvent::Rset(RsetCall { sender: id(sender), node: "Probe".into(), property: property.into(), value })
}

/// A 3.x machine with `peers` connected; auth is asked for, and 3.x has none.
fn godot3(local: u32, peers: &[u32]) -> super::SceneMultiplayer {
    let mut mp = machine(local, SceneConfig { auth: true, ..SceneConfig::godot3() });
    for &p in peers {
        mp.handle_peer_connected(T0, id(p));
    }
    let expected: Vec<SceneEvent> = peers.iter().map(|&p| SceneEvent::PeerConnected(id(p))).collect();
    let connected: Vec<SceneEvent> =
        events(&mut mp).into_iter().filter(|e| matches!(e, SceneEvent::PeerConnected(_))).collect();
    assert_eq!(connected, expected, "admitted at once");
    mp
}

/// §7: every call of `harness/scene/rpc_client_g3.gd`, as the server receives it.
#[test]
fn server_receives_godot3_client_calls() {
    let mut server = godot3(1, &[CLIENT]);
    server.handle_packet(T0, id(CLIENT), &hex("02 01000000 50726f626500"));
    assert_eq!(sent(&mut server), vec![(CLIENT, hex("03 50726f626500"))], "CONFIRM by path");
    let cases: Vec<(&str, SceneEvent)> = vec![
        (
            "00 17000080 70696e6700 01 04000000 02000000 68690000 50726f626500",
            rpc(CLIENT, "ping", vec!["hi".into()]),
        ),
        ("00 01000000 70696e6700 01 04000000 02000000 68690000", rpc(CLIENT, "ping", vec!["hi".into()])),
        (
            "00 01000000 617267733600 06 0100000001000000 0100000000000000 0200000005000000 \
             0200000038ffffff 0200000070110100 0200010000f2052a01000000",
            rpc(
                CLIENT,
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
        ("01 01000000 70726f7000 020000002a000000", rset(CLIENT, "prop", 42.into())),
        ("00 01000000 6e6f6172677300 00", rpc(CLIENT, "noargs", vec![])),
        (
            "00 01000000 70696e6700 01 14000000 03000000 01020300",
            rpc(CLIENT, "ping", vec![Variant::PackedByteArray(vec![1, 2, 3])]),
        ),
        // `master` runs on the master (the server), whoever calls.
        (
            "00 01000000 6d61737465725f6f6e6c7900 01 0200000007000000",
            rpc(CLIENT, "master_only", vec![7.into()]),
        ),
    ];
    for (bytes, expected) in cases {
        server.handle_packet(T0, id(CLIENT), &hex(bytes));
        assert_eq!(events(&mut server), vec![expected], "{bytes}");
        assert_eq!(server.remote_sender_id(), Some(id(CLIENT)));
    }
    assert_eq!(server.stats().rpcs_in, 7);

    let refusals: Vec<(&str, Refusal)> = vec![
        // `puppet` only from the master, and never on it.
        ("00 01000000 7075707065745f6f6e6c7900 01 0200000007000000", not_allowed("puppet_only")),
        // A name without a mode: 3.2.3 refuses it as mode 0.
        ("00 01000000 6e6f706500 00", not_allowed("nope")),
        ("01 01000000 70696e6700 0200000001000000", not_allowed("ping")),
        // 3.2.3 drops a call whose argument does not decode (4.x would call it with null).
        ("00 01000000 70696e6700 01 04000000 01000000 ff000000", Refusal::Malformed),
        ("00 01000000 70696e6700 02 0200000001000000", Refusal::Malformed),
        ("01 01000000 70726f7000", Refusal::Malformed),
        ("00 09000000 70696e6700 00", Refusal::UnknownCacheId(9)),
        ("00 0b000080 70696e6700 00 4e6f706500", Refusal::UnknownNode("Nope".into())),
        ("00 01000000 70696e67", Refusal::Malformed),
        ("05 00", Refusal::UnknownCommand(5)),
        // 3.x switches on the whole byte: 4.x's flag bits make another command.
        ("08 01000000 70696e6700 00", Refusal::UnknownCommand(8)),
        ("04", Refusal::Malformed),
        // A CONFIRM of a path this server never simplified to the client.
        ("03 50726f626500", Refusal::UnexpectedConfirm),
        ("03 4e6f706500", Refusal::UnexpectedConfirm),
    ];
    for (bytes, expected) in refusals {
        server.handle_packet(T0, id(CLIENT), &hex(bytes));
        let got = events(&mut server);
        let reasons = refused(&got);
        assert_eq!(reasons.len(), 1, "{bytes}: {got:?}");
        match expected {
            // The argument and the truncation errors carry their details.
            Refusal::Malformed => assert!(
                matches!(
                    reasons[0],
                    Refusal::BadArgument { .. } | Refusal::WrongArity { .. } | Refusal::BadCall(_)
                ) || *reasons[0] == Refusal::Malformed,
                "{bytes}: {reasons:?}"
            ),
            expected => assert_eq!(*reasons[0], expected, "{bytes}"),
        }
    }
    server.handle_packet(T0, id(CLIENT), &hex("04 ab"));
    assert_eq!(events(&mut server), vec![SceneEvent::PeerPacket { from: id(CLIENT), data: vec![0xab] }]);
    assert!(sent(&mut server).is_empty(), "no answers to refused packets");
}

fn not_allowed(method: &str) -> Refusal {
    Refusal::NotAllowed { node: "Probe".into(), method: method.into() }
}

/// §7 "Server → 3.2.3 client": SIMPLIFY before the first call, the full path until the
/// CONFIRM, one packet for the whole target once every target confirmed.
#[test]
fn server_calls_godot3_clients() {
    const OTHER: u32 = 42;
    let mut server = godot3(1, &[CLIENT, OTHER]);
    let ping_abc = "70696e6700 01 04000000 03000000 61626300";
    server.rpc(Target::Peer(id(CLIENT)), "Probe", "ping", &["abc".into()]).unwrap();
    assert_eq!(
        sent(&mut server),
        vec![
            (CLIENT, hex("02 01000000 50726f626500")),
            (CLIENT, hex(&format!("00 17000080 {ping_abc} 50726f626500"))),
        ]
    );
    server.handle_packet(T0, id(CLIENT), &hex("03 50726f626500"));
    server.rpc(Target::Peer(id(CLIENT)), "Probe", "ping", &["abc".into()]).unwrap();
    let cached = hex(&format!("00 01000000 {ping_abc}"));
    assert_eq!(sent(&mut server), vec![(CLIENT, cached.clone())]);

    // A broadcast while 42 has not confirmed: one packet each, the path to 42.
    server.rpc(Target::Broadcast, "Probe", "ping", &["abc".into()]).unwrap();
    assert_eq!(
        sent(&mut server),
        vec![
            (OTHER, hex("02 01000000 50726f626500")),
            (OTHER, hex(&format!("00 17000080 {ping_abc} 50726f626500"))),
            (CLIENT, cached.clone()),
        ]
    );
    server.handle_packet(T0, id(OTHER), &hex("03 50726f626500"));
    server.rpc(Target::Broadcast, "Probe", "ping", &["abc".into()]).unwrap();
    server.rpc(Target::AllExcept(id(OTHER)), "Probe", "ping", &["abc".into()]).unwrap();
    let not_42 = (-42_i32) as u32;
    assert_eq!(
        sent(&mut server),
        vec![(0, cached.clone()), (not_42, cached)],
        "one packet, the 3.x server relays"
    );
    assert!(events(&mut server).is_empty());

    server.rset(Target::Peer(id(CLIENT)), "Probe", "prop", &7.into()).unwrap();
    assert_eq!(sent(&mut server), vec![(CLIENT, hex("01 01000000 70726f7000 0200000007000000"))]);
    server.send_bytes(Target::Broadcast, &[0xab], TransferMode::Reliable, 0).unwrap();
    assert_eq!(sent(&mut server), vec![(0, hex("04 ab"))]);

    // Local calls: `mastersync` on the master runs here only; `remotesync` runs here and is
    // sent; `puppetsync` on the master is sent and runs here; a `remote` call to oneself fails.
    server.rpc(Target::Broadcast, "Probe", "master_sync", &[1.into()]).unwrap();
    assert!(sent(&mut server).is_empty());
    server.rpc(Target::Broadcast, "Probe", "echo", &[2.into()]).unwrap();
    assert_eq!(sent(&mut server).len(), 1);
    server.rset(Target::Broadcast, "Probe", "puppet_prop", &3.into()).unwrap();
    assert_eq!(sent(&mut server).len(), 1);
    assert_eq!(
        events(&mut server),
        vec![
            rpc(1, "master_sync", vec![1.into()]),
            rpc(1, "echo", vec![2.into()]),
            rset(1, "puppet_prop", 3.into())
        ]
    );
    assert_eq!(server.rpc(Target::Server, "Probe", "ping", &[1.into()]), Err(SendError::SelfTarget));
    assert_eq!(server.rpc(Target::Server, "Probe", "puppet_only", &[1.into()]), Err(SendError::SelfTarget));
    assert_eq!(
        server.rpc(Target::AllExcept(id(9)), "Probe", "ping", &[]),
        Err(SendError::UnknownPeer(id(9)))
    );
    assert_eq!(server.rpc(Target::Peer(id(9)), "Probe", "ping", &[]), Err(SendError::UnknownPeer(id(9))));
    assert_eq!(server.rpc(Target::Broadcast, "Nope", "ping", &[]), Err(SendError::UnknownNode));
    assert!(sent(&mut server).is_empty(), "errors queue nothing");

    let mut godot4 = machine(1, SceneConfig::default());
    assert_eq!(godot4.rset(Target::Broadcast, "Probe", "prop", &1.into()), Err(SendError::Unsupported));
}

/// §7: the client's side. `puppet` runs when the master (1) calls it, `master` is refused, and
/// a call the 3.x server relayed carries its original sender.
#[test]
fn godot3_client_permissions_and_relayed_senders() {
    let mut client = godot3(CLIENT, &[1, 42]);
    assert_eq!(client.peers().collect::<Vec<_>>(), vec![PeerId::SERVER, id(42)]);
    client.handle_packet(T0, PeerId::SERVER, &hex("02 05000000 50726f626500"));
    assert_eq!(sent(&mut client), vec![(1, hex("03 50726f626500"))]);
    client.handle_packet(
        T0,
        PeerId::SERVER,
        &hex("00 05000000 7075707065745f6f6e6c7900 01 0200000001000000"),
    );
    client.handle_packet(
        T0,
        PeerId::SERVER,
        &hex("00 05000000 6d61737465725f6f6e6c7900 01 0200000001000000"),
    );
    client.handle_packet(T0, PeerId::SERVER, &hex("01 05000000 7075707065745f70726f7000 0200000002000000"));
    client.handle_packet(T0, id(42), &hex("00 13000080 70696e6700 01 0200000003000000 50726f626500"));
    client.handle_packet(T0, id(42), &hex("00 05000000 70696e6700 01 0200000003000000"));
    let got = events(&mut client);
    assert_eq!(
        got,
        vec![
            rpc(1, "puppet_only", vec![1.into()]),
            SceneEvent::Refused { from: PeerId::SERVER, reason: not_allowed("master_only") },
            rset(1, "puppet_prop", 2.into()),
            rpc(42, "ping", vec![3.into()]),
            // Cache ids are per sender: 42 never simplified 5.
            SceneEvent::Refused { from: id(42), reason: Refusal::UnknownCacheId(5) },
        ]
    );
    // A puppet calling its `puppet` method runs it too (3.2.3 `_should_call_local`) and sends it.
    client.rpc(Target::Broadcast, "Probe", "puppet_only", &[4.into()]).unwrap();
    assert_eq!(events(&mut client), vec![rpc(CLIENT, "puppet_only", vec![4.into()])]);
    assert_eq!(sent(&mut client).len(), 4, "a SIMPLIFY and a full-path call to each of 1 and 42");
    // Disconnection forgets the peer's cache.
    client.handle_peer_disconnected(T0, id(42));
    assert_eq!(events(&mut client), vec![SceneEvent::PeerDisconnected(id(42))]);
    assert!(sent(&mut client).is_empty(), "the 3.x transport announces departures");
}

/// 3.x numbers its modes `RPC_MODE_DISABLED` 0 to `RPC_MODE_PUPPETSYNC` 6.
#[test]
fn remote_mode_numbers() {
    use crate::scene::RemoteMode;
    for n in 0..=6 {
        assert_eq!(RemoteMode::from_godot(n).map(RemoteMode::to_godot), Some(n));
    }
    assert_eq!(RemoteMode::from_godot(7), None);
    assert_eq!(RemoteMode::from_godot(3), Some(RemoteMode::Puppet));
    assert_eq!(RemoteMode::default(), RemoteMode::Disabled);
}
