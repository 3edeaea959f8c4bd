//! A plain WebSocket client on mio: one outgoing [`ws::Connection`], for bots, tests and custom
//! loops that speak their own protocol over RFC 6455.

use chacha20::ChaCha12Rng;
use mio::{Registry, Token};
use multipeer::VecStorage;
use multipeer::peer;
use multipeer::ws;

use crate::client::{Link, Target, link_methods};
use crate::error::ConnectError;
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

    link_methods!("connection");
}
