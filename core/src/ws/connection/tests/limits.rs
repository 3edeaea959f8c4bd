//! Back-pressure and limits: inbound queue, pending pongs, outbound bytes and messages.

use super::super::MAX_PENDING_PONGS;
use super::*;

/// A tiny deterministic generator for chunk sizes and decisions.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

/// Feeds `wire` to `s` in random chunks, popping messages at random moments, until all of it
/// is accepted; returns every message read, in order.
fn feed_all(s: &mut Connection<Heap>, wire: &[u8], seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Lcg(seed);
    let mut read = Vec::new();
    let mut at = 0;
    let mut stalls = 0;
    while at < wire.len() {
        let offered = (1 + rng.below(300)).min(wire.len() - at);
        let n = s.handle_input(NOW, &wire[at..at + offered]);
        assert!(n <= offered);
        at += n;
        if n < offered || rng.below(4) == 0 {
            // Back-pressure (or a whim): read a message and offer the rest again.
            if let Some(m) = s.peek_message() {
                read.push(m.data.to_vec());
                assert!(s.pop_message());
            }
        }
        stalls = if n == 0 { stalls + 1 } else { 0 };
        assert!(stalls < 10, "stuck with {} messages queued", s.available_messages());
    }
    while let Some(m) = s.peek_message() {
        read.push(m.data.to_vec());
        assert!(s.pop_message());
    }
    read
}

fn client_wire(messages: &[Vec<u8>]) -> Vec<u8> {
    messages.iter().flat_map(|m| masked(0x82, m)).collect()
}

#[test]
fn a_full_message_queue_stops_reading() {
    let config = Config { max_queued_messages: 4, ..Config::GODOT };
    let sent: Vec<Vec<u8>> = (0..10u8).map(|i| std::vec![i; 3]).collect();
    let wire = client_wire(&sent);
    let mut s = open_server(config);
    let n = s.handle_input(NOW, &wire);
    assert!(n < wire.len());
    assert_eq!(s.available_messages(), 4);
    assert_eq!(s.handle_input(NOW, &wire[n..]), 0, "still full");
    assert!(s.pop_message());
    let m = s.handle_input(NOW, &wire[n..]);
    assert!(m > 0 && s.available_messages() == 4);
    let mut read: Vec<Vec<u8>> = std::vec![sent[0].clone()];
    read.extend(feed_all(&mut s, &wire[n + m..], 1));
    assert_eq!(read, sent, "nothing lost or duplicated");
    assert_eq!(events(&mut s), []);
}

#[test]
fn a_full_byte_budget_stops_reading_mid_message() {
    let config = Config { max_message_size: 100, ..Config::GODOT };
    let sent: Vec<Vec<u8>> = (0..20u8).map(|i| (0..60).map(|j| i ^ j).collect()).collect();
    let wire = client_wire(&sent);
    let mut s = open_server(config);
    let n = s.handle_input(NOW, &wire);
    // One message is queued and 40 bytes of the next are in place: 2 headers of 6 bytes.
    assert_eq!((n, s.available_messages()), (6 + 60 + 6 + 40, 1));
    assert!(s.pop_message());
    for seed in 0..20 {
        let mut s = open_server(config);
        assert_eq!(feed_all(&mut s, &wire, seed), sent, "seed {seed}");
    }
}

#[test]
fn godot_default_message_count_limit() {
    let wire: Vec<u8> = (0..4097).flat_map(|_| masked(0x82, b"")).collect();
    let mut s = open_server(Config::GODOT);
    let n = s.handle_input(NOW, &wire);
    assert_eq!(s.available_messages(), 4096);
    assert!(s.pop_message());
    assert_eq!(s.handle_input(NOW, &wire[n..]), wire.len() - n);
    assert_eq!(s.available_messages(), 4096);
}

#[test]
fn a_ping_flood_waits_for_its_pongs_to_be_written() {
    let pings: Vec<Vec<u8>> = (0..20u8).map(|i| masked(0x89, &[i])).collect();
    let wire = pings.concat();
    let frame = pings[0].len();
    let mut s = open_server(Config::GODOT);
    let n = s.handle_input(NOW, &wire);
    assert_eq!(n, MAX_PENDING_PONGS * frame, "reading stops while pongs wait");
    assert_eq!(s.handle_input(NOW, &wire[n..]), 0);
    // Writing one pong (3 bytes) lets exactly one more ping in.
    s.consume_transmit(2);
    assert_eq!(s.handle_input(NOW, &wire[n..]), 0, "a pong half written still waits");
    s.consume_transmit(1);
    let mut at = n + s.handle_input(NOW, &wire[n..]);
    assert_eq!(at, n + frame);
    let mut pongs = std::vec![Sent { b0: 0x8a, masked: false, payload: std::vec![0] }];
    while at < wire.len() {
        pongs.extend(drain(&mut s));
        at += s.handle_input(NOW, &wire[at..]);
    }
    pongs.extend(drain(&mut s));
    let expected: Vec<Sent> =
        (0..20u8).map(|i| Sent { b0: 0x8a, masked: false, payload: std::vec![i] }).collect();
    assert_eq!(pongs, expected, "one pong per ping, in order");
    assert_eq!(events(&mut s), []);
}

#[test]
fn outbound_limits_are_exact() {
    let config = Config { outbound_buffer_size: 100, max_outbound_messages: 3, ..Config::GODOT };
    let mut s = open_server(config);
    s.send_binary(&[1; 60]).unwrap();
    s.send_binary(&[2; 40]).unwrap();
    assert_eq!(s.send_binary(&[3]), Err(SendError::Full { queued_bytes: 100, queued_messages: 2 }));
    assert!(s.can_send(0) && !s.can_send(1));
    s.send_binary(&[]).unwrap();
    assert_eq!(s.send_binary(&[]), Err(SendError::Full { queued_bytes: 100, queued_messages: 3 }));
    // Control frames never wait behind the data limits.
    s.ping(b"still").unwrap();
    s.handle_input(NOW, &masked(0x89, b"pp"));
    // Frames: 2+60, 2+40, 2+0, ping 2+5, pong 2+2.
    let ends = [62, 104, 106, 113, 117];
    assert_eq!(s.buffered_amount(), 117);
    let mut queued = 3;
    for written in 1..=117 {
        s.consume_transmit(1);
        if ends[..3].contains(&written) {
            queued -= 1;
        }
        assert_eq!(s.queued_outbound_messages(), queued, "after {written} bytes");
    }
    assert!(s.can_send(100) && !s.can_send(101));
    assert_eq!(s.poll_transmit(), None);
}

#[test]
fn outbound_count_is_exact_behind_the_101_and_with_masks() {
    let config = Config { outbound_buffer_size: 30, max_outbound_messages: 2, ..Config::GODOT };
    let mut c = client::<Heap>(NOW, config);
    let mut s = Connection::<Heap>::server(NOW, config);
    pump(NOW, &mut c, &mut s);
    s.accept(NOW, None, &[]).unwrap();
    // Queued right behind the 101 head, before any of it is written.
    s.send_text("0123456789").unwrap();
    s.send_text("abc").unwrap();
    assert_eq!(s.send_text(""), Err(SendError::Full { queued_bytes: 13, queued_messages: 2 }));
    let wire = s.poll_transmit().unwrap().to_vec();
    let head = wire.len() - (2 + 10) - (2 + 3);
    for (step, queued) in [(head, 2), (11, 2), (1, 1), (4, 1), (1, 0)] {
        s.consume_transmit(step);
        assert_eq!(s.queued_outbound_messages(), queued);
    }
    assert_eq!(c.handle_input(NOW, &wire), wire.len());
    assert_eq!(messages(&mut c), [text(b"0123456789").unwrap(), text(b"abc").unwrap()]);
    // The client's frames carry 4 bytes of mask each.
    c.send_binary(&[0; 30]).unwrap();
    assert_eq!(c.send_binary(&[1]), Err(SendError::Full { queued_bytes: 30, queued_messages: 1 }));
    c.consume_transmit(2 + 4 + 29);
    assert_eq!((c.queued_outbound_messages(), c.can_send(1)), (1, false));
    c.consume_transmit(1);
    assert_eq!((c.queued_outbound_messages(), c.can_send(30)), (0, true));
}

#[test]
fn godot_default_outbound_limit() {
    let (mut c, _s) = open_pair::<Heap>(Config::GODOT);
    c.send_binary(&[0; 65535]).unwrap();
    assert_eq!(c.send_binary(&[0]), Err(SendError::Full { queued_bytes: 65535, queued_messages: 1 }));
    c.consume_transmit(c.buffered_amount());
    c.send_binary(&[0; 65535]).unwrap();
}

#[test]
fn full_storage_delays_answers_and_refuses_control_commands() {
    let (_c, mut s) = open_pair::<FixedStorage<8192, 1024>>(Config::GODOT);
    // 1020 bytes of payload and a 4-byte header fill the outbound storage exactly.
    s.send_binary(&[0; 1020]).unwrap();
    assert_eq!(s.buffered_amount(), 1024);
    let ping = masked(0x89, b"are you there");
    let close = masked(0x88, &[0x03, 0xe8]);
    assert_eq!(s.handle_input(NOW, &ping), 0, "no room for the pong: the ping waits");
    assert_eq!(s.handle_input(NOW, &close), 0, "no room for the echo: the close waits");
    let full = Err(SendError::Full { queued_bytes: 1020, queued_messages: 1 });
    assert_eq!(s.ping(b"x"), full);
    assert_eq!(s.close(NOW, CloseCode::NORMAL, ""), full);
    assert_eq!(s.state(), State::Open, "a close that could not be queued changes nothing");
    s.consume_transmit(1024);
    let input = [ping, close].concat();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(
        drain(&mut s),
        [
            Sent { b0: 0x8a, masked: false, payload: b"are you there".to_vec() },
            Sent { b0: 0x88, masked: false, payload: std::vec![0x03, 0xe8] },
        ]
    );
}

#[test]
fn a_keepalive_ping_that_cannot_be_queued_does_not_kill_the_connection() {
    let config = Config { heartbeat_interval: Some(core::time::Duration::from_secs(1)), ..Config::GODOT };
    let (mut c, mut s) = open_pair::<FixedStorage<8192, 1024>>(config);
    s.send_binary(&[0; 1020]).unwrap();
    s.handle_timeout(Instant::from_secs(1));
    assert_eq!(s.buffered_amount(), 1024, "no room for the ping this time");
    pump(Instant::from_secs(1), &mut c, &mut s);
    s.handle_timeout(Instant::from_secs(2));
    assert_eq!(s.state(), State::Open);
    assert_eq!(s.poll_transmit(), Some(&[0x89, 0x00][..]), "the next tick pings");
}

/// An open connection with nothing queued holds no buffer memory on either side: the
/// handshake heads are given back once they are done with.
#[test]
fn an_idle_open_connection_holds_no_buffers() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    assert_eq!((c.buffer_footprint(), s.buffer_footprint()), (0, 0));
    c.send_binary(&[1; 3000]).unwrap();
    pump(Instant::ZERO, &mut c, &mut s);
    assert!(s.buffer_footprint() > 0);
    assert!(s.pop_message());
    assert_eq!((c.buffer_footprint(), s.buffer_footprint()), (0, 0));
}

/// With a release delay, storage stays between messages (no free-and-regrow per message) and
/// is given back once the connection has been idle for the delay.
#[test]
fn a_release_delay_keeps_storage_while_busy_and_frees_it_when_idle() {
    let delay = core::time::Duration::from_secs(1);
    let config = Config { buffer_release_delay: Some(delay), ..Config::GODOT };
    let (mut c, mut s) = open_pair::<Heap>(config);
    // The first message gives its storage back (see the next test); a second one within the
    // delay shows the connection is busy.
    for _ in 0..2 {
        c.send_binary(&[1; 3000]).unwrap();
        pump(Instant::ZERO, &mut c, &mut s);
        assert!(s.pop_message());
    }
    let held = s.buffer_footprint();
    assert!(held > 0, "kept after the queue drained");
    let due = s.poll_timeout().expect("a release timer");
    s.handle_timeout(due);
    assert_eq!(s.buffer_footprint(), 0);
    assert_eq!(s.poll_timeout(), None, "nothing held, nothing armed");
}

/// With a release delay, a busy connection keeps large storage too, inbound and outbound, so
/// a stream of 20 kB messages does not regrow it for each one; it goes back once idle.
#[test]
fn a_release_delay_keeps_large_storage_while_busy() {
    let delay = core::time::Duration::from_secs(1);
    let config = Config { buffer_release_delay: Some(delay), ..Config::GODOT };
    let (mut c, mut s) = open_pair::<Heap>(config);
    // The first message gives its storage back (a single exchange); the next ones within the
    // delay show the connection is busy.
    c.send_binary(&[1; 20_000]).unwrap();
    pump(Instant::ZERO, &mut c, &mut s);
    assert!(s.pop_message());
    assert_eq!(s.buffer_footprint(), 0);
    for round in 0..3u8 {
        c.send_binary(&[round; 20_000]).unwrap();
        pump(Instant::ZERO, &mut c, &mut s);
        assert!(s.pop_message());
        s.send_binary(&[round; 20_000]).unwrap();
        assert_eq!(drain(&mut s).len(), 1);
        assert!(s.buffer_footprint() > 40_000, "both 20 kB queues kept in round {round}");
    }
    let due = s.poll_timeout().expect("a release timer");
    s.handle_timeout(due);
    assert_eq!(s.buffer_footprint(), 0);
}

/// With a release delay, a connection that carried a single exchange holds nothing after it:
/// only one that needs storage again within the delay keeps it (so a connect storm does not
/// hold every handshake's buffers for the length of the delay).
#[test]
fn a_release_delay_keeps_nothing_after_a_single_exchange() {
    let delay = core::time::Duration::from_secs(1);
    let config = Config { buffer_release_delay: Some(delay), ..Config::GODOT };
    let (mut c, mut s) = open_pair::<Heap>(config);
    assert_eq!(s.buffer_footprint(), 0, "the handshake storage is given back at once");
    let later = Instant::ZERO + delay * 5;
    s.handle_timeout(later);
    c.send_binary(&[1; 100]).unwrap();
    pump(later, &mut c, &mut s);
    assert!(s.pop_message());
    assert_eq!(s.buffer_footprint(), 0, "one message after an idle spell: nothing kept");
    c.send_binary(&[2; 100]).unwrap();
    pump(later, &mut c, &mut s);
    assert!(s.pop_message());
    assert!(s.buffer_footprint() > 0, "needed again within the delay: kept");
    let due = s.poll_timeout().expect("a release timer");
    s.handle_timeout(due);
    assert_eq!(s.buffer_footprint(), 0);
}
