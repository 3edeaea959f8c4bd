//! Two machines talking through the core WebSocket [`Server`] and [`Client`]s in memory: our
//! machine as the server and as the clients, with and without authentication.

use std::vec;
use std::vec::Vec;

use chacha20::ChaCha8Rng;
use rand_core::SeedableRng;

use super::{T0, id, probe};
use crate::buffer::VecStorage;
use crate::peer::{Client, ClientConfig, ConnId, PeerId, Protocol, Server, ServerConfig, Target};
use crate::scene::{RpcCall, RsetCall, SceneConfig, SceneEvent, SceneMultiplayer};
use crate::time::Instant;
use crate::variant::Variant;

type TestClient = Client<VecStorage, ChaCha8Rng>;

pub(super) struct Far {
    conn: ConnId,
    pub(super) client: TestClient,
    pub(super) mp: SceneMultiplayer,
    pending: Vec<u8>,
    pub(super) events: Vec<SceneEvent>,
    /// Reads nothing the server sends (a stalled receiver).
    pub(super) stalled: bool,
}

pub(super) struct World {
    pub(super) now: Instant,
    pub(super) server: Server<ChaCha8Rng>,
    pub(super) mp: SceneMultiplayer,
    pub(super) events: Vec<SceneEvent>,
    pub(super) clients: Vec<Far>,
}

/// The transport protocol of the machine's Godot version.
fn protocol(config: SceneConfig) -> Protocol {
    if config.version.is_godot4() { Protocol::Godot4 } else { Protocol::Godot3 }
}

fn scene(config: SceneConfig) -> SceneMultiplayer {
    let mut mp = SceneMultiplayer::new(config);
    mp.add_node("Probe", probe());
    mp
}

impl World {
    fn new(config: SceneConfig) -> Self {
        Self::with(config, ServerConfig::default())
    }

    /// A world whose server transport has `transport`'s settings.
    pub(super) fn with(config: SceneConfig, transport: ServerConfig) -> Self {
        // The machine speaks SYS itself: the transport's relay is off (3.x's is always on).
        let server = Server::new(
            ServerConfig { relay: false, protocol: protocol(config), ..transport },
            ChaCha8Rng::seed_from_u64(1),
        );
        Self { now: T0, server, mp: scene(config), events: Vec::new(), clients: Vec::new() }
    }

    pub(super) fn connect(&mut self, config: SceneConfig) -> usize {
        let conn = self.server.accept(self.now, None).unwrap();
        let seed = 100 + self.clients.len() as u64;
        let client_config =
            ClientConfig { relay: false, protocol: protocol(config), ..ClientConfig::default() };
        let client =
            Client::create(self.now, "ws://127.0.0.1:9080/", client_config, ChaCha8Rng::seed_from_u64(seed))
                .unwrap();
        self.clients.push(Far {
            conn,
            client,
            mp: scene(config),
            pending: Vec::new(),
            events: Vec::new(),
            stalled: false,
        });
        self.run();
        self.clients.len() - 1
    }

    /// Moves bytes and packets until nothing moves.
    pub(super) fn run(&mut self) {
        let mut idle = 0;
        for _ in 0..1000 {
            let mut moved = false;
            for far in &mut self.clients {
                if let Some(bytes) = far.client.poll_transmit().map(<[u8]>::to_vec) {
                    let n = self.server.handle_input(self.now, far.conn, &bytes).unwrap_or(bytes.len());
                    far.client.consume_transmit(n);
                    moved |= n > 0;
                }
                if let Some(bytes) =
                    self.server.transmit(far.conn).filter(|_| !far.stalled).map(<[u8]>::to_vec)
                {
                    self.server.consume_transmit(far.conn, bytes.len()).unwrap();
                    far.pending.extend_from_slice(&bytes);
                    moved = true;
                }
                if !far.pending.is_empty() {
                    let n = far.client.handle_input(self.now, &far.pending);
                    far.pending.drain(..n);
                    moved |= n > 0;
                }
            }
            while self.server.poll_transmit().is_some() {}
            while self.server.poll_release().is_some() {}
            self.mp.pump(self.now, &mut self.server);
            while let Some(event) = self.mp.poll_event() {
                self.events.push(event);
                moved = true;
            }
            for far in &mut self.clients {
                far.mp.pump(self.now, &mut far.client);
                while let Some(event) = far.mp.poll_event() {
                    far.events.push(event);
                    moved = true;
                }
            }
            // A pump's packets move in the next round.
            idle = if moved { 0 } else { idle + 1 };
            if idle == 2 {
                return;
            }
        }
        panic!("the network never settled");
    }

    pub(super) fn advance(&mut self, by: core::time::Duration) {
        self.now += by;
        self.server.handle_timeout(self.now);
        for far in &mut self.clients {
            far.client.handle_timeout(self.now);
        }
        self.run();
    }

    pub(super) fn client_id(&self, index: usize) -> PeerId {
        self.clients[index].mp.unique_id().unwrap()
    }
}

fn calls(events: &[SceneEvent]) -> Vec<(PeerId, &str, &[Variant])> {
    events
        .iter()
        .filter_map(|e| match e {
            SceneEvent::Rpc(RpcCall { sender, method, args, .. }) => {
                Some((*sender, method.as_str(), &args[..]))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn rpcs_both_ways_and_through_the_relay() {
    let config = SceneConfig::default();
    let mut world = World::new(config);
    let a = world.connect(config);
    let b = world.connect(config);
    let (ida, idb) = (world.client_id(a), world.client_id(b));
    assert!(world.clients[a].events.contains(&SceneEvent::ConnectedToServer));
    assert!(world.clients[a].events.contains(&SceneEvent::PeerConnected(idb)), "announced by the relay");
    assert!(world.clients[b].events.contains(&SceneEvent::PeerConnected(ida)));
    assert_eq!(world.mp.peers().collect::<Vec<_>>().len(), 2);

    // Client → server, first (full path) and cached.
    for n in 0..3 {
        world.clients[a].mp.rpc(Target::Server, "Probe", "ping", &[n.into()]).unwrap();
    }
    world.run();
    let expected: Vec<Variant> = (0..3).map(Variant::from).collect();
    let got = calls(&world.events);
    assert_eq!(got.len(), 3);
    for (call, value) in got.iter().zip(&expected) {
        assert_eq!((call.0, call.1, call.2), (ida, "ping", core::slice::from_ref(value)));
    }
    // Server → broadcast and −id.
    world.mp.rpc(Target::Broadcast, "Probe", "auth_only", &["all".into()]).unwrap();
    world.mp.rpc(Target::AllExcept(ida), "Probe", "auth_only", &["not a".into()]).unwrap();
    world.run();
    assert_eq!(calls(&world.clients[a].events), vec![(PeerId::SERVER, "auth_only", &["all".into()][..])]);
    assert_eq!(calls(&world.clients[b].events).len(), 2);
    assert_eq!(world.clients[b].mp.remote_sender_id(), Some(PeerId::SERVER));

    // Client → client through the server relay, and a client broadcast (server included).
    world.clients[a].mp.rpc(Target::Peer(idb), "Probe", "ping", &["direct".into()]).unwrap();
    world.clients[a].mp.rpc(Target::Broadcast, "Probe", "echo", &["everyone".into()]).unwrap();
    world.run();
    let at_b = calls(&world.clients[b].events);
    assert_eq!(at_b[2..], [(ida, "ping", &["direct".into()][..]), (ida, "echo", &["everyone".into()][..])]);
    assert_eq!(calls(&world.events)[3..], [(ida, "echo", &["everyone".into()][..])]);
    assert_eq!(calls(&world.clients[a].events)[1..], [(ida, "echo", &["everyone".into()][..])], "call_local");

    // A client calling an authority method is refused on the server.
    world.clients[a].mp.rpc(Target::Server, "Probe", "auth_only", &[1.into()]).unwrap();
    world.run();
    assert!(world.events.iter().any(|e| matches!(e, SceneEvent::Refused { from, .. } if *from == ida)));

    // Raw bytes, and a departure announced to the other client.
    world.clients[b]
        .mp
        .send_bytes(Target::Peer(ida), b"raw", crate::peer::TransferMode::Reliable, 0)
        .unwrap();
    world.run();
    assert!(world.clients[a].events.contains(&SceneEvent::PeerPacket { from: idb, data: b"raw".to_vec() }));
    let now = world.now;
    world.clients[b]
        .client
        .disconnect_peer_with(now, PeerId::SERVER, crate::ws::CloseCode::NORMAL, "", false)
        .unwrap();
    world.advance(core::time::Duration::from_millis(10));
    assert!(world.events.contains(&SceneEvent::PeerDisconnected(idb)));
    assert!(world.clients[a].events.contains(&SceneEvent::PeerDisconnected(idb)));
}

#[test]
fn authentication_admits_and_times_out() {
    let auth = SceneConfig { auth: true, ..SceneConfig::default() };
    let mut world = World::new(auth);
    let a = world.connect(auth);
    let ida = world.client_id(a);
    assert_eq!(world.events, vec![SceneEvent::PeerAuthenticating(ida)]);
    assert_eq!(world.clients[a].events, vec![SceneEvent::PeerAuthenticating(PeerId::SERVER)]);
    world.clients[a].mp.send_auth(PeerId::SERVER, b"token").unwrap();
    world.clients[a].mp.complete_auth(PeerId::SERVER).unwrap();
    world.run();
    assert_eq!(world.events[1..], [SceneEvent::AuthData { peer: ida, data: b"token".to_vec() }]);
    assert!(!world.clients[a].events.contains(&SceneEvent::ConnectedToServer));
    world.mp.complete_auth(ida).unwrap();
    world.run();
    assert_eq!(world.events[2..], [SceneEvent::PeerConnected(ida)]);
    assert_eq!(
        world.clients[a].events[1..],
        [SceneEvent::ConnectedToServer, SceneEvent::PeerConnected(PeerId::SERVER)]
    );
    world.clients[a].mp.rpc(Target::Server, "Probe", "ping", &[1.into()]).unwrap();
    world.run();
    assert_eq!(calls(&world.events).len(), 1);

    // A client that never authenticates is dropped at the timeout, on both sides.
    let b = world.connect(auth);
    let idb = world.client_id(b);
    world.advance(core::time::Duration::from_secs(2));
    assert!(!world.events.contains(&SceneEvent::PeerAuthenticationFailed(idb)));
    world.advance(core::time::Duration::from_secs(2));
    assert!(world.events.contains(&SceneEvent::PeerAuthenticationFailed(idb)));
    assert!(world.clients[b].events.contains(&SceneEvent::PeerAuthenticationFailed(PeerId::SERVER)));
    assert!(!world.clients[a].events.contains(&SceneEvent::PeerConnected(idb)), "never announced");
    assert_eq!(world.mp.peers().collect::<Vec<_>>(), vec![ida]);
    let _ = (id(1), vec![0u8]);
}

#[test]
fn godot3_rpc_and_rset_through_the_3x_transport() {
    let config = SceneConfig::godot3();
    let mut world = World::new(config);
    let a = world.connect(config);
    let b = world.connect(config);
    let (ida, idb) = (world.client_id(a), world.client_id(b));
    assert!(world.clients[a].events.contains(&SceneEvent::ConnectedToServer));
    assert!(world.clients[a].events.contains(&SceneEvent::PeerConnected(idb)), "announced by SYS_ADD");

    // Client → server: full path, then cached; an rset.
    for n in 0..3 {
        world.clients[a].mp.rpc(Target::Server, "Probe", "ping", &[n.into()]).unwrap();
        world.run();
    }
    world.clients[a].mp.rset(Target::Server, "Probe", "prop", &"v".into()).unwrap();
    world.run();
    let expected: Vec<Variant> = (0..3).map(Variant::from).collect();
    let got = calls(&world.events);
    assert_eq!(got.iter().map(|c| (c.0, c.1, c.2[0].clone())).collect::<Vec<_>>().len(), 3);
    assert!(got.iter().zip(&expected).all(|(c, v)| c.0 == ida && c.1 == "ping" && c.2 == [v.clone()]));
    let set = RsetCall { sender: ida, node: "Probe".into(), property: "prop".into(), value: "v".into() };
    assert!(world.events.contains(&SceneEvent::Rset(set)));

    // Server broadcasts (confirmed by both after the first), a puppet rset from the master.
    for n in 0..2 {
        world.mp.rpc(Target::Broadcast, "Probe", "puppet_only", &[n.into()]).unwrap();
        world.run();
    }
    world.mp.rset(Target::AllExcept(ida), "Probe", "puppet_prop", &5.into()).unwrap();
    world.run();
    assert_eq!(calls(&world.clients[a].events).len(), 2);
    assert_eq!(calls(&world.clients[b].events).len(), 2);
    assert!(
        world.clients[b]
            .events
            .iter()
            .any(|e| matches!(e, SceneEvent::Rset(s) if s.sender == PeerId::SERVER))
    );
    assert!(!world.clients[a].events.iter().any(|e| matches!(e, SceneEvent::Rset(_))));

    // Client → client through the 3.x server's relay, twice (the second by cache id), and a
    // forged puppet call refused by the other client.
    for text in ["one", "two"] {
        world.clients[a].mp.rpc(Target::Peer(idb), "Probe", "ping", &[text.into()]).unwrap();
        world.run();
    }
    world.clients[a].mp.rpc(Target::Peer(idb), "Probe", "puppet_only", &[9.into()]).unwrap();
    world.run();
    let at_b = calls(&world.clients[b].events);
    assert_eq!(at_b[2..], [(ida, "ping", &["one".into()][..]), (ida, "ping", &["two".into()][..])]);
    assert!(
        world.clients[b].events.iter().any(|e| matches!(e, SceneEvent::Refused { from, .. } if *from == ida))
    );
}

/// A client without `auth_callback` (a game that sends no token) never completes: the server
/// drops it at the timeout with a close code and reason that say why.
#[test]
fn a_client_without_auth_is_closed_with_a_reason() {
    let auth = SceneConfig { auth: true, ..SceneConfig::default() };
    let mut world = World::new(auth);
    let a = world.connect(SceneConfig::default());
    let ida = world.client_id(a);
    // It thinks it joined; its calls are refused while it is pending.
    assert!(world.clients[a].events.contains(&SceneEvent::ConnectedToServer));
    world.clients[a].mp.rpc(Target::Server, "Probe", "ping", &[1.into()]).unwrap();
    world.run();
    assert!(world.events.iter().any(|e| matches!(
        e,
        SceneEvent::Refused { from, reason: crate::scene::Refusal::NotAuthenticated } if *from == ida
    )));
    world.advance(core::time::Duration::from_secs(3));
    assert!(world.events.contains(&SceneEvent::PeerAuthenticationFailed(ida)));
    let close = world.clients[a].client.close_info().expect("closed by the server");
    assert_eq!(close.code, super::AUTH_FAILED_CODE);
    assert_eq!(close.reason.as_str(), super::AUTH_FAILED_REASON);
    assert!(world.clients[a].events.contains(&SceneEvent::PeerDisconnected(PeerId::SERVER)));
}
