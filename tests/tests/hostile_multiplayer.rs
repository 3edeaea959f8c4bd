//! Hostile multiplayer traffic: what a modified game client (or a hostile server, for our
//! client) would send once the WebSocket is open.
//!
//! Server side: spoofed senders, system messages from clients, targets that do not exist, the
//! sender itself or the server, relays racing a departure, and a peer that never reads. Each
//! packet is either delivered or reported with its exact `DropReason`, the attacker stays
//! connected where the protocol allows it, and honest peers never see a byte of it. A peer that
//! never reads holds back whoever floods it (relay flow control) until the slow-peer timeout,
//! then it alone is evicted (`SlowConsumer`, close 1008) while everyone else keeps flowing.
//!
//! Client side: a server that sends an invalid id, or none, makes our client fail with the
//! exact `ConnectFailure` instead of hanging (Godot 4's client waits forever).

use core::time::Duration;
use std::io::Write as _;
use std::net::TcpListener;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::peer::{
    ClientConfig, ConnectFailure, DisconnectReason, DropReason, Event, MultiplayerPeer as _, PeerId,
    Protocol, ServerConfig,
};
use multipeer::ws::handshake::accept_key;
use multipeer_mio::{Client, ClientOptions, ReadBuffer};
use multipeer_tests::hostile::honest::Honest;
use multipeer_tests::hostile::quick_config;
use multipeer_tests::hostile::raw::{Frame, READ_LIMIT, Raw, binary, frame};
use multipeer_tests::hostile::server::Harness;

const SECOND: Duration = Duration::from_secs(1);

fn godot3(kind: u8, from: i32, to: i32, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&from.to_le_bytes());
    m.extend_from_slice(&to.to_le_bytes());
    m.extend_from_slice(payload);
    m
}

fn relay(target: i32, inner: &[u8]) -> Vec<u8> {
    let mut m = vec![7, 3];
    m.extend_from_slice(&target.to_le_bytes());
    m.extend_from_slice(inner);
    m
}

fn sys(command: u8, id: i32) -> Vec<u8> {
    let mut m = vec![7, command];
    m.extend_from_slice(&id.to_le_bytes());
    m
}

/// Sends each message and waits for exactly its drop report.
fn expect_drops(server: &Harness, raw: &mut Raw, from: PeerId, cases: &[(&str, Vec<u8>, DropReason)]) {
    for (name, message, reason) in cases {
        let before = server.with(|o| o.drops().len());
        raw.send(&binary(message)).unwrap();
        server.wait(name, SECOND, |o| o.drops().len() > before);
        let drops = server.with(|o| o.drops());
        assert_eq!(&drops[before..], &[(Some(from), *reason)], "{name}");
    }
}

#[test]
fn godot3_spoofed_senders_sys_messages_and_bad_targets_are_reported_drops() {
    let config = ServerConfig { protocol: Protocol::Godot3, ..quick_config() };
    let server = Harness::start(config);
    let honest = Honest::start_with(&server.url(), 2, Protocol::Godot3);
    let victim = honest.ids()[0].get();
    let (mut raw, id) = Raw::joined_godot3(server.addr());
    let me = PeerId::new(id).unwrap();
    let a = id as i32;
    server.wait("the attacker joined", SECOND, |o| o.peers.contains(&me));
    let cases = [
        (
            "posing as an honest peer",
            godot3(0, victim, 0, b"x"),
            DropReason::SpoofedSender { claimed: victim },
        ),
        ("posing as the server", godot3(0, 1, victim, b"x"), DropReason::SpoofedSender { claimed: 1 }),
        ("sender 0 (before SYS_ID)", godot3(0, 0, 1, b"x"), DropReason::SpoofedSender { claimed: 0 }),
        ("negative sender", godot3(0, -a, 0, b"x"), DropReason::SpoofedSender { claimed: -a }),
        ("SYS_ADD from a client", godot3(1, a, 0, &victim.to_le_bytes()), DropReason::ClientSysMessage),
        ("SYS_DEL from a client", godot3(2, a, 0, &victim.to_le_bytes()), DropReason::ClientSysMessage),
        ("SYS_ID from a client", godot3(3, a, 0, &7i32.to_le_bytes()), DropReason::ClientSysMessage),
        ("type 0x7f", godot3(0x7f, a, 0, b"x"), DropReason::UnknownMessage),
        ("8 bytes", godot3(0, a, 0, b"")[..8].to_vec(), DropReason::TooShort),
        ("empty", Vec::new(), DropReason::TooShort),
        ("unknown target", godot3(0, a, 424_242, b"x"), DropReason::UnknownTarget(424_242)),
        ("itself", godot3(0, a, a, b"x"), DropReason::TargetIsSender),
        ("i32::MIN", godot3(0, a, i32::MIN, b"x"), DropReason::UnknownTarget(i32::MIN)),
    ];
    expect_drops(&server, &mut raw, me, &cases);
    // Still connected: drops are not disconnections. An honest packet to the server arrives.
    raw.send(&binary(&godot3(0, a, 1, b"hello"))).unwrap();
    server.wait("the honest packet", SECOND, |o| o.packets.contains(&(me, b"hello".to_vec())));
    honest.assert_flowing(3);
    honest.finish().assert_unaffected();
    let observed = server.stop();
    assert_eq!(observed.stats.dropped, cases.len() as u64, "{}", observed.summary());
    assert_eq!(observed.packets, [(me, b"hello".to_vec())]);
}

#[test]
fn godot4_sys_messages_and_bad_relay_targets_are_reported_drops() {
    let server = Harness::start(quick_config());
    let honest = Honest::start(&server.url(), 2);
    let victim = honest.ids()[0].get();
    let (mut raw, id) = Raw::joined_godot4(server.addr());
    let me = PeerId::new(id).unwrap();
    let a = id as i32;
    server.wait("the attacker joined", SECOND, |o| o.peers.contains(&me));
    let cases = [
        ("empty message", Vec::new(), DropReason::Empty),
        ("SYS command byte alone", vec![7], DropReason::TooShort),
        ("SYS header cut short", vec![7, 3, 1, 0, 0], DropReason::TooShort),
        ("relay with nothing inside", relay(victim, b""), DropReason::TooShort),
        ("ADD_PEER from a client", sys(1, 424_242), DropReason::ClientSysMessage),
        ("DEL_PEER of an honest peer", sys(2, victim), DropReason::ClientSysMessage),
        ("AUTH", sys(0, 0), DropReason::ClientSysMessage),
        ("SYS command 9", sys(9, victim), DropReason::UnknownMessage),
        ("relay to the server", relay(1, b"\x03x"), DropReason::RelayToServer),
        ("relay to itself", relay(a, b"\x03x"), DropReason::TargetIsSender),
        ("relay to an unknown id", relay(424_242, b"\x03x"), DropReason::UnknownTarget(424_242)),
        ("relay to i32::MIN", relay(i32::MIN, b"\x03x"), DropReason::UnknownTarget(i32::MIN)),
        // Flag bits in the command byte still make it SYS (Godot masks with CMD_MASK = 7).
        (
            "ADD_PEER with flag bits",
            [vec![0xf7], sys(1, 5)[1..].to_vec()].concat(),
            DropReason::ClientSysMessage,
        ),
    ];
    expect_drops(&server, &mut raw, me, &cases);
    raw.send(&binary(b"\x03hello")).unwrap();
    server.wait("the packet to the server", SECOND, |o| o.packets.contains(&(me, b"\x03hello".to_vec())));
    honest.assert_flowing(3);
    honest.finish().assert_unaffected();
    let observed = server.stop();
    assert_eq!(observed.stats.dropped, cases.len() as u64, "{}", observed.summary());
    assert_eq!(observed.packets, [(me, b"\x03hello".to_vec())]);
}

#[test]
fn a_relay_racing_its_targets_departure_is_delivered_or_reported() {
    let server = Harness::start(quick_config());
    // Many rounds of the race: the target closes while the sender relays to it.
    for round in 0..20u8 {
        let (mut sender, s) = Raw::joined_godot4(server.addr());
        let (mut target, t) = Raw::joined_godot4(server.addr());
        let (s, t) = (PeerId::new(s).unwrap(), PeerId::new(t).unwrap());
        server.wait("both joined", SECOND, |o| o.peers.contains(&s) && o.peers.contains(&t));
        let marker = [3, 0xaa, round];
        target.send(&frame(true, 0, 0x8, &1000u16.to_be_bytes())).unwrap();
        sender.send(&binary(&relay(t.get(), &marker))).unwrap();
        // What the target read before the end.
        let mut delivered = false;
        loop {
            match target.read_frame(READ_LIMIT) {
                Ok(Frame { opcode: 0x2, payload, .. }) => {
                    let mut expected = vec![7, 3];
                    expected.extend_from_slice(&s.get().to_le_bytes());
                    expected.extend_from_slice(&marker);
                    delivered |= payload == expected;
                }
                Ok(Frame { opcode: 0x8, .. }) | Err(_) => break,
                Ok(other) => panic!("round {round}: {other:?}"),
            }
        }
        server.wait("the target left", SECOND, |o| o.departure(t).is_some());
        server.wait(&format!("round {round}: delivered or reported"), SECOND, |o| {
            delivered || o.drops().contains(&(Some(s), DropReason::UnknownTarget(t.get())))
        });
        let reported = server.with(|o| o.drops().contains(&(Some(s), DropReason::UnknownTarget(t.get()))));
        assert!(delivered != reported, "round {round}: delivered {delivered}, reported {reported}");
        drop(sender);
        server.wait_connections(0, SECOND);
    }
    let observed = server.stop();
    assert_eq!(observed.stats.dropped as usize, observed.drops().len(), "{}", observed.summary());
}

#[test]
fn a_peer_that_never_reads_holds_its_flooder_back_until_it_is_evicted_alone() {
    // A short slow-peer timeout (the default is 10 s) so the test is quick.
    const TIMEOUT: Duration = Duration::from_millis(1500);
    let config = ServerConfig { slow_peer_timeout: Some(TIMEOUT), ..quick_config() };
    let server = Harness::start(config);
    let honest = Honest::start(&server.url(), 2);
    let (mut sink, sink_id) = Raw::joined_godot4(server.addr());
    let (flooder, flooder_id) = Raw::joined_godot4(server.addr());
    let (sink_id, flooder_id) = (PeerId::new(sink_id).unwrap(), PeerId::new(flooder_id).unwrap());
    server.wait("both joined", SECOND, |o| o.peers.contains(&sink_id) && o.peers.contains(&flooder_id));
    // 60 000-byte packets relayed to the sink, numbered, as fast as the flooder can write.
    let packet = move |n: u32| {
        let mut inner = vec![3u8];
        inner.extend_from_slice(&n.to_le_bytes());
        inner.resize(60_000, 0x5a);
        binary(&relay(sink_id.get(), &inner))
    };
    let mut flooder = flooder;
    flooder.stream.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let stop = std::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
    let flooding = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut sent, mut slowest_write) = (0u32, Duration::ZERO);
            while !stop.load(core::sync::atomic::Ordering::SeqCst) && sent < 2000 {
                let t = Instant::now();
                if flooder.send(&packet(sent)).is_err() {
                    break;
                }
                slowest_write = slowest_write.max(t.elapsed());
                sent += 1;
            }
            (flooder, sent, slowest_write)
        })
    };
    // The sink fills up; the flooder waits on it (the server stops reading it).
    server.wait("the flooder waiting", 10 * SECOND, |o| o.stats.blocked_senders == 1);
    let waiting_since = Instant::now();
    // Meanwhile honest traffic flows, and the sink is not cut off before its timeout.
    while server.with(|o| o.departure(sink_id).is_none()) {
        assert!(waiting_since.elapsed() < 10 * SECOND, "never evicted: {}", server.observed().summary());
        honest.assert_flowing(1);
    }
    let evicted_after = waiting_since.elapsed();
    assert_eq!(server.with(|o| o.departure(sink_id).cloned()), Some(DisconnectReason::SlowConsumer));
    assert!(evicted_after + Duration::from_millis(100) >= TIMEOUT, "evicted early: {evicted_after:?}");
    assert!(evicted_after < TIMEOUT + 2 * SECOND, "evicted late: {evicted_after:?}");
    // The sink's connection is released within the close timeout although it never reads.
    server.wait_connections(3, quick_config().ws.close_timeout + SECOND);
    let released_after = waiting_since.elapsed() - evicted_after;
    // The flooder goes on (its relays to the departed sink are reported) and stays a peer in
    // good standing.
    server.wait("relays to the departed sink reported", 5 * SECOND, |o| {
        o.drops().contains(&(Some(flooder_id), DropReason::UnknownTarget(sink_id.get())))
    });
    stop.store(true, core::sync::atomic::Ordering::SeqCst);
    let (_flooder, sent, slowest_write) = flooding.join().unwrap();
    assert!(server.with(|o| o.peers.contains(&flooder_id)), "the flooder was cut off");
    // While it waited, its writes blocked: the cost of the sink fell on it.
    assert!(slowest_write >= TIMEOUT / 2, "the flooder was never held back: {slowest_write:?}");
    honest.assert_flowing(5);
    // The sink reads what reached it: a prefix of the flood, in order, without gaps, then
    // (if it still fit) the Close 1008, then the end.
    let mut next = 0u32;
    let close = loop {
        match sink.read_frame(Duration::from_secs(2)) {
            Ok(Frame { opcode: 0x2, payload, .. }) if payload.len() > 6 && payload[..2] == [7, 3] => {
                let n = u32::from_le_bytes(payload[7..11].try_into().unwrap());
                assert_eq!(n, next, "gap in what the sink received");
                next += 1;
            }
            Ok(Frame { opcode: 0x2, .. }) => {} // ADD_PEER / DEL_PEER
            Ok(f) if f.opcode == 0x8 => break Some((f.close_code(), f.close_reason())),
            Ok(f) => panic!("{f:?}"),
            Err(_) => break None,
        }
    };
    if let Some(close) = &close {
        assert_eq!(close, &(Some(1008), "slow peer: outbound queue full, not draining".to_owned()));
    }
    sink.wait_end(READ_LIMIT).expect("the sink's connection ended");
    honest.finish().assert_unaffected();
    let observed = server.stop();
    let s = observed.stats;
    assert_eq!(s.slow_consumers, 1, "{}", observed.summary());
    // Every drop is a relay to the departed sink.
    let drops = observed.drops();
    assert!(drops.iter().all(|d| *d == (Some(flooder_id), DropReason::UnknownTarget(sink_id.get()))));
    assert_eq!(s.dropped as usize, drops.len());
    // Its queue never exceeded the 1 MiB outbound queue (plus frame headers), as far as the
    // samples between loop turns show.
    let footprint = observed.peer_footprint[&sink_id];
    assert!(footprint <= (1 << 20) + 128 * 1024, "{footprint}");
    assert!(observed.accounting.is_empty(), "{:?}", observed.accounting);
    eprintln!(
        "never-reading sink: evicted {evicted_after:?} after its flooder began waiting (timeout \
         {TIMEOUT:?}), released {released_after:?} after; it got {next} packets of 60 kB in order, \
         then {close:?}; the flooder sent {sent}, its slowest write took {slowest_write:?}; largest \
         queue sampled {footprint} bytes; {} relays to the departed sink reported",
        drops.len()
    );
}

/// A fake server: accepts one connection, answers the upgrade, then sends `after` (frames).
/// The client's Close code and reason, and how many frames it sent before it.
type ClientClose = Option<(u16, String, usize)>;

fn fake_server(after: Vec<u8>) -> (String, std::thread::JoinHandle<ClientClose>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut raw = raw_from(stream);
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            std::io::Read::read_exact(&mut raw.stream, &mut b).unwrap();
            head.push(b[0]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap().trim().to_owned();
        let accept = accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            String::from_utf8_lossy(&accept)
        );
        raw.stream.write_all(response.as_bytes()).unwrap();
        // The client may close while this is still being written.
        let _ = raw.stream.write_all(&after);
        // What the client closes with, if it does.
        raw.read_close(READ_LIMIT)
            .ok()
            .map(|(f, before)| (f.close_code().unwrap_or(0), f.close_reason(), before))
    });
    (url, thread)
}

fn raw_from(stream: std::net::TcpStream) -> Raw {
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    Raw::from_stream(stream)
}

/// Connects our client and drives it until it fails or joins; returns its events and when.
fn client_outcome(url: &str, config: ClientConfig) -> (Vec<Event>, Duration) {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(16);
    let mut buf = ReadBuffer::new();
    let started = Instant::now();
    let mut client = Client::connect(poll.registry(), Token(0), url, &ClientOptions::new(config)).unwrap();
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        let sleep = client.poll_timeout().unwrap_or(Duration::from_millis(50)).min(Duration::from_millis(50));
        poll.poll(&mut events, Some(sleep)).unwrap();
        for event in events.iter() {
            client.handle_event(poll.registry(), event, &mut buf);
        }
        client.handle_timeout(poll.registry(), &mut buf);
        while let Some(event) = client.peer_mut().poll_event() {
            seen.push(event);
        }
        if seen.iter().any(|e| matches!(e, Event::ConnectionFailed(_) | Event::ConnectionSucceeded)) {
            let elapsed = started.elapsed();
            // Let it write its Close and release the socket.
            let end = Instant::now() + SECOND;
            while !client.is_released() && Instant::now() < end {
                poll.poll(&mut events, Some(Duration::from_millis(10))).unwrap();
                for event in events.iter() {
                    client.handle_event(poll.registry(), event, &mut buf);
                }
                client.handle_timeout(poll.registry(), &mut buf);
            }
            return (seen, elapsed);
        }
    }
    panic!("the client neither joined nor failed: {seen:?}");
}

#[test]
fn our_client_refuses_invalid_ids_from_a_hostile_server() {
    let ids: [(&str, Vec<u8>); 7] = [
        ("id 0", 0i32.to_le_bytes().to_vec()),
        ("id 1 (the server's)", 1i32.to_le_bytes().to_vec()),
        ("id -5", (-5i32).to_le_bytes().to_vec()),
        ("id i32::MIN", i32::MIN.to_le_bytes().to_vec()),
        ("3 bytes", vec![9, 0, 0]),
        ("5 bytes", vec![9, 0, 0, 0, 0]),
        ("a Godot 3 SYS_ID", godot3(3, 1, 0, &9i32.to_le_bytes())),
    ];
    for (name, id) in ids {
        let (url, server) = fake_server(binary_server(&id));
        let (events, _) = client_outcome(&url, ClientConfig::default());
        assert_eq!(events, [Event::ConnectionFailed(ConnectFailure::InvalidId)], "{name}");
        // As Godot 4 does: it closes with 1000.
        assert_eq!(server.join().unwrap(), Some((1000, String::new(), 0)), "{name}");
    }
    // A valid id, for contrast.
    let (url, server) = fake_server(binary_server(&7i32.to_le_bytes()));
    let (events, _) = client_outcome(&url, ClientConfig::default());
    assert_eq!(events, [Event::PeerConnected(PeerId::SERVER), Event::ConnectionSucceeded]);
    drop(server);
}

/// An unmasked server frame carrying `payload` as one binary message.
fn binary_server(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x82, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

#[test]
fn our_client_gives_up_on_a_server_that_never_sends_the_id() {
    let mut config = ClientConfig::default();
    config.ws.handshake_timeout = Duration::from_millis(500);
    let (url, server) = fake_server(Vec::new());
    let (events, elapsed) = client_outcome(&url, config);
    assert_eq!(events, [Event::ConnectionFailed(ConnectFailure::IdTimeout)]);
    assert!(elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(900), "{elapsed:?}");
    assert_eq!(server.join().unwrap(), Some((1000, "no id received".to_owned(), 0)));
    // And one that accepts the TCP connection but never answers the upgrade.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (events, elapsed) = client_outcome(&url, config);
    assert_eq!(
        events,
        [Event::ConnectionFailed(ConnectFailure::Handshake(multipeer::ws::HandshakeError::Timeout))]
    );
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
    let (mut silent, _) = listener.accept().unwrap();
    // It sent its request and then closed.
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut silent, &mut got);
    assert!(got.starts_with(b"GET / HTTP/1.1\r\n"));
}

#[test]
fn our_client_stays_bounded_against_a_flooding_server() {
    // After a valid id: 50 000 ADD_PEER announcements, 200 pings, then a message of 65 536
    // bytes (one more than the client accepts), announced and sent.
    let mut after = binary_server(&7i32.to_le_bytes());
    for i in 0..50_000 {
        after.extend(binary_server(&sys(1, 100 + i)));
    }
    for _ in 0..200 {
        after.extend([0x89, 0]);
    }
    after.extend([0x82, 127]);
    after.extend(65_536u64.to_be_bytes());
    after.resize(after.len() + 65_536, 0x77);
    let (url, server) = fake_server(after);
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(16);
    let mut buf = ReadBuffer::new();
    let options = ClientOptions::new(ClientConfig::default());
    let mut client = Client::connect(poll.registry(), Token(0), &url, &options).unwrap();
    let (mut joined, mut announced, mut ended) = (false, 0, None);
    let mut max_footprint = 0;
    let end = Instant::now() + Duration::from_secs(30);
    while !client.is_released() {
        assert!(Instant::now() < end, "still connected after {announced} announcements");
        poll.poll(&mut events, Some(Duration::from_millis(10))).unwrap();
        for event in events.iter() {
            client.handle_event(poll.registry(), event, &mut buf);
        }
        client.handle_timeout(poll.registry(), &mut buf);
        max_footprint = max_footprint.max(client.peer().connection().buffer_footprint());
        while let Some(event) = client.peer_mut().poll_event() {
            match event {
                Event::ConnectionSucceeded => joined = true,
                Event::PeerConnected(p) if !p.is_server() => announced += 1,
                Event::PeerConnected(_) => {}
                Event::ServerDisconnected(info) => ended = Some(info),
                Event::PeerDisconnected { peer, .. } if peer.is_server() => {}
                other => panic!("{other:?}"),
            }
        }
        client.flush(poll.registry(), &mut buf);
    }
    // Events of the last flush.
    while let Some(event) = client.peer_mut().poll_event() {
        match event {
            Event::ServerDisconnected(info) => ended = Some(info),
            Event::PeerDisconnected { peer, .. } if peer.is_server() => {}
            other => panic!("{other:?}"),
        }
    }
    // Every announcement reported (the client reads no faster than its events are taken), every
    // ping answered once, and the oversized message refused from its header with 1009.
    assert!(joined);
    assert_eq!(announced, 50_000);
    let info = ended.expect("a departure");
    assert_eq!((info.code.0, info.error), (1009, Some(multipeer::ws::Error::MessageTooBig { limit: 65535 })));
    let (code, reason, pongs) = server.join().unwrap().expect("the client's Close");
    assert_eq!((code, reason.as_str(), pongs), (1009, "message larger than 65535 bytes", 200));
    assert!(max_footprint <= 64 * 1024, "{max_footprint} bytes held by the client");
}
