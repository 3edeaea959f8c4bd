//! Model-based test of multiplayer routing: random joins, leaves and sends with every kind of
//! target, in both protocols, checked against a reference model of who must receive what.
//! Nothing may be lost, duplicated or delivered to the wrong peer; every drop is reported.

#![cfg(feature = "alloc")]

use std::collections::{BTreeMap, BTreeSet};

use chacha20::ChaCha8Rng;
use multipeer::peer::{
    Client, ClientConfig, ConnId, DropReason, Event, MultiplayerPeer, PeerId, Protocol, PutError, Server,
    ServerConfig, Target,
};
use multipeer::{Instant, VecStorage};
use proptest::prelude::*;
use rand_core::SeedableRng;

type TestClient = Client<VecStorage, ChaCha8Rng>;

/// Who sends, and where to: indices refer to clients present when the op runs.
#[derive(Debug, Clone)]
enum Op {
    Join,
    Leave(usize),
    Send { from: Option<usize>, target: TargetChoice },
}

#[derive(Debug, Clone, Copy)]
enum TargetChoice {
    Broadcast,
    Server,
    Client(usize),
    AllExceptClient(usize),
    AllExceptServer,
    Ghost,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let target = prop_oneof![
        Just(TargetChoice::Broadcast),
        Just(TargetChoice::Server),
        (0usize..8).prop_map(TargetChoice::Client),
        (0usize..8).prop_map(TargetChoice::AllExceptClient),
        Just(TargetChoice::AllExceptServer),
        Just(TargetChoice::Ghost),
    ];
    let op = prop_oneof![
        3 => Just(Op::Join),
        1 => (0usize..8).prop_map(Op::Leave),
        6 => (proptest::option::of(0usize..8), target).prop_map(|(from, target)| Op::Send { from, target }),
    ];
    proptest::collection::vec(op, 1..40)
}

struct World {
    now: Instant,
    server: Server<ChaCha8Rng>,
    clients: Vec<(ConnId, TestClient)>,
    seed: u64,
}

impl World {
    fn new(protocol: Protocol) -> Self {
        let config = ServerConfig { protocol, ..ServerConfig::default() };
        Self {
            now: Instant::ZERO,
            server: Server::new(config, ChaCha8Rng::seed_from_u64(1)),
            clients: Vec::new(),
            seed: 10,
        }
    }

    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for (conn, client) in &mut self.clients {
                if let Some(bytes) = client.poll_transmit().map(<[u8]>::to_vec) {
                    let n = self.server.handle_input(self.now, *conn, &bytes).unwrap_or(bytes.len());
                    client.consume_transmit(n);
                    moved |= n > 0;
                }
                while let Some(bytes) = self.server.transmit(*conn).map(<[u8]>::to_vec) {
                    self.server.consume_transmit(*conn, bytes.len()).unwrap();
                    assert_eq!(client.handle_input(self.now, &bytes), bytes.len());
                    moved = true;
                }
            }
            while self.server.poll_transmit().is_some() {}
            while let Some(conn) = self.server.poll_release() {
                if let Some((_, c)) = self.clients.iter_mut().find(|(id, _)| *id == conn) {
                    c.handle_eof(self.now);
                }
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("network did not settle");
    }
}

/// Everything a peer reported: packets (sender, payload) and peers it believes connected.
#[derive(Default)]
struct Seen {
    packets: Vec<(PeerId, Vec<u8>)>,
    peers: BTreeSet<PeerId>,
    drops: Vec<DropReason>,
}

fn observe<P: MultiplayerPeer>(peer: &mut P, seen: &mut Seen) {
    // Events first: packets behind system messages appear once their events are taken.
    loop {
        while let Some(event) = peer.poll_event() {
            match event {
                Event::PeerConnected(id) => assert!(seen.peers.insert(id), "{id} connected twice"),
                Event::PeerDisconnected { peer, .. } => {
                    assert!(seen.peers.remove(&peer), "{peer} left twice")
                }
                Event::PacketDropped { reason, .. } => seen.drops.push(reason),
                _ => {}
            }
        }
        let Some(packet) = peer.peek_packet() else { break };
        seen.packets.push((packet.info.from, packet.data.to_vec()));
        peer.pop_packet();
    }
}

fn run(protocol: Protocol, ops: &[Op]) {
    let mut world = World::new(protocol);
    let mut server_seen = Seen::default();
    // Per client (by join order): what it saw; and the model's expectations.
    let mut seen: Vec<Seen> = Vec::new();
    let mut expect: Vec<Vec<(PeerId, Vec<u8>)>> = Vec::new();
    let mut expect_server: Vec<(PeerId, Vec<u8>)> = Vec::new();
    let mut expect_drops = 0;
    let mut present: Vec<usize> = Vec::new();
    let mut ids: BTreeMap<usize, PeerId> = BTreeMap::new();
    let mut counter = 0u16;

    for op in ops {
        match *op {
            Op::Join => {
                world.seed += 1;
                let config = ClientConfig { protocol, ..ClientConfig::default() };
                let client = Client::create(
                    world.now,
                    "ws://127.0.0.1:1/",
                    config,
                    ChaCha8Rng::seed_from_u64(world.seed),
                )
                .unwrap();
                let conn = world.server.accept(world.now, None).unwrap();
                world.clients.push((conn, client));
                seen.push(Seen::default());
                expect.push(Vec::new());
                world.pump();
                let k = world.clients.len() - 1;
                ids.insert(k, world.clients[k].1.unique_id().expect("joined"));
                present.push(k);
            }
            Op::Leave(i) => {
                if present.is_empty() {
                    continue;
                }
                let k = present.remove(i % present.len());
                let now = world.now;
                world.clients[k].1.close(now);
                world.pump();
            }
            Op::Send { from, target } => {
                counter += 1;
                let payload = vec![3, (counter >> 8) as u8, counter as u8];
                let pick = |i: usize| present.get(i % present.len().max(1)).copied();
                let sender = match from {
                    Some(i) if !present.is_empty() => pick(i),
                    _ => None,
                };
                let target_peer = |k: usize| ids[&k];
                let ghost = PeerId::new(0x7fff_fff0).unwrap();
                let target = match target {
                    TargetChoice::Broadcast => Target::Broadcast,
                    TargetChoice::Server => Target::Server,
                    TargetChoice::Client(i) => {
                        pick(i).map_or(Target::Peer(ghost), |k| Target::Peer(target_peer(k)))
                    }
                    TargetChoice::AllExceptClient(i) => {
                        pick(i).map_or(Target::AllExcept(ghost), |k| Target::AllExcept(target_peer(k)))
                    }
                    TargetChoice::AllExceptServer => Target::AllExcept(PeerId::SERVER),
                    TargetChoice::Ghost => Target::Peer(ghost),
                };
                let source = sender.map_or(PeerId::SERVER, target_peer);
                let result = match sender {
                    None => {
                        world.server.set_target_peer(target);
                        world.server.put_packet(&payload)
                    }
                    Some(k) => {
                        let c = &mut world.clients[k].1;
                        c.set_target_peer(target);
                        c.put_packet(&payload)
                    }
                };
                // The model: who must get it.
                let server_gets = sender.is_some() && target.includes(PeerId::SERVER, source);
                match (sender, target) {
                    (None, Target::Server) => assert_eq!(result, Err(PutError::UnknownPeer(PeerId::SERVER))),
                    (None, Target::Peer(p)) if p == ghost => {
                        assert_eq!(result, Err(PutError::UnknownPeer(p)))
                    }
                    (Some(_), Target::Peer(p)) if p == ghost || p == source => {
                        assert_eq!(result, Ok(()));
                        expect_drops += 1;
                    }
                    _ => assert_eq!(result, Ok(()), "{sender:?} → {target:?}"),
                }
                if result.is_ok() {
                    for &k in &present {
                        if target.includes(target_peer(k), source) {
                            expect[k].push((source, payload.clone()));
                        }
                    }
                    if server_gets {
                        expect_server.push((source, payload.clone()));
                    }
                }
                world.pump();
            }
        }
        observe(&mut world.server, &mut server_seen);
        for (k, (_, client)) in world.clients.iter_mut().enumerate() {
            observe(client, &mut seen[k]);
        }
        // Membership: the server and every present client agree with the model.
        let members: BTreeSet<PeerId> = present.iter().map(|k| ids[k]).collect();
        assert_eq!(server_seen.peers, members);
        for &k in &present {
            let mut others: BTreeSet<PeerId> = members.clone();
            others.remove(&ids[&k]);
            others.insert(PeerId::SERVER);
            assert_eq!(seen[k].peers, others, "client {k}'s view of the peers");
        }
    }
    assert_eq!(server_seen.packets, expect_server, "server deliveries");
    for k in 0..seen.len() {
        assert_eq!(seen[k].packets, expect[k], "deliveries to client {k}");
    }
    assert_eq!(server_seen.drops.len(), expect_drops, "every drop is reported: {:?}", server_seen.drops);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn godot4_relay_routes_like_the_model(ops in ops()) {
        run(Protocol::Godot4, &ops);
    }

    #[test]
    fn godot3_routes_like_the_model(ops in ops()) {
        run(Protocol::Godot3, &ops);
    }
}
