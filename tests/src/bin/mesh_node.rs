//! A Rust mesh peer for the WebRTC interop runs: joins (or creates) a lobby on a lobby server,
//! meshes with everyone in it, and exchanges packets with every peer on Godot's three lanes.
//!
//! ```text
//! mesh_node --lobby ws://127.0.0.1:9080 [--join NAME] [--peers K] [--count N] [--timeout SECS]
//!           [--stun stun:HOST:PORT] [--turn turn:HOST:PORT --turn-user U --turn-password P]
//!           [--relay-only 1] [--local-ip IP]
//! ```
//!
//! `--local-ip` gathers host candidates on that address instead of 127.0.0.1 (the NAT lab).
//!
//! Without `--join` it creates a lobby. It prints one machine-readable line per fact:
//!
//! * `lobby NAME`, `id ID`: the lobby joined and our id in it;
//! * `connected PEER`: all channels to PEER are open; we then send N packets on each lane,
//!   `r:SEQ` (reliable), `o:SEQ` (unreliable ordered), `u:SEQ` (unreliable), as binary;
//! * once all N reliable packets from a peer arrived, we send it `fin` on the reliable lane;
//! * `result PEER reliable=R ordered=O unreliable=U` when PEER is complete: its N reliable
//!   packets arrived in order and its `fin` arrived (it got all of ours); with `--stun`, also
//!   `mapped PEER ADDR` for each address the STUN server reported for that peer's socket;
//! * `path PEER LOCAL REMOTE`: the candidate pair the traffic to PEER went over;
//! * `relay sent=S received=R allocated=N` once complete: datagrams sent and received through
//!   TURN relays, and how many relays were allocated;
//! * `done` and exit 0 when K peers are complete; `fail REASON` and exit 1 otherwise (a lane
//!   out of order, a duplicate, a packet on the wrong lane, a peer lost, a peer whose ICE
//!   failed before connecting, the timeout).
//!
//! The lobby's creator (id 1) stays until the K peers have left the lobby: the server closes a
//! lobby whose host leaves, which would cut the signalling of peers still meshing with each
//! other. The others leave 500 ms after completing.
//!
//! The JavaScript and Python peers of `tests/interop/webrtc` follow the same rules.

use core::time::Duration;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use multipeer::peer::{Event, PeerId, Target, TransferMode};
use multipeer::signaling::LobbyEvent;
use multipeer_std::webrtc::{IceServer, WebRtcConfig, WebRtcMultiplayerPeer};

#[derive(Default)]
struct Tally {
    /// Packets received per lane.
    counts: [usize; 3],
    /// The last sequence number seen on the ordered lanes.
    last: [Option<u32>; 2],
    /// Unreliable sequence numbers seen (duplicates are failures).
    unordered_seen: Vec<bool>,
    fin_received: bool,
    fin_sent: bool,
    reported: bool,
}

struct Options {
    lobby: String,
    join: String,
    peers: usize,
    count: u32,
    timeout: Duration,
    stun: Option<String>,
    turn: Option<String>,
    turn_user: String,
    turn_password: String,
    relay_only: bool,
    local_ip: Option<core::net::IpAddr>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        lobby: "ws://127.0.0.1:9080".into(),
        join: String::new(),
        peers: 1,
        count: 100,
        timeout: Duration::from_secs(30),
        stun: None,
        turn: None,
        turn_user: String::new(),
        turn_password: String::new(),
        relay_only: false,
        local_ip: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--lobby" => o.lobby = value,
            "--join" => o.join = value,
            "--peers" => o.peers = value.parse().map_err(|_| "bad --peers")?,
            "--count" => o.count = value.parse().map_err(|_| "bad --count")?,
            "--stun" => o.stun = Some(value),
            "--turn" => o.turn = Some(value),
            "--turn-user" => o.turn_user = value,
            "--turn-password" => o.turn_password = value,
            "--relay-only" => o.relay_only = value == "1",
            "--local-ip" => o.local_ip = Some(value.parse().map_err(|_| "bad --local-ip")?),
            "--timeout" => o.timeout = Duration::from_secs(value.parse().map_err(|_| "bad --timeout")?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// Records one packet; an error says what rule it broke.
fn record(t: &mut Tally, mode: TransferMode, data: &[u8], count: u32) -> Result<(), String> {
    let text = core::str::from_utf8(data).map_err(|_| "a packet that is not text".to_string())?;
    if text == "fin" {
        if mode != TransferMode::Reliable {
            return Err("fin on an unreliable lane".into());
        }
        t.fin_received = true;
        return Ok(());
    }
    let (lane, seq) = text.split_once(':').ok_or_else(|| format!("malformed packet {text:?}"))?;
    let seq: u32 = seq.parse().map_err(|_| format!("malformed packet {text:?}"))?;
    if seq >= count {
        return Err(format!("sequence {seq} out of range"));
    }
    let index = match (lane, mode) {
        ("r", TransferMode::Reliable) => 0,
        ("o", TransferMode::UnreliableOrdered) => 1,
        ("u", TransferMode::Unreliable) => 2,
        _ => return Err(format!("{text:?} arrived on the {mode:?} lane")),
    };
    match index {
        0 if seq as usize != t.counts[0] => {
            return Err(format!("reliable lane: {seq} after {}", t.counts[0]));
        }
        0 | 1 => {
            if t.last[index].is_some_and(|last| seq <= last) {
                return Err(format!("lane {lane}: {seq} after {:?}", t.last[index]));
            }
            t.last[index] = Some(seq);
        }
        _ => {
            if t.unordered_seen.len() < count as usize {
                t.unordered_seen.resize(count as usize, false);
            }
            if core::mem::replace(&mut t.unordered_seen[seq as usize], true) {
                return Err(format!("unreliable lane: {seq} twice"));
            }
        }
    }
    t.counts[index] += 1;
    Ok(())
}

fn send_lanes(peer: &mut WebRtcMultiplayerPeer, to: PeerId, count: u32) -> Result<(), String> {
    peer.set_target_peer(Target::Peer(to));
    for (mode, lane) in [
        (TransferMode::Reliable, 'r'),
        (TransferMode::UnreliableOrdered, 'o'),
        (TransferMode::Unreliable, 'u'),
    ] {
        peer.set_transfer_mode(mode);
        for seq in 0..count {
            peer.put_packet(format!("{lane}:{seq}").as_bytes()).map_err(|e| format!("send to {to}: {e}"))?;
        }
    }
    Ok(())
}

fn run(o: &Options) -> Result<(), String> {
    let mut config = WebRtcConfig::default().relay_only(o.relay_only);
    if let Some(ip) = o.local_ip {
        config = config.local_ips([ip]);
    }
    if let Some(url) = &o.turn {
        config =
            config.ice_server(IceServer::turn(url.clone(), o.turn_user.clone(), o.turn_password.clone()));
    }
    if let Some(url) = &o.stun {
        config = config.ice_server(IceServer::stun(url.clone()));
    }
    let mut peer = WebRtcMultiplayerPeer::new(config);
    peer.connect_lobby(&o.lobby, &o.join, true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + o.timeout;
    let mut tallies: BTreeMap<PeerId, Tally> = BTreeMap::new();
    let mut announced = (false, false);
    let mut complete = 0;
    let mut linger_until: Option<Instant> = None;
    let mut left = 0;
    loop {
        if Instant::now() > deadline {
            let state: Vec<String> = tallies
                .iter()
                .map(|(p, t)| format!("{p}:{:?}/fin={}/{}", t.counts, t.fin_received, t.fin_sent))
                .collect();
            let why = peer.stats().last_error.clone().unwrap_or_default();
            return Err(format!(
                "timeout ({complete} of {} peers complete; {}; last error: {why:?})",
                o.peers,
                state.join(" ")
            ));
        }
        if let Some(until) = linger_until {
            // Keep answering so that our last packets and acknowledgements get through.
            if Instant::now() >= until {
                return Ok(());
            }
        }
        peer.poll().map_err(|e| e.to_string())?;
        // A peer that never connected is dropped without an event (as in Godot); its ICE
        // failure is counted.
        if peer.stats().ice_failures > 0 {
            let why = peer.stats().last_error.clone().unwrap_or_default();
            return Err(format!("{why} ({complete} of {} peers complete)", o.peers));
        }
        if !announced.0 {
            if let Some(name) = peer.lobby_name() {
                say(&format!("lobby {name}"));
                announced.0 = true;
            }
        }
        if !announced.1 {
            if let Some(id) = peer.unique_id() {
                say(&format!("id {id}"));
                announced.1 = true;
            }
        }
        while let Some(event) = peer.poll_lobby_event() {
            if let LobbyEvent::PeerDisconnected(_) = event {
                left += 1;
            }
        }
        while let Some(event) = peer.poll_event() {
            match event {
                Event::PeerConnected(p) => {
                    say(&format!("connected {p}"));
                    tallies.entry(p).or_default();
                    send_lanes(&mut peer, p, o.count)?;
                }
                Event::PeerDisconnected { peer: p, reason }
                    if tallies.get(&p).is_some_and(|t| !t.reported) =>
                {
                    let t = &tallies[&p];
                    return Err(format!(
                        "peer {p} lost before completing: {reason:?} (got {:?}, fin in/out {}/{})",
                        t.counts, t.fin_received, t.fin_sent
                    ));
                }
                _ => {}
            }
        }
        while let Some((data, info)) = peer.get_packet() {
            let t = tallies.entry(info.from).or_default();
            record(t, info.mode, &data, o.count).map_err(|e| format!("from {}: {e}", info.from))?;
        }
        for (p, t) in &mut tallies {
            if !t.fin_sent && t.counts[0] == o.count as usize {
                peer.set_target_peer(Target::Peer(*p));
                peer.set_transfer_mode(TransferMode::Reliable);
                peer.put_packet(b"fin").map_err(|e| format!("fin to {p}: {e}"))?;
                t.fin_sent = true;
            }
            if t.fin_sent && t.fin_received && !t.reported {
                t.reported = true;
                complete += 1;
                say(&format!(
                    "result {p} reliable={} ordered={} unreliable={}",
                    t.counts[0], t.counts[1], t.counts[2]
                ));
                if let Some((local, remote)) = peer.get_peer_path(*p) {
                    say(&format!("path {p} {local} {remote}"));
                }
                for addr in peer.get_peer_mapped_addrs(*p) {
                    say(&format!("mapped {p} {addr}"));
                }
            }
        }
        let host_may_leave = peer.unique_id() != Some(PeerId::SERVER) || left >= o.peers;
        if complete >= o.peers && linger_until.is_none() && host_may_leave {
            let stats = peer.stats();
            say(&format!("largest_datagram {}", stats.largest_datagram));
            say(&format!(
                "relay sent={} received={} allocated={}",
                stats.relayed_datagrams_sent,
                stats.turn_datagrams_received,
                peer.get_peer_relayed_addrs().len()
            ));
            if stats.largest_datagram > 1228 {
                return Err(format!("a UDP payload of {} bytes (> 1228)", stats.largest_datagram));
            }
            linger_until = Some(Instant::now() + Duration::from_millis(500));
        }
        peer.wait(Duration::from_millis(1));
    }
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mesh_node: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => {
            say("done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(&format!("fail {e}"));
            ExitCode::FAILURE
        }
    }
}
