//! Opening-handshake vectors: RFC 6455 §1.3 and §4, Godot's exact bytes
//! (godot-protocol.md §3.4, §10.1), server acceptance and rejection, URLs.

use std::string::String;
use std::vec::Vec;

use chacha20::ChaCha8Rng;
use rand_core::{Rng as _, SeedableRng};

use super::*;
use crate::Instant;
use crate::buffer::VecStorageForTests as Heap;
use crate::ws::{Config, Connection, Event, MessageKind, State};

const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn str_of(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap()
}

#[test]
fn rfc6455_sample_key() {
    assert_eq!(str_of(&accept_key(SAMPLE_KEY.as_bytes())), SAMPLE_ACCEPT);
    // RFC 6455 §4.1: the sample key is the base64 of the 16 bytes "the sample nonce".
    assert_eq!(str_of(&key_from_nonce(*b"the sample nonce")), SAMPLE_KEY);
}

// ----- the client's request ------------------------------------------------------------------

/// The request head a client queues for `url`, with the 24-character key replaced by `<KEY>`.
fn client_request(url: &str, protocols: &[&str], extra: &[&str], seed: u64) -> (String, String) {
    let url = Url::parse(url).unwrap();
    let request = ClientRequest { protocols, extra_headers: extra, ..ClientRequest::from_url(&url) };
    let conn = Connection::<Heap, _>::client(
        Instant::ZERO,
        &request,
        Config::GODOT,
        ChaCha8Rng::seed_from_u64(seed),
    )
    .unwrap();
    let head = String::from(str_of(conn.poll_transmit().unwrap()));
    let at = head.find("Sec-WebSocket-Key: ").unwrap() + "Sec-WebSocket-Key: ".len();
    let key = String::from(&head[at..at + KEY_LEN]);
    (std::format!("{}<KEY>{}", &head[..at], &head[at + KEY_LEN..]), key)
}

#[test]
fn godot_client_request_bytes() {
    let (head, key) =
        client_request("ws://127.0.0.1:18766/path?q=1", &["proto-b", "proto-a"], &["X-Custom: yes"], 7);
    assert_eq!(
        head,
        "GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:18766\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: <KEY>\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: proto-b,proto-a\r\n\
         X-Custom: yes\r\n\r\n"
    );
    // The key is base64 of the first 16 bytes the injected RNG yields.
    let mut nonce = [0u8; 16];
    ChaCha8Rng::seed_from_u64(7).fill_bytes(&mut nonce);
    assert_eq!(key.as_bytes(), key_from_nonce(nonce));
    let (_, other) = client_request("ws://127.0.0.1:18766/path?q=1", &[], &[], 8);
    assert_ne!(key, other, "another seed, another key");
}

#[test]
fn client_request_host_line_and_resource() {
    // (url, request line, host line)
    let table = [
        ("ws://example.com", "GET / HTTP/1.1", "Host: example.com"),
        ("ws://example.com:80/", "GET / HTTP/1.1", "Host: example.com"),
        ("wss://example.com:443/a", "GET /a HTTP/1.1", "Host: example.com"),
        ("ws://example.com:443/a", "GET /a HTTP/1.1", "Host: example.com:443"),
        ("wss://example.com:80/a", "GET /a HTTP/1.1", "Host: example.com:80"),
        ("ws://h?x=1", "GET /?x=1 HTTP/1.1", "Host: h"),
        ("ws://[::1]:9000/x", "GET /x HTTP/1.1", "Host: [::1]:9000"),
        ("10.0.0.1:18766", "GET / HTTP/1.1", "Host: 10.0.0.1:18766"),
    ];
    for (url, request_line, host_line) in table {
        let (head, _) = client_request(url, &[], &[], 1);
        let mut lines = head.split("\r\n");
        assert_eq!(lines.next(), Some(request_line), "{url}");
        assert_eq!(lines.next(), Some(host_line), "{url}");
        assert!(!head.contains("Sec-WebSocket-Protocol"), "{url}: no protocol offered");
    }
}

#[test]
fn client_refuses_what_it_cannot_send() {
    let url = Url::parse("ws://h/").unwrap();
    let long = "x".repeat(5000);
    let long_header = std::format!("X-Long: {long}");
    let protocol_too_long = "p".repeat(MAX_PROTOCOL_LEN + 1);
    let bad: &[(&[&str], &[&str], HandshakeError)] = &[
        (&[], &["no colon"], HandshakeError::InvalidHeaderLine),
        (&[], &[": empty name"], HandshakeError::InvalidHeaderLine),
        (&[], &["X-Split: a\r\nX-Injected: b"], HandshakeError::InvalidHeaderLine),
        (&["two words"], &[], HandshakeError::InvalidHeaderLine),
        (&["a,b"], &[], HandshakeError::InvalidHeaderLine),
        (&[""], &[], HandshakeError::InvalidHeaderLine),
        (&[&protocol_too_long], &[], HandshakeError::InvalidHeaderLine),
        (&[], &[&long_header], HandshakeError::HeadTooLarge { limit: 4096 }),
    ];
    for (protocols, extra_headers, error) in bad {
        let request = ClientRequest { protocols, extra_headers, ..ClientRequest::from_url(&url) };
        let got = Connection::<Heap, _>::client(
            Instant::ZERO,
            &request,
            Config::GODOT,
            ChaCha8Rng::seed_from_u64(1),
        );
        assert_eq!(got.err(), Some(*error), "{protocols:?} {extra_headers:?}");
    }
}

// ----- the server's answer -------------------------------------------------------------------

/// A request head from header lines.
fn head(request_line: &str, lines: &[&str]) -> Vec<u8> {
    let mut s = String::from(request_line);
    s.push_str("\r\n");
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

const HOST: &str = "Host: server.example.com";
const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const VERSION: &str = "Sec-WebSocket-Version: 13";

/// A server connection that has read `request`, fed in chunks of `chunk` bytes.
fn serve(request: &[u8], chunk: usize) -> (Connection<Heap>, Vec<Event>) {
    let mut s = Connection::<Heap>::server(Instant::ZERO, Config::GODOT);
    for part in request.chunks(chunk) {
        assert_eq!(s.handle_input(Instant::ZERO, part), part.len());
    }
    let events = core::iter::from_fn(|| s.poll_event()).collect();
    (s, events)
}

#[test]
fn godot_server_101_without_subprotocol() {
    let (mut s, events) =
        serve(&head("GET /chat HTTP/1.1", &[HOST, UPGRADE, CONNECTION, KEY, VERSION]), 4096);
    assert_eq!(events, [Event::Request]);
    assert_eq!(s.state(), State::Connecting);
    assert_eq!(s.poll_transmit(), None, "nothing is sent before the application decides");
    s.accept(Instant::ZERO, None, &[]).unwrap();
    let expected = std::format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\n\r\n"
    );
    assert_eq!(str_of(s.poll_transmit().unwrap()), expected);
    assert_eq!(s.poll_event(), Some(Event::Open));
    assert_eq!((s.state(), s.protocol()), (State::Open, None));
}

#[test]
fn server_101_with_subprotocol_and_extra_headers() {
    let request = head(
        "GET /chat HTTP/1.1",
        &[HOST, UPGRADE, CONNECTION, KEY, VERSION, "Sec-WebSocket-Protocol: proto-b,proto-a"],
    );
    let (mut s, _) = serve(&request, 4096);
    s.accept_supported(Instant::ZERO, &["proto-a", "proto-b"], &["X-Server: multipeer"]).unwrap();
    let expected = std::format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\nSec-WebSocket-Protocol: proto-b\r\nX-Server: multipeer\r\n\r\n"
    );
    assert_eq!(str_of(s.poll_transmit().unwrap()), expected, "the client's order wins");
    assert_eq!(s.protocol(), Some("proto-b"));
}

#[test]
fn server_accepts_what_godot_accepts() {
    let cases: &[(&str, Vec<u8>)] = &[
        (
            "lower-case header names",
            head(
                "GET / HTTP/1.1",
                &[
                    "upgrade: websocket",
                    "connection: Upgrade",
                    "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
                    "sec-websocket-version: 13",
                ],
            ),
        ),
        ("no Host", head("GET / HTTP/1.1", &[UPGRADE, CONNECTION, KEY, VERSION])),
        (
            "Upgrade: WebSocket",
            head("GET / HTTP/1.1", &[HOST, "Upgrade: WebSocket", CONNECTION, KEY, VERSION]),
        ),
        (
            "Connection: keep-alive, Upgrade",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, "Connection: keep-alive, Upgrade", KEY, VERSION]),
        ),
        (
            "Connection split over two lines",
            head(
                "GET / HTTP/1.1",
                &[HOST, UPGRADE, "Connection: keep-alive", "Connection: Upgrade", KEY, VERSION],
            ),
        ),
        (
            "padded values",
            head("GET / HTTP/1.1", &["Upgrade:   websocket  ", "Connection:Upgrade", KEY, VERSION]),
        ),
    ];
    for (name, request) in cases {
        for chunk in [request.len(), 7, 1] {
            let (mut s, events) = serve(request, chunk);
            assert_eq!(events, [Event::Request], "{name}, chunks of {chunk}");
            s.accept(Instant::ZERO, None, &[]).unwrap();
            let answer = s.poll_transmit().unwrap();
            assert!(answer.starts_with(b"HTTP/1.1 101 "), "{name}");
            assert!(str_of(answer).contains(SAMPLE_ACCEPT), "{name}");
        }
    }
}

/// The status code and the header lines of an HTTP answer, checking that its body is exactly
/// `Content-Length` long.
fn parse_answer(answer: &[u8]) -> (u16, Vec<(String, String)>) {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(answer).unwrap() else { panic!("partial answer") };
    let lines: Vec<(String, String)> =
        response.headers.iter().map(|h| (String::from(h.name), String::from(str_of(h.value)))).collect();
    let content_length =
        lines.iter().find(|(n, _)| n == "Content-Length").unwrap().1.parse::<usize>().unwrap();
    assert_eq!(answer.len() - len, content_length, "body length");
    assert!(lines.iter().any(|(n, v)| n == "Connection" && v == "close"));
    (response.code.unwrap(), lines)
}

/// A request the server refuses: name, bytes, status, error, a header line the answer carries.
type Rejection<'a> = (&'a str, Vec<u8>, u16, HandshakeError, Option<(&'a str, &'a str)>);

/// The protocol chosen, or why none could be.
type Choice<'a> = Result<Option<&'a str>, HandshakeError>;

#[test]
fn server_rejections_answer_with_the_http_status() {
    let many: Vec<String> = (0..61).map(|i| std::format!("X-H{i}: v")).collect();
    let mut too_many: Vec<&str> = std::vec![UPGRADE, CONNECTION, KEY, VERSION];
    too_many.extend(many.iter().map(String::as_str));
    let filler = std::format!("X-Filler: {}", "f".repeat(4000));
    // (name, request, status, error, a header line the answer must carry)
    let table: &[Rejection<'_>] = &[
        (
            "version 8",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, KEY, "Sec-WebSocket-Version: 8"]),
            426,
            HandshakeError::UnsupportedVersion,
            Some(("Sec-WebSocket-Version", "13")),
        ),
        (
            "no version header",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, KEY]),
            426,
            HandshakeError::UnsupportedVersion,
            Some(("Sec-WebSocket-Version", "13")),
        ),
        (
            "GET / without HTTP version",
            head("GET /", &[HOST, UPGRADE, CONNECTION, KEY, VERSION]),
            400,
            HandshakeError::MalformedHttp,
            None,
        ),
        (
            "HTTP/1.0",
            head("GET / HTTP/1.0", &[HOST, UPGRADE, CONNECTION, KEY, VERSION]),
            505,
            HandshakeError::UnsupportedHttpVersion,
            None,
        ),
        (
            "65 header lines",
            head("GET / HTTP/1.1", &too_many),
            431,
            HandshakeError::TooManyHeaders { limit: 64 },
            None,
        ),
        (
            "head over 4096 bytes",
            head("GET / HTTP/1.1", &[UPGRADE, CONNECTION, KEY, VERSION, &filler]),
            431,
            HandshakeError::HeadTooLarge { limit: 4096 },
            None,
        ),
        (
            "POST",
            head("POST / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, KEY, VERSION]),
            405,
            HandshakeError::MethodNotAllowed,
            Some(("Allow", "GET")),
        ),
        (
            "missing key",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, VERSION]),
            400,
            HandshakeError::MissingHeader("Sec-WebSocket-Key"),
            None,
        ),
        (
            "duplicate key",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, KEY, KEY, VERSION]),
            400,
            HandshakeError::DuplicateHeader("Sec-WebSocket-Key"),
            None,
        ),
        (
            "key of 10 bytes",
            head("GET / HTTP/1.1", &[UPGRADE, CONNECTION, "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==", VERSION]),
            400,
            HandshakeError::InvalidKey,
            None,
        ),
        (
            "key not base64",
            head(
                "GET / HTTP/1.1",
                &[UPGRADE, CONNECTION, "Sec-WebSocket-Key: ************************", VERSION],
            ),
            400,
            HandshakeError::InvalidKey,
            None,
        ),
        (
            "missing Upgrade",
            head("GET / HTTP/1.1", &[HOST, CONNECTION, KEY, VERSION]),
            400,
            HandshakeError::MissingHeader("Upgrade"),
            None,
        ),
        (
            "Upgrade: h2c",
            head("GET / HTTP/1.1", &[HOST, "Upgrade: h2c", CONNECTION, KEY, VERSION]),
            400,
            HandshakeError::NotAnUpgrade,
            None,
        ),
        (
            "missing Connection",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, KEY, VERSION]),
            400,
            HandshakeError::MissingHeader("Connection"),
            None,
        ),
        (
            "Connection: keep-alive",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, "Connection: keep-alive", KEY, VERSION]),
            400,
            HandshakeError::NotAnUpgrade,
            None,
        ),
    ];
    for (name, request, status, error, line) in table {
        let mut s = Connection::<Heap>::server(Instant::ZERO, Config::GODOT);
        let used = s.handle_input(Instant::ZERO, request);
        assert!(used <= request.len(), "{name}");
        let events: Vec<Event> = core::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(events, [Event::HandshakeFailed(*error)], "{name}");
        assert_eq!(error.http_status(), *status, "{name}");
        let (code, lines) = parse_answer(s.poll_transmit().unwrap());
        assert_eq!(code, *status, "{name}");
        if let Some((n, v)) = line {
            assert!(lines.iter().any(|(ln, lv)| ln == n && lv == v), "{name}: {lines:?}");
        }
        assert!(s.is_finished() && s.state() == State::Closed, "{name}");
        assert_eq!(s.handshake_error(), Some(*error), "{name}");
    }
}

#[test]
fn head_limit_is_exact() {
    // A head of exactly 4096 bytes is read; one more byte is refused.
    let base = head("GET / HTTP/1.1", &[UPGRADE, CONNECTION, KEY, VERSION, "X-Pad: "]);
    let pad = 4096 - base.len();
    for (extra, ok) in [(pad, true), (pad + 1, false)] {
        let line = std::format!("X-Pad: {}", "p".repeat(extra));
        let request = head("GET / HTTP/1.1", &[UPGRADE, CONNECTION, KEY, VERSION, &line]);
        assert_eq!(request.len(), 4096 + extra - pad);
        let (_, events) = serve(&request, 1000);
        let expected = if ok {
            Event::Request
        } else {
            Event::HandshakeFailed(HandshakeError::HeadTooLarge { limit: 4096 })
        };
        assert_eq!(events, [expected], "{} bytes", request.len());
    }
}

#[test]
fn subprotocol_choice_follows_godot_rules() {
    // (offered, supported, expected)
    let table: &[(&[&str], &[&str], Choice<'_>)] = &[
        (&[], &[], Ok(None)),
        (&["a", "b"], &["b", "a"], Ok(Some("a"))),
        (&["x", "b"], &["a", "b"], Ok(Some("b"))),
        (&["A"], &["a"], Err(HandshakeError::NoCommonProtocol)),
        (&["a"], &["b"], Err(HandshakeError::NoCommonProtocol)),
        (&[], &["a"], Err(HandshakeError::NoCommonProtocol)),
        (&["a"], &[], Err(HandshakeError::NoCommonProtocol)),
        (&["a"], &[" a "], Ok(Some("a"))),
    ];
    for (offered, supported, expected) in table {
        assert_eq!(
            select_protocol(offered.iter().copied(), supported),
            *expected,
            "{offered:?} {supported:?}"
        );
    }
}

#[test]
fn accept_supported_rejects_a_mismatch_with_400() {
    // (offer header, server's list, selected or the answer's status)
    type Outcome<'a> = Result<Option<&'a str>, u16>;
    let table: &[(Option<&str>, &[&str], Outcome<'_>)] = &[
        (Some("Sec-WebSocket-Protocol: chat"), &["chat"], Ok(Some("chat"))),
        (Some("Sec-WebSocket-Protocol: a, chat"), &["chat", "a"], Ok(Some("a"))),
        (Some("Sec-WebSocket-Protocol: chat"), &["other"], Err(400)),
        (Some("Sec-WebSocket-Protocol: chat"), &[], Err(400)),
        (None, &["chat"], Err(400)),
        (None, &[], Ok(None)),
    ];
    for (offer, supported, expected) in table {
        let mut lines = std::vec![UPGRADE, CONNECTION, KEY, VERSION];
        lines.extend(offer);
        let (mut s, _) = serve(&head("GET / HTTP/1.1", &lines), 4096);
        s.accept_supported(Instant::ZERO, supported, &[]).unwrap();
        let events: Vec<Event> = core::iter::from_fn(|| s.poll_event()).collect();
        match expected {
            Ok(protocol) => {
                assert_eq!(events, [Event::Open], "{offer:?} {supported:?}");
                assert_eq!(s.protocol(), *protocol);
            }
            Err(status) => {
                assert_eq!(events, [Event::HandshakeFailed(HandshakeError::NoCommonProtocol)]);
                assert_eq!(parse_answer(s.poll_transmit().unwrap()).0, *status);
            }
        }
    }
}

#[test]
fn application_reject_and_wrong_state() {
    let request = head(
        "GET /lobby?room=3 HTTP/1.1",
        &[HOST, "Origin: https://game.example", UPGRADE, CONNECTION, KEY, VERSION],
    );
    let (mut s, _) = serve(&request, 4096);
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let req = s.request(&mut headers).unwrap();
    assert_eq!(req.path(), "/lobby?room=3");
    assert_eq!(
        (req.host(), req.origin()),
        (Some(&b"server.example.com"[..]), Some(&b"https://game.example"[..]))
    );
    assert_eq!(req.key(), SAMPLE_KEY.as_bytes());
    assert_eq!(req.protocols().count(), 0);
    s.reject(403, "banned").unwrap();
    let answer = s.poll_transmit().unwrap().to_vec();
    assert_eq!(parse_answer(&answer).0, 403);
    assert!(answer.ends_with(b"\r\n\r\nbanned\n"));
    assert_eq!(s.poll_event(), Some(Event::HandshakeFailed(HandshakeError::Rejected(403))));
    assert_eq!(s.reject(403, "again"), Err(crate::ws::SendError::WrongState));
    assert_eq!(s.accept(Instant::ZERO, None, &[]), Err(crate::ws::SendError::WrongState));

    // A status outside 400–599 becomes 400.
    let (mut s, _) = serve(&request, 4096);
    s.reject(200, "no").unwrap();
    assert_eq!(parse_answer(s.poll_transmit().unwrap()).0, 400);

    // accept checks what the application gives it.
    let (mut s, _) = serve(&request, 4096);
    let bad = Err(crate::ws::SendError::Handshake(HandshakeError::InvalidHeaderLine));
    assert_eq!(s.accept(Instant::ZERO, Some("two words"), &[]), bad);
    assert_eq!(s.accept(Instant::ZERO, None, &["X-Bad: a\nb"]), bad);
    assert_eq!(s.state(), State::Connecting, "a refused accept leaves the request pending");
    s.accept(Instant::ZERO, Some("ok"), &[]).unwrap();
}

#[test]
fn protocols_are_read_across_lines() {
    let request = head(
        "GET / HTTP/1.1",
        &[UPGRADE, CONNECTION, KEY, VERSION, "Sec-WebSocket-Protocol: a, b", "sec-websocket-protocol: ,c"],
    );
    let (s, _) = serve(&request, 4096);
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let protocols: Vec<&str> = s.request(&mut headers).unwrap().protocols().collect();
    assert_eq!(protocols, ["a", "b", "c"]);
}

#[test]
fn bytes_after_the_request_wait_for_the_decision() {
    let request = head("GET / HTTP/1.1", &[UPGRADE, CONNECTION, KEY, VERSION]);
    // A masked binary frame [1, 2, 3] with the key 0.
    let frame = [0x82, 0x83, 0, 0, 0, 0, 1, 2, 3];
    let input = [&request[..], &frame].concat();
    let mut s = Connection::<Heap>::server(Instant::ZERO, Config::GODOT);
    assert_eq!(s.handle_input(Instant::ZERO, &input), request.len());
    assert_eq!(s.handle_input(Instant::ZERO, &frame), 0, "nothing is read until accept");
    s.accept(Instant::ZERO, None, &[]).unwrap();
    assert_eq!(s.handle_input(Instant::ZERO, &frame), frame.len());
    assert_eq!(s.peek_message().map(|m| (m.kind, m.data)), Some((MessageKind::Binary, &[1u8, 2, 3][..])));
}

// ----- the client's check of the response ---------------------------------------------------

#[test]
fn response_validation() {
    let ok = std::format!("Sec-WebSocket-Accept: {SAMPLE_ACCEPT}");
    let accept: [u8; ACCEPT_LEN] = SAMPLE_ACCEPT.as_bytes().try_into().unwrap();
    let status = "HTTP/1.1 101 Switching Protocols";
    // (status line, header lines, offered, expected)
    let table: &[(&str, &[&str], &str, Choice<'_>)] = &[
        (status, &[UPGRADE, CONNECTION, &ok], "", Ok(None)),
        (status, &["upgrade: WebSocket", "connection: upgrade", &ok], "", Ok(None)),
        (status, &[UPGRADE, "Connection: Upgrade, keep-alive", &ok], "", Ok(None)),
        (
            status,
            &[UPGRADE, CONNECTION, &ok, "Sec-WebSocket-Protocol: proto-a"],
            "proto-b,proto-a",
            Ok(Some("proto-a")),
        ),
        (
            status,
            &[UPGRADE, CONNECTION, &ok, "Sec-WebSocket-Protocol: Proto-A"],
            "proto-b,proto-a",
            Err(HandshakeError::UnofferedProtocol),
        ),
        (
            status,
            &[UPGRADE, CONNECTION, &ok, "Sec-WebSocket-Protocol: proto-a"],
            "",
            Err(HandshakeError::UnofferedProtocol),
        ),
        (
            status,
            &[UPGRADE, CONNECTION, &ok, "Sec-WebSocket-Protocol: a,b"],
            "a,b",
            Err(HandshakeError::UnofferedProtocol),
        ),
        (
            status,
            &[UPGRADE, CONNECTION, &ok, "Sec-WebSocket-Extensions: permessage-deflate"],
            "",
            Err(HandshakeError::UnofferedExtension),
        ),
        ("HTTP/1.1 200 OK", &[UPGRADE, CONNECTION, &ok], "", Err(HandshakeError::UnexpectedStatus(200))),
        (
            "HTTP/1.0 101 Switching Protocols",
            &[UPGRADE, CONNECTION, &ok],
            "",
            Err(HandshakeError::UnsupportedHttpVersion),
        ),
        (status, &[CONNECTION, &ok], "", Err(HandshakeError::NotAnUpgrade)),
        (status, &[UPGRADE, "Connection: keep-alive", &ok], "", Err(HandshakeError::NotAnUpgrade)),
        (status, &[UPGRADE, CONNECTION], "", Err(HandshakeError::MissingHeader("Sec-WebSocket-Accept"))),
        (
            status,
            &[UPGRADE, CONNECTION, &ok, &ok],
            "",
            Err(HandshakeError::DuplicateHeader("Sec-WebSocket-Accept")),
        ),
        (
            status,
            &[UPGRADE, CONNECTION, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOO="],
            "",
            Err(HandshakeError::AcceptMismatch),
        ),
        ("HTTP/1.1 101", &[UPGRADE, CONNECTION, &ok], "", Ok(None)),
        ("garbage", &[], "", Err(HandshakeError::MalformedHttp)),
    ];
    for (status_line, lines, offered, expected) in table {
        let response = head(status_line, lines);
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let got = validate_response(&response, &accept, offered.as_bytes(), &mut headers)
            .map(|r| r.protocol.map(str_of));
        assert_eq!(got, *expected, "{status_line} {lines:?}");
    }
    let mut two = [httparse::EMPTY_HEADER; 2];
    let response = head(status, &[UPGRADE, CONNECTION, &ok]);
    assert_eq!(
        validate_response(&response, &accept, b"", &mut two),
        Err(HandshakeError::TooManyHeaders { limit: 2 })
    );
}

// ----- URLs ----------------------------------------------------------------------------------

#[test]
fn url_parse() {
    use Scheme::{Ws, Wss};
    // (input, scheme, host, port, explicit port, resource)
    let ok: &[(&str, Scheme, &str, u16, bool, &str)] = &[
        ("ws://example.com", Ws, "example.com", 80, false, "/"),
        ("wss://example.com", Wss, "example.com", 443, false, "/"),
        ("ws://example.com:8080/chat", Ws, "example.com", 8080, true, "/chat"),
        ("wss://example.com:443/", Wss, "example.com", 443, true, "/"),
        ("WSS://Example.com/A", Wss, "Example.com", 443, false, "/A"),
        ("ws://127.0.0.1:18766/path?q=1", Ws, "127.0.0.1", 18766, true, "/path?q=1"),
        ("ws://[::1]:9000/x", Ws, "[::1]", 9000, true, "/x"),
        ("wss://[2001:db8::1]", Wss, "[2001:db8::1]", 443, false, "/"),
        ("ws://h?x=1", Ws, "h", 80, false, "?x=1"),
        ("ws://h:81?x=1", Ws, "h", 81, true, "?x=1"),
        ("ws://user:pw@host:81/", Ws, "host", 81, true, "/"),
        ("127.0.0.1:18766/path", Ws, "127.0.0.1", 18766, true, "/path"),
        ("localhost", Ws, "localhost", 80, false, "/"),
    ];
    for &(input, scheme, host, port, explicit_port, resource) in ok {
        assert_eq!(Url::parse(input), Ok(Url { scheme, host, port, explicit_port, resource }), "{input}");
    }
    assert_eq!(Url::parse("ws://[::1]:9000/").unwrap().host_name(), "::1");
    assert_eq!(Url::parse("ws://h/").unwrap().host_name(), "h");
    let bad: &[(&str, UrlError)] = &[
        ("ws://h/#frag", UrlError::Fragment),
        ("ws://h#", UrlError::Fragment),
        ("ws://h:0/", UrlError::InvalidPort),
        ("ws://h:65536/", UrlError::InvalidPort),
        ("ws://h:port/", UrlError::InvalidPort),
        ("ws://h:/", UrlError::InvalidPort),
        ("ws://h:-1/", UrlError::InvalidPort),
        ("http://h/", UrlError::UnsupportedScheme),
        ("://h/", UrlError::UnsupportedScheme),
        ("ws://", UrlError::MissingHost),
        ("ws://:80/", UrlError::MissingHost),
        ("ws://[]/", UrlError::MissingHost),
        ("ws://a b/", UrlError::InvalidCharacter),
        ("ws://h/\n", UrlError::InvalidCharacter),
        ("ws://[::1/", UrlError::InvalidCharacter),
        ("ws://[::1]x/", UrlError::InvalidCharacter),
        ("ws://::1/", UrlError::InvalidCharacter),
    ];
    for (input, error) in bad {
        assert_eq!(Url::parse(input), Err(*error), "{input}");
    }
}
