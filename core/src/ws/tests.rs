//! The test kit shared by the `ws` tests, and Godot's wire vectors for close, pong and error
//! frames (godot-protocol.md §10.4, §10.5), checked byte for byte.
//!
//! Frames fed to a connection are built here by hand, independently of the crate's encoder and
//! masking code, so a bug there cannot hide in both the input and the check.

use std::string::ToString;
use std::vec::Vec;

use chacha20::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::Instant;
use crate::buffer::Storage;
use crate::ws::handshake::{ClientRequest, Url};

pub(crate) type Heap = crate::buffer::VecStorageForTests;

/// The mask key of every client frame built by [`masked`].
pub(crate) const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame with first byte `b0` (FIN, RSV, opcode), the shortest length form and `mask`.
pub(crate) fn frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut v = std::vec![b0];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => v.push(m | n as u8),
        n @ 126..=0xffff => {
            v.push(m | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(m | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            v.extend_from_slice(&k);
            v.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => v.extend_from_slice(payload),
    }
    v
}

/// A frame as a client sends it (masked with [`MASK`]).
pub(crate) fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    frame(b0, Some(MASK), payload)
}

/// A frame as a server sends it (unmasked).
pub(crate) fn unmasked(b0: u8, payload: &[u8]) -> Vec<u8> {
    frame(b0, None, payload)
}

/// A Close payload.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    [&code.to_be_bytes()[..], reason.as_bytes()].concat()
}

/// One frame taken from a connection's output: first byte and unmasked payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) b0: u8,
    pub(crate) masked: bool,
    pub(crate) payload: Vec<u8>,
}

/// Splits transmitted bytes into frames, unmasking client frames.
pub(crate) fn parse_frames(mut bytes: &[u8]) -> Vec<Sent> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (h, n) = frame::FrameHeader::parse(bytes).unwrap().expect("whole frames only");
        let len = h.payload_len as usize;
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(k) = h.mask {
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= k[i % 4]);
        }
        out.push(Sent { b0: bytes[0], masked: h.mask.is_some(), payload });
        bytes = &bytes[n + len..];
    }
    out
}

/// Takes everything a connection has to send, as frames.
pub(crate) fn drain<S: Storage, R: MaskKeys>(c: &mut Connection<S, R>) -> Vec<Sent> {
    let bytes = c.poll_transmit().map(<[u8]>::to_vec).unwrap_or_default();
    c.consume_transmit(bytes.len());
    parse_frames(&bytes)
}

pub(crate) fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(7)
}

pub(crate) fn client<S: Storage>(now: Instant, config: Config) -> Connection<S, ChaCha8Rng> {
    let url = Url::parse("ws://127.0.0.1:9080/lobby?x=1").unwrap();
    Connection::client(now, &ClientRequest::from_url(&url), config, rng()).unwrap()
}

/// Moves everything each side has to send into the other, until neither has anything or
/// neither accepts more.
pub(crate) fn pump<S: Storage, R1: MaskKeys, R2: MaskKeys>(
    now: Instant,
    a: &mut Connection<S, R1>,
    b: &mut Connection<S, R2>,
) {
    loop {
        let mut moved = false;
        if let Some(bytes) = a.poll_transmit().map(<[u8]>::to_vec) {
            let n = b.handle_input(now, &bytes);
            a.consume_transmit(n);
            moved |= n > 0;
        }
        if let Some(bytes) = b.poll_transmit().map(<[u8]>::to_vec) {
            let n = a.handle_input(now, &bytes);
            b.consume_transmit(n);
            moved |= n > 0;
        }
        if !moved {
            return;
        }
    }
}

pub(crate) fn events<S: Storage, R: MaskKeys>(c: &mut Connection<S, R>) -> Vec<Event> {
    core::iter::from_fn(|| c.poll_event()).collect()
}

/// The one `Closed` event among the pending events, which must end them.
pub(crate) fn closed<S: Storage, R: MaskKeys>(c: &mut Connection<S, R>) -> CloseInfo {
    let evs = events(c);
    let terminal = evs.iter().filter(|e| matches!(e, Event::Closed(_) | Event::HandshakeFailed(_))).count();
    match evs.last() {
        Some(Event::Closed(info)) if terminal == 1 => info.clone(),
        _ => panic!("expected one Closed event last, got {evs:?}"),
    }
}

/// A client and a server, open.
pub(crate) fn open_pair<S: Storage>(config: Config) -> (Connection<S, ChaCha8Rng>, Connection<S, NoRng>) {
    let now = Instant::ZERO;
    let mut c = client::<S>(now, config);
    let mut s = Connection::<S, NoRng>::server(now, config);
    pump(now, &mut c, &mut s);
    assert_eq!(events(&mut s), [Event::Request]);
    s.accept(now, None, &[]).unwrap();
    pump(now, &mut c, &mut s);
    assert_eq!(events(&mut s), [Event::Open]);
    assert_eq!(events(&mut c), [Event::Open]);
    (c, s)
}

/// An open server connection whose client is played by hand (raw frames).
pub(crate) fn open_server(config: Config) -> Connection<Heap, NoRng> {
    let (_, s) = open_pair::<Heap>(config);
    s
}

/// An open client connection whose server is played by hand.
pub(crate) fn open_client(config: Config) -> Connection<Heap, ChaCha8Rng> {
    let (c, _) = open_pair::<Heap>(config);
    c
}

// ----- Godot vectors (§10.4: server → client frames, unmasked) --------------------------------

const NOW: Instant = Instant::ZERO;

#[test]
fn godot_close_echo_1001_going() {
    let mut s = open_server(Config::GODOT);
    let input = masked(0x88, &close_payload(1001, "going"));
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(s.poll_transmit(), Some(&[0x88, 0x07, 0x03, 0xe9, 0x67, 0x6f, 0x69, 0x6e, 0x67][..]));
    let info = closed(&mut s);
    assert_eq!(
        (info.code, info.reason.as_str(), info.initiator, info.error, info.clean),
        (CloseCode::GOING_AWAY, "going", Initiator::Remote, None, true)
    );
    assert!(s.is_finished(), "a server closes TCP once the echo is written");
}

#[test]
fn godot_close_4000_bye() {
    let mut s = open_server(Config::GODOT);
    s.close(NOW, CloseCode(4000), "bye").unwrap();
    assert_eq!(s.poll_transmit(), Some(&[0x88, 0x05, 0x0f, 0xa0, 0x62, 0x79, 0x65][..]));
    // A client sends the same, masked.
    let mut c = open_client(Config::GODOT);
    c.close(NOW, CloseCode(4000), "bye").unwrap();
    assert_eq!(
        drain(&mut c),
        [Sent { b0: 0x88, masked: true, payload: std::vec![0x0f, 0xa0, 0x62, 0x79, 0x65] }]
    );
}

#[test]
fn godot_pong_hi() {
    let mut s = open_server(Config::GODOT);
    let input = masked(0x89, b"hi");
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(s.poll_transmit(), Some(&[0x8a, 0x02, 0x68, 0x69][..]));
    assert_eq!(events(&mut s), [], "a ping is answered, not reported");
}

#[test]
fn godot_error_closes() {
    let big = std::vec![0u8; 65536];
    // (what the client sent, the close code, the error)
    let table: &[(&str, Vec<u8>, [u8; 2], Error)] = &[
        ("unmasked frame", unmasked(0x82, b"x"), [0x03, 0xea], Error::UnmaskedFrame),
        ("RSV1 frame", masked(0xc2, b"x"), [0x03, 0xea], Error::ReservedBits(0b100)),
        ("invalid UTF-8 text", masked(0x81, b"\xc3\x28"), [0x03, 0xef], Error::InvalidUtf8),
        ("65536-byte message", masked(0x82, &big), [0x03, 0xf1], Error::MessageTooBig { limit: 65535 }),
    ];
    for (name, input, code, error) in table {
        let mut s = open_server(Config::GODOT);
        assert_eq!(s.handle_input(NOW, input), input.len(), "{name}");
        // Godot sends the bare code; the reason here says what went wrong (RFC 6455 §5.5.1).
        let reason = error.to_string();
        let expected = [&[0x88, 2 + reason.len() as u8][..], code, reason.as_bytes()].concat();
        assert_eq!(s.poll_transmit(), Some(&expected[..]), "{name}");
        let info = closed(&mut s);
        assert_eq!(
            (info.code, info.initiator, info.error, info.clean),
            (CloseCode(u16::from_be_bytes(*code)), Initiator::Library, Some(*error), false),
            "{name}"
        );
        assert_eq!(s.available_messages(), 0, "{name}");
        assert!(s.is_finished(), "{name}");
    }
}

#[test]
fn godot_size_boundary() {
    // §10.5, 4.6.3: 65535 bytes delivered, 65536 → 1009 (the server refuses it from the header).
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    let max: Vec<u8> = (0..65535u32).map(|i| (i % 251) as u8).collect();
    c.send_binary(&max).unwrap();
    pump(NOW, &mut c, &mut s);
    assert_eq!(s.peek_message().map(|m| m.data.len()), Some(65535));
    assert_eq!(s.peek_message().unwrap().data, &max[..]);
    assert!(s.pop_message());
    let header = masked(0x82, &[0; 65536]);
    assert_eq!(s.handle_input(NOW, &header[..14]), 14, "the 14-byte header alone is enough");
    assert_eq!(closed(&mut s).error, Some(Error::MessageTooBig { limit: 65535 }));
    // A default sender cannot even queue 65536 bytes.
    assert_eq!(c.send_binary(&[0; 65536]), Err(SendError::TooLarge { max: 65535 }));
}

#[test]
fn errors_map_to_rfc_close_codes() {
    let table: &[(Error, u16)] = &[
        (Error::ReservedOpcode(3), 1002),
        (Error::ReservedBits(1), 1002),
        (Error::LengthOverflow, 1002),
        (Error::UnmaskedFrame, 1002),
        (Error::MaskedFrame, 1002),
        (Error::ControlFrameTooLong, 1002),
        (Error::FragmentedControlFrame, 1002),
        (Error::UnexpectedContinuation, 1002),
        (Error::ExpectedContinuation, 1002),
        (Error::InvalidClosePayload, 1002),
        (Error::InvalidCloseCode(1005), 1002),
        (Error::MessageTooBig { limit: 1 }, 1009),
        (Error::TooManyFragments { limit: 1 }, 1009),
        (Error::InvalidUtf8, 1007),
        (Error::KeepaliveTimeout, 1006),
        (Error::CloseTimeout, 1006),
        (Error::ConnectionReset, 1006),
    ];
    for (error, code) in table {
        assert_eq!(error.close_code(), CloseCode(*code), "{error:?}");
        let text = error.to_string();
        assert!(!text.is_empty() && text.len() <= CloseReason::MAX_LEN, "{error:?}: {text}");
    }
}
