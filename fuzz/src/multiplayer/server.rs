//! The server target: a `peer::Server` with several connections, driven like an adapter and
//! an application would.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::collections::BTreeSet;

use chacha20::ChaCha8Rng;
use multipeer::Instant;
use multipeer::peer::godot3::Header;
use multipeer::peer::scene::{self, SysCommand};
use multipeer::peer::{
    ConnId, ConnectionStatus, Event, MultiplayerPeer, PeerId, Protocol, RoomConfig, RoomMode, Server,
    ServerConfig, Target,
};
use multipeer::queue::QueueLimits;
use multipeer::rand_core::SeedableRng;
use multipeer::ws::frame::MAX_HEADER_LEN;
use multipeer::ws::{self, CloseCode};

use super::super::connection::{FOOTPRINT_SLACK, RECORD_OVERHEAD, server_request};
use super::super::input::{Input, Output};
use super::{GOOD_ORIGIN, advance, masked_frame, pattern};

/// Bytes a large `Packet` has at least.
const LARGE: usize = 4096;

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
            // Flow control: a short slow-peer timeout (or none), and tight inbound rate limits,
            // from the handshake-timeout nibble so the existing seeds keep their meaning.
            slow_peer_timeout: match b3 & 3 {
                0 => None,
                1 => Some(Duration::from_millis(300)),
                _ => d.slow_peer_timeout,
            },
            max_inbound_packets_per_second: (b3 & 4 != 0).then_some(20),
            max_inbound_bytes_per_second: (b3 & 8 != 0).then_some(2000),
            // Rooms by path, few and small, so that limits and isolation are reached.
            rooms: if b0 & 0x40 != 0 {
                RoomConfig {
                    mode: RoomMode::ByPath,
                    max_rooms: 2,
                    max_peers_per_room: Some(2),
                    ..RoomConfig::default()
                }
            } else {
                RoomConfig::default()
            },
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
    /// header with a spoofed or system type; bit 7 of `kind` makes the payload 4 KiB or more.
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
    /// The application reads: `peek_packet` + `pop_packet`, `get_packet` into a small buffer
    /// (odd), or `forward_packet` (bit 1 of an even selector).
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
    /// Departed peers whose connection's end was reported (`PeerClosed`).
    closed: BTreeSet<PeerId>,
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
        closed: BTreeSet::new(),
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
                if self.config.rooms.mode != RoomMode::Single {
                    // The room, from the shape byte: the default one, two named, a hostile name.
                    let path: &[u8] = [&b"/"[..], b"/a", b"/b?x=1", b"/../%2e"][usize::from(mode >> 4 & 3)];
                    if let Some(end) = request.iter().skip(4).position(|&b| b == b' ') {
                        request.splice(4..4 + end, path.iter().copied());
                    }
                }
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
                // Bit 7: a large packet (the payload repeated past 4 KiB), which the server may
                // hold in its connection for the application instead of copying it.
                let large;
                let payload = if kind & 0x80 != 0 && kind & 3 != 3 {
                    large = if payload.is_empty() {
                        vec![0; LARGE]
                    } else {
                        payload.repeat(LARGE / payload.len() + 1)
                    };
                    &large
                } else {
                    payload
                };
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
        if n & 3 == 2 {
            // Forwarded from where it lies: to its sender, or any target.
            let target = if n & 4 == 0 { Target::Peer(from) } else { self.target(n >> 3) };
            if self.server.forward_packet(target).is_err() {
                assert_eq!(self.server.available_packet_count(), count, "a failed forward pops nothing");
                return;
            }
        } else if n & 1 == 0 {
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
            Event::PeerClosed { peer, .. } => {
                assert!(self.departed.contains(peer), "{peer} closed without having left");
                assert!(self.closed.insert(*peer), "{peer} closed twice");
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
        // Each packet's record: a sender id (4 bytes) before a copy, or where a held packet
        // lies (8).
        let inbox = self.config.inbox.max_bytes + self.config.inbox.max_packets * (8 + RECORD_OVERHEAD);
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
