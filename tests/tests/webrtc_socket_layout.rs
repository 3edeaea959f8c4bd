//! One UDP socket per mesh: a 16-peer Rust mesh on loopback where every peer (standing for one
//! game process) holds a single socket for its 15 connections, each datagram routed to the
//! `Rtc` that accepts it, against the same mesh with a socket per connection; the throughput
//! of each of Godot's three lanes is measured for both in the same run and printed.
#![cfg(feature = "webrtc")]

use core::time::Duration;
use std::collections::BTreeSet;
use std::time::Instant;

use multipeer::mesh::Signal;
use multipeer::peer::{Event, PeerId, TransferMode};
use multipeer_std::webrtc::{SocketLayout, WebRtcConfig, WebRtcMultiplayerPeer};

const PEERS: u32 = 16;

fn id(n: u32) -> PeerId {
    PeerId::new(n).unwrap()
}

/// Hands every signal each peer produced to its addressee (the test is the lobby).
fn carry_signals(peers: &mut [WebRtcMultiplayerPeer]) {
    for k in 0..peers.len() {
        let me = peers[k].unique_id().unwrap();
        while let Some(signal) = peers[k].poll_signal() {
            match signal {
                Signal::Description { peer, kind, sdp } => {
                    peers[peer.get() as usize - 1].set_remote_description(me, kind, &sdp).unwrap();
                }
                Signal::Candidate { peer, mid, index, candidate } => {
                    peers[peer.get() as usize - 1].add_ice_candidate(me, &mid, index, &candidate).unwrap();
                }
                other => panic!("unexpected signal {other:?}"),
            }
        }
    }
}

/// A full mesh of `PEERS` peers with ids 1..=PEERS, every pair connected.
fn full_mesh(config: &WebRtcConfig) -> Vec<WebRtcMultiplayerPeer> {
    let mut peers: Vec<_> = (1..=PEERS)
        .map(|n| {
            let mut p = WebRtcMultiplayerPeer::new(config.clone());
            p.create_mesh(id(n), &[]).unwrap();
            for other in (1..=PEERS).filter(|o| *o != n) {
                p.add_peer(id(other), 1).unwrap();
            }
            p
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut up = vec![0u32; peers.len()];
    while up.iter().any(|u| *u < PEERS - 1) {
        assert!(Instant::now() < deadline, "the mesh did not connect: {up:?}");
        for (k, p) in peers.iter_mut().enumerate() {
            p.poll().unwrap();
            while let Some(e) = p.poll_event() {
                up[k] += u32::from(matches!(e, Event::PeerConnected(_)));
            }
        }
        carry_signals(&mut peers);
        std::thread::sleep(Duration::from_micros(200));
    }
    peers
}

/// Every peer broadcasts 64-byte messages on `mode` for `span`, as fast as its outbox takes
/// them; returns messages delivered per second over the whole mesh.
fn throughput(peers: &mut [WebRtcMultiplayerPeer], mode: TransferMode, span: Duration) -> f64 {
    for p in peers.iter_mut() {
        p.set_transfer_mode(mode);
    }
    let started = Instant::now();
    let mut delivered = 0u64;
    while started.elapsed() < span {
        for p in peers.iter_mut() {
            for _ in 0..4 {
                if p.put_packet(&[7; 64]).is_err() {
                    break;
                }
            }
            p.poll().unwrap();
            while p.get_packet().is_some() {
                delivered += 1;
            }
        }
    }
    let rate = delivered as f64 / started.elapsed().as_secs_f64();
    // Let what is in flight arrive and be taken, so the next lane starts from empty queues.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(500) {
        for p in peers.iter_mut() {
            p.poll().unwrap();
            while p.get_packet().is_some() {}
        }
    }
    rate
}

/// Each peer sends one reliable message to every other; all 15 × 16 arrive.
fn everyone_hears_everyone(peers: &mut [WebRtcMultiplayerPeer]) {
    for p in peers.iter_mut() {
        p.set_transfer_mode(TransferMode::Reliable);
        let me = p.unique_id().unwrap().get();
        p.put_packet(&me.to_be_bytes()).unwrap();
    }
    let mut heard: Vec<BTreeSet<i32>> = vec![BTreeSet::new(); peers.len()];
    let deadline = Instant::now() + Duration::from_secs(20);
    while heard.iter().any(|h| h.len() < PEERS as usize - 1) {
        assert!(Instant::now() < deadline, "broadcasts incomplete");
        for (k, p) in peers.iter_mut().enumerate() {
            p.poll().unwrap();
            while let Some((data, info)) = p.get_packet() {
                let from = i32::from_be_bytes(data[..4].try_into().unwrap());
                assert_eq!(from, info.from.get(), "the message came through the sender's connection");
                heard[k].insert(from);
            }
        }
    }
}

#[test]
fn a_16_peer_mesh_holds_one_socket_per_peer_and_reports_its_throughput() {
    let modes = [TransferMode::Reliable, TransferMode::UnreliableOrdered, TransferMode::Unreliable];
    let span = Duration::from_secs(2);
    let mut rates = Vec::new();
    for layout in [SocketLayout::PerMesh, SocketLayout::PerPeer] {
        let started = Instant::now();
        let mut peers = full_mesh(&WebRtcConfig::default().socket_layout(layout));
        let setup = started.elapsed();
        let per_process = match layout {
            SocketLayout::PerMesh => 1,
            _ => PEERS as usize - 1,
        };
        let mut ports = BTreeSet::new();
        for p in &peers {
            assert_eq!(p.udp_sockets().len(), per_process, "{layout:?}");
            let me = u32::try_from(p.unique_id().unwrap().get()).unwrap();
            let locals: BTreeSet<_> =
                (1..=PEERS).filter(|o| *o != me).flat_map(|o| p.get_peer_local_addrs(id(o))).collect();
            assert_eq!(locals.len(), per_process, "{layout:?}: addresses used for the 15 remotes");
            ports.extend(locals);
        }
        assert_eq!(ports.len(), PEERS as usize * per_process, "no two processes share a socket");
        everyone_hears_everyone(&mut peers);
        let lane_rates: Vec<f64> = modes.iter().map(|m| throughput(&mut peers, *m, span)).collect();
        let unrouted: u64 = peers.iter().map(|p| p.stats().unrouted_datagrams).sum();
        eprintln!(
            "{layout:?}: {} UDP sockets, mesh up in {:.1} s, unrouted datagrams {unrouted}",
            peers.iter().map(|p| p.udp_sockets().len()).sum::<usize>(),
            setup.as_secs_f64()
        );
        assert_eq!(unrouted, 0, "{layout:?}: every datagram found its connection");
        rates.push(lane_rates);
    }
    eprintln!("lane                 one socket/mesh   socket/peer   ratio   (messages delivered per second)");
    for (i, mode) in modes.iter().enumerate() {
        let (shared, per_peer) = (rates[0][i], rates[1][i]);
        eprintln!("{:<20} {shared:>15.0} {per_peer:>13.0} {:>7.2}", format!("{mode:?}"), shared / per_peer);
        // Loose on purpose (a shared 2-core machine): the test guards against a demultiplexing
        // cost that would halve the mesh, not against noise.
        assert!(
            shared > per_peer * 0.5,
            "{mode:?}: one socket per mesh delivered {shared:.0}/s vs {per_peer:.0}/s"
        );
    }
}

/// A port range binds the mesh's socket inside it (the first free port), every remote sharing
/// it; when every port of the range is taken, the peer fails and the reason is reported.
#[test]
fn sockets_bind_within_a_configured_port_range() {
    // Two free ports next to each other, the first one then taken by a stranger.
    let (taken, port) = (1..200)
        .find_map(|_| {
            let a = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
            let p = a.local_addr().ok()?.port().checked_add(1)?;
            std::net::UdpSocket::bind(("127.0.0.1", p)).ok().map(drop)?;
            Some((a, p))
        })
        .unwrap();
    let first = taken.local_addr().unwrap().port();
    let config = WebRtcConfig::default().ports(first..=port);
    let mut a = WebRtcMultiplayerPeer::new(config.clone());
    a.create_mesh(id(1), &[]).unwrap();
    a.add_peer(id(2), 1).unwrap();
    a.add_peer(id(3), 1).unwrap();
    let expected = vec![core::net::SocketAddr::from(([127, 0, 0, 1], port))];
    assert_eq!(a.get_peer_local_addrs(id(2)), expected, "the taken port was skipped");
    assert_eq!(a.get_peer_local_addrs(id(3)), expected, "both remotes share the socket");
    assert_eq!(a.udp_sockets().len(), 1);

    // The whole range is taken now (by the stranger and by `a`).
    let mut b = WebRtcMultiplayerPeer::new(config);
    b.create_mesh(id(4), &[]).unwrap();
    b.add_peer(id(5), 1).unwrap();
    assert!(!b.has_peer(id(5)), "the peer failed and was removed");
    let error = b.stats().last_error.clone().unwrap_or_default();
    assert!(error.contains("range"), "{error}");
    drop(taken);
}
