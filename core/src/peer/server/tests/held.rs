//! Large packets held for the application in their connections (`inbox.rs`): read and echoed
//! without a copy, in order with what their sender sent next, and never lost when the sender
//! leaves, is kicked, or the server closes.

use std::vec;
use std::vec::Vec;

use super::*;
use crate::peer::server::inbox::HOLD_MIN;

const LARGE: usize = 16 * 1024;

fn no_relay(protocol: Protocol) -> Net {
    Net::with(ServerConfig { protocol, relay: false, ..ServerConfig::default() })
}

/// `len` bytes that tell packets apart. The first is 0: a relaying server would take a first
/// byte whose low three bits are 7 for a SceneMultiplayer SYS command.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| if i == 0 { 0 } else { (i as u8).wrapping_mul(31).wrapping_add(seed) }).collect()
}

#[test]
fn a_large_packet_is_read_where_it_was_received_and_echoed_from_there() {
    let mut net = no_relay(Protocol::Godot4);
    let a = net.connect();
    let ia = net.id(a);
    drain(net.client(a));
    let payload = pattern(LARGE, 1);
    net.client(a).put_packet(&payload).unwrap();
    net.pump();
    let received_at = net.server.connection(ia).unwrap().peek_message().unwrap().data.as_ptr();
    let packet = net.server.peek_packet().unwrap();
    assert_eq!((packet.info.from, packet.data), (ia, &payload[..]));
    assert_eq!(packet.data.as_ptr(), received_at, "read where it lies, not from a copy");

    assert_eq!(net.server.forward_packet(Target::Peer(ia)), Ok(true));
    assert_eq!(net.server.available_packet_count(), 0);
    // The receive buffer became the send buffer: the frame's payload is the received bytes,
    // behind a 4-byte header (126 + 16-bit length), unmasked in place when they arrived.
    let sent = net.server.connection(ia).unwrap().poll_transmit().unwrap();
    assert_eq!(sent.len(), 4 + LARGE);
    assert_eq!(sent[4..].as_ptr(), received_at, "echoed without a copy");
    net.pump();
    assert_eq!(packets(net.client(a)), vec![(PeerId::SERVER, payload)]);
    assert_eq!(net.server.stats().packets_out, 2, "the id message and the echo");
}

#[test]
fn small_packets_and_packets_with_company_on_a_relaying_server_are_copied() {
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect();
    let ia = net.id(a);
    drain(net.client(a));
    let held = |net: &Net| {
        net.server.slots.iter().filter(|s| s.conn.as_ref().is_some_and(|c| c.app_hold.is_some())).count()
    };
    net.client(a).put_packet(&[1; HOLD_MIN - 1]).unwrap();
    net.pump();
    assert_eq!(held(&net), 0);
    // Two large packets in one read: the first has company, so it is copied; the second,
    // alone by then, is held.
    net.client(a).put_packet(&pattern(LARGE, 2)).unwrap();
    net.client(a).put_packet(&pattern(LARGE, 3)).unwrap();
    net.pump();
    assert_eq!((net.server.available_packet_count(), held(&net)), (3, 1));
    let expect = vec![(ia, vec![1; HOLD_MIN - 1]), (ia, pattern(LARGE, 2)), (ia, pattern(LARGE, 3))];
    assert_eq!(packets(&mut net.server), expect);
}

#[test]
fn without_relay_later_messages_wait_behind_a_held_packet_and_arrive_in_order() {
    let mut net = no_relay(Protocol::Godot4);
    let a = net.connect();
    let ia = net.id(a);
    drain(net.client(a));
    net.client(a).put_packet(&pattern(LARGE, 4)).unwrap();
    net.pump();
    for n in 0..5u8 {
        net.client(a).put_packet(&[n; 10]).unwrap();
    }
    // Even with company: without relay everything is for the application anyway.
    net.client(a).put_packet(&pattern(LARGE, 5)).unwrap();
    net.client(a).put_packet(&pattern(LARGE, 6)).unwrap();
    net.pump();
    assert_eq!(net.server.available_packet_count(), 1, "the rest wait in the connection");
    let mut expect = vec![(ia, pattern(LARGE, 4))];
    expect.extend((0..5u8).map(|n| (ia, vec![n; 10])));
    expect.extend([(ia, pattern(LARGE, 5)), (ia, pattern(LARGE, 6))]);
    assert_eq!(packets(&mut net.server), expect, "all read in one drain, in order");
}

#[test]
fn relayed_messages_do_not_wait_behind_a_held_packet() {
    let mut net = Net::new(Protocol::Godot4);
    let (a, b) = (net.connect(), net.connect());
    let (ia, ib) = (net.id(a), net.id(b));
    drain(net.client(b));
    net.client(a).set_target_peer(Target::Server);
    net.client(a).put_packet(&pattern(LARGE, 5)).unwrap();
    net.pump();
    net.client(a).set_target_peer(Target::Peer(ib));
    net.client(a).put_packet(b"a-to-b").unwrap();
    net.pump();
    assert_eq!(packets(net.client(b)), vec![(ia, b"a-to-b".to_vec())], "relayed before the app read");
    assert_eq!(packets(&mut net.server), vec![(ia, pattern(LARGE, 5))]);
}

#[test]
fn a_packet_held_by_a_sender_that_left_keeps_its_connection_until_read() {
    let mut net = no_relay(Protocol::Godot4);
    let a = net.connect();
    let ia = net.id(a);
    drain(&mut net.server);
    net.client(a).put_packet(&pattern(LARGE, 6)).unwrap();
    net.pump();
    let now = net.now;
    net.client(a).close(now);
    net.pump();
    assert!(!net.server.has_peer(ia), "the peer left at once");
    assert_eq!(net.server.connection_count(), 1, "the connection stays while its packet waits");
    let c = net.connect();
    assert!(!net.server.event_is_next(), "the packet came before the departure");
    assert_eq!(packets(&mut net.server), vec![(ia, pattern(LARGE, 6))]);
    let events = drain(&mut net.server);
    assert!(matches!(events[0], Event::PeerDisconnected { peer, .. } if peer == ia), "{events:?}");
    assert_eq!(events[1], Event::PeerConnected(net.id(c)));
    net.pump();
    assert_eq!(net.server.connection_count(), 1, "released once read");
}

#[test]
fn a_kicked_peer_s_held_packet_stays_readable() {
    for protocol in [Protocol::Godot4, Protocol::Godot3] {
        let mut net = no_relay(protocol);
        let (a, b) = (net.connect(), net.connect());
        let ia = net.id(a);
        net.client(a).put_packet(&pattern(LARGE, 7)).unwrap();
        net.pump();
        let now = net.now;
        net.server.disconnect_peer(now, ia, false).unwrap();
        net.pump();
        net.client(b).put_packet(&pattern(LARGE, 8)).unwrap();
        net.pump();
        let got = packets(&mut net.server);
        assert_eq!(got, vec![(ia, pattern(LARGE, 7)), (net.id(b), pattern(LARGE, 8))], "{protocol:?}");
    }
}

#[test]
fn godot3_held_packets_are_their_payload_and_echo_with_a_server_header() {
    let mut net = no_relay(Protocol::Godot3);
    let (a, b) = (net.connect(), net.connect());
    let (ia, ib) = (net.id(a), net.id(b));
    for i in [a, b] {
        drain(net.client(i));
    }
    net.client(a).put_packet(&pattern(LARGE, 9)).unwrap();
    net.pump();
    assert_eq!(net.server.peek_packet().map(|p| p.data.len()), Some(LARGE));
    assert_eq!(net.server.forward_packet(Target::Peer(ia)), Ok(true));
    net.client(b).put_packet(&pattern(LARGE, 10)).unwrap();
    net.pump();
    assert_eq!(net.server.forward_packet(Target::Broadcast), Ok(true));
    net.pump();
    assert_eq!(
        packets(net.client(a)),
        vec![(PeerId::SERVER, pattern(LARGE, 9)), (PeerId::SERVER, pattern(LARGE, 10))]
    );
    assert_eq!(packets(net.client(b)), vec![(PeerId::SERVER, pattern(LARGE, 10))]);
    assert_eq!(net.server.available_packet_count(), 0);
    let _ = ib;
}

#[test]
fn a_held_text_message_is_echoed_as_binary() {
    let mut net = no_relay(Protocol::Godot4);
    let a = net.connect_raw(ws::Config::GODOT);
    net.pump();
    raw_messages(net.raw(a));
    let ia = net.id(a);
    let text = "x".repeat(LARGE);
    net.raw(a).send_text(&text).unwrap();
    net.pump();
    assert_eq!(net.server.forward_packet(Target::Peer(ia)), Ok(true));
    net.pump();
    let echoed = net.raw(a).peek_message().unwrap();
    assert_eq!((echoed.kind, echoed.data), (ws::MessageKind::Binary, text.as_bytes()));
}

#[test]
fn an_echo_to_a_full_sender_keeps_the_packet_held() {
    let ws =
        ws::Config { outbound_buffer_size: LARGE, outbound_queue_size: Some(LARGE), ..ws::Config::GODOT };
    let mut net = Net::with(ServerConfig { ws, relay: false, ..ServerConfig::default() });
    let a = net.connect();
    let ia = net.id(a);
    net.ends[a].stalled = true;
    net.client(a).put_packet(&pattern(LARGE, 11)).unwrap();
    net.pump();
    assert_eq!(net.server.forward_packet(Target::Peer(ia)), Ok(true));
    net.client(a).put_packet(&pattern(LARGE, 12)).unwrap();
    net.pump();
    assert_eq!(net.server.forward_packet(Target::Peer(ia)), Err(PutError::Full));
    assert_eq!(net.server.peek_packet().map(|p| p.data.to_vec()), Some(pattern(LARGE, 12)));
    net.ends[a].stalled = false;
    net.pump();
    assert_eq!(net.server.forward_packet(Target::Peer(ia)), Ok(true));
    net.pump();
    assert_eq!(
        packets(net.client(a)),
        vec![(PeerId::SERVER, pattern(LARGE, 11)), (PeerId::SERVER, pattern(LARGE, 12))]
    );
}

#[test]
fn closing_the_server_with_held_packets_empties_the_inbox() {
    let mut net = no_relay(Protocol::Godot4);
    let (a, b) = (net.connect(), net.connect());
    for i in [a, b] {
        net.client(i).put_packet(&pattern(LARGE, i as u8)).unwrap();
    }
    net.pump();
    assert_eq!(net.server.available_packet_count(), 2);
    let now = net.now;
    net.server.close(now);
    net.pump();
    assert_eq!(net.server.available_packet_count(), 0);
    assert!(net.server.peek_packet().is_none());
    assert!(net.server.slots.iter().all(|s| s.conn.as_ref().is_none_or(|c| c.app_hold.is_none())));
}
