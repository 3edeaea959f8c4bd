//! The `multipeer` command-line server, run as a child process.
#![cfg(feature = "tls")]

use core::time::Duration;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::peer::{Event, MultiplayerPeer as _, PeerId, Target};
use multipeer::ws::CloseCode;
use multipeer_mio::{Client, ClientOptions, ReadBuffer};

const LIMIT: Duration = Duration::from_secs(10);

fn multipeer(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_multipeer"));
    command.args(args).stdin(Stdio::null());
    command
}

fn run(args: &[&str]) -> Output {
    multipeer(args).output().unwrap()
}

/// A server child and the lines it writes to stderr.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Serve {
    fn start(args: &[&str]) -> Self {
        let mut child = multipeer(&[&["serve"], args].concat()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines, seen: Vec::new() }
    }

    /// Waits for a stderr line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let end = Instant::now() + LIMIT;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => self.seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}; saw {:?}", self.seen);
    }

    /// The port from "listening on ws://127.0.0.1:PORT".
    fn port(&mut self) -> u16 {
        let line = self.wait_for("listening on");
        let addr = line.split("://").nth(1).and_then(|r| r.split_whitespace().next()).unwrap();
        addr.rsplit_once(':').unwrap().1.parse().unwrap()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([name, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the child to exit; kills it if it does not.
    fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn help_names_godot_properties() {
    let out = run(&["serve", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "inbound_buffer_size",
        "outbound_buffer_size",
        "max_queued_packets",
        "handshake_timeout",
        "supported_protocols",
        "handshake_headers",
        "refuse_new_connections",
        "server_relay",
        "--tls-cert",
    ] {
        assert!(help.contains(word), "--help does not mention {word}");
    }
    assert!(run(&["--version"]).status.success());
}

#[test]
fn bad_usage_exits_2_with_a_reason() {
    for (args, needle) in [
        (&["serve", "--bogus"][..], "--bogus"),
        (&["serve", "--max-peers", "lots"], "--max-peers"),
        (&["serve", "--listen", "nowhere"], "--listen"),
        (&[], "missing command"),
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&["serve", "--listen", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&addr) && stderr.contains("already in use"), "{stderr}");
}

#[test]
fn an_unreadable_certificate_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("multipeer-cert-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.pem");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let (missing, junk) = (missing.to_str().unwrap(), junk.to_str().unwrap());
    let listen = ["--listen", "127.0.0.1:0"];
    let out = run(&[&["serve", "--tls-cert", missing, "--tls-key", junk][..], &listen].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read the TLS certificate") && stderr.contains("missing.pem"), "{stderr}");
    let out = run(&[&["serve", "--tls-cert", junk, "--tls-key", junk][..], &listen].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unusable certificate PEM"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Clients of a server child on one poll.
struct Players {
    poll: Poll,
    events: Events,
    clients: Vec<Client>,
    logs: Vec<Vec<Event>>,
    packets: Vec<Vec<(PeerId, Vec<u8>)>>,
    buf: ReadBuffer,
}

impl Players {
    fn join(port: u16, n: usize) -> Self {
        Self::join_with(port, &vec![ClientOptions::default(); n])
    }

    /// One client per entry of `options`.
    fn join_with(port: u16, options: &[ClientOptions]) -> Self {
        let (poll, n) = (Poll::new().unwrap(), options.len());
        let url = format!("ws://127.0.0.1:{port}/");
        let clients =
            (0..n).map(|i| Client::connect(poll.registry(), Token(i), &url, &options[i]).unwrap()).collect();
        let mut players = Self {
            poll,
            events: Events::with_capacity(64),
            clients,
            logs: vec![Vec::new(); n],
            packets: vec![Vec::new(); n],
            buf: ReadBuffer::new(),
        };
        assert!(players.drive_until(|p| p.logs.iter().all(|l| l.contains(&Event::ConnectionSucceeded))));
        players
    }

    fn drive_until(&mut self, done: impl FnMut(&Self) -> bool) -> bool {
        self.drive_sending_until(|_, _| {}, done)
    }

    /// [`drive_until`](Self::drive_until), calling `send` with each client before each turn.
    fn drive_sending_until(
        &mut self,
        mut send: impl FnMut(usize, &mut Client),
        mut done: impl FnMut(&Self) -> bool,
    ) -> bool {
        let end = Instant::now() + LIMIT;
        while Instant::now() < end {
            if done(self) {
                return true;
            }
            for (i, c) in self.clients.iter_mut().enumerate() {
                send(i, c);
                c.flush(self.poll.registry(), &mut self.buf);
            }
            self.poll.poll(&mut self.events, Some(Duration::from_millis(20))).unwrap();
            let registry = self.poll.registry();
            for event in self.events.iter() {
                self.clients[event.token().0].handle_event(registry, event, &mut self.buf);
            }
            for (i, c) in self.clients.iter_mut().enumerate() {
                c.handle_timeout(registry, &mut self.buf);
                while let Some(e) = c.peer_mut().poll_event() {
                    self.logs[i].push(e);
                }
                while let Some(p) = c.peer_mut().peek_packet() {
                    self.packets[i].push((p.info.from, p.data.to_vec()));
                    c.peer_mut().pop_packet();
                }
                c.flush(registry, &mut self.buf);
            }
        }
        done(self)
    }
}

#[test]
fn relays_between_clients_and_reports_status() {
    let mut serve = Serve::start(&["--listen", "127.0.0.1:0", "--verbose"]);
    let port = serve.port();
    let mut players = Players::join(port, 2);
    let to = players.clients[1].peer().unique_id().unwrap();
    players.clients[0].peer_mut().set_target_peer(Target::Peer(to));
    players.clients[0].peer_mut().put_packet(b"hello through the relay").unwrap();
    players.clients[0].peer_mut().set_target_peer(Target::Server);
    players.clients[0].peer_mut().put_packet(b"for the server").unwrap();
    let from = players.clients[0].peer().unique_id().unwrap();
    assert!(players.drive_until(|p| p.packets[1].contains(&(from, b"hello through the relay".to_vec()))));
    serve.wait_for(&format!("packet for the server from peer {from}: 14 bytes"));
    let status = serve.wait_for("peers (");
    assert!(
        status.contains("| in ") && status.contains("dropped") && status.contains("rejected"),
        "{status}"
    );
}

/// Every client broadcasts a numbered stream while it receives everyone else's, so packets
/// arrive while the server is part-way through writing the fan-out of others (`run` reads
/// between slices of a flush and lets them join the writes still to come): each client gets
/// every other client's packets, each stream whole and in order.
#[test]
fn concurrent_broadcasts_arrive_whole_and_in_order() {
    const CLIENTS: usize = 20;
    const EACH: u32 = 60;
    let mut serve = Serve::start(&["--listen", "127.0.0.1:0", "--quiet"]);
    let port = serve.port();
    let mut players = Players::join(port, CLIENTS);
    let ids: Vec<PeerId> = players.clients.iter().map(|c| c.peer().unique_id().unwrap()).collect();
    let mut next = [0u32; CLIENTS];
    let all_in = players.drive_sending_until(
        |i, client| {
            // Two packets a turn: the server sees more input than one fan-out's worth.
            for _ in 0..2 {
                if next[i] < EACH {
                    client.peer_mut().set_target_peer(Target::Broadcast);
                    let mut packet = next[i].to_le_bytes().to_vec();
                    packet.resize(48, i as u8);
                    client.peer_mut().put_packet(&packet).unwrap();
                    next[i] += 1;
                }
            }
        },
        |p| p.packets.iter().all(|got| got.len() == (CLIENTS - 1) * EACH as usize),
    );
    let counts: Vec<usize> = players.packets.iter().map(Vec::len).collect();
    assert!(all_in, "packets per client: {counts:?}");
    for (receiver, got) in players.packets.iter().enumerate() {
        for (sender, &id) in ids.iter().enumerate() {
            let stream: Vec<u32> = got
                .iter()
                .filter(|(from, _)| *from == id)
                .map(|(_, data)| {
                    assert_eq!(data.len(), 48);
                    assert!(data[4..].iter().all(|&b| b == sender as u8), "{data:?}");
                    u32::from_le_bytes(data[..4].try_into().unwrap())
                })
                .collect();
            let expected: Vec<u32> = if sender == receiver { Vec::new() } else { (0..EACH).collect() };
            assert_eq!(stream, expected, "client {receiver} from client {sender}");
        }
    }
}

#[test]
fn ctrl_c_closes_every_peer_with_1001_and_exits_0() {
    let mut serve = Serve::start(&["--listen", "127.0.0.1:0", "--quiet"]);
    let port = serve.port();
    let mut players = Players::join(port, 2);
    serve.signal("-INT");
    let going_away = |log: &[Event]| {
        log.iter().any(|e| matches!(e, Event::ServerDisconnected(info) if info.code == CloseCode::GOING_AWAY))
    };
    assert!(players.drive_until(|p| p.logs.iter().all(|l| going_away(l))), "{:?}", players.logs);
    assert!(players.drive_until(|p| p.clients.iter().all(Client::is_released)));
    assert_eq!(serve.exit_code(LIMIT), Some(0));
}

#[test]
fn sigterm_with_no_peers_exits_0_at_once() {
    let mut serve = Serve::start(&["--listen", "127.0.0.1:0"]);
    serve.port();
    let started = Instant::now();
    serve.signal("-TERM");
    assert_eq!(serve.exit_code(LIMIT), Some(0));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

/// A web export's browser offers permessage-deflate; the server agrees on at most
/// `--deflate-max-connections` connections, relays compressed traffic intact, and shows the
/// compressing connections and their memory on the status line. Godot's own client never offers.
#[test]
fn permessage_deflate_for_clients_that_offer_it() {
    let mut serve =
        Serve::start(&["--listen", "127.0.0.1:0", "--permessage-deflate", "--deflate-max-connections=1"]);
    let port = serve.port();
    let mut browser = ClientOptions::default();
    browser.config.ws.permessage_deflate = Some(multipeer::ws::deflate::DeflateConfig::DEFAULT);
    let mut players = Players::join_with(port, &[browser.clone(), browser, ClientOptions::default()]);
    let agreed: Vec<bool> =
        players.clients.iter().map(|c| c.peer().connection().permessage_deflate().is_some()).collect();
    assert_eq!(agreed.iter().filter(|&&a| a).count(), 1, "{agreed:?}");
    let state = br#"{"players":[{"name":"a","x":1},{"name":"b","x":2}],"chat":"hello"}"#.repeat(30);
    let (from, to) = (agreed.iter().position(|&a| a).unwrap(), 2);
    let to_id = players.clients[to].peer().unique_id().unwrap();
    players.clients[from].peer_mut().set_target_peer(Target::Peer(to_id));
    players.clients[from].peer_mut().put_packet(&state).unwrap();
    let from_id = players.clients[from].peer().unique_id().unwrap();
    assert!(players.drive_until(|p| p.packets[to].contains(&(from_id, state.clone()))));
    let stats = players.clients[from].peer().connection().permessage_deflate_stats().unwrap();
    assert!(stats.messages_compressed >= 1, "{stats:?}");
    let status = serve.wait_for("compressing 1 conns");
    assert!(status.contains("KiB"), "{status}");
}
