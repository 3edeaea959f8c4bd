//! multipeer-mio's plain WebSocket server and client against tungstenite: a tungstenite client
//! against `WebSocketServer` (echoing with `echo`, the one-copy path) and `WebSocketClient`
//! against a tungstenite server, every message of the parent's set, the subprotocol choice and
//! the closing handshake from both ends.

use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::ws;
use multipeer_mio::{
    ListenAddr, ReadBuffer, RunEnd, Stop, WebSocketClient, WebSocketClientOptions, WebSocketEvent,
    WebSocketOptions, WebSocketServer,
};

use super::*;

#[test]
fn tungstenite_client_against_mio_server() {
    let options =
        WebSocketOptions { ws: our_config(), protocols: vec!["echo".into()], ..WebSocketOptions::default() };
    let mut server =
        WebSocketServer::bind(&[ListenAddr::One("127.0.0.1:0".parse().unwrap())], options).unwrap();
    let addr = server.local_addrs()[0];
    let stop = Stop::new();
    let flag = stop.clone();
    let ours = std::thread::spawn(move || {
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
    let sent: Vec<tungstenite::Message> = messages().iter().map(to_tungstenite).collect();
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

#[test]
fn mio_client_against_tungstenite_server() {
    let (addr, theirs) = tungstenite_echo_server();

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
        let (kind, data) = (message.kind, message.data.clone());
        client.connection_mut().send(kind, &data).unwrap();
        let mut echo = None;
        drive(&mut client, &mut |ws| {
            if let Some(m) = ws.peek_message() {
                echo = Some((m.kind, m.data.to_vec()));
                ws.pop_message();
            }
            echo.is_some()
        });
        assert!(echo == Some((kind, data)), "a message of {} bytes changed", message.data.len());
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
