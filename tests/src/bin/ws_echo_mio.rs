//! Echo server on multipeer-mio's plain `WebSocketServer`, for Autobahn|Testsuite's
//! fuzzingclient mode (`AUTOBAHN_SERVER_CMD`) and for benchmarks.
//!
//! `ws_echo_mio [ADDR] [MAX_CONNECTIONS]` (default `127.0.0.1:9002` and 1024; port 0 picks one)
//! prints `listening ADDR` as its first line, then echoes every message (text as text, binary as
//! binary, through `echo`: sent from where it was received when it is alone in its queue, else
//! one copy into the send queue) on every connection until killed. One thread, one
//! `mio::Poll`: the server's own `run` loop.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::ExitCode;

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
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listen = match addr.parse::<ListenAddr>() {
        Ok(listen) => listen,
        Err(e) => {
            eprintln!("ws_echo_mio: {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let max_connections = match std::env::args().nth(2).map(|n| n.parse::<usize>()) {
        None => 1024,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("ws_echo_mio: MAX_CONNECTIONS: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = WebSocketOptions { ws: autobahn_limits(), max_connections, ..WebSocketOptions::default() };
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
    let result = server.run(&Stop::new(), None, |server| {
        while let Some(event) = server.poll_event() {
            match event {
                WebSocketEvent::Messages(id) => {
                    waiting.insert(id);
                }
                WebSocketEvent::Released(id) => {
                    waiting.remove(&id);
                }
                _ => {}
            }
        }
        waiting.retain(|&id| {
            loop {
                match server.echo(id) {
                    Ok(Some(_)) => {}
                    Ok(None) => return false,
                    Err(SendError::Full { .. }) => return true,
                    // Closing: what arrived before the close can no longer be answered.
                    Err(_) => {
                        while server.pop_message(id) {}
                        return false;
                    }
                }
            }
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
