//! The peer table of Godot's `WebRTCMultiplayerPeer` (4.x) and `WebRTCMultiplayer` (3.x).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::channel::{self, ChannelSpec};
use super::engine::{Command, ConnectionState, EngineEvent, SdpKind, Signal};
use crate::peer::{
    ConnectionStatus, DisconnectReason, DropReason, Event, MultiplayerPeer, Packet, PacketInfo, PeerId,
    PutError, Target, TransferMode, UnknownPeer,
};
use crate::queue::QueueLimits;
use crate::time::Instant;

/// How the mesh was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeshMode {
    /// 4.x `create_mesh(id)`: connected at once, any peer may be added, no relay.
    Mesh,
    /// 4.x `create_server()`: id 1; peer 1 cannot be added; relay supported.
    Server,
    /// 4.x `create_client(id)`: only peer 1 may be added; connecting until it connects.
    Client,
    /// 3.x `initialize(id, server_compatibility = true)` with an id other than 1: peers are
    /// announced only once peer 1 (the server) connects.
    ServerCompatibility,
}

/// A mesh cannot be created or a peer added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeshError {
    /// The id is not allowed in this mode (client id 1, peer 1 in server mode, …).
    InvalidId,
    /// The peer is already in the table.
    AlreadyAdded(PeerId),
    /// `refuse_new_connections` is set (Godot: `ERR_UNAUTHORIZED`).
    Refused,
    /// The mesh was closed.
    Closed,
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidId => f.write_str("peer id not allowed in this mode"),
            Self::AlreadyAdded(p) => write!(f, "peer {p} already added"),
            Self::Refused => f.write_str("refusing new connections"),
            Self::Closed => f.write_str("mesh closed"),
        }
    }
}

impl core::error::Error for MeshError {}

/// A reliable lane is full: keep the message and offer it again after the application reads
/// (stop reading that peer's transport meanwhile, so the sender feels back-pressure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneFull {
    /// The peer.
    pub peer: PeerId,
    /// The channel's stream id.
    pub channel: u16,
}

struct Lane {
    spec: ChannelSpec,
    open: bool,
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
}

struct MeshPeer {
    lanes: Vec<Lane>,
    connected: bool,
}

impl MeshPeer {
    fn lane(&self, stream: u16) -> Option<usize> {
        self.lanes.iter().position(|l| l.spec.id == stream)
    }
}

/// What Godot's `get_peer(id)` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshPeerInfo {
    /// All channels open.
    pub connected: bool,
    /// The channels, in Godot's index order, with whether each is open.
    pub channels: Vec<(ChannelSpec, bool)>,
    /// Messages waiting to be read.
    pub queued: usize,
}

/// Godot's WebRTC multiplayer peer without the WebRTC: the peer table, channel layout, targets
/// and bounded receive queues, driven by engine events and producing engine commands.
pub struct Mesh {
    id: PeerId,
    mode: MeshMode,
    status: ConnectionStatus,
    channels_config: Vec<TransferMode>,
    lane_limits: QueueLimits,
    peers: BTreeMap<PeerId, MeshPeer>,
    commands: VecDeque<Command>,
    signals: VecDeque<Signal>,
    events: VecDeque<Event>,
    last_served: Option<PeerId>,
    target: Target,
    transfer_mode: TransferMode,
    channel: u8,
    refuse: bool,
    dropped: u64,
}

impl Mesh {
    /// 4.x `create_mesh(id, channels_config)`.
    ///
    /// # Errors
    /// [`MeshError::InvalidId`] is impossible for a valid [`PeerId`]; kept for symmetry.
    pub fn create_mesh(id: PeerId, channels_config: &[TransferMode]) -> Result<Self, MeshError> {
        Ok(Self::new(id, MeshMode::Mesh, channels_config))
    }

    /// 4.x `create_server(channels_config)`: id 1.
    #[must_use]
    pub fn create_server(channels_config: &[TransferMode]) -> Self {
        Self::new(PeerId::SERVER, MeshMode::Server, channels_config)
    }

    /// 4.x `create_client(id, channels_config)`.
    ///
    /// # Errors
    /// [`MeshError::InvalidId`] for id 1.
    pub fn create_client(id: PeerId, channels_config: &[TransferMode]) -> Result<Self, MeshError> {
        if id.is_server() {
            return Err(MeshError::InvalidId);
        }
        Ok(Self::new(id, MeshMode::Client, channels_config))
    }

    /// 3.x `initialize(id, server_compatibility)`: server compatibility applies to ids other
    /// than 1; otherwise this is a plain mesh.
    #[must_use]
    pub fn initialize(id: PeerId, server_compatibility: bool) -> Self {
        let mode = if server_compatibility && !id.is_server() {
            MeshMode::ServerCompatibility
        } else {
            MeshMode::Mesh
        };
        Self::new(id, mode, &[])
    }

    fn new(id: PeerId, mode: MeshMode, channels_config: &[TransferMode]) -> Self {
        let status = match mode {
            MeshMode::Mesh | MeshMode::Server => ConnectionStatus::Connected,
            MeshMode::Client | MeshMode::ServerCompatibility => ConnectionStatus::Connecting,
        };
        Self {
            id,
            mode,
            status,
            channels_config: channels_config.to_vec(),
            lane_limits: QueueLimits { max_bytes: 1 << 20, max_packets: 1024 },
            peers: BTreeMap::new(),
            commands: VecDeque::new(),
            signals: VecDeque::new(),
            events: VecDeque::new(),
            last_served: None,
            target: Target::Broadcast,
            transfer_mode: TransferMode::Reliable,
            channel: 0,
            refuse: false,
            dropped: 0,
        }
    }

    /// Bounds of each channel's receive queue (default 1024 messages, 1 MiB).
    pub fn set_lane_limits(&mut self, limits: QueueLimits) {
        self.lane_limits = limits;
    }

    /// The mode.
    #[must_use]
    pub fn mode(&self) -> MeshMode {
        self.mode
    }

    /// Messages dropped from full unreliable lanes so far (each also reported as an event).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// `add_peer(peer, id, unreliable_lifetime)`: creates the peer connection with Godot's
    /// channels; the engine is told through [`poll_command`](Self::poll_command). Of each pair,
    /// the peer with the higher id sends the offer.
    ///
    /// # Errors
    /// [`MeshError`] for ids the mode does not allow, duplicates, refusal, or a closed mesh.
    pub fn add_peer(&mut self, peer: PeerId, unreliable_lifetime: u16) -> Result<(), MeshError> {
        if self.status == ConnectionStatus::Disconnected {
            return Err(MeshError::Closed);
        }
        if self.refuse {
            return Err(MeshError::Refused);
        }
        let allowed = match self.mode {
            MeshMode::Server => !peer.is_server(),
            MeshMode::Client => peer.is_server(),
            MeshMode::Mesh | MeshMode::ServerCompatibility => peer != self.id,
        };
        if !allowed {
            return Err(MeshError::InvalidId);
        }
        if self.peers.contains_key(&peer) {
            return Err(MeshError::AlreadyAdded(peer));
        }
        let channels = channel::godot_channels(unreliable_lifetime, &self.channels_config);
        let lanes = channels
            .iter()
            .map(|spec| Lane { spec: spec.clone(), open: false, queue: VecDeque::new(), bytes: 0 })
            .collect();
        self.peers.insert(peer, MeshPeer { lanes, connected: false });
        self.commands.push_back(Command::CreatePeer { peer, offerer: self.id > peer, channels });
        Ok(())
    }

    /// `has_peer(id)`.
    #[must_use]
    pub fn has_peer(&self, peer: PeerId) -> bool {
        self.peers.contains_key(&peer)
    }

    /// `get_peer(id)`.
    #[must_use]
    pub fn peer(&self, peer: PeerId) -> Option<MeshPeerInfo> {
        self.peers.get(&peer).map(|p| MeshPeerInfo {
            connected: p.connected,
            channels: p.lanes.iter().map(|l| (l.spec.clone(), l.open)).collect(),
            queued: p.lanes.iter().map(|l| l.queue.len()).sum(),
        })
    }

    /// `get_peers()`: every peer id, ascending.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// `remove_peer(id)`: closes the connection; `peer_disconnected` if it had connected.
    ///
    /// # Errors
    /// [`UnknownPeer`].
    pub fn remove_peer(&mut self, peer: PeerId) -> Result<(), UnknownPeer> {
        if !self.peers.contains_key(&peer) {
            return Err(UnknownPeer(peer));
        }
        self.commands.push_back(Command::ClosePeer { peer });
        self.drop_peer(peer, DisconnectReason::Kicked);
        Ok(())
    }

    /// A description received through signalling for `peer`.
    ///
    /// # Errors
    /// [`UnknownPeer`] if `peer` was not added.
    pub fn set_remote_description(
        &mut self,
        peer: PeerId,
        kind: SdpKind,
        sdp: &str,
    ) -> Result<(), UnknownPeer> {
        if !self.peers.contains_key(&peer) {
            return Err(UnknownPeer(peer));
        }
        self.commands.push_back(Command::RemoteDescription { peer, kind, sdp: sdp.to_string() });
        Ok(())
    }

    /// A candidate received through signalling for `peer`.
    ///
    /// # Errors
    /// [`UnknownPeer`] if `peer` was not added.
    pub fn add_ice_candidate(
        &mut self,
        peer: PeerId,
        mid: &str,
        index: u32,
        candidate: &str,
    ) -> Result<(), UnknownPeer> {
        if !self.peers.contains_key(&peer) {
            return Err(UnknownPeer(peer));
        }
        let (mid, candidate) = (mid.to_string(), candidate.to_string());
        self.commands.push_back(Command::RemoteCandidate { peer, mid, index, candidate });
        Ok(())
    }

    /// The next command for the engine.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next signalling message for the application to carry.
    #[must_use]
    pub fn poll_signal(&mut self) -> Option<Signal> {
        self.signals.pop_front()
    }

    /// What the engine reports.
    ///
    /// # Errors
    /// [`LaneFull`] when a reliable lane has no room: keep the message, offer it again later.
    pub fn handle_engine_event(&mut self, _now: Instant, event: EngineEvent<'_>) -> Result<(), LaneFull> {
        match event {
            EngineEvent::LocalDescription { peer, kind, sdp } if self.peers.contains_key(&peer) => {
                self.signals.push_back(Signal::Description { peer, kind, sdp: String::from(sdp) });
            }
            EngineEvent::LocalCandidate { peer, mid, index, candidate } if self.peers.contains_key(&peer) => {
                let (mid, candidate) = (String::from(mid), String::from(candidate));
                self.signals.push_back(Signal::Candidate { peer, mid, index, candidate });
            }
            EngineEvent::ChannelOpen { peer, channel } => self.channel_opened(peer, channel),
            // Any channel closing ends the peer, as in Godot; so does a failed connection.
            EngineEvent::ChannelClosed { peer, channel }
                if self.peers.get(&peer).is_some_and(|p| p.lane(channel).is_some()) =>
            {
                self.commands.push_back(Command::ClosePeer { peer });
                self.drop_peer(peer, DisconnectReason::ConnectionLost);
            }
            EngineEvent::State {
                peer,
                state: ConnectionState::Disconnected | ConnectionState::Failed | ConnectionState::Closed,
            } if self.peers.contains_key(&peer) => {
                self.commands.push_back(Command::ClosePeer { peer });
                self.drop_peer(peer, DisconnectReason::ConnectionLost);
            }
            EngineEvent::Message { peer, channel, data } => return self.receive(peer, channel, data),
            _ => {}
        }
        Ok(())
    }

    fn channel_opened(&mut self, peer: PeerId, channel: u16) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        let Some(lane) = p.lane(channel) else { return };
        p.lanes[lane].open = true;
        if p.connected || !p.lanes.iter().all(|l| l.open) {
            return;
        }
        p.connected = true;
        match self.mode {
            MeshMode::Mesh | MeshMode::Server => self.events.push_back(Event::PeerConnected(peer)),
            MeshMode::Client => {
                self.status = ConnectionStatus::Connected;
                self.events.push_back(Event::PeerConnected(peer));
                self.events.push_back(Event::ConnectionSucceeded);
            }
            MeshMode::ServerCompatibility if peer.is_server() => {
                self.status = ConnectionStatus::Connected;
                self.events.push_back(Event::PeerConnected(peer));
                self.events.push_back(Event::ConnectionSucceeded);
                // Peers that connected before the server are announced now.
                let earlier: Vec<PeerId> = self
                    .peers
                    .iter()
                    .filter(|(id, p)| p.connected && !id.is_server())
                    .map(|(id, _)| *id)
                    .collect();
                self.events.extend(earlier.into_iter().map(Event::PeerConnected));
            }
            MeshMode::ServerCompatibility => {
                if self.status == ConnectionStatus::Connected {
                    self.events.push_back(Event::PeerConnected(peer));
                }
            }
        }
    }

    fn drop_peer(&mut self, peer: PeerId, reason: DisconnectReason) {
        let Some(p) = self.peers.remove(&peer) else { return };
        let announced = p.connected
            && !(self.mode == MeshMode::ServerCompatibility && self.status != ConnectionStatus::Connected);
        if announced {
            self.events.push_back(Event::PeerDisconnected { peer, reason: reason.clone() });
        }
        let lost_server =
            peer.is_server() && matches!(self.mode, MeshMode::Client | MeshMode::ServerCompatibility);
        if lost_server && self.status == ConnectionStatus::Connected {
            self.status = ConnectionStatus::Disconnected;
            if self.mode == MeshMode::ServerCompatibility {
                self.events.push_back(Event::ServerDisconnected(crate::ws::CloseInfo {
                    code: crate::ws::CloseCode::ABNORMAL,
                    reason: crate::ws::CloseReason::default(),
                    initiator: crate::ws::Initiator::Remote,
                    error: None,
                    clean: false,
                }));
            }
        }
    }

    fn receive(&mut self, peer: PeerId, channel: u16, data: &[u8]) -> Result<(), LaneFull> {
        let limits = self.lane_limits;
        let Some(p) = self.peers.get_mut(&peer) else { return Ok(()) };
        let Some(index) = p.lane(channel) else {
            self.events
                .push_back(Event::PacketDropped { from: Some(peer), reason: DropReason::UnknownMessage });
            return Ok(());
        };
        let lane = &mut p.lanes[index];
        let fits = |l: &Lane| l.queue.len() < limits.max_packets && l.bytes + data.len() <= limits.max_bytes;
        if !fits(lane) {
            if lane.spec.transfer_mode() == TransferMode::Reliable {
                return Err(LaneFull { peer, channel });
            }
            // Unreliable means unreliable: the oldest message gives way, and says so.
            while !fits(lane) {
                let Some(old) = lane.queue.pop_front() else { break };
                lane.bytes -= old.len();
                self.dropped += 1;
                self.events
                    .push_back(Event::PacketDropped { from: Some(peer), reason: DropReason::QueueOverflow });
            }
            if !fits(lane) {
                // Larger than a whole lane: it can never be queued.
                self.dropped += 1;
                self.events
                    .push_back(Event::PacketDropped { from: Some(peer), reason: DropReason::QueueOverflow });
                return Ok(());
            }
        }
        lane.bytes += data.len();
        lane.queue.push_back(data.to_vec());
        Ok(())
    }

    /// The peer and lane of the next packet, round-robin over connected peers starting after
    /// the last one served; within a peer, lanes in index order (reliable first).
    fn next_lane(&self) -> Option<(PeerId, usize)> {
        let after = self.last_served;
        let ready = |(id, p): (&PeerId, &MeshPeer)| {
            p.connected
                .then(|| p.lanes.iter().position(|l| !l.queue.is_empty()).map(|lane| (*id, lane)))
                .flatten()
        };
        let later = self.peers.iter().filter(|(id, _)| after.is_none_or(|a| **id > a)).find_map(ready);
        later.or_else(|| self.peers.iter().find_map(ready))
    }

    /// The connected peers the next [`put_packet`](MultiplayerPeer::put_packet) goes to, for
    /// an engine that checks they all have room first (a broadcast is all or nothing).
    pub fn packet_targets(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers
            .iter()
            .filter(|(id, p)| p.connected && self.target.includes(**id, self.id))
            .map(|(id, _)| *id)
    }

    fn send_to(&mut self, peer: PeerId, data: &[u8]) -> Result<(), PutError> {
        let p = self.peers.get(&peer).ok_or(PutError::UnknownPeer(peer))?;
        if !p.connected {
            return Err(PutError::NotConnected);
        }
        let lane = channel::lane_for(self.transfer_mode, self.channel, p.lanes.len())
            .ok_or(PutError::UnknownPeer(peer))?;
        self.commands.push_back(Command::Send { peer, channel: p.lanes[lane].spec.id, data: data.to_vec() });
        Ok(())
    }
}

impl MultiplayerPeer for Mesh {
    fn unique_id(&self) -> Option<PeerId> {
        Some(self.id)
    }

    fn connection_status(&self) -> ConnectionStatus {
        self.status
    }

    fn is_server_relay_supported(&self) -> bool {
        matches!(self.mode, MeshMode::Server | MeshMode::Client)
    }

    crate::peer::kept_send_settings!(target, transfer_mode, channel);

    fn set_refuse_new_connections(&mut self, refuse: bool) {
        self.refuse = refuse;
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.refuse
    }

    fn put_packet(&mut self, data: &[u8]) -> Result<(), PutError> {
        if self.status == ConnectionStatus::Disconnected {
            return Err(PutError::NotConnected);
        }
        if self.transfer_channel() > 0
            && channel::lane_for(self.transfer_mode, self.channel, 3 + self.channels_config.len()).is_none()
        {
            return Err(PutError::UnknownPeer(self.id));
        }
        match self.target {
            Target::Server => self.send_to(PeerId::SERVER, data),
            Target::Peer(p) => self.send_to(p, data),
            _ => {
                let targets: Vec<PeerId> = self.packet_targets().collect();
                for peer in targets {
                    self.send_to(peer, data)?;
                }
                Ok(())
            }
        }
    }

    fn max_packet_size(&self) -> usize {
        // Godot's value; larger messages are fragmented by SCTP up to the remote's
        // a=max-message-size, which the engine enforces.
        1200
    }

    fn available_packet_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.connected)
            .map(|p| p.lanes.iter().map(|l| l.queue.len()).sum::<usize>())
            .sum()
    }

    fn peek_packet(&self) -> Option<Packet<'_>> {
        let (peer, lane) = self.next_lane()?;
        let l = &self.peers.get(&peer)?.lanes[lane];
        let info =
            PacketInfo { from: peer, mode: l.spec.transfer_mode(), channel: channel::channel_of_lane(lane) };
        Some(Packet { info, data: l.queue.front()? })
    }

    fn pop_packet(&mut self) -> bool {
        let Some((peer, lane)) = self.next_lane() else { return false };
        let Some(l) = self.peers.get_mut(&peer).map(|p| &mut p.lanes[lane]) else { return false };
        if let Some(m) = l.queue.pop_front() {
            l.bytes -= m.len();
        }
        self.last_served = Some(peer);
        true
    }

    fn disconnect_peer(&mut self, _now: Instant, peer: PeerId, _force: bool) -> Result<(), UnknownPeer> {
        self.remove_peer(peer)
    }

    fn close(&mut self, _now: Instant) {
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            let _ = self.remove_peer(peer);
        }
        self.status = ConnectionStatus::Disconnected;
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
