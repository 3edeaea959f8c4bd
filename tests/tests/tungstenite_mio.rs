//! Interop of multipeer-mio's plain WebSocket server and client with tungstenite, over loopback
//! TCP: a tungstenite client against `WebSocketServer` (echoing with `echo`, the one-copy path)
//! and `WebSocketClient` against a tungstenite server, text and binary messages at every
//! length-encoding boundary up to 1 MiB, the subprotocol choice and the closing handshake from
//! both ends.

use core::time::Duration;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::ws::{self, CloseCode, Initiator, MessageKind};
use multipeer_mio::{
    ListenAddr, ReadBuffer, RunEnd, Stop, WebSocketClient, WebSocketClientOptions, WebSocketEvent,
    WebSocketOptions, WebSocketServer,
};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode as TungsteniteCode;

/// Longest any step waits for the other side before the test fails.
const BOUND: Duration = Duration::from_secs(20);

fn our_config() -> ws::Config {
    ws::Config { max_message_size: 2 << 20, outbound_buffer_size: 2 << 20, ..WebSocketOptions::default().ws }
}

fn their_config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(2 << 20)).max_frame_size(Some(2 << 20))
}

/// Every test message: text and binary at each frame-length boundary, empty and 1 MiB.
fn messages() -> Vec<tungstenite::Message> {
    [0usize, 1, 125, 126, 65535, 65536, 1 << 20]
        .iter()
        .flat_map(|&len| {
            let text: String = "héllo → ".chars().cycle().take(len).collect();
            let binary: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            [tungstenite::Message::text(text), tungstenite::Message::binary(binary)]
        })
        .collect()
}

#[test]
fn tungstenite_client_against_mio_server() {
    let options =
        WebSocketOptions { ws: our_config(), protocols: vec!["echo".into()], ..WebSocketOptions::default() };
    let mut server =
        WebSocketServer::bind(&[ListenAddr::One("127.0.0.1:0".parse().unwrap())], options).unwrap();
    let addr = server.local_addrs()[0];
    let stop = Stop::new();
    let flag = stop.clone();
    let ours = thread::spawn(move || {
        let mut echoed = 0;
        let mut closed = None;
        let end = server
            .run(&flag, Some(Duration::from_secs(60)), |server| {
                while let Some(event) = server.poll_event() {
                    match event {
                        WebSocketEvent::Messages(id) => {
                            while server.echo(id).unwrap().is_some() {
                                echoed += 1;
                            }
                        }
                        WebSocketEvent::Closed(_, info) => closed = Some(info),
                        _ => {}
                    }
                }
                None
            })
            .unwrap();
        (end, echoed, closed, server.stats())
    });

    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let mut request = format!("ws://{addr}/interop").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "other, echo".parse().unwrap());
    let (mut ws, response) =
        tungstenite::client::client_with_config(request, stream, Some(their_config())).unwrap();
    let chosen = response.headers().get("Sec-WebSocket-Protocol").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(chosen.as_deref(), Some("echo"));
    let sent = messages();
    for message in &sent {
        ws.send(message.clone()).unwrap();
        assert!(ws.read().unwrap() == *message, "a message of {} bytes changed", message.len());
    }
    ws.close(Some(CloseFrame { code: TungsteniteCode::from(4002), reason: "bye from tungstenite".into() }))
        .unwrap();
    let reply = match ws.read() {
        Ok(tungstenite::Message::Close(frame)) => frame.expect("close reply without a code"),
        other => panic!("expected the close reply, got {other:?}"),
    };
    assert_eq!((u16::from(reply.code), reply.reason.as_str()), (4002, "bye from tungstenite"));
    assert!(matches!(ws.read(), Err(tungstenite::Error::ConnectionClosed)));

    stop.raise();
    let (end, echoed, closed, stats) = ours.join().unwrap();
    assert_eq!(end, RunEnd::Stopped);
    assert_eq!(echoed, sent.len());
    let closed = closed.expect("the server saw no close");
    assert_eq!(
        (closed.code, closed.reason.as_str(), closed.initiator),
        (CloseCode(4002), "bye from tungstenite", Initiator::Remote)
    );
    assert_eq!((stats.accepted, stats.opened, stats.io_errors), (1, 1, 0));
}

/// What the tungstenite server saw of our client.
#[derive(Debug)]
struct TheirView {
    echoed: usize,
    close: Option<CloseFrame>,
    ended_cleanly: bool,
}

#[test]
fn mio_client_against_tungstenite_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, theirs) = mpsc::channel();
    thread::spawn(move || {
        let serve = || -> Result<TheirView, String> {
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
        };
        let _ = tx.send(serve());
    });

    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(64);
    let mut buf = ReadBuffer::new();
    let options = WebSocketClientOptions::new(our_config());
    let mut client =
        WebSocketClient::connect(poll.registry(), Token(1), &format!("ws://{addr}/"), &options).unwrap();
    let deadline = Instant::now() + BOUND;
    // Drives the client until `step` returns true; `step` sees the connection after each turn.
    let mut drive = |client: &mut WebSocketClient,
                     step: &mut dyn FnMut(&mut multipeer_mio::ClientSocket) -> bool| {
        loop {
            client.flush(poll.registry(), &mut buf);
            if step(client.connection_mut()) {
                client.flush(poll.registry(), &mut buf);
                return;
            }
            assert!(Instant::now() < deadline, "timed out: {:?}", client.error());
            poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
            for event in &events {
                client.handle_event(poll.registry(), event, &mut buf);
            }
            client.handle_timeout(poll.registry(), &mut buf);
        }
    };
    drive(&mut client, &mut |ws| matches!(ws.poll_event(), Some(ws::Event::Open)));
    let sent = messages();
    for message in &sent {
        let (kind, data) = match message {
            tungstenite::Message::Text(t) => (MessageKind::Text, t.as_bytes().to_vec()),
            other => (MessageKind::Binary, other.clone().into_data().to_vec()),
        };
        client.connection_mut().send(kind, &data).unwrap();
        let mut echo = None;
        drive(&mut client, &mut |ws| {
            if let Some(m) = ws.peek_message() {
                echo = Some((m.kind, m.data.to_vec()));
                ws.pop_message();
            }
            echo.is_some()
        });
        assert!(echo == Some((kind, data)), "a message of {} bytes changed", message.len());
    }
    let now = client.now();
    client.connection_mut().close(now, CloseCode(4001), "bye from multipeer-mio").unwrap();
    let mut closed = None;
    drive(&mut client, &mut |ws| {
        while let Some(event) = ws.poll_event() {
            if let ws::Event::Closed(info) = event {
                closed = Some(info);
            }
        }
        closed.is_some()
    });
    let closed = closed.unwrap();
    assert!(closed.clean, "{closed:?}");
    assert_eq!(closed.initiator, Initiator::Local);
    while !client.is_released() {
        assert!(Instant::now() < deadline, "the socket was not released");
        poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
        for event in &events {
            client.handle_event(poll.registry(), event, &mut buf);
        }
        client.handle_timeout(poll.registry(), &mut buf);
    }

    let view = theirs.recv_timeout(BOUND).unwrap().unwrap();
    assert_eq!(view.echoed, sent.len());
    let close = view.close.expect("tungstenite saw no close frame");
    assert_eq!((u16::from(close.code), close.reason.as_str()), (4001, "bye from multipeer-mio"));
    assert!(view.ended_cleanly);
}
