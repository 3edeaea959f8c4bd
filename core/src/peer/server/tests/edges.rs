//! Limits, refusals, misbehaving clients and servers: every case has a visible outcome.

use std::vec;
use std::vec::Vec;

use chacha20::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::peer::godot3::{self, MessageType};
use crate::peer::scene::{self, SysCommand};
use crate::peer::{ConnectFailure, DropReason};
use crate::ws::{CloseCode, HandshakeError};

fn has_disconnect(events: &[Event], who: PeerId, want: fn(&DisconnectReason) -> bool) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::PeerDisconnected { peer, reason } if *peer == who && want(reason)))
}

#[test]
fn refused_connections_get_503_and_both_sides_hear_of_it() {
    let mut net = Net::with(ServerConfig { refuse_new_connections: true, ..ServerConfig::default() });
    let a = net.connect();
    assert_eq!(
        drain(net.client(a)),
        vec![Event::ConnectionFailed(ConnectFailure::Handshake(HandshakeError::UnexpectedStatus(503)))]
    );
    assert_eq!(drain(&mut net.server), vec![Event::ConnectionRejected(HandshakeError::Rejected(503))]);
    assert_eq!(net.server.connection_count(), 0);
    // Lifting the refusal lets the next client in.
    net.server.set_refuse_new_connections(false);
    let b = net.connect();
    assert_eq!(net.client(b).connection_status(), ConnectionStatus::Connected);
}

#[test]
fn accept_beyond_max_peers_is_refused() {
    let mut net = Net::with(ServerConfig { max_peers: 2, ..ServerConfig::default() });
    net.connect();
    net.connect();
    assert_eq!(net.server.accept(net.now, None), Err(AcceptError::AtCapacity));
    assert_eq!(net.server.stats().rejected, 1);
}

#[test]
fn disconnect_peer_reports_everywhere_clean_or_forced() {
    for force in [false, true] {
        let mut net = Net::new(Protocol::Godot4);
        let a = net.connect();
        let b = net.connect();
        let (ia, ib) = (net.id(a), net.id(b));
        drain(&mut net.server);
        drain(net.client(a));
        drain(net.client(b));
        let now = net.now;
        net.server.disconnect_peer(now, ib, force).unwrap();
        assert!(has_disconnect(&drain(&mut net.server), ib, |r| *r == DisconnectReason::Kicked));
        net.pump();
        assert!(has_disconnect(&drain(net.client(a)), ib, |r| *r == DisconnectReason::Announced));
        let ev = drain(net.client(b));
        let code = if force { CloseCode::ABNORMAL } else { CloseCode::NORMAL };
        assert!(
            ev.iter().any(|e| matches!(e, Event::ServerDisconnected(info) if info.code == code)),
            "force={force}: {ev:?}"
        );
        assert_eq!(net.client(b).connection_status(), ConnectionStatus::Disconnected);
        assert_eq!(net.server.disconnect_peer(now, ib, force), Err(UnknownPeer(ib)));
        assert!(net.server.has_peer(ia));
        assert_eq!(net.server.connection_count(), 1);
    }
}

#[test]
fn unicast_to_a_full_peer_is_an_error_not_a_cut() {
    let ws = ws::Config { outbound_buffer_size: 300, outbound_queue_size: Some(300), ..ws::Config::GODOT };
    let mut net = Net::with(ServerConfig { ws, ..ServerConfig::default() });
    let a = net.connect();
    let ia = net.id(a);
    net.ends[a].stalled = true;
    net.server.set_target_peer(Target::Peer(ia));
    assert_eq!(net.server.put_packet(&[1; 200]), Ok(()));
    assert_eq!(net.server.put_packet(&[2; 200]), Err(PutError::Full));
    assert!(net.server.has_peer(ia));
    assert_eq!(net.server.put_packet(&[0; 301]), Err(PutError::TooLarge { max: 300 }));
}

#[test]
fn a_full_inbox_pushes_back_and_loses_nothing() {
    let config = ServerConfig {
        inbox: crate::queue::QueueLimits { max_bytes: 1000, max_packets: 4 },
        ..ServerConfig::default()
    };
    let mut net = Net::with(config);
    let a = net.connect();
    let ia = net.id(a);
    for i in 0..50u8 {
        net.client(a).put_packet(&raw_packet(i, 100)).unwrap();
    }
    net.pump();
    assert!(net.server.available_packet_count() <= 4);
    let mut got = Vec::new();
    for _ in 0..100 {
        let batch = packets(&mut net.server);
        if batch.is_empty() && got.len() == 50 {
            break;
        }
        got.extend(batch);
        net.pump();
    }
    assert_eq!(got.len(), 50);
    assert!(got.iter().enumerate().all(|(i, (from, data))| *from == ia && *data == raw_packet(i as u8, 100)));
}

#[test]
fn godot3_misbehaviour_is_dropped_and_reported() {
    let mut net = Net::new(Protocol::Godot3);
    let a = net.connect_raw(ws::Config::GODOT);
    let b = net.connect();
    let (ia, ib) = (net.id(a), net.id(b));
    drain(&mut net.server);
    drain(net.client(b));
    raw_messages(net.raw(a));
    let header = |kind: u8, from: i32, to: i32| godot3::Header { kind, from, to }.encode().to_vec();
    let with = |mut h: Vec<u8>, data: &[u8]| {
        h.extend_from_slice(data);
        h
    };
    let own = ia.get();
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (with(header(0, 999, 1), b"x"), DropReason::SpoofedSender { claimed: 999 }),
        (godot3::sys_message(MessageType::Add, own).to_vec(), DropReason::ClientSysMessage),
        (vec![0, 1, 2], DropReason::TooShort),
        (with(header(0, own, 777), b"x"), DropReason::UnknownTarget(777)),
        (with(header(0, own, own), b"x"), DropReason::TargetIsSender),
        (with(header(9, own, 1), b"x"), DropReason::UnknownMessage),
    ];
    for (message, reason) in cases {
        net.raw(a).send_binary(&message).unwrap();
        net.pump();
        assert_eq!(drain(&mut net.server), vec![Event::PacketDropped { from: Some(ia), reason }]);
    }
    assert!(packets(&mut net.server).is_empty() && packets(net.client(b)).is_empty());
    // −1 means "everyone but the server" (Godot 3 delivers it to the server too).
    let to_clients = with(header(0, own, -1), b"clients-only");
    net.raw(a).send_binary(&to_clients).unwrap();
    net.pump();
    assert!(packets(&mut net.server).is_empty());
    assert_eq!(packets(net.client(b)), vec![(ia, b"clients-only".to_vec())]);
    // The relay forwards the exact bytes (header included).
    let to_b = with(header(0, own, ib.get()), &[4, 0xab]);
    net.raw(a).send_binary(&to_b).unwrap();
    net.pump();
    assert_eq!(packets(net.client(b)), vec![(ia, vec![4, 0xab])]);
}

#[test]
fn godot4_relay_misbehaviour_is_dropped_and_reported() {
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect_raw(ws::Config::GODOT);
    let ia = net.id(a);
    drain(&mut net.server);
    let relay = |target: i32, inner: &[u8]| {
        let mut m = scene::header(SysCommand::Relay, target).to_vec();
        m.extend_from_slice(inner);
        m
    };
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (relay(1, b"x"), DropReason::RelayToServer),
        (relay(ia.get(), b"x"), DropReason::TargetIsSender),
        (relay(5555, b"x"), DropReason::UnknownTarget(5555)),
        (relay(0, b""), DropReason::TooShort),
        (scene::header(SysCommand::AddPeer, 77).to_vec(), DropReason::ClientSysMessage),
        (vec![7, 9, 0, 0, 0, 0], DropReason::UnknownMessage),
        (vec![], DropReason::Empty),
    ];
    for (message, reason) in cases {
        net.raw(a).send_binary(&message).unwrap();
        net.pump();
        assert_eq!(drain(&mut net.server), vec![Event::PacketDropped { from: Some(ia), reason }]);
    }
}

#[test]
fn godot4_size_boundaries() {
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect();
    let ia = net.id(a);
    drain(&mut net.server);
    net.client(a).put_packet(&raw_packet(9, 65535)).unwrap();
    assert_eq!(net.client(a).put_packet(&raw_packet(9, 65536)), Err(PutError::TooLarge { max: 65535 }));
    net.pump();
    let got = packets(&mut net.server);
    assert_eq!(got.len(), 1);
    assert!(got[0].0 == ia && got[0].1 == raw_packet(9, 65535), "the 65535-byte packet arrives intact");
    // A client that sends a larger message anyway is closed with 1009 and removed.
    let big = ws::Config { outbound_buffer_size: 1 << 20, ..ws::Config::GODOT };
    let r = net.connect_raw(big);
    let ir = net.id(r);
    drain(&mut net.server);
    net.raw(r).send_binary(&raw_packet(9, 65536)).unwrap();
    net.pump();
    let ev = drain(&mut net.server);
    let closed_1009 = |r: &DisconnectReason| matches!(r, DisconnectReason::Closed(i) if i.code == CloseCode::MESSAGE_TOO_BIG);
    assert!(has_disconnect(&ev, ir, closed_1009), "{ev:?}");
    assert!(!net.server.has_peer(ir));
}

// ----- a client against a hand-driven server ------------------------------------------------

/// A SceneMultiplayer `send_bytes` packet (`03 …`): payloads must not start with the SYS
/// command (7) in Godot 4 relay mode, or they are treated as relay requests.
pub(super) fn raw_packet(fill: u8, len: usize) -> Vec<u8> {
    let mut p = vec![fill; len];
    p[0] = scene::COMMAND_RAW;
    p
}

/// A client and a bare WebSocket server that has accepted it.
fn client_against_raw_server() -> (TestClient, ws::Connection<VecStorage, ws::NoRng>) {
    let now = Instant::ZERO;
    let mut client =
        Client::create(now, "ws://127.0.0.1:9080/", ClientConfig::default(), ChaCha8Rng::seed_from_u64(5))
            .unwrap();
    let mut server = ws::Connection::<VecStorage, ws::NoRng>::server(now, ws::Config::GODOT);
    exchange(now, &mut client, &mut server);
    assert_eq!(server.poll_event(), Some(ws::Event::Request));
    server.accept(now, None, &[]).unwrap();
    exchange(now, &mut client, &mut server);
    (client, server)
}

fn exchange(now: Instant, client: &mut TestClient, server: &mut ws::Connection<VecStorage, ws::NoRng>) {
    for _ in 0..4 {
        if let Some(b) = client.poll_transmit().map(<[u8]>::to_vec) {
            let n = server.handle_input(now, &b);
            client.consume_transmit(n);
        }
        if let Some(b) = server.poll_transmit().map(<[u8]>::to_vec) {
            let n = client.handle_input(now, &b);
            server.consume_transmit(n);
        }
    }
}

#[test]
fn a_bad_first_message_fails_the_join_with_close_1000() {
    for first in
        [vec![9, 3, 0, 0, 0], 1i32.to_le_bytes().to_vec(), (-5i32).to_le_bytes().to_vec(), vec![0; 4]]
    {
        let (mut client, mut server) = client_against_raw_server();
        server.send_binary(&first).unwrap();
        exchange(Instant::ZERO, &mut client, &mut server);
        assert_eq!(drain(&mut client), vec![Event::ConnectionFailed(ConnectFailure::InvalidId)], "{first:?}");
        assert_eq!(client.connection_status(), ConnectionStatus::Disconnected);
        let closed = core::iter::from_fn(|| server.poll_event()).find_map(|e| match e {
            ws::Event::Closed(info) => Some(info.code),
            _ => None,
        });
        assert_eq!(closed, Some(CloseCode::NORMAL));
    }
}

#[test]
fn a_server_that_never_sends_the_id_times_the_client_out() {
    let (mut client, mut server) = client_against_raw_server();
    assert_eq!(client.connection_status(), ConnectionStatus::Connecting);
    let deadline = client.poll_timeout().unwrap();
    assert_eq!(deadline, Instant::ZERO + ws::Config::GODOT.handshake_timeout);
    client.handle_timeout(deadline);
    exchange(deadline, &mut client, &mut server);
    assert_eq!(drain(&mut client), vec![Event::ConnectionFailed(ConnectFailure::IdTimeout)]);
}

#[test]
fn a_valid_id_joins() {
    let (mut client, mut server) = client_against_raw_server();
    server.send_binary(&12345i32.to_le_bytes()).unwrap();
    server.send_binary(&[3, 0x61, 0x62]).unwrap();
    exchange(Instant::ZERO, &mut client, &mut server);
    assert_eq!(drain(&mut client), vec![Event::PeerConnected(PeerId::SERVER), Event::ConnectionSucceeded]);
    assert_eq!(client.unique_id(), PeerId::new(12345));
    assert_eq!(packets(&mut client), vec![(PeerId::SERVER, vec![3, 0x61, 0x62])]);
}

#[test]
fn a_large_broadcast_is_stored_once_not_per_peer() {
    let mut net = Net::new(Protocol::Godot4);
    let ends: Vec<usize> = (0..50).map(|_| net.connect()).collect();
    for &e in &ends {
        net.ends[e].stalled = true;
    }
    let before = net.server.buffer_footprint();
    net.server.set_target_peer(Target::Broadcast);
    net.server.put_packet(&raw_packet(1, 10_000)).unwrap();
    // Copied per peer this would be 50 × 10 KB in the connections' buffers.
    assert!(net.server.buffer_footprint() < before + 10_000, "{}", net.server.buffer_footprint());
    for &e in &ends {
        net.ends[e].stalled = false;
    }
    net.pump();
    for &e in &ends {
        // Each client was told of 49 peers: its events must be drained (the drive loop) for the
        // messages behind them to be read.
        drain(net.client(e));
        let got = packets(net.client(e));
        assert_eq!(got.len(), 1, "{:?}", got.iter().map(|p| p.1.len()).collect::<Vec<_>>());
        assert!(got[0].1 == raw_packet(1, 10_000));
    }
}

#[test]
fn packets_from_a_kicked_peer_are_dropped_visibly() {
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect();
    let ia = net.id(a);
    drain(&mut net.server);
    // The client sends before it hears of the kick.
    for i in 0..3u8 {
        net.client(a).put_packet(&raw_packet(i, 10)).unwrap();
    }
    let bytes = net.client(a).poll_transmit().unwrap().to_vec();
    net.client(a).consume_transmit(bytes.len());
    let now = net.now;
    net.server.disconnect_peer(now, ia, false).unwrap();
    net.server.handle_input(now, net.ends[a].conn, &bytes).unwrap();
    let drops = drain(&mut net.server)
        .into_iter()
        .filter(|e| matches!(e, Event::PacketDropped { from: Some(f), reason: DropReason::SenderLeft } if *f == ia))
        .count();
    assert_eq!(drops, 3);
    assert!(packets(&mut net.server).is_empty());
}

#[test]
fn a_largest_relay_behind_another_packet_fits_the_server_queue() {
    // Godot writes each relay at once; this server coalesces a pass's writes, so a peer's
    // queue holds more than one largest message (outbound_queue_size), and nobody is cut off.
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect();
    let b = net.connect();
    let ib = net.id(b);
    drain(&mut net.server);
    net.client(a).set_target_peer(Target::Peer(ib));
    // The client writes after each packet, as Godot's does; the server gets both in one read.
    net.client(a).put_packet(&raw_packet(1, 100)).unwrap();
    let first = net.client(a).poll_transmit().unwrap().to_vec();
    net.client(a).consume_transmit(first.len());
    net.client(a).put_packet(&raw_packet(2, 65535 - 6)).unwrap();
    let second = net.client(a).poll_transmit().unwrap().to_vec();
    net.client(a).consume_transmit(second.len());
    let conn = net.ends[a].conn;
    let both = [first, second].concat();
    assert_eq!(net.server.handle_input(net.now, conn, &both), Ok(both.len()));
    net.pump();
    assert_eq!(net.server.stats().slow_consumers, 0);
    drain(net.client(b));
    // The client's own inbound queue (65535 bytes, like Godot's) takes them one at a time.
    let mut got = packets(net.client(b));
    net.pump();
    got.extend(packets(net.client(b)));
    assert_eq!(got.iter().map(|p| p.1.len()).collect::<Vec<_>>(), vec![100, 65529]);
}

#[test]
fn a_relay_larger_than_its_target_accepts_is_dropped_not_a_cut() {
    // Inbound limit above the outbound one: a relay can arrive that no peer may be sent.
    let ws = ws::Config { max_message_size: 100_000, ..ws::Config::GODOT };
    let mut net = Net::with(ServerConfig { ws, ..ServerConfig::default() });
    let a = net.connect_raw(ws::Config { outbound_buffer_size: 1 << 20, ..ws::Config::GODOT });
    let b = net.connect();
    let (ia, ib) = (net.id(a), net.id(b));
    drain(&mut net.server);
    let mut relay = scene::header(SysCommand::Relay, ib.get()).to_vec();
    relay.extend_from_slice(&raw_packet(3, 70_000));
    net.raw(a).send_binary(&relay).unwrap();
    net.pump();
    let ev = drain(&mut net.server);
    let too_large = DropReason::TooLarge { len: 70_006, max: 65535 };
    assert_eq!(ev, vec![Event::PacketDropped { from: Some(ia), reason: too_large }]);
    assert!(net.server.has_peer(ib), "the target is not punished");
}

#[test]
fn godot3_kick_with_code_and_reason() {
    let mut net = Net::new(Protocol::Godot3);
    let a = net.connect_raw(ws::Config::GODOT);
    let ia = net.id(a);
    let now = net.now;
    net.server.disconnect_peer_with(now, ia, CloseCode(4000), "kicked", false).unwrap();
    net.pump();
    let closed = core::iter::from_fn(|| net.raw(a).poll_event()).find_map(|e| match e {
        ws::Event::Closed(info) => Some((info.code, std::string::String::from(info.reason.as_str()))),
        _ => None,
    });
    assert_eq!(closed, Some((CloseCode(4000), std::string::String::from("kicked"))));
}

#[test]
fn an_origin_allow_list_refuses_other_web_pages_with_403() {
    let config =
        ServerConfig { allowed_origins: vec!["https://game.example".into()], ..ServerConfig::default() };
    let mut net = Net::with(config);
    let with_origin = |net: &mut Net, origin: Option<&str>| {
        let url = ws::handshake::Url::parse("ws://127.0.0.1:9080/").unwrap();
        let line = origin.map(|o| std::format!("Origin: {o}"));
        let lines: Vec<&str> = line.iter().map(std::string::String::as_str).collect();
        let request = ws::handshake::ClientRequest {
            extra_headers: &lines,
            ..ws::handshake::ClientRequest::from_url(&url)
        };
        let raw = ws::Connection::client(net.now, &request, ws::Config::GODOT, ChaCha8Rng::seed_from_u64(77))
            .unwrap();
        let end = net.attach(Far::Raw(std::boxed::Box::new(raw)));
        core::iter::from_fn(|| net.raw(end).poll_event()).next()
    };
    let refused = with_origin(&mut net, Some("https://evil.example"));
    assert_eq!(refused, Some(ws::Event::HandshakeFailed(HandshakeError::UnexpectedStatus(403))));
    assert_eq!(drain(&mut net.server), vec![Event::ConnectionRejected(HandshakeError::Rejected(403))]);
    assert_eq!(with_origin(&mut net, Some("HTTPS://GAME.EXAMPLE")), Some(ws::Event::Open));
    assert_eq!(with_origin(&mut net, None), Some(ws::Event::Open), "native clients send no Origin");
    assert_eq!(net.server.connection_count(), 2);
}

#[test]
fn a_per_ip_cap_refuses_at_accept_and_frees_on_release() {
    let config = ServerConfig { max_connections_per_ip: Some(2), ..ServerConfig::default() };
    let mut server = Server::new(config, ChaCha8Rng::seed_from_u64(1));
    let from = |ip: [u8; 4], port| Some(core::net::SocketAddr::from((ip, port)));
    let now = Instant::ZERO;
    let a = server.accept(now, from([127, 0, 0, 2], 1000)).unwrap();
    server.accept(now, from([127, 0, 0, 2], 1001)).unwrap();
    assert_eq!(server.accept(now, from([127, 0, 0, 2], 1002)), Err(AcceptError::TooManyFromAddress));
    assert!(server.accept(now, from([127, 0, 0, 3], 1000)).is_ok(), "another address is not affected");
    // A silent connection is dropped at the handshake timeout, which frees its place.
    let deadline = now + ws::Config::GODOT.handshake_timeout;
    server.handle_timeout(deadline);
    while server.poll_transmit().is_some() {}
    let _ = server.consume_transmit(a, usize::MAX);
    while server.poll_release().is_some() {}
    assert!(server.accept(deadline, from([127, 0, 0, 2], 1003)).is_ok());
}
