//! TLS (feature `tls`): settings in Godot's terms (`TLSOptions.server`, `.client`,
//! `.client_unsafe`) over rustls with the ring provider, the errors a TLS session reports in
//! plain words, and the record pump every adapter shares.
//!
//! * [`TlsOptions`] is Godot's `TLSOptions`; [`TlsError`] sorts a failed session into what a
//!   user can act on (wrong host, expired, untrusted issuer, plain bytes on a TLS port...).
//! * [`TlsSession`] wraps one rustls connection and moves records between it and any byte
//!   stream (`Read + Write`): this crate's [`TlsStream`] and multipeer-mio's transport both
//!   use it, so there is one TLS implementation for both adapters.
//! * [`TlsStream`] is a [`Transport`](crate::Transport) over another one (a `TcpStream`):
//!   blocking or non-blocking as the stream under it. [`MaybeTlsStream`](crate::MaybeTlsStream)
//!   is either kind, for code that serves `ws://` and `wss://` alike.
//!
//! The TLS handshake runs inside the first reads and writes, so the WebSocket handshake timeout
//! of the core (Godot's `handshake_timeout`) covers TLS as well, as in Godot.

mod session;
mod stream;
mod verify;

use core::fmt;
use std::io;
use std::sync::Arc;

use rustls::client::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::ServerConfig;
use rustls::{AlertDescription, CertificateError, InvalidMessage, RootCertStore};

/// The rustls this module is built on, for [`TlsOptions::from_rustls_server`] and
/// [`TlsOptions::from_rustls_client`] configurations.
pub use rustls;
pub use session::{Plaintext, TlsSession};
pub use stream::TlsStream;

/// TLS settings for one side: Godot's `TLSOptions`.
///
/// Cloning is cheap (the rustls configuration is shared).
#[derive(Clone)]
pub struct TlsOptions {
    role: Role,
}

#[derive(Clone)]
enum Role {
    Server(Arc<ServerConfig>),
    Client { config: Arc<ClientConfig>, name_override: Option<ServerName<'static>> },
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role {
            Role::Server(_) => f.write_str("TlsOptions::server(..)"),
            Role::Client { name_override, .. } => {
                f.debug_struct("TlsOptions::client").field("name_override", name_override).finish()
            }
        }
    }
}

/// The crypto provider used for every configuration made here: ring.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsOptions {
    /// A server identity from a PEM certificate chain (leaf first) and its PEM private key
    /// (PKCS#8, PKCS#1 or SEC1): Godot's `TLSOptions.server(key, certificate)`.
    ///
    /// # Errors
    /// [`TlsConfigError`] when either PEM holds nothing usable or the key does not fit.
    pub fn server(cert_chain_pem: &[u8], private_key_pem: &[u8]) -> Result<Self, TlsConfigError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsConfigError::Certificate(e.to_string()))?;
        if chain.is_empty() {
            return Err(TlsConfigError::Certificate("no CERTIFICATE section found".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(private_key_pem)
            .map_err(|e| TlsConfigError::PrivateKey(e.to_string()))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Rustls)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsConfigError::Rustls)?;
        Ok(Self { role: Role::Server(Arc::new(config)) })
    }

    /// A client that trusts the Mozilla root programme (webpki-roots) and checks the host name:
    /// Godot's `TLSOptions.client()` with no trusted chain.
    #[must_use]
    pub fn client() -> Self {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::client_trusting(roots, None)
    }

    /// A client that trusts the webpki roots and the CA certificates (DER) in `trusted_ca_der`
    /// too, checking the host name: Godot's `TLSOptions.client()` for a server whose CA is
    /// private. Godot's `trusted_chain` replaces the roots instead ([`client_with`]).
    ///
    /// [`client_with`]: Self::client_with
    ///
    /// # Errors
    /// [`TlsConfigError::Rustls`] when a certificate cannot be parsed as a trust anchor.
    pub fn client_also_trusting<'a>(
        trusted_ca_der: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, TlsConfigError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for der in trusted_ca_der {
            roots.add(CertificateDer::from_slice(der)).map_err(TlsConfigError::Rustls)?;
        }
        Ok(Self::client_trusting(roots, None))
    }

    /// A client that trusts only the PEM certificates in `trusted_ca_pem`, and checks the
    /// certificate against `common_name_override` instead of the URL's host when given:
    /// Godot's `TLSOptions.client(trusted_chain, common_name_override)`.
    ///
    /// # Errors
    /// [`TlsConfigError`] when the PEM holds no usable certificate or the name is invalid.
    pub fn client_with(
        trusted_ca_pem: &[u8],
        common_name_override: Option<&str>,
    ) -> Result<Self, TlsConfigError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(trusted_ca_pem) {
            let cert = cert.map_err(|e| TlsConfigError::Certificate(e.to_string()))?;
            roots.add(cert).map_err(TlsConfigError::Rustls)?;
        }
        if roots.is_empty() {
            return Err(TlsConfigError::Certificate("no CERTIFICATE section found".into()));
        }
        let name_override = match common_name_override {
            Some(name) => Some(
                ServerName::try_from(name.to_owned())
                    .map_err(|_| TlsConfigError::InvalidName(name.to_owned()))?,
            ),
            None => None,
        };
        Ok(Self::client_trusting(roots, name_override))
    }

    /// A client that accepts any certificate, checking neither the chain nor the name:
    /// Godot's `TLSOptions.client_unsafe()`. The connection is encrypted but not authenticated,
    /// so anyone on the path can impersonate the server; for tests and development only.
    #[must_use]
    pub fn client_unsafe() -> Self {
        let verifier = Arc::new(verify::AcceptAnyCertificate::new(provider()));
        let config =
            client_builder().dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
        Self { role: Role::Client { config: Arc::new(config), name_override: None } }
    }

    /// Server options from a rustls configuration built elsewhere (client authentication,
    /// ALPN, session resumption...).
    #[must_use]
    pub fn from_rustls_server(config: Arc<ServerConfig>) -> Self {
        Self { role: Role::Server(config) }
    }

    /// Client options from a rustls configuration built elsewhere.
    #[must_use]
    pub fn from_rustls_client(config: Arc<ClientConfig>) -> Self {
        Self { role: Role::Client { config, name_override: None } }
    }

    /// Whether these are server options (Godot checks this in `create_server`).
    #[must_use]
    pub fn is_server(&self) -> bool {
        matches!(self.role, Role::Server(_))
    }

    /// The rustls server configuration, for server options.
    #[must_use]
    pub fn server_config(&self) -> Option<&Arc<ServerConfig>> {
        match &self.role {
            Role::Server(config) => Some(config),
            Role::Client { .. } => None,
        }
    }

    /// A new server-side session, or `None` for client options.
    ///
    /// # Errors
    /// [`TlsError`] if rustls refuses the configuration.
    pub fn new_server_session(&self) -> Option<Result<rustls::Connection, TlsError>> {
        let config = self.server_config()?;
        Some(rustls::ServerConnection::new(config.clone()).map(Into::into).map_err(TlsError::from_rustls))
    }

    /// A new client-side session for `host` (the URL's host without brackets), or `None` for
    /// server options. The name checked is `common_name_override` when one was given.
    ///
    /// # Errors
    /// [`TlsError::InvalidName`] when the host is neither a DNS name nor an IP address.
    pub fn new_client_session(&self, host: &str) -> Option<Result<rustls::Connection, TlsError>> {
        let Role::Client { config, name_override } = &self.role else { return None };
        let name = match name_override {
            Some(name) => Ok(name.clone()),
            None => ServerName::try_from(host.to_owned()).map_err(|_| TlsError::InvalidName(host.to_owned())),
        };
        Some(name.and_then(|name| {
            rustls::ClientConnection::new(config.clone(), name).map(Into::into).map_err(TlsError::from_rustls)
        }))
    }

    fn client_trusting(roots: RootCertStore, name_override: Option<ServerName<'static>>) -> Self {
        let config = client_builder().with_root_certificates(roots).with_no_client_auth();
        Self { role: Role::Client { config: Arc::new(config), name_override } }
    }
}

/// A client configuration builder on the ring provider with the safe default TLS versions.
fn client_builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        // Not input-dependent: ring implements TLS 1.2 and 1.3, the safe defaults.
        .expect("the ring provider supports the default TLS versions")
}

/// TLS options could not be built.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The certificate PEM holds no usable certificate.
    Certificate(String),
    /// The key PEM holds no usable private key.
    PrivateKey(String),
    /// The common-name override is neither a DNS name nor an IP address.
    InvalidName(String),
    /// rustls refused the combination (for example a key that does not match the certificate).
    Rustls(rustls::Error),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate(why) => write!(f, "unusable certificate PEM: {why}"),
            Self::PrivateKey(why) => write!(f, "unusable private key PEM: {why}"),
            Self::InvalidName(name) => write!(f, "{name:?} is not a DNS name or IP address"),
            Self::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
        }
    }
}

impl core::error::Error for TlsConfigError {}

/// Why a TLS session failed, sorted into the cases a user can act on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate does not name the host connected to (or the common-name override).
    NameMismatch,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The chain does not lead to a trusted root: self-signed or issued by an unknown CA.
    UntrustedIssuer,
    /// Another certificate problem (bad signature, wrong usage, revoked...).
    BadCertificate(rustls::Error),
    /// The peer ended the handshake with an alert, e.g. it does not trust our certificate.
    PeerAlert(AlertDescription),
    /// What arrived is not TLS: plain bytes on a TLS port, or a TLS client on a plain port.
    NotTls,
    /// The host to connect to cannot be used as a TLS server name.
    InvalidName(String),
    /// Any other protocol failure (no common version or cipher suite, a malformed record...).
    Protocol(rustls::Error),
}

impl TlsError {
    /// Sorts a rustls error.
    #[must_use]
    pub fn from_rustls(error: rustls::Error) -> Self {
        use rustls::Error as E;
        match error {
            E::InvalidCertificate(cert) => match cert {
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    Self::NameMismatch
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => Self::Expired,
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Self::NotYetValid
                }
                CertificateError::UnknownIssuer => Self::UntrustedIssuer,
                other => Self::BadCertificate(E::InvalidCertificate(other)),
            },
            E::AlertReceived(alert) => Self::PeerAlert(alert),
            E::InvalidMessage(
                InvalidMessage::InvalidContentType | InvalidMessage::UnknownProtocolVersion,
            ) => Self::NotTls,
            other => Self::Protocol(other),
        }
    }

    /// The TLS error inside an I/O error, if it carries one: [`TlsStream`] and
    /// [`TlsSession::read_from`] report TLS failures as I/O errors of kind `InvalidData`
    /// wrapping a `TlsError`, because the [`Read`](std::io::Read) trait has no other way.
    #[must_use]
    pub fn from_io(error: &io::Error) -> Option<&Self> {
        error.get_ref().and_then(|inner| inner.downcast_ref::<Self>())
    }

    /// This error as an I/O error of kind `InvalidData` (see [`from_io`](Self::from_io)).
    #[must_use]
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameMismatch => f.write_str("TLS: the certificate is not valid for this host name"),
            Self::Expired => f.write_str("TLS: the certificate has expired"),
            Self::NotYetValid => f.write_str("TLS: the certificate is not valid yet"),
            Self::UntrustedIssuer => f.write_str(
                "TLS: the certificate is not issued by a trusted CA (self-signed or unknown issuer)",
            ),
            Self::BadCertificate(e) => write!(f, "TLS: bad certificate: {e}"),
            Self::PeerAlert(alert) => write!(f, "TLS: the peer refused the handshake ({alert:?})"),
            Self::NotTls => f.write_str("TLS: the bytes received are not TLS (plain traffic on a TLS port?)"),
            Self::InvalidName(host) => write!(f, "TLS: {host:?} cannot be used as a server name"),
            Self::Protocol(e) => write!(f, "TLS: protocol error: {e}"),
        }
    }
}

impl core::error::Error for TlsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_mismatched_pem_is_a_clear_error() {
        let err = TlsOptions::server(b"", b"").unwrap_err();
        assert!(matches!(err, TlsConfigError::Certificate(_)), "{err}");
        let err = TlsOptions::client_with(b"-----BEGIN NOTHING-----\n", None).unwrap_err();
        assert!(matches!(err, TlsConfigError::Certificate(_)), "{err}");
    }

    #[test]
    fn rustls_errors_are_sorted() {
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(TlsError::from_rustls(name), TlsError::NameMismatch);
        let plain = rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType);
        assert_eq!(TlsError::from_rustls(plain), TlsError::NotTls);
        let alert = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        assert_eq!(TlsError::from_rustls(alert), TlsError::PeerAlert(AlertDescription::UnknownCA));
        let other = rustls::Error::InvalidCertificate(CertificateError::BadSignature);
        assert!(matches!(TlsError::from_rustls(other), TlsError::BadCertificate(_)));
    }

    #[test]
    fn tls_errors_travel_inside_io_errors() {
        let io = TlsError::Expired.into_io();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        assert_eq!(TlsError::from_io(&io), Some(&TlsError::Expired));
        assert_eq!(TlsError::from_io(&io::Error::from(io::ErrorKind::InvalidData)), None);
        assert_eq!(TlsError::from_io(&io::Error::other("x")), None);
    }

    #[test]
    fn client_options_make_client_sessions_only() {
        let client = TlsOptions::client();
        assert!(!client.is_server());
        assert!(client.new_server_session().is_none());
        assert!(matches!(client.new_client_session("example.com"), Some(Ok(_))));
        assert!(matches!(client.new_client_session("127.0.0.1"), Some(Ok(_))));
        assert!(matches!(client.new_client_session("bad name!"), Some(Err(TlsError::InvalidName(_)))));
    }
}
