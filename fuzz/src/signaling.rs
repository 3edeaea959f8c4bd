//! The signalling target: the JSON message codec on arbitrary text, and a `LobbyServer` fed
//! arbitrary connects, messages, disconnects and timeouts.

use core::time::Duration;
use std::collections::BTreeSet;

use chacha20::ChaCha8Rng;
use multipeer::Instant;
use multipeer::rand_core::SeedableRng;
use multipeer::signaling::{
    LobbyConfig, LobbyOutput, LobbyServer, Message, MessageType, parse_server_message,
};

use super::input::{Input, Output};

const KINDS: [MessageType; 8] = [
    MessageType::Join,
    MessageType::Id,
    MessageType::PeerConnect,
    MessageType::PeerDisconnect,
    MessageType::Offer,
    MessageType::Answer,
    MessageType::Candidate,
    MessageType::Seal,
];

/// One step of a lobby run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LobbyOp {
    /// A new connection opens (a fresh key).
    Connect,
    /// Arbitrary text from a connection (any key ever used, closed ones included).
    Text {
        /// Connection selector.
        conn: u8,
        /// The text (lossily UTF-8).
        text: Vec<u8>,
    },
    /// A well-formed message from a connection: `kind % 8` the type, `id` picks an id seen
    /// (1, assigned ids, unknown), `data` picks a lobby name seen, empty, or unknown.
    Message {
        /// Connection selector.
        conn: u8,
        /// Type, and bit 3: id 0 (a mesh join).
        kind: u8,
        /// Id selector.
        id: u8,
        /// Data selector.
        data: u8,
    },
    /// A binary message.
    Binary(u8),
    /// The connection closed.
    Disconnect(u8),
    /// Time advances by `n` × 100 ms (or to the next deadline, for 255) and timers run.
    Advance(u8),
}

impl LobbyOp {
    const RANGES: [(u8, u8); 6] = [
        (0, 39),    // Connect
        (40, 79),   // Text
        (80, 189),  // Message
        (190, 199), // Binary
        (200, 224), // Disconnect
        (225, 255), // Advance
    ];

    /// Reads one op.
    pub fn decode(input: &mut Input<'_>) -> Self {
        let tag = input.byte();
        match Self::RANGES.iter().position(|&(lo, hi)| (lo..=hi).contains(&tag)).unwrap_or(0) {
            0 => Self::Connect,
            1 => Self::Text { conn: input.byte(), text: input.slice().to_vec() },
            2 => {
                Self::Message { conn: input.byte(), kind: input.byte(), id: input.byte(), data: input.byte() }
            }
            3 => Self::Binary(input.byte()),
            4 => Self::Disconnect(input.byte()),
            _ => Self::Advance(input.byte()),
        }
    }

    /// Writes this op so that [`decode`](Self::decode) reads it back.
    pub fn encode(&self, out: &mut Output) {
        let tag = |i: usize| Self::RANGES[i].0;
        match self {
            Self::Connect => out.byte(tag(0)),
            Self::Text { conn, text } => out.byte(tag(1)).byte(*conn).slice(text),
            Self::Message { conn, kind, id, data } => {
                out.byte(tag(2)).byte(*conn).byte(*kind).byte(*id).byte(*data)
            }
            Self::Binary(c) => out.byte(tag(3)).byte(*c),
            Self::Disconnect(c) => out.byte(tag(4)).byte(*c),
            Self::Advance(n) => out.byte(tag(5)).byte(*n),
        };
    }
}

/// Encodes a signalling run: the codec text, then the lobby setup byte and ops.
#[must_use]
pub fn encode_signaling_run(text: &[u8], setup: u8, ops: &[LobbyOp]) -> Vec<u8> {
    let mut out = Output::default();
    out.slice(text).byte(setup);
    ops.iter().for_each(|op| op.encode(&mut out));
    out.bytes
}

/// What a run reached, for the seed tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LobbySummary {
    /// Lobbies seen created.
    pub lobbies: usize,
    /// Offer/answer/candidate messages relayed.
    pub relayed: usize,
    /// Connections the server closed.
    pub closed: usize,
}

/// The signalling target.
///
/// First, a byte-prefixed text for the codec: `Message::decode` must not panic, and a decoded
/// message encodes to text that decodes to it again (and so does any message built from the
/// text). Then a setup byte (max peers 1–4 or many, max lobbies 1–2 or many, timers) and
/// [`LobbyOp`]s for a `LobbyServer`. Checks after every op: no panic; every output names a
/// connection that is open (connected by the adapter, not disconnected, not closed by an
/// earlier output); the server's connection count equals the open connections and is at most
/// `max_peers`; lobbies ≤ `max_lobbies`; every text sent is a valid server message.
pub fn signaling(data: &[u8]) {
    run_signaling(data);
}

/// Runs one signalling input.
///
/// # Panics
/// When an invariant breaks.
pub fn run_signaling(data: &[u8]) -> LobbySummary {
    let mut input = Input::new(data);
    codec(&String::from_utf8_lossy(input.slice()));
    let setup = input.byte();
    let config = LobbyConfig {
        max_peers: [1, 2, 4, 4096][usize::from(setup & 3)],
        max_lobbies: [1, 2, 1024, 1024][usize::from(setup >> 2 & 3)],
        join_timeout: Duration::from_millis(100 * u64::from(setup >> 4 & 3) + 100),
        seal_close_timeout: Duration::from_millis(500 * u64::from(setup >> 6) + 100),
    };
    let mut h = LobbyHarness {
        server: LobbyServer::new(config, ChaCha8Rng::seed_from_u64(u64::from(setup))),
        config,
        now: Instant::ZERO,
        keys: 0,
        open: BTreeSet::new(),
        ids: vec![0, 1],
        lobbies: vec![String::new(), "nope".into()],
        summary: LobbySummary::default(),
    };
    let mut ops = 0;
    while !input.is_empty() && ops < 4096 {
        let op = LobbyOp::decode(&mut input);
        h.apply(&op);
        h.outputs();
        h.check();
        ops += 1;
    }
    h.summary
}

/// `Message::decode` on arbitrary text, and round trips.
fn codec(text: &str) {
    if let Ok(m) = Message::decode(text) {
        assert!(m.id >= 0);
        let again = Message::decode(&m.encode()).expect("an encoded message decodes");
        assert_eq!(again, m);
    }
    let kind = KINDS[text.len() % KINDS.len()];
    let m = Message::new(kind, text.len() as i64 * 7919, text);
    assert_eq!(Message::decode(&m.encode()), Ok(m));
}

struct LobbyHarness {
    server: LobbyServer<ChaCha8Rng>,
    config: LobbyConfig,
    now: Instant,
    /// Keys handed out so far (0..keys).
    keys: u64,
    open: BTreeSet<u64>,
    /// Ids seen in Id messages (plus 0 and 1).
    ids: Vec<i64>,
    /// Lobby names seen (plus "" and an unknown one).
    lobbies: Vec<String>,
    summary: LobbySummary,
}

impl LobbyHarness {
    fn key(&self, sel: u8) -> u64 {
        if self.keys == 0 { 0 } else { u64::from(sel) % self.keys }
    }

    fn apply(&mut self, op: &LobbyOp) {
        match op {
            LobbyOp::Connect => {
                let key = self.keys;
                self.keys += 1;
                self.open.insert(key);
                self.server.connect(self.now, key);
            }
            LobbyOp::Text { conn, text } => {
                let text = String::from_utf8_lossy(text);
                codec(&text);
                self.server.message(self.now, self.key(*conn), &text);
            }
            LobbyOp::Message { conn, kind, id, data } => {
                let kind = KINDS[usize::from(kind & 7)];
                let id =
                    if id & 0x80 != 0 { i64::from(*id) } else { self.ids[usize::from(*id) % self.ids.len()] };
                let data = self.lobbies[usize::from(*data) % self.lobbies.len()].clone();
                let text = Message::new(kind, id, &data).encode();
                self.server.message(self.now, self.key(*conn), &text);
            }
            LobbyOp::Binary(conn) => self.server.binary(self.key(*conn)),
            LobbyOp::Disconnect(conn) => {
                let key = self.key(*conn);
                self.open.remove(&key);
                self.server.disconnect(key);
            }
            LobbyOp::Advance(n) => {
                self.now = match (n, self.server.poll_timeout()) {
                    (255, Some(t)) => t.max(self.now),
                    _ => self.now + Duration::from_millis(u64::from(*n) * 100),
                };
                self.server.handle_timeout(self.now);
                if let Some(t) = self.server.poll_timeout() {
                    assert!(t > self.now, "a deadline at or before now survived handle_timeout");
                }
            }
        }
    }

    fn outputs(&mut self) {
        while let Some(output) = self.server.poll_output() {
            match output {
                LobbyOutput::Send { conn, text } => {
                    assert!(self.open.contains(&conn), "send to {conn}, which is not open: {text}");
                    let m = Message::decode(&text).expect("the server sends valid messages");
                    // Offers, answers and candidates are relayed as opaque text, as the demo server
                    // does: a client may send a malformed candidate, which its peer then refuses.
                    // What the server itself says must always be readable.
                    if !matches!(m.kind, MessageType::Offer | MessageType::Answer | MessageType::Candidate) {
                        parse_server_message(&text).expect("a client reads what the server says");
                    }
                    match m.kind {
                        MessageType::Id if !self.ids.contains(&m.id) => self.ids.push(m.id),
                        MessageType::Join if !self.lobbies.contains(&m.data) => {
                            self.lobbies.push(m.data);
                            self.summary.lobbies += 1;
                        }
                        MessageType::Offer | MessageType::Answer | MessageType::Candidate => {
                            self.summary.relayed += 1;
                        }
                        _ => {}
                    }
                }
                LobbyOutput::Close { conn, .. } => {
                    assert!(self.open.remove(&conn), "close of {conn}, which is not open");
                    self.summary.closed += 1;
                }
            }
        }
    }

    fn check(&mut self) {
        assert_eq!(self.server.connections(), self.open.len(), "connections() disagrees with the outputs");
        assert!(self.server.connections() <= self.config.max_peers);
        assert!(self.server.lobbies() <= self.config.max_lobbies);
    }
}
