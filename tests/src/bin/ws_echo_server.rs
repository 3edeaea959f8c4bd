//! Echo server for Autobahn|Testsuite's fuzzingclient mode and for interop checks.
//!
//! `ws_echo_server [--permessage-deflate] [ADDR]` (default `127.0.0.1:9002`; port 0 picks one;
//! the flag accepts permessage-deflate offers, Autobahn sections 12 and 13) prints
//! `listening ADDR` as its first line, then echoes every message (text as text, binary as
//! binary) on every connection until killed. One thread per connection, each driving the
//! blocking `multipeer_std::WebSocket`.

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::io::Write as _;
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

use multipeer::ws::deflate::DeflateConfig;
use multipeer::ws::{Config, SendError};
use multipeer_std::{Error, Server, ServerOptions};

/// Connections served at once; more are dropped, so a flood cannot exhaust threads.
const MAX_CONNECTIONS: usize = 256;

/// Limits raised for Autobahn: 9.1.6 sends 16 MiB messages, 9.3/9.4 send 4 MiB in 64-byte
/// fragments.
const AUTOBAHN_LIMITS: Config = Config {
    max_message_size: 64 << 20,
    outbound_buffer_size: 64 << 20,
    max_fragments: 1_000_000,
    ..Config::GODOT
};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let before = args.len();
    args.retain(|a| a != "--permessage-deflate");
    let deflate = (args.len() < before).then_some(DeflateConfig::DEFAULT);
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let options = ServerOptions::new().config(AUTOBAHN_LIMITS).permessage_deflate(deflate);
    let server = match Server::bind(&addr, options) {
        Ok(server) => Arc::new(server),
        Err(e) => {
            eprintln!("ws_echo_server: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match server.local_addr() {
        Ok(bound) => println!("listening {bound}"),
        Err(e) => {
            eprintln!("ws_echo_server: {e}");
            return ExitCode::FAILURE;
        }
    }
    // The first line is read by scripts waiting for the server to be ready.
    let _ = std::io::stdout().flush();

    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match server.accept_stream() {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("ws_echo_server: accept: {e}");
                // Out of descriptors and similar: back off instead of spinning.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            eprintln!("ws_echo_server: {MAX_CONNECTIONS} connections already, dropping one");
            continue;
        }
        let server = Arc::clone(&server);
        let active = Arc::clone(&active);
        let spawned = thread::Builder::new().name("echo".into()).spawn(move || {
            serve(&server, stream);
            active.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = spawned {
            eprintln!("ws_echo_server: cannot start a thread: {e}");
        }
    }
}

/// Upgrades one connection and echoes until it ends.
fn serve(server: &Server, stream: TcpStream) {
    let peer = stream.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let mut ws = match server.upgrade(stream) {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("ws_echo_server: {peer}: {e}");
            return;
        }
    };
    loop {
        match ws.recv() {
            Ok(message) => match ws.send(message.kind, &message.data) {
                // Messages that arrived before the connection closed are still delivered, but
                // can no longer be answered; recv reports the close next.
                Ok(()) | Err(Error::Send(SendError::NotOpen)) => {}
                Err(e) => {
                    eprintln!("ws_echo_server: {peer}: echo failed: {e}");
                    return;
                }
            },
            Err(Error::Closed(_)) => return,
            Err(e) => {
                eprintln!("ws_echo_server: {peer}: {e}");
                return;
            }
        }
    }
}
