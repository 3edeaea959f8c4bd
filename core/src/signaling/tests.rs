//! A lobby server and mesh sessions over in-memory text, with the fake WebRTC engine.

use std::collections::BTreeMap;
use std::string::String;
use std::vec;
use std::vec::Vec;

use chacha20::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::mesh::fake::{FakeEngine, MeshHost};
use crate::mesh::{Mesh, MeshMode};
use crate::peer::{Event, MultiplayerPeer, PeerId, Target};
use crate::time::Instant;

/// A lobby server, the sessions connected to it (by connection key), and a fake engine.
struct World {
    now: Instant,
    server: LobbyServer<ChaCha8Rng>,
    sessions: BTreeMap<u64, MeshSession>,
    closed: BTreeMap<u64, (u16, &'static str)>,
    engine: FakeEngine,
}

impl MeshHost for BTreeMap<u64, MeshSession> {
    fn ids(&self) -> Vec<PeerId> {
        self.values().filter_map(|s| s.mesh().and_then(|m| m.unique_id())).collect()
    }

    fn mesh(&mut self, id: PeerId) -> Option<&mut Mesh> {
        self.values_mut()
            .find(|s| s.mesh().and_then(|m| m.unique_id()) == Some(id))
            .and_then(MeshSession::mesh_mut)
    }
}

impl World {
    fn new() -> Self {
        let mut engine = FakeEngine::new(3, 0);
        engine.forward_signals = false;
        Self {
            now: Instant::ZERO,
            server: LobbyServer::new(LobbyConfig::default(), ChaCha8Rng::seed_from_u64(4)),
            sessions: BTreeMap::new(),
            closed: BTreeMap::new(),
            engine,
        }
    }

    fn join(&mut self, conn: u64, lobby: &str, mesh: bool) {
        self.server.connect(self.now, conn);
        self.sessions.insert(conn, MeshSession::new(lobby, mesh, &[], 1));
        self.settle();
    }

    /// Moves text both ways and runs the engine until nothing moves.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            for (&conn, session) in &mut self.sessions {
                if self.closed.contains_key(&conn) {
                    continue;
                }
                while let Some(text) = session.poll_text() {
                    self.server.message(self.now, conn, &text);
                    moved = true;
                }
            }
            while let Some(output) = self.server.poll_output() {
                moved = true;
                match output {
                    LobbyOutput::Send { conn, text } => {
                        if let Some(s) = self.sessions.get_mut(&conn) {
                            s.handle_text(&text).unwrap();
                        }
                    }
                    LobbyOutput::Close { conn, code, reason } => {
                        self.closed.insert(conn, (code, reason));
                    }
                }
            }
            moved |= self.engine.step(&mut self.sessions);
            if !moved {
                return;
            }
        }
        panic!("did not settle");
    }

    fn mesh(&mut self, conn: u64) -> &mut Mesh {
        self.sessions.get_mut(&conn).and_then(MeshSession::mesh_mut).unwrap()
    }

    fn lobby(&self, conn: u64) -> String {
        self.sessions[&conn].lobby().unwrap().into()
    }
}

fn connected_peers(m: &mut Mesh) -> Vec<PeerId> {
    core::iter::from_fn(|| m.poll_event())
        .filter_map(|e| match e {
            Event::PeerConnected(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn three_party_mesh_through_the_lobby() {
    let mut w = World::new();
    w.join(1, "", true);
    let lobby = w.lobby(1);
    assert_eq!(lobby.len(), 16);
    w.join(2, &lobby, true);
    w.join(3, &lobby, true);
    let ids: Vec<PeerId> = [1, 2, 3].iter().map(|c| w.mesh(*c).unique_id().unwrap()).collect();
    assert!(ids[0].is_server(), "the lobby's creator is 1");
    assert!(ids[1] != ids[2] && ids[1].get() > 1 && ids[2].get() > 1);
    for (i, conn) in [1u64, 2, 3].into_iter().enumerate() {
        assert_eq!(w.mesh(conn).mode(), MeshMode::Mesh);
        let mut got = connected_peers(w.mesh(conn));
        got.sort();
        let mut want: Vec<_> = ids.iter().copied().filter(|p| *p != ids[i]).collect();
        want.sort();
        assert_eq!(got, want, "conn {conn}");
    }
    // Every pair exchanges a packet.
    for from in [1u64, 2, 3] {
        let m = w.mesh(from);
        m.set_target_peer(Target::Broadcast);
        m.put_packet(&[from as u8]).unwrap();
    }
    w.settle();
    for conn in [1u64, 2, 3] {
        let mut got = Vec::new();
        let m = w.mesh(conn);
        while let Some(p) = m.peek_packet() {
            got.push(p.data[0]);
            m.pop_packet();
        }
        got.sort();
        let want: Vec<u8> = [1u8, 2, 3].into_iter().filter(|c| u64::from(*c) != conn).collect();
        assert_eq!(got, want, "conn {conn}");
    }
}

#[test]
fn server_client_lobby_connects_clients_to_the_host_only() {
    let mut w = World::new();
    w.join(1, "", false);
    let lobby = w.lobby(1);
    w.join(2, &lobby, false);
    w.join(3, &lobby, false);
    assert_eq!(w.mesh(1).mode(), MeshMode::Server);
    assert_eq!(w.mesh(2).mode(), MeshMode::Client);
    assert_eq!(connected_peers(w.mesh(2)), vec![PeerId::SERVER]);
    assert_eq!(connected_peers(w.mesh(1)).len(), 2);
}

#[test]
fn the_host_leaving_closes_the_lobby_and_others_leaving_are_announced() {
    let mut w = World::new();
    w.join(1, "", true);
    let lobby = w.lobby(1);
    w.join(2, &lobby, true);
    w.join(3, &lobby, true);
    let id3 = w.mesh(3).unique_id().unwrap();
    w.server.disconnect(3);
    w.settle();
    assert!(!w.mesh(2).has_peer(id3), "PEER_DISCONNECT removed the peer");
    w.server.disconnect(1);
    w.settle();
    assert_eq!(w.closed.get(&2), Some(&(4000, "Room host has disconnected")));
    assert_eq!(w.server.lobbies(), 0);
}

#[test]
fn seal_join_timeout_and_protocol_errors() {
    let mut w = World::new();
    w.join(1, "", true);
    let lobby = w.lobby(1);
    w.join(2, &lobby, true);
    w.sessions.get_mut(&2).unwrap().seal();
    w.settle();
    assert_eq!(w.closed.get(&2), Some(&(4000, "Only host can seal the lobby")));
    w.sessions.get_mut(&1).unwrap().seal();
    w.settle();
    assert!(w.sessions[&1].is_sealed());
    w.join(4, &lobby, true);
    assert_eq!(w.closed.get(&4), Some(&(4000, "Lobby is sealed")));
    let deadline = w.server.poll_timeout().unwrap();
    assert_eq!(deadline, Instant::ZERO + core::time::Duration::from_secs(10));
    w.server.handle_timeout(deadline);
    w.settle();
    assert_eq!(w.closed.get(&1), Some(&(1000, "Seal complete")));

    // A connection that never joins is closed after a second.
    w.server.connect(w.now, 9);
    let t = w.server.poll_timeout().unwrap();
    w.server.handle_timeout(t);
    assert_eq!(
        w.server.poll_output(),
        Some(LobbyOutput::Close { conn: 9, code: 4000, reason: "Have not joined lobby yet" })
    );
    for (text, reason) in [
        ("not json", "Invalid message format"),
        (r#"{"type":4,"id":5,"data":"x"}"#, "Invalid message when not in a lobby"),
        (r#"{"type":0,"id":0,"data":"nope"}"#, "Lobby does not exists"),
    ] {
        w.server.connect(w.now, 10);
        w.server.message(w.now, 10, text);
        assert_eq!(
            w.server.poll_output(),
            Some(LobbyOutput::Close { conn: 10, code: 4000, reason }),
            "{text}"
        );
    }
    w.server.connect(w.now, 11);
    w.server.binary(11);
    assert!(matches!(w.server.poll_output(), Some(LobbyOutput::Close { conn: 11, .. })));
    assert_eq!(w.server.connections(), 0);
}

#[test]
fn relays_carry_the_senders_id_and_stay_in_the_lobby() {
    let mut server = LobbyServer::new(LobbyConfig::default(), ChaCha8Rng::seed_from_u64(9));
    let now = Instant::ZERO;
    for conn in [1, 2, 3] {
        server.connect(now, conn);
    }
    server.message(now, 1, &join_message("", true));
    let mut name = String::new();
    let mut id2 = 0;
    while let Some(out) = server.poll_output() {
        if let LobbyOutput::Send { text, .. } = out {
            if let Ok(LobbyEvent::Joined(n)) = parse_server_message(&text) {
                name = n;
            }
        }
    }
    server.message(now, 2, &join_message(&name, true));
    while let Some(out) = server.poll_output() {
        if let LobbyOutput::Send { conn: 2, text } = out {
            if let Ok(LobbyEvent::Id { id, mesh }) = parse_server_message(&text) {
                assert!(mesh);
                id2 = id.get();
            }
        }
    }
    server.message(now, 3, &join_message("", true));
    while server.poll_output().is_some() {}
    // 2 → 1 (the host, addressed as 1) arrives from 2's id; 3 cannot reach 2's lobby.
    let offer = Message::new(MessageType::Offer, 1, "sdp").encode();
    server.message(now, 2, &offer);
    let relayed = server.poll_output().unwrap();
    assert_eq!(
        relayed,
        LobbyOutput::Send { conn: 1, text: Message::new(MessageType::Offer, i64::from(id2), "sdp").encode() }
    );
    server.message(now, 3, &Message::new(MessageType::Answer, i64::from(id2), "x").encode());
    assert_eq!(
        server.poll_output(),
        Some(LobbyOutput::Close { conn: 3, code: 4000, reason: "Invalid destination" })
    );
    // Candidates round-trip through the demo's "\n<mid>\n<index>\n<candidate>" form.
    let signal = crate::mesh::Signal::Candidate {
        peer: PeerId::SERVER,
        mid: "0".into(),
        index: 0,
        candidate: "candidate:1 1 UDP 1 127.0.0.1 5000 typ host".into(),
    };
    let text = signal_message(&signal).unwrap();
    let Message { data, .. } = Message::decode(&text).unwrap();
    let relayed = Message::new(MessageType::Candidate, 7, &data).encode();
    assert_eq!(
        parse_server_message(&relayed),
        Ok(LobbyEvent::Candidate {
            from: PeerId::new(7).unwrap(),
            mid: "0".into(),
            index: 0,
            candidate: "candidate:1 1 UDP 1 127.0.0.1 5000 typ host".into()
        })
    );
}

/// A lobby server that lies: ids out of range, a second id, signalling for peers that are not
/// in the mesh, malformed candidates, and a flood of events the application never reads.
#[test]
fn a_hostile_lobby_server_cannot_break_the_session() {
    let text = |kind: i64, id: i64, data: &str| {
        Message::new(MessageType::from_number(kind).unwrap(), id, data).encode()
    };
    let mut s = MeshSession::new("", true, &[], 1);
    assert_eq!(s.poll_text(), Some(join_message("", true)));
    for bad in [
        text(1, 0, "true"),
        text(1, -5, "true"),
        text(1, i64::from(u32::MAX) + 1, "true"),
        "{\"type\":1}".into(),
        text(6, 2, "only\ntwo"),
        text(6, 2, "\n0\nnot-a-number\ncandidate:1"),
    ] {
        assert_eq!(s.handle_text(&bad), Err(InvalidMessage), "{bad}");
        assert!(s.mesh().is_none(), "{bad}: nothing was created");
    }
    s.handle_text(&text(1, 7, "true")).unwrap();
    let id = s.mesh().unwrap().unique_id();
    assert_eq!(id, PeerId::new(7));
    // A second id would replace the mesh and strand its peers: refused, the mesh stays.
    s.handle_text(&text(2, 9, "")).unwrap();
    assert_eq!(s.handle_text(&text(1, 3, "true")), Err(InvalidMessage));
    assert_eq!(s.mesh().unwrap().unique_id(), id);
    assert!(s.mesh().unwrap().has_peer(PeerId::new(9).unwrap()));
    // Signalling for peers not in the mesh, and for ourselves, is ignored.
    for unknown in
        [text(4, 11, "v=0"), text(5, 7, "v=0"), text(6, 12, "\n0\n0\ncandidate:1 1 udp 1 1.2.3.4 5 typ host")]
    {
        s.handle_text(&unknown).unwrap();
    }
    assert!(!s.mesh().unwrap().has_peer(PeerId::new(11).unwrap()));
    // A flood the application never reads: the queue holds its bound, the rest is counted.
    let flood = 3 * MAX_LOBBY_EVENTS as u64;
    for i in 0..flood {
        s.handle_text(&text(0, 0, &std::format!("lobby {i}"))).unwrap();
    }
    let kept = core::iter::from_fn(|| s.poll_lobby_event()).count() as u64;
    assert_eq!(kept, MAX_LOBBY_EVENTS as u64);
    // Events before the flood: the id, the peer, the three ignored signals.
    assert_eq!(s.unreported_events(), flood + 5 - kept);
    assert_eq!(s.lobby(), Some(std::format!("lobby {}", flood - 1).as_str()), "every event was acted on");
}
