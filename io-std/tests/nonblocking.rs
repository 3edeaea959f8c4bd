//! The non-blocking socket and listener driven from one thread's loop over loopback TCP:
//! handshake, echo, back-pressure that holds input without losing or reordering it, the
//! closing handshake, and timers fired through `next_timeout`.

use core::time::Duration;
use std::io::Read;
use std::net::TcpStream;
use std::thread;
use std::time::Instant;

use multipeer::ws::{CloseCode, Config, Event, HandshakeError, Initiator, MessageKind, State};
use multipeer_std::nonblocking::{Listener, WebSocket};
use multipeer_std::{ClientOptions, Message, Rejection, ServerOptions};

/// Longest any loop here runs before the test fails.
const BOUND: Duration = Duration::from_secs(10);

/// Polls both sockets until `done` holds, sleeping briefly between rounds; fails after BOUND.
fn drive(sockets: &mut [&mut WebSocket], mut done: impl FnMut(&mut [&mut WebSocket]) -> bool) {
    let start = Instant::now();
    while !done(sockets) {
        assert!(start.elapsed() < BOUND, "loop did not finish within {BOUND:?}");
        for ws in sockets.iter_mut() {
            let _ = ws.poll();
        }
        let soonest = sockets.iter().filter_map(|ws| ws.next_timeout()).min();
        let nap = soonest.map_or(Duration::from_millis(1), |t| {
            t.saturating_duration_since(Instant::now()).min(Duration::from_millis(1))
        });
        thread::sleep(nap);
    }
}

fn accept(listener: &Listener) -> WebSocket {
    let start = Instant::now();
    loop {
        if let Some(ws) = listener.accept().unwrap() {
            return ws;
        }
        assert!(start.elapsed() < BOUND, "no connection arrived");
        thread::sleep(Duration::from_millis(1));
    }
}

fn events<T: multipeer_std::Transport>(ws: &mut WebSocket<T>) -> Vec<Event> {
    core::iter::from_fn(|| ws.poll_event()).collect()
}

#[test]
fn handshake_echo_and_close_in_one_loop() {
    let listener = Listener::bind("127.0.0.1:0", ServerOptions::new().protocol("godot")).unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut client = WebSocket::connect(&url, &ClientOptions::new().protocol("godot")).unwrap();
    let mut server = accept(&listener);
    assert_eq!(client.state(), State::Connecting);

    drive(&mut [&mut client, &mut server], |s| s.iter().all(|ws| ws.state() == State::Open));
    assert_eq!(events(&mut client), [Event::Open]);
    assert_eq!(events(&mut server), [Event::Open], "the request was answered, not shown");
    assert_eq!((client.protocol(), server.protocol()), (Some("godot"), Some("godot")));

    client.send_text("ping?").unwrap();
    client.send_binary(&[1, 2, 3]).unwrap();
    drive(&mut [&mut client, &mut server], |s| s[1].available_messages() == 2);
    while let Some(message) = server.recv() {
        server.send(message.kind, &message.data).unwrap();
    }
    drive(&mut [&mut client, &mut server], |s| s[0].available_messages() == 2);
    assert_eq!(client.recv(), Some(Message::text("ping?")));
    assert_eq!(
        client.peek_message().map(|m| (m.kind, m.data.to_vec())),
        Some((MessageKind::Binary, vec![1, 2, 3]))
    );
    assert!(client.pop_message());
    assert!(client.recv().is_none());

    server.close(CloseCode::GOING_AWAY, "shutting down").unwrap();
    drive(&mut [&mut client, &mut server], |s| s.iter().all(|ws| ws.is_finished()));
    let server_info = server.close_info().unwrap();
    let client_info = client.close_info().unwrap();
    assert!(server_info.clean && client_info.clean);
    assert_eq!(server_info.initiator, Initiator::Local);
    assert_eq!((client_info.code, client_info.initiator), (CloseCode::GOING_AWAY, Initiator::Remote));
    assert!(matches!(events(&mut client).as_slice(), [Event::Closed(_)]));
    assert!(client.get_ref().is_none() && server.get_ref().is_none(), "transports are released");
    assert!(client.next_timeout().is_none());
}

#[test]
fn back_pressure_holds_input_until_the_application_reads() {
    // The server queues at most 3 messages; the client sends 200 at once.
    let server_options = ServerOptions::new().config(Config { max_queued_messages: 3, ..Config::default() });
    let listener = Listener::bind("127.0.0.1:0", server_options).unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let client_options =
        ClientOptions::new().config(Config { outbound_buffer_size: 1 << 20, ..Config::default() });
    let mut client = WebSocket::connect(&url, &client_options).unwrap();
    let mut server = accept(&listener);
    drive(&mut [&mut client, &mut server], |s| s.iter().all(|ws| ws.state() == State::Open));

    for i in 0..200u32 {
        client.send_binary(&i.to_be_bytes().repeat(100)).unwrap();
    }
    drive(&mut [&mut client, &mut server], |s| !s[0].wants_write() && s[1].available_messages() == 3);
    // Full: further polls take no more.
    for _ in 0..20 {
        server.poll().unwrap();
    }
    assert_eq!(server.available_messages(), 3);

    let mut received = Vec::new();
    drive(&mut [&mut client, &mut server], |s| {
        while let Some(message) = s[1].recv() {
            received.push(message);
        }
        received.len() == 200
    });
    for (i, message) in (0..200u32).zip(&received) {
        assert_eq!(message.data, i.to_be_bytes().repeat(100), "message {i} lost or out of order");
    }
}

#[test]
fn silent_client_gets_408_after_the_handshake_timeout() {
    let config = Config { handshake_timeout: Duration::from_millis(200), ..Config::default() };
    let listener = Listener::bind("127.0.0.1:0", ServerOptions::new().config(config)).unwrap();
    let mut silent = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    silent.set_read_timeout(Some(BOUND)).unwrap();
    let mut server = accept(&listener);
    let deadline = server.next_timeout().expect("the handshake timer is armed");
    assert!(deadline > Instant::now());

    drive(&mut [&mut server], |s| s[0].state() == State::Closed);
    assert_eq!(events(&mut server), [Event::HandshakeFailed(HandshakeError::Timeout)]);
    let mut answer = Vec::new();
    // Our server shuts its side down after the answer; the read ends at its FIN.
    let start = Instant::now();
    while start.elapsed() < BOUND {
        let _ = server.poll();
        let mut chunk = [0u8; 512];
        match silent.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(answer.starts_with(b"HTTP/1.1 408 "), "{:?}", String::from_utf8_lossy(&answer));
    drop(silent);
    drive(&mut [&mut server], |s| s[0].is_finished());
}

#[test]
fn request_hook_rejects_in_the_non_blocking_path_too() {
    let options = ServerOptions::new().check_request(|request| {
        if request.path().starts_with("/admin") { Err(Rejection::new(401, "log in first")) } else { Ok(()) }
    });
    let listener = Listener::bind("127.0.0.1:0", options).unwrap();
    let url = format!("ws://{}/admin/panel", listener.local_addr().unwrap());
    let mut client = WebSocket::connect(&url, &ClientOptions::new()).unwrap();
    let mut server = accept(&listener);
    drive(&mut [&mut client, &mut server], |s| s.iter().all(|ws| ws.is_finished()));
    assert_eq!(events(&mut client), [Event::HandshakeFailed(HandshakeError::UnexpectedStatus(401))]);
    assert_eq!(events(&mut server), [Event::HandshakeFailed(HandshakeError::Rejected(401))]);
    // Godot's get_requested_url(): the client's URL, the path the server was asked for.
    assert_eq!(client.get_requested_url(), Some(url.as_str()));
    assert_eq!(server.get_requested_url(), Some("/admin/panel"));
}

#[test]
fn a_server_connection_knows_the_requested_path_and_query() {
    let listener = Listener::bind("127.0.0.1:0", ServerOptions::new()).unwrap();
    let url = format!("ws://{}/lobby?room=3", listener.local_addr().unwrap());
    let mut client = WebSocket::connect(&url, &ClientOptions::new()).unwrap();
    let mut server = accept(&listener);
    assert_eq!(server.get_requested_url(), None, "nothing read yet");
    drive(&mut [&mut client, &mut server], |s| s.iter().all(|ws| ws.state() == State::Open));
    assert_eq!(server.get_requested_url(), Some("/lobby?room=3"));
    assert_eq!(client.get_requested_url(), Some(url.as_str()));
}

#[test]
fn heartbeat_declares_an_unresponsive_peer_dead() {
    let listener = Listener::bind("127.0.0.1:0", ServerOptions::new()).unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let config = Config { heartbeat_interval: Some(Duration::from_millis(50)), ..Config::default() };
    let mut client = WebSocket::connect(&url, &ClientOptions::new().config(config)).unwrap();
    let mut server = accept(&listener);
    drive(&mut [&mut client, &mut server], |s| s.iter().all(|ws| ws.state() == State::Open));
    // With the server polled, pongs come back and the client stays open.
    let start = Instant::now();
    drive(&mut [&mut client, &mut server], |_| start.elapsed() > Duration::from_millis(200));
    assert_eq!(client.state(), State::Open);
    assert!(events(&mut client).iter().any(|e| matches!(e, Event::Pong(_))));
    // The server stops being polled: the next ping goes unanswered.
    drive(&mut [&mut client], |s| s[0].is_finished());
    let info = client.close_info().unwrap();
    assert_eq!(info.error, Some(multipeer::ws::Error::KeepaliveTimeout));
}

#[test]
fn a_background_connect_returns_at_once_and_opens_in_poll() {
    let listener = Listener::bind("127.0.0.1:0", ServerOptions::new()).unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut client = WebSocket::connect_in_background(&url, &ClientOptions::new()).unwrap();
    assert_eq!(client.state(), State::Connecting);
    assert!(client.next_timeout().is_some(), "poll it to pick the transport up");
    let start = Instant::now();
    while client.get_ref().is_none() {
        assert!(start.elapsed() < BOUND, "the connect never finished");
        client.poll().unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    let mut server = accept(&listener);
    let start = Instant::now();
    while !(client.state() == State::Open && server.state() == State::Open) {
        assert!(start.elapsed() < BOUND, "the handshake never finished");
        client.poll().unwrap();
        server.poll().unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(client.peer_addr(), Some(listener.local_addr().unwrap()));
    assert_eq!(client.get_requested_url(), Some(url.as_str()));
}

#[test]
fn a_refused_background_connect_fails_in_poll() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("ws://127.0.0.1:{port}/");
    let mut client = WebSocket::connect_in_background(&url, &ClientOptions::new()).unwrap();
    let start = Instant::now();
    let error = loop {
        assert!(start.elapsed() < BOUND, "the connect never failed");
        if let Err(e) = client.poll() {
            break e;
        }
        thread::sleep(Duration::from_millis(1));
    };
    assert!(
        matches!(&error, multipeer_std::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{error:?}"
    );
    assert_eq!(events(&mut client), [Event::HandshakeFailed(HandshakeError::ConnectionClosed)]);
    assert!(client.is_finished());
    assert_eq!(client.poll().ok(), Some(()), "a finished socket's poll does nothing");
}
