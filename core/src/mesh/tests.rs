//! Meshes over an in-memory fake engine with seeded loss and reordering.

use std::collections::BTreeMap;
use std::vec;
use std::vec::Vec;

use chacha20::ChaCha8Rng;
use proptest::prelude::*;
use rand_core::{Rng, SeedableRng};

use super::*;
use crate::peer::{ConnectionStatus, DropReason, Event, MultiplayerPeer, PeerId, Target, TransferMode};
use crate::queue::QueueLimits;
use crate::time::Instant;

fn id(n: u32) -> PeerId {
    PeerId::new(n).unwrap()
}

/// A fake WebRTC engine for several meshes: it negotiates through the meshes' own signalling,
/// opens channels in random order, and drops (lifetime-limited lanes) or reorders (unordered
/// lanes) messages at random.
struct FakeNet {
    meshes: BTreeMap<PeerId, Mesh>,
    /// Channel specs each side created for each pair.
    created: BTreeMap<(PeerId, PeerId), Vec<ChannelSpec>>,
    rng: ChaCha8Rng,
    loss: u32,
    /// Messages in flight: (to, from, stream, data).
    flight: Vec<(PeerId, PeerId, u16, Vec<u8>)>,
    /// Messages held back by a full reliable lane, offered again on the next step.
    held: Vec<(PeerId, PeerId, u16, Vec<u8>)>,
}

impl FakeNet {
    fn new(meshes: Vec<Mesh>, seed: u64, loss_percent: u32) -> Self {
        let meshes = meshes.into_iter().map(|m| (m.unique_id().unwrap(), m)).collect();
        Self {
            meshes,
            created: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            loss: loss_percent,
            flight: Vec::new(),
            held: Vec::new(),
        }
    }

    fn mesh(&mut self, p: u32) -> &mut Mesh {
        self.meshes.get_mut(&id(p)).unwrap()
    }

    fn deliver(&mut self, to: PeerId, event: EngineEvent<'_>) {
        if let Some(m) = self.meshes.get_mut(&to) {
            let _ = m.handle_engine_event(Instant::ZERO, event);
        }
    }

    /// Runs commands, signalling and deliveries until nothing makes progress (messages held
    /// by a full reliable lane stay held until the reader drains it).
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut progress = false;
            let ids: Vec<PeerId> = self.meshes.keys().copied().collect();
            for me in ids {
                while let Some(command) = self.meshes.get_mut(&me).unwrap().poll_command() {
                    progress = true;
                    self.run(me, command);
                }
                while let Some(signal) = self.meshes.get_mut(&me).unwrap().poll_signal() {
                    progress = true;
                    if let Signal::Description { peer, kind, sdp } = signal {
                        if let Some(m) = self.meshes.get_mut(&peer) {
                            let _ = m.set_remote_description(me, kind, &sdp);
                        }
                    }
                }
            }
            // Ordered lanes keep their order; unordered ones are shuffled among themselves.
            let mut ordered = Vec::new();
            let mut unordered = Vec::new();
            for m in core::mem::take(&mut self.held).into_iter().chain(core::mem::take(&mut self.flight)) {
                if self.is_ordered(m.0, m.1, m.2) { ordered.push(m) } else { unordered.push(m) }
            }
            for i in (1..unordered.len()).rev() {
                let j = (self.rng.next_u32() as usize) % (i + 1);
                unordered.swap(i, j);
            }
            for (to, from, stream, data) in ordered.into_iter().chain(unordered) {
                let Some(m) = self.meshes.get_mut(&to) else { continue };
                let event = EngineEvent::Message { peer: from, channel: stream, data: &data };
                if m.handle_engine_event(Instant::ZERO, event).is_ok() {
                    progress = true;
                } else {
                    self.held.push((to, from, stream, data));
                }
            }
            if !progress {
                return;
            }
        }
        panic!("fake network did not settle");
    }

    fn is_ordered(&self, to: PeerId, from: PeerId, stream: u16) -> bool {
        self.created
            .get(&(from, to))
            .and_then(|c| c.iter().find(|s| s.id == stream))
            .is_none_or(|s| s.ordered)
    }

    fn run(&mut self, me: PeerId, command: Command) {
        match command {
            Command::CreatePeer { peer, offerer, channels } => {
                self.created.insert((me, peer), channels);
                if offerer {
                    let sdp = std::format!("offer {me}->{peer}");
                    self.deliver(me, EngineEvent::LocalDescription { peer, kind: SdpKind::Offer, sdp: &sdp });
                }
            }
            Command::RemoteDescription { peer, kind: SdpKind::Offer, .. } => {
                let sdp = std::format!("answer {me}->{peer}");
                self.deliver(me, EngineEvent::LocalDescription { peer, kind: SdpKind::Answer, sdp: &sdp });
            }
            Command::RemoteDescription { peer, kind: SdpKind::Answer, .. } => self.open_pair(me, peer),
            Command::Send { peer, channel, data } => {
                let spec =
                    self.created.get(&(me, peer)).and_then(|c| c.iter().find(|s| s.id == channel)).cloned();
                let lossy = spec.is_some_and(|s| s.reliability != Reliability::Reliable);
                if lossy && self.rng.next_u32() % 100 < self.loss {
                    return;
                }
                self.flight.push((peer, me, channel, data));
            }
            Command::ClosePeer { peer } => {
                self.created.remove(&(me, peer));
                if self.created.remove(&(peer, me)).is_some() {
                    self.deliver(peer, EngineEvent::State { peer: me, state: ConnectionState::Closed });
                }
            }
            _ => {}
        }
    }

    /// Both sides created the pair and exchanged descriptions: open every channel on both
    /// ends, in a random order.
    fn open_pair(&mut self, a: PeerId, b: PeerId) {
        let (Some(ca), Some(cb)) = (self.created.get(&(a, b)).cloned(), self.created.get(&(b, a)).cloned())
        else {
            return;
        };
        assert_eq!(ca, cb, "both sides create identical negotiated channels");
        let mut opens: Vec<(PeerId, PeerId, u16)> =
            ca.iter().flat_map(|s| [(a, b, s.id), (b, a, s.id)]).collect();
        for i in (1..opens.len()).rev() {
            let j = (self.rng.next_u32() as usize) % (i + 1);
            opens.swap(i, j);
        }
        for (at, peer, channel) in opens {
            self.deliver(at, EngineEvent::ChannelOpen { peer, channel });
        }
    }
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
