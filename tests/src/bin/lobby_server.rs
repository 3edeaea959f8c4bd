//! A lobby server for the WebRTC mesh: Godot's `webrtc_signaling` demo protocol (the core's
//! sans-IO `LobbyServer`) over the non-blocking WebSockets of `multipeer-std`.
//!
//! `lobby_server [ADDR]` (default `127.0.0.1:9080`; port 0 picks one) prints `listening ADDR`
//! as its first line, then serves until killed: clients join or create lobbies and the server
//! relays their offers, answers and candidates. One thread; every connection is polled each
//! turn of the loop, which sleeps until the next timer or for at most 1 ms.
//!
//! The glue is [`LobbyHost`]: accept, poll, hand text to the core, carry out its outputs.

use core::time::Duration;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

use multipeer::rand_core::CryptoRng;
use multipeer::signaling::{LobbyConfig, LobbyOutput, LobbyServer};
use multipeer::ws::{CloseCode, Event, MessageKind};
use multipeer_std::nonblocking::{Listener, WebSocket};
use multipeer_std::{Clock, ServerOptions, client_rng};

struct Connection {
    ws: WebSocket,
    /// Told to the lobby server (it knows the connection from its opening on).
    joined: bool,
}

/// The lobby server over a non-blocking listener.
struct LobbyHost<R: CryptoRng> {
    listener: Listener,
    server: LobbyServer<R>,
    clock: Clock,
    connections: BTreeMap<u64, Connection>,
    next_key: u64,
}

impl<R: CryptoRng> LobbyHost<R> {
    fn new(listener: Listener, rng: R) -> Self {
        Self {
            listener,
            server: LobbyServer::new(LobbyConfig::default(), rng),
            clock: Clock::new(),
            connections: BTreeMap::new(),
            next_key: 0,
        }
    }

    /// One turn: accept, read, run timers, write.
    fn step(&mut self) {
        while let Ok(Some(ws)) = self.listener.accept() {
            self.next_key += 1;
            self.connections.insert(self.next_key, Connection { ws, joined: false });
        }
        let now = self.clock.now();
        for (key, c) in &mut self.connections {
            let _ = c.ws.poll();
            while let Some(event) = c.ws.poll_event() {
                match event {
                    Event::Open => {
                        c.joined = true;
                        self.server.connect(now, *key);
                    }
                    Event::Closed(_) if c.joined => {
                        c.joined = false;
                        self.server.disconnect(*key);
                    }
                    _ => {}
                }
            }
            while let Some(message) = c.ws.recv() {
                match (message.kind, message.as_text()) {
                    (MessageKind::Text, Some(text)) => self.server.message(now, *key, text),
                    _ => self.server.binary(*key),
                }
            }
        }
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
        }
        while let Some(output) = self.server.poll_output() {
            match output {
                LobbyOutput::Send { conn, text } => {
                    if let Some(c) = self.connections.get_mut(&conn) {
                        let _ = c.ws.send_text(&text);
                    }
                }
                LobbyOutput::Close { conn, code, reason } => {
                    if let Some(c) = self.connections.get_mut(&conn) {
                        // The server already forgot it.
                        c.joined = false;
                        let _ = c.ws.close(CloseCode(code), reason);
                    }
                }
            }
        }
        for c in self.connections.values_mut() {
            let _ = c.ws.poll();
        }
        let server = &mut self.server;
        self.connections.retain(|key, c| {
            if !c.ws.is_finished() {
                return true;
            }
            if c.joined {
                server.disconnect(*key);
            }
            false
        });
    }

    /// How long to sleep before the next step.
    fn idle(&self) -> Duration {
        let mut wait = Duration::from_millis(1);
        if let Some(t) = self.server.poll_timeout() {
            wait = wait.min(t.saturating_duration_since(self.clock.now()));
        }
        wait
    }
}

fn main() -> ExitCode {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9080".to_owned());
    let listener = match Listener::bind(&addr, ServerOptions::new()) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("lobby_server: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rng = match client_rng() {
        Ok(rng) => rng,
        Err(e) => {
            eprintln!("lobby_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(bound) => println!("listening {bound}"),
        Err(e) => {
            eprintln!("lobby_server: {e}");
            return ExitCode::FAILURE;
        }
    }
    // The first line is read by scripts waiting for the server to be ready.
    let _ = std::io::stdout().flush();
    let mut host = LobbyHost::new(listener, rng);
    loop {
        host.step();
        std::thread::sleep(host.idle());
    }
}
