//! Stateful targets for WebSocket multiplayer: a `peer::Server` with several connections, and a
//! `peer::Client`, each driven like an adapter and an application would, in both protocols.
//!
//! Inputs are a few setup bytes, then ops until the input runs out ([`ServerOp`],
//! [`ClientOp`]). Ops usually carry well-formed protocol traffic (upgrade requests, masked
//! frames with Godot 4 SYS relays or Godot 3 headers addressed to live peers) so that joins,
//! relays and departures happen, interleaved with raw bytes, partial writes, timers and every
//! application command. The invariants are checked after every op.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::collections::BTreeSet;

use chacha20::ChaCha8Rng;
use multipeer::peer::godot3::{self, Header, MessageType};
use multipeer::peer::scene::{self, SysCommand};
use multipeer::peer::{
    Client, ClientConfig, ConnId, ConnectionStatus, Event, MultiplayerPeer, PeerId, Protocol, Server,
    ServerConfig, Target,
};
use multipeer::queue::QueueLimits;
use multipeer::rand_core::SeedableRng;
use multipeer::ws::frame::MAX_HEADER_LEN;
use multipeer::ws::handshake::{ClientRequest, accept_key};
use multipeer::ws::{self, CloseCode};
use multipeer::{Instant, VecStorage};

use super::connection::{FOOTPRINT_SLACK, RECORD_OVERHEAD, server_request};
use super::input::{Input, Output};

/// A frame as a client sends it (masked with `key`), shortest length form.
#[must_use]
pub fn masked_frame(head: u8, key: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = frame_head(head, 0x80, payload.len());
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A frame as a server sends it (unmasked), shortest length form.
#[must_use]
pub fn server_frame(head: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_head(head, 0, payload.len());
    out.extend_from_slice(payload);
    out
}

fn frame_head(head: u8, mask: u8, len: usize) -> Vec<u8> {
    let mut out = vec![head];
    if len < 126 {
        out.push(mask | len as u8);
    } else if len <= 0xffff {
        out.push(mask | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out
}

/// The Origin the server setup allows, when it restricts origins.
pub const GOOD_ORIGIN: &str = "http://good.example";

/// Advances `now` by a step byte: µs, ms, 100 ms, or to `due` (1 s when nothing is due).
fn advance(now: Instant, due: Option<Instant>, step: u8) -> Instant {
    let n = u64::from(step & 63);
    match step >> 6 {
        0 => now + Duration::from_micros(n),
        1 => now + Duration::from_millis(n),
        2 => now + Duration::from_millis(n * 100),
        _ => due.map_or(now + Duration::from_secs(1), |t| t.max(now)),
    }
}

/// A payload of `len` bytes with a recognisable pattern.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

// ----- server --------------------------------------------------------------------------------

/// Server configuration from four bytes; small limits so that every limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSetup(pub [u8; 4]);

impl ServerSetup {
    /// Godot 4 with relay, room for four peers, Godot's message limits.
    pub const GODOT4: Self = Self([0b0000_1110, 0xff, 0b0011_1111, 0x55]);
    /// Godot 3 (always relays), room for four peers.
    pub const GODOT3: Self = Self([0b0000_1101, 0xff, 0b0011_1111, 0x55]);
    /// Godot 4, two peers, one-packet inbox, 64-byte messages, tight outbound queue.
    pub const TIGHT: Self = Self([0b0001_0110, 0b0101_0100, 0b0001_0000, 0x22]);

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> ServerConfig {
        let [b0, b1, b2, b3] = self.0;
        let d = ServerConfig::default();
        let pick = |b: u8, shift: u8, table: [usize; 4]| table[usize::from(b >> shift & 3)];
        let outbound = pick(b1, 4, [64, 256, 1024, d.ws.outbound_buffer_size]);
        let ws = ws::Config {
            max_message_size: pick(b1, 0, [64, 256, 1024, d.ws.max_message_size]),
            max_queued_messages: pick(b1, 2, [1, 2, 4, d.ws.max_queued_messages]),
            outbound_buffer_size: outbound,
            outbound_queue_size: match b1 >> 6 {
                0 => None,
                1 => Some(outbound * 2),
                2 => Some(outbound * 8),
                _ => d.ws.outbound_queue_size,
            },
            handshake_timeout: Duration::from_millis(u64::from(b3 & 15) * 100),
            close_timeout: Duration::from_millis(u64::from(b3 >> 4) * 100),
            heartbeat_interval: match b2 >> 6 {
                1 => Some(Duration::from_millis(100)),
                2 => Some(Duration::from_secs(1)),
                _ => None,
            },
            ..d.ws
        };
        ServerConfig {
            protocol: if b0 & 1 == 1 { Protocol::Godot3 } else { Protocol::Godot4 },
            relay: b0 & 2 != 0,
            ws,
            supported_protocols: if b0 & 0x80 != 0 { vec!["chat".into()] } else { Vec::new() },
            handshake_headers: if b0 & 0x80 != 0 { vec!["X-Server: fuzz".into()] } else { Vec::new() },
            max_peers: usize::from(b0 >> 2 & 3) + 1,
            inbox: QueueLimits {
                max_packets: pick(b2, 0, [1, 2, 4, 16]),
                max_bytes: pick(b2, 2, [32, 128, 1024, 65535]),
            },
            refuse_new_connections: false,
            max_queued_events: pick(b2, 4, [0, 1, 4, 4096]),
            allowed_origins: if b0 & 0x20 != 0 { vec![GOOD_ORIGIN.into()] } else { Vec::new() },
            max_connections_per_ip: (b0 & 0x10 != 0).then_some(2),
        }
    }
}

/// One step of a server run. `conn` picks among every connection ever accepted (released ones
/// included, which must then be refused); `peer` picks among joined peers or special ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    /// The adapter accepts a transport: from one of four addresses (bit 2 set: no address).
    Accept(u8),
    /// A valid upgrade request on `conn` (`mode` as the connection target's server prologue;
    /// bit 7 set adds an Origin, good or bad by bit 6).
    Request {
        /// Connection.
        conn: u8,
        /// Request shape.
        mode: u8,
    },
    /// A protocol message in one masked binary frame from `conn`: `kind % 4` picks raw bytes,
    /// a Godot 4 SYS relay to `peer`, a Godot 3 header from the sender to `peer`, or a Godot 3
    /// header with a spoofed or system type.
    Packet {
        /// Connection.
        conn: u8,
        /// Message shape.
        kind: u8,
        /// Target selector.
        peer: u8,
        /// Payload after the protocol header.
        payload: Vec<u8>,
    },
    /// A masked frame with any first byte (FIN, RSV, opcode).
    Frame {
        /// Connection.
        conn: u8,
        /// First byte.
        head: u8,
        /// Payload.
        payload: Vec<u8>,
    },
    /// Raw bytes from `conn`'s transport.
    Raw {
        /// Connection.
        conn: u8,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// `conn`'s transport ended.
    Eof(u8),
    /// Time advances (see [`advance`]) and `handle_timeout` runs.
    Advance(u8),
    /// The transport of `conn` (or, with bit 7, of `poll_transmit`'s pick) takes up to `n >> 1`
    /// bytes, through `transmit` (even) or `transmit_chunks` (odd).
    Transmit {
        /// Connection selector.
        conn: u8,
        /// Amount and path.
        n: u16,
    },
    /// The adapter drains `poll_release` and `poll_resume` (offering held-back input again).
    Service,
    /// `set_target_peer` then `put_packet` of `len` bytes.
    Put {
        /// Target selector.
        peer: u8,
        /// Length.
        len: u16,
    },
    /// The application reads: `peek_packet` + `pop_packet`, or `get_packet` into a small buffer.
    Pop(u8),
    /// `disconnect_peer` (bit 0: force) or, with bit 1, `disconnect_peer_with` a code and reason.
    Disconnect {
        /// Peer selector.
        peer: u8,
        /// Variant.
        how: u8,
    },
    /// `set_refuse_new_connections` toggles.
    Refuse,
    /// The application drains `poll_event`.
    Events,
    /// `close()`.
    Close,
}

impl ServerOp {
    const RANGES: [(u8, u8); 15] = [
        (0, 14),    // Accept
        (15, 39),   // Request
        (40, 89),   // Packet
        (90, 104),  // Frame
        (105, 119), // Raw
        (120, 126), // Eof
        (127, 146), // Advance
        (147, 176), // Transmit
        (177, 191), // Service
        (192, 211), // Put
        (212, 226), // Pop
        (227, 236), // Disconnect
        (237, 240), // Refuse
        (241, 252), // Events
        (253, 255), // Close
    ];

    /// Reads one op.
    pub fn decode(input: &mut Input<'_>) -> Self {
        let tag = input.byte();
        match Self::RANGES.iter().position(|&(lo, hi)| (lo..=hi).contains(&tag)).unwrap_or(0) {
            0 => Self::Accept(input.byte()),
            1 => Self::Request { conn: input.byte(), mode: input.byte() },
            2 => Self::Packet {
                conn: input.byte(),
                kind: input.byte(),
                peer: input.byte(),
                payload: input.slice().to_vec(),
            },
            3 => Self::Frame { conn: input.byte(), head: input.byte(), payload: input.slice().to_vec() },
            4 => Self::Raw { conn: input.byte(), bytes: input.slice().to_vec() },
            5 => Self::Eof(input.byte()),
            6 => Self::Advance(input.byte()),
            7 => Self::Transmit { conn: input.byte(), n: input.u16() },
            8 => Self::Service,
            9 => Self::Put { peer: input.byte(), len: input.u16() },
            10 => Self::Pop(input.byte()),
            11 => Self::Disconnect { peer: input.byte(), how: input.byte() },
            12 => Self::Refuse,
            13 => Self::Events,
            _ => Self::Close,
        }
    }

    /// Writes this op so that [`decode`](Self::decode) reads it back.
    pub fn encode(&self, out: &mut Output) {
        let tag = |i: usize| Self::RANGES[i].0;
        match self {
            Self::Accept(a) => out.byte(tag(0)).byte(*a),
            Self::Request { conn, mode } => out.byte(tag(1)).byte(*conn).byte(*mode),
            Self::Packet { conn, kind, peer, payload } => {
                out.byte(tag(2)).byte(*conn).byte(*kind).byte(*peer).slice(payload)
            }
            Self::Frame { conn, head, payload } => out.byte(tag(3)).byte(*conn).byte(*head).slice(payload),
            Self::Raw { conn, bytes } => out.byte(tag(4)).byte(*conn).slice(bytes),
            Self::Eof(c) => out.byte(tag(5)).byte(*c),
            Self::Advance(s) => out.byte(tag(6)).byte(*s),
            Self::Transmit { conn, n } => out.byte(tag(7)).byte(*conn).u16(*n),
            Self::Service => out.byte(tag(8)),
            Self::Put { peer, len } => out.byte(tag(9)).byte(*peer).u16(*len),
            Self::Pop(n) => out.byte(tag(10)).byte(*n),
            Self::Disconnect { peer, how } => out.byte(tag(11)).byte(*peer).byte(*how),
            Self::Refuse => out.byte(tag(12)),
            Self::Events => out.byte(tag(13)),
            Self::Close => out.byte(tag(14)),
        };
    }
}

/// Encodes a server run.
#[must_use]
pub fn encode_server_run(setup: ServerSetup, ops: &[ServerOp]) -> Vec<u8> {
    let mut out = Output::default();
    out.raw(&setup.0);
    ops.iter().for_each(|op| op.encode(&mut out));
    out.bytes
}

/// What a server run reached, for the seed tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSummary {
    /// `PeerConnected` events.
    pub joined: usize,
    /// `PeerDisconnected` events.
    pub left: usize,
    /// Packets the application read.
    pub packets: usize,
    /// Connections released.
    pub released: usize,
}

/// A connection as the adapter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Accepted, and no call has refused it yet.
    Live,
    /// A call answered `UnknownConnection`: the server finished it and must name it in
    /// `poll_release` next, and refuse it everywhere until then.
    Finished,
    /// `poll_release` named it: never named again.
    Released,
}

struct TrackedConn {
    id: ConnId,
    life: Life,
    /// Bytes offered but not accepted yet.
    backlog: Vec<u8>,
}

struct ServerHarness {
    server: Server<ChaCha8Rng>,
    config: ServerConfig,
    now: Instant,
    conns: Vec<TrackedConn>,
    /// Peers announced by `PeerConnected` and not yet by `PeerDisconnected`.
    connected: BTreeSet<PeerId>,
    /// Every peer that ever left: none may connect again under the same id in one run.
    departed: BTreeSet<PeerId>,
    summary: ServerSummary,
}

/// The server target.
///
/// Checks after every op: no panic; every `ConnId` the server names (`poll_transmit`,
/// `poll_resume`, `poll_release`, `peer_info`) is live, and a released one is never named
/// again nor accepted by any call; `connection_count` equals the live connections and is at
/// most `max_peers`; `buffer_footprint` stays within the limits × live connections plus the
/// inbox; `PeerConnected` is followed by at most one `PeerDisconnected` for that peer, and
/// `PeerDisconnected` names only connected peers; after draining the events, `peers()` is the
/// announced set; `available_packet_count ≤` the inbox limit. At the end the harness closes
/// the server and serves it like an adapter until every connection is released.
pub fn server_stateful(data: &[u8]) {
    run_server(data);
}

/// Runs one server input.
///
/// # Panics
/// When an invariant breaks.
pub fn run_server(data: &[u8]) -> ServerSummary {
    let mut input = Input::new(data);
    let setup = ServerSetup(core::array::from_fn(|_| input.byte()));
    let config = setup.config();
    let server = Server::new(config.clone(), ChaCha8Rng::seed_from_u64(u64::from(setup.0[3])));
    // The server raises the outbound message limit; bound the footprint with what it uses.
    let config = server.config().clone();
    let mut h = ServerHarness {
        server,
        config,
        now: Instant::ZERO,
        conns: Vec::new(),
        connected: BTreeSet::new(),
        departed: BTreeSet::new(),
        summary: ServerSummary::default(),
    };
    let mut ops = 0;
    while !input.is_empty() && ops < 4096 {
        let op = ServerOp::decode(&mut input);
        h.apply(&op);
        h.check();
        ops += 1;
    }
    h.finish();
    h.summary
}

impl ServerHarness {
    fn conn(&self, sel: u8) -> Option<usize> {
        (!self.conns.is_empty()).then(|| usize::from(sel) % self.conns.len())
    }

    fn live(&self, id: ConnId) -> bool {
        self.conns.iter().any(|c| c.id == id && c.life == Life::Live)
    }

    /// Records a call's verdict on connection `index`: a refusal finishes a live connection;
    /// a finished or released one must be refused.
    fn verdict<T: core::fmt::Debug, E: core::fmt::Debug>(&mut self, index: usize, result: &Result<T, E>) {
        let c = &mut self.conns[index];
        match (c.life, result) {
            (Life::Live, Err(_)) => c.life = Life::Finished,
            (Life::Live, Ok(_)) | (_, Err(_)) => {}
            (life, Ok(r)) => panic!("{} is {life:?}, but a call took it: {r:?}", c.id),
        }
    }

    /// The joined peers, in order, as the application sees them.
    fn peer_list(&self) -> Vec<PeerId> {
        self.server.peers().collect()
    }

    fn target(&self, sel: u8) -> Target {
        let peers = self.peer_list();
        let pick = || peers.get(usize::from(sel >> 3) % peers.len().max(1)).copied();
        match sel & 7 {
            0 => Target::Broadcast,
            1 => Target::Server,
            2 | 3 => pick().map_or(Target::Broadcast, Target::Peer),
            4 => pick().map_or(Target::Server, Target::AllExcept),
            5 => Target::Peer(PeerId::new(u32::from(sel) + 2).unwrap_or(PeerId::SERVER)),
            6 => Target::AllExcept(PeerId::SERVER),
            _ => self.departed.iter().next().copied().map_or(Target::Broadcast, Target::Peer),
        }
    }

    fn input(&mut self, index: usize, bytes: &[u8]) {
        let id = self.conns[index].id;
        self.conns[index].backlog.extend_from_slice(bytes);
        let backlog = core::mem::take(&mut self.conns[index].backlog);
        let result = self.server.handle_input(self.now, id, &backlog);
        self.verdict(index, &result);
        if let Ok(n) = result {
            assert!(n <= backlog.len());
            self.conns[index].backlog = backlog[n..].to_vec();
        }
    }

    fn apply(&mut self, op: &ServerOp) {
        match op {
            ServerOp::Accept(a) => {
                let addr = (a & 4 == 0).then(|| {
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, a & 3)), 40000 + u16::from(*a))
                });
                let before = self.server.connection_count();
                match self.server.accept(self.now, addr) {
                    Ok(id) => {
                        assert!(!self.conns.iter().any(|c| c.id == id), "{id} handed out twice");
                        assert!(before < self.config.max_peers);
                        if let (Some(cap), Some(addr)) = (self.config.max_connections_per_ip, addr) {
                            let same = self.server_ip_count(addr.ip());
                            assert!(same <= cap, "{same} connections from {addr}");
                        }
                        self.conns.push(TrackedConn { id, life: Life::Live, backlog: Vec::new() });
                    }
                    Err(e) => assert_eq!(self.server.connection_count(), before, "{e:?}"),
                }
            }
            ServerOp::Request { conn, mode } => {
                let Some(i) = self.conn(*conn) else { return };
                let Some(mut request) = server_request(mode | 1) else { return };
                if mode & 0x80 != 0 {
                    let origin = if mode & 0x40 != 0 { GOOD_ORIGIN } else { "http://evil.example" };
                    let line = format!("Origin: {origin}\r\n");
                    let at = request.len() - 2;
                    request.splice(at..at, line.bytes());
                }
                self.input(i, &request);
            }
            ServerOp::Packet { conn, kind, peer, payload } => {
                let Some(i) = self.conn(*conn) else { return };
                let sender = self.server.peer_of(self.conns[i].id).map_or(0, PeerId::get);
                let to = self.target(*peer).to_godot();
                let message = match kind & 3 {
                    0 => payload.clone(),
                    1 => [&scene::header(SysCommand::Relay, to)[..], payload].concat(),
                    2 => [&Header { kind: 0, from: sender, to }.encode()[..], payload].concat(),
                    _ => {
                        [&Header { kind: kind >> 2 & 7, from: to, to: sender }.encode()[..], payload].concat()
                    }
                };
                let frame = masked_frame(0x82, [*kind, *peer, 0x5a, 0xa5], &message);
                self.input(i, &frame);
            }
            ServerOp::Frame { conn, head, payload } => {
                let Some(i) = self.conn(*conn) else { return };
                let frame = masked_frame(*head, [1, 2, 3, 4], payload);
                self.input(i, &frame);
            }
            ServerOp::Raw { conn, bytes } => {
                let Some(i) = self.conn(*conn) else { return };
                self.input(i, bytes);
            }
            ServerOp::Eof(conn) => {
                let Some(i) = self.conn(*conn) else { return };
                let result = self.server.handle_eof(self.now, self.conns[i].id);
                self.verdict(i, &result);
            }
            ServerOp::Advance(step) => {
                self.now = advance(self.now, self.server.poll_timeout(), *step);
                self.server.handle_timeout(self.now);
                if let Some(t) = self.server.poll_timeout() {
                    // Only a close started without the time may ask to be called back now.
                    assert!(t >= self.now, "poll_timeout {t:?} before now {:?}", self.now);
                }
            }
            ServerOp::Transmit { conn, n } => {
                let id = if conn & 0x80 != 0 {
                    match self.server.poll_transmit() {
                        Some(id) => {
                            assert!(self.live(id), "poll_transmit named {id}, which is not live");
                            id
                        }
                        None => return,
                    }
                } else {
                    match self.conn(*conn) {
                        Some(i) => self.conns[i].id,
                        None => return,
                    }
                };
                self.transmit(id, usize::from(n >> 1), n & 1 == 1);
            }
            ServerOp::Service => self.service(),
            ServerOp::Put { peer, len } => {
                let target = self.target(*peer);
                self.server.set_target_peer(target);
                let data = pattern(usize::from(*len), *peer);
                let result = self.server.put_packet(&data);
                if data.len() > self.server.max_packet_size() {
                    assert!(result.is_err(), "{} bytes over the maximum were accepted", data.len());
                }
            }
            ServerOp::Pop(n) => self.pop(*n),
            ServerOp::Disconnect { peer, how } => {
                let peers = self.peer_list();
                let peer = match peers.get(usize::from(*peer) % peers.len().max(1)) {
                    Some(&p) if peer & 0x80 == 0 => p,
                    _ => PeerId::new(u32::from(*peer) + 2).unwrap_or(PeerId::SERVER),
                };
                let known = self.server.has_peer(peer);
                let force = how & 1 == 1;
                let result = if how & 2 != 0 {
                    let codes = [1000, 4000, 1001, 999, 1005, 5000];
                    let code = CloseCode(codes[usize::from(how >> 2) % codes.len()]);
                    self.server.disconnect_peer_with(self.now, peer, code, "bye", force)
                } else {
                    self.server.disconnect_peer(self.now, peer, force)
                };
                assert_eq!(result.is_ok(), known, "{result:?}");
                assert!(!self.server.has_peer(peer), "{peer} still joined after disconnect_peer");
            }
            ServerOp::Refuse => {
                let refuse = !self.server.is_refusing_new_connections();
                self.server.set_refuse_new_connections(refuse);
            }
            ServerOp::Events => self.drain_events(),
            ServerOp::Close => {
                self.server.close(self.now);
                assert_eq!(self.server.connection_status(), ConnectionStatus::Disconnected);
                assert_eq!(self.server.peers().count(), 0, "close leaves no peer joined");
                assert_eq!(self.server.available_packet_count(), 0);
            }
        }
    }

    fn server_ip_count(&self, ip: IpAddr) -> usize {
        // The server does not expose its per-address counts; count live connections instead.
        self.conns
            .iter()
            .filter(|c| c.life != Life::Released)
            .filter(|c| self.server_addr(c.id).is_some_and(|a| a.ip() == ip))
            .count()
    }

    fn server_addr(&self, id: ConnId) -> Option<SocketAddr> {
        let peer = self.server.peer_of(id)?;
        self.server.peer_info(peer)?.addr
    }

    fn transmit(&mut self, id: ConnId, n: usize, vectored: bool) {
        let index = self.conns.iter().position(|c| c.id == id).expect("a tracked id");
        let live = self.conns[index].life == Life::Live;
        let available = if vectored {
            let mut chunks = [&[][..]; 3];
            let k = self.server.transmit_chunks(id, &mut chunks);
            assert!(live || k == 0, "transmit_chunks gave bytes of finished {id}");
            if let Some(first) = self.server.transmit(id) {
                assert!(k > 0 && chunks[0] == first, "poll bytes are the first chunk");
            }
            chunks[..k].iter().map(|c| c.len()).sum::<usize>()
        } else {
            let bytes = self.server.transmit(id);
            assert!(live || bytes.is_none(), "transmit gave bytes of finished {id}");
            bytes.map_or(0, <[u8]>::len)
        };
        let result = self.server.consume_transmit(id, n.min(available));
        if available > 0 {
            assert!(result.is_ok(), "{id} offered bytes, then refused their consumption");
        }
        self.verdict(index, &result);
    }

    fn service(&mut self) {
        while let Some(id) = self.server.poll_release() {
            let Some(c) = self.conns.iter_mut().find(|c| c.id == id) else {
                panic!("poll_release named {id}, which was never accepted");
            };
            assert!(c.life != Life::Released, "poll_release named {id} twice");
            c.life = Life::Released;
            c.backlog.clear();
            self.summary.released += 1;
            assert!(self.server.peer_of(id).is_none());
            assert!(self.server.transmit(id).is_none());
        }
        for c in &self.conns {
            assert!(c.life != Life::Finished, "{} was refused, but poll_release did not name it", c.id);
        }
        let mut resumed = Vec::new();
        while let Some(id) = self.server.poll_resume() {
            assert!(self.live(id), "poll_resume named {id}, which is not live");
            resumed.push(id);
        }
        for id in resumed {
            if let Some(i) = self.conns.iter().position(|c| c.id == id) {
                self.input(i, &[]);
            }
        }
    }

    fn pop(&mut self, n: u8) {
        let count = self.server.available_packet_count();
        let Some(packet) = self.server.peek_packet() else {
            assert_eq!(count, 0, "packets counted, none to peek");
            assert!(!self.server.pop_packet());
            return;
        };
        assert!(count > 0);
        let (from, len) = (packet.info.from, packet.data.len());
        assert!(!from.is_server(), "the server received a packet from itself");
        if n & 1 == 0 {
            assert!(self.server.pop_packet());
        } else {
            let mut buf = vec![0; usize::from(n)];
            match self.server.get_packet(&mut buf) {
                Ok((info, got)) => assert_eq!((info.from, got), (from, len)),
                Err(_) => {
                    assert!(len > buf.len());
                    assert_eq!(self.server.available_packet_count(), count, "a failed read pops nothing");
                    return;
                }
            }
        }
        // Reading may let held-back messages into the inbox at once, so the count need not drop.
        self.summary.packets += 1;
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            self.event(&event);
        }
        let joined: BTreeSet<PeerId> = self.server.peers().collect();
        assert_eq!(joined, self.connected, "peers() disagrees with the events");
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::PeerConnected(p) => {
                assert!(!p.is_server());
                assert!(self.connected.insert(*p), "{p} connected twice");
                assert!(!self.departed.contains(p), "{p} connected again after leaving");
                self.summary.joined += 1;
            }
            Event::PeerDisconnected { peer, .. } => {
                assert!(self.connected.remove(peer), "{peer} disconnected without being connected");
                self.departed.insert(*peer);
                self.summary.left += 1;
            }
            Event::PacketDropped { .. } | Event::ConnectionRejected(_) => {}
            other => panic!("a server reported {other:?}"),
        }
    }

    fn check(&mut self) {
        let live = self.conns.iter().filter(|c| c.life != Life::Released).count();
        assert_eq!(self.server.connection_count(), live, "connection_count");
        assert!(live <= self.config.max_peers, "{live} connections over max_peers");
        assert!(self.server.available_packet_count() <= self.config.inbox.max_packets);
        for peer in self.server.peers() {
            let info = self.server.peer_info(peer).expect("a joined peer has info");
            assert!(self.live(info.conn), "{peer} is on {}, which is not live", info.conn);
            assert_eq!(self.server.peer_of(info.conn), Some(peer));
        }
        let ws = &self.config.ws;
        let inbound =
            (ws.max_message_size + RECORD_OVERHEAD * ws.max_queued_messages).max(ws.max_handshake_size);
        let queue = ws.outbound_queue_size.unwrap_or(0).max(ws.outbound_buffer_size);
        let outbound = (queue + MAX_HEADER_LEN * ws.max_outbound_messages).max(ws.max_handshake_size);
        let per_conn = inbound + outbound + FOOTPRINT_SLACK;
        let inbox = self.config.inbox.max_bytes + self.config.inbox.max_packets * (4 + RECORD_OVERHEAD);
        let bound = per_conn * live + inbox + FOOTPRINT_SLACK;
        let footprint = self.server.buffer_footprint();
        assert!(footprint <= bound, "footprint {footprint} over {bound} with {live} connections");
    }

    /// Closes the server and serves it like an adapter whose transports write everything and
    /// never answer: every connection must be released in bounded virtual time.
    fn finish(&mut self) {
        self.server.close(self.now);
        for _ in 0..64 {
            self.drain_events();
            let ids: Vec<ConnId> = self.conns.iter().filter(|c| c.life == Life::Live).map(|c| c.id).collect();
            for id in ids {
                self.transmit(id, usize::MAX, false);
            }
            self.service();
            self.check();
            if self.server.connection_count() == 0 {
                break;
            }
            self.now =
                self.server.poll_timeout().map_or(self.now, |t| t.max(self.now)) + Duration::from_millis(1);
            self.server.handle_timeout(self.now);
        }
        self.drain_events();
        assert!(self.connected.is_empty(), "{:?} never reported as disconnected", self.connected);
        assert_eq!(self.server.connection_count(), 0, "a closed server kept connections");
    }
}

// ----- client --------------------------------------------------------------------------------

/// One step of a client run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// Raw bytes from the server.
    Raw(Vec<u8>),
    /// An unmasked frame with any first byte.
    Frame {
        /// First byte.
        head: u8,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A protocol message in one binary frame: `kind % 8` picks a Godot 4 id message, Godot 4
    /// SYS `ADD_PEER`, `DEL_PEER`, `RELAY` or an unknown SYS command, a Godot 3 `SYS_ID`,
    /// `SYS_ADD`/`SYS_DEL`, or Godot 3 data; `id` picks the id named (own, 1, others, invalid).
    Message {
        /// Message shape.
        kind: u8,
        /// Id selector.
        id: u8,
        /// Payload after the header.
        payload: Vec<u8>,
    },
    /// The transport takes up to `n` bytes.
    Transmit(u16),
    /// Time advances and `handle_timeout` runs.
    Advance(u8),
    /// `set_target_peer` and `put_packet`.
    Put {
        /// Target selector.
        target: u8,
        /// Length.
        len: u16,
    },
    /// The application reads one packet (`get_packet` into `n` bytes when odd).
    Pop(u8),
    /// The application drains `poll_event`.
    Events,
    /// `disconnect_peer(1, force)` (bit 0), or of another id (bit 1).
    Disconnect(u8),
    /// `close()`.
    Close,
    /// The transport ended.
    Eof,
}

impl ClientOp {
    const RANGES: [(u8, u8); 11] = [
        (0, 24),    // Raw
        (25, 49),   // Frame
        (50, 119),  // Message
        (120, 144), // Transmit
        (145, 164), // Advance
        (165, 189), // Put
        (190, 214), // Pop
        (215, 239), // Events
        (240, 246), // Disconnect
        (247, 250), // Close
        (251, 255), // Eof
    ];

    /// Reads one op.
    pub fn decode(input: &mut Input<'_>) -> Self {
        let tag = input.byte();
        match Self::RANGES.iter().position(|&(lo, hi)| (lo..=hi).contains(&tag)).unwrap_or(0) {
            0 => Self::Raw(input.slice().to_vec()),
            1 => Self::Frame { head: input.byte(), payload: input.slice().to_vec() },
            2 => Self::Message { kind: input.byte(), id: input.byte(), payload: input.slice().to_vec() },
            3 => Self::Transmit(input.u16()),
            4 => Self::Advance(input.byte()),
            5 => Self::Put { target: input.byte(), len: input.u16() },
            6 => Self::Pop(input.byte()),
            7 => Self::Events,
            8 => Self::Disconnect(input.byte()),
            9 => Self::Close,
            _ => Self::Eof,
        }
    }

    /// Writes this op so that [`decode`](Self::decode) reads it back.
    pub fn encode(&self, out: &mut Output) {
        let tag = |i: usize| Self::RANGES[i].0;
        match self {
            Self::Raw(b) => out.byte(tag(0)).slice(b),
            Self::Frame { head, payload } => out.byte(tag(1)).byte(*head).slice(payload),
            Self::Message { kind, id, payload } => out.byte(tag(2)).byte(*kind).byte(*id).slice(payload),
            Self::Transmit(n) => out.byte(tag(3)).u16(*n),
            Self::Advance(s) => out.byte(tag(4)).byte(*s),
            Self::Put { target, len } => out.byte(tag(5)).byte(*target).u16(*len),
            Self::Pop(n) => out.byte(tag(6)).byte(*n),
            Self::Events => out.byte(tag(7)),
            Self::Disconnect(b) => out.byte(tag(8)).byte(*b),
            Self::Close => out.byte(tag(9)),
            Self::Eof => out.byte(tag(10)),
        };
    }
}

/// Encodes a client run: setup byte, then ops.
#[must_use]
pub fn encode_client_run(setup: u8, ops: &[ClientOp]) -> Vec<u8> {
    let mut out = Output::default();
    out.byte(setup);
    ops.iter().for_each(|op| op.encode(&mut out));
    out.bytes
}

/// What a client run reached, for the seed tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSummary {
    /// `ConnectionSucceeded` was reported.
    pub succeeded: bool,
    /// Packets the application read.
    pub packets: usize,
    /// Other peers announced.
    pub peers: usize,
    /// The final status.
    pub status: Option<ConnectionStatus>,
}

/// The id the client receives in the seeds and most runs (`godot-protocol.md` §10.2).
pub const CLIENT_ID: i32 = 12345;

struct ClientHarness {
    client: Client<VecStorage, ChaCha8Rng>,
    protocol: Protocol,
    now: Instant,
    backlog: Vec<u8>,
    status: ConnectionStatus,
    succeeded: bool,
    failed: bool,
    server_gone: bool,
    /// `PeerDisconnected(1)` was reported.
    server_left: bool,
    summary: ClientSummary,
}

/// The client target.
///
/// Setup byte: bit 0 Godot 3, bit 1 relay, bits 2–3 limits (Godot's, or 64-byte messages and
/// two queued), bit 4 no 101 (the ops must supply one), bit 5 no id message after the 101.
///
/// Checks after every op: no panic; the status never goes back (Disconnected is final);
/// `ConnectionSucceeded` at most once, after `PeerConnected(1)` and with an id; at most one of
/// `ConnectionFailed` (only before success) and `ServerDisconnected` (only after); no event
/// names the client's own id; `PeerDisconnected(1)` at most once, and only as the connection
/// ends; packets come from valid ids other than the client's own, and only while connected;
/// `available_packet_count` is at most the queue limit; `put_packet` fails when not connected.
pub fn client_stateful(data: &[u8]) {
    run_client(data);
}

/// Runs one client input.
///
/// # Panics
/// When an invariant breaks.
pub fn run_client(data: &[u8]) -> ClientSummary {
    let mut input = Input::new(data);
    let setup = input.byte();
    let protocol = if setup & 1 == 1 { Protocol::Godot3 } else { Protocol::Godot4 };
    let ws = match setup >> 2 & 3 {
        0 => ws::Config::GODOT,
        1 => ws::Config {
            max_message_size: 64,
            max_queued_messages: 2,
            outbound_buffer_size: 64,
            ..ws::Config::GODOT
        },
        2 => ws::Config { max_queued_messages: 1, max_outbound_messages: 1, ..ws::Config::GODOT },
        _ => ws::Config { heartbeat_interval: Some(Duration::from_millis(100)), ..ws::Config::GODOT },
    };
    let config = ClientConfig { protocol, relay: setup & 2 != 0, ws };
    let request = ClientRequest {
        host: "server.example",
        port: Some(9080),
        resource: "/",
        protocols: &[],
        extra_headers: &[],
    };
    let rng = ChaCha8Rng::seed_from_u64(u64::from(setup));
    let client = Client::new(Instant::ZERO, &request, config, rng).expect("a plain request fits");
    let mut h = ClientHarness {
        client,
        protocol,
        now: Instant::ZERO,
        backlog: Vec::new(),
        status: ConnectionStatus::Connecting,
        succeeded: false,
        failed: false,
        server_gone: false,
        server_left: false,
        summary: ClientSummary::default(),
    };
    let sent = h.client.poll_transmit().expect("the request is queued").to_vec();
    let at = sent.windows(19).position(|w| w == b"Sec-WebSocket-Key: ").expect("a key") + 19;
    let accept = accept_key(&sent[at..at + 24]);
    h.client.consume_transmit(sent.len());
    if setup & 16 == 0 {
        let mut response =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n".to_vec();
        response.extend_from_slice(b"Sec-WebSocket-Accept: ");
        response.extend_from_slice(&accept);
        response.extend_from_slice(b"\r\n\r\n");
        h.receive(&response);
        if setup & 32 == 0 {
            let id = match protocol {
                Protocol::Godot4 => server_frame(0x82, &CLIENT_ID.to_le_bytes()),
                Protocol::Godot3 => {
                    let mut both = server_frame(0x82, &godot3::sys_message(MessageType::Id, CLIENT_ID));
                    both.extend(server_frame(0x82, &godot3::sys_message(MessageType::Add, 1)));
                    both
                }
            };
            h.receive(&id);
        }
        h.check();
    }
    let mut ops = 0;
    while !input.is_empty() && ops < 4096 {
        let op = ClientOp::decode(&mut input);
        h.apply(&op);
        h.check();
        ops += 1;
    }
    h.client.handle_eof(h.now);
    h.drain_events();
    h.check();
    assert_eq!(h.client.connection_status(), ConnectionStatus::Disconnected, "still connected after EOF");
    h.summary.status = Some(h.status);
    h.summary.succeeded = h.succeeded;
    h.summary
}

impl ClientHarness {
    fn receive(&mut self, bytes: &[u8]) {
        self.backlog.extend_from_slice(bytes);
        let n = self.client.handle_input(self.now, &self.backlog);
        assert!(n <= self.backlog.len());
        self.backlog.drain(..n);
    }

    fn own(&self) -> i32 {
        self.client.unique_id().map_or(CLIENT_ID, PeerId::get)
    }

    fn id(&self, sel: u8) -> i32 {
        match sel & 7 {
            0 => self.own(),
            1 => 1,
            2 => 2 + i32::from(sel >> 3),
            3 => 0,
            4 => -i32::from(sel >> 3) - 1,
            5 => i32::MIN,
            6 => i32::MAX,
            _ => 67890,
        }
    }

    fn apply(&mut self, op: &ClientOp) {
        match op {
            ClientOp::Raw(bytes) => self.receive(bytes),
            ClientOp::Frame { head, payload } => self.receive(&server_frame(*head, payload)),
            ClientOp::Message { kind, id, payload } => {
                let id = self.id(*id);
                let message = match kind & 7 {
                    0 => [&id.to_le_bytes()[..], payload].concat(),
                    1 => [&scene::header(SysCommand::AddPeer, id)[..], payload].concat(),
                    2 => [&scene::header(SysCommand::DelPeer, id)[..], payload].concat(),
                    3 => [&scene::header(SysCommand::Relay, id)[..], b"\x03", payload].concat(),
                    4 => [&[7, kind >> 3][..], &id.to_le_bytes(), payload].concat(),
                    5 => [&godot3::sys_message(MessageType::Id, id)[..], payload].concat(),
                    6 => {
                        let kind = if kind & 8 == 0 { MessageType::Add } else { MessageType::Del };
                        [&godot3::sys_message(kind, id)[..], payload].concat()
                    }
                    _ => [&Header { kind: kind >> 3 & 3, from: id, to: self.own() }.encode()[..], payload]
                        .concat(),
                };
                self.receive(&server_frame(0x82, &message));
            }
            ClientOp::Transmit(n) => {
                let available = self.client.poll_transmit().map_or(0, <[u8]>::len);
                self.client.consume_transmit(usize::from(*n).min(available));
            }
            ClientOp::Advance(step) => {
                self.now = advance(self.now, self.client.poll_timeout(), *step);
                self.client.handle_timeout(self.now);
            }
            ClientOp::Put { target, len } => {
                let target = Target::from_godot(self.id(*target)).unwrap_or(Target::Broadcast);
                self.client.set_target_peer(target);
                let result = self.client.put_packet(&pattern(usize::from(*len), 7));
                if self.client.connection_status() != ConnectionStatus::Connected {
                    assert!(result.is_err(), "put_packet while not connected");
                }
            }
            ClientOp::Pop(n) => {
                self.drain_events();
                let count = self.client.available_packet_count();
                let Some(packet) = self.client.peek_packet() else {
                    assert!(!self.client.pop_packet());
                    return;
                };
                assert!(count > 0);
                // Packets that arrived while joined stay readable after the connection ends
                // (nothing received is lost); a client that never joined has none.
                assert!(
                    self.client.connection_status() == ConnectionStatus::Connected || self.succeeded,
                    "packet before the join"
                );
                let from = packet.info.from;
                assert!(from.get() > 0 && Some(from) != self.client.unique_id(), "packet from {from}");
                if n & 1 == 1 {
                    let mut buf = vec![0; usize::from(*n)];
                    if self.client.get_packet(&mut buf).is_err() {
                        return;
                    }
                } else {
                    assert!(self.client.pop_packet());
                }
                self.summary.packets += 1;
            }
            ClientOp::Events => self.drain_events(),
            ClientOp::Disconnect(b) => {
                let peer =
                    if b & 2 == 0 { PeerId::SERVER } else { PeerId::new(67890).unwrap_or(PeerId::SERVER) };
                let was = self.client.connection_status();
                let result = self.client.disconnect_peer(self.now, peer, b & 1 == 1);
                assert_eq!(result.is_ok(), peer.is_server() && was != ConnectionStatus::Disconnected);
            }
            ClientOp::Close => {
                self.client.close(self.now);
                assert_eq!(self.client.connection_status(), ConnectionStatus::Disconnected);
            }
            ClientOp::Eof => self.client.handle_eof(self.now),
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.client.poll_event() {
            self.event(event);
        }
    }

    fn event(&mut self, event: Event) {
        let own = self.client.unique_id();
        match event {
            Event::PeerConnected(p) => {
                assert_ne!(Some(p), own, "PeerConnected names the client itself");
                assert!(!self.server_gone && !self.failed, "PeerConnected({p}) after the end");
                if !p.is_server() {
                    self.summary.peers += 1;
                }
            }
            Event::PeerDisconnected { peer, .. } => {
                assert_ne!(Some(peer), own, "PeerDisconnected names the client itself");
                if peer.is_server() {
                    assert!(!self.server_left, "PeerDisconnected(1) twice");
                    assert!(self.succeeded, "PeerDisconnected(1) before the join");
                    self.server_left = true;
                }
            }
            Event::ConnectionSucceeded => {
                assert!(!self.succeeded && !self.failed, "ConnectionSucceeded again or after failing");
                assert!(own.is_some(), "ConnectionSucceeded without an id");
                self.succeeded = true;
            }
            Event::ConnectionFailed(_) => {
                assert!(!self.succeeded && !self.failed, "ConnectionFailed after success or twice");
                self.failed = true;
            }
            Event::ServerDisconnected(_) => {
                assert!(self.succeeded && !self.server_gone, "ServerDisconnected before the join or twice");
                self.server_gone = true;
            }
            Event::PacketDropped { .. } => {}
            other => panic!("a client reported {other:?}"),
        }
    }

    fn check(&mut self) {
        let status = self.client.connection_status();
        let order = |s: ConnectionStatus| match s {
            ConnectionStatus::Connecting => 0,
            ConnectionStatus::Connected => 1,
            ConnectionStatus::Disconnected => 2,
        };
        assert!(order(status) >= order(self.status), "status went back from {:?} to {status:?}", self.status);
        self.status = status;
        if status == ConnectionStatus::Connected {
            let id = self.client.unique_id().expect("a connected client has an id");
            assert!(!id.is_server());
        }
        let queued = self.client.connection().config().max_queued_messages;
        assert!(self.client.available_packet_count() <= queued);
        if self.server_left {
            assert_eq!(status, ConnectionStatus::Disconnected, "PeerDisconnected(1) while connected");
        }
        let _ = self.protocol;
    }
}
