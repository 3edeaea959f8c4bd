//! Target for the SceneMultiplayer machine: one [`SceneMultiplayer`], as the server or a client,
//! fed arbitrary packets from several peers between arbitrary commands (peers joining and
//! leaving, RPCs, raw bytes, authentication, time).
//!
//! Checks the machine's contract whatever it is fed: no panic; its queues stay within their
//! limits; a client sends only to the server and to peers connected to it directly (a mesh),
//! never directly to one it knows through the relay; every packet it queues is a
//! SceneMultiplayer packet it would itself accept (a known command); an admitted peer is never
//! also authenticating; an RPC it delivers names a declared node and method (in Godot 3 mode,
//! also an `rset` of a declared property).

use multipeer::Instant;
use multipeer::peer::{PeerId, Target, TransferMode};
use multipeer::scene::{
    Arity, RemoteMode, RpcConfig, RpcMode, RpcNode, SceneConfig, SceneEvent, SceneMultiplayer,
};
use multipeer::variant::{Variant, Version};

use super::input::{Input, Output};

/// The peers packets come from and commands address: the server, two clients, a relayed one.
const PEERS: [u32; 4] = [1, 5, 6, 42];
const METHODS: [&str; 5] = ["ping", "auth_only", "echo", "node_cfg", "nope"];
const NODES: [&str; 3] = ["Probe", "Probe/Child", "Nope"];
const PROPERTIES: [&str; 3] = ["prop", "puppet_prop", "nope"];

fn node() -> RpcNode {
    let any = RpcConfig { rpc_mode: RpcMode::AnyPeer, ..RpcConfig::default() };
    let mut node = RpcNode::new();
    let _ = node.script_method("ping", any, Arity::exactly(1));
    let _ = node.script_method("auth_only", RpcConfig::default(), Arity { min: 0, max: 2 });
    let _ = node.script_method("echo", RpcConfig { call_local: true, ..any }, Arity::ANY);
    let _ = node.node_method("node_cfg", RpcConfig { rpc_mode: RpcMode::Disabled, ..any }, Arity::exactly(1));
    node.remote_method("ping", RemoteMode::Remote, Arity::exactly(1))
        .remote_method("auth_only", RemoteMode::Puppet, Arity { min: 0, max: 2 })
        .remote_method("echo", RemoteMode::RemoteSync, Arity::ANY)
        .remote_method("node_cfg", RemoteMode::MasterSync, Arity::exactly(1))
        .remote_property("prop", RemoteMode::Remote)
        .remote_property("puppet_prop", RemoteMode::PuppetSync);
    node
}

fn peer(b: u8) -> PeerId {
    PeerId::new(PEERS[usize::from(b) % PEERS.len()]).unwrap_or(PeerId::SERVER)
}

fn target(b: u8) -> Target {
    match b % 4 {
        0 => Target::Broadcast,
        1 => Target::Server,
        2 => Target::Peer(peer(b >> 2)),
        _ => Target::AllExcept(peer(b >> 2)),
    }
}

/// Runs the input: a setup byte (bit 0 client, bit 1 auth, bit 2 4.2 layouts, bits 3–4 small
/// limits, bit 5 Godot 3), then operations until the input ends.
pub fn scene_machine(data: &[u8]) {
    let mut input = Input::new(data);
    let setup = input.byte();
    let client = setup & 1 != 0;
    let small = usize::from(setup >> 3 & 3);
    let config = SceneConfig {
        version: match setup & 0x24 {
            0 => Version::GODOT_4_6,
            4 => Version::Godot4 { minor: 2 },
            _ => Version::Godot3,
        },
        auth: setup & 2 != 0,
        max_cached_paths: 2 + small * 64,
        max_queued_events: 8 + small * 64,
        max_queued_packets: 8 + small * 64,
        max_queued_bytes: 256 + small * 8192,
        max_held_packets: 4 + small * 64,
        max_held_bytes: 512 + small * 8192,
        ..SceneConfig::default()
    };
    let mut mp = SceneMultiplayer::new(config);
    let local = if client { 9 } else { 1 };
    mp.set_unique_id(PeerId::new(local));
    mp.add_node("Probe", node());
    mp.add_node("Probe/Child", RpcNode::new());
    let mut now = Instant::ZERO;
    // Peers the transport connected directly at some point (a client may send to them).
    let mut direct = vec![PeerId::SERVER];
    while !input.is_empty() {
        let op = input.byte();
        let arg = input.byte();
        match op % 9 {
            0 => {
                direct.push(peer(arg));
                mp.handle_peer_connected(now, peer(arg));
            }
            1 => mp.handle_peer_disconnected(now, peer(arg)),
            2 | 3 => mp.handle_packet(now, peer(arg), input.slice()),
            4 => {
                let args: Vec<Variant> = input.slice().iter().map(|&b| Variant::Int(i64::from(b))).collect();
                let method = METHODS[usize::from(input.byte()) % METHODS.len()];
                let _ = mp.rpc(target(arg), NODES[usize::from(arg >> 4) % NODES.len()], method, &args);
            }
            5 => {
                let _ = mp.send_bytes(target(arg), input.slice(), TransferMode::Reliable, 0);
            }
            6 if config.version == Version::Godot3 => {
                let value = Variant::Int(i64::from(input.byte()));
                let property = PROPERTIES[usize::from(input.byte()) % PROPERTIES.len()];
                let _ = mp.rset(target(arg), NODES[usize::from(arg >> 4) % NODES.len()], property, &value);
            }
            6 if arg & 0x80 != 0 => {
                let _ = mp.complete_auth(peer(arg));
            }
            6 => {
                let _ = mp.send_auth(peer(arg), input.slice());
            }
            7 => {
                now += core::time::Duration::from_millis(u64::from(arg) * 50);
                mp.handle_timeout(now);
            }
            _ => drain(&mut mp, client, &direct, &config),
        }
        check(&mp);
    }
    drain(&mut mp, client, &direct, &config);
}

fn check(mp: &SceneMultiplayer) {
    if let Some(sender) = mp.remote_sender_id() {
        assert!(PEERS.contains(&(sender.get() as u32)) || mp.unique_id() == Some(sender));
    }
    for p in mp.peers() {
        assert!(mp.authenticating_peers().all(|q| q != p), "{p} both admitted and pending");
    }
}

fn drain(mp: &mut SceneMultiplayer, client: bool, direct: &[PeerId], config: &SceneConfig) {
    // One queue per transport peer (and the server), each within its limit; relays that
    // waited go as the queues drain, each to at most every peer.
    let links = PEERS.len() + 1;
    assert!(mp.queued_packets() <= config.max_queued_packets * links, "outbound queues over their limit");
    let most = (config.max_queued_packets + config.max_held_packets) * links;
    let mut transmits = 0;
    while let Some(t) = mp.poll_transmit() {
        transmits += 1;
        assert!(transmits <= most, "more packets out than queued and held");
        assert!(!t.data.is_empty());
        if config.version == Version::Godot3 {
            // The 3.x transport relays by its header: any target, the 3.x commands only.
            assert!(t.data[0] <= 4, "a 3.x command");
            continue;
        }
        let Target::Peer(to) = t.to else { panic!("4.x sends to one peer at a time") };
        assert!(!client || direct.contains(&to), "a client sends only to its transport peers");
        assert!(t.data[0] & 7 <= 3 || t.data[0] == 7, "a command this machine sends");
    }
    let mut events = 0;
    while let Some(event) = mp.poll_event() {
        events += 1;
        assert!(events <= config.max_queued_events, "event queue over its limit");
        match event {
            SceneEvent::Rpc(call) => {
                let node = mp.node(&call.node).expect("an RPC on a declared node");
                if config.version == Version::Godot3 {
                    assert_ne!(node.rpc_mode(&call.method), RemoteMode::Disabled, "a 3.x RPC with a mode");
                } else {
                    assert!(node.methods().id(&call.method).is_some(), "an RPC of a declared method");
                }
            }
            SceneEvent::Rset(set) => {
                assert_eq!(config.version, Version::Godot3);
                let node = mp.node(&set.node).expect("an rset on a declared node");
                assert_ne!(node.rset_mode(&set.property), RemoteMode::Disabled, "an rset with a mode");
            }
            _ => {}
        }
    }
    while mp.poll_disconnect().is_some() {}
    while mp.poll_hold().is_some() {}
}

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0))
        .collect()
}

const SIMPLIFY_PROBE: &str =
    "01 3664313736323065356639303564613139303863313131343462326366376462 00 01000000 50726f626500";

/// Seeds: the exchanges of `scene-multiplayer.md` §2–§5 as operation sequences.
#[must_use]
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let packet = |out: &mut Output, from: u8, bytes: &str| {
        out.byte(2).byte(from).slice(&hex(bytes));
    };
    let mut server = Output::default();
    server.byte(0).byte(0).byte(1).byte(0).byte(2);
    packet(&mut server, 1, SIMPLIFY_PROBE);
    packet(&mut server, 1, "20 13000080 00 01 04000000 02000000 68690000 50726f626500");
    packet(&mut server, 1, "00 01 00 01 0205");
    packet(&mut server, 1, "07 03 06000000 03 ab");
    packet(&mut server, 2, "07 03 00000000 00 01 02 01 0201");
    server.byte(4).byte(0).slice(&[1]).byte(0);
    packet(&mut server, 1, "02 01 01000000");
    server.byte(4).byte(0).slice(&[1, 2]).byte(2).byte(8).byte(0);
    server.byte(1).byte(1);

    let mut client = Output::default();
    client.byte(3).byte(0).byte(0);
    packet(&mut client, 0, "07 00 737276");
    client.byte(6).byte(0).slice(b"cli").byte(6).byte(0x80);
    packet(&mut client, 0, "03 ee");
    packet(&mut client, 0, "07 00");
    packet(&mut client, 0, "07 01 2a000000");
    packet(&mut client, 0, &["07 03 2a000000 ", SIMPLIFY_PROBE].concat());
    packet(&mut client, 0, "07032a000000 0001000102 09");
    client.byte(4).byte(0x0e).slice(&[7]).byte(0);
    client.byte(5).byte(0).slice(b"raw").byte(8).byte(0);
    client.byte(7).byte(100).byte(1).byte(0);

    // Godot 3 (§7): a 3.2.3 client's SIMPLIFY, calls and rset to a server; the server's rset.
    let mut godot3 = Output::default();
    godot3.byte(0x20).byte(0).byte(1);
    packet(&mut godot3, 1, "02 01000000 50726f626500");
    packet(&mut godot3, 1, "00 17000080 70696e6700 01 04000000 02000000 68690000 50726f626500");
    packet(&mut godot3, 1, "00 01000000 70696e6700 01 0200000005000000");
    packet(&mut godot3, 1, "01 01000000 70726f7000 020000002a000000");
    packet(&mut godot3, 1, "04 ab");
    godot3.byte(4).byte(0).slice(&[1]).byte(0);
    packet(&mut godot3, 1, "03 50726f626500");
    godot3.byte(6).byte(0).byte(7).byte(1).byte(8).byte(0);

    let mut timeout = Output::default();
    timeout.byte(2).byte(0).byte(1).byte(0).byte(2).byte(7).byte(80).byte(8).byte(0);
    vec![
        ("scene_machine", "server-rpcs-and-relay", server.bytes),
        ("scene_machine", "client-auth-and-relay", client.bytes),
        ("scene_machine", "auth-timeout", timeout.bytes),
        ("scene_machine", "godot3-rpc-rset", godot3.bytes),
    ]
}
