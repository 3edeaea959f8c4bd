//! What the facade's calls return: why `create_*` failed, and the connection behind a peer.

use core::fmt;
use core::net::SocketAddr;
use std::io;

use multipeer::GodotError;
use multipeer::peer::{Event, PacketInfo};
use multipeer::ws::{self, CloseInfo};

use crate::Error;

/// Why a `create_*` call or a setting was refused (Godot's `Error` codes).
#[derive(Debug)]
#[non_exhaustive]
pub enum MultiplayerError {
    /// A server or client is active (Godot: `ERR_ALREADY_IN_USE`); `close()` it first.
    AlreadyInUse,
    /// A value Godot would refuse too (Godot: `ERR_INVALID_PARAMETER`): which one.
    InvalidParameter(&'static str),
    /// Listening failed (Godot: `ERR_CANT_CREATE`), with the operating system's reason.
    Listen(io::Error),
    /// The client could not start: a bad URL, `wss://` without the `tls` feature, a host that
    /// cannot be a TLS server name, a failed TCP connect, an unusable subprotocol or header
    /// line, or no OS randomness.
    Connect(Error),
}

impl fmt::Display for MultiplayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyInUse => f.write_str("a server or client is already active; close() it first"),
            Self::InvalidParameter(what) => write!(f, "invalid parameter: {what}"),
            Self::Listen(e) => write!(f, "cannot listen: {e}"),
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
        }
    }
}

impl core::error::Error for MultiplayerError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Listen(e) => Some(e),
            Self::Connect(e) => Some(e),
            Self::AlreadyInUse | Self::InvalidParameter(_) => None,
        }
    }
}

/// The connection behind a peer id (Godot: the `WebSocketPeer` that `get_peer(id)` returns), as
/// a snapshot instead of a live object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerConnection {
    /// The WebSocket state (Godot: `get_ready_state()`).
    pub state: ws::State,
    /// The remote address and port (Godot: `get_connected_host()`, `get_connected_port()`).
    pub remote: Option<SocketAddr>,
    /// The negotiated subprotocol (Godot: `get_selected_protocol()`, empty there when none).
    pub subprotocol: Option<String>,
    /// Bytes queued for the socket (Godot: `get_current_outbound_buffered_amount()`).
    pub buffered_amount: usize,
    /// How the connection closed, once it has (Godot: `get_close_code()` and
    /// `get_close_reason()`, which are −1 and empty before; [`CloseInfo::godot_code`] gives
    /// the number Godot shows), with a Godot 3 reason's trailing NUL removed.
    pub close: Option<CloseInfo>,
}

/// One thing that arrived, from [`poll_next`](super::WebSocketMultiplayerPeer::poll_next):
/// events and packets in the order they happened, as Godot's signals and `get_packet` give
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A signal (see [`Event`]).
    Event(Event),
    /// A packet, copied out, with its sender, mode and channel.
    Packet(Vec<u8>, PacketInfo),
}

impl MultiplayerError {
    /// The `Error` Godot's `create_server`/`create_client`/`set_buffers` returns in this case.
    #[must_use]
    pub fn godot_error(&self) -> GodotError {
        match self {
            Self::AlreadyInUse => GodotError::AlreadyInUse,
            Self::InvalidParameter(_) => GodotError::InvalidParameter,
            Self::Listen(_) => GodotError::CantCreate,
            Self::Connect(e) => e.godot_error(),
        }
    }
}

impl From<&MultiplayerError> for GodotError {
    fn from(e: &MultiplayerError) -> Self {
        e.godot_error()
    }
}

impl Error {
    /// The nearest `Error` Godot returns (or reports) for this failure: `ERR_INVALID_PARAMETER`
    /// for a bad URL, `ERR_CANT_CONNECT`/`ERR_CANT_RESOLVE`/`ERR_TIMEOUT` for a TCP connect,
    /// `ERR_OUT_OF_MEMORY` for a full queue, `FAILED` for a send on a closed connection, as
    /// `WebSocketPeer` does.
    #[must_use]
    pub fn godot_error(&self) -> GodotError {
        match self {
            Self::Io(e) => match e.kind() {
                io::ErrorKind::NotFound => GodotError::CantResolve,
                io::ErrorKind::TimedOut => GodotError::Timeout,
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::NotConnected
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable => GodotError::CantConnect,
                _ => GodotError::ConnectionError,
            },
            Self::Url(_) => GodotError::InvalidParameter,
            Self::TlsUnsupported | Self::Rng(_) => GodotError::Unavailable,
            #[cfg(feature = "tls")]
            Self::Tls(_) => GodotError::ConnectionError,
            Self::Handshake(_) => GodotError::ConnectionError,
            Self::Send(e) => e.godot_error(),
            Self::Closed(_) => GodotError::Failed,
            Self::TimedOut => GodotError::Timeout,
        }
    }
}

impl From<&Error> for GodotError {
    fn from(e: &Error) -> Self {
        e.godot_error()
    }
}
