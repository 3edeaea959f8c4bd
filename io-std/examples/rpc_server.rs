//! An authoritative Rust server for a Godot 4 game: clients call `@rpc` functions on it, it
//! answers the caller and broadcasts to everyone.
//!
//! `cargo run -p multipeer-std --example rpc_server -- [PORT] [--auth-token TOKEN] [--seconds N]`
//!
//! The Godot side: a node at `/root/Game` whose script declares the same RPC names (Godot numbers
//! methods by their sorted names, so both sides need the same set), and connects with
//! `WebSocketMultiplayerPeer.create_client("ws://HOST:PORT")`:
//!
//! ```gdscript
//! @rpc("any_peer") func ping(value): pass            # called on the server
//! @rpc("any_peer") func say(text): pass              # called on the server
//! @rpc("any_peer") func whisper(text): print(text)   # clients call each other (relayed)
//! @rpc func pong(value): print("pong ", value, " from ", multiplayer.get_remote_sender_id())
//! @rpc func said(from, text): print(from, ": ", text)
//! ```
//!
//! With `--auth-token`, the game sets `multiplayer.auth_callback` and sends the token:
//! `multiplayer.send_auth(1, token.to_utf8_buffer())` in `peer_authenticating`, and
//! `multiplayer.complete_auth(id)` in the callback. Wrong or missing tokens are dropped after
//! the auth timeout (3 s).
use core::time::Duration;
use std::time::Instant;

use multipeer_std::WebSocketMultiplayerPeer;
use multipeer_std::multipeer::peer::Target;
use multipeer_std::multipeer::scene::{
    Arity, RpcConfig, RpcMode, RpcNode, SceneConfig, SceneEvent, SceneMultiplayer,
};
use multipeer_std::multipeer::variant::Variant;

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let mut port = 9080;
    let mut token: Option<String> = None;
    let mut seconds: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--auth-token" => token = args.next(),
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()),
            other => port = other.parse()?,
        }
    }
    let any = RpcConfig { rpc_mode: RpcMode::AnyPeer, ..RpcConfig::default() };
    let mut game = RpcNode::new();
    game.script_method("ping", any, Arity::exactly(1))?
        .script_method("say", any, Arity::exactly(1))?
        .script_method("pong", RpcConfig::default(), Arity::exactly(1))?
        .script_method("said", RpcConfig::default(), Arity::exactly(2))?
        // Only relayed between clients; declared so that the method ids match the game's.
        .script_method("whisper", any, Arity::exactly(1))?;
    let mut scene = SceneMultiplayer::new(SceneConfig { auth: token.is_some(), ..SceneConfig::default() });
    scene.add_node("Game", game);

    let mut peer = WebSocketMultiplayerPeer::new();
    peer.set_scene_multiplayer(Some(scene));
    peer.create_server(port, "*")?;
    println!("listening on {port}");
    let start = Instant::now();
    while seconds.is_none_or(|s| start.elapsed() < Duration::from_secs(s)) {
        peer.poll()?;
        while let Some(event) = peer.poll_scene_event() {
            match event {
                SceneEvent::AuthData { peer: id, data } => {
                    if token.as_deref().is_some_and(|t| t.as_bytes() == data) {
                        peer.complete_auth(id)?;
                    } else {
                        println!("peer {id}: wrong token");
                    }
                }
                SceneEvent::Rpc(call) => {
                    println!("rpc {} from {}: {:?}", call.method, call.sender, call.args);
                    match call.method.as_str() {
                        "ping" => peer.rpc_id(Target::Peer(call.sender), "Game", "pong", &call.args)?,
                        "say" => {
                            let from = Variant::from(i64::from(call.sender.get()));
                            let text = call.args.into_iter().next().unwrap_or_default();
                            peer.rpc("Game", "said", &[from, text])?;
                        }
                        _ => {}
                    }
                }
                other => println!("{other:?}"),
            }
        }
        peer.wait(Duration::from_millis(10));
    }
    Ok(())
}
