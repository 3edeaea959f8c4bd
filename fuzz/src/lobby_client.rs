//! The lobby client target: a `MeshSession` (our side of Godot's `webrtc_signaling` demo)
//! fed whatever a lobby server may send, well-formed or not, between the application's reads
//! and an engine that answers the mesh's commands.
//!
//! A lobby server is not to be trusted: it may send ids out of range, a second id, signalling
//! from peers that are not in the mesh, malformed candidates, or a flood of events nobody reads.

use std::collections::BTreeSet;

use multipeer::Instant;
use multipeer::mesh::{Command, ConnectionState, EngineEvent, MeshMode, SdpKind};
use multipeer::peer::{MultiplayerPeer, PeerId, TransferMode};
use multipeer::signaling::{
    MAX_LOBBY_EVENTS, MeshSession, Message, MessageType, join_message, parse_server_message, seal_message,
};

use super::input::{Input, Output};

/// Ids a server message may carry: invalid ones, the host, small ones, huge ones.
const IDS: [i64; 10] = [0, -1, 1, 2, 3, 7, 1000, 0x7fff_ffff, 0xffff_ffff, 0x1_0000_0000];

/// Server messages one input may deliver through floods (a few times [`MAX_LOBBY_EVENTS`]).
const MAX_SERVER_MESSAGES: u64 = 8 * MAX_LOBBY_EVENTS as u64;

/// Data a server message may carry.
const DATA: [&str; 7] = [
    "",
    "true",
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n",
    "\n0\n0\ncandidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
    "\nonly\ntwo",
    "\n0\nnot-a-number\ncandidate:1",
    "LOBBYNAME",
];

/// One step of a lobby client run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LobbyClientOp {
    /// A well-formed server message: type `kind % 8` (or an unknown type for 8..), an id from
    /// [`IDS`] and data from [`DATA`].
    Message {
        /// Type selector.
        kind: u8,
        /// Id selector.
        id: u8,
        /// Data selector.
        data: u8,
    },
    /// Arbitrary text from the server (lossily UTF-8).
    Text(Vec<u8>),
    /// The same well-formed message `n` times (a flood).
    Flood {
        /// Type selector.
        kind: u8,
        /// Repetitions (`n % 128` × 16).
        n: u8,
    },
    /// The application sends up to `n` of the session's texts to the server.
    Send(u8),
    /// The application reads up to `n` lobby events.
    Events(u8),
    /// The application seals the lobby.
    Seal,
    /// The engine carries out the mesh's commands, then reports `state` for a peer.
    Engine {
        /// Peer selector (among the mesh's peers).
        peer: u8,
        /// What happens to it: connected with channels open, failed, closed, or nothing.
        state: u8,
    },
}

impl LobbyClientOp {
    const RANGES: [(u8, u8); 7] = [
        (0, 99),    // Message
        (100, 129), // Text
        (130, 139), // Flood
        (140, 179), // Send
        (180, 199), // Events
        (200, 204), // Seal
        (205, 255), // Engine
    ];

    /// Reads one op.
    pub fn decode(input: &mut Input<'_>) -> Self {
        let tag = input.byte();
        match Self::RANGES.iter().position(|&(lo, hi)| (lo..=hi).contains(&tag)).unwrap_or(0) {
            0 => Self::Message { kind: input.byte(), id: input.byte(), data: input.byte() },
            1 => Self::Text(input.slice().to_vec()),
            2 => Self::Flood { kind: input.byte(), n: input.byte() },
            3 => Self::Send(input.byte()),
            4 => Self::Events(input.byte()),
            5 => Self::Seal,
            _ => Self::Engine { peer: input.byte(), state: input.byte() },
        }
    }

    /// Writes this op so that [`decode`](Self::decode) reads it back.
    pub fn encode(&self, out: &mut Output) {
        let tag = |i: usize| Self::RANGES[i].0;
        match self {
            Self::Message { kind, id, data } => out.byte(tag(0)).byte(*kind).byte(*id).byte(*data),
            Self::Text(text) => out.byte(tag(1)).slice(text),
            Self::Flood { kind, n } => out.byte(tag(2)).byte(*kind).byte(*n),
            Self::Send(n) => out.byte(tag(3)).byte(*n),
            Self::Events(n) => out.byte(tag(4)).byte(*n),
            Self::Seal => out.byte(tag(5)),
            Self::Engine { peer, state } => out.byte(tag(6)).byte(*peer).byte(*state),
        };
    }
}

/// Encodes a lobby client run: the setup byte, then ops.
#[must_use]
pub fn encode_lobby_client_run(setup: u8, ops: &[LobbyClientOp]) -> Vec<u8> {
    let mut out = Output::default();
    out.byte(setup);
    ops.iter().for_each(|op| op.encode(&mut out));
    out.bytes
}

/// What a run reached, for the seed tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LobbyClientSummary {
    /// The mesh's id, once the server gave one.
    pub id: Option<i32>,
    /// Peers in the mesh at the end.
    pub peers: usize,
    /// Offers, answers and candidates the session gave the application to send.
    pub signals: usize,
    /// Server messages the session refused.
    pub refused: usize,
    /// Lobby events counted instead of kept.
    pub unreported: u64,
}

/// The lobby client target.
///
/// A setup byte (mesh or server/client join; extra channels), then [`LobbyClientOp`]s. Checks
/// after every op: no panic; a refused message leaves the session as it was; once the server
/// gave an id, neither the id nor the mesh's mode changes; the mesh's peers were all announced
/// by the server; at most [`MAX_LOBBY_EVENTS`] events wait, and every accepted message is a
/// kept, read or counted event; the session's first text is its join, and every later one is an
/// offer, answer or candidate the receiving client can parse, or a seal.
pub fn lobby_client(data: &[u8]) {
    run_lobby_client(data);
}

/// Runs one lobby client input.
///
/// # Panics
/// When an invariant breaks.
pub fn run_lobby_client(data: &[u8]) -> LobbyClientSummary {
    let mut input = Input::new(data);
    let setup = input.byte();
    let mesh = setup & 1 == 0;
    let channels: Vec<TransferMode> = (0..setup >> 1 & 3).map(|_| TransferMode::Unreliable).collect();
    let mut h = ClientHarness {
        session: MeshSession::new("", mesh, &channels, 1),
        joined_as_mesh: mesh,
        id: None,
        announced: BTreeSet::new(),
        accepted: 0,
        read: 0,
        sent_texts: 0,
        summary: LobbyClientSummary::default(),
    };
    let mut ops = 0;
    while !input.is_empty() && ops < 4096 {
        let op = LobbyClientOp::decode(&mut input);
        h.apply(&op);
        h.check();
        ops += 1;
    }
    h.send(usize::MAX);
    h.read_events(usize::MAX);
    assert_eq!(h.read + h.session.unreported_events(), h.accepted, "an accepted message left no event");
    h.summary.id = h.id.map(|(id, _)| id.get());
    h.summary.peers = h.session.mesh().map_or(0, |m| m.peers().count());
    h.summary.unreported = h.session.unreported_events();
    h.summary
}

/// What must not change when the session refuses a message.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    lobby: Option<String>,
    id: Option<PeerId>,
    peers: Vec<PeerId>,
    sealed: bool,
    unreported: u64,
}

struct ClientHarness {
    session: MeshSession,
    joined_as_mesh: bool,
    /// The id the server gave, once, and the mode it made the mesh.
    id: Option<(PeerId, MeshMode)>,
    /// Every valid id a peer-connect message named.
    announced: BTreeSet<PeerId>,
    /// Messages the session accepted (each makes one event).
    accepted: u64,
    /// Events the application read.
    read: u64,
    sent_texts: usize,
    summary: LobbyClientSummary,
}

impl ClientHarness {
    fn snapshot(&self) -> Snapshot {
        let mesh = self.session.mesh();
        Snapshot {
            lobby: self.session.lobby().map(str::to_string),
            id: mesh.and_then(MultiplayerPeer::unique_id),
            peers: mesh.map(|m| m.peers().collect()).unwrap_or_default(),
            sealed: self.session.is_sealed(),
            unreported: self.session.unreported_events(),
        }
    }

    fn server_text(&mut self, text: &str) {
        let before = self.snapshot();
        match self.session.handle_text(text) {
            Ok(()) => {
                self.accepted += 1;
                if let Ok(multipeer::signaling::LobbyEvent::PeerConnected(p)) = parse_server_message(text) {
                    self.announced.insert(p);
                }
            }
            Err(_) => {
                self.summary.refused += 1;
                assert_eq!(self.snapshot(), before, "a refused message changed the session: {text:?}");
            }
        }
    }

    fn message(kind: u8, id: u8, data: u8) -> String {
        let id = IDS[usize::from(id) % IDS.len()];
        let data = DATA[usize::from(data) % DATA.len()];
        match MessageType::from_number(i64::from(kind & 15)) {
            Some(kind) => Message::new(kind, id, data).encode(),
            None => format!("{{\"type\":{},\"id\":{id},\"data\":\"\"}}", kind & 15),
        }
    }

    fn apply(&mut self, op: &LobbyClientOp) {
        match op {
            LobbyClientOp::Message { kind, id, data } => self.server_text(&Self::message(*kind, *id, *data)),
            LobbyClientOp::Text(bytes) => self.server_text(&String::from_utf8_lossy(bytes)),
            LobbyClientOp::Flood { kind, n } => {
                let text = Self::message(*kind, *n, *n);
                for _ in 0..usize::from(*n % 128) * 16 {
                    // A bound on the work of one input, not on the session.
                    if self.accepted + self.summary.refused as u64 >= MAX_SERVER_MESSAGES {
                        break;
                    }
                    self.server_text(&text);
                }
            }
            LobbyClientOp::Send(n) => self.send(usize::from(*n)),
            LobbyClientOp::Events(n) => self.read_events(usize::from(*n)),
            LobbyClientOp::Seal => self.session.seal(),
            LobbyClientOp::Engine { peer, state } => self.engine(*peer, *state),
        }
    }

    fn send(&mut self, limit: usize) {
        for _ in 0..limit {
            let Some(text) = self.session.poll_text() else { return };
            let m = Message::decode(&text).expect("the session sends valid messages");
            if self.sent_texts == 0 {
                assert_eq!(text, join_message("", self.joined_as_mesh), "the join goes first");
            } else {
                match m.kind {
                    MessageType::Seal => assert_eq!(text, seal_message()),
                    MessageType::Offer | MessageType::Answer | MessageType::Candidate => {
                        // The server relays it with our id in place of the target's; the
                        // receiving client must be able to read it.
                        parse_server_message(&text).expect("a peer can read our signalling");
                        self.summary.signals += 1;
                    }
                    other => panic!("the session sent {other:?}: {text}"),
                }
            }
            self.sent_texts += 1;
        }
    }

    fn read_events(&mut self, limit: usize) {
        for _ in 0..limit {
            if self.session.poll_lobby_event().is_none() {
                return;
            }
            self.read += 1;
        }
    }

    /// Carries out the mesh's commands as an engine would (descriptions and a candidate for
    /// new connections, an answer to an offer), then changes one peer's state.
    fn engine(&mut self, peer: u8, state: u8) {
        let Some(mesh) = self.session.mesh_mut() else { return };
        let now = Instant::ZERO;
        while let Some(command) = mesh.poll_command() {
            let (peer, answer) = match command {
                Command::CreatePeer { peer, offerer, .. } => (peer, offerer.then_some(SdpKind::Offer)),
                Command::RemoteDescription { peer, kind: SdpKind::Offer, .. } => {
                    (peer, Some(SdpKind::Answer))
                }
                _ => continue,
            };
            if let Some(kind) = answer {
                let _ =
                    mesh.handle_engine_event(now, EngineEvent::LocalDescription { peer, kind, sdp: DATA[2] });
                let candidate = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host";
                let event = EngineEvent::LocalCandidate { peer, mid: "0", index: 0, candidate };
                let _ = mesh.handle_engine_event(now, event);
            }
        }
        let peers: Vec<PeerId> = mesh.peers().collect();
        let Some(&target) = peers.get(usize::from(peer) % peers.len().max(1)) else { return };
        match state % 4 {
            0 => {
                let _ = mesh.handle_engine_event(
                    now,
                    EngineEvent::State { peer: target, state: ConnectionState::Connected },
                );
                for spec in mesh.peer(target).map(|i| i.channels).unwrap_or_default() {
                    let _ = mesh.handle_engine_event(
                        now,
                        EngineEvent::ChannelOpen { peer: target, channel: spec.0.id },
                    );
                }
            }
            1 => {
                let _ = mesh.handle_engine_event(
                    now,
                    EngineEvent::State { peer: target, state: ConnectionState::Failed },
                );
            }
            2 => {
                let _ = mesh.handle_engine_event(
                    now,
                    EngineEvent::State { peer: target, state: ConnectionState::Closed },
                );
            }
            _ => {}
        }
        // The mesh's own events are the application's business; keep them bounded here.
        while mesh.poll_event().is_some() {}
        while mesh.poll_command().is_some() {}
    }

    fn check(&mut self) {
        let now = self.session.mesh().and_then(|m| Some((m.unique_id()?, m.mode())));
        match (self.id, now) {
            (None, Some(first)) => self.id = Some(first),
            (Some(was), now) => {
                assert_eq!(now, Some(was), "the mesh's id or mode changed, or the mesh went away")
            }
            (None, None) => {}
        }
        if let Some(mesh) = self.session.mesh() {
            for p in mesh.peers() {
                assert!(self.announced.contains(&p), "{p:?} is in the mesh but was never announced");
            }
        }
        let waiting = self.accepted - self.read - self.session.unreported_events();
        assert!(waiting <= MAX_LOBBY_EVENTS as u64, "{waiting} lobby events wait");
    }
}

/// Seeds: a mesh join with offers both ways, a server/client join, and a hostile server.
#[must_use]
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use LobbyClientOp::{Engine, Events, Flood, Message, Seal, Send, Text};
    // Kinds: 0 Join, 1 Id, 2 PeerConnect, 3 PeerDisconnect, 4 Offer, 5 Answer, 6 Candidate,
    // 7 Seal. Id selectors: 2 → 1, 3 → 2, 5 → 7, 6 → 1000. Data: 1 "true", 2 an SDP,
    // 3 a candidate, 6 a lobby name.
    let mesh = vec![
        Send(1),
        Message { kind: 1, id: 5, data: 1 },
        Message { kind: 2, id: 2, data: 0 },
        Message { kind: 2, id: 3, data: 0 },
        Message { kind: 2, id: 6, data: 0 },
        Message { kind: 0, id: 0, data: 6 },
        Engine { peer: 0, state: 0 },
        Send(255),
        Message { kind: 4, id: 6, data: 2 },
        Message { kind: 6, id: 6, data: 3 },
        Message { kind: 5, id: 2, data: 2 },
        Engine { peer: 2, state: 0 },
        Engine { peer: 1, state: 1 },
        Message { kind: 3, id: 3, data: 0 },
        Send(255),
        Seal,
        Message { kind: 7, id: 0, data: 0 },
        Events(255),
        Send(255),
    ];
    let server_client = vec![
        Message { kind: 1, id: 5, data: 0 },
        Message { kind: 2, id: 2, data: 0 },
        Message { kind: 2, id: 3, data: 0 },
        Engine { peer: 0, state: 0 },
        Message { kind: 4, id: 2, data: 2 },
        Engine { peer: 0, state: 0 },
        Send(255),
    ];
    let hostile = vec![
        Message { kind: 1, id: 0, data: 1 },
        Message { kind: 1, id: 1, data: 1 },
        Message { kind: 1, id: 9, data: 1 },
        Text(b"{\"type\":1}".to_vec()),
        Text(b"not json".to_vec()),
        Message { kind: 1, id: 5, data: 1 },
        Message { kind: 1, id: 3, data: 1 },
        Message { kind: 6, id: 3, data: 4 },
        Message { kind: 6, id: 3, data: 5 },
        Message { kind: 4, id: 7, data: 2 },
        Message { kind: 9, id: 2, data: 0 },
        Flood { kind: 0, n: 127 },
        Events(10),
        Flood { kind: 2, n: 3 },
        Engine { peer: 0, state: 2 },
        Send(255),
    ];
    vec![
        ("mesh-offers-both-ways", encode_lobby_client_run(0, &mesh)),
        ("server-client", encode_lobby_client_run(1, &server_client)),
        ("hostile-server", encode_lobby_client_run(0, &hostile)),
    ]
}
