//! permessage-deflate hooks of the connection: the extension lines of the handshake, the
//! inflating read path of compressed messages, and compression of outgoing ones.
//!
//! Without the `deflate` feature these compile to nothing: the extension lines are empty and
//! no frame may carry RSV1.

use super::Connection;
use super::MaskKeys;
use crate::buffer::Storage;
use crate::ws::frame::FrameHeader;

#[cfg(feature = "deflate")]
use {
    super::reader::{FrameState, MessageState},
    crate::queue::QueueFull,
    crate::ws::deflate::{
        self, DeflateConfig, DeflateParams, DeflateStats, MAX_EXTENSION_LINE, codec::Codec, codec::TAIL,
    },
    crate::ws::handshake::HandshakeError,
    crate::ws::mask::apply_mask,
    crate::ws::{Error, MessageKind},
    alloc::vec::Vec,
};

/// RSV1, as [`FrameHeader::rsv`] holds it: "this message is compressed" (RFC 7692 §6).
pub(super) const RSV1: u8 = 0b100;

/// A `Sec-WebSocket-Extensions` value to send; empty for none.
#[cfg(feature = "deflate")]
pub(super) type ExtensionLine = heapless::String<MAX_EXTENSION_LINE>;
/// A `Sec-WebSocket-Extensions` value to send; always empty without the `deflate` feature.
#[cfg(not(feature = "deflate"))]
pub(super) type ExtensionLine = heapless::String<0>;

/// Bytes inflated (and input unmasked) per step, on the stack.
#[cfg(feature = "deflate")]
const CHUNK: usize = 1024;

/// The negotiation state kept by a connection: the codec once agreed.
#[derive(Debug, Default)]
pub(super) struct Deflate {
    // Boxed: a connection that never negotiates the extension pays one pointer.
    #[cfg(feature = "deflate")]
    codec: Option<alloc::boxed::Box<Codec>>,
}

impl<S: Storage, R: MaskKeys> Connection<S, R> {
    /// The client's offer, from [`Config::permessage_deflate`](crate::ws::Config).
    pub(super) fn extension_offer(&self) -> ExtensionLine {
        #[cfg(feature = "deflate")]
        if let Some(config) = &self.config.permessage_deflate {
            return deflate::client_offer(config);
        }
        ExtensionLine::new()
    }

    /// Whether compressed (RSV1) data frames may arrive and messages may be sent compressed.
    pub(super) fn deflate_active(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.deflate.codec.is_some();
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// The largest wire size of a message: a compressed one may exceed the message limit by
    /// the few bytes deflate adds to data that does not shrink (5 per 64 KiB stored block),
    /// while its inflated size is held to the limit itself.
    pub(super) fn wire_limit(&self, compressed: bool) -> usize {
        let limit = self.config.max_message_size;
        if compressed { limit.saturating_add(limit / 4096 + 64) } else { limit }
    }

    /// Heap bytes of the compressor and decompressor.
    pub(super) fn deflate_footprint(&self) -> usize {
        #[cfg(feature = "deflate")]
        return self.deflate.codec.as_ref().map_or(0, |c| size_of::<Codec>() + c.footprint());
        #[cfg(not(feature = "deflate"))]
        0
    }

    /// What was agreed, once the handshake accepted permessage-deflate; Godot has no
    /// counterpart (it never negotiates an extension).
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn permessage_deflate(&self) -> Option<DeflateParams> {
        self.deflate.codec.as_ref().map(|c| c.params)
    }

    /// What this connection's permessage-deflate did so far (messages and bytes each way);
    /// `None` unless it was agreed. Godot has no counterpart.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn permessage_deflate_stats(&self) -> Option<DeflateStats> {
        self.deflate.codec.as_ref().map(|c| c.stats)
    }

    /// Server, before [`accept`](Self::accept): how many of the server's connections use
    /// permessage-deflate now. At [`DeflateConfig::max_connections`] or more, the pending
    /// request is answered without the extension (RFC 7692 §5 lets a server decline any
    /// offer) and [`config`](Self::config) shows it off, so memory for compressors stays
    /// bounded. Godot has no counterpart.
    #[cfg(feature = "deflate")]
    pub fn set_compressing_connections(&mut self, compressing: usize) {
        if self.config.permessage_deflate.is_some_and(|c| !c.admits(compressing)) {
            self.config.permessage_deflate = None;
        }
    }

    /// Server: the answer to the pending request's offers, and what it agrees to.
    #[cfg(feature = "deflate")]
    pub(super) fn extension_answer(&self) -> Option<(DeflateParams, ExtensionLine)> {
        let config = self.config.permessage_deflate?;
        let mut headers = [httparse::EMPTY_HEADER; crate::ws::MAX_HEADERS];
        let request = self.request(&mut headers[..self.config.max_headers])?;
        deflate::server_answer(&config, extension_values(request.headers()))
    }

    /// Starts compressing and decompressing with what the handshake agreed.
    #[cfg(feature = "deflate")]
    pub(super) fn start_deflate(&mut self, params: Option<DeflateParams>) {
        let config = self.config.permessage_deflate.unwrap_or(DeflateConfig::DEFAULT);
        self.deflate.codec = params.map(|p| alloc::boxed::Box::new(Codec::new(p, &config)));
    }

    /// Compresses an outgoing message when that is agreed and worth it; `header` then gets
    /// RSV1 and the compressed length, and the compressed payload is returned.
    #[cfg(feature = "deflate")]
    pub(super) fn compress_message(
        codec: &mut Deflate,
        header: &mut FrameHeader,
        parts: &[&[u8]],
    ) -> Option<Vec<u8>> {
        let codec = codec.codec.as_mut()?;
        let mut out = Vec::new();
        if !codec.compress(parts, &mut out) {
            return None;
        }
        header.rsv = RSV1;
        header.payload_len = out.len() as u64;
        Some(out)
    }

    /// Without the `deflate` feature nothing is compressed.
    #[cfg(not(feature = "deflate"))]
    pub(super) fn compress_message(_: &mut Deflate, _: &mut FrameHeader, _: &[&[u8]]) -> Option<[u8; 0]> {
        None
    }

    /// The compressed counterpart of `read_data`: unmasks payload in chunks, inflates it into
    /// the open packet, and once the last frame is in, the [`TAIL`] the sender stripped.
    ///
    /// The inflated size is held to the message limit as it grows (a decompression bomb stops
    /// one byte past it, with 1009); a full queue stops reading as for plain messages.
    #[cfg(feature = "deflate")]
    pub(super) fn read_compressed(
        &mut self,
        frame: FrameState,
        mut message: MessageState,
        input: &[u8],
    ) -> Result<(usize, bool), Error> {
        let limit = self.config.max_message_size;
        let mut used = 0;
        let mut src_buf = [0u8; CHUNK];
        let mut out_buf = [0u8; CHUNK];
        loop {
            let Some(codec) = self.deflate.codec.as_mut() else { return Err(Error::ReservedBits(RSV1)) };
            let (remaining, offset) = self.reader.frame.map_or((0, 0), |f| (f.remaining, f.offset));
            let src: &[u8] = if remaining > 0 {
                let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(input.len() - used).min(CHUNK);
                if n == 0 {
                    break;
                }
                if codec.ended {
                    // Padding after the block that ended the stream (BFINAL) means nothing.
                    used += n;
                    self.advance_frame(n);
                    continue;
                }
                src_buf[..n].copy_from_slice(&input[used..used + n]);
                if let Some(key) = frame.mask {
                    apply_mask(&mut src_buf[..n], key, usize::from(offset));
                }
                &src_buf[..n]
            } else if frame.fin && !codec.ended {
                &TAIL[codec.tail_fed..]
            } else {
                &[]
            };
            // Room for output: the queue's, and one byte past the message limit to detect a
            // message that would exceed it without inflating further.
            let cap = limit.saturating_sub(self.inbound.open_len());
            let room = self.inbound.space_left().min(CHUNK);
            if room == 0 && cap > 0 {
                self.reader.message = Some(message);
                return Ok((used, false));
            }
            let out_len = if cap == 0 { 1 } else { room };
            let step =
                codec.inflate(src, &mut out_buf[..out_len]).map_err(|_| Error::InvalidCompressedData)?;
            codec.ended |= step.ended;
            if remaining > 0 {
                used += step.consumed;
            } else {
                codec.tail_fed += step.consumed;
            }
            if remaining > 0 {
                self.advance_frame(step.consumed);
            }
            if step.written > 0 {
                let out = &out_buf[..step.written];
                if cap == 0 {
                    return Err(Error::MessageTooBig { limit });
                }
                match self.inbound.extend(out) {
                    Ok(()) => {}
                    Err(QueueFull::Storage(_) | QueueFull::Bytes { .. } | QueueFull::Packets { .. }) => {
                        return Err(Error::MessageTooBig { limit });
                    }
                }
                if message.kind == MessageKind::Text {
                    message.utf8.feed(out).map_err(|_| Error::InvalidUtf8)?;
                }
            }
            if step.consumed == 0 && step.written == 0 {
                break;
            }
        }
        self.reader.message = Some(message);
        let Some(codec) = self.deflate.codec.as_mut() else { return Err(Error::ReservedBits(RSV1)) };
        if self.reader.frame.is_some_and(|f| f.remaining > 0) {
            return Ok((used, false));
        }
        if frame.fin {
            if !codec.ended && codec.tail_fed < TAIL.len() {
                // The inflater took no more input with room to write: the data is broken.
                return Err(Error::InvalidCompressedData);
            }
            if message.kind == MessageKind::Text && !message.utf8.is_complete() {
                return Err(Error::InvalidUtf8);
            }
            codec.end_message(self.inbound.open_len());
            self.inbound.commit();
            self.reader.message = None;
        }
        self.reader.frame = None;
        Ok((used, true))
    }

    /// A half-read compressed message was dropped (the connection failed or closed).
    pub(super) fn abort_compressed(&mut self) {
        #[cfg(feature = "deflate")]
        if let Some(codec) = self.deflate.codec.as_mut() {
            codec.abort_message();
        }
    }
}

/// Client: what the server's response agreed to, given `headers` as the response parser
/// filled them.
#[cfg(feature = "deflate")]
pub(super) fn negotiate_response(
    config: Option<&DeflateConfig>,
    headers: &[httparse::Header<'_>],
) -> Result<Option<DeflateParams>, HandshakeError> {
    match config {
        Some(config) => deflate::client_accept(config, extension_values(headers)),
        None => Ok(None),
    }
}

/// The values of every `Sec-WebSocket-Extensions` header.
#[cfg(feature = "deflate")]
fn extension_values<'h, 'b>(headers: &'h [httparse::Header<'b>]) -> impl Iterator<Item = &'b [u8]> + 'h {
    headers.iter().filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions")).map(|h| h.value)
}
