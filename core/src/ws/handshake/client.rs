//! The client side of the opening handshake: URL, upgrade request, response validation.

use core::fmt;

use super::{ACCEPT_LEN, HandshakeError, HeadWriter, KEY_LEN, check_header_line, has_token, trim};

/// `ws://` or `wss://`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP, default port 80.
    Ws,
    /// TLS, default port 443.
    Wss,
}

impl Scheme {
    /// The port used when the URL names none.
    #[must_use]
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Ws => 80,
            Self::Wss => 443,
        }
    }
}

/// A parsed `ws://` or `wss://` URL (RFC 6455 §3), borrowing the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Url<'a> {
    /// The scheme; a URL without one is `ws://`, as in Godot 4.
    pub scheme: Scheme,
    /// The host as written, IPv6 literals with their brackets (`[::1]`).
    pub host: &'a str,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// Whether the port was written in the URL.
    pub explicit_port: bool,
    /// Path and query, `/` when empty.
    pub resource: &'a str,
}

/// A URL that cannot be used for a WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// A scheme other than `ws` or `wss`.
    UnsupportedScheme,
    /// No host.
    MissingHost,
    /// The port is not a number from 1 to 65535.
    InvalidPort,
    /// A `#fragment`, which RFC 6455 §3 forbids.
    Fragment,
    /// Spaces, control characters or an unterminated IPv6 literal.
    InvalidCharacter,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnsupportedScheme => "scheme is not ws:// or wss://",
            Self::MissingHost => "URL has no host",
            Self::InvalidPort => "port is not a number from 1 to 65535",
            Self::Fragment => "WebSocket URLs cannot have a #fragment",
            Self::InvalidCharacter => "URL contains an invalid character",
        })
    }
}

impl core::error::Error for UrlError {}

impl<'a> Url<'a> {
    /// Parses `ws://host[:port][/path][?query]`, `wss://...`, or the same without a scheme.
    ///
    /// # Errors
    /// [`UrlError`] naming the first problem found.
    pub fn parse(url: &'a str) -> Result<Self, UrlError> {
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError::InvalidCharacter);
        }
        if url.contains('#') {
            return Err(UrlError::Fragment);
        }
        let (scheme, rest) = match url.find("://") {
            Some(i) => {
                let scheme = match &url[..i] {
                    s if s.eq_ignore_ascii_case("ws") => Scheme::Ws,
                    s if s.eq_ignore_ascii_case("wss") => Scheme::Wss,
                    _ => return Err(UrlError::UnsupportedScheme),
                };
                (scheme, &url[i + 3..])
            }
            None => (Scheme::Ws, url),
        };
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(authority_end);
        // Userinfo is not part of a WebSocket URL's host.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let close = v6.find(']').ok_or(UrlError::InvalidCharacter)?;
            let host = &authority[..close + 2];
            match &v6[close + 1..] {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or(UrlError::InvalidCharacter)?)),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(UrlError::MissingHost);
        }
        let (port, explicit_port) = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => (n, true),
                _ => return Err(UrlError::InvalidPort),
            },
            None => (scheme.default_port(), false),
        };
        if !host.starts_with('[') && host.contains(':') {
            return Err(UrlError::InvalidCharacter);
        }
        // "ws://h?x" has an empty path; the request writer adds the leading slash.
        let resource = if resource.is_empty() { "/" } else { resource };
        Ok(Self { scheme, host, port, explicit_port, resource })
    }

    /// The host without IPv6 brackets, for name resolution and TLS server names.
    #[must_use]
    pub fn host_name(&self) -> &'a str {
        self.host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(self.host)
    }
}

/// What a client puts in its upgrade request.
#[derive(Debug, Clone, Copy)]
pub struct ClientRequest<'a> {
    /// The `Host` header value without port (IPv6 literals in brackets).
    pub host: &'a str,
    /// The port for the `Host` header; `None` leaves it out (the scheme's default port).
    pub port: Option<u16>,
    /// Path and query of the request line.
    pub resource: &'a str,
    /// Subprotocols to offer, in order of preference (Godot: `supported_protocols`).
    pub protocols: &'a [&'a str],
    /// Extra `"Name: value"` lines (Godot: `handshake_headers`).
    pub extra_headers: &'a [&'a str],
}

impl<'a> ClientRequest<'a> {
    /// A request for `url`, omitting the port from `Host` when it is the scheme's default.
    #[must_use]
    pub fn from_url(url: &Url<'a>) -> Self {
        let port = (url.port != url.scheme.default_port()).then_some(url.port);
        Self { host: url.host, port, resource: url.resource, protocols: &[], extra_headers: &[] }
    }

    /// Checks the parts an application supplied.
    pub(crate) fn check(&self) -> Result<(), HandshakeError> {
        for line in self.extra_headers {
            check_header_line(line)?;
        }
        for p in self.protocols {
            let bytes = p.trim().as_bytes();
            if bytes.is_empty() || bytes.len() > MAX_PROTOCOL_LEN || bytes.iter().any(|b| !is_token_char(*b))
            {
                return Err(HandshakeError::InvalidHeaderLine);
            }
        }
        if self.resource.bytes().any(|b| b <= b' ') || self.host.bytes().any(|b| b <= b' ') {
            return Err(HandshakeError::InvalidHeaderLine);
        }
        Ok(())
    }

    /// Writes the request head (Godot's exact layout, RFC 6455 §4.1), with a
    /// `Sec-WebSocket-Extensions` line when `extensions` is not empty.
    pub(crate) fn write(&self, w: &mut HeadWriter<'_>, key: &[u8; KEY_LEN], extensions: &str) {
        w.put(b"GET ");
        if !self.resource.starts_with('/') {
            w.put(b"/");
        }
        w.put(self.resource.as_bytes()).put(b" HTTP/1.1\r\nHost: ").put(self.host.as_bytes());
        if let Some(port) = self.port {
            w.put(b":").put_u16(port);
        }
        w.put(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ")
            .put(key)
            .put(b"\r\nSec-WebSocket-Version: 13\r\n");
        if !self.protocols.is_empty() {
            w.put(b"Sec-WebSocket-Protocol: ");
            for (i, p) in self.protocols.iter().enumerate() {
                if i > 0 {
                    w.put(b",");
                }
                w.put(p.trim().as_bytes());
            }
            w.put(b"\r\n");
        }
        if !extensions.is_empty() {
            w.put(b"Sec-WebSocket-Extensions: ").put(extensions.as_bytes()).put(b"\r\n");
        }
        for line in self.extra_headers {
            w.put(line.as_bytes()).put(b"\r\n");
        }
        w.put(b"\r\n");
    }
}

/// Longest subprotocol name the connection stores.
pub const MAX_PROTOCOL_LEN: usize = 64;

/// Whether `b` may appear in an HTTP token (RFC 9110 §5.6.2).
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What a valid `101 Switching Protocols` response told the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    /// The subprotocol the server chose, if any.
    pub protocol: Option<&'a [u8]>,
}

/// Validates a complete response head against the request that was sent.
///
/// `offered` is the comma-separated list of protocols offered (empty for none); `headers` is
/// scratch space for the parser and bounds the header count.
///
/// # Errors
/// The first [`HandshakeError`] found.
pub fn validate_response<'b>(
    head: &'b [u8],
    expected_accept: &[u8; ACCEPT_LEN],
    offered: &[u8],
    headers: &mut [httparse::Header<'b>],
) -> Result<ResponseHead<'b>, HandshakeError> {
    validate_response_with(head, expected_accept, offered, headers, false)
}

/// [`validate_response`], leaving `Sec-WebSocket-Extensions` to the caller when
/// `extensions_offered` (the caller then reads them from `headers`).
pub(crate) fn validate_response_with<'b>(
    head: &'b [u8],
    expected_accept: &[u8; ACCEPT_LEN],
    offered: &[u8],
    headers: &mut [httparse::Header<'b>],
    extensions_offered: bool,
) -> Result<ResponseHead<'b>, HandshakeError> {
    let limit = headers.len();
    let mut response = httparse::Response::new(headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HandshakeError::MalformedHttp),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders { limit }),
        Err(_) => return Err(HandshakeError::MalformedHttp),
    }
    if response.version != Some(1) {
        return Err(HandshakeError::UnsupportedHttpVersion);
    }
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Err(HandshakeError::UnexpectedStatus(status));
    }
    let mut upgrade = false;
    let mut connection = false;
    let mut accept = None;
    let mut protocol: Option<&'b [u8]> = None;
    for h in response.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token(h.value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(h.value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            if accept.is_some() {
                return Err(HandshakeError::DuplicateHeader("Sec-WebSocket-Accept"));
            }
            accept = Some(trim(h.value));
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            let value = trim(h.value);
            if protocol.is_some() || value.contains(&b',') {
                return Err(HandshakeError::UnofferedProtocol);
            }
            protocol = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions")
            && !extensions_offered
            && !trim(h.value).is_empty()
        {
            return Err(HandshakeError::UnofferedExtension);
        }
    }
    if !upgrade || !connection {
        return Err(HandshakeError::NotAnUpgrade);
    }
    match accept {
        None => return Err(HandshakeError::MissingHeader("Sec-WebSocket-Accept")),
        Some(a) if a != expected_accept => return Err(HandshakeError::AcceptMismatch),
        Some(_) => {}
    }
    if let Some(chosen) = protocol {
        // Case-sensitive, as in Godot: the server must echo one of the offered names exactly.
        if !offered.split(|&b| b == b',').any(|p| p == chosen) {
            return Err(HandshakeError::UnofferedProtocol);
        }
    }
    Ok(ResponseHead { protocol })
}
