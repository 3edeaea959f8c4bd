//! Echo server on multipeer-mio's plain `WebSocketServer`, for Autobahn|Testsuite's
//! fuzzingclient mode (`AUTOBAHN_SERVER_CMD`) and for benchmarks.
//!
//! `ws_echo_mio [--permessage-deflate | --deflate-no-context-takeover] [ADDR] [MAX_CONNECTIONS]`
//! (default `127.0.0.1:9002` and 1024; port 0 picks one) prints `listening ADDR` as its first
//! line, then echoes every message (text as text, binary as binary, through `echo_all`: sent
//! from where it was received when it is alone in its queue or, from 16 KiB, written to the
//! socket at once with the others of its read; else one copy into the send queue) on every
//! connection until killed. One thread, one `mio::Poll`: the server's own `run` loop.
//!
//! With `--permessage-deflate` it accepts the extension from clients that offer it (with
//! `--deflate-no-context-takeover`, compressing every message alone both ways), and prints
//! `deflate ID agreed=... stats=...` (the connection's counters of compressed messages each
//! way) when a connection that agreed to it closes, for the interop checks.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::ExitCode;

use multipeer::ws::deflate::{DeflateConfig, DeflateParams, DeflateStats};
use multipeer::ws::{Config, SendError};
use multipeer_mio::{ConnectionId, ListenAddr, Stop, WebSocketEvent, WebSocketOptions, WebSocketServer};

/// Limits raised for Autobahn: 9.1.6 sends 16 MiB messages, 9.3/9.4 send 4 MiB in 64-byte
/// fragments.
fn autobahn_limits() -> Config {
    Config {
        max_message_size: 64 << 20,
        outbound_buffer_size: 64 << 20,
        outbound_queue_size: None,
        max_fragments: 1_000_000,
        ..WebSocketOptions::default().ws
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let before = args.len();
    args.retain(|a| a != "--permessage-deflate");
    let mut deflate = (args.len() < before).then_some(DeflateConfig::DEFAULT);
    let before = args.len();
    args.retain(|a| a != "--deflate-no-context-takeover");
    if args.len() < before {
        deflate = Some(DeflateConfig {
            no_context_takeover: true,
            peer_no_context_takeover: true,
            ..DeflateConfig::DEFAULT
        });
    }
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listen = match addr.parse::<ListenAddr>() {
        Ok(listen) => listen,
        Err(e) => {
            eprintln!("ws_echo_mio: {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let max_connections = match args.get(1).map(|n| n.parse::<usize>()) {
        None => 1024,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("ws_echo_mio: MAX_CONNECTIONS: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ws = Config { permessage_deflate: deflate, ..autobahn_limits() };
    let options = WebSocketOptions { ws, max_connections, ..WebSocketOptions::default() };
    let mut server = match WebSocketServer::bind(&[listen], options) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("ws_echo_mio: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening {}", server.local_addrs()[0]);
    // The first line is read by scripts waiting for the server to be ready.
    let _ = std::io::stdout().flush();
    // Connections with messages not echoed yet because their send queue was full: retried on
    // every turn until their queue has room again.
    let mut waiting: BTreeSet<ConnectionId> = BTreeSet::new();
    // permessage-deflate: what each connection agreed and its counters, printed at release.
    let mut deflate_seen: BTreeMap<ConnectionId, (DeflateParams, DeflateStats)> = BTreeMap::new();
    let result = server.run(&Stop::new(), None, |server| {
        while let Some(event) = server.poll_event() {
            match event {
                WebSocketEvent::Messages(id) => {
                    waiting.insert(id);
                }
                WebSocketEvent::Released(id) => {
                    waiting.remove(&id);
                    // The connection is gone: its counters as of its last echo.
                    if let Some((agreed, stats)) = deflate_seen.remove(&id) {
                        println!("deflate {} agreed={agreed:?} stats={stats:?}", id.get());
                        let _ = std::io::stdout().flush();
                    }
                }
                _ => {}
            }
        }
        waiting.retain(|&id| {
            let keep = loop {
                match server.echo_all(id) {
                    Ok(0) => break false,
                    Ok(_) => {}
                    Err(SendError::Full { .. }) => break true,
                    // Closing: what arrived before the close can no longer be answered.
                    Err(_) => {
                        while server.pop_message(id) {}
                        break false;
                    }
                }
            };
            if let Some(ws) = server.connection(id) {
                if let (Some(agreed), Some(stats)) = (ws.permessage_deflate(), ws.permessage_deflate_stats())
                {
                    deflate_seen.insert(id, (agreed, stats));
                }
            }
            keep
        });
        None
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws_echo_mio: {e}");
            ExitCode::FAILURE
        }
    }
}
