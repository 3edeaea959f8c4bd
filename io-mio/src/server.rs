//! A `peer::Server` on mio: listeners, accepted connections, readiness, timers.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::VecDeque;
use std::io;

use chacha20::ChaCha12Rng;
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Registry, Token};
use multipeer::peer::{self, AcceptError, ConnId, MultiplayerPeer as _, ServerConfig};

use crate::accept::{Accept, Listeners, Ready, accepted_transport, token_range_methods};
use crate::clock::{Clock, shortest};
use crate::error::{BindError, TransportError, TransportFailure};
use crate::listen::ListenAddr;
use crate::run::drive_by_inherent_methods;
#[cfg(feature = "tls")]
use crate::tls::TlsOptions;
use crate::transport::{Machine, ReadEnd, Transport};
use crate::{READ_BUDGET, ReadBuffer, os_rng};

/// The core server type this adapter drives.
pub type CoreServer = peer::Server<ChaCha12Rng>;

/// Transport transitions not visible in [`peer::ServerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// TCP connections accepted and handed to the core.
    pub accepted: u64,
    /// TCP connections closed at once because `max_peers` connections existed.
    pub refused_at_capacity: u64,
    /// TCP connections closed at once because `max_connections_per_ip` connections from their
    /// address existed.
    pub refused_per_address: u64,
    /// `accept` failures other than "would block" (for example out of file descriptors).
    pub accept_errors: u64,
    /// TLS sessions that failed (bad certificate, plain bytes on a TLS port...).
    pub tls_failures: u64,
    /// Socket read or write errors.
    pub io_errors: u64,
    /// Failures not queued for [`Server::poll_transport_failure`] because the queue was full.
    pub unreported_failures: u64,
}

/// Most transport failures kept for [`Server::poll_transport_failure`].
const MAX_QUEUED_FAILURES: usize = 1024;

struct Slot {
    id: ConnId,
    transport: Transport,
}

/// One connection of the core server, seen as a [`Machine`].
struct Conn<'a> {
    core: &'a mut CoreServer,
    id: ConnId,
    now: multipeer::Instant,
}

impl Machine for Conn<'_> {
    fn input(&mut self, bytes: &[u8]) -> usize {
        // A released connection takes (and drops) everything.
        self.core.handle_input(self.now, self.id, bytes).unwrap_or(bytes.len())
    }

    fn eof(&mut self) {
        let _ = self.core.handle_eof(self.now, self.id);
    }

    fn output(&self) -> Option<&[u8]> {
        self.core.transmit(self.id)
    }

    fn consume(&mut self, n: usize) {
        let _ = self.core.consume_transmit(self.id, n);
    }
}

/// A multiplayer server on mio (Godot's `WebSocketMultiplayerPeer.create_server`).
///
/// Use it in your own event loop: [`register`](Self::register) it under a token range, pass it
/// every readiness event of that range ([`handle_event`](Self::handle_event)), call
/// [`flush`](Self::flush) after the events of one poll and after application commands, and
/// sleep at most [`poll_timeout`](Self::poll_timeout), then call
/// [`handle_timeout`](Self::handle_timeout). The application side is [`peer`](Self::peer_mut),
/// Godot's `MultiplayerPeer`. Or call [`run`](Self::run), which is that loop.
pub struct Server {
    pub(crate) core: CoreServer,
    pub(crate) clock: Clock,
    listeners: Listeners,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_conn: SlotIndex,
    scratch: ReadBuffer,
    #[cfg(feature = "tls")]
    tls: Option<TlsOptions>,
    /// Connections whose read budget ran out with data possibly left.
    read_again: Vec<usize>,
    /// Released connections draining their peer's input (see `Transport::start_linger`),
    /// with the time they are closed at the latest; in release order, so by deadline.
    lingering: VecDeque<(std::time::Instant, usize, ConnId)>,
    failures: VecDeque<TransportFailure>,
    stats: TransportStats,
    /// SceneMultiplayer on top, when set (see `set_scene_multiplayer`).
    pub(crate) scene: Option<Box<multipeer::scene::SceneMultiplayer>>,
}

impl Server {
    /// Listens on `addrs` with the given configuration, plain `ws://`.
    ///
    /// # Errors
    /// [`BindError`]: an address in use or unavailable, no OS randomness.
    pub fn bind(addrs: &[ListenAddr], config: ServerConfig) -> Result<Self, BindError> {
        let rng = os_rng().map_err(BindError::Rng)?;
        let listeners = Listeners::bind(addrs, config.max_peers)?;
        Ok(Self {
            core: peer::Server::new(config, rng),
            clock: Clock::new(),
            listeners,
            slots: Vec::new(),
            free: Vec::new(),
            by_conn: SlotIndex::default(),
            scratch: ReadBuffer::new(),
            #[cfg(feature = "tls")]
            tls: None,
            read_again: Vec::new(),
            lingering: VecDeque::new(),
            failures: VecDeque::new(),
            stats: TransportStats::default(),
            scene: None,
        })
    }

    /// Listens on `addrs` with TLS (`wss://`): Godot's `create_server` with
    /// `tls_server_options`.
    ///
    /// # Errors
    /// As [`bind`](Self::bind), and [`BindError::ClientTlsOptions`].
    #[cfg(feature = "tls")]
    pub fn bind_tls(addrs: &[ListenAddr], config: ServerConfig, tls: TlsOptions) -> Result<Self, BindError> {
        if !tls.is_server() {
            return Err(BindError::ClientTlsOptions);
        }
        let mut server = Self::bind(addrs, config)?;
        server.tls = Some(tls);
        Ok(server)
    }

    /// Godot's `create_server(port, bind_address)`: `"*"` listens on every interface.
    ///
    /// # Errors
    /// As [`bind`](Self::bind), and [`BindError::InvalidAddress`].
    pub fn create(port: u16, bind_address: &str, config: ServerConfig) -> Result<Self, BindError> {
        Self::bind(&[ListenAddr::godot(port, bind_address)?], config)
    }

    /// Whether connections are wrapped in TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    token_range_methods!();

    /// The multiplayer peer: Godot's `MultiplayerPeer` API and the server's counters.
    #[must_use]
    pub fn peer(&self) -> &CoreServer {
        &self.core
    }

    /// The multiplayer peer, for commands; call [`flush`](Self::flush) after them.
    pub fn peer_mut(&mut self) -> &mut CoreServer {
        &mut self.core
    }

    /// The current time on the clock the core is driven with (for `disconnect_peer`, `close`).
    #[must_use]
    pub fn now(&self) -> multipeer::Instant {
        self.clock.now()
    }

    /// Counters of the transport layer.
    #[must_use]
    pub fn transport_stats(&self) -> TransportStats {
        self.stats
    }

    /// The next transport failure (TLS, socket errors), oldest first.
    pub fn poll_transport_failure(&mut self) -> Option<TransportFailure> {
        self.failures.pop_front()
    }

    /// Handles one readiness event; returns `false` if its token is not this server's.
    pub fn handle_event(&mut self, registry: &Registry, event: &Event) -> bool {
        match self.listeners.route(event) {
            None => return false,
            Some(Ready::Listener(i)) => self.accept(registry, i),
            Some(Ready::Connection { index, readable, writable, read_closed }) => {
                if read_closed {
                    if let Some(Some(slot)) = self.slots.get_mut(index) {
                        slot.transport.saw_read_closed();
                    }
                }
                self.ready(registry, index, readable, writable)
            }
        }
        true
    }

    /// How long the event loop may sleep before [`handle_timeout`](Self::handle_timeout) is due
    /// (`None`: until a readiness event). Pass it to `mio::Poll::poll`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_again.is_empty() {
            return Some(Duration::ZERO);
        }
        let core = self.core.poll_timeout().map(|at| self.clock.until(at));
        let now = std::time::Instant::now();
        let linger = self.lingering.front().map(|(at, ..)| at.saturating_duration_since(now));
        let core = shortest(core, self.scene_timeout());
        shortest(shortest(core, self.listeners.pause_left()), linger)
    }

    /// Fires due timers, reads connections whose read budget ran out, retries a paused accept,
    /// and flushes.
    pub fn handle_timeout(&mut self, registry: &Registry) {
        self.core.handle_timeout(self.clock.now());
        let now = std::time::Instant::now();
        while let Some(&(at, index, id)) = self.lingering.front() {
            if at > now {
                break;
            }
            self.lingering.pop_front();
            // The slot may have been freed (the peer closed) and reused since.
            if self
                .slots
                .get(index)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.id == id && s.transport.is_lingering())
            {
                self.free_slot(registry, index);
            }
        }
        for index in core::mem::take(&mut self.read_again) {
            self.ready(registry, index, true, false);
        }
        self.retry_accept(registry);
        self.flush(registry);
    }

    /// Moves packets between the core and SceneMultiplayer (when set), writes pending output,
    /// closes released connections and resumes paused ones, until the core has nothing more
    /// to say. Call it after the events of one poll and after commands.
    pub fn flush(&mut self, registry: &Registry) {
        self.flush_up_to(registry, usize::MAX);
    }

    /// [`flush`](Self::flush), stopping after `budget` writes; returns whether it stopped
    /// there (writes may remain).
    pub(crate) fn flush_up_to(&mut self, registry: &Registry, budget: usize) -> bool {
        let mut written = 0;
        loop {
            // SceneMultiplayer (when set) takes the core's packets and events and queues its own.
            self.pump_scene();
            let mut progress = false;
            while written < budget {
                let Some(id) = self.core.poll_transmit() else { break };
                progress = true;
                let Some(&index) = self.by_conn.get(id) else { continue };
                // A blocked socket is written when its writable event comes, not before.
                if !self.slots[index].as_ref().is_some_and(|s| s.transport.is_write_blocked()) {
                    self.write(registry, index);
                    written += 1;
                }
            }
            if written >= budget {
                return true;
            }
            while let Some(id) = self.core.poll_release() {
                progress = true;
                self.release(registry, id);
            }
            while let Some(id) = self.core.poll_resume() {
                progress = true;
                if let Some(&index) = self.by_conn.get(id) {
                    self.read(registry, index, true);
                }
            }
            if !progress {
                return false;
            }
        }
    }

    /// Godot's `close()`: stops listening and closes every peer with 1001; keep driving the
    /// loop until [`peer().connection_count()`](CoreServer::connection_count) is zero.
    pub fn close(&mut self, registry: &Registry) {
        self.core.close(self.clock.now());
        self.listeners.stop(registry);
        self.flush(registry);
    }

    fn token(&self, index: usize) -> Token {
        self.listeners.token(index)
    }

    fn ready(&mut self, registry: &Registry, index: usize, readable: bool, writable: bool) {
        if readable {
            self.read(registry, index, false);
        }
        // A lingering socket's sending side is shut: nothing more is written.
        let wants_write = self
            .slots
            .get(index)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.transport.wants_write() && !s.transport.is_lingering());
        let lingering =
            self.slots.get(index).and_then(Option::as_ref).is_some_and(|s| s.transport.is_lingering());
        if (writable && !lingering) || wants_write {
            self.write(registry, index);
        }
    }

    fn read(&mut self, registry: &Registry, index: usize, resume: bool) {
        let now = self.clock.now();
        let Some(Some(slot)) = self.slots.get_mut(index) else { return };
        let mut conn = Conn { core: &mut self.core, id: slot.id, now };
        let end = if resume {
            slot.transport.resume(&mut conn, self.scratch.as_mut(), READ_BUDGET)
        } else {
            slot.transport.read(&mut conn, self.scratch.as_mut(), READ_BUDGET)
        };
        if slot.transport.is_lingering() {
            // Discarding a released connection's input: only its end matters.
            match end {
                ReadEnd::Budget => self.read_again.push(index),
                _ if slot.transport.linger_done() => self.free_slot(registry, index),
                _ => {}
            }
            return;
        }
        match end {
            ReadEnd::Budget => self.read_again.push(index),
            ReadEnd::Ended(Some(error)) => {
                let (id, addr) = (slot.id, slot.transport.stream().peer_addr().ok());
                let peer = self.core.peer_of(id);
                self.report(addr, peer, error);
            }
            ReadEnd::Drained | ReadEnd::Paused | ReadEnd::Ended(None) => {}
        }
        // TLS handshake records produced by what was read go out now.
        if self.slots[index].as_ref().is_some_and(|s| s.transport.wants_write()) {
            self.write(registry, index);
        }
    }

    fn write(&mut self, registry: &Registry, index: usize) {
        let now = self.clock.now();
        let token = self.token(index);
        let Some(Some(slot)) = self.slots.get_mut(index) else { return };
        let mut conn = Conn { core: &mut self.core, id: slot.id, now };
        let result = slot.transport.write(&mut conn);
        let interest = slot.transport.update_interest(registry, token);
        if result.is_ok() && interest.is_ok() {
            return;
        }
        // The address is for the report only: asking the kernel costs a syscall per write.
        let (id, addr) = (slot.id, slot.transport.stream().peer_addr().ok());
        if let Err(error) = result {
            let peer = self.core.peer_of(id);
            self.report(addr, peer, error);
        }
        if let Err(e) = interest {
            if let Some(Some(slot)) = self.slots.get_mut(index) {
                slot.transport.kill(&mut Conn { core: &mut self.core, id, now });
            }
            self.report(addr, None, TransportError::Io(e));
        }
    }

    /// The core is done with a connection: close its socket, or, when the peer may still be
    /// sending, shut our side down and drain its input first (up to the close timeout), so the
    /// kernel does not answer unread input with a reset that destroys our last bytes (a Close
    /// 1009 after an oversized message, an HTTP refusal) before the peer reads them.
    fn release(&mut self, registry: &Registry, id: ConnId) {
        let Some(index) = self.by_conn.remove(id) else { return };
        let Some(Some(slot)) = self.slots.get_mut(index) else { return };
        if !slot.transport.start_linger() {
            self.free_slot(registry, index);
            return;
        }
        let until = std::time::Instant::now() + self.core.config().ws.close_timeout;
        self.lingering.push_back((until, index, id));
        let token = self.token(index);
        if let Some(Some(slot)) = self.slots.get_mut(index) {
            // Readable only from now on; input that arrived already is read at once, as an
            // edge-triggered poller will not report it again.
            let _ = slot.transport.update_interest(registry, token);
        }
        self.read(registry, index, false);
    }

    /// Closes the longest-lingering connection at once, freeing its slot.
    fn evict_lingering(&mut self, registry: &Registry) {
        while let Some((_, index, id)) = self.lingering.pop_front() {
            let current = self.slots.get(index).and_then(Option::as_ref);
            if current.is_some_and(|s| s.id == id && s.transport.is_lingering()) {
                self.free_slot(registry, index);
                return;
            }
        }
    }

    /// Closes a slot's socket and makes the slot reusable.
    fn free_slot(&mut self, registry: &Registry, index: usize) {
        if let Some(slot) = self.slots.get_mut(index).and_then(Option::take) {
            slot.transport.close(registry);
            self.free.push(index);
        }
    }

    fn report(&mut self, addr: Option<SocketAddr>, peer: Option<peer::PeerId>, error: TransportError) {
        match &error {
            #[cfg(feature = "tls")]
            TransportError::Tls(_) => self.stats.tls_failures += 1,
            _ => self.stats.io_errors += 1,
        }
        self.queue_failure(TransportFailure { addr, peer, error });
    }

    fn queue_failure(&mut self, failure: TransportFailure) {
        if self.failures.len() >= MAX_QUEUED_FAILURES {
            self.stats.unreported_failures += 1;
            return;
        }
        self.failures.push_back(failure);
    }

    /// Whether the server was closed and every connection released.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.core.connection_status() == peer::ConnectionStatus::Disconnected
            && self.core.connection_count() == 0
    }
}

impl Accept for Server {
    fn listeners(&mut self) -> &mut Listeners {
        &mut self.listeners
    }

    fn take(&mut self, registry: &Registry, stream: TcpStream, addr: SocketAddr) {
        let now = self.clock.now();
        let id = match self.core.accept(now, Some(addr)) {
            Ok(id) => id,
            Err(AcceptError::AtCapacity) => {
                self.stats.refused_at_capacity += 1;
                return;
            }
            // One address over its cap: refuse this connection, keep listening for the others.
            Err(AcceptError::TooManyFromAddress) => {
                self.stats.refused_per_address += 1;
                return;
            }
            Err(_) => {
                self.listeners.stop(registry);
                return;
            }
        };
        self.stats.accepted += 1;
        let (mut transport, mut failed) = accepted_transport(
            stream,
            #[cfg(feature = "tls")]
            self.tls.as_ref(),
        );
        if self.free.is_empty() && self.slots.len() >= self.core.config().max_peers {
            // Every token is taken, some by released connections still draining: the oldest
            // of those gives its slot up (lingering is best effort; the token range is fixed).
            self.evict_lingering(registry);
        }
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let token = self.token(index);
        // Registration reports data that arrived before it (edge-triggered epoll included).
        if let Err(e) = transport.update_interest(registry, token) {
            failed = failed.or(Some(TransportError::Io(e)));
        }
        if let Some(error) = failed {
            transport.kill(&mut Conn { core: &mut self.core, id, now });
            self.report(Some(addr), None, error);
        }
        self.slots[index] = Some(Slot { id, transport });
        self.by_conn.insert(id, index);
    }

    fn accept_failed(&mut self, error: io::Error) {
        self.stats.accept_errors += 1;
        self.queue_failure(TransportFailure { addr: None, peer: None, error: TransportError::Io(error) });
    }
}

drive_by_inherent_methods!(Server, |s| s.core.config().ws.close_timeout, flush_up_to);

/// Which slot holds each core connection, looked up for every write: a vector indexed by the
/// core's dense slot index ([`ConnId::index`]), checked against the whole id, instead of a
/// hash map (its SipHash was 15 % of a relay server's instructions).
#[derive(Default)]
struct SlotIndex(Vec<Option<(ConnId, usize)>>);

impl SlotIndex {
    fn get(&self, id: ConnId) -> Option<&usize> {
        match self.0.get(id.index() as usize) {
            Some(Some((held, index))) if *held == id => Some(index),
            _ => None,
        }
    }

    fn insert(&mut self, id: ConnId, index: usize) {
        let at = id.index() as usize;
        if self.0.len() <= at {
            self.0.resize(at + 1, None);
        }
        self.0[at] = Some((id, index));
    }

    fn remove(&mut self, id: ConnId) -> Option<usize> {
        let entry = self.0.get_mut(id.index() as usize)?;
        match *entry {
            Some((held, index)) if held == id => {
                *entry = None;
                Some(index)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_state_per_connection_stays_small() {
        // The core's connection state is about 1.4 KiB; what the adapter adds per connection
        // (socket, TLS pointer, held-input buffer, flags, id) must stay a small fraction of it.
        let slot = core::mem::size_of::<Option<Slot>>();
        let index = core::mem::size_of::<(ConnId, usize)>();
        assert!(slot <= 64, "{slot} bytes per slot");
        assert!(index <= 16, "{index} bytes per index entry");
    }
}
