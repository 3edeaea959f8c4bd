//! Errors of the transport layer: sockets, name resolution, TLS. The core sees none of them; it
//! only learns that a connection's byte stream ended.

use core::fmt;
use core::net::SocketAddr;
use std::io;

use multipeer::peer::{self, PeerId};
use multipeer::ws::handshake::UrlError;

#[cfg(feature = "tls")]
use crate::tls::TlsError;

/// Why a connection's transport failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// The TCP connection could not be established (refused, unreachable).
    Connect(io::Error),
    /// A read or write on the socket failed (reset, broken pipe).
    Io(io::Error),
    /// The TLS session failed (certificate, protocol, plain bytes on a TLS port).
    #[cfg(feature = "tls")]
    Tls(TlsError),
}

impl TransportError {
    /// The TLS error, if this is one.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(&self) -> Option<&TlsError> {
        match self {
            Self::Tls(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
            Self::Io(e) => write!(f, "socket error: {e}"),
            #[cfg(feature = "tls")]
            Self::Tls(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Connect(e) | Self::Io(e) => Some(e),
            #[cfg(feature = "tls")]
            Self::Tls(e) => Some(e),
        }
    }
}

/// A server connection's transport failed; drained with
/// [`Server::poll_transport_failure`](crate::Server::poll_transport_failure).
#[derive(Debug)]
pub struct TransportFailure {
    /// The remote address, when the socket still knew it.
    pub addr: Option<SocketAddr>,
    /// The peer id, if the connection had joined.
    pub peer: Option<PeerId>,
    /// What failed.
    pub error: TransportError,
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

/// A server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum BindError {
    /// The bind address is neither `*` nor an IP address.
    InvalidAddress(String),
    /// No address to listen on was given.
    NoAddress,
    /// Listening on `addr` failed (in use, not available, no permission).
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: io::Error,
    },
    /// The TLS options are client options (Godot: `ERR_INVALID_PARAMETER`).
    #[cfg(feature = "tls")]
    ClientTlsOptions,
    /// The operating system could not seed the peer-id generator.
    Rng(getrandom::Error),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidAddress(a) => write!(f, "{a:?} is neither \"*\" nor an IP address"),
            Self::NoAddress => f.write_str("no address to listen on"),
            Self::Listen { addr, error } if error.kind() == io::ErrorKind::AddrInUse => {
                write!(
                    f,
                    "cannot listen on {addr}: the address is already in use (is another server running?)"
                )
            }
            Self::Listen { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            #[cfg(feature = "tls")]
            Self::ClientTlsOptions => f.write_str("a server needs TlsOptions::server, not client options"),
            Self::Rng(e) => write!(f, "no randomness from the operating system: {e}"),
        }
    }
}

impl core::error::Error for BindError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Listen { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A client could not start connecting.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL cannot be used.
    Url(UrlError),
    /// The core refused the handshake parameters (subprotocols, header lines).
    Request(peer::ConnectError),
    /// The host name did not resolve.
    Resolve(io::Error),
    /// Creating or registering the socket failed.
    Socket(io::Error),
    /// A `wss://` URL in a build without the `tls` feature.
    TlsUnavailable,
    /// The host cannot be used as a TLS server name.
    #[cfg(feature = "tls")]
    Tls(TlsError),
    /// The TLS options are server options (Godot: `ERR_INVALID_PARAMETER`).
    #[cfg(feature = "tls")]
    ServerTlsOptions,
    /// The operating system could not seed the client's random generator.
    Rng(getrandom::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(e) => write!(f, "bad URL: {e}"),
            Self::Request(e) => e.fmt(f),
            Self::Resolve(e) => write!(f, "cannot resolve the host: {e}"),
            Self::Socket(e) => write!(f, "cannot open a socket: {e}"),
            Self::TlsUnavailable => f.write_str("wss:// needs the `tls` feature of multipeer-mio"),
            #[cfg(feature = "tls")]
            Self::Tls(e) => e.fmt(f),
            #[cfg(feature = "tls")]
            Self::ServerTlsOptions => f.write_str("a client needs client TlsOptions, not TlsOptions::server"),
            Self::Rng(e) => write!(f, "no randomness from the operating system: {e}"),
        }
    }
}

impl core::error::Error for ConnectError {}
