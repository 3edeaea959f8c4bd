//! Hostile opening handshakes against the real server (multipeer-mio's `Server::run` on a
//! thread, over loopback) while honest peers keep relaying through it.
//!
//! Each attack must get its exact HTTP status and reason, be reported as
//! `Event::ConnectionRejected` with the exact `HandshakeError`, have its connection released
//! (the attacker reads end of stream, `connection_count` falls back), leave the honest peers'
//! traffic untouched (every packet, in order, still flowing), and never grow the server's
//! buffers beyond the handshake limit however many bytes it sends.

use core::time::Duration;
use std::time::Instant;

use multipeer::peer::{Event, ServerConfig};
use multipeer::ws::HandshakeError;
use multipeer_tests::hostile::honest::Honest;
use multipeer_tests::hostile::quick_config;
use multipeer_tests::hostile::raw::{End, KEY, READ_LIMIT, Raw, request};
use multipeer_tests::hostile::server::Harness;

const SECOND: Duration = Duration::from_secs(1);

/// A request head with these lines after the request line, ended by a blank line.
fn head(request_line: &str, lines: &[&str]) -> Vec<u8> {
    let mut text = format!("{request_line}\r\n");
    for l in lines {
        text.push_str(l);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.into_bytes()
}

const HOST: &str = "Host: 127.0.0.1";
const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const VERSION: &str = "Sec-WebSocket-Version: 13";

fn key_line() -> String {
    format!("Sec-WebSocket-Key: {KEY}")
}

/// Sends `bytes` in one write, expects `status` with `error`'s text as the body, end of
/// stream, the exact rejection event, and the connection released.
fn expect_rejected(server: &Harness, name: &str, bytes: &[u8], status: u16, error: HandshakeError) {
    let before = server.with(|o| o.rejections(error));
    let started = Instant::now();
    let mut raw = Raw::connect(server.addr());
    raw.send(bytes).unwrap_or_else(|e| panic!("{name}: send: {e}"));
    let (got, body) = raw.read_rejection(READ_LIMIT).unwrap_or_else(|e| panic!("{name}: no answer: {e}"));
    assert_eq!((got, body.as_str()), (status, error.to_string().as_str()), "{name}");
    let (end, rest) = raw.wait_end(READ_LIMIT).unwrap_or_else(|e| panic!("{name}: not closed: {e}"));
    assert_eq!((end, rest.len()), (End::Eof, 0), "{name}: closed by {end:?} after {rest:?}");
    // Refused as soon as the bytes showed the fault, not at the handshake timeout.
    let handshake_timeout = quick_config().ws.handshake_timeout;
    assert!(started.elapsed() < handshake_timeout, "{name}: answered after {:?}", started.elapsed());
    server.wait(&format!("{name}: rejection event"), SECOND, |o| o.rejections(error) == before + 1);
    server.wait_connections(2, SECOND);
}

#[test]
fn malformed_requests_get_their_exact_status_and_are_released() {
    let server = Harness::start(quick_config());
    let honest = Honest::start(&server.url(), 2);
    let key = key_line();
    let long_line = format!("GET /{} HTTP/1.1", "a".repeat(5000));
    let big_header = format!("X-Filler: {}", "b".repeat(5000));
    let many: Vec<String> = (0..70).map(|i| format!("X-{i}: v")).collect();
    let mut too_many: Vec<&str> = vec![HOST, UPGRADE, CONNECTION, &key, VERSION];
    too_many.extend(many.iter().map(String::as_str));
    let full = [HOST, UPGRADE, CONNECTION, key.as_str(), VERSION];
    let cases: Vec<(&str, Vec<u8>, u16, HandshakeError)> = vec![
        (
            "oversized request line",
            head(&long_line, &full),
            431,
            HandshakeError::HeadTooLarge { limit: 4096 },
        ),
        (
            "oversized header",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, &key, VERSION, &big_header]),
            431,
            HandshakeError::HeadTooLarge { limit: 4096 },
        ),
        (
            "70 extra headers",
            head("GET / HTTP/1.1", &too_many),
            431,
            HandshakeError::TooManyHeaders { limit: 64 },
        ),
        (
            "header without colon",
            head("GET / HTTP/1.1", &["Host 127.0.0.1", UPGRADE, CONNECTION, &key, VERSION]),
            400,
            HandshakeError::MalformedHttp,
        ),
        // Godot 3.2.3 and 4.6.3 crash on exactly this line (godot-protocol.md §1.7).
        ("request line without version", head("GET /", &full), 400, HandshakeError::MalformedHttp),
        ("two tokens and a space", head("GET / ", &full), 400, HandshakeError::MalformedHttp),
        ("POST", head("POST / HTTP/1.1", &full), 405, HandshakeError::MethodNotAllowed),
        ("HTTP/1.0", head("GET / HTTP/1.0", &full), 505, HandshakeError::UnsupportedHttpVersion),
        (
            "missing key",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, VERSION]),
            400,
            HandshakeError::MissingHeader("Sec-WebSocket-Key"),
        ),
        (
            "duplicate key",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, &key, &key, VERSION]),
            400,
            HandshakeError::DuplicateHeader("Sec-WebSocket-Key"),
        ),
        (
            "key of 15 bytes",
            head(
                "GET / HTTP/1.1",
                &[HOST, UPGRADE, CONNECTION, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA", VERSION],
            ),
            400,
            HandshakeError::InvalidKey,
        ),
        (
            "key that is not base64",
            head(
                "GET / HTTP/1.1",
                &[HOST, UPGRADE, CONNECTION, "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==", VERSION],
            ),
            400,
            HandshakeError::InvalidKey,
        ),
        (
            "version 8",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, &key, "Sec-WebSocket-Version: 8"]),
            426,
            HandshakeError::UnsupportedVersion,
        ),
        (
            "no version",
            head("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, &key]),
            426,
            HandshakeError::UnsupportedVersion,
        ),
        (
            "not an upgrade",
            head("GET / HTTP/1.1", &[HOST, "Upgrade: h2c", CONNECTION, &key, VERSION]),
            400,
            HandshakeError::NotAnUpgrade,
        ),
        (
            "no Upgrade header",
            head("GET / HTTP/1.1", &[HOST, CONNECTION, &key, VERSION]),
            400,
            HandshakeError::MissingHeader("Upgrade"),
        ),
        // Bytes that cannot start a request are refused at the first byte.
        (
            "binary garbage",
            vec![0x00, 0xff, 0x13, 0x37, b'\r', b'\n', b'\r', b'\n'],
            400,
            HandshakeError::MalformedHttp,
        ),
        (
            "a token, then garbage",
            b"GET\x00\xff\xfe / HTTP/1.1\r\n\r\n".to_vec(),
            400,
            HandshakeError::MalformedHttp,
        ),
        ("no blank line, 5000 bytes", vec![b'A'; 5000], 431, HandshakeError::HeadTooLarge { limit: 4096 }),
    ];
    for (name, bytes, status, error) in &cases {
        expect_rejected(&server, name, bytes, *status, *error);
        honest.assert_flowing(3);
    }
    // Statuses that carry a header telling the client what would work.
    let mut raw = Raw::connect(server.addr());
    raw.send(&head("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, &key, "Sec-WebSocket-Version: 8"]))
        .unwrap();
    let (_, text) = raw.read_head(READ_LIMIT).unwrap();
    assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
    let mut raw = Raw::connect(server.addr());
    raw.send(&head("DELETE / HTTP/1.1", &full)).unwrap();
    let (_, text) = raw.read_head(READ_LIMIT).unwrap();
    assert!(text.contains("\r\nAllow: GET\r\n"), "{text}");
    server.wait_connections(2, SECOND);

    // A megabyte of header bytes: refused at 4096, never buffered. The server closes while
    // bytes are still coming, so the attacker may see a reset instead of the 431.
    let mut raw = Raw::connect(server.addr());
    let mut flood = b"GET / HTTP/1.1\r\nX-Flood: ".to_vec();
    flood.resize(1 << 20, b'x');
    let _ = raw.send(&flood);
    let (_, seen) = raw.wait_end(READ_LIMIT).expect("closed");
    assert!(seen.is_empty() || seen.starts_with(b"HTTP/1.1 431 "), "{:?}", String::from_utf8_lossy(&seen));
    server.wait_connections(2, SECOND);

    let report = honest.finish();
    report.assert_unaffected();
    let observed = server.stop();
    // Two honest connections (a few KiB) and one attacker at a time, never above its 4 KiB
    // head limit: a server that buffered any attack would be far above this.
    assert!(observed.max_footprint < 32 * 1024, "{}", observed.summary());
    // Every rejection above and nothing else: no peer joined besides the honest two.
    assert_eq!(observed.joined().len(), 2, "{}", observed.summary());
    assert_eq!(observed.stats.rejected, cases.len() as u64 + 3, "{}", observed.summary());
    assert_eq!(observed.stats.dropped, 0, "{}", observed.summary());
}

#[test]
fn slowloris_is_cut_at_the_handshake_timeout_counted_from_accept() {
    let server = Harness::start(quick_config());
    let honest = Honest::start(&server.url(), 2);
    let timeout = quick_config().ws.handshake_timeout;
    let started = Instant::now();
    let mut slow = Raw::connect(server.addr());
    let mut idle = Raw::connect(server.addr());
    // One byte every 50 ms of a valid request that would take 8 s to finish: bytes arriving do
    // not move the deadline.
    let bytes = request(&[]);
    let mut sent = 0;
    let answer = loop {
        assert!(started.elapsed() < timeout * 4, "no answer while sending slowly");
        if slow.send(&bytes[sent..=sent]).is_err() {
            break None;
        }
        sent += 1;
        if let Ok(answer) = slow.read_rejection(Duration::from_millis(50)) {
            break Some(answer);
        }
    };
    let elapsed = started.elapsed();
    assert_eq!(answer, Some((408, "handshake timed out".to_owned())), "after {sent} bytes");
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_millis(400),
        "answered after {elapsed:?}"
    );
    assert!(sent < bytes.len(), "the request completed");
    assert_eq!(slow.wait_end(READ_LIMIT).unwrap().0, End::Eof);
    // A connection that never sends a byte gets the same.
    assert_eq!(idle.read_rejection(READ_LIMIT).unwrap(), (408, "handshake timed out".to_owned()));
    assert_eq!(idle.wait_end(READ_LIMIT).unwrap().0, End::Eof);
    server.wait_connections(2, SECOND);
    honest.assert_flowing(5);
    honest.finish().assert_unaffected();
    let observed = server.stop();
    assert_eq!(observed.rejections(HandshakeError::Timeout), 2, "{}", observed.summary());
}

#[test]
fn origin_allow_list_refuses_other_pages_with_403() {
    let config = ServerConfig {
        allowed_origins: vec!["https://game.example".into(), "http://localhost:8060".into()],
        ..quick_config()
    };
    let server = Harness::start(config);
    // Native clients send no Origin: they pass (the honest peers are such clients).
    let honest = Honest::start(&server.url(), 2);
    for origin in
        ["https://evil.example", "https://game.example.evil.example", "null", "https://game.example:443"]
    {
        let mut raw = Raw::connect(server.addr());
        raw.send(&request(&[&format!("Origin: {origin}")])).unwrap();
        assert_eq!(
            raw.read_rejection(READ_LIMIT).unwrap(),
            (403, "origin not allowed".to_owned()),
            "{origin}"
        );
        assert_eq!(raw.wait_end(READ_LIMIT).unwrap().0, End::Eof, "{origin}");
    }
    for origin in ["https://game.example", "HTTPS://GAME.EXAMPLE", "http://localhost:8060"] {
        let mut raw = Raw::connect(server.addr());
        raw.send(&request(&[&format!("Origin: {origin}")])).unwrap();
        assert_eq!(raw.read_head(READ_LIMIT).unwrap().0, 101, "{origin}");
    }
    server.wait("three browser peers joined", SECOND, |o| o.joined().len() == 5);
    honest.assert_flowing(3);
    honest.finish().assert_unaffected();
    let observed = server.stop();
    let rejected = observed.rejected();
    assert_eq!(rejected, [HandshakeError::Rejected(403); 4], "{}", observed.summary());
    assert!(!observed.events.iter().any(|e| matches!(e, Event::PacketDropped { .. })));
}

mod tls {
    use super::*;
    use multipeer::peer::ClientConfig;
    use multipeer_mio::{ClientOptions, TlsOptions};
    use multipeer_tests::hostile::server::Options;

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// The first flight of a real TLS client.
    fn client_hello() -> Vec<u8> {
        let mut session = TlsOptions::client_unsafe().new_client_session("localhost").unwrap().unwrap();
        let mut hello = Vec::new();
        while session.wants_write() {
            session.write_tls(&mut hello).unwrap();
        }
        hello
    }

    #[test]
    fn a_tls_client_hello_on_a_plain_port_is_refused_at_once() {
        let server = Harness::start(quick_config());
        let honest = Honest::start(&server.url(), 2);
        let hello = client_hello();
        assert_eq!(hello[0], 0x16, "a handshake record");
        let started = Instant::now();
        let mut raw = Raw::connect(server.addr());
        raw.send(&hello).unwrap();
        let answer = raw.read_rejection(READ_LIMIT).unwrap();
        assert_eq!(answer, (400, HandshakeError::MalformedHttp.to_string()));
        assert_eq!(raw.wait_end(READ_LIMIT).unwrap().0, End::Eof);
        assert!(started.elapsed() < Duration::from_millis(300), "{:?}", started.elapsed());
        server.wait_connections(2, SECOND);
        honest.assert_flowing(3);
        honest.finish().assert_unaffected();
        let observed = server.stop();
        assert_eq!(observed.rejected(), [HandshakeError::MalformedHttp], "{}", observed.summary());
    }

    #[test]
    fn plain_text_on_a_tls_port_fails_the_tls_session_only() {
        let (cert, key) = self_signed();
        let tls = TlsOptions::server(cert.as_bytes(), key.as_bytes()).unwrap();
        let server = Harness::start_with(quick_config(), Options::default(), Some(tls));
        let url = format!("wss://localhost:{}/", server.addr().port());
        let trust = TlsOptions::client_with(cert.as_bytes(), None).unwrap();
        let honest =
            Honest::start_options(&url, 2, ClientOptions::new(ClientConfig::default()).with_tls(trust));
        let started = Instant::now();
        let mut raw = Raw::connect(server.addr());
        raw.send(&request(&[])).unwrap();
        let (end, seen) = raw.wait_end(READ_LIMIT).unwrap();
        assert!(started.elapsed() < Duration::from_millis(300), "{:?}", started.elapsed());
        // No HTTP answer: at most a TLS alert record (content type 21), then the end.
        assert!(seen.is_empty() || seen[0] == 21, "{end:?} {seen:02x?}");
        server.wait_connections(2, SECOND);
        server.wait("the TLS failure", SECOND, |o| o.transport.tls_failures == 1);
        honest.assert_flowing(3);
        honest.finish().assert_unaffected();
        let observed = server.stop();
        assert_eq!(observed.failures.len(), 1, "{}", observed.summary());
        assert!(observed.failures[0].contains("NotTls"), "{}", observed.summary());
        assert_eq!(observed.rejected(), [HandshakeError::ConnectionClosed], "{}", observed.summary());
    }
}
