//! The blocking API: a WebSocket that waits on its socket, and a server that accepts them.
//!
//! Waiting is done with socket timeouts computed from the core's next timer, so the handshake
//! timeout, the close timeout and the heartbeat all work while a call blocks.

use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;
use std::io;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use multipeer::ws::{
    CloseCode, CloseInfo, Config, ControlPayload, Event, HandshakeError, MessageKind, State,
};

use crate::clock::timeout_until;
use crate::driver::{Driver, connect_plain, open_stream};
#[cfg(feature = "tls")]
use crate::tls::{TlsOptions, TlsStream};
use crate::{ClientOptions, Error, MaybeTlsStream, Message, ServerOptions, Transport};

/// Longest pause while input waits for the application and no timer is due sooner; only a
/// transport that refuses input forever without a timer would make this loop.
const HELD_INPUT_PAUSE: Duration = Duration::from_millis(50);

/// A WebSocket over a blocking transport: every call returns when its work is done.
///
/// A client comes from [`connect`](Self::connect) (`ws://` over TCP),
/// [`connect_to_url`](WebSocket::connect_to_url) (`ws://` or `wss://`), or
/// [`client_on`](Self::client_on) over any [`Transport`]; a server connection from
/// [`Server::accept`] (or `accept_tls`). Both are open when returned.
pub struct WebSocket<T: Transport = TcpStream> {
    driver: Driver<T>,
    last_pong: Option<ControlPayload>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl<T: Transport> fmt::Debug for WebSocket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.driver.role())
            .field("state", &self.driver.state())
            .field("peer_addr", &self.driver.peer_addr())
            .finish_non_exhaustive()
    }
}

impl WebSocket<TcpStream> {
    /// Connects to a `ws://` URL over plain TCP and completes the opening handshake.
    ///
    /// # Errors
    /// [`Error::Url`], [`Error::TlsUnsupported`] for `wss://` (use
    /// [`connect_to_url`](WebSocket::connect_to_url)), [`Error::Io`] when no address connects
    /// within [`ClientOptions::connect_timeout`], [`Error::Handshake`] when the server refuses
    /// or does not answer within the handshake timeout.
    pub fn connect(url: &str, options: &ClientOptions) -> Result<Self, Error> {
        let stream = connect_plain(url, options.connect_timeout)?;
        Self::client_on(stream, url, options)
    }
}

impl WebSocket<MaybeTlsStream> {
    /// Connects to a `ws://` or `wss://` URL and completes the TLS and opening handshakes
    /// (Godot: `WebSocketPeer.connect_to_url(url, tls_client_options)`, with
    /// [`ClientOptions::tls`] as the options).
    ///
    /// The handshake timeout counts from after the TCP connect and covers TLS.
    ///
    /// # Errors
    /// As [`connect`](WebSocket::connect); for `wss://`, [`Error::Tls`] when the server's
    /// certificate is refused (wrong host, expired, untrusted issuer) or it does not speak TLS,
    /// and [`Error::TlsUnsupported`] without the `tls` feature.
    pub fn connect_to_url(url: &str, options: &ClientOptions) -> Result<Self, Error> {
        let stream = open_stream(url, options, false)?;
        Self::client_on(stream, url, options)
    }
}

impl<T: Transport> WebSocket<T> {
    /// Runs the client handshake for `url` over an already connected blocking transport.
    ///
    /// # Errors
    /// As [`connect`](WebSocket::connect), without the connect step.
    pub fn client_on(transport: T, url: &str, options: &ClientOptions) -> Result<Self, Error> {
        Self::handshake(Driver::client(transport, url, options)?)
    }

    /// Runs the server handshake on an accepted blocking transport, answering the request
    /// with `options` (subprotocol choice by Godot's rules, extra headers, the request hook).
    ///
    /// # Errors
    /// [`Error::Handshake`] when the request is invalid, rejected, or does not arrive within
    /// the handshake timeout (the client is sent the HTTP status first); [`Error::Io`].
    pub fn server_on(transport: T, options: Arc<ServerOptions>) -> Result<Self, Error> {
        Self::handshake(Driver::server(transport, options))
    }

    fn handshake(driver: Driver<T>) -> Result<Self, Error> {
        let mut ws = Self { driver, last_pong: None, read_timeout: None, write_timeout: None };
        loop {
            while let Some(event) = ws.driver.poll_event() {
                match event {
                    Event::Open => {
                        ws.flush()?;
                        return Ok(ws);
                    }
                    Event::HandshakeFailed(e) => {
                        ws.finish_release();
                        return Err(Error::Handshake(e));
                    }
                    _ => {}
                }
            }
            if ws.driver.is_released() {
                return Err(Error::Handshake(
                    ws.driver.handshake_error().unwrap_or(HandshakeError::ConnectionClosed),
                ));
            }
            ws.step(None)?;
        }
    }

    // ----- getters -------------------------------------------------------------------------

    /// Godot's `WebSocketPeer.get_requested_url()`: on a client the URL it connected to; on a
    /// server the request target the client asked for (path and query, `/lobby?room=3`), once
    /// the request was read, also when it was refused (the `check_request` hook sees the same).
    #[must_use]
    pub fn get_requested_url(&self) -> Option<&str> {
        self.driver.requested_url()
    }

    /// The subprotocol both ends agreed on (Godot: `get_selected_protocol`).
    #[must_use]
    pub fn protocol(&self) -> Option<&str> {
        self.driver.protocol()
    }

    /// The address of the other end, as it was when the connection started.
    #[must_use]
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.driver.peer_addr()
    }

    /// The connection state (Godot: `get_ready_state`).
    #[must_use]
    pub fn state(&self) -> State {
        self.driver.state()
    }

    /// How the connection ended, once it has (Godot: `get_close_code`, `get_close_reason`).
    #[must_use]
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.driver.close_info()
    }

    /// The limits and timers in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        self.driver.config()
    }

    /// The transport, until the connection releases it.
    #[must_use]
    pub fn get_ref(&self) -> Option<&T> {
        self.driver.transport()
    }

    /// The latest Pong received since the last call (answers to [`ping`](Self::ping) and to
    /// the heartbeat), taken.
    pub fn take_pong(&mut self) -> Option<ControlPayload> {
        self.last_pong.take()
    }

    // ----- sending -------------------------------------------------------------------------

    /// Sends a text message and waits until it is written.
    ///
    /// # Errors
    /// [`Error::Send`] when the connection is not open or the message exceeds
    /// [`Config::outbound_buffer_size`]; [`Error::Io`].
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Sends a binary message and waits until it is written.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(MessageKind::Binary, data)
    }

    /// Sends a message of either kind and waits until it is written (Godot: `send`).
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text); text that is not UTF-8 is refused.
    pub fn send(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
        self.queue(kind, data)?;
        self.flush()
    }

    /// Queues a message without writing it, to batch several into one write; [`flush`]
    /// writes them.
    ///
    /// When the outbound limits are reached, what is queued is written first to make room.
    ///
    /// [`flush`]: Self::flush
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn queue(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
        match self.driver.send(kind, data) {
            Err(multipeer::ws::SendError::Full { .. }) if self.driver.has_output() => {
                self.flush()?;
                Ok(self.driver.send(kind, data)?)
            }
            other => Ok(other?),
        }
    }

    /// Sends a Ping (at most 125 bytes); its Pong shows up in [`take_pong`](Self::take_pong)
    /// once a later read sees it.
    ///
    /// # Errors
    /// [`Error::Send`] when not open or the payload is too long; [`Error::Io`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.driver.ping(payload)?;
        self.flush()
    }

    /// Writes everything queued, waiting as long as the core's timers allow.
    ///
    /// # Errors
    /// [`Error::Io`] when the transport fails (the connection is then over).
    pub fn flush(&mut self) -> Result<(), Error> {
        while self.driver.has_output() {
            let timeout = self.driver.next_deadline_std().map(timeout_until);
            self.set_write_timeout(timeout)?;
            let now = self.driver.now();
            self.driver.write(now)?;
            // A write that timed out was waiting for a timer (close timeout, heartbeat).
            self.driver.fire_timers(self.driver.now());
        }
        Ok(())
    }

    // ----- receiving -----------------------------------------------------------------------

    /// Waits for the next message.
    ///
    /// Pings are answered and Pongs recorded on the way. Messages received before the peer's
    /// Close are all returned first.
    ///
    /// # Errors
    /// [`Error::Closed`] once the connection has ended and no message is left (a client
    /// returns it when the server has closed TCP, or after the close timeout);
    /// [`Error::Io`] when the transport fails.
    pub fn recv(&mut self) -> Result<Message, Error> {
        self.recv_until(None)
    }

    /// Waits at most `timeout` for the next message.
    ///
    /// # Errors
    /// [`Error::TimedOut`] when none arrived in time (the connection stays usable); otherwise
    /// as [`recv`](Self::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, Error> {
        self.recv_until(Some(StdInstant::now() + timeout))
    }

    fn recv_until(&mut self, deadline: Option<StdInstant>) -> Result<Message, Error> {
        loop {
            if let Some(message) = self.driver.take_message() {
                return Ok(message);
            }
            self.drain_events();
            if self.driver.is_released() {
                return Err(self.driver.closed_error());
            }
            if deadline.is_some_and(|d| StdInstant::now() >= d) {
                return Err(Error::TimedOut);
            }
            self.step(deadline)?;
        }
    }

    // ----- closing -------------------------------------------------------------------------

    /// Runs the closing handshake (Godot: `close(code, reason)`) and releases the transport.
    ///
    /// Messages that arrive meanwhile are discarded: the application asked to stop. Returns
    /// how the connection ended; `clean` is false when the peer did not answer within the
    /// close timeout or the transport failed.
    ///
    /// # Errors
    /// [`Error::Send`] for a code that may not be sent (1005, 1006, 1015, ...) or a reason
    /// over 123 bytes; the connection is untouched then.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, Error> {
        self.driver.close(code, reason)?;
        while !self.driver.is_released() {
            while self.driver.pop_message() {}
            self.drain_events();
            if self.step(None).is_err() {
                // The transport failed; the core has recorded the end already.
                self.driver.abort();
            }
        }
        match self.driver.closed_error() {
            Error::Closed(info) => Ok(*info),
            other => Err(other),
        }
    }

    /// Drops the connection without a closing handshake (Godot: `close(-1)`).
    pub fn abort(&mut self) {
        self.driver.abort();
    }

    // ----- the loop ------------------------------------------------------------------------

    fn drain_events(&mut self) {
        while let Some(event) = self.driver.poll_event() {
            if let Event::Pong(payload) = event {
                self.last_pong = Some(payload);
            }
        }
    }

    /// Lets a failed handshake's answer go out and the transport go, ignoring I/O errors:
    /// the caller reports the handshake error.
    fn finish_release(&mut self) {
        while !self.driver.is_released() {
            if self.step(None).is_err() {
                self.driver.abort();
            }
        }
    }

    /// One turn of the drive loop: timers, output, release, then one read (waiting until the
    /// next timer or `deadline`).
    fn step(&mut self, deadline: Option<StdInstant>) -> Result<(), Error> {
        self.driver.fire_timers(self.driver.now());
        self.flush()?;
        self.driver.release_if_done(self.driver.now());
        if self.driver.is_released() {
            return Ok(());
        }
        let wake = match (self.driver.next_deadline_std(), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.driver.has_held_input() {
            if !self.driver.offer_held(self.driver.now()) {
                let pause = wake.map_or(HELD_INPUT_PAUSE, |w| timeout_until(w).min(HELD_INPUT_PAUSE));
                std::thread::sleep(pause);
            }
            return Ok(());
        }
        self.set_read_timeout(wake.map(timeout_until))?;
        // Whatever the read brought (data, end of stream, a timeout), the caller's loop looks
        // at the connection again.
        self.driver.read(self.driver.now())?;
        Ok(())
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        if timeout != self.read_timeout {
            if let Some(t) = self.driver.transport_mut() {
                t.set_read_timeout(timeout)?;
            }
            self.read_timeout = timeout;
        }
        Ok(())
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        if timeout != self.write_timeout {
            if let Some(t) = self.driver.transport_mut() {
                t.set_write_timeout(timeout)?;
            }
            self.write_timeout = timeout;
        }
        Ok(())
    }
}

/// A blocking WebSocket server: a TCP listener whose connections are upgraded with one set of
/// [`ServerOptions`].
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    options: Arc<ServerOptions>,
}

impl Server {
    /// Listens on `addr` (port 0 picks a free one; see [`local_addr`](Self::local_addr)).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn bind(addr: impl ToSocketAddrs, options: ServerOptions) -> io::Result<Self> {
        Ok(Self { listener: TcpListener::bind(addr)?, options: Arc::new(options) })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// As the socket reports them.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The options every connection is upgraded with.
    #[must_use]
    pub fn options(&self) -> &Arc<ServerOptions> {
        &self.options
    }

    /// Waits for a client and completes its opening handshake.
    ///
    /// A slow client holds this call up to the handshake timeout (and a refused client that
    /// does not close its side, up to the close timeout more); a server that must not wait
    /// accepts with [`accept_stream`](Self::accept_stream) and runs [`upgrade`](Self::upgrade)
    /// on another thread.
    ///
    /// # Errors
    /// [`Error::Io`] from the listener; for the handshake, as [`WebSocket::server_on`]. Either
    /// way the server stays usable.
    pub fn accept(&self) -> Result<WebSocket, Error> {
        let stream = self.accept_stream()?;
        self.upgrade(stream)
    }

    /// Waits for a TCP connection, without handshaking yet.
    ///
    /// # Errors
    /// As the listener reports them.
    pub fn accept_stream(&self) -> io::Result<TcpStream> {
        let (stream, _) = self.listener.accept()?;
        // Frames are already coalesced per write; Nagle would only add latency.
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Completes the opening handshake on a stream from [`accept_stream`](Self::accept_stream).
    ///
    /// # Errors
    /// As [`WebSocket::server_on`].
    pub fn upgrade(&self, stream: TcpStream) -> Result<WebSocket, Error> {
        WebSocket::server_on(stream, Arc::clone(&self.options))
    }

    /// Waits for a client and completes its TLS and opening handshakes, as a `wss://` server
    /// with `tls` (Godot: `create_server(.., tls_server_options)`); the handshake timeout covers
    /// TLS.
    ///
    /// # Errors
    /// [`Error::Tls`] when the TLS handshake fails (a client that does not trust the
    /// certificate, plain bytes on the TLS port) or `tls` are client options; otherwise as
    /// [`accept`](Self::accept). The server stays usable.
    #[cfg(feature = "tls")]
    pub fn accept_tls(&self, tls: &TlsOptions) -> Result<WebSocket<TlsStream>, Error> {
        let stream = self.accept_stream()?;
        self.upgrade_tls(stream, tls)
    }

    /// Completes the TLS and opening handshakes on a stream from
    /// [`accept_stream`](Self::accept_stream).
    ///
    /// # Errors
    /// As [`accept_tls`](Self::accept_tls).
    #[cfg(feature = "tls")]
    pub fn upgrade_tls(&self, stream: TcpStream, tls: &TlsOptions) -> Result<WebSocket<TlsStream>, Error> {
        WebSocket::server_on(TlsStream::server(stream, tls)?, Arc::clone(&self.options))
    }
}
