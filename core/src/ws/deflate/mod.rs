//! permessage-deflate (RFC 7692): the extension's negotiation in the opening handshake and the
//! per-message compressor and decompressor.
//!
//! Godot's `WebSocketPeer` neither offers nor accepts the extension, so it is off unless
//! [`Config::permessage_deflate`](crate::ws::Config::permessage_deflate) is set; with it unset
//! the handshake bytes are exactly those of a build without the `deflate` feature.
//!
//! Negotiation follows RFC 7692 §5 and §7.1: a client offers one `permessage-deflate` element;
//! a server walks the offers in the client's order, declines every offer with an unknown,
//! repeated or malformed parameter, and answers the first it can honour. Window sizes are
//! 8 to 15 bits.

pub(crate) mod codec;

use core::fmt::Write as _;

use super::handshake::HandshakeError;

/// The extension's registered name.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// Smallest LZ77 window RFC 7692 §7.1.2 allows, in bits.
pub const MIN_WINDOW_BITS: u8 = 8;

/// Largest LZ77 window (32 KiB), in bits.
pub const MAX_WINDOW_BITS: u8 = 15;

/// Longest `Sec-WebSocket-Extensions` value this side writes.
pub const MAX_EXTENSION_LINE: usize = 160;

/// What this side offers (client) or accepts (server); Godot has no counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Largest window our compressor uses, 8–15 bits; the peer may lower it further. Below 15,
    /// each message is compressed alone and only when no longer than the window.
    pub max_window_bits: u8,
    /// Largest window the peer's compressor is asked to use, 8–15 bits (15 asks nothing).
    pub peer_max_window_bits: u8,
    /// Reset our compressor after every message (less memory kept between messages, worse
    /// ratio); the peer may also ask for it.
    pub no_context_takeover: bool,
    /// Ask the peer to reset its compressor after every message.
    pub peer_no_context_takeover: bool,
    /// Compression level, 0 (stored) to 10 (miniz's slowest); 1–3 are fast.
    pub level: u8,
    /// Messages shorter than this are sent uncompressed (RSV1 clear): deflate's few bytes of
    /// framing outweigh what it saves on short ones. 8 bits (and 16 for `max_connections`)
    /// keep [`Config`](crate::ws::Config), copied into every connection, small.
    pub min_message_size: u8,
    /// Server: agree to the extension only while fewer than this many of the server's
    /// connections use it, each holding up to about 350 KiB of compressor state (`u16::MAX`:
    /// no limit); later ones are answered without it, as RFC 7692 §5 lets a server decline
    /// any offer. A client ignores it.
    pub max_connections: u16,
}

impl DeflateConfig {
    /// Full windows, context kept between messages, level 3, messages from 32 bytes on, on
    /// every connection.
    pub const DEFAULT: Self = Self {
        max_window_bits: MAX_WINDOW_BITS,
        peer_max_window_bits: MAX_WINDOW_BITS,
        no_context_takeover: false,
        peer_no_context_takeover: false,
        level: 3,
        min_message_size: 32,
        max_connections: u16::MAX,
    };

    /// The same with window sizes clamped to 8–15 bits and the level to 10.
    #[must_use]
    pub fn clamped(mut self) -> Self {
        self.max_window_bits = self.max_window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        self.peer_max_window_bits = self.peer_max_window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        self.level = self.level.min(10);
        self
    }
}

impl DeflateConfig {
    /// Whether a server that has `compressing` connections using the extension may agree to
    /// it on one more ([`max_connections`](Self::max_connections)).
    #[must_use]
    pub fn admits(&self, compressing: usize) -> bool {
        self.max_connections == u16::MAX || u16::try_from(compressing).is_ok_and(|n| n < self.max_connections)
    }
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The parameters both sides agreed on, seen from this side; Godot has no counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// Largest window our compressor may use, in bits.
    pub window_bits: u8,
    /// Our compressor starts afresh for every message.
    pub no_context_takeover: bool,
    /// Largest window the peer's compressor uses, in bits (15 when it promised nothing).
    pub peer_window_bits: u8,
    /// The peer's compressor starts afresh for every message.
    pub peer_no_context_takeover: bool,
}

/// What one connection's permessage-deflate did so far; Godot has no counterpart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeflateStats {
    /// Messages sent compressed (RSV1 set).
    pub messages_compressed: u64,
    /// Messages sent uncompressed: shorter than `min_message_size`, longer than a window below
    /// 15 bits, or not shrinking.
    pub messages_sent_plain: u64,
    /// Payload bytes of the messages sent compressed, before compression.
    pub bytes_before_compression: u64,
    /// The same messages' payload bytes on the wire, after compression.
    pub bytes_after_compression: u64,
    /// Compressed messages received and inflated.
    pub messages_inflated: u64,
    /// Bytes those messages inflated to.
    pub bytes_inflated: u64,
}

/// The four parameters of one `permessage-deflate` element as written, each at most once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `Some(None)`: present without a value (allowed for `client_max_window_bits` only).
    server_max_window_bits: Option<Option<u8>>,
    client_max_window_bits: Option<Option<u8>>,
}

/// Splits `value` at `sep` outside quoted strings.
fn split_unquoted(value: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    core::iter::from_fn(move || {
        let bytes = rest?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                _ if b == sep && !quoted => {
                    rest = Some(&bytes[i + 1..]);
                    return Some(&bytes[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(bytes)
    })
}

/// Every extension element of every `Sec-WebSocket-Extensions` value, trimmed, empty ones
/// (RFC 9110 list syntax allows `a, , b`) skipped.
fn elements<'b>(values: impl IntoIterator<Item = &'b [u8]>) -> impl Iterator<Item = &'b [u8]> {
    values
        .into_iter()
        .flat_map(|v| split_unquoted(v, b','))
        .map(super::handshake::trim)
        .filter(|e| !e.is_empty())
}

/// A window-bits value: 1–2 ASCII digits from 8 to 15, or the same in double quotes
/// (RFC 7692 §7.1: a quoted value must be a valid token once unquoted).
fn window_bits(value: &[u8]) -> Option<u8> {
    let value = match value {
        [b'"', inner @ .., b'"'] => inner,
        v => v,
    };
    if value.is_empty() || value.len() > 2 || !value.iter().all(u8::is_ascii_digit) || value[0] == b'0' {
        return None;
    }
    let n = value.iter().fold(0u8, |n, d| n * 10 + (d - b'0'));
    (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&n).then_some(n)
}

/// Parses one element: `None` when it is not `permessage-deflate`, `Some(Err)` when it is
/// but a parameter is unknown, repeated, or has a value that is missing or not allowed.
fn parse_element(element: &[u8]) -> Option<Result<Params, ()>> {
    let mut parts = split_unquoted(element, b';').map(super::handshake::trim);
    let name = parts.next()?;
    if !name.eq_ignore_ascii_case(EXTENSION_NAME.as_bytes()) {
        return None;
    }
    let mut params = Params::default();
    for part in parts {
        let (key, value) = match part.iter().position(|&b| b == b'=') {
            Some(eq) => (super::handshake::trim(&part[..eq]), Some(super::handshake::trim(&part[eq + 1..]))),
            None => (part, None),
        };
        let ok = match key {
            k if k.eq_ignore_ascii_case(b"server_no_context_takeover") => {
                value.is_none() && !core::mem::replace(&mut params.server_no_context_takeover, true)
            }
            k if k.eq_ignore_ascii_case(b"client_no_context_takeover") => {
                value.is_none() && !core::mem::replace(&mut params.client_no_context_takeover, true)
            }
            k if k.eq_ignore_ascii_case(b"server_max_window_bits") => {
                let bits = value.and_then(window_bits);
                params.server_max_window_bits.replace(bits).is_none() && bits.is_some()
            }
            k if k.eq_ignore_ascii_case(b"client_max_window_bits") => {
                let bits = value.map(window_bits);
                // Without a value it only says the client can honour a limit.
                params.client_max_window_bits.replace(bits.flatten()).is_none() && bits != Some(None)
            }
            _ => false,
        };
        if !ok {
            return Some(Err(()));
        }
    }
    Some(Ok(params))
}

/// Writes `; name` or `; name=bits` into an extension line.
fn put_param(line: &mut heapless::String<MAX_EXTENSION_LINE>, name: &str, bits: Option<u8>) {
    // Cannot overflow: the longest line (all four parameters) is 126 bytes.
    let _ = line.push_str("; ");
    let _ = line.push_str(name);
    if let Some(bits) = bits {
        let _ = write!(line, "={bits}");
    }
}

/// The client's offer: the value of its `Sec-WebSocket-Extensions` header.
///
/// `client_max_window_bits` is always sent (without a value when our window is full) so the
/// server may lower our window; `server_max_window_bits` only when we ask for less than 15.
#[must_use]
pub fn client_offer(config: &DeflateConfig) -> heapless::String<MAX_EXTENSION_LINE> {
    let config = config.clamped();
    let mut line = heapless::String::new();
    let _ = line.push_str(EXTENSION_NAME);
    let own = (config.max_window_bits < MAX_WINDOW_BITS).then_some(config.max_window_bits);
    put_param(&mut line, "client_max_window_bits", own);
    if config.peer_max_window_bits < MAX_WINDOW_BITS {
        put_param(&mut line, "server_max_window_bits", Some(config.peer_max_window_bits));
    }
    if config.no_context_takeover {
        put_param(&mut line, "client_no_context_takeover", None);
    }
    if config.peer_no_context_takeover {
        put_param(&mut line, "server_no_context_takeover", None);
    }
    line
}

/// Server side: answers the client's offers (every `Sec-WebSocket-Extensions` value, in
/// order) with the first acceptable one, returning what was agreed and the response value.
///
/// An offer with an unknown, repeated or malformed parameter is declined (RFC 7692 §5.1) and
/// the next one is looked at; `None` means none was acceptable and the extension is off.
#[must_use]
pub fn server_answer<'b>(
    config: &DeflateConfig,
    offers: impl IntoIterator<Item = &'b [u8]>,
) -> Option<(DeflateParams, heapless::String<MAX_EXTENSION_LINE>)> {
    let config = config.clamped();
    let params = elements(offers).find_map(|e| parse_element(e)?.ok())?;
    // Our window: what we want, lowered to what the client allows.
    let window_bits = match params.server_max_window_bits {
        Some(Some(bits)) => bits.min(config.max_window_bits),
        _ => config.max_window_bits,
    };
    // The client's window: what it promised, lowered to what we ask if it can honour a limit.
    let peer_window_bits = match params.client_max_window_bits {
        Some(offered) => offered.unwrap_or(MAX_WINDOW_BITS).min(config.peer_max_window_bits),
        None => MAX_WINDOW_BITS,
    };
    let agreed = DeflateParams {
        window_bits,
        no_context_takeover: params.server_no_context_takeover || config.no_context_takeover,
        peer_window_bits,
        peer_no_context_takeover: params.client_no_context_takeover || config.peer_no_context_takeover,
    };
    let mut line = heapless::String::new();
    let _ = line.push_str(EXTENSION_NAME);
    if agreed.no_context_takeover {
        put_param(&mut line, "server_no_context_takeover", None);
    }
    if agreed.peer_no_context_takeover {
        put_param(&mut line, "client_no_context_takeover", None);
    }
    // §7.1.2.1: only in answer to an offer that named it.
    if params.server_max_window_bits.is_some() {
        put_param(&mut line, "server_max_window_bits", Some(window_bits));
    }
    // §7.1.2.2: only when the client said it can honour it, and only to lower it.
    if params.client_max_window_bits.is_some() && peer_window_bits < MAX_WINDOW_BITS {
        put_param(&mut line, "client_max_window_bits", Some(peer_window_bits));
    }
    Some((agreed, line))
}

/// Client side: checks the server's `Sec-WebSocket-Extensions` values against what
/// [`client_offer`] offered; `Ok(None)` when the server did not accept the extension.
///
/// # Errors
/// [`HandshakeError::UnofferedExtension`] for any extension other than one
/// `permessage-deflate` element; [`HandshakeError::InvalidExtension`] for parameters the offer
/// does not allow (unknown, repeated, a window outside 8–15 or above what we asked).
pub fn client_accept<'b>(
    config: &DeflateConfig,
    answers: impl IntoIterator<Item = &'b [u8]>,
) -> Result<Option<DeflateParams>, HandshakeError> {
    let config = config.clamped();
    let mut agreed = None;
    for element in elements(answers) {
        let params = match parse_element(element) {
            None => return Err(HandshakeError::UnofferedExtension),
            Some(_) if agreed.is_some() => return Err(HandshakeError::UnofferedExtension),
            Some(Err(())) => return Err(HandshakeError::InvalidExtension),
            Some(Ok(params)) => params,
        };
        // A response names client_max_window_bits with a value (we always offer it).
        let window_bits = match params.client_max_window_bits {
            None => config.max_window_bits,
            Some(None) => return Err(HandshakeError::InvalidExtension),
            Some(Some(bits)) => bits.min(config.max_window_bits),
        };
        let peer_window_bits = match params.server_max_window_bits {
            None => MAX_WINDOW_BITS,
            Some(Some(bits)) if bits <= config.peer_max_window_bits => bits,
            Some(_) => return Err(HandshakeError::InvalidExtension),
        };
        // The server must honour a server_no_context_takeover we asked for.
        if config.peer_no_context_takeover && !params.server_no_context_takeover {
            return Err(HandshakeError::InvalidExtension);
        }
        agreed = Some(DeflateParams {
            window_bits,
            no_context_takeover: params.client_no_context_takeover || config.no_context_takeover,
            peer_window_bits,
            peer_no_context_takeover: params.server_no_context_takeover,
        });
    }
    Ok(agreed)
}

#[cfg(test)]
mod tests;
