//! [`TlsStream`]: a [`Transport`] that runs a [`TlsSession`] over another transport.

use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;

use super::session::Plaintext;
use super::{TlsError, TlsOptions, TlsSession};
use crate::Transport;

/// A TLS connection over a byte stream (a `TcpStream` unless said otherwise): Godot's
/// `StreamPeerTLS`, as a [`Transport`] a WebSocket runs over.
///
/// It blocks when the stream under it blocks and returns `WouldBlock` when that stream does,
/// so it serves the blocking and the non-blocking API alike. The TLS handshake runs inside
/// the first reads and writes: plaintext written before it completes waits in the session.
/// A failed session is an [`io::Error`] of kind `InvalidData` carrying a [`TlsError`]
/// ([`TlsError::from_io`]); this crate's [`Error`](crate::Error) turns it into
/// [`Error::Tls`](crate::Error::Tls).
pub struct TlsStream<S = TcpStream> {
    session: TlsSession,
    stream: S,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream").field("session", &self.session).finish_non_exhaustive()
    }
}

impl<S: Read + Write> TlsStream<S> {
    /// The client side of a TLS connection over `stream` to `host` (the URL's host without
    /// brackets; the name checked unless the options override it).
    ///
    /// # Errors
    /// [`TlsError::InvalidName`] for a host that is neither a DNS name nor an IP address,
    /// [`TlsError::Protocol`] for server options.
    pub fn client(stream: S, options: &TlsOptions, host: &str) -> Result<Self, TlsError> {
        Ok(Self::new(stream, TlsSession::client(options, host)?))
    }

    /// The server side of a TLS connection over an accepted `stream`.
    ///
    /// # Errors
    /// [`TlsError::Protocol`] for client options.
    pub fn server(stream: S, options: &TlsOptions) -> Result<Self, TlsError> {
        Ok(Self::new(stream, TlsSession::server(options)?))
    }

    /// A TLS connection with a session made elsewhere.
    #[must_use]
    pub fn new(stream: S, session: TlsSession) -> Self {
        Self { session, stream }
    }

    /// The stream under the TLS session.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream under the TLS session; reading or writing it directly breaks the session.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The TLS session (negotiated version, peer certificates...).
    #[must_use]
    pub fn session(&self) -> &TlsSession {
        &self.session
    }

    /// The stream under the session, after a `close_notify` was sent (best effort).
    pub fn into_inner(mut self) -> S {
        self.session.send_close_notify();
        let _ = self.session.flush_to(&mut self.stream);
        self.stream
    }

    /// Writes waiting TLS records; a stream that would block (or timed out) is not an error.
    fn push_records(&mut self) -> io::Result<()> {
        match self.session.flush_to(&mut self.stream) {
            Err(e) if is_would_block(&e) => Ok(()),
            other => other,
        }
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let failed = self.session.has_failed();
            match self.session.plaintext() {
                Plaintext::Data(data) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    self.session.consume(n);
                    return Ok(n);
                }
                // Without a close_notify too: a WebSocket has its own Close, the core judges.
                Plaintext::Closed | Plaintext::Truncated => return Ok(0),
                Plaintext::Empty if failed => return Ok(0),
                Plaintext::Empty => {}
            }
            // Our handshake messages must be out before the answer can come.
            self.push_records()?;
            if self.session.read_from(&mut self.stream)? == 0 {
                // The stream ended: the next plaintext() says how; nothing more can arrive.
                if matches!(self.session.plaintext(), Plaintext::Empty) {
                    return Ok(0);
                }
                continue;
            }
            // What was read may call for an answer (the rest of the handshake, a key update).
            self.push_records()?;
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // Records from earlier writes first, to make room.
        self.push_records()?;
        let n = self.session.encrypt_vectored(bufs)?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // The session's send buffer is full and the stream takes nothing now.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.push_records()?;
        Ok(n)
    }

    /// Writes every waiting TLS record; `WouldBlock` when the stream is full.
    fn flush(&mut self) -> io::Result<()> {
        self.session.flush_to(&mut self.stream)?;
        self.stream.flush()
    }
}

impl<S: Transport> Transport for TlsStream<S> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_write_timeout(timeout)
    }

    /// Sends a `close_notify` (best effort), then ends the stream's sending direction.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.session.send_close_notify();
        let _ = self.session.flush_to(&mut self.stream);
        self.stream.shutdown_write()
    }

    fn wants_write(&self) -> bool {
        self.session.wants_write() || self.stream.wants_write()
    }
}

/// Whether an I/O error only means "not now" (non-blocking) or "timed out" (blocking).
fn is_would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
