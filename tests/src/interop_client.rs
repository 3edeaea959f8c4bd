//! The Godot interop client script (`tests/interop/godot/g4_client.gd` and `g3_client.gd`)
//! in Rust, for the clients of ours that stand in for the scenes: `mp_client` (multipeer-std's
//! `WebSocketMultiplayerPeer`, `ws://`) and `mio_client` (multipeer-mio's `Client`, `ws://`
//! and `wss://`). The same environment (`MP_URL`, `MP_NAME`, `MP_SCENARIO`, `MP_PEERS`,
//! `MP_CONTROL`, `MP_HOLD`, `MP_TIMEOUT`, `MP_LINGER`, `MP_SHUTDOWN`, `MP_OVERSIZE`,
//! `MP_EXPECT_FAIL`, `MP_OUTBOUND`, plus `MP_VERSION` 3 or 4), the same scenarios and the same
//! output lines; each binary only drives its transport.
//!
//! Differences, because SceneMultiplayer (4.x) and MultiplayerAPI (3.x) are not part of
//! multipeer:
//! * packets are raw `send_bytes` packets built by hand (`03 <data>` in 4.x, `04 <data>` in 3.x);
//! * the script cannot originate an RPC, so it prints `INFO rpc_not_sent` where a Godot client
//!   calls `rpc_id(next, "greet", name)`;
//! * it does decode the one RPC of the scenes (`greet(String)` on `/root/Rpc`) when a Godot
//!   client calls it here, and prints the same `RPC greet from=<sender> arg=<name>` line;
//! * connection losses are printed in the vocabulary of the Godot version emulated (3.x reports
//!   every loss as `connection_failed`), with what the core reported appended.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use multipeer::peer::{DisconnectReason, Event, PeerId, PutError, Target};
use multipeer::ws::{CloseCode, CloseInfo, Initiator};
use multipeer_std::WebSocketMultiplayerPeer;

/// An environment variable, or `fallback` when unset or empty.
pub fn env_or(key: &str, fallback: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| fallback.to_owned())
}

/// An environment variable as a number, or `fallback`.
pub fn env_f64(key: &str, fallback: f64) -> f64 {
    env_or(key, "").parse().unwrap_or(fallback)
}

/// Same as mp_server's: text (48 bytes, spaces and newlines as `_`) and hex (32 bytes).
fn describe(data: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(&data[..data.len().min(48)]).replace([' ', '\n'], "_");
    let hex = data[..data.len().min(32)].iter().map(|b| format!("{b:02x}")).collect();
    (text, hex)
}

// ----- the one RPC of the scenes ------------------------------------------------------------

/// The `@rpc` / `remote` methods of the scenes' `/root/Rpc` node, in Godot's order (4.x sends
/// the index, 3.x the name).
const RPC_METHODS: [&str; 1] = ["greet"];
/// Variant type STRING, the same number in 3.x and 4.x.
const VARIANT_STRING: u8 = 4;

/// A decoded remote call: method name and its string arguments (other argument types are
/// shown as `?`).
#[derive(Debug, PartialEq, Eq)]
struct RemoteCall {
    method: String,
    args: Vec<String>,
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes `count` Variants; only strings are read, anything else ends the list.
fn variants(data: &[u8], mut at: usize, count: u8) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..count {
        match (data.get(at), u32_at(data, at + 4)) {
            (Some(&VARIANT_STRING), Some(len)) => {
                let len = len as usize;
                let Some(bytes) = data.get(at + 8..at + 8 + len) else { break };
                out.push(String::from_utf8_lossy(bytes).into_owned());
                at += 8 + len.div_ceil(4) * 4;
            }
            _ => {
                out.push("?".to_owned());
                break;
            }
        }
    }
    out
}

/// Godot 4 `NETWORK_COMMAND_REMOTE_CALL`: meta byte (command in bits 0–2, node id size in bits
/// 4–5, method id size in bit 6, "no args or one byte array" in bit 7), node id, method index,
/// argument count, Variants.
fn decode_call_godot4(p: &[u8]) -> Option<RemoteCall> {
    let meta = *p.first()?;
    if meta & 7 != 0 {
        return None;
    }
    let node_len = [1, 2, 4].get(usize::from((meta >> 4) & 3)).copied()?;
    let name_len = if meta & 0x40 == 0 { 1 } else { 2 };
    let at = 1 + node_len;
    let index = match name_len {
        1 => usize::from(*p.get(at)?),
        _ => usize::from(u16::from_le_bytes(p.get(at..at + 2)?.try_into().ok()?)),
    };
    let method = RPC_METHODS.get(index).map_or_else(|| format!("method#{index}"), |m| (*m).to_owned());
    let at = at + name_len;
    let args = if meta & 0x80 != 0 { Vec::new() } else { variants(p, at + 1, *p.get(at)?) };
    Some(RemoteCall { method, args })
}

/// Godot 3 `NETWORK_COMMAND_REMOTE_CALL`: command byte 0, u32 path id (or offset | 2^31),
/// method name as a NUL-terminated string, argument count, Variants.
fn decode_call_godot3(p: &[u8]) -> Option<RemoteCall> {
    if *p.first()? != 0 {
        return None;
    }
    let name = p.get(5..)?;
    let end = name.iter().position(|b| *b == 0)?;
    let method = String::from_utf8_lossy(&name[..end]).into_owned();
    let at = 5 + end + 1;
    Some(RemoteCall { method, args: variants(p, at + 1, *p.get(at)?) })
}

// ----- the client -----------------------------------------------------------------------------

/// What the script needs from the multiplayer client it drives.
pub trait ScriptPeer {
    /// `set_target_peer(target)` then `put_packet(packet)`, handed to the socket at once (as
    /// Godot hands each message to its socket).
    ///
    /// # Errors
    /// The client's [`PutError`].
    fn send_to(&mut self, target: Target, packet: &[u8]) -> Result<(), PutError>;
    /// The id the server gave, once known.
    fn unique_id(&self) -> Option<PeerId>;
    /// Closes the server connection with `code` and `reason` (Godot 4:
    /// `get_peer(1).close(code, reason)`; 3.x: `disconnect_from_host(code, reason)`); false
    /// when there is none to close.
    fn close_with(&mut self, code: CloseCode, reason: &str) -> bool;
    /// `close()`.
    fn close(&mut self);
}

/// `mp_client`'s client: multipeer-std's facade.
impl ScriptPeer for WebSocketMultiplayerPeer {
    fn send_to(&mut self, target: Target, packet: &[u8]) -> Result<(), PutError> {
        self.set_target_peer(target);
        self.put_packet(packet)
    }

    fn unique_id(&self) -> Option<PeerId> {
        WebSocketMultiplayerPeer::unique_id(self)
    }

    fn close_with(&mut self, code: CloseCode, reason: &str) -> bool {
        self.disconnect_peer_with(PeerId::SERVER, code, reason, false).is_ok()
    }

    fn close(&mut self) {
        WebSocketMultiplayerPeer::close(self);
    }
}

/// The scenes' client script (`g4_client.gd`/`g3_client.gd`) over a [`ScriptPeer`]: feed it
/// events with [`on_event`](Self::on_event), packets with [`on_packet`](Self::on_packet), and
/// call [`step`](Self::step) each turn until [`finished`](Self::finished) says how it ended.
pub struct Script<P> {
    /// The client driven.
    pub peer: P,
    version: u8,
    /// `MP_NAME`.
    pub name: String,
    /// `MP_SCENARIO`.
    pub scenario: String,
    peers_total: usize,
    control: bool,
    hold: f64,
    expect_fail: bool,
    start: Instant,
    my_id: Option<PeerId>,
    connected: bool,
    finished: Option<bool>,
    names: BTreeMap<PeerId, String>,
    introduced: BTreeSet<PeerId>,
    sent_from: BTreeSet<PeerId>,
    gone: BTreeSet<PeerId>,
    traffic_sent: bool,
    phase: &'static str,
    phase_t: Instant,
    newcomers: usize,
    srv_bcast: usize,
    srv_excl: usize,
    got_srv_to: bool,
    got_big_server: bool,
    probing: bool,
}

impl<P: ScriptPeer> Script<P> {
    /// The script as the environment describes it (`MP_NAME`, `MP_SCENARIO`, `MP_PEERS`,
    /// `MP_CONTROL`, `MP_HOLD`, `MP_EXPECT_FAIL`), speaking Godot `version` (3 or 4).
    pub fn from_env(peer: P, version: u8) -> Self {
        let start = Instant::now();
        Self {
            peer,
            version,
            name: env_or("MP_NAME", "A"),
            scenario: env_or("MP_SCENARIO", "main"),
            peers_total: env_or("MP_PEERS", "3").parse().unwrap_or(3),
            control: env_or("MP_CONTROL", "1") != "0",
            hold: env_f64("MP_HOLD", 5.0),
            expect_fail: env_or("MP_EXPECT_FAIL", "0") == "1",
            start,
            my_id: None,
            connected: false,
            finished: None,
            names: BTreeMap::new(),
            introduced: BTreeSet::new(),
            sent_from: BTreeSet::new(),
            gone: BTreeSet::new(),
            traffic_sent: false,
            phase: "",
            phase_t: start,
            newcomers: 0,
            srv_bcast: 0,
            srv_excl: 0,
            got_srv_to: false,
            got_big_server: false,
            probing: false,
        }
    }

    /// How it ended: `Some(true)` after `RESULT ok`, `None` while it runs.
    #[must_use]
    pub fn finished(&self) -> Option<bool> {
        self.finished
    }

    fn raw_direct_max(&self) -> usize {
        if self.version == 3 { 65525 } else { 65534 }
    }

    fn raw_relay_max(&self) -> usize {
        if self.version == 3 { 65525 } else { 65528 }
    }

    /// Prints an `EVENT` line with the time since the start.
    pub fn event(&self, what: &str) {
        println!("EVENT {what} t_ms={}", self.start.elapsed().as_millis());
    }

    fn set_phase(&mut self, phase: &'static str) {
        self.phase = phase;
        self.phase_t = Instant::now();
    }

    fn phase_secs(&self) -> f64 {
        self.phase_t.elapsed().as_secs_f64()
    }

    /// Prints the `RESULT` line, once.
    pub fn finish(&mut self, result: &str) {
        if self.finished.is_none() {
            println!("RESULT {result}");
            self.finished = Some(result == "ok");
        }
    }

    /// `send_bytes(data, to)`: the RAW command byte, then the data.
    fn send(&mut self, data: &[u8], to: i32, tag: &str) {
        let mut packet = Vec::with_capacity(data.len() + 1);
        packet.push(if self.version == 3 { 4 } else { 3 });
        packet.extend_from_slice(data);
        let result = match Target::from_godot(to) {
            Some(target) => self.peer.send_to(target, &packet),
            None => Err(PutError::NotConnected),
        };
        let (err, detail) = match result {
            Ok(()) => (0, String::new()),
            Err(e) => (e.godot_error().code(), format!(" error={}", format!("{e:?}").replace(' ', ""))),
        };
        println!("SEND to={to} len={} err={err} tag={tag}{detail}", data.len());
    }

    fn big(&self, n: usize, tag: &str) -> Vec<u8> {
        let mut data = vec![b'x'; n];
        let head = format!("big|{}|{n}|{tag}|", self.name);
        let len = head.len().min(n);
        data[..len].copy_from_slice(&head.as_bytes()[..len]);
        data
    }

    // ----- signals ----------------------------------------------------------------------------

    /// One signal of the client.
    pub fn on_event(&mut self, event: Event) {
        match event {
            Event::ConnectionSucceeded => self.on_connected(),
            Event::PeerConnected(id) => self.on_peer_connected(id),
            Event::PeerDisconnected { peer, reason } if peer.is_server() => {
                // The end of the server connection (ours or the server's close):
                // server_disconnected follows, as SceneMultiplayer emits it after this.
                println!("INFO peer_disconnected_server reason={}", format!("{reason:?}").replace(' ', ""));
                if !matches!(reason, DisconnectReason::Kicked) {
                    self.event(&format!("peer_disconnected id={peer}"));
                }
            }
            Event::PeerDisconnected { peer, .. } => {
                self.event(&format!("peer_disconnected id={peer}"));
                self.gone.insert(peer);
            }
            Event::ServerDisconnected(info) => {
                let who = if info.initiator == Initiator::Local { "self" } else { "server" };
                self.on_lost(Some(&info), who);
            }
            Event::ConnectionFailed(failure) => {
                let why = format!("{failure:?}").replace(' ', "");
                self.event(&format!("connection_failed core={why}"));
                self.on_gone_from_server();
            }
            Event::PacketDropped { from, reason } => {
                let from = from.map_or(0, PeerId::get);
                println!("EVENT packet_dropped from={from} reason={}", reason.to_string().replace(' ', "_"));
            }
            other => println!("INFO event={}", format!("{other:?}").replace(' ', "")),
        }
    }

    /// The connection to the server ended after joining.
    fn on_lost(&mut self, info: Option<&CloseInfo>, who: &str) {
        let detail = info.map_or_else(String::new, |i| {
            format!(" code={} reason={} by={who}", i.code.0, i.reason.as_str().replace([' ', '\0'], "_"))
        });
        if let Some(info) = info {
            // The line every client prints (Godot: the kept WebSocketPeer's close code/reason).
            let reason = info.reason.as_str();
            let hex: String = reason.bytes().map(|b| format!("{b:02x}")).collect();
            self.event(&format!(
                "server_close code={} reason={} reason_hex={hex}",
                info.godot_code(),
                reason.replace([' ', '\0'], "_")
            ));
        }
        if self.version == 3 {
            if let Some(i) = info.filter(|i| i.initiator == Initiator::Remote) {
                self.event(&format!(
                    "server_close_request code={} reason={}",
                    i.code.0,
                    i.reason.as_str().replace([' ', '\0'], "_")
                ));
            }
            // Godot 3 reports every loss of the connection as connection_failed.
            self.event(&format!("connection_failed{detail}"));
        } else {
            self.event(&format!("server_disconnected{detail}"));
        }
        self.on_gone_from_server();
    }

    /// The server connection is gone (or never came): the result, by the phase reached.
    pub fn on_gone_from_server(&mut self) {
        self.connected = false;
        if matches!(self.phase, "await_kick" | "closing" | "await_server_close")
            || self.scenario == "size"
            || (self.scenario == "connect-only" && self.phase == "linger")
            || (self.scenario == "connect-only" && self.expect_fail && self.my_id.is_none())
        {
            self.finish("ok");
        } else {
            self.finish(&format!("fail reason=lost_connection phase={}", self.phase));
        }
    }

    fn on_connected(&mut self) {
        self.connected = true;
        self.my_id = self.peer.unique_id();
        let id = self.my_id.map_or(0, PeerId::get);
        self.event(&format!("connected_to_server id={id}"));
        match self.scenario.as_str() {
            "connect-only" => self.set_phase("linger"),
            "refuse" => self.send(b"ctl:refuse", 1, "ctl:refuse"),
            _ => {
                let hello = format!("hello|{}", self.name);
                self.send(hello.as_bytes(), 1, "hello");
            }
        }
    }

    fn on_peer_connected(&mut self, id: PeerId) {
        self.event(&format!("peer_connected id={id}"));
        if self.expect_fail && id.is_server() {
            self.finish("fail reason=connected_but_expected_failure");
        }
        if !id.is_server() && !self.connected {
            println!("INFO peer_connected_before_connected_to_server id={id}");
        }
        if !id.is_server() && self.scenario == "refuse" && self.phase == "await_newcomer" {
            self.newcomers += 1;
        }
        if !id.is_server() && matches!(self.scenario.as_str(), "main" | "size") && self.introduced.insert(id)
        {
            let intro = format!("intro|{}", self.name);
            self.send(intro.as_bytes(), id.get(), "intro");
        }
    }

    /// One packet from `from`.
    pub fn on_packet(&mut self, from: PeerId, packet: &[u8]) {
        let raw = if self.version == 3 { 4 } else { 3 };
        let Some((&command, data)) = packet.split_first() else { return };
        if command != raw {
            let call =
                if self.version == 3 { decode_call_godot3(packet) } else { decode_call_godot4(packet) };
            match call {
                Some(call) => {
                    let arg = call.args.first().map_or("", String::as_str).replace(' ', "_");
                    println!("RPC {} from={from} arg={arg}", call.method);
                }
                None => println!("INFO scene_packet from={from} command={command} len={}", packet.len()),
            }
            return;
        }
        let (text, hex) = describe(data);
        println!("RECV from={from} mode=raw len={} text={text} bytes={hex}", data.len());
        let text = String::from_utf8_lossy(&data[..data.len().min(48)]).into_owned();
        let parts: Vec<&str> = text.split('|').collect();
        match parts[0] {
            "intro" => {
                if let Some(name) = parts.get(1).filter(|_| !self.names.contains_key(&from)) {
                    println!("NAME id={from} name={name}");
                    self.names.insert(from, (*name).to_owned());
                    self.maybe_start_traffic();
                }
            }
            "sent" => {
                self.sent_from.insert(from);
            }
            "srv-bcast" => self.srv_bcast += 1,
            "srv-excl" => self.srv_excl += 1,
            "srv-to" => self.got_srv_to = true,
            "big" => self.got_big_server |= parts.get(1) == Some(&"server"),
            "ack" => match parts.get(1) {
                Some(&"refuse") => {
                    self.event("refusing");
                    self.set_phase("holding");
                }
                Some(&"accept") => {
                    self.event("accepting");
                    self.set_phase("await_newcomer");
                }
                _ => {}
            },
            _ => {}
        }
    }

    // ----- the scenario -------------------------------------------------------------------------

    fn sorted_names(&self) -> Vec<String> {
        let mut all: Vec<String> = self.names.values().cloned().collect();
        all.push(self.name.clone());
        all.sort();
        all
    }

    fn id_of(&self, name: &str) -> Option<PeerId> {
        self.names.iter().find(|(_, n)| *n == name).map(|(id, _)| *id)
    }

    fn maybe_start_traffic(&mut self) {
        if self.traffic_sent || self.names.len() + 1 < self.peers_total {
            return;
        }
        self.traffic_sent = true;
        let all = self.sorted_names();
        let me = all.iter().position(|n| *n == self.name).unwrap_or(0);
        let next_name = all[(me + 1) % all.len()].clone();
        let next_id = self.id_of(&next_name).map_or(0, PeerId::get);
        println!("INFO all_introduced next={next_name} next_id={next_id}");
        let first = all[0] == self.name;
        if self.scenario == "size" {
            if first {
                self.size_probes(next_id);
            }
        } else {
            self.send(format!("bcast|{}", self.name).as_bytes(), 0, "bcast");
            self.send(format!("excl|{}|{next_name}", self.name).as_bytes(), -next_id, "excl");
            self.send(format!("noserver|{}", self.name).as_bytes(), -1, "noserver");
            println!("INFO rpc_not_sent to={next_id} reason=multipeer_does_not_encode_rpcs tag=rpc");
            if self.control {
                self.send(b"ctl:server-traffic", 1, "ctl:server-traffic");
            }
            if first {
                self.size_probes(next_id);
            }
        }
        self.send(format!("sent|{}", self.name).as_bytes(), 0, "sent");
    }

    fn size_probes(&mut self, next_id: i32) {
        self.probing = true;
        let (direct, relay) = (self.raw_direct_max(), self.raw_relay_max());
        self.send(&self.big(direct, "direct-max"), 1, "big-direct-max");
        self.send(&self.big(direct + 1, "direct-over"), 1, "big-direct-over");
        self.send(&self.big(relay, "relay-max"), next_id, "big-relay-max");
        self.send(&self.big(relay + 1, "relay-over"), next_id, "big-relay-over");
        if self.control {
            self.send(b"ctl:big", 1, "ctl:big");
        }
    }

    fn quiet(&self) -> bool {
        if !self.traffic_sent || self.sent_from.len() + 1 < self.peers_total {
            return false;
        }
        if !self.control {
            return true;
        }
        if self.probing && !self.got_big_server {
            return false;
        }
        if self.scenario == "size" {
            return true;
        }
        self.srv_bcast >= self.peers_total && self.srv_excl + 1 >= self.peers_total && self.got_srv_to
    }

    /// A clean close with Close 4001 "leaving" (Godot 4: `get_peer(1).close(4001, "leaving")`,
    /// 3.x: `disconnect_from_host(4001, "leaving")`); `server_disconnected` follows once the
    /// closing handshake is over, as in Godot 4.
    fn leave_self(&mut self, why: &str) {
        self.event(&format!("leaving why={why}"));
        self.set_phase("closing");
        if !self.peer.close_with(CloseCode(4001), "leaving") {
            self.peer.close();
        }
    }

    /// One turn of the scenario: timers and phase changes; gives up after `timeout` seconds.
    pub fn step(&mut self, timeout: f64) {
        if self.finished.is_some() {
            return;
        }
        if self.start.elapsed().as_secs_f64() > timeout {
            self.finish(&format!("fail reason=timeout phase={}", self.phase));
            return;
        }
        if self.phase == "closing" {
            // The end of our own close is reported as server_disconnected (see on_event).
            if self.phase_secs() > 3.0 {
                self.finish("fail reason=close_not_confirmed");
            }
            return;
        }
        match self.scenario.as_str() {
            "main" => self.step_main(),
            "size" => self.step_size(),
            "refuse" => self.step_refuse(),
            "connect-only" => {
                if self.phase == "linger" && self.phase_secs() > env_f64("MP_LINGER", 0.5) {
                    if env_or("MP_SHUTDOWN", "0") == "1" {
                        self.set_phase("await_server_close");
                        self.send(b"ctl:shutdown", 1, "ctl:shutdown");
                    } else {
                        self.finish("ok");
                    }
                } else if self.phase == "await_server_close" && self.phase_secs() > 1.5 {
                    self.leave_self("server_still_open");
                }
            }
            _ => {}
        }
    }

    fn step_main(&mut self) {
        if !self.connected || !self.quiet() {
            return;
        }
        let all = self.sorted_names();
        let (first, last) = (all[0].clone(), all[all.len() - 1].clone());
        if self.phase.is_empty() {
            self.set_phase("quiet");
            self.event("quiet");
        }
        if self.name == last && all.len() > 1 {
            if self.phase == "quiet" && self.phase_secs() > 0.3 {
                self.leave_self("early_leaver");
            }
            return;
        }
        let leaver_gone = self.id_of(&last).is_some_and(|id| self.gone.contains(&id));
        if self.name != first {
            if self.phase == "quiet" && leaver_gone {
                if self.control {
                    self.set_phase("await_kick");
                    self.send(b"ctl:kick-me", 1, "ctl:kick-me");
                } else {
                    self.leave_self("no_control");
                }
            } else if self.phase == "await_kick" && self.phase_secs() > 3.0 {
                self.event("kick_timeout");
                self.leave_self("kick_timeout");
            }
            return;
        }
        if self.phase == "quiet" && self.gone.len() + 1 >= all.len() {
            if self.control {
                self.set_phase("await_server_close");
                self.send(b"ctl:shutdown", 1, "ctl:shutdown");
            } else {
                self.leave_self("done");
            }
        } else if self.phase == "await_server_close" && self.phase_secs() > 1.5 {
            self.leave_self("server_still_open");
        }
    }

    fn step_size(&mut self) {
        if !self.connected || !self.quiet() {
            if self.phase == "await_server_close" && self.phase_secs() > 1.5 {
                self.leave_self("server_still_open");
            }
            return;
        }
        let all = self.sorted_names();
        if self.phase.is_empty() {
            self.set_phase("quiet");
            self.event("quiet");
        }
        if self.phase == "quiet" && self.phase_secs() > 0.5 {
            self.set_phase("oversize_sent");
            if self.name == all[all.len() - 1] {
                let default =
                    if self.version == 3 { self.raw_direct_max() + 2 } else { self.raw_direct_max() + 1 };
                let n = env_or("MP_OVERSIZE", "").parse().unwrap_or(default);
                self.send(&self.big(n, "oversize"), 1, "big-oversize");
            }
        } else if self.phase == "oversize_sent" && self.phase_secs() > 2.5 {
            if self.name == all[0] && self.control {
                self.set_phase("await_server_close");
                self.send(b"ctl:shutdown", 1, "ctl:shutdown");
            } else {
                self.leave_self("size_done");
            }
        } else if self.phase == "await_server_close" && self.phase_secs() > 1.5 {
            self.leave_self("server_still_open");
        }
    }

    fn step_refuse(&mut self) {
        if self.phase == "holding" && self.phase_secs() > self.hold {
            self.set_phase("await_accept");
            self.send(b"ctl:accept", 1, "ctl:accept");
        } else if self.phase == "await_newcomer" {
            if self.newcomers > 0 && self.phase_secs() > 1.2 {
                self.set_phase("await_server_close");
                self.send(b"ctl:shutdown", 1, "ctl:shutdown");
            }
        } else if self.phase == "await_server_close" && self.phase_secs() > 1.5 {
            self.leave_self("server_still_open");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// REMOTE_CALL packets captured from Godot 4.6.3 and 3.2.3 (`rpc_id(next, "greet", "A")`
    /// before the path was confirmed, so the path follows the arguments).
    #[test]
    fn decodes_the_greet_rpc_of_both_versions() {
        let g4 = hex("2013000080000104000000010000004100000052706300");
        assert_eq!(
            decode_call_godot4(&g4),
            Some(RemoteCall { method: "greet".into(), args: vec!["A".into()] })
        );
        let g3 = hex("00180000806772656574000104000000010000004300000052706300");
        assert_eq!(
            decode_call_godot3(&g3),
            Some(RemoteCall { method: "greet".into(), args: vec!["C".into()] })
        );
        // Path caching packets are not calls.
        assert_eq!(decode_call_godot4(&hex("020101000000")), None);
        assert_eq!(decode_call_godot3(&hex("020100000052706300")), None);
        // Truncated packets decode to nothing or to what is there, never panic.
        for cut in 0..g4.len() {
            let _ = decode_call_godot4(&g4[..cut]);
        }
        for cut in 0..g3.len() {
            let _ = decode_call_godot3(&g3[..cut]);
        }
        assert_eq!(decode_call_godot3(&g3[..6]), None, "the name is not terminated");
    }
}
