//! Rooms: each path an independent world on one server.

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::peer::DropReason;
use crate::ws::handshake::HandshakeError;

fn rooms(mode: RoomMode) -> RoomConfig {
    RoomConfig { mode, ..RoomConfig::default() }
}

fn net_with_rooms(protocol: Protocol, rooms: RoomConfig) -> Net {
    Net::with(ServerConfig { protocol, rooms, ..ServerConfig::default() })
}

/// The peers a client has heard of (server included), from its events.
fn seen(net: &mut Net, end: usize) -> Vec<PeerId> {
    let mut peers = Vec::new();
    for event in drain(net.client(end)) {
        match event {
            Event::PeerConnected(p) => peers.push(p),
            Event::PeerDisconnected { peer, .. } => peers.retain(|&q| q != peer),
            _ => {}
        }
    }
    peers.sort();
    peers
}

fn sorted(mut ids: Vec<PeerId>) -> Vec<PeerId> {
    ids.sort();
    ids
}

/// What the client at `end` was sent, as (sender, payload).
fn got(net: &mut Net, end: usize) -> Vec<(PeerId, Vec<u8>)> {
    packets(net.client(end))
}

#[test]
fn paths_name_rooms_and_hostile_names_are_refused() {
    for (path, room) in [
        ("/", Ok("")),
        ("", Ok("")),
        ("/a", Ok("a")),
        ("/lobby-7_x.y?token=abc/../", Ok("lobby-7_x.y")),
        ("/?q", Ok("")),
        (&*format!("/{}", "r".repeat(MAX_ROOM_NAME_LEN)), Ok(&*"r".repeat(MAX_ROOM_NAME_LEN))),
    ] {
        assert_eq!(room_from_path(path, ""), room, "{path:?}");
    }
    let invalid = RoomRefusal::InvalidName;
    for (path, refusal) in [
        (&*format!("/{}", "r".repeat(MAX_ROOM_NAME_LEN + 1)), invalid(RoomNameError::TooLong)),
        ("/a/", invalid(RoomNameError::InvalidCharacter)),
        ("/a/b", invalid(RoomNameError::InvalidCharacter)),
        ("/..", invalid(RoomNameError::InvalidCharacter)),
        ("/.hidden", invalid(RoomNameError::InvalidCharacter)),
        ("/%2e%2e", invalid(RoomNameError::InvalidCharacter)),
        ("/a%0d%0aX-Injected:1", invalid(RoomNameError::InvalidCharacter)),
        ("/\u{e9}t\u{e9}", invalid(RoomNameError::InvalidCharacter)),
        ("/a\\b", invalid(RoomNameError::InvalidCharacter)),
        ("//", invalid(RoomNameError::InvalidCharacter)),
        ("*", RoomRefusal::OutsidePrefix),
    ] {
        assert_eq!(room_from_path(path, ""), Err(refusal), "{path:?}");
        assert_eq!(refusal.http_status(), if refusal == RoomRefusal::OutsidePrefix { 404 } else { 400 });
    }
    // Under a prefix: the prefix itself is the default room, anything else is not ours.
    for (path, room) in [
        ("/play", Ok("")),
        ("/play/", Ok("")),
        ("/play/a?x", Ok("a")),
        ("/player", Err(RoomRefusal::OutsidePrefix)),
        ("/", Err(RoomRefusal::OutsidePrefix)),
        ("/a", Err(RoomRefusal::OutsidePrefix)),
    ] {
        assert_eq!(room_from_path(path, "/play"), room, "{path:?}");
    }
    assert_eq!(validate_room_prefix("/eu/play"), Ok(()));
    for bad in ["play", "/play/", "//", "/../x", "/a b"] {
        assert!(validate_room_prefix(bad).is_err(), "{bad:?}");
    }
}

fn rooms_are_independent_worlds(protocol: Protocol) {
    let mut net = net_with_rooms(protocol, rooms(RoomMode::ByPath));
    let (a1, a2) = (net.connect_to("/a"), net.connect_to("/a?x=1"));
    let (b1, b2) = (net.connect_to("/b"), net.connect_to("/b"));
    let lobby = net.connect();
    let (ia1, ia2, ib1, ib2, il) = (net.id(a1), net.id(a2), net.id(b1), net.id(b2), net.id(lobby));
    // Ids are unique across the server; each room sees only its own members.
    let mut all = vec![ia1, ia2, ib1, ib2, il];
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5);
    assert_eq!(seen(&mut net, a1), sorted(vec![PeerId::SERVER, ia2]));
    assert_eq!(seen(&mut net, a2), sorted(vec![PeerId::SERVER, ia1]));
    assert_eq!(seen(&mut net, b2), sorted(vec![PeerId::SERVER, ib1]));
    assert_eq!(seen(&mut net, b1), sorted(vec![PeerId::SERVER, ib2]));
    assert_eq!(seen(&mut net, lobby), vec![PeerId::SERVER]);
    assert_eq!(net.server.room_of(ia2), Some("a"));
    assert_eq!(net.server.room_of(il), Some(""));
    drain(&mut net.server);

    // A broadcast reaches its own room (and the server), a peer of another room is unknown.
    net.client(a1).set_target_peer(Target::Broadcast);
    net.client(a1).put_packet(b"hello a").unwrap();
    net.client(b1).set_target_peer(Target::Peer(ib2));
    net.client(b1).put_packet(b"b1 to b2").unwrap();
    net.client(b1).set_target_peer(Target::Peer(ia1));
    net.client(b1).put_packet(b"b1 to a1?").unwrap();
    net.pump();
    assert_eq!(got(&mut net, a2), vec![(ia1, b"hello a".to_vec())]);
    assert_eq!(got(&mut net, b2), vec![(ib1, b"b1 to b2".to_vec())]);
    for end in [a1, b1, lobby] {
        assert!(got(&mut net, end).is_empty(), "end {end}");
    }
    assert_eq!(packets(&mut net.server), vec![(ia1, b"hello a".to_vec())]);
    assert_eq!(
        drain(&mut net.server),
        vec![Event::PacketDropped { from: Some(ib1), reason: DropReason::UnknownTarget(ia1.get()) }]
    );

    // A departure is announced in its room only.
    net.server.disconnect_peer(net.now, ia2, false).unwrap();
    net.pump();
    let left = |net: &mut Net, end| {
        drain(net.client(end))
            .iter()
            .any(|e| matches!(e, Event::PeerDisconnected { peer, .. } if *peer == ia2))
    };
    assert!(left(&mut net, a1));
    assert!(!left(&mut net, b1) && !left(&mut net, b2) && !left(&mut net, lobby));

    // Per-room counters: room a received one broadcast, room b two packets.
    let stats: Vec<(String, usize, u64)> =
        net.server.rooms().map(|r| (r.name.into(), r.peers, r.stats.packets_in)).collect();
    assert_eq!(stats, vec![("".into(), 1, 0), ("a".into(), 1, 1), ("b".into(), 2, 2)]);
}

#[test]
fn rooms_are_independent_worlds_godot4() {
    rooms_are_independent_worlds(Protocol::Godot4);
}

#[test]
fn rooms_are_independent_worlds_godot3() {
    rooms_are_independent_worlds(Protocol::Godot3);
}

#[test]
fn the_default_single_world_ignores_the_path_as_godot_does() {
    let mut net = Net::new(Protocol::Godot4);
    let (a, b) = (net.connect_to("/a"), net.connect_to("/b/c?d"));
    let ib = net.id(b);
    assert_eq!(seen(&mut net, a), sorted(vec![PeerId::SERVER, ib]));
    assert_eq!(net.server.room_count(), 1);
    assert_eq!(net.server.room_of(ib), Some(""));
}

/// The HTTP status a raw client got for `path`, or `None` if it was let in.
fn status_for(net: &mut Net, path: &str) -> Option<u16> {
    let end = net.connect_raw_to(path, ws::Config::GODOT);
    match core::iter::from_fn(|| net.raw(end).poll_event()).next() {
        Some(ws::Event::HandshakeFailed(HandshakeError::UnexpectedStatus(status))) => Some(status),
        Some(ws::Event::Open) => None,
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn hostile_paths_get_400_and_leave_no_room_behind() {
    let mut net = net_with_rooms(Protocol::Godot4, rooms(RoomMode::ByPath));
    let long = format!("/{}", "x".repeat(2000));
    for path in ["/../etc/passwd", "/%00", "/a/b", "/.", "/a%20b", &long, "/\u{202e}evil"] {
        assert_eq!(status_for(&mut net, path), Some(400), "{path:?}");
    }
    assert_eq!(net.server.room_count(), 0);
    assert_eq!(net.server.stats().rooms_refused, 7);
    assert_eq!(net.server.connection_count(), 0);
    assert_eq!(status_for(&mut net, "/ok"), None);
    assert_eq!(net.server.room_count(), 1);
}

#[test]
fn declared_only_refuses_other_rooms_with_404() {
    let config = RoomConfig {
        mode: RoomMode::Declared,
        declared: vec!["/red".into(), "blue".into(), "bad name".into()],
        ..RoomConfig::default()
    };
    let mut net = net_with_rooms(Protocol::Godot4, config);
    // Declared rooms exist while empty; an invalid declaration is ignored.
    let names: Vec<&str> = net.server.rooms().map(|r| r.name).collect();
    assert_eq!(names, ["blue", "red"]);
    assert_eq!(status_for(&mut net, "/green"), Some(404));
    assert_eq!(status_for(&mut net, "/"), Some(404), "the default room is not declared");
    assert_eq!(status_for(&mut net, "/bad%20name"), Some(400));
    assert_eq!(status_for(&mut net, "/red"), None);
    assert_eq!(
        drain(&mut net.server)[..3],
        [
            Event::ConnectionRejected(HandshakeError::Rejected(404)),
            Event::ConnectionRejected(HandshakeError::Rejected(404)),
            Event::ConnectionRejected(HandshakeError::Rejected(400)),
        ]
    );
    // Emptied, a declared room stays.
    let end = net.ends.len() - 1;
    let now = net.now;
    net.raw(end).close(now, ws::CloseCode::NORMAL, "").unwrap();
    net.pump();
    assert_eq!(net.server.connection_count(), 0);
    assert_eq!(net.server.room_count(), 2);
}

#[test]
fn room_limits_refuse_with_503_and_rooms_go_when_empty() {
    let config = RoomConfig {
        mode: RoomMode::ByPath,
        max_rooms: 2,
        max_peers_per_room: Some(2),
        ..RoomConfig::default()
    };
    let mut net = net_with_rooms(Protocol::Godot4, config);
    let a = net.connect_to("/a");
    net.connect_to("/a");
    assert_eq!(status_for(&mut net, "/a"), Some(503), "room full");
    let b = net.connect_to("/b");
    assert_eq!(status_for(&mut net, "/c"), Some(503), "too many rooms");
    assert_eq!(net.server.room_count(), 2);
    // Room b empties and goes; room c may now exist. Room a has room for one more.
    let ib = net.id(b);
    net.server.disconnect_peer(net.now, ib, false).unwrap();
    net.pump();
    assert_eq!(net.server.rooms().map(|r| r.name).collect::<Vec<_>>(), ["a"]);
    assert_eq!(status_for(&mut net, "/c"), None);
    let ia = net.id(a);
    net.server.disconnect_peer(net.now, ia, false).unwrap();
    net.pump();
    assert_eq!(status_for(&mut net, "/a"), None);
    let occupancy: Vec<(&str, usize, usize)> =
        net.server.rooms().map(|r| (r.name, r.peers, r.connections)).collect();
    assert_eq!(occupancy, [("a", 2, 2), ("c", 1, 1)]);
}

#[test]
fn a_prefix_routes_below_it_and_refuses_the_rest_with_404() {
    let config = RoomConfig { mode: RoomMode::ByPath, prefix: "/play".into(), ..RoomConfig::default() };
    let mut net = net_with_rooms(Protocol::Godot4, config);
    assert_eq!(status_for(&mut net, "/a"), Some(404));
    assert_eq!(status_for(&mut net, "/playground"), Some(404));
    let (x, y) = (net.connect_to("/play/x"), net.connect_to("/play"));
    assert_eq!(net.server.room_of(net.id(x)), Some("x"));
    assert_eq!(net.server.room_of(net.id(y)), Some(""));
}

#[test]
fn a_slow_receiver_holds_only_senders_of_its_own_room() {
    let ws = ws::Config {
        outbound_buffer_size: 1000,
        outbound_queue_size: Some(4000),
        ..ServerConfig::default().ws
    };
    let config = ServerConfig { ws, rooms: rooms(RoomMode::ByPath), ..ServerConfig::default() };
    let mut net = Net::with(config);
    let (a_send, a_slow) = (net.connect_to("/a"), net.connect_to("/a"));
    let (b_send, b_read) = (net.connect_to("/b"), net.connect_to("/b"));
    let (ia, ib) = (net.id(a_send), net.id(b_send));
    net.ends[a_slow].stalled = true;
    net.client(a_send).set_target_peer(Target::Broadcast);
    net.client(b_send).set_target_peer(Target::Broadcast);
    let payload = super::edges::raw_packet(0xab, 900);
    let mut sent_in_a = 0;
    for _ in 0..40 {
        sent_in_a += usize::from(net.client(a_send).put_packet(&payload).is_ok());
        net.client(b_send).put_packet(&payload).unwrap();
        net.pump();
    }
    // Room a's sender waits on its slow receiver; room b relays everything.
    assert_eq!(net.server.stats().blocked_senders, 1);
    assert_eq!(got(&mut net, b_read).len(), 40);
    assert!(packets(&mut net.server).iter().all(|(from, _)| *from == ia || *from == ib));
    // Nothing of room a was lost: the slow receiver reads, and gets it all, in order.
    net.ends[a_slow].stalled = false;
    net.pump();
    let a_got = got(&mut net, a_slow);
    assert!(sent_in_a >= 4 && a_got.len() == sent_in_a, "{sent_in_a} sent, {} received", a_got.len());
    assert!(a_got.iter().all(|(from, _)| *from == ia));
    assert_eq!(net.server.stats().blocked_senders, 0);
    let rooms: Vec<(&str, u64)> = net.server.rooms().map(|r| (r.name, r.stats.packets_out)).collect();
    assert!(rooms[1].1 >= 40, "{rooms:?}");
}
