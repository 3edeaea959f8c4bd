//! The inbound side: handshake heads, then frames reassembled into the message queue.
//!
//! Input is consumed as far as it can be and no further: when the message queue is full (or
//! too many pongs wait for the transport) the rest is left with the caller, which offers it
//! again after draining. A message's payload is unmasked and UTF-8-checked straight into its
//! place in the queue, so nothing is buffered twice and an oversized message is refused from
//! its header alone.

use super::{Connection, MAX_PENDING_PONGS, Phase};
use crate::buffer::Storage;
use crate::copy::copy_bytes;
use crate::queue::QueueFull;
use crate::time::Instant;
use crate::ws::close::{CloseReason, ControlPayload, Initiator, parse_close};
use crate::ws::connection::MaskKeys;
use crate::ws::frame::{CloseCode, FrameError, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use crate::ws::handshake::{self, HandshakeError};
use crate::ws::mask::{apply_mask, copy_masked};
use crate::ws::utf8::Utf8Validator;
use crate::ws::{Error, MAX_HEADERS, MessageKind, Role};

/// A frame whose header has been read and whose payload is arriving.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameState {
    opcode: OpCode,
    pub(super) fin: bool,
    pub(super) mask: Option<[u8; 4]>,
    pub(super) remaining: u64,
    /// Payload bytes already read, modulo 256, for the mask rotation (only the count modulo 4
    /// matters; a byte keeps the connection within its size budget).
    pub(super) offset: u8,
}

/// A data message in progress (possibly across several frames).
#[derive(Debug, Clone, Copy)]
pub(super) struct MessageState {
    pub(super) kind: MessageKind,
    fragments: usize,
    received: u64,
    pub(super) utf8: Utf8Validator,
    /// Whether its packet has been started in the inbound queue.
    started: bool,
    /// Sent compressed (RSV1 on its first frame, permessage-deflate).
    compressed: bool,
}

#[derive(Debug, Default)]
pub(super) struct Reader {
    header: [u8; MAX_HEADER_LEN],
    /// At most `MAX_HEADER_LEN` (14); a byte keeps the connection within its size budget.
    header_len: u8,
    pub(super) frame: Option<FrameState>,
    pub(super) message: Option<MessageState>,
    control: heapless::Vec<u8, MAX_CONTROL_PAYLOAD>,
}

impl<S: Storage, R: MaskKeys> Connection<S, R> {
    /// Takes bytes read from the transport; returns how many were accepted.
    ///
    /// Fewer than offered means back-pressure: keep the rest and offer it again after
    /// reading messages ([`pop_message`](Self::pop_message)) or writing pending output
    /// ([`poll_transmit`](Self::poll_transmit)), or after an accept decision. Once the
    /// connection is closed, input is accepted and discarded.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        self.now = self.now.max(now);
        let used = self.read_input(now, input);
        self.hold_buffers();
        used
    }

    fn read_input(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut at = 0;
        loop {
            let phase = self.phase;
            let rest = &input[at..];
            let used = match phase {
                Phase::ReadingRequest | Phase::AwaitingResponse => self.read_head(now, rest),
                Phase::AwaitingAccept => 0,
                Phase::Open | Phase::CloseSent => self.read_frames(now, rest),
                Phase::Closed => rest.len(),
            };
            at += used;
            if at == input.len() || (used == 0 && self.phase == phase) {
                return at;
            }
        }
    }

    /// Accumulates the handshake head until its blank line; bytes after it are left alone.
    fn read_head(&mut self, now: Instant, input: &[u8]) -> usize {
        // A request starts with a method token (or an empty line, RFC 9112 §2.2): anything else
        // — a TLS ClientHello on a plain port, say — is refused at once, not at the timeout.
        let first_byte = self.inbound.scratch_slice().len() == self.offered_len;
        if let (Role::Server, true, Some(&b)) = (self.role, first_byte, input.first()) {
            if !handshake::is_token_char(b) && b != b'\r' && b != b'\n' {
                let e = HandshakeError::MalformedHttp;
                self.reject_with(e.http_status(), &e, e);
                return input.len();
            }
        }
        let mut end = None;
        for (i, &b) in input.iter().enumerate() {
            self.head_match = match (self.head_match, b) {
                (0 | 2, b'\r') => self.head_match + 1,
                (1 | 3, b'\n') => self.head_match + 1,
                (_, b'\r') => 1,
                _ => 0,
            };
            if self.head_match == 4 {
                end = Some(i + 1);
                break;
            }
        }
        let take = end.unwrap_or(input.len());
        let limit = self.config.max_handshake_size;
        let scratch = self.inbound.scratch();
        let head_so_far = scratch.len() - self.offered_len;
        if head_so_far + take > limit || scratch.push(&input[..take], limit + self.offered_len).is_err() {
            let e = HandshakeError::HeadTooLarge { limit };
            match self.role {
                Role::Server => self.reject_with(e.http_status(), &e, e),
                Role::Client => self.fail_handshake(e),
            }
            return take;
        }
        if end.is_some() {
            match self.role {
                Role::Server => self.finish_request(),
                Role::Client => self.finish_response(now),
            }
        }
        take
    }

    fn finish_request(&mut self) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let result =
            handshake::parse_request(self.inbound.scratch_slice(), &mut headers[..self.config.max_headers])
                .map(|req| handshake::accept_key(req.key()));
        match result {
            Ok(accept) => {
                self.accept = accept;
                self.phase = Phase::AwaitingAccept;
                self.pending.request = true;
            }
            Err(e) => self.reject_with(e.http_status(), &e, e),
        }
    }

    fn finish_response(&mut self, now: Instant) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let all = self.inbound.scratch_slice();
        let (offered, head) = all.split_at(self.offered_len);
        let headers = &mut headers[..self.config.max_headers];
        #[cfg(feature = "deflate")]
        let result = handshake::validate_response_with(
            head,
            &self.accept,
            offered,
            headers,
            self.config.permessage_deflate.is_some(),
        );
        #[cfg(not(feature = "deflate"))]
        let result = handshake::validate_response(head, &self.accept, offered, headers);
        let result = result.map(|r| {
            heapless::Vec::<u8, { handshake::MAX_PROTOCOL_LEN }>::from_slice(r.protocol.unwrap_or(b""))
        });
        #[cfg(feature = "deflate")]
        let result = result.and_then(|protocol| {
            let agreed =
                super::deflate::negotiate_response(self.config.permessage_deflate.as_ref(), headers)?;
            Ok((protocol, agreed))
        });
        #[cfg(not(feature = "deflate"))]
        let result = result.map(|protocol| (protocol, ()));
        match result {
            Ok((Ok(protocol), _agreed)) => {
                self.protocol = protocol;
                #[cfg(feature = "deflate")]
                self.start_deflate(_agreed);
                self.open(now);
            }
            // The server chose a name longer than any we could have offered.
            Ok((Err(_), _)) => self.fail_handshake(HandshakeError::UnofferedProtocol),
            Err(e) => self.fail_handshake(e),
        }
    }

    /// Reads frames until the input runs out, back-pressure applies, or the connection ends.
    fn read_frames(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut at = 0;
        while matches!(self.phase, Phase::Open | Phase::CloseSent) {
            let Some(frame) = self.reader.frame else {
                // A header that arrived whole in this input can be left unconsumed.
                let whole = self.reader.header_len == 0;
                let checked = match self.read_header(&input[at..]) {
                    Ok(HeaderRead::Complete(header, used)) => {
                        self.check_frame(&header).map(|()| (header, used))
                    }
                    Ok(HeaderRead::Partial(used)) => return at + used,
                    Ok(HeaderRead::Blocked) => return at,
                    Err(e) => Err(e),
                };
                match checked {
                    Ok((header, used)) => {
                        at += used;
                        self.start_frame(header);
                    }
                    // Messages that arrived before the bad frame are the application's to read
                    // first (RFC 6455 processes a stream in order): hold the bad frame back
                    // until they are read, then fail.
                    Err(_) if whole && !self.inbound.is_empty() => return at,
                    Err(e) => {
                        self.fail(e);
                        return input.len();
                    }
                }
                continue;
            };
            let rest = &input[at..];
            if frame.opcode.is_control() {
                let take = usize::try_from(frame.remaining).unwrap_or(usize::MAX).min(rest.len());
                let start = self.reader.control.len();
                // Cannot fail: the header check bounds control payloads by the Vec's capacity.
                let _ = self.reader.control.extend_from_slice(&rest[..take]);
                if let Some(key) = frame.mask {
                    apply_mask(&mut self.reader.control[start..], key, usize::from(frame.offset));
                }
                at += take;
                self.advance_frame(take);
                if self.reader.frame.is_some_and(|f| f.remaining == 0) {
                    self.reader.frame = None;
                    self.finish_control(now, frame.opcode);
                } else {
                    return at;
                }
            } else {
                match self.read_data(frame, rest) {
                    Ok((used, done)) => {
                        at += used;
                        if !done {
                            return at;
                        }
                    }
                    Err(e) => {
                        self.fail(e);
                        return input.len();
                    }
                }
            }
        }
        at
    }

    /// Completes a data frame with no payload left to read that waited for room in the queue.
    ///
    /// All its bytes were accepted, so no further input may ever come to finish it: reading a
    /// message must, or an empty message would wait for the peer's next frame.
    pub(super) fn finish_held_frame(&mut self) {
        if !matches!(self.phase, Phase::Open | Phase::CloseSent) {
            return;
        }
        let Some(frame) = self.reader.frame.filter(|f| !f.opcode.is_control() && f.remaining == 0) else {
            return;
        };
        if let Err(e) = self.read_data(frame, &[]) {
            self.fail(e);
        }
    }

    pub(super) fn advance_frame(&mut self, n: usize) {
        if let Some(f) = self.reader.frame.as_mut() {
            f.remaining -= n as u64;
            // Truncation keeps the count modulo 4.
            f.offset = f.offset.wrapping_add(n as u8);
        }
    }

    fn read_header(&mut self, input: &[u8]) -> Result<HeaderRead, Error> {
        let stashed = usize::from(self.reader.header_len);
        let Some(&first) = self.reader.header[..stashed].first().or(input.first()) else {
            return Ok(HeaderRead::Blocked);
        };
        // A ping is answered with a pong; while too many pongs wait for the transport, stop
        // reading so a ping flood meets TCP back-pressure. A ping or a close also waits while
        // its answer would not fit (fixed storage filled with data): never answer by dropping.
        let opcode = first & 0x0f;
        if opcode == OpCode::Ping.bits() && self.out.pongs >= MAX_PENDING_PONGS {
            return Ok(HeaderRead::Blocked);
        }
        if (opcode == OpCode::Ping.bits() || opcode == OpCode::Close.bits()) && !self.has_control_room() {
            return Ok(HeaderRead::Blocked);
        }
        let parsed = if stashed == 0 {
            FrameHeader::parse(input)
        } else {
            let take = (MAX_HEADER_LEN - stashed).min(input.len());
            self.reader.header[stashed..stashed + take].copy_from_slice(&input[..take]);
            FrameHeader::parse(&self.reader.header[..stashed + take])
                .map(|r| r.map(|(h, n)| (h, n - stashed)))
        };
        match parsed {
            Ok(Some((header, used))) => {
                self.reader.header_len = 0;
                Ok(HeaderRead::Complete(header, used))
            }
            Ok(None) => {
                // A partial header is shorter than the longest header, so it fits the stash.
                let take = input.len().min(MAX_HEADER_LEN - stashed);
                self.reader.header[stashed..stashed + take].copy_from_slice(&input[..take]);
                // Below MAX_HEADER_LEN, so it fits a byte.
                self.reader.header_len = (stashed + take) as u8;
                Ok(HeaderRead::Partial(take))
            }
            Err(FrameError::ReservedOpcode(op)) => Err(Error::ReservedOpcode(op)),
            Err(FrameError::LengthOverflow) => Err(Error::LengthOverflow),
        }
    }

    /// Whether a frame with this header may be read now; changes nothing.
    fn check_frame(&self, h: &FrameHeader) -> Result<(), Error> {
        // RSV1 marks a compressed message, on its first frame only (RFC 7692 §6.1).
        let compressed_start = h.rsv == super::deflate::RSV1
            && matches!(h.opcode, OpCode::Text | OpCode::Binary)
            && self.deflate_active();
        if h.rsv != 0 && !compressed_start {
            return Err(Error::ReservedBits(h.rsv));
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(Error::UnmaskedFrame),
            (Role::Client, true) => return Err(Error::MaskedFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            if h.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(Error::ControlFrameTooLong);
            }
            if !h.fin {
                return Err(Error::FragmentedControlFrame);
            }
            return Ok(());
        }
        let (received, compressed) = match (h.opcode, self.reader.message.as_ref()) {
            (OpCode::Continuation, None) => return Err(Error::UnexpectedContinuation),
            (OpCode::Continuation, Some(m)) => {
                if m.fragments >= self.config.max_fragments {
                    return Err(Error::TooManyFragments { limit: self.config.max_fragments });
                }
                (m.received, m.compressed)
            }
            (_, Some(_)) => return Err(Error::ExpectedContinuation),
            (_, None) => (0, compressed_start),
        };
        // Refused from the header alone: nothing of an oversized message is buffered. A
        // compressed message's inflated size is checked as it inflates.
        if received.saturating_add(h.payload_len) > self.wire_limit(compressed) as u64 {
            let limit = self.config.max_message_size;
            return Err(Error::MessageTooBig { limit });
        }
        Ok(())
    }

    /// Starts reading a frame that [`check_frame`](Self::check_frame) accepted.
    fn start_frame(&mut self, h: FrameHeader) {
        if h.opcode.is_control() {
            self.reader.control.clear();
        } else {
            let message = self.reader.message.get_or_insert(MessageState {
                kind: if h.opcode == OpCode::Text { MessageKind::Text } else { MessageKind::Binary },
                fragments: 0,
                received: 0,
                utf8: Utf8Validator::new(),
                started: false,
                compressed: h.rsv == super::deflate::RSV1,
            });
            message.fragments += 1;
            message.received += h.payload_len;
        }
        self.reader.frame = Some(FrameState {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            remaining: h.payload_len,
            offset: 0,
        });
    }

    /// Moves data-frame payload into the open packet. Returns the bytes used and whether the
    /// frame is complete (false: input exhausted or back-pressure).
    fn read_data(&mut self, frame: FrameState, input: &[u8]) -> Result<(usize, bool), Error> {
        let Some(mut message) = self.reader.message else {
            return Err(Error::UnexpectedContinuation);
        };
        if !message.started && frame.fin && message.kind == MessageKind::Binary && !message.compressed {
            let whole = usize::try_from(frame.remaining).ok().and_then(|n| input.get(..n));
            // Without room for all of it, it goes the general way (in as it fits).
            if let Some(payload) = whole.filter(|p| self.inbound.fits(p.len())) {
                return self.read_whole_binary(frame, payload);
            }
        }
        if !message.started {
            match self.inbound.begin(message.kind.meta()) {
                Ok(()) => message.started = true,
                Err(QueueFull::Storage(_)) if self.inbound.is_empty() => {
                    return Err(Error::MessageTooBig { limit: self.config.max_message_size });
                }
                Err(_) => return Ok((0, false)),
            }
        }
        #[cfg(feature = "deflate")]
        if message.compressed {
            return self.read_compressed(frame, message, input);
        }
        let mut used = 0;
        if frame.remaining > 0 {
            let want = usize::try_from(frame.remaining).unwrap_or(usize::MAX).min(input.len());
            let take = want.min(self.inbound.space_left());
            if take > 0 {
                let src = &input[..take];
                let written = match frame.mask {
                    Some(key) => self
                        .inbound
                        .extend_with(take, |dst| copy_masked(dst, src, key, usize::from(frame.offset))),
                    None => self.inbound.extend(src),
                };
                match written {
                    Ok(()) => {}
                    Err(QueueFull::Storage(_)) if self.inbound.is_empty() => {
                        return Err(Error::MessageTooBig { limit: self.config.max_message_size });
                    }
                    Err(_) => {
                        self.reader.message = Some(message);
                        return Ok((0, false));
                    }
                }
                if message.kind == MessageKind::Text {
                    let payload = self.inbound.open_payload();
                    let fresh = &payload[payload.len() - take..];
                    message.utf8.feed(fresh).map_err(|_| Error::InvalidUtf8)?;
                }
                used = take;
                self.advance_frame(take);
            }
        }
        self.reader.message = Some(message);
        if self.reader.frame.is_some_and(|f| f.remaining > 0) {
            return Ok((used, false));
        }
        self.reader.frame = None;
        if frame.fin {
            if message.kind == MessageKind::Text && !message.utf8.is_complete() {
                return Err(Error::InvalidUtf8);
            }
            self.inbound.commit();
            self.reader.message = None;
        }
        Ok((used, true))
    }

    /// [`read_data`](Self::read_data) of a binary message whose one frame is all in `payload`:
    /// queued in one step (the most common message; a text one is checked while it is
    /// copied, a fragmented or compressed one is put together).
    fn read_whole_binary(&mut self, frame: FrameState, payload: &[u8]) -> Result<(usize, bool), Error> {
        let offset = usize::from(frame.offset);
        let pushed =
            self.inbound.push_with(MessageKind::Binary.meta(), payload.len(), |dst| match frame.mask {
                Some(key) => copy_masked(dst, payload, key, offset),
                None => copy_bytes(dst, payload),
            });
        match pushed {
            Ok(()) => {}
            Err(QueueFull::Storage(_)) if self.inbound.is_empty() => {
                return Err(Error::MessageTooBig { limit: self.config.max_message_size });
            }
            // No storage for it now: the frame waits, unread.
            Err(_) => return Ok((0, false)),
        }
        self.advance_frame(payload.len());
        self.reader.frame = None;
        self.reader.message = None;
        Ok((payload.len(), true))
    }

    fn finish_control(&mut self, now: Instant, opcode: OpCode) {
        let payload = core::mem::take(&mut self.reader.control);
        match opcode {
            OpCode::Ping if self.phase == Phase::Open => {
                // Room was checked before the ping was read.
                let _ = self.push_control(OpCode::Pong, &payload);
            }
            OpCode::Pong => {
                self.timers.awaiting_pong = false;
                self.pending.pong = Some(ControlPayload(payload));
            }
            OpCode::Close => self.close_received(now, &payload),
            _ => {}
        }
    }

    fn close_received(&mut self, now: Instant, payload: &[u8]) {
        let close = match parse_close(payload) {
            Ok(c) => c,
            Err(e) => return self.fail(e),
        };
        if self.phase == Phase::CloseSent {
            // The answer is recorded, not our own Close: Godot's `get_close_code()` reports the
            // code received, and a peer may answer with another code or reason than ours.
            let code = close.code.unwrap_or(CloseCode::NO_STATUS);
            self.end(code, close.reason, Initiator::Local, None, true);
        } else {
            // Echo the code and reason, as wslay (and so Godot) does.
            // Room was checked before the close was read.
            let _ = self.push_control(OpCode::Close, payload);
            let code = close.code.unwrap_or(CloseCode::NO_STATUS);
            self.end(code, close.reason, Initiator::Remote, None, true);
        }
        self.inbound.abort();
        self.reader.message = None;
        self.abort_compressed();
        self.timers.close = None;
        match self.role {
            // RFC 6455 §7.1.1: the server closes the TCP connection first.
            Role::Server => self.finished = true,
            Role::Client => self.timers.close = Some(now + self.config.close_timeout),
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): send a Close with the error's code if none was
    /// sent yet, stop reading, and release the transport once that Close is written.
    fn fail(&mut self, error: Error) {
        let code = error.close_code();
        let mut reason_buf = heapless::String::<{ CloseReason::MAX_LEN }>::new();
        let _ = core::fmt::write(&mut reason_buf, format_args!("{error}"));
        if self.phase == Phase::Open && code.is_valid_on_wire() {
            let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
            payload[..2].copy_from_slice(&code.0.to_be_bytes());
            payload[2..2 + reason_buf.len()].copy_from_slice(reason_buf.as_bytes());
            // Without room the connection still ends; the peer sees the transport close.
            let _ = self.push_control(OpCode::Close, &payload[..2 + reason_buf.len()]);
        }
        self.end(code, &reason_buf, Initiator::Library, Some(error), false);
        self.inbound.abort();
        self.reader = Reader::default();
        self.abort_compressed();
        self.timers.close = None;
        self.finished = true;
    }
}

enum HeaderRead {
    /// A header and the bytes of this input it used.
    Complete(FrameHeader, usize),
    /// Part of a header, stashed; all these bytes were used.
    Partial(usize),
    /// Nothing can be read now (no input, or back-pressure).
    Blocked,
}
