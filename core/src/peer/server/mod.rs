//! A multiplayer server over many WebSocket connections (Godot's `create_server`).

mod cluster;
mod flow;
mod forward;
mod inbox;
mod inspect;
mod multiplayer_peer;
mod rooms;
mod routing;
#[cfg(test)]
mod tests;
mod types;

use alloc::collections::{BTreeMap, BinaryHeap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::net::{IpAddr, SocketAddr};

use rand_core::CryptoRng;

use super::{
    ConnectionStatus, DisconnectReason, Event, MultiplayerPeer, Packet, PacketInfo, PeerId, Protocol,
    PutError, Target, TransferMode, UnknownPeer, generate_unique_id,
};
use crate::buffer::VecStorage;
use crate::time::Instant;
use crate::ws::{self, CloseCode, NoRng};

pub use cluster::{ClusterConfig, ClusterNode, ClusterOutput, ClusterStats};
pub use rooms::{
    MAX_ROOM_NAME_LEN, RoomConfig, RoomInfo, RoomMode, RoomNameError, RoomRefusal, RoomStats, room_from_path,
    validate_room_name, validate_room_prefix,
};
pub use types::{
    AcceptError, ConnId, DEFAULT_SLOW_PEER_TIMEOUT, PeerInfo, ServerConfig, ServerStats, UnknownConnection,
};

struct Conn {
    ws: ws::Connection<VecStorage, NoRng>,
    addr: Option<SocketAddr>,
    peer: Option<PeerId>,
    /// `handle_input` accepted fewer bytes than offered; tell the adapter when room frees.
    input_blocked: bool,
    /// Messages wait in the connection because the inbox was full.
    routing_blocked: bool,
    /// The application holds its messages out of the inbox ([`MultiplayerPeer::hold_peer`]).
    held: bool,
    /// Its oldest message is in the inbox without a copy (`inbox.rs`), the application's bytes
    /// starting at this offset; its later messages wait behind it.
    app_hold: Option<u8>,
    in_transmit_queue: bool,
    released: bool,
    /// The deadline last scheduled in the timer heap.
    /// (8 bytes where `Option<Instant>` takes 16: it paid for the room index.)
    timer: flow::Stamp,
    /// The peer id it had, once it left (its late packets are reported as such).
    former: Option<PeerId>,
    /// Finished with output still queued: release at this time regardless.
    linger: flow::Stamp,
    /// Relay flow control, as a sender and as a receiver.
    flow: flow::ConnFlow,
    /// Closed by the remote while packets it sent still wait to be relayed: it leaves (and is
    /// released) once they are, so its last packets reach everyone before its departure.
    leaving: bool,
    /// The room it chose (an index into the room table; `rooms::NO_ROOM` before the upgrade).
    room: u32,
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// A multiplayer server: Godot's `WebSocketMultiplayerPeer.create_server` (4.x) or
/// `WebSocketServer` with the multiplayer API (3.x).
///
/// The adapter hands it transports: [`accept`](Self::accept) a new one, feed its bytes to
/// [`handle_input`](Self::handle_input), write what [`transmit`](Self::transmit) returns for the
/// connections [`poll_transmit`](Self::poll_transmit) names, close the ones
/// [`poll_release`](Self::poll_release) names, offer held-back input again for the ones
/// [`poll_resume`](Self::poll_resume) names, and call [`handle_timeout`](Self::handle_timeout)
/// at [`poll_timeout`](Self::poll_timeout). The application uses [`MultiplayerPeer`].
///
/// With rooms ([`ServerConfig::rooms`]) each room is a world of its own, and the application is
/// peer 1 of every room: it receives what any room sends to the server, names a peer by its id
/// alone (ids are unique across rooms; [`room_of`](Self::room_of) tells the room), and its
/// broadcasts reach the peers of every room.
pub struct Server<R: CryptoRng> {
    config: ServerConfig,
    rng: R,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    /// Every joined peer of every room (ids are unique server-wide).
    peers: BTreeMap<PeerId, u32>,
    rooms: rooms::Rooms,
    inbox: inbox::Inbox,
    /// Events, each with the number of packets that had reached the inbox before it.
    events: VecDeque<(u64, Event)>,
    /// Packets taken out of the inbox since the start (read, or cleared by `close`): with the
    /// inbox's length, how many ever arrived.
    popped: u64,
    reports: usize,
    transmit: VecDeque<ConnId>,
    release: VecDeque<ConnId>,
    resume: VecDeque<ConnId>,
    routing_blocked: VecDeque<u32>,
    /// Senders waiting for room at one of their relay targets, oldest first.
    relay_blocked: VecDeque<u32>,
    /// Senders that may route again, served round robin by `serve_ready`.
    ready: VecDeque<u32>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    /// Scratch list of fan-out targets, reused.
    fanout: Vec<u32>,
    /// Live connections per remote IP, for `max_connections_per_ip`.
    per_ip: BTreeMap<IpAddr, usize>,
    /// The connection being routed, out of its slot meanwhile, and the messages queued for it
    /// then (a departure it caused, announced to everyone).
    routing: Option<u32>,
    /// The peer whose messages are being routed (for drop reports made while delivering).
    routing_from: Option<PeerId>,
    for_routing: Vec<Vec<u8>>,
    /// A held packet forwarded anywhere but back to its sender is copied here first.
    scratch: Vec<u8>,
    target: Target,
    mode: TransferMode,
    channel: u8,
    closed: bool,
    stats: ServerStats,
    now: Instant,
    /// Inside a call that carries no time (`put_packet`, `pop_packet`): closes started here
    /// get their timer restarted at the next call that does.
    timeless: bool,
    rearm: Vec<u32>,
    /// Connections that agreed to permessage-deflate, for `DeflateConfig::max_connections`.
    compressing: usize,
    /// The cluster link, once [`join_cluster`](Self::join_cluster) was called.
    cluster: Option<alloc::boxed::Box<cluster::ClusterState>>,
}

/// Whether a connection agreed to permessage-deflate.
fn compresses(ws: &ws::Connection<VecStorage, NoRng>) -> bool {
    #[cfg(feature = "deflate")]
    return ws.permessage_deflate().is_some();
    #[cfg(not(feature = "deflate"))]
    {
        let _ = ws;
        false
    }
}

impl<R: CryptoRng> Server<R> {
    /// A listening server (Godot: status `CONNECTED`, unique id 1).
    #[must_use]
    ///
    /// Each connection's outbound message limit is raised to at least `max_peers` plus a few,
    /// so the join announcements a new peer receives (one per peer already there) always fit.
    pub fn new(mut config: ServerConfig, rng: R) -> Self {
        config.ws.max_outbound_messages =
            config.ws.max_outbound_messages.max(config.max_peers.saturating_add(8));
        Self {
            inbox: inbox::Inbox::new(config.inbox),
            rooms: rooms::Rooms::new(&config.rooms),
            config,
            rng,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            peers: BTreeMap::new(),
            events: VecDeque::new(),
            popped: 0,
            reports: 0,
            transmit: VecDeque::new(),
            release: VecDeque::new(),
            resume: VecDeque::new(),
            routing_blocked: VecDeque::new(),
            relay_blocked: VecDeque::new(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            fanout: Vec::new(),
            per_ip: BTreeMap::new(),
            routing: None,
            routing_from: None,
            for_routing: Vec::new(),
            scratch: Vec::new(),
            target: Target::Broadcast,
            mode: TransferMode::Reliable,
            channel: 0,
            closed: false,
            stats: ServerStats::default(),
            now: Instant::ZERO,
            timeless: false,
            rearm: Vec::new(),
            compressing: 0,
            cluster: None,
        }
    }

    // ----- the transport side --------------------------------------------------------------

    /// Takes on a transport just accepted from `addr`; it must then complete the WebSocket
    /// handshake within `handshake_timeout`.
    ///
    /// # Errors
    /// [`AcceptError`]: close the transport at once.
    pub fn accept(&mut self, now: Instant, addr: Option<SocketAddr>) -> Result<ConnId, AcceptError> {
        self.set_now(now);
        if self.closed {
            return Err(AcceptError::Closed);
        }
        if self.live >= self.config.max_peers {
            self.stats.rejected += 1;
            return Err(AcceptError::AtCapacity);
        }
        if let (Some(cap), Some(ip)) = (self.config.max_connections_per_ip, addr.map(|a| a.ip())) {
            if self.per_ip.get(&ip).copied().unwrap_or(0) >= cap {
                self.stats.rejected += 1;
                return Err(AcceptError::TooManyFromAddress);
            }
        }
        if let Some(ip) = addr.map(|a| a.ip()) {
            *self.per_ip.entry(ip).or_insert(0) += 1;
        }
        let conn = Conn {
            ws: ws::Connection::server(now, self.config.ws),
            addr,
            peer: None,
            input_blocked: false,
            routing_blocked: false,
            held: false,
            app_hold: None,
            in_transmit_queue: false,
            released: false,
            timer: flow::Stamp::UNSET,
            former: None,
            linger: flow::Stamp::UNSET,
            flow: flow::ConnFlow::default(),
            leaving: false,
            room: rooms::NO_ROOM,
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { generation: 0, conn: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.conn = Some(conn);
        self.live += 1;
        let id = ConnId { index, generation: slot.generation };
        self.schedule(index);
        Ok(id)
    }

    /// Learns the time; closes started by calls that carried none count from here.
    fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
        for index in core::mem::take(&mut self.rearm) {
            self.restart_stall_clock(index);
            if let Some(c) = self.slots[index as usize].conn.as_mut() {
                c.ws.restart_close_timer(self.now);
                self.schedule(index);
            }
        }
    }

    fn get(&self, id: ConnId) -> Result<&Conn, UnknownConnection> {
        match self.slots.get(id.index as usize) {
            Some(Slot { generation, conn: Some(c) }) if *generation == id.generation && !c.released => Ok(c),
            _ => Err(UnknownConnection(id)),
        }
    }

    fn get_mut(&mut self, id: ConnId) -> Result<&mut Conn, UnknownConnection> {
        match self.slots.get_mut(id.index as usize) {
            Some(Slot { generation, conn: Some(c) }) if *generation == id.generation && !c.released => Ok(c),
            _ => Err(UnknownConnection(id)),
        }
    }

    fn conn_id(&self, index: u32) -> ConnId {
        ConnId { index, generation: self.slots[index as usize].generation }
    }

    /// Bytes read from `conn`'s transport; returns how many were accepted (fewer: keep the
    /// rest and offer it again when [`poll_resume`](Self::poll_resume) names `conn`).
    ///
    /// # Errors
    /// [`UnknownConnection`] for a released or foreign id.
    pub fn handle_input(
        &mut self,
        now: Instant,
        conn: ConnId,
        bytes: &[u8],
    ) -> Result<usize, UnknownConnection> {
        self.set_now(now);
        self.get(conn)?;
        let mut used = 0;
        // The machine may take more after the server acted on what it read (an upgrade
        // accepted, a queue drained by routing): offer the rest again until it takes nothing.
        while let Some(c) = self.slots[conn.index as usize].conn.as_mut() {
            let n = c.ws.handle_input(now, &bytes[used..]);
            used += n;
            self.after_io(conn.index);
            if n == 0 || used == bytes.len() {
                break;
            }
        }
        if used < bytes.len() {
            if let Ok(c) = self.get_mut(conn) {
                c.input_blocked = true;
            }
        }
        self.serve_ready();
        Ok(used)
    }

    /// `conn`'s transport reached end of stream or failed.
    ///
    /// # Errors
    /// [`UnknownConnection`].
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) -> Result<(), UnknownConnection> {
        self.set_now(now);
        self.get_mut(conn)?.ws.handle_eof(now);
        self.after_io(conn.index);
        self.serve_ready();
        Ok(())
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.set_now(now);
        // The inbox keeps its storage while packets flow; a timer pass with it empty frees it.
        self.inbox.release_if_empty();
        self.cluster_handle_timeout();
        while let Some(&Reverse((at, index, generation))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(Slot { generation: g, conn: Some(c) }) = self.slots.get_mut(index as usize) else {
                continue;
            };
            if *g != generation || c.timer.get() != Some(at) || c.released {
                continue;
            }
            c.timer = flow::Stamp::UNSET;
            c.ws.handle_timeout(now);
            if c.linger.get().is_some_and(|l| now >= l) {
                // A finished connection whose peer will not read its last bytes.
                c.ws.abort();
                c.ws.consume_transmit(usize::MAX);
                // Done with: a connection still relaying what it sent before closing stays,
                // and must not find this deadline due again.
                c.linger = flow::Stamp::UNSET;
            }
            self.after_io(index);
            self.flow_timeout(now, index);
        }
        self.serve_ready();
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.rearm.is_empty() {
            // A close started without the time: call back now so its timer can start.
            return Some(self.now);
        }
        crate::time::earliest(self.timers.peek().map(|Reverse((at, _, _))| *at), self.cluster_timeout())
    }

    /// The next connection with bytes to write; fetch them with [`transmit`](Self::transmit).
    ///
    /// Each connection is named once per batch of new output; after a partial write, write
    /// the rest when the transport is writable again.
    pub fn poll_transmit(&mut self) -> Option<ConnId> {
        while let Some(id) = self.transmit.pop_front() {
            if let Ok(c) = self.get_mut(id) {
                c.in_transmit_queue = false;
                if c.ws.poll_transmit().is_some() {
                    return Some(id);
                }
            }
        }
        None
    }

    /// The bytes waiting for `conn`'s transport.
    #[must_use]
    pub fn transmit(&self, conn: ConnId) -> Option<&[u8]> {
        self.get(conn).ok()?.ws.poll_transmit()
    }

    /// Everything waiting for `conn`'s transport, in order, as up to `out.len()` slices for one
    /// vectored write (broadcast frames are shared between connections, so the bytes are not
    /// always contiguous); returns how many were filled.
    pub fn transmit_chunks<'a>(&'a self, conn: ConnId, out: &mut [&'a [u8]]) -> usize {
        self.get(conn).map_or(0, |c| c.ws.transmit_chunks(out))
    }

    /// `conn`'s transport took `n` bytes of [`transmit`](Self::transmit).
    ///
    /// # Errors
    /// [`UnknownConnection`].
    pub fn consume_transmit(&mut self, conn: ConnId, n: usize) -> Result<(), UnknownConnection> {
        let c = self.get_mut(conn)?;
        c.ws.consume_transmit(n);
        // Input held back for pongs (or a close echo) waiting to be written may go on now.
        if c.input_blocked {
            c.input_blocked = false;
            self.resume.push_back(conn);
        }
        if n > 0 {
            self.made_progress(conn.index);
        }
        self.after_io(conn.index);
        self.serve_ready();
        Ok(())
    }

    /// The next connection whose transport must be closed now; its id is invalid afterwards.
    pub fn poll_release(&mut self) -> Option<ConnId> {
        let id = self.release.pop_front()?;
        if let Some(slot) = self.slots.get_mut(id.index as usize) {
            if slot.generation == id.generation {
                if let Some(conn) = slot.conn.take() {
                    debug_assert!(conn.app_hold.is_none(), "released with a packet held for the application");
                    slot.generation = slot.generation.wrapping_add(1);
                    self.free.push(id.index);
                    self.live -= 1;
                    self.exit_room(conn.room);
                    self.compressing -= usize::from(compresses(&conn.ws));
                    if let Some(ip) = conn.addr.map(|a| a.ip()) {
                        if let Some(n) = self.per_ip.get_mut(&ip) {
                            *n -= 1;
                            if *n == 0 {
                                self.per_ip.remove(&ip);
                            }
                        }
                    }
                }
            }
        }
        Some(id)
    }

    /// The next connection that refused input earlier and has room now: offer it the bytes it
    /// did not accept, then keep reading it.
    pub fn poll_resume(&mut self) -> Option<ConnId> {
        while let Some(id) = self.resume.pop_front() {
            if self.get(id).is_ok() {
                return Some(id);
            }
        }
        None
    }

    /// Everything that must happen after a connection's machine moved.
    fn after_io(&mut self, index: u32) {
        self.drain_ws_events(index);
        self.route(index);
        self.schedule(index);
    }

    fn drain_ws_events(&mut self, index: u32) {
        loop {
            let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
            let Some(event) = c.ws.poll_event() else { return };
            match event {
                ws::Event::Request => self.decide(index),
                ws::Event::Open => self.join(index),
                ws::Event::HandshakeFailed(e) => {
                    self.stats.rejected += 1;
                    self.report(Event::ConnectionRejected(e));
                }
                ws::Event::Closed(info) => {
                    let info = super::presented(info, self.config.protocol);
                    match (c.peer, c.former) {
                        // It left when this side ended it; now its answer is known.
                        (None, Some(peer)) => self.queue_event(Event::PeerClosed { peer, info }),
                        _ => {
                            // Packets that arrived before the Close (often in the same read)
                            // are routed while the sender is still a peer: they come before
                            // its departure, as in Godot. Those that must wait for room at a
                            // receiver keep it a peer until they went out (`leaving`). One held
                            // for the application does not: the connection stays (released once
                            // the application read it), the peer leaves now.
                            self.route(index);
                            let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
                            let waiting = c.ws.available_messages() - usize::from(c.app_hold.is_some());
                            if c.peer.is_some() && waiting > 0 {
                                c.leaving = true;
                            } else {
                                self.leave(index, DisconnectReason::Closed(info));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The accept-or-reject step for a valid upgrade request.
    fn decide(&mut self, index: u32) {
        let now = self.now;
        let refuse = self.config.refuse_new_connections || self.closed;
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        if refuse {
            let _ = c.ws.reject(503, "refusing new connections");
            return;
        }
        if !self.config.allowed_origins.is_empty() {
            let mut scratch = [httparse::EMPTY_HEADER; ws::MAX_HEADERS];
            let origin = c.ws.request(&mut scratch).and_then(|r| r.origin()).map(<[u8]>::to_vec);
            let allowed = origin.as_deref().is_none_or(|o| {
                self.config.allowed_origins.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(o))
            });
            if !allowed {
                let _ = c.ws.reject(403, "origin not allowed");
                return;
            }
        }
        let entered = if self.config.rooms.mode == RoomMode::Single {
            // One world, as Godot's server: the path is not even looked at.
            self.rooms.enter(&self.config.rooms, "")
        } else {
            let mut scratch = [httparse::EMPTY_HEADER; ws::MAX_HEADERS];
            let path = c.ws.request(&mut scratch).map_or("/", |r| r.path());
            self.rooms.enter(&self.config.rooms, path)
        };
        let room = match entered {
            Ok(room) => room,
            Err(refusal) => {
                self.stats.rooms_refused += 1;
                let _ = c.ws.reject(refusal.http_status(), refusal.reason());
                return;
            }
        };
        let headers: Vec<&str> = self.config.handshake_headers.iter().map(String::as_str).collect();
        #[cfg(feature = "deflate")]
        c.ws.set_compressing_connections(self.compressing);
        if c.ws.accept_supported(now, &self.config.supported_protocols, &headers).is_err() {
            // Configured headers that cannot be sent are a server bug; refuse visibly.
            let _ = c.ws.reject(500, "server handshake headers are invalid");
        }
        self.compressing += usize::from(compresses(&c.ws));
        if c.ws.state() == ws::State::Open {
            c.room = room;
        } else {
            // Refused after all (no common subprotocol): it never was in the room.
            self.exit_room(room);
        }
    }

    /// A connection of `room` is gone; the room too if it was its last.
    fn exit_room(&mut self, room: u32) {
        let name = self.cluster.as_ref().and(self.rooms.name(room)).map(String::from);
        if self.rooms.exit(room) {
            if let Some(name) = name {
                self.cluster_room_gone(room, name);
            }
        }
    }

    /// Re-evaluates queues and timers of a connection after anything touched it.
    fn schedule(&mut self, index: u32) {
        let now = self.now;
        let id = self.conn_id(index);
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        if c.released {
            return;
        }
        let has_output = c.ws.poll_transmit().is_some();
        if has_output && !c.in_transmit_queue {
            c.in_transmit_queue = true;
            self.transmit.push_back(id);
        }
        if c.ws.is_finished() && !has_output && !c.leaving {
            // A packet held for the application keeps the connection until it is read.
            let held = c.app_hold.is_some();
            c.released = !held;
            // Normally the WebSocket's Closed event already reported the departure.
            self.leave(index, DisconnectReason::Kicked);
            if !held {
                self.release.push_back(id);
            }
            return;
        }
        if c.ws.is_finished() && has_output && c.linger.get().is_none() {
            c.linger = flow::Stamp::at(now + c.ws.config().close_timeout);
        }
        let flow = if c.peer.is_some() { c.flow.deadline(self.config.slow_peer_timeout) } else { None };
        let next = crate::time::earliest(crate::time::earliest(c.ws.poll_timeout(), c.linger.get()), flow);
        if next != c.timer.get() {
            c.timer = next.map_or(flow::Stamp::UNSET, flow::Stamp::at);
            if let Some(at) = next {
                self.timers.push(Reverse((at, index, id.generation)));
            }
        }
    }

    /// Queues an event, marked with how many packets arrived before it.
    fn queue_event(&mut self, event: Event) {
        let arrived = self.popped + self.inbox.len() as u64;
        self.events.push_back((arrived, event));
    }

    /// Whether the next event happened before the next packet arrived: read it with
    /// `poll_event` first to see events and packets in the order Godot's signals and
    /// `get_packet` give them (a packet from a peer before its `peer_disconnected`).
    #[must_use]
    pub fn event_is_next(&self) -> bool {
        self.events.front().is_some_and(|(arrived, _)| *arrived <= self.popped)
    }

    /// Queues a report (dropped packet, refused handshake) within the event bound.
    fn report(&mut self, event: Event) {
        if self.reports >= self.config.max_queued_events {
            self.stats.unreported_events += 1;
            return;
        }
        self.reports += 1;
        self.queue_event(event);
    }

    // ----- joining and leaving -------------------------------------------------------------

    fn join(&mut self, index: u32) {
        let id = match self.cluster {
            Some(_) => self.cluster_peer_id(),
            None => generate_unique_id(&mut self.rng, |id| self.peers.contains_key(&id)),
        };
        let Some(id) = id else {
            if let Some(c) = self.slots[index as usize].conn.as_mut() {
                let _ = c.ws.close(self.now, CloseCode::INTERNAL_ERROR, "no free peer id");
            }
            return;
        };
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        c.peer = Some(id);
        self.peers.insert(id, index);
        let room = c.room;
        self.rooms.add_member(room, id, index);
        self.cluster_local_join(room, id);
        // Reported before the announcements: one of them may overflow the new peer's queue and
        // cut it off, and its departure must follow its arrival.
        self.queue_event(Event::PeerConnected(id));
        match self.config.protocol {
            Protocol::Godot4 => self.join_godot4(index, id),
            Protocol::Godot3 => self.join_godot3(index, id),
        }
    }

    fn leave(&mut self, index: u32, reason: DisconnectReason) {
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        c.leaving = false;
        let Some(id) = c.peer.take() else { return };
        c.former = Some(id);
        let room = c.room;
        self.peers.remove(&id);
        self.rooms.remove_member(room, id);
        self.cluster_local_leave(room, id);
        // Senders waiting on it go on without it; if it waited itself, it no longer does.
        self.forget_flow(index);
        self.announce_departure(room, id);
        self.queue_event(Event::PeerDisconnected { peer: id, reason });
    }

    /// Godot 3's `disconnect_peer(id, code, reason)` and Godot 4's `get_peer(id).close(code,
    /// reason)`: a clean close with this code and reason (or, with `force`, an immediate drop);
    /// `peer_disconnected` is reported at once, and [`Event::PeerClosed`] with the peer's
    /// answer when the connection has closed. A code that may not be sent is sent as 1000,
    /// and a reason over 123 bytes is cut to fit.
    ///
    /// # Errors
    /// [`UnknownPeer`].
    pub fn disconnect_peer_with(
        &mut self,
        now: Instant,
        peer: PeerId,
        code: CloseCode,
        reason: &str,
        force: bool,
    ) -> Result<(), UnknownPeer> {
        let &index = self.peers.get(&peer).ok_or(UnknownPeer(peer))?;
        self.set_now(now);
        self.end_peer(index, DisconnectReason::Kicked, code, reason, force);
        self.serve_ready();
        Ok(())
    }

    /// Ends a peer's connection from this side (`disconnect_peer`, slow consumer, `close`).
    fn end_peer(&mut self, index: u32, reason: DisconnectReason, code: CloseCode, why: &str, force: bool) {
        let now = self.now;
        let Some(c) = self.slots[index as usize].conn.as_mut() else { return };
        // What cannot be sent is made sendable: a peer must not stay connected on the wire
        // because the code or reason chosen for it was invalid.
        let (code, why) = super::sendable_close(code, why);
        if force || c.ws.close(now, code, why.as_str()).is_err() {
            // Forced, or no room left for the Close frame: drop it.
            c.ws.abort();
        } else if self.timeless {
            self.rearm.push(index);
        }
        // The departure is reported now, not when the closing handshake ends; a dropped
        // connection has ended already, and how is reported right after.
        let ended = match c.ws.poll_event() {
            Some(ws::Event::Closed(info)) => Some(super::presented(info, self.config.protocol)),
            _ => None,
        };
        let former = c.peer;
        self.leave(index, reason);
        if let (Some(peer), Some(info)) = (former, ended) {
            self.queue_event(Event::PeerClosed { peer, info });
        }
        self.schedule(index);
    }
}
