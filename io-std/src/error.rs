//! The adapter's one error type.

use core::fmt;
use std::io;

use multipeer::ws::handshake::UrlError;
use multipeer::ws::{CloseInfo, HandshakeError, SendError};

#[cfg(feature = "tls")]
use crate::tls::TlsError;

/// Why a WebSocket operation of this crate failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The socket failed (connect, read, write); the connection is over when it came from one.
    Io(io::Error),
    /// The URL cannot be used for a WebSocket connection.
    Url(UrlError),
    /// A `wss://` URL given to a plain-TCP constructor (`connect`: use `connect_to_url`), or
    /// to any constructor in a build without the `tls` feature.
    TlsUnsupported,
    /// The TLS session failed: a certificate the client does not accept (wrong host, expired,
    /// untrusted issuer), a peer that refused ours, or plain bytes where TLS was expected.
    #[cfg(feature = "tls")]
    Tls(TlsError),
    /// The opening handshake failed (refused, timed out, malformed, or rejected by the
    /// application hook).
    Handshake(HandshakeError),
    /// The core refused a command (not open, outbound queue full, invalid close code, ...).
    Send(SendError),
    /// The connection is closed; how it ended.
    Closed(Box<CloseInfo>),
    /// No message arrived before the deadline given to a `*_timeout` call.
    TimedOut,
    /// The operating system could not seed the client's random number generator.
    Rng(getrandom::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Url(e) => write!(f, "invalid URL: {e}"),
            Self::TlsUnsupported => f.write_str(
                "wss:// needs TLS: use connect_to_url, in a build with the `tls` feature of multipeer-std",
            ),
            #[cfg(feature = "tls")]
            Self::Tls(e) => e.fmt(f),
            Self::Handshake(e) => write!(f, "opening handshake failed: {e}"),
            Self::Send(e) => write!(f, "command refused: {e}"),
            Self::Closed(info) => {
                write!(f, "connection closed with code {}", info.code.0)?;
                if !info.reason.as_str().is_empty() {
                    write!(f, " ({:?})", info.reason.as_str())?;
                }
                if let Some(e) = info.error {
                    write!(f, ": {e}")?;
                }
                Ok(())
            }
            Self::TimedOut => f.write_str("timed out"),
            Self::Rng(e) => write!(f, "OS random number generator failed: {e}"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Url(e) => Some(e),
            Self::Handshake(e) => Some(e),
            Self::Send(e) => Some(e),
            Self::Closed(info) => info.error.as_ref().map(|e| e as &(dyn core::error::Error + 'static)),
            Self::Rng(e) => Some(e),
            #[cfg(feature = "tls")]
            Self::Tls(e) => Some(e),
            Self::TlsUnsupported | Self::TimedOut => None,
        }
    }
}

impl From<io::Error> for Error {
    /// An I/O error, or [`Error::Tls`] when it carries a [`TlsError`](crate::tls::TlsError)
    /// (how a TLS stream reports a failed session through `Read` and `Write`).
    fn from(e: io::Error) -> Self {
        #[cfg(feature = "tls")]
        if let Some(tls) = TlsError::from_io(&e) {
            return Self::Tls(tls.clone());
        }
        Self::Io(e)
    }
}

#[cfg(feature = "tls")]
impl From<TlsError> for Error {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Self::Url(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

#[cfg(test)]
mod tests {
    use multipeer::ws::{CloseCode, CloseReason, Initiator};

    use super::*;

    #[test]
    fn display_names_the_cause() {
        let info = CloseInfo {
            code: CloseCode(1002),
            reason: CloseReason::new("bad frame").unwrap(),
            initiator: Initiator::Library,
            error: Some(multipeer::ws::Error::MaskedFrame),
            clean: false,
        };
        let closed = Error::Closed(Box::new(info));
        assert_eq!(
            closed.to_string(),
            "connection closed with code 1002 (\"bad frame\"): masked server frame"
        );
        assert!(core::error::Error::source(&closed).is_some());
        let rejected = Error::Handshake(HandshakeError::Rejected(403));
        assert_eq!(
            rejected.to_string(),
            "opening handshake failed: rejected by the application with HTTP 403"
        );
        assert!(Error::TlsUnsupported.to_string().contains("wss://"));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_errors_inside_io_errors_become_tls_errors() {
        let error = Error::from(TlsError::Expired.into_io());
        assert!(matches!(error, Error::Tls(TlsError::Expired)), "{error:?}");
        assert_eq!(error.to_string(), "TLS: the certificate has expired");
        assert!(matches!(Error::from(io::Error::from(io::ErrorKind::InvalidData)), Error::Io(_)));
    }
}
