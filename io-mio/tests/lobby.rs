//! The WebRTC lobby (signalling) server on mio: the library's `Lobby` on a thread, and the
//! `multipeer lobby` command, with blocking WebSocket clients over loopback.
#![cfg(feature = "tls")]

use core::time::Duration;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use multipeer::signaling::{LobbyConfig, LobbyEvent, join_message, parse_server_message, seal_message};
use multipeer::ws::CloseCode;
use multipeer_mio::{ListenAddr, Lobby, LobbyOptions, LobbyStats, RunEnd, Stop};
use multipeer_std::{ClientOptions, Error, WebSocket};

const WAIT: Duration = Duration::from_secs(5);

/// A lobby running on its own thread.
struct Running {
    url: String,
    stop: Stop,
    thread: Option<JoinHandle<LobbyStats>>,
}

impl Running {
    fn start(lobby: LobbyConfig) -> Self {
        let options = LobbyOptions { lobby, ..LobbyOptions::default() };
        let mut server = Lobby::bind(&[ListenAddr::One("127.0.0.1:0".parse().unwrap())], options).unwrap();
        let url = format!("ws://{}", server.local_addrs()[0]);
        let stop = Stop::new();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let end = server.run(&flag, Some(Duration::from_secs(30)), |_| None).unwrap();
            assert_eq!(end, RunEnd::Stopped);
            assert!(server.is_closed(), "{} connections left", server.connection_count());
            server.stats()
        });
        Self { url, stop, thread: Some(thread) }
    }

    fn client(&self) -> WebSocket {
        WebSocket::connect(&self.url, &ClientOptions::new()).unwrap()
    }

    fn finish(mut self) -> LobbyStats {
        self.stop.raise();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.raise();
    }
}

fn next(ws: &mut WebSocket) -> LobbyEvent {
    let message = ws.recv_timeout(WAIT).unwrap();
    parse_server_message(message.as_text().unwrap()).unwrap()
}

/// Waits for the server to close the connection; returns the code and reason.
fn closed(ws: &mut WebSocket) -> (CloseCode, String) {
    let end = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < end, "not closed");
        match ws.recv_timeout(WAIT) {
            Ok(_) => {}
            Err(Error::Closed(info)) => return (info.code, info.reason.as_str().to_owned()),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Joins (or creates, with "") a lobby; returns the id and the lobby name. The server sends
/// the id, then one "peer connected" per member already there, then the lobby name.
fn join(ws: &mut WebSocket, lobby: &str) -> (i32, String) {
    join_seeing(ws, lobby).0
}

/// As [`join`], also returning the members announced.
fn join_seeing(ws: &mut WebSocket, lobby: &str) -> ((i32, String), Vec<i32>) {
    ws.send_text(&join_message(lobby, true)).unwrap();
    let LobbyEvent::Id { id, mesh: true } = next(ws) else { panic!("no id") };
    let mut members = Vec::new();
    loop {
        match next(ws) {
            LobbyEvent::PeerConnected(peer) => members.push(peer.get()),
            LobbyEvent::Joined(name) => return ((id.get(), name), members),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn host_and_guest_meet_and_relay_offers() {
    let lobby = Running::start(LobbyConfig::default());
    let mut host = lobby.client();
    let (host_id, name) = join(&mut host, "");
    assert_eq!(host_id, 1, "the creator is presented as 1");
    assert!(!name.is_empty());
    let mut guest = lobby.client();
    let ((guest_id, joined), members) = join_seeing(&mut guest, &name);
    assert_eq!(joined, name);
    assert!(guest_id > 1);
    assert_eq!(members, [1]);
    let LobbyEvent::PeerConnected(seen) = next(&mut host) else { panic!() };
    assert_eq!(seen.get(), guest_id);

    // An offer from the host to the guest arrives from id 1; the answer comes back.
    host.send_text(&format!("{{\"type\":4,\"id\":{guest_id},\"data\":\"v=0 offer\"}}")).unwrap();
    let LobbyEvent::Offer { from, sdp } = next(&mut guest) else { panic!() };
    assert_eq!((from.get(), sdp.as_str()), (1, "v=0 offer"));
    guest.send_text("{\"type\":5,\"id\":1,\"data\":\"v=0 answer\"}").unwrap();
    let LobbyEvent::Answer { from, sdp } = next(&mut host) else { panic!() };
    assert_eq!((from.get(), sdp.as_str()), (guest_id, "v=0 answer"));

    // The guest leaves: the host is told.
    guest.close(CloseCode::NORMAL, "").unwrap();
    let LobbyEvent::PeerDisconnected(gone) = next(&mut host) else { panic!() };
    assert_eq!(gone.get(), guest_id);
    drop(host);
    let stats = lobby.finish();
    assert_eq!(stats.opened, 2);
    assert!(stats.messages_in >= 4 && stats.messages_out >= 8, "{stats:?}");
}

#[test]
fn binary_late_join_and_host_departure_close_with_4000() {
    let lobby =
        Running::start(LobbyConfig { join_timeout: Duration::from_millis(200), ..LobbyConfig::default() });
    // Binary is not allowed.
    let mut binary = lobby.client();
    binary.send_binary(b"\x01\x02").unwrap();
    assert_eq!(closed(&mut binary), (CloseCode(4000), "Invalid transfer mode, must be text".into()));
    // Not joining in time.
    let mut idle = lobby.client();
    assert_eq!(closed(&mut idle), (CloseCode(4000), "Have not joined lobby yet".into()));
    // The host leaves: the others are closed.
    let mut host = lobby.client();
    let (_, name) = join(&mut host, "");
    let mut guest = lobby.client();
    join(&mut guest, &name);
    host.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(closed(&mut guest), (CloseCode(4000), "Room host has disconnected".into()));
    let stats = lobby.finish();
    assert_eq!(stats.binary_in, 1);
    assert!(stats.closed_by_lobby >= 3, "{stats:?}");
}

#[test]
fn seal_closes_the_lobby_and_max_peers_is_enforced() {
    let lobby = Running::start(LobbyConfig {
        max_peers: 2,
        seal_close_timeout: Duration::from_millis(200),
        ..LobbyConfig::default()
    });
    let mut host = lobby.client();
    let (_, name) = join(&mut host, "");
    let mut guest = lobby.client();
    join(&mut guest, &name);
    // A third connection is over max_peers.
    let mut third = lobby.client();
    assert_eq!(closed(&mut third), (CloseCode(4000), "Too many peers connected".into()));
    host.send_text(&seal_message()).unwrap();
    assert_eq!(next(&mut guest), LobbyEvent::Sealed);
    assert_eq!(closed(&mut guest), (CloseCode::NORMAL, "Seal complete".into()));
    lobby.finish();
}

#[test]
fn stopping_closes_open_connections_with_going_away() {
    let lobby = Running::start(LobbyConfig::default());
    let mut host = lobby.client();
    join(&mut host, "");
    lobby.stop.raise();
    assert_eq!(closed(&mut host).0, CloseCode::GOING_AWAY);
    lobby.finish();
}

#[test]
fn the_lobby_command_serves_and_exits_cleanly_on_sigterm() {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_multipeer"))
            .args(["lobby", "--listen", "127.0.0.1:0", "--join-timeout", "0.5"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let first = lines.recv_timeout(WAIT).unwrap();
    assert!(first.contains("listening on ws://127.0.0.1:"), "{first}");
    let addr = first.split("://").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_owned();
    let url = format!("ws://{addr}");
    let mut host = WebSocket::connect(&url, &ClientOptions::new()).unwrap();
    let (id, name) = join(&mut host, "");
    let mut guest = WebSocket::connect(&url, &ClientOptions::new()).unwrap();
    join(&mut guest, &name);
    assert_eq!(id, 1);
    // A status line comes each second.
    let end = Instant::now() + WAIT;
    let status = loop {
        let line = lines.recv_timeout(WAIT).unwrap();
        if line.contains("connections 2 | lobbies 1") || Instant::now() > end {
            break line;
        }
    };
    assert!(status.contains("lobbies 1"), "{status}");
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    assert_eq!(closed(&mut host).0, CloseCode::GOING_AWAY);
    let end = Instant::now() + WAIT;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    // The reader thread may still be passing on the last lines: read until it sees EOF.
    let rest: Vec<String> = core::iter::from_fn(|| lines.recv_timeout(WAIT).ok()).collect();
    assert!(rest.iter().any(|l| l.contains("lobby closed after")), "{rest:?}");

    let usage = Command::new(env!("CARGO_BIN_EXE_multipeer")).args(["lobby", "--bogus"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let help = Command::new(env!("CARGO_BIN_EXE_multipeer")).args(["lobby", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("webrtc_signaling"));
}

/// Kills the child if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
