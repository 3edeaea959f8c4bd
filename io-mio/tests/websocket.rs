//! The plain WebSocket server and client on mio, over loopback: our `WebSocketClient` and
//! multipeer-std's blocking client against a `WebSocketServer` running its own loop (`run`),
//! echoing, forwarding between connections, broadcasting, and closing.
#![cfg(feature = "tls")]

use core::time::Duration;
use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::ws::{self, CloseCode, Initiator, MessageKind};
use multipeer_mio::{
    ConnectionId, ListenAddr, ReadBuffer, RunEnd, Stop, WebSocketClient, WebSocketClientOptions,
    WebSocketEvent, WebSocketOptions, WebSocketServer, WebSocketStats,
};
use multipeer_std::{ClientOptions, WebSocket};

/// Longest any step waits before the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// Limits raised so that 1 MiB messages pass both ways.
fn large() -> ws::Config {
    ws::Config { max_message_size: 2 << 20, outbound_buffer_size: 2 << 20, ..WebSocketOptions::default().ws }
}

/// What the server's application does with the messages it gets.
#[derive(Clone, Copy)]
enum Role {
    /// Sends every message back where it came from.
    Echo,
    /// The same, with `echo_all`.
    EchoAll,
    /// Sends every message of the first connection to the second, and the reverse.
    Pair,
    /// Answers "all" with a broadcast of "hello" to every open connection, echoes the rest.
    Broadcast,
}

/// A server running its own loop on a thread; the thread returns the counters and the events
/// it saw.
struct Running {
    url: String,
    stop: Stop,
    thread: Option<JoinHandle<(WebSocketStats, Vec<WebSocketEvent>)>>,
}

impl Running {
    fn start(role: Role) -> Self {
        Self::start_with(role, large())
    }

    fn start_with(role: Role, ws: ws::Config) -> Self {
        let options = WebSocketOptions { ws, ..WebSocketOptions::default() };
        let mut server =
            WebSocketServer::bind(&[ListenAddr::One("127.0.0.1:0".parse().unwrap())], options).unwrap();
        let url = format!("ws://{}", server.local_addrs()[0]);
        let stop = Stop::new();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut open: Vec<ConnectionId> = Vec::new();
            let end = server
                .run(&flag, Some(Duration::from_secs(60)), |server| {
                    while let Some(event) = server.poll_event() {
                        match &event {
                            WebSocketEvent::Opened(id) => open.push(*id),
                            WebSocketEvent::Released(id) => open.retain(|o| o != id),
                            WebSocketEvent::Messages(id) => serve(server, role, *id, &open),
                            _ => {}
                        }
                        seen.push(event);
                    }
                    None
                })
                .unwrap();
            assert_eq!(end, RunEnd::Stopped);
            assert!(server.is_closed(), "{} connections left", server.connection_count());
            while let Some(event) = server.poll_event() {
                seen.push(event);
            }
            (server.stats(), seen)
        });
        Self { url, stop, thread: Some(thread) }
    }

    fn finish(mut self) -> (WebSocketStats, Vec<WebSocketEvent>) {
        self.stop.raise();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.raise();
    }
}

fn serve(server: &mut WebSocketServer, role: Role, id: ConnectionId, open: &[ConnectionId]) {
    match role {
        Role::Echo => while server.echo(id).unwrap().is_some() {},
        Role::EchoAll => while server.echo_all(id).unwrap() > 0 {},
        Role::Pair => {
            let Some(&to) = open.iter().find(|&&o| o != id) else { return };
            while server.forward(id, to).unwrap().is_some() {}
        }
        Role::Broadcast => {
            while let Some(message) = server.message(id) {
                if message.data == b"all" {
                    server.pop_message(id);
                    assert_eq!(server.broadcast(MessageKind::Text, b"hello"), open.len());
                } else {
                    server.echo(id).unwrap();
                }
            }
        }
    }
}

/// Payloads at each frame-length encoding boundary, and 1 MiB.
fn payloads() -> Vec<(MessageKind, Vec<u8>)> {
    [0usize, 1, 125, 126, 65535, 65536, 1 << 20]
        .iter()
        .flat_map(|&len| {
            let binary: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            [(MessageKind::Text, vec![b'x'; len]), (MessageKind::Binary, binary)]
        })
        .collect()
}

/// Our mio client on its own poll until `done` says so.
struct MioClient {
    poll: Poll,
    events: Events,
    buf: ReadBuffer,
    client: WebSocketClient,
}

impl MioClient {
    fn connect(url: &str) -> Self {
        Self::connect_with(url, large())
    }

    fn connect_with(url: &str, ws: ws::Config) -> Self {
        let poll = Poll::new().unwrap();
        let options = WebSocketClientOptions::new(ws);
        let client = WebSocketClient::connect(poll.registry(), Token(7), url, &options).unwrap();
        Self { poll, events: Events::with_capacity(64), buf: ReadBuffer::new(), client }
    }

    /// Drives the client until `done` returns true on its connection; fails after [`WAIT`].
    fn until(&mut self, mut done: impl FnMut(&mut multipeer_mio::ClientSocket) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.client.flush(self.poll.registry(), &mut self.buf);
            if done(self.client.connection_mut()) {
                self.client.flush(self.poll.registry(), &mut self.buf);
                return;
            }
            let now = Instant::now();
            assert!(now < deadline, "timed out; transport error {:?}", self.client.error());
            let sleep = self.client.poll_timeout().map_or(deadline - now, |t| t.min(deadline - now));
            self.poll.poll(&mut self.events, Some(sleep)).unwrap();
            for event in &self.events {
                self.client.handle_event(self.poll.registry(), event, &mut self.buf);
            }
            self.client.handle_timeout(self.poll.registry(), &mut self.buf);
        }
    }
}

#[test]
fn mio_client_and_server_echo_every_length_and_close() {
    let server = Running::start(Role::Echo);
    let mut client = MioClient::connect(&server.url);
    client.until(|ws| matches!(ws.poll_event(), Some(ws::Event::Open)));
    // One at a time, then all at once: pipelined messages are echoed each once, in order.
    for (kind, data) in payloads() {
        client.client.connection_mut().send(kind, &data).unwrap();
        let mut echoed = None;
        client.until(|ws| {
            if let Some(m) = ws.peek_message() {
                echoed = Some((m.kind, m.data.to_vec()));
                ws.pop_message();
            }
            echoed.is_some()
        });
        assert_eq!(echoed, Some((kind, data)));
    }
    let small: Vec<(MessageKind, Vec<u8>)> =
        (0..200u32).map(|i| (MessageKind::Binary, i.to_le_bytes().repeat(1 + i as usize % 7))).collect();
    for (kind, data) in &small {
        client.client.connection_mut().send(*kind, data).unwrap();
    }
    let mut echoed = Vec::new();
    client.until(|ws| {
        while let Some(m) = ws.peek_message() {
            echoed.push((m.kind, m.data.to_vec()));
            ws.pop_message();
        }
        echoed.len() >= small.len()
    });
    assert_eq!(echoed, small);
    let now = client.client.now();
    client.client.connection_mut().close(now, CloseCode::NORMAL, "done").unwrap();
    let mut closed = None;
    client.until(|ws| {
        while let Some(event) = ws.poll_event() {
            if let ws::Event::Closed(info) = event {
                closed = Some(info);
            }
        }
        closed.is_some()
    });
    let closed = closed.unwrap();
    assert_eq!((closed.code, closed.initiator), (CloseCode::NORMAL, Initiator::Local));
    client.until(|_| true);
    let (stats, events) = server.finish();
    assert_eq!((stats.accepted, stats.opened, stats.io_errors), (1, 1, 0));
    let id = match events.first() {
        Some(WebSocketEvent::Opened(id)) => *id,
        other => panic!("first event {other:?}"),
    };
    let closed = events.iter().find_map(|e| match e {
        WebSocketEvent::Closed(i, info) if *i == id => Some(info.clone()),
        _ => None,
    });
    assert_eq!(closed.map(|c| (c.code, c.initiator)), Some((CloseCode::NORMAL, Initiator::Remote)));
    assert_eq!(events.last(), Some(&WebSocketEvent::Released(id)));
}

#[test]
fn forward_moves_messages_between_connections() {
    let server = Running::start(Role::Pair);
    let options = ClientOptions::new().config(large());
    let mut a = WebSocket::connect(&server.url, &options).unwrap();
    let mut b = WebSocket::connect(&server.url, &options).unwrap();
    // Both must be open on the server before the first forward: b says so by sending first,
    // which the server forwards to a.
    b.send_text("b is here").unwrap();
    assert_eq!(a.recv_timeout(WAIT).unwrap().as_text(), Some("b is here"));
    for (kind, data) in payloads() {
        a.send(kind, &data).unwrap();
        let got = b.recv_timeout(WAIT).unwrap();
        assert_eq!((got.kind, got.data), (kind, data));
    }
    a.close(CloseCode::NORMAL, "").unwrap();
    b.close(CloseCode::NORMAL, "").unwrap();
    let (stats, events) = server.finish();
    assert_eq!((stats.accepted, stats.opened), (2, 2));
    let released = events.iter().filter(|e| matches!(e, WebSocketEvent::Released(_))).count();
    assert_eq!(released, 2);
}

/// Large messages are written to the socket at once when nothing is queued before them (one
/// by one, or all of a read together with `echo_all`), and the rest queued when the socket
/// takes only part: with a reader that lags, pipelined large messages around those sizes fill
/// the socket mid-frame, and every byte still arrives once, in order, echoed or forwarded.
#[test]
fn pipelined_large_messages_arrive_whole_and_in_order_when_the_reader_lags() {
    // About 12 MB: more than the server's socket and the reader's together can buffer.
    let sizes = [128 * 1024 - 1, 128 * 1024, 100_000, 1024, 200_000, 65_536, 300_000, 40, 250_000, 1 << 20];
    let messages: Vec<(MessageKind, Vec<u8>)> = sizes
        .iter()
        .cycle()
        .take(60)
        .enumerate()
        .map(|(i, &len)| {
            let kind = if i % 3 == 2 { MessageKind::Text } else { MessageKind::Binary };
            let first = if kind == MessageKind::Text { b'a' } else { 0 };
            (kind, (0..len).map(|j| first + ((j * 13 + i) % 26) as u8).collect())
        })
        .collect();
    // The server's send queue holds whatever the sockets cannot.
    let queue_all = ws::Config { outbound_buffer_size: 64 << 20, outbound_queue_size: None, ..large() };
    for role in [Role::Echo, Role::EchoAll, Role::Pair] {
        let server = Running::start_with(role, queue_all);
        let options = ClientOptions::new().config(large());
        let mut sender = WebSocket::connect(&server.url, &options).unwrap();
        let mut reader = match role {
            Role::Pair => {
                let mut reader = WebSocket::connect(&server.url, &options).unwrap();
                reader.send_text("here").unwrap();
                assert_eq!(sender.recv_timeout(WAIT).unwrap().as_text(), Some("here"));
                Some(reader)
            }
            _ => None,
        };
        for (kind, data) in &messages {
            sender.send(*kind, data).unwrap();
        }
        // Nobody reads for a while: the server's socket fills and the rest waits in its queue.
        std::thread::sleep(Duration::from_millis(300));
        let reading = reader.as_mut().unwrap_or(&mut sender);
        for (i, (kind, data)) in messages.iter().enumerate() {
            let got = reading.recv_timeout(WAIT).unwrap();
            assert_eq!(got.kind, *kind, "message {i}");
            assert!(got.data == *data, "message {i} ({} bytes) differs", data.len());
        }
        drop((sender, reader));
        let (stats, _) = server.finish();
        assert_eq!(stats.io_errors, 0);
    }
}

#[test]
fn broadcast_reaches_every_connection_and_close_says_going_away() {
    let server = Running::start(Role::Broadcast);
    let mut clients: Vec<WebSocket> =
        (0..5).map(|_| WebSocket::connect(&server.url, &ClientOptions::new()).unwrap()).collect();
    // A round trip per client shows the server has opened each one before the broadcast.
    for ws in &mut clients {
        ws.send_text("sync").unwrap();
        assert_eq!(ws.recv_timeout(WAIT).unwrap().as_text(), Some("sync"));
    }
    clients[0].send_text("all").unwrap();
    let mut got = HashMap::new();
    for ws in &mut clients {
        *got.entry(ws.recv_timeout(WAIT).unwrap().as_text().map(str::to_owned)).or_insert(0) += 1;
    }
    assert_eq!(got.get(&Some("hello".to_owned())), Some(&5));
    // The server closes; each client answers its 1001 as it reads it.
    server.stop.raise();
    for ws in &mut clients {
        match ws.recv_timeout(WAIT) {
            Err(multipeer_std::Error::Closed(info)) => assert_eq!(info.code, CloseCode::GOING_AWAY),
            other => panic!("expected the server's 1001, got {other:?}"),
        }
    }
    let (stats, events) = server.finish();
    assert_eq!(stats.opened, 5);
    let released = events.iter().filter(|e| matches!(e, WebSocketEvent::Released(_))).count();
    assert_eq!(released, 5);
}

/// permessage-deflate on the plain server: agreed with clients that offer it while fewer than
/// `max_connections` use it (a connection counts until released), compressed both ways.
#[test]
fn permessage_deflate_is_agreed_up_to_max_connections() {
    use multipeer::ws::deflate::DeflateConfig;
    let offer = ws::Config { permessage_deflate: Some(DeflateConfig::DEFAULT), ..large() };
    let limit = DeflateConfig { max_connections: 1, ..DeflateConfig::DEFAULT };
    let server = Running::start_with(Role::Echo, ws::Config { permessage_deflate: Some(limit), ..large() });
    let text = r#"{"lobby":"main","players":[{"name":"a","x":1},{"name":"b","x":2}]}"#.repeat(1000);
    let echo = |client: &mut MioClient| {
        client.until(|c| c.state() == ws::State::Open);
        client.client.connection_mut().send_text(&text).unwrap();
        client.until(|c| c.peek_message().is_some());
        assert_eq!(client.client.connection().peek_message().unwrap().data, text.as_bytes());
        client.client.connection_mut().pop_message();
        client.client.connection().permessage_deflate_stats()
    };
    let mut first = MioClient::connect_with(&server.url, offer);
    let stats = echo(&mut first).unwrap();
    assert_eq!((stats.messages_compressed, stats.messages_inflated), (1, 1));
    assert!(stats.bytes_after_compression < text.len() as u64 / 20, "{stats:?}");
    // The second is answered without the extension and talks plain.
    let mut second = MioClient::connect_with(&server.url, offer);
    assert_eq!(echo(&mut second), None);
    // Once the first is gone, a newcomer gets it again.
    let now = first.client.now();
    first.client.connection_mut().close(now, CloseCode::NORMAL, "").unwrap();
    first.until(|c| c.state() == ws::State::Closed);
    std::thread::sleep(Duration::from_millis(200));
    let mut third = MioClient::connect_with(&server.url, offer);
    assert!(echo(&mut third).is_some());
    drop((second, third));
    server.finish();
}
