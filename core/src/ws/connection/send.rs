//! Sending: data messages (copied, in parts, shared, or forwarded from the inbound queue),
//! pings, and the outbound limits they are checked against.

use super::{Connection, MaskKeys, Phase};
use crate::buffer::Storage;
use crate::ws::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, OpCode};
use crate::ws::{MessageKind, Role, SendError};

impl<S: Storage, R: MaskKeys> Connection<S, R> {
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
    pub fn send_shared(&mut self, frame: &super::SharedFrame) -> Result<(), SendError> {
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
        // Output already waiting will be written: the storage is looked at then
        // (`consume_transmit`), or when its release timer fires, so a burst of sends to one
        // connection decides it once.
        let waiting = !self.out.is_empty();
        self.out.push_frame(header, parts, self.data_limit()).map_err(|()| full)?;
        self.timers.carried_data = true;
        if !waiting {
            self.hold_buffers();
        }
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
        self.forward_message_as(MessageKind::from_meta(front.meta))
    }

    /// [`forward_message`](Self::forward_message), sent as a message of `kind` whatever kind
    /// it was received as (a multiplayer server sends binary).
    ///
    /// # Errors
    /// As [`forward_message`](Self::forward_message); [`SendError::InvalidUtf8`] when sending
    /// as text what is not UTF-8.
    pub fn forward_message_as(&mut self, kind: MessageKind) -> Result<Option<MessageKind>, SendError> {
        let Some(front) = self.inbound.front() else { return Ok(None) };
        let received = MessageKind::from_meta(front.meta);
        if kind == MessageKind::Text && received != kind && core::str::from_utf8(front.payload).is_err() {
            return Err(SendError::InvalidUtf8);
        }
        let len = front.payload.len();
        let mut header = self.data_frame_header(kind.opcode(), len)?;
        if self.forward_in_place(&header) {
            self.timers.carried_data = true;
            self.finish_held_frame();
            self.hold_buffers();
            return Ok(Some(kind));
        }
        let (full, limit) = (self.full_error(), self.data_limit());
        // Distinct fields: the inbound queue is read while the outbound one is written.
        let payload = self.inbound.front().map_or(&[][..], |p| p.payload);
        let compressed = Self::compress_message(&mut self.deflate, &mut header, &[payload]);
        let payload = compressed.as_ref().map_or(payload, |c| &c[..]);
        self.out.push_frame(header, &[payload], limit).map_err(|()| full)?;
        // The frame waits to be written: the storage is looked at then (`consume_transmit`).
        self.pop_message_in_batch();
        Ok(Some(kind))
    }

    /// Sends the lone received message from where it lies, when nothing else is queued either
    /// way: the inbound storage becomes the outbound one, the frame header is written over the
    /// queue's record header in front of the payload, and the outbound storage, empty, takes
    /// its place. No payload byte is copied (an echo or a request/response proxy with one
    /// message in flight). Returns false, changing nothing, when that does not apply: a client
    /// (which masks), a compressing connection, a header longer than the room in front of the
    /// payload, storage that is fixed or larger than the outbound bound.
    fn forward_in_place(&mut self, header: &FrameHeader) -> bool {
        if header.mask.is_some() || self.deflate_active() {
            return false;
        }
        let Some((at, len)) = self.inbound.lone_packet() else { return false };
        let (head, hlen) = header.encode();
        if hlen > at || len as u64 != header.payload_len {
            return false;
        }
        let (held, limit) = (self.inbound.footprint(), self.data_limit());
        let Some(outbound) = self.out.storage_to_exchange(held, limit) else { return false };
        if !S::exchange(self.inbound.storage_mut(), outbound) {
            return false;
        }
        self.inbound.forget_all();
        self.out.adopt_frame(&head[..hlen], at, len);
        true
    }

    /// The header of a data frame of `len` bytes, once the frame is known to fit.
    pub(super) fn data_frame_header(&mut self, opcode: OpCode, len: usize) -> Result<FrameHeader, SendError> {
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
    pub(super) fn data_limit(&self) -> usize {
        let headers = self.config.max_outbound_messages.saturating_mul(crate::ws::frame::MAX_HEADER_LEN);
        self.config.outbound_queue_limit().saturating_add(headers)
    }

    /// Queues a Ping with `payload` (at most 125 bytes); the answer arrives as
    /// [`Event::Pong`](crate::ws::Event::Pong).
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

    pub(super) fn full(&self) -> SendError {
        SendError::Full { queued_bytes: self.out.data_bytes, queued_messages: self.out.data_messages }
    }

    /// Queues a control frame in the slack reserved beyond the data limit. It fails only when
    /// storage itself is exhausted (fixed storage filled with data): the reader then holds back
    /// pings and closes until their answer fits, and commands report [`SendError::Full`].
    pub(super) fn push_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), ()> {
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
    pub(super) fn has_control_room(&mut self) -> bool {
        let limit = self.data_limit();
        self.out.has_control_room(crate::ws::frame::MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD, limit)
    }
}
