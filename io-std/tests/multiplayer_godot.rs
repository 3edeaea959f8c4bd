//! `WebSocketMultiplayerPeer` members shaped as Godot's, over loopback: `create_client`
//! returning at once and reporting a failed connect as `connection_failed`, `get_unique_id`
//! before and after, `get_peers`, Godot's `Error` numbers for `put_packet`, and events and
//! packets read in the order they happened.

use core::time::Duration;
use std::net::TcpListener;
use std::time::Instant;

use multipeer_std::multipeer::GodotError;
use multipeer_std::multipeer::peer::{ConnectFailure, ConnectionStatus, Event, PeerId, PutError, Target};
use multipeer_std::multipeer::ws::CloseCode;
use multipeer_std::{Error, Incoming, WebSocketMultiplayerPeer};

/// Polls `peer` until it reports an event `pick` accepts; fails after 10 s.
fn wait_for<T>(peer: &mut WebSocketMultiplayerPeer, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        peer.poll().expect("poll");
        while let Some(event) = peer.poll_event() {
            if let Some(found) = pick(event) {
                return found;
            }
        }
        assert!(Instant::now() < deadline, "timed out");
        peer.wait(Duration::from_millis(20));
    }
}

#[test]
fn a_refused_connect_is_reported_as_connection_failed() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut peer = WebSocketMultiplayerPeer::new();
    peer.create_client(&format!("ws://127.0.0.1:{port}/")).expect("create_client returns at once");
    assert_eq!(peer.get_connection_status(), ConnectionStatus::Connecting);
    assert_eq!(peer.get_unique_id(), 0);
    let failure = wait_for(&mut peer, |e| match e {
        Event::ConnectionFailed(failure) => Some(failure),
        _ => None,
    });
    assert!(matches!(failure, ConnectFailure::Handshake(_)), "{failure:?}");
    assert_eq!(peer.get_connection_status(), ConnectionStatus::Disconnected);
    let error = peer.connection_error().expect("the connect's error is kept");
    assert!(matches!(error, Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused), "{error:?}");
    assert_eq!(error.godot_error(), GodotError::CantConnect);
}

#[test]
fn a_background_connect_joins_and_members_answer_as_godot() {
    let mut server = WebSocketMultiplayerPeer::new();
    server.create_server(0, "127.0.0.1").unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let mut client = WebSocketMultiplayerPeer::new();
    assert_eq!(client.get_peers(), []);
    assert!(!client.has_peer(PeerId::SERVER));
    // Not connected: Godot's ERR_UNCONFIGURED.
    assert_eq!(client.put_packet(b"x").map_err(PutError::godot_error), Err(GodotError::Unconfigured));
    client.create_client(&url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut joined = None;
    while client.get_connection_status() != ConnectionStatus::Connected || joined.is_none() {
        assert!(Instant::now() < deadline, "timed out joining");
        client.poll().unwrap();
        client.events().for_each(drop);
        server.poll().unwrap();
        joined = joined.or(server.events().find_map(|e| match e {
            Event::PeerConnected(id) => Some(id),
            _ => None,
        }));
        std::thread::sleep(Duration::from_millis(2));
    }
    let id = joined.unwrap();
    assert_eq!(client.get_unique_id(), id.get());
    assert_eq!(client.unique_id(), Some(id));
    assert_eq!(client.get_peers(), [PeerId::SERVER]);
    assert!(client.has_peer(PeerId::SERVER) && !client.has_peer(id));
    assert_eq!(server.get_peers(), [id]);
    assert!(server.has_peer(id));
    assert_eq!(client.get_peer(PeerId::SERVER).and_then(|p| p.remote), server.local_addr());
    // Godot's numbers for the other put_packet failures.
    let nobody = PeerId::new(999).unwrap();
    server.set_target_peer(Target::Peer(nobody));
    assert_eq!(server.put_packet(b"x").map_err(|e| e.godot_error().code()), Err(31));
    server.set_target_peer(Target::Peer(id));
    assert_eq!(server.put_packet(&[0; 70_000]).map_err(|e| e.godot_error().code()), Err(6));
    client.set_target_peer(Target::Peer(nobody));
    client.close();
    assert_eq!(client.get_unique_id(), 0);
    assert_eq!(client.get_peers(), []);
}

/// What `poll_next` gives, as short labels: event names and packet texts.
fn label(incoming: Incoming) -> String {
    match incoming {
        Incoming::Event(e @ Event::PacketDropped { .. }) => format!("{e:?}"),
        Incoming::Event(e) => format!("{e:?}").split([' ', '(']).next().unwrap_or_default().to_owned(),
        Incoming::Packet(data, _) => String::from_utf8_lossy(&data).into_owned(),
    }
}

#[test]
fn poll_next_keeps_packets_and_departures_in_order() {
    let mut server = WebSocketMultiplayerPeer::new();
    server.create_server(0, "127.0.0.1").unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let mut a = WebSocketMultiplayerPeer::new();
    let mut b = WebSocketMultiplayerPeer::new();
    a.create_client(&url).unwrap();
    b.create_client(&url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let joined = |p: &WebSocketMultiplayerPeer| p.get_connection_status() == ConnectionStatus::Connected;
    // Only the clients are polled for their events here; the server's stay queued.
    while !(joined(&a) && joined(&b) && server.get_peers().len() == 2) {
        assert!(Instant::now() < deadline, "timed out joining");
        for p in [&mut server, &mut a, &mut b] {
            p.poll().unwrap();
        }
        a.events().for_each(drop);
        b.events().for_each(drop);
        std::thread::sleep(Duration::from_millis(2));
    }
    // A sends and leaves, then B sends: nothing is read by the server until all arrived.
    a.put_packet(b"a1").unwrap();
    a.disconnect_peer_with(PeerId::SERVER, CloseCode(4001), "leaving", false).unwrap();
    let a_id = server.get_peers().into_iter().find(|id| Some(*id) != b.unique_id()).unwrap();
    while server.has_peer(a_id) {
        assert!(Instant::now() < deadline, "timed out leaving");
        server.poll().unwrap();
        a.poll().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    b.put_packet(b"b1").unwrap();
    let mut seen = Vec::new();
    while !seen.iter().any(|s| s == "b1") {
        assert!(Instant::now() < deadline, "timed out reading: {seen:?}");
        server.poll().unwrap();
        b.poll().unwrap();
        seen.extend(core::iter::from_fn(|| server.poll_next()).map(label));
        std::thread::sleep(Duration::from_millis(2));
    }
    let at = |what: &str| seen.iter().position(|s| s == what).unwrap_or_else(|| panic!("{what}: {seen:?}"));
    assert_eq!(seen.iter().filter(|s| *s == "PeerConnected").count(), 2, "{seen:?}");
    assert!(at("PeerConnected") < at("a1"), "{seen:?}");
    assert!(at("a1") < at("PeerDisconnected") && at("PeerDisconnected") < at("b1"), "{seen:?}");
}
