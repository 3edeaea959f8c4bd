//! Godot 3's `MultiplayerAPI` on `WebSocketMultiplayerPeer::godot3()` over loopback: a server
//! and two clients in one thread. `rpc_id`/`rset_id` both ways, a broadcast that the 3.x server
//! relays from one packet, client-to-client calls through the transport's relay,
//! `get_rpc_sender_id`, a `puppet` call refused; and the version check of `create_*`.

use core::time::Duration;
use std::time::Instant;

use multipeer_std::multipeer::peer::{PeerId, Target};
use multipeer_std::multipeer::scene::{
    Arity, Refusal, RemoteMode, RpcCall, RpcNode, RsetCall, SceneConfig, SceneEvent, SceneMultiplayer,
};
use multipeer_std::multipeer::variant::Variant;
use multipeer_std::{MultiplayerError, WebSocketMultiplayerPeer};

fn scene(config: SceneConfig) -> SceneMultiplayer {
    let mut game = RpcNode::new();
    game.remote_method("ping", RemoteMode::Remote, Arity::exactly(1))
        .remote_method("news", RemoteMode::Puppet, Arity::exactly(1))
        .remote_property("score", RemoteMode::Remote);
    let mut scene = SceneMultiplayer::new(config);
    scene.add_node("Game", game);
    scene
}

fn peer() -> WebSocketMultiplayerPeer {
    let mut peer = WebSocketMultiplayerPeer::godot3();
    peer.set_scene_multiplayer(Some(scene(SceneConfig::godot3())));
    peer
}

/// Polls every peer until `done` holds for what they saw (server first), at most 10 s.
fn run(
    peers: &mut [WebSocketMultiplayerPeer],
    seen: &mut [Vec<SceneEvent>],
    done: impl Fn(&[Vec<SceneEvent>]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(seen) {
        assert!(Instant::now() < deadline, "timed out: {seen:#?}");
        for (peer, seen) in peers.iter_mut().zip(seen.iter_mut()) {
            peer.poll().expect("poll");
            seen.extend(core::iter::from_fn(|| peer.poll_scene_event()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn rpcs(seen: &[SceneEvent]) -> Vec<(PeerId, &str, &[Variant])> {
    let calls = seen.iter().filter_map(|e| match e {
        SceneEvent::Rpc(RpcCall { sender, method, args, .. }) => Some((*sender, method.as_str(), &args[..])),
        _ => None,
    });
    calls.collect()
}

fn rsets(seen: &[SceneEvent]) -> Vec<(PeerId, Variant)> {
    let sets = seen.iter().filter_map(|e| match e {
        SceneEvent::Rset(RsetCall { sender, value, .. }) => Some((*sender, value.clone())),
        _ => None,
    });
    sets.collect()
}

#[test]
fn godot3_rpc_and_rset_over_loopback() {
    let mut server = peer();
    server.create_server(0, "127.0.0.1").expect("create_server");
    let url = format!("ws://{}/", server.local_addr().expect("local_addr"));
    let mut peers = vec![server, peer(), peer()];
    peers[1].create_client(&url).expect("create_client");
    peers[2].create_client(&url).expect("create_client");
    let mut seen = vec![Vec::new(); 3];
    let connected = |s: &[Vec<SceneEvent>]| {
        let others = |i: usize| s[i].iter().filter(|e| matches!(e, SceneEvent::PeerConnected(_))).count();
        others(0) == 2 && others(1) == 2 && others(2) == 2
    };
    run(&mut peers, &mut seen, connected);
    let a = PeerId::new(peers[1].get_unique_id() as u32).expect("id");
    let b = PeerId::new(peers[2].get_unique_id() as u32).expect("id");

    // Client → server (full path, then by cache id once confirmed) and an rset.
    peers[1].rpc_id(Target::Server, "Game", "ping", &["first".into()]).expect("rpc_id");
    run(&mut peers, &mut seen, |s| rpcs(&s[0]).len() == 1);
    peers[1].rpc_id(Target::Server, "Game", "ping", &["cached".into()]).expect("rpc_id");
    peers[1].rset_id(Target::Server, "Game", "score", &7.into()).expect("rset_id");
    run(&mut peers, &mut seen, |s| rpcs(&s[0]).len() == 2 && rsets(&s[0]).len() == 1);
    assert_eq!(rpcs(&seen[0]), [(a, "ping", &["first".into()][..]), (a, "ping", &["cached".into()][..])]);
    assert_eq!(rsets(&seen[0]), [(a, 7.into())]);
    assert_eq!(peers[0].get_rpc_sender_id(), a.get());

    // Server → everyone: a puppet method from the master, an rset.
    peers[0].rpc("Game", "news", &["hello".into()]).expect("rpc");
    peers[0].rset("Game", "score", &8.into()).expect("rset");
    run(&mut peers, &mut seen, |s| (1..3).all(|i| rpcs(&s[i]).len() == 1 && rsets(&s[i]).len() == 1));
    for s in &seen[1..] {
        assert_eq!(rpcs(s), [(PeerId::SERVER, "news", &["hello".into()][..])]);
        assert_eq!(rsets(s), [(PeerId::SERVER, 8.into())]);
    }
    // Confirmed by both now: one packet, relayed by the 3.x server.
    peers[0].rpc("Game", "news", &["again".into()]).expect("rpc");
    run(&mut peers, &mut seen, |s| (1..3).all(|i| rpcs(&s[i]).len() == 2));

    // Client → client through the transport's relay; a client's puppet call is refused.
    peers[1].rpc_id(Target::Peer(b), "Game", "ping", &["psst".into()]).expect("rpc_id");
    peers[1].rpc_id(Target::Peer(b), "Game", "news", &["forged".into()]).expect("rpc_id");
    let refused = |s: &[SceneEvent]| {
        s.iter().any(|e| matches!(e, SceneEvent::Refused { reason: Refusal::NotAllowed { .. }, .. }))
    };
    run(&mut peers, &mut seen, |s| rpcs(&s[2]).len() == 3 && refused(&s[2]));
    assert_eq!(rpcs(&seen[2])[2], (a, "ping", &["psst".into()][..]));
    assert_eq!(peers[2].get_rpc_sender_id(), a.get());
}

#[test]
fn a_scene_of_the_other_version_is_refused() {
    let mut peer = WebSocketMultiplayerPeer::godot3();
    peer.set_scene_multiplayer(Some(scene(SceneConfig::default())));
    assert!(matches!(peer.create_server(0, "127.0.0.1"), Err(MultiplayerError::InvalidParameter(_))));
    let mut peer = WebSocketMultiplayerPeer::new();
    peer.set_scene_multiplayer(Some(scene(SceneConfig::godot3())));
    assert!(matches!(peer.create_client("ws://127.0.0.1:1/"), Err(MultiplayerError::InvalidParameter(_))));
    assert_eq!(
        peer.rset("Game", "score", &1.into()).map_err(|e| e.to_string()),
        Err("not connected".into()),
        "no unique id before create_*"
    );
}
