//! RFC 6455 WebSocket as a sans-IO state machine, client and server roles.
//!
//! [`Connection`] takes bytes from the transport ([`handle_input`](Connection::handle_input)),
//! reassembles messages into its inbound queue, answers pings, runs the close handshake and its
//! own timers, and hands back bytes to write ([`poll_transmit`](Connection::poll_transmit)).
//! See the crate documentation for the drive loop every machine here follows.
//!
//! Limits (message size, queued messages, queued outbound bytes, handshake size, header count,
//! fragments per message) default to Godot 4.4's values and are enforced as bytes arrive: an
//! oversized message is refused with close code 1009 as soon as its header announces it, without
//! buffering the excess.

mod close;
mod connection;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod utf8;

pub use close::{CloseInfo, CloseReason, ControlPayload, Initiator};
#[cfg(feature = "alloc")]
pub use connection::SharedFrame;
pub use connection::{Connection, MaskKeys, NoRng};
pub use frame::{CloseCode, OpCode};
pub use handshake::HandshakeError;

use core::fmt;
use core::time::Duration;

/// Which end of the connection this machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends the upgrade request and masks its frames.
    Client,
    /// Answers the upgrade request; its frames are unmasked.
    Server,
}

/// The connection state, as Godot's `WebSocketPeer.get_ready_state()` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The opening handshake is in progress.
    Connecting,
    /// Messages flow both ways.
    Open,
    /// A Close frame was sent or received; the closing handshake is in progress.
    Closing,
    /// The connection is over; the transport may be released once nothing is left to send.
    Closed,
}

/// Whether a message is text (UTF-8) or binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Opcode 0x1; the payload is valid UTF-8.
    Text,
    /// Opcode 0x2.
    Binary,
}

impl MessageKind {
    pub(crate) const fn meta(self) -> u8 {
        match self {
            Self::Text => 1,
            Self::Binary => 0,
        }
    }

    pub(crate) const fn from_meta(meta: u8) -> Self {
        if meta & 1 == 1 { Self::Text } else { Self::Binary }
    }

    pub(crate) const fn opcode(self) -> OpCode {
        match self {
            Self::Text => OpCode::Text,
            Self::Binary => OpCode::Binary,
        }
    }
}

/// A received message, borrowed from the connection's inbound queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// Text or binary.
    pub kind: MessageKind,
    /// The whole payload, reassembled from its fragments.
    pub data: &'a [u8],
}

/// Limits and timers of one connection.
///
/// Defaults are Godot 4.4+'s `WebSocketPeer` defaults where Godot has the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Largest message accepted, and most message bytes queued for the application
    /// (Godot: `inbound_buffer_size`, 65535). A larger message is refused with 1009.
    pub max_message_size: usize,
    /// Most messages queued for the application (Godot: `max_queued_packets`, 4096). When the
    /// queue is full the connection stops reading: TCP back-pressure, nothing dropped.
    pub max_queued_messages: usize,
    /// Largest outgoing message, and most payload bytes of outgoing messages not yet written
    /// to the transport unless [`outbound_queue_size`](Self::outbound_queue_size) is larger
    /// (Godot: `outbound_buffer_size`, 65535). `send` fails beyond it.
    pub outbound_buffer_size: usize,
    /// Most payload bytes queued for the transport; `None` (the default) means
    /// `outbound_buffer_size`, as in Godot.
    ///
    /// Godot has one setting for both because it writes every message to the socket at once;
    /// a server that coalesces the writes of one pass (and relays several messages to a peer
    /// between two writes) needs room for more than one largest message per peer. Values
    /// below `outbound_buffer_size` are raised to it.
    pub outbound_queue_size: Option<usize>,
    /// Most outgoing messages not yet written to the transport (Godot: `max_queued_packets`).
    pub max_outbound_messages: usize,
    /// Largest opening handshake head, request or response (Godot: 4096 bytes).
    pub max_handshake_size: usize,
    /// Most header lines in the opening handshake, at most [`MAX_HEADERS`].
    pub max_headers: usize,
    /// Most frames one message may arrive in; more closes with 1009 (a tiny-fragment flood).
    pub max_fragments: usize,
    /// Time allowed for the whole opening handshake (Godot: `handshake_timeout`, 3 s).
    pub handshake_timeout: Duration,
    /// Time allowed for the peer to answer our Close (and, for a client, to close TCP after).
    pub close_timeout: Duration,
    /// Send an empty Ping this often while open; a peer that has not answered the previous
    /// Ping when the next is due is declared dead (Godot 4.4+: `heartbeat_interval`, off).
    /// A zero interval is off, as Godot's 0 is.
    pub heartbeat_interval: Option<Duration>,
    /// How long buffer storage that is no longer needed is kept before it is given back.
    ///
    /// `None` gives it back as soon as a queue drains: the least memory, but a chatty
    /// connection then frees and regrows its storage for every message, which profiles showed
    /// to be most of the cost of large messages. A server keeps it a second
    /// (`ServerConfig::default`), so idle connections still hold nothing.
    pub buffer_release_delay: Option<Duration>,
    /// Offer (client) or accept (server) permessage-deflate, RFC 7692, with these settings;
    /// `None` (Godot, the default) neither offers nor accepts it. Godot has no counterpart.
    #[cfg(feature = "deflate")]
    pub permessage_deflate: Option<deflate::DeflateConfig>,
}

/// Hard ceiling of [`Config::max_headers`]: the parser's header array lives on the stack.
pub const MAX_HEADERS: usize = 128;

impl Config {
    /// Godot 4.4+ defaults.
    pub const GODOT: Self = Self {
        max_message_size: 65535,
        max_queued_messages: 4096,
        outbound_buffer_size: 65535,
        outbound_queue_size: None,
        max_outbound_messages: 4096,
        max_handshake_size: 4096,
        max_headers: 64,
        max_fragments: 4096,
        handshake_timeout: Duration::from_secs(3),
        close_timeout: Duration::from_secs(3),
        heartbeat_interval: None,
        buffer_release_delay: None,
        #[cfg(feature = "deflate")]
        permessage_deflate: None,
    };

    /// Godot 4.0–4.3 defaults: 2048 queued messages each way.
    pub const GODOT_4_0: Self =
        Self { max_queued_messages: 2048, max_outbound_messages: 2048, ..Self::GODOT };

    /// The limits in force, each clamped to what the implementation can represent.
    /// Most payload bytes queued for the transport, in force.
    #[must_use]
    pub fn outbound_queue_limit(&self) -> usize {
        self.outbound_queue_size.unwrap_or(0).max(self.outbound_buffer_size)
    }

    pub(crate) fn clamped(mut self) -> Self {
        // Queue records store lengths in 32 bits.
        const MAX_BYTES: usize = (u32::MAX >> 1) as usize;
        self.max_message_size = self.max_message_size.min(MAX_BYTES);
        self.outbound_buffer_size = self.outbound_buffer_size.min(MAX_BYTES);
        self.outbound_queue_size =
            Some(self.outbound_queue_size.unwrap_or(0).clamp(self.outbound_buffer_size, MAX_BYTES));
        self.max_queued_messages = self.max_queued_messages.max(1);
        self.max_outbound_messages = self.max_outbound_messages.max(1);
        self.max_headers = self.max_headers.clamp(1, MAX_HEADERS);
        self.max_fragments = self.max_fragments.max(1);
        // A zero interval would be due again at once: every `handle_timeout` would ping and
        // the next would declare the peer dead, and `poll_timeout` would never move past now.
        self.heartbeat_interval = self.heartbeat_interval.filter(|i| !i.is_zero());
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::GODOT
    }
}

/// Why a connection was closed by this library: the peer broke the protocol or a limit, or a
/// timer ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A frame header with a reserved opcode.
    ReservedOpcode(u8),
    /// RSV bits set with no extension negotiated.
    ReservedBits(u8),
    /// A 64-bit length with the high bit set.
    LengthOverflow,
    /// A client frame without a mask (server role).
    UnmaskedFrame,
    /// A server frame with a mask (client role).
    MaskedFrame,
    /// A control frame longer than 125 bytes.
    ControlFrameTooLong,
    /// A control frame without FIN.
    FragmentedControlFrame,
    /// A continuation frame with no message in progress.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message was still in progress.
    ExpectedContinuation,
    /// A message larger than [`Config::max_message_size`].
    MessageTooBig {
        /// The limit.
        limit: usize,
    },
    /// A message in more frames than [`Config::max_fragments`].
    TooManyFragments {
        /// The limit.
        limit: usize,
    },
    /// A text message or close reason that is not UTF-8.
    InvalidUtf8,
    /// A close frame with a 1-byte payload.
    InvalidClosePayload,
    /// A close code that may not appear on the wire.
    InvalidCloseCode(u16),
    /// A compressed message (permessage-deflate) that is not valid deflate.
    InvalidCompressedData,
    /// The peer did not answer a keepalive ping in time.
    KeepaliveTimeout,
    /// The peer did not answer our Close in time.
    CloseTimeout,
    /// The transport closed without a Close frame.
    ConnectionReset,
}

impl Error {
    /// The close code this error is reported with (RFC 6455 §7.4.1).
    #[must_use]
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Self::MessageTooBig { .. } | Self::TooManyFragments { .. } => CloseCode::MESSAGE_TOO_BIG,
            Self::InvalidUtf8 | Self::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            Self::KeepaliveTimeout | Self::CloseTimeout | Self::ConnectionReset => CloseCode::ABNORMAL,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::ReservedBits(bits) => write!(f, "reserved bits {bits:#05b} set"),
            Self::LengthOverflow => f.write_str("frame length has the high bit set"),
            Self::UnmaskedFrame => f.write_str("unmasked client frame"),
            Self::MaskedFrame => f.write_str("masked server frame"),
            Self::ControlFrameTooLong => f.write_str("control frame longer than 125 bytes"),
            Self::FragmentedControlFrame => f.write_str("fragmented control frame"),
            Self::UnexpectedContinuation => f.write_str("continuation without a message"),
            Self::ExpectedContinuation => f.write_str("new message inside a fragmented one"),
            Self::MessageTooBig { limit } => write!(f, "message larger than {limit} bytes"),
            Self::TooManyFragments { limit } => write!(f, "message in more than {limit} frames"),
            Self::InvalidUtf8 => f.write_str("invalid UTF-8"),
            Self::InvalidClosePayload => f.write_str("close frame with a 1-byte payload"),
            Self::InvalidCloseCode(c) => write!(f, "invalid close code {c}"),
            Self::InvalidCompressedData => f.write_str("compressed message is not valid deflate"),
            Self::KeepaliveTimeout => f.write_str("no pong before the next keepalive ping"),
            Self::CloseTimeout => f.write_str("no close frame within the close timeout"),
            Self::ConnectionReset => f.write_str("connection closed without a close frame"),
        }
    }
}

impl core::error::Error for Error {}

/// What happened on a connection; drained with [`Connection::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Server role: a valid upgrade request arrived. Inspect it with
    /// [`Connection::request`], then call [`Connection::accept`] or [`Connection::reject`].
    Request,
    /// The opening handshake completed; messages may flow.
    Open,
    /// A Pong arrived (only the latest is kept if several arrive between polls).
    Pong(ControlPayload),
    /// The opening handshake failed; the connection never opened.
    HandshakeFailed(HandshakeError),
    /// The connection closed (it had been open).
    Closed(CloseInfo),
}

/// A command that cannot be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is not open (still connecting, closing or closed).
    NotOpen,
    /// The message does not fit: [`Config::outbound_buffer_size`] bytes or
    /// [`Config::max_outbound_messages`] messages are already queued, or storage is exhausted.
    Full {
        /// Payload bytes queued for the transport when the message was refused.
        queued_bytes: usize,
        /// Messages queued for the transport when the message was refused.
        queued_messages: usize,
    },
    /// A message larger than [`Config::outbound_buffer_size`]: it could never be queued.
    TooLarge {
        /// The largest message accepted.
        max: usize,
    },
    /// A control payload longer than 125 bytes, or a close reason longer than 123.
    ControlTooLong,
    /// A close code that may not be sent on the wire.
    InvalidCloseCode(u16),
    /// Text that is not UTF-8.
    InvalidUtf8,
    /// The request is not in the state this command needs (accept without a request).
    WrongState,
    /// What the application gave for the handshake is invalid.
    Handshake(HandshakeError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOpen => f.write_str("connection is not open"),
            Self::Full { queued_bytes, queued_messages } => {
                write!(f, "outbound queue full ({queued_bytes} bytes in {queued_messages} messages queued)")
            }
            Self::TooLarge { max } => write!(f, "message larger than {max} bytes"),
            Self::ControlTooLong => f.write_str("control payload or close reason too long"),
            Self::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            Self::InvalidUtf8 => f.write_str("text is not UTF-8"),
            Self::WrongState => f.write_str("command not valid in this state"),
            Self::Handshake(e) => write!(f, "handshake: {e}"),
        }
    }
}

impl core::error::Error for SendError {}

#[cfg(test)]
mod tests;
