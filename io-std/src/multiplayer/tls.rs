//! `create_server` and `create_client` with Godot's TLS options (feature `tls`).

use super::{MultiplayerError, Opening, WebSocketMultiplayerPeer};
use crate::tls::TlsOptions;

impl WebSocketMultiplayerPeer {
    /// `create_server(port, bind_address, tls_server_options)`: as
    /// [`create_server`](Self::create_server), and every connection is wrapped in TLS with
    /// `tls` ([`TlsOptions::server`]): a `wss://` server. The handshake timeout counts from the
    /// TCP accept and covers the TLS handshake, as in Godot; failed TLS handshakes are reported
    /// by [`poll_transport_failure`](Self::poll_transport_failure).
    ///
    /// # Errors
    /// As [`create_server`](Self::create_server), and [`MultiplayerError::InvalidParameter`]
    /// for client options (Godot: `ERR_INVALID_PARAMETER`).
    #[cfg(feature = "tls")]
    pub fn create_server_with_tls(
        &mut self,
        port: u16,
        bind_address: &str,
        tls: TlsOptions,
    ) -> Result<(), MultiplayerError> {
        if !tls.is_server() {
            return Err(MultiplayerError::InvalidParameter("tls_server_options must be TlsOptions::server"));
        }
        self.start_server(port, bind_address, Some(tls))
    }

    /// `create_client(url, tls_client_options)`: as [`create_client`](Self::create_client),
    /// with `tls` for a `wss://` URL ([`TlsOptions::client_with`] to trust a private CA,
    /// [`TlsOptions::client_unsafe`] to trust anything); ignored for `ws://`.
    ///
    /// # Errors
    /// As [`create_client`](Self::create_client), and [`MultiplayerError::InvalidParameter`]
    /// for server options (Godot: `ERR_INVALID_PARAMETER`).
    #[cfg(feature = "tls")]
    pub fn create_client_with_tls(&mut self, url: &str, tls: TlsOptions) -> Result<(), MultiplayerError> {
        if tls.is_server() {
            return Err(MultiplayerError::InvalidParameter("tls_client_options must be client options"));
        }
        self.start_client(url, Some(tls), Opening::Background)
    }
}
