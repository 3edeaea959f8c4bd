//! The WebRTC mesh over std sockets (feature `webrtc`): Godot's `WebRTCMultiplayerPeer` with
//! the WebRTC stack built in.
//!
//! The core's [`Mesh`](multipeer::mesh::Mesh) keeps the peer table and Godot's channel rules
//! and asks for engine work through commands; this module is that engine. Each remote peer gets
//! one [`str0m`] `Rtc` (ICE, DTLS, SCTP). The peers share one non-blocking UDP socket per
//! configured local address ([`WebRtcConfig::local_ips`], default `127.0.0.1`; optionally on a
//! fixed port or range, [`WebRtcConfig::ports`]), whose address is signalled as a host
//! candidate; each datagram goes to the `Rtc` that accepts it (its remote address, or the ICE
//! user name of a check), [`SocketLayout::PerPeer`] gives each peer its own sockets instead. Godot's channels are created on both sides as negotiated channels with the
//! same stream ids (1 reliable; 2 ordered and 3 unordered with `maxPacketLifetime`), so no DCEP
//! is exchanged; the higher id of each pair creates the offer, candidates trickle after the
//! description. str0m's timeouts drive the loop; its events become the mesh's engine events.
//!
//! What is enforced here, per `reference/webrtc.md`:
//!
//! * UDP payloads stay within the browser-safe budget of [`MAX_UDP_PAYLOAD`] (1228) bytes. str0m's
//!   default MTU target (1150) is lowered to [`DEFAULT_MTU`] because sctp-proto's bundling of
//!   small messages overshoots its budget (see there); [`EngineStats::largest_datagram`] lets
//!   tests assert it.
//! * A message larger than the remote `a=max-message-size` (64 KiB when absent, unlimited for
//!   0), or than the send buffer, is refused by `put_packet` with `PutError::TooLarge`.
//! * Back-pressure: when str0m's send buffer is full, messages wait in a bounded per-peer
//!   outbox (`PutError::Full` beyond it). A message on a lane with `maxPacketLifetime` expires
//!   there once its lifetime, counted from the send, is over ([`EngineStats::expired_sends`]). When the mesh refuses a message because a reliable
//!   receive lane is full (`LaneFull`), that message and everything after it from the same peer
//!   are held until the application reads; datagrams for that peer meanwhile wait, up to
//!   [`MAX_PARKED_DATAGRAMS`] of them, then are dropped as a full socket buffer would drop
//!   them (SCTP retransmits), counted in [`EngineStats::parked_drops`].
//! * A peer that vanishes without closing is reported disconnected once ICE gives up on it
//!   ([`WebRtcConfig::ice_timing`]: 21.5 s by default, never under 15 s with str0m). A peer
//!   that never connects because every candidate pair failed (no path, say a symmetric NAT
//!   and no relay) fails 3 s after the last pair did ([`EngineStats::ice_failures`], and
//!   [`EngineStats::last_error`]), 21.75 s after its creation with the default timing; Godot
//!   drops such a peer (`STATE_FAILED`) too. There is no ICE restart, as Godot's
//!   `WebRTCPeerConnection` has none: the game reconnects through signalling, removing the
//!   peer and adding it again (`remove_peer`, `add_peer`), which negotiates anew.
//! * ICE servers, all asked at once when the sockets are bound: `stun:` servers for our mapped
//!   address (one Binding request per shared socket, retried, given up after 3.5 s), signalled
//!   as a server-reflexive candidate; `turn:` and `turns:` servers (UDP, TCP or TLS to the
//!   server, long-term credentials) for a relayed
//!   address (`turn-client-proto`, sans-IO: Allocate, Refresh, CreatePermission, ChannelBind,
//!   Send/Data indications and ChannelData), signalled as a relay candidate, so that peers
//!   behind symmetric NATs reach each other through the relay. An allocation that fails (wrong
//!   credentials, refused, an untrusted certificate, no answer within 5 s) is counted in [`EngineStats::turn_failures`]
//!   and its reason kept in [`EngineStats::last_error`] at once; with
//!   [`WebRtcConfig::relay_only`] the peers then fail at once, otherwise they go on with their
//!   host and server-reflexive candidates.
//! * mDNS `.local` candidates from browsers cannot be resolved (str0m has none); such
//!   connections rely on peer-reflexive discovery from the browser's own checks.

mod config;
mod connection;
mod engine;
mod multiplayer;
mod net;
mod outbox;
pub mod stun;
pub mod turn;
mod turn_stream;

pub use config::{
    DEFAULT_MTU, IceServer, IceTiming, MAX_UDP_PAYLOAD, SocketLayout, TurnServer, TurnTransport, WebRtcConfig,
};
pub use multiplayer::{WebRtcError, WebRtcMultiplayerPeer, connect_lobby};

/// Datagrams kept for a peer whose received messages are held for the application, before
/// more are dropped (about what a 2 MiB socket receive buffer holds of full-size datagrams).
pub const MAX_PARKED_DATAGRAMS: usize = 1024;

/// Counters of one engine, summed over its peer connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// UDP datagrams sent.
    pub datagrams_sent: u64,
    /// UDP payload bytes sent.
    pub bytes_sent: u64,
    /// UDP datagrams received.
    pub datagrams_received: u64,
    /// The largest UDP payload sent (the MTU guard: at most 1228).
    pub largest_datagram: usize,
    /// Sends refused as too large or over the outbox limit.
    pub refused_sends: u64,
    /// Messages on channels with `maxPacketLifetime` (Godot's unreliable lanes) whose lifetime
    /// ended while they waited in the outbox for send-buffer room: abandoned unsent, as SCTP
    /// abandons them once queued.
    pub expired_sends: u64,
    /// Signalling messages the lobby connection refused outright (larger than its
    /// `outbound_buffer_size`, or the connection closed); a full outbound queue only delays
    /// them.
    pub dropped_signals: u64,
    /// Datagrams dropped because they were for a peer whose received messages are held (see
    /// the module docs) and more than [`MAX_PARKED_DATAGRAMS`] already waited.
    pub parked_drops: u64,
    /// Datagrams no peer connection accepted (stray, spoofed, or for a closed peer).
    pub unrouted_datagrams: u64,
    /// STUN Binding requests sent to STUN servers.
    pub stun_requests: u64,
    /// Datagrams of the TURN protocol itself (Allocate, Refresh, CreatePermission,
    /// ChannelBind) sent to TURN servers.
    pub turn_datagrams_sent: u64,
    /// Peer datagrams that arrived relayed by a TURN server (Data indications, ChannelData).
    pub turn_datagrams_received: u64,
    /// Peer datagrams sent through a TURN relay (Send indications, ChannelData); also counted
    /// in `datagrams_sent`.
    pub relayed_datagrams_sent: u64,
    /// Peers that never connected because every candidate pair failed (Godot's
    /// `WebRTCPeerConnection` state `STATE_FAILED`).
    pub ice_failures: u64,
    /// TURN allocations that failed (refused, wrong credentials, no answer).
    pub turn_failures: u64,
    /// The last error that kept a peer connection from being created.
    pub last_error: Option<String>,
}
