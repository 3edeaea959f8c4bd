//! Meshes over an in-memory fake engine with seeded loss and reordering.

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::fake::FakeNet;
use super::*;
use crate::peer::{ConnectionStatus, DropReason, Event, MultiplayerPeer, PeerId, Target, TransferMode};
use crate::queue::QueueLimits;
use crate::time::Instant;

fn id(n: u32) -> PeerId {
    PeerId::new(n).unwrap()
}

fn events(m: &mut Mesh) -> Vec<Event> {
    core::iter::from_fn(|| m.poll_event()).collect()
}

fn packets(m: &mut Mesh) -> Vec<(PeerId, TransferMode, u8, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(p) = m.peek_packet() {
        out.push((p.info.from, p.info.mode, p.info.channel, p.data.to_vec()));
        m.pop_packet();
    }
    out
}

fn full_mesh(ids: &[u32]) -> FakeNet {
    let meshes = ids.iter().map(|&n| Mesh::create_mesh(id(n), &[TransferMode::Reliable]).unwrap()).collect();
    let mut net = FakeNet::new(meshes, 7, 0);
    for &a in ids {
        for &b in ids {
            if a != b {
                net.mesh(a).add_peer(id(b), 1).unwrap();
            }
        }
    }
    net.settle();
    net
}

#[test]
fn three_party_mesh_connects_and_routes_every_mode() {
    let mut net = full_mesh(&[3, 8, 20]);
    for n in [3, 8, 20] {
        let ev = events(net.mesh(n));
        let others: Vec<_> =
            [3, 8, 20].into_iter().filter(|&o| o != n).map(|o| Event::PeerConnected(id(o))).collect();
        assert_eq!(ev, others, "mesh {n}");
        assert_eq!(net.mesh(n).connection_status(), ConnectionStatus::Connected);
    }
    let m = net.mesh(3);
    m.set_target_peer(Target::Peer(id(8)));
    for (mode, tag) in
        [(TransferMode::Reliable, 1), (TransferMode::UnreliableOrdered, 2), (TransferMode::Unreliable, 3)]
    {
        m.set_transfer_mode(mode);
        m.put_packet(&[tag]).unwrap();
    }
    m.set_transfer_channel(1);
    m.put_packet(&[4]).unwrap();
    m.set_transfer_channel(2);
    assert!(m.put_packet(&[5]).is_err(), "no second custom channel");
    m.set_transfer_channel(0);
    m.set_transfer_mode(TransferMode::Reliable);
    m.set_target_peer(Target::AllExcept(id(8)));
    m.put_packet(&[6]).unwrap();
    net.settle();
    let mut got = packets(net.mesh(8));
    got.sort_by_key(|p| p.3.clone());
    assert_eq!(
        got,
        vec![
            (id(3), TransferMode::Reliable, 0, vec![1]),
            (id(3), TransferMode::UnreliableOrdered, 0, vec![2]),
            (id(3), TransferMode::Unreliable, 0, vec![3]),
            (id(3), TransferMode::Reliable, 1, vec![4]),
        ]
    );
    assert_eq!(packets(net.mesh(20)), vec![(id(3), TransferMode::Reliable, 0, vec![6])]);
}

#[test]
fn reads_go_round_robin_over_peers_with_reliable_first() {
    let mut net = full_mesh(&[2, 3, 4]);
    for sender in [3, 4] {
        let m = net.mesh(sender);
        m.set_target_peer(Target::Peer(id(2)));
        m.set_transfer_mode(TransferMode::Unreliable);
        m.put_packet(&[sender as u8, 0]).unwrap();
        m.set_transfer_mode(TransferMode::Reliable);
        m.put_packet(&[sender as u8, 1]).unwrap();
        m.put_packet(&[sender as u8, 2]).unwrap();
    }
    net.settle();
    let order: Vec<Vec<u8>> = packets(net.mesh(2)).into_iter().map(|p| p.3).collect();
    assert_eq!(order, vec![vec![3, 1], vec![4, 1], vec![3, 2], vec![4, 2], vec![3, 0], vec![4, 0]]);
}

#[test]
fn server_compatibility_announces_in_godot_3_order() {
    let meshes =
        vec![Mesh::initialize(id(5), true), Mesh::initialize(id(1), false), Mesh::initialize(id(7), false)];
    let mut net = FakeNet::new(meshes, 1, 0);
    net.mesh(5).add_peer(id(7), 1).unwrap();
    net.mesh(7).add_peer(id(5), 1).unwrap();
    net.settle();
    assert_eq!(events(net.mesh(5)), vec![], "peers before the server connect silently");
    assert_eq!(net.mesh(5).connection_status(), ConnectionStatus::Connecting);
    net.mesh(5).add_peer(id(1), 1).unwrap();
    net.mesh(1).add_peer(id(5), 1).unwrap();
    net.settle();
    assert_eq!(
        events(net.mesh(5)),
        vec![Event::PeerConnected(id(1)), Event::ConnectionSucceeded, Event::PeerConnected(id(7))]
    );
    net.mesh(1).close(Instant::ZERO);
    net.settle();
    let ev = events(net.mesh(5));
    assert!(matches!(ev[0], Event::PeerDisconnected { peer, .. } if peer.is_server()), "{ev:?}");
    assert!(matches!(ev[1], Event::ServerDisconnected(_)));
    assert_eq!(net.mesh(5).connection_status(), ConnectionStatus::Disconnected);
}

#[test]
fn client_and_server_modes_restrict_ids() {
    assert_eq!(Mesh::create_client(PeerId::SERVER, &[]).err(), Some(MeshError::InvalidId));
    let mut client = Mesh::create_client(id(9), &[]).unwrap();
    assert_eq!(client.add_peer(id(4), 1), Err(MeshError::InvalidId));
    assert!(client.add_peer(PeerId::SERVER, 1).is_ok());
    assert_eq!(client.add_peer(PeerId::SERVER, 1), Err(MeshError::AlreadyAdded(PeerId::SERVER)));
    let mut server = Mesh::create_server(&[]);
    assert_eq!(server.add_peer(PeerId::SERVER, 1), Err(MeshError::InvalidId));
    server.set_refuse_new_connections(true);
    assert_eq!(server.add_peer(id(9), 1), Err(MeshError::Refused));
    assert!(server.is_server_relay_supported() && client.is_server_relay_supported());

    let mut net = FakeNet::new(vec![client, Mesh::create_server(&[])], 3, 0);
    net.mesh(1).add_peer(id(9), 1).unwrap();
    assert_eq!(net.mesh(9).connection_status(), ConnectionStatus::Connecting);
    net.settle();
    assert_eq!(events(net.mesh(9)), vec![Event::PeerConnected(PeerId::SERVER), Event::ConnectionSucceeded]);
    assert_eq!(net.mesh(9).connection_status(), ConnectionStatus::Connected);
}

#[test]
fn a_closing_channel_removes_the_peer() {
    let mut net = full_mesh(&[2, 3]);
    events(net.mesh(2));
    let now = Instant::ZERO;
    net.mesh(2).handle_engine_event(now, EngineEvent::ChannelClosed { peer: id(3), channel: 2 }).unwrap();
    let ev = events(net.mesh(2));
    assert!(matches!(ev.as_slice(), [Event::PeerDisconnected { peer, .. }] if *peer == id(3)));
    assert!(!net.mesh(2).has_peer(id(3)));
    assert_eq!(net.mesh(2).poll_command(), Some(Command::ClosePeer { peer: id(3) }));
    // A message racing the close is ignored, not a panic or a ghost peer.
    let late = EngineEvent::Message { peer: id(3), channel: 1, data: b"late" };
    assert!(net.mesh(2).handle_engine_event(now, late).is_ok());
    assert_eq!(net.mesh(2).available_packet_count(), 0);
}

#[test]
fn unreliable_lanes_drop_oldest_visibly_and_reliable_lanes_push_back() {
    let mut net = full_mesh(&[2, 3]);
    events(net.mesh(2));
    let m = net.mesh(2);
    m.set_lane_limits(QueueLimits { max_bytes: 1000, max_packets: 4 });
    let now = Instant::ZERO;
    for i in 0..6u8 {
        m.handle_engine_event(now, EngineEvent::Message { peer: id(3), channel: 3, data: &[i] }).unwrap();
    }
    assert_eq!(m.dropped(), 2);
    let drops = events(m)
        .iter()
        .filter(|e| matches!(e, Event::PacketDropped { reason: DropReason::QueueOverflow, .. }))
        .count();
    assert_eq!(drops, 2);
    for i in 0..4u8 {
        m.handle_engine_event(now, EngineEvent::Message { peer: id(3), channel: 1, data: &[i] }).unwrap();
    }
    let full = m.handle_engine_event(now, EngineEvent::Message { peer: id(3), channel: 1, data: &[9] });
    assert_eq!(full, Err(LaneFull { peer: id(3), channel: 1 }));
    let got: Vec<u8> = packets(m).into_iter().map(|p| p.3[0]).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 2, 3, 4, 5], "reliable first, then the newest unreliable");
}

proptest! {
    /// Per transfer mode: reliable delivers everything in order; unreliable-ordered delivers a
    /// subsequence in order; unreliable delivers a subset; nothing is duplicated or invented.
    #[test]
    fn delivery_per_mode_matches_the_model(seed: u64, sends in proptest::collection::vec(0u8..3, 1..60)) {
        let meshes = vec![Mesh::create_mesh(id(2), &[]).unwrap(), Mesh::create_mesh(id(3), &[]).unwrap()];
        let mut net = FakeNet::new(meshes, seed, 30);
        net.mesh(2).add_peer(id(3), 1).unwrap();
        net.mesh(3).add_peer(id(2), 1).unwrap();
        net.settle();
        let mut sent: [Vec<u16>; 3] = Default::default();
        for (i, &mode) in sends.iter().enumerate() {
            let mode = TransferMode::from_godot(mode).unwrap();
            let m = net.mesh(2);
            m.set_transfer_mode(mode);
            m.set_target_peer(Target::Peer(id(3)));
            m.put_packet(&(i as u16).to_be_bytes()).unwrap();
            sent[usize::from(mode.to_godot())].push(i as u16);
            if i % 7 == 0 {
                net.settle();
            }
        }
        net.settle();
        let mut got: [Vec<u16>; 3] = Default::default();
        for (from, mode, _, data) in packets(net.mesh(3)) {
            prop_assert_eq!(from, id(2));
            got[usize::from(mode.to_godot())].push(u16::from_be_bytes([data[0], data[1]]));
        }
        prop_assert_eq!(&got[2], &sent[2], "reliable: all, in order");
        let mut it = sent[1].iter();
        prop_assert!(got[1].iter().all(|g| it.any(|s| s == g)), "unreliable ordered: an in-order subsequence");
        let mut unordered = got[0].clone();
        unordered.sort_unstable();
        unordered.dedup();
        prop_assert_eq!(unordered.len(), got[0].len(), "no duplicates");
        prop_assert!(got[0].iter().all(|g| sent[0].contains(g)), "nothing invented");
    }
}
