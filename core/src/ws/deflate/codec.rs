//! The per-connection compressor and decompressor, over `miniz_oxide`'s raw deflate.
//!
//! Both are allocated on first use and kept only while context takeover needs their history:
//! an idle connection that never sent or received a compressed message holds neither, and one
//! whose direction starts afresh for every message gives that direction's state back after each
//! (miniz clears as much memory to reset a state as to make a new one).

use alloc::boxed::Box;
use alloc::vec::Vec;

use miniz_oxide::deflate::core::{CompressionStrategy, CompressorOxide, TDEFLFlush, TDEFLStatus, compress};
use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::{DeflateConfig, DeflateParams, DeflateStats, MAX_WINDOW_BITS};

/// The empty stored block a sync flush ends with; RFC 7692 §7.2.1 strips it from every
/// message and §7.2.2 appends it again before inflating.
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Heap bytes a miniz_oxide 0.9 compressor holds behind boxes of its own besides
/// `CompressorOxide` itself: the window, hash chains, output buffer and Huffman tables
/// (measured with a counting allocator: 319,326 bytes in all, 65,712 of them inline).
const COMPRESSOR_HEAP: usize = 253_614;

/// What one call to [`Codec::inflate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inflated {
    pub(crate) consumed: usize,
    pub(crate) written: usize,
    /// The deflate stream ended (a block with BFINAL set).
    pub(crate) ended: bool,
}

/// The compressed data is not valid deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidData;

/// Both directions of one connection's permessage-deflate.
pub(crate) struct Codec {
    pub(crate) params: DeflateParams,
    level: u8,
    min_message_size: u8,
    compressor: Option<Box<CompressorOxide>>,
    inflater: Option<Box<InflateState>>,
    /// Bytes of [`TAIL`] already given to the inflater for the message being read.
    pub(crate) tail_fed: usize,
    /// The message being read ended its deflate stream (BFINAL); nothing but the tail may follow.
    pub(crate) ended: bool,
    pub(crate) stats: DeflateStats,
}

impl core::fmt::Debug for Codec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Codec").field("params", &self.params).finish_non_exhaustive()
    }
}

impl Codec {
    pub(crate) fn new(params: DeflateParams, config: &DeflateConfig) -> Self {
        let config = config.clamped();
        Self {
            params,
            level: config.level,
            min_message_size: config.min_message_size,
            compressor: None,
            inflater: None,
            tail_fed: 0,
            ended: false,
            stats: DeflateStats::default(),
        }
    }

    /// Heap bytes held by the compressor and the decompressor.
    pub(crate) fn footprint(&self) -> usize {
        self.compressor.as_ref().map_or(0, |_| size_of::<CompressorOxide>() + COMPRESSOR_HEAP)
            + self.inflater.as_ref().map_or(0, |_| size_of::<InflateState>())
    }

    /// Compresses one message whose payload is `parts` concatenated into `out` (cleared first),
    /// without the trailing [`TAIL`]. Returns `false`, leaving the compressor as if the message
    /// had never been seen, when the message is too short to be worth it or does not shrink:
    /// the message is then sent uncompressed.
    pub(crate) fn compress(&mut self, parts: &[&[u8]], out: &mut Vec<u8>) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        out.clear();
        if len < usize::from(self.min_message_size).max(1) {
            self.stats.messages_sent_plain += 1;
            return false;
        }
        // miniz's compressor does not hold its match distances to a window below 15 bits (its
        // fast path searches the whole 32 KiB; Autobahn 13.3 caught it). With a smaller window
        // each message is compressed on its own, and only when it is no longer than the
        // window, so no match can reach further back; longer messages go uncompressed.
        let window = self.params.window_bits;
        let limited = window < MAX_WINDOW_BITS;
        if limited && len > 1 << window {
            self.stats.messages_sent_plain += 1;
            return false;
        }
        let level = self.level;
        let compressor = self.compressor.get_or_insert_with(|| {
            let strategy = CompressionStrategy::Default;
            Box::new(CompressorOxide::with_params(DataFormat::Raw, level, strategy, MAX_WINDOW_BITS))
        });
        // Room for the message and the sync flush; more means it did not shrink.
        out.resize(len + TAIL.len() + 1, 0);
        let mut written = 0;
        let mut shrank = true;
        for (i, part) in parts.iter().enumerate() {
            let flush = if i + 1 == parts.len() { TDEFLFlush::Sync } else { TDEFLFlush::None };
            let (status, read, wrote) = compress(compressor, part, &mut out[written..], flush);
            written += wrote;
            if status != TDEFLStatus::Okay || read != part.len() || written >= out.len() {
                shrank = false;
                break;
            }
        }
        let body = written.saturating_sub(TAIL.len());
        shrank &= written >= TAIL.len() && out[body..written] == TAIL && body < len;
        if !shrank || self.params.no_context_takeover || limited {
            // The peer will not see this stream, or must not be referred to it: the next
            // message starts afresh, from a new compressor when one is needed.
            self.compressor = None;
        }
        if !shrank {
            out.clear();
            self.stats.messages_sent_plain += 1;
            return false;
        }
        out.truncate(body);
        self.stats.messages_compressed += 1;
        self.stats.bytes_before_compression += len as u64;
        self.stats.bytes_after_compression += body as u64;
        true
    }

    /// Inflates from `input` into `output`.
    ///
    /// # Errors
    /// [`InvalidData`] when the input is not valid deflate.
    pub(crate) fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Result<Inflated, InvalidData> {
        let state = self.inflater.get_or_insert_with(|| InflateState::new_boxed(DataFormat::Raw));
        let result = inflate(state, input, output, MZFlush::None);
        let ended = match result.status {
            Ok(MZStatus::StreamEnd) => true,
            Ok(_) | Err(MZError::Buf) => false,
            Err(_) => return Err(InvalidData),
        };
        Ok(Inflated { consumed: result.bytes_consumed, written: result.bytes_written, ended })
    }

    /// The message being read is complete: reset what the negotiated parameters (or a stream
    /// the peer ended) say must start afresh.
    pub(crate) fn end_message(&mut self, inflated: usize) {
        if self.params.peer_no_context_takeover || self.ended {
            self.inflater = None;
        }
        self.stats.messages_inflated += 1;
        self.stats.bytes_inflated += inflated as u64;
        self.tail_fed = 0;
        self.ended = false;
    }

    /// A message was abandoned half-read (the connection failed).
    pub(crate) fn abort_message(&mut self) {
        self.tail_fed = 0;
        self.ended = false;
    }
}
