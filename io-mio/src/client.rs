//! A `peer::Client` on mio: one outgoing connection, for bots, tests and custom loops.

use core::net::SocketAddr;
use core::time::Duration;
use std::io;
use std::net::ToSocketAddrs as _;

use chacha20::ChaCha12Rng;
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Registry, Token};
use multipeer::VecStorage;
use multipeer::peer::{self, ClientConfig};
use multipeer::ws::handshake::{ClientRequest, Scheme, Url};
use multipeer::{Instant, ws};

use crate::clock::{Clock, shortest};
use crate::error::{ConnectError, TransportError};
#[cfg(feature = "tls")]
use crate::tls::TlsOptions;
use crate::transport::{Machine, ReadEnd, Transport};
use crate::{ReadBuffer, os_rng};

/// The core client type this adapter drives.
pub type CoreClient = peer::Client<VecStorage, ChaCha12Rng>;

/// How a client connects: Godot's `create_client` arguments and `WebSocketMultiplayerPeer`
/// properties.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Protocol, relay, limits and timers (`handshake_timeout` covers TCP, TLS and HTTP).
    pub config: ClientConfig,
    /// Subprotocols to offer (Godot: `supported_protocols`).
    pub supported_protocols: Vec<String>,
    /// Extra `"Name: value"` request lines (Godot: `handshake_headers`).
    pub handshake_headers: Vec<String>,
    /// TLS settings for `wss://` URLs (Godot: `tls_client_options`); `None` means
    /// [`TlsOptions::client`], webpki roots and a host name check. Ignored for `ws://`.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsOptions>,
}

impl ClientOptions {
    /// Options with the given core configuration and nothing else.
    #[must_use]
    pub fn new(config: ClientConfig) -> Self {
        Self { config, ..Self::default() }
    }

    /// These options with TLS settings for `wss://`.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// The core side of an outgoing connection: a `peer::Client`, or a bare `ws::Connection`.
pub(crate) trait Outgoing {
    fn input(&mut self, now: Instant, bytes: &[u8]) -> usize;
    fn eof(&mut self, now: Instant);
    fn output(&self) -> Option<&[u8]>;
    fn consume(&mut self, n: usize);
    /// The transport may be released once the output is written.
    fn is_finished(&self) -> bool;
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
}

/// Both cores have the same inherent verbs; the trait names them once.
macro_rules! outgoing_by_inherent_methods {
    ($($core:ty),*) => {$(
        impl Outgoing for $core {
            fn input(&mut self, now: Instant, bytes: &[u8]) -> usize {
                self.handle_input(now, bytes)
            }

            fn eof(&mut self, now: Instant) {
                self.handle_eof(now);
            }

            fn output(&self) -> Option<&[u8]> {
                self.poll_transmit()
            }

            fn consume(&mut self, n: usize) {
                self.consume_transmit(n);
            }

            fn is_finished(&self) -> bool {
                Self::is_finished(self)
            }

            fn poll_timeout(&self) -> Option<Instant> {
                Self::poll_timeout(self)
            }

            fn handle_timeout(&mut self, now: Instant) {
                Self::handle_timeout(self, now);
            }
        }
    )*};
}

outgoing_by_inherent_methods!(CoreClient, ws::Connection<VecStorage, ChaCha12Rng>);

/// An [`Outgoing`] core at one instant, as the transport sees it.
struct Driven<'a, C> {
    core: &'a mut C,
    now: Instant,
}

impl<C: Outgoing> Machine for Driven<'_, C> {
    fn input(&mut self, bytes: &[u8]) -> usize {
        self.core.input(self.now, bytes)
    }

    fn eof(&mut self) {
        self.core.eof(self.now);
    }

    fn output(&self) -> Option<&[u8]> {
        self.core.output()
    }

    fn consume(&mut self, n: usize) {
        self.core.consume(n);
    }
}

/// Where and how an outgoing connection goes: the parsed URL, the request's subprotocols and
/// header lines, TLS settings.
pub(crate) struct Target<'a> {
    pub(crate) url: &'a str,
    pub(crate) protocols: &'a [String],
    pub(crate) headers: &'a [String],
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<&'a TlsOptions>,
}

/// One outgoing connection's socket, driven for its core: connecting address by address,
/// reading, writing, timers, and releasing the socket once the core is done.
pub(crate) struct Link<C> {
    pub(crate) core: C,
    transport: Option<Transport>,
    token: Token,
    pub(crate) clock: Clock,
    /// Addresses still to try if connecting to the current one fails, last first.
    spare: Vec<SocketAddr>,
    error: Option<TransportError>,
}

impl<C: Outgoing> Link<C> {
    /// Resolves the host (blocking), builds the core with `make` and starts connecting.
    pub(crate) fn connect(
        registry: &Registry,
        token: Token,
        target: &Target<'_>,
        make: impl FnOnce(Instant, &ClientRequest<'_>, ChaCha12Rng) -> Result<C, ConnectError>,
    ) -> Result<Self, ConnectError> {
        let url = Url::parse(target.url).map_err(ConnectError::Url)?;
        let mut spare: Vec<SocketAddr> =
            (url.host_name(), url.port).to_socket_addrs().map_err(ConnectError::Resolve)?.collect();
        spare.reverse();
        let protocols: Vec<&str> = target.protocols.iter().map(String::as_str).collect();
        let headers: Vec<&str> = target.headers.iter().map(String::as_str).collect();
        let request =
            ClientRequest { protocols: &protocols, extra_headers: &headers, ..ClientRequest::from_url(&url) };
        let clock = Clock::new();
        let rng = os_rng().map_err(ConnectError::Rng)?;
        let core = make(clock.now(), &request, rng)?;
        let stream = connect_first(&mut spare)?;
        let mut transport = Transport::new(stream, true);
        if url.scheme == Scheme::Wss {
            #[cfg(feature = "tls")]
            {
                let tls = target.tls.cloned().unwrap_or_else(TlsOptions::client);
                match tls.new_client_session(url.host_name()) {
                    Some(Ok(session)) => transport.set_tls(session),
                    Some(Err(e)) => return Err(ConnectError::Tls(e)),
                    None => return Err(ConnectError::ServerTlsOptions),
                }
            }
            #[cfg(not(feature = "tls"))]
            return Err(ConnectError::TlsUnavailable);
        }
        transport.update_interest(registry, token).map_err(ConnectError::Socket)?;
        Ok(Self { core, transport: Some(transport), token, clock, spare, error: None })
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    pub(crate) fn token(&self) -> Token {
        self.token
    }

    pub(crate) fn error(&self) -> Option<&TransportError> {
        self.error.as_ref()
    }

    pub(crate) fn is_released(&self) -> bool {
        self.transport.is_none()
    }

    pub(crate) fn handle_event(&mut self, registry: &Registry, event: &Event, buf: &mut ReadBuffer) -> bool {
        if event.token() != self.token {
            return false;
        }
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        let writable = event.is_writable() || event.is_error();
        if let Some(transport) = self.transport.as_mut() {
            if event.is_read_closed() || event.is_error() {
                transport.saw_read_closed();
            }
            if transport.is_connecting() {
                match transport.finish_connect() {
                    Ok(true) => {}
                    Ok(false) => return true,
                    Err(e) => {
                        self.next_address(registry, e);
                        self.settle(registry);
                        return true;
                    }
                }
            }
        }
        if readable {
            self.read(buf, false);
        }
        if writable || readable || self.transport.as_ref().is_some_and(Transport::wants_write) {
            self.write(registry);
        }
        self.settle(registry);
        true
    }

    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        self.transport.as_ref()?;
        self.core.poll_timeout().map(|at| self.clock.until(at))
    }

    pub(crate) fn handle_timeout(&mut self, registry: &Registry, buf: &mut ReadBuffer) {
        if self.transport.is_some() {
            self.core.handle_timeout(self.clock.now());
        }
        self.flush(registry, buf);
    }

    pub(crate) fn flush(&mut self, registry: &Registry, buf: &mut ReadBuffer) {
        if self.transport.as_ref().is_some_and(Transport::is_paused) {
            self.read(buf, true);
        }
        self.write(registry);
        self.settle(registry);
    }

    fn read(&mut self, buf: &mut ReadBuffer, resume: bool) {
        let Some(transport) = self.transport.as_mut() else { return };
        let mut core = Driven { core: &mut self.core, now: self.clock.now() };
        // A client is one connection: no other socket waits for its turn, so read it dry.
        let end = if resume {
            transport.resume(&mut core, buf.as_mut(), usize::MAX)
        } else {
            transport.read(&mut core, buf.as_mut(), usize::MAX)
        };
        if let ReadEnd::Ended(Some(error)) = end {
            self.error.get_or_insert(error);
        }
    }

    fn write(&mut self, registry: &Registry) {
        let Some(transport) = self.transport.as_mut() else { return };
        let mut core = Driven { core: &mut self.core, now: self.clock.now() };
        if let Err(error) = transport.write(&mut core) {
            self.error.get_or_insert(error);
        }
        if let Err(e) = transport.update_interest(registry, self.token) {
            transport.kill(&mut core);
            self.error.get_or_insert(TransportError::Io(e));
        }
    }

    /// The connection attempt to the current address failed: try the next, or give up.
    fn next_address(&mut self, registry: &Registry, error: io::Error) {
        let Some(transport) = self.transport.as_mut() else { return };
        match connect_first(&mut self.spare) {
            Ok(stream) => {
                transport.replace_stream(registry, stream);
                if let Err(e) = transport.update_interest(registry, self.token) {
                    transport.kill(&mut Driven { core: &mut self.core, now: self.clock.now() });
                    self.error.get_or_insert(TransportError::Io(e));
                }
            }
            Err(_) => {
                transport.kill(&mut Driven { core: &mut self.core, now: self.clock.now() });
                self.error.get_or_insert(TransportError::Connect(error));
            }
        }
    }

    /// Releases the socket once the core is finished with it and nothing is left to send.
    fn settle(&mut self, registry: &Registry) {
        let over = self
            .transport
            .as_ref()
            .is_some_and(|t| t.is_dead() || (self.core.is_finished() && self.core.output().is_none()));
        if over {
            if let Some(transport) = self.transport.take() {
                transport.close(registry);
            }
        }
    }
}

/// The public methods both clients share, for a type with a `link` field: the state getters
/// ([`link_state_methods`]) and the I/O verbs.
macro_rules! link_methods {
    ($what:literal) => {
        $crate::client::link_state_methods!($what);
        $crate::client::link_io_methods!();
    };
}
pub(crate) use link_methods;

/// The state getters of a client with a `link` field.
macro_rules! link_state_methods {
    ($what:literal) => {
        #[doc = concat!("The current time on the clock the ", $what, " is driven with (for `close`).")]
        #[must_use]
        pub fn now(&self) -> multipeer::Instant {
            self.link.now()
        }

        /// The token the socket is registered under.
        #[must_use]
        pub fn token(&self) -> mio::Token {
            self.link.token()
        }

        /// Why the transport failed (refused connection, TLS error, reset), if it did.
        #[must_use]
        pub fn error(&self) -> Option<&$crate::TransportError> {
            self.link.error()
        }

        /// Whether the socket is closed and deregistered: nothing more will happen.
        #[must_use]
        pub fn is_released(&self) -> bool {
            self.link.is_released()
        }
    };
}
pub(crate) use link_state_methods;

/// The I/O verbs of a client with a `link` field, passed straight to the link.
macro_rules! link_io_methods {
    () => {
        /// Handles one readiness event; returns `false` if its token is not this client's.
        pub fn handle_event(
            &mut self,
            registry: &mio::Registry,
            event: &mio::event::Event,
            buf: &mut $crate::ReadBuffer,
        ) -> bool {
            self.link.handle_event(registry, event, buf)
        }

        /// How long the event loop may sleep before [`handle_timeout`](Self::handle_timeout) is
        /// due.
        #[must_use]
        pub fn poll_timeout(&self) -> Option<core::time::Duration> {
            self.link.poll_timeout()
        }

        /// Fires due timers and flushes.
        pub fn handle_timeout(&mut self, registry: &mio::Registry, buf: &mut $crate::ReadBuffer) {
            self.link.handle_timeout(registry, buf);
        }

        /// Offers held-back input again if the application made room, writes pending output,
        /// and releases the socket once the connection is over.
        pub fn flush(&mut self, registry: &mio::Registry, buf: &mut $crate::ReadBuffer) {
            self.link.flush(registry, buf);
        }
    };
}
pub(crate) use link_io_methods;

/// A multiplayer client on mio (Godot's `WebSocketMultiplayerPeer.create_client`).
///
/// Pass it the readiness events of its token ([`handle_event`](Self::handle_event)), call
/// [`flush`](Self::flush) after application commands and after reading packets (so input held
/// back for lack of room is offered again), and [`handle_timeout`](Self::handle_timeout) after
/// [`poll_timeout`](Self::poll_timeout). Many clients can share one [`ReadBuffer`].
pub struct Client {
    pub(crate) link: Link<CoreClient>,
    /// SceneMultiplayer on top, when set (see `set_scene_multiplayer`).
    pub(crate) scene: Option<Box<multipeer::scene::SceneMultiplayer>>,
}

impl Client {
    /// Starts connecting to `url` (`ws://` plain, `wss://` TLS) and registers the socket under
    /// `token`. The host is resolved here, blocking; every address is tried in turn.
    ///
    /// # Errors
    /// [`ConnectError`] when connecting cannot even start; failures after this are reported as
    /// `Event::ConnectionFailed` with the cause in [`error`](Self::error).
    pub fn connect(
        registry: &Registry,
        token: Token,
        url: &str,
        options: &ClientOptions,
    ) -> Result<Self, ConnectError> {
        let target = Target {
            url,
            protocols: &options.supported_protocols,
            headers: &options.handshake_headers,
            #[cfg(feature = "tls")]
            tls: options.tls.as_ref(),
        };
        let link = Link::connect(registry, token, &target, |now, request, rng| {
            peer::Client::new(now, request, options.config, rng).map_err(ConnectError::Request)
        })?;
        Ok(Self { link, scene: None })
    }

    /// The multiplayer peer: Godot's `MultiplayerPeer` API.
    #[must_use]
    pub fn peer(&self) -> &CoreClient {
        &self.link.core
    }

    /// The multiplayer peer, for commands; call [`flush`](Self::flush) after them.
    pub fn peer_mut(&mut self) -> &mut CoreClient {
        &mut self.link.core
    }

    link_state_methods!("peer");

    /// Handles one readiness event; returns `false` if its token is not this client's.
    pub fn handle_event(&mut self, registry: &Registry, event: &Event, buf: &mut ReadBuffer) -> bool {
        let mine = self.link.handle_event(registry, event, buf);
        if mine && self.scene.is_some() {
            self.pump_scene(registry, buf);
        }
        mine
    }

    /// How long the event loop may sleep before [`handle_timeout`](Self::handle_timeout) is
    /// due (the transport's timers and SceneMultiplayer's auth timeout).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        shortest(self.link.poll_timeout(), self.scene_timeout())
    }

    /// Fires due timers and flushes.
    pub fn handle_timeout(&mut self, registry: &Registry, buf: &mut ReadBuffer) {
        self.link.handle_timeout(registry, buf);
        if self.scene.is_some() {
            self.pump_scene(registry, buf);
        }
    }

    /// Offers held-back input again if the application made room, moves packets between the
    /// transport and SceneMultiplayer (when set), writes pending output, and releases the
    /// socket once the connection is over.
    pub fn flush(&mut self, registry: &Registry, buf: &mut ReadBuffer) {
        if self.scene.is_some() {
            self.pump_scene(registry, buf);
        } else {
            self.link.flush(registry, buf);
        }
    }
}

/// Starts a non-blocking connect to the next address that accepts one.
fn connect_first(spare: &mut Vec<SocketAddr>) -> Result<TcpStream, ConnectError> {
    let mut last = None;
    while let Some(addr) = spare.pop() {
        match TcpStream::connect(addr) {
            Ok(stream) => {
                // Godot sets TCP_NODELAY: game packets must not wait for Nagle.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => ConnectError::Socket(e),
        None => ConnectError::Resolve(io::Error::new(io::ErrorKind::NotFound, "the host has no address")),
    })
}
