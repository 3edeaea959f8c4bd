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
use multipeer::ws::handshake::{ClientRequest, HandshakeError, accept_key};
use multipeer::ws::{Config, Connection, Event, Role};
use multipeer::{FixedStorage, Instant, Storage, VecStorage};

use core::time::Duration;

use super::input::{Input, Output};
use super::parsers::{PROTOCOLS, SAMPLE_KEY, offered_list};

mod harness;

pub use harness::Harness;

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
    /// `send_shared` binary, 7 `send_shared` text. With bit 3 set, 0, 1 and 3 go through
    /// `send_through` instead, the transport taking what `kind >> 4` picks
    /// ([`through_taken`]).
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
    /// The application echoes the oldest message with `forward_message_through`, the
    /// transport taking as much of the frame as the byte picks (see [`through_taken`]); with
    /// bit 3 set, every message with `forward_messages_through`, the first write cut so.
    ForwardThrough(u8),
    /// The transport reports end of stream.
    Eof,
    /// The application aborts.
    Abort,
}

impl Op {
    // First byte ranges; terminal ops are rare so runs go deep.
    const RANGES: [(u8, u8); 15] = [
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
        (245, 246), // Events
        (249, 251), // Forward
        (252, 253), // Eof
        (254, 255), // Abort
        (247, 248), // ForwardThrough
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
            14 => Self::ForwardThrough(input.byte()),
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
            Self::ForwardThrough(pick) => out.byte(tag(14)).byte(*pick),
        };
    }
}

/// How much of a frame offered for write-through the transport takes, by `pick`: nothing, a
/// byte, part of the header, the header, one byte more, half, all but a byte, or all. `parts`
/// are the frame's header and payload.
pub fn through_taken(pick: u8, parts: &[&[u8]]) -> usize {
    let header = parts.first().map_or(0, |h| h.len());
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let taken = match pick % 8 {
        0 => 0,
        1 => 1,
        2 => header / 2,
        3 => header,
        4 => header + 1,
        5 => total / 2,
        6 => total.saturating_sub(1),
        _ => total,
    };
    taken.min(total)
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
