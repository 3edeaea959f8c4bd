//! The `MultiplayerPeer` contract and Godot's WebSocket multiplayer protocols.
//!
//! Godot games exchange *packets* addressed to *peer ids*: the server is 1, clients get random
//! ids from 2 to 2^31−1. [`MultiplayerPeer`] is that contract (Godot's `MultiplayerPeer` /
//! 3.x `NetworkedMultiplayerPeer`), presented by the WebSocket [`Client`], the WebSocket
//! [`Server`] (with `alloc`) and later the WebRTC mesh, so application code is written once.
//!
//! Two wire protocols are spoken ([`Protocol`]):
//!
//! * **Godot 4.x / Redot**: the server's first message is the client's id as 4 bytes LE; after
//!   that each WebSocket message is one packet, no header. Relaying between clients is done by
//!   SceneMultiplayer's SYS packets (`07 <cmd> <i32 id> …`), which the server here speaks when
//!   [`ServerConfig::relay`] is on, so Godot 4 clients see each other through a Rust server.
//! * **Godot 3.x**: every message carries a 9-byte header (type, from, to) and the server relays
//!   by the header's target.
//!
//! Where Godot silently drops a packet (spoofed sender, unknown target, a full queue) this
//! module reports it: an error from the call, or an [`Event::PacketDropped`] /
//! [`Event::PeerDisconnected`] with the reason.

mod client;
#[cfg(feature = "alloc")]
pub mod cluster;
pub mod godot3;
mod ids;
pub mod scene;
#[cfg(feature = "alloc")]
mod server;

pub use client::{Client, ClientConfig, ConnectError};
pub use ids::generate_unique_id;
#[cfg(feature = "alloc")]
pub use server::{
    AcceptError, ClusterConfig, ClusterNode, ClusterOutput, ClusterStats, ConnId, DEFAULT_SLOW_PEER_TIMEOUT,
    MAX_ROOM_NAME_LEN, PeerInfo, RoomConfig, RoomInfo, RoomMode, RoomNameError, RoomRefusal, RoomStats,
    Server, ServerConfig, ServerStats, UnknownConnection, room_from_path, validate_room_name,
    validate_room_prefix,
};

use core::fmt;
use core::num::NonZeroU32;

use crate::queue::ReadError;
use crate::time::Instant;
use crate::ws::{CloseCode, CloseInfo, CloseReason, HandshakeError};

/// A peer id: 1 is the server, clients are 2 to 2^31−1 (Godot's `int` ids, always positive).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(NonZeroU32);

impl PeerId {
    /// The server, id 1 (Godot: `TARGET_PEER_SERVER`).
    pub const SERVER: Self = Self(NonZeroU32::MIN);
    /// The largest id, 2^31−1.
    pub const MAX: u32 = 0x7fff_ffff;

    /// The id `id` if it is in 1..=2^31−1.
    #[must_use]
    pub const fn new(id: u32) -> Option<Self> {
        if id > Self::MAX {
            return None;
        }
        match NonZeroU32::new(id) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// The id as Godot's signed integer.
    #[must_use]
    pub const fn get(self) -> i32 {
        // In range by construction: at most 2^31−1.
        self.0.get() as i32
    }

    /// Whether this is the server.
    #[must_use]
    pub const fn is_server(self) -> bool {
        self.0.get() == 1
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a packet goes (Godot: `set_target_peer`, with 0, 1, id and −id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every peer (Godot 0, `TARGET_PEER_BROADCAST`).
    Broadcast,
    /// The server, peer 1 (Godot 1, `TARGET_PEER_SERVER`).
    Server,
    /// One peer.
    Peer(PeerId),
    /// Every peer except this one (Godot −id).
    AllExcept(PeerId),
}

impl Target {
    /// The target Godot writes as `value`; `None` for `i32::MIN`, which has no positive twin.
    #[must_use]
    pub fn from_godot(value: i32) -> Option<Self> {
        Some(match value {
            0 => Self::Broadcast,
            1 => Self::Server,
            v if v > 0 => Self::Peer(PeerId::new(v as u32)?),
            v => Self::AllExcept(PeerId::new(v.checked_neg()? as u32)?),
        })
    }

    /// The integer Godot writes for this target.
    #[must_use]
    pub fn to_godot(self) -> i32 {
        match self {
            Self::Broadcast => 0,
            Self::Server => 1,
            Self::Peer(p) => p.get(),
            Self::AllExcept(p) => -p.get(),
        }
    }

    /// `Peer(1)` is written as `Server`, so targets compare equal.
    #[must_use]
    pub fn normalized(self) -> Self {
        match self {
            Self::Peer(p) if p.is_server() => Self::Server,
            t => t,
        }
    }

    /// Whether a packet with this target reaches `peer`, sent by `sender`.
    #[must_use]
    pub fn includes(self, peer: PeerId, sender: PeerId) -> bool {
        peer != sender
            && match self.normalized() {
                Self::Broadcast => true,
                Self::Server => peer.is_server(),
                Self::Peer(p) => p == peer,
                Self::AllExcept(p) => p != peer,
            }
    }
}

/// How a packet is delivered (Godot: `TransferMode`). WebSocket is always reliable and
/// ordered; the mode is kept and reported, so code written for WebRTC works unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TransferMode {
    /// May be lost or reordered (Godot 0).
    Unreliable,
    /// May be lost, never reordered (Godot 1).
    UnreliableOrdered,
    /// Neither lost nor reordered (Godot 2, the default).
    #[default]
    Reliable,
}

impl TransferMode {
    /// The Godot enum value.
    #[must_use]
    pub const fn to_godot(self) -> u8 {
        match self {
            Self::Unreliable => 0,
            Self::UnreliableOrdered => 1,
            Self::Reliable => 2,
        }
    }

    /// The mode for a Godot enum value.
    #[must_use]
    pub const fn from_godot(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Unreliable,
            1 => Self::UnreliableOrdered,
            2 => Self::Reliable,
            _ => return None,
        })
    }
}

/// Godot's `ConnectionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// Not connected (Godot 0).
    Disconnected,
    /// Connecting (Godot 1).
    Connecting,
    /// Connected (Godot 2).
    Connected,
}

/// Which Godot WebSocket multiplayer protocol is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Godot 4.x and Redot: 4-byte id message, no header; relay by SceneMultiplayer SYS packets.
    #[default]
    Godot4,
    /// Godot 3.x: 9-byte header on every message, relay by the header's target.
    Godot3,
}

/// The metadata of a received packet (Godot: `get_packet_peer/mode/channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// The sender.
    pub from: PeerId,
    /// The mode it was sent with (always `Reliable` over WebSocket).
    pub mode: TransferMode,
    /// The channel it was sent on (always 0 over WebSocket).
    pub channel: u8,
}

/// A received packet, borrowed from the peer's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Sender, mode and channel.
    pub info: PacketInfo,
    /// The payload.
    pub data: &'a [u8],
}

/// Why a packet was dropped instead of delivered or relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Shorter than its protocol's header (Godot 3: 9 bytes; SYS packets: 6).
    TooShort,
    /// An empty message (Godot 4 ignores these).
    Empty,
    /// Godot 3: the header's `from` is not the sender's id.
    SpoofedSender {
        /// The id the header claimed.
        claimed: i32,
    },
    /// A client sent a system message only the server may send.
    ClientSysMessage,
    /// The target is not a connected peer.
    UnknownTarget(i32),
    /// A peer addressed itself.
    TargetIsSender,
    /// A relay request addressed to the server, which clients reach directly.
    RelayToServer,
    /// A message of a type the protocol does not define.
    UnknownMessage,
    /// An unreliable receive queue was full: the oldest message gave way.
    QueueOverflow,
    /// The sender was disconnected (kicked or cut off) before the packet was routed.
    SenderLeft,
    /// Larger than the target accepts in one message (its `outbound_buffer_size`).
    TooLarge {
        /// The packet's length.
        len: usize,
        /// The largest the target accepts.
        max: usize,
    },
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("packet shorter than its header"),
            Self::Empty => f.write_str("empty packet"),
            Self::SpoofedSender { claimed } => write!(f, "header claims sender {claimed}"),
            Self::ClientSysMessage => f.write_str("system message from a client"),
            Self::UnknownTarget(t) => write!(f, "target {t} is not connected"),
            Self::TargetIsSender => f.write_str("peer addressed itself"),
            Self::RelayToServer => f.write_str("relay request addressed to the server"),
            Self::UnknownMessage => f.write_str("unknown message type"),
            Self::QueueOverflow => f.write_str("unreliable receive queue full"),
            Self::SenderLeft => f.write_str("sender already disconnected"),
            Self::TooLarge { len, max } => write!(f, "{len} bytes is more than the target's {max}"),
        }
    }
}

/// Why a peer left.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The WebSocket closed; how, is recorded.
    Closed(CloseInfo),
    /// This side called `disconnect_peer` (server) or `close`; how the connection then ended
    /// follows in [`Event::PeerClosed`] on a server.
    Kicked,
    /// It stopped draining its outbound queue while others waited to send to it (server
    /// `slow_peer_timeout`), and was disconnected so that they go on.
    SlowConsumer,
    /// It stayed above the server's inbound rate limit.
    RateLimited,
    /// A relay emulation told us it left (Godot 4 `DEL_PEER`, Godot 3 `SYS_DEL`).
    Announced,
    /// The connection to the server ended, and every peer with it.
    ServerLost,
    /// The peer connection failed or one of its channels closed (WebRTC).
    ConnectionLost,
}

/// Why a client could not connect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The WebSocket opening handshake failed.
    Handshake(HandshakeError),
    /// The server's first message was not a valid id (Godot 4: exactly 4 bytes, id ≥ 2).
    InvalidId,
    /// The server did not send the id in time (Godot's client would wait forever).
    IdTimeout,
    /// The connection closed before the multiplayer join finished.
    Closed(CloseInfo),
}

/// What happened; drained with [`MultiplayerPeer::poll_event`]. Variants are Godot's signals.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `peer_connected(id)`.
    PeerConnected(PeerId),
    /// `peer_disconnected(id)`, with why.
    PeerDisconnected {
        /// The peer that left.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// Client: the join finished (3.x `connection_succeeded`, 4.x `connected_to_server`).
    ConnectionSucceeded,
    /// Client: the connection could not be established (`connection_failed`).
    ConnectionFailed(ConnectFailure),
    /// Client: the server connection ended after it had succeeded (`server_disconnected`).
    ServerDisconnected(CloseInfo),
    /// A packet was dropped; Godot drops these silently.
    PacketDropped {
        /// The peer it came from, when known.
        from: Option<PeerId>,
        /// Why.
        reason: DropReason,
    },
    /// Server: a connection was refused during the WebSocket handshake.
    ConnectionRejected(HandshakeError),
    /// Server: the WebSocket of a peer that already left because this side ended it
    /// (`disconnect_peer`, a slow consumer, `close`) finished closing; `info` holds the code and
    /// reason the peer answered with (Godot keeps them readable on the kept peer object,
    /// `get_close_code()`/`get_close_reason()`, and emits nothing).
    PeerClosed {
        /// The peer that had left.
        peer: PeerId,
        /// How its connection ended.
        info: CloseInfo,
    },
}

/// A close code and reason that can be sent: a code that may not appear on the wire becomes
/// 1000 and a reason is cut to 123 bytes, so that a peer told to leave always leaves (Godot
/// queues nothing for such a code and waits for the close timeout instead).
pub(crate) fn sendable_close(code: CloseCode, reason: &str) -> (CloseCode, CloseReason) {
    let code = if code.is_valid_on_wire() { code } else { CloseCode::NORMAL };
    (code, CloseReason::truncated(reason))
}

/// `info` as the application of `protocol` sees it: Godot 3 sends its close reasons as C
/// strings with the terminating NUL byte, which Godot 3's own signals never show, so it is
/// removed here (the raw reason stays on the connection's `close_info()`).
pub(crate) fn presented(mut info: CloseInfo, protocol: Protocol) -> CloseInfo {
    if protocol == Protocol::Godot3 {
        if let Some(text) = info.reason.as_str().strip_suffix('\0') {
            info.reason = CloseReason::truncated(text);
        }
    }
    info
}

/// A packet could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutError {
    /// Not connected (Godot: `ERR_UNCONFIGURED`).
    NotConnected,
    /// The target peer is not connected (Godot: `ERR_INVALID_PARAMETER`).
    UnknownPeer(PeerId),
    /// The packet exceeds the outbound limit of one message.
    TooLarge {
        /// The largest packet accepted.
        max: usize,
    },
    /// The target's outbound queue is full (Godot: `ERR_OUT_OF_MEMORY`, which Godot 4 then
    /// ignores); nothing was queued.
    Full,
    /// A client may only address other peers through a relay, which is off.
    RelayUnsupported,
}

impl fmt::Display for PutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConnected => f.write_str("not connected"),
            Self::UnknownPeer(p) => write!(f, "peer {p} is not connected"),
            Self::TooLarge { max } => write!(f, "packet larger than {max} bytes"),
            Self::Full => f.write_str("outbound queue full"),
            Self::RelayUnsupported => f.write_str("server relay is off"),
        }
    }
}

impl core::error::Error for PutError {}

/// A peer command on an id that is not connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPeer(pub PeerId);

impl fmt::Display for UnknownPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer {} is not connected", self.0)
    }
}

impl core::error::Error for UnknownPeer {}

/// The [`MultiplayerPeer`] members that only keep a value for the next `put_packet`
/// (`target_peer`, `transfer_mode`, `transfer_channel`), the same in every peer: expands to
/// their six methods over the three named fields.
macro_rules! kept_send_settings {
    ($target:ident, $mode:ident, $channel:ident) => {
        fn set_target_peer(&mut self, target: $crate::peer::Target) {
            self.$target = target.normalized();
        }

        fn target_peer(&self) -> $crate::peer::Target {
            self.$target
        }

        fn set_transfer_mode(&mut self, mode: $crate::peer::TransferMode) {
            self.$mode = mode;
        }

        fn transfer_mode(&self) -> $crate::peer::TransferMode {
            self.$mode
        }

        fn set_transfer_channel(&mut self, channel: u8) {
            self.$channel = channel;
        }

        fn transfer_channel(&self) -> u8 {
            self.$channel
        }
    };
}
pub(crate) use kept_send_settings;

/// Godot's `MultiplayerPeer`: the application-facing contract of every transport.
///
/// The transport-facing side (bytes, timers) is each type's own; see the crate documentation
/// for the drive loop.
pub trait MultiplayerPeer {
    /// `get_unique_id()`: 1 on the server; the assigned id on a client (`None` until known).
    fn unique_id(&self) -> Option<PeerId>;
    /// `get_connection_status()`.
    fn connection_status(&self) -> ConnectionStatus;
    /// `is_server()`.
    fn is_server(&self) -> bool {
        self.unique_id().is_some_and(PeerId::is_server)
    }
    /// `is_server_relay_supported()`.
    fn is_server_relay_supported(&self) -> bool;
    /// `target_peer` setter.
    fn set_target_peer(&mut self, target: Target);
    /// `target_peer` getter.
    fn target_peer(&self) -> Target;
    /// `transfer_mode` setter.
    fn set_transfer_mode(&mut self, mode: TransferMode);
    /// `transfer_mode` getter.
    fn transfer_mode(&self) -> TransferMode;
    /// `transfer_channel` setter.
    fn set_transfer_channel(&mut self, channel: u8);
    /// `transfer_channel` getter.
    fn transfer_channel(&self) -> u8;
    /// `refuse_new_connections` setter.
    fn set_refuse_new_connections(&mut self, refuse: bool);
    /// `refuse_new_connections` getter.
    fn is_refusing_new_connections(&self) -> bool;
    /// `put_packet(data)` to the current target with the current mode and channel.
    ///
    /// # Errors
    /// [`PutError`]; nothing is queued for anyone when it fails.
    fn put_packet(&mut self, data: &[u8]) -> Result<(), PutError>;
    /// Holds (`held` true) or releases the input of `peer`: while held, its packets wait in
    /// the transport, out of [`peek_packet`](Self::peek_packet)'s queue (those already there
    /// stay), so its connection stops being read and back-pressure reaches that sender alone.
    /// SceneMultiplayer uses it to make the sender of a relayed packet that waits for a full
    /// receiver wait, as the transport's own relay does. Godot has no such member. Returns
    /// whether the transport did it; the default holds nothing (false), and the server does it
    /// for a connected peer.
    fn hold_peer(&mut self, peer: PeerId, held: bool) -> bool {
        let _ = (peer, held);
        false
    }
    /// `get_max_packet_size()`: the largest `put_packet` accepted.
    fn max_packet_size(&self) -> usize;
    /// `get_available_packet_count()`.
    fn available_packet_count(&self) -> usize;
    /// The next packet and its metadata, without removing it.
    fn peek_packet(&self) -> Option<Packet<'_>>;
    /// Removes the next packet; returns whether there was one.
    fn pop_packet(&mut self) -> bool;
    /// `get_packet_peer()` of the next packet.
    fn packet_peer(&self) -> Option<PeerId> {
        self.peek_packet().map(|p| p.info.from)
    }
    /// `get_packet()` into `dst`: copies the next packet and removes it.
    ///
    /// # Errors
    /// [`ReadError::Empty`]; [`ReadError::TooSmall`] leaves the packet queued.
    fn get_packet(&mut self, dst: &mut [u8]) -> Result<(PacketInfo, usize), ReadError> {
        let packet = self.peek_packet().ok_or(ReadError::Empty)?;
        let len = packet.data.len();
        dst.get_mut(..len).ok_or(ReadError::TooSmall { needed: len })?.copy_from_slice(packet.data);
        let info = packet.info;
        self.pop_packet();
        Ok((info, len))
    }
    /// `disconnect_peer(id, force)`: a clean close (code 1000), or with `force` an immediate
    /// drop. Unlike Godot, `peer_disconnected` is reported in both cases: a server reports it
    /// at once; a client reports it with `server_disconnected` when the close ends, as Godot 4
    /// does after `get_peer(1).close()` (with `force`, at once).
    ///
    /// # Errors
    /// [`UnknownPeer`].
    fn disconnect_peer(&mut self, now: Instant, peer: PeerId, force: bool) -> Result<(), UnknownPeer>;
    /// `disconnect_peer` with a WebSocket close code and reason (Godot 4:
    /// `get_peer(id).close(code, reason)`); a transport without close codes (the WebRTC mesh)
    /// ignores them, as this default does.
    ///
    /// # Errors
    /// [`UnknownPeer`].
    fn disconnect_peer_with(
        &mut self,
        now: Instant,
        peer: PeerId,
        code: CloseCode,
        reason: &str,
        force: bool,
    ) -> Result<(), UnknownPeer> {
        let _ = (code, reason);
        self.disconnect_peer(now, peer, force)
    }
    /// `close()`: ends every connection (with a Close frame, unlike Godot) and stops.
    fn close(&mut self, now: Instant);
    /// The next event (Godot's signals).
    fn poll_event(&mut self) -> Option<Event>;
}
