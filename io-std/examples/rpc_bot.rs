//! A Rust client for a Godot 4 game server: it joins, calls the server's `@rpc` functions and
//! runs the RPCs the server (and other clients, through the server's relay) call on it.
//!
//! `cargo run -p multipeer-std --example rpc_bot -- ws://HOST:PORT [--auth-token TOKEN] [--pair]`
//!
//! The Godot server (`tests/interop/scene/rpc_server_g4.gd` is one) has a node at
//! `/root/Game` whose script declares the same RPC names as [`game_node`] (Godot numbers
//! methods by their sorted names, so both sides need the same set):
//!
//! ```gdscript
//! @rpc("any_peer") func check(i, value): rpc_id(multiplayer.get_remote_sender_id(), "echo", i, VALUES[i], get_instance_id())
//! @rpc("authority") func echo(i, value, note): pass        # runs on the bot
//! @rpc("any_peer") func whisper(text): pass                # bots call each other (relayed)
//! @rpc("any_peer") func finished(failures): pass           # then the server announces
//! @rpc("authority") func announce(kind, excluded): pass    # broadcast and -id, runs on the bot
//! ```
//!
//! The bot sends `check(i, v)` for one value of every Variant type (the first alone, so that
//! the rest use the cached path), checks that each `echo(i, v, note)` comes from peer 1 with
//! the server's own copy of that value, calls the authority-only `echo` on the server (Godot
//! must refuse it), and with `--pair` whispers to the other bot through the relay (to it, to
//! everyone, to everyone but it) and sends it a forged `echo` that its machine must refuse.
//! Then `finished()`, and it checks the server's `announce` broadcast and `-id` call. With
//! `--auth-token`, it answers the server's `auth_callback` with the token
//! (`send_auth(1, token)`, `complete_auth(1)`).
//!
//! It prints `PASS`/`FAIL` lines and `DONE <failures>`; the exit status is the failure count.
use core::time::Duration;
use std::time::Instant;

use multipeer_std::WebSocketMultiplayerPeer;
use multipeer_std::multipeer::peer::{Event, PeerId, Target};
use multipeer_std::multipeer::scene::{
    Arity, Refusal, RpcConfig, RpcMode, RpcNode, SceneConfig, SceneEvent, SceneMultiplayer,
};
use multipeer_std::multipeer::variant::{
    Aabb, Array, Basis, Color, ContainerType, Dictionary, NodePath, Object, Plane, Projection, Quaternion,
    Rect2, Rect2i, Signal, Transform2D, Transform3D, Variant, VariantType, Vector2, Vector2i, Vector3,
    Vector3i, Vector4, Vector4i,
};

/// The node path of the game node, relative to Godot's `/root`.
const GAME: &str = "Game";
/// The instance id the bot's Object and Signal values carry (the server checks it).
const BOT_OBJECT_ID: u64 = 12345;
/// How long the whole exchange may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// The `Game` node's RPC table, as the Godot script declares it.
fn game_node() -> Result<RpcNode, Box<dyn core::error::Error>> {
    let any = RpcConfig { rpc_mode: RpcMode::AnyPeer, ..RpcConfig::default() };
    let authority = RpcConfig::default();
    let mut game = RpcNode::new();
    game.script_method("check", any, Arity::exactly(2))?
        .script_method("echo", authority, Arity::exactly(3))?
        .script_method("whisper", any, Arity::exactly(1))?
        .script_method("finished", any, Arity::exactly(1))?
        .script_method("announce", authority, Arity::exactly(2))?;
    Ok(game)
}

fn v2(x: f64, y: f64) -> Vector2 {
    Vector2 { x, y }
}

fn v3(x: f64, y: f64, z: f64) -> Vector3 {
    Vector3 { x, y, z }
}

fn v4(x: f64, y: f64, z: f64, w: f64) -> Vector4 {
    Vector4 { x, y, z, w }
}

/// One value of every Variant type (and a few edge cases), the twin of `make_values()` in
/// `rpc_server_g4.gd`. Object and Signal carry `object` as their instance id.
fn values(object: u64) -> Vec<Variant> {
    let typed_ints = Array {
        element_type: ContainerType::Builtin(VariantType::Int),
        items: vec![Variant::Int(1), Variant::Int(2)],
    };
    let typed_dict = Dictionary {
        key_type: ContainerType::Builtin(VariantType::String),
        value_type: ContainerType::Builtin(VariantType::Int),
        entries: vec![("x".into(), Variant::Int(1))],
    };
    let dict = Dictionary {
        entries: vec![("hp".into(), Variant::Int(5)), (Variant::Int(1), Variant::from((2, "x")))],
        ..Dictionary::default()
    };
    let basis = Basis { rows: [v3(1.0, 4.0, 7.0), v3(2.0, 5.0, 8.0), v3(3.0, 6.0, 9.0)] };
    let identity = Basis { rows: [v3(1.0, 0.0, 0.0), v3(0.0, 1.0, 0.0), v3(0.0, 0.0, 1.0)] };
    vec![
        Variant::Nil,
        true.into(),
        false.into(),
        0.into(),
        (-1).into(),
        127.into(),
        (-129).into(),
        70000.into(),
        5_000_000_000_i64.into(),
        (-(1_i64 << 40)).into(),
        1.5.into(),
        0.1.into(),
        "hi".into(),
        "é✓".into(),
        "".into(),
        v2(1.5, -2.0).into(),
        Vector2i { x: 1, y: -2 }.into(),
        Rect2 { position: v2(1.0, 2.0), size: v2(3.0, 4.0) }.into(),
        Rect2i { position: Vector2i { x: 1, y: 2 }, size: Vector2i { x: 3, y: -4 } }.into(),
        v3(1.0, 2.0, 3.0).into(),
        Vector3i { x: 1, y: 2, z: -3 }.into(),
        Transform2D { x: v2(1.0, 2.0), y: v2(3.0, 4.0), origin: v2(5.0, 6.0) }.into(),
        v4(1.0, 2.0, 3.0, 4.0).into(),
        Vector4i { x: 1, y: 2, z: 3, w: -4 }.into(),
        Plane { normal: v3(0.0, 1.0, 0.0), d: 5.0 }.into(),
        Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 1.0 }.into(),
        Aabb { position: v3(1.0, 2.0, 3.0), size: v3(4.0, 5.0, 6.0) }.into(),
        basis.into(),
        Transform3D { basis: identity, origin: v3(1.0, 2.0, 3.0) }.into(),
        Projection {
            columns: [
                v4(1.0, 2.0, 3.0, 4.0),
                v4(5.0, 6.0, 7.0, 8.0),
                v4(9.0, 10.0, 11.0, 12.0),
                v4(13.0, 14.0, 15.0, 16.0),
            ],
        }
        .into(),
        Color { r: 1.0, g: 0.5, b: 0.0, a: 1.0 }.into(),
        Variant::StringName("name".into()),
        NodePath::parse("/root/Game:position:x").into(),
        Variant::Rid(42),
        Object::Id(object).into(),
        Variant::Callable,
        Variant::Signal(Signal { name: "renamed".into(), object }),
        dict.into(),
        typed_dict.into(),
        vec![Variant::Int(1), "a".into(), vec![Variant::Nil].into()].into(),
        typed_ints.into(),
        vec![1_u8, 2, 3].into(),
        Vec::<u8>::new().into(),
        vec![1_i32, -1].into(),
        vec![1_i64, 1 << 40].into(),
        vec![1.5_f32].into(),
        vec![0.1_f64].into(),
        vec![String::from("a"), String::from("bcd")].into(),
        vec![v2(1.0, 2.0)].into(),
        vec![v3(1.0, 2.0, 3.0)].into(),
        vec![Color { r: 1.0, g: 0.0, b: 0.0, a: 1.0 }].into(),
        vec![v4(1.0, 2.0, 3.0, 4.0)].into(),
    ]
}

/// Where the bot is in its script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connecting (and authenticating).
    Joining,
    /// `check(0, …)` sent; its echo brings the server's `CONFIRM_PATH` before the rest go.
    FirstEcho,
    /// The other checks sent, echoes coming back.
    Echoes,
    /// Waiting for the other bot (with `--pair`).
    Pair,
    /// `finished()` sent, waiting for the server's announcements.
    Announcements,
}

struct Bot {
    peer: WebSocketMultiplayerPeer,
    pair: bool,
    token: Option<String>,
    failures: u32,
    phase: Phase,
    sent: Vec<Variant>,
    echoes: usize,
    other: Option<PeerId>,
    whispered: bool,
    whispers: Vec<(PeerId, String)>,
    forged_refused: bool,
    announcements: Vec<(String, i64)>,
    server_auth_data: Option<Vec<u8>>,
}

impl Bot {
    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            println!("PASS {what}");
        } else {
            self.failures += 1;
            println!("FAIL {what}");
        }
    }

    fn me(&self) -> i64 {
        i64::from(self.peer.get_unique_id())
    }

    fn call(&mut self, target: Target, method: &str, args: &[Variant]) {
        if let Err(e) = self.peer.rpc_id(target, GAME, method, args) {
            self.check(false, &format!("rpc_id({target:?}, {method}): {e}"));
        }
    }

    /// Handles one event; true when the bot is done.
    fn on_event(&mut self, event: SceneEvent) -> bool {
        match event {
            SceneEvent::PeerAuthenticating(server) => {
                println!("EVENT peer_authenticating {server}");
                if let Some(token) = self.token.clone() {
                    let sent = self.peer.send_auth(server, token.as_bytes());
                    let completed = self.peer.complete_auth(server);
                    self.check(sent.is_ok() && completed.is_ok(), "send_auth and complete_auth");
                }
            }
            SceneEvent::AuthData { data, .. } => self.server_auth_data = Some(data),
            SceneEvent::PeerAuthenticationFailed(server) => {
                println!("EVENT peer_authentication_failed {server}");
                self.failures += 1;
                return true;
            }
            SceneEvent::ConnectedToServer => {
                println!("EVENT connected_to_server id={}", self.me());
                if self.token.is_some() {
                    let data = self.server_auth_data.as_deref();
                    self.check(data == Some(b"srv"), &format!("the server's auth data {data:?}"));
                }
                let first = self.sent[0].clone();
                self.call(Target::Server, "check", &[0.into(), first]);
                self.phase = Phase::FirstEcho;
            }
            SceneEvent::PeerConnected(p) if !p.is_server() => {
                println!("EVENT peer_connected {p}");
                self.other = Some(p);
            }
            SceneEvent::Rpc(call) => return self.on_rpc(call.sender, &call.method, call.args),
            SceneEvent::Refused { from, reason } => {
                println!("EVENT refused from {from}: {reason}");
                let forged = matches!(&reason, Refusal::NotAllowed { method, .. } if method == "echo");
                if forged && Some(from) == self.other {
                    self.forged_refused = true;
                } else {
                    self.check(false, &format!("unexpected refusal from {from}: {reason}"));
                }
            }
            SceneEvent::Transport(event @ (Event::ConnectionFailed(_) | Event::ServerDisconnected(_))) => {
                println!("EVENT {event:?}");
                self.failures += 1;
                return true;
            }
            SceneEvent::Transport(event) => println!("EVENT {event:?}"),
            SceneEvent::PeerDisconnected(p) if p.is_server() => {
                self.check(false, "the server left first");
                return true;
            }
            other => println!("EVENT {other:?}"),
        }
        self.advance();
        false
    }

    fn on_rpc(&mut self, sender: PeerId, method: &str, args: Vec<Variant>) -> bool {
        let remote = self.peer.get_remote_sender_id();
        match (method, <[Variant; 3]>::try_from(args.clone())) {
            ("echo", Ok([Variant::Int(i), value, Variant::Int(note)])) => {
                let note = u64::try_from(note).unwrap_or(0);
                let want = usize::try_from(i).ok().and_then(|i| values(note).into_iter().nth(i));
                let ok = sender.is_server() && remote == 1 && note != 0 && want.as_ref() == Some(&value);
                self.check(ok, &format!("echo #{i} from {sender} (remote sender {remote}): {value:?}"));
                self.echoes += 1;
                if i == 0 && self.phase == Phase::FirstEcho {
                    for (i, value) in self.sent.clone().into_iter().enumerate().skip(1) {
                        self.call(Target::Server, "check", &[Variant::from(i as i64), value]);
                    }
                    // Authority-only on the server: Godot must refuse it.
                    self.call(Target::Server, "echo", &[99.into(), "forged".into(), Variant::Nil]);
                    self.phase = Phase::Echoes;
                }
            }
            _ => match (method, args.as_slice()) {
                ("whisper", [Variant::String(text)]) => self.whispers.push((sender, text.clone())),
                ("announce", [Variant::String(kind), Variant::Int(excluded)]) => {
                    self.check(sender.is_server() && remote == 1, &format!("announce {kind} from {sender}"));
                    self.announcements.push((kind.clone(), *excluded));
                    if kind == "end" {
                        self.check_announcements(*excluded);
                        return true;
                    }
                }
                _ => self.check(false, &format!("unexpected rpc {method}{args:?} from {sender}")),
            },
        }
        self.advance();
        false
    }

    /// Moves to the next phase once the current one is complete.
    fn advance(&mut self) {
        if self.phase == Phase::Echoes && self.echoes == self.sent.len() {
            self.phase = if self.pair { Phase::Pair } else { self.finish() };
        }
        if self.phase != Phase::Pair {
            return;
        }
        let Some(other) = self.other else { return };
        if !self.whispered {
            self.whispered = true;
            let me = self.me();
            self.call(Target::Peer(other), "whisper", &[format!("psst from {me}").into()]);
            self.call(Target::Broadcast, "whisper", &[format!("all from {me}").into()]);
            self.call(Target::AllExcept(other), "whisper", &[format!("not for {other}").into()]);
            // Authority-only, and the other bot is not the authority: its machine must refuse.
            self.call(Target::Peer(other), "echo", &[98.into(), "forged".into(), Variant::Nil]);
        }
        if self.whispers.len() >= 2 && self.forged_refused {
            let o = other.get();
            let want = vec![(other, format!("psst from {o}")), (other, format!("all from {o}"))];
            let whispers = self.whispers.clone();
            self.check(whispers == want, &format!("whispers through the relay {whispers:?}"));
            self.check(self.forged_refused, "the other bot's forged echo refused");
            self.phase = self.finish();
        }
    }

    fn finish(&mut self) -> Phase {
        let stats = self.peer.scene_multiplayer().map(SceneMultiplayer::stats).unwrap_or_default();
        self.check(
            stats.rpcs_out_by_path >= 1 && stats.rpcs_out > stats.rpcs_out_by_path,
            &format!(
                "calls sent by path {} and by cache id {}",
                stats.rpcs_out_by_path,
                stats.rpcs_out - stats.rpcs_out_by_path
            ),
        );
        self.check(
            stats.rpcs_in_by_path >= 1 && stats.rpcs_in > stats.rpcs_in_by_path,
            &format!(
                "calls received by path {} and by cache id {}",
                stats.rpcs_in_by_path,
                stats.rpcs_in - stats.rpcs_in_by_path
            ),
        );
        let failures = i64::from(self.failures);
        self.call(Target::Server, "finished", &[failures.into()]);
        Phase::Announcements
    }

    fn check_announcements(&mut self, excluded: i64) {
        let kinds: Vec<&str> = self.announcements.iter().map(|(k, _)| k.as_str()).collect();
        let want: &[&str] = if excluded == self.me() { &["all", "end"] } else { &["all", "except", "end"] };
        let ok = kinds == want && self.announcements.iter().all(|(_, x)| *x == excluded);
        self.check(ok, &format!("announcements {kinds:?} (excluded {excluded}, me {})", self.me()));
    }
}

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let mut url = String::from("ws://127.0.0.1:9080");
    let mut token = None;
    let mut pair = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--auth-token" => token = args.next(),
            "--pair" => pair = true,
            other => url = other.into(),
        }
    }
    let mut scene = SceneMultiplayer::new(SceneConfig { auth: token.is_some(), ..SceneConfig::default() });
    scene.add_node(GAME, game_node()?);
    let mut peer = WebSocketMultiplayerPeer::new();
    peer.set_scene_multiplayer(Some(scene));
    peer.create_client(&url)?;
    let mut bot = Bot {
        peer,
        pair,
        token,
        failures: 0,
        phase: Phase::Joining,
        sent: values(BOT_OBJECT_ID),
        echoes: 0,
        other: None,
        whispered: false,
        whispers: Vec::new(),
        forged_refused: false,
        announcements: Vec::new(),
        server_auth_data: None,
    };
    let start = Instant::now();
    let mut done = false;
    while !done {
        if start.elapsed() > DEADLINE {
            bot.check(false, &format!("timed out in {:?}", bot.phase));
            break;
        }
        bot.peer.poll()?;
        while let Some(event) = bot.peer.poll_scene_event() {
            done |= bot.on_event(event);
        }
        bot.peer.wait(Duration::from_millis(10));
    }
    bot.peer.close();
    // Let the Close frame go out.
    for _ in 0..20 {
        bot.peer.poll()?;
        bot.peer.wait(Duration::from_millis(10));
    }
    println!("DONE {}", bot.failures);
    std::process::exit(i32::try_from(bot.failures).unwrap_or(i32::MAX));
}
