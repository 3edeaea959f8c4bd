//! A multiplayer server behind `multipeer_std::WebSocketMultiplayerPeer` that stands in for
//! `tests/interop/godot/g4_server.gd` / `g3_server.gd` in the Godot interop runner: it prints the
//! same lines and obeys the same test-only `ctl:` raw packets (see that directory's README).
//!
//! `mp_server [--port N] [--bind ADDR] [--version 3|4] [--timeout S] [--handshake-ms MS]`, or
//! the environment the runner sets: `MP_PORT` (9080), `MP_BIND` (127.0.0.1), `MP_VERSION` (4),
//! `MP_TIMEOUT` (30 s), `MP_HANDSHAKE_MS` (4: 3000, Godot's default; 3: 1000, as 3.2.3's fixed
//! timeout, so the runner's expectations for a 3.2.3 server apply).
//!
//! SceneMultiplayer (4.x) and MultiplayerAPI (3.x) are not part of multipeer: like the Godot
//! scenes, this server only uses raw packets (`send_bytes`: `03 <data>` in 4.x, `04 <data>` in
//! 3.x) and reports other scene packets (RPCs, path caching) without interpreting them. Lines
//! that Godot has no counterpart for (`packet_dropped`, `connection_rejected`, reasons on
//! `peer_disconnected`) report what Godot does silently.

use core::time::Duration;
use std::process::ExitCode;
use std::time::Instant;

use multipeer::peer::{DisconnectReason, Event, PeerId, Protocol, PutError, Target};
use multipeer::ws::{CloseCode, CloseInfo};
use multipeer_std::{Incoming, WebSocketMultiplayerPeer};

/// The options, from arguments or the runner's environment.
struct Options {
    port: u16,
    bind: String,
    version: u8,
    timeout: Duration,
    handshake: Duration,
}

fn env_or(key: &str, fallback: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| fallback.to_owned())
}

fn options() -> Result<Options, String> {
    let mut port = env_or("MP_PORT", "9080");
    let mut bind = env_or("MP_BIND", "127.0.0.1");
    let mut version = env_or("MP_VERSION", "4");
    let mut timeout = env_or("MP_TIMEOUT", "30");
    let mut handshake = std::env::var("MP_HANDSHAKE_MS").ok();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = value,
            "--bind" => bind = value,
            "--version" => version = value,
            "--timeout" => timeout = value,
            "--handshake-ms" => handshake = Some(value),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    let version: u8 = match version.as_str() {
        "3" => 3,
        "4" => 4,
        v => return Err(format!("version must be 3 or 4, not {v}")),
    };
    let default_handshake = if version == 3 { "1000" } else { "3000" };
    let handshake = handshake.unwrap_or_else(|| default_handshake.to_owned());
    Ok(Options {
        port: port.parse().map_err(|_| format!("bad port {port}"))?,
        bind,
        version,
        timeout: Duration::from_secs_f64(timeout.parse().map_err(|_| format!("bad timeout {timeout}"))?),
        handshake: Duration::from_millis(
            handshake.parse().map_err(|_| format!("bad handshake {handshake}"))?,
        ),
    })
}

/// The first bytes of a packet as Godot's scenes print them: UTF-8 text (up to 48 bytes, spaces
/// and newlines as `_`) and hex (up to 32 bytes).
fn describe(data: &[u8]) -> (String, String) {
    let head = &data[..data.len().min(48)];
    let text = String::from_utf8_lossy(head).replace([' ', '\n'], "_");
    let hex = data[..data.len().min(32)].iter().map(|b| format!("{b:02x}")).collect();
    (text, hex)
}

/// The line every server prints when it learns how a peer's connection closed.
fn print_close(peer: PeerId, info: &CloseInfo) {
    let reason = info.reason.as_str();
    let hex: String = reason.bytes().map(|b| format!("{b:02x}")).collect();
    println!(
        "EVENT peer_close id={peer} code={} reason={} reason_hex={hex}",
        info.godot_code(),
        reason.replace([' ', '\0'], "_")
    );
}

/// Godot's `Error` code for a failed `put_packet` (what `send_bytes` would return).
fn godot_error(result: Result<(), PutError>) -> (i32, String) {
    match result {
        Ok(()) => (0, String::new()),
        Err(e) => (e.godot_error().code(), format!(" error={}", format!("{e:?}").replace(' ', ""))),
    }
}

struct App {
    peer: WebSocketMultiplayerPeer,
    version: u8,
    quit_at: Option<Instant>,
}

impl App {
    /// SceneMultiplayer's / MultiplayerAPI's `send_bytes(data, to)`.
    fn send(&mut self, data: &[u8], to: Target, tag: &str) {
        let raw = if self.version == 3 { 4 } else { 3 };
        let mut packet = Vec::with_capacity(data.len() + 1);
        packet.push(raw);
        packet.extend_from_slice(data);
        self.peer.set_target_peer(to);
        let (err, detail) = godot_error(self.peer.put_packet(&packet));
        println!("SEND to={} len={} err={err} tag={tag}{detail}", to.to_godot(), data.len());
    }

    fn big(n: usize, tag: &str) -> Vec<u8> {
        let mut data = vec![b'x'; n];
        let head = format!("big|server|{n}|{tag}|");
        let len = head.len().min(n);
        data[..len].copy_from_slice(&head.as_bytes()[..len]);
        data
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::PeerConnected(id) => {
                let address = self.peer.get_peer_address(id).map_or_else(String::new, |a| a.to_string());
                let port = self.peer.get_peer_port(id).unwrap_or(0);
                println!("EVENT peer_connected id={id} address={address} port={port}");
                self.send(format!("welcome|{id}").as_bytes(), Target::Peer(id), "welcome");
            }
            Event::PeerDisconnected { peer, reason } => {
                let why = match &reason {
                    DisconnectReason::Closed(info) => format!(
                        "closed code={} reason={} clean={} by={:?}",
                        info.code.0,
                        info.reason.as_str().replace([' ', '\0'], "_"),
                        info.clean,
                        info.initiator
                    ),
                    other => format!("{other:?}").replace(' ', ""),
                };
                println!("EVENT peer_disconnected id={peer} why={why}");
                if let DisconnectReason::Closed(info) = &reason {
                    print_close(peer, info);
                }
            }
            // A kicked peer's answer, once its connection has closed.
            Event::PeerClosed { peer, info } => print_close(peer, &info),
            Event::PacketDropped { from, reason } => {
                let from = from.map_or(0, PeerId::get);
                println!("EVENT packet_dropped from={from} reason={}", reason.to_string().replace(' ', "_"));
            }
            Event::ConnectionRejected(e) => {
                println!("EVENT connection_rejected reason={}", e.to_string().replace(' ', "_"));
            }
            other => println!("INFO event={}", format!("{other:?}").replace(' ', "")),
        }
    }

    fn on_packet(&mut self, from: PeerId, packet: &[u8]) {
        let raw = if self.version == 3 { 4 } else { 3 };
        let Some((&command, data)) = packet.split_first() else { return };
        if command != raw {
            // RPCs and path caching are SceneMultiplayer's; the relay forwards them untouched.
            println!("INFO scene_packet from={from} command={command} len={}", packet.len());
            return;
        }
        let (text, hex) = describe(data);
        println!("RECV from={from} mode=raw len={} text={text} bytes={hex}", data.len());
        let text = String::from_utf8_lossy(&data[..data.len().min(48)]).into_owned();
        match text.as_str() {
            "ctl:server-traffic" => {
                self.send(b"srv-bcast", Target::Broadcast, "srv-bcast");
                self.send(format!("srv-to|{from}").as_bytes(), Target::Peer(from), "srv-to");
                self.send(format!("srv-excl|{from}").as_bytes(), Target::AllExcept(from), "srv-excl");
            }
            "ctl:big" => {
                // The largest raw packet: one message of outbound_buffer_size bytes holds the
                // 3.x header and the RAW byte too.
                let max = self.peer.get_max_packet_size().saturating_sub(1);
                self.send(&Self::big(max, "server-max"), Target::Peer(from), "big-server-max");
                self.send(&Self::big(max + 1, "server-over"), Target::Peer(from), "big-server-over");
            }
            "ctl:kick-me" => {
                println!("EVENT disconnect_peer id={from} code=4000 reason=bye");
                // Godot 4: get_peer(id).close(4000, "bye"); 3.x: disconnect_peer(id, 4000, "bye").
                if let Err(e) = self.peer.disconnect_peer_with(from, CloseCode(4000), "bye", false) {
                    println!(
                        "INFO disconnect_peer_failed id={from} error={}",
                        e.to_string().replace(' ', "_")
                    );
                }
            }
            "ctl:refuse" | "ctl:accept" => {
                let refuse = text == "ctl:refuse";
                self.peer.set_refuse_new_connections(refuse);
                println!("EVENT refuse_new_connections value={refuse}");
                self.send(format!("ack|{}", &text[4..]).as_bytes(), Target::Peer(from), "ack");
            }
            "ctl:shutdown" => {
                println!("EVENT shutdown");
                self.quit_at = Some(Instant::now() + Duration::from_millis(200));
            }
            _ => {}
        }
    }
}

fn main() -> ExitCode {
    let opts = match options() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("mp_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut peer =
        if opts.version == 3 { WebSocketMultiplayerPeer::godot3() } else { WebSocketMultiplayerPeer::new() };
    peer.set_handshake_timeout(opts.handshake);
    println!(
        "INFO role=server godot=multipeer-{}_protocol{} port={} bind={}",
        env!("CARGO_PKG_VERSION"),
        opts.version,
        opts.port,
        opts.bind
    );
    if let Err(e) = peer.create_server(opts.port, &opts.bind) {
        println!("EVENT listen port={} err=1 error={}", opts.port, e.to_string().replace(' ', "_"));
        println!("RESULT fail reason=listen");
        return ExitCode::FAILURE;
    }
    println!("EVENT listen port={} err=0", opts.port);
    println!(
        "INFO server_relay={} unique_id={} protocol={:?}",
        peer.is_server_relay_supported(),
        peer.unique_id().map_or(0, PeerId::get),
        if opts.version == 3 { Protocol::Godot3 } else { Protocol::Godot4 }
    );
    let mut app = App { peer, version: opts.version, quit_at: None };
    let deadline = Instant::now() + opts.timeout;
    loop {
        if let Err(e) = app.peer.poll() {
            println!("INFO accept_error error={}", e.to_string().replace(' ', "_"));
        }
        // In the order things happened, as Godot's signals and packets come.
        while let Some(incoming) = app.peer.poll_next() {
            match incoming {
                Incoming::Event(event) => app.on_event(event),
                Incoming::Packet(data, info) => app.on_packet(info.from, &data),
            }
        }
        let now = Instant::now();
        if app.quit_at.is_some_and(|t| now >= t) {
            app.peer.close();
            // Let the Close frames go out and their answers drain.
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                let _ = app.peer.poll();
                app.peer.events().for_each(drop);
                app.peer.wait(Duration::from_millis(20));
            }
            println!("RESULT ok");
            return ExitCode::SUCCESS;
        }
        if now > deadline {
            println!("RESULT fail reason=timeout");
            return ExitCode::FAILURE;
        }
        app.peer.wait(Duration::from_millis(50));
    }
}
