//! SceneMultiplayer on multipeer-mio's `Server` and `Client` over real loopback sockets: auth
//! with a token (right, wrong, none), RPCs both ways with `get_remote_sender_id`, a relayed
//! client-to-client call, an authority-only call refused, and `send_bytes`.

mod common;

use core::time::Duration;
use std::time::Instant;

use common::Net;
use multipeer::peer::{ClientConfig, PeerId, ServerConfig, Target, TransferMode};
use multipeer::scene::{
    AUTH_FAILED_CODE, AUTH_FAILED_REASON, Arity, Refusal, RpcCall, RpcConfig, RpcMode, RpcNode, SceneConfig,
    SceneEvent, SceneMultiplayer,
};
use multipeer::variant::Variant;
use multipeer_mio::{ClientOptions, ListenAddr, Server, TransportRelayOn};

const LIMIT: Duration = Duration::from_secs(10);
const TOKEN: &[u8] = b"s3cret";

fn scene(auth: bool) -> SceneMultiplayer {
    let any = RpcConfig { rpc_mode: RpcMode::AnyPeer, ..RpcConfig::default() };
    let mut game = RpcNode::new();
    game.script_method("ping", any, Arity::exactly(1))
        .and_then(|g| g.script_method("pong", RpcConfig::default(), Arity::exactly(1)))
        .and_then(|g| g.script_method("whisper", any, Arity::exactly(1)))
        .unwrap();
    let config = SceneConfig { auth, auth_timeout: Duration::from_millis(600), ..SceneConfig::default() };
    let mut mp = SceneMultiplayer::new(config);
    mp.add_node("Game", game);
    mp
}

/// Every scene event each side reported so far; the server completes auth for the right token
/// and clients answer `peer_authenticating` with their token, as a game's `auth_callback` does.
struct Logs {
    server: Vec<SceneEvent>,
    clients: Vec<Vec<SceneEvent>>,
    tokens: Vec<Option<&'static [u8]>>,
}

impl Logs {
    fn turn(&mut self, net: &mut Net) {
        net.turn(Duration::from_millis(10));
        while let Some(event) = net.server.poll_scene_event() {
            if let SceneEvent::AuthData { peer, data } = &event {
                if data == TOKEN {
                    net.server.complete_auth(*peer).unwrap();
                }
            }
            self.server.push(event);
        }
        for (i, client) in net.clients.iter_mut().enumerate() {
            while let Some(event) = client.poll_scene_event() {
                if let (SceneEvent::PeerAuthenticating(server), Some(token)) = (&event, self.tokens[i]) {
                    client.send_auth(*server, token).unwrap();
                    client.complete_auth(*server).unwrap();
                }
                self.clients[i].push(event);
            }
        }
        net.flush();
    }

    fn until(&mut self, net: &mut Net, what: &str, done: impl Fn(&Self, &Net) -> bool) {
        let end = Instant::now() + LIMIT;
        while !done(self, net) {
            assert!(Instant::now() < end, "{what}: server {:?}\nclients {:?}", self.server, self.clients);
            self.turn(net);
        }
    }
}

fn rpc_from<'a>(events: &'a [SceneEvent], method: &str) -> Option<&'a RpcCall> {
    events.iter().find_map(|e| match e {
        SceneEvent::Rpc(call) if call.method == method => Some(call),
        _ => None,
    })
}

#[test]
fn rpcs_and_auth_over_real_sockets() {
    let config = ServerConfig { relay: true, ..ServerConfig::default() };
    let addrs = [ListenAddr::One("127.0.0.1:0".parse().unwrap())];
    let mut relaying = Server::bind(&addrs, config).unwrap();
    assert_eq!(relaying.set_scene_multiplayer(Some(scene(true))), Err(TransportRelayOn));
    let mut server = Server::bind(&addrs, ServerConfig { relay: false, ..ServerConfig::default() }).unwrap();
    server.set_scene_multiplayer(Some(scene(true))).unwrap();
    let mut net = Net::new(server);
    let url = net.url("ws");
    let options = ClientOptions::new(ClientConfig { relay: false, ..ClientConfig::default() });
    let mut logs = Logs { server: Vec::new(), clients: Vec::new(), tokens: Vec::new() };
    // a and b send the token, c a wrong one, d none (a game without auth_callback).
    for (token, auth) in
        [(Some(TOKEN), true), (Some(TOKEN), true), (Some(&b"wrong"[..]), true), (None, false)]
    {
        let i = net.connect(&url, &options).unwrap();
        net.clients[i].set_scene_multiplayer(Some(scene(auth))).unwrap();
        logs.clients.push(Vec::new());
        logs.tokens.push(token);
    }
    let (a, b, c, d) = (0, 1, 2, 3);
    logs.until(&mut net, "a and b admitted, announced to each other", |l, n| {
        [(a, b), (b, a)].iter().all(|&(x, y)| {
            n.clients[y].scene_multiplayer().and_then(SceneMultiplayer::unique_id).is_some_and(|id| {
                l.clients[x].contains(&SceneEvent::ConnectedToServer)
                    && l.clients[x].contains(&SceneEvent::PeerConnected(id))
            })
        })
    });
    let id =
        |n: &Net, i: usize| n.clients[i].scene_multiplayer().and_then(SceneMultiplayer::unique_id).unwrap();
    let (ida, idb) = (id(&net, a), id(&net, b));

    // a → server, server → a, a → b through the relay, b's forged authority call on a, raw bytes.
    net.clients[a].rpc_id(Target::Server, "Game", "ping", &[7.into()]).unwrap();
    net.clients[a].send_bytes(b"raw", Target::Server, TransferMode::Reliable, 0).unwrap();
    net.clients[a].rpc_id(Target::Peer(idb), "Game", "whisper", &["psst".into()]).unwrap();
    net.clients[b].rpc_id(Target::Peer(ida), "Game", "pong", &["forged".into()]).unwrap();
    net.flush();
    logs.until(&mut net, "the calls arrive", |l, _| {
        rpc_from(&l.server, "ping").is_some()
            && rpc_from(&l.clients[b], "whisper").is_some()
            && l.clients[a].iter().any(|e| matches!(e, SceneEvent::Refused { .. }))
    });
    let ping = rpc_from(&logs.server, "ping").unwrap();
    assert_eq!((ping.sender, &ping.args[..]), (ida, &[Variant::Int(7)][..]));
    assert!(logs.server.contains(&SceneEvent::PeerPacket { from: ida, data: b"raw".to_vec() }));
    let whisper = rpc_from(&logs.clients[b], "whisper").unwrap();
    assert_eq!((whisper.sender, &whisper.args[..]), (ida, &["psst".into()][..]));
    assert_eq!(net.clients[b].get_remote_sender_id(), ida.get());
    assert!(logs.clients[a].contains(&SceneEvent::Refused {
        from: idb,
        reason: Refusal::NotAllowed { node: "Game".into(), method: "pong".into() }
    }));

    net.server.rpc_id(Target::Peer(ida), "Game", "pong", &["hi".into()]).unwrap();
    net.flush();
    logs.until(&mut net, "the server's call arrives", |l, _| rpc_from(&l.clients[a], "pong").is_some());
    let pong = rpc_from(&logs.clients[a], "pong").unwrap();
    assert_eq!((pong.sender, &pong.args[..]), (PeerId::SERVER, &["hi".into()][..]));
    assert_eq!(net.clients[a].get_remote_sender_id(), 1);

    // c (wrong token) and d (none) are dropped at the auth timeout, d with the reason.
    logs.until(&mut net, "c and d dropped", |l, n| {
        l.clients[c].contains(&SceneEvent::PeerAuthenticationFailed(PeerId::SERVER))
            && n.clients[d].peer().close_info().is_some()
    });
    let close = net.clients[d].peer().close_info().unwrap();
    assert_eq!((close.code, close.reason.as_str()), (AUTH_FAILED_CODE, AUTH_FAILED_REASON));
    let failed = logs.server.iter().filter(|e| matches!(e, SceneEvent::PeerAuthenticationFailed(_))).count();
    assert_eq!(failed, 2);
    let admitted: Vec<PeerId> = net.server.scene_multiplayer().unwrap().peers().collect();
    assert_eq!(admitted.len(), 2);
    assert!(admitted.contains(&ida) && admitted.contains(&idb));
    // Never announced to the admitted clients.
    for i in [a, b] {
        let joins = logs.clients[i].iter().filter(|e| matches!(e, SceneEvent::PeerConnected(_))).count();
        assert_eq!(joins, 2, "the server and the other admitted client: {:?}", logs.clients[i]);
    }
}
