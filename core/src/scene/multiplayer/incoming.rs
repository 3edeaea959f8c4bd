//! Received packets: gating by authentication, `SYS` (auth, peer announcements, relay), the
//! path cache, `REMOTE_CALL`, `RAW` and the replication headers.

use alloc::string::String;

use super::{AUTH, Refusal, Replication, RpcCall, SceneEvent, SceneMultiplayer, Status};
use crate::peer::scene::{self as sys, SysCommand};
use crate::peer::{PeerId, TransferMode};
use crate::scene::{ConfirmPath, NodeTarget, RemoteCall, RpcMode, SimplifyPath};
use crate::time::Instant;

fn peer_id(raw: i32) -> Option<PeerId> {
    u32::try_from(raw).ok().and_then(PeerId::new)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl SceneMultiplayer {
    /// A packet from the transport peer `from` (`get_packet_peer()`), as Godot's
    /// `SceneMultiplayer::_process_packet` takes it. Never fails: what cannot be used becomes a
    /// [`SceneEvent::Refused`].
    pub fn handle_packet(&mut self, now: Instant, from: PeerId, packet: &[u8]) {
        self.now = self.now.max(now);
        let Some(state) = self.peers.get(&from) else {
            return self.refuse(from, Refusal::NotConnected);
        };
        if state.relayed {
            // Relayed peers are reached through the server, never directly.
            return self.refuse(from, Refusal::NotConnected);
        }
        match state.status {
            Status::Admitted if self.is_holding(from) => self.hold(from, packet, None),
            Status::Admitted => {
                self.process(from, packet, false);
                if let Some(blocked) = self.blocked.take() {
                    // A relay target had no room: this packet and the sender's next ones wait.
                    self.hold(from, packet, Some(blocked));
                }
            }
            Status::Pending { remote, .. } => {
                if packet.get(..2) != Some(&AUTH[..]) {
                    return self.refuse(from, Refusal::NotAuthenticated);
                }
                if packet.len() > 2 {
                    // Data after the peer completed is not for the callback any more.
                    if remote {
                        return self.refuse(from, Refusal::UnexpectedAuth);
                    }
                    self.push_event(SceneEvent::AuthData { peer: from, data: packet[2..].into() });
                    return;
                }
                let mut admit = false;
                if let Some(state) = self.peers.get_mut(&from) {
                    if let Status::Pending { local, remote, .. } = &mut state.status {
                        *remote = true;
                        admit = *local;
                    }
                }
                if admit {
                    self.admit(from);
                }
            }
        }
    }

    /// An admitted peer's packet; `relayed` when it came out of a `RELAY`.
    pub(super) fn process(&mut self, from: PeerId, packet: &[u8], relayed: bool) {
        let Some(&first) = packet.first() else { return self.refuse(from, Refusal::Malformed) };
        if !self.config.version.is_godot4() {
            return self.process_godot3(from, packet);
        }
        match first & 7 {
            0 => self.process_call(from, packet),
            1 => self.process_simplify(from, packet),
            2 => self.process_confirm(from, packet),
            3 if packet.len() >= 2 => {
                self.push_event(SceneEvent::PeerPacket { from, data: packet[1..].into() });
            }
            4 if packet.len() >= 18 => {
                let header = Replication::Spawn {
                    scene: packet[1],
                    spawner: u32_at(packet, 2).unwrap_or(0),
                    net_id: u32_at(packet, 6).unwrap_or(0),
                };
                self.push_event(SceneEvent::Replication { from, header });
            }
            5 if packet.len() >= 5 => {
                let header = Replication::Despawn { net_id: u32_at(packet, 1).unwrap_or(0) };
                self.push_event(SceneEvent::Replication { from, header });
            }
            6 if first & 0x10 != 0 && packet.len() >= 17 => {
                self.push_event(SceneEvent::Replication { from, header: Replication::Sync { time: None } });
            }
            6 if first & 0x10 == 0 && packet.len() >= 11 => {
                let time = Some(u16::from_le_bytes([packet[1], packet[2]]));
                self.push_event(SceneEvent::Replication { from, header: Replication::Sync { time } });
            }
            7 if relayed => self.refuse(from, Refusal::NestedSys),
            7 => self.process_sys(from, packet),
            _ => self.refuse(from, Refusal::Malformed),
        }
    }

    fn process_sys(&mut self, from: PeerId, packet: &[u8]) {
        if packet == AUTH {
            // A completion after admission is ignored, as Godot does.
            return;
        }
        if packet.get(1) == Some(&0) {
            return self.refuse(from, Refusal::UnexpectedAuth);
        }
        let message = match sys::decode(packet) {
            Ok(message) => message,
            Err(sys::SysError::UnknownCommand(c)) => return self.refuse(from, Refusal::UnexpectedSys(c)),
            Err(sys::SysError::TooShort) => return self.refuse(from, Refusal::Malformed),
        };
        let server = self.is_server();
        match message.command {
            SysCommand::Relay if !self.config.server_relay => {
                self.refuse(from, Refusal::BadRelay(message.id))
            }
            SysCommand::Relay if server => self.relay(from, message.id, message.payload),
            SysCommand::Relay => match peer_id(message.id) {
                // A client: the server relays from another client it announced.
                Some(source)
                    if from.is_server()
                        && Some(source) != self.local
                        && self.peers.get(&source).is_some_and(|s| s.relayed) =>
                {
                    self.process(source, message.payload, true);
                }
                _ => self.refuse(from, Refusal::BadRelay(message.id)),
            },
            SysCommand::AddPeer | SysCommand::DelPeer if server || !from.is_server() => {
                self.refuse(from, Refusal::UnexpectedSys(message.command.to_byte()));
            }
            SysCommand::AddPeer
                if self.peers.values().filter(|s| s.relayed).count() >= self.config.max_relayed_peers =>
            {
                self.refuse(from, Refusal::CacheFull);
            }
            SysCommand::AddPeer => match peer_id(message.id) {
                Some(p) if !p.is_server() && Some(p) != self.local && !self.peers.contains_key(&p) => {
                    self.peers.insert(p, super::PeerState::new(Status::Admitted, true));
                    self.push_event(SceneEvent::PeerConnected(p));
                }
                _ => self.refuse(from, Refusal::UnexpectedSys(1)),
            },
            SysCommand::DelPeer => match peer_id(message.id) {
                Some(p) if self.peers.get(&p).is_some_and(|s| s.relayed) => {
                    self.peers.remove(&p);
                    self.push_event(SceneEvent::PeerDisconnected(p));
                }
                _ => self.refuse(from, Refusal::UnexpectedSys(2)),
            },
            SysCommand::Auth => self.refuse(from, Refusal::UnexpectedAuth),
        }
    }

    /// Server: a client's `RELAY(target, inner)`: forwarded as `RELAY(from, inner)` to each
    /// admitted target, and processed here for a broadcast or an exclusion of another peer;
    /// when a target has no room, nothing happens and `blocked` says which (`flow.rs`).
    fn relay(&mut self, from: PeerId, target: i32, inner: &[u8]) {
        let admitted = |p: &PeerId| *p != from;
        let (targets, local): (alloc::vec::Vec<PeerId>, bool) = match target {
            0 => (self.peers().filter(admitted).collect(), true),
            t if t < 0 => match t.checked_neg().and_then(peer_id) {
                Some(excluded) => (
                    self.peers().filter(admitted).filter(|p| *p != excluded).collect(),
                    !excluded.is_server(),
                ),
                None => return self.refuse(from, Refusal::BadRelay(t)),
            },
            t => match peer_id(t) {
                Some(p) if p != from && !p.is_server() && self.peers().any(|q| q == p) => {
                    (alloc::vec![p], false)
                }
                _ => return self.refuse(from, Refusal::BadRelay(t)),
            },
        };
        // All or none: a target without room makes the packet (and its sender) wait.
        let len = sys::SYS_HEADER_LEN + inner.len();
        if let Some(&full) = targets.iter().find(|p| !self.relay_room(**p, len)) {
            self.blocked = Some((full, len));
            return;
        }
        let forward = [&sys::header(SysCommand::Relay, from.get())[..], inner].concat();
        for peer in targets {
            self.push_transmit(super::Transmit {
                to: crate::peer::Target::Peer(peer),
                mode: TransferMode::Reliable,
                channel: 0,
                data: forward.clone(),
            });
        }
        if local {
            if inner.first().is_some_and(|b| b & 7 == sys::COMMAND_SYS) {
                return self.refuse(from, Refusal::NestedSys);
            }
            self.process(from, inner, true);
        }
    }

    pub(super) fn process_simplify(&mut self, from: PeerId, packet: &[u8]) {
        let version = self.config.version;
        let Ok(simplify) = SimplifyPath::decode(packet, version) else {
            return self.refuse(from, Refusal::Malformed);
        };
        let Some(entry) = self.nodes.get(simplify.path) else {
            // Godot drops it without a CONFIRM; the sender keeps sending full paths.
            return self.refuse(from, Refusal::UnknownNode(simplify.path.into()));
        };
        let valid = simplify.checksum == Some(&entry.node.methods.checksum()[..]);
        let by_id = self.confirms_by_id();
        let max = self.config.max_cached_paths;
        let Some(state) = self.peers.get_mut(&from) else { return };
        let replaces = state.paths.contains_key(&simplify.id);
        if replaces && by_id {
            return self.refuse(from, Refusal::DuplicateCacheId(simplify.id));
        }
        if !replaces && state.paths.len() >= max {
            return self.refuse(from, Refusal::CacheFull);
        }
        if !self.room(from, 1, simplify.path.len() + 6) {
            return self.refuse(from, Refusal::OutboundFull);
        }
        let path = String::from(simplify.path);
        let confirm = if by_id {
            ConfirmPath::Id { valid, id: simplify.id }
        } else {
            ConfirmPath::Path { valid, path: &path }
        };
        let mut out = alloc::vec![0; path.len() + 6];
        let Ok(n) = confirm.encode(version, &mut out) else { return self.refuse(from, Refusal::Malformed) };
        out.truncate(n);
        if let Some(state) = self.peers.get_mut(&from) {
            state.paths.insert(simplify.id, path.clone());
        }
        self.queue(from, TransferMode::Reliable, 0, &out);
        if !valid {
            self.push_event(SceneEvent::ChecksumMismatch { peer: from, path });
        }
    }

    pub(super) fn process_confirm(&mut self, from: PeerId, packet: &[u8]) {
        let Ok(confirm) = ConfirmPath::decode(packet, self.config.version) else {
            return self.refuse(from, Refusal::Malformed);
        };
        let (valid, id) = match confirm {
            ConfirmPath::Id { valid, id } => (valid, Some(id)),
            // 3.x and 4.0–4.2 confirm by path, and log one they never simplified.
            ConfirmPath::Path { valid, path } => match self.nodes.get(path).and_then(|e| e.cache_id) {
                Some(id) => (valid, Some(id)),
                None => return self.refuse(from, Refusal::UnexpectedConfirm),
            },
        };
        // An id no longer assigned is ignored silently, as Godot does.
        let Some((id, path)) = id.and_then(|id| self.ids.get(&id).map(|p| (id, p.clone()))) else { return };
        match self.peers.get_mut(&from).and_then(|s| s.sent.get_mut(&id)) {
            Some(confirmed) => *confirmed = true,
            None => return self.refuse(from, Refusal::UnexpectedConfirm),
        }
        if !valid {
            self.push_event(SceneEvent::ChecksumMismatch { peer: from, path });
        }
    }

    fn process_call(&mut self, from: PeerId, packet: &[u8]) {
        let call = match RemoteCall::decode(packet) {
            Ok(call) => call,
            Err(e) => return self.refuse(from, Refusal::BadCall(e)),
        };
        let by_path = matches!(call.node, NodeTarget::Path(_));
        let path = match call.node {
            NodeTarget::Path(path) => String::from(path),
            NodeTarget::Cached(id) => match self.peers.get(&from).and_then(|s| s.paths.get(&id)) {
                Some(path) => path.clone(),
                None => return self.refuse(from, Refusal::UnknownCacheId(id)),
            },
        };
        let Some(entry) = self.nodes.get(&path) else { return self.refuse(from, Refusal::UnknownNode(path)) };
        let Some((name, config)) = entry.node.methods.method(call.method) else {
            return self.refuse(from, Refusal::UnknownMethod { node: path, id: call.method });
        };
        let method = String::from(name);
        let allowed = match config.rpc_mode {
            RpcMode::Disabled => false,
            RpcMode::AnyPeer => true,
            RpcMode::Authority => entry.node.authority == from,
        };
        if !allowed {
            return self.refuse(from, Refusal::NotAllowed { node: path, method });
        }
        let arity = entry.node.arity.get(&method).copied().unwrap_or(super::Arity::ANY);
        let args = match call.args.decode(&self.decode_options()) {
            Ok(args) => args,
            Err(error) => return self.refuse(from, Refusal::BadArgument { node: path, method, error }),
        };
        if !arity.accepts(args.len()) {
            return self.refuse(from, Refusal::WrongArity { node: path, method, count: args.len() });
        }
        self.stats.rpcs_in += 1;
        self.stats.rpcs_in_by_path += u64::from(by_path);
        self.push_event(SceneEvent::Rpc(RpcCall { sender: from, node: path, method, args }));
    }
}
