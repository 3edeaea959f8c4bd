//! Relay flow control: senders wait for their receivers, nothing relayed is lost, only a
//! receiver that stops draining is evicted.

use core::time::Duration;
use std::vec::Vec;

use super::edges::raw_packet;
use super::*;

const SECOND: Duration = Duration::from_secs(1);

/// A server whose peers take 1000-byte messages and queue 4000 bytes.
fn small_queues(timeout: Option<Duration>) -> Net {
    let ws = ws::Config {
        outbound_buffer_size: 1000,
        outbound_queue_size: Some(4000),
        ..ServerConfig::default().ws
    };
    Net::with(ServerConfig { ws, slow_peer_timeout: timeout, ..ServerConfig::default() })
}

/// A numbered raw packet (`send_bytes`) of `len` bytes; the number is in bytes 1..5.
fn numbered(n: u32, len: usize) -> Vec<u8> {
    let mut p = raw_packet(0xab, len);
    p[1..5].copy_from_slice(&n.to_le_bytes());
    p
}

fn number(p: &[u8]) -> u32 {
    u32::from_le_bytes([p[1], p[2], p[3], p[4]])
}

/// Offers the client at `end` packets `next..total` until its own queue refuses one; returns
/// the next number to offer.
fn offer(net: &mut Net, end: usize, mut next: u32, total: u32, len: usize) -> u32 {
    while next < total && net.client(end).put_packet(&numbered(next, len)).is_ok() {
        next += 1;
    }
    net.pump();
    next
}

/// Hands up to `budget` bytes the server holds for `end` to it, as a slow reader would.
fn read_some(net: &mut Net, end: usize, budget: usize) -> usize {
    let conn = net.ends[end].conn;
    let Some(bytes) = net.server.transmit(conn).map(|b| b[..b.len().min(budget)].to_vec()) else {
        return 0;
    };
    net.server.consume_transmit(conn, bytes.len()).unwrap();
    let now = net.now;
    let n = net.ends[end].far.handle_input(now, &bytes);
    assert_eq!(n, bytes.len(), "the reader's own queue keeps up");
    net.pump();
    bytes.len()
}

fn received_from(net: &mut Net, end: usize, from: PeerId) -> Vec<u32> {
    packets(net.client(end)).into_iter().filter(|(f, _)| *f == from).map(|(_, p)| number(&p)).collect()
}

fn disconnects(events: &[Event]) -> Vec<(PeerId, DisconnectReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PeerDisconnected { peer, reason } => Some((*peer, reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_relay_waits_for_a_receiver_that_never_reads_then_evicts_it_alone() {
    for protocol in [Protocol::Godot4, Protocol::Godot3] {
        let mut net = small_queues(Some(10 * SECOND));
        if protocol == Protocol::Godot3 {
            net = Net::with(ServerConfig { protocol, ..net.server.config().clone() });
        }
        let (a, b, c) = (net.connect(), net.connect(), net.connect());
        let (ia, ib) = (net.id(a), net.id(b));
        for end in [a, b, c] {
            drain(net.client(end));
        }
        drain(&mut net.server);
        net.ends[a].stalled = true;
        net.client(b).set_target_peer(Target::Broadcast);
        let total = 300;
        let mut next = offer(&mut net, b, 0, total, 500);
        let mut got = received_from(&mut net, c, ib);
        assert!(next < total, "{protocol:?}: the sender was slowed down");
        let stats = net.server.stats();
        assert_eq!((stats.blocked_senders, stats.dropped, stats.slow_consumers), (1, 0, 0), "{stats:?}");
        assert!(net.server.has_peer(ia), "{protocol:?}: not evicted before the timeout");
        // Just before the timeout: still waiting, nobody gone.
        net.advance(Instant::from_millis(9_999));
        next = offer(&mut net, b, next, total, 500);
        assert!(net.server.has_peer(ia));
        assert!(disconnects(&drain(&mut net.server)).is_empty());
        // At the timeout the receiver goes, alone, with 1008 and a reason.
        net.advance(Instant::ZERO + 10 * SECOND);
        let gone = disconnects(&drain(&mut net.server));
        assert_eq!(gone, [(ia, DisconnectReason::SlowConsumer)], "{protocol:?}");
        let conn = net.server.connection(ia);
        assert!(conn.is_none());
        // The observer drains its events as a drive loop does (packets behind an event wait).
        let mut seen_by_c = Vec::new();
        while next < total || got.len() < total as usize {
            next = offer(&mut net, b, next, total, 500);
            seen_by_c.extend(drain(net.client(c)));
            got.extend(received_from(&mut net, c, ib));
        }
        assert_eq!(got, (0..total).collect::<Vec<_>>(), "{protocol:?}: every packet, in order");
        let stats = net.server.stats();
        assert_eq!((stats.blocked_senders, stats.dropped, stats.slow_consumers), (0, 0, 1), "{stats:?}");
        assert!(stats.relay_waits >= 1 && stats.blocked_micros >= 9_999_000, "{stats:?}");
        assert_eq!(disconnects(&seen_by_c).iter().map(|(p, _)| *p).collect::<Vec<_>>(), [ia]);
    }
}

#[test]
fn the_evicted_receiver_hears_1008_with_the_reason_if_it_reads_again() {
    let mut net = small_queues(Some(2 * SECOND));
    let (a, b) = (net.connect(), net.connect());
    drain(net.client(a));
    net.ends[a].stalled = true;
    net.client(b).set_target_peer(Target::Broadcast);
    offer(&mut net, b, 0, 100, 500);
    net.advance(Instant::ZERO + 2 * SECOND);
    net.ends[a].stalled = false;
    net.pump();
    let info = drain(net.client(a)).into_iter().find_map(|e| match e {
        Event::ServerDisconnected(info) => Some(info),
        _ => None,
    });
    let info = info.expect("the client saw the server close");
    assert_eq!(info.code, CloseCode::POLICY_VIOLATION);
    assert_eq!(info.reason.as_str(), flow_reason());
}

fn flow_reason() -> &'static str {
    super::super::flow::SLOW_PEER_REASON
}

#[test]
fn a_slow_but_steady_reader_slows_its_sender_and_is_never_evicted() {
    let mut net = small_queues(Some(2 * SECOND));
    let (a, b) = (net.connect(), net.connect());
    let ib = net.id(b);
    drain(net.client(a));
    net.ends[a].stalled = true;
    net.client(b).set_target_peer(Target::Broadcast);
    let total = 2000;
    let (mut next, mut got) = (0, Vec::new());
    // 30 s in 100 ms steps; the reader takes 2000 bytes a step (20 kB/s), the sender offers
    // as much as it is allowed.
    for step in 1..=300u64 {
        next = offer(&mut net, b, next, total, 500);
        read_some(&mut net, a, 2000);
        got.extend(received_from(&mut net, a, ib));
        net.advance(Instant::from_millis(step * 100));
    }
    let stats = net.server.stats();
    assert_eq!(stats.slow_consumers, 0, "{stats:?}");
    assert!(stats.relay_waits > 10, "the sender waited again and again: {stats:?}");
    // The sender went at the reader's pace: about 40 packets of 500 bytes a second.
    assert!((1000..=1400).contains(&got.len()), "{} packets in 30 s", got.len());
    assert_eq!(got, (0..got.len() as u32).collect::<Vec<_>>(), "in order, none missing");
    assert!(net.server.has_peer(net.id(a)));
}

#[test]
fn senders_waiting_on_one_receiver_are_served_in_turn() {
    let mut net = small_queues(None);
    let (a, b, d) = (net.connect(), net.connect(), net.connect());
    let (ia, ib, id) = (net.id(a), net.id(b), net.id(d));
    drain(net.client(a));
    net.ends[a].stalled = true;
    for s in [b, d] {
        net.client(s).set_target_peer(Target::Peer(ia));
    }
    let (mut nb, mut nd) = (0, 0);
    let mut order = Vec::new();
    for _ in 0..200 {
        nb = offer(&mut net, b, nb, 10_000, 200);
        nd = offer(&mut net, d, nd, 10_000, 200);
        read_some(&mut net, a, 600);
        order.extend(packets(net.client(a)).into_iter().map(|(from, _)| from));
    }
    let from_b = order.iter().filter(|f| **f == ib).count();
    let from_d = order.iter().filter(|f| **f == id).count();
    assert!(from_b > 100 && from_d > 100, "b {from_b}, d {from_d}");
    // Served in turn: neither gets more than a queue's worth ahead of the other.
    let ahead = from_b.abs_diff(from_d);
    assert!(ahead <= 25, "b {from_b}, d {from_d}");
}

#[test]
fn a_packet_already_read_from_a_sender_that_closes_is_still_relayed_first() {
    let mut net = small_queues(None);
    let (a, b) = (net.connect(), net.connect());
    let (ia, ib) = (net.id(a), net.id(b));
    drain(net.client(a));
    net.ends[a].stalled = true;
    net.client(b).set_target_peer(Target::Peer(ia));
    let sent = offer(&mut net, b, 0, 30, 500);
    assert_eq!(sent, 30);
    let now = net.now;
    net.client(b).close(now);
    net.pump();
    assert!(net.server.has_peer(ib), "its packets still wait for the receiver");
    net.ends[a].stalled = false;
    net.pump();
    assert_eq!(received_from(&mut net, a, ib), (0..30).collect::<Vec<_>>());
    assert!(!net.server.has_peer(ib));
    let gone = disconnects(&drain(&mut net.server));
    assert!(matches!(gone.as_slice(), [(p, DisconnectReason::Closed(_))] if *p == ib), "{gone:?}");
    assert_eq!(net.server.stats().dropped, 0);
}

#[test]
fn the_servers_own_broadcast_is_all_or_nothing_while_a_peer_is_full() {
    let mut net = small_queues(Some(10 * SECOND));
    let (a, b) = (net.connect(), net.connect());
    let ib = net.id(b);
    drain(&mut net.server);
    net.ends[b].stalled = true;
    net.server.set_target_peer(Target::Broadcast);
    let mut accepted = 0;
    for i in 0..30u32 {
        match net.server.put_packet(&numbered(i, 200)) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert_eq!(e, PutError::Full);
                break;
            }
        }
        net.pump();
    }
    assert!((5..30).contains(&accepted), "{accepted}");
    let got: Vec<u32> = packets(net.client(a)).iter().map(|(_, p)| number(p)).collect();
    assert_eq!(got, (0..accepted).collect::<Vec<_>>(), "the reader got exactly what was accepted");
    // The refusal happened in `put_packet`, which knows no time: the slow-peer clock starts
    // at the next call that does, not at the server's last known time (zero).
    let later = Instant::from_secs(100);
    assert_eq!(net.server.poll_timeout(), Some(Instant::ZERO));
    net.advance(later);
    assert!(net.server.has_peer(ib));
    net.advance(later + 10 * SECOND);
    let gone = disconnects(&drain(&mut net.server));
    assert_eq!(gone, [(ib, DisconnectReason::SlowConsumer)]);
    assert!(net.server.put_packet(&numbered(99, 200)).is_ok(), "broadcasts flow again");
}

#[test]
fn an_inbound_rate_limit_paces_a_sender_and_ends_one_that_stays_over_it() {
    let config = ServerConfig {
        max_inbound_packets_per_second: Some(10),
        slow_peer_timeout: Some(5 * SECOND),
        ..ServerConfig::default()
    };
    let mut net = Net::with(config);
    let (a, b) = (net.connect(), net.connect());
    let (ia, ib) = (net.id(a), net.id(b));
    drain(&mut net.server);
    net.client(b).set_target_peer(Target::Peer(ia));
    let mut got = Vec::new();
    // 40 packets at once: one second of burst (10) goes through, then 10 a second.
    offer(&mut net, b, 0, 40, 100);
    got.extend(received_from(&mut net, a, ib));
    assert_eq!(got.len(), 10);
    for step in 1..=20u64 {
        net.advance(Instant::from_millis(step * 100));
        got.extend(received_from(&mut net, a, ib));
    }
    assert!((29..=31).contains(&got.len()), "{} after 2 s", got.len());
    assert!(net.server.stats().throttled > 0);
    // A sender that catches up is fine; one that keeps a backlog for the timeout is ended.
    assert!(net.server.has_peer(ib));
    let mut next = 40;
    for step in 21..=80u64 {
        next = offer(&mut net, b, next, 10_000, 100);
        net.advance(Instant::from_millis(step * 100));
        got.extend(received_from(&mut net, a, ib));
        if !net.server.has_peer(ib) {
            break;
        }
    }
    assert!(!net.server.has_peer(ib), "stayed over its limit for 5 s");
    let gone = disconnects(&drain(&mut net.server));
    assert_eq!(gone, [(ib, DisconnectReason::RateLimited)]);
    assert_eq!(net.server.stats().rate_limited, 1);
    assert_eq!(got, (0..got.len() as u32).collect::<Vec<_>>(), "in order, none missing");
}

#[test]
fn a_sender_waiting_on_one_peer_does_not_hold_other_senders_to_other_peers() {
    let mut net = small_queues(None);
    let (a, b, c, d) = (net.connect(), net.connect(), net.connect(), net.connect());
    let (ia, ic, id) = (net.id(a), net.id(c), net.id(d));
    let ib = net.id(b);
    for end in [a, b, c, d] {
        drain(net.client(end));
    }
    net.ends[a].stalled = true;
    net.client(b).set_target_peer(Target::Peer(ia));
    net.client(d).set_target_peer(Target::Peer(ic));
    let from_b = offer(&mut net, b, 0, 200, 500);
    assert!(from_b < 200, "b waits for a");
    assert_eq!(net.server.stats().blocked_senders, 1);
    // Meanwhile d → c flows in full, and b's relays to a wait without loss.
    let mut got = Vec::new();
    let mut next = 0;
    while got.len() < 200 {
        next = offer(&mut net, d, next, 200, 500);
        got.extend(received_from(&mut net, c, id));
    }
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    assert_eq!(net.server.stats().blocked_senders, 1, "b still waits");
    net.ends[a].stalled = false;
    let mut at_a = Vec::new();
    let mut next = from_b;
    while at_a.len() < 200 {
        next = offer(&mut net, b, next, 200, 500);
        at_a.extend(received_from(&mut net, a, ib));
    }
    assert_eq!(at_a, (0..200).collect::<Vec<_>>());
    assert_eq!(net.server.stats().dropped, 0);
}

#[test]
fn a_sender_back_under_its_rate_limit_after_a_burst_is_never_disconnected() {
    let config = ServerConfig {
        max_inbound_packets_per_second: Some(10),
        slow_peer_timeout: Some(2 * SECOND),
        ..ServerConfig::default()
    };
    let mut net = Net::with(config);
    let (a, b) = (net.connect(), net.connect());
    let (ia, ib) = (net.id(a), net.id(b));
    drain(&mut net.server);
    net.client(b).set_target_peer(Target::Peer(ia));
    // A burst of 12: 10 pass, 2 wait for their budget, so it is over its limit for a while
    // (with 8 a second after it, about 1 s: held half the timeout)...
    let mut next = offer(&mut net, b, 0, 12, 100);
    let mut got = received_from(&mut net, a, ib);
    // ...then 8 a second, under the limit, for three times the timeout.
    for step in 1..=600u64 {
        if step % 12 == 0 {
            net.client(b).put_packet(&numbered(next, 100)).unwrap();
            next += 1;
        }
        net.advance(Instant::from_millis(step * 10));
        got.extend(received_from(&mut net, a, ib));
    }
    assert!(net.server.has_peer(ib), "{:?}", net.server.stats());
    assert_eq!(net.server.stats().rate_limited, 0);
    assert_eq!(got, (0..next).collect::<Vec<_>>());
}
