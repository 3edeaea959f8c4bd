//! The outbound side: frames encoded into one contiguous buffer, with per-frame accounting.
//!
//! All frames ready for a connection sit back to back, so the adapter writes them with one
//! system call per readiness event. Data limits (bytes and messages not yet written) are kept
//! exact across partial writes by walking our own frame headers as they leave; control frames
//! (pong, close) are accounted apart so they never wait behind data back-pressure.

use crate::buffer::Buffer;
use crate::queue::ByteQueue;
use crate::ws::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use crate::ws::mask::copy_masked;

/// Room reserved beyond the data limit for control frames that must not be refused.
const CONTROL_SLACK: usize = 8 * (MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD);

/// The frame at the front of the queue, partly written.
#[derive(Debug, Clone, Copy, Default)]
struct FrontFrame {
    /// Bytes of it still queued; zero when the front is not yet parsed.
    remaining: usize,
    data_payload: usize,
    is_data_end: bool,
    is_pong: bool,
}

#[derive(Debug, Default)]
pub(super) struct OutQueue<B> {
    bytes: ByteQueue<B>,
    /// Bytes at the front that are an HTTP head, not frames.
    raw_prefix: usize,
    front: FrontFrame,
    /// Payload bytes of data frames not fully written.
    pub(super) data_bytes: usize,
    /// Messages whose last frame is not fully written.
    pub(super) data_messages: usize,
    /// Pong frames not fully written.
    pub(super) pongs: usize,
}

impl<B: Buffer> OutQueue<B> {
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    pub(super) fn footprint(&self) -> usize {
        self.bytes.footprint()
    }

    /// Drops everything queued (the transport is being abandoned).
    pub(super) fn clear(&mut self) {
        let len = self.bytes.len();
        self.bytes.consume(len);
        self.bytes.release();
        self.raw_prefix = 0;
        self.front = FrontFrame::default();
        self.data_bytes = 0;
        self.data_messages = 0;
        self.pongs = 0;
    }

    /// Appends an HTTP head written by `write` (exactly `len` bytes).
    pub(super) fn push_raw(
        &mut self,
        len: usize,
        limit: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<(), ()> {
        let dst = self.bytes.reserve(len, limit.saturating_add(CONTROL_SLACK)).map_err(|_| ())?;
        write(dst);
        self.bytes.advance(len);
        self.raw_prefix += len;
        Ok(())
    }

    /// Whether a control frame of `len` bytes could be queued now (storage may grow to make
    /// room, as the push itself would).
    pub(super) fn has_control_room(&mut self, len: usize, data_limit: usize) -> bool {
        self.bytes.reserve(len, data_limit.saturating_add(CONTROL_SLACK)).is_ok()
    }

    /// Appends one frame whose payload is `parts` concatenated. `data_limit` is the physical
    /// bound for data; control frames may use the slack beyond it.
    pub(super) fn push_frame(
        &mut self,
        header: FrameHeader,
        parts: &[&[u8]],
        data_limit: usize,
    ) -> Result<(), ()> {
        let (head, hlen) = header.encode();
        let payload_len = header.payload_len as usize;
        let total = hlen + payload_len;
        let dst = self.bytes.reserve(total, data_limit.saturating_add(CONTROL_SLACK)).map_err(|_| ())?;
        dst[..hlen].copy_from_slice(&head[..hlen]);
        let mut at = hlen;
        for part in parts {
            let out = &mut dst[at..at + part.len()];
            match header.mask {
                Some(key) => copy_masked(out, part, key, at - hlen),
                None => out.copy_from_slice(part),
            }
            at += part.len();
        }
        self.bytes.advance(total);
        if !header.opcode.is_control() {
            self.data_bytes += payload_len;
            self.data_messages += usize::from(header.fin);
        } else if header.opcode == OpCode::Pong {
            self.pongs += 1;
        }
        Ok(())
    }

    /// Records that the transport took the first `n` queued bytes.
    pub(super) fn consume(&mut self, mut n: usize) {
        n = n.min(self.bytes.len());
        let raw = n.min(self.raw_prefix);
        self.bytes.consume(raw);
        self.raw_prefix -= raw;
        n -= raw;
        while n > 0 {
            if self.front.remaining == 0 {
                self.front = match FrameHeader::parse(self.bytes.as_slice()) {
                    Ok(Some((h, hlen))) => FrontFrame {
                        remaining: hlen + h.payload_len as usize,
                        data_payload: if h.opcode.is_control() { 0 } else { h.payload_len as usize },
                        is_data_end: !h.opcode.is_control() && h.fin,
                        is_pong: h.opcode == OpCode::Pong,
                    },
                    // Only frames we encoded are here; anything else means the accounting is
                    // lost, so stop counting rather than guess.
                    _ => {
                        self.bytes.consume(n);
                        return;
                    }
                };
            }
            let step = n.min(self.front.remaining);
            self.bytes.consume(step);
            self.front.remaining -= step;
            n -= step;
            if self.front.remaining == 0 {
                self.data_bytes = self.data_bytes.saturating_sub(self.front.data_payload);
                self.data_messages = self.data_messages.saturating_sub(usize::from(self.front.is_data_end));
                self.pongs = self.pongs.saturating_sub(usize::from(self.front.is_pong));
            }
        }
        if self.bytes.is_empty() {
            self.bytes.release();
        }
    }
}
