//! The WebSocket connection state machine.

mod accept;
mod buffers;
mod deflate;
mod reader;
mod writer;

use core::fmt;

use rand_core::CryptoRng;

use super::close::{CloseInfo, CloseReason, ControlPayload, Initiator};
use super::frame::{CloseCode, FrameHeader, MAX_CONTROL_PAYLOAD, OpCode};
use super::handshake::{self, ACCEPT_LEN, ClientRequest, HandshakeError, HeadWriter, KEY_LEN};
use super::{Config, Error, Event, Message, MessageKind, Role, SendError, State};
use crate::buffer::Storage;
use crate::queue::{PacketQueue, QueueLimits, ReadError};
use crate::time::{Instant, earliest};

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

    // ----- commands ------------------------------------------------------------------------

    /// Queues a message as one frame (Godot: `send`, `put_packet`).
    ///
    /// # Errors
    /// [`SendError::NotOpen`]; [`SendError::Full`] when the outbound limits would be exceeded
    /// (the message is not queued, nothing is half-written); [`SendError::InvalidUtf8`] for a
    /// text message that is not UTF-8.
    pub fn send(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        if kind == MessageKind::Text && core::str::from_utf8(payload).is_err() {
            return Err(SendError::InvalidUtf8);
        }
        self.send_unchecked(kind.opcode(), payload)
    }

    /// Queues a text message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_unchecked(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_unchecked(OpCode::Binary, data)
    }

    /// Whether a message of `len` bytes would be accepted by [`send`](Self::send) now.
    #[must_use]
    pub fn can_send(&self, len: usize) -> bool {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: (self.role == Role::Client).then_some([0; 4]),
            payload_len: len as u64,
        };
        // The limits alone are not enough: pings the application queued, or a handshake head
        // not yet written, may hold the storage the frame needs.
        self.within_limits(len)
            && self.out.has_data_room(header.encoded_len().saturating_add(len), self.data_limit())
    }

    /// Whether a message of `len` bytes stays within the outbound limits.
    fn within_limits(&self, len: usize) -> bool {
        self.phase == Phase::Open
            && len <= self.config.outbound_buffer_size
            && self.out.data_messages < self.config.max_outbound_messages
            && self.out.data_bytes.saturating_add(len) <= self.config.outbound_queue_limit()
    }

    /// Queues one message whose payload is `parts` concatenated, without joining them first
    /// (a protocol header and the application's bytes, say).
    ///
    /// # Errors
    /// As [`send`](Self::send); text must be UTF-8 as a whole.
    pub fn send_parts(&mut self, kind: MessageKind, parts: &[&[u8]]) -> Result<(), SendError> {
        if kind == MessageKind::Text {
            let mut utf8 = crate::ws::utf8::Utf8Validator::new();
            for part in parts {
                utf8.feed(part).map_err(|_| SendError::InvalidUtf8)?;
            }
            if !utf8.is_complete() {
                return Err(SendError::InvalidUtf8);
            }
        }
        self.send_frame(kind.opcode(), parts)
    }

    /// Queues a frame shared with other connections (a server broadcast): no copy of the
    /// payload is made. A client, which must mask, copies it instead.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    #[cfg(feature = "alloc")]
    pub fn send_shared(&mut self, frame: &writer::SharedFrame) -> Result<(), SendError> {
        if self.role == Role::Client {
            return self.send_frame(frame.opcode(), &[frame.payload()]);
        }
        if self.phase != Phase::Open {
            return Err(SendError::NotOpen);
        }
        let max = self.config.outbound_buffer_size;
        if frame.payload().len() > max {
            return Err(SendError::TooLarge { max });
        }
        // A shared frame takes no room in this connection's storage.
        if !self.within_limits(frame.payload().len()) {
            return Err(self.full());
        }
        self.out.push_shared(frame.clone());
        self.hold_buffers();
        Ok(())
    }

    fn send_unchecked(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        self.send_frame(opcode, &[payload])
    }

    fn send_frame(&mut self, opcode: OpCode, parts: &[&[u8]]) -> Result<(), SendError> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        // The limits are checked with the uncompressed length: a compressed message is only
        // sent when it is shorter, so it fits too.
        let mut header = self.data_frame_header(opcode, len)?;
        let full = self.full_error();
        let compressed = Self::compress_message(&mut self.deflate, &mut header, parts);
        let parts = match &compressed {
            Some(payload) => &[&payload[..]],
            None => parts,
        };
        self.out.push_frame(header, parts, self.data_limit()).map_err(|()| full)?;
        self.timers.carried_data = true;
        self.hold_buffers();
        Ok(())
    }

    /// Queues the oldest received message as one outgoing frame of the same kind, and removes
    /// it (an echo server, a proxy answering with what it read). The payload goes from the
    /// inbound queue straight into the outbound one: one copy, where
    /// [`peek_message`](Self::peek_message) + [`send`](Self::send) need a second through a
    /// buffer of the caller's. Returns the kind forwarded, or `None` when no message is queued.
    ///
    /// # Errors
    /// As [`send`](Self::send) (a received text message is already known to be UTF-8); on an
    /// error the message stays queued.
    pub fn forward_message(&mut self) -> Result<Option<MessageKind>, SendError> {
        let Some(front) = self.inbound.front() else { return Ok(None) };
        let (kind, len) = (MessageKind::from_meta(front.meta), front.payload.len());
        let mut header = self.data_frame_header(kind.opcode(), len)?;
        let (full, limit) = (self.full_error(), self.data_limit());
        // Distinct fields: the inbound queue is read while the outbound one is written.
        let payload = self.inbound.front().map_or(&[][..], |p| p.payload);
        let compressed = Self::compress_message(&mut self.deflate, &mut header, &[payload]);
        let payload = compressed.as_ref().map_or(payload, |c| &c[..]);
        self.out.push_frame(header, &[payload], limit).map_err(|()| full)?;
        self.pop_message();
        Ok(Some(kind))
    }

    /// The header of a data frame of `len` bytes, once the frame is known to fit.
    fn data_frame_header(&mut self, opcode: OpCode, len: usize) -> Result<FrameHeader, SendError> {
        if self.phase != Phase::Open {
            return Err(SendError::NotOpen);
        }
        let max = self.config.outbound_buffer_size;
        if len > max {
            return Err(SendError::TooLarge { max });
        }
        if !self.can_send(len) {
            return Err(self.full_error());
        }
        Ok(FrameHeader { fin: true, rsv: 0, opcode, mask: self.rng.next_mask(), payload_len: len as u64 })
    }

    fn full_error(&self) -> SendError {
        SendError::Full { queued_bytes: self.out.data_bytes, queued_messages: self.out.data_messages }
    }

    /// Physical bound of the outbound buffer for data: payload limit plus frame headers.
    fn data_limit(&self) -> usize {
        let headers = self.config.max_outbound_messages.saturating_mul(super::frame::MAX_HEADER_LEN);
        self.config.outbound_queue_limit().saturating_add(headers)
    }

    /// Queues a Ping with `payload` (at most 125 bytes); the answer arrives as [`Event::Pong`].
    ///
    /// # Errors
    /// [`SendError::NotOpen`], [`SendError::ControlTooLong`]; [`SendError::Full`] when the
    /// outbound storage has no room left for the frame.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        if self.phase != Phase::Open {
            return Err(SendError::NotOpen);
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong);
        }
        self.push_control(OpCode::Ping, payload).map_err(|()| self.full())
    }

    fn full(&self) -> SendError {
        SendError::Full { queued_bytes: self.out.data_bytes, queued_messages: self.out.data_messages }
    }

    /// Queues a control frame in the slack reserved beyond the data limit. It fails only when
    /// storage itself is exhausted (fixed storage filled with data): the reader then holds back
    /// pings and closes until their answer fits, and commands report [`SendError::Full`].
    fn push_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), ()> {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: self.rng.next_mask(),
            payload_len: payload.len() as u64,
        };
        self.out.push_frame(header, &[payload], self.data_limit())
    }

    /// Whether the answer to a control frame (a pong or a close echo) can be queued now.
    fn has_control_room(&mut self) -> bool {
        let limit = self.data_limit();
        self.out.has_control_room(super::frame::MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD, limit)
    }

    /// Starts the closing handshake (Godot: `close(code, reason)`).
    ///
    /// While connecting, the handshake is abandoned instead ([`Event::HandshakeFailed`] with
    /// [`HandshakeError::ConnectionClosed`]). Closing twice does nothing.
    ///
    /// # Errors
    /// [`SendError::InvalidCloseCode`] for codes that may not be sent (1005, 1006, 1015, …);
    /// [`SendError::ControlTooLong`] for a reason over 123 bytes; [`SendError::Full`] when the
    /// outbound storage has no room left for the Close frame (nothing changes; retry after
    /// writing output).
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        let reason_buf = CloseReason::new(reason).ok_or(SendError::ControlTooLong)?;
        match self.phase {
            Phase::Open => {
                let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
                payload[..2].copy_from_slice(&code.0.to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
                self.push_control(OpCode::Close, &payload[..2 + reason.len()]).map_err(|()| self.full())?;
                self.close = CloseRecord::Sent(code, reason_buf);
                self.phase = Phase::CloseSent;
                self.timers.ping = None;
                self.timers.close = Some(now + self.config.close_timeout);
            }
            Phase::AwaitingResponse | Phase::ReadingRequest | Phase::AwaitingAccept => {
                self.out.clear();
                self.fail_handshake(HandshakeError::ConnectionClosed);
            }
            Phase::CloseSent | Phase::Closed => {}
        }
        Ok(())
    }

    /// Restarts the close timeout from `now` if a Close was sent and its answer is awaited:
    /// for a close started by a caller that did not know the time.
    pub fn restart_close_timer(&mut self, now: Instant) {
        if self.phase == Phase::CloseSent {
            self.timers.close = Some(now + self.config.close_timeout);
        }
    }

    /// Ends the connection at once without a closing handshake (Godot: `close(-1)`); the
    /// transport may be released immediately.
    pub fn abort(&mut self) {
        self.out.clear();
        match self.phase {
            Phase::Open | Phase::CloseSent => {
                self.end(CloseCode::ABNORMAL, "", Initiator::Local, None, false);
            }
            Phase::AwaitingResponse | Phase::ReadingRequest | Phase::AwaitingAccept => {
                self.fail_handshake(HandshakeError::ConnectionClosed);
            }
            Phase::Closed => {}
        }
        self.phase = Phase::Closed;
        self.finished = true;
        self.timers = Timers::default();
    }

    /// Records the end of an open connection and schedules the transport release.
    fn end(
        &mut self,
        code: CloseCode,
        reason: &str,
        initiator: Initiator,
        error: Option<Error>,
        clean: bool,
    ) {
        self.phase = Phase::Closed;
        self.timers.ping = None;
        if !matches!(self.close, CloseRecord::Done(_)) {
            let reason = CloseReason::truncated(reason);
            self.close = CloseRecord::Done(CloseInfo { code, reason, initiator, error, clean });
            self.pending.end = true;
        }
    }

    // ----- reading messages ----------------------------------------------------------------

    /// The oldest received message, without removing it.
    #[must_use]
    pub fn peek_message(&self) -> Option<Message<'_>> {
        self.inbound.front().map(|p| Message { kind: MessageKind::from_meta(p.meta), data: p.payload })
    }

    /// Removes the oldest received message; returns whether there was one.
    ///
    /// Reading frees room: if [`handle_input`](Self::handle_input) accepted fewer bytes than it
    /// was offered, offer the rest again.
    pub fn pop_message(&mut self) -> bool {
        let popped = self.inbound.pop();
        if popped {
            self.timers.carried_data = true;
            self.finish_held_frame();
            self.hold_buffers();
        }
        popped
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

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if core::mem::take(&mut self.pending.request) {
            return Some(Event::Request);
        }
        if core::mem::take(&mut self.pending.open) {
            return Some(Event::Open);
        }
        if let Some(p) = self.pending.pong.take() {
            return Some(Event::Pong(p));
        }
        if core::mem::take(&mut self.pending.end) {
            if let Some(e) = self.handshake_error {
                return Some(Event::HandshakeFailed(e));
            }
            return self.close_info().cloned().map(Event::Closed);
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = &self.timers;
        earliest(earliest(earliest(t.handshake, t.close), t.ping), t.release)
    }

    /// Fires the timers due at `now`; calling it early or twice does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.timers.release.is_some_and(|t| now >= t) {
            self.timers.release = None;
            // Only what is empty goes; storage still in use is looked at again later.
            self.inbound.release_if_empty();
            self.out.release_if_empty();
        }
        if self.timers.handshake.is_some_and(|t| now >= t) {
            self.timers.handshake = None;
            match self.phase {
                Phase::ReadingRequest | Phase::AwaitingAccept => {
                    let e = HandshakeError::Timeout;
                    self.reject_with(e.http_status(), &e, e);
                }
                Phase::AwaitingResponse => {
                    self.out.clear();
                    self.fail_handshake(HandshakeError::Timeout);
                }
                _ => {}
            }
        }
        if self.timers.close.is_some_and(|t| now >= t) {
            self.timers.close = None;
            if self.phase == Phase::CloseSent {
                let (code, reason) = self.close.sent();
                self.end(code, reason.as_str(), Initiator::Local, Some(Error::CloseTimeout), false);
                self.out.clear();
            }
            // A client that waited for the server to close TCP stops waiting.
            self.finished = true;
        }
        if let Some(due) = self.timers.ping.filter(|&t| now >= t) {
            if self.phase != Phase::Open {
                self.timers.ping = None;
            } else if self.timers.awaiting_pong {
                self.out.clear();
                let e = Error::KeepaliveTimeout;
                self.end(e.close_code(), "", Initiator::Library, Some(e), false);
                self.finished = true;
            } else {
                // A ping that finds no room (storage full of data) is skipped, not awaited.
                self.timers.awaiting_pong = self.push_control(OpCode::Ping, &[]).is_ok();
                let interval = self.config.heartbeat_interval.unwrap_or_default();
                self.timers.ping = Some(due.max(now) + interval);
            }
        }
        // Whatever is still held is looked at again a delay from now.
        self.hold_buffers();
    }

    /// Reports that the transport's read side ended (EOF or reset).
    pub fn handle_eof(&mut self, _now: Instant) {
        match self.phase {
            Phase::AwaitingResponse | Phase::ReadingRequest | Phase::AwaitingAccept => {
                self.out.clear();
                self.fail_handshake(HandshakeError::ConnectionClosed);
            }
            Phase::Open => {
                self.out.clear();
                let e = Error::ConnectionReset;
                self.end(e.close_code(), "", Initiator::Remote, Some(e), false);
            }
            Phase::CloseSent => {
                // Our Close went unanswered, as when the close times out: the code sent is
                // the one on record (Godot's `get_close_code()`: received, else sent).
                self.out.clear();
                let (code, reason) = self.close.sent();
                self.end(code, reason.as_str(), Initiator::Local, Some(Error::ConnectionReset), false);
            }
            Phase::Closed => {}
        }
        self.timers = Timers::default();
        self.finished = true;
    }
}

#[cfg(test)]
mod tests;
