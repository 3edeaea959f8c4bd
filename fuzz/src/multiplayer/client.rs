//! The client target: a `peer::Client` against a scripted server, driven like an application
//! would.

use core::time::Duration;

use chacha20::ChaCha8Rng;
use multipeer::peer::godot3::{self, Header, MessageType};
use multipeer::peer::scene::{self, SysCommand};
use multipeer::peer::{
    Client, ClientConfig, ConnectionStatus, Event, MultiplayerPeer, PeerId, Protocol, Target,
};
use multipeer::rand_core::SeedableRng;
use multipeer::ws::handshake::{ClientRequest, accept_key};
use multipeer::ws::{self};
use multipeer::{Instant, VecStorage};

use super::super::input::{Input, Output};
use super::{advance, pattern, server_frame};

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
