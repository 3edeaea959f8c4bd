//! How many connections the core server holds on one thread, without sockets (issue 7).
//!
//! The socket test of the runner stops at the process's descriptor limit (20,000 here). This
//! drives `peer::Server` in memory the way an adapter does, through the real handshake (HTTP
//! upgrade, accept key, Godot 4 id message) for every connection, and reports the heap each
//! idle connection holds once its timers have given back what the handshake needed. Output is
//! one JSON line.
//!
//! usage: core_held CONNS

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant as WallClock};

use multipeer::Instant;
use multipeer::peer::{MultiplayerPeer as _, Server, ServerConfig};
use multipeer::rand_core::SeedableRng as _;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("resident pages");
    pages * 4096
}

fn drain(server: &mut Server<chacha20::ChaCha12Rng>) -> usize {
    let mut bytes = 0;
    while let Some(conn) = server.poll_transmit() {
        let n = server.transmit(conn).map_or(0, <[u8]>::len);
        bytes += n;
        server.consume_transmit(conn, n).expect("a connection the server named");
    }
    while server.poll_event().is_some() {}
    bytes
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50_000);
    // Relay off, as the socket test runs it: with SceneMultiplayer's relay on, every join is
    // announced to every peer, a quadratic storm unrelated to holding connections.
    let config = ServerConfig { relay: false, max_peers: n, ..ServerConfig::default() };
    let mut server = Server::new(config, chacha20::ChaCha12Rng::seed_from_u64(1));
    let before = rss_bytes();
    let start = WallClock::now();
    let mut now = Instant::ZERO;
    let mut written = 0;
    for i in 0..n {
        if i % 1000 == 0 {
            now += Duration::from_millis(1);
        }
        // Loopback clients, as in the socket test (one address, a port each).
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 1024 + (i % 64_000) as u16));
        let conn = server.accept(now, Some(addr)).expect("room for every connection");
        assert_eq!(server.handle_input(now, conn, REQUEST), Ok(REQUEST.len()));
        written += drain(&mut server);
    }
    let handshakes = start.elapsed();
    // Idle: the release timers give back what the handshakes needed, as an adapter's would.
    now += Duration::from_secs(2);
    server.handle_timeout(now);
    drain(&mut server);
    let held = server.connection_count();
    assert_eq!(held, n, "every connection is held");
    let after = rss_bytes();
    println!(
        "{{\"mode\":\"core_held\",\"conns\":{n},\"held\":{held},\"peers\":{},\"handshake_bytes_out\":{written},\
\"handshakes_per_s\":{:.0},\"rss_bytes_per_conn\":{:.0},\"buffer_footprint\":{}}}",
        server.peers().count(),
        n as f64 / handshakes.as_secs_f64(),
        after.saturating_sub(before) as f64 / n as f64,
        server.buffer_footprint(),
    );
}
