//! The node table, configuration, events and errors of [`SceneMultiplayer`](super::SceneMultiplayer).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::peer::{PeerId, PutError, Target, TransferMode};
use crate::scene::{ArgumentError, RemoteCallError, RpcConfig, RpcMethods, TooManyMethods};
use crate::variant::{Variant, Version};

use super::godot3::RemoteMode;

/// How many arguments a method takes: `min` required, up to `max` with defaults (Godot checks
/// this when it calls the method; here the call is refused before it is delivered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arity {
    /// Required arguments.
    pub min: u8,
    /// Required plus optional arguments.
    pub max: u8,
}

impl Arity {
    /// Any count (a variadic method, or one whose signature the application checks itself).
    pub const ANY: Self = Self { min: 0, max: u8::MAX };

    /// Exactly `n` arguments.
    #[must_use]
    pub const fn exactly(n: u8) -> Self {
        Self { min: n, max: n }
    }

    /// Whether `count` arguments fit.
    #[must_use]
    pub const fn accepts(self, count: usize) -> bool {
        count >= self.min as usize && count <= self.max as usize
    }
}

/// A node the application exposes to RPCs: its methods with Godot's config (`@rpc` on the
/// script, `Node.rpc_config` on the node) and its multiplayer authority
/// (`Node.set_multiplayer_authority`, default 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcNode {
    pub(super) methods: RpcMethods,
    pub(super) arity: BTreeMap<String, Arity>,
    pub(super) authority: PeerId,
    /// Godot 3: `remote func` / `rpc_config` modes by method name.
    pub(super) remote_methods: BTreeMap<String, RemoteMode>,
    /// Godot 3: `remote var` / `rset_config` modes by property name.
    pub(super) remote_properties: BTreeMap<String, RemoteMode>,
}

impl Default for RpcNode {
    fn default() -> Self {
        Self::new()
    }
}

impl RpcNode {
    /// A node without RPC methods whose authority is the server (Godot's default).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            methods: RpcMethods::new(),
            arity: BTreeMap::new(),
            authority: PeerId::SERVER,
            remote_methods: BTreeMap::new(),
            remote_properties: BTreeMap::new(),
        }
    }

    /// Declares a script method (`@rpc(...) func name(...)`).
    ///
    /// # Errors
    /// [`TooManyMethods`].
    pub fn script_method(
        &mut self,
        name: &str,
        config: RpcConfig,
        arity: Arity,
    ) -> Result<&mut Self, TooManyMethods> {
        self.methods.add_script_method(name, config)?;
        self.arity.insert(name.into(), arity);
        Ok(self)
    }

    /// Declares a node-level method (`Node.rpc_config(name, {...})`), numbered from 0x8000.
    ///
    /// # Errors
    /// [`TooManyMethods`].
    pub fn node_method(
        &mut self,
        name: &str,
        config: RpcConfig,
        arity: Arity,
    ) -> Result<&mut Self, TooManyMethods> {
        self.methods.add_node_method(name, config)?;
        self.arity.insert(name.into(), arity);
        Ok(self)
    }

    /// Declares a Godot 3 method (`remote func name(...)`, or 3.x `Node.rpc_config(name,
    /// mode)`): 3.x calls it by name with the permission of `mode`. Declaring it again
    /// replaces its mode.
    pub fn remote_method(&mut self, name: &str, mode: RemoteMode, arity: Arity) -> &mut Self {
        self.remote_methods.insert(name.into(), mode);
        self.arity.insert(name.into(), arity);
        self
    }

    /// Declares a Godot 3 property (`remote var name`, or 3.x `Node.rset_config(name, mode)`):
    /// `rset` may set it with the permission of `mode`.
    pub fn remote_property(&mut self, name: &str, mode: RemoteMode) -> &mut Self {
        self.remote_properties.insert(name.into(), mode);
        self
    }

    /// A Godot 3 method's mode; [`RemoteMode::Disabled`] when it is not declared (3.x
    /// `Node.get_node_rpc_mode`, script `get_rpc_mode`).
    #[must_use]
    pub fn rpc_mode(&self, name: &str) -> RemoteMode {
        self.remote_methods.get(name).copied().unwrap_or_default()
    }

    /// A Godot 3 property's mode; [`RemoteMode::Disabled`] when it is not declared (3.x
    /// `Node.get_node_rset_mode`, script `get_rset_mode`).
    #[must_use]
    pub fn rset_mode(&self, name: &str) -> RemoteMode {
        self.remote_properties.get(name).copied().unwrap_or_default()
    }

    /// Sets the multiplayer authority (`Node.set_multiplayer_authority`; Godot 3
    /// `Node.set_network_master`).
    pub fn set_authority(&mut self, authority: PeerId) -> &mut Self {
        self.authority = authority;
        self
    }

    /// The multiplayer authority (`Node.get_multiplayer_authority`; Godot 3
    /// `Node.get_network_master`).
    #[must_use]
    pub fn authority(&self) -> PeerId {
        self.authority
    }

    /// The method table, with Godot's ids and checksum.
    #[must_use]
    pub fn methods(&self) -> &RpcMethods {
        &self.methods
    }
}

/// How a [`SceneMultiplayer`](super::SceneMultiplayer) behaves; the defaults are Godot 4.6's,
/// [`SceneConfig::godot3`] gives Godot 3's `MultiplayerAPI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SceneConfig {
    /// The Godot version spoken (4.0–4.2 confirm paths by path, 4.3+ by id).
    /// [`Version::Godot3`] switches to 3.x's `MultiplayerAPI`: calls and `rset` by name with
    /// [`RemoteMode`]s, plain variants, 3.x path-cache packets, and neither authentication nor
    /// a relay of its own (the 3.x transport relays by its header), so `server_relay`, `auth`
    /// and `auth_timeout` are then ignored.
    pub version: Version,
    /// `server_relay` (default true): the server forwards `RELAY` packets between clients and
    /// announces peers with `ADD_PEER`/`DEL_PEER`. The transport's own relay must then be off,
    /// so that `SYS` packets (`AUTH` included) reach this machine.
    pub server_relay: bool,
    /// Whether an `auth_callback` is set: new peers start pending and must complete
    /// authentication (Godot: `auth_callback` not null).
    pub auth: bool,
    /// `auth_timeout` (default 3 s; zero waits forever).
    pub auth_timeout: Duration,
    /// `allow_object_decoding` (default false): full objects in RPC arguments.
    pub allow_object_decoding: bool,
    /// Most paths one peer may cache with us (Godot: unbounded); more `SIMPLIFY_PATH`s are
    /// refused without a `CONFIRM_PATH`, so that peer keeps sending full paths.
    pub max_cached_paths: usize,
    /// Most peers a client learns from the server's `ADD_PEER` announcements; more are
    /// refused (a transport's own peers are bounded by the transport).
    pub max_relayed_peers: usize,
    /// Most events kept for [`poll_event`](super::SceneMultiplayer::poll_event); beyond it
    /// events are counted in [`SceneStats::unreported_events`].
    pub max_queued_events: usize,
    /// Most packets waiting to be sent to one transport peer (Godot 3: to all), while its
    /// transport queue is full. A command that needs more fails with [`SendError::Full`]; a
    /// relayed packet waits in its sender (Godot's SceneMultiplayer has no such queue: the
    /// transport drops what does not fit).
    pub max_queued_packets: usize,
    /// Most bytes waiting to be sent to one transport peer (Godot 3: to all), as
    /// `max_queued_packets`.
    pub max_queued_bytes: usize,
    /// Most received packets kept waiting behind a relay whose target has no room, over all
    /// senders; beyond it [`pump`](super::SceneMultiplayer::pump) stops taking packets from the
    /// transport until some go on (nothing is dropped). The transport holds a waiting sender's
    /// input, so only packets it had already queued for the application wait here.
    pub max_held_packets: usize,
    /// Most bytes of received packets kept waiting, as `max_held_packets`.
    pub max_held_bytes: usize,
}

impl Default for SceneConfig {
    fn default() -> Self {
        Self {
            version: Version::GODOT_4_6,
            server_relay: true,
            auth: false,
            auth_timeout: Duration::from_secs(3),
            allow_object_decoding: false,
            max_cached_paths: 4096,
            max_relayed_peers: 4096,
            max_queued_events: 4096,
            max_queued_packets: 4096,
            max_queued_bytes: 1 << 20,
            max_held_packets: 16384,
            max_held_bytes: 1 << 20,
        }
    }
}

impl SceneConfig {
    /// Godot 3.x's `MultiplayerAPI` (3.2.3), the other fields at their defaults.
    #[must_use]
    pub fn godot3() -> Self {
        Self { version: Version::Godot3, ..Self::default() }
    }
}

/// One packet to send: give it to the transport with `set_target_peer(to)`,
/// `set_transfer_mode(mode)`, `set_transfer_channel(channel)` and `put_packet(data)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The transport target: one peer in 4.x (a client sends everything to 1, wrapped in
    /// `RELAY` for others); in 3.x also a broadcast or an exclusion, which the 3.x server
    /// relays by the header, once every target confirmed the path.
    pub to: Target,
    /// The transfer mode.
    pub mode: TransferMode,
    /// The channel.
    pub channel: u8,
    /// The SceneMultiplayer packet.
    pub data: Vec<u8>,
}

/// An RPC that arrived and passed every check: the method to run, with Godot's
/// `get_remote_sender_id()` as `sender`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcCall {
    /// The caller (the relay source for relayed calls; this peer for `call_local`).
    pub sender: PeerId,
    /// The node path, as declared.
    pub node: String,
    /// The method name.
    pub method: String,
    /// The decoded arguments.
    pub args: Vec<Variant>,
}

/// A Godot 3 `rset` that arrived and passed every check: the property to set (3.x
/// `MultiplayerAPI::_process_rset`), with `get_rpc_sender_id()` as `sender`.
#[derive(Debug, Clone, PartialEq)]
pub struct RsetCall {
    /// The setter (this peer for a `*sync` mode).
    pub sender: PeerId,
    /// The node path, as declared.
    pub node: String,
    /// The property name.
    pub property: String,
    /// The new value.
    pub value: Variant,
}

/// A replication packet header (`scene-multiplayer.md` §6), decoded for the application until
/// MultiplayerSpawner/MultiplayerSynchronizer are implemented here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// `SPAWN`: the sender's spawner cache id, the scene index (255 = custom) and the net id.
    Spawn {
        /// The sender's cache id of the spawner node.
        spawner: u32,
        /// The spawnable scene index, 255 for `spawn_function`.
        scene: u8,
        /// The spawned node's network id.
        net_id: u32,
    },
    /// `DESPAWN` of a network id.
    Despawn {
        /// The despawned node's network id.
        net_id: u32,
    },
    /// `SYNC` (with its 16-bit time) or a delta sync (`time` is `None`).
    Sync {
        /// The sync time of a full `SYNC`.
        time: Option<u16>,
    },
}

/// What [`SceneMultiplayer`](super::SceneMultiplayer) reports: Godot's SceneMultiplayer
/// signals, incoming RPCs and packets, and everything Godot only logs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SceneEvent {
    /// `peer_connected(id)`: admitted (after authentication when it is on).
    PeerConnected(PeerId),
    /// `peer_disconnected(id)`.
    PeerDisconnected(PeerId),
    /// `connected_to_server` (client, once the server is admitted).
    ConnectedToServer,
    /// `peer_authenticating(id)`: a new peer waits for authentication.
    PeerAuthenticating(PeerId),
    /// `auth_callback(id, data)`: authentication data from a pending peer.
    AuthData {
        /// The pending peer.
        peer: PeerId,
        /// What it sent with `send_auth`.
        data: Vec<u8>,
    },
    /// `peer_authentication_failed(id)`: it timed out or left while pending.
    PeerAuthenticationFailed(PeerId),
    /// An RPC to run.
    Rpc(RpcCall),
    /// A Godot 3 `rset`: a property to set.
    Rset(RsetCall),
    /// `peer_packet(id, packet)`: bytes from `send_bytes`.
    PeerPacket {
        /// The sender.
        from: PeerId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A replication packet (not processed yet).
    Replication {
        /// The sender.
        from: PeerId,
        /// Its header.
        header: Replication,
    },
    /// A `SIMPLIFY_PATH` or `CONFIRM_PATH` told that a node's RPC names differ between the two
    /// sides ("The rpc node checksum failed"); the path is cached all the same, as Godot does.
    ChecksumMismatch {
        /// The other side.
        peer: PeerId,
        /// The node path.
        path: String,
    },
    /// A packet was refused (Godot logs these and drops the packet).
    Refused {
        /// The sender (the relay source for relayed packets).
        from: PeerId,
        /// Why.
        reason: Refusal,
    },
    /// A packet queued earlier could not be handed to the transport.
    SendFailed {
        /// Its transport target.
        to: Target,
        /// Why.
        error: PutError,
    },
    /// A transport event this machine does not turn into one of its own.
    Transport(crate::peer::Event),
}

/// Why a received packet was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Empty, or a command's fixed part is missing.
    Malformed,
    /// A `REMOTE_CALL` that does not decode.
    BadCall(RemoteCallError),
    /// The sender is not a peer (not connected, or already gone).
    NotConnected,
    /// The sender is authenticating: only `07 00` is accepted from it.
    NotAuthenticated,
    /// `AUTH` data from an admitted peer.
    UnexpectedAuth,
    /// A cache id the sender never simplified.
    UnknownCacheId(u32),
    /// A node path that is not in the node table.
    UnknownNode(String),
    /// A method id the node does not have.
    UnknownMethod {
        /// The node path.
        node: String,
        /// The id.
        id: u16,
    },
    /// The method's `rpc_mode` does not allow this sender (disabled, or authority only; 3.x:
    /// a method or property whose [`RemoteMode`] refuses it, or that has none).
    NotAllowed {
        /// The node path.
        node: String,
        /// The method (3.x `rset`: the property).
        method: String,
    },
    /// An argument did not decode (Godot would call the method with `null`).
    BadArgument {
        /// The node path.
        node: String,
        /// The method.
        method: String,
        /// Which argument and why.
        error: ArgumentError,
    },
    /// The argument count does not fit the method.
    WrongArity {
        /// The node path.
        node: String,
        /// The method.
        method: String,
        /// Arguments received.
        count: usize,
    },
    /// A second `SIMPLIFY_PATH` for a cache id (4.3+ ignores it).
    DuplicateCacheId(u32),
    /// The sender's path cache is at [`SceneConfig::max_cached_paths`], or an `ADD_PEER`
    /// beyond [`SceneConfig::max_relayed_peers`].
    CacheFull,
    /// A 3.x command byte that is none of `REMOTE_CALL`, `REMOTE_SET`, `SIMPLIFY_PATH`,
    /// `CONFIRM_PATH` and `RAW` (3.2.3 ignores it).
    UnknownCommand(u8),
    /// A `CONFIRM_PATH` for a path never simplified to this peer.
    UnexpectedConfirm,
    /// A `SYS` sub-command that is unknown or not for this side.
    UnexpectedSys(u8),
    /// A `RELAY` to a target that cannot take it (the server, the sender, an unknown peer), a
    /// relay from an unknown source, or relaying while `server_relay` is off.
    BadRelay(i32),
    /// A `SYS` packet inside a `RELAY`.
    NestedSys,
    /// The outbound queue had no room for the answer (a `CONFIRM_PATH`, an announcement), or
    /// no room was left to keep a packet waiting (a sans-IO caller of `handle_packet` that
    /// does not hold senders' input).
    OutboundFull,
    /// A packet waiting to be relayed when its sender left (it is no longer a peer to relay
    /// from).
    SenderLeft,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed packet"),
            Self::BadCall(e) => write!(f, "{e}"),
            Self::NotConnected => f.write_str("sender is not a peer"),
            Self::NotAuthenticated => f.write_str("sender has not authenticated"),
            Self::UnexpectedAuth => f.write_str("auth data from an admitted peer"),
            Self::UnknownCacheId(id) => write!(f, "unknown cache id {id}"),
            Self::UnknownNode(path) => write!(f, "node {path:?} not found"),
            Self::UnknownMethod { node, id } => write!(f, "node {node:?} has no RPC method {id}"),
            Self::NotAllowed { node, method } => {
                write!(f, "RPC {method:?} on {node:?} not allowed from this peer")
            }
            Self::BadArgument { node, method, error } => write!(f, "RPC {method:?} on {node:?}: {error}"),
            Self::WrongArity { node, method, count } => {
                write!(f, "RPC {method:?} on {node:?} called with {count} argument(s)")
            }
            Self::DuplicateCacheId(id) => write!(f, "cache id {id} simplified twice"),
            Self::CacheFull => f.write_str("path cache full"),
            Self::UnknownCommand(c) => write!(f, "unknown command {c}"),
            Self::UnexpectedConfirm => f.write_str("confirm for a path never simplified"),
            Self::UnexpectedSys(c) => write!(f, "unexpected SYS command {c}"),
            Self::BadRelay(t) => write!(f, "relay to or from {t} refused"),
            Self::NestedSys => f.write_str("SYS packet inside a relay"),
            Self::OutboundFull => f.write_str("outbound queue full"),
            Self::SenderLeft => f.write_str("sender left while its packet waited"),
        }
    }
}

/// A command ([`rpc`](super::SceneMultiplayer::rpc), [`send_bytes`](super::SceneMultiplayer::send_bytes),
/// auth) that was refused; nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No unique id yet (Godot: `ERR_UNCONFIGURED`).
    NotConnected,
    /// The node is not in the node table.
    UnknownNode,
    /// The node has no such RPC method (Godot: `ERR_INVALID_PARAMETER`).
    UnknownMethod,
    /// The target is not an admitted peer (or not a pending one, for auth).
    UnknownPeer(PeerId),
    /// Addressing this peer itself without `call_local`, or `send_bytes` to itself.
    SelfTarget,
    /// Empty `send_bytes` or `send_auth` data.
    Empty,
    /// Authentication already completed on this side (or the other) for that peer.
    AuthCompleted,
    /// The call cannot be encoded (more than 255 arguments, a type the version lacks).
    Encode(RemoteCallError),
    /// The outbound queue has no room for every packet.
    Full,
    /// No cache ids are left (2^31 nodes addressed).
    CacheExhausted,
    /// Not in this version: `rset` outside Godot 3.
    Unsupported,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConnected => f.write_str("not connected"),
            Self::UnknownNode => f.write_str("node not in the node table"),
            Self::UnknownMethod => f.write_str("no such RPC method"),
            Self::UnknownPeer(p) => write!(f, "peer {p} is not admitted"),
            Self::SelfTarget => f.write_str("target is this peer"),
            Self::Empty => f.write_str("empty data"),
            Self::AuthCompleted => f.write_str("authentication already completed"),
            Self::Encode(e) => write!(f, "{e}"),
            Self::Full => f.write_str("outbound queue full"),
            Self::CacheExhausted => f.write_str("cache ids exhausted"),
            Self::Unsupported => f.write_str("not in this Godot version"),
        }
    }
}

impl core::error::Error for SendError {}

/// Counters of a [`SceneMultiplayer`](super::SceneMultiplayer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SceneStats {
    /// RPCs delivered.
    pub rpcs_in: u64,
    /// RPCs delivered that named their node by full path (the sender's first calls, before
    /// it saw our `CONFIRM_PATH`).
    pub rpcs_in_by_path: u64,
    /// RPC packets queued.
    pub rpcs_out: u64,
    /// RPC packets queued in the full-path form (to a peer that has not confirmed the path).
    pub rpcs_out_by_path: u64,
    /// Packets refused.
    pub refused: u64,
    /// Events not queued because the event queue was full.
    pub unreported_events: u64,
    /// Times the transport refused a packet with `PutError::Full` (it stayed queued here).
    pub outbound_full: u64,
    /// Times a relayed packet had to wait for room at one of its targets.
    pub relay_waits: u64,
    /// Senders waiting now (their input held by the transport).
    pub held_senders: u64,
    /// Microseconds senders spent waiting, summed over waits that ended.
    pub held_micros: u64,
    /// Peers the transport evicted for not draining their queue (1008 "slow peer").
    pub slow_peers_evicted: u64,
    /// Queued packets that went nowhere because their peer left.
    pub unsent_to_departed: u64,
}
