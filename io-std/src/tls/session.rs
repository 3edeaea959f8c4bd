//! One rustls session and the record pump between it and a byte stream, shared by every
//! adapter (this crate's [`TlsStream`](super::TlsStream), multipeer-mio's transport).

use core::fmt;
use std::io::{self, BufRead as _, IoSlice, Read, Write};

use super::{TlsError, TlsOptions};

/// Most TLS bytes encrypted ahead of the socket: [`TlsSession::encrypt`] takes no more
/// plaintext while this much waits to be written (rustls's own default, made explicit).
const SENDABLE_LIMIT: usize = 64 * 1024;

/// A TLS session (Godot's `StreamPeerTLS` without the stream): a rustls connection plus the
/// steps that move its records through any `Read + Write` stream, blocking or not.
///
/// The steps never loop on their own: each reads or writes at most once, so the caller's
/// back-pressure and read budgets still apply. Failures of the session come back as
/// [`TlsError`] inside an [`io::Error`] of kind `InvalidData` ([`TlsError::from_io`]).
pub struct TlsSession {
    conn: rustls::Connection,
    /// The session failed: no more records are read.
    failed: bool,
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("server", &matches!(self.conn, rustls::Connection::Server(_)))
            .field("handshaking", &self.conn.is_handshaking())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// What [`TlsSession::plaintext`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Plaintext<'a> {
    /// Decrypted bytes, not consumed yet.
    Data(&'a [u8]),
    /// Nothing decrypted yet: read more records.
    Empty,
    /// The peer ended the session with a `close_notify`: the stream is over, cleanly.
    Closed,
    /// The stream ended without a `close_notify` (common; whether it matters is the
    /// application protocol's call: a WebSocket has its own Close).
    Truncated,
}

impl TlsSession {
    /// Wraps a rustls connection made elsewhere.
    #[must_use]
    pub fn new(mut conn: rustls::Connection) -> Self {
        conn.set_buffer_limit(Some(SENDABLE_LIMIT));
        Self { conn, failed: false }
    }

    /// A server-side session (Godot: `StreamPeerTLS.accept_stream(stream, server_options)`).
    ///
    /// # Errors
    /// [`TlsError::Protocol`] when the options are client options (Godot:
    /// `ERR_INVALID_PARAMETER`) or rustls refuses the configuration.
    pub fn server(options: &TlsOptions) -> Result<Self, TlsError> {
        match options.new_server_session() {
            Some(conn) => conn.map(Self::new),
            None => {
                Err(TlsError::Protocol(rustls::Error::General("client TLS options cannot accept".into())))
            }
        }
    }

    /// A client-side session for `host`, the URL's host without brackets (Godot:
    /// `StreamPeerTLS.connect_to_stream(stream, host, client_options)`).
    ///
    /// # Errors
    /// [`TlsError::InvalidName`] when the host is neither a DNS name nor an IP address;
    /// [`TlsError::Protocol`] for server options.
    pub fn client(options: &TlsOptions, host: &str) -> Result<Self, TlsError> {
        match options.new_client_session(host) {
            Some(conn) => conn.map(Self::new),
            None => {
                Err(TlsError::Protocol(rustls::Error::General("server TLS options cannot connect".into())))
            }
        }
    }

    /// The rustls connection (negotiated version, cipher suite, peer certificates, ALPN...).
    #[must_use]
    pub fn connection(&self) -> &rustls::Connection {
        &self.conn
    }

    /// Whether the TLS handshake is still running.
    #[must_use]
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether the session failed (a [`TlsError`] was returned): nothing more is read.
    #[must_use]
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// One read of TLS records from `stream`, decrypted into the session's plaintext buffer
    /// (see [`plaintext`](Self::plaintext)). Returns the bytes read; `Ok(0)` when the stream
    /// ended (the plaintext then says whether cleanly).
    ///
    /// # Errors
    /// The stream's errors as they are (`WouldBlock`, `TimedOut`, resets), and a failed
    /// session as [`TlsError`] inside `InvalidData`; the alert rustls queued for the peer is
    /// written first, best effort, so the peer learns why.
    pub fn read_from<S: Read + Write + ?Sized>(&mut self, stream: &mut S) -> io::Result<usize> {
        if self.failed {
            return Ok(0);
        }
        let n = loop {
            match self.conn.read_tls(&mut ReadOnly(&mut *stream)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        if let Err(error) = self.conn.process_new_packets() {
            self.failed = true;
            let _ = self.conn.write_tls(&mut WriteOnly(stream));
            return Err(TlsError::from_rustls(error).into_io());
        }
        Ok(n)
    }

    /// The oldest decrypted bytes, borrowed; [`consume`](Self::consume) what was used.
    pub fn plaintext(&mut self) -> Plaintext<'_> {
        match self.conn.reader().into_first_chunk() {
            Ok([]) => Plaintext::Closed,
            Ok(data) => Plaintext::Data(data),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Plaintext::Empty,
            Err(_) => Plaintext::Truncated,
        }
    }

    /// Removes `n` bytes from the front of the decrypted bytes.
    pub fn consume(&mut self, n: usize) {
        self.conn.reader().consume(n);
    }

    /// Encrypts as much of `plain` as the send buffer takes (all of it unless
    /// [`wants_write`](Self::wants_write) has been true for a while); before the handshake
    /// completes the bytes wait in rustls and go out after it.
    ///
    /// # Errors
    /// The session failed earlier.
    pub fn encrypt(&mut self, plain: &[u8]) -> io::Result<usize> {
        self.conn.writer().write(plain)
    }

    /// [`encrypt`](Self::encrypt) for several slices at once (one record when they fit).
    ///
    /// # Errors
    /// The session failed earlier.
    pub fn encrypt_vectored(&mut self, plain: &[IoSlice<'_>]) -> io::Result<usize> {
        self.conn.writer().write_vectored(plain)
    }

    /// Whether TLS records wait to be written (handshake messages, alerts, encrypted data).
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// One write of waiting TLS records to `stream`; returns the bytes written.
    ///
    /// # Errors
    /// The stream's errors as they are (`WouldBlock` when it is full).
    pub fn write_to<W: Write + ?Sized>(&mut self, stream: &mut W) -> io::Result<usize> {
        self.conn.write_tls(&mut WriteOnly(stream))
    }

    /// Writes waiting TLS records until none is left or the stream would block.
    ///
    /// # Errors
    /// As [`write_to`](Self::write_to); a stream that takes zero bytes is `WriteZero`.
    pub fn flush_to<W: Write + ?Sized>(&mut self, stream: &mut W) -> io::Result<()> {
        while self.wants_write() {
            match self.write_to(stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Queues a `close_notify` alert (written by the next [`write_to`](Self::write_to)).
    pub fn send_close_notify(&mut self) {
        if !self.failed {
            self.conn.send_close_notify();
        }
    }
}

/// A `Read` view of a stream (rustls's `read_tls` wants `dyn Read`).
struct ReadOnly<'a, S: ?Sized>(&'a mut S);

impl<S: Read + ?Sized> Read for ReadOnly<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// A `Write` view of a stream (rustls's `write_tls` wants `dyn Write`).
struct WriteOnly<'a, W: ?Sized>(&'a mut W);

impl<W: Write + ?Sized> Write for WriteOnly<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream in memory: reads from `input`, writes to `output`.
    #[derive(Default)]
    struct Pipe {
        input: Vec<u8>,
        output: Vec<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            Ok(n)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn options_of_the_wrong_side_make_no_session() {
        assert!(TlsSession::server(&TlsOptions::client_unsafe()).is_err());
        assert!(TlsSession::client(&TlsOptions::client(), "bad name!").is_err());
        let client = TlsSession::client(&TlsOptions::client(), "example.com").unwrap();
        assert!(client.is_handshaking() && client.wants_write(), "{client:?}");
    }

    #[test]
    fn plain_http_is_not_tls_and_the_alert_goes_back() {
        // A client that gets plain text back for its ClientHello.
        let mut client = TlsSession::client(&TlsOptions::client_unsafe(), "127.0.0.1").unwrap();
        let mut pipe = Pipe::default();
        client.flush_to(&mut pipe).unwrap();
        assert_eq!(pipe.output[0], 0x16, "a ClientHello record");
        pipe.output.clear();
        pipe.input.extend_from_slice(b"HTTP/1.1 408 Request Timeout\r\n\r\n");
        let error = client.read_from(&mut pipe).unwrap_err();
        assert_eq!(TlsError::from_io(&error), Some(&TlsError::NotTls));
        assert!(client.has_failed());
        assert_eq!(pipe.output.first(), Some(&0x15), "an alert record");
        assert_eq!(client.read_from(&mut pipe).unwrap(), 0, "nothing is read after a failure");
        assert!(client.encrypt(b"x").is_err());
    }

    #[test]
    fn an_ended_stream_without_close_notify_is_truncated() {
        let mut client = TlsSession::client(&TlsOptions::client_unsafe(), "127.0.0.1").unwrap();
        let mut pipe = Pipe::default();
        assert_eq!(client.plaintext(), Plaintext::Empty);
        // An empty reader ends the stream.
        struct Ended;
        impl Read for Ended {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Ok(0)
            }
        }
        impl Write for Ended {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        client.flush_to(&mut pipe).unwrap();
        assert_eq!(client.read_from(&mut Ended).unwrap(), 0);
        assert_eq!(client.plaintext(), Plaintext::Truncated);
    }
}
