//! The non-blocking API, for applications with their own loop (a game tick, a poller, mio).
//!
//! [`WebSocket::poll`] does all the I/O a connection can do without waiting: it reads until
//! the transport would block (or the core applies back-pressure), runs the core's timers,
//! answers an upgrade request, writes what is queued with one write call, and releases the
//! transport when the connection is over. Between polls the application reads messages,
//! drains events and queues sends; [`WebSocket::next_timeout`] says when to poll at the latest,
//! and [`WebSocket::wants_write`] whether to wait for writability too.
//!
//! ```no_run
//! use multipeer_std::nonblocking::Listener;
//! use multipeer_std::ServerOptions;
//!
//! let listener = Listener::bind("127.0.0.1:9080", ServerOptions::new())?;
//! let mut sockets = Vec::new();
//! loop {
//!     while let Some(ws) = listener.accept()? {
//!         sockets.push(ws);
//!     }
//!     for ws in &mut sockets {
//!         let _ = ws.poll(); // an error ends that connection only
//!         while let Some(message) = ws.recv() {
//!             let _ = ws.send(message.kind, &message.data); // echo
//!         }
//!         while let Some(event) = ws.poll_event() {
//!             println!("{event:?}");
//!         }
//!         let _ = ws.poll(); // write the echoes now
//!     }
//!     sockets.retain(|ws| !ws.is_finished());
//!     std::thread::sleep(std::time::Duration::from_millis(5));
//! }
//! # Ok::<(), multipeer_std::Error>(())
//! ```

use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;
use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Instant as StdInstant;

use multipeer::ws::{self, CloseCode, CloseInfo, Config, Event, MessageKind, State};

use crate::driver::{Driver, ReadOutcome, connect_plain, open_stream};
#[cfg(feature = "tls")]
use crate::tls::{TlsOptions, TlsStream};
use crate::{ClientOptions, Error, MaybeTlsStream, Message, ServerOptions, Transport};

/// Most read calls in one [`WebSocket::poll`], so one busy connection cannot starve the others
/// of a loop; when reached, [`WebSocket::next_timeout`] asks to be polled again at once.
const MAX_READS_PER_POLL: usize = 16;
/// How often a background connect is checked for its result.
const CONNECT_CHECK: Duration = Duration::from_millis(5);

/// A WebSocket over a non-blocking transport, driven by [`poll`](Self::poll).
///
/// Commands (`send`, `ping`, `close`) only queue; the next `poll` writes.
pub struct WebSocket<T: Transport = TcpStream> {
    driver: Driver<T>,
    /// The background connect of [`WebSocket::connect_in_background`], until it delivers.
    opening: Option<Receiver<Result<T, Error>>>,
    /// The read budget ran out with input possibly left in the transport.
    more_input: bool,
    /// Messages were read while input waited for room: poll again to offer it.
    room_made: bool,
}

impl<T: Transport> fmt::Debug for WebSocket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.driver.role())
            .field("state", &self.driver.state())
            .field("peer_addr", &self.driver.peer_addr())
            .field("finished", &self.driver.is_released())
            .finish_non_exhaustive()
    }
}

impl WebSocket<TcpStream> {
    /// Connects TCP to a `ws://` URL (this step blocks, up to
    /// [`ClientOptions::connect_timeout`]; [`connect_in_background`](WebSocket::connect_in_background)
    /// does not) and queues the upgrade request; the handshake then runs in
    /// [`poll`](Self::poll) and ends with [`Event::Open`] or [`Event::HandshakeFailed`].
    ///
    /// # Errors
    /// [`Error::Url`], [`Error::TlsUnsupported`] for `wss://` (use
    /// [`connect_to_url`](WebSocket::connect_to_url)), [`Error::Io`], [`Error::Rng`].
    pub fn connect(url: &str, options: &ClientOptions) -> Result<Self, Error> {
        let stream = connect_plain(url, options.connect_timeout)?;
        stream.set_nonblocking(true)?;
        Self::client_on(stream, url, options)
    }
}

impl WebSocket<MaybeTlsStream> {
    /// Connects TCP to a `ws://` or `wss://` URL (this step blocks, up to
    /// [`ClientOptions::connect_timeout`]) and queues the upgrade request; the TLS and opening
    /// handshakes then run in [`poll`](Self::poll), within the handshake timeout (Godot:
    /// `WebSocketPeer.connect_to_url(url, tls_client_options)`, with [`ClientOptions::tls`]).
    ///
    /// # Errors
    /// As [`connect`](WebSocket::connect), without the `wss://` refusal when the `tls` feature
    /// is on ([`Error::Tls`] for a host that cannot be a TLS server name). A certificate the
    /// client refuses shows up later: [`poll`](Self::poll) returns [`Error::Tls`] and
    /// [`Event::HandshakeFailed`] is queued.
    pub fn connect_to_url(url: &str, options: &ClientOptions) -> Result<Self, Error> {
        let stream = open_stream(url, options, true)?;
        Self::client_on(stream, url, options)
    }
}

impl WebSocket<MaybeTlsStream> {
    /// Godot's `connect_to_url` as Godot does it: returns at once, with the TCP connect (and,
    /// for `wss://`, the TLS setup) running in a background thread; [`poll`](Self::poll) picks
    /// the transport up and runs the handshakes. A failed connect is returned by the `poll`
    /// that learns of it, with [`Event::HandshakeFailed`] queued, as a refused handshake is.
    /// The handshake timeout counts from now and covers the connect; while connecting,
    /// [`get_ref`](Self::get_ref) is `None`, so poll at [`next_timeout`](Self::next_timeout).
    ///
    /// # Errors
    /// [`Error::Url`], [`Error::TlsUnsupported`] (without the `tls` feature),
    /// [`Error::Handshake`] for a subprotocol or header line that cannot be sent,
    /// [`Error::Rng`], and [`Error::Io`] when no thread can be started.
    pub fn connect_in_background(url: &str, options: &ClientOptions) -> Result<Self, Error> {
        let parsed = ws::handshake::Url::parse(url)?;
        if cfg!(not(feature = "tls")) && parsed.scheme == ws::handshake::Scheme::Wss {
            return Err(Error::TlsUnsupported);
        }
        let mut socket = Self::new(Driver::client_unattached(url, options)?);
        // One slot: the thread never blocks on a receiver that is gone.
        let (done, result) = mpsc::sync_channel(1);
        let (url, options) = (url.to_owned(), options.clone());
        std::thread::Builder::new().name("multipeer-connect".into()).spawn(move || {
            let _ = done.send(open_stream(&url, &options, true));
        })?;
        socket.opening = Some(result);
        Ok(socket)
    }
}

impl<T: Transport> WebSocket<T> {
    /// A client over an already connected, non-blocking transport; the upgrade request is
    /// queued and the handshake runs in [`poll`](Self::poll).
    ///
    /// # Errors
    /// [`Error::Url`], [`Error::TlsUnsupported`], [`Error::Handshake`] for a subprotocol or
    /// header line that cannot be sent, [`Error::Rng`].
    pub fn client_on(transport: T, url: &str, options: &ClientOptions) -> Result<Self, Error> {
        Ok(Self::new(Driver::client(transport, url, options)?))
    }

    /// A server connection over an accepted, non-blocking transport; [`poll`](Self::poll)
    /// reads the request and answers it with `options`.
    #[must_use]
    pub fn server_on(transport: T, options: Arc<ServerOptions>) -> Self {
        Self::new(Driver::server(transport, options))
    }

    fn new(driver: Driver<T>) -> Self {
        Self { driver, opening: None, more_input: false, room_made: false }
    }

    // ----- the drive step ------------------------------------------------------------------

    /// Does every piece of I/O possible without waiting: timers, reads until the transport
    /// would block, one write, and the release of a finished connection.
    ///
    /// Call it when the transport is readable (or writable, if [`wants_write`](Self::wants_write)),
    /// after queueing commands or reading messages, and at [`next_timeout`](Self::next_timeout).
    ///
    /// # Errors
    /// [`Error::Io`] when the transport fails; the connection has then ended (its
    /// [`Event::Closed`] or [`Event::HandshakeFailed`] is queued) and further polls do nothing.
    pub fn poll(&mut self) -> Result<(), Error> {
        self.more_input = false;
        self.room_made = false;
        if self.driver.is_released() {
            self.opening = None;
            return Ok(());
        }
        self.finish_opening()?;
        self.driver.fire_timers(self.driver.now());
        let read = self.read_available();
        let written = self.driver.write(self.driver.now()).map(drop).map_err(Error::from);
        let was_lingering = self.driver.is_lingering();
        self.driver.release_if_done(self.driver.now());
        // A connection that just started lingering may have input waiting already, and an
        // edge-triggered poller will not report it again.
        let linger =
            if !was_lingering && self.driver.is_lingering() { self.read_available() } else { Ok(()) };
        read.and(written).and(linger)
    }

    /// Takes a background connect's result, if it has one.
    fn finish_opening(&mut self) -> Result<(), Error> {
        let Some(opening) = &self.opening else { return Ok(()) };
        let result = match opening.try_recv() {
            Ok(result) => result,
            Err(TryRecvError::Empty) => return Ok(()),
            Err(TryRecvError::Disconnected) => {
                Err(Error::Io(io::Error::other("the connect thread ended without a result")))
            }
        };
        self.opening = None;
        match result {
            Ok(transport) => {
                self.driver.attach(transport);
                Ok(())
            }
            Err(e) => {
                self.driver.open_failed(self.driver.now());
                self.driver.release_if_done(self.driver.now());
                Err(e)
            }
        }
    }

    fn read_available(&mut self) -> Result<(), Error> {
        let now = self.driver.now();
        if self.driver.has_held_input() && !self.driver.offer_held(now) {
            return Ok(());
        }
        for _ in 0..MAX_READS_PER_POLL {
            match self.driver.read(now)? {
                ReadOutcome::Data => {}
                ReadOutcome::Eof | ReadOutcome::Blocked => return Ok(()),
            }
        }
        self.more_input = true;
        Ok(())
    }

    /// When to call [`poll`](Self::poll) at the latest; `None` when only transport readiness
    /// matters. A time in the past means "poll again now".
    #[must_use]
    pub fn next_timeout(&self) -> Option<StdInstant> {
        if self.more_input || self.room_made {
            return Some(StdInstant::now());
        }
        let deadline = self.driver.next_deadline_std();
        if self.opening.is_some() {
            // Nothing to wait on yet but the background connect.
            let check = StdInstant::now() + CONNECT_CHECK;
            return Some(deadline.map_or(check, |d| d.min(check)));
        }
        deadline
    }

    /// Whether bytes wait for the transport to become writable.
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.driver.has_output()
    }

    /// Whether the connection is over and its transport released; drop it.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.driver.is_released()
    }

    // ----- events and messages -------------------------------------------------------------

    /// The next event: [`Event::Open`], [`Event::Pong`], [`Event::Closed`],
    /// [`Event::HandshakeFailed`] (upgrade requests are answered by the server options).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.driver.poll_event()
    }

    /// The oldest received message, borrowed, without removing it.
    #[must_use]
    pub fn peek_message(&self) -> Option<ws::Message<'_>> {
        self.driver.peek_message()
    }

    /// Removes the oldest received message; returns whether there was one.
    pub fn pop_message(&mut self) -> bool {
        let popped = self.driver.pop_message();
        self.room_made |= popped && self.driver.has_held_input();
        popped
    }

    /// The oldest received message, copied out and removed.
    pub fn recv(&mut self) -> Option<Message> {
        let message = self.driver.take_message();
        self.room_made |= message.is_some() && self.driver.has_held_input();
        message
    }

    // ----- commands ------------------------------------------------------------------------

    /// Queues a text message.
    ///
    /// # Errors
    /// [`Error::Send`]: not open, or the outbound limits are reached (poll to write, then
    /// retry).
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Queues a binary message.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(MessageKind::Binary, data)
    }

    /// Queues a message of either kind (Godot: `send`).
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text); text that is not UTF-8 is refused.
    pub fn send(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
        Ok(self.driver.send(kind, data)?)
    }

    /// Queues a Ping (at most 125 bytes); the answer arrives as [`Event::Pong`].
    ///
    /// # Errors
    /// [`Error::Send`] when not open or the payload is too long.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        Ok(self.driver.ping(payload)?)
    }

    /// Starts the closing handshake (Godot: `close(code, reason)`); keep polling until
    /// [`is_finished`](Self::is_finished).
    ///
    /// # Errors
    /// [`Error::Send`] for a code that may not be sent or a reason over 123 bytes.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        Ok(self.driver.close(code, reason)?)
    }

    /// Drops the connection at once, without a closing handshake (Godot: `close(-1)`).
    pub fn abort(&mut self) {
        self.driver.abort();
    }

    // ----- getters -------------------------------------------------------------------------

    /// The connection state (Godot: `get_ready_state`).
    #[must_use]
    pub fn state(&self) -> State {
        self.driver.state()
    }

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

    /// How the connection ended, once it has.
    #[must_use]
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.driver.close_info()
    }

    /// The address of the other end, as it was when the connection started.
    #[must_use]
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.driver.peer_addr()
    }

    /// The limits and timers in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        self.driver.config()
    }

    /// Received messages waiting to be read (Godot: `get_available_packet_count`).
    #[must_use]
    pub fn available_messages(&self) -> usize {
        self.driver.available_messages()
    }

    /// Bytes waiting for the transport (Godot: `get_current_outbound_buffered_amount`).
    #[must_use]
    pub fn buffered_amount(&self) -> usize {
        self.driver.buffered_amount()
    }

    /// The transport (to register it with a poller), until the connection releases it.
    #[must_use]
    pub fn get_ref(&self) -> Option<&T> {
        self.driver.transport()
    }
}

/// A non-blocking listener whose connections are upgraded with one set of [`ServerOptions`].
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    options: Arc<ServerOptions>,
}

impl Listener {
    /// Listens on `addr` in non-blocking mode (port 0 picks a free one).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn bind(addr: impl ToSocketAddrs, options: ServerOptions) -> io::Result<Self> {
        Self::from_std(TcpListener::bind(addr)?, options)
    }

    /// Wraps a bound listener, switching it to non-blocking mode.
    ///
    /// # Errors
    /// When the mode cannot be set.
    pub fn from_std(listener: TcpListener, options: ServerOptions) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self { listener, options: Arc::new(options) })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// As the socket reports them.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The listening socket (to register it with a poller).
    #[must_use]
    pub fn get_ref(&self) -> &TcpListener {
        &self.listener
    }

    /// A newly connected client, or `None` when none is waiting; its handshake runs in
    /// [`WebSocket::poll`].
    ///
    /// # Errors
    /// As the listener reports them (for example, out of file descriptors).
    pub fn accept(&self) -> io::Result<Option<WebSocket>> {
        match self.listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(true)?;
                // Frames are already coalesced per write; Nagle would only add latency.
                stream.set_nodelay(true)?;
                Ok(Some(WebSocket::server_on(stream, Arc::clone(&self.options))))
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`accept`](Self::accept) for a `wss://` server: the connection is wrapped in TLS with
    /// `tls` (Godot: `create_server(.., tls_server_options)`), and the TLS handshake runs in
    /// [`WebSocket::poll`] within the handshake timeout; a failed one makes `poll` return
    /// [`Error::Tls`].
    ///
    /// # Errors
    /// As [`accept`](Self::accept) ([`Error::Io`]), and [`Error::Tls`] for client options.
    #[cfg(feature = "tls")]
    pub fn accept_tls(&self, tls: &TlsOptions) -> Result<Option<WebSocket<TlsStream>>, Error> {
        match self.listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(true)?;
                // Frames are already coalesced per write; Nagle would only add latency.
                stream.set_nodelay(true)?;
                let stream = TlsStream::server(stream, tls)?;
                Ok(Some(WebSocket::server_on(stream, Arc::clone(&self.options))))
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(Error::Io(e)),
        }
    }
}
