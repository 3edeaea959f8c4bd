//! A plain WebSocket server on mio: accepted connections, each one core [`ws::Connection`],
//! read, written and timed here; the application sees connection ids, events and messages.

use core::cmp::Reverse;
use core::net::SocketAddr;
use core::time::Duration;
use std::collections::{BinaryHeap, VecDeque};
use std::io;

use mio::Registry;
use mio::event::Event;
use mio::net::TcpStream;
use multipeer::ws::{
    self, CloseCode, CloseInfo, HandshakeError, Message, MessageKind, SendError, SharedFrame,
};

use super::{Socket, Ws};
use crate::accept::{Accept, Listeners, Ready, accepted_transport, token_range_methods};
use crate::clock::{Clock, shortest};
use crate::error::{BindError, TransportError};
use crate::listen::ListenAddr;
use crate::run::drive_by_inherent_methods;
#[cfg(feature = "tls")]
use crate::tls::TlsOptions;
use crate::transport::{ReadEnd, Transport};
use crate::{BATCH_THROUGH_MIN, READ_BUDGET, ReadBuffer, WRITE_THROUGH_MIN};

/// Settings of a [`WebSocketServer`].
#[derive(Debug, Clone)]
pub struct WebSocketOptions {
    /// Limits and timers of each connection: Godot's, with 1 MiB of outbound queue and buffer
    /// storage kept a second while a connection is busy (as `ServerConfig`'s). With the
    /// `deflate` feature, `ws.permessage_deflate` accepts the extension from clients that offer
    /// it, on at most its `max_connections` connections at once.
    pub ws: ws::Config,
    /// Most connections held at once (handshaking, open or closing); more are closed at
    /// accept. It sizes the token range.
    pub max_connections: usize,
    /// Subprotocols supported, chosen from what a client offers by Godot's rules (Godot:
    /// `supported_protocols`).
    pub protocols: Vec<String>,
}

impl Default for WebSocketOptions {
    fn default() -> Self {
        Self {
            ws: ws::Config {
                outbound_queue_size: Some(1 << 20),
                buffer_release_delay: Some(Duration::from_secs(1)),
                ..ws::Config::GODOT
            },
            max_connections: 4096,
            protocols: Vec::new(),
        }
    }
}

/// A connection of a [`WebSocketServer`]: its slot and which use of the slot it is, so an id
/// never names a later connection in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

impl ConnectionId {
    fn new(index: usize, serial: u32) -> Self {
        Self((u64::from(serial) << 32) | index as u64)
    }

    /// The id [`get`](Self::get) returned.
    pub(crate) fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    fn index(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }

    /// The id as a number, unique among the connections this server ever had (with 2³² uses
    /// of each slot).
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What happened to a connection, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebSocketEvent {
    /// The opening handshake completed: messages may flow (Godot: `peer_connected`).
    Opened(ConnectionId),
    /// Messages wait on this connection: read them with [`WebSocketServer::message`] and
    /// [`WebSocketServer::pop_message`] (or echo or forward them). They stay until popped;
    /// this event comes again once the connection's queue was emptied and refilled.
    Messages(ConnectionId),
    /// The opening handshake failed; the connection never opened.
    HandshakeFailed(ConnectionId, HandshakeError),
    /// An open connection closed (Godot: `peer_disconnected`), with the closing handshake's
    /// code, reason and initiator.
    Closed(ConnectionId, CloseInfo),
    /// The connection's socket is closed: its id is no longer valid. Every accepted
    /// connection ends with this event, whether it opened or not.
    Released(ConnectionId),
}

/// Counters of a [`WebSocketServer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebSocketStats {
    /// TCP connections accepted.
    pub accepted: u64,
    /// TCP connections closed at accept: `max_connections` existed.
    pub refused_at_capacity: u64,
    /// `accept` failures other than "would block" (for example out of file descriptors).
    pub accept_errors: u64,
    /// Opening handshakes that failed (bad request, timeout, refused while closing).
    pub handshake_failures: u64,
    /// Connections that opened.
    pub opened: u64,
    /// TLS sessions that failed.
    pub tls_failures: u64,
    /// Socket read or write errors.
    pub io_errors: u64,
}

struct Slot {
    id: ConnectionId,
    ws: Socket,
    transport: Transport,
    /// A `Messages` event was given and the queue has not been empty since.
    announced: bool,
    /// In the `dirty` list.
    dirty: bool,
    /// The deadline last put in the timer heap.
    armed: Option<multipeer::Instant>,
}

/// A plain RFC 6455 WebSocket server on mio: no Godot framing, no peer ids, any message.
///
/// It is driven like [`Server`](crate::Server): [`register`](Self::register) it under a token
/// range, pass it the readiness events of that range ([`handle_event`](Self::handle_event)),
/// call [`flush`](Self::flush) after the events of one poll and after commands, sleep at most
/// [`poll_timeout`](Self::poll_timeout) and then call [`handle_timeout`](Self::handle_timeout).
/// Or call [`run`](Self::run), which is that loop. What happened comes from
/// [`poll_event`](Self::poll_event); messages are read where they were received, borrowed.
pub struct WebSocketServer {
    options: WebSocketOptions,
    clock: Clock,
    listeners: Listeners,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    serial: u32,
    count: usize,
    scratch: ReadBuffer,
    #[cfg(feature = "tls")]
    tls: Option<TlsOptions>,
    events: VecDeque<WebSocketEvent>,
    /// Connections touched by commands since the last flush.
    dirty: Vec<usize>,
    /// Connections whose read budget ran out with data possibly left.
    read_again: Vec<usize>,
    /// Connection deadlines, earliest first; an entry is stale once its slot re-armed.
    timers: BinaryHeap<Reverse<(multipeer::Instant, ConnectionId)>>,
    closing: bool,
    stats: WebSocketStats,
    /// Connections that agreed to permessage-deflate.
    compressing: usize,
}

impl WebSocketServer {
    /// Listens on `addrs`, plain `ws://`.
    ///
    /// # Errors
    /// [`BindError`]: an address in use or unavailable.
    pub fn bind(addrs: &[ListenAddr], options: WebSocketOptions) -> Result<Self, BindError> {
        let listeners = Listeners::bind(addrs, options.max_connections)?;
        Ok(Self {
            options,
            clock: Clock::new(),
            listeners,
            slots: Vec::new(),
            free: Vec::new(),
            serial: 0,
            count: 0,
            scratch: ReadBuffer::new(),
            #[cfg(feature = "tls")]
            tls: None,
            events: VecDeque::new(),
            dirty: Vec::new(),
            read_again: Vec::new(),
            timers: BinaryHeap::new(),
            closing: false,
            stats: WebSocketStats::default(),
            compressing: 0,
        })
    }

    /// Listens on `addrs` with TLS (`wss://`).
    ///
    /// # Errors
    /// As [`bind`](Self::bind), and [`BindError::ClientTlsOptions`].
    #[cfg(feature = "tls")]
    pub fn bind_tls(
        addrs: &[ListenAddr],
        options: WebSocketOptions,
        tls: TlsOptions,
    ) -> Result<Self, BindError> {
        if !tls.is_server() {
            return Err(BindError::ClientTlsOptions);
        }
        let mut server = Self::bind(addrs, options)?;
        server.set_tls(tls);
        Ok(server)
    }

    #[cfg(feature = "tls")]
    pub(crate) fn set_tls(&mut self, tls: TlsOptions) {
        self.tls = Some(tls);
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
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

    /// The settings in force.
    #[must_use]
    pub fn options(&self) -> &WebSocketOptions {
        &self.options
    }

    /// The current time on the clock connections are driven with (for commands such as
    /// [`ws::Connection::close`] through [`connection_mut`](Self::connection_mut)).
    #[must_use]
    pub fn now(&self) -> multipeer::Instant {
        self.clock.now()
    }

    /// TCP connections held now, handshaking, open or closing.
    #[must_use]
    pub fn connection_count(&self) -> usize {
        self.count
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> WebSocketStats {
        self.stats
    }

    /// Connections that agreed to permessage-deflate (held until released).
    #[must_use]
    pub fn compressing_connections(&self) -> usize {
        self.compressing
    }

    /// Bytes of buffer storage all connections hold now: their queues and, where
    /// permessage-deflate was agreed, compressor and decompressor state. It walks every
    /// connection: for status lines, not for every event.
    #[must_use]
    pub fn buffer_footprint(&self) -> usize {
        self.slots.iter().flatten().map(|s| s.ws.buffer_footprint()).sum()
    }

    /// Handles one readiness event; returns `false` if its token is not this server's.
    pub fn handle_event(&mut self, registry: &Registry, event: &Event) -> bool {
        match self.listeners.route(event) {
            None => return false,
            Some(Ready::Listener(i)) => self.accept(registry, i),
            Some(Ready::Connection { index, readable, writable: _, read_closed }) => {
                if read_closed {
                    if let Some(Some(slot)) = self.slots.get_mut(index) {
                        slot.transport.saw_read_closed();
                    }
                }
                self.service(registry, index, readable)
            }
        }
        true
    }

    /// How long the event loop may sleep before [`handle_timeout`](Self::handle_timeout) is due
    /// (`None`: until a readiness event).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        // Events produced by a flush (held input taken once the application made room) wait
        // for the application, which the loop calls after its next poll.
        if !self.read_again.is_empty() || !self.events.is_empty() {
            return Some(Duration::ZERO);
        }
        let timer = self.timers.peek().map(|Reverse((at, _))| self.clock.until(*at));
        shortest(timer, self.listeners.pause_left())
    }

    /// Fires due connection timers (handshake, close, heartbeat, buffer release), reads
    /// connections left over by the read budget, retries a paused accept, and flushes.
    pub fn handle_timeout(&mut self, registry: &Registry) {
        let now = self.clock.now();
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(slot) = self.slot_mut(id) else { continue };
            if slot.armed != Some(at) {
                continue;
            }
            slot.armed = None;
            slot.ws.handle_timeout(now);
            self.service(registry, id.index(), false);
        }
        for index in core::mem::take(&mut self.read_again) {
            self.service(registry, index, true);
        }
        self.retry_accept(registry);
        self.flush(registry);
    }

    /// Writes what commands queued and offers held-back input again to connections whose
    /// messages were read. Call it after the events of one poll and after commands.
    pub fn flush(&mut self, registry: &Registry) {
        while let Some(index) = self.dirty.pop() {
            if let Some(Some(slot)) = self.slots.get_mut(index) {
                slot.dirty = false;
            }
            self.service(registry, index, false);
        }
    }

    /// The next event, oldest first. Poll after every turn of the loop: events are kept (a few
    /// per connection at most) until polled.
    pub fn poll_event(&mut self) -> Option<WebSocketEvent> {
        self.events.pop_front()
    }

    /// The connection `id`, to look at (state, close information, queued amounts).
    #[must_use]
    pub fn connection(&self, id: ConnectionId) -> Option<&Socket> {
        self.slot(id).map(|s| &s.ws)
    }

    /// The connection `id`, for any command of the core connection (send, ping, close...);
    /// [`flush`](Self::flush) writes what it queued. Its events are the server's: polling them
    /// here takes them from [`poll_event`](Self::poll_event).
    pub fn connection_mut(&mut self, id: ConnectionId) -> Option<&mut Socket> {
        let index = id.index();
        self.slot(id)?;
        self.touch(index);
        self.slots.get_mut(index)?.as_mut().map(|s| &mut s.ws)
    }

    /// The oldest message received on `id`, borrowed where it was received.
    #[must_use]
    pub fn message(&self, id: ConnectionId) -> Option<Message<'_>> {
        self.slot(id)?.ws.peek_message()
    }

    /// Drops the oldest message received on `id`; returns whether there was one.
    pub fn pop_message(&mut self, id: ConnectionId) -> bool {
        self.connection_mut(id).is_some_and(Socket::pop_message)
    }

    /// Sends one message on `id`: a large one (128 KiB or more) is written to the socket at
    /// once from `data` when nothing waits to be sent before it, and only what the socket does
    /// not take is queued; anything else is copied into the send queue.
    ///
    /// # Errors
    /// [`SendError`], and [`SendError::NotOpen`] for an unknown id.
    pub fn send(&mut self, id: ConnectionId, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        let slot = self.commanded(id)?;
        if data.len() >= WRITE_THROUGH_MIN && slot.transport.can_write_now() {
            let transport = &mut slot.transport;
            return slot.ws.send_through(kind, data, |parts| transport.write_now(parts));
        }
        slot.ws.send(kind, data)
    }

    /// Sends the oldest message received on `id` back on it and pops it; returns its kind,
    /// `None` if no message waits. The payload is sent from where it was received when it is
    /// alone in both queues, written to the socket at once from there when it is large (128 KiB
    /// or more) and nothing waits to be sent before it, and copied once into the send queue
    /// otherwise.
    ///
    /// # Errors
    /// [`SendError`] (the message stays queued), and [`SendError::NotOpen`] for an unknown id.
    pub fn echo(&mut self, id: ConnectionId) -> Result<Option<MessageKind>, SendError> {
        let slot = self.commanded(id)?;
        let large = slot.ws.peek_message().is_some_and(|m| m.data.len() >= WRITE_THROUGH_MIN);
        if large && slot.transport.can_write_now() {
            let transport = &mut slot.transport;
            return slot.ws.forward_message_through(|parts| transport.write_now(parts));
        }
        slot.ws.forward_message()
    }

    /// Sends every message received on `id` back on it, oldest first, and pops them; returns
    /// how many. When the first is large (16 KiB or more) and nothing waits to be sent, they
    /// go to the socket at once from where they were received, up to 16 in one vectored
    /// write, and only what the socket does not take is copied into the send queue; else
    /// each is echoed as [`echo`](Self::echo) does. Only what was received before the call
    /// is echoed; stops at the first that cannot be sent (the send queue is full), which
    /// stays queued.
    ///
    /// # Errors
    /// [`SendError`] when the first message cannot be sent (it stays queued), and
    /// [`SendError::NotOpen`] for an unknown id.
    pub fn echo_all(&mut self, id: ConnectionId) -> Result<usize, SendError> {
        let slot = self.commanded(id)?;
        let large = slot.ws.peek_message().is_some_and(|m| m.data.len() >= BATCH_THROUGH_MIN);
        if large && slot.transport.can_write_now() {
            let transport = &mut slot.transport;
            return slot.ws.forward_messages_through(|parts| transport.write_now(parts));
        }
        slot.ws.forward_messages()
    }

    /// Sends the oldest message received on `from` to `to` and pops it: written to `to`'s
    /// socket at once from where it was received when it is large (128 KiB or more) and
    /// nothing waits to be sent on `to` before it, else copied once into `to`'s send queue.
    ///
    /// # Errors
    /// [`SendError`] from `to` (the message stays queued), and [`SendError::NotOpen`] for an
    /// unknown id. Forwarding to the same connection is [`echo`](Self::echo).
    pub fn forward(
        &mut self,
        from: ConnectionId,
        to: ConnectionId,
    ) -> Result<Option<MessageKind>, SendError> {
        if from == to {
            return self.echo(from);
        }
        let (a, b) = (from.index(), to.index());
        self.slot(from).ok_or(SendError::NotOpen)?;
        self.slot(to).ok_or(SendError::NotOpen)?;
        let (source, target) = if a < b {
            let (left, right) = self.slots.split_at_mut(b);
            (&mut left[a], &mut right[0])
        } else {
            let (left, right) = self.slots.split_at_mut(a);
            (&mut right[0], &mut left[b])
        };
        let (Some(source), Some(target)) = (source.as_mut(), target.as_mut()) else {
            return Err(SendError::NotOpen);
        };
        let Some(message) = source.ws.peek_message() else { return Ok(None) };
        let kind = message.kind;
        if message.data.len() >= WRITE_THROUGH_MIN && target.transport.can_write_now() {
            let transport = &mut target.transport;
            target.ws.send_through(kind, message.data, |parts| transport.write_now(parts))?;
        } else {
            target.ws.send(kind, message.data)?;
        }
        source.ws.pop_message();
        self.touch(a);
        self.touch(b);
        Ok(Some(kind))
    }

    /// Sends one message to every open connection, encoded once and shared by all their send
    /// queues; returns how many took it (a connection whose queue is full does not).
    pub fn broadcast(&mut self, kind: MessageKind, data: &[u8]) -> usize {
        let frame = SharedFrame::new(kind, &[data]);
        let mut sent = 0;
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots[index].as_mut() else { continue };
            if slot.ws.state() == ws::State::Open && slot.ws.send_shared(&frame).is_ok() {
                sent += 1;
                self.touch(index);
            }
        }
        sent
    }

    /// Stops listening and closes every connection with 1001 (going away); keep driving the
    /// loop until [`is_closed`](Self::is_closed).
    pub fn close(&mut self, registry: &Registry) {
        self.closing = true;
        self.listeners.stop(registry);
        let now = self.clock.now();
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots[index].as_mut() else { continue };
            match slot.ws.state() {
                ws::State::Open => {
                    if slot.ws.close(now, CloseCode::GOING_AWAY, "").is_err() {
                        slot.ws.abort();
                    }
                }
                ws::State::Connecting => slot.ws.abort(),
                ws::State::Closing | ws::State::Closed => {}
            }
            self.touch(index);
        }
        self.flush(registry);
    }

    /// Whether [`close`](Self::close) was called and every connection is gone.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closing && self.count == 0
    }

    fn slot(&self, id: ConnectionId) -> Option<&Slot> {
        self.slots.get(id.index())?.as_ref().filter(|s| s.id == id)
    }

    /// The slot of `id` for a command that queues output, marked to be written on the next
    /// flush.
    fn commanded(&mut self, id: ConnectionId) -> Result<&mut Slot, SendError> {
        self.slot(id).ok_or(SendError::NotOpen)?;
        self.touch(id.index());
        self.slots[id.index()].as_mut().ok_or(SendError::NotOpen)
    }

    fn slot_mut(&mut self, id: ConnectionId) -> Option<&mut Slot> {
        self.slots.get_mut(id.index())?.as_mut().filter(|s| s.id == id)
    }

    fn touch(&mut self, index: usize) {
        if let Some(Some(slot)) = self.slots.get_mut(index) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    /// Reads (if `readable`, or held input if there is room now), turns the connection's
    /// events into the server's, writes, re-arms its timer, and releases it once finished.
    fn service(&mut self, registry: &Registry, index: usize, readable: bool) {
        let now = self.clock.now();
        let token = self.listeners.token(index);
        let Some(Some(slot)) = self.slots.get_mut(index) else { return };
        // The application emptied the queue since the last announcement: what arrives next is
        // news again.
        if slot.ws.available_messages() == 0 {
            slot.announced = false;
        }
        let mut machine = Ws { ws: &mut slot.ws, now };
        if readable || slot.transport.is_paused() {
            let end = if slot.transport.is_paused() {
                slot.transport.resume(&mut machine, self.scratch.as_mut(), READ_BUDGET)
            } else {
                slot.transport.read(&mut machine, self.scratch.as_mut(), READ_BUDGET)
            };
            match end {
                ReadEnd::Budget => self.read_again.push(index),
                ReadEnd::Ended(Some(error)) => count_error(&mut self.stats, &error),
                ReadEnd::Drained | ReadEnd::Paused | ReadEnd::Ended(None) => {}
            }
        }
        while let Some(event) = slot.ws.poll_event() {
            let id = slot.id;
            match event {
                ws::Event::Request => {
                    let _ = if self.closing {
                        slot.ws.reject(503, "shutting down")
                    } else {
                        #[cfg(feature = "deflate")]
                        slot.ws.set_compressing_connections(self.compressing);
                        slot.ws.accept_supported(now, &self.options.protocols, &[])
                    };
                    self.compressing += usize::from(compresses(&slot.ws));
                }
                ws::Event::Open => {
                    self.stats.opened += 1;
                    self.events.push_back(WebSocketEvent::Opened(id));
                }
                ws::Event::HandshakeFailed(e) => {
                    self.stats.handshake_failures += 1;
                    self.events.push_back(WebSocketEvent::HandshakeFailed(id, e));
                }
                ws::Event::Closed(info) => self.events.push_back(WebSocketEvent::Closed(id, info)),
                _ => {}
            }
        }
        if slot.ws.available_messages() > 0 && !slot.announced {
            slot.announced = true;
            self.events.push_back(WebSocketEvent::Messages(slot.id));
        }
        if let Err(error) = slot.transport.write(&mut Ws { ws: &mut slot.ws, now }) {
            count_error(&mut self.stats, &error);
        }
        if slot.transport.update_interest(registry, token).is_err() {
            slot.transport.kill(&mut Ws { ws: &mut slot.ws, now });
        }
        if (slot.ws.is_finished() && slot.ws.poll_transmit().is_none()) || slot.transport.is_dead() {
            self.release(registry, index);
            return;
        }
        let deadline = slot.ws.poll_timeout();
        if deadline != slot.armed {
            slot.armed = deadline;
            if let Some(at) = deadline {
                self.timers.push(Reverse((at, slot.id)));
            }
        }
        // Stale entries leave when they come due; a flood of re-armed timers is compacted.
        if self.timers.len() > 4 * (self.count + 16) {
            let live: Vec<_> =
                self.slots.iter().flatten().filter_map(|s| Some(Reverse((s.armed?, s.id)))).collect();
            self.timers = live.into();
        }
    }

    fn release(&mut self, registry: &Registry, index: usize) {
        let Some(slot) = self.slots.get_mut(index).and_then(Option::take) else { return };
        slot.transport.close(registry);
        self.free.push(index);
        self.count -= 1;
        self.compressing -= usize::from(compresses(&slot.ws));
        self.events.push_back(WebSocketEvent::Released(slot.id));
    }
}

impl Accept for WebSocketServer {
    fn listeners(&mut self) -> &mut Listeners {
        &mut self.listeners
    }

    fn take(&mut self, registry: &Registry, stream: TcpStream, _addr: SocketAddr) {
        if self.count >= self.options.max_connections {
            self.stats.refused_at_capacity += 1;
            return;
        }
        self.stats.accepted += 1;
        let now = self.clock.now();
        let (mut transport, mut failed) = accepted_transport(
            stream,
            #[cfg(feature = "tls")]
            self.tls.as_ref(),
        );
        let mut ws = Socket::server(now, self.options.ws);
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        // Registration reports data that arrived before it (edge-triggered epoll included).
        if let Err(e) = transport.update_interest(registry, self.listeners.token(index)) {
            failed = failed.or(Some(TransportError::Io(e)));
        }
        if let Some(error) = failed {
            count_error(&mut self.stats, &error);
            transport.kill(&mut Ws { ws: &mut ws, now });
        }
        self.serial = self.serial.wrapping_add(1);
        let id = ConnectionId::new(index, self.serial);
        self.slots[index] = Some(Slot { id, ws, transport, announced: false, dirty: false, armed: None });
        self.count += 1;
        self.service(registry, index, false);
    }

    fn accept_failed(&mut self, _error: io::Error) {
        self.stats.accept_errors += 1;
    }
}

drive_by_inherent_methods!(WebSocketServer, |s| s.options.ws.close_timeout);

/// Whether a connection agreed to permessage-deflate.
fn compresses(ws: &Socket) -> bool {
    #[cfg(feature = "deflate")]
    return ws.permessage_deflate().is_some();
    #[cfg(not(feature = "deflate"))]
    {
        let _ = ws;
        false
    }
}

fn count_error(stats: &mut WebSocketStats, error: &TransportError) {
    match error {
        #[cfg(feature = "tls")]
        TransportError::Tls(_) => stats.tls_failures += 1,
        _ => stats.io_errors += 1,
    }
}
