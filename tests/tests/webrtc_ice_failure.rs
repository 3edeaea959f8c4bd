//! ICE failure before a peer ever connected, surfaced as Godot's `WebRTCPeerConnection` does
//! it (`STATE_FAILED`, and the multiplayer peer drops the peer), and the reconnect through
//! signalling that Godot games use in place of an ICE restart: the peer is added again and
//! negotiates afresh. Loopback only; the "unreachable" candidate is a UDP socket this test
//! holds and never reads.
#![cfg(feature = "webrtc")]

use core::time::Duration;
use std::net::UdpSocket;
use std::time::Instant;

use multipeer::mesh::Signal;
use multipeer::peer::{Event, PeerId, TransferMode};
use multipeer_std::webrtc::{IceTiming, WebRtcConfig, WebRtcMultiplayerPeer};

fn id(n: u32) -> PeerId {
    PeerId::new(n).unwrap()
}

/// Carries `from`'s signals to `to`; each candidate (trickled, or in the description) is
/// replaced by `detour` when one is given.
fn carry(from: &mut WebRtcMultiplayerPeer, to: &mut WebRtcMultiplayerPeer, detour: Option<&str>) {
    let me = from.unique_id().unwrap();
    while let Some(signal) = from.poll_signal() {
        match signal {
            Signal::Description { kind, sdp, .. } => {
                let sdp = match detour {
                    Some(detour) => sdp
                        .split("\r\n")
                        .map(|line| {
                            if line.starts_with("a=candidate:") { format!("a={detour}") } else { line.into() }
                        })
                        .collect::<Vec<_>>()
                        .join("\r\n"),
                    None => sdp,
                };
                to.set_remote_description(me, kind, &sdp).unwrap();
            }
            Signal::Candidate { mid, index, candidate, .. } => {
                to.add_ice_candidate(me, &mid, index, detour.unwrap_or(&candidate)).unwrap();
            }
            other => panic!("unexpected signal {other:?}"),
        }
    }
}

#[test]
fn a_peer_without_a_working_pair_fails_then_reconnects_through_signalling() {
    // Short checks, so that the pairs run out in under a second.
    let timing = IceTiming {
        initial_rto: Duration::from_millis(100),
        max_rto: Duration::from_millis(200),
        max_retransmits: 4,
    };
    let config = WebRtcConfig { ice_timing: timing, ..WebRtcConfig::default() };
    let mut a = WebRtcMultiplayerPeer::new(config.clone());
    let mut b = WebRtcMultiplayerPeer::new(config);
    a.create_mesh(id(1), &[]).unwrap();
    b.create_mesh(id(2), &[]).unwrap();
    let black_hole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = black_hole.local_addr().unwrap().port();
    let detour = format!("candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host");

    // Every candidate either side signals is swapped for the black hole: no pair can work.
    let started = Instant::now();
    a.add_peer(id(2), 1).unwrap();
    b.add_peer(id(1), 1).unwrap();
    while a.has_peer(id(2)) || b.has_peer(id(1)) {
        assert!(started.elapsed() < Duration::from_secs(15), "no failure: {:?}", a.stats());
        a.poll().unwrap();
        b.poll().unwrap();
        carry(&mut a, &mut b, Some(&detour));
        carry(&mut b, &mut a, Some(&detour));
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed();
    for p in [&a, &b] {
        let stats = p.stats();
        eprintln!("failed after {took:?}: {:?}", stats.last_error);
        assert_eq!(stats.ice_failures, 1);
        assert!(stats.last_error.as_deref().is_some_and(|e| e.contains("ICE failed")), "{stats:?}");
    }
    // The pairs ran out within about a second, then the 3 s grace.
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    // Never connected: nothing to announce as a disconnection.
    while let Some(event) = a.poll_event() {
        assert!(!matches!(event, Event::PeerConnected(_) | Event::PeerDisconnected { .. }), "{event:?}");
    }

    // The reconnect: both add the peer again and the signals go through untouched.
    a.add_peer(id(2), 1).unwrap();
    b.add_peer(id(1), 1).unwrap();
    let mut up = (false, false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(up.0 && up.1) {
        assert!(Instant::now() < deadline, "no reconnection: {:?}", a.stats());
        a.poll().unwrap();
        b.poll().unwrap();
        carry(&mut a, &mut b, None);
        carry(&mut b, &mut a, None);
        while let Some(e) = a.poll_event() {
            up.0 |= e == Event::PeerConnected(id(2));
        }
        while let Some(e) = b.poll_event() {
            up.1 |= e == Event::PeerConnected(id(1));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    a.set_transfer_mode(TransferMode::Reliable);
    a.put_packet(b"again").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        assert!(Instant::now() < deadline, "nothing arrived after the reconnect");
        a.poll().unwrap();
        b.poll().unwrap();
        if let Some((data, info)) = b.get_packet() {
            break (data, info.from);
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    assert_eq!(got, (b"again".to_vec(), id(1)));
    assert_eq!(a.stats().ice_failures, 1, "counted once");
}
