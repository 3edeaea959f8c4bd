//! A Rust server or client for a Godot 3 game (3.2.3 to 3.6): `rpc` and `rset` by name over
//! Godot 3's WebSocket multiplayer protocol, with the permissions of `remote`, `master` and
//! `puppet`.
//!
//! ```text
//! cargo run -p multipeer-std --example rpc_godot3 -- server [PORT] [--seconds N] [--check]
//! cargo run -p multipeer-std --example rpc_godot3 -- client ws://HOST:PORT [--seconds N] [--check]
//! ```
//!
//! The Godot side: a node at `/root/Game` whose script has these members (3.x calls them by
//! name, so only the names and modes matter), and `WebSocketClient.connect_to_url(url,
//! PoolStringArray(), true)` / `WebSocketServer.listen(port, PoolStringArray(), true)` set as
//! `get_tree().network_peer`:
//!
//! ```gdscript
//! remote func ping(i, value): pass         # to the server: it answers pong(i, value)
//! remote func say(text): pass              # to the server: it broadcasts said(sender, text)
//! puppet func pong(i, value): pass         # from the server (the network master) only
//! puppet func said(from, text): pass
//! master func master_only(text): pass      # runs on the master (the server) only
//! remote var value                         # rset on the server: echoed back as `echo`
//! puppet var echo                          # set by the server only
//! ```
//!
//! The server answers `ping`, `say` and `rset("value", v)`. The client calls `ping(i, v)` and
//! `rset_id(1, "value", v)` for one value of each Godot 3 type ([`values`]), then `say`, and
//! checks what comes back. With `--check` (the interop suite), each side also makes a call the
//! other must refuse (the server calls the client's `master_only`, the client the server's
//! `pong`), the server compares every `ping` and `rset` value with [`values`] (`MATCH` or
//! `MISMATCH` lines), and the client exits with the number of failed checks.
use core::time::Duration;
use std::time::Instant;

use multipeer_std::WebSocketMultiplayerPeer;
use multipeer_std::multipeer::peer::{PeerId, Target};
use multipeer_std::multipeer::scene::{
    Arity, Refusal, RemoteMode, RpcNode, SceneConfig, SceneEvent, SceneMultiplayer,
};
use multipeer_std::multipeer::variant::{
    Aabb, Basis, Color, Dictionary, NodePath, Plane, Quaternion, Rect2, Transform2D, Transform3D, Variant,
    Vector2, Vector3,
};

/// One value of each Godot 3 type that survives a round trip (RID and Object do not), in the
/// order of `tests/interop/scene/rpc_g3.gd`.
fn values() -> Vec<Variant> {
    let v2 = |x, y| Vector2 { x, y };
    let v3 = |x, y, z| Vector3 { x, y, z };
    let basis = Basis { rows: [v3(1.0, 4.0, 7.0), v3(2.0, 5.0, 8.0), v3(3.0, 6.0, 9.0)] };
    let entries = vec![("hp".into(), 5.into()), (1.into(), vec![Variant::from(2), "x".into()].into())];
    let dictionary = Dictionary { entries, ..Dictionary::default() };
    vec![
        true.into(),
        false.into(),
        0.into(),
        (-1).into(),
        127.into(),
        (-129).into(),
        70000.into(),
        5_000_000_000_i64.into(),
        1.5.into(),
        0.1.into(),
        "hi".into(),
        "é✓".into(),
        Variant::Vector2(v2(1.5, -2.0)),
        Variant::Rect2(Rect2 { position: v2(1.0, 2.0), size: v2(3.0, 4.0) }),
        Variant::Vector3(v3(1.0, 2.0, 3.0)),
        Transform2D { x: v2(1.0, 2.0), y: v2(3.0, 4.0), origin: v2(5.0, 6.0) }.into(),
        Variant::Plane(Plane { normal: v3(1.0, 2.0, 3.0), d: 4.0 }),
        Variant::Quaternion(Quaternion { x: 1.0, y: 2.0, z: 3.0, w: 4.0 }),
        Aabb { position: v3(1.0, 2.0, 3.0), size: v3(4.0, 5.0, 6.0) }.into(),
        basis.into(),
        Transform3D { basis, origin: v3(10.0, 11.0, 12.0) }.into(),
        Variant::Color(Color { r: 1.0, g: 0.5, b: 0.0, a: 1.0 }),
        NodePath::parse("/root/Game:position:x").into(),
        dictionary.into(),
        vec![Variant::from(1), "a".into(), vec![Variant::Nil].into()].into(),
        Variant::PackedByteArray(vec![1, 2, 3]),
        Variant::PackedInt32Array(vec![1, -1]),
        Variant::PackedFloat32Array(vec![1.5]),
        Variant::PackedStringArray(vec!["a".into(), "bcd".into()]),
        Variant::PackedVector2Array(vec![v2(1.0, 2.0)]),
        Variant::PackedVector3Array(vec![v3(1.0, 2.0, 3.0)]),
        Variant::PackedColorArray(vec![Color { r: 1.0, g: 0.0, b: 0.0, a: 1.0 }]),
        Variant::Nil,
    ]
}

/// `/root/Game` with the modes of the module docs.
fn game() -> RpcNode {
    let mut game = RpcNode::new();
    game.remote_method("ping", RemoteMode::Remote, Arity::exactly(2))
        .remote_method("say", RemoteMode::Remote, Arity::exactly(1))
        .remote_method("pong", RemoteMode::Puppet, Arity::exactly(2))
        .remote_method("said", RemoteMode::Puppet, Arity::exactly(2))
        .remote_method("master_only", RemoteMode::Master, Arity::exactly(1))
        .remote_property("value", RemoteMode::Remote)
        .remote_property("echo", RemoteMode::Puppet);
    game
}

/// What the client saw, against what it sent.
#[derive(Default)]
struct Checks {
    pongs: Vec<(PeerId, Variant)>,
    echoes: Vec<(PeerId, Variant)>,
    said: Option<(PeerId, Vec<Variant>)>,
    refused: bool,
}

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = match args.next().as_deref() {
        Some("server") => true,
        Some("client") => false,
        _ => {
            return Err(
                "usage: rpc_godot3 server [PORT] | client ws://HOST:PORT [--seconds N] [--check]".into()
            );
        }
    };
    let mut address = if server { "9080".to_owned() } else { "ws://127.0.0.1:9080".to_owned() };
    let (mut seconds, mut check) = (None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse::<u64>().ok()),
            "--check" => check = true,
            other => other.clone_into(&mut address),
        }
    }
    let mut scene = SceneMultiplayer::new(SceneConfig::godot3());
    scene.add_node("Game", game());
    let mut peer = WebSocketMultiplayerPeer::godot3();
    peer.set_scene_multiplayer(Some(scene));
    if server {
        peer.create_server(address.parse()?, "*")?;
        println!("listening on {address}");
    } else {
        peer.create_client(&address)?;
    }
    let values = values();
    let mut checks = Checks::default();
    // Values set by each client so far, to compare the next one with.
    let mut rsets = std::collections::HashMap::new();
    let start = Instant::now();
    let deadline = seconds.map(|s| start + Duration::from_secs(s));
    while deadline.is_none_or(|d| Instant::now() < d) {
        peer.poll()?;
        while let Some(event) = peer.poll_scene_event() {
            if server {
                serve(&mut peer, event, check.then_some(&values), &mut rsets)?;
            } else if client(&mut peer, event, &values, &mut checks, check)? {
                let failures = report(&peer, &values, &checks, check);
                peer.close();
                std::process::exit(failures);
            }
        }
        peer.wait(Duration::from_millis(10));
    }
    if server {
        return Ok(());
    }
    println!("timed out");
    std::process::exit(1 + report(&peer, &values, &checks, check));
}

/// The server's side: answers `ping`, `say` and `rset("value", v)`; with `expected`, compares
/// what arrives with it.
fn serve(
    peer: &mut WebSocketMultiplayerPeer,
    event: SceneEvent,
    expected: Option<&[Variant]>,
    rsets: &mut std::collections::HashMap<PeerId, usize>,
) -> Result<(), Box<dyn core::error::Error>> {
    let verdict = |i: Option<usize>, got: Option<&Variant>| {
        let want = i.and_then(|i| expected?.get(i));
        if want.is_some() && want == got { "MATCH" } else { "MISMATCH" }
    };
    match event {
        SceneEvent::Rpc(call) => {
            println!("rpc {} from {}: {:?}", call.method, call.sender, call.args);
            if expected.is_some() && call.method == "ping" {
                let i = call.args.first().cloned().and_then(|i| i64::try_from(i).ok());
                let i = i.and_then(|i| usize::try_from(i).ok());
                println!("{} ping {i:?}", verdict(i, call.args.get(1)));
            }
            let to = Target::Peer(call.sender);
            match call.method.as_str() {
                "ping" => peer.rpc_id(to, "Game", "pong", &call.args)?,
                "say" => {
                    let text = call.args.into_iter().next().unwrap_or_default();
                    peer.rpc("Game", "said", &[i64::from(call.sender.get()).into(), text])?;
                }
                _ => {}
            }
        }
        SceneEvent::Rset(set) => {
            println!("rset {} from {}: {:?}", set.property, set.sender, set.value);
            if expected.is_some() {
                let count = rsets.entry(set.sender).or_insert(0);
                println!("{} rset {count}", verdict(Some(*count), Some(&set.value)));
                *count += 1;
            }
            peer.rset_id(Target::Peer(set.sender), "Game", "echo", &set.value)?;
        }
        SceneEvent::PeerConnected(id) if expected.is_some() => {
            // `master_only` runs on the master alone: the client must refuse it.
            peer.rpc_id(Target::Peer(id), "Game", "master_only", &["forged".into()])?;
        }
        other => println!("{other:?}"),
    }
    Ok(())
}

/// The client's side; true once everything came back.
fn client(
    peer: &mut WebSocketMultiplayerPeer,
    event: SceneEvent,
    values: &[Variant],
    checks: &mut Checks,
    check: bool,
) -> Result<bool, Box<dyn core::error::Error>> {
    match event {
        SceneEvent::ConnectedToServer => {
            println!("connected as {}", peer.get_unique_id());
            for (i, value) in values.iter().enumerate() {
                let i = Variant::from(i64::try_from(i)?);
                peer.rpc_id(Target::Server, "Game", "ping", &[i, value.clone()])?;
                peer.rset_id(Target::Server, "Game", "value", value)?;
            }
            peer.rpc_id(Target::Server, "Game", "say", &["hello".into()])?;
            if check {
                // `pong` is a puppet method: the server, its master, must refuse it.
                peer.rpc_id(Target::Server, "Game", "pong", &[0.into(), "forged".into()])?;
            }
        }
        SceneEvent::Rpc(call) if call.method == "pong" => {
            checks.pongs.push((call.sender, call.args.get(1).cloned().unwrap_or_default()));
        }
        SceneEvent::Rpc(call) if call.method == "said" => checks.said = Some((call.sender, call.args)),
        SceneEvent::Rset(set) => checks.echoes.push((set.sender, set.value)),
        SceneEvent::Refused { from, reason: Refusal::NotAllowed { method, .. } } => {
            println!("refused {method} from {from}");
            checks.refused |= method == "master_only";
        }
        other => println!("{other:?}"),
    }
    Ok(checks.pongs.len() >= values.len()
        && checks.echoes.len() >= values.len()
        && checks.said.is_some()
        && (checks.refused || !check))
}

/// Prints a PASS or FAIL line per check; returns the failures.
fn report(peer: &WebSocketMultiplayerPeer, values: &[Variant], checks: &Checks, check: bool) -> i32 {
    let mut failures = 0;
    let mut line = |ok: bool, what: String| {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
        failures += i32::from(!ok);
    };
    for (i, value) in values.iter().enumerate() {
        let pong = checks.pongs.get(i);
        line(
            pong.is_some_and(|(from, got)| from.is_server() && got == value),
            format!("pong {i} {value:?} -> {pong:?}"),
        );
        let echo = checks.echoes.get(i);
        line(
            echo.is_some_and(|(from, got)| from.is_server() && got == value),
            format!("rset echo {i} -> {echo:?}"),
        );
    }
    let own = Variant::from(i64::from(peer.get_unique_id()));
    let said = checks.said.as_ref();
    line(
        said.is_some_and(|(from, args)| from.is_server() && *args == [own, "hello".into()]),
        format!("said {said:?}"),
    );
    if check {
        line(checks.refused, "master_only from the server refused".into());
    }
    println!("DONE {failures}");
    failures
}
