//! The SceneMultiplayer machine (Godot 4's `SceneMultiplayer`): RPCs both ways with the path
//! cache, raw packets, authentication and the server relay, on top of any
//! [`MultiplayerPeer`] (`scene-multiplayer.md` §1–§5).
//!
//! It is sans-IO like the transports: packets and peer arrivals go in through `handle_*`,
//! packets to send come out of [`poll_transmit`](SceneMultiplayer::poll_transmit), peers to drop
//! out of [`poll_disconnect`](SceneMultiplayer::poll_disconnect), and everything that happens
//! out of [`poll_event`](SceneMultiplayer::poll_event); time is passed in.
//! [`pump`](SceneMultiplayer::pump) does all of that against a `MultiplayerPeer`.
//!
//! The transport's own relay must be off ([`ServerConfig::relay`](crate::peer::ServerConfig)
//! and [`ClientConfig::relay`](crate::peer::ClientConfig) false): this machine speaks `SYS`
//! itself, as Godot's SceneMultiplayer does, so that `AUTH` reaches it and peers are announced
//! only once admitted.
//!
//! Where Godot logs an error and drops a packet (unknown node or method, a sender without
//! permission, a pending peer's RPC), a [`SceneEvent::Refused`] says why; where Godot calls a
//! method with `null` after an argument fails to decode, the call is refused instead.
//!
//! Where Godot's SceneMultiplayer relays into a transport that drops what does not fit, this
//! one keeps the transport's relay flow control (`flow.rs`): one queue per transport peer, a
//! relayed packet queued for all its targets or waiting with its sender (whose input the
//! transport holds, [`MultiplayerPeer::hold_peer`]), waiting senders served round robin, and a
//! receiver that stops draining evicted by the transport's slow-peer timeout.
//!
//! With [`SceneConfig::godot3`] it is Godot 3's `MultiplayerAPI` instead (`godot3.rs`): calls
//! and `rset` by name, without authentication or a relay of its own.

mod flow;
mod godot3;
mod incoming;
mod types;

#[cfg(test)]
mod tests;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use crate::peer::scene::{self as sys, SysCommand};
use crate::peer::{DisconnectReason, Event, MultiplayerPeer, PeerId, Target, TransferMode};
use crate::scene::{NodeTarget, SimplifyPath, encode_call};
use crate::time::Instant;
use crate::variant::{DecodeOptions, Variant, Version};
use crate::ws::CloseCode;

pub use godot3::RemoteMode;
pub use types::{
    Arity, Refusal, Replication, RpcCall, RpcNode, RsetCall, SceneConfig, SceneEvent, SceneStats, SendError,
    Transmit,
};

/// Where a peer is in authentication (`scene-multiplayer.md` §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Waiting for both sides to complete.
    Pending {
        /// This side called `complete_auth`.
        local: bool,
        /// The peer sent `07 00`.
        remote: bool,
        /// When it fails (`auth_timeout` after the transport connected).
        deadline: Option<Instant>,
    },
    Admitted,
}

#[derive(Debug)]
struct PeerState {
    status: Status,
    /// A peer reached through the server's relay (client side), not a transport peer.
    relayed: bool,
    /// Its `SIMPLIFY_PATH`s: its cache id → path.
    paths: BTreeMap<u32, String>,
    /// Our cache ids sent to it with `SIMPLIFY_PATH`, and whether it confirmed them.
    sent: BTreeMap<u32, bool>,
}

impl PeerState {
    fn new(status: Status, relayed: bool) -> Self {
        Self { status, relayed, paths: BTreeMap::new(), sent: BTreeMap::new() }
    }
}

struct NodeEntry {
    node: RpcNode,
    /// Our cache id for it, given the first time it is the target of a send.
    cache_id: Option<u32>,
}

/// Godot 4's `SceneMultiplayer`, sans-IO: RPCs both ways with the path cache, raw packets,
/// authentication and the server relay, over any [`MultiplayerPeer`].
///
/// Packets and peer arrivals go in through `handle_*`, packets to send come out of
/// [`poll_transmit`](Self::poll_transmit), peers to drop out of
/// [`poll_disconnect`](Self::poll_disconnect), and what happens out of
/// [`poll_event`](Self::poll_event); time is passed in. [`pump`](Self::pump) does all of that
/// against a `MultiplayerPeer`, whose own relay must be off
/// ([`ServerConfig::relay`](crate::peer::ServerConfig::relay),
/// [`ClientConfig::relay`](crate::peer::ClientConfig::relay)): this machine speaks `SYS`
/// itself, as Godot's does, so that `AUTH` reaches it and peers are announced only once
/// admitted. Where Godot logs and drops a packet, a [`SceneEvent::Refused`] says why; where
/// Godot calls a method with `null` after an argument fails to decode, the call is refused.
pub struct SceneMultiplayer {
    config: SceneConfig,
    local: Option<PeerId>,
    now: Instant,
    nodes: BTreeMap<String, NodeEntry>,
    /// Our cache ids → node path (4.3+ confirms by id).
    ids: BTreeMap<u32, String>,
    next_cache_id: u32,
    peers: BTreeMap<PeerId, PeerState>,
    /// Packets to send, one queue per transport peer (`flow.rs`).
    outboxes: BTreeMap<flow::Link, flow::Outbox>,
    /// Order of the next packet queued, over all queues.
    next_seq: u64,
    /// Senders whose packets wait behind a relay without room, and the order they are served.
    held: BTreeMap<PeerId, flow::Held>,
    waiting: VecDeque<PeerId>,
    held_packets: usize,
    held_bytes: usize,
    /// Input holds and releases for the transport.
    holds: VecDeque<(PeerId, bool)>,
    /// Set by a relay that found a target without room: that target and the bytes it needs.
    blocked: Option<(PeerId, usize)>,
    disconnects: VecDeque<PeerId>,
    events: VecDeque<SceneEvent>,
    stats: SceneStats,
    /// `get_remote_sender_id()`: the sender of the last RPC or packet polled.
    remote_sender: Option<PeerId>,
}

/// Bytes of `07 00`, the auth completion (and the prefix of auth data).
const AUTH: [u8; 2] = [sys::COMMAND_SYS, 0];

/// The close code [`pump`](SceneMultiplayer::pump) ends a connection with when its
/// authentication failed (Godot's `auth_timeout` closes with 1000 and no reason; a policy
/// violation with a reason tells the other side why).
pub const AUTH_FAILED_CODE: CloseCode = CloseCode::POLICY_VIOLATION;

/// The close reason sent with [`AUTH_FAILED_CODE`].
pub const AUTH_FAILED_REASON: &str = "authentication failed";

impl SceneMultiplayer {
    /// A machine with an empty node table.
    #[must_use]
    pub fn new(config: SceneConfig) -> Self {
        Self {
            config,
            local: None,
            now: Instant::ZERO,
            nodes: BTreeMap::new(),
            ids: BTreeMap::new(),
            next_cache_id: 1,
            peers: BTreeMap::new(),
            outboxes: BTreeMap::new(),
            next_seq: 0,
            held: BTreeMap::new(),
            waiting: VecDeque::new(),
            held_packets: 0,
            held_bytes: 0,
            holds: VecDeque::new(),
            blocked: None,
            disconnects: VecDeque::new(),
            events: VecDeque::new(),
            stats: SceneStats::default(),
            remote_sender: None,
        }
    }

    /// Forgets every peer, path cache and queued packet, and restarts cache ids at 1, keeping
    /// the node table and unread events (Godot clears this state when the multiplayer peer is
    /// replaced or disconnects). Senders whose input was held are released
    /// ([`poll_hold`](Self::poll_hold)).
    pub fn clear(&mut self) {
        self.holds.retain(|(_, held)| !held);
        for (sender, _) in core::mem::take(&mut self.held) {
            self.holds.push_back((sender, false));
        }
        self.waiting.clear();
        (self.held_packets, self.held_bytes, self.stats.held_senders) = (0, 0, 0);
        self.blocked = None;
        self.peers.clear();
        self.ids.clear();
        self.next_cache_id = 1;
        for entry in self.nodes.values_mut() {
            entry.cache_id = None;
        }
        self.outboxes.clear();
        self.disconnects.clear();
        self.local = None;
        self.remote_sender = None;
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &SceneConfig {
        &self.config
    }

    /// Counters since start.
    #[must_use]
    pub fn stats(&self) -> SceneStats {
        self.stats
    }

    /// Declares (or replaces) the node at `path`, relative to the root as Godot sends it
    /// (`root_path`, default `/root`: the node `/root/Game` is `Game`).
    pub fn add_node(&mut self, path: &str, node: RpcNode) {
        match self.nodes.get_mut(path) {
            Some(entry) => entry.node = node,
            None => {
                self.nodes.insert(path.into(), NodeEntry { node, cache_id: None });
            }
        }
    }

    /// The node declared at `path`.
    #[must_use]
    pub fn node(&self, path: &str) -> Option<&RpcNode> {
        self.nodes.get(path).map(|e| &e.node)
    }

    /// Sets a node's authority (`Node.set_multiplayer_authority`; Godot 3
    /// `Node.set_network_master`); false if it is not declared.
    pub fn set_multiplayer_authority(&mut self, path: &str, authority: PeerId) -> bool {
        self.nodes.get_mut(path).map(|e| e.node.authority = authority).is_some()
    }

    /// `get_unique_id()` of the transport; [`pump`](Self::pump) keeps it current.
    pub fn set_unique_id(&mut self, id: Option<PeerId>) {
        self.local = id;
    }

    /// `get_unique_id()`.
    #[must_use]
    pub fn unique_id(&self) -> Option<PeerId> {
        self.local
    }

    fn is_server(&self) -> bool {
        self.local.is_some_and(PeerId::is_server)
    }

    /// `get_peers()`: the admitted peers.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.iter().filter(|(_, s)| s.status == Status::Admitted).map(|(p, _)| *p)
    }

    /// `get_authenticating_peers()`.
    pub fn authenticating_peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.iter().filter(|(_, s)| s.status != Status::Admitted).map(|(p, _)| *p)
    }

    /// `get_remote_sender_id()` (Godot 3 `get_rpc_sender_id()`): the sender of the last
    /// [`SceneEvent::Rpc`], [`SceneEvent::Rset`] or [`SceneEvent::PeerPacket`] returned by
    /// [`poll_event`](Self::poll_event) (Godot: only valid inside the RPC; here until the next
    /// such event).
    #[must_use]
    pub fn remote_sender_id(&self) -> Option<PeerId> {
        self.remote_sender
    }

    // ----- output ------------------------------------------------------------------------

    /// The next packet to hand to the transport, the oldest over every peer's queue; the room
    /// it frees lets waiting relays go (their senders' releases come out of
    /// [`poll_hold`](Self::poll_hold)). A packet taken here is the caller's: one the transport
    /// refuses is lost to this machine, so a driver that can meet a full transport uses
    /// [`pump`](Self::pump), which leaves it queued and goes on with the other peers' queues.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.pop_oldest();
        if transmit.is_some() && !self.waiting.is_empty() {
            // Room was made: relays that waited for it may go (releases for `poll_hold`).
            self.serve_held();
        }
        transmit
    }

    /// The next peer to disconnect (an authentication that timed out).
    #[must_use]
    pub fn poll_disconnect(&mut self) -> Option<PeerId> {
        self.disconnects.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SceneEvent> {
        let event = self.events.pop_front()?;
        match &event {
            SceneEvent::Rpc(call) => self.remote_sender = Some(call.sender),
            SceneEvent::Rset(call) => self.remote_sender = Some(call.sender),
            SceneEvent::PeerPacket { from, .. } => self.remote_sender = Some(*from),
            _ => {}
        }
        Some(event)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due (an auth deadline).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|s| match s.status {
                Status::Pending { deadline, .. } => deadline,
                Status::Admitted => None,
            })
            .min()
    }

    fn push_event(&mut self, event: SceneEvent) {
        if self.events.len() >= self.config.max_queued_events {
            self.stats.unreported_events += 1;
        } else {
            self.events.push_back(event);
        }
    }

    fn refuse(&mut self, from: PeerId, reason: Refusal) {
        self.stats.refused += 1;
        self.push_event(SceneEvent::Refused { from, reason });
    }

    /// Queues `packet` for `to`: directly to a transport peer (the server's clients, a client's
    /// server, a mesh's peers), wrapped in `RELAY(to)` to the server for a peer known only
    /// through the server's relay.
    fn queue(&mut self, to: PeerId, mode: TransferMode, channel: u8, packet: &[u8]) {
        let relayed = !self.is_server() && self.peers.get(&to).is_some_and(|s| s.relayed);
        let (to, data) = if !relayed {
            (to, packet.to_vec())
        } else {
            (PeerId::SERVER, [&sys::header(SysCommand::Relay, to.get())[..], packet].concat())
        };
        self.push_transmit(Transmit { to: Target::Peer(to), mode, channel, data });
    }

    /// Room for `packets` packets of `bytes` bytes in all to `to`.
    fn room(&self, to: PeerId, packets: usize, bytes: usize) -> bool {
        self.fits([(to, packets, bytes)])
    }

    // ----- peers and time ----------------------------------------------------------------

    /// The transport connected `peer` (its `peer_connected`): admitted at once, or pending
    /// with `peer_authenticating` when auth is on.
    pub fn handle_peer_connected(&mut self, now: Instant, peer: PeerId) {
        self.now = self.now.max(now);
        if self.peers.contains_key(&peer) || Some(peer) == self.local {
            return;
        }
        if self.config.auth && self.config.version.is_godot4() {
            let deadline = (!self.config.auth_timeout.is_zero()).then(|| now + self.config.auth_timeout);
            self.peers.insert(
                peer,
                PeerState::new(Status::Pending { local: false, remote: false, deadline }, false),
            );
            self.push_event(SceneEvent::PeerAuthenticating(peer));
        } else {
            self.peers.insert(
                peer,
                PeerState::new(Status::Pending { local: true, remote: true, deadline: None }, false),
            );
            self.admit(peer);
        }
    }

    /// The transport lost `peer` (its `peer_disconnected`).
    pub fn handle_peer_disconnected(&mut self, now: Instant, peer: PeerId) {
        self.now = self.now.max(now);
        self.forget_queues(peer);
        let Some(state) = self.peers.remove(&peer) else { return };
        if state.status != Status::Admitted {
            self.push_event(SceneEvent::PeerAuthenticationFailed(peer));
            return;
        }
        if peer.is_server() {
            // Every relayed peer was reached through the server.
            self.peers.retain(|_, s| !s.relayed);
        } else if self.is_server() && self.sys_relay() {
            let others: Vec<PeerId> = self.peers().collect();
            let del = sys::header(SysCommand::DelPeer, peer.get());
            for other in others {
                if self.room(other, 1, del.len()) {
                    self.queue(other, TransferMode::Reliable, 0, &del);
                } else {
                    self.refuse(other, Refusal::OutboundFull);
                }
            }
        }
        self.push_event(SceneEvent::PeerDisconnected(peer));
    }

    /// Fires auth timeouts: the peer is reported with `peer_authentication_failed` and handed
    /// to [`poll_disconnect`](Self::poll_disconnect).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let expired: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| matches!(s.status, Status::Pending { deadline: Some(d), .. } if d <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            self.peers.remove(&peer);
            self.push_event(SceneEvent::PeerAuthenticationFailed(peer));
            self.disconnects.push_back(peer);
        }
    }

    fn admit(&mut self, peer: PeerId) {
        let Some(state) = self.peers.get_mut(&peer) else { return };
        state.status = Status::Admitted;
        if self.is_server() && self.sys_relay() {
            let others: Vec<PeerId> = self.peers().filter(|p| *p != peer).collect();
            for other in others {
                if !self.room(other, 1, sys::SYS_HEADER_LEN) || !self.room(peer, 1, sys::SYS_HEADER_LEN) {
                    self.refuse(other, Refusal::OutboundFull);
                    continue;
                }
                self.queue(other, TransferMode::Reliable, 0, &sys::header(SysCommand::AddPeer, peer.get()));
                self.queue(peer, TransferMode::Reliable, 0, &sys::header(SysCommand::AddPeer, other.get()));
            }
        }
        if peer.is_server() {
            self.push_event(SceneEvent::ConnectedToServer);
        }
        self.push_event(SceneEvent::PeerConnected(peer));
    }

    // ----- authentication ----------------------------------------------------------------

    /// `send_auth(id, data)`: `07 00 <data>` to a pending peer.
    ///
    /// # Errors
    /// [`SendError::UnknownPeer`] when it is not pending, [`SendError::AuthCompleted`] once
    /// either side completed, [`SendError::Empty`], [`SendError::Full`].
    pub fn send_auth(&mut self, peer: PeerId, data: &[u8]) -> Result<(), SendError> {
        match self.peers.get(&peer).map(|s| s.status) {
            Some(Status::Pending { local: false, remote: false, .. }) => {}
            Some(Status::Pending { .. }) => return Err(SendError::AuthCompleted),
            _ => return Err(SendError::UnknownPeer(peer)),
        }
        if data.is_empty() {
            return Err(SendError::Empty);
        }
        if !self.room(peer, 1, AUTH.len() + data.len()) {
            return Err(SendError::Full);
        }
        let packet = [&AUTH[..], data].concat();
        self.push_transmit(Transmit {
            to: Target::Peer(peer),
            mode: TransferMode::Reliable,
            channel: 0,
            data: packet,
        });
        Ok(())
    }

    /// `complete_auth(id)`: sends `07 00`; the peer is admitted once it completed too.
    ///
    /// # Errors
    /// [`SendError::UnknownPeer`] when it is not pending, [`SendError::AuthCompleted`] when
    /// this side already completed, [`SendError::Full`].
    pub fn complete_auth(&mut self, peer: PeerId) -> Result<(), SendError> {
        let remote = match self.peers.get(&peer).map(|s| s.status) {
            Some(Status::Pending { local: false, remote, .. }) => remote,
            Some(Status::Pending { .. }) => return Err(SendError::AuthCompleted),
            _ => return Err(SendError::UnknownPeer(peer)),
        };
        if !self.room(peer, 1, AUTH.len()) {
            return Err(SendError::Full);
        }
        self.push_transmit(Transmit {
            to: Target::Peer(peer),
            mode: TransferMode::Reliable,
            channel: 0,
            data: AUTH.to_vec(),
        });
        if let Some(state) = self.peers.get_mut(&peer) {
            if let Status::Pending { local, .. } = &mut state.status {
                *local = true;
            }
        }
        if remote {
            self.admit(peer);
        }
        Ok(())
    }

    // ----- sending -----------------------------------------------------------------------

    /// The admitted peers `target` names, without this peer; and whether it names this peer.
    fn targets(&self, target: Target) -> Result<(Vec<PeerId>, bool), SendError> {
        let local = self.local.ok_or(SendError::NotConnected)?;
        let target = match target.normalized() {
            Target::Server => Target::Peer(PeerId::SERVER),
            t => t,
        };
        match target {
            Target::Broadcast => Ok((self.peers().collect(), true)),
            Target::AllExcept(p) => Ok((self.peers().filter(|q| *q != p).collect(), p != local)),
            Target::Peer(p) if p == local => Ok((Vec::new(), true)),
            Target::Peer(p) if self.peers.get(&p).is_some_and(|s| s.status == Status::Admitted) => {
                Ok((alloc::vec![p], false))
            }
            Target::Peer(p) => Err(SendError::UnknownPeer(p)),
            Target::Server => Err(SendError::UnknownPeer(PeerId::SERVER)),
        }
    }

    /// Whether `target` names this peer alone (a broadcast with nobody else is not that).
    fn only_self(&self, target: Target) -> bool {
        match target.normalized() {
            Target::Server => self.is_server(),
            Target::Peer(p) => Some(p) == self.local,
            Target::Broadcast | Target::AllExcept(_) => false,
        }
    }

    /// `rpc(method, args)` / `rpc_id(target, method, args)` on the node at `node`: one packet
    /// per target peer, a `SIMPLIFY_PATH` first to a peer that has not seen the node, the
    /// full path until it confirmed, its cache id after; with `call_local`, also a
    /// [`SceneEvent::Rpc`] from this peer. All or nothing: on error nothing is queued. With
    /// Godot 3 it is 3.x `Node.rpc` / `rpc_id` instead: by name, a method without a
    /// [`RemoteMode`] is sent all the same (the receiver refuses it, as in 3.x), the local call
    /// follows the mode, and once every target confirmed the path one packet goes to `target`.
    ///
    /// # Errors
    /// [`SendError`].
    pub fn rpc(
        &mut self,
        target: Target,
        node: &str,
        method: &str,
        args: &[Variant],
    ) -> Result<(), SendError> {
        if !self.config.version.is_godot4() {
            return self.rpc_godot3(target, node, method, args);
        }
        let entry = self.nodes.get(node).ok_or(SendError::UnknownNode)?;
        let id = entry.node.methods.id(method).ok_or(SendError::UnknownMethod)?;
        let config = *entry.node.methods.method(id).ok_or(SendError::UnknownMethod)?.1;
        let (targets, includes_self) = self.targets(target)?;
        if self.only_self(target) && !config.call_local {
            return Err(SendError::SelfTarget);
        }
        let cache_id = match entry.cache_id {
            Some(id) => id,
            None if self.next_cache_id > PeerId::MAX => return Err(SendError::CacheExhausted),
            None => self.next_cache_id,
        };
        let needs_simplify = |p: &PeerId| !self.peers.get(p).is_some_and(|s| s.sent.contains_key(&cache_id));
        let simplifies = targets.iter().filter(|p| needs_simplify(p)).count();
        let version = self.config.version;
        let mut by_id = Vec::new();
        encode_call(NodeTarget::Cached(cache_id), id, args, version, &mut by_id)
            .map_err(SendError::Encode)?;
        let mut by_path = Vec::new();
        encode_call(NodeTarget::Path(node), id, args, version, &mut by_path).map_err(SendError::Encode)?;
        let mut simplify = Vec::new();
        if simplifies > 0 {
            let checksum = entry.node.methods.checksum();
            let packet = SimplifyPath { checksum: Some(&checksum), id: cache_id, path: node };
            simplify.resize(1 + 33 + 4 + node.len() + 1, 0);
            packet
                .encode(version, &mut simplify)
                .map_err(|_| SendError::Encode(crate::scene::RemoteCallError::Unencodable))?;
        }
        // All or nothing: every target's queue must take its packets.
        let needs = targets.iter().map(|p| {
            let first = needs_simplify(p);
            (*p, 1 + usize::from(first), by_path.len() + if first { simplify.len() } else { 0 })
        });
        if !self.fits(needs) {
            return Err(SendError::Full);
        }
        if entry.cache_id.is_none() {
            self.next_cache_id += 1;
            self.ids.insert(cache_id, node.into());
            if let Some(e) = self.nodes.get_mut(node) {
                e.cache_id = Some(cache_id);
            }
        }
        for peer in targets {
            let known = self.peers.get(&peer).and_then(|s| s.sent.get(&cache_id).copied());
            let confirmed = known == Some(true);
            if known.is_none() {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.sent.insert(cache_id, false);
                }
                self.queue(peer, TransferMode::Reliable, 0, &simplify);
            }
            self.queue(peer, config.transfer_mode, config.channel, if confirmed { &by_id } else { &by_path });
            self.stats.rpcs_out += 1;
            self.stats.rpcs_out_by_path += u64::from(!confirmed);
        }
        if includes_self && config.call_local {
            let sender = self.local.ok_or(SendError::NotConnected)?;
            self.push_event(SceneEvent::Rpc(RpcCall {
                sender,
                node: node.into(),
                method: method.into(),
                args: args.to_vec(),
            }));
        }
        Ok(())
    }

    /// `send_bytes(bytes, id, mode, channel)`: `03 <bytes>` to each target peer (Godot 3:
    /// `04 <bytes>`, one packet with the target, which the 3.x server relays).
    ///
    /// # Errors
    /// [`SendError::Empty`], [`SendError::SelfTarget`], [`SendError::UnknownPeer`],
    /// [`SendError::NotConnected`], [`SendError::Full`].
    pub fn send_bytes(
        &mut self,
        target: Target,
        bytes: &[u8],
        mode: TransferMode,
        channel: u8,
    ) -> Result<(), SendError> {
        if bytes.is_empty() {
            return Err(SendError::Empty);
        }
        let (targets, _) = self.targets(target)?;
        if self.only_self(target) {
            return Err(SendError::SelfTarget);
        }
        let len = bytes.len() + 1;
        let fits = if self.config.version.is_godot4() {
            self.fits(targets.iter().map(|p| (*p, 1, len)))
        } else {
            self.fits([(PeerId::SERVER, usize::from(!targets.is_empty()), len)])
        };
        if !fits {
            return Err(SendError::Full);
        }
        let raw = if self.config.version.is_godot4() { sys::COMMAND_RAW } else { godot3::COMMAND_RAW };
        let packet = [&[raw][..], bytes].concat();
        if !self.config.version.is_godot4() {
            // 3.x sends one packet with the caller's target; its server relays by the header.
            if !targets.is_empty() {
                self.push_transmit(Transmit { to: target, mode, channel, data: packet });
            }
            return Ok(());
        }
        for peer in targets {
            self.queue(peer, mode, channel, &packet);
        }
        Ok(())
    }

    // ----- driving a MultiplayerPeer -----------------------------------------------------

    /// Moves everything between this machine and `peer`: its events and packets in (events
    /// first, and packets only while the event queue has room), queued packets and
    /// disconnects out, waiting relays served, input holds applied, timers fired. Call it
    /// after driving the transport, then drain [`poll_event`](Self::poll_event).
    pub fn pump<P: MultiplayerPeer + ?Sized>(&mut self, now: Instant, peer: &mut P) {
        self.now = self.now.max(now);
        self.local = peer.unique_id();
        loop {
            self.take_input(now, peer);
            self.handle_timeout(now);
            // A released sender's packets may be in the transport's queue now.
            if !self.flush(now, peer) {
                return;
            }
        }
    }

    fn take_input<P: MultiplayerPeer + ?Sized>(&mut self, now: Instant, peer: &mut P) {
        loop {
            while let Some(event) = peer.poll_event() {
                self.local = peer.unique_id();
                match event {
                    Event::PeerConnected(p) => self.handle_peer_connected(now, p),
                    Event::PeerDisconnected { peer: p, reason } => {
                        self.stats.slow_peers_evicted += u64::from(reason == DisconnectReason::SlowConsumer);
                        self.handle_peer_disconnected(now, p);
                    }
                    // Reported at admission, as Godot's SceneMultiplayer does.
                    Event::ConnectionSucceeded => {}
                    other => self.push_event(SceneEvent::Transport(other)),
                }
            }
            // One packet makes a handful of events at most.
            if self.events.len().saturating_add(4) > self.config.max_queued_events {
                break;
            }
            let Some(packet) = peer.peek_packet() else { break };
            if !self.can_hold(packet.data.len()) {
                // Every waiting sender used the room for packets held back: the rest wait in
                // the transport (nothing is dropped) until one of them goes on.
                break;
            }
            self.handle_packet(now, packet.info.from, packet.data);
            peer.pop_packet();
            self.apply_holds(peer);
        }
    }

    /// Sends what can go, serves waiting relays, applies holds; returns whether a sender was
    /// released.
    fn flush<P: MultiplayerPeer + ?Sized>(&mut self, now: Instant, peer: &mut P) -> bool {
        while let Some(p) = self.disconnects.pop_front() {
            let _ = peer.disconnect_peer_with(now, p, AUTH_FAILED_CODE, AUTH_FAILED_REASON, false);
        }
        self.send_queued(peer);
        if self.serve_held() {
            self.send_queued(peer);
        }
        self.apply_holds(peer)
    }

    fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            allow_objects: self.config.allow_object_decoding,
            ..DecodeOptions::new(self.config.version)
        }
    }

    /// Whether this machine announces peers and relays with `SYS` (4.x `server_relay`; a 3.x
    /// server's transport does both itself).
    fn sys_relay(&self) -> bool {
        self.config.server_relay && self.config.version.is_godot4()
    }

    fn confirms_by_id(&self) -> bool {
        matches!(self.config.version, Version::Godot4 { minor } if minor >= 3)
    }
}
