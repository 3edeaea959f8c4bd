//! Two WebRTC mesh peers (multipeer-std's str0m engine) driven from one `mio::Poll` over
//! loopback UDP: readiness from the registered sockets, str0m's timeouts as the poll timeout.
#![cfg(all(feature = "webrtc", unix))]

use core::time::Duration;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::mesh::Signal;
use multipeer::peer::{Event, PeerId, TransferMode};
use multipeer_mio::WebRtcDriver;
use multipeer_std::webrtc::WebRtcMultiplayerPeer;

fn id(n: u32) -> PeerId {
    PeerId::new(n).unwrap()
}

/// Carries every signal of `from` to `to` (the test is the signalling channel).
fn carry(from: &mut WebRtcMultiplayerPeer, to: &mut WebRtcMultiplayerPeer) {
    let me = from.unique_id().unwrap();
    while let Some(signal) = from.poll_signal() {
        match signal {
            Signal::Description { kind, sdp, .. } => to.set_remote_description(me, kind, &sdp).unwrap(),
            Signal::Candidate { mid, index, candidate, .. } => {
                to.add_ice_candidate(me, &mid, index, &candidate).unwrap();
            }
            other => panic!("unexpected signal {other:?}"),
        }
    }
}

/// Turns the mio loop until `done` holds (at most 10 s); returns how many polls it took.
fn run(
    poll: &mut Poll,
    a: &mut WebRtcDriver,
    b: &mut WebRtcDriver,
    mut done: impl FnMut(&mut WebRtcMultiplayerPeer, &mut WebRtcMultiplayerPeer) -> bool,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Events::with_capacity(64);
    let mut turns = 0;
    loop {
        carry(a.peer_mut(), b.peer_mut());
        carry(b.peer_mut(), a.peer_mut());
        a.drive(poll.registry()).unwrap();
        b.drive(poll.registry()).unwrap();
        if done(a.peer_mut(), b.peer_mut()) {
            return turns;
        }
        let now = Instant::now();
        assert!(now < deadline, "timed out after {turns} polls");
        let sleep = [a.poll_timeout(), b.poll_timeout(), Some(deadline - now)].into_iter().flatten().min();
        poll.poll(&mut events, sleep).unwrap();
        turns += 1;
        for event in &events {
            let handled = a.handle_event(poll.registry(), event).unwrap()
                || b.handle_event(poll.registry(), event).unwrap();
            assert!(handled, "unknown token {:?}", event.token());
        }
        a.handle_timeout(poll.registry()).unwrap();
        b.handle_timeout(poll.registry()).unwrap();
    }
}

#[test]
fn two_peers_connect_and_exchange_on_a_mio_loop() {
    let mut poll = Poll::new().unwrap();
    let mut a = WebRtcDriver::new(WebRtcMultiplayerPeer::default(), Token(1));
    let mut b = WebRtcDriver::new(WebRtcMultiplayerPeer::default(), Token(2));
    a.peer_mut().create_mesh(id(1), &[]).unwrap();
    b.peer_mut().create_mesh(id(2), &[]).unwrap();
    a.peer_mut().add_peer(id(2), 1).unwrap();
    b.peer_mut().add_peer(id(1), 1).unwrap();
    a.register_sockets(poll.registry()).unwrap();
    b.register_sockets(poll.registry()).unwrap();
    assert_eq!(a.peer().udp_sockets().len(), 1, "one socket per peer and local IP");

    let mut up = (false, false);
    let started = Instant::now();
    let turns = run(&mut poll, &mut a, &mut b, |a, b| {
        while let Some(e) = a.poll_event() {
            up.0 |= e == Event::PeerConnected(id(2));
        }
        while let Some(e) = b.poll_event() {
            up.1 |= e == Event::PeerConnected(id(1));
        }
        up.0 && up.1
    });
    let elapsed = started.elapsed();
    // Readiness, not 1 ms sleeps: a connection takes a few dozen wake-ups, not one per ms.
    assert!(turns < 1000, "{turns} polls in {elapsed:?}");

    for (mode, tag) in [
        (TransferMode::Reliable, b'r'),
        (TransferMode::UnreliableOrdered, b'o'),
        (TransferMode::Unreliable, b'u'),
    ] {
        a.peer_mut().set_transfer_mode(mode);
        b.peer_mut().set_transfer_mode(mode);
        for i in 0..20u8 {
            a.peer_mut().put_packet(&[tag, i]).unwrap();
            b.peer_mut().put_packet(&[tag, i, 0xff]).unwrap();
        }
    }
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    run(&mut poll, &mut a, &mut b, |a, b| {
        while let Some((data, _)) = a.get_packet() {
            got_a.push(data);
        }
        while let Some((data, _)) = b.get_packet() {
            got_b.push(data);
        }
        got_a.len() == 60 && got_b.len() == 60
    });
    let reliable: Vec<u8> = got_b.iter().filter(|d| d[0] == b'r').map(|d| d[1]).collect();
    assert_eq!(reliable, (0..20).collect::<Vec<_>>(), "reliable lane in order");
    assert!(got_a.iter().all(|d| d.len() == 3 && d[2] == 0xff));
    assert!(a.peer().stats().largest_datagram <= 1228);
}
