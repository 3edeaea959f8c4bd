//! What the transport layer reports besides the core's events: why a client's connection
//! failed (a refused certificate, a reset) and which server connections failed, which Godot
//! only prints.

use core::fmt;
use core::net::SocketAddr;

use multipeer::peer::PeerId;

use super::{Active, WebSocketMultiplayerPeer};
use crate::Error;

/// A server connection's transport failed (Godot prints these): a TLS handshake that failed
/// (a client that refused the certificate, plain bytes on a `wss://` port), a reset. Read with
/// [`WebSocketMultiplayerPeer::poll_transport_failure`].
#[derive(Debug)]
#[non_exhaustive]
pub struct TransportFailure {
    /// The remote address, when the socket still knew it.
    pub addr: Option<SocketAddr>,
    /// The peer id, if the connection had joined.
    pub peer: Option<PeerId>,
    /// What failed ([`Error::Tls`] for TLS, [`Error::Io`] otherwise).
    pub error: Error,
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.addr, self.peer) {
            (Some(addr), Some(peer)) => write!(f, "peer {peer} ({addr}): {}", self.error),
            (Some(addr), None) => write!(f, "{addr}: {}", self.error),
            (None, Some(peer)) => write!(f, "peer {peer}: {}", self.error),
            (None, None) => self.error.fmt(f),
        }
    }
}

impl WebSocketMultiplayerPeer {
    /// Why the client's connection failed at the transport level (a TLS error such as a
    /// refused certificate, a reset), once it has; Godot only prints it. Kept until the next
    /// `create_*` or `close`.
    #[must_use]
    pub fn connection_error(&self) -> Option<&Error> {
        match &self.active {
            Active::Client(side) => side.error(),
            _ => None,
        }
    }

    /// The next failed server connection transport (a TLS handshake a client refused, plain
    /// bytes on a `wss://` port, a reset), oldest first; Godot only prints these. At most 256
    /// wait; more are counted in [`unreported_transport_failures`](Self::unreported_transport_failures).
    pub fn poll_transport_failure(&mut self) -> Option<TransportFailure> {
        match &mut self.active {
            Active::Server(side) => side.poll_failure(),
            _ => None,
        }
    }

    /// Transport failures a server dropped because nobody read them.
    #[must_use]
    pub fn unreported_transport_failures(&self) -> u64 {
        match &self.active {
            Active::Server(side) => side.unreported_failures,
            _ => 0,
        }
    }

    /// Whether the active server wraps its connections in TLS, or the active client's
    /// connection is TLS (`wss://`).
    #[must_use]
    pub fn is_tls(&self) -> bool {
        match &self.active {
            Active::Server(side) => side.is_tls(),
            Active::Client(side) => side.is_tls(),
            Active::None => false,
        }
    }
}
