//! Two engines in one process over loopback UDP, signalled by hand the way Godot's
//! `WebRTCMultiplayerPeer` and a game script drive them.

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;
use std::time::Instant;

use super::*;

const LOOPBACK: [IpAddr; 1] = [IpAddr::V4(Ipv4Addr::LOCALHOST)];

/// Godot's three lanes as `WebRTCMultiplayerPeer.add_peer` declares them.
fn godot_lanes(c: &mut Connection) -> [usize; 3] {
    let lane = |label: &str, id, ordered, lifetime| ChannelSpec {
        label: label.to_string(),
        negotiated: Some(id),
        ordered,
        max_packet_lifetime: lifetime,
        ..ChannelSpec::default()
    };
    [
        c.create_data_channel(lane("reliable", 1, true, None)).unwrap(),
        c.create_data_channel(lane("ordered", 2, true, Some(1))).unwrap(),
        c.create_data_channel(lane("unreliable", 3, false, Some(1))).unwrap(),
    ]
}

/// Moves signals between the two as the game script would (descriptions are set locally,
/// then handed to the other side; candidates are added on the other side).
fn relay(from: &mut Connection, to: &mut Connection) {
    for signal in from.take_signals() {
        match signal {
            Signal::Description { kind, sdp } => {
                from.set_local_description(kind, &sdp).unwrap();
                to.set_remote_description(kind, &sdp).unwrap();
            }
            Signal::Candidate { candidate, .. } => to.add_ice_candidate(&candidate).unwrap(),
            Signal::ChannelReceived(_) => {}
        }
    }
}

fn pump(a: &mut Connection, b: &mut Connection, until: impl Fn(&Connection, &Connection) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !until(a, b) {
        assert!(Instant::now() < deadline, "timed out: a {:?}, b {:?}", a.state, b.state);
        a.poll();
        b.poll();
        relay(a, b);
        relay(b, a);
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn open(c: &Connection, key: usize) -> bool {
    c.channel(key).is_some_and(|ch| ch.state == ChannelState::Open)
}

/// A connected pair with Godot's lanes open on both sides.
fn connected_pair() -> (Connection, Connection, [usize; 3], [usize; 3]) {
    let mut a = Connection::new(&LOOPBACK, &[]).unwrap();
    let mut b = Connection::new(&LOOPBACK, &[]).unwrap();
    assert_eq!(a.state, ConnectionState::New);
    let (la, lb) = (godot_lanes(&mut a), godot_lanes(&mut b));
    a.create_offer().unwrap();
    pump(&mut a, &mut b, |a, b| la.iter().all(|k| open(a, *k)) && lb.iter().all(|k| open(b, *k)));
    (a, b, la, lb)
}

#[test]
fn offer_answer_and_godot_lanes_carry_messages_both_ways() {
    let (mut a, mut b, la, lb) = connected_pair();
    assert_eq!(a.state, ConnectionState::Connected);
    assert_eq!(b.state, ConnectionState::Connected);
    assert_eq!((a.signaling, b.signaling), (SignalingState::Stable, SignalingState::Stable));
    assert_eq!(
        (a.gathering_state(), b.gathering_state()),
        (GatheringState::Complete, GatheringState::Complete)
    );
    assert_eq!(b.channel(lb[2]).unwrap().stream, Some(3));
    for (i, key) in la.iter().enumerate() {
        a.send(*key, format!("a{i}").as_bytes(), true).unwrap();
    }
    b.send(lb[0], b"text", false).unwrap();
    pump(&mut a, &mut b, |a, b| {
        lb.iter().all(|k| b.channel(*k).unwrap().available() == 1)
            && a.channel(la[0]).unwrap().available() == 1
    });
    for (i, key) in lb.iter().enumerate() {
        assert_eq!(b.receive(*key), Some((format!("a{i}").into_bytes(), true)));
    }
    assert_eq!(a.receive(la[0]), Some((b"text".to_vec(), false)), "the write mode travels");
    assert_eq!(a.receive(la[0]), None);
}

#[test]
fn a_channel_opened_later_arrives_through_dcep() {
    let (mut a, mut b, _, _) = connected_pair();
    let spec = ChannelSpec {
        label: String::from("chat"),
        ordered: false,
        max_retransmits: Some(2),
        protocol: String::from("p"),
        ..ChannelSpec::default()
    };
    let key = a.create_data_channel(spec).unwrap();
    let mut received = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.is_none() {
        assert!(Instant::now() < deadline);
        a.poll();
        b.poll();
        received = b.take_signals().into_iter().find_map(|s| match s {
            Signal::ChannelReceived(k) => Some(k),
            _ => None,
        });
    }
    let remote = b.channel(received.unwrap()).unwrap();
    assert_eq!(remote.spec.label, "chat");
    assert_eq!(remote.spec.max_retransmits, Some(2));
    assert!(!remote.spec.ordered);
    assert_eq!(remote.spec.protocol, "p");
    pump(&mut a, &mut b, |a, _| open(a, key));
}

#[test]
fn calls_out_of_order_fail_and_limits_are_refused() {
    let mut a = Connection::new(&LOOPBACK, &[]).unwrap();
    assert!(matches!(a.create_offer(), Err(EngineError::State(_))), "an offer needs a channel");
    let lanes = godot_lanes(&mut a);
    let duplicate = ChannelSpec { negotiated: Some(1), ..ChannelSpec::default() };
    assert!(matches!(a.create_data_channel(duplicate), Err(EngineError::Invalid(_))));
    assert!(matches!(a.send(lanes[0], b"x", true), Err(EngineError::State(_))), "not open yet");
    assert!(a.set_remote_description("answer", "v=0").is_err(), "no offer pending");
    assert!(a.set_local_description("answer", "v=0").is_err());
    assert!(a.add_ice_candidate("candidate:nonsense").is_err());
    assert!(a.add_ice_candidate("").is_ok(), "end of candidates");
    a.create_offer().unwrap();
    assert!(a.create_offer().is_err(), "one offer at a time");

    let (mut a, mut b, la, lb) = connected_pair();
    let max = a.max_message();
    assert_eq!(max, 256 * 1024, "the remote's a=max-message-size");
    assert_eq!(a.send(la[0], &vec![0; max + 1], true), Err(EngineError::TooLarge { max }));
    // Fill b's reliable inbox beyond its bound: the excess is counted, not silently lost.
    b.inbox_limit = 100;
    let total = 110;
    let mut sent = 0;
    while sent < total {
        match a.send(la[0], b"m", true) {
            Ok(()) => sent += 1,
            Err(EngineError::Full) => a.poll(),
            Err(e) => panic!("{e}"),
        }
    }
    pump(&mut a, &mut b, |_, b| b.drops.inbox_full == 10);
    assert_eq!(b.channel(lb[0]).unwrap().available(), 100);
}

#[test]
fn close_ends_both_sides() {
    let (mut a, mut b, la, lb) = connected_pair();
    a.close();
    assert_eq!(a.state, ConnectionState::Closed);
    assert_eq!(a.signaling, SignalingState::Closed);
    assert!(!open(&a, la[0]));
    assert!(a.send(la[0], b"x", true).is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    while open(&b, lb[0]) && b.state == ConnectionState::Connected {
        assert!(Instant::now() < deadline, "the remote never saw the close");
        b.poll();
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A STUN server of our own that maps every request to 198.51.100.7:4242.
fn fake_stun_server() -> (SocketAddr, std::thread::JoinHandle<u32>) {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let addr = server.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let mut buf = [0; 1500];
        let mut answered = 0;
        while let Ok((len, from)) = server.recv_from(&mut buf) {
            if len != 20 || buf[0..2] != [0, 1] {
                continue;
            }
            // Binding success with XOR-MAPPED-ADDRESS 198.51.100.7:4242.
            let mut reply = vec![0x01, 0x01, 0, 12];
            reply.extend_from_slice(&buf[4..20]);
            let port = 4242_u16 ^ 0x2112;
            let ip = u32::from_be_bytes([198, 51, 100, 7]) ^ 0x2112_A442;
            reply.extend_from_slice(&[0x00, 0x20, 0, 8, 0, 1]);
            reply.extend_from_slice(&port.to_be_bytes());
            reply.extend_from_slice(&ip.to_be_bytes());
            server.send_to(&reply, from).unwrap();
            answered += 1;
            break;
        }
        answered
    });
    (addr, thread)
}

#[test]
fn a_stun_mapped_address_is_signalled_as_a_reflexive_candidate() {
    let (server, thread) = fake_stun_server();
    assert_eq!(
        stun_servers([format!("stun:{server}").as_str(), "turn:127.0.0.1:1", "stuns:x"]),
        vec![server]
    );
    let mut a = Connection::new(&LOOPBACK, &[server]).unwrap();
    godot_lanes(&mut a);
    a.create_offer().unwrap();
    let Some(Signal::Description { sdp, .. }) = a.take_signals().pop() else { panic!("no offer") };
    a.set_local_description("offer", &sdp).unwrap();
    assert_eq!(a.gathering_state(), GatheringState::Gathering);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut candidates = Vec::new();
    while a.gathering_state() != GatheringState::Complete {
        assert!(Instant::now() < deadline, "no STUN answer");
        a.poll();
        std::thread::sleep(Duration::from_millis(2));
    }
    for signal in a.take_signals() {
        if let Signal::Candidate { candidate, .. } = signal {
            candidates.push(candidate);
        }
    }
    assert_eq!(thread.join().unwrap(), 1);
    assert!(candidates.iter().any(|c| c.contains("198.51.100.7 4242 typ srflx")), "{candidates:?}");
    assert!(candidates.iter().any(|c| c.contains("typ host")), "{candidates:?}");
}

#[test]
fn sdp_attributes() {
    let sdp = "v=0\r\na=mid:0\r\na=max-message-size:262144\r\n";
    assert_eq!(sdp_mid(sdp).as_deref(), Some("0"));
    assert_eq!(sdp_max_message_size(sdp), 262_144);
    assert_eq!(sdp_max_message_size("v=0\r\n"), 65_536, "absent means 64 KiB");
    assert_eq!(sdp_max_message_size("a=max-message-size:0\r\n"), usize::MAX, "0 means no limit");
}
