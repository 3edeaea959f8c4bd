//! Property: however a byte stream is split into reads, a connection reports exactly the same
//! messages, events and answers (pongs, close echo) as when the stream arrives whole.
//!
//! Streams are built for each direction (client → server masked, server → client unmasked):
//! text and binary messages fragmented at arbitrary byte positions (inside UTF-8 characters
//! too), pings and pongs between and inside fragmented messages, and an ending that is either
//! nothing, a Close, or a protocol violation (invalid UTF-8 across fragments, a reserved bit,
//! an oversized message, a bad continuation). Small queue limits make back-pressure part of it.
#![cfg(feature = "alloc")]

use chacha20::ChaCha8Rng;
use multipeer::rand_core::SeedableRng;
use multipeer::ws::frame::FrameHeader;
use multipeer::ws::handshake::{ClientRequest, accept_key};
use multipeer::ws::mask::apply_mask;
use multipeer::ws::{CloseInfo, Config, Connection, Event, MaskKeys, MessageKind, OpCode, State};
use multipeer::{Instant, Storage, VecStorage};
use proptest::prelude::*;

const CONFIG: Config =
    Config { max_message_size: 400, max_queued_messages: 3, max_fragments: 8, ..Config::GODOT };

const NOW: Instant = Instant::ZERO;

/// One data message, fragmented at `cuts`, with an optional ping after its first fragment.
#[derive(Debug, Clone)]
struct Message {
    kind: MessageKind,
    payload: Vec<u8>,
    cuts: Vec<usize>,
    ping_inside: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
enum Item {
    Message(Message),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Ending {
    Nothing,
    Close(u16, String),
    /// A text message whose second fragment breaks the UTF-8 the first began.
    InvalidUtf8,
    /// A frame with RSV1 set.
    ReservedBit,
    /// A binary message one byte over the limit.
    TooBig,
    /// A continuation with no message begun.
    BadContinuation,
}

fn message() -> impl Strategy<Value = Message> {
    let text = "\\PC{0,40}".prop_map(|s: String| (MessageKind::Text, s.into_bytes()));
    let binary = proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| (MessageKind::Binary, b));
    (
        prop_oneof![text, binary],
        proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    )
        .prop_map(|((kind, payload), cuts, ping_inside)| {
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(payload.len() + 1)).collect();
            cuts.sort_unstable();
            Message { kind, payload, cuts, ping_inside }
        })
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => message().prop_map(Item::Message),
        1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Item::Ping),
        1 => proptest::collection::vec(any::<u8>(), 0..=20).prop_map(Item::Pong),
    ]
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        Just(Ending::Nothing),
        (prop_oneof![Just(1000u16), Just(1001), Just(4000)], "[a-z ]{0,20}")
            .prop_map(|(c, r)| Ending::Close(c, r)),
        Just(Ending::InvalidUtf8),
        Just(Ending::ReservedBit),
        Just(Ending::TooBig),
        Just(Ending::BadContinuation),
    ]
}

/// Encodes frames, masking with a key per frame when `masked`.
struct Encoder {
    masked: bool,
    out: Vec<u8>,
    keys: u32,
}

impl Encoder {
    fn frame(&mut self, b0: u8, payload: &[u8]) {
        let opcode = OpCode::from_bits(b0 & 0x0f).unwrap();
        self.keys = self.keys.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mask = self.masked.then_some(self.keys.to_le_bytes());
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: b0 >> 4 & 7,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        let (head, len) = header.encode();
        self.out.extend_from_slice(&head[..len]);
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.out[start..], key, 0);
        }
    }

    fn message(&mut self, m: &Message) {
        let mut bounds = vec![0];
        bounds.extend(&m.cuts);
        bounds.push(m.payload.len());
        let pieces: Vec<&[u8]> = bounds.windows(2).map(|w| &m.payload[w[0]..w[1]]).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let opcode = if i == 0 { m.kind_opcode() } else { 0x0 };
            let fin = if i == pieces.len() - 1 { 0x80 } else { 0 };
            self.frame(fin | opcode, piece);
            if i == 0 && pieces.len() > 1 {
                if let Some(ping) = &m.ping_inside {
                    self.frame(0x89, ping);
                }
            }
        }
    }
}

impl Message {
    fn kind_opcode(&self) -> u8 {
        match self.kind {
            MessageKind::Text => 0x1,
            MessageKind::Binary => 0x2,
        }
    }
}

fn stream(items: &[Item], ending: &Ending, masked: bool) -> Vec<u8> {
    let mut e = Encoder { masked, out: Vec::new(), keys: 7 };
    for item in items {
        match item {
            Item::Message(m) => e.message(m),
            Item::Ping(p) => e.frame(0x89, p),
            Item::Pong(p) => e.frame(0x8a, p),
        }
    }
    match ending {
        Ending::Nothing => {}
        Ending::Close(code, reason) => {
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice(reason.as_bytes());
            e.frame(0x88, &payload);
        }
        Ending::InvalidUtf8 => {
            e.frame(0x01, "ok é".as_bytes().split_last().unwrap().1);
            e.frame(0x80, b"x");
        }
        Ending::ReservedBit => e.frame(0xc2, b"rsv1"),
        Ending::TooBig => e.frame(0x82, &[0; 401]),
        Ending::BadContinuation => e.frame(0x80, b"orphan"),
    }
    e.out
}

/// Everything a run shows the application and the transport.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    messages: Vec<(MessageKind, Vec<u8>)>,
    /// Events other than Pong, which coalesce when several arrive between polls.
    events: Vec<Event>,
    last_pong: Option<Vec<u8>>,
    written: Vec<u8>,
    state: Option<State>,
    close: Option<CloseInfo>,
}

impl Outcome {
    /// Drains the connection as an adapter does; returns whether anything came out.
    fn drain<S: Storage, R: MaskKeys>(&mut self, conn: &mut Connection<S, R>) -> bool {
        let mut any = false;
        while let Some(m) = conn.peek_message() {
            self.messages.push((m.kind, m.data.to_vec()));
            assert!(conn.pop_message());
            any = true;
        }
        while let Some(bytes) = conn.poll_transmit() {
            let n = bytes.len();
            self.written.extend_from_slice(bytes);
            conn.consume_transmit(n);
            any = true;
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Pong(p) => self.last_pong = Some(p.as_bytes().to_vec()),
                other => self.events.push(other),
            }
            any = true;
        }
        any
    }
}

/// Feeds `bytes` split at `cuts` (sorted offsets), keeping what is not accepted for the next
/// read, as an adapter does.
fn feed<S: Storage, R: MaskKeys>(mut conn: Connection<S, R>, bytes: &[u8], cuts: &[usize]) -> Outcome {
    let mut out = Outcome::default();
    let mut pending = Vec::new();
    let mut bounds = vec![0];
    bounds.extend(cuts);
    bounds.push(bytes.len());
    for w in bounds.windows(2) {
        pending.extend_from_slice(&bytes[w[0]..w[1]]);
        loop {
            let n = conn.handle_input(NOW, &pending);
            pending.drain(..n);
            let drained = out.drain(&mut conn);
            if pending.is_empty() || (n == 0 && !drained) {
                break;
            }
        }
    }
    out.state = Some(conn.state());
    out.close = conn.close_info().cloned();
    out
}

fn open_server() -> Connection<VecStorage> {
    let mut server = Connection::<VecStorage>::server(NOW, CONFIG);
    let request = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(server.handle_input(NOW, request), request.len());
    assert_eq!(server.poll_event(), Some(Event::Request));
    server.accept(NOW, None, &[]).unwrap();
    let head = server.poll_transmit().unwrap().len();
    server.consume_transmit(head);
    assert_eq!(server.poll_event(), Some(Event::Open));
    server
}

fn open_client() -> Connection<VecStorage, ChaCha8Rng> {
    let request = ClientRequest { host: "h", port: None, resource: "/", protocols: &[], extra_headers: &[] };
    let mut client =
        Connection::<VecStorage, _>::client(NOW, &request, CONFIG, ChaCha8Rng::seed_from_u64(5)).unwrap();
    let sent = client.poll_transmit().unwrap().to_vec();
    client.consume_transmit(sent.len());
    let at = sent.windows(19).position(|w| w == b"Sec-WebSocket-Key: ").unwrap() + 19;
    let accept = accept_key(&sent[at..at + 24]);
    let mut response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Accept: "
        .to_vec();
    response.extend_from_slice(&accept);
    response.extend_from_slice(b"\r\n\r\n");
    assert_eq!(client.handle_input(NOW, &response), response.len());
    assert_eq!(client.poll_event(), Some(Event::Open));
    client
}

fn cuts(len: usize, picks: &[proptest::sample::Index], bytewise: bool) -> Vec<usize> {
    if bytewise {
        return (1..len).collect();
    }
    let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

/// The messages the stream carries, when it ends cleanly.
fn expected_messages(items: &[Item]) -> Vec<(MessageKind, Vec<u8>)> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Message(m) => Some((m.kind, m.payload.clone())),
            _ => None,
        })
        .collect()
}

fn check_clean_ending(outcome: &Outcome, items: &[Item], ending: &Ending) {
    match ending {
        Ending::Nothing => {
            assert_eq!(outcome.messages, expected_messages(items));
            assert_eq!(outcome.state, Some(State::Open));
        }
        Ending::Close(code, reason) => {
            assert_eq!(outcome.messages, expected_messages(items));
            let close = outcome.close.as_ref().unwrap();
            assert_eq!((close.code.0, close.reason.as_str(), close.clean), (*code, reason.as_str(), true));
        }
        _ => {
            // The messages before the violation are delivered, then the connection fails.
            assert_eq!(outcome.messages, expected_messages(items));
            assert_eq!(outcome.state, Some(State::Closed));
            assert!(outcome.close.as_ref().is_some_and(|c| c.error.is_some()), "{:?}", outcome.close);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn client_to_server_chunking_changes_nothing(
        items in proptest::collection::vec(item(), 0..8),
        ending in ending(),
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 0..24),
        bytewise in proptest::bool::weighted(0.1),
    ) {
        let bytes = stream(&items, &ending, true);
        let whole = feed(open_server(), &bytes, &[]);
        check_clean_ending(&whole, &items, &ending);
        let split = feed(open_server(), &bytes, &cuts(bytes.len(), &picks, bytewise));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn server_to_client_chunking_changes_nothing(
        items in proptest::collection::vec(item(), 0..8),
        ending in ending(),
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 0..24),
        bytewise in proptest::bool::weighted(0.1),
    ) {
        let bytes = stream(&items, &ending, false);
        let whole = feed(open_client(), &bytes, &[]);
        check_clean_ending(&whole, &items, &ending);
        let split = feed(open_client(), &bytes, &cuts(bytes.len(), &picks, bytewise));
        prop_assert_eq!(split, whole);
    }
}
