//! A server and several clients over in-memory transports.

use std::vec;
use std::vec::Vec;

use chacha20::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::buffer::VecStorage;
use crate::peer::{Client, ClientConfig, DropReason};

type TestClient = Client<VecStorage, ChaCha8Rng>;

struct Net {
    now: Instant,
    server: Server<ChaCha8Rng>,
    clients: Vec<(ConnId, TestClient)>,
}

impl Net {
    fn new(protocol: Protocol) -> Self {
        let config = ServerConfig { protocol, ..ServerConfig::default() };
        Self {
            now: Instant::ZERO,
            server: Server::new(config, ChaCha8Rng::seed_from_u64(1)),
            clients: Vec::new(),
        }
    }

    fn connect(&mut self) -> usize {
        let protocol = self.server.config().protocol;
        let seed = 100 + self.clients.len() as u64;
        let config = ClientConfig { protocol, ..ClientConfig::default() };
        let client =
            Client::create(self.now, "ws://127.0.0.1:9080/", config, ChaCha8Rng::seed_from_u64(seed))
                .unwrap();
        let conn = self.server.accept(self.now, None).unwrap();
        self.clients.push((conn, client));
        self.pump();
        self.clients.len() - 1
    }

    /// Moves bytes until nothing moves.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            for (conn, client) in &mut self.clients {
                if let Some(bytes) = client.poll_transmit().map(<[u8]>::to_vec) {
                    let n = self.server.handle_input(self.now, *conn, &bytes).unwrap_or(bytes.len());
                    client.consume_transmit(n);
                    moved |= n > 0;
                }
            }
            while let Some(conn) = self.server.poll_transmit() {
                let bytes = self.server.transmit(conn).unwrap().to_vec();
                self.server.consume_transmit(conn, bytes.len()).unwrap();
                if let Some((_, client)) = self.clients.iter_mut().find(|(c, _)| *c == conn) {
                    let n = client.handle_input(self.now, &bytes);
                    assert_eq!(n, bytes.len(), "client back-pressure in this test");
                }
                moved = true;
            }
            while let Some(conn) = self.server.poll_release() {
                if let Some((_, client)) = self.clients.iter_mut().find(|(c, _)| *c == conn) {
                    client.handle_eof(self.now);
                }
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("network did not settle");
    }

    fn client(&mut self, i: usize) -> &mut TestClient {
        &mut self.clients[i].1
    }

    fn id(&self, i: usize) -> PeerId {
        self.clients[i].1.unique_id().unwrap()
    }
}

fn drain<P: MultiplayerPeer>(peer: &mut P) -> Vec<Event> {
    core::iter::from_fn(|| peer.poll_event()).collect()
}

fn packets<P: MultiplayerPeer>(peer: &mut P) -> Vec<(PeerId, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(p) = peer.peek_packet() {
        out.push((p.info.from, p.data.to_vec()));
        peer.pop_packet();
    }
    out
}

fn scenario(protocol: Protocol) {
    let mut net = Net::new(protocol);
    let a = net.connect();
    let b = net.connect();
    let c = net.connect();
    let (ia, ib, ic) = (net.id(a), net.id(b), net.id(c));
    assert!(ia != ib && ib != ic && ia != ic);
    assert_eq!(
        drain(&mut net.server),
        vec![Event::PeerConnected(ia), Event::PeerConnected(ib), Event::PeerConnected(ic)]
    );
    // Each client learns the server, joins, then sees the others.
    let ev = drain(net.client(a));
    assert_eq!(ev[..2], [Event::PeerConnected(PeerId::SERVER), Event::ConnectionSucceeded]);
    assert_eq!(ev[2..], [Event::PeerConnected(ib), Event::PeerConnected(ic)]);
    let ev = drain(net.client(c));
    assert!(ev.contains(&Event::PeerConnected(ia)) && ev.contains(&Event::PeerConnected(ib)));
    drain(net.client(b));

    // Client → server, client → client, broadcast, all-but-one, all-but-server.
    net.client(a).set_target_peer(Target::Server);
    net.client(a).put_packet(b"to-server").unwrap();
    net.client(a).set_target_peer(Target::Peer(ib));
    net.client(a).put_packet(b"a-to-b").unwrap();
    net.client(a).set_target_peer(Target::Broadcast);
    net.client(a).put_packet(b"a-to-all").unwrap();
    net.client(a).set_target_peer(Target::AllExcept(ib));
    net.client(a).put_packet(b"a-to-all-but-b").unwrap();
    net.client(a).set_target_peer(Target::AllExcept(PeerId::SERVER));
    net.client(a).put_packet(b"a-to-clients").unwrap();
    net.pump();
    let got = |v: &[(PeerId, Vec<u8>)]| v.iter().map(|(f, d)| (*f, d.clone())).collect::<Vec<_>>();
    let server_got = got(&packets(&mut net.server));
    assert_eq!(
        server_got,
        vec![(ia, b"to-server".to_vec()), (ia, b"a-to-all".to_vec()), (ia, b"a-to-all-but-b".to_vec())]
    );
    assert_eq!(
        got(&packets(net.client(b))),
        vec![(ia, b"a-to-b".to_vec()), (ia, b"a-to-all".to_vec()), (ia, b"a-to-clients".to_vec())]
    );
    assert_eq!(
        got(&packets(net.client(c))),
        vec![(ia, b"a-to-all".to_vec()), (ia, b"a-to-all-but-b".to_vec()), (ia, b"a-to-clients".to_vec())]
    );
    assert!(packets(net.client(a)).is_empty());

    // Server → one, → all.
    net.server.set_target_peer(Target::Peer(ic));
    net.server.put_packet(b"srv-to-c").unwrap();
    net.server.set_target_peer(Target::Broadcast);
    net.server.put_packet(b"srv-all").unwrap();
    net.pump();
    assert_eq!(
        got(&packets(net.client(c))),
        vec![(PeerId::SERVER, b"srv-to-c".to_vec()), (PeerId::SERVER, b"srv-all".to_vec())]
    );
    assert_eq!(got(&packets(net.client(a))), vec![(PeerId::SERVER, b"srv-all".to_vec())]);
    packets(net.client(b));

    // An unknown target is dropped and reported, never silently.
    let ghost = PeerId::new(424242).unwrap();
    net.client(a).set_target_peer(Target::Peer(ghost));
    net.client(a).put_packet(b"lost?").unwrap();
    net.pump();
    assert_eq!(
        drain(&mut net.server),
        vec![Event::PacketDropped { from: Some(ia), reason: DropReason::UnknownTarget(424242) }]
    );

    // B leaves: the server and the others hear of it.
    let now = net.now;
    net.client(b).close(now);
    net.pump();
    let ev = drain(&mut net.server);
    assert!(matches!(ev.as_slice(), [Event::PeerDisconnected { peer, .. }] if *peer == ib), "{ev:?}");
    assert!(
        drain(net.client(a)).iter().any(|e| matches!(e, Event::PeerDisconnected { peer, .. } if *peer == ib))
    );
    assert!(!net.server.has_peer(ib));
    assert_eq!(net.server.connection_count(), 2);
}

#[test]
fn godot4_relay_three_clients() {
    scenario(Protocol::Godot4);
}

#[test]
fn godot3_three_clients() {
    scenario(Protocol::Godot3);
}

#[test]
fn godot4_join_bytes_match_the_reference() {
    // godot-protocol.md §7.3: a new client sees its id, then one ADD_PEER per existing peer.
    let mut net = Net::new(Protocol::Godot4);
    let a = net.connect();
    let ia = net.id(a);
    let conn = net.server.accept(net.now, None).unwrap();
    let mut raw = ws::Connection::<VecStorage, ChaCha8Rng>::client(
        net.now,
        &ws::handshake::ClientRequest::from_url(&ws::handshake::Url::parse("ws://h/").unwrap()),
        ws::Config::GODOT,
        ChaCha8Rng::seed_from_u64(9),
    )
    .unwrap();
    for _ in 0..4 {
        if let Some(b) = raw.poll_transmit().map(<[u8]>::to_vec) {
            net.server.handle_input(net.now, conn, &b).unwrap();
            raw.consume_transmit(b.len());
        }
        if let Some(b) = net.server.transmit(conn).map(<[u8]>::to_vec) {
            net.server.consume_transmit(conn, b.len()).unwrap();
            raw.handle_input(net.now, &b);
        }
    }
    let mut messages = Vec::new();
    while let Some(m) = raw.peek_message() {
        messages.push(m.data.to_vec());
        raw.pop_message();
    }
    let new_id = net.server.peer_of(conn).unwrap();
    let mut add = vec![7, 1];
    add.extend_from_slice(&ia.get().to_le_bytes());
    assert_eq!(messages, vec![new_id.get().to_le_bytes().to_vec(), add]);
}

#[test]
fn ids_are_in_range_and_unique() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10_000 {
        let id = generate_unique_id(&mut rng, |id| seen.contains(&id)).unwrap();
        assert!(id.get() >= 2);
        assert!(seen.insert(id));
    }
}
