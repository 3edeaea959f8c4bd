//! A lobby server for the WebRTC mesh on mio: the core's sans-IO
//! [`LobbyServer`](multipeer::signaling::LobbyServer) (Godot's `webrtc_signaling` demo
//! protocol) over plain or TLS WebSocket connections.
//!
//! Each accepted TCP connection carries one server-side [`ws::Connection`]; once its opening
//! handshake completes the lobby core is told, text messages are handed to it, binary ones
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
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;

use chacha20::ChaCha12Rng;
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use multipeer::VecStorage;
use multipeer::signaling::{LobbyConfig, LobbyOutput, LobbyServer};
use multipeer::ws::{self, CloseCode, MessageKind, SendError};

use crate::clock::{Clock, shortest};
use crate::error::{BindError, TransportError};
use crate::listen::{ListenAddr, bind_all};
use crate::run::{RunEnd, Stop};
#[cfg(feature = "tls")]
use crate::tls::TlsOptions;
use crate::transport::{Machine, ReadEnd, Transport};
use crate::{READ_BUDGET, ReadBuffer, os_rng};

/// The core lobby server this adapter drives.
pub type CoreLobby = LobbyServer<ChaCha12Rng>;

type Socket = ws::Connection<VecStorage>;

/// Connections accepted beyond [`LobbyConfig::max_peers`] so that the core can tell the extra
/// ones "Too many peers connected" (close 4000, as the demo does) instead of a silent TCP close.
const OVER_CAPACITY_HEADROOM: usize = 64;
/// How long accepting pauses after an `accept` error such as running out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Rounds of reading, processing and writing one connection may take in one pass (each
/// round is bounded by the read budget), so one connection cannot hold the loop.
const MAX_ROUNDS: usize = 8;
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

struct Slot {
    key: u64,
    ws: Socket,
    transport: Transport,
    /// The lobby core knows this connection (it opened and was not forgotten yet).
    known: bool,
    /// Messages for it that did not fit its queue yet, oldest first.
    backlog: VecDeque<String>,
    /// Connections (keys) not read until the backlog has gone out.
    waiters: Vec<u64>,
    /// A backlog waits and nothing was written since then.
    stalled_since: Option<multipeer::Instant>,
    /// Not read while a message it caused waits for room somewhere.
    held: bool,
}

/// One WebSocket connection seen as a transport [`Machine`].
struct Ws<'a> {
    ws: &'a mut Socket,
    now: multipeer::Instant,
}

impl Machine for Ws<'_> {
    fn input(&mut self, bytes: &[u8]) -> usize {
        self.ws.handle_input(self.now, bytes)
    }

    fn eof(&mut self) {
        self.ws.handle_eof(self.now);
    }

    fn output(&self) -> Option<&[u8]> {
        self.ws.poll_transmit()
    }

    fn consume(&mut self, n: usize) {
        self.ws.consume_transmit(n);
    }
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
    ws_config: ws::Config,
    slow_peer_timeout: Option<Duration>,
    /// Connections the core's outputs wrote to, to be serviced.
    touched: Vec<usize>,
    clock: Clock,
    listeners: Vec<Option<TcpListener>>,
    local_addrs: Vec<SocketAddr>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_key: HashMap<u64, usize>,
    next_key: u64,
    max_connections: usize,
    first_token: Option<usize>,
    scratch: ReadBuffer,
    #[cfg(feature = "tls")]
    tls: Option<TlsOptions>,
    /// Connections whose read budget ran out with data possibly left.
    read_again: Vec<usize>,
    accept_paused_until: Option<std::time::Instant>,
    closing: bool,
    stats: LobbyStats,
}

impl Lobby {
    /// Listens on `addrs`, plain `ws://`.
    ///
    /// # Errors
    /// [`BindError`]: an address in use or unavailable, no OS randomness.
    pub fn bind(addrs: &[ListenAddr], options: LobbyOptions) -> Result<Self, BindError> {
        let rng = os_rng().map_err(BindError::Rng)?;
        let listeners = bind_all(addrs)?;
        let local_addrs = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
        Ok(Self {
            core: LobbyServer::new(options.lobby, rng),
            slow_peer_timeout: options.slow_peer_timeout,
            touched: Vec::new(),
            ws_config: ws::Config {
                // One announcement per member, at once, to a joiner.
                max_outbound_messages: options
                    .ws
                    .max_outbound_messages
                    .max(options.lobby.max_peers.saturating_add(8)),
                ..options.ws
            },
            clock: Clock::new(),
            listeners: listeners.into_iter().map(Some).collect(),
            local_addrs,
            slots: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            next_key: 0,
            max_connections: options.lobby.max_peers.saturating_add(OVER_CAPACITY_HEADROOM),
            first_token: None,
            scratch: ReadBuffer::new(),
            #[cfg(feature = "tls")]
            tls: None,
            read_again: Vec::new(),
            accept_paused_until: None,
            closing: false,
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
        lobby.tls = Some(tls);
        Ok(lobby)
    }

    /// Whether connections are wrapped in TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The addresses actually listened on.
    #[must_use]
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The lobby core (connections and lobbies now).
    #[must_use]
    pub fn core(&self) -> &CoreLobby {
        &self.core
    }

    /// TCP connections held now, handshaking, open or closing.
    #[must_use]
    pub fn connection_count(&self) -> usize {
        self.by_key.len()
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> LobbyStats {
        self.stats
    }

    /// Most tokens this lobby may use from its first: one per listener, then one per connection.
    #[must_use]
    pub fn token_count(&self) -> usize {
        self.listeners.len() + self.max_connections
    }

    /// The tokens in use once registered.
    #[must_use]
    pub fn token_range(&self) -> Option<Range<usize>> {
        self.first_token.map(|first| first..first + self.token_count())
    }

    /// Registers the listeners; connections use the tokens after them.
    ///
    /// # Errors
    /// The registry refused a listener, or the lobby is already registered.
    pub fn register(&mut self, registry: &Registry, first: Token) -> io::Result<()> {
        if self.first_token.is_some() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "lobby already registered"));
        }
        if first.0.checked_add(self.token_count()).is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "token range overflows"));
        }
        for (i, listener) in self.listeners.iter_mut().enumerate() {
            if let Some(listener) = listener {
                registry.register(listener, Token(first.0 + i), Interest::READABLE)?;
            }
        }
        self.first_token = Some(first.0);
        Ok(())
    }

    /// Handles one readiness event; returns `false` if its token is not this lobby's.
    pub fn handle_event(&mut self, registry: &Registry, event: &Event) -> bool {
        let Some(offset) =
            self.token_range().filter(|r| r.contains(&event.token().0)).map(|r| event.token().0 - r.start)
        else {
            return false;
        };
        if offset < self.listeners.len() {
            self.accept(registry, offset);
        } else {
            let index = offset - self.listeners.len();
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            self.service(registry, index, readable);
        }
        self.drain_core(registry);
        true
    }

    /// How long the loop may sleep before [`handle_timeout`](Self::handle_timeout) is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_again.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut at = self.core.poll_timeout();
        for slot in self.slots.iter().flatten() {
            at = multipeer_earliest(at, slot.ws.poll_timeout());
            let stall = self.slow_peer_timeout.and_then(|t| Some(slot.stalled_since? + t));
            at = multipeer_earliest(at, stall);
        }
        let core = at.map(|at| self.clock.until(at));
        let accept =
            self.accept_paused_until.map(|at| at.saturating_duration_since(std::time::Instant::now()));
        shortest(core, accept)
    }

    /// Fires due timers (the lobby's join and seal deadlines, each connection's handshake,
    /// close and heartbeat timers), reads connections left over by the read budget, retries a
    /// paused accept.
    pub fn handle_timeout(&mut self, registry: &Registry) {
        let now = self.clock.now();
        self.core.handle_timeout(now);
        self.route_outputs(None, now);
        let mut due = Vec::new();
        let mut stalled = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let Some(slot) = slot {
                if slot.ws.poll_timeout().is_some_and(|t| t <= now) {
                    slot.ws.handle_timeout(now);
                    due.push(index);
                }
                let stall = self.slow_peer_timeout.and_then(|t| Some(slot.stalled_since? + t));
                if stall.is_some_and(|t| t <= now) {
                    stalled.push(index);
                }
            }
        }
        for index in stalled {
            self.cut_off(index, now);
            due.push(index);
        }
        for index in due {
            self.service(registry, index, false);
        }
        for index in core::mem::take(&mut self.read_again) {
            self.service(registry, index, true);
        }
        if self.accept_paused_until.is_some_and(|at| at <= std::time::Instant::now()) {
            self.accept_paused_until = None;
            for i in 0..self.listeners.len() {
                self.accept(registry, i);
            }
        }
        self.drain_core(registry);
    }

    /// Stops listening and closes every connection with 1001 (going away); keep driving the
    /// loop until [`is_closed`](Self::is_closed).
    pub fn close(&mut self, registry: &Registry) {
        self.closing = true;
        for listener in &mut self.listeners {
            if let Some(mut l) = listener.take() {
                let _ = registry.deregister(&mut l);
            }
        }
        let now = self.clock.now();
        let mut all = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let Some(slot) = slot {
                // Going away is no lobby event: nobody is told their host left.
                slot.known = false;
                match slot.ws.state() {
                    ws::State::Open => {
                        if slot.ws.close(now, CloseCode::GOING_AWAY, "").is_err() {
                            slot.ws.abort();
                        }
                    }
                    ws::State::Connecting => slot.ws.abort(),
                    ws::State::Closing | ws::State::Closed => {}
                }
                all.push(index);
            }
        }
        for index in all {
            self.service(registry, index, false);
        }
    }

    /// Whether [`close`](Self::close) was called and every connection is gone.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closing && self.by_key.is_empty()
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
        const WAKER: Token = Token(0);
        let mut poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        stop.watch(waker.clone());
        let result = self.run_on(&mut poll, stop, limit, &mut app, Token(WAKER.0 + 1));
        stop.unwatch(&waker);
        result
    }

    fn run_on(
        &mut self,
        poll: &mut Poll,
        stop: &Stop,
        limit: Option<Duration>,
        app: &mut dyn FnMut(&mut Self) -> Option<Duration>,
        first: Token,
    ) -> io::Result<RunEnd> {
        self.register(poll.registry(), first)?;
        let deadline = limit.map(|l| std::time::Instant::now() + l);
        let mut events = Events::with_capacity(1024);
        let mut app_wants = app(self);
        let end = loop {
            if stop.is_raised() {
                break RunEnd::Stopped;
            }
            let now = std::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break RunEnd::TimeLimit;
            }
            let sleep = shortest(shortest(self.poll_timeout(), app_wants), deadline.map(|d| d - now));
            self.turn(poll, &mut events, sleep)?;
            app_wants = app(self);
        };
        self.close(poll.registry());
        let give_up = std::time::Instant::now() + self.ws_config.close_timeout + Duration::from_secs(1);
        while !self.is_closed() {
            let now = std::time::Instant::now();
            if now >= give_up {
                break;
            }
            let sleep = shortest(self.poll_timeout(), Some(give_up - now));
            self.turn(poll, &mut events, sleep)?;
            app(self);
        }
        Ok(end)
    }

    fn turn(&mut self, poll: &mut Poll, events: &mut Events, sleep: Option<Duration>) -> io::Result<()> {
        match poll.poll(events, sleep) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            self.handle_event(poll.registry(), event);
        }
        self.handle_timeout(poll.registry());
        Ok(())
    }

    fn token(&self, index: usize) -> Token {
        Token(self.first_token.unwrap_or(0) + self.listeners.len() + index)
    }

    fn accept(&mut self, registry: &Registry, listener: usize) {
        loop {
            let Some(Some(l)) = self.listeners.get(listener) else { return };
            match l.accept() {
                Ok((stream, _)) => self.take(registry, stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => {}
                Err(_) => {
                    self.stats.accept_errors += 1;
                    self.accept_paused_until = Some(std::time::Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    fn take(&mut self, registry: &Registry, stream: TcpStream) {
        if self.by_key.len() >= self.max_connections {
            self.stats.refused_at_capacity += 1;
            return;
        }
        self.stats.accepted += 1;
        let _ = stream.set_nodelay(true);
        let now = self.clock.now();
        let mut transport = Transport::new(stream, false);
        let mut ws = Socket::server(now, self.ws_config);
        let mut failed = None;
        #[cfg(feature = "tls")]
        if let Some(session) = self.tls.as_ref().and_then(TlsOptions::new_server_session) {
            match session {
                Ok(session) => transport.set_tls(session),
                Err(e) => failed = Some(TransportError::Tls(e)),
            }
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        if let Err(e) = transport.update_interest(registry, self.token(index)) {
            failed = failed.or(Some(TransportError::Io(e)));
        }
        if let Some(error) = failed {
            self.count_error(&error);
            transport.kill(&mut Ws { ws: &mut ws, now });
        }
        self.next_key += 1;
        let key = self.next_key;
        self.slots[index] = Some(Slot {
            key,
            ws,
            transport,
            known: false,
            backlog: VecDeque::new(),
            waiters: Vec::new(),
            stalled_since: None,
            held: false,
        });
        self.by_key.insert(key, index);
        self.service(registry, index, false);
    }

    /// Reads (if `readable`), hands events and messages to the lobby core, writes, and
    /// releases the connection once it is finished.
    fn service(&mut self, registry: &Registry, index: usize, mut readable: bool) {
        for _ in 0..MAX_ROUNDS {
            let now = self.clock.now();
            let token = self.token(index);
            let Some(Some(slot)) = self.slots.get_mut(index) else { return };
            let mut machine = Ws { ws: &mut slot.ws, now };
            let mut again = false;
            if readable || slot.transport.is_paused() {
                let end = if slot.transport.is_paused() {
                    slot.transport.resume(&mut machine, self.scratch.as_mut(), READ_BUDGET)
                } else {
                    slot.transport.read(&mut machine, self.scratch.as_mut(), READ_BUDGET)
                };
                match end {
                    ReadEnd::Budget => again = true,
                    ReadEnd::Ended(Some(error)) => count_error(&mut self.stats, &error),
                    ReadEnd::Drained | ReadEnd::Paused | ReadEnd::Ended(None) => {}
                }
            }
            readable = false;
            let took = self.hand_over(index, now);
            let Some(Some(slot)) = self.slots.get_mut(index) else { return };
            let queued = slot.ws.buffered_amount();
            let result = slot.transport.write(&mut Ws { ws: &mut slot.ws, now });
            if let Err(error) = result {
                count_error(&mut self.stats, &error);
            }
            let wrote = slot.ws.buffered_amount() < queued;
            if wrote || !slot.backlog.is_empty() {
                self.flush_backlog(index, now, wrote);
            }
            let Some(Some(slot)) = self.slots.get_mut(index) else { return };
            if slot.transport.update_interest(registry, token).is_err() {
                slot.transport.kill(&mut Ws { ws: &mut slot.ws, now });
            }
            let finished =
                (slot.ws.is_finished() && slot.ws.poll_transmit().is_none()) || slot.transport.is_dead();
            if finished {
                self.release(registry, index);
                return;
            }
            if again {
                if !took && !slot.transport.is_paused() {
                    self.read_again.push(index);
                    return;
                }
                readable = true;
                continue;
            }
            if !(took && slot.transport.is_paused()) {
                return;
            }
        }
    }

    fn release(&mut self, registry: &Registry, index: usize) {
        let Some(mut slot) = self.slots.get_mut(index).and_then(Option::take) else { return };
        self.by_key.remove(&slot.key);
        self.free_waiters(&mut slot);
        if slot.held {
            self.stats.held_senders = self.stats.held_senders.saturating_sub(1);
        }
        if slot.known {
            self.core.disconnect(slot.key);
        }
        slot.transport.close(registry);
        self.free.push(index);
    }

    /// Services the connections the core's outputs wrote to, until none is left.
    fn drain_core(&mut self, registry: &Registry) {
        // Each round serves connections the previous one wrote to; the core's outputs are
        // finite (each round only answers what those connections did), so this ends.
        for _ in 0..MAX_ROUNDS * 4 {
            self.route_outputs(None, self.clock.now());
            let mut touched = core::mem::take(&mut self.touched);
            if touched.is_empty() {
                return;
            }
            touched.sort_unstable();
            touched.dedup();
            for index in touched {
                self.service(registry, index, false);
            }
        }
    }

    /// Carries out what the lobby core asked for. `cause` is the connection whose message the
    /// core just handled: if an output for another connection has to wait for room, `cause`
    /// waits too (it is not read until that backlog has gone out).
    fn route_outputs(&mut self, cause: Option<usize>, now: multipeer::Instant) {
        while let Some(output) = self.core.poll_output() {
            match output {
                LobbyOutput::Send { conn, text } => {
                    let Some(&index) = self.by_key.get(&conn) else { continue };
                    let Some(slot) = self.slots[index].as_mut() else { continue };
                    if !slot.backlog.is_empty() {
                        slot.backlog.push_back(text);
                    } else {
                        match slot.ws.send_text(&text) {
                            Ok(()) => self.stats.messages_out += 1,
                            Err(SendError::Full { .. }) if slot.known => slot.backlog.push_back(text),
                            Err(_) => self.stats.send_failures += 1,
                        }
                    }
                    if !slot.backlog.is_empty() {
                        slot.stalled_since.get_or_insert(now);
                        if let Some(sender) = cause.filter(|&c| c != index) {
                            self.hold(sender, index);
                        }
                    }
                    self.touched.push(index);
                }
                LobbyOutput::Close { conn, code, reason } => {
                    let Some(&index) = self.by_key.get(&conn) else { continue };
                    let Some(slot) = self.slots[index].as_mut() else { continue };
                    self.stats.closed_by_lobby += 1;
                    // The core already forgot it.
                    slot.known = false;
                    if slot.ws.state() == ws::State::Open
                        && slot.ws.close(now, CloseCode(code), reason).is_err()
                    {
                        slot.ws.abort();
                    }
                    self.touched.push(index);
                }
            }
        }
    }

    /// `sender` is not read until the backlog of `receiver` has gone out.
    fn hold(&mut self, sender: usize, receiver: usize) {
        let Some(key) = self.slots[sender].as_mut().map(|s| {
            if !s.held {
                s.held = true;
                self.stats.held_senders += 1;
            }
            s.key
        }) else {
            return;
        };
        self.stats.sender_waits += 1;
        if let Some(r) = self.slots[receiver].as_mut() {
            if !r.waiters.contains(&key) {
                r.waiters.push(key);
            }
        }
    }

    /// Moves backlog into the connection's queue as room allows; `progress`: it wrote bytes.
    fn flush_backlog(&mut self, index: usize, now: multipeer::Instant, progress: bool) {
        let Some(Some(slot)) = self.slots.get_mut(index) else { return };
        if progress {
            slot.stalled_since = None;
        }
        while let Some(text) = slot.backlog.front() {
            match slot.ws.send_text(text) {
                Ok(()) => {
                    self.stats.messages_out += 1;
                    slot.backlog.pop_front();
                }
                Err(SendError::Full { .. }) => break,
                Err(_) => {
                    self.stats.send_failures += 1;
                    slot.backlog.pop_front();
                }
            }
        }
        if slot.backlog.is_empty() {
            slot.stalled_since = None;
            let mut slot_waiters = core::mem::take(&mut slot.waiters);
            self.release_waiters(&mut slot_waiters);
        } else {
            slot.stalled_since.get_or_insert(now);
        }
    }

    /// The connections waiting on a backlog go on: they are read again.
    fn release_waiters(&mut self, waiters: &mut Vec<u64>) {
        for key in waiters.drain(..) {
            let Some(&index) = self.by_key.get(&key) else { continue };
            // It may also wait on another backlog; it goes on when none holds it.
            let still = self.slots.iter().flatten().any(|s| s.waiters.contains(&key));
            let Some(slot) = self.slots[index].as_mut() else { continue };
            if slot.held && !still {
                slot.held = false;
                self.stats.held_senders = self.stats.held_senders.saturating_sub(1);
                self.read_again.push(index);
            }
        }
    }

    fn free_waiters(&mut self, slot: &mut Slot) {
        slot.backlog.clear();
        let mut waiters = core::mem::take(&mut slot.waiters);
        self.release_waiters(&mut waiters);
    }

    /// A connection whose backlog waited while it wrote nothing for the slow-peer timeout: cut
    /// off (1008), its backlog dropped, its waiters go on, and its lobby hears that it left.
    fn cut_off(&mut self, index: usize, now: multipeer::Instant) {
        let Some(mut slot) = self.slots.get_mut(index).and_then(Option::take) else { return };
        self.stats.slow_consumers += 1;
        slot.stalled_since = None;
        self.free_waiters(&mut slot);
        if slot.known {
            slot.known = false;
            self.core.disconnect(slot.key);
        }
        if slot.ws.close(now, CloseCode::POLICY_VIOLATION, SLOW_PEER_REASON).is_err() {
            slot.ws.abort();
        }
        self.slots[index] = Some(slot);
    }

    /// Hands a connection's events and messages to the lobby core, carrying out what each
    /// message makes the core ask for before the next; returns whether any message was taken
    /// (which frees room for held input). A held connection's messages wait.
    fn hand_over(&mut self, index: usize, now: multipeer::Instant) -> bool {
        let closing = self.closing;
        while let Some(Some(slot)) = self.slots.get_mut(index) {
            let Some(event) = slot.ws.poll_event() else { break };
            match event {
                ws::Event::Request => {
                    let _ = if closing {
                        slot.ws.reject(503, "shutting down")
                    } else {
                        slot.ws.accept(now, None, &[])
                    };
                }
                ws::Event::Open => {
                    self.stats.opened += 1;
                    slot.known = true;
                    self.core.connect(now, slot.key);
                }
                ws::Event::HandshakeFailed(_) => self.stats.handshake_failures += 1,
                ws::Event::Closed(_) if slot.known => {
                    slot.known = false;
                    self.core.disconnect(slot.key);
                }
                _ => {}
            }
        }
        let mut took = false;
        while let Some(Some(slot)) = self.slots.get_mut(index) {
            if slot.held && slot.known {
                break;
            }
            let Some(message) = slot.ws.peek_message() else { break };
            took = true;
            if slot.known {
                match message.kind {
                    MessageKind::Text => {
                        self.stats.messages_in += 1;
                        // The connection checked the text is UTF-8.
                        if let Ok(text) = core::str::from_utf8(message.data) {
                            self.core.message(now, slot.key, text);
                        }
                    }
                    MessageKind::Binary => {
                        self.stats.binary_in += 1;
                        self.core.binary(slot.key);
                    }
                }
            }
            slot.ws.pop_message();
            self.route_outputs(Some(index), now);
        }
        took
    }

    fn count_error(&mut self, error: &TransportError) {
        count_error(&mut self.stats, error);
    }
}

fn count_error(stats: &mut LobbyStats, error: &TransportError) {
    match error {
        #[cfg(feature = "tls")]
        TransportError::Tls(_) => stats.tls_failures += 1,
        _ => stats.io_errors += 1,
    }
}

fn multipeer_earliest(
    a: Option<multipeer::Instant>,
    b: Option<multipeer::Instant>,
) -> Option<multipeer::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
