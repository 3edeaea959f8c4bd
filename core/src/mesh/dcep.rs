//! RFC 8832 Data Channel Establishment Protocol messages.
//!
//! Godot's channels are pre-negotiated and never use DCEP; browsers and libdatachannel use it
//! for channels created without `negotiated: true`. The codec is here so in-band channels can
//! be checked and answered exactly, and it never panics on any input. Trailing bytes after the
//! label and protocol are rejected (the RFC is silent; rejecting keeps one reading of a message).

use alloc::string::String;

use super::channel::Reliability;

/// The SCTP payload protocol id of DCEP messages.
pub const PPID_DCEP: u32 = 50;

const OPEN: u8 = 0x03;
const ACK: u8 = 0x02;
const HEADER_LEN: usize = 12;

/// A DATA_CHANNEL_OPEN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// Whether delivery is ordered (channel type bit 0x80 clear).
    pub ordered: bool,
    /// The reliability the channel type and parameter encode.
    pub reliability: Reliability,
    /// Priority (any value is accepted on receive).
    pub priority: u16,
    /// The label.
    pub label: String,
    /// The subprotocol (empty if unspecified).
    pub protocol: String,
}

/// A DCEP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// DATA_CHANNEL_OPEN.
    Open(Open),
    /// DATA_CHANNEL_ACK.
    Ack,
}

/// Why a DCEP message was rejected (the stream is reset and no ACK sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DcepError {
    /// Shorter than its header or its declared label and protocol.
    Truncated,
    /// Bytes after the label and protocol.
    TrailingBytes,
    /// A message type other than OPEN and ACK.
    UnknownMessageType(u8),
    /// A channel type the RFC does not define.
    UnknownChannelType(u8),
    /// A reliability parameter that does not fit the 16-bit policies we support.
    ParameterOutOfRange(u32),
    /// Label or protocol not UTF-8.
    InvalidUtf8,
}

impl core::fmt::Display for DcepError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated DCEP message"),
            Self::TrailingBytes => f.write_str("bytes after the DCEP label and protocol"),
            Self::UnknownMessageType(t) => write!(f, "unknown DCEP message type {t:#04x}"),
            Self::UnknownChannelType(t) => write!(f, "unknown channel type {t:#04x}"),
            Self::ParameterOutOfRange(p) => write!(f, "reliability parameter {p} out of range"),
            Self::InvalidUtf8 => f.write_str("label or protocol is not UTF-8"),
        }
    }
}

impl core::error::Error for DcepError {}

/// Decodes a DCEP message.
///
/// # Errors
/// [`DcepError`] for anything RFC 8832 does not allow.
pub fn decode(bytes: &[u8]) -> Result<Message, DcepError> {
    match bytes.first() {
        Some(&ACK) if bytes.len() == 1 => Ok(Message::Ack),
        Some(&ACK) => Err(DcepError::TrailingBytes),
        Some(&OPEN) => decode_open(bytes).map(Message::Open),
        Some(&other) => Err(DcepError::UnknownMessageType(other)),
        None => Err(DcepError::Truncated),
    }
}

fn decode_open(bytes: &[u8]) -> Result<Open, DcepError> {
    let header = bytes.get(..HEADER_LEN).ok_or(DcepError::Truncated)?;
    let channel_type = header[1];
    let priority = u16::from_be_bytes([header[2], header[3]]);
    let parameter = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let label_len = usize::from(u16::from_be_bytes([header[8], header[9]]));
    let protocol_len = usize::from(u16::from_be_bytes([header[10], header[11]]));
    let ordered = channel_type & 0x80 == 0;
    let policy = |p: u32| u16::try_from(p).map_err(|_| DcepError::ParameterOutOfRange(p));
    let reliability = match channel_type & 0x7f {
        0x00 => Reliability::Reliable,
        0x01 => Reliability::MaxRetransmits(policy(parameter)?),
        0x02 => Reliability::MaxPacketLifetime(policy(parameter)?),
        _ => return Err(DcepError::UnknownChannelType(channel_type)),
    };
    let body = &bytes[HEADER_LEN..];
    let total = label_len + protocol_len;
    if body.len() < total {
        return Err(DcepError::Truncated);
    }
    if body.len() > total {
        return Err(DcepError::TrailingBytes);
    }
    let text = |b: &[u8]| core::str::from_utf8(b).map(String::from).map_err(|_| DcepError::InvalidUtf8);
    Ok(Open {
        ordered,
        reliability,
        priority,
        label: text(&body[..label_len])?,
        protocol: text(&body[label_len..])?,
    })
}

/// Encodes a DCEP message; `None` if a label or protocol exceeds 65535 bytes.
#[must_use]
pub fn encode(message: &Message) -> Option<alloc::vec::Vec<u8>> {
    let Message::Open(open) = message else {
        return Some(alloc::vec![ACK]);
    };
    let label_len = u16::try_from(open.label.len()).ok()?;
    let protocol_len = u16::try_from(open.protocol.len()).ok()?;
    let (kind, parameter) = match open.reliability {
        Reliability::Reliable => (0x00, 0),
        Reliability::MaxRetransmits(n) => (0x01, u32::from(n)),
        Reliability::MaxPacketLifetime(ms) => (0x02, u32::from(ms)),
    };
    // The unordered bit stays with the partial-reliability types (werift#714 lost it).
    let channel_type = kind | if open.ordered { 0 } else { 0x80 };
    let mut out = alloc::vec::Vec::with_capacity(HEADER_LEN + open.label.len() + open.protocol.len());
    out.extend_from_slice(&[OPEN, channel_type]);
    out.extend_from_slice(&open.priority.to_be_bytes());
    out.extend_from_slice(&parameter.to_be_bytes());
    out.extend_from_slice(&label_len.to_be_bytes());
    out.extend_from_slice(&protocol_len.to_be_bytes());
    out.extend_from_slice(open.label.as_bytes());
    out.extend_from_slice(open.protocol.as_bytes());
    Some(out)
}

/// Whether a remote OPEN on `stream` came from the side allowed to open it: the DTLS client
/// opens even stream ids, the DTLS server odd ones (RFC 8832 §6).
#[must_use]
pub fn parity_allows(stream: u16, remote_is_dtls_client: bool) -> bool {
    (stream % 2 == 0) == remote_is_dtls_client
}

#[cfg(test)]
mod tests;
