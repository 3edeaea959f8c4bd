//! Network faults against the real server: connections reset (RST) or ended (FIN) in the middle
//! of a handshake or a frame, a peer whose link silently died (found by the keepalive), and
//! relaying over an impaired link (delay, jitter, retransmission stalls, arbitrary segmenting)
//! with nothing lost.
//!
//! `tc netem` does not exist on these machines (no `sch_netem` in the kernel, no iptables or
//! nft), so the impaired link is our own proxy (`hostile::proxy`), which delays and splits the
//! byte stream and stalls it the way TCP recovers from a lost segment.

use core::sync::atomic::Ordering;
use core::time::Duration;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::peer::{ClientConfig, DisconnectReason, Event, MultiplayerPeer as _, PeerId, ServerConfig};
use multipeer::ws::{Error, HandshakeError, Initiator};
use multipeer_mio::{Client, ClientOptions, ReadBuffer};
use multipeer_tests::hostile::honest::Honest;
use multipeer_tests::hostile::proxy::{Impairment, Proxy};
use multipeer_tests::hostile::quick_config;
use multipeer_tests::hostile::raw::{Raw, binary, header};
use multipeer_tests::hostile::server::Harness;

const SECOND: Duration = Duration::from_secs(1);

fn join(server: &Harness) -> (Raw, PeerId) {
    let (raw, id) = Raw::joined_godot4(server.addr());
    let id = PeerId::new(id).unwrap();
    server.wait("joined", SECOND, |o| o.peers.contains(&id));
    (raw, id)
}

/// The departure of `peer` was a transport that ended without a Close frame.
fn assert_reset(server: &Harness, peer: PeerId) {
    server.wait("the departure", SECOND, |o| o.departure(peer).is_some());
    let reason = server.with(|o| o.departure(peer).cloned()).unwrap();
    let DisconnectReason::Closed(info) = reason else { panic!("{reason:?}") };
    assert_eq!(
        (info.code.0, info.initiator, info.error, info.clean),
        (1006, Initiator::Remote, Some(Error::ConnectionReset), false)
    );
}

#[test]
fn connections_reset_or_ended_mid_handshake_and_mid_frame_are_released_at_once() {
    let server = Harness::start(quick_config());
    let honest = Honest::start(&server.url(), 2);
    // The handshake timeout is 600 ms: each of these must be released well before it.
    let fast = Duration::from_millis(300);

    // RST in the middle of the request head.
    let mut raw = Raw::connect(server.addr());
    raw.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let t = Instant::now();
    raw.reset();
    server.wait_connections(2, fast);
    server.wait("the rejection", fast, |o| o.rejections(HandshakeError::ConnectionClosed) == 1);
    let reset_handshake = t.elapsed();

    // FIN in the middle of the request head.
    let mut raw = Raw::connect(server.addr());
    raw.send(b"GET / HTTP/1.1\r\nHost: 1").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    drop(raw);
    server.wait_connections(2, fast);
    server.wait("the rejection", fast, |o| o.rejections(HandshakeError::ConnectionClosed) == 2);

    // RST in the middle of a frame's payload.
    let (mut raw, id) = join(&server);
    let mut partial = header(true, 0, 0x2, Some([9, 9, 9, 9]), 1000);
    partial.extend_from_slice(&[0; 10]);
    raw.send(&partial).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let t = Instant::now();
    raw.reset();
    assert_reset(&server, id);
    server.wait_connections(2, fast);
    let reset_frame = t.elapsed();

    // FIN in the middle of a frame header.
    let (mut raw, id) = join(&server);
    raw.send(&header(true, 0, 0x2, Some([9, 9, 9, 9]), 70_000)[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    drop(raw);
    assert_reset(&server, id);
    server.wait_connections(2, fast);

    // RST while the server has output queued for it: the departure, and nobody else notices.
    let (mut raw, id) = join(&server);
    let (mut sender, _) = join(&server);
    for n in 0..200u32 {
        let mut m = vec![7, 3];
        m.extend_from_slice(&id.get().to_le_bytes());
        m.extend_from_slice(&[3; 2000]);
        m.extend_from_slice(&n.to_le_bytes());
        sender.send(&binary(&m)).unwrap();
    }
    raw.send(&binary(b"\x03still here")).unwrap();
    server.wait("its last packet", SECOND, |o| {
        o.packets.iter().any(|(p, d)| *p == id && d == b"\x03still here")
    });
    raw.reset();
    assert_reset(&server, id);
    drop(sender);
    server.wait_connections(2, SECOND);

    honest.assert_flowing(3);
    honest.finish().assert_unaffected();
    let observed = server.stop();
    assert_eq!(observed.stats.slow_consumers, 0, "{}", observed.summary());
    eprintln!("resets: handshake released after {reset_handshake:?}, mid-frame after {reset_frame:?}");
}

/// A client driven by the test thread.
struct Driven {
    poll: Poll,
    events: Events,
    buf: ReadBuffer,
    client: Client,
    seen: Vec<Event>,
}

impl Driven {
    fn connect(url: &str, config: ClientConfig) -> Self {
        let poll = Poll::new().unwrap();
        let client = Client::connect(poll.registry(), Token(0), url, &ClientOptions::new(config)).unwrap();
        Self { poll, events: Events::with_capacity(16), buf: ReadBuffer::new(), client, seen: Vec::new() }
    }

    fn until(&mut self, limit: Duration, done: impl Fn(&[Event]) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if done(&self.seen) {
                return true;
            }
            let sleep = self
                .client
                .poll_timeout()
                .unwrap_or(Duration::from_millis(10))
                .min(Duration::from_millis(10));
            self.poll.poll(&mut self.events, Some(sleep)).unwrap();
            for event in self.events.iter() {
                self.client.handle_event(self.poll.registry(), event, &mut self.buf);
            }
            self.client.handle_timeout(self.poll.registry(), &mut self.buf);
            while let Some(event) = self.client.peer_mut().poll_event() {
                self.seen.push(event);
            }
            while self.client.peer_mut().pop_packet() {}
            self.client.flush(self.poll.registry(), &mut self.buf);
        }
        done(&self.seen)
    }
}

#[test]
fn a_silently_dead_link_is_found_by_the_keepalive_on_both_sides() {
    let interval = Duration::from_millis(300);
    let mut config = quick_config();
    config.ws.heartbeat_interval = Some(interval);
    let server = Harness::start(config);
    // Honest peers answer every ping: never dropped, however long this runs.
    let honest = Honest::start(&server.url(), 2);
    let proxy = Proxy::start(
        server.addr(),
        Impairment { latency: Duration::ZERO, jitter: Duration::ZERO, loss: 0.0, ..Impairment::default() },
    );
    let mut client_config = ClientConfig::default();
    client_config.ws.heartbeat_interval = Some(interval);
    let mut victim = Driven::connect(&proxy.url(), client_config);
    assert!(victim.until(SECOND, |e| e.contains(&Event::ConnectionSucceeded)), "{:?}", victim.seen);
    let id = victim.client.peer().unique_id().unwrap();
    // A raw peer that joined and then neither reads nor answers anything.
    let (mute, mute_id) = join(&server);
    // Alive and answering through the proxy for a few intervals.
    let lost = |e: &[Event]| e.iter().any(|e| matches!(e, Event::ServerDisconnected(_)));
    assert!(!victim.until(interval * 4, lost), "{:?}", victim.seen);
    assert!(server.with(|o| o.peers.contains(&id)));
    // The cable is pulled: both ends keep their sockets, nothing arrives.
    proxy.partition();
    let cut = Instant::now();
    // The client finds the server dead: no pong before its next ping.
    assert!(victim.until(interval * 4, lost), "{:?}", victim.seen);
    let client_found = cut.elapsed();
    let Some(Event::ServerDisconnected(info)) = victim.seen.last().cloned() else {
        panic!("{:?}", victim.seen)
    };
    assert_eq!(
        (info.code.0, info.error, info.initiator),
        (1006, Some(Error::KeepaliveTimeout), Initiator::Library)
    );
    server.wait("the server found it", interval * 4, |o| o.departure(id).is_some());
    let server_found = cut.elapsed();
    for peer in [id, mute_id] {
        let reason = server.with(|o| o.departure(peer).cloned()).unwrap();
        let DisconnectReason::Closed(info) = reason else { panic!("{reason:?}") };
        assert_eq!(
            (info.code.0, info.error, info.clean),
            (1006, Some(Error::KeepaliveTimeout), false),
            "{peer}"
        );
    }
    // Found within two intervals (the ping that went unanswered, then the next one due).
    assert!(client_found <= interval * 2 + Duration::from_millis(150), "{client_found:?}");
    assert!(server_found <= interval * 2 + Duration::from_millis(150), "{server_found:?}");
    server.wait_connections(2, SECOND);
    honest.assert_flowing(3);
    honest.finish().assert_unaffected();
    drop(mute);
    let observed = server.stop();
    // Only the two dead ones left by the keepalive.
    let keepalive = observed
        .events
        .iter()
        .filter(|e| matches!(e, Event::PeerDisconnected { reason: DisconnectReason::Closed(i), .. } if i.error == Some(Error::KeepaliveTimeout)))
        .count();
    assert_eq!(keepalive, 2, "{}", observed.summary());
    eprintln!(
        "keepalive {interval:?}: client found the dead link after {client_found:?}, server after {server_found:?}"
    );
}

#[test]
fn relay_over_an_impaired_link_loses_nothing() {
    let server = Harness::start(ServerConfig::default());
    let impairment = Impairment {
        latency: Duration::from_millis(15),
        jitter: Duration::from_millis(15),
        loss: 0.05,
        rto: Duration::from_millis(200),
        max_segment: 300,
        seed: 6455,
    };
    let proxy = Proxy::start(server.addr(), impairment);
    // Three peers behind the impaired link, each relaying to the next through the server.
    let honest = Honest::start(&proxy.url(), 3);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        honest.assert_flowing(10);
    }
    let report = honest.finish();
    report.assert_unaffected();
    let observed = server.stop();
    assert_eq!((observed.stats.dropped, observed.stats.slow_consumers), (0, 0), "{}", observed.summary());
    let delivered: u64 = report.received.iter().sum();
    eprintln!(
        "impaired link: {delivered} packets relayed, all in order, none lost; {} segments, {} stalls of {:?}, longest gap {:?}",
        proxy.counters.segments.load(Ordering::Relaxed),
        proxy.counters.stalls.load(Ordering::Relaxed),
        impairment.rto,
        report.max_gap
    );
    assert!(proxy.counters.stalls.load(Ordering::Relaxed) > 0, "the link never stalled");
    assert!(delivered > 1000, "{delivered}");
}
