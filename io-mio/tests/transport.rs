//! The transport duties of the adapter: back-pressure both ways, partial writes, the
//! connection limit, IPv6 and `*`, connection failures.

mod common;

use core::time::Duration;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Instant;

use common::Net;
use multipeer::peer::{Event, MultiplayerPeer as _, PeerId, ServerConfig, Target};
use multipeer::queue::QueueLimits;
use multipeer_mio::{ClientOptions, ListenAddr, Server, TransportError};

const LIMIT: Duration = Duration::from_secs(10);

fn localhost() -> [ListenAddr; 1] {
    [ListenAddr::One("127.0.0.1:0".parse().unwrap())]
}

/// A packet numbered `i`; the first byte is 0 so that SceneMultiplayer relay framing (a first
/// byte whose low 3 bits are 7 is a SYS packet) leaves it alone.
fn numbered(i: u32, len: usize) -> Vec<u8> {
    let mut data = vec![(i % 251) as u8; len];
    data[0] = 0;
    data[1..5].copy_from_slice(&i.to_le_bytes());
    data
}

#[test]
fn input_refused_by_a_full_server_is_kept_and_offered_again() {
    let config =
        ServerConfig { inbox: QueueLimits { max_bytes: 4096, max_packets: 2 }, ..ServerConfig::default() };
    let mut net = Net::new(Server::bind(&localhost(), config).unwrap());
    net.connect(&net.url("ws"), &ClientOptions::default()).unwrap();
    assert!(net.drive_until(LIMIT, |n| n.joined(0)));
    net.server_log.paused = true;
    // 300 KB: far more than the inbox and the connection's 64 KiB inbound queue hold.
    let sent: Vec<Vec<u8>> = (0..300).map(|i| numbered(i, 1000)).collect();
    let mut queued = 0;
    let started = Instant::now();
    while queued < sent.len() && started.elapsed() < LIMIT {
        while queued < sent.len() && net.client(0).put_packet(&sent[queued]).is_ok() {
            queued += 1;
        }
        net.flush();
        net.turn(Duration::from_millis(5));
    }
    assert_eq!(queued, sent.len(), "the client could not queue everything");
    net.drive_for(Duration::from_millis(200));
    assert!(net.server_log.packets.is_empty());
    assert!(net.server.peer().available_packet_count() <= 2);
    net.server_log.paused = false;
    let done = net.drive_until(LIMIT, |n| n.server_log.packets.len() == sent.len());
    let id = net.id(0);
    assert!(
        done,
        "{} packets; server queue {:?} inbox {:?}; client out {} err {:?}",
        net.server_log.packets.len(),
        net.server.peer().connection(id).map(|c| (c.available_messages(), c.state(), c.buffered_amount())),
        (net.server.peer().available_packet_count(), net.server.peer().stats()),
        net.clients[0].peer().connection().buffered_amount(),
        net.clients[0].error()
    );
    let id = net.id(0);
    for (got, want) in net.server_log.packets.iter().zip(&sent) {
        assert_eq!((got.0, &got.1), (id, want));
    }
}

#[test]
fn input_refused_by_a_full_client_is_kept_and_offered_again() {
    let mut net = Net::new(Server::bind(&localhost(), ServerConfig::default()).unwrap());
    let mut options = ClientOptions::default();
    options.config.ws.max_queued_messages = 8;
    net.connect(&net.url("ws"), &options).unwrap();
    assert!(net.drive_until(LIMIT, |n| n.joined(0)));
    net.client_logs[0].paused = true;
    let sent: Vec<Vec<u8>> = (0..500).map(|i| numbered(i, 300)).collect();
    // To one peer, a full queue is an error to retry (a broadcast would cut the peer off).
    let id = net.id(0);
    net.server.peer_mut().set_target_peer(Target::Peer(id));
    let mut queued = 0;
    let started = Instant::now();
    while queued < sent.len() && started.elapsed() < LIMIT {
        while queued < sent.len() && net.server.peer_mut().put_packet(&sent[queued]).is_ok() {
            queued += 1;
        }
        net.flush();
        net.turn(Duration::from_millis(5));
    }
    assert_eq!(queued, sent.len(), "the server could not queue everything");
    assert!(net.clients[0].peer().available_packet_count() <= 8);
    net.client_logs[0].paused = false;
    assert!(net.drive_until(LIMIT, |n| n.client_logs[0].packets.len() == sent.len()));
    for (got, want) in net.client_logs[0].packets.iter().zip(&sent) {
        assert_eq!((got.0, &got.1), (PeerId::SERVER, want));
    }
}

/// A blocking raw WebSocket client: upgrade by hand, then read unmasked server frames.
struct RawClient(TcpStream);

impl RawClient {
    /// Sends the upgrade request; [`read_head`](Self::read_head) once the server answered.
    fn connect(addr: core::net::SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .unwrap();
        // Bounded: a missing byte fails the test instead of hanging it.
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        Self(stream)
    }

    fn read_head(&mut self) {
        let stream = &mut self.0;
        let mut head = Vec::new();
        let mut byte = [0];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    }

    fn message(&mut self) -> Vec<u8> {
        self.try_message().unwrap_or_default()
    }

    fn try_message(&mut self) -> std::io::Result<Vec<u8>> {
        let mut header = [0; 2];
        self.0.read_exact(&mut header)?;
        assert_eq!(header[0], 0x82, "one unfragmented binary frame");
        let len = match header[1] {
            126 => {
                let mut n = [0; 2];
                self.0.read_exact(&mut n)?;
                u16::from_be_bytes(n) as usize
            }
            127 => {
                let mut n = [0; 8];
                self.0.read_exact(&mut n)?;
                u64::from_be_bytes(n) as usize
            }
            n => n as usize,
        };
        let mut data = vec![0; len];
        self.0.read_exact(&mut data)?;
        Ok(data)
    }
}

#[test]
fn partial_writes_resume_when_the_socket_drains() {
    let mut config = ServerConfig::default();
    config.ws.outbound_buffer_size = 64 << 20;
    config.ws.max_outbound_messages = 1 << 12;
    let mut net = Net::new(Server::bind(&localhost(), config).unwrap());
    let mut raw = RawClient::connect(net.addr());
    assert!(net.drive_until(LIMIT, |n| n.server.peer().peers().count() == 1));
    let id = net.server.peer().peers().next().unwrap();
    raw.read_head();
    assert_eq!(raw.message(), id.get().to_le_bytes());
    // 32 MB: more than loopback socket buffers take, so writes must stop and resume.
    let sent: Vec<Vec<u8>> = (0..512).map(|i| numbered(i, 64_000)).collect();
    net.server.peer_mut().set_target_peer(Target::Peer(id));
    for m in &sent {
        net.server.peer_mut().put_packet(m).unwrap();
    }
    net.flush();
    net.drive_for(Duration::from_millis(100));
    let blocked = net.server.peer().peer_info(id).unwrap().buffered_amount;
    assert!(blocked > 0, "the socket took 32 MB without blocking; nothing tested");
    let reader =
        std::thread::spawn(move || sent.iter().position(|m| raw.try_message().ok().as_ref() != Some(m)));
    assert!(
        net.drive_until(LIMIT, |n| n.server.peer().peer_info(id).is_some_and(|p| p.buffered_amount == 0))
    );
    assert_eq!(reader.join().unwrap(), None, "this message arrived damaged, out of order or not at all");
}

#[test]
fn connections_beyond_max_peers_are_closed_at_accept() {
    let config = ServerConfig { max_peers: 2, ..ServerConfig::default() };
    let mut net = Net::new(Server::bind(&localhost(), config).unwrap());
    let url = net.url("ws");
    for _ in 0..3 {
        net.connect(&url, &ClientOptions::default()).unwrap();
        net.drive_for(Duration::from_millis(50));
    }
    assert!(net.drive_until(LIMIT, |n| n.joined(0) && n.joined(1) && n.failed(2)));
    assert_eq!(net.server.transport_stats().refused_at_capacity, 1);
    assert!(net.drive_until(LIMIT, |n| n.clients[2].is_released()));
    // Room again once someone leaves.
    let now = net.clients[0].now();
    net.client(0).close(now);
    net.flush();
    assert!(net.drive_until(LIMIT, |n| n.server.peer().connection_count() == 1));
    let late = net.connect(&url, &ClientOptions::default()).unwrap();
    assert!(net.drive_until(LIMIT, |n| n.joined(late)));
}

#[test]
fn ipv6_and_all_interfaces() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; only the IPv4 half runs");
    }
    let mut net = Net::new(Server::bind(&[ListenAddr::All(0)], ServerConfig::default()).unwrap());
    let port = net.addr().port();
    let mut urls = vec![format!("ws://127.0.0.1:{port}/")];
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        urls.push(format!("ws://[::1]:{port}/"));
    }
    for url in &urls {
        net.connect(url, &ClientOptions::default()).unwrap();
    }
    assert!(net.drive_until(LIMIT, |n| (0..urls.len()).all(|i| n.joined(i))));
    let v6 = net
        .server
        .peer()
        .peers()
        .filter_map(|p| net.server.peer().peer_info(p)?.addr)
        .filter(|a| a.is_ipv6());
    assert_eq!(v6.count(), urls.len() - 1 + usize::from(net.addr().is_ipv6()));
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    let free_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut net = Net::new(Server::bind(&localhost(), ServerConfig::default()).unwrap());
    net.connect(&format!("ws://127.0.0.1:{free_port}/"), &ClientOptions::default()).unwrap();
    assert!(net.drive_until(LIMIT, |n| n.failed(0) && n.clients[0].is_released()));
    assert!(
        matches!(net.clients[0].error(), Some(TransportError::Connect(_))),
        "{:?}",
        net.clients[0].error()
    );
}

#[test]
fn a_silent_connection_is_dropped_at_the_handshake_timeout() {
    let mut config = ServerConfig::default();
    config.ws.handshake_timeout = Duration::from_millis(300);
    let mut net = Net::new(Server::bind(&localhost(), config).unwrap());
    let mut silent = TcpStream::connect(net.addr()).unwrap();
    silent.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < LIMIT && !closed {
        net.turn(Duration::from_millis(20));
        let mut buf = [0; 256];
        closed = match silent.read(&mut buf) {
            Ok(0) => true,
            // The 408 answer, if any, comes before the end of stream.
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        };
    }
    let waited = started.elapsed();
    assert!(closed, "never closed");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    assert_eq!(net.server.peer().connection_count(), 0);
    assert!(net.server_log.events.iter().any(|e| matches!(e, Event::ConnectionRejected(_))));
}

#[test]
fn a_close_for_an_oversized_message_reaches_a_peer_that_is_still_sending() {
    // The core fails the connection on the frame header (Close 1009) and releases it while the
    // peer is still sending the message. Closing the socket then would make the kernel answer
    // the unread input with a reset, and a peer still writing fails on that reset before it
    // reads the Close (seen with Godot 3.2.3 clients). The server drains the input instead.
    let mut net = Net::new(Server::bind(&localhost(), ServerConfig::default()).unwrap());
    let mut raw = TcpStream::connect(net.addr()).unwrap();
    raw.write_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    raw.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    // The 101 response, then the id (`82 04 <id>`).
    while got.windows(4).position(|w| w == b"\r\n\r\n").is_none_or(|at| got.len() < at + 4 + 6) {
        assert!(started.elapsed() < LIMIT, "no upgrade: {:?}", String::from_utf8_lossy(&got));
        net.turn(Duration::from_millis(5));
        let mut buf = [0; 4096];
        if let Ok(n) = raw.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    // A masked binary frame announcing 8 MiB (the limit is 65535), and all of it.
    const LEN: usize = 8 << 20;
    let mut frame = vec![0x82, 0xff];
    frame.extend_from_slice(&(LEN as u64).to_be_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.resize(frame.len() + LEN, 0);
    let mut writer = raw.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let sent = writer.write_all(&frame);
        let _ = writer.shutdown(std::net::Shutdown::Write);
        sent
    });
    while !sending.is_finished() && started.elapsed() < LIMIT {
        net.turn(Duration::from_millis(5));
    }
    let sent = sending.join().unwrap();
    assert!(sent.is_ok(), "the server reset the connection while the peer was sending: {sent:?}");
    // Then the Close 1009 and the end of the stream, with no reset.
    let mut reply = Vec::new();
    let ended = loop {
        assert!(started.elapsed() < LIMIT, "no end of stream");
        net.turn(Duration::from_millis(5));
        let mut buf = [0; 4096];
        match raw.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => break Err(e),
        }
    };
    assert!(ended.is_ok(), "{ended:?}");
    assert!(reply.len() >= 4 && reply[0] == 0x88 && reply[2..4] == [0x03, 0xf1], "{reply:02x?}");
    assert_eq!(net.server.peer().connection_count(), 0);
}
