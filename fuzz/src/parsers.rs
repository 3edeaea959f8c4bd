//! Stateless targets: the handshake parsers and the frame header codec.

use multipeer::Instant;
use multipeer::VecStorage;
use multipeer::ws::frame::{FrameError, FrameHeader, MAX_HEADER_LEN};
use multipeer::ws::handshake::{
    HandshakeError, accept_key, parse_request, select_protocol, validate_response,
};
use multipeer::ws::{Config, Connection, Event, MAX_HEADERS, OpCode};

use super::input::Input;

/// Protocol names the targets offer and support; small so that matches happen.
pub const PROTOCOLS: [&str; 3] = ["chat", "superchat", "v1.godot"];

/// The RFC 6455 §1.3 sample key, which the response target expects an answer to.
pub const SAMPLE_KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

/// `parse_request` with a caller header array of 0–39 entries (first byte), on the rest.
///
/// Checks: a valid request has a 24-character key, an `Upgrade` header and protocol names
/// without commas or padding; a bigger header array changes nothing once the small one was
/// enough; and a server [`Connection`] reading the same head reaches the same verdict.
pub fn handshake_request(data: &[u8]) {
    let mut input = Input::new(data);
    let n_headers = usize::from(input.byte() % 40);
    let head = input.rest();
    let mut small = vec![httparse::EMPTY_HEADER; n_headers];
    let mut big = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let result = parse_request(head, &mut small);
    let full = parse_request(head, &mut big);
    match &result {
        Ok(req) => {
            let full = full.as_ref().expect("a larger header array rejected what a smaller accepted");
            assert_eq!(
                (req.path(), req.key(), req.headers().len()),
                (full.path(), full.key(), full.headers().len())
            );
            assert!(req.headers().len() <= n_headers);
            assert_eq!(req.key().len(), 24, "a 16-byte key is 24 base64 characters");
            assert!(accept_key(req.key()).iter().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)));
            assert!(req.header("upgrade").is_some());
            for p in req.protocols() {
                assert!(!p.is_empty() && !p.contains(',') && p.trim_matches([' ', '\t']) == p, "{p:?}");
            }
            let expected = req.protocols().find(|p| PROTOCOLS.contains(p));
            match select_protocol(req.protocols(), &PROTOCOLS) {
                Ok(chosen) => assert_eq!(chosen, expected),
                Err(e) => {
                    assert_eq!(e, HandshakeError::NoCommonProtocol);
                    assert_eq!(expected, None);
                }
            }
        }
        Err(HandshakeError::TooManyHeaders { limit }) => assert_eq!(*limit, n_headers),
        Err(e) => assert!(full.is_err(), "{e:?} with {n_headers} headers, but the full array accepts"),
    }
    cross_check_server(head, n_headers.max(1));
}

/// Feeds `head` to a server connection and compares its verdict with `parse_request`.
fn cross_check_server(head: &[u8], max_headers: usize) {
    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
        return;
    };
    let config = Config { max_headers, max_handshake_size: 1 << 16, ..Config::GODOT };
    let mut conn = Connection::<VecStorage>::server(Instant::ZERO, config);
    let used = conn.handle_input(Instant::ZERO, head);
    assert!(used >= end && used <= head.len());
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let expected = parse_request(&head[..end], &mut headers);
    match (expected, conn.poll_event()) {
        (Ok(req), Some(Event::Request)) => {
            assert_eq!(used, end, "bytes after the head wait for the accept decision");
            let mut again = vec![httparse::EMPTY_HEADER; max_headers];
            let seen = conn.request(&mut again).expect("the pending request parses again");
            assert_eq!((seen.path(), seen.key()), (req.path(), req.key()));
        }
        (Err(e), Some(Event::HandshakeFailed(f))) => {
            assert_eq!(e, f);
            let answer = conn.poll_transmit().expect("a rejected request is answered");
            let status = format!("HTTP/1.1 {} ", e.http_status());
            assert!(answer.starts_with(status.as_bytes()), "{e:?}");
        }
        (expected, event) => panic!("parse_request says {expected:?}, the connection {event:?}"),
    }
}

/// `validate_response` with 0–39 header slots (first byte) and an offered protocol list
/// chosen by the second byte, on the rest, expecting the answer to [`SAMPLE_KEY`].
///
/// Checks: an accepted response names one offered protocol (or none), and a bigger header
/// array changes nothing once the small one was enough.
pub fn handshake_response(data: &[u8]) {
    let mut input = Input::new(data);
    let n_headers = usize::from(input.byte() % 40);
    let offered = offered_list(input.byte());
    let head = input.rest();
    let accept = accept_key(SAMPLE_KEY);
    let mut small = vec![httparse::EMPTY_HEADER; n_headers];
    let mut big = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let result = validate_response(head, &accept, offered.as_bytes(), &mut small);
    let full = validate_response(head, &accept, offered.as_bytes(), &mut big);
    match result {
        Ok(r) => {
            assert_eq!(Ok(r), full);
            if let Some(p) = r.protocol {
                let p = core::str::from_utf8(p).expect("an offered name is UTF-8");
                let listed = offered.split(',').any(|o| o == p);
                assert!(listed || (offered.is_empty() && p.is_empty()), "{p:?} not in {offered:?}");
            }
        }
        Err(HandshakeError::TooManyHeaders { limit }) => assert_eq!(limit, n_headers),
        Err(e) => assert!(full.is_err(), "{e:?} with {n_headers} headers, but the full array accepts"),
    }
}

/// The comma-separated protocols a client offered, chosen by the bits of `sel`.
#[must_use]
pub fn offered_list(sel: u8) -> String {
    let names: Vec<&str> =
        PROTOCOLS.iter().enumerate().filter(|(i, _)| sel >> i & 1 == 1).map(|(_, p)| *p).collect();
    names.join(",")
}

const OPCODES: [OpCode; 6] =
    [OpCode::Continuation, OpCode::Text, OpCode::Binary, OpCode::Close, OpCode::Ping, OpCode::Pong];

/// `FrameHeader::parse` on the bytes, and `encode` → `parse` on a header built from them.
///
/// Checks: a parsed header re-encodes to the same bytes when they used the shortest length
/// form, and to a shorter prefix otherwise; every proper prefix of a header is "need more";
/// errors name what the bytes hold; encoding any header parses back to it.
pub fn frame_header(data: &[u8]) {
    match FrameHeader::parse(data) {
        Ok(Some((h, n))) => {
            let ext = match data[1] & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            assert_eq!(n, 2 + ext + if h.mask.is_some() { 4 } else { 0 });
            assert_eq!(
                (h.fin, h.rsv, h.opcode.bits()),
                (data[0] & 0x80 != 0, data[0] >> 4 & 7, data[0] & 0x0f)
            );
            let (enc, len) = h.encode();
            assert_eq!(len, h.encoded_len());
            assert!(len <= n);
            if len == n {
                assert_eq!(&enc[..len], &data[..n]);
            }
            round_trip(h);
            for k in 0..n {
                assert_eq!(FrameHeader::parse(&data[..k]), Ok(None), "prefix of {k} bytes");
            }
        }
        Ok(None) => assert!(data.len() < MAX_HEADER_LEN),
        Err(FrameError::ReservedOpcode(op)) => {
            assert_eq!(op, data[0] & 0x0f);
            assert!(OpCode::from_bits(op).is_none());
        }
        Err(FrameError::LengthOverflow) => assert!(data[1] & 0x7f == 127 && data[2] & 0x80 != 0),
        Err(e) => panic!("unexpected {e:?}"),
    }
    let mut input = Input::new(data);
    let flags = input.byte();
    let payload_len = match flags >> 5 & 3 {
        0 => u64::from(input.byte() % 126),
        1 => u64::from(input.u16().max(126)),
        _ => u64::from_le_bytes(core::array::from_fn(|_| input.byte())) >> 1,
    };
    let mask = (flags & 0x80 != 0).then(|| core::array::from_fn(|_| input.byte()));
    let opcode = OPCODES[usize::from(input.byte()) % OPCODES.len()];
    round_trip(FrameHeader { fin: flags & 1 == 1, rsv: flags >> 1 & 7, opcode, mask, payload_len });
}

fn round_trip(h: FrameHeader) {
    let (enc, len) = h.encode();
    assert_eq!(len, h.encoded_len());
    assert_eq!(FrameHeader::parse(&enc[..len]), Ok(Some((h, len))));
    assert_eq!(FrameHeader::parse(&enc[..len - 1]), Ok(None));
}
