//! The RFC 6455 §4 opening handshake: the client's upgrade request and the server's answer.
//!
//! Both directions are parsed with `httparse` into caller-provided header arrays (zero-copy)
//! and written straight into the connection's outbound buffer. Parsing never panics; every
//! rejection names its reason ([`HandshakeError`]) and, on the server, the HTTP status that is
//! sent back (400, 405, 426, 431) so a misbehaving client learns what went wrong.

mod client;
mod server;

pub(crate) use client::is_token_char;
#[cfg(feature = "deflate")]
pub(crate) use client::validate_response_with;
pub use client::{ClientRequest, MAX_PROTOCOL_LEN, ResponseHead, Scheme, Url, UrlError, validate_response};
pub use server::{Request, parse_request, select_protocol};
pub(crate) use server::{check_accept, write_accept, write_reject};

use core::fmt;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// The GUID that RFC 6455 §1.3 appends to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Length of a base64 `Sec-WebSocket-Key` (16 random bytes).
pub const KEY_LEN: usize = 24;

/// Length of a base64 `Sec-WebSocket-Accept` (a SHA-1 digest).
pub const ACCEPT_LEN: usize = 28;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
#[must_use]
pub fn accept_key(key: &[u8]) -> [u8; ACCEPT_LEN] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest = sha.finalize();
    let mut out = [0u8; ACCEPT_LEN];
    // 20 bytes always encode to exactly 28 base64 characters.
    let _ = base64::engine::general_purpose::STANDARD.encode_slice(digest, &mut out);
    out
}

/// A `Sec-WebSocket-Key` from 16 random bytes.
#[must_use]
pub fn key_from_nonce(nonce: [u8; 16]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    let _ = base64::engine::general_purpose::STANDARD.encode_slice(nonce, &mut out);
    out
}

/// Why an opening handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The head was not valid HTTP/1.1 (`httparse` could not parse it, or no version was given).
    MalformedHttp,
    /// The request or response head exceeded the size limit.
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More header lines than the limit allows.
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The request method was not GET.
    MethodNotAllowed,
    /// The HTTP version was not 1.1.
    UnsupportedHttpVersion,
    /// A required header was missing: `Upgrade`, `Connection` or `Sec-WebSocket-Key`.
    MissingHeader(&'static str),
    /// A header was present more than once where only one is allowed.
    DuplicateHeader(&'static str),
    /// `Upgrade` did not name `websocket`, or `Connection` did not name `upgrade`.
    NotAnUpgrade,
    /// `Sec-WebSocket-Key` did not decode to 16 bytes.
    InvalidKey,
    /// `Sec-WebSocket-Version` was missing or not 13.
    UnsupportedVersion,
    /// No subprotocol in common (Godot's rules: both sides offer none, or they agree on one).
    NoCommonProtocol,
    /// The response status was not 101.
    UnexpectedStatus(u16),
    /// `Sec-WebSocket-Accept` did not match the key sent.
    AcceptMismatch,
    /// The server chose a subprotocol the client did not offer (or sent several).
    UnofferedProtocol,
    /// The server negotiated an extension that was not offered.
    UnofferedExtension,
    /// The server accepted permessage-deflate with parameters the offer does not allow.
    InvalidExtension,
    /// The application rejected the request.
    Rejected(u16),
    /// The handshake did not finish within the handshake timeout.
    Timeout,
    /// The transport closed before the handshake finished.
    ConnectionClosed,
    /// A header line given by the application contains CR or LF or no colon.
    InvalidHeaderLine,
}

impl HandshakeError {
    /// The HTTP status a server answers with for this error, when it answers at all.
    #[must_use]
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedVersion => 426,
            Self::UnsupportedHttpVersion => 505,
            Self::Timeout => 408,
            Self::Rejected(status) => *status,
            _ => 400,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedHttp => f.write_str("malformed HTTP head"),
            Self::HeadTooLarge { limit } => write!(f, "HTTP head larger than {limit} bytes"),
            Self::TooManyHeaders { limit } => write!(f, "more than {limit} header lines"),
            Self::MethodNotAllowed => f.write_str("method is not GET"),
            Self::UnsupportedHttpVersion => f.write_str("HTTP version is not 1.1"),
            Self::MissingHeader(h) => write!(f, "missing {h} header"),
            Self::DuplicateHeader(h) => write!(f, "duplicate {h} header"),
            Self::NotAnUpgrade => f.write_str("not a WebSocket upgrade"),
            Self::InvalidKey => f.write_str("Sec-WebSocket-Key is not 16 bytes of base64"),
            Self::UnsupportedVersion => f.write_str("Sec-WebSocket-Version is not 13"),
            Self::NoCommonProtocol => f.write_str("no subprotocol in common"),
            Self::UnexpectedStatus(s) => write!(f, "HTTP status {s} instead of 101"),
            Self::AcceptMismatch => f.write_str("Sec-WebSocket-Accept does not match the key"),
            Self::UnofferedProtocol => f.write_str("server chose a subprotocol not offered"),
            Self::UnofferedExtension => f.write_str("server negotiated an extension not offered"),
            Self::InvalidExtension => {
                f.write_str("server answered permessage-deflate with invalid parameters")
            }
            Self::Rejected(s) => write!(f, "rejected by the application with HTTP {s}"),
            Self::Timeout => f.write_str("handshake timed out"),
            Self::ConnectionClosed => f.write_str("connection closed during the handshake"),
            Self::InvalidHeaderLine => f.write_str("invalid extra header line"),
        }
    }
}

impl core::error::Error for HandshakeError {}

/// Whether a comma-separated header value contains `token`, compared case-insensitively.
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(token.as_bytes()))
}

/// `bytes` without leading and trailing spaces and tabs.
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// Checks an application-supplied `"Name: value"` header line.
pub(crate) fn check_header_line(line: &str) -> Result<(), HandshakeError> {
    let bytes = line.as_bytes();
    let colon = bytes.iter().position(|&b| b == b':');
    match colon {
        Some(c) if c > 0 && !bytes.iter().any(|&b| b == b'\r' || b == b'\n') => Ok(()),
        _ => Err(HandshakeError::InvalidHeaderLine),
    }
}

/// Writes a head into a byte slice; a first pass with no slice counts the length.
pub(crate) struct HeadWriter<'a> {
    out: Option<&'a mut [u8]>,
    len: usize,
}

impl<'a> HeadWriter<'a> {
    /// A writer that only counts.
    pub(crate) fn counter() -> Self {
        Self { out: None, len: 0 }
    }

    /// A writer into `out`, which must be exactly as long as the counting pass said.
    pub(crate) fn into_slice(out: &'a mut [u8]) -> Self {
        Self { out: Some(out), len: 0 }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> &mut Self {
        if let Some(out) = self.out.as_deref_mut() {
            if let Some(dst) = out.get_mut(self.len..self.len + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
        self.len += bytes.len();
        self
    }

    pub(crate) fn put_u16(&mut self, n: u16) -> &mut Self {
        let mut digits = [0u8; 5];
        let mut at = digits.len();
        let mut n = n;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[at..])
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests;
