//! A multiplayer client over one WebSocket connection (Godot's `create_client`).
//!
//! Works without `alloc`: packets are read in place from the connection's inbound queue, and
//! events wait in a small fixed queue. System messages (ids, peers joining and leaving, relayed
//! packets) are handled in arrival order as the application reads, and only while there is room
//! for the events they produce, so a burst of announcements meets back-pressure, not loss.

use heapless::Deque;
use rand_core::CryptoRng;

use super::godot3::{self, MessageType};
use super::scene::{self, SysCommand};
use super::{
    ConnectFailure, ConnectionStatus, DisconnectReason, DropReason, Event, MultiplayerPeer, Packet,
    PacketInfo, PeerId, Protocol, PutError, Target, TransferMode, UnknownPeer,
};
use crate::buffer::Storage;
use crate::time::{Instant, earliest};
use crate::ws::handshake::{ClientRequest, HandshakeError, Url, UrlError};
use crate::ws::{self, CloseCode, CloseInfo, MessageKind, SendError};

/// Events a client can hold before it stops reading.
const EVENT_CAPACITY: usize = 16;
/// Room kept free before handling one more message (at most two events per message).
const EVENTS_PER_MESSAGE: usize = 2;

/// How a client speaks to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// Godot 4 or Godot 3 framing.
    pub protocol: Protocol,
    /// Godot 4: speak SceneMultiplayer's relay (learn other peers from `ADD_PEER`/`DEL_PEER`,
    /// receive `RELAY` packets, and wrap packets for other peers in `RELAY`), as a Godot 4
    /// client with `server_relay` on does. Godot 3 always relays.
    pub relay: bool,
    /// WebSocket limits and timers; `handshake_timeout` also bounds the wait for the id.
    pub ws: ws::Config,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self { protocol: Protocol::Godot4, relay: true, ws: ws::Config::GODOT }
    }
}

/// A multiplayer client: Godot's `WebSocketMultiplayerPeer.create_client` (4.x) or
/// `WebSocketClient` with the multiplayer API (3.x).
///
/// Unlike Godot 4, the handshake timeout also covers the wait for the id, so a server that
/// never sends one cannot hang the client; unlike Godot 3, a lost connection after joining is
/// reported as [`Event::ServerDisconnected`], not `connection_failed`.
pub struct Client<S: Storage, R: CryptoRng> {
    ws: ws::Connection<S, R>,
    protocol: Protocol,
    relay: bool,
    join_deadline: Option<Instant>,
    id: Option<PeerId>,
    status: ConnectionStatus,
    /// The next application packet: sender and bytes of protocol header to skip.
    front: Option<(PeerId, usize)>,
    events: Deque<Event, EVENT_CAPACITY>,
    target: Target,
    mode: TransferMode,
    channel: u8,
    refuse: bool,
    /// The latest time given to a `handle_*` call, for work done while the application reads.
    now: Instant,
    /// Whether the join ever completed (packets that arrived then outlive the connection).
    joined: bool,
    /// This side closed a joined connection: its end is reported when the close completes.
    leaving: bool,
}

impl<S: Storage, R: CryptoRng> Client<S, R> {
    /// Starts connecting to `url` (`ws://` only at this layer; TLS is the adapter's).
    ///
    /// # Errors
    /// [`ConnectError`] for an unusable URL or handshake parameters.
    pub fn create(now: Instant, url: &str, config: ClientConfig, rng: R) -> Result<Self, ConnectError> {
        let url = Url::parse(url).map_err(ConnectError::Url)?;
        Self::new(now, &ClientRequest::from_url(&url), config, rng)
    }

    /// Starts connecting with a prepared upgrade request (subprotocols and extra headers:
    /// Godot's `supported_protocols` and `handshake_headers`).
    ///
    /// # Errors
    /// [`ConnectError::Handshake`] for parameters that cannot be sent.
    pub fn new(
        now: Instant,
        request: &ClientRequest<'_>,
        config: ClientConfig,
        rng: R,
    ) -> Result<Self, ConnectError> {
        let ws = ws::Connection::client(now, request, config.ws, rng).map_err(ConnectError::Handshake)?;
        Ok(Self {
            ws,
            protocol: config.protocol,
            relay: config.relay || config.protocol == Protocol::Godot3,
            join_deadline: Some(now + config.ws.handshake_timeout),
            id: None,
            status: ConnectionStatus::Connecting,
            front: None,
            events: Deque::new(),
            target: Target::Server,
            mode: TransferMode::Reliable,
            channel: 0,
            refuse: false,
            now,
            joined: false,
            leaving: false,
        })
    }

    /// The WebSocket connection to the server (Godot: `get_peer(1)`).
    #[must_use]
    pub fn connection(&self) -> &ws::Connection<S, R> {
        &self.ws
    }

    /// The protocol spoken.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Whether the next event comes before the next packet: read it with `poll_event` first
    /// to see events and packets in the order Godot's signals and `get_packet` give them.
    /// Announcements and drops are handled in arrival order as packets are read, so every
    /// queued event but the end of the connection comes before the next packet; the end
    /// (`peer_disconnected(1)`, `server_disconnected`) comes after every packet that arrived
    /// before it.
    pub fn event_is_next(&mut self) -> bool {
        // System messages in front of the next packet become events first.
        self.process(self.now);
        match self.events.front() {
            None => false,
            Some(
                Event::ServerDisconnected(_)
                | Event::ConnectionFailed(_)
                | Event::PeerDisconnected { peer: PeerId::SERVER, .. },
            ) => self.front.is_none() && self.ws.peek_message().is_none(),
            Some(_) => true,
        }
    }

    /// How the connection to the server ended, once it has (Godot: `get_peer(1)`'s
    /// `get_close_code()` and `get_close_reason()`), with a Godot 3 reason's NUL removed.
    #[must_use]
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.ws.close_info().cloned().map(|info| super::presented(info, self.protocol))
    }

    /// Closes the connection to the server with `code` and `reason` (Godot 4:
    /// `get_peer(1).close(code, reason)`; 3.x: `disconnect_from_host(code, reason)`), or with
    /// `force` drops it at once; `peer` must be the server, as for `disconnect_peer`. The
    /// status is `Disconnected` from now on; when the closing handshake ends (the server's
    /// answer, or the close timeout), a joined client reports [`Event::PeerDisconnected`] for
    /// the server and [`Event::ServerDisconnected`] with how it ended, as Godot 4 emits
    /// `peer_disconnected(1)` and `server_disconnected` then. With `force`, or when the
    /// outbound queue has no room for the Close frame, the connection is dropped and both are
    /// reported at once. A code that may not be sent is sent as 1000, and a reason over 123
    /// bytes is cut to fit.
    ///
    /// # Errors
    /// [`UnknownPeer`] when `peer` is not the server or the client is not connecting or
    /// connected.
    pub fn disconnect_peer_with(
        &mut self,
        now: Instant,
        peer: PeerId,
        code: CloseCode,
        reason: &str,
        force: bool,
    ) -> Result<(), UnknownPeer> {
        if !peer.is_server() || self.status == ConnectionStatus::Disconnected {
            return Err(UnknownPeer(peer));
        }
        self.now = self.now.max(now);
        let (code, reason) = super::sendable_close(code, reason);
        if force || self.ws.close(now, code, reason.as_str()).is_err() {
            self.ws.abort();
        }
        self.leaving = self.status == ConnectionStatus::Connected;
        self.status = ConnectionStatus::Disconnected;
        self.front = None;
        // An abort ended the connection already: its report goes out now.
        self.process(now);
        Ok(())
    }

    // ----- transport side --------------------------------------------------------------------

    /// Bytes from the transport; returns how many were accepted (see the crate's drive loop).
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        self.now = self.now.max(now);
        let used = self.ws.handle_input(now, bytes);
        self.process(now);
        used
    }

    /// The transport's read side ended.
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.ws.handle_eof(now);
        self.process(now);
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.ws.handle_timeout(now);
        if self.join_deadline.is_some_and(|t| now >= t) {
            self.join_deadline = None;
            if self.status == ConnectionStatus::Connecting && self.ws.state() == ws::State::Open {
                let _ = self.ws.close(now, CloseCode::NORMAL, "no id received");
                self.fail(ConnectFailure::IdTimeout);
            }
        }
        self.process(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let join = self.join_deadline.filter(|_| self.status == ConnectionStatus::Connecting);
        earliest(self.ws.poll_timeout(), join)
    }

    /// Bytes to write to the transport.
    #[must_use]
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        self.ws.poll_transmit()
    }

    /// The transport took `n` bytes of [`poll_transmit`](Self::poll_transmit).
    pub fn consume_transmit(&mut self, n: usize) {
        self.ws.consume_transmit(n);
    }

    /// Whether the transport may be released once nothing is left to transmit.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.ws.is_finished()
    }

    // ----- processing ------------------------------------------------------------------------

    fn push_event(&mut self, event: Event) {
        // Callers check room first; a full queue here would be a bug, so keep the newest.
        if self.events.is_full() {
            self.events.pop_front();
        }
        let _ = self.events.push_back(event);
    }

    fn room(&self) -> bool {
        EVENT_CAPACITY - self.events.len() >= EVENTS_PER_MESSAGE
    }

    fn fail(&mut self, failure: ConnectFailure) {
        if self.status != ConnectionStatus::Disconnected {
            self.status = ConnectionStatus::Disconnected;
            self.front = None;
            self.push_event(Event::ConnectionFailed(failure));
        }
    }

    fn lost(&mut self, info: CloseInfo) {
        let info = super::presented(info, self.protocol);
        match self.status {
            ConnectionStatus::Connected => {
                self.status = ConnectionStatus::Disconnected;
                self.report_lost(info);
            }
            ConnectionStatus::Connecting => self.fail(ConnectFailure::Closed(info)),
            ConnectionStatus::Disconnected if self.leaving => self.report_lost(info),
            ConnectionStatus::Disconnected => {}
        }
    }

    /// Godot 4's pair of signals for the end of a joined connection.
    fn report_lost(&mut self, info: CloseInfo) {
        self.leaving = false;
        self.push_event(Event::PeerDisconnected {
            peer: PeerId::SERVER,
            reason: DisconnectReason::Closed(info.clone()),
        });
        self.push_event(Event::ServerDisconnected(info));
    }

    fn process(&mut self, now: Instant) {
        while self.room() {
            match self.ws.poll_event() {
                Some(ws::Event::HandshakeFailed(e)) => self.fail(ConnectFailure::Handshake(e)),
                Some(ws::Event::Closed(info)) => self.lost(info),
                Some(_) => {}
                None => break,
            }
        }
        self.advance(now);
    }

    /// Handles system messages at the front of the queue until an application packet (or
    /// nothing, or a full event queue) is there.
    fn advance(&mut self, now: Instant) {
        while self.front.is_none() && self.room() {
            let Some(message) = self.ws.peek_message() else { return };
            let step = match (self.status, self.protocol) {
                // Packets that arrived while joined stay readable after the end; whatever else
                // was queued (announcements, or anything if it never joined) means nothing now.
                (ConnectionStatus::Disconnected, _) if !self.joined => Step::Skip,
                (ConnectionStatus::Disconnected, Protocol::Godot4) => {
                    only_packets(read_godot4(message.data, self.relay))
                }
                (ConnectionStatus::Disconnected, Protocol::Godot3) => only_packets(read_godot3(message.data)),
                (ConnectionStatus::Connecting, Protocol::Godot4) => join_godot4(message.data),
                (ConnectionStatus::Connecting, Protocol::Godot3) => join_godot3(message.data),
                (ConnectionStatus::Connected, Protocol::Godot4) => read_godot4(message.data, self.relay),
                (ConnectionStatus::Connected, Protocol::Godot3) => read_godot3(message.data),
            };
            // A packet the server says came from this client itself is forged.
            let step = match step {
                Step::Packet(from, _) if Some(from) == self.id => {
                    Step::Dropped(DropReason::SpoofedSender { claimed: from.get() })
                }
                step => step,
            };
            match step {
                Step::Packet(from, skip) => self.front = Some((from, skip)),
                Step::Skip => {}
                Step::Dropped(reason) => {
                    let from = Some(PeerId::SERVER);
                    self.push_event(Event::PacketDropped { from, reason });
                }
                Step::Id(id) => self.id = Some(id),
                Step::Joined(id) => {
                    self.id = self.id.or(id);
                    if self.id.is_some() {
                        self.joined = true;
                        self.status = ConnectionStatus::Connected;
                        self.join_deadline = None;
                        self.push_event(Event::PeerConnected(PeerId::SERVER));
                        self.push_event(Event::ConnectionSucceeded);
                    }
                }
                Step::InvalidId => {
                    // Godot 4 answers a bad id with Close 1000 and reports connection_failed.
                    let _ = self.ws.close(now, CloseCode::NORMAL, "");
                    self.fail(ConnectFailure::InvalidId);
                }
                Step::PeerJoined(id) => {
                    if Some(id) != self.id && !id.is_server() {
                        self.push_event(Event::PeerConnected(id));
                    }
                }
                // As for joins: the server and this client are not announced peers, so a
                // server's DEL_PEER(1) must not report the server gone while it is connected.
                Step::PeerLeft(id) => {
                    if Some(id) != self.id && !id.is_server() {
                        self.push_event(Event::PeerDisconnected {
                            peer: id,
                            reason: DisconnectReason::Announced,
                        });
                    }
                }
            }
            if self.front.is_none() {
                self.ws.pop_message();
            }
        }
    }
}

/// What one message from the server means.
enum Step {
    Packet(PeerId, usize),
    Skip,
    Dropped(DropReason),
    Id(PeerId),
    /// The join finished, possibly carrying the id (Godot 4's id message).
    Joined(Option<PeerId>),
    InvalidId,
    PeerJoined(PeerId),
    PeerLeft(PeerId),
}

/// After the connection ended: a packet is still delivered, nothing else is acted on.
fn only_packets(step: Step) -> Step {
    if matches!(step, Step::Packet(..)) { step } else { Step::Skip }
}

fn client_id(raw: i32) -> Option<PeerId> {
    u32::try_from(raw).ok().and_then(PeerId::new).filter(|id| !id.is_server())
}

fn join_godot4(message: &[u8]) -> Step {
    match message.first_chunk::<4>() {
        Some(id) if message.len() == 4 => match client_id(i32::from_le_bytes(*id)) {
            Some(id) => Step::Joined(Some(id)),
            None => Step::InvalidId,
        },
        _ => Step::InvalidId,
    }
}

fn join_godot3(message: &[u8]) -> Step {
    let Some((header, payload)) = godot3::Header::decode(message) else {
        return Step::Dropped(DropReason::TooShort);
    };
    let id = godot3::sys_id(payload);
    match (MessageType::from_byte(header.kind), id) {
        (Some(MessageType::Id), Some(raw)) => client_id(raw).map_or(Step::InvalidId, Step::Id),
        (Some(MessageType::Add), Some(1)) => Step::Joined(None),
        (Some(MessageType::Data), _) => Step::Dropped(DropReason::UnknownTarget(header.to)),
        (Some(_), None) => Step::Dropped(DropReason::TooShort),
        _ => Step::Dropped(DropReason::UnknownMessage),
    }
}

fn read_godot4(message: &[u8], relay: bool) -> Step {
    if message.is_empty() {
        return Step::Dropped(DropReason::Empty);
    }
    if !relay || !scene::is_sys(message) {
        return Step::Packet(PeerId::SERVER, 0);
    }
    let Ok(sys) = scene::decode(message) else {
        return Step::Dropped(DropReason::TooShort);
    };
    let peer = u32::try_from(sys.id).ok().and_then(PeerId::new);
    match (sys.command, peer) {
        (SysCommand::AddPeer, Some(p)) => Step::PeerJoined(p),
        (SysCommand::DelPeer, Some(p)) => Step::PeerLeft(p),
        (SysCommand::Relay, Some(p)) => Step::Packet(p, scene::SYS_HEADER_LEN),
        (SysCommand::Auth, _) => Step::Dropped(DropReason::UnknownMessage),
        (_, None) => Step::Dropped(DropReason::UnknownTarget(sys.id)),
    }
}

fn read_godot3(message: &[u8]) -> Step {
    let Some((header, payload)) = godot3::Header::decode(message) else {
        return Step::Dropped(DropReason::TooShort);
    };
    let peer = |raw| u32::try_from(raw).ok().and_then(PeerId::new);
    match MessageType::from_byte(header.kind) {
        Some(MessageType::Data) => match peer(header.from) {
            Some(from) => Step::Packet(from, godot3::HEADER_LEN),
            None => Step::Dropped(DropReason::SpoofedSender { claimed: header.from }),
        },
        Some(kind) => match godot3::sys_id(payload).and_then(peer) {
            Some(id) if kind == MessageType::Add => Step::PeerJoined(id),
            Some(id) if kind == MessageType::Del => Step::PeerLeft(id),
            Some(_) => Step::Skip,
            None => Step::Dropped(DropReason::TooShort),
        },
        None => Step::Dropped(DropReason::UnknownMessage),
    }
}

impl<S: Storage, R: CryptoRng> MultiplayerPeer for Client<S, R> {
    fn unique_id(&self) -> Option<PeerId> {
        self.id
    }

    fn connection_status(&self) -> ConnectionStatus {
        self.status
    }

    fn is_server_relay_supported(&self) -> bool {
        self.relay
    }

    crate::peer::kept_send_settings!(target, mode, channel);

    fn set_refuse_new_connections(&mut self, refuse: bool) {
        self.refuse = refuse;
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.refuse
    }

    fn put_packet(&mut self, data: &[u8]) -> Result<(), PutError> {
        let Some(own) = self.id.filter(|_| self.status == ConnectionStatus::Connected) else {
            return Err(PutError::NotConnected);
        };
        if data.len() > self.max_packet_size() {
            return Err(PutError::TooLarge { max: self.max_packet_size() });
        }
        let result = match (self.protocol, self.target) {
            (Protocol::Godot3, target) => {
                let header = godot3::Header { kind: 0, from: own.get(), to: target.to_godot() }.encode();
                self.ws.send_parts(MessageKind::Binary, &[&header, data])
            }
            (Protocol::Godot4, Target::Server) => self.ws.send_binary(data),
            (Protocol::Godot4, _) if !self.relay => return Err(PutError::RelayUnsupported),
            (Protocol::Godot4, target) => {
                let header = scene::header(SysCommand::Relay, target.to_godot());
                self.ws.send_parts(MessageKind::Binary, &[&header, data])
            }
        };
        result.map_err(|e| match e {
            SendError::Full { .. } => PutError::Full,
            _ => PutError::NotConnected,
        })
    }

    fn max_packet_size(&self) -> usize {
        let overhead = match (self.protocol, self.target) {
            (Protocol::Godot3, _) => godot3::HEADER_LEN,
            (Protocol::Godot4, Target::Server) => 0,
            (Protocol::Godot4, _) => scene::SYS_HEADER_LEN,
        };
        self.ws.config().outbound_buffer_size.saturating_sub(overhead)
    }

    fn available_packet_count(&self) -> usize {
        // Messages behind the front may still turn out to be system messages; this counts
        // what is queued, as Godot does.
        if self.front.is_some() { self.ws.available_messages() } else { 0 }
    }

    fn peek_packet(&self) -> Option<Packet<'_>> {
        let (from, skip) = self.front?;
        let data = self.ws.peek_message()?.data.get(skip..)?;
        Some(Packet { info: PacketInfo { from, mode: TransferMode::Reliable, channel: 0 }, data })
    }

    fn pop_packet(&mut self) -> bool {
        if self.front.take().is_none() {
            return false;
        }
        self.ws.pop_message();
        self.process(self.now);
        true
    }

    fn disconnect_peer(&mut self, now: Instant, peer: PeerId, force: bool) -> Result<(), UnknownPeer> {
        self.disconnect_peer_with(now, peer, CloseCode::NORMAL, "", force)
    }

    fn disconnect_peer_with(
        &mut self,
        now: Instant,
        peer: PeerId,
        code: CloseCode,
        reason: &str,
        force: bool,
    ) -> Result<(), UnknownPeer> {
        Client::disconnect_peer_with(self, now, peer, code, reason, force)
    }

    /// Unlike `disconnect_peer`, reports the server's departure at once (as `Kicked`): after
    /// `close()` the application is done with this peer (Godot's `close()` emits nothing).
    fn close(&mut self, now: Instant) {
        let _ = self.disconnect_peer_with(now, PeerId::SERVER, CloseCode::NORMAL, "", false);
        // Still leaving: the close did not end at once (an abort reported it already).
        if self.leaving {
            self.leaving = false;
            self.push_event(Event::PeerDisconnected {
                peer: PeerId::SERVER,
                reason: DisconnectReason::Kicked,
            });
        }
        self.status = ConnectionStatus::Disconnected;
    }

    fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        // Room was made: connection events and system messages waiting for it go on now.
        if event.is_some() {
            self.process(self.now);
        }
        event
    }
}

/// A client could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL cannot be used.
    Url(UrlError),
    /// The upgrade request cannot be built.
    Handshake(HandshakeError),
}

impl core::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Url(e) => write!(f, "bad URL: {e}"),
            Self::Handshake(e) => write!(f, "bad handshake parameters: {e}"),
        }
    }
}

impl core::error::Error for ConnectError {}
