//! What a connection needs from the byte stream under it.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

/// A reliable, ordered byte stream a WebSocket runs over: a `TcpStream` here, and later a TLS
/// stream wrapping one.
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
