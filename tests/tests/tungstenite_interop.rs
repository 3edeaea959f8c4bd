//! Interop with tungstenite, a WebSocket implementation nobody here wrote: our clients against
//! its server and its client against our servers (multipeer-std's blocking ones here,
//! multipeer-mio's plain ones in `plain_mio`), over loopback TCP, with text and binary
//! messages at every length-encoding boundary up to 1 MiB, and the closing handshake observed
//! from both ends.

use core::time::Duration;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

use multipeer::ws::{CloseCode, Config, Initiator, MessageKind};
use multipeer_std::{ClientOptions, Error, Message, Server, ServerOptions, WebSocket};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode as TungsteniteCode;

/// Longest any step waits for the other side before the test fails.
const BOUND: Duration = Duration::from_secs(20);

/// Payload lengths around each frame-length encoding boundary (7-bit, 16-bit, 64-bit), plus
/// empty and 1 MiB.
const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

fn our_config() -> Config {
    Config { max_message_size: 2 << 20, outbound_buffer_size: 2 << 20, ..Config::default() }
}

fn their_config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(2 << 20)).max_frame_size(Some(2 << 20))
}

/// Exactly `len` bytes of valid UTF-8, mixing one-, two- and three-byte characters.
fn text_of_len(len: usize) -> String {
    let mut text = String::with_capacity(len);
    for c in "héllo wörld → ".chars().cycle() {
        if text.len() + c.len_utf8() > len {
            break;
        }
        text.push(c);
    }
    while text.len() < len {
        text.push('.');
    }
    text
}

fn binary_of_len(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Every test message, in the order both sides exchange them.
fn messages() -> Vec<Message> {
    SIZES
        .iter()
        .flat_map(|&len| [Message::text(text_of_len(len)), Message::binary(binary_of_len(len))])
        .collect()
}

fn to_tungstenite(message: &Message) -> tungstenite::Message {
    match message.kind {
        MessageKind::Text => tungstenite::Message::text(message.as_text().unwrap_or_default()),
        MessageKind::Binary => tungstenite::Message::binary(message.data.clone()),
    }
}

/// Runs `f` on a thread; the receiver yields its result.
fn spawn<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

/// What the tungstenite server saw of our client.
#[derive(Debug)]
struct TheirView {
    echoed: usize,
    close: Option<CloseFrame>,
    ended_cleanly: bool,
}

/// A tungstenite server on a thread that echoes every message of one connection until it
/// closes; the receiver yields what it saw.
fn tungstenite_echo_server() -> (core::net::SocketAddr, mpsc::Receiver<Result<TheirView, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spawn(move || -> Result<TheirView, String> {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(BOUND)).map_err(|e| e.to_string())?;
        let mut ws =
            tungstenite::accept_with_config(stream, Some(their_config())).map_err(|e| e.to_string())?;
        let mut view = TheirView { echoed: 0, close: None, ended_cleanly: false };
        loop {
            match ws.read() {
                Ok(m @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                    ws.send(m).map_err(|e| e.to_string())?;
                    view.echoed += 1;
                }
                Ok(tungstenite::Message::Close(frame)) => view.close = frame,
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => {
                    view.ended_cleanly = true;
                    return Ok(view);
                }
                Err(e) => return Err(format!("tungstenite server: {e}")),
            }
        }
    });
    (addr, server)
}

#[test]
fn our_client_against_tungstenite_server() {
    let (addr, server) = tungstenite_echo_server();

    let options = ClientOptions::new().config(our_config());
    let mut ws = WebSocket::connect(&format!("ws://{addr}/interop"), &options).unwrap();
    let sent = messages();
    for message in &sent {
        ws.send(message.kind, &message.data).unwrap();
        let echo = ws.recv_timeout(BOUND).unwrap();
        assert_eq!(echo.kind, message.kind);
        assert!(
            echo.data == message.data,
            "{:?} message of {} bytes changed",
            message.kind,
            message.data.len()
        );
    }
    let info = ws.close(CloseCode(4001), "bye from multipeer").unwrap();
    assert!(info.clean, "{info:?}");
    assert_eq!(info.initiator, Initiator::Local);
    assert!(matches!(ws.recv(), Err(Error::Closed(_))));

    let view = server.recv_timeout(BOUND).unwrap().unwrap();
    assert_eq!(view.echoed, sent.len());
    let close = view.close.expect("tungstenite saw no close frame");
    assert_eq!((u16::from(close.code), close.reason.as_str()), (4001, "bye from multipeer"));
    assert!(view.ended_cleanly);
}

#[test]
fn tungstenite_client_against_our_server() {
    let options = ServerOptions::new().protocol("godot").config(our_config());
    let server = Server::bind("127.0.0.1:0", options).unwrap();
    let addr = server.local_addr().unwrap();
    let ours = spawn(move || -> Result<(usize, Error), Error> {
        let mut ws = server.accept()?;
        let mut echoed = 0;
        loop {
            match ws.recv_timeout(BOUND) {
                Ok(message) => {
                    ws.send(message.kind, &message.data)?;
                    echoed += 1;
                }
                Err(end) => return Ok((echoed, end)),
            }
        }
    });

    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let mut request = format!("ws://{addr}/interop").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "other, godot".parse().unwrap());
    let (mut ws, response) =
        tungstenite::client::client_with_config(request, stream, Some(their_config())).unwrap();
    let chosen = response.headers().get("Sec-WebSocket-Protocol").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(chosen.as_deref(), Some("godot"));

    let sent = messages();
    for message in &sent {
        ws.send(to_tungstenite(message)).unwrap();
        let echo = ws.read().unwrap();
        assert!(
            echo == to_tungstenite(message),
            "{:?} message of {} bytes changed",
            message.kind,
            message.data.len()
        );
    }
    ws.close(Some(CloseFrame { code: TungsteniteCode::from(4002), reason: "bye from tungstenite".into() }))
        .unwrap();
    // Our server echoes the Close, then closes TCP first (RFC 6455 §7.1.1).
    let reply = match ws.read() {
        Ok(tungstenite::Message::Close(frame)) => frame.expect("close reply without a code"),
        other => panic!("expected the close reply, got {other:?}"),
    };
    assert_eq!((u16::from(reply.code), reply.reason.as_str()), (4002, "bye from tungstenite"));
    assert!(matches!(ws.read(), Err(tungstenite::Error::ConnectionClosed)));

    let (echoed, end) = ours.recv_timeout(BOUND).unwrap().unwrap();
    assert_eq!(echoed, sent.len());
    let Error::Closed(info) = end else { panic!("our server ended with {end}") };
    assert!(info.clean, "{info:?}");
    assert_eq!(
        (info.code, info.reason.as_str(), info.initiator),
        (CloseCode(4002), "bye from tungstenite", Initiator::Remote)
    );
}

#[test]
fn tungstenite_client_is_refused_when_no_subprotocol_matches() {
    let server = Server::bind("127.0.0.1:0", ServerOptions::new().protocol("godot")).unwrap();
    let addr = server.local_addr().unwrap();
    let ours = spawn(move || server.accept().map(drop));
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let mut request = format!("ws://{addr}/").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "chat".parse().unwrap());
    match tungstenite::client(request, stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status().as_u16(), 400);
        }
        other => panic!("expected an HTTP 400 refusal, got {:?}", other.map(|(_, r)| r.status())),
    }
    let ours = ours.recv_timeout(BOUND).unwrap();
    assert!(
        matches!(ours, Err(Error::Handshake(multipeer::ws::HandshakeError::NoCommonProtocol))),
        "{ours:?}"
    );
}

/// multipeer-mio's plain `WebSocketServer` and `WebSocketClient` against tungstenite.
#[path = "tungstenite_interop/plain_mio.rs"]
mod plain_mio;
