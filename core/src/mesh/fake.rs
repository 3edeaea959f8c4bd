//! A fake WebRTC engine for tests: negotiation through the meshes' signalling, channels opened
//! in random order, loss on lifetime-limited lanes and reordering on unordered ones.

use std::collections::BTreeMap;
use std::vec::Vec;

use chacha20::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::*;
use crate::peer::{MultiplayerPeer, PeerId};
use crate::time::Instant;

/// Whatever holds the meshes under test.
pub(crate) trait MeshHost {
    /// The ids of the meshes, in a stable order.
    fn ids(&self) -> Vec<PeerId>;
    /// The mesh with this id.
    fn mesh(&mut self, id: PeerId) -> Option<&mut Mesh>;
}

impl MeshHost for BTreeMap<PeerId, Mesh> {
    fn ids(&self) -> Vec<PeerId> {
        self.keys().copied().collect()
    }

    fn mesh(&mut self, id: PeerId) -> Option<&mut Mesh> {
        self.get_mut(&id)
    }
}

/// The engine side of every peer connection between the meshes.
pub(crate) struct FakeEngine {
    /// Channel specs each side created for each pair.
    created: BTreeMap<(PeerId, PeerId), Vec<ChannelSpec>>,
    rng: ChaCha8Rng,
    loss: u32,
    /// Messages in flight: (to, from, stream, data).
    flight: Vec<(PeerId, PeerId, u16, Vec<u8>)>,
    /// Messages held back by a full reliable lane, offered again on the next step.
    held: Vec<(PeerId, PeerId, u16, Vec<u8>)>,
    /// Whether descriptions are passed between meshes here (else the test's signalling does).
    pub(crate) forward_signals: bool,
}

impl FakeEngine {
    pub(crate) fn new(seed: u64, loss_percent: u32) -> Self {
        Self {
            created: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            loss: loss_percent,
            flight: Vec::new(),
            held: Vec::new(),
            forward_signals: true,
        }
    }

    fn deliver(host: &mut impl MeshHost, to: PeerId, event: EngineEvent<'_>) {
        if let Some(m) = host.mesh(to) {
            let _ = m.handle_engine_event(Instant::ZERO, event);
        }
    }

    /// One round of commands, signalling and deliveries; returns whether anything progressed.
    pub(crate) fn step(&mut self, host: &mut impl MeshHost) -> bool {
        let mut progress = false;
        for me in host.ids() {
            while let Some(command) = host.mesh(me).and_then(Mesh::poll_command) {
                progress = true;
                self.run(host, me, command);
            }
            if self.forward_signals {
                while let Some(signal) = host.mesh(me).and_then(Mesh::poll_signal) {
                    progress = true;
                    if let Signal::Description { peer, kind, sdp } = signal {
                        if let Some(m) = host.mesh(peer) {
                            let _ = m.set_remote_description(me, kind, &sdp);
                        }
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
            let Some(m) = host.mesh(to) else { continue };
            let event = EngineEvent::Message { peer: from, channel: stream, data: &data };
            if m.handle_engine_event(Instant::ZERO, event).is_ok() {
                progress = true;
            } else {
                self.held.push((to, from, stream, data));
            }
        }
        progress
    }

    /// Steps until nothing makes progress (messages held by a full reliable lane stay held).
    pub(crate) fn settle(&mut self, host: &mut impl MeshHost) {
        for _ in 0..1000 {
            if !self.step(host) {
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

    fn run(&mut self, host: &mut impl MeshHost, me: PeerId, command: Command) {
        match command {
            Command::CreatePeer { peer, offerer, channels } => {
                self.created.insert((me, peer), channels);
                if offerer {
                    let sdp = std::format!("offer {me}->{peer}");
                    Self::deliver(
                        host,
                        me,
                        EngineEvent::LocalDescription { peer, kind: SdpKind::Offer, sdp: &sdp },
                    );
                }
            }
            Command::RemoteDescription { peer, kind: SdpKind::Offer, .. } => {
                let sdp = std::format!("answer {me}->{peer}");
                Self::deliver(
                    host,
                    me,
                    EngineEvent::LocalDescription { peer, kind: SdpKind::Answer, sdp: &sdp },
                );
            }
            Command::RemoteDescription { peer, kind: SdpKind::Answer, .. } => self.open_pair(host, me, peer),
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
                    Self::deliver(
                        host,
                        peer,
                        EngineEvent::State { peer: me, state: ConnectionState::Closed },
                    );
                }
            }
            _ => {}
        }
    }

    /// Both sides created the pair and exchanged descriptions: open every channel on both
    /// ends, in a random order.
    fn open_pair(&mut self, host: &mut impl MeshHost, a: PeerId, b: PeerId) {
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
            Self::deliver(host, at, EngineEvent::ChannelOpen { peer, channel });
        }
    }
}

/// Meshes and their engine together.
pub(crate) struct FakeNet {
    pub(crate) meshes: BTreeMap<PeerId, Mesh>,
    pub(crate) engine: FakeEngine,
}

impl FakeNet {
    pub(crate) fn new(meshes: Vec<Mesh>, seed: u64, loss_percent: u32) -> Self {
        let meshes = meshes.into_iter().map(|m| (m.unique_id().unwrap_or(PeerId::SERVER), m)).collect();
        Self { meshes, engine: FakeEngine::new(seed, loss_percent) }
    }

    pub(crate) fn mesh(&mut self, p: u32) -> &mut Mesh {
        self.meshes.get_mut(&PeerId::new(p).unwrap()).unwrap()
    }

    pub(crate) fn settle(&mut self) {
        self.engine.settle(&mut self.meshes);
    }
}
