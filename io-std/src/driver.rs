//! The drive loop shared by the blocking and the non-blocking socket: one core connection, its
//! transport, its clock, and the input the core has not accepted yet.
//!
//! Both front ends call the same steps (the crate documentation of `multipeer` lists them):
//! [`Driver::read`] feeds one transport read to the core, [`Driver::write`] writes what the
//! core has queued with one call, [`Driver::fire_timers`] runs due timers, and
//! [`Driver::release_if_done`] gives the transport up once the core is finished. They differ
//! only in how they wait: socket timeouts, or the caller's own readiness loop.

use core::cell::RefCell;
use core::net::SocketAddr;
use core::time::Duration;
use std::io::{self, ErrorKind, IoSlice};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use chacha20::ChaCha12Rng;
use multipeer::ws::handshake::{ClientRequest, HandshakeError, Scheme, Url};
use multipeer::ws::{
    self, CloseCode, CloseInfo, CloseReason, Config, Event, Initiator, MAX_HEADERS, MessageKind, NoRng, Role,
    SendError, State,
};
use multipeer::{Instant, VecStorage};

use crate::{ClientOptions, Clock, Error, MaybeTlsStream, Message, ServerOptions, Transport, client_rng};

/// A client connection: masks its frames with keys from an OS-seeded CSPRNG.
type ClientConnection = ws::Connection<VecStorage, ChaCha12Rng>;
/// A server connection: never masks, so it needs no randomness.
type ServerConnection = ws::Connection<VecStorage, NoRng>;

/// The core machine of either role; the two differ only in their mask-key source type.
enum Machine {
    // Boxed, so a socket is a few words to move and the CSPRNG state of a client does not
    // make every server connection as large.
    Client(Box<ClientConnection>),
    Server(Box<ServerConnection>),
}

/// Runs `$body` with `$conn` bound to the connection inside either variant.
macro_rules! on_machine {
    ($machine:expr, $conn:ident => $body:expr) => {
        match $machine {
            Machine::Client($conn) => $body,
            Machine::Server($conn) => $body,
        }
    };
}

/// Bytes asked of the transport per read call.
const READ_CHUNK: usize = 64 * 1024;

/// Most separate slices handed to one vectored write; the rest go in the next.
const WRITE_CHUNKS: usize = 16;

thread_local! {
    /// One read buffer per thread, shared by every connection the thread drives, so an idle
    /// connection holds no read buffer at all.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the thread's read buffer.
fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.is_empty() {
                buf.resize(READ_CHUNK, 0);
            }
            f(&mut buf)
        }
        // Only a transport whose `read` drives another connection on this thread gets here.
        Err(_) => f(&mut vec![0; READ_CHUNK]),
    })
}

/// Whether the transport is still ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// In use.
    Attached,
    /// Our side is shut down; input is read and discarded until the peer closes or `until`,
    /// so the kernel never answers unread input with a reset that could destroy our last
    /// bytes (the Close frame or the HTTP rejection) on their way out.
    Lingering { until: Instant },
    /// Dropped.
    Released,
}

/// What one read call produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// Bytes arrived (and went to the core, or were discarded while lingering).
    Data,
    /// The peer closed its side, or the transport is gone.
    Eof,
    /// Nothing to read now (non-blocking), the read timed out (blocking), or input waits for
    /// the application.
    Blocked,
}

/// One core connection bound to its transport.
pub(crate) struct Driver<T> {
    machine: Machine,
    transport: Option<T>,
    peer_addr: Option<SocketAddr>,
    clock: Clock,
    /// Input the core refused under back-pressure, offered again before anything is read.
    /// Never more than one read chunk, because nothing is read while it is non-empty.
    held: Vec<u8>,
    read_closed: bool,
    /// Bytes were written after the core finished: its last words (a Close frame, an HTTP
    /// refusal) may still be in flight, so the release lingers to protect them.
    wrote_last_words: bool,
    release: Release,
    /// Server role, until the request is answered: how to answer it.
    server: Option<Arc<ServerOptions>>,
    /// A client's URL; a server's request target (path and query), once read.
    requested_url: Option<String>,
}

impl<T: Transport> Driver<T> {
    /// A client that has queued its upgrade request for `url`.
    pub(crate) fn client(
        transport: impl Into<Option<T>>,
        url: &str,
        options: &ClientOptions,
    ) -> Result<Self, Error> {
        // The scheme is the caller's business: a `wss://` URL over a transport the caller
        // wrapped in TLS itself is fine, and `connect` refuses one over plain TCP.
        let parsed = Url::parse(url)?;
        let protocols: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
        let headers: Vec<&str> = options.headers.iter().map(String::as_str).collect();
        let request = ClientRequest {
            protocols: &protocols,
            extra_headers: &headers,
            ..ClientRequest::from_url(&parsed)
        };
        let clock = Clock::new();
        let conn = ClientConnection::client(clock.now(), &request, options.config, client_rng()?)?;
        let mut driver = Self::new(Machine::Client(Box::new(conn)), transport, clock, None);
        driver.requested_url = Some(url.to_owned());
        Ok(driver)
    }

    /// A client whose upgrade request is queued while its transport is still being opened
    /// (elsewhere): reads see nothing and writes take nothing until [`attach`](Self::attach).
    pub(crate) fn client_unattached(url: &str, options: &ClientOptions) -> Result<Self, Error> {
        Self::client(None, url, options)
    }

    /// The transport of a client made with [`client_unattached`](Self::client_unattached);
    /// dropped (closed) if the connection ended meanwhile.
    pub(crate) fn attach(&mut self, transport: T) {
        if self.release == Release::Attached && self.transport.is_none() {
            self.peer_addr = transport.peer_addr().ok();
            self.transport = Some(transport);
        }
    }

    /// The transport of an unattached client could not be opened: the connection ends as if
    /// the peer had closed (the core reports the failed handshake).
    pub(crate) fn open_failed(&mut self, now: Instant) {
        self.end_of_input(now);
    }

    /// A server waiting for the upgrade request on a freshly accepted transport.
    pub(crate) fn server(transport: T, options: Arc<ServerOptions>) -> Self {
        let clock = Clock::new();
        let conn = ServerConnection::server(clock.now(), options.config);
        Self::new(Machine::Server(Box::new(conn)), transport, clock, Some(options))
    }

    fn new(
        machine: Machine,
        transport: impl Into<Option<T>>,
        clock: Clock,
        server: Option<Arc<ServerOptions>>,
    ) -> Self {
        let transport = transport.into();
        Self {
            machine,
            peer_addr: transport.as_ref().and_then(|t| t.peer_addr().ok()),
            transport,
            clock,
            held: Vec::new(),
            read_closed: false,
            wrote_last_words: false,
            release: Release::Attached,
            server,
            requested_url: None,
        }
    }

    // ----- getters -------------------------------------------------------------------------

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    pub(crate) fn transport(&self) -> Option<&T> {
        self.transport.as_ref()
    }

    pub(crate) fn transport_mut(&mut self) -> Option<&mut T> {
        self.transport.as_mut()
    }

    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    pub(crate) fn role(&self) -> Role {
        on_machine!(&self.machine, c => c.role())
    }

    pub(crate) fn state(&self) -> State {
        on_machine!(&self.machine, c => c.state())
    }

    pub(crate) fn config(&self) -> &Config {
        on_machine!(&self.machine, c => c.config())
    }

    pub(crate) fn requested_url(&self) -> Option<&str> {
        self.requested_url.as_deref()
    }

    pub(crate) fn protocol(&self) -> Option<&str> {
        on_machine!(&self.machine, c => c.protocol())
    }

    pub(crate) fn close_info(&self) -> Option<&CloseInfo> {
        on_machine!(&self.machine, c => c.close_info())
    }

    pub(crate) fn handshake_error(&self) -> Option<HandshakeError> {
        on_machine!(&self.machine, c => c.handshake_error())
    }

    pub(crate) fn available_messages(&self) -> usize {
        on_machine!(&self.machine, c => c.available_messages())
    }

    pub(crate) fn buffered_amount(&self) -> usize {
        on_machine!(&self.machine, c => c.buffered_amount())
    }

    /// Whether bytes wait to be written (and the transport can still take them): the core's,
    /// or the transport's own (TLS records the socket did not take yet).
    pub(crate) fn has_output(&self) -> bool {
        self.release == Release::Attached
            && (on_machine!(&self.machine, c => c.poll_transmit().is_some())
                || self.transport.as_ref().is_some_and(T::wants_write))
    }

    /// Whether input refused under back-pressure waits to be offered again.
    pub(crate) fn has_held_input(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether our side is shut down and the peer's remaining input is being discarded.
    pub(crate) fn is_lingering(&self) -> bool {
        matches!(self.release, Release::Lingering { .. })
    }

    /// Whether the transport has been dropped: nothing more will happen on this connection.
    pub(crate) fn is_released(&self) -> bool {
        self.release == Release::Released
    }

    /// The error a closed connection reports.
    pub(crate) fn closed_error(&self) -> Error {
        if let Some(info) = self.close_info() {
            return Error::Closed(Box::new(info.clone()));
        }
        match self.handshake_error() {
            Some(e) => Error::Handshake(e),
            None => Error::Closed(Box::new(CloseInfo {
                code: CloseCode::ABNORMAL,
                reason: CloseReason::default(),
                initiator: Initiator::Library,
                error: Some(ws::Error::ConnectionReset),
                clean: false,
            })),
        }
    }

    /// When [`fire_timers`](Self::fire_timers) must run next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self.release {
            Release::Attached => on_machine!(&self.machine, c => c.poll_timeout()),
            Release::Lingering { until } => Some(until),
            Release::Released => None,
        }
    }

    /// [`next_deadline`](Self::next_deadline) on the std clock.
    pub(crate) fn next_deadline_std(&self) -> Option<StdInstant> {
        self.next_deadline().map(|t| self.clock.to_std(t))
    }

    // ----- commands and messages -----------------------------------------------------------

    pub(crate) fn send(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        on_machine!(&mut self.machine, c => c.send(kind, data))
    }

    pub(crate) fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        on_machine!(&mut self.machine, c => c.ping(payload))
    }

    pub(crate) fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let now = self.now();
        on_machine!(&mut self.machine, c => c.close(now, code, reason))
    }

    /// Ends the connection without a closing handshake and drops the transport at once.
    pub(crate) fn abort(&mut self) {
        on_machine!(&mut self.machine, c => c.abort());
        self.drop_transport();
    }

    pub(crate) fn peek_message(&self) -> Option<ws::Message<'_>> {
        on_machine!(&self.machine, c => c.peek_message())
    }

    pub(crate) fn pop_message(&mut self) -> bool {
        on_machine!(&mut self.machine, c => c.pop_message())
    }

    /// The oldest message, copied out and removed.
    pub(crate) fn take_message(&mut self) -> Option<Message> {
        let message = self.peek_message().map(|m| Message { kind: m.kind, data: m.data.to_vec() })?;
        self.pop_message();
        Some(message)
    }

    /// The next event for the application; upgrade requests are answered here, not shown.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        loop {
            match on_machine!(&mut self.machine, c => c.poll_event()) {
                Some(Event::Request) => {}
                other => return other,
            }
        }
    }

    // ----- the I/O steps -------------------------------------------------------------------

    /// Runs the core's timers (and the linger deadline) if due.
    pub(crate) fn fire_timers(&mut self, now: Instant) {
        if let Release::Lingering { until } = self.release {
            if now >= until {
                self.drop_transport();
            }
            return;
        }
        if on_machine!(&self.machine, c => c.poll_timeout()).is_some_and(|t| t <= now) {
            on_machine!(&mut self.machine, c => c.handle_timeout(now));
        }
    }

    /// Offers held input again; returns whether the core took any of it.
    pub(crate) fn offer_held(&mut self, now: Instant) -> bool {
        if self.held.is_empty() {
            return false;
        }
        let used = on_machine!(&mut self.machine, c => c.handle_input(now, &self.held));
        self.held.drain(..used);
        if self.held.is_empty() {
            self.held = Vec::new();
        }
        self.answer_request(now);
        used > 0
    }

    /// One read call: the bytes go to the core (or are discarded while lingering); end of
    /// stream and errors end the connection in the core.
    ///
    /// Nothing is read while held input waits, so the core sees every byte in order and end
    /// of stream only after the bytes before it.
    pub(crate) fn read(&mut self, now: Instant) -> io::Result<ReadOutcome> {
        if !self.held.is_empty() {
            return Ok(ReadOutcome::Blocked);
        }
        let Some(transport) = self.transport.as_mut() else {
            // Attached without a transport: an unattached client whose transport is not open yet.
            let unattached = self.release == Release::Attached && !self.read_closed;
            return Ok(if unattached { ReadOutcome::Blocked } else { ReadOutcome::Eof });
        };
        if self.read_closed {
            return Ok(ReadOutcome::Eof);
        }
        let lingering = self.release != Release::Attached;
        let machine = &mut self.machine;
        let held = &mut self.held;
        let result = with_scratch(|buf| {
            loop {
                match transport.read(buf) {
                    Ok(0) => break Ok(0),
                    Ok(n) => {
                        if !lingering {
                            let used = on_machine!(&mut *machine, c => c.handle_input(now, &buf[..n]));
                            held.extend_from_slice(&buf[used..n]);
                        }
                        break Ok(n);
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            }
        });
        match result {
            Ok(0) => {
                self.end_of_input(now);
                Ok(ReadOutcome::Eof)
            }
            Ok(_) => {
                self.answer_request(now);
                Ok(ReadOutcome::Data)
            }
            Err(e) if is_would_block(&e) => Ok(ReadOutcome::Blocked),
            Err(e) => {
                // Once the core is closed it needs nothing more from the transport: a peer
                // that resets instead of closing politely has still closed.
                let needed = self.state() != State::Closed;
                self.end_of_input(now);
                if needed { Err(e) } else { Ok(ReadOutcome::Eof) }
            }
        }
    }

    fn end_of_input(&mut self, now: Instant) {
        self.read_closed = true;
        on_machine!(&mut self.machine, c => c.handle_eof(now));
        if self.release != Release::Attached {
            self.drop_transport();
        }
    }

    /// One write call with everything the core has queued (frames come coalesced, so this is
    /// one slice, or a few for shared broadcast frames); returns the bytes written, zero when
    /// the transport cannot take any now.
    pub(crate) fn write(&mut self, now: Instant) -> io::Result<usize> {
        if self.release != Release::Attached {
            return Ok(0);
        }
        let Some(transport) = self.transport.as_mut() else { return Ok(0) };
        let result = loop {
            let attempt = on_machine!(&self.machine, c => {
                let mut chunks: [&[u8]; WRITE_CHUNKS] = [&[]; WRITE_CHUNKS];
                match c.transmit_chunks(&mut chunks) {
                    // Nothing from the core; a TLS transport may still hold records.
                    0 if transport.wants_write() => break transport.flush().map(|()| 0),
                    0 => return Ok(0),
                    1 => transport.write(chunks[0]),
                    // Shared (broadcast) frames sit between inline bytes: one vectored write.
                    count => transport.write_vectored(&chunks.map(IoSlice::new)[..count]),
                }
            });
            match attempt {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Ok(0) => break Err(io::Error::from(ErrorKind::WriteZero)),
                other => break other,
            }
        };
        match result {
            Ok(0) => Ok(0),
            Ok(n) => {
                on_machine!(&mut self.machine, c => c.consume_transmit(n));
                self.wrote_last_words |= on_machine!(&self.machine, c => c.is_finished());
                // A no-op for TCP; a TLS transport pushes its records out here.
                match transport.flush() {
                    Err(e) if !is_would_block(&e) => self.transport_failed(now, e),
                    _ => Ok(n),
                }
            }
            Err(e) if is_would_block(&e) => Ok(0),
            Err(e) => self.transport_failed(now, e),
        }
    }

    /// A write failed: the transport is unusable, so the connection ends as if reset. The
    /// error matters only if the core still needed the transport (it was not closed yet).
    fn transport_failed(&mut self, now: Instant, e: io::Error) -> io::Result<usize> {
        let needed = self.state() != State::Closed;
        self.read_closed = true;
        on_machine!(&mut self.machine, c => c.handle_eof(now));
        self.drop_transport();
        if needed { Err(e) } else { Ok(0) }
    }

    /// Gives up the transport once the core is finished and everything is written: shuts our
    /// side down, then, if the core's last words were just written and the peer has not
    /// closed, lingers to drain the peer's input.
    pub(crate) fn release_if_done(&mut self, now: Instant) {
        if self.release != Release::Attached || !on_machine!(&self.machine, c => c.is_finished()) {
            return;
        }
        if on_machine!(&self.machine, c => c.poll_transmit().is_some()) {
            return;
        }
        if let Some(transport) = self.transport.as_mut() {
            // The peer may have gone already; there is nothing left to tell it either way.
            let _ = transport.shutdown_write();
        }
        if self.read_closed || !self.wrote_last_words {
            self.drop_transport();
        } else {
            // A finished core discards input anyway.
            self.held = Vec::new();
            self.release = Release::Lingering { until: now + self.config().close_timeout };
        }
    }

    fn drop_transport(&mut self) {
        self.transport = None;
        self.held = Vec::new();
        self.server = None;
        self.release = Release::Released;
    }

    /// Server role: answers a pending upgrade request with the application's options, once.
    fn answer_request(&mut self, now: Instant) {
        let Machine::Server(conn) = &mut self.machine else { return };
        let Some(options) = self.server.as_deref() else { return };
        if conn.state() != State::Connecting {
            self.server = None;
            return;
        }
        let verdict = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let limit = conn.config().max_headers.min(MAX_HEADERS);
            let Some(request) = conn.request(&mut headers[..limit]) else { return };
            self.requested_url = Some(request.path().to_owned());
            options.judge(&request)
        };
        let answered = match verdict {
            Ok(()) => {
                let lines: Vec<&str> = options.headers.iter().map(String::as_str).collect();
                conn.accept_supported(now, &options.protocols, &lines)
            }
            Err(rejection) => conn.reject(rejection.status, &rejection.reason),
        };
        if answered.is_err() {
            // Only the server's own options can be refused here (a subprotocol name or header
            // line that cannot be sent); the client must still get an answer.
            let _ = conn.reject(500, "server misconfigured: invalid subprotocol or header line");
        }
        self.server = None;
    }
}

/// Whether an I/O error only means "not now" (non-blocking) or "timed out" (blocking).
fn is_would_block(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Opens a plain TCP connection for a `ws://` URL (a `wss://` one is refused).
pub(crate) fn connect_plain(url: &str, timeout: Duration) -> Result<TcpStream, Error> {
    if Url::parse(url)?.scheme == Scheme::Wss {
        return Err(Error::TlsUnsupported);
    }
    connect_tcp(url, timeout)
}

/// Opens the stream for a `ws://` (plain) or `wss://` (TLS with the options' `tls`, by default
/// [`TlsOptions::client`](crate::tls::TlsOptions::client)) URL; the TLS handshake itself runs
/// in the first reads and writes.
pub(crate) fn open_stream(
    url: &str,
    options: &ClientOptions,
    nonblocking: bool,
) -> Result<MaybeTlsStream, Error> {
    let parsed = Url::parse(url)?;
    #[cfg(not(feature = "tls"))]
    if parsed.scheme == Scheme::Wss {
        return Err(Error::TlsUnsupported);
    }
    let stream = connect_tcp(url, options.connect_timeout)?;
    stream.set_nonblocking(nonblocking)?;
    #[cfg(feature = "tls")]
    if parsed.scheme == Scheme::Wss {
        let tls = match &options.tls {
            Some(tls) => crate::tls::TlsStream::client(stream, tls, parsed.host_name()),
            None => {
                crate::tls::TlsStream::client(stream, &crate::tls::TlsOptions::client(), parsed.host_name())
            }
        };
        return Ok(MaybeTlsStream::from(tls?));
    }
    Ok(MaybeTlsStream::Plain(stream))
}

/// Opens a TCP connection to the URL's host, trying each resolved address within `timeout`.
pub(crate) fn connect_tcp(url: &str, timeout: Duration) -> Result<TcpStream, Error> {
    let parsed = Url::parse(url)?;
    let deadline = StdInstant::now() + timeout;
    let mut last_error = None;
    for addr in (parsed.host_name(), parsed.port).to_socket_addrs()? {
        let left = deadline.saturating_duration_since(StdInstant::now());
        if left.is_zero() {
            last_error = Some(io::Error::from(ErrorKind::TimedOut));
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => {
                // Frames are already coalesced per write; Nagle would only add latency.
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(Error::Io(last_error.unwrap_or_else(|| io::Error::new(ErrorKind::NotFound, "host has no address"))))
}
