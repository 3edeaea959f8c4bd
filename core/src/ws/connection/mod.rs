//! The WebSocket connection state machine.

mod accept;
mod buffers;
mod deflate;
mod lifecycle;
mod reader;
mod send;
mod through;
mod writer;

use core::fmt;

use rand_core::CryptoRng;

use super::close::{CloseInfo, CloseReason, ControlPayload};
use super::frame::CloseCode;
use super::handshake::{self, ACCEPT_LEN, ClientRequest, HandshakeError, HeadWriter, KEY_LEN};
use super::{Config, Message, MessageKind, Role, State};
use crate::buffer::Storage;
use crate::queue::{PacketQueue, QueueLimits, ReadError};
use crate::time::Instant;

use reader::Reader;
use writer::OutQueue;
#[cfg(feature = "alloc")]
pub use writer::SharedFrame;

/// Pongs allowed to wait for the transport before the connection stops reading (so a ping
/// flood is slowed by TCP back-pressure instead of growing memory or dropping answers).
const MAX_PENDING_PONGS: usize = 8;

/// Where mask keys come from: a cryptographic RNG for clients, nothing for servers.
pub trait MaskKeys {
    /// The key for the next frame, or `None` when this end does not mask (server).
    fn next_mask(&mut self) -> Option<[u8; 4]>;
}

impl<R: CryptoRng> MaskKeys for R {
    fn next_mask(&mut self) -> Option<[u8; 4]> {
        Some(self.next_u32().to_ne_bytes())
    }
}

/// The "RNG" of a server connection, which never masks and so needs no randomness.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRng;

impl MaskKeys for NoRng {
    fn next_mask(&mut self) -> Option<[u8; 4]> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Client: the request is queued; waiting for the response head.
    AwaitingResponse,
    /// Server: reading the request head.
    ReadingRequest,
    /// Server: the request is valid; the application decides.
    AwaitingAccept,
    Open,
    /// We sent Close and wait for the peer's.
    CloseSent,
    /// Nothing more is read or sent (a client may still wait for the server to close TCP).
    Closed,
}

#[derive(Debug, Default)]
struct Timers {
    handshake: Option<Instant>,
    close: Option<Instant>,
    ping: Option<Instant>,
    /// When to give back buffer storage that is no longer needed.
    release: Option<Instant>,
    /// When storage that had carried data was last given back as soon as it emptied (see
    /// `hold_buffers`).
    released_at: Option<Instant>,
    /// A data message was sent or read since storage was last given back.
    carried_data: bool,
    awaiting_pong: bool,
}

#[derive(Debug, Default)]
struct Pending {
    request: bool,
    open: bool,
    pong: Option<ControlPayload>,
    end: bool,
}

/// The Close we sent, then how the connection ended: never both at once, so one field.
#[derive(Debug, Clone)]
enum CloseRecord {
    None,
    /// We sent a Close with this code and reason and wait for the answer.
    Sent(CloseCode, CloseReason),
    /// How the connection ended.
    Done(CloseInfo),
}

impl CloseRecord {
    /// The Close we sent (1000 without a reason if none was recorded).
    fn sent(&self) -> (CloseCode, CloseReason) {
        match self {
            Self::Sent(code, reason) => (*code, reason.clone()),
            _ => (CloseCode::NORMAL, CloseReason::default()),
        }
    }
}

/// One WebSocket connection, client or server, as a sans-IO state machine.
///
/// `S` chooses the storage ([`VecStorage`](crate::VecStorage) with `alloc`,
/// [`FixedStorage`](crate::FixedStorage) without); `R` supplies mask keys (a
/// [`CryptoRng`] for clients, [`NoRng`] for servers).
///
/// Drive it as the crate documentation describes: feed transport bytes to
/// [`handle_input`](Self::handle_input) (and end of stream to
/// [`handle_eof`](Self::handle_eof)), write what [`poll_transmit`](Self::poll_transmit) returns,
/// read messages with [`peek_message`](Self::peek_message)/[`pop_message`](Self::pop_message),
/// drain [`poll_event`](Self::poll_event), and call [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout). When [`is_finished`](Self::is_finished) is true and
/// nothing is left to transmit, release the transport.
pub struct Connection<S: Storage, R: MaskKeys = NoRng> {
    role: Role,
    phase: Phase,
    config: Config,
    rng: R,
    inbound: PacketQueue<S::Inbound>,
    out: OutQueue<S::Outbound>,
    reader: Reader,
    /// Client: the expected `Sec-WebSocket-Accept`; server: the one to send.
    accept: [u8; ACCEPT_LEN],
    /// Client: bytes of the offered protocol list kept in front of the response head.
    offered_len: usize,
    /// Terminator bytes (`\r\n\r\n`) matched at the end of the head so far.
    head_match: u8,
    protocol: heapless::Vec<u8, { handshake::MAX_PROTOCOL_LEN }>,
    /// permessage-deflate, once negotiated.
    deflate: deflate::Deflate,
    timers: Timers,
    pending: Pending,
    close: CloseRecord,
    handshake_error: Option<HandshakeError>,
    /// The transport may be released once nothing is left to transmit.
    finished: bool,
    /// The latest time any call gave (commands carry none; timers they arm count from here).
    now: Instant,
}

impl<S: Storage, R: MaskKeys> fmt::Debug for Connection<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("queued_messages", &self.inbound.len())
            .field("transmit_bytes", &self.out.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Connection<S, NoRng> {
    /// A server connection for a transport just accepted; it waits for the upgrade request.
    #[must_use]
    pub fn server(now: Instant, config: Config) -> Self {
        Self::new(now, Role::Server, Phase::ReadingRequest, config, NoRng)
    }
}

impl<S: Storage, R: CryptoRng> Connection<S, R> {
    /// A client connection; the upgrade request is queued for transmission at once.
    ///
    /// The 16-byte key comes from `rng`, which also supplies every frame's mask.
    ///
    /// # Errors
    /// [`HandshakeError::InvalidHeaderLine`] for an extra header or protocol name that cannot
    /// be sent; [`HandshakeError::HeadTooLarge`] when the request does not fit.
    pub fn client(
        now: Instant,
        request: &ClientRequest<'_>,
        config: Config,
        mut rng: R,
    ) -> Result<Self, HandshakeError> {
        request.check()?;
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let key = handshake::key_from_nonce(nonce);
        let mut conn = Self::new(now, Role::Client, Phase::AwaitingResponse, config, rng);
        conn.accept = handshake::accept_key(&key);
        conn.queue_request(request, &key)?;
        Ok(conn)
    }

    fn queue_request(
        &mut self,
        request: &ClientRequest<'_>,
        key: &[u8; KEY_LEN],
    ) -> Result<(), HandshakeError> {
        let too_large = HandshakeError::HeadTooLarge { limit: self.config.max_handshake_size };
        let extensions = self.extension_offer();
        let mut counter = HeadWriter::counter();
        request.write(&mut counter, key, &extensions);
        let len = counter.len();
        if len > self.config.max_handshake_size {
            return Err(too_large);
        }
        self.out
            .push_raw(len, self.config.max_handshake_size, |dst| {
                request.write(&mut HeadWriter::into_slice(dst), key, &extensions);
            })
            .map_err(|()| too_large)?;
        // The offered list is kept in front of the response head to check the server's choice.
        let scratch = self.inbound.scratch();
        for (i, p) in request.protocols.iter().enumerate() {
            if i > 0 {
                scratch.push(b",", self.config.max_handshake_size).map_err(|_| too_large)?;
            }
            scratch.push(p.trim().as_bytes(), self.config.max_handshake_size).map_err(|_| too_large)?;
        }
        self.offered_len = scratch.len();
        Ok(())
    }
}

impl<S: Storage, R: MaskKeys> Connection<S, R> {
    fn new(now: Instant, role: Role, phase: Phase, config: Config, rng: R) -> Self {
        let config = config.clamped();
        let limits =
            QueueLimits { max_bytes: config.max_message_size, max_packets: config.max_queued_messages };
        Self {
            role,
            phase,
            config,
            rng,
            inbound: PacketQueue::new(limits),
            out: OutQueue::default(),
            reader: Reader::default(),
            accept: [0; ACCEPT_LEN],
            offered_len: 0,
            head_match: 0,
            protocol: heapless::Vec::new(),
            deflate: deflate::Deflate::default(),
            timers: Timers { handshake: Some(now + config.handshake_timeout), ..Timers::default() },
            pending: Pending::default(),
            close: CloseRecord::None,
            handshake_error: None,
            finished: false,
            now,
        }
    }

    // ----- getters -------------------------------------------------------------------------

    /// Client or server.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The state, as Godot's `get_ready_state()` reports it.
    #[must_use]
    pub fn state(&self) -> State {
        match self.phase {
            Phase::AwaitingResponse | Phase::ReadingRequest | Phase::AwaitingAccept => State::Connecting,
            Phase::Open => State::Open,
            Phase::CloseSent => State::Closing,
            Phase::Closed => State::Closed,
        }
    }

    /// The limits and timers in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The negotiated subprotocol (Godot: `get_selected_protocol`).
    #[must_use]
    pub fn protocol(&self) -> Option<&str> {
        core::str::from_utf8(&self.protocol).ok().filter(|p| !p.is_empty())
    }

    /// How the connection ended, once it has (Godot: `get_close_code`, `get_close_reason`).
    #[must_use]
    pub fn close_info(&self) -> Option<&CloseInfo> {
        match &self.close {
            CloseRecord::Done(info) => Some(info),
            _ => None,
        }
    }

    /// Why the opening handshake failed, if it did.
    #[must_use]
    pub fn handshake_error(&self) -> Option<HandshakeError> {
        self.handshake_error
    }

    /// Whether the transport may be released once [`poll_transmit`](Self::poll_transmit)
    /// returns `None`.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Bytes waiting for the transport (Godot: `get_current_outbound_buffered_amount`).
    #[must_use]
    pub fn buffered_amount(&self) -> usize {
        self.out.len()
    }

    /// Outgoing messages not yet fully written to the transport.
    #[must_use]
    pub fn queued_outbound_messages(&self) -> usize {
        self.out.data_messages
    }

    /// Received messages waiting to be read (Godot: `get_available_packet_count`).
    #[must_use]
    pub fn available_messages(&self) -> usize {
        self.inbound.len()
    }

    /// Bytes of heap or fixed storage the queues (and a permessage-deflate compressor and
    /// decompressor, once used) hold now (not counting `Self`).
    #[must_use]
    pub fn buffer_footprint(&self) -> usize {
        self.inbound.footprint() + self.out.footprint() + self.deflate_footprint()
    }

    fn fail_handshake(&mut self, error: HandshakeError) {
        self.phase = Phase::Closed;
        self.finished = true;
        self.timers = Timers::default();
        self.inbound.clear();
        if self.handshake_error.is_none() && !self.pending.end {
            self.handshake_error = Some(error);
            self.pending.end = true;
        }
    }

    fn open(&mut self, now: Instant) {
        self.phase = Phase::Open;
        self.pending.open = true;
        self.timers.handshake = None;
        self.timers.ping = self.config.heartbeat_interval.map(|i| now + i);
        // The handshake head is done with; the inbound buffer becomes the message queue.
        let scratch = self.inbound.scratch();
        let len = scratch.len();
        scratch.consume(len);
        // An idle connection holds no buffer: give back what the head needed.
        scratch.release();
        self.offered_len = 0;
    }

    // ----- reading messages ----------------------------------------------------------------

    /// The oldest received message, without removing it.
    #[must_use]
    pub fn peek_message(&self) -> Option<Message<'_>> {
        self.inbound.front().map(|p| Message { kind: MessageKind::from_meta(p.meta), data: p.payload })
    }

    /// The received messages, oldest first, without removing them (to read or forward several
    /// at once).
    pub fn messages(&self) -> impl Iterator<Item = Message<'_>> + '_ {
        self.inbound.iter().map(|p| Message { kind: MessageKind::from_meta(p.meta), data: p.payload })
    }

    /// Removes the oldest received message; returns whether there was one.
    ///
    /// Reading frees room: if [`handle_input`](Self::handle_input) accepted fewer bytes than it
    /// was offered, offer the rest again.
    pub fn pop_message(&mut self) -> bool {
        let popped = self.pop_message_in_batch();
        if popped {
            self.hold_buffers();
        }
        popped
    }

    /// [`pop_message`](Self::pop_message) for a caller removing several messages in a row,
    /// which calls [`end_pop_batch`](Self::end_pop_batch) after the last: whether to keep the
    /// storage is decided once, on what the batch left.
    pub(crate) fn pop_message_in_batch(&mut self) -> bool {
        let popped = self.inbound.pop();
        if popped {
            self.timers.carried_data = true;
            self.finish_held_frame();
        }
        popped
    }

    /// Ends a run of [`pop_message_in_batch`](Self::pop_message_in_batch) that removed
    /// messages.
    pub(crate) fn end_pop_batch(&mut self) {
        self.hold_buffers();
    }

    /// Copies the oldest message into `dst` and removes it.
    ///
    /// # Errors
    /// [`ReadError::Empty`]; [`ReadError::TooSmall`] (the message stays queued).
    pub fn recv(&mut self, dst: &mut [u8]) -> Result<(MessageKind, usize), ReadError> {
        let read = self.inbound.pop_into(dst).map(|(meta, len)| (MessageKind::from_meta(meta), len))?;
        self.timers.carried_data = true;
        self.finish_held_frame();
        self.hold_buffers();
        Ok(read)
    }

    // ----- output and timers ---------------------------------------------------------------

    /// The bytes to write to the transport next, if any.
    ///
    /// They stay queued until [`consume_transmit`](Self::consume_transmit) reports how many the
    /// transport took, so a partial write loses and duplicates nothing.
    #[must_use]
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        (!self.out.is_empty()).then(|| self.out.front())
    }

    /// Everything waiting for the transport, in order, as up to `out.len()` slices (for one
    /// vectored write); returns how many were filled. Report what was written with
    /// [`consume_transmit`](Self::consume_transmit).
    pub fn transmit_chunks<'a>(&'a self, out: &mut [&'a [u8]]) -> usize {
        self.out.chunks(out)
    }

    /// Records that the transport accepted the first `n` bytes of
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn consume_transmit(&mut self, n: usize) {
        self.out.consume(n);
        self.hold_buffers();
    }
}

#[cfg(test)]
mod tests;
