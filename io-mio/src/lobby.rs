//! A lobby server for the WebRTC mesh on mio: the core's sans-IO
//! [`LobbyServer`](multipeer::signaling::LobbyServer) (Godot's `webrtc_signaling` demo
//! protocol) over plain or TLS WebSocket connections.
//!
//! It is a [`WebSocketServer`] whose connections are the lobby core's: once a connection's
//! opening handshake completes the lobby core is told, text messages are handed to it, binary ones
//! make it close the connection with 4000 (as the demo does), and what it asks for (send a
//! text, close with a code and reason) is carried out here. The adapter makes no protocol
//! decision.
//!
//! Flow control (the same model as the multiplayer relay): a message the core asks to send to
//! a connection whose queue is full waits in that connection's backlog, in order, and the
//! connection whose message caused it is not read any further until the backlog has gone out
//! (TCP slows the sender). A connection whose backlog waits while it writes nothing for
//! [`LobbyOptions::slow_peer_timeout`] is cut off (1008) and its lobby hears that it left.

use core::net::SocketAddr;
use core::ops::Range;
use core::time::Duration;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;

use chacha20::ChaCha12Rng;
use mio::event::Event;
use mio::{Registry, Token};
use multipeer::signaling::{LobbyConfig, LobbyOutput, LobbyServer};
use multipeer::ws::{self, CloseCode, MessageKind, SendError};

use crate::clock::shortest;
use crate::error::BindError;
use crate::listen::ListenAddr;
use crate::os_rng;
use crate::run::{RunEnd, Stop, drive_by_inherent_methods, run};
#[cfg(feature = "tls")]
use crate::tls::TlsOptions;
use crate::websocket::{ConnectionId, WebSocketEvent, WebSocketOptions, WebSocketServer};

/// The core lobby server this adapter drives.
pub type CoreLobby = LobbyServer<ChaCha12Rng>;

/// Connections accepted beyond [`LobbyConfig::max_peers`] so that the core can tell the extra
/// ones "Too many peers connected" (close 4000, as the demo does) instead of a silent TCP close.
const OVER_CAPACITY_HEADROOM: usize = 64;
/// Rounds of carrying out the lobby core's outputs in one pass (each round answers what the
/// connections of the previous one did).
const MAX_ROUNDS: usize = 32;
/// Close reason for a connection cut off for not draining its queue.
const SLOW_PEER_REASON: &str = "slow peer: outbound queue full, not draining";

/// Settings of a [`Lobby`].
#[derive(Debug, Clone)]
pub struct LobbyOptions {
    /// The lobby core's limits and timers (the demo's by default).
    pub lobby: LobbyConfig,
    /// Limits and timers of each WebSocket connection: Godot's, with 1 MiB of outbound queue
    /// (as `ServerConfig`'s) because a joiner hears of every member of its lobby at once. A
    /// client that falls further behind is cut off (1008, [`LobbyStats::slow_consumers`]).
    /// Each connection may also queue at least `max_peers` + 8 messages, whatever is set here.
    pub ws: ws::Config,
    /// How long a connection may keep messages waiting for room while writing nothing before
    /// it is cut off (1008); meanwhile whoever sent them is not read. `None`: never.
    pub slow_peer_timeout: Option<Duration>,
}

impl Default for LobbyOptions {
    fn default() -> Self {
        Self {
            lobby: LobbyConfig::default(),
            ws: ws::Config { outbound_queue_size: Some(1 << 20), ..ws::Config::GODOT },
            slow_peer_timeout: Some(multipeer::peer::DEFAULT_SLOW_PEER_TIMEOUT),
        }
    }
}

/// Counters of a [`Lobby`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LobbyStats {
    /// TCP connections accepted.
    pub accepted: u64,
    /// TCP connections closed at accept: `max_peers` plus a small headroom existed.
    pub refused_at_capacity: u64,
    /// `accept` failures other than "would block".
    pub accept_errors: u64,
    /// Opening handshakes that failed (bad request, timeout, TLS failure before it).
    pub handshake_failures: u64,
    /// WebSocket connections that opened and were handed to the lobby core.
    pub opened: u64,
    /// Text messages received.
    pub messages_in: u64,
    /// Binary messages received (each closes its connection with 4000).
    pub binary_in: u64,
    /// Text messages sent.
    pub messages_out: u64,
    /// Messages the lobby core asked to send to a connection that was no longer open.
    pub send_failures: u64,
    /// Connections cut off (1008) because messages waited for room in their queue while they
    /// wrote nothing for the slow-peer timeout.
    pub slow_consumers: u64,
    /// Times a connection's message had to wait for room at a receiver (its sender then waits).
    pub sender_waits: u64,
    /// Connections not read now because a message they caused waits for room.
    pub held_senders: u64,
    /// Connections the lobby core closed (4000: no lobby joined in time, protocol errors,
    /// host gone; 1000 once a sealed lobby closes).
    pub closed_by_lobby: u64,
    /// TLS sessions that failed.
    pub tls_failures: u64,
    /// Socket read or write errors.
    pub io_errors: u64,
}

/// A WebRTC signalling (lobby) server on mio, speaking Godot's `webrtc_signaling` demo
/// protocol: clients join or create lobbies, and offers, answers and candidates are relayed
/// between the members of a lobby.
///
/// It is driven like [`Server`](crate::Server): [`register`](Self::register) it under a token
/// range, pass it the readiness events of that range ([`handle_event`](Self::handle_event)),
/// sleep at most [`poll_timeout`](Self::poll_timeout) and then call
/// [`handle_timeout`](Self::handle_timeout). Or call [`run`](Self::run).
pub struct Lobby {
    core: CoreLobby,
    server: WebSocketServer,
    /// Connections the lobby core knows (opened, not forgotten yet).
    known: HashSet<ConnectionId>,
    /// Messages waiting for room at their receiver, per receiver.
    backlogs: HashMap<ConnectionId, Backlog>,
    /// Connections not read while a message they caused waits in a backlog.
    held: HashSet<ConnectionId>,
    /// Connections no longer held, whose waiting messages are to be read.
    released: Vec<ConnectionId>,
    slow_peer_timeout: Option<Duration>,
    stats: LobbyStats,
}

/// Messages for one connection that did not fit its queue yet, and who waits for them.
#[derive(Debug, Default)]
struct Backlog {
    texts: VecDeque<String>,
    /// Connections held until this backlog has gone out.
    waiters: Vec<ConnectionId>,
    /// Since when nothing was written while the backlog waits.
    stalled_since: Option<multipeer::Instant>,
    /// Bytes queued for the socket when last looked at (less now: it wrote).
    last_buffered: usize,
}

impl Lobby {
    /// Listens on `addrs`, plain `ws://`.
    ///
    /// # Errors
    /// [`BindError`]: an address in use or unavailable, no OS randomness.
    pub fn bind(addrs: &[ListenAddr], options: LobbyOptions) -> Result<Self, BindError> {
        let rng = os_rng().map_err(BindError::Rng)?;
        let ws = ws::Config {
            // One announcement per member, at once, to a joiner.
            max_outbound_messages: options
                .ws
                .max_outbound_messages
                .max(options.lobby.max_peers.saturating_add(8)),
            ..options.ws
        };
        let max_connections = options.lobby.max_peers.saturating_add(OVER_CAPACITY_HEADROOM);
        let server =
            WebSocketServer::bind(addrs, WebSocketOptions { ws, max_connections, protocols: Vec::new() })?;
        Ok(Self {
            core: LobbyServer::new(options.lobby, rng),
            server,
            known: HashSet::new(),
            backlogs: HashMap::new(),
            held: HashSet::new(),
            released: Vec::new(),
            slow_peer_timeout: options.slow_peer_timeout,
            stats: LobbyStats::default(),
        })
    }

    /// Listens on `addrs` with TLS (`wss://`).
    ///
    /// # Errors
    /// As [`bind`](Self::bind), and [`BindError::ClientTlsOptions`].
    #[cfg(feature = "tls")]
    pub fn bind_tls(addrs: &[ListenAddr], options: LobbyOptions, tls: TlsOptions) -> Result<Self, BindError> {
        if !tls.is_server() {
            return Err(BindError::ClientTlsOptions);
        }
        let mut lobby = Self::bind(addrs, options)?;
        lobby.server.set_tls(tls);
        Ok(lobby)
    }

    /// Whether connections are wrapped in TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.server.is_tls()
    }

    /// The addresses actually listened on.
    #[must_use]
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.server.local_addrs()
    }

    /// The lobby core (connections and lobbies now).
    #[must_use]
    pub fn core(&self) -> &CoreLobby {
        &self.core
    }

    /// TCP connections held now, handshaking, open or closing.
    #[must_use]
    pub fn connection_count(&self) -> usize {
        self.server.connection_count()
    }

    /// The plain WebSocket server under the lobby (connections, compression, memory).
    #[must_use]
    pub fn websocket(&self) -> &WebSocketServer {
        &self.server
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> LobbyStats {
        let ws = self.server.stats();
        LobbyStats {
            accepted: ws.accepted,
            refused_at_capacity: ws.refused_at_capacity,
            accept_errors: ws.accept_errors,
            handshake_failures: ws.handshake_failures,
            opened: ws.opened,
            tls_failures: ws.tls_failures,
            io_errors: ws.io_errors,
            held_senders: self.held.len() as u64,
            ..self.stats
        }
    }

    /// Most tokens this lobby may use from its first: one per listener, then one per connection.
    #[must_use]
    pub fn token_count(&self) -> usize {
        self.server.token_count()
    }

    /// The tokens in use once registered.
    #[must_use]
    pub fn token_range(&self) -> Option<Range<usize>> {
        self.server.token_range()
    }

    /// Registers the listeners; connections use the tokens after them.
    ///
    /// # Errors
    /// The registry refused a listener, or the lobby is already registered.
    pub fn register(&mut self, registry: &Registry, first: Token) -> io::Result<()> {
        self.server.register(registry, first)
    }

    /// Handles one readiness event; returns `false` if its token is not this lobby's.
    pub fn handle_event(&mut self, registry: &Registry, event: &Event) -> bool {
        if !self.server.handle_event(registry, event) {
            return false;
        }
        self.drain(registry);
        true
    }

    /// How long the loop may sleep before [`handle_timeout`](Self::handle_timeout) is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        let core = self.core.poll_timeout().map(|at| self.server.clock().until(at));
        let stall = self.slow_peer_timeout.and_then(|timeout| {
            let first = self.backlogs.values().filter_map(|b| b.stalled_since).min()?;
            Some(self.server.clock().until(first + timeout))
        });
        let released = (!self.released.is_empty()).then_some(Duration::ZERO);
        shortest(shortest(core, self.server.poll_timeout()), shortest(stall, released))
    }

    /// Fires due timers (the lobby's join and seal deadlines, each connection's handshake,
    /// close and heartbeat timers), reads connections left over by the read budget, retries a
    /// paused accept.
    pub fn handle_timeout(&mut self, registry: &Registry) {
        let now = self.server.now();
        self.core.handle_timeout(now);
        self.server.handle_timeout(registry);
        if let Some(timeout) = self.slow_peer_timeout {
            let stalled: Vec<ConnectionId> = self
                .backlogs
                .iter()
                .filter(|(_, b)| b.stalled_since.is_some_and(|t| now >= t + timeout))
                .map(|(id, _)| *id)
                .collect();
            for id in stalled {
                self.cut_off(id, now);
            }
        }
        self.drain(registry);
    }

    /// Hands what arrived to the lobby core and writes what it answered;
    /// [`handle_event`](Self::handle_event) and [`handle_timeout`](Self::handle_timeout) do it
    /// already.
    pub fn flush(&mut self, registry: &Registry) {
        self.drain(registry);
    }

    /// Stops listening and closes every connection with 1001 (going away); keep driving the
    /// loop until [`is_closed`](Self::is_closed).
    pub fn close(&mut self, registry: &Registry) {
        // Going away is no lobby event: nobody is told their host left.
        self.known.clear();
        self.backlogs.clear();
        self.held.clear();
        self.released.clear();
        self.server.close(registry);
        self.drain(registry);
    }

    /// Whether [`close`](Self::close) was called and every connection is gone.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.server.is_closed()
    }

    /// Runs the lobby on its own `mio::Poll` until `stop` is raised or `limit` passes; then
    /// closes every connection with 1001 and waits, at most the close timeout plus a second,
    /// until they are gone.
    ///
    /// `app` is called after every wake-up (for status output); it returns how soon it wants
    /// to be called again.
    ///
    /// # Errors
    /// Creating the poll or registering the lobby failed (it must not be registered already).
    pub fn run<F>(&mut self, stop: &Stop, limit: Option<Duration>, mut app: F) -> io::Result<RunEnd>
    where
        F: FnMut(&mut Self) -> Option<Duration>,
    {
        run(self, stop, limit, &mut app)
    }

    /// Hands the connections' events and messages to the lobby core and carries out what it
    /// asks for, until neither has anything more.
    fn drain(&mut self, registry: &Registry) {
        // Each round serves connections the previous one wrote to; the core's outputs are
        // finite (each round only answers what those connections did), so this ends.
        for _ in 0..MAX_ROUNDS {
            self.flush_backlogs();
            for id in core::mem::take(&mut self.released) {
                self.read_messages(id);
            }
            self.hand_over();
            if !self.carry_out(None) {
                break;
            }
            self.server.flush(registry);
        }
        self.server.flush(registry);
    }

    /// Hands the server's events and messages to the lobby core.
    fn hand_over(&mut self) {
        let now = self.server.now();
        while let Some(event) = self.server.poll_event() {
            match event {
                WebSocketEvent::Opened(id) => {
                    self.known.insert(id);
                    self.core.connect(now, id.get());
                }
                WebSocketEvent::Messages(id) => self.read_messages(id),
                WebSocketEvent::Closed(id, _) | WebSocketEvent::Released(id) if self.known.remove(&id) => {
                    self.core.disconnect(id.get());
                    self.forget(id);
                }
                WebSocketEvent::Released(id) => self.forget(id),
                _ => {}
            }
        }
    }

    /// Hands `id`'s messages to the lobby core one by one, carrying out what each makes the
    /// core ask for before the next; stops while `id` is held.
    fn read_messages(&mut self, id: ConnectionId) {
        let now = self.server.now();
        while let Some(message) = self.server.message(id) {
            if self.held.contains(&id) && self.known.contains(&id) {
                return;
            }
            if self.known.contains(&id) {
                match message.kind {
                    MessageKind::Text => {
                        self.stats.messages_in += 1;
                        // The connection checked the text is UTF-8.
                        if let Ok(text) = core::str::from_utf8(message.data) {
                            self.core.message(now, id.get(), text);
                        }
                    }
                    MessageKind::Binary => {
                        self.stats.binary_in += 1;
                        self.core.binary(id.get());
                    }
                }
            }
            self.server.pop_message(id);
            self.carry_out(Some(id));
        }
    }

    /// Carries out what the lobby core asked for; returns whether it asked anything. `cause`
    /// is the connection whose message the core just handled: if a message for another
    /// connection has to wait for room, `cause` is held until it went out.
    fn carry_out(&mut self, cause: Option<ConnectionId>) -> bool {
        let now = self.server.now();
        let mut any = false;
        while let Some(output) = self.core.poll_output() {
            any = true;
            match output {
                LobbyOutput::Send { conn, text } => {
                    let id = ConnectionId::from_raw(conn);
                    let Some(ws) = self.server.connection_mut(id) else { continue };
                    // Dropping signalling would leave peers' connections hanging: a message
                    // that does not fit waits, in order, and whoever caused it waits too.
                    let waiting = self.backlogs.get(&id).is_some_and(|b| !b.texts.is_empty());
                    if !waiting {
                        match ws.send_text(&text) {
                            Ok(()) => {
                                self.stats.messages_out += 1;
                                continue;
                            }
                            Err(SendError::Full { .. }) if self.known.contains(&id) => {}
                            Err(_) => {
                                self.stats.send_failures += 1;
                                continue;
                            }
                        }
                    }
                    let buffered = ws.buffered_amount();
                    let backlog = self.backlogs.entry(id).or_default();
                    backlog.texts.push_back(text);
                    backlog.stalled_since.get_or_insert(now);
                    backlog.last_buffered = buffered;
                    if let Some(sender) = cause.filter(|c| *c != id) {
                        self.stats.sender_waits += 1;
                        self.held.insert(sender);
                        if !backlog.waiters.contains(&sender) {
                            backlog.waiters.push(sender);
                        }
                    }
                }
                LobbyOutput::Close { conn, code, reason } => {
                    let id = ConnectionId::from_raw(conn);
                    let Some(ws) = self.server.connection_mut(id) else { continue };
                    self.stats.closed_by_lobby += 1;
                    // The core already forgot it.
                    self.known.remove(&id);
                    if ws.state() == ws::State::Open && ws.close(now, CloseCode(code), reason).is_err() {
                        ws.abort();
                    }
                }
            }
        }
        any
    }
}

impl Lobby {
    /// Moves waiting messages into their connections' queues as room allows; a connection that
    /// wrote since the last look restarts its slow-peer clock.
    fn flush_backlogs(&mut self) {
        let now = self.server.now();
        let ids: Vec<ConnectionId> = self.backlogs.keys().copied().collect();
        for id in ids {
            let Some(ws) = self.server.connection_mut(id) else {
                self.forget(id);
                continue;
            };
            let Some(backlog) = self.backlogs.get_mut(&id) else { continue };
            if ws.buffered_amount() < backlog.last_buffered {
                backlog.stalled_since = Some(now);
            }
            while let Some(text) = backlog.texts.front() {
                match ws.send_text(text) {
                    Ok(()) => {
                        self.stats.messages_out += 1;
                        backlog.texts.pop_front();
                    }
                    Err(SendError::Full { .. }) => break,
                    Err(_) => {
                        self.stats.send_failures += 1;
                        backlog.texts.pop_front();
                    }
                }
            }
            backlog.last_buffered = ws.buffered_amount();
            if backlog.texts.is_empty() {
                self.forget(id);
            }
        }
    }

    /// `id`'s backlog is gone (sent, or `id` left): the connections it held are read again
    /// unless another backlog still holds them.
    fn forget(&mut self, id: ConnectionId) {
        self.held.remove(&id);
        let Some(backlog) = self.backlogs.remove(&id) else { return };
        for waiter in backlog.waiters {
            let still = self.backlogs.values().any(|b| b.waiters.contains(&waiter));
            if !still && self.held.remove(&waiter) {
                self.released.push(waiter);
            }
        }
    }

    /// A connection whose backlog waited while it wrote nothing for the slow-peer timeout: cut
    /// off (1008), its backlog dropped, its waiters go on, and its lobby hears that it left.
    fn cut_off(&mut self, id: ConnectionId, now: multipeer::Instant) {
        self.stats.slow_consumers += 1;
        self.forget(id);
        if self.known.remove(&id) {
            self.core.disconnect(id.get());
        }
        if let Some(ws) = self.server.connection_mut(id) {
            if ws.close(now, CloseCode::POLICY_VIOLATION, SLOW_PEER_REASON).is_err() {
                ws.abort();
            }
        }
    }
}

drive_by_inherent_methods!(Lobby, |s| s.server.options().ws.close_timeout);
