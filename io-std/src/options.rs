//! What an application chooses for its clients and servers: subprotocols, extra headers,
//! limits, and the server's request check.

use core::fmt;
use core::time::Duration;
use std::sync::Arc;

use multipeer::ws::Config;
use multipeer::ws::handshake::Request;

#[cfg(feature = "tls")]
use crate::tls::TlsOptions;

/// Settings of a client connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Subprotocols to offer, in order of preference (Godot: `supported_protocols`).
    pub protocols: Vec<String>,
    /// Extra `"Name: value"` request header lines (Godot: `handshake_headers`).
    pub headers: Vec<String>,
    /// Limits and timers of the connection.
    pub config: Config,
    /// Time allowed to establish the TCP connection, across every resolved address.
    pub connect_timeout: Duration,
    /// TLS settings for `wss://` URLs (Godot: `tls_client_options`); `None` means
    /// [`TlsOptions::client`]: webpki roots and a host name check. Ignored for `ws://`.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsOptions>,
}

impl ClientOptions {
    /// Godot's default limits, no subprotocol, no extra header, a 10 s connect timeout.
    #[must_use]
    pub fn new() -> Self {
        Self {
            protocols: Vec::new(),
            headers: Vec::new(),
            config: Config::default(),
            connect_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Adds a subprotocol to offer.
    #[must_use]
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocols.push(name.into());
        self
    }

    /// Adds a `"Name: value"` request header line.
    #[must_use]
    pub fn header(mut self, line: impl Into<String>) -> Self {
        self.headers.push(line.into());
        self
    }

    /// Replaces the limits and timers.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Offers permessage-deflate (RFC 7692) with these settings, or stops offering it with
    /// `None` (the default, as Godot). Godot has no counterpart; sets
    /// [`Config::permessage_deflate`].
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn permessage_deflate(mut self, deflate: Option<multipeer::ws::deflate::DeflateConfig>) -> Self {
        self.config.permessage_deflate = deflate;
        self
    }

    /// Sets the TLS settings for `wss://` URLs (Godot: `tls_client_options`), for example
    /// [`TlsOptions::client_with`] to trust a private CA or [`TlsOptions::client_unsafe`].
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Replaces the TCP connect timeout.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// An application's refusal of an upgrade request: the HTTP status (400–599) and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status sent back; outside 400–599 the core sends 400.
    pub status: u16,
    /// The reason, sent as the plain-text body.
    pub reason: String,
}

impl Rejection {
    /// A refusal with `status` and `reason`.
    #[must_use]
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }
}

/// The application's look at an upgrade request before it is accepted (path, headers,
/// `Origin`); returning a [`Rejection`] answers with that HTTP status instead.
pub type RequestCheck = dyn Fn(&Request<'_, '_>) -> Result<(), Rejection> + Send + Sync;

/// Settings of a server and of every connection it accepts.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Subprotocols this server speaks; chosen by Godot's rules (Godot: `supported_protocols`).
    pub protocols: Vec<String>,
    /// Extra `"Name: value"` response header lines (Godot: `handshake_headers`).
    pub headers: Vec<String>,
    /// Limits and timers of each connection.
    pub config: Config,
    check: Option<Arc<RequestCheck>>,
}

impl ServerOptions {
    /// Godot's default limits, no subprotocol, no extra header, every valid request accepted.
    #[must_use]
    pub fn new() -> Self {
        Self { protocols: Vec::new(), headers: Vec::new(), config: Config::default(), check: None }
    }

    /// Adds a supported subprotocol.
    #[must_use]
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocols.push(name.into());
        self
    }

    /// Adds a `"Name: value"` response header line.
    #[must_use]
    pub fn header(mut self, line: impl Into<String>) -> Self {
        self.headers.push(line.into());
        self
    }

    /// Replaces the limits and timers.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Accepts permessage-deflate (RFC 7692) offers with these settings, or refuses the
    /// extension with `None` (the default, as Godot). Godot has no counterpart; sets
    /// [`Config::permessage_deflate`].
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn permessage_deflate(mut self, deflate: Option<multipeer::ws::deflate::DeflateConfig>) -> Self {
        self.config.permessage_deflate = deflate;
        self
    }

    /// Sets the hook that inspects each valid upgrade request and may reject it.
    #[must_use]
    pub fn check_request(
        mut self,
        check: impl Fn(&Request<'_, '_>) -> Result<(), Rejection> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(Arc::new(check));
        self
    }

    /// Runs the request hook, if any.
    pub(crate) fn judge(&self, request: &Request<'_, '_>) -> Result<(), Rejection> {
        self.check.as_ref().map_or(Ok(()), |check| check(request))
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("protocols", &self.protocols)
            .field("headers", &self.headers)
            .field("config", &self.config)
            .field("check", &self.check.as_ref().map(|_| "Fn"))
            .finish()
    }
}
