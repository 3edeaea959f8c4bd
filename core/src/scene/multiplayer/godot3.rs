//! Godot 3's `MultiplayerAPI` (3.2.3) in the machine (`scene-multiplayer.md` §7): `rpc` and
//! `rset` by name with plain variants, the 3.x path cache (`SIMPLIFY_PATH` 2 with an id,
//! `CONFIRM_PATH` 3 by path), the modes `remote`, `master`, `puppet` and their `*sync` forms,
//! and `RAW` 4.
//!
//! 3.x has no authentication and no `SYS` packets of its own: peers are admitted as the
//! transport announces them, and the 3.x server relays by the transport header's target, so a
//! call that every target has confirmed leaves as **one** packet addressed to the caller's
//! target (0 or −id), as 3.2.3 sends it.

use alloc::string::String;
use alloc::vec::Vec;

use super::{Refusal, RpcCall, RsetCall, SceneEvent, SceneMultiplayer, SendError, Transmit};
use crate::peer::{PeerId, Target, TransferMode};
use crate::scene::{ConfirmPath, NamedArguments, NamedCall, NodeTarget, RemoteCallError, SimplifyPath};
use crate::variant::{Variant, Version};

/// 3.x `NETWORK_COMMAND_RAW` (`send_bytes`).
pub(super) const COMMAND_RAW: u8 = 4;
const COMMAND_REMOTE_CALL: u8 = 0;
const COMMAND_REMOTE_SET: u8 = 1;
const COMMAND_SIMPLIFY_PATH: u8 = 2;
const COMMAND_CONFIRM_PATH: u8 = 3;

/// Who may call a Godot 3 method or set a Godot 3 property: 3.x `MultiplayerAPI.RPCMode`,
/// the `remote`/`master`/`puppet` keywords of `func` and `var` (3.x `rpc_config` /
/// `rset_config`). 3.x calls the node's authority its *network master* (default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum RemoteMode {
    /// `RPC_MODE_DISABLED` (0), also every name that has no mode: nobody.
    #[default]
    Disabled,
    /// `remote` (`RPC_MODE_REMOTE`, 1): any peer may call it.
    Remote,
    /// `master` (2): any peer, and it runs only on the node's network master; the master
    /// calling it runs it locally instead of sending it.
    Master,
    /// `puppet` (3, formerly `slave`): only the node's network master may call it, and it runs
    /// on the other peers.
    Puppet,
    /// `remotesync` (4, formerly `sync`): `remote`, and the caller runs it too.
    RemoteSync,
    /// `mastersync` (5): `master`, and the caller runs it too.
    MasterSync,
    /// `puppetsync` (6): `puppet`, and the caller runs it too.
    PuppetSync,
}

impl RemoteMode {
    /// 3.x's number for the mode (`RPC_MODE_*`).
    #[must_use]
    pub const fn to_godot(self) -> u8 {
        self as u8
    }

    /// The mode 3.x numbers `value`.
    #[must_use]
    pub const fn from_godot(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Disabled,
            1 => Self::Remote,
            2 => Self::Master,
            3 => Self::Puppet,
            4 => Self::RemoteSync,
            5 => Self::MasterSync,
            6 => Self::PuppetSync,
            _ => return None,
        })
    }

    /// Whether `sender` may run it here (3.2.3 `_can_call_mode`); `is_master` says whether
    /// this peer is the node's network master, whose id is `master`.
    fn allows(self, is_master: bool, master: PeerId, sender: PeerId) -> bool {
        match self {
            Self::Disabled => false,
            Self::Remote | Self::RemoteSync => true,
            Self::Master | Self::MasterSync => is_master,
            Self::Puppet | Self::PuppetSync => !is_master && sender == master,
        }
    }

    /// For a call that names this peer too: whether the caller runs it as well, and whether it
    /// then skips sending (3.2.3 `_should_call_local`).
    fn call_local(self, is_master: bool) -> (bool, bool) {
        match self {
            Self::Disabled | Self::Remote => (false, false),
            Self::RemoteSync | Self::PuppetSync => (true, false),
            Self::MasterSync => (true, is_master),
            Self::Master => (is_master, is_master),
            // 3.2.3 runs a puppet method locally on the puppets that call it, and sends it.
            Self::Puppet => (!is_master, false),
        }
    }
}

impl SceneMultiplayer {
    /// 3.x `Node.rpc` / `rpc_id`: see [`rpc`](Self::rpc).
    pub(super) fn rpc_godot3(
        &mut self,
        target: Target,
        node: &str,
        method: &str,
        args: &[Variant],
    ) -> Result<(), SendError> {
        let mode = self.nodes.get(node).ok_or(SendError::UnknownNode)?.node.rpc_mode(method);
        let count =
            u8::try_from(args.len()).map_err(|_| SendError::Encode(RemoteCallError::TooManyArguments))?;
        let mut data = Vec::new();
        for arg in args {
            arg.encode(Version::Godot3, &mut data)
                .map_err(|e| SendError::Encode(RemoteCallError::Argument(e)))?;
        }
        let local =
            self.send_named(target, node, method, mode, NamedArguments::Call { count, data: &data })?;
        if let Some(sender) = local {
            let call = RpcCall { sender, node: node.into(), method: method.into(), args: args.to_vec() };
            self.push_event(SceneEvent::Rpc(call));
        }
        Ok(())
    }

    /// Godot 3 `Node.rset(property, value)` / `rset_id(id, property, value)` on the node at
    /// `node`: `REMOTE_SET` by name, with the path cache and the targets of
    /// [`rpc`](Self::rpc); a `*sync` mode also sets it here (a [`SceneEvent::Rset`] from this
    /// peer). Sent reliably: over WebSocket 3.x's `rset_unreliable` is the same.
    ///
    /// # Errors
    /// [`SendError::Unsupported`] outside Godot 3; [`SendError::UnknownNode`],
    /// [`SendError::SelfTarget`] (this peer alone, and the mode does not set it locally),
    /// [`SendError::UnknownPeer`], [`SendError::NotConnected`], [`SendError::Encode`],
    /// [`SendError::Full`], [`SendError::CacheExhausted`].
    pub fn rset(
        &mut self,
        target: Target,
        node: &str,
        property: &str,
        value: &Variant,
    ) -> Result<(), SendError> {
        if self.config.version.is_godot4() {
            return Err(SendError::Unsupported);
        }
        let mode = self.nodes.get(node).ok_or(SendError::UnknownNode)?.node.rset_mode(property);
        let mut data = Vec::new();
        value
            .encode(Version::Godot3, &mut data)
            .map_err(|e| SendError::Encode(RemoteCallError::Argument(e)))?;
        if let Some(sender) = self.send_named(target, node, property, mode, NamedArguments::Set(&data))? {
            let set = RsetCall { sender, node: node.into(), property: property.into(), value: value.clone() };
            self.push_event(SceneEvent::Rset(set));
        }
        Ok(())
    }

    /// 3.2.3 `rpcp`/`rsetp` and `_send_rpc`: decides the local call, queues the
    /// `SIMPLIFY_PATH`s and the call; returns this peer's id when it runs the call too. All
    /// or nothing.
    fn send_named(
        &mut self,
        target: Target,
        node: &str,
        name: &str,
        mode: RemoteMode,
        args: NamedArguments<'_>,
    ) -> Result<Option<PeerId>, SendError> {
        let local = self.local.ok_or(SendError::NotConnected)?;
        let entry = self.nodes.get(node).ok_or(SendError::UnknownNode)?;
        let to = target.to_godot();
        let mut skip = to == local.get();
        let mut run_here = false;
        if to == 0 || skip || (to < 0 && to != -local.get()) {
            let (here, skip_send) = mode.call_local(entry.node.authority == local);
            run_here = here;
            skip |= skip_send;
        }
        let runner = run_here.then_some(local);
        if skip {
            return if run_here { Ok(runner) } else { Err(SendError::SelfTarget) };
        }
        let admitted = |p: PeerId| self.peers.get(&p).is_some_and(|s| s.status == super::Status::Admitted);
        let targets: Vec<PeerId> = match target.normalized() {
            Target::Broadcast => self.peers().collect(),
            Target::Server if admitted(PeerId::SERVER) => alloc::vec![PeerId::SERVER],
            Target::Peer(p) if admitted(p) => alloc::vec![p],
            // 3.x wants the excluded peer connected too.
            Target::AllExcept(p) if admitted(p) => self.peers().filter(|q| *q != p).collect(),
            Target::Server => return Err(SendError::UnknownPeer(PeerId::SERVER)),
            Target::Peer(p) | Target::AllExcept(p) => return Err(SendError::UnknownPeer(p)),
        };
        let cache_id = match entry.cache_id {
            Some(id) => id,
            None if self.next_cache_id > PeerId::MAX => return Err(SendError::CacheExhausted),
            None => self.next_cache_id,
        };
        // Each target with what it knows of the id: nothing, simplified, or confirmed.
        let known: Vec<(PeerId, Option<bool>)> = targets
            .iter()
            .map(|p| (*p, self.peers.get(p).and_then(|s| s.sent.get(&cache_id).copied())))
            .collect();
        let simplifies = known.iter().filter(|(_, k)| k.is_none()).count();
        let all_confirmed = known.iter().all(|(_, k)| *k == Some(true));
        let calls = if all_confirmed { usize::from(!targets.is_empty()) } else { targets.len() };
        let encode = |node: NodeTarget<'_>| {
            let call = NamedCall { node, name, args };
            let mut out = alloc::vec![0; call.encoded_len()];
            call.encode(&mut out).map(|_| out).map_err(SendError::Encode)
        };
        let by_id = encode(NodeTarget::Cached(cache_id))?;
        let by_path = if all_confirmed { Vec::new() } else { encode(NodeTarget::Path(node))? };
        let mut simplify = alloc::vec![0; 1 + 4 + node.len() + 1];
        SimplifyPath { checksum: None, id: cache_id, path: node }
            .encode(Version::Godot3, &mut simplify)
            .map_err(|_| SendError::Encode(RemoteCallError::Unencodable))?;
        // Godot 3 has one queue: every packet of the call must fit it.
        let bytes = simplifies * simplify.len() + calls * by_id.len().max(by_path.len());
        if !self.fits([(PeerId::SERVER, simplifies + calls, bytes)]) {
            return Err(SendError::Full);
        }
        if entry.cache_id.is_none() {
            self.next_cache_id += 1;
            self.ids.insert(cache_id, node.into());
            if let Some(e) = self.nodes.get_mut(node) {
                e.cache_id = Some(cache_id);
            }
        }
        // Every SIMPLIFY_PATH first, then the call, as 3.2.3's `_send_confirm_path` does.
        for (peer, _) in known.iter().filter(|(_, k)| k.is_none()) {
            if let Some(state) = self.peers.get_mut(peer) {
                state.sent.insert(cache_id, false);
            }
            self.queue(*peer, TransferMode::Reliable, 0, &simplify);
        }
        if all_confirmed {
            if !targets.is_empty() {
                let data = by_id;
                self.push_transmit(Transmit { to: target, mode: TransferMode::Reliable, channel: 0, data });
                self.stats.rpcs_out += 1;
            }
            return Ok(runner);
        }
        for (peer, k) in known {
            self.queue(peer, TransferMode::Reliable, 0, if k == Some(true) { &by_id } else { &by_path });
            self.stats.rpcs_out += 1;
        }
        Ok(runner)
    }

    /// A 3.x packet from an admitted peer (3.2.3 `_process_packet`, which switches on the
    /// whole first byte).
    pub(super) fn process_godot3(&mut self, from: PeerId, packet: &[u8]) {
        match packet.first().copied() {
            Some(COMMAND_REMOTE_CALL | COMMAND_REMOTE_SET) => self.process_named(from, packet),
            Some(COMMAND_SIMPLIFY_PATH) => self.process_simplify_godot3(from, packet),
            Some(COMMAND_CONFIRM_PATH) => self.process_confirm(from, packet),
            Some(COMMAND_RAW) if packet.len() >= 2 => {
                self.push_event(SceneEvent::PeerPacket { from, data: packet[1..].into() });
            }
            Some(COMMAND_RAW) | None => self.refuse(from, Refusal::Malformed),
            Some(other) => self.refuse(from, Refusal::UnknownCommand(other)),
        }
    }

    /// 3.2.3 `_process_simplify_path`: the path is recorded (an id simplified again is
    /// replaced) and confirmed by path whether or not the node exists here, as 3.x does; a
    /// call naming an unknown node is refused when it comes.
    fn process_simplify_godot3(&mut self, from: PeerId, packet: &[u8]) {
        let Ok(simplify) = SimplifyPath::decode(packet, Version::Godot3) else {
            return self.refuse(from, Refusal::Malformed);
        };
        let max = self.config.max_cached_paths;
        let Some(state) = self.peers.get(&from) else { return };
        if !state.paths.contains_key(&simplify.id) && state.paths.len() >= max {
            return self.refuse(from, Refusal::CacheFull);
        }
        if !self.room(from, 1, simplify.path.len() + 2) {
            return self.refuse(from, Refusal::OutboundFull);
        }
        let mut confirm = alloc::vec![0; simplify.path.len() + 2];
        let confirm_path = ConfirmPath::Path { valid: true, path: simplify.path };
        let Ok(n) = confirm_path.encode(Version::Godot3, &mut confirm) else {
            return self.refuse(from, Refusal::Malformed);
        };
        confirm.truncate(n);
        let path = String::from(simplify.path);
        if let Some(state) = self.peers.get_mut(&from) {
            state.paths.insert(simplify.id, path);
        }
        self.queue(from, TransferMode::Reliable, 0, &confirm);
    }

    /// 3.2.3 `_process_rpc` / `_process_rset`: the node, the mode's permission, every value
    /// decoded (one that does not aborts the call, as in 3.x), and the method's arity.
    fn process_named(&mut self, from: PeerId, packet: &[u8]) {
        let call = match NamedCall::decode(packet) {
            Ok(call) => call,
            Err(e) => return self.refuse(from, Refusal::BadCall(e)),
        };
        let path = match call.node {
            NodeTarget::Path(path) => String::from(path),
            NodeTarget::Cached(id) => match self.peers.get(&from).and_then(|s| s.paths.get(&id)) {
                Some(path) => path.clone(),
                None => return self.refuse(from, Refusal::UnknownCacheId(id)),
            },
        };
        let Some(entry) = self.nodes.get(&path) else { return self.refuse(from, Refusal::UnknownNode(path)) };
        let name = String::from(call.name);
        let mode = match call.args {
            NamedArguments::Call { .. } => entry.node.rpc_mode(&name),
            NamedArguments::Set(_) => entry.node.rset_mode(&name),
        };
        let master = entry.node.authority;
        let arity = entry.node.arity.get(&name).copied().unwrap_or(super::Arity::ANY);
        if !mode.allows(self.local == Some(master), master, from) {
            return self.refuse(from, Refusal::NotAllowed { node: path, method: name });
        }
        let mut values = match call.args.decode(&self.decode_options()) {
            Ok(values) => values,
            Err(error) => return self.refuse(from, Refusal::BadArgument { node: path, method: name, error }),
        };
        if let NamedArguments::Set(_) = call.args {
            let value = values.pop().unwrap_or_default();
            self.stats.rpcs_in += 1;
            let set = RsetCall { sender: from, node: path, property: name, value };
            return self.push_event(SceneEvent::Rset(set));
        }
        if !arity.accepts(values.len()) {
            return self.refuse(from, Refusal::WrongArity { node: path, method: name, count: values.len() });
        }
        self.stats.rpcs_in += 1;
        self.push_event(SceneEvent::Rpc(RpcCall { sender: from, node: path, method: name, args: values }));
    }
}
