//! The cluster link of a server: rooms shared with other instances through a broker
//! (CLUSTER.md). Godot has no such thing; a Godot client cannot tell a remote member from a
//! local one.
//!
//! The server emits what the broker must carry ([`ClusterOutput`], from
//! [`Server::poll_cluster`]) and takes what the broker delivered
//! ([`Server::handle_cluster`]); heartbeats and the failure deadline run on the server's
//! timers. Remote peers are members of a room like local ones, with the slot [`REMOTE`] instead
//! of a connection: a relayed packet with remote targets is published once, whatever their
//! number, and the receiving instances fan it out to their own members.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::CryptoRng;

use super::Server;
use super::routing::Dest;
use crate::peer::cluster::{self, ClusterMessage, MAX_NODES, NodeStamp, PacketDest};
use crate::peer::godot3::{self, MessageType};
use crate::peer::scene::{self, SysCommand};
use crate::peer::{PeerId, Protocol};
use crate::time::Instant;

/// The slot index of a remote member in a room's member list.
pub(super) const REMOTE: u32 = u32::MAX;

/// How this server takes part in a cluster (Godot has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This instance's node index (unique in the cluster: the adapter holds it as a lease) and
    /// the epoch of this process (larger than any earlier process of the same index had: the
    /// adapter derives it from the wall clock).
    pub node: NodeStamp,
    /// The instance's name in heartbeats, logs and status (`--node NAME`).
    pub name: String,
    /// How long another instance may stay silent before its peers are announced as departed.
    pub failure_deadline: Duration,
    /// How often this instance announces it is alive.
    pub heartbeat_interval: Duration,
    /// Most messages waiting for the broker; beyond it a message is dropped and counted in
    /// [`ClusterStats::outbox_overflow`].
    pub max_outbox: usize,
    /// Most remote peers known at once, in all rooms; a join beyond it is refused and counted
    /// in [`ClusterStats::refused_joins`] (a forged stream of joins cannot grow memory without
    /// bound).
    pub max_remote_peers: usize,
}

impl ClusterConfig {
    /// The defaults of CLUSTER.md for node `index` started at `epoch`: a 3 s failure deadline,
    /// heartbeats every 500 ms, 65 536 messages waiting at most, 65 536 remote peers at most.
    #[must_use]
    pub fn new(index: u8, epoch: u64, name: &str) -> Self {
        Self {
            node: NodeStamp { index: index % MAX_NODES, epoch },
            name: name.chars().filter(char::is_ascii_graphic).take(cluster::MAX_NODE_NAME_LEN).collect(),
            failure_deadline: Duration::from_secs(3),
            heartbeat_interval: Duration::from_millis(500),
            max_outbox: 1 << 16,
            max_remote_peers: 1 << 16,
        }
    }
}

/// What the server asks of the broker, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterOutput {
    /// Start receiving the messages of room `name` (it has local members now).
    Subscribe(String),
    /// Stop receiving the messages of room `name` (it is gone here).
    Unsubscribe(String),
    /// Publish `message` on the subject of room `room`.
    PublishRoom {
        /// The room.
        room: String,
        /// The encoded [`ClusterMessage`].
        message: Vec<u8>,
    },
    /// Publish `message` on the node subject (heartbeats), which every instance receives.
    PublishNode(Vec<u8>),
}

/// Counters of the cluster link since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Messages handed to the broker.
    pub published: u64,
    /// Messages received from other instances and used.
    pub received: u64,
    /// Messages refused as malformed (decoding failed).
    pub malformed: u64,
    /// Messages of an older epoch of their node, or claiming this node's index.
    pub stale: u64,
    /// Messages naming a peer or room this instance does not know (late or forged).
    pub unknown: u64,
    /// Sequence gaps: packets of a remote sender lost between instances (the sender is then
    /// announced as departed and asked for again).
    pub gaps: u64,
    /// Messages dropped because [`ClusterConfig::max_outbox`] were waiting for the broker.
    pub outbox_overflow: u64,
    /// Instances declared dead after the failure deadline.
    pub nodes_expired: u64,
    /// Joins refused because [`ClusterConfig::max_remote_peers`] remote peers were known.
    pub refused_joins: u64,
    /// Remote peers in all rooms now.
    pub remote_peers: u64,
    /// Other instances alive now.
    pub live_nodes: u64,
}

struct Node {
    epoch: u64,
    last_seen: Instant,
    alive: bool,
    name: heapless::String<{ cluster::MAX_NODE_NAME_LEN }>,
}

struct Remote {
    node: u8,
    room: u32,
    next_seq: Option<u64>,
}

/// The cluster side of a server.
pub(super) struct ClusterState {
    config: ClusterConfig,
    outbox: VecDeque<ClusterOutput>,
    nodes: BTreeMap<u8, Node>,
    remote: BTreeMap<PeerId, Remote>,
    /// Next sequence number of each local sender.
    seq: BTreeMap<PeerId, u64>,
    /// Rooms (by index) whose subject this instance receives.
    subscribed: BTreeSet<u32>,
    next_heartbeat: Option<Instant>,
    stats: ClusterStats,
    scratch: Vec<u8>,
}

/// One live instance of the cluster, as [`Server::cluster_nodes`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterNode<'a> {
    /// Its node index.
    pub index: u8,
    /// Its name.
    pub name: &'a str,
    /// Whether it was heard from within the failure deadline.
    pub alive: bool,
}

impl<R: CryptoRng> Server<R> {
    /// Makes this server one instance of a cluster: its rooms are shared with the instances
    /// that receive what [`poll_cluster`](Self::poll_cluster) emits. Peer ids drawn from now on
    /// satisfy `id % 64 == config.node.index`, so instances never draw the same id.
    pub fn join_cluster(&mut self, now: Instant, config: ClusterConfig) {
        self.set_now(now);
        self.cluster = Some(Box::new(ClusterState {
            config,
            outbox: VecDeque::new(),
            nodes: BTreeMap::new(),
            remote: BTreeMap::new(),
            seq: BTreeMap::new(),
            subscribed: BTreeSet::new(),
            next_heartbeat: Some(self.now),
            stats: ClusterStats::default(),
            scratch: Vec::new(),
        }));
    }

    /// The cluster link's counters (`None`: not in a cluster).
    #[must_use]
    pub fn cluster_stats(&self) -> Option<ClusterStats> {
        let c = self.cluster.as_ref()?;
        let mut stats = c.stats;
        stats.remote_peers = c.remote.len() as u64;
        stats.live_nodes = c.nodes.values().filter(|n| n.alive).count() as u64;
        Some(stats)
    }

    /// The other instances this one has heard from, in index order.
    pub fn cluster_nodes(&self) -> impl Iterator<Item = ClusterNode<'_>> + '_ {
        self.cluster.iter().flat_map(|c| {
            c.nodes.iter().map(|(&index, n)| ClusterNode { index, name: &n.name, alive: n.alive })
        })
    }

    /// The next request for the broker, in order. Take them after every call, as the bytes of
    /// [`poll_transmit`](Self::poll_transmit): [`poll_timeout`](Self::poll_timeout) does not
    /// ask for a call while some wait (an adapter whose way to the broker is full takes the
    /// rest when it has room again; the outbox is bounded meanwhile).
    pub fn poll_cluster(&mut self) -> Option<ClusterOutput> {
        self.cluster.as_mut()?.outbox.pop_front()
    }

    /// A message the broker delivered (on a room subject this server subscribed to, or the
    /// node subject). Anything malformed, stale or unknown is counted and ignored.
    pub fn handle_cluster(&mut self, now: Instant, bytes: &[u8]) {
        self.set_now(now);
        let Some(c) = self.cluster.as_mut() else { return };
        let Ok((stamp, message)) = cluster::decode(bytes) else {
            c.stats.malformed += 1;
            return;
        };
        if stamp.index == c.config.node.index {
            // Our own messages come back from the broker; another process with our index is
            // a stale one (or a misconfiguration): ignored either way.
            if stamp.epoch != c.config.node.epoch {
                c.stats.stale += 1;
            }
            return;
        }
        if !self.admit_node(stamp) {
            return;
        }
        if let Some(c) = self.cluster.as_mut() {
            c.stats.received += 1;
        }
        match message {
            ClusterMessage::Heartbeat { name } => {
                if let Some(node) = self.cluster.as_mut().and_then(|c| c.nodes.get_mut(&stamp.index)) {
                    node.name = heapless::String::try_from(name).unwrap_or_default();
                }
            }
            ClusterMessage::Join { room, peer } => self.remote_join(stamp.index, room, peer),
            ClusterMessage::Leave { room, peer } => {
                let Some(room) = self.known_remote(stamp.index, room, peer) else { return };
                self.remote_leave(room, peer);
            }
            ClusterMessage::Packet { room, from, dest, seq, payload } => {
                self.remote_packet(stamp.index, room, from, dest, seq, payload);
            }
            ClusterMessage::Sync { room } => {
                let Some(index) = self.rooms.lookup(room) else { return };
                let local: Vec<PeerId> =
                    self.rooms.members(index).iter().filter(|m| m.1 != REMOTE).map(|m| m.0).collect();
                for peer in local {
                    self.publish_room(room, &ClusterMessage::Join { room, peer });
                }
            }
        }
        self.serve_ready();
    }

    /// Whether a message of `stamp` is current; a newer epoch first discards the old one's peers.
    fn admit_node(&mut self, stamp: NodeStamp) -> bool {
        let now = self.now;
        let Some(c) = self.cluster.as_mut() else { return false };
        let (restarted, returned) = match c.nodes.get_mut(&stamp.index) {
            Some(node) if node.epoch > stamp.epoch => {
                c.stats.stale += 1;
                return false;
            }
            Some(node) => {
                let restarted = node.epoch < stamp.epoch;
                let returned = !node.alive && !restarted;
                node.epoch = stamp.epoch;
                node.last_seen = now;
                node.alive = true;
                (restarted, returned)
            }
            None => {
                let node =
                    Node { epoch: stamp.epoch, last_seen: now, alive: true, name: heapless::String::new() };
                c.nodes.insert(stamp.index, node);
                (false, false)
            }
        };
        if restarted {
            self.drop_node_peers(stamp.index);
        }
        if returned {
            // Back from a partition: its peers were announced as departed here; ask every
            // instance to announce its members of our rooms again.
            let rooms: Vec<String> = self
                .cluster
                .iter()
                .flat_map(|c| c.subscribed.iter())
                .filter_map(|&r| self.rooms.name(r).map(String::from))
                .collect();
            for room in rooms {
                self.publish_room(&room, &ClusterMessage::Sync { room: &room });
            }
        }
        true
    }

    /// Announces the departure of every peer of node `index` (it restarted or went silent).
    fn drop_node_peers(&mut self, index: u8) {
        let Some(c) = self.cluster.as_mut() else { return };
        let gone: Vec<(PeerId, u32)> =
            c.remote.iter().filter(|(_, r)| r.node == index).map(|(&p, r)| (p, r.room)).collect();
        for (peer, room) in gone {
            self.remote_leave(room, peer);
        }
    }

    /// The room index of remote `peer` if node `node` announced it in `room`.
    fn known_remote(&mut self, node: u8, room: &str, peer: PeerId) -> Option<u32> {
        let index = self.rooms.lookup(room);
        let c = self.cluster.as_mut()?;
        match (index, c.remote.get(&peer)) {
            (Some(index), Some(r)) if r.node == node && r.room == index => Some(index),
            _ => {
                c.stats.unknown += 1;
                None
            }
        }
    }

    fn remote_join(&mut self, node: u8, room: &str, peer: PeerId) {
        let index = self.rooms.lookup(room);
        let Some(c) = self.cluster.as_mut() else { return };
        let Some(index) = index.filter(|i| c.subscribed.contains(i)) else {
            c.stats.unknown += 1;
            return;
        };
        if c.remote.contains_key(&peer) || self.peers.contains_key(&peer) {
            // Known already (a SYNC answer), or a local id: nothing new.
            return;
        }
        if c.remote.len() >= c.config.max_remote_peers {
            c.stats.refused_joins += 1;
            return;
        }
        c.remote.insert(peer, Remote { node, room: index, next_seq: None });
        self.rooms.add_member(index, peer, REMOTE);
        let locals: Vec<u32> =
            self.rooms.members(index).iter().filter(|m| m.1 != REMOTE).map(|m| m.1).collect();
        for local in locals {
            match self.config.protocol {
                Protocol::Godot4 if self.config.relay => {
                    self.deliver_or_cut(local, &[&scene::header(SysCommand::AddPeer, peer.get())]);
                }
                Protocol::Godot4 => {}
                Protocol::Godot3 => {
                    self.deliver_or_cut(local, &[&godot3::sys_message(MessageType::Add, peer.get())]);
                }
            }
        }
    }

    fn remote_leave(&mut self, room: u32, peer: PeerId) {
        let Some(c) = self.cluster.as_mut() else { return };
        if c.remote.remove(&peer).is_none() {
            return;
        }
        self.rooms.remove_member(room, peer);
        self.announce_departure(room, peer);
    }

    fn remote_packet(
        &mut self,
        node: u8,
        room: &str,
        from: PeerId,
        dest: PacketDest,
        seq: u64,
        payload: &[u8],
    ) {
        let Some(index) = self.known_remote(node, room, from) else { return };
        let Some(c) = self.cluster.as_mut() else { return };
        let Some(remote) = c.remote.get_mut(&from) else { return };
        let gap = remote.next_seq.is_some_and(|next| next != seq);
        remote.next_seq = Some(seq.wrapping_add(1));
        if gap {
            // Lost between instances: never skipped silently. The sender leaves everyone's
            // view here and its instance is asked to announce it again.
            c.stats.gaps += 1;
            self.remote_leave(index, from);
            self.publish_room(room, &ClusterMessage::Sync { room });
            return;
        }
        if let Some(r) = self.rooms.get_mut(index) {
            r.stats.packets_in += 1;
            r.stats.bytes_in += payload.len() as u64;
        }
        let header = scene::header(SysCommand::Relay, from.get());
        let parts: &[&[u8]] = match self.config.protocol {
            Protocol::Godot4 => &[&header, payload],
            Protocol::Godot3 => &[payload],
        };
        match dest {
            PacketDest::One(peer) => match self.rooms.member(index, peer) {
                Some(slot) if slot != REMOTE => self.deliver_or_cut(slot, parts),
                // For a member of another instance, or one that left meanwhile.
                _ => {}
            },
            PacketDest::AllExcept(except) => self.fan_out(Some(index), Some(from), Some(except), parts),
            PacketDest::All => self.fan_out(Some(index), Some(from), None, parts),
        }
    }

    /// A local peer joined `room`: receive the room's messages (asking the others who is
    /// there) and announce the peer.
    pub(super) fn cluster_local_join(&mut self, room: u32, peer: PeerId) {
        let Some(name) = self.rooms.name(room).map(String::from) else { return };
        let Some(c) = self.cluster.as_mut() else { return };
        if c.subscribed.insert(room) {
            c.outbox.push_back(ClusterOutput::Subscribe(name.clone()));
            self.publish_room(&name, &ClusterMessage::Sync { room: &name });
        }
        self.publish_room(&name, &ClusterMessage::Join { room: &name, peer });
    }

    /// A local peer left `room`.
    pub(super) fn cluster_local_leave(&mut self, room: u32, peer: PeerId) {
        let Some(c) = self.cluster.as_mut() else { return };
        c.seq.remove(&peer);
        let Some(name) = self.rooms.name(room).map(String::from) else { return };
        self.publish_room(&name, &ClusterMessage::Leave { room: &name, peer });
    }

    /// Room `room` (named `name`) is gone here: stop receiving it and forget its remote members.
    pub(super) fn cluster_room_gone(&mut self, room: u32, name: String) {
        let Some(c) = self.cluster.as_mut() else { return };
        if c.subscribed.remove(&room) {
            c.remote.retain(|_, r| r.room != room);
            c.outbox.push_back(ClusterOutput::Unsubscribe(name));
        }
    }

    /// Whether `room` has members on other instances besides `except`.
    fn has_remote_targets(&self, room: u32, dest: Dest, sender: PeerId) -> bool {
        match dest {
            Dest::One(peer) => self.rooms.member(room, peer) == Some(REMOTE),
            Dest::AllExcept(except) => {
                self.rooms.members(room).iter().any(|m| m.1 == REMOTE && m.0 != sender && Some(m.0) != except)
            }
        }
    }

    /// Publishes a relayed packet of local `sender` once if any of its targets is remote.
    pub(super) fn cluster_relay(&mut self, room: u32, sender: PeerId, dest: Dest, payload: &[u8]) {
        if self.cluster.is_none() || !self.has_remote_targets(room, dest, sender) {
            return;
        }
        let Some(name) = self.rooms.name(room).map(String::from) else { return };
        let Some(c) = self.cluster.as_mut() else { return };
        let next = c.seq.entry(sender).or_insert(0);
        let seq = *next;
        *next += 1;
        let dest = match dest {
            Dest::One(peer) => PacketDest::One(peer),
            Dest::AllExcept(Some(except)) => PacketDest::AllExcept(except),
            Dest::AllExcept(None) => PacketDest::All,
        };
        self.publish_room(&name, &ClusterMessage::Packet { room: &name, from: sender, dest, seq, payload });
    }

    fn publish_room(&mut self, room: &str, message: &ClusterMessage<'_>) {
        if let Some(bytes) = self.encode_cluster(message) {
            self.push_output(ClusterOutput::PublishRoom { room: String::from(room), message: bytes });
        }
    }

    fn encode_cluster(&mut self, message: &ClusterMessage<'_>) -> Option<Vec<u8>> {
        let c = self.cluster.as_mut()?;
        c.scratch.clear();
        if cluster::encode(c.config.node, message, &mut c.scratch).is_err() {
            c.stats.outbox_overflow += 1;
            return None;
        }
        Some(c.scratch.clone())
    }

    fn push_output(&mut self, output: ClusterOutput) {
        let Some(c) = self.cluster.as_mut() else { return };
        if c.outbox.len() >= c.config.max_outbox {
            c.stats.outbox_overflow += 1;
            return;
        }
        c.stats.published += 1;
        c.outbox.push_back(output);
    }

    /// When the cluster's next timer is due: a heartbeat, or another instance's deadline.
    pub(super) fn cluster_timeout(&self) -> Option<Instant> {
        // Messages waiting in the outbox are no reason to wake: the adapter takes them after
        // every call (`poll_cluster`), and one whose way to the broker is full is woken when
        // it has room again (asking for a call now would spin its loop until then).
        let c = self.cluster.as_ref()?;
        let deadline = c.config.failure_deadline;
        let expiry = c.nodes.values().filter(|n| n.alive).map(|n| n.last_seen + deadline).min();
        crate::time::earliest(c.next_heartbeat, expiry)
    }

    /// Sends a due heartbeat and declares silent instances dead.
    pub(super) fn cluster_handle_timeout(&mut self) {
        let now = self.now;
        let Some(c) = self.cluster.as_mut() else { return };
        if c.next_heartbeat.is_some_and(|at| at <= now) {
            c.next_heartbeat = Some(now + c.config.heartbeat_interval);
            let name = c.config.name.clone();
            if let Some(bytes) = self.encode_cluster(&ClusterMessage::Heartbeat { name: &name }) {
                self.push_output(ClusterOutput::PublishNode(bytes));
            }
        }
        let Some(c) = self.cluster.as_mut() else { return };
        let deadline = c.config.failure_deadline;
        let mut expired = Vec::new();
        for (&index, node) in c.nodes.iter_mut() {
            if node.alive && node.last_seen + deadline <= now {
                node.alive = false;
                expired.push(index);
            }
        }
        c.stats.nodes_expired += expired.len() as u64;
        for index in expired {
            self.drop_node_peers(index);
        }
    }

    /// A peer id for a new local peer: drawn as always, then moved into this node's residue
    /// class (`id % 64 == k`), so that no other instance can draw it.
    pub(super) fn cluster_peer_id(&mut self) -> Option<PeerId> {
        let k = u32::from(self.cluster.as_ref()?.config.node.index);
        for _ in 0..64 {
            let raw = (self.rng.next_u32() & PeerId::MAX & !(u32::from(MAX_NODES) - 1)) | k;
            if let Some(id) = PeerId::new(raw).filter(|id| cluster::peer_of_node(*id, k as u8)) {
                if !self.peers.contains_key(&id) && !self.cluster.as_ref()?.remote.contains_key(&id) {
                    return Some(id);
                }
            }
        }
        None
    }
}
