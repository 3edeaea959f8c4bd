//! WebRTC targets: the DCEP codec and the `Mesh` peer table driven by arbitrary engine events
//! and application commands.

use std::collections::{BTreeMap, BTreeSet};

use multipeer::Instant;
use multipeer::mesh::dcep::{self, Message, Open};
use multipeer::mesh::{
    Command, ConnectionState, EngineEvent, Mesh, MeshError, MeshMode, Reliability, SdpKind,
};
use multipeer::peer::{ConnectionStatus, Event, MultiplayerPeer, PeerId, PutError, Target, TransferMode};
use multipeer::queue::QueueLimits;

use super::input::{Input, Output};

/// `dcep::decode` on the bytes; `encode` → `decode` on what decodes, and on an `Open` built
/// from the bytes.
///
/// Checks: a decoded message re-encodes to the same bytes, except the reliability parameter of
/// a reliable channel, which carries no meaning and is written as 0; decoding the encoding
/// gives the message back; an ACK is exactly one byte; any `Open` with short enough strings
/// survives `encode` → `decode`.
pub fn dcep(data: &[u8]) {
    match dcep::decode(data) {
        Ok(message) => {
            let encoded = dcep::encode(&message).expect("a decoded message has short strings");
            let mut expected = data.to_vec();
            if let Message::Open(open) = &message {
                if open.reliability == Reliability::Reliable {
                    expected[4..8].fill(0);
                }
            } else {
                assert_eq!(data, [0x02]);
            }
            assert_eq!(encoded, expected, "{message:?}");
            assert_eq!(dcep::decode(&encoded), Ok(message));
        }
        Err(_) => assert!(!data.is_empty() || dcep::decode(data).is_err()),
    }
    let mut input = Input::new(data);
    let flags = input.byte();
    let parameter = input.u16();
    let reliability = match flags & 3 {
        0 | 3 => Reliability::Reliable,
        1 => Reliability::MaxRetransmits(parameter),
        _ => Reliability::MaxPacketLifetime(parameter),
    };
    let priority = input.u16();
    let label = String::from_utf8_lossy(input.slice()).into_owned();
    let protocol = String::from_utf8_lossy(input.rest()).into_owned();
    let open = Message::Open(Open { ordered: flags & 4 == 0, reliability, priority, label, protocol });
    let encoded = dcep::encode(&open).expect("short strings encode");
    assert_eq!(dcep::decode(&encoded), Ok(open));
}

/// One step of a mesh run. Peer selectors pick from ids 1–6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshOp {
    /// `add_peer(peer, unreliable_lifetime)`.
    Add(u8),
    /// `remove_peer(peer)`.
    Remove(u8),
    /// `set_remote_description` or, with bit 4, `add_ice_candidate`, with a text of `len` bytes.
    Remote {
        /// Peer selector and variant.
        peer: u8,
        /// Text length.
        len: u8,
    },
    /// The engine's local description or candidate (bit 4).
    Local(u8),
    /// The engine opened `channel` (0–7, some unknown) of `peer`.
    Open {
        /// Peer selector.
        peer: u8,
        /// Stream id.
        channel: u8,
    },
    /// The engine closed `channel` of `peer`.
    Closed {
        /// Peer selector.
        peer: u8,
        /// Stream id.
        channel: u8,
    },
    /// A message arrived on `channel` of `peer` (the harness keeps one refused by a full
    /// reliable lane and offers it again later, as the adapter must).
    Message {
        /// Peer selector.
        peer: u8,
        /// Stream id.
        channel: u8,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A connection state for `peer`.
    State(u8),
    /// Target, mode and channel set, then `put_packet` of `len` bytes.
    Put {
        /// Target selector.
        target: u8,
        /// Mode (bits 0–1) and channel (bits 2–4).
        how: u8,
        /// Length.
        len: u16,
    },
    /// The application reads a packet.
    Pop,
    /// The application drains events, commands and signals.
    Drain,
    /// `set_refuse_new_connections` toggles.
    Refuse,
    /// `close()`.
    Close,
}

impl MeshOp {
    const RANGES: [(u8, u8); 13] = [
        (0, 24),    // Add
        (25, 34),   // Remove
        (35, 49),   // Remote
        (50, 59),   // Local
        (60, 109),  // Open
        (110, 119), // Closed
        (120, 164), // Message
        (165, 174), // State
        (175, 199), // Put
        (200, 224), // Pop
        (225, 244), // Drain
        (245, 250), // Refuse
        (251, 255), // Close
    ];

    /// Reads one op.
    pub fn decode(input: &mut Input<'_>) -> Self {
        let tag = input.byte();
        match Self::RANGES.iter().position(|&(lo, hi)| (lo..=hi).contains(&tag)).unwrap_or(0) {
            0 => Self::Add(input.byte()),
            1 => Self::Remove(input.byte()),
            2 => Self::Remote { peer: input.byte(), len: input.byte() },
            3 => Self::Local(input.byte()),
            4 => Self::Open { peer: input.byte(), channel: input.byte() },
            5 => Self::Closed { peer: input.byte(), channel: input.byte() },
            6 => Self::Message { peer: input.byte(), channel: input.byte(), payload: input.slice().to_vec() },
            7 => Self::State(input.byte()),
            8 => Self::Put { target: input.byte(), how: input.byte(), len: input.u16() },
            9 => Self::Pop,
            10 => Self::Drain,
            11 => Self::Refuse,
            _ => Self::Close,
        }
    }

    /// Writes this op so that [`decode`](Self::decode) reads it back.
    pub fn encode(&self, out: &mut Output) {
        let tag = |i: usize| Self::RANGES[i].0;
        match self {
            Self::Add(p) => out.byte(tag(0)).byte(*p),
            Self::Remove(p) => out.byte(tag(1)).byte(*p),
            Self::Remote { peer, len } => out.byte(tag(2)).byte(*peer).byte(*len),
            Self::Local(p) => out.byte(tag(3)).byte(*p),
            Self::Open { peer, channel } => out.byte(tag(4)).byte(*peer).byte(*channel),
            Self::Closed { peer, channel } => out.byte(tag(5)).byte(*peer).byte(*channel),
            Self::Message { peer, channel, payload } => {
                out.byte(tag(6)).byte(*peer).byte(*channel).slice(payload)
            }
            Self::State(p) => out.byte(tag(7)).byte(*p),
            Self::Put { target, how, len } => out.byte(tag(8)).byte(*target).byte(*how).u16(*len),
            Self::Pop => out.byte(tag(9)),
            Self::Drain => out.byte(tag(10)),
            Self::Refuse => out.byte(tag(11)),
            Self::Close => out.byte(tag(12)),
        };
    }
}

/// Encodes a mesh run: setup byte, then ops.
#[must_use]
pub fn encode_mesh_run(setup: u8, ops: &[MeshOp]) -> Vec<u8> {
    let mut out = Output::default();
    out.byte(setup);
    ops.iter().for_each(|op| op.encode(&mut out));
    out.bytes
}

fn peer_id(sel: u8) -> PeerId {
    PeerId::new(u32::from(sel % 6) + 1).unwrap_or(PeerId::SERVER)
}

/// What a mesh run reached, for the seed tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeshSummary {
    /// `PeerConnected` events.
    pub connected: usize,
    /// Packets read.
    pub packets: usize,
    /// `Send` commands.
    pub sends: usize,
}

struct MeshHarness {
    mesh: Mesh,
    limits: QueueLimits,
    lanes: usize,
    /// Peers announced and not yet announced gone.
    announced: BTreeSet<PeerId>,
    /// Peers the command stream created and has not closed, with whether they may be sent to.
    engine: BTreeMap<PeerId, ()>,
    /// A message a full reliable lane refused, to offer again.
    held: Option<(PeerId, u16, Vec<u8>)>,
    succeeded: bool,
    summary: MeshSummary,
}

/// The mesh target.
///
/// Setup byte: bits 0–2 the mode (`create_mesh(2)`, `create_server`, `create_client(2)`,
/// `initialize(2, true)`, `initialize(1, true)`, `create_mesh(5)`), bits 3–4 extra channels,
/// bits 5–7 lane limits (1–4 messages, 16 bytes to 1 MiB).
///
/// Checks after every op: no panic; a connected peer has all its channels open; every peer
/// has Godot's channel layout; queued messages stay within the lane limits; the available
/// count is the connected peers' queued messages; the command stream is consistent (a peer is
/// created once before it is sent to or closed, and sent to only while created); a
/// `PeerConnected` is followed by at most one `PeerDisconnected`, which names only announced
/// peers; the client modes report success at most once, and a closed mesh accepts no peer.
pub fn mesh_stateful(data: &[u8]) {
    run_mesh(data);
}

/// Runs one mesh input.
///
/// # Panics
/// When an invariant breaks.
pub fn run_mesh(data: &[u8]) -> MeshSummary {
    let mut input = Input::new(data);
    let setup = input.byte();
    let extra = [TransferMode::Unreliable, TransferMode::Reliable, TransferMode::UnreliableOrdered];
    let channels = &extra[..usize::from(setup >> 3 & 3)];
    let two = PeerId::new(2).unwrap_or(PeerId::SERVER);
    let mesh = match setup & 7 {
        0 => Mesh::create_mesh(two, channels).expect("id 2 is valid"),
        1 => Mesh::create_server(channels),
        2 => Mesh::create_client(two, channels).expect("id 2 is a client id"),
        3 => Mesh::initialize(two, true),
        4 => Mesh::initialize(PeerId::SERVER, true),
        _ => Mesh::create_mesh(PeerId::new(5).unwrap_or(two), channels).expect("id 5 is valid"),
    };
    let lanes = 3 + if matches!(setup & 7, 3 | 4) { 0 } else { channels.len() };
    let limits = match setup >> 5 {
        0 => QueueLimits { max_packets: 1, max_bytes: 1 << 20 },
        1 => QueueLimits { max_packets: 2, max_bytes: 16 },
        2 => QueueLimits { max_packets: 4, max_bytes: 64 },
        3 => QueueLimits { max_packets: 1024, max_bytes: 100 },
        _ => QueueLimits { max_packets: 1024, max_bytes: 1 << 20 },
    };
    let mut h = MeshHarness {
        mesh,
        limits,
        lanes,
        announced: BTreeSet::new(),
        engine: BTreeMap::new(),
        held: None,
        succeeded: false,
        summary: MeshSummary::default(),
    };
    if setup >> 5 < 4 {
        h.mesh.set_lane_limits(limits);
    }
    let mut ops = 0;
    while !input.is_empty() && ops < 4096 {
        let op = MeshOp::decode(&mut input);
        h.apply(&op);
        h.check();
        ops += 1;
    }
    h.mesh.close(Instant::ZERO);
    h.drain();
    // Godot 3's server compatibility stops reporting departures once the server is gone.
    if h.mesh.mode() != MeshMode::ServerCompatibility {
        assert!(h.announced.is_empty(), "{:?} never reported gone after close", h.announced);
    }
    assert!(h.engine.is_empty(), "close left engine peers {:?}", h.engine.keys());
    h.summary
}

impl MeshHarness {
    fn apply(&mut self, op: &MeshOp) {
        let now = Instant::ZERO;
        match op {
            MeshOp::Add(p) => {
                let peer = peer_id(*p);
                let had = self.mesh.has_peer(peer);
                match self.mesh.add_peer(peer, u16::from(p >> 3)) {
                    Ok(()) => {
                        assert!(!had);
                        assert!(self.mesh.connection_status() != ConnectionStatus::Disconnected);
                    }
                    Err(MeshError::AlreadyAdded(q)) => assert!(had && q == peer),
                    Err(_) => assert_eq!(self.mesh.has_peer(peer), had),
                }
            }
            MeshOp::Remove(p) => {
                let peer = peer_id(*p);
                let had = self.mesh.has_peer(peer);
                assert_eq!(self.mesh.remove_peer(peer).is_ok(), had);
                assert!(!self.mesh.has_peer(peer));
            }
            MeshOp::Remote { peer, len } => {
                let id = peer_id(*peer);
                let text = "v=0\r\n".repeat(usize::from(*len) / 5 + 1);
                let result = if peer & 16 == 0 {
                    let kind = if peer & 32 == 0 { SdpKind::Offer } else { SdpKind::Answer };
                    self.mesh.set_remote_description(id, kind, &text)
                } else {
                    self.mesh.add_ice_candidate(id, "0", u32::from(*len), &text)
                };
                assert_eq!(result.is_ok(), self.mesh.has_peer(id));
            }
            MeshOp::Local(p) => {
                let peer = peer_id(*p);
                let event = if p & 16 == 0 {
                    EngineEvent::LocalDescription { peer, kind: SdpKind::Offer, sdp: "v=0" }
                } else {
                    EngineEvent::LocalCandidate { peer, mid: "0", index: 0, candidate: "candidate:1" }
                };
                assert_eq!(self.mesh.handle_engine_event(now, event), Ok(()));
            }
            MeshOp::Open { peer, channel } => {
                let event =
                    EngineEvent::ChannelOpen { peer: peer_id(*peer), channel: u16::from(channel % 8) };
                assert_eq!(self.mesh.handle_engine_event(now, event), Ok(()));
            }
            MeshOp::Closed { peer, channel } => {
                let event =
                    EngineEvent::ChannelClosed { peer: peer_id(*peer), channel: u16::from(channel % 8) };
                assert_eq!(self.mesh.handle_engine_event(now, event), Ok(()));
            }
            MeshOp::Message { peer, channel, payload } => {
                let peer = peer_id(*peer);
                let channel = u16::from(channel % 8);
                if let Some((p, c, data)) = self.held.take() {
                    // The adapter offers the held message first, keeping the stream's order.
                    if self.offer(p, c, &data).is_err() {
                        self.held = Some((p, c, data));
                        return;
                    }
                }
                if self.offer(peer, channel, payload).is_err() {
                    self.held = Some((peer, channel, payload.clone()));
                }
            }
            MeshOp::State(p) => {
                let states = [
                    ConnectionState::Connecting,
                    ConnectionState::Connected,
                    ConnectionState::Disconnected,
                    ConnectionState::Failed,
                    ConnectionState::Closed,
                ];
                let state = states[usize::from(p >> 3) % states.len()];
                let event = EngineEvent::State { peer: peer_id(*p), state };
                assert_eq!(self.mesh.handle_engine_event(now, event), Ok(()));
            }
            MeshOp::Put { target, how, len } => {
                let target = match target & 3 {
                    0 => Target::Broadcast,
                    1 => Target::Server,
                    2 => Target::Peer(peer_id(target >> 2)),
                    _ => Target::AllExcept(peer_id(target >> 2)),
                };
                let mode = TransferMode::from_godot(how & 3).unwrap_or(TransferMode::Reliable);
                self.mesh.set_target_peer(target);
                self.mesh.set_transfer_mode(mode);
                self.mesh.set_transfer_channel(how >> 2 & 7);
                let result = self.mesh.put_packet(&vec![*how; usize::from(*len)]);
                if self.mesh.connection_status() == ConnectionStatus::Disconnected {
                    assert_eq!(result, Err(PutError::NotConnected));
                }
            }
            MeshOp::Pop => {
                let count = self.mesh.available_packet_count();
                match self.mesh.peek_packet() {
                    Some(packet) => {
                        assert!(count > 0);
                        let from = packet.info.from;
                        assert!(self.mesh.peer(from).is_some_and(|p| p.connected), "packet from {from}");
                        assert!(self.mesh.pop_packet());
                        assert_eq!(self.mesh.available_packet_count(), count - 1);
                        self.summary.packets += 1;
                    }
                    None => {
                        assert_eq!(count, 0, "packets counted, none to peek");
                        assert!(!self.mesh.pop_packet());
                    }
                }
            }
            MeshOp::Drain => self.drain(),
            MeshOp::Refuse => {
                let refuse = !self.mesh.is_refusing_new_connections();
                self.mesh.set_refuse_new_connections(refuse);
            }
            MeshOp::Close => {
                self.mesh.close(now);
                assert_eq!(self.mesh.connection_status(), ConnectionStatus::Disconnected);
                assert_eq!(self.mesh.peers().count(), 0);
            }
        }
    }

    fn offer(&mut self, peer: PeerId, channel: u16, data: &[u8]) -> Result<(), ()> {
        let before = self.mesh.peer(peer).map(|p| p.queued);
        match self.mesh.handle_engine_event(Instant::ZERO, EngineEvent::Message { peer, channel, data }) {
            Ok(()) => Ok(()),
            Err(full) => {
                assert_eq!((full.peer, full.channel), (peer, channel));
                let info = self.mesh.peer(peer).expect("a full lane belongs to a peer");
                assert_eq!(Some(info.queued), before, "a refused message changed the queue");
                let (spec, _) = &info.channels[usize::from(channel) - 1];
                assert_eq!(spec.reliability, Reliability::Reliable, "an unreliable lane refused");
                Err(())
            }
        }
    }

    fn drain(&mut self) {
        while let Some(event) = self.mesh.poll_event() {
            match event {
                Event::PeerConnected(p) => {
                    assert!(self.announced.insert(p), "{p} connected twice");
                    self.summary.connected += 1;
                }
                Event::PeerDisconnected { peer, .. } => {
                    assert!(self.announced.remove(&peer), "{peer} disconnected without being connected");
                }
                Event::ConnectionSucceeded => {
                    assert!(!self.succeeded, "ConnectionSucceeded twice");
                    assert!(matches!(self.mesh.mode(), MeshMode::Client | MeshMode::ServerCompatibility));
                    self.succeeded = true;
                }
                Event::ServerDisconnected(_) => assert!(self.succeeded),
                Event::PacketDropped { .. } => {}
                other => panic!("a mesh reported {other:?}"),
            }
        }
        while let Some(command) = self.mesh.poll_command() {
            match command {
                Command::CreatePeer { peer, channels, .. } => {
                    assert!(self.engine.insert(peer, ()).is_none(), "{peer} created twice");
                    assert_eq!(channels.len(), self.lanes);
                }
                Command::ClosePeer { peer } => {
                    assert!(self.engine.remove(&peer).is_some(), "{peer} closed but not created");
                }
                Command::Send { peer, channel, .. } => {
                    assert!(
                        self.engine.contains_key(&peer),
                        "send to {peer}, which the engine does not have"
                    );
                    assert!((1..=self.lanes as u16).contains(&channel), "send on stream {channel}");
                    self.summary.sends += 1;
                }
                Command::RemoteDescription { peer, .. } | Command::RemoteCandidate { peer, .. } => {
                    assert!(
                        self.engine.contains_key(&peer),
                        "signal for {peer}, which the engine does not have"
                    );
                }
                other => panic!("unknown command {other:?}"),
            }
        }
        while self.mesh.poll_signal().is_some() {}
    }

    fn check(&mut self) {
        let mut available = 0;
        for peer in self.mesh.peers().collect::<Vec<_>>() {
            let info = self.mesh.peer(peer).expect("listed peers have info");
            assert_eq!(info.channels.len(), self.lanes, "{peer} has {} channels", info.channels.len());
            for (i, (spec, _)) in info.channels.iter().enumerate() {
                assert_eq!(usize::from(spec.id), i + 1, "Godot's stream ids are 1, 2, 3, …");
            }
            if info.connected {
                assert!(
                    info.channels.iter().all(|(_, open)| *open),
                    "{peer} connected with a channel closed"
                );
                available += info.queued;
            }
            assert!(info.queued <= self.lanes * self.limits.max_packets, "{peer} queues {}", info.queued);
        }
        assert_eq!(self.mesh.available_packet_count(), available);
        if self.mesh.connection_status() == ConnectionStatus::Disconnected {
            assert!(self.mesh.add_peer(PeerId::new(6).unwrap_or(PeerId::SERVER), 1).is_err());
        }
    }
}
