//! The blocking client and server over loopback TCP: echo, subprotocols, the request hook,
//! and the core's timers (handshake, heartbeat, close) running while calls block.

use core::time::Duration;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use multipeer::ws::{CloseCode, Config, HandshakeError, Initiator, MessageKind};
use multipeer_std::{ClientOptions, Error, Message, Rejection, Server, ServerOptions, WebSocket};

/// Longest any test waits for the other side before failing.
const BOUND: Duration = Duration::from_secs(10);

fn quick_config() -> Config {
    Config {
        handshake_timeout: Duration::from_millis(300),
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    }
}

/// Runs `f` on a thread and returns a receiver for its result.
fn spawn<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

/// Echoes every message of one accepted connection until it ends; returns how it ended.
fn echo_once(server: Server) -> mpsc::Receiver<Result<Error, Error>> {
    spawn(move || {
        let mut ws = server.accept()?;
        loop {
            match ws.recv_timeout(BOUND) {
                Ok(message) => ws.send(message.kind, &message.data)?,
                Err(e) => return Ok(e),
            }
        }
    })
}

fn url(server: &Server, path: &str) -> String {
    format!("ws://{}{path}", server.local_addr().unwrap())
}

#[test]
fn echo_round_trip_then_clean_close_seen_by_both_sides() {
    let server =
        Server::bind("127.0.0.1:0", ServerOptions::new().protocol("godot").protocol("chat")).unwrap();
    let url = url(&server, "/lobby?room=3");
    let ended = echo_once(server);

    let options = ClientOptions::new().protocol("chat").config(quick_config());
    let mut ws = WebSocket::connect(&url, &options).unwrap();
    assert_eq!(ws.protocol(), Some("chat"));
    assert!(ws.peer_addr().unwrap().ip().is_loopback());

    // Just under Godot's default 65535-byte message limit.
    let big: Vec<u8> = (0..60_000u32).map(|i| (i * 7) as u8).collect();
    for (kind, data) in [
        (MessageKind::Text, b"hello".to_vec()),
        (MessageKind::Binary, vec![0, 1, 2, 255]),
        (MessageKind::Text, Vec::new()),
        (MessageKind::Binary, big),
    ] {
        ws.send(kind, &data).unwrap();
        let echo = ws.recv_timeout(BOUND).unwrap();
        assert_eq!(echo, Message { kind, data });
    }
    // Several queued messages leave in one flush and come back in order.
    for i in 0..50u8 {
        ws.queue(MessageKind::Binary, &[i; 10]).unwrap();
    }
    ws.flush().unwrap();
    for i in 0..50u8 {
        assert_eq!(ws.recv_timeout(BOUND).unwrap().data, vec![i; 10]);
    }

    let info = ws.close(CloseCode(4000), "done").unwrap();
    assert!(info.clean, "{info:?}");
    assert_eq!(
        (info.code, info.reason.as_str(), info.initiator),
        (CloseCode(4000), "done", Initiator::Local)
    );
    assert!(ws.get_ref().is_none(), "the transport is released after the close");
    assert!(matches!(ws.recv(), Err(Error::Closed(_))));

    let server_end = ended.recv_timeout(BOUND).unwrap().unwrap();
    let Error::Closed(server_info) = server_end else { panic!("server ended with {server_end}") };
    assert!(server_info.clean);
    assert_eq!((server_info.code, server_info.initiator), (CloseCode(4000), Initiator::Remote));
}

#[test]
fn messages_beyond_the_limit_close_with_1009() {
    let server = Server::bind("127.0.0.1:0", ServerOptions::new().config(quick_config())).unwrap();
    let url = url(&server, "/");
    let ended = echo_once(server);
    let options = ClientOptions::new().config(Config { outbound_buffer_size: 1 << 20, ..quick_config() });
    let mut ws = WebSocket::connect(&url, &options).unwrap();
    ws.send_binary(&vec![7; 70_000]).unwrap();
    let Err(Error::Closed(info)) = ws.recv_timeout(BOUND) else { panic!("the server kept the connection") };
    assert_eq!(info.code, CloseCode::MESSAGE_TOO_BIG);
    assert_eq!(info.initiator, Initiator::Remote);
    let Error::Closed(server_info) = ended.recv_timeout(BOUND).unwrap().unwrap() else { panic!() };
    assert_eq!((server_info.code, server_info.initiator), (CloseCode::MESSAGE_TOO_BIG, Initiator::Library));
}

#[test]
fn server_times_out_a_silent_client_with_408() {
    let server = Server::bind("127.0.0.1:0", ServerOptions::new().config(quick_config())).unwrap();
    let addr = server.local_addr().unwrap();
    let accepted = spawn(move || {
        let start = Instant::now();
        (server.accept().map(drop), start.elapsed())
    });
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(BOUND)).unwrap();
    let mut answer = Vec::new();
    silent.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 408 "), "{:?}", String::from_utf8_lossy(&answer));
    let (result, waited) = accepted.recv_timeout(BOUND).unwrap();
    assert!(matches!(result, Err(Error::Handshake(HandshakeError::Timeout))), "{result:?}");
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "{waited:?}");
}

#[test]
fn client_times_out_a_silent_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    // Accepts and reads the request, never answers; holds the socket until the client gives up.
    let silent = spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(BOUND)).unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
        sink
    });
    let start = Instant::now();
    let result = WebSocket::connect(&url, &ClientOptions::new().config(quick_config()));
    assert!(matches!(result, Err(Error::Handshake(HandshakeError::Timeout))), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    let request = silent.recv_timeout(BOUND).unwrap();
    assert!(request.starts_with(b"GET / HTTP/1.1\r\n"));
}

#[test]
fn rejected_request_gets_its_http_status() {
    let options = ServerOptions::new().header("X-Served-By: multipeer").check_request(|request| {
        if request.path() == "/private" || request.origin() == Some(b"https://evil.example") {
            Err(Rejection::new(403, "not for you"))
        } else {
            Ok(())
        }
    });
    let server = Server::bind("127.0.0.1:0", options).unwrap();
    let addr = server.local_addr().unwrap();
    let results = spawn(move || (0..3).map(|_| server.accept().map(drop)).collect::<Vec<_>>());

    let refused = WebSocket::connect(&format!("ws://{addr}/private"), &ClientOptions::new());
    assert!(matches!(refused, Err(Error::Handshake(HandshakeError::UnexpectedStatus(403)))), "{refused:?}");

    // The hook sees the headers too; a raw client reads the status line and the reason.
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(BOUND)).unwrap();
    raw.write_all(
        b"GET /game HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Origin: https://evil.example\r\n\r\n",
    )
    .unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).unwrap();
    // Closing our side ends the server's linger, so it accepts the next client at once.
    drop(raw);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(answer.ends_with("not for you\n"), "{answer}");

    let accepted = WebSocket::connect(&format!("ws://{addr}/game"), &ClientOptions::new()).unwrap();
    drop(accepted);
    let results = results.recv_timeout(BOUND).unwrap();
    assert!(matches!(results[0], Err(Error::Handshake(HandshakeError::Rejected(403)))));
    assert!(matches!(results[1], Err(Error::Handshake(HandshakeError::Rejected(403)))));
    assert!(results[2].is_ok(), "{:?}", results[2]);
}

#[test]
fn no_common_subprotocol_is_refused_with_400() {
    let server = Server::bind("127.0.0.1:0", ServerOptions::new().protocol("godot")).unwrap();
    let url = url(&server, "/");
    let accepted = spawn(move || server.accept().map(drop));
    let result = WebSocket::connect(&url, &ClientOptions::new().protocol("other"));
    assert!(matches!(result, Err(Error::Handshake(HandshakeError::UnexpectedStatus(400)))), "{result:?}");
    let server_side = accepted.recv_timeout(BOUND).unwrap();
    assert!(
        matches!(server_side, Err(Error::Handshake(HandshakeError::NoCommonProtocol))),
        "{server_side:?}"
    );
}

#[test]
fn heartbeat_runs_while_recv_waits() {
    let server = Server::bind("127.0.0.1:0", ServerOptions::new()).unwrap();
    let url = url(&server, "/");
    let ended = echo_once(server);
    let config = Config { heartbeat_interval: Some(Duration::from_millis(50)), ..quick_config() };
    let mut ws = WebSocket::connect(&url, &ClientOptions::new().config(config)).unwrap();
    // Nothing is sent; only the heartbeat's pings travel, and the server's pongs come back.
    assert!(matches!(ws.recv_timeout(Duration::from_millis(400)), Err(Error::TimedOut)));
    assert!(ws.take_pong().is_some(), "no pong answered the heartbeat");
    ws.send_text("still open").unwrap();
    assert_eq!(ws.recv_timeout(BOUND).unwrap().as_text(), Some("still open"));
    assert!(ws.close(CloseCode::NORMAL, "").unwrap().clean);
    assert!(ended.recv_timeout(BOUND).is_ok());
}

#[test]
fn close_gives_up_after_the_close_timeout() {
    // A server that completes the handshake and then never reads again.
    let server = Server::bind("127.0.0.1:0", ServerOptions::new()).unwrap();
    let url = url(&server, "/");
    let (release, hold) = mpsc::channel::<()>();
    let held = spawn(move || {
        let ws = server.accept();
        let _ = hold.recv_timeout(BOUND);
        ws.is_ok()
    });
    let mut ws = WebSocket::connect(&url, &ClientOptions::new().config(quick_config())).unwrap();
    let start = Instant::now();
    let info = ws.close(CloseCode::NORMAL, "bye").unwrap();
    let waited = start.elapsed();
    assert!(!info.clean);
    assert_eq!(info.error, Some(multipeer::ws::Error::CloseTimeout));
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "{waited:?}");
    release.send(()).unwrap();
    assert!(held.recv_timeout(BOUND).unwrap());
}

#[test]
fn wss_and_bad_urls_are_refused_before_any_io() {
    let options = ClientOptions::new();
    assert!(matches!(WebSocket::connect("wss://127.0.0.1:1/", &options), Err(Error::TlsUnsupported)));
    assert!(matches!(WebSocket::connect("http://127.0.0.1:1/", &options), Err(Error::Url(_))));
    assert!(matches!(WebSocket::connect("ws://127.0.0.1:1/#x", &options), Err(Error::Url(_))));
}
