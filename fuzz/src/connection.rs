//! Stateful targets: one [`Connection`] per run, client or server, fed arbitrary transport
//! bytes interleaved with every application command and with advancing virtual time.
//!
//! An input is a [`Setup`] (limits, timers, storage), a role-specific prologue (the server
//! usually receives a valid upgrade request; the client usually receives a valid 101 for the
//! key it chose), then [`Op`]s until the input runs out. After every op the invariants of
//! [`Harness::check`] must hold; at the end the harness drains the connection like an adapter
//! would, checks it never stalls, ends the transport, and reads back everything the connection
//! wrote ([`crate::wire::check_output`]).

use chacha20::ChaCha8Rng;
use multipeer::rand_core::SeedableRng;
use multipeer::ws::frame::{CloseCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use multipeer::ws::handshake::{ClientRequest, HandshakeError, accept_key};
use multipeer::ws::{
    Config, Connection, Event, MAX_HEADERS, MaskKeys, MessageKind, Role, SendError, SharedFrame, State,
};
use multipeer::{FixedStorage, Instant, Storage, VecStorage};

use core::time::Duration;

use super::input::{Input, Output};
use super::parsers::{PROTOCOLS, SAMPLE_KEY, offered_list};
use super::wire::{check_output, reference_messages};

/// Room beyond the configured limits that the storage may hold: the control-frame reserve of
/// the outbound queue (8 × (14 + 125) bytes) plus the 101 or error head, both under 2 KiB.
pub const FOOTPRINT_SLACK: usize = 2048;

/// Bookkeeping bytes the inbound queue may keep per message, at most.
pub const RECORD_OVERHEAD: usize = 8;

/// Small fixed storage: handshakes just fit, messages often do not.
pub type SmallFixed = FixedStorage<256, 256>;
/// Fixed storage larger than most configured limits.
pub type LargeFixed = FixedStorage<4096, 2048>;

/// Limits, timers and storage, decoded from the first nine bytes.
///
/// Each byte maps to a small value so that limits are hit, and 255 to Godot's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup(pub [u8; 9]);

impl Setup {
    /// Godot's defaults on heap storage, without heartbeat.
    pub const GODOT: Self = Self([0, 255, 255, 255, 255, 255, 255, 255, 0x88]);
    /// Tight limits on heap storage with a 100 ms heartbeat: 64-byte messages, 2 queued each
    /// way, 3 fragments, 64 outbound bytes.
    pub const TIGHT: Self = Self([6 << 2, 32, 2, 16, 2, 255, 16, 3, 0x22]);

    /// Reads a setup.
    pub fn decode(input: &mut Input<'_>) -> Self {
        Self(core::array::from_fn(|_| input.byte()))
    }

    /// Writes this setup.
    pub fn encode(&self, out: &mut Output) {
        out.raw(&self.0);
    }

    /// The connection's configuration (before the connection clamps it).
    #[must_use]
    // `..Config::GODOT` at the end: a field added to `Config` later starts at Godot's default
    // instead of breaking the fuzz build.
    #[allow(clippy::needless_update)]
    pub fn config(&self) -> Config {
        let [b0, msg, queued, outbound, out_msgs, handshake, headers, fragments, timeouts] = self.0;
        let or_default = |b: u8, default: usize, f: fn(usize) -> usize| {
            if b == 255 { default } else { f(usize::from(b)) }
        };
        let d = Config::GODOT;
        let hundred_ms = |n: u8| Duration::from_millis(u64::from(n) * 100);
        Config {
            max_message_size: or_default(msg, d.max_message_size, |b| b * 2),
            max_queued_messages: or_default(queued, d.max_queued_messages, |b| b % 8),
            outbound_buffer_size: or_default(outbound, d.outbound_buffer_size, |b| b * 4),
            max_outbound_messages: or_default(out_msgs, d.max_outbound_messages, |b| b % 8),
            // Bits 3–4 of the same byte: no separate queue size, one below the largest message
            // (raised to it), or room for several largest messages.
            outbound_queue_size: match out_msgs >> 3 & 3 {
                _ if out_msgs == 255 => d.outbound_queue_size,
                0 => None,
                1 => Some(usize::from(outbound) * 2),
                _ => Some(usize::from(outbound) * 4 * usize::from(out_msgs >> 3 & 3)),
            },
            max_handshake_size: or_default(handshake, d.max_handshake_size, |b| {
                if b < 128 { 64 + b * 4 } else { 1024 }
            }),
            max_headers: or_default(headers, d.max_headers, |b| b % 24),
            max_fragments: or_default(fragments, d.max_fragments, |b| b % 8),
            handshake_timeout: hundred_ms(timeouts & 15),
            close_timeout: hundred_ms(timeouts >> 4),
            // Zero included: Godot reads a zero interval as "off".
            heartbeat_interval: match b0 >> 2 {
                0 => None,
                n => Some(Duration::from_millis(u64::from(n - 1) * 20)),
            },
            ..d
        }
    }

    /// Which storage the connection uses: heap (0, 1), [`SmallFixed`] (2), [`LargeFixed`] (3).
    #[must_use]
    pub fn storage(&self) -> u8 {
        self.0[0] & 3
    }
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Bytes arrive from the transport; the backlog of unaccepted bytes is offered.
    Receive(Vec<u8>),
    /// A frame arrives, built from its first byte (FIN, RSV, opcode, taken as is), `flags`
    /// (bit 0: mask it wrongly for the role; bits 1–2: 16- or 64-bit length even when short;
    /// the rest: the mask key) and the payload.
    Frame {
        /// FIN, RSV and opcode bits.
        head: u8,
        /// Masking and length form.
        flags: u8,
        /// The unmasked payload.
        payload: Vec<u8>,
    },
    /// The transport takes up to `n >> 1` bytes: of `poll_transmit` when `n` is even, of
    /// `transmit_chunks` (a vectored write of up to 3 slices) when odd.
    Transmit(u16),
    /// The application reads one message with `peek_message` + `pop_message`.
    Pop,
    /// The application reads one message with `recv` into a buffer of this size.
    Recv(u8),
    /// The application sends a message: `kind % 8` picks 0 `send_binary`, 1 `send_text`
    /// (two-byte characters), 2 `send` of invalid UTF-8 as text, 3 `send` as binary, 4
    /// `send_parts` of text split inside a character, 5 `send_parts` of binary, 6
    /// `send_shared` binary, 7 `send_shared` text.
    Send {
        /// Which call.
        kind: u8,
        /// Payload length.
        len: u16,
    },
    /// The application pings with a payload of this length.
    Ping(u8),
    /// The application closes with a code from a table (valid and invalid) and a reason of
    /// `reason` bytes.
    Close {
        /// Index into the code table.
        code: u8,
        /// Reason length.
        reason: u8,
    },
    /// Virtual time advances (µs, ms, 100 ms steps, or to the next timeout) and
    /// `handle_timeout` runs.
    Advance(u8),
    /// The application answers the upgrade request: accept, accept_supported or reject.
    Decide(u8),
    /// The application drains `poll_event`.
    Events,
    /// The application echoes the oldest message with `forward_message`.
    Forward,
    /// The transport reports end of stream.
    Eof,
    /// The application aborts.
    Abort,
}

impl Op {
    // First byte ranges; terminal ops are rare so runs go deep.
    const RANGES: [(u8, u8); 14] = [
        (0, 59),    // Receive
        (60, 119),  // Frame
        (120, 149), // Transmit
        (150, 164), // Pop
        (165, 174), // Recv
        (175, 199), // Send
        (200, 209), // Ping
        (210, 216), // Close
        (217, 236), // Advance
        (237, 244), // Decide
        (245, 248), // Events
        (249, 251), // Forward
        (252, 253), // Eof
        (254, 255), // Abort
    ];

    /// Reads one op.
    pub fn decode(input: &mut Input<'_>) -> Self {
        let tag = input.byte();
        let index = Self::RANGES.iter().position(|&(lo, hi)| (lo..=hi).contains(&tag)).unwrap_or(0);
        match index {
            0 => Self::Receive(input.slice().to_vec()),
            1 => Self::Frame { head: input.byte(), flags: input.byte(), payload: input.slice().to_vec() },
            2 => Self::Transmit(input.u16()),
            3 => Self::Pop,
            4 => Self::Recv(input.byte()),
            5 => Self::Send { kind: input.byte(), len: input.u16() },
            6 => Self::Ping(input.byte()),
            7 => Self::Close { code: input.byte(), reason: input.byte() },
            8 => Self::Advance(input.byte()),
            9 => Self::Decide(input.byte()),
            10 => Self::Events,
            11 => Self::Forward,
            12 => Self::Eof,
            _ => Self::Abort,
        }
    }

    /// Writes this op so that [`decode`](Self::decode) reads it back.
    pub fn encode(&self, out: &mut Output) {
        let tag = |i: usize| Self::RANGES[i].0;
        match self {
            Self::Receive(bytes) => out.byte(tag(0)).slice(bytes),
            Self::Frame { head, flags, payload } => out.byte(tag(1)).byte(*head).byte(*flags).slice(payload),
            Self::Transmit(n) => out.byte(tag(2)).u16(*n),
            Self::Pop => out.byte(tag(3)),
            Self::Recv(n) => out.byte(tag(4)).byte(*n),
            Self::Send { kind, len } => out.byte(tag(5)).byte(*kind).u16(*len),
            Self::Ping(n) => out.byte(tag(6)).byte(*n),
            Self::Close { code, reason } => out.byte(tag(7)).byte(*code).byte(*reason),
            Self::Advance(n) => out.byte(tag(8)).byte(*n),
            Self::Decide(n) => out.byte(tag(9)).byte(*n),
            Self::Events => out.byte(tag(10)),
            Self::Forward => out.byte(tag(11)),
            Self::Eof => out.byte(tag(12)),
            Self::Abort => out.byte(tag(13)),
        };
    }
}

/// Close codes the `Close` op picks from: valid ones first, then ones that may not be sent.
pub const CLOSE_CODES: [u16; 12] = [1000, 1001, 4000, 3000, 1011, 1009, 1005, 1006, 1015, 999, 5000, 1004];

/// The server target: a server connection, usually sent a valid upgrade request first.
///
/// Prologue byte: `& 3 == 0` sends nothing; otherwise a valid request whose bits 2–4 pick
/// lower-case names, no `Host`, and `Upgrade: WebSocket` with `Connection: keep-alive,
/// Upgrade`, and bits 5–7 the protocols offered.
pub fn connection_server(data: &[u8]) {
    run_connection(Role::Server, data);
}

/// What a run reached, so tests can tell that a seed goes where it is meant to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The connection opened.
    pub opened: bool,
    /// Messages the application read.
    pub messages: usize,
    /// The Closed or HandshakeFailed event.
    pub terminal: Option<Event>,
    /// Bytes the transport took.
    pub written: usize,
}

/// Runs one connection input in `role` and tells what it reached.
///
/// # Panics
/// When an invariant breaks.
pub fn run_connection(role: Role, data: &[u8]) -> Summary {
    let mut input = Input::new(data);
    let setup = Setup::decode(&mut input);
    match (role, setup.storage()) {
        (Role::Server, 0 | 1) => run_server::<VecStorage>(setup, input, None),
        (Role::Server, 2) => run_server::<SmallFixed>(setup, input, Some(512)),
        (Role::Server, _) => run_server::<LargeFixed>(setup, input, Some(6144)),
        (Role::Client, 0 | 1) => run_client::<VecStorage>(setup, input, None),
        (Role::Client, 2) => run_client::<SmallFixed>(setup, input, Some(512)),
        (Role::Client, _) => run_client::<LargeFixed>(setup, input, Some(6144)),
    }
}

/// The upgrade request of the server prologue byte `mode`, if it sends one.
#[must_use]
pub fn server_request(mode: u8) -> Option<Vec<u8>> {
    if mode & 3 == 0 {
        return None;
    }
    let lower = mode & 4 != 0;
    let name = |n: &str| if lower { n.to_ascii_lowercase() } else { n.to_owned() };
    let mut head = String::from("GET /chat?room=1 HTTP/1.1\r\n");
    if mode & 8 == 0 {
        head += &format!("{}: server.example:9080\r\n", name("Host"));
    }
    let (upgrade, connection) =
        if mode & 16 == 0 { ("websocket", "Upgrade") } else { ("WebSocket", "keep-alive, Upgrade") };
    head += &format!("{}: {upgrade}\r\n{}: {connection}\r\n", name("Upgrade"), name("Connection"));
    head += &format!("{}: {}\r\n", name("Sec-WebSocket-Key"), core::str::from_utf8(SAMPLE_KEY).unwrap_or(""));
    head += &format!("{}: 13\r\n", name("Sec-WebSocket-Version"));
    let offered = offered_list(mode >> 5);
    if !offered.is_empty() {
        head += &format!("{}: {offered}\r\n", name("Sec-WebSocket-Protocol"));
    }
    head += "\r\n";
    Some(head.into_bytes())
}

fn run_server<S: Storage>(setup: Setup, mut input: Input<'_>, fixed: Option<usize>) -> Summary {
    let now = Instant::ZERO;
    let conn = Connection::<S>::server(now, setup.config());
    let mut h = Harness::new(conn, Role::Server, fixed, String::new());
    if let Some(request) = server_request(input.byte()) {
        h.receive(&request);
        h.check();
    }
    h.run(input)
}

/// The client target: a client connection, usually answered with a valid 101 first.
///
/// First prologue byte: bits 0–2 the protocols offered, bit 3 an extra header, bit 4 an
/// explicit port, bit 5 the request is written out before the answer arrives. Second: `& 3 ==
/// 0` sends nothing; otherwise a 101 whose bits 2–3 choose the protocol (none, the first
/// offered, the last offered, one never offered), bit 4 lower-case names, bit 5 an extra header.
pub fn connection_client(data: &[u8]) {
    run_connection(Role::Client, data);
}

/// The 101 answer of the client prologue byte `mode` to a request offering `offered`.
#[must_use]
pub fn client_response(mode: u8, accept: &[u8], offered: &[&str]) -> Option<Vec<u8>> {
    if mode & 3 == 0 {
        return None;
    }
    let lower = mode & 16 != 0;
    let name = |n: &str| if lower { n.to_ascii_lowercase() } else { n.to_owned() };
    let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    head += &format!("{}: websocket\r\n{}: Upgrade\r\n", name("Upgrade"), name("Connection"));
    head += &format!("{}: {}\r\n", name("Sec-WebSocket-Accept"), String::from_utf8_lossy(accept));
    let protocol = match mode >> 2 & 3 {
        0 => None,
        1 => offered.first().copied(),
        2 => offered.last().copied(),
        _ => Some("never-offered"),
    };
    if let Some(p) = protocol {
        head += &format!("{}: {p}\r\n", name("Sec-WebSocket-Protocol"));
    }
    if mode & 32 != 0 {
        head += "X-Extra: 1\r\n";
    }
    head += "\r\n";
    Some(head.into_bytes())
}

fn run_client<S: Storage>(setup: Setup, mut input: Input<'_>, fixed: Option<usize>) -> Summary {
    let now = Instant::ZERO;
    let request_mode = input.byte();
    let protocols: Vec<&str> =
        PROTOCOLS.iter().enumerate().filter(|(i, _)| request_mode >> i & 1 == 1).map(|(_, p)| *p).collect();
    let extra: &[&str] = if request_mode & 8 != 0 { &["X-Token: abc123"] } else { &[] };
    let request = ClientRequest {
        host: "server.example",
        port: (request_mode & 16 != 0).then_some(9080),
        resource: "/lobby?x=1",
        protocols: &protocols,
        extra_headers: extra,
    };
    let rng = ChaCha8Rng::seed_from_u64(u64::from(setup.0[0]));
    let conn = match Connection::<S, ChaCha8Rng>::client(now, &request, setup.config(), rng) {
        Ok(conn) => conn,
        Err(e) => {
            assert!(matches!(e, HandshakeError::HeadTooLarge { .. }), "{e:?}");
            return Summary::default();
        }
    };
    let mut h = Harness::new(conn, Role::Client, fixed, protocols.join(","));
    let sent = h.conn.poll_transmit().expect("the request is queued at once").to_vec();
    let key_at =
        sent.windows(19).position(|w| w == b"Sec-WebSocket-Key: ").expect("the request has a key") + 19;
    let accept = accept_key(&sent[key_at..key_at + 24]);
    if request_mode & 32 != 0 {
        h.transmit_all();
    }
    let response_mode = input.byte();
    if let Some(response) = client_response(response_mode, &accept, &protocols) {
        h.receive(&response);
        h.check();
    }
    h.run(input)
}

/// What the harness compares before and after `handle_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    state: State,
    buffered: usize,
    finished: bool,
    timeout: Option<Instant>,
    messages: usize,
    outbound_messages: usize,
}

/// The events seen so far, checked as they arrive.
#[derive(Debug, Default)]
struct EventLog {
    request: bool,
    open: bool,
    terminal: Option<Event>,
}

/// A connection with the adapter state around it: virtual time, unaccepted input, and
/// everything written to the "transport".
pub struct Harness<S: Storage, R: MaskKeys> {
    conn: Connection<S, R>,
    role: Role,
    now: Instant,
    /// Bytes received but not yet accepted (back-pressure).
    backlog: Vec<u8>,
    /// Bytes the transport took.
    wire: Vec<u8>,
    events: EventLog,
    /// `IN + OUT` for fixed storage.
    fixed: Option<usize>,
    /// Client: the protocols offered, comma-separated.
    offered: String,
    rank: u8,
    /// Messages the application read, in order.
    delivered: Vec<(MessageKind, Vec<u8>)>,
    /// Bytes the connection accepted while it was still reading.
    accepted: Vec<u8>,
    /// Whether the connection closed while reading input (a Close frame, a protocol error),
    /// rather than by a command, a timer or the end of the transport.
    closed_by_input: bool,
}

fn rank(state: State) -> u8 {
    match state {
        State::Connecting => 0,
        State::Open => 1,
        State::Closing => 2,
        State::Closed => 3,
    }
}

impl<S: Storage, R: MaskKeys> Harness<S, R> {
    fn new(conn: Connection<S, R>, role: Role, fixed: Option<usize>, offered: String) -> Self {
        Self {
            conn,
            role,
            now: Instant::ZERO,
            backlog: Vec::new(),
            wire: Vec::new(),
            events: EventLog::default(),
            fixed,
            offered,
            rank: 0,
            delivered: Vec::new(),
            accepted: Vec::new(),
            closed_by_input: false,
        }
    }

    fn run(&mut self, mut input: Input<'_>) -> Summary {
        while !input.is_empty() {
            let op = Op::decode(&mut input);
            self.apply(&op);
            self.check();
        }
        self.finish();
        Summary {
            opened: self.events.open,
            messages: self.delivered.len(),
            terminal: self.events.terminal.clone(),
            written: self.wire.len(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.conn.state(),
            buffered: self.conn.buffered_amount(),
            finished: self.conn.is_finished(),
            timeout: self.conn.poll_timeout(),
            messages: self.conn.available_messages(),
            outbound_messages: self.conn.queued_outbound_messages(),
        }
    }

    /// Appends `bytes` to the backlog and offers the backlog.
    fn receive(&mut self, bytes: &[u8]) {
        self.backlog.extend_from_slice(bytes);
        self.offer();
    }

    /// Offers the backlog; returns how many bytes were accepted.
    fn offer(&mut self) -> usize {
        let closed = self.conn.state() == State::Closed;
        let n = self.conn.handle_input(self.now, &self.backlog);
        assert!(n <= self.backlog.len(), "accepted {n} of {} bytes", self.backlog.len());
        if closed {
            assert_eq!(n, self.backlog.len(), "a closed connection discards its input");
        } else {
            self.accepted.extend_from_slice(&self.backlog[..n]);
            self.closed_by_input = self.conn.state() == State::Closed;
        }
        self.backlog.drain(..n);
        n
    }

    /// Lets the transport take up to `n` bytes.
    fn transmit(&mut self, n: usize) {
        let before = self.conn.buffered_amount();
        let available = self.conn.poll_transmit().unwrap_or_default();
        let taken = n.min(available.len());
        self.wire.extend_from_slice(&available[..taken]);
        self.conn.consume_transmit(taken);
        assert_eq!(self.conn.buffered_amount(), before - taken);
    }

    /// Lets the transport take everything, one `poll_transmit` slice at a time.
    fn transmit_all(&mut self) {
        while self.conn.buffered_amount() > 0 {
            let before = self.conn.buffered_amount();
            self.transmit(usize::MAX);
            assert!(self.conn.buffered_amount() < before, "poll_transmit gave nothing to write");
        }
    }

    /// Lets the transport take up to `n` bytes in one vectored write.
    fn transmit_vectored(&mut self, n: usize) {
        let before = self.conn.buffered_amount();
        let mut slots: [&[u8]; 3] = [&[]; 3];
        let filled = self.conn.transmit_chunks(&mut slots);
        assert!(filled <= slots.len());
        let mut taken = 0;
        for chunk in &slots[..filled] {
            assert!(!chunk.is_empty(), "an empty chunk");
            let step = chunk.len().min(n - taken);
            self.wire.extend_from_slice(&chunk[..step]);
            taken += step;
        }
        self.conn.consume_transmit(taken);
        assert_eq!(self.conn.buffered_amount(), before - taken);
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.record(event);
        }
    }

    fn record(&mut self, event: Event) {
        let log = &mut self.events;
        assert!(log.terminal.is_none(), "{event:?} after {:?}", log.terminal);
        match &event {
            Event::Request => {
                assert!(self.role == Role::Server && !log.request && !log.open, "{event:?}");
                log.request = true;
            }
            Event::Open => {
                assert!(!log.open && (self.role == Role::Client || log.request), "{event:?}");
                log.open = true;
            }
            Event::Pong(_) => assert!(log.open, "a pong before the connection opened"),
            Event::HandshakeFailed(e) => {
                assert!(!log.open, "handshake failed after opening");
                assert_eq!(self.conn.handshake_error(), Some(*e));
                log.terminal = Some(event);
            }
            Event::Closed(info) => {
                assert!(log.open, "closed without having opened");
                assert_eq!(self.conn.close_info(), Some(info));
                log.terminal = Some(event);
            }
            other => panic!("an event this harness does not know: {other:?}"),
        }
    }

    /// The invariants that hold after every step.
    fn check(&mut self) {
        let conn = &self.conn;
        let config = *conn.config();
        let state = conn.state();
        let r = rank(state);
        assert!(r >= self.rank, "state went back to {state:?}");
        self.rank = r;
        assert!(!conn.is_finished() || state == State::Closed, "finished while {state:?}");
        if state == State::Closed {
            assert!(
                conn.close_info().is_some() != conn.handshake_error().is_some(),
                "closed with {:?} and {:?}",
                conn.close_info(),
                conn.handshake_error()
            );
        } else {
            assert!(conn.close_info().is_none() && conn.handshake_error().is_none());
        }
        if state == State::Connecting {
            assert_eq!(conn.available_messages(), 0);
        }
        assert!(conn.available_messages() <= config.max_queued_messages);
        assert!(conn.queued_outbound_messages() <= config.max_outbound_messages);
        let mut chunks: [&[u8]; 64] = [&[]; 64];
        let filled = conn.transmit_chunks(&mut chunks);
        let queued: usize = chunks[..filled].iter().map(|c| c.len()).sum();
        if filled < chunks.len() {
            assert_eq!(queued, conn.buffered_amount(), "the chunks are everything queued");
        }
        let front = conn.poll_transmit();
        assert_eq!(front.is_some(), conn.buffered_amount() > 0);
        assert_eq!(front, chunks[..filled].first().copied(), "poll_transmit is the first chunk");
        if let Some(m) = conn.peek_message() {
            assert!(m.data.len() <= config.max_message_size);
            if m.kind == MessageKind::Text {
                assert!(core::str::from_utf8(m.data).is_ok(), "a text message that is not UTF-8");
            }
        }
        if let Some(p) = conn.protocol() {
            assert!(p.len() <= 64);
            if self.role == Role::Client {
                assert!(self.offered.split(',').any(|o| o == p), "{p:?} was not offered");
            }
        }
        let footprint = conn.buffer_footprint();
        let bound = match self.fixed {
            Some(total) => total,
            None => {
                let inbound = (config.max_message_size + RECORD_OVERHEAD * config.max_queued_messages)
                    .max(config.max_handshake_size + self.offered.len());
                let queue = config.outbound_queue_size.unwrap_or(0).max(config.outbound_buffer_size);
                let data = queue + MAX_HEADER_LEN * config.max_outbound_messages;
                inbound + data.max(config.max_handshake_size) + FOOTPRINT_SLACK
            }
        };
        assert!(footprint <= bound, "footprint {footprint} over {bound} with {config:?}");
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Receive(bytes) => self.receive(bytes),
            Op::Frame { head, flags, payload } => {
                let frame = self.frame(*head, *flags, payload);
                self.receive(&frame);
            }
            Op::Transmit(n) if n & 1 == 0 => self.transmit(usize::from(n >> 1)),
            Op::Transmit(n) => self.transmit_vectored(usize::from(n >> 1)),
            Op::Pop => self.pop(),
            Op::Recv(cap) => self.recv(usize::from(*cap)),
            Op::Send { kind, len } => self.send(*kind % 8, usize::from(*len) % 1200),
            Op::Ping(len) => self.ping(usize::from(*len) % 160),
            Op::Close { code, reason } => self.close(*code, usize::from(*reason) % 140),
            Op::Advance(step) => self.advance(*step),
            Op::Decide(choice) => self.decide(*choice),
            Op::Events => self.drain_events(),
            Op::Forward => self.forward(),
            Op::Eof => {
                self.conn.handle_eof(self.now);
                assert!(self.conn.state() == State::Closed && self.conn.is_finished());
            }
            Op::Abort => {
                self.conn.abort();
                assert!(self.conn.state() == State::Closed && self.conn.is_finished());
                assert!(self.conn.poll_transmit().is_none());
            }
        }
    }

    /// The bytes of a frame as the `Frame` op describes it.
    fn frame(&self, head: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let masked = (self.role == Role::Server) != (flags & 1 == 1);
        let mut out = vec![head];
        let mask_bit = if masked { 0x80 } else { 0 };
        let len = payload.len();
        match flags >> 1 & 3 {
            0 if len < 126 => out.push(mask_bit | len as u8),
            0 | 1 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let seed = flags >> 3;
        let key = [seed, seed ^ 0x5a, seed.wrapping_mul(7), 0x80 | seed];
        if masked {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        out
    }

    fn pop(&mut self) {
        let front = self.conn.peek_message().map(|m| (m.kind, m.data.to_vec()));
        assert_eq!(self.conn.pop_message(), front.is_some());
        self.delivered.extend(front);
    }

    fn recv(&mut self, cap: usize) {
        let front = self.conn.peek_message().map(|m| (m.kind, m.data.to_vec()));
        let mut buf = vec![0u8; cap];
        let result = self.conn.recv(&mut buf);
        match (front, result) {
            (None, Err(multipeer::queue::ReadError::Empty)) => {}
            (Some((_, data)), Err(multipeer::queue::ReadError::TooSmall { needed })) => {
                assert!(needed == data.len() && needed > cap);
                assert_eq!(self.conn.peek_message().map(|m| m.data.to_vec()), Some(data), "kept");
            }
            (Some((kind, data)), Ok((k, n))) => {
                assert_eq!((kind, &data[..]), (k, &buf[..n]));
                self.delivered.push((kind, data));
            }
            (front, result) => panic!("recv gave {result:?} with {front:?} queued"),
        }
    }

    /// `forward_message`: the message it takes is read (delivered) and queued as one frame, as
    /// `send` would queue it; one it refuses stays first in line, for the reason `send` gives.
    fn forward(&mut self) {
        let front = self.conn.peek_message().map(|m| (m.kind, m.data.to_vec()));
        let open = self.conn.state() == State::Open;
        let (queued_bytes, queued_messages) =
            (self.conn.buffered_amount(), self.conn.queued_outbound_messages());
        let fits = front.as_ref().is_some_and(|(_, data)| self.conn.can_send(data.len()));
        let result = self.conn.forward_message();
        match (front, result) {
            (None, Ok(None)) => {}
            (Some((kind, data)), Ok(Some(forwarded))) => {
                assert!(fits, "forward_message succeeded where can_send said no");
                assert_eq!(forwarded, kind);
                assert_eq!(self.conn.queued_outbound_messages(), queued_messages + 1);
                assert!(self.conn.buffered_amount() >= queued_bytes + data.len() + 2);
                self.delivered.push((kind, data));
            }
            (Some((_, data)), Err(e)) => {
                assert_eq!(self.conn.peek_message().map(|m| m.data.to_vec()).as_ref(), Some(&data), "kept");
                assert_eq!(self.conn.queued_outbound_messages(), queued_messages);
                match e {
                    SendError::NotOpen => assert!(!open),
                    SendError::TooLarge { max } => assert!(open && data.len() > max),
                    SendError::Full { .. } => assert!(open && !fits),
                    e => panic!("forward_message of {} bytes: {e:?}", data.len()),
                }
            }
            (front, result) => panic!("forward_message gave {result:?} with {front:?} queued"),
        }
    }

    fn send(&mut self, kind: u8, len: usize) {
        let open = self.conn.state() == State::Open;
        let (queued_bytes, queued_messages) =
            (self.conn.buffered_amount(), self.conn.queued_outbound_messages());
        let fits = self.conn.can_send(len);
        // Two-byte characters, so a cut in the middle of one would show.
        let text: String = "é".repeat(len / 2) + &"a".repeat(len % 2);
        let binary = vec![0xb5; len];
        let result = match kind {
            0 => self.conn.send_binary(&binary),
            1 => self.conn.send_text(&text),
            4 => {
                let (a, b) = text.as_bytes().split_at(((len / 2) | 1).min(text.len()));
                self.conn.send_parts(MessageKind::Text, &[a, b])
            }
            5 => self.conn.send_parts(MessageKind::Binary, &[&binary[..len / 3], &[], &binary[len / 3..]]),
            6 => self.conn.send_shared(&SharedFrame::new(MessageKind::Binary, &[&binary])),
            7 => self.conn.send_shared(&SharedFrame::new(MessageKind::Text, &[text.as_bytes()])),
            2 => {
                let mut bytes = vec![b'x'; len.max(1)];
                bytes[len / 2] = 0xff;
                let result = self.conn.send(MessageKind::Text, &bytes);
                assert!(matches!(result, Err(SendError::InvalidUtf8)), "{result:?}");
                return;
            }
            _ => self.conn.send(MessageKind::Binary, &binary),
        };
        // A shared frame takes no room in the connection's storage, only the limits count.
        let shared = kind >= 6 && self.role == Role::Server;
        match result {
            Ok(()) => {
                assert!(fits || shared, "send succeeded where can_send said no");
                assert_eq!(self.conn.queued_outbound_messages(), queued_messages + 1);
                assert!(self.conn.buffered_amount() >= queued_bytes + len + 2);
            }
            Err(SendError::NotOpen) => assert!(!open),
            Err(SendError::TooLarge { max }) => {
                assert!(open && !fits);
                assert_eq!(max, self.conn.config().outbound_buffer_size);
                assert!(len > max);
            }
            Err(SendError::Full { queued_messages: m, .. }) => {
                assert!(open);
                assert_eq!(m, queued_messages);
                assert!(
                    len <= self.conn.config().outbound_buffer_size,
                    "Full for a message that can never fit"
                );
                assert!(!fits, "can_send({len}) but send is Full");
            }
            Err(e) => panic!("send of {len} bytes: {e:?}"),
        }
    }

    fn ping(&mut self, len: usize) {
        let before = self.conn.buffered_amount();
        let open = self.conn.state() == State::Open;
        match self.conn.ping(&vec![0x70; len]) {
            Ok(()) => {
                assert!(open && len <= MAX_CONTROL_PAYLOAD);
                assert!(self.conn.buffered_amount() >= before + 2 + len, "ping accepted but not queued");
            }
            Err(SendError::NotOpen) => assert!(!open),
            Err(SendError::ControlTooLong) => assert!(open && len > MAX_CONTROL_PAYLOAD),
            Err(SendError::Full { .. }) => {
                assert!(open && len <= MAX_CONTROL_PAYLOAD);
                assert_eq!(self.conn.buffered_amount(), before);
            }
            Err(e) => panic!("ping of {len} bytes: {e:?}"),
        }
    }

    fn close(&mut self, code: u8, reason_len: usize) {
        let code = CloseCode(CLOSE_CODES[usize::from(code) % CLOSE_CODES.len()]);
        let reason: String = "ü".repeat(reason_len / 2) + &"r".repeat(reason_len % 2);
        let state = self.conn.state();
        let before = self.conn.buffered_amount();
        match self.conn.close(self.now, code, &reason) {
            Ok(()) => {
                assert!(code.is_valid_on_wire() && reason.len() <= 123);
                match state {
                    State::Open => {
                        assert_eq!(self.conn.state(), State::Closing);
                        assert!(self.conn.buffered_amount() >= before + 4 + reason.len(), "Close not queued");
                    }
                    State::Connecting => assert_eq!(self.conn.state(), State::Closed),
                    _ => assert_eq!(self.conn.state(), state, "closing twice does nothing"),
                }
            }
            Err(SendError::InvalidCloseCode(c)) => assert!(c == code.0 && !code.is_valid_on_wire()),
            Err(SendError::ControlTooLong) => assert!(reason.len() > 123),
            // Storage full (fixed storage, or app pings used the control reserve): nothing
            // changes and the application retries after writing output.
            Err(SendError::Full { .. }) => {
                assert_eq!((state, self.conn.state()), (State::Open, State::Open));
                assert_eq!(self.conn.buffered_amount(), before);
            }
            Err(e) => panic!("close({code}, {} bytes): {e:?}", reason.len()),
        }
    }

    fn advance(&mut self, step: u8) {
        let due = self.conn.poll_timeout();
        let n = u64::from(step & 63);
        self.now = match step >> 6 {
            0 => self.now + Duration::from_micros(n),
            1 => self.now + Duration::from_millis(n),
            2 => self.now + Duration::from_millis(n * 100),
            _ => due.map_or(self.now + Duration::from_secs(1), |t| t.max(self.now)),
        };
        let before = self.snapshot();
        self.conn.handle_timeout(self.now);
        let after = self.snapshot();
        if due.is_none_or(|t| self.now < t) {
            assert_eq!(before, after, "handle_timeout before the deadline changed something");
        }
        self.conn.handle_timeout(self.now);
        assert_eq!(after, self.snapshot(), "a second handle_timeout changed something");
        if let Some(next) = self.conn.poll_timeout() {
            assert!(next > self.now, "timeout {next:?} still due at {:?} after handle_timeout", self.now);
        }
    }

    fn decide(&mut self, choice: u8) {
        let pending = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            self.conn.request(&mut headers).is_some()
        };
        let now = self.now;
        let result = match choice % 8 {
            0 => self.conn.accept(now, None, &[]),
            1 => self.conn.accept(now, Some("chat"), &["X-Server: multipeer"]),
            2 => {
                let result = self.conn.accept(now, Some("bad name"), &[]);
                if pending {
                    assert_eq!(result, Err(SendError::Handshake(HandshakeError::InvalidHeaderLine)));
                    assert_eq!(self.conn.state(), State::Connecting);
                }
                result
            }
            3 => self.conn.accept(now, None, &["bad header line"]),
            4 => self.conn.accept_supported(now, &PROTOCOLS, &[]),
            5 => self.conn.accept_supported::<&str>(now, &[], &[]),
            6 => self.conn.reject(403, "go away"),
            _ => self.conn.reject(u16::from(choice) * 3, "no"),
        };
        match result {
            Ok(()) => {
                assert!(pending);
                assert!(matches!(self.conn.state(), State::Open | State::Closed));
            }
            Err(SendError::WrongState) => assert!(!pending),
            // Fixed storage may be too small for the 101.
            Err(SendError::Full { .. }) => assert!(pending && self.fixed.is_some()),
            Err(SendError::Handshake(HandshakeError::InvalidHeaderLine)) => {
                assert!(pending && choice % 8 >= 2)
            }
            Err(e) => panic!("decision {choice}: {e:?}"),
        }
    }

    /// Drains the connection like an adapter, checks it never stalls, ends the transport, and
    /// reads back what it wrote.
    fn finish(&mut self) {
        // Each round either takes bytes or completes a message that was waiting for room (a
        // frame whose header was read before the queue filled), so this many rounds suffice.
        let mut rounds = 2 * self.backlog.len() + 2;
        loop {
            while self.conn.peek_message().is_some() {
                self.pop();
            }
            self.transmit_all();
            self.drain_events();
            self.check();
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let deciding = self.conn.request(&mut headers).is_some();
            if self.backlog.is_empty() || deciding {
                break;
            }
            let offered = self.backlog.len();
            let n = self.offer();
            let progress = n > 0 || self.conn.available_messages() > 0 || self.conn.buffered_amount() > 0;
            assert!(
                progress && rounds > 0,
                "stalled: {:02x?} offered to a drained {:?} connection",
                &self.backlog[..offered.min(16)],
                self.conn.state(),
            );
            rounds -= 1;
        }
        if self.events.open {
            let reference = reference_messages(self.role, &self.accepted, self.conn.config());
            assert!(
                reference.starts_with(&self.delivered),
                "delivered {} messages that the stream does not hold as such (reference: {})",
                self.delivered.len(),
                reference.len()
            );
            // Fixed storage may refuse a message within the limits (1009); heap storage may not.
            // A connection ended by a command, a timer or the transport may drop a message that
            // was still waiting for a slot in the queue, as it drops one half received.
            let reading = self.conn.state() != State::Closed || self.closed_by_input;
            if self.fixed.is_none() && reading {
                assert_eq!(self.delivered.len(), reference.len(), "messages lost");
            }
        }
        self.conn.handle_eof(self.now);
        self.drain_events();
        self.check();
        assert!(self.conn.is_finished());
        assert!(
            self.events.terminal.is_some(),
            "the connection ended without a Closed or HandshakeFailed event"
        );
        assert_eq!(self.conn.handle_input(self.now, b"late"), 4);
        assert_eq!(self.conn.send_binary(b"late"), Err(SendError::NotOpen));
        assert_eq!(self.conn.ping(b""), Err(SendError::NotOpen));
        assert_eq!(self.conn.close(self.now, CloseCode::NORMAL, ""), Ok(()));
        assert_eq!(self.conn.accept(self.now, None, &[]), Err(SendError::WrongState));
        assert!(self.conn.poll_event().is_none());
        self.transmit_all();
        check_output(self.role, &self.wire);
    }
}

/// Encodes a whole connection input: setup, prologue bytes, ops.
#[must_use]
pub fn encode_run(setup: Setup, prologue: &[u8], ops: &[Op]) -> Vec<u8> {
    let mut out = Output::default();
    setup.encode(&mut out);
    out.raw(prologue);
    for op in ops {
        op.encode(&mut out);
    }
    out.bytes
}
