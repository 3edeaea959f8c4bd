//! The server side of the opening handshake: request validation and the answer.

use core::fmt::{self, Write as _};

use base64::Engine as _;

use super::{ACCEPT_LEN, HandshakeError, HeadWriter, check_header_line, has_token, trim};
use crate::ws::handshake::client::{MAX_PROTOCOL_LEN, is_token_char};

/// A validated upgrade request, borrowing the head bytes and the caller's header array.
#[derive(Debug)]
pub struct Request<'h, 'b> {
    path: &'b str,
    headers: &'h [httparse::Header<'b>],
    key: &'b [u8],
}

impl<'h, 'b> Request<'h, 'b> {
    /// Path and query of the request line (`/lobby?room=3`).
    #[must_use]
    pub fn path(&self) -> &'b str {
        self.path
    }

    /// Every header line, in order.
    #[must_use]
    pub fn headers(&self) -> &'h [httparse::Header<'b>] {
        self.headers
    }

    /// The value of the first header named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    }

    /// `Origin`, sent by browsers.
    #[must_use]
    pub fn origin(&self) -> Option<&'b [u8]> {
        self.header("origin")
    }

    /// `Host`, which Godot clients send and Godot servers do not require.
    #[must_use]
    pub fn host(&self) -> Option<&'b [u8]> {
        self.header("host")
    }

    /// `Sec-WebSocket-Key` as sent (24 base64 characters).
    #[must_use]
    pub fn key(&self) -> &'b [u8] {
        self.key
    }

    /// The subprotocols the client offered, in its order, across all `Sec-WebSocket-Protocol`
    /// lines.
    pub fn protocols(&self) -> impl Iterator<Item = &'b str> + '_ {
        self.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-protocol"))
            .flat_map(|h| h.value.split(|&b| b == b','))
            .map(trim)
            .filter(|p| !p.is_empty())
            .filter_map(|p| core::str::from_utf8(p).ok())
    }
}

/// Parses and validates a complete request head (RFC 6455 §4.2.1).
///
/// `headers` is the caller's scratch array; its length bounds the number of header lines.
///
/// # Errors
/// The first [`HandshakeError`] found; [`HandshakeError::http_status`] tells what to answer.
pub fn parse_request<'h, 'b>(
    head: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
) -> Result<Request<'h, 'b>, HandshakeError> {
    let limit = headers.len();
    let mut request = httparse::Request::new(headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HandshakeError::MalformedHttp),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders { limit }),
        Err(_) => return Err(HandshakeError::MalformedHttp),
    }
    let (Some(method), Some(path), Some(version)) = (request.method, request.path, request.version) else {
        return Err(HandshakeError::MalformedHttp);
    };
    if method != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if version != 1 {
        return Err(HandshakeError::UnsupportedHttpVersion);
    }
    let headers: &'h [httparse::Header<'b>] = request.headers;
    let mut upgrade = None;
    let mut connection = None;
    let mut key = None;
    let mut version_ok = None;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("upgrade") {
            *upgrade.get_or_insert(false) |= has_token(h.value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            *connection.get_or_insert(false) |= has_token(h.value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            if key.is_some() {
                return Err(HandshakeError::DuplicateHeader("Sec-WebSocket-Key"));
            }
            key = Some(trim(h.value));
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            let ok = trim(h.value) == b"13";
            version_ok = Some(version_ok.unwrap_or(true) && ok);
        }
    }
    match (upgrade, connection) {
        (None, _) => return Err(HandshakeError::MissingHeader("Upgrade")),
        (_, None) => return Err(HandshakeError::MissingHeader("Connection")),
        (Some(false), _) | (_, Some(false)) => return Err(HandshakeError::NotAnUpgrade),
        _ => {}
    }
    if version_ok != Some(true) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = key.ok_or(HandshakeError::MissingHeader("Sec-WebSocket-Key"))?;
    let mut nonce = [0u8; 18];
    match base64::engine::general_purpose::STANDARD.decode_slice(key, &mut nonce) {
        Ok(16) => {}
        _ => return Err(HandshakeError::InvalidKey),
    }
    Ok(Request { path, headers, key })
}

/// Chooses the subprotocol with Godot's rules.
///
/// The client's offers are walked in the client's order and the first that equals (exactly,
/// case-sensitively) one of `supported` wins. If either side offers none, both must offer none.
///
/// # Errors
/// [`HandshakeError::NoCommonProtocol`] when no choice satisfies those rules.
pub fn select_protocol<'b, S: AsRef<str>>(
    offered: impl IntoIterator<Item = &'b str>,
    supported: &[S],
) -> Result<Option<&'b str>, HandshakeError> {
    let mut offered_any = false;
    for offer in offered {
        offered_any = true;
        if supported.iter().any(|s| s.as_ref().trim() == offer) {
            return Ok(Some(offer));
        }
    }
    if !offered_any && supported.is_empty() { Ok(None) } else { Err(HandshakeError::NoCommonProtocol) }
}

/// Writes `101 Switching Protocols` for a request with `key`, with a
/// `Sec-WebSocket-Extensions` line when `extensions` is not empty.
pub(crate) fn write_accept(
    w: &mut HeadWriter<'_>,
    accept: &[u8; ACCEPT_LEN],
    protocol: Option<&str>,
    extensions: &str,
    extra_headers: &[&str],
) {
    w.put(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    w.put(b"Sec-WebSocket-Accept: ").put(accept).put(b"\r\n");
    if let Some(p) = protocol {
        w.put(b"Sec-WebSocket-Protocol: ").put(p.as_bytes()).put(b"\r\n");
    }
    if !extensions.is_empty() {
        w.put(b"Sec-WebSocket-Extensions: ").put(extensions.as_bytes()).put(b"\r\n");
    }
    for line in extra_headers {
        w.put(line.as_bytes()).put(b"\r\n");
    }
    w.put(b"\r\n");
}

/// Checks what the application passes to `accept`.
pub(crate) fn check_accept(protocol: Option<&str>, extra_headers: &[&str]) -> Result<(), HandshakeError> {
    if let Some(p) = protocol {
        if p.is_empty() || p.len() > MAX_PROTOCOL_LEN || !p.bytes().all(is_token_char) {
            return Err(HandshakeError::InvalidHeaderLine);
        }
    }
    extra_headers.iter().try_for_each(|l| check_header_line(l))
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Counts the bytes a `Display` value writes.
struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

impl fmt::Write for HeadWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.put(s.as_bytes());
        Ok(())
    }
}

/// Writes an HTTP error answer whose body says why, and which asks the client to close.
pub(crate) fn write_reject(w: &mut HeadWriter<'_>, status: u16, why: &dyn fmt::Display) {
    let mut body = Counter(0);
    let _ = writeln!(body, "{why}");
    w.put(b"HTTP/1.1 ").put_u16(status).put(b" ").put(reason_phrase(status).as_bytes());
    w.put(b"\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n");
    if status == 426 {
        w.put(b"Sec-WebSocket-Version: 13\r\n");
    }
    if status == 405 {
        w.put(b"Allow: GET\r\n");
    }
    w.put(b"Content-Length: ").put_u16(u16::try_from(body.0).unwrap_or(u16::MAX)).put(b"\r\n\r\n");
    let _ = writeln!(w, "{why}");
}
