//! [`WebRtcMultiplayerPeer`]: Godot's `WebRTCMultiplayerPeer` over std sockets, standalone
//! (the application carries the signalling) or driven by a lobby server.

use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;
use std::time::Instant as StdInstant;

use multipeer::mesh::{Mesh, MeshError, MeshMode, MeshPeerInfo, SdpKind, Signal};
use multipeer::peer::{
    ConnectionStatus, Event, MultiplayerPeer, PacketInfo, PeerId, PutError, Target, TransferMode, UnknownPeer,
};
use multipeer::signaling::{LobbyEvent, MeshSession};
use multipeer::ws;
use multipeer::ws::{CloseCode, CloseInfo, SendError};

use super::engine::Engine;
use super::{EngineStats, WebRtcConfig};
use crate::{ClientOptions, Error, nonblocking};

/// Why a [`WebRtcMultiplayerPeer`] operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebRtcError {
    /// The mesh refused (an id the mode does not allow, a duplicate peer, refusal, closed).
    Mesh(MeshError),
    /// No mesh yet: call `create_*`, or wait for the lobby to give us an id.
    Unconfigured,
    /// The lobby connection failed or closed.
    Lobby(Error),
    /// The lobby server sent something that is not its protocol.
    InvalidLobbyMessage,
}

impl fmt::Display for WebRtcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mesh(e) => write!(f, "mesh: {e}"),
            Self::Unconfigured => f.write_str("no mesh yet (create one, or wait for the lobby's id)"),
            Self::Lobby(e) => write!(f, "lobby connection: {e}"),
            Self::InvalidLobbyMessage => f.write_str("invalid message from the lobby server"),
        }
    }
}

impl WebRtcError {
    /// The `Error` Godot's `WebRTCMultiplayerPeer` returns in this case (a lobby failure as
    /// its WebSocket's).
    #[must_use]
    pub fn godot_error(&self) -> multipeer::GodotError {
        match self {
            Self::Mesh(e) => e.godot_error(),
            Self::Unconfigured => multipeer::GodotError::Unconfigured,
            Self::Lobby(e) => e.godot_error(),
            Self::InvalidLobbyMessage => multipeer::GodotError::InvalidData,
        }
    }
}

impl core::error::Error for WebRtcError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Lobby(e) => Some(e),
            Self::Mesh(e) => Some(e),
            _ => None,
        }
    }
}

impl From<MeshError> for WebRtcError {
    fn from(e: MeshError) -> Self {
        Self::Mesh(e)
    }
}

struct Lobby {
    session: MeshSession,
    ws: nonblocking::WebSocket,
    closed: Option<CloseInfo>,
    /// A signalling message the WebSocket's outbound queue had no room for; it goes first
    /// once there is room, so no offer, answer or candidate is lost to a slow lobby server.
    unsent: Option<String>,
}

/// Godot's `WebRTCMultiplayerPeer` (4.x; 3.x `WebRTCMultiplayer` through
/// [`initialize`](Self::initialize)), with the WebRTC stack built in: each peer added gets a
/// `str0m::Rtc`, a UDP socket per local address, and Godot's three negotiated channels (plus
/// `channels_config`).
///
/// Two ways to use it:
///
/// * Standalone, as in Godot: `create_mesh`/`create_server`/`create_client`, then
///   [`add_peer`](Self::add_peer) for each remote id; carry what [`poll_signal`](Self::poll_signal)
///   returns to that peer by any means, and give what it sends back to
///   [`set_remote_description`](Self::set_remote_description) and
///   [`add_ice_candidate`](Self::add_ice_candidate).
/// * Through a lobby server speaking Godot's `webrtc_signaling` demo protocol:
///   [`connect_lobby`](Self::connect_lobby) joins (or creates) a lobby; the id, the mode and
///   the peers come from the lobby and all signalling is carried for you.
///
/// Call [`poll`](Self::poll) often (every frame): it runs the sockets, str0m's timers and the
/// lobby connection. Unlike Godot, failures are visible: `put_packet` says which limit was
/// hit (`PutError::TooLarge` beyond the remote's `a=max-message-size`, `PutError::Full` when
/// the send backlog is full), and a full reliable receive lane holds that peer's data back
/// (its socket is not read) until the application reads.
///
/// ```no_run
/// use multipeer::peer::TransferMode;
/// use multipeer_std::webrtc::WebRtcMultiplayerPeer;
///
/// let mut peer = WebRtcMultiplayerPeer::default();
/// peer.connect_lobby("ws://127.0.0.1:9080", "", true)?; // "" creates a lobby
/// loop {
///     peer.poll()?;
///     while let Some(event) = peer.poll_event() {
///         println!("{event:?}");
///     }
///     while let Some((data, info)) = peer.get_packet() {
///         println!("{} bytes from {}", data.len(), info.from);
///     }
///     if peer.unique_id().is_some() {
///         peer.set_transfer_mode(TransferMode::Unreliable);
///         let _ = peer.put_packet(b"position");
///     }
///     peer.wait(std::time::Duration::from_millis(16));
/// }
/// # Ok::<(), multipeer_std::webrtc::WebRtcError>(())
/// ```
pub struct WebRtcMultiplayerPeer {
    engine: Engine,
    mesh: Option<Mesh>,
    lobby: Option<Lobby>,
    channels_config: Vec<TransferMode>,
    unreliable_lifetime: u16,
    /// Target, mode, channel and refusal set before the mesh exists (lobby mode).
    target: Target,
    mode: TransferMode,
    channel: u8,
    refuse: bool,
}

impl Default for WebRtcMultiplayerPeer {
    fn default() -> Self {
        Self::new(WebRtcConfig::default())
    }
}

impl fmt::Debug for WebRtcMultiplayerPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebRtcMultiplayerPeer")
            .field("id", &self.unique_id())
            .field("status", &self.get_connection_status())
            .field("lobby", &self.lobby_name())
            .finish_non_exhaustive()
    }
}

/// Joins `lobby` ("" creates one) on the lobby server at `url` as a mesh (`mesh = true`) or as
/// server/client, with the default [`WebRtcConfig`] and Godot's default channels.
///
/// # Errors
/// [`WebRtcError::Lobby`] when the WebSocket connection cannot be made.
pub fn connect_lobby(url: &str, lobby: &str, mesh: bool) -> Result<WebRtcMultiplayerPeer, WebRtcError> {
    let mut peer = WebRtcMultiplayerPeer::default();
    peer.connect_lobby(url, lobby, mesh)?;
    Ok(peer)
}

impl WebRtcMultiplayerPeer {
    /// A peer with no mesh yet, using `config` for every peer connection.
    #[must_use]
    pub fn new(config: WebRtcConfig) -> Self {
        Self {
            engine: Engine::new(config),
            mesh: None,
            lobby: None,
            channels_config: Vec::new(),
            unreliable_lifetime: multipeer::mesh::DEFAULT_UNRELIABLE_LIFETIME,
            target: Target::Broadcast,
            mode: TransferMode::Reliable,
            channel: 0,
            refuse: false,
        }
    }

    /// The engine settings.
    #[must_use]
    pub fn config(&self) -> &WebRtcConfig {
        self.engine.config()
    }

    fn install(&mut self, mut mesh: Mesh) {
        self.engine.close_all();
        mesh.set_target_peer(self.target);
        mesh.set_transfer_mode(self.mode);
        mesh.set_transfer_channel(self.channel);
        mesh.set_refuse_new_connections(self.refuse);
        self.mesh = Some(mesh);
        self.lobby = None;
    }

    /// `create_mesh(peer_id, channels_config)`: connected at once; any peer may be added.
    ///
    /// # Errors
    /// [`WebRtcError::Mesh`].
    pub fn create_mesh(&mut self, id: PeerId, channels_config: &[TransferMode]) -> Result<(), WebRtcError> {
        self.install(Mesh::create_mesh(id, channels_config)?);
        Ok(())
    }

    /// `create_server(channels_config)`: id 1; clients are added with `add_peer`.
    pub fn create_server(&mut self, channels_config: &[TransferMode]) {
        self.install(Mesh::create_server(channels_config));
    }

    /// `create_client(peer_id, channels_config)`: only peer 1 (the server) may be added;
    /// connecting until it connects.
    ///
    /// # Errors
    /// [`WebRtcError::Mesh`] for id 1.
    pub fn create_client(&mut self, id: PeerId, channels_config: &[TransferMode]) -> Result<(), WebRtcError> {
        self.install(Mesh::create_client(id, channels_config)?);
        Ok(())
    }

    /// 3.x `WebRTCMultiplayer.initialize(peer_id, server_compatibility)`.
    pub fn initialize(&mut self, id: PeerId, server_compatibility: bool) {
        self.install(Mesh::initialize(id, server_compatibility));
    }

    /// Custom channels and the lifetime of the unreliable lanes used by
    /// [`connect_lobby`](Self::connect_lobby) (call before it).
    pub fn set_lobby_channels(&mut self, channels_config: &[TransferMode], unreliable_lifetime: u16) {
        self.channels_config = channels_config.to_vec();
        self.unreliable_lifetime = unreliable_lifetime;
    }

    /// Connects to the lobby server at `url` (`ws://`) and joins `lobby` ("" creates one,
    /// whose name [`lobby_name`](Self::lobby_name) then reports) as a mesh or as
    /// server/client. The mesh is created when the lobby assigns our id; peers the lobby
    /// announces are added, and their offers, answers and candidates are carried both ways.
    ///
    /// # Errors
    /// [`WebRtcError::Lobby`] when the WebSocket connection cannot be made.
    pub fn connect_lobby(&mut self, url: &str, lobby: &str, mesh: bool) -> Result<(), WebRtcError> {
        let ws = nonblocking::WebSocket::connect(url, &ClientOptions::new()).map_err(WebRtcError::Lobby)?;
        self.engine.close_all();
        self.mesh = None;
        let session = MeshSession::new(lobby, mesh, &self.channels_config, self.unreliable_lifetime);
        self.lobby = Some(Lobby { session, ws, closed: None, unsent: None });
        Ok(())
    }

    /// The lobby joined, once the server confirmed it.
    #[must_use]
    pub fn lobby_name(&self) -> Option<&str> {
        self.lobby.as_ref().and_then(|l| l.session.lobby())
    }

    /// Asks the lobby server to seal the lobby (host only): nobody else may join, and the
    /// server closes the lobby connections after a while (the mesh stays).
    pub fn seal_lobby(&mut self) {
        if let Some(l) = self.lobby.as_mut() {
            l.session.seal();
        }
    }

    /// Whether the host sealed the lobby.
    #[must_use]
    pub fn is_lobby_sealed(&self) -> bool {
        self.lobby.as_ref().is_some_and(|l| l.session.is_sealed())
    }

    /// How the lobby connection ended, once it has (the mesh's connections stay up).
    #[must_use]
    pub fn lobby_close_info(&self) -> Option<&CloseInfo> {
        self.lobby.as_ref().and_then(|l| l.closed.as_ref())
    }

    /// The next lobby event (joined, id, peers joining and leaving...), for display: the peer
    /// already acted on it.
    pub fn poll_lobby_event(&mut self) -> Option<LobbyEvent> {
        self.lobby.as_mut().and_then(|l| l.session.poll_lobby_event())
    }

    /// Leaves the lobby (closes its WebSocket); the mesh stays.
    pub fn leave_lobby(&mut self) {
        if let Some(l) = self.lobby.as_mut() {
            let _ = l.ws.close(CloseCode::NORMAL, "");
            let _ = l.ws.poll();
        }
    }

    /// The mesh, once created (the full [`MultiplayerPeer`] API is there).
    #[must_use]
    pub fn mesh(&self) -> Option<&Mesh> {
        match &self.lobby {
            Some(l) => l.session.mesh(),
            None => self.mesh.as_ref(),
        }
    }

    /// The mesh, mutably. Commands given to it directly are carried out on the next
    /// [`poll`](Self::poll).
    pub fn mesh_mut(&mut self) -> Option<&mut Mesh> {
        match &mut self.lobby {
            Some(l) => l.session.mesh_mut(),
            None => self.mesh.as_mut(),
        }
    }

    fn parts(&mut self) -> (Option<&mut Mesh>, &mut Engine) {
        let mesh = match &mut self.lobby {
            Some(l) => l.session.mesh_mut(),
            None => self.mesh.as_mut(),
        };
        (mesh, &mut self.engine)
    }

    /// Carries out every queued mesh command; the first refused send is returned.
    fn execute(&mut self) -> Result<(), PutError> {
        let (Some(mesh), engine) = self.parts() else { return Ok(()) };
        let mut result = Ok(());
        while let Some(command) = mesh.poll_command() {
            let r = engine.execute(mesh, command);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    // ----- the drive step ------------------------------------------------------------------

    /// Does all pending work without waiting: the lobby connection, mesh commands, every peer
    /// connection's sockets and timers, and the signalling produced on the way.
    ///
    /// # Errors
    /// [`WebRtcError::Lobby`] once, when the lobby connection fails; the mesh goes on.
    /// [`WebRtcError::InvalidLobbyMessage`] for a message that is not the lobby protocol.
    pub fn poll(&mut self) -> Result<(), WebRtcError> {
        let lobby_result = self.poll_lobby();
        self.sync_new_mesh();
        let _ = self.execute();
        if let (Some(mesh), engine) = self.parts() {
            engine.drive(mesh);
        }
        // Events may have asked for more (a channel closed: close the peer).
        let _ = self.execute();
        self.send_signals();
        lobby_result
    }

    /// Settings given before the lobby created the mesh reach it now.
    fn sync_new_mesh(&mut self) {
        let (target, mode, channel, refuse) = (self.target, self.mode, self.channel, self.refuse);
        if let Some(mesh) = self.lobby.as_mut().and_then(|l| l.session.mesh_mut()) {
            mesh.set_target_peer(target);
            mesh.set_transfer_mode(mode);
            mesh.set_transfer_channel(channel);
            mesh.set_refuse_new_connections(refuse);
        }
    }

    fn poll_lobby(&mut self) -> Result<(), WebRtcError> {
        let Some(lobby) = self.lobby.as_mut() else { return Ok(()) };
        if lobby.ws.is_finished() {
            return Ok(());
        }
        let io = lobby.ws.poll();
        let mut invalid = false;
        while let Some(message) = lobby.ws.recv() {
            let text = message.as_text().map(str::to_string);
            match text {
                Some(text) => invalid |= lobby.session.handle_text(&text).is_err(),
                None => invalid = true,
            }
        }
        while let Some(event) = lobby.ws.poll_event() {
            if let ws::Event::Closed(info) = event {
                lobby.closed = Some(info);
            }
        }
        match (io, invalid) {
            (Err(e), _) => Err(WebRtcError::Lobby(e)),
            (Ok(()), true) => Err(WebRtcError::InvalidLobbyMessage),
            (Ok(()), false) => Ok(()),
        }
    }

    fn send_signals(&mut self) {
        let Some(lobby) = self.lobby.as_mut() else { return };
        if lobby.ws.state() == ws::State::Open {
            let mut wrote = false;
            while let Some(text) = lobby.unsent.take().or_else(|| lobby.session.poll_text()) {
                match lobby.ws.send_text(&text) {
                    Ok(()) => {}
                    Err(Error::Send(SendError::Full { .. })) => {
                        lobby.unsent = Some(text);
                        // Writing may make room once; what still does not fit waits for the
                        // next poll.
                        if wrote || lobby.ws.poll().is_err() {
                            break;
                        }
                        wrote = true;
                    }
                    Err(_) => self.engine.stats.dropped_signals += 1,
                }
            }
        }
        let _ = lobby.ws.poll();
    }

    /// When [`poll`](Self::poll) is due at the latest (`None`: only when sockets have data,
    /// which [`wait`](Self::wait) covers by polling often).
    #[must_use]
    pub fn next_timeout(&self) -> Option<StdInstant> {
        let lobby = self.lobby.as_ref().and_then(|l| l.ws.next_timeout());
        match (self.engine.next_timeout(), lobby) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sleeps until the next timer, at most `max` and at most 1 ms: the peers' sockets are
    /// separate and std cannot wait on several, so this is the granularity at which arriving
    /// data is noticed. Applications with their own loop call [`poll`](Self::poll) instead.
    pub fn wait(&mut self, max: Duration) {
        let now = StdInstant::now();
        let mut until = now + max.min(Duration::from_millis(1));
        if let Some(t) = self.next_timeout() {
            until = until.min(t);
        }
        if until > now {
            std::thread::sleep(until - now);
        }
    }

    // ----- signalling (standalone) ---------------------------------------------------------

    /// The next description or candidate to carry to a peer (standalone use; with a lobby
    /// they are sent for you and this returns `None`).
    pub fn poll_signal(&mut self) -> Option<Signal> {
        if self.lobby.is_some() {
            return None;
        }
        self.mesh.as_mut()?.poll_signal()
    }

    /// A description `peer` sent (`WebRTCPeerConnection.set_remote_description`); an offer is
    /// answered at once.
    ///
    /// # Errors
    /// [`UnknownPeer`].
    pub fn set_remote_description(
        &mut self,
        peer: PeerId,
        kind: SdpKind,
        sdp: &str,
    ) -> Result<(), UnknownPeer> {
        self.mesh_mut().ok_or(UnknownPeer(peer))?.set_remote_description(peer, kind, sdp)?;
        let _ = self.execute();
        Ok(())
    }

    /// A candidate `peer` sent (`WebRTCPeerConnection.add_ice_candidate(media, index, name)`).
    ///
    /// # Errors
    /// [`UnknownPeer`].
    pub fn add_ice_candidate(
        &mut self,
        peer: PeerId,
        mid: &str,
        index: u32,
        candidate: &str,
    ) -> Result<(), UnknownPeer> {
        self.mesh_mut().ok_or(UnknownPeer(peer))?.add_ice_candidate(peer, mid, index, candidate)?;
        let _ = self.execute();
        Ok(())
    }

    // ----- peers ---------------------------------------------------------------------------

    /// `add_peer(peer, peer_id, unreliable_lifetime)`: creates the connection and its
    /// channels; the higher id of the pair sends the offer.
    ///
    /// # Errors
    /// [`WebRtcError::Unconfigured`] before a mode is set; [`WebRtcError::Mesh`].
    pub fn add_peer(&mut self, peer: PeerId, unreliable_lifetime: u16) -> Result<(), WebRtcError> {
        self.mesh_mut().ok_or(WebRtcError::Unconfigured)?.add_peer(peer, unreliable_lifetime)?;
        let _ = self.execute();
        Ok(())
    }

    /// `remove_peer(peer_id)`.
    ///
    /// # Errors
    /// [`UnknownPeer`].
    pub fn remove_peer(&mut self, peer: PeerId) -> Result<(), UnknownPeer> {
        self.mesh_mut().ok_or(UnknownPeer(peer))?.remove_peer(peer)?;
        let _ = self.execute();
        Ok(())
    }

    /// `has_peer(peer_id)`.
    #[must_use]
    pub fn has_peer(&self, peer: PeerId) -> bool {
        self.mesh().is_some_and(|m| m.has_peer(peer))
    }

    /// `get_peer(peer_id)`: connected, the channels and whether each is open, queued packets.
    #[must_use]
    pub fn get_peer(&self, peer: PeerId) -> Option<MeshPeerInfo> {
        self.mesh()?.peer(peer)
    }

    /// `get_peers()`: every peer id.
    #[must_use]
    pub fn get_peers(&self) -> Vec<PeerId> {
        self.mesh().map(|m| m.peers().collect()).unwrap_or_default()
    }

    /// The UDP addresses used for `peer` (one per local address; its host candidates).
    #[must_use]
    pub fn get_peer_local_addrs(&self, peer: PeerId) -> Vec<SocketAddr> {
        self.engine.local_addrs(peer)
    }

    /// Server-reflexive addresses the STUN servers reported for `peer`'s sockets.
    #[must_use]
    pub fn get_peer_mapped_addrs(&self, peer: PeerId) -> Vec<SocketAddr> {
        self.engine.mapped_addrs(peer)
    }

    /// (local, remote) address of the candidate pair `peer`'s traffic goes over once connected
    /// (Godot has no such getter; browsers show it as the selected pair in `getStats`). The
    /// local address is one of [`get_peer_relayed_addrs`](Self::get_peer_relayed_addrs) when
    /// the traffic goes through our TURN allocation.
    #[must_use]
    pub fn get_peer_path(&self, peer: PeerId) -> Option<(SocketAddr, SocketAddr)> {
        self.engine.path(peer)
    }

    /// The addresses TURN servers relay for this engine (its relay candidates), once allocated.
    #[must_use]
    pub fn get_peer_relayed_addrs(&self) -> Vec<SocketAddr> {
        self.engine.relayed_addrs()
    }

    /// The largest message `peer` accepts: its `a=max-message-size` (64 KiB when absent),
    /// capped by our send buffer.
    #[must_use]
    pub fn get_peer_max_message_size(&self, peer: PeerId) -> Option<usize> {
        self.engine.max_message(peer)
    }

    /// (messages waiting for send-buffer room, messages received but held back because a
    /// reliable lane was full) for `peer`.
    #[must_use]
    pub fn get_peer_backlog(&self, peer: PeerId) -> (usize, usize) {
        self.engine.backlog(peer)
    }

    /// Every UDP socket of the engine's peer connections, for an event loop that waits on
    /// readiness (mio, epoll) instead of [`wait`](Self::wait): when one is readable, or at
    /// [`next_timeout`](Self::next_timeout), call [`poll`](Self::poll). The set changes as
    /// peers come and go: look again after each `poll`. The sockets are non-blocking and are
    /// read until they would block or a per-drive cap is reached (then
    /// [`stats`](Self::stats)`.datagrams_received` grew: poll again without waiting).
    #[must_use]
    pub fn udp_sockets(&self) -> Vec<&std::net::UdpSocket> {
        self.engine.udp_sockets()
    }

    /// Whether a lobby connection is still open; its socket is not among
    /// [`udp_sockets`](Self::udp_sockets), so a readiness loop polls at least every few
    /// milliseconds while it is.
    #[must_use]
    pub fn is_lobby_open(&self) -> bool {
        self.lobby.as_ref().is_some_and(|l| !l.ws.is_finished())
    }

    /// Counters of the engine (datagrams, the largest one, refused sends).
    #[must_use]
    pub fn stats(&self) -> &EngineStats {
        &self.engine.stats
    }

    // ----- MultiplayerPeer -----------------------------------------------------------------

    /// `get_unique_id()` as Godot returns it: the id given to `create_mesh` (or
    /// `create_server`/`create_client`), 0 before.
    #[must_use]
    pub fn get_unique_id(&self) -> i32 {
        self.unique_id().map_or(0, PeerId::get)
    }

    /// [`get_unique_id`](Self::get_unique_id) as a [`PeerId`], `None` where Godot returns 0.
    #[must_use]
    pub fn unique_id(&self) -> Option<PeerId> {
        self.mesh()?.unique_id()
    }

    /// How the mesh was created.
    #[must_use]
    pub fn get_mode(&self) -> Option<MeshMode> {
        self.mesh().map(Mesh::mode)
    }

    /// `get_connection_status()`: `Connecting` while a lobby has not given an id yet.
    #[must_use]
    pub fn get_connection_status(&self) -> ConnectionStatus {
        match self.mesh() {
            Some(m) => m.connection_status(),
            None if self.lobby.as_ref().is_some_and(|l| l.closed.is_none()) => ConnectionStatus::Connecting,
            None => ConnectionStatus::Disconnected,
        }
    }

    /// `set_target_peer(id)`.
    pub fn set_target_peer(&mut self, target: Target) {
        self.target = target;
        if let Some(m) = self.mesh_mut() {
            m.set_target_peer(target);
        }
    }

    /// `get_target_peer()`.
    #[must_use]
    pub fn get_target_peer(&self) -> Target {
        self.target
    }

    /// `set_transfer_mode(mode)`: picks the lane (reliable 1, ordered 2, unreliable 3).
    pub fn set_transfer_mode(&mut self, mode: TransferMode) {
        self.mode = mode;
        if let Some(m) = self.mesh_mut() {
            m.set_transfer_mode(mode);
        }
    }

    /// `get_transfer_mode()`.
    #[must_use]
    pub fn get_transfer_mode(&self) -> TransferMode {
        self.mode
    }

    /// `set_transfer_channel(channel)`: 0 for the default lanes, N for custom channel N.
    pub fn set_transfer_channel(&mut self, channel: u8) {
        self.channel = channel;
        if let Some(m) = self.mesh_mut() {
            m.set_transfer_channel(channel);
        }
    }

    /// `get_transfer_channel()`.
    #[must_use]
    pub fn get_transfer_channel(&self) -> u8 {
        self.channel
    }

    /// `set_refuse_new_connections(refuse)`.
    pub fn set_refuse_new_connections(&mut self, refuse: bool) {
        self.refuse = refuse;
        if let Some(m) = self.mesh_mut() {
            m.set_refuse_new_connections(refuse);
        }
    }

    /// `is_refusing_new_connections()`.
    #[must_use]
    pub fn is_refusing_new_connections(&self) -> bool {
        self.refuse
    }

    /// `put_packet(buffer)`: sends to the target on the lane of the transfer mode and channel,
    /// now (the message is handed to str0m before this returns, or kept in the peer's
    /// outbox while str0m's send buffer is full).
    ///
    /// # Errors
    /// [`PutError::NotConnected`] without a mesh; [`PutError::UnknownPeer`] for a target that
    /// is not connected; [`PutError::TooLarge`] beyond a target's `a=max-message-size`;
    /// [`PutError::Full`] when a target's outbox is full. A packet for several targets is sent
    /// to all of them or, when one of them cannot take it now, to none (Godot sends to the
    /// others and drops it for that one), so a retry never duplicates it.
    pub fn put_packet(&mut self, data: &[u8]) -> Result<(), PutError> {
        let (Some(mesh), engine) = self.parts() else { return Err(PutError::NotConnected) };
        for peer in mesh.packet_targets() {
            engine.check_send(peer, data.len())?;
        }
        mesh.put_packet(data)?;
        self.execute()
    }

    /// `get_max_packet_size()`: Godot's advisory 1200; see
    /// [`get_peer_max_message_size`](Self::get_peer_max_message_size) for the real limit.
    #[must_use]
    pub fn get_max_packet_size(&self) -> usize {
        self.mesh().map_or(1200, MultiplayerPeer::max_packet_size)
    }

    /// `get_available_packet_count()`.
    #[must_use]
    pub fn get_available_packet_count(&self) -> usize {
        self.mesh().map_or(0, MultiplayerPeer::available_packet_count)
    }

    /// `get_packet()`, with its sender, mode and channel (Godot's `get_packet_peer`,
    /// `get_packet_mode`, `get_packet_channel`).
    pub fn get_packet(&mut self) -> Option<(Vec<u8>, PacketInfo)> {
        let mesh = self.mesh_mut()?;
        let packet = mesh.peek_packet()?;
        let out = (packet.data.to_vec(), packet.info);
        mesh.pop_packet();
        Some(out)
    }

    /// `get_packet_peer()`: the sender of the next packet.
    #[must_use]
    pub fn get_packet_peer(&self) -> Option<PeerId> {
        self.mesh()?.packet_peer()
    }

    /// `disconnect_peer(peer, force)`.
    ///
    /// # Errors
    /// [`UnknownPeer`].
    pub fn disconnect_peer(&mut self, peer: PeerId, force: bool) -> Result<(), UnknownPeer> {
        let now = self.engine.clock().now();
        self.mesh_mut().ok_or(UnknownPeer(peer))?.disconnect_peer(now, peer, force)?;
        let _ = self.execute();
        Ok(())
    }

    /// `close()`: every peer connection and the lobby connection.
    pub fn close(&mut self) {
        let now = self.engine.clock().now();
        if let Some(m) = self.mesh_mut() {
            m.close(now);
        }
        let _ = self.execute();
        self.engine.close_all();
        self.leave_lobby();
    }

    /// The next event: `peer_connected`, `peer_disconnected`, connection succeeded (client
    /// mode), dropped packets.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.mesh_mut()?.poll_event()
    }
}
