//! Hostile clients against the WebRTC lobby (signalling) server on mio, while an honest host
//! and guest keep relaying through it.
//!
//! Each attack must close the attacker with the exact close code and reason (RFC 6455 codes for
//! WebSocket violations, 4000 with the demo's reason for signalling ones), release its
//! connection (the server's count returns to the two honest ones and the socket ends), leave
//! the honest lobby working, and allocate nothing from a length the attacker claims.

use core::time::Duration;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use multipeer::signaling::{LobbyConfig, LobbyEvent, join_message, parse_server_message, seal_message};
use multipeer_mio::{ListenAddr, Lobby, LobbyOptions, LobbyStats, RunEnd, Stop};
use multipeer_std::{ClientOptions, WebSocket};
use multipeer_tests::hostile::raw::{End, READ_LIMIT, Raw, frame, header, request};

const WAIT: Duration = Duration::from_secs(5);
const TEXT: u8 = 0x1;

/// The lobby on its own thread, publishing (connections, lobbies) after every wake-up.
struct Running {
    addr: core::net::SocketAddr,
    stop: Stop,
    counts: Arc<Mutex<(usize, usize)>>,
    thread: Option<JoinHandle<LobbyStats>>,
}

impl Running {
    fn start(lobby: LobbyConfig) -> Self {
        Self::start_with(LobbyOptions { lobby, ..LobbyOptions::default() })
    }

    fn start_with(options: LobbyOptions) -> Self {
        let mut server = Lobby::bind(&[ListenAddr::One("127.0.0.1:0".parse().unwrap())], options).unwrap();
        let addr = server.local_addrs()[0];
        let stop = Stop::new();
        let flag = stop.clone();
        let counts = Arc::new(Mutex::new((0, 0)));
        let published = Arc::clone(&counts);
        let thread = std::thread::spawn(move || {
            let end = server
                .run(&flag, Some(Duration::from_secs(60)), |s| {
                    *published.lock().unwrap() = (s.connection_count(), s.core().lobbies());
                    Some(Duration::from_millis(5))
                })
                .unwrap();
            assert_eq!(end, RunEnd::Stopped);
            assert!(server.is_closed(), "{} connections left", server.connection_count());
            server.stats()
        });
        Self { addr, stop, counts, thread: Some(thread) }
    }

    fn client(&self) -> WebSocket {
        WebSocket::connect(&format!("ws://{}", self.addr), &ClientOptions::new()).unwrap()
    }

    /// Waits until the server holds `connections` connections and `lobbies` lobbies.
    fn wait_counts(&self, connections: usize, lobbies: usize, what: &str) {
        let end = Instant::now() + WAIT;
        loop {
            let now = *self.counts.lock().unwrap();
            if now == (connections, lobbies) {
                return;
            }
            assert!(Instant::now() < end, "{what}: (connections, lobbies) = {now:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
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

/// Joins (or creates, with "") a lobby; returns the id and the lobby name.
fn join(ws: &mut WebSocket, lobby: &str) -> (i32, String) {
    ws.send_text(&join_message(lobby, true)).unwrap();
    let LobbyEvent::Id { id, .. } = next(ws) else { panic!("no id") };
    loop {
        match next(ws) {
            LobbyEvent::PeerConnected(_) => {}
            LobbyEvent::Joined(name) => return (id.get(), name),
            other => panic!("{other:?}"),
        }
    }
}

fn text(payload: &[u8]) -> Vec<u8> {
    frame(true, 0, TEXT, payload)
}

/// The host offers to the guest and the guest answers: the honest lobby still works.
fn honest_round(host: &mut WebSocket, guest: &mut WebSocket, guest_id: i32, round: usize) {
    host.send_text(&format!("{{\"type\":4,\"id\":{guest_id},\"data\":\"offer {round}\"}}")).unwrap();
    let LobbyEvent::Offer { from, sdp } = next(guest) else { panic!("round {round}: no offer") };
    assert_eq!((from.get(), sdp), (1, format!("offer {round}")));
    guest.send_text(&format!("{{\"type\":5,\"id\":1,\"data\":\"answer {round}\"}}")).unwrap();
    let LobbyEvent::Answer { from, sdp } = next(host) else { panic!("round {round}: no answer") };
    assert_eq!((from.get(), sdp), (guest_id, format!("answer {round}")));
}

/// Reads the attacker's Close (skipping what came before it) and the end of its connection.
fn expect_close(raw: &mut Raw, code: u16, reason: &str, what: &str) {
    let (close, _) = raw.read_close(READ_LIMIT).unwrap_or_else(|e| panic!("{what}: no Close: {e}"));
    assert_eq!((close.close_code(), close.close_reason().as_str()), (Some(code), reason), "{what}");
    // Answer the Close as a client must, so the server may end the TCP connection at once.
    let _ = raw.send(&frame(true, 0, 0x8, &code.to_be_bytes()));
    let (end, _) = raw.wait_end(READ_LIMIT).unwrap_or_else(|e| panic!("{what}: still open: {e}"));
    assert!(matches!(end, End::Eof | End::Reset), "{what}");
}

#[test]
fn every_attack_on_the_lobby_closes_the_attacker_alone() {
    let lobby = Running::start(LobbyConfig { max_lobbies: 2, ..LobbyConfig::default() });
    let mut host = lobby.client();
    let (_, name) = join(&mut host, "");
    let mut guest = lobby.client();
    let (guest_id, _) = join(&mut guest, &name);
    let LobbyEvent::PeerConnected(_) = next(&mut host) else { panic!("host not told of the guest") };
    lobby.wait_counts(2, 1, "honest peers");
    honest_round(&mut host, &mut guest, guest_id, 0);

    let join_honest = join_message(&name, true);
    let huge_name = join_message(&"x".repeat(60_000), true);
    // (what, messages sent after the upgrade, close code, reason).
    let attacks: Vec<(&str, Vec<Vec<u8>>, u16, &str)> = vec![
        ("invalid UTF-8 text", vec![text(b"{\"type\":\xff}")], 1007, "invalid UTF-8"),
        ("a 2^40-byte length claim", vec![header(true, 0, TEXT, Some([1, 2, 3, 4]), 1 << 40)], 1009, ""),
        ("not JSON", vec![text(b"hello")], 4000, "Invalid message format"),
        ("JSON of the wrong shape", vec![text(b"[1,2,3]")], 4000, "Invalid message format"),
        (
            "an offer before joining",
            vec![text(br#"{"type":4,"id":1,"data":"v=0"}"#)],
            4000,
            "Invalid message when not in a lobby",
        ),
        ("a lobby that does not exist", vec![text(huge_name.as_bytes())], 4000, "Lobby does not exists"),
        (
            "joining twice",
            vec![text(join_honest.as_bytes()), text(join_honest.as_bytes())],
            4000,
            "Already in a lobby",
        ),
        (
            "a relay to an id not in the lobby",
            vec![text(join_honest.as_bytes()), text(br#"{"type":4,"id":999999,"data":"v=0"}"#)],
            4000,
            "Invalid destination",
        ),
        (
            "a guest sealing the lobby",
            vec![text(join_honest.as_bytes()), text(seal_message().as_bytes())],
            4000,
            "Only host can seal the lobby",
        ),
        (
            "an unknown message type",
            vec![text(br#"{"type":99,"id":0,"data":""}"#)],
            4000,
            "Invalid message format",
        ),
    ];
    for (round, (what, messages, code, reason)) in attacks.into_iter().enumerate() {
        let mut raw = Raw::upgraded(lobby.addr);
        for m in &messages {
            raw.send(m).unwrap();
        }
        if code == 1009 {
            // The reason names the limit; the code is what a client acts on.
            let (close, _) = raw.read_close(READ_LIMIT).unwrap();
            assert_eq!(close.close_code(), Some(1009), "{what}");
            let (end, _) = raw.wait_end(READ_LIMIT).unwrap();
            assert!(matches!(end, End::Eof | End::Reset), "{what}");
        } else {
            expect_close(&mut raw, code, reason, what);
        }
        lobby.wait_counts(2, 1, what);
        // An attacker that got into the lobby was announced to the host, and its departure too.
        if messages.first() == Some(&text(join_honest.as_bytes())) {
            for seen in [&mut host, &mut guest] {
                let LobbyEvent::PeerConnected(id) = next(seen) else { panic!("{what}: no join seen") };
                let LobbyEvent::PeerDisconnected(gone) = next(seen) else { panic!("{what}: no leave seen") };
                assert_eq!(id, gone, "{what}");
            }
        }
        honest_round(&mut host, &mut guest, guest_id, round + 1);
    }

    // The lobby limit: one more lobby fits, the next creator is refused.
    let mut second_host = lobby.client();
    join(&mut second_host, "");
    lobby.wait_counts(3, 2, "a second lobby");
    let mut raw = Raw::upgraded(lobby.addr);
    raw.send(&text(join_message("", true).as_bytes())).unwrap();
    expect_close(&mut raw, 4000, "Too many lobbies open, disconnecting", "a third lobby");
    lobby.wait_counts(3, 2, "after the refused lobby");
    drop(second_host);
    lobby.wait_counts(2, 1, "the second host left");
    honest_round(&mut host, &mut guest, guest_id, 100);

    drop((host, guest));
    let stats = lobby.finish();
    assert!(stats.closed_by_lobby >= 9, "{stats:?}");
}

/// Waits for `ws` to hear that `peer` left, skipping other lobby events.
fn wait_left(ws: &mut WebSocket, peer: i32) {
    let end = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < end, "{peer} never left");
        if let LobbyEvent::PeerDisconnected(gone) = next(ws) {
            if gone.get() == peer {
                return;
            }
        }
    }
}

#[test]
fn a_member_that_stops_reading_holds_its_sender_then_is_cut_off_alone() {
    let timeout = Duration::from_secs(2);
    let lobby =
        Running::start_with(LobbyOptions { slow_peer_timeout: Some(timeout), ..LobbyOptions::default() });
    let mut host = lobby.client();
    let (_, name) = join(&mut host, "");
    let mut guest = lobby.client();
    let (guest_id, _) = join(&mut guest, &name);
    let LobbyEvent::PeerConnected(_) = next(&mut host) else { panic!("host not told of the guest") };

    // The attacker joins with a small receive window and then never reads.
    let mut attacker = Raw::try_connect_with(None, Some(4096), lobby.addr).unwrap();
    attacker.send(&request(&[])).unwrap();
    assert_eq!(attacker.read_head(READ_LIMIT).unwrap().0, 101);
    attacker.send(&text(join_message(&name, true).as_bytes())).unwrap();
    let LobbyEvent::PeerConnected(attacker_id) = next(&mut host) else { panic!("no attacker") };
    let attacker_id = attacker_id.get();
    let LobbyEvent::PeerConnected(_) = next(&mut guest) else { panic!("guest not told") };

    // Another member sends it 8 MB of offers: more than its 1 MiB queue and the kernel's
    // buffers (loopback send buffers grow to 4 MB). The sender is held back (its writes
    // block) until the attacker is cut off; its later offers are to an id no longer in the
    // lobby, which closes it with 4000, as the demo does: it is expendable here.
    let mut flooder = lobby.client();
    let (flooder_id, _) = join(&mut flooder, &name);
    let sdp = "o".repeat(1000);
    let started = Instant::now();
    for _ in 0..8000 {
        if flooder.send_text(&format!("{{\"type\":4,\"id\":{attacker_id},\"data\":\"{sdp}\"}}")).is_err() {
            break;
        }
    }
    wait_left(&mut host, attacker_id);
    wait_left(&mut guest, attacker_id);
    let cut_after = started.elapsed();
    assert!(cut_after >= timeout, "cut off after {cut_after:?}, before the slow-peer timeout");
    // The attacker finds the reason after its backlog.
    let (close, before) = attacker.read_close(Duration::from_secs(20)).unwrap();
    let reason = "slow peer: outbound queue full, not draining";
    assert_eq!((close.close_code(), close.close_reason().as_str()), (Some(1008), reason));
    assert!(before > 100, "its backlog came first: {before} frames");
    drop(flooder);
    wait_left(&mut host, flooder_id);
    wait_left(&mut guest, flooder_id);
    honest_round(&mut host, &mut guest, guest_id, 1);
    drop((host, guest));
    let stats = lobby.finish();
    assert_eq!(stats.slow_consumers, 1, "{stats:?}");
    assert!(stats.sender_waits >= 1 && stats.held_senders == 0, "{stats:?}");
}
