//! What a connection needs from the byte stream under it, and [`MaybeTlsStream`], the stream of
//! a `ws://` or `wss://` connection.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

/// A reliable, ordered byte stream a WebSocket runs over: a `TcpStream`, a
/// [`TlsStream`](crate::tls::TlsStream) over one (feature `tls`), or [`MaybeTlsStream`].
///
/// The blocking API uses the timeouts to wake up for the core's timers; the non-blocking API
/// expects a stream that returns [`io::ErrorKind::WouldBlock`] instead of waiting.
pub trait Transport: Read + Write {
    /// The address of the other end.
    ///
    /// # Errors
    /// When the socket cannot tell (it is no longer connected).
    fn peer_addr(&self) -> io::Result<SocketAddr>;

    /// Sets how long a blocking read may wait; `None` waits forever.
    ///
    /// # Errors
    /// As the socket reports them.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Sets how long a blocking write may wait; `None` waits forever.
    ///
    /// # Errors
    /// As the socket reports them.
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Ends the sending direction after everything written so far (a TCP FIN; for TLS, a
    /// `close_notify` first).
    ///
    /// # Errors
    /// As the socket reports them.
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// Whether the transport holds bytes of its own that only a `flush` writes (TLS records:
    /// handshake messages, encrypted data the socket did not take yet). A plain socket holds
    /// none.
    fn wants_write(&self) -> bool {
        false
    }
}

impl Transport for TcpStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr(self)
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// The stream of a connection that may be `ws://` or `wss://`: a `TcpStream`, or (feature
/// `tls`) a [`TlsStream`](crate::tls::TlsStream) over one.
///
/// What the `connect_to_url` constructors return; `Read`, `Write` and [`Transport`] go to
/// whichever it is.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream<TcpStream>>),
}

/// Runs `$body` with `$s` bound to the stream inside either variant.
macro_rules! on_stream {
    ($stream:expr, $s:ident => $body:expr) => {
        match $stream {
            MaybeTlsStream::Plain($s) => $body,
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls($s) => $body,
        }
    };
}

impl MaybeTlsStream {
    /// The TCP socket under the TLS session, if any (to register it with a poller, set socket
    /// options, or wait for readability).
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.get_ref(),
        }
    }

    /// Whether this is a TLS connection.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }

    /// The TCP socket, after a TLS `close_notify` was sent (best effort).
    #[must_use]
    pub fn into_tcp(self) -> TcpStream {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.into_inner(),
        }
    }
}

impl From<TcpStream> for MaybeTlsStream {
    fn from(stream: TcpStream) -> Self {
        Self::Plain(stream)
    }
}

#[cfg(feature = "tls")]
impl From<crate::tls::TlsStream<TcpStream>> for MaybeTlsStream {
    fn from(stream: crate::tls::TlsStream<TcpStream>) -> Self {
        Self::Tls(Box::new(stream))
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        on_stream!(self, s => s.read(buf))
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        on_stream!(self, s => s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        on_stream!(self, s => s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        on_stream!(self, s => s.flush())
    }
}

impl Transport for MaybeTlsStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        on_stream!(self, s => s.shutdown_write())
    }

    fn wants_write(&self) -> bool {
        on_stream!(self, s => s.wants_write())
    }
}
