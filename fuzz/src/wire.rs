//! Reads what a connection wrote, as its peer would, and checks that it is well-formed.

use multipeer::ws::frame::{CloseCode, FrameHeader, MAX_CONTROL_PAYLOAD};
use multipeer::ws::handshake::parse_request;
use multipeer::ws::{Config, MAX_HEADERS, MessageKind, OpCode, Role};

/// Checks everything `role` wrote to its transport, in order.
///
/// The stream may stop anywhere (the transport was abandoned, or not everything was written
/// yet), but what is there must be: the opening head (a valid upgrade request from a client; a
/// 101 or an HTTP error answer from a server), then, only after a request or a 101, frames
/// with the right masking, no reserved bits, single-frame messages, valid UTF-8 text, control
/// payloads within 125 bytes, Close payloads a peer accepts, and nothing after a Close.
///
/// # Panics
/// When the stream breaks one of those rules.
pub fn check_output(role: Role, wire: &[u8]) {
    let Some(end) = wire.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
        assert!(!wire.starts_with(b"\r\n"), "an empty head line");
        return;
    };
    let (head, rest) = wire.split_at(end);
    match role {
        Role::Client => {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            if let Err(e) = parse_request(head, &mut headers) {
                panic!("the client's own request is invalid ({e:?}): {:?}", String::from_utf8_lossy(head));
            }
            check_frames(rest, true);
        }
        Role::Server if head.starts_with(b"HTTP/1.1 101 ") => check_frames(rest, false),
        Role::Server => check_error_answer(head, rest),
    }
}

fn check_error_answer(head: &[u8], body: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let parsed = response.parse(head);
    assert!(matches!(parsed, Ok(httparse::Status::Complete(n)) if n == head.len()), "{parsed:?}");
    let status = response.code.unwrap_or(0);
    assert!((400..=599).contains(&status), "error answer with status {status}");
    let header =
        |name: &str| response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    assert_eq!(header("connection"), Some(&b"close"[..]));
    let length: usize = header("content-length")
        .and_then(|v| core::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .expect("an error answer has a Content-Length");
    assert!(body.len() <= length, "{} bytes after an error answer of {length}", body.len());
    assert!(core::str::from_utf8(body).is_ok() || body.len() < length, "the body is text");
}

fn check_frames(bytes: &[u8], masked: bool) {
    let mut at = 0;
    let mut closed = false;
    while at < bytes.len() {
        assert!(!closed, "a frame after Close");
        let parsed = FrameHeader::parse(&bytes[at..]).expect("our own frame header parses");
        let Some((h, n)) = parsed else { return };
        assert_eq!((h.rsv, h.mask.is_some(), h.fin), (0, masked, true), "{h:?}");
        let Some(raw) = usize::try_from(h.payload_len).ok().and_then(|len| bytes.get(at + n..at + n + len))
        else {
            return;
        };
        let mut payload = raw.to_vec();
        if let Some(key) = h.mask {
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
        }
        match h.opcode {
            OpCode::Text => assert!(core::str::from_utf8(&payload).is_ok(), "a text frame that is not UTF-8"),
            OpCode::Binary => {}
            OpCode::Continuation => panic!("messages are sent as single frames"),
            control => {
                assert!(payload.len() <= MAX_CONTROL_PAYLOAD);
                if control == OpCode::Close {
                    check_close_payload(&payload);
                    closed = true;
                }
            }
        }
        at += n + raw.len();
    }
}

fn check_close_payload(payload: &[u8]) {
    match payload {
        [] => {}
        [_] => panic!("a 1-byte Close payload"),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            assert!(code.is_valid_on_wire(), "Close with code {code}");
            assert!(core::str::from_utf8(reason).is_ok(), "a Close reason that is not UTF-8");
        }
    }
}

/// The messages a stream carries, read by a plain reference decoder: the bytes a `role`
/// connection accepted, from the start of its transport (the opening head first).
///
/// Reading stops at the first frame a connection must refuse (bad bits, wrong masking, a
/// broken fragment sequence, a limit of `config` exceeded, invalid UTF-8) and at a Close, so
/// what a connection delivers must always be a prefix of this list.
#[must_use]
pub fn reference_messages(role: Role, accepted: &[u8], config: &Config) -> Vec<(MessageKind, Vec<u8>)> {
    let mut messages = Vec::new();
    let Some(mut at) = accepted.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
        return messages;
    };
    let mut partial: Option<(MessageKind, Vec<u8>, usize)> = None;
    while let Ok(Some((h, n))) = FrameHeader::parse(&accepted[at..]) {
        let control = h.opcode.is_control();
        let bad_header = h.rsv != 0
            || h.mask.is_some() != (role == Role::Server)
            || (control && (!h.fin || h.payload_len > MAX_CONTROL_PAYLOAD as u64));
        let size = partial.as_ref().map_or(0, |(_, p, _)| p.len() as u64).saturating_add(h.payload_len);
        if bad_header || (!control && size > config.max_message_size as u64) {
            break;
        }
        let Some(raw) =
            usize::try_from(h.payload_len).ok().and_then(|len| accepted.get(at + n..at + n + len))
        else {
            break;
        };
        at += n + raw.len();
        let mut payload = raw.to_vec();
        if let Some(key) = h.mask {
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
        }
        let kind = match (h.opcode, partial.as_mut()) {
            (OpCode::Close, _) => break,
            (OpCode::Ping | OpCode::Pong, _) => continue,
            (OpCode::Continuation, Some((_, data, fragments))) => {
                *fragments += 1;
                if *fragments > config.max_fragments {
                    break;
                }
                data.extend_from_slice(&payload);
                None
            }
            (OpCode::Text, None) => Some(MessageKind::Text),
            (OpCode::Binary, None) => Some(MessageKind::Binary),
            _ => break,
        };
        if let Some(kind) = kind {
            partial = Some((kind, payload, 1));
        }
        if h.fin {
            let Some((kind, data, _)) = partial.take() else { break };
            if kind == MessageKind::Text && core::str::from_utf8(&data).is_err() {
                break;
            }
            messages.push((kind, data));
        }
    }
    messages
}
