//! A plain WebSocket client on mio: one outgoing [`ws::Connection`], for bots, tests and custom
//! loops that speak their own protocol over RFC 6455.

use core::time::Duration;

use chacha20::ChaCha12Rng;
use mio::event::Event;
use mio::{Registry, Token};
use multipeer::VecStorage;
use multipeer::peer;
use multipeer::ws;

use crate::ReadBuffer;
use crate::client::{Link, Target};
use crate::error::{ConnectError, TransportError};
#[cfg(feature = "tls")]
use crate::tls::TlsOptions;

/// The core connection a [`WebSocketClient`] drives (it masks its frames, so it has a random
/// generator).
pub type ClientSocket = ws::Connection<VecStorage, ChaCha12Rng>;

/// How a [`WebSocketClient`] connects.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WebSocketClientOptions {
    /// Limits and timers of the connection (`handshake_timeout` covers TCP, TLS and HTTP).
    pub ws: ws::Config,
    /// Subprotocols to offer (Godot: `supported_protocols`).
    pub protocols: Vec<String>,
    /// Extra `"Name: value"` request lines (Godot: `handshake_headers`).
    pub headers: Vec<String>,
    /// TLS settings for `wss://` URLs; `None` means [`TlsOptions::client`], webpki roots and a
    /// host name check. Ignored for `ws://`.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsOptions>,
}

impl WebSocketClientOptions {
    /// Options with the given connection configuration and nothing else.
    #[must_use]
    pub fn new(ws: ws::Config) -> Self {
        Self { ws, ..Self::default() }
    }
}

/// A plain RFC 6455 WebSocket client on mio (Godot's `WebSocketPeer.connect_to_url`), without
/// Godot's multiplayer framing.
///
/// Pass it the readiness events of its token ([`handle_event`](Self::handle_event)), call
/// [`flush`](Self::flush) after commands on [`connection_mut`](Self::connection_mut) and after
/// reading messages, and [`handle_timeout`](Self::handle_timeout) after
/// [`poll_timeout`](Self::poll_timeout). The connection itself (events, messages, send, close)
/// is the core's [`ws::Connection`].
pub struct WebSocketClient {
    link: Link<ClientSocket>,
}

impl WebSocketClient {
    /// Starts connecting to `url` (`ws://` plain, `wss://` TLS) and registers the socket under
    /// `token`. The host is resolved here, blocking; every address is tried in turn.
    ///
    /// # Errors
    /// [`ConnectError`] when connecting cannot even start; failures after this are reported as
    /// the connection's `HandshakeFailed` or `Closed` event, with the cause in
    /// [`error`](Self::error).
    pub fn connect(
        registry: &Registry,
        token: Token,
        url: &str,
        options: &WebSocketClientOptions,
    ) -> Result<Self, ConnectError> {
        let target = Target {
            url,
            protocols: &options.protocols,
            headers: &options.headers,
            #[cfg(feature = "tls")]
            tls: options.tls.as_ref(),
        };
        let link = Link::connect(registry, token, &target, |now, request, rng| {
            ws::Connection::client(now, request, options.ws, rng)
                .map_err(|e| ConnectError::Request(peer::ConnectError::Handshake(e)))
        })?;
        Ok(Self { link })
    }

    /// The connection: state, events, received messages.
    #[must_use]
    pub fn connection(&self) -> &ClientSocket {
        &self.link.core
    }

    /// The connection, for commands; call [`flush`](Self::flush) after them.
    pub fn connection_mut(&mut self) -> &mut ClientSocket {
        &mut self.link.core
    }

    /// The current time on the clock the connection is driven with (for `close`).
    #[must_use]
    pub fn now(&self) -> multipeer::Instant {
        self.link.now()
    }

    /// The token the socket is registered under.
    #[must_use]
    pub fn token(&self) -> Token {
        self.link.token()
    }

    /// Why the transport failed (refused connection, TLS error, reset), if it did.
    #[must_use]
    pub fn error(&self) -> Option<&TransportError> {
        self.link.error()
    }

    /// Whether the socket is closed and deregistered: nothing more will happen.
    #[must_use]
    pub fn is_released(&self) -> bool {
        self.link.is_released()
    }

    /// Handles one readiness event; returns `false` if its token is not this client's.
    pub fn handle_event(&mut self, registry: &Registry, event: &Event, buf: &mut ReadBuffer) -> bool {
        self.link.handle_event(registry, event, buf)
    }

    /// How long the event loop may sleep before [`handle_timeout`](Self::handle_timeout) is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.link.poll_timeout()
    }

    /// Fires due timers and flushes.
    pub fn handle_timeout(&mut self, registry: &Registry, buf: &mut ReadBuffer) {
        self.link.handle_timeout(registry, buf);
    }

    /// Offers held-back input again if the application made room, writes pending output, and
    /// releases the socket once the connection is over.
    pub fn flush(&mut self, registry: &Registry, buf: &mut ReadBuffer) {
        self.link.flush(registry, buf);
    }
}
