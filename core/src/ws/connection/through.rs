//! Write-through: a frame offered to the transport straight from where its payload lies, for
//! an adapter that holds the socket and can write at once. Only what the transport did not
//! take is copied into the outbound queue, so a large message (an echo, a forward, a send of
//! the application's buffer) is copied by the kernel alone when the socket has room.
//!
//! The machine stays sans-IO: it never sees the socket, only a function that returns how many
//! bytes the transport took. That number is all the queue's accounting needs.

use super::writer::OutQueue;
use super::{Connection, MaskKeys};
use crate::buffer::Storage;
use crate::ws::frame::FrameHeader;
use crate::ws::{MessageKind, Role, SendError};

impl<S: Storage, R: MaskKeys> Connection<S, R> {
    /// [`forward_message`](Self::forward_message), offering the frame to `write` first when
    /// nothing is queued to send: header and payload, as two slices for one vectored write,
    /// straight from the inbound queue. `write` returns how many bytes the transport took (0
    /// when it would block or failed: a failed transport fails again when the queue is
    /// written); the rest is queued as usual.
    ///
    /// Where write-through does not apply — a client (which masks), a compressing connection,
    /// output already queued (which must go first) — this is `forward_message` and `write` is
    /// not called.
    ///
    /// # Errors
    /// As [`forward_message`](Self::forward_message); on an error nothing was written and the
    /// message stays queued. [`SendError::NotOpen`] also when the transport took part of the
    /// frame and storage for the rest could not be had: the connection is then aborted, as
    /// its stream cannot go on mid-frame.
    pub fn forward_message_through(
        &mut self,
        write: impl FnOnce(&[&[u8]]) -> usize,
    ) -> Result<Option<MessageKind>, SendError> {
        let Some(front) = self.inbound.front() else { return Ok(None) };
        let kind = MessageKind::from_meta(front.meta);
        if !self.writes_through() {
            return self.forward_message_as(kind);
        }
        let header = self.data_frame_header(kind.opcode(), front.payload.len())?;
        let limit = self.data_limit();
        // Distinct fields: the inbound queue is read while the outbound one is written.
        let payload = self.inbound.front().map_or(&[][..], |p| p.payload);
        match write_frame_through(&mut self.out, &header, payload, limit, write) {
            Through::NotOffered => return self.forward_message_as(kind),
            Through::Broken => return Err(self.cut_mid_frame()),
            Through::Sent => {}
        }
        self.timers.carried_data = true;
        self.pop_message();
        Ok(Some(kind))
    }

    /// [`send`](Self::send), offering the frame to `write` first as
    /// [`forward_message_through`](Self::forward_message_through) does, straight from
    /// `payload`.
    ///
    /// # Errors
    /// As [`send`](Self::send); on an error nothing was written or queued, but for the abort
    /// [`forward_message_through`](Self::forward_message_through) describes.
    pub fn send_through(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        write: impl FnOnce(&[&[u8]]) -> usize,
    ) -> Result<(), SendError> {
        if kind == MessageKind::Text && core::str::from_utf8(payload).is_err() {
            return Err(SendError::InvalidUtf8);
        }
        if !self.writes_through() {
            return self.send(kind, payload);
        }
        let header = self.data_frame_header(kind.opcode(), payload.len())?;
        let limit = self.data_limit();
        match write_frame_through(&mut self.out, &header, payload, limit, write) {
            Through::NotOffered => return self.send(kind, payload),
            Through::Broken => return Err(self.cut_mid_frame()),
            Through::Sent => {}
        }
        self.timers.carried_data = true;
        self.hold_buffers();
        Ok(())
    }

    /// Ends the connection whose stream a partial write cut mid-frame (see [`Through::Broken`]):
    /// its end is reported as an abort.
    fn cut_mid_frame(&mut self) -> SendError {
        self.abort();
        SendError::NotOpen
    }

    /// Whether a frame may bypass the queue: a server's frames go unmasked, uncompressed
    /// ones as they are, and nothing queued must be written before them.
    fn writes_through(&self) -> bool {
        self.role == Role::Server && !self.deflate_active() && self.out.is_empty()
    }
}

/// What became of a frame offered for write-through.
enum Through {
    /// Not offered: the queue could not hold the whole frame, and a write must never start
    /// what the queue cannot finish. Nothing was written or queued.
    NotOffered,
    /// Written, and whatever the transport did not take queued behind it.
    Sent,
    /// Partly written, and storage for the rest could not be had (the allocator failed):
    /// the stream is cut mid-frame, so the connection must end.
    Broken,
}

/// Offers the frame to `write` and queues the part it did not take.
fn write_frame_through<B: crate::buffer::Buffer>(
    out: &mut OutQueue<B>,
    header: &FrameHeader,
    payload: &[u8],
    data_limit: usize,
    write: impl FnOnce(&[&[u8]]) -> usize,
) -> Through {
    let (head, hlen) = header.encode();
    let total = hlen + payload.len();
    if !out.has_data_room(total, data_limit) {
        return Through::NotOffered;
    }
    let taken = write(&[&head[..hlen], payload]).min(total);
    if taken == total || out.push_frame_rest(&head[..hlen], payload, taken, data_limit).is_ok() {
        Through::Sent
    } else {
        Through::Broken
    }
}
