//! The server's public configuration, handles, errors and counters.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;

use crate::peer::Protocol;
use crate::queue::QueueLimits;
use crate::ws;

/// Default of [`ServerConfig::slow_peer_timeout`].
pub const DEFAULT_SLOW_PEER_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(10);

/// How the server runs. Defaults are Godot 4.4's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Godot 4 or Godot 3 framing.
    pub protocol: Protocol,
    /// Godot 4: speak SceneMultiplayer's SYS relay (`ADD_PEER`, `DEL_PEER`, `RELAY`) so Godot 4
    /// clients with `server_relay` on see each other through this server. Godot 3 always relays.
    pub relay: bool,
    /// Limits and timers of each connection (`inbound_buffer_size`, `outbound_buffer_size`,
    /// `max_queued_packets`, `handshake_timeout`).
    pub ws: ws::Config,
    /// Subprotocols accepted (Godot: `supported_protocols`).
    pub supported_protocols: Vec<String>,
    /// Extra header lines in the 101 response (Godot: `handshake_headers`).
    pub handshake_headers: Vec<String>,
    /// Most connections at once, handshaking or joined; more are refused at accept.
    pub max_peers: usize,
    /// Bounds of the queue of packets waiting for the application; when full, connections stop
    /// being read (back-pressure), nothing is dropped. Packets of 2 KiB and more usually wait in
    /// their connection's receive queue instead of being copied here (they then count as
    /// packets, not bytes, of this bound).
    pub inbox: QueueLimits,
    /// Answer new upgrade requests with 503 (Godot: `refuse_new_connections`).
    pub refuse_new_connections: bool,
    /// Most undelivered reports (dropped packets, rejected handshakes) kept for `poll_event`;
    /// beyond it they are counted in [`ServerStats::unreported_events`].
    pub max_queued_events: usize,
    /// Browsers' `Origin` values accepted; empty accepts any. A request whose `Origin` is not
    /// listed gets 403. Requests without `Origin` (native Godot clients send none) pass: an
    /// Origin check guards against other web pages, not against programs.
    pub allowed_origins: Vec<String>,
    /// Most connections at once from one IP address (handshaking or joined); `None` for no
    /// limit. Beyond it the transport is refused at accept.
    pub max_connections_per_ip: Option<usize>,
    /// How long a peer may keep its outbound queue full, with a sender waiting on it, without
    /// writing a single byte, before it is disconnected (1008) so its senders go on. `None`
    /// never evicts (senders then wait as long as the peer does).
    ///
    /// Godot has no such setting: its server drops what does not fit. The default, 10 s, is
    /// what a game on a real network never reaches: a receiver that reads at any rate writes
    /// something every round trip, and ENet, Godot's other transport, gives up on a silent
    /// peer after 5–30 s (`set_timeout` defaults).
    pub slow_peer_timeout: Option<core::time::Duration>,
    /// Most packets per second routed from one peer (token bucket, one second of burst);
    /// beyond it the peer's input waits (TCP slows it down), and a peer held by its limit for
    /// most (80 %) of a `slow_peer_timeout` is disconnected. `None` (Godot's behaviour): no
    /// limit.
    pub max_inbound_packets_per_second: Option<u32>,
    /// Most payload bytes per second routed from one peer; as
    /// [`max_inbound_packets_per_second`](Self::max_inbound_packets_per_second).
    pub max_inbound_bytes_per_second: Option<u64>,
    /// Rooms chosen by the request path; the default is one world, as Godot's server.
    pub rooms: super::RoomConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            protocol: Protocol::Godot4,
            relay: true,
            // Room for a few largest messages per peer between two writes (see
            // `ws::Config::outbound_queue_size`); a peer that falls this far behind is cut off.
            ws: ws::Config {
                outbound_queue_size: Some(1 << 20),
                buffer_release_delay: Some(core::time::Duration::from_secs(1)),
                ..ws::Config::GODOT
            },
            supported_protocols: Vec::new(),
            handshake_headers: Vec::new(),
            max_peers: 4096,
            inbox: QueueLimits { max_bytes: 1 << 20, max_packets: 16384 },
            refuse_new_connections: false,
            max_queued_events: 4096,
            allowed_origins: Vec::new(),
            max_connections_per_ip: None,
            slow_peer_timeout: Some(DEFAULT_SLOW_PEER_TIMEOUT),
            max_inbound_packets_per_second: None,
            max_inbound_bytes_per_second: None,
            rooms: super::RoomConfig::default(),
        }
    }
}

/// A transport connection, as the adapter knows it: a slot index checked by a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(super) index: u32,
    pub(super) generation: u32,
}

impl ConnId {
    /// The slot index: small, dense and reused after release, so an adapter can keep its own
    /// per-connection state in a plain vector indexed by it (the generation tells reuses apart).
    #[must_use]
    pub fn index(self) -> u32 {
        self.index
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn{}.{}", self.index, self.generation)
    }
}

/// A `ConnId` that is not (or no longer) a connection of this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownConnection(pub ConnId);

impl fmt::Display for UnknownConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a connection of this server", self.0)
    }
}

impl core::error::Error for UnknownConnection {}

/// A new transport could not be taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptError {
    /// [`ServerConfig::max_peers`] connections already exist; close the transport.
    AtCapacity,
    /// The server was closed.
    Closed,
    /// [`ServerConfig::max_connections_per_ip`] connections from this address already exist.
    TooManyFromAddress,
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AtCapacity => "server at its connection limit",
            Self::Closed => "server closed",
            Self::TooManyFromAddress => "too many connections from this address",
        })
    }
}

impl core::error::Error for AcceptError {}

/// Counters for a status line (`multipeer serve` prints one each second).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Packets received from peers (application and relay).
    pub packets_in: u64,
    /// Packets queued to peers (including relayed and system messages).
    pub packets_out: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Payload bytes queued to peers.
    pub bytes_out: u64,
    /// Packets dropped (each also reported as an event unless unreported).
    pub dropped: u64,
    /// Handshakes refused or failed.
    pub rejected: u64,
    /// Peers disconnected for not draining their outbound queue: full, with a sender waiting,
    /// and nothing written for [`ServerConfig::slow_peer_timeout`] (or, rarely, no room left
    /// for a join or leave announcement).
    pub slow_consumers: u64,
    /// Times a sender had to wait for room at one of its relay targets.
    pub relay_waits: u64,
    /// Senders waiting for room now.
    pub blocked_senders: u64,
    /// Microseconds senders spent waiting for room, summed over the waits that ended.
    pub blocked_micros: u64,
    /// Times a sender was held by its inbound rate limit.
    pub throttled: u64,
    /// Peers disconnected for staying over their inbound rate limit.
    pub rate_limited: u64,
    /// Reports not queued because the event queue was full.
    pub unreported_events: u64,
    /// Upgrade requests refused for their room (see [`RoomRefusal`](super::RoomRefusal)).
    pub rooms_refused: u64,
}

/// What Godot's `get_peer(id)` tells about the connection behind a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The transport connection.
    pub conn: ConnId,
    /// The remote address, if the adapter gave it (`get_peer_address`, `get_peer_port`).
    pub addr: Option<SocketAddr>,
    /// The WebSocket state.
    pub state: ws::State,
    /// The negotiated subprotocol.
    pub subprotocol: Option<String>,
    /// Bytes queued for the transport (`get_current_outbound_buffered_amount`).
    pub buffered_amount: usize,
    /// How the WebSocket closed, once it has.
    pub close: Option<ws::CloseInfo>,
}
