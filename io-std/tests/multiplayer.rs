//! `WebSocketMultiplayerPeer` over loopback: a server and three clients in one thread, for both
//! Godot protocols — ids, joins and leaves, targeted, broadcast, exclude-one and relayed
//! packets, kicks, closes — plus the facade's own rules (errors, refusal, limits, timeouts).

use core::net::SocketAddr;
use core::time::Duration;
use std::io::Read;
use std::net::TcpStream;
use std::time::Instant;

use multipeer_std::multipeer::GodotError;
use multipeer_std::multipeer::peer::{
    ConnectFailure, ConnectionStatus, DisconnectReason, DropReason, Event, PeerId, Protocol, PutError, Target,
};
use multipeer_std::multipeer::ws::{CloseCode, CloseInfo, HandshakeError, State};
use multipeer_std::{Error, MultiplayerError, WebSocketMultiplayerPeer};

/// Everything one peer saw, in the order it saw it.
#[derive(Default)]
struct Seen {
    events: Vec<Event>,
    packets: Vec<(PeerId, Vec<u8>)>,
}

impl Seen {
    fn got(&self, from: PeerId, data: &[u8]) -> usize {
        self.packets.iter().filter(|(f, d)| *f == from && d == data).count()
    }

    fn has(&self, pred: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(pred)
    }
}

struct Net {
    server: WebSocketMultiplayerPeer,
    clients: Vec<WebSocketMultiplayerPeer>,
    seen_server: Seen,
    seen: Vec<Seen>,
}

fn peer_for(protocol: Protocol) -> WebSocketMultiplayerPeer {
    match protocol {
        Protocol::Godot4 => WebSocketMultiplayerPeer::new(),
        Protocol::Godot3 => WebSocketMultiplayerPeer::godot3(),
    }
}

/// Polls a peer and records its events and packets in arrival order (a client's packets
/// behind system messages appear only as its events are drained).
fn drain(peer: &mut WebSocketMultiplayerPeer, seen: &mut Seen) {
    peer.poll().expect("poll");
    loop {
        seen.events.extend(peer.events());
        match peer.get_packet() {
            Some((data, info)) => seen.packets.push((info.from, data)),
            None => break,
        }
    }
}

impl Net {
    fn start(protocol: Protocol) -> (Self, String) {
        let mut server = peer_for(protocol);
        server.create_server(0, "127.0.0.1").expect("create_server");
        assert!(server.is_server());
        assert_eq!(server.unique_id(), Some(PeerId::SERVER));
        assert_eq!(server.get_connection_status(), ConnectionStatus::Connected);
        let url = format!("ws://{}/", server.local_addr().expect("local_addr"));
        (Self { server, clients: Vec::new(), seen_server: Seen::default(), seen: Vec::new() }, url)
    }

    fn add_client(&mut self, protocol: Protocol, url: &str) -> usize {
        let mut client = peer_for(protocol);
        client.create_client(url).expect("create_client");
        assert_eq!(client.get_connection_status(), ConnectionStatus::Connecting);
        assert!(!client.is_server());
        self.clients.push(client);
        self.seen.push(Seen::default());
        let i = self.clients.len() - 1;
        self.pump(&format!("client {i} joins"), |net| net.seen[i].has(|e| *e == Event::ConnectionSucceeded));
        i
    }

    fn id(&self, i: usize) -> PeerId {
        self.clients[i].unique_id().expect("joined client has an id")
    }

    /// Polls everybody until `done` holds; fails after 10 s.
    fn pump(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            drain(&mut self.server, &mut self.seen_server);
            for (client, seen) in self.clients.iter_mut().zip(&mut self.seen) {
                drain(client, seen);
            }
            if done(self) {
                return;
            }
            if Instant::now() >= deadline {
                let packets = |seen: &Seen| {
                    seen.packets
                        .iter()
                        .map(|(f, d)| format!("{f}:{}", String::from_utf8_lossy(d)))
                        .collect::<Vec<_>>()
                };
                eprintln!("server: {:?} {:?}", self.seen_server.events, packets(&self.seen_server));
                for (i, seen) in self.seen.iter().enumerate() {
                    eprintln!("client {i}: {:?} {:?}", seen.events, packets(seen));
                }
                panic!("timed out waiting for: {what}");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn send(&mut self, from: Option<usize>, target: Target, data: &[u8]) {
        let peer = match from {
            Some(i) => &mut self.clients[i],
            None => &mut self.server,
        };
        peer.set_target_peer(target);
        peer.put_packet(data).unwrap_or_else(|e| panic!("put_packet {data:?} to {target:?}: {e}"));
    }
}

/// The whole life of a session: three joins, every kind of target from the server and from
/// clients (relayed), a client leaving, a kick, and the server closing.
fn session(protocol: Protocol) {
    let (mut net, url) = Net::start(protocol);
    for _ in 0..3 {
        net.add_client(protocol, &url);
    }
    let ids = [net.id(0), net.id(1), net.id(2)];
    assert!(ids.iter().all(|id| id.get() >= 2), "{ids:?}");
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
    // Everybody learns about everybody: the server directly, clients through the relay.
    net.pump("everyone sees everyone", |net| {
        (0..3).all(|i| {
            (0..3).filter(|j| *j != i).all(|j| net.seen[i].has(|e| *e == Event::PeerConnected(ids[j])))
                && net.seen_server.has(|e| *e == Event::PeerConnected(ids[i]))
        })
    });
    for (i, seen) in net.seen.iter().enumerate() {
        assert!(seen.has(|e| *e == Event::PeerConnected(PeerId::SERVER)), "client {i} saw the server");
        assert!(!seen.has(|e| *e == Event::PeerConnected(ids[i])), "client {i} was told about itself");
    }

    // The connection behind each peer.
    for (i, &id) in ids.iter().enumerate() {
        let conn = net.server.get_peer(id).expect("server knows its peer");
        assert_eq!(conn.state, State::Open);
        assert_eq!(conn.subprotocol, None);
        assert_eq!(net.server.get_peer_address(id), Some("127.0.0.1".parse().unwrap()));
        assert!(net.server.get_peer_port(id).is_some_and(|p| p != 0));
        let to_server = net.clients[i].get_peer(PeerId::SERVER).expect("client knows the server");
        assert_eq!(to_server.remote, net.server.local_addr());
        assert_eq!(to_server.state, State::Open);
        assert!(net.clients[i].get_peer(ids[(i + 1) % 3]).is_none(), "a client only knows id 1");
    }
    assert!(net.server.get_peer(PeerId::new(12345).unwrap()).is_none());
    let mut sorted = ids.to_vec();
    sorted.sort();
    assert_eq!(net.server.get_peers(), sorted);
    assert_eq!(net.clients[0].get_peers(), [PeerId::SERVER]);
    assert_eq!(net.clients[0].get_unique_id(), ids[0].get());
    assert_eq!(net.server.get_unique_id(), 1);

    // Traffic. Each sender's packets arrive in order, so the "end" packets last.
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    net.send(None, Target::Peer(b), b"\x03srv-to-b");
    net.send(None, Target::Broadcast, b"\x03srv-all");
    net.send(None, Target::AllExcept(b), b"\x03srv-not-b");
    net.send(Some(0), Target::Server, b"\x03a-to-srv");
    net.send(Some(0), Target::Peer(c), b"\x03a-to-c");
    net.send(Some(1), Target::Broadcast, b"\x03b-all");
    net.send(Some(2), Target::AllExcept(a), b"\x03c-not-a");
    net.send(Some(0), Target::AllExcept(PeerId::SERVER), b"\x03a-not-srv");
    for from in [None, Some(0), Some(1), Some(2)] {
        net.send(from, Target::Broadcast, b"\x03end");
    }
    let ends = |seen: &Seen, me: PeerId| {
        let senders = [PeerId::SERVER, a, b, c];
        senders.iter().filter(|s| **s != me).all(|s| seen.got(*s, b"\x03end") == 1)
    };
    net.pump("every end marker", |net| {
        ends(&net.seen_server, PeerId::SERVER) && (0..3).all(|i| ends(&net.seen[i], ids[i]))
    });
    let expect = |got: &[(PeerId, Vec<u8>)], want: &[(PeerId, &[u8])], who: &str| {
        let mut got: Vec<(PeerId, &[u8])> = got.iter().map(|(f, d)| (*f, d.as_slice())).collect();
        let mut want = want.to_vec();
        got.sort();
        want.sort();
        assert_eq!(got, want, "packets received by {who}");
    };
    let end: &[u8] = b"\x03end";
    expect(
        &net.seen_server.packets,
        &[(a, b"\x03a-to-srv"), (b, b"\x03b-all"), (c, b"\x03c-not-a"), (a, end), (b, end), (c, end)],
        "the server",
    );
    let s = PeerId::SERVER;
    expect(
        &net.seen[0].packets,
        &[(s, b"\x03srv-all"), (s, b"\x03srv-not-b"), (b, b"\x03b-all"), (s, end), (b, end), (c, end)],
        "client a",
    );
    expect(
        &net.seen[1].packets,
        &[
            (s, b"\x03srv-to-b"),
            (s, b"\x03srv-all"),
            (c, b"\x03c-not-a"),
            (a, b"\x03a-not-srv"),
            (s, end),
            (a, end),
            (c, end),
        ],
        "client b",
    );
    expect(
        &net.seen[2].packets,
        &[
            (s, b"\x03srv-all"),
            (s, b"\x03srv-not-b"),
            (a, b"\x03a-to-c"),
            (b, b"\x03b-all"),
            (a, b"\x03a-not-srv"),
            (s, end),
            (a, end),
            (b, end),
        ],
        "client c",
    );
    // A client cannot address an unknown peer through the relay, visibly.
    net.send(Some(0), Target::Peer(PeerId::new(424_242).unwrap()), b"\x03lost");
    net.pump("the drop report", |net| {
        net.seen_server.has(|e| matches!(e, Event::PacketDropped { from: Some(f), .. } if *f == a))
    });

    // C leaves cleanly with a code and reason (Godot 4: get_peer(1).close(4001, "leaving")),
    // and hears of it as server_disconnected once the close completes, as in Godot 4.
    let leaving = |info: &CloseInfo| (info.code, info.reason.as_str()) == (CloseCode(4001), "leaving");
    net.clients[2].disconnect_peer_with(PeerId::SERVER, CloseCode(4001), "leaving", false).expect("leave");
    assert_eq!(net.clients[2].get_connection_status(), ConnectionStatus::Disconnected);
    assert_eq!(net.clients[2].get_unique_id(), c.get(), "the id stays known, as in Godot");
    net.pump("C's departure", |net| {
        net.seen_server.has(|e| {
            matches!(e, Event::PeerDisconnected { peer, reason: DisconnectReason::Closed(info) }
                if *peer == c && leaving(info))
        }) && (0..2)
            .all(|i| net.seen[i].has(|e| matches!(e, Event::PeerDisconnected { peer, .. } if *peer == c)))
            && net.seen[2].has(|e| matches!(e, Event::ServerDisconnected(info) if leaving(info)))
    });
    let closed = net.clients[2].get_peer(PeerId::SERVER).and_then(|p| p.close).expect("close info");
    assert!(leaving(&closed) && closed.clean, "{closed:?}");
    assert!(net.seen[2].has(|e| matches!(e, Event::PeerDisconnected { peer, .. } if peer.is_server())));
    assert!(!net.server.get_peers().contains(&c));

    // B is kicked with a code and reason (Godot 4: get_peer(id).close(4000, "bye")); the
    // server learns B's answer when its connection has closed.
    let bye = |info: &CloseInfo| (info.code, info.reason.as_str()) == (CloseCode(4000), "bye");
    net.server.disconnect_peer_with(b, CloseCode(4000), "bye", false).expect("kick");
    assert!(net.server.disconnect_peer(b, false).is_err(), "B is gone at once");
    net.pump("B's kick", |net| {
        net.seen[1].has(|e| matches!(e, Event::ServerDisconnected(info) if bye(info)))
            && net.seen[0].has(|e| matches!(e, Event::PeerDisconnected { peer, .. } if *peer == b))
            && net
                .seen_server
                .has(|e| matches!(e, Event::PeerClosed { peer, info } if *peer == b && bye(info)))
    });
    assert_eq!(net.clients[1].get_connection_status(), ConnectionStatus::Disconnected);

    // The server closes: A is told, and the server is back to Disconnected. Godot 3's stop()
    // says 1000 with no reason.
    let going = match protocol {
        Protocol::Godot4 => CloseCode::GOING_AWAY,
        Protocol::Godot3 => CloseCode::NORMAL,
    };
    net.server.close();
    assert_eq!(net.server.get_connection_status(), ConnectionStatus::Disconnected);
    assert!(net.server.unique_id().is_none());
    assert_eq!(net.server.get_unique_id(), 0);
    net.pump("the server's close", |net| {
        net.seen[0].has(|e| matches!(e, Event::ServerDisconnected(info) if info.code == going))
    });
    assert!(net.seen_server.has(
        |e| matches!(e, Event::PeerDisconnected { peer, reason: DisconnectReason::Kicked } if *peer == a)
    ));
    assert_eq!(net.server.put_packet(b"\x03late"), Err(PutError::NotConnected));
}

#[test]
fn godot4_session() {
    session(Protocol::Godot4);
}

#[test]
fn godot3_session() {
    session(Protocol::Godot3);
}

#[test]
fn create_errors_are_godots() {
    let mut peer = WebSocketMultiplayerPeer::new();
    if cfg!(feature = "tls") {
        // TLS is there: the TCP connect to port 1 is what fails, in the blocking form.
        let err = peer.create_client_blocking("wss://127.0.0.1:1/").unwrap_err();
        assert!(matches!(err, MultiplayerError::Connect(Error::Io(_))), "{err:?}");
        assert_eq!(err.godot_error(), GodotError::CantConnect);
    } else {
        let err = peer.create_client("wss://127.0.0.1:1/").unwrap_err();
        assert!(matches!(err, MultiplayerError::Connect(Error::TlsUnsupported)), "{err:?}");
        assert!(err.to_string().contains("wss://"), "{err}");
    }
    let err = peer.create_client("http://127.0.0.1:1/").unwrap_err();
    assert!(matches!(err, MultiplayerError::Connect(Error::Url(_))), "{err:?}");
    assert_eq!(err.godot_error().code(), 31, "ERR_INVALID_PARAMETER");
    assert!(matches!(peer.create_server(0, "not-an-ip"), Err(MultiplayerError::InvalidParameter(_))));
    assert_eq!(peer.get_connection_status(), ConnectionStatus::Disconnected);
    peer.create_server(0, "127.0.0.1").unwrap();
    assert!(matches!(peer.create_server(0, "127.0.0.1"), Err(MultiplayerError::AlreadyInUse)));
    let err = peer.create_client("ws://127.0.0.1:1/").unwrap_err();
    assert!(matches!(err, MultiplayerError::AlreadyInUse));
    assert_eq!(err.godot_error().code(), 22, "ERR_ALREADY_IN_USE");
    assert!(matches!(peer.set_buffers(64, 1024, 64, 1024), Err(MultiplayerError::AlreadyInUse)));
    // Listening on a port in use fails visibly.
    let port = peer.local_addr().unwrap().port();
    let mut other = WebSocketMultiplayerPeer::new();
    assert!(matches!(other.create_server(port, "127.0.0.1"), Err(MultiplayerError::Listen(_))));
    peer.close();
    peer.create_server(0, "127.0.0.1").expect("a closed peer can be created again");
    assert_eq!(peer.put_packet(b"x"), Ok(()), "a broadcast to nobody is fine");
    assert_eq!(
        peer.put_packet(&[0; 65536]),
        Err(PutError::TooLarge { max: 65535 }),
        "outbound_buffer_size bounds one message"
    );
}

#[test]
fn refuse_new_connections_then_accept() {
    let (mut net, url) = Net::start(Protocol::Godot4);
    net.add_client(Protocol::Godot4, &url);
    net.server.set_refuse_new_connections(true);
    assert!(net.server.is_refusing_new_connections());
    let mut late = WebSocketMultiplayerPeer::new();
    late.create_client(&url).unwrap();
    net.clients.push(late);
    net.seen.push(Seen::default());
    net.pump("the refusal", |net| net.seen[1].has(|e| matches!(e, Event::ConnectionFailed(_))));
    let failure = net.seen[1].events.iter().find(|e| matches!(e, Event::ConnectionFailed(_))).unwrap();
    assert_eq!(
        failure,
        &Event::ConnectionFailed(ConnectFailure::Handshake(HandshakeError::UnexpectedStatus(503)))
    );
    assert_eq!(net.clients[1].get_connection_status(), ConnectionStatus::Disconnected);
    net.server.set_refuse_new_connections(false);
    // The refused client may be created again, and gets in now.
    net.clients[1].create_client(&url).unwrap();
    net.pump("the second attempt", |net| net.seen[1].has(|e| *e == Event::ConnectionSucceeded));
    assert!(!net.seen[0].has(|e| matches!(e, Event::PeerConnected(id) if !id.is_server() && Some(*id) != net.clients[1].unique_id())));
}

#[test]
fn every_interface_takes_ipv4_and_ipv6_loopback() {
    let mut server = WebSocketMultiplayerPeer::new();
    server.create_server(0, "*").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut urls = vec![format!("ws://127.0.0.1:{port}/")];
    // Only where this machine has IPv6 loopback.
    if TcpStream::connect(SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port))).is_ok() {
        urls.push(format!("ws://[::1]:{port}/"));
    }
    for url in urls {
        let mut client = WebSocketMultiplayerPeer::new();
        client.create_client(&url).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.get_connection_status() != ConnectionStatus::Connected {
            assert!(Instant::now() < deadline, "{url} never joined");
            server.poll().unwrap();
            server.events().for_each(drop);
            client.poll().unwrap();
            client.events().for_each(drop);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn oversized_message_is_refused_with_1009() {
    // The largest message each protocol accepts, on the wire: Godot 4 `inbound_buffer_size`
    // (65535); Godot 3 `set_buffers(64, ..)`, whose wslay limit is 2^16 (3.2.3 then drops a
    // 65536-byte message silently in its ring; here it is delivered).
    for (protocol, largest) in [(Protocol::Godot4, 65535), (Protocol::Godot3, 65536)] {
        let (mut net, url) = Net::start(protocol);
        let mut big = peer_for(protocol);
        big.set_outbound_buffer_size(1 << 17);
        big.create_client(&url).unwrap();
        net.clients.push(big);
        net.seen.push(Seen::default());
        net.pump("join", |net| net.seen[0].has(|e| *e == Event::ConnectionSucceeded));
        let id = net.id(0);
        let header = if protocol == Protocol::Godot3 { 9 } else { 0 };
        net.clients[0].set_target_peer(Target::Server);
        net.clients[0].put_packet(&vec![3; largest - header]).unwrap();
        net.clients[0].put_packet(&vec![3; largest - header + 1]).unwrap();
        net.pump("the 1009", |net| {
            net.seen_server.has(|e| {
                matches!(e, Event::PeerDisconnected { peer, reason: DisconnectReason::Closed(info) }
                    if *peer == id && info.code == CloseCode::MESSAGE_TOO_BIG)
            }) && net.seen[0].has(|e| matches!(e, Event::ServerDisconnected(_)))
        });
        let sizes: Vec<usize> = net.seen_server.packets.iter().map(|(_, d)| d.len()).collect();
        assert_eq!(sizes, [largest - header], "{protocol:?}: the largest arrived, one byte more did not");
    }
}

#[test]
fn silent_connection_is_dropped_after_the_handshake_timeout() {
    let mut server = WebSocketMultiplayerPeer::new();
    server.set_handshake_timeout(Duration::from_millis(300));
    server.create_server(0, "127.0.0.1").unwrap();
    let mut probe = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    probe.set_nonblocking(true).unwrap();
    let start = Instant::now();
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    let closed_after = loop {
        assert!(start.elapsed() < Duration::from_secs(5), "never closed");
        server.poll().unwrap();
        match probe.read(&mut buf) {
            Ok(0) => break start.elapsed(),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        server.wait(Duration::from_millis(50));
    };
    assert!(closed_after >= Duration::from_millis(280), "{closed_after:?}");
    assert!(closed_after < Duration::from_millis(1500), "{closed_after:?}");
    // Godot closes without a word; the core answers 408 first (its documented choice).
    assert!(reply.starts_with(b"HTTP/1.1 408 "), "{:?}", String::from_utf8_lossy(&reply));
    assert!(server.events().any(|e| matches!(e, Event::ConnectionRejected(HandshakeError::Timeout))));
}

#[test]
fn wait_returns_when_the_server_speaks() {
    let (mut net, url) = Net::start(Protocol::Godot4);
    net.add_client(Protocol::Godot4, &url);
    let mut client = net.clients.pop().unwrap();
    let mut seen = net.seen.pop().unwrap();
    // Nothing to do: a client's wait blocks on its socket for the whole time given.
    drain(&mut client, &mut seen);
    let start = Instant::now();
    client.wait(Duration::from_millis(200));
    assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
    // A packet from the server ends the wait early.
    net.send(None, Target::Broadcast, b"\x03wake");
    net.server.poll().unwrap();
    let start = Instant::now();
    client.wait(Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    drain(&mut client, &mut seen);
    assert_eq!(seen.got(PeerId::SERVER, b"\x03wake"), 1);
    // Queued output makes wait return at once.
    client.set_target_peer(Target::Server);
    client.put_packet(b"\x03x").unwrap();
    let start = Instant::now();
    client.wait(Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_millis(100));
}

#[test]
fn maximum_relays_between_small_packets_reach_a_healthy_peer() {
    // Godot writes each relay to the socket as it routes it; the core routes a whole read
    // first. A 65535-byte relay between two small packets must not look like a slow consumer.
    for protocol in [Protocol::Godot4, Protocol::Godot3] {
        let (mut net, url) = Net::start(protocol);
        net.add_client(protocol, &url);
        net.add_client(protocol, &url);
        let b = net.id(1);
        net.clients[0].set_target_peer(Target::Peer(b));
        let max = net.clients[0].get_max_packet_size();
        assert_eq!(max, if protocol == Protocol::Godot4 { 65529 } else { 65526 });
        let mut big = vec![b'x'; max];
        big[0] = 3;
        for _ in 0..3 {
            net.clients[0].put_packet(b"\x03small").unwrap();
            net.clients[0].put_packet(&big).unwrap();
        }
        net.clients[0].put_packet(b"\x03last").unwrap();
        let a = net.id(0);
        net.pump("every relay", |net| net.seen[1].got(a, b"\x03last") == 1);
        assert_eq!(net.seen[1].got(a, &big), 3, "{protocol:?}");
        assert_eq!(net.seen[1].got(a, b"\x03small"), 3, "{protocol:?}");
        assert!(!net.seen_server.has(|e| matches!(e, Event::PeerDisconnected { .. })), "{protocol:?}");
    }
}

#[test]
fn subprotocols_and_headers_apply_to_new_connections() {
    let mut server = WebSocketMultiplayerPeer::new();
    server.set_supported_protocols([" game-v2 ", "game-v1"]);
    assert_eq!(server.get_supported_protocols(), ["game-v2", "game-v1"], "trimmed as Godot does");
    server.set_handshake_headers(["X-Server: multipeer"]);
    server.create_server(0, "127.0.0.1").unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let mut net = Net { server, clients: Vec::new(), seen_server: Seen::default(), seen: Vec::new() };
    for offer in [vec!["game-v1"], vec![]] {
        let mut client = WebSocketMultiplayerPeer::new();
        client.set_supported_protocols(offer);
        client.set_handshake_headers(["X-Client: test"]);
        client.create_client(&url).unwrap();
        net.clients.push(client);
        net.seen.push(Seen::default());
    }
    net.pump("one join, one refusal", |net| {
        net.seen[0].has(|e| *e == Event::ConnectionSucceeded)
            && net.seen[1].has(|e| matches!(e, Event::ConnectionFailed(_)))
    });
    let id = net.id(0);
    assert_eq!(net.server.get_peer(id).and_then(|p| p.subprotocol).as_deref(), Some("game-v1"));
    let to_server = net.clients[0].get_peer(PeerId::SERVER).unwrap();
    assert_eq!(to_server.subprotocol.as_deref(), Some("game-v1"));
    // Godot's rule: a client offering nothing to a server with a list is refused.
    assert!(
        net.seen_server.has(|e| matches!(e, Event::ConnectionRejected(HandshakeError::NoCommonProtocol)))
    );
}

/// `set_slow_peer_timeout` reaches the server: a client that stops reading while another
/// floods it holds the flooder back, then alone is disconnected once the timeout passes.
#[test]
fn a_client_that_stops_reading_is_disconnected_after_the_slow_peer_timeout() {
    let mut server = WebSocketMultiplayerPeer::new();
    server.set_slow_peer_timeout(Some(Duration::from_millis(500)));
    server.create_server(0, "127.0.0.1").expect("create_server");
    let url = format!("ws://{}/", server.local_addr().expect("local_addr"));
    let mut net = Net { server, clients: Vec::new(), seen_server: Seen::default(), seen: Vec::new() };
    let (sink, flooder) = (net.add_client(Protocol::Godot4, &url), net.add_client(Protocol::Godot4, &url));
    let sink_id = net.id(sink);
    net.pump("the flooder knows the sink", |n| n.seen[flooder].has(|e| *e == Event::PeerConnected(sink_id)));
    // The sink is never polled again: it reads nothing.
    let mut sink_peer = net.clients.swap_remove(sink);
    net.seen.swap_remove(sink);
    let flooder = 0;
    net.clients[flooder].set_target_peer(Target::Peer(sink_id));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let packet = vec![3u8; 16 * 1024];
    let mut held_back = false;
    while !net.seen_server.has(|e| matches!(e, Event::PeerDisconnected { peer, .. } if *peer == sink_id)) {
        assert!(Instant::now() < deadline, "never evicted: {:?}", net.server.server_stats());
        match net.clients[flooder].put_packet(&packet) {
            Ok(()) => {}
            Err(PutError::Full) => held_back = true,
            Err(e) => panic!("{e}"),
        }
        drain(&mut net.server, &mut net.seen_server);
        drain(&mut net.clients[flooder], &mut net.seen[flooder]);
    }
    let reason = net.seen_server.events.iter().find_map(|e| match e {
        Event::PeerDisconnected { peer, reason } if *peer == sink_id => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason, Some(DisconnectReason::SlowConsumer));
    assert!(held_back, "the flooder's own queue filled while the server held it back");
    assert!(started.elapsed() >= Duration::from_millis(500));
    let stats = net.server.server_stats().expect("server stats");
    assert!(stats.relay_waits >= 1 && stats.slow_consumers == 1, "{stats:?}");
    // What was dropped is only what the flooder sent to the sink after it was gone.
    let late = |e: &Event| matches!(e, Event::PacketDropped { reason: DropReason::UnknownTarget(t), .. } if *t == sink_id.get());
    let drops = net.seen_server.events.iter().filter(|e| matches!(e, Event::PacketDropped { .. })).count();
    assert_eq!(drops, net.seen_server.events.iter().filter(|e| late(e)).count());
    assert_eq!(drops as u64, stats.dropped);
    sink_peer.close();
}
