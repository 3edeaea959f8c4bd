//! The outbound side: frames encoded into one contiguous buffer, with per-frame accounting.
//!
//! All frames ready for a connection sit back to back, so the adapter writes them with one
//! system call per readiness event. Data limits (bytes and messages not yet written) are kept
//! exact across partial writes by walking our own frame headers as they leave; control frames
//! (pong, close) are accounted apart so they never wait behind data back-pressure.
//!
//! With `alloc`, a server can also queue a [`SharedFrame`]: one encoded frame whose bytes are
//! shared (reference-counted) by every connection it is broadcast to, so a fan-out to N peers
//! encodes and stores the payload once. The queue is then inline bytes interleaved with shared
//! segments, handed to the transport in order ([`OutQueue::chunks`] for vectored writes).

use crate::buffer::Buffer;
use crate::copy::copy_bytes;
use crate::queue::ByteQueue;
#[cfg(feature = "alloc")]
use crate::ws::MessageKind;
use crate::ws::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use crate::ws::mask::copy_masked;
#[cfg(feature = "alloc")]
use alloc::{collections::VecDeque, sync::Arc};

/// An encoded, unmasked frame shared by the connections it is sent to (server broadcast and
/// relay fan-out).
#[cfg(feature = "alloc")]
#[derive(Debug, Clone)]
pub struct SharedFrame {
    bytes: Arc<[u8]>,
    header_len: usize,
}

#[cfg(feature = "alloc")]
impl SharedFrame {
    /// Encodes one message whose payload is `parts` concatenated.
    #[must_use]
    pub fn new(kind: MessageKind, parts: &[&[u8]]) -> Self {
        let payload_len: usize = parts.iter().map(|p| p.len()).sum();
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: kind.opcode(),
            mask: None,
            payload_len: payload_len as u64,
        };
        let (head, header_len) = header.encode();
        let mut bytes = alloc::vec::Vec::with_capacity(header_len + payload_len);
        bytes.extend_from_slice(&head[..header_len]);
        for part in parts {
            bytes.extend_from_slice(part);
        }
        Self { bytes: bytes.into(), header_len }
    }

    /// The payload.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.header_len..]
    }

    /// The opcode the frame was encoded with.
    pub(super) fn opcode(&self) -> OpCode {
        OpCode::from_bits(self.bytes[0] & 0x0f).unwrap_or(OpCode::Binary)
    }
}

/// A shared frame queued after `at` inline bytes (counted from the start of the connection).
#[cfg(feature = "alloc")]
#[derive(Debug)]
struct SharedSegment {
    at: u64,
    frame: SharedFrame,
    sent: usize,
}

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
    /// Inline bytes ever appended and ever written, positioning the shared segments.
    inline_in: u64,
    inline_out: u64,
    #[cfg(feature = "alloc")]
    shared: VecDeque<SharedSegment>,
    /// Bytes of shared segments not yet written.
    shared_bytes: usize,
}

impl<B: Buffer> OutQueue<B> {
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.shared_bytes == 0
    }

    pub(super) fn len(&self) -> usize {
        self.bytes.len() + self.shared_bytes
    }

    /// The inline bytes that precede the first shared segment (all of them without one).
    fn inline_before_shared(&self) -> usize {
        #[cfg(feature = "alloc")]
        if let Some(seg) = self.shared.front() {
            return (seg.at - self.inline_out) as usize;
        }
        self.bytes.len()
    }

    /// The next contiguous bytes to write.
    pub(super) fn front(&self) -> &[u8] {
        let inline = self.inline_before_shared();
        #[cfg(feature = "alloc")]
        if inline == 0 {
            if let Some(seg) = self.shared.front() {
                return &seg.frame.bytes[seg.sent..];
            }
        }
        &self.bytes.as_slice()[..inline]
    }

    /// Fills `out` with the queued bytes in order, as up to `out.len()` slices; returns how many.
    pub(super) fn chunks<'a>(&'a self, out: &mut [&'a [u8]]) -> usize {
        let inline = self.bytes.as_slice();
        let mut filled = 0;
        #[cfg_attr(not(feature = "alloc"), allow(unused_mut))]
        let mut pos = 0;
        #[cfg(feature = "alloc")]
        for seg in &self.shared {
            let upto = (seg.at - self.inline_out) as usize;
            for chunk in [&inline[pos..upto], &seg.frame.bytes[seg.sent..]] {
                if chunk.is_empty() {
                    continue;
                }
                let Some(slot) = out.get_mut(filled) else { return filled };
                *slot = chunk;
                filled += 1;
            }
            pos = upto;
        }
        if pos < inline.len() {
            if let Some(slot) = out.get_mut(filled) {
                *slot = &inline[pos..];
                filled += 1;
            }
        }
        filled
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
        self.inline_out = self.inline_in;
        #[cfg(feature = "alloc")]
        self.shared.clear();
        self.shared_bytes = 0;
    }

    /// Queues a shared frame after everything queued so far.
    #[cfg(feature = "alloc")]
    pub(super) fn push_shared(&mut self, frame: SharedFrame) {
        if !frame.opcode().is_control() {
            self.data_bytes += frame.payload().len();
            self.data_messages += 1;
        }
        self.shared_bytes += frame.bytes.len();
        self.shared.push_back(SharedSegment { at: self.inline_in, frame, sent: 0 });
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
        self.inline_in += len as u64;
        self.raw_prefix += len;
        Ok(())
    }

    /// Whether a control frame of `len` bytes could be queued now (storage may grow to make
    /// room, as the push itself would).
    pub(super) fn has_control_room(&mut self, len: usize, data_limit: usize) -> bool {
        self.bytes.reserve(len, data_limit.saturating_add(CONTROL_SLACK)).is_ok()
    }

    /// Whether a data frame of `len` bytes (header included) could be queued now.
    pub(super) fn has_data_room(&self, len: usize, data_limit: usize) -> bool {
        self.bytes.fits(len, data_limit.saturating_add(CONTROL_SLACK))
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
                None => copy_bytes(out, part),
            }
            at += part.len();
        }
        self.bytes.advance(total);
        self.inline_in += total as u64;
        if !header.opcode.is_control() {
            self.data_bytes += payload_len;
            self.data_messages += usize::from(header.fin);
        } else if header.opcode == OpCode::Pong {
            self.pongs += 1;
        }
        Ok(())
    }

    /// The storage, when the queue is empty and may take over storage of `len` bytes in its
    /// place without exceeding its physical bound; [`adopt_frame`](Self::adopt_frame) follows.
    pub(super) fn storage_to_exchange(&mut self, len: usize, data_limit: usize) -> Option<&mut B> {
        (self.is_empty() && len <= data_limit.saturating_add(CONTROL_SLACK)).then(|| self.bytes.storage_mut())
    }

    /// Queues a data frame whose unmasked payload of `payload_len` bytes already lies in the
    /// storage at `at`, with `head` (its encoded header) written in front of it.
    pub(super) fn adopt_frame(&mut self, head: &[u8], at: usize, payload_len: usize) {
        debug_assert!(self.is_empty() && self.raw_prefix == 0);
        let start = at - head.len();
        copy_bytes(&mut self.bytes.storage_mut().as_mut_slice()[start..at], head);
        self.bytes.adopt(start, at + payload_len);
        self.inline_in += (head.len() + payload_len) as u64;
        self.data_bytes += payload_len;
        self.data_messages += 1;
    }

    /// Queues what the transport did not take of a data frame written through while the queue
    /// was empty: the bytes of `head` + `payload` from `taken` on. They become the queue's
    /// front frame, already begun, so the header is not queued again. Only storage for the rest
    /// is reserved.
    pub(super) fn push_frame_rest(
        &mut self,
        head: &[u8],
        payload: &[u8],
        taken: usize,
        data_limit: usize,
    ) -> Result<(), ()> {
        debug_assert!(self.is_empty() && self.front.remaining == 0 && self.raw_prefix == 0);
        let rest = (head.len() + payload.len()).saturating_sub(taken);
        let dst = self.bytes.reserve(rest, data_limit.saturating_add(CONTROL_SLACK)).map_err(|_| ())?;
        let head_rest = head.get(taken..).unwrap_or(&[]);
        let (dst_head, dst_payload) = dst.split_at_mut(head_rest.len());
        copy_bytes(dst_head, head_rest);
        copy_bytes(dst_payload, &payload[taken.saturating_sub(head.len())..]);
        self.bytes.advance(rest);
        self.inline_in += rest as u64;
        self.front =
            FrontFrame { remaining: rest, data_payload: payload.len(), is_data_end: true, is_pong: false };
        self.data_bytes += payload.len();
        self.data_messages += 1;
        Ok(())
    }

    /// Records that the transport took the first `n` queued bytes.
    pub(super) fn consume(&mut self, mut n: usize) {
        while n > 0 {
            #[cfg(feature = "alloc")]
            if let Some(seg) = self.shared.front_mut().filter(|s| s.at == self.inline_out) {
                let step = n.min(seg.frame.bytes.len() - seg.sent);
                seg.sent += step;
                self.shared_bytes -= step;
                n -= step;
                if seg.sent == seg.frame.bytes.len() {
                    if !seg.frame.opcode().is_control() {
                        self.data_bytes = self.data_bytes.saturating_sub(seg.frame.payload().len());
                        self.data_messages = self.data_messages.saturating_sub(1);
                    }
                    self.shared.pop_front();
                }
                continue;
            }
            let step = n.min(self.inline_before_shared());
            if step == 0 {
                return;
            }
            self.consume_inline(step);
            self.inline_out += step as u64;
            n -= step;
        }
    }

    /// Consumes `n` inline bytes, keeping the frame accounting exact.
    fn consume_inline(&mut self, mut n: usize) {
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
    }

    /// Gives the inline storage back if nothing is queued (see the connection's idle release);
    /// returns whether there was storage to give back.
    pub(super) fn release_if_empty(&mut self) -> bool {
        if self.bytes.is_empty() && self.bytes.footprint() > 0 {
            self.bytes.release();
            return true;
        }
        false
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use std::vec::Vec;

    use super::*;

    fn frame(payload: &[u8]) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: None,
            payload_len: payload.len() as u64,
        }
    }

    /// Inline and shared frames interleaved come out in order, whatever the write sizes, and
    /// the data accounting returns to zero.
    #[test]
    fn interleaved_shared_frames_keep_order_and_accounting() {
        let big: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let shared = SharedFrame::new(MessageKind::Binary, &[b"hdr", &big]);
        for write_size in [1, 7, 100, 1000, 5000] {
            let mut q = OutQueue::<Vec<u8>>::default();
            let mut expected = Vec::new();
            for i in 0..4u8 {
                let small = [i; 10];
                q.push_frame(frame(&small), &[&small], 1 << 20).unwrap();
                expected.extend_from_slice(&frame(&small).encode().0[..2]);
                expected.extend_from_slice(&small);
                q.push_shared(shared.clone());
                expected.extend_from_slice(&shared.bytes);
            }
            assert_eq!(q.data_messages, 8);
            assert_eq!(q.len(), expected.len());
            let mut chunks = [&[][..]; 16];
            let n = q.chunks(&mut chunks);
            assert_eq!(chunks[..n].concat(), expected);
            let mut written = Vec::new();
            while !q.is_empty() {
                let front = q.front();
                let take = front.len().min(write_size);
                written.extend_from_slice(&front[..take]);
                q.consume(take);
            }
            assert_eq!(written, expected, "write size {write_size}");
            assert_eq!((q.data_bytes, q.data_messages, q.len()), (0, 0, 0));
        }
    }
}
