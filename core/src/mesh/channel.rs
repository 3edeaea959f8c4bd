//! Data-channel specifications and Godot's channel layout.
//!
//! Godot's `WebRTCMultiplayerPeer` creates the same pre-negotiated channels on both sides (no
//! DCEP): stream 1 "reliable" (ordered, reliable), 2 "ordered" (ordered, lifetime-limited),
//! 3 "unreliable" (unordered, lifetime-limited), and one more per `channels_config` entry from
//! stream 4 on, labelled with its stream id. Unlike Godot, whose misspelled `maxPacketLifetime`
//! option leaves channels 2 and 3 fully reliable, the lifetime here really reaches the sender.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::peer::TransferMode;

/// How a data channel's sender retransmits (RFC 8831 §6.1 partial reliability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reliability {
    /// Retransmit until delivered.
    Reliable,
    /// Give up on a message this many milliseconds after it was queued (`maxPacketLifeTime`).
    MaxPacketLifetime(u16),
    /// Give up after this many retransmissions (`maxRetransmits`).
    MaxRetransmits(u16),
}

/// One data channel, as both peers create it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelSpec {
    /// SCTP stream id.
    pub id: u16,
    /// The label (Godot: "reliable", "ordered", "unreliable", then the id as text).
    pub label: String,
    /// Whether messages are delivered in order.
    pub ordered: bool,
    /// Retransmission policy of the sender.
    pub reliability: Reliability,
    /// Created on both sides with the same id, without DCEP (Godot's channels all are).
    pub negotiated: bool,
}

impl ChannelSpec {
    /// The Godot transfer mode this channel provides.
    #[must_use]
    pub fn transfer_mode(&self) -> TransferMode {
        match (self.reliability, self.ordered) {
            (Reliability::Reliable, _) => TransferMode::Reliable,
            (_, true) => TransferMode::UnreliableOrdered,
            (_, false) => TransferMode::Unreliable,
        }
    }
}

/// Godot's default `unreliable_lifetime` for `add_peer`, in milliseconds.
pub const DEFAULT_UNRELIABLE_LIFETIME: u16 = 1;

/// Stream id of the first channel of `channels_config` (channel 1 in Godot's numbering).
pub const FIRST_CUSTOM_ID: u16 = 4;

/// The channels Godot creates for a peer: the three default lanes with `unreliable_lifetime`,
/// then one per entry of `channels_config` (Godot gives custom unreliable lanes a lifetime of
/// 1 ms regardless).
#[must_use]
pub fn godot_channels(unreliable_lifetime: u16, channels_config: &[TransferMode]) -> Vec<ChannelSpec> {
    let lane = |id: u16, label: &str, ordered: bool, reliability| ChannelSpec {
        id,
        label: label.to_string(),
        ordered,
        reliability,
        negotiated: true,
    };
    let lifetime = Reliability::MaxPacketLifetime(unreliable_lifetime);
    let mut channels = alloc::vec![
        lane(1, "reliable", true, Reliability::Reliable),
        lane(2, "ordered", true, lifetime),
        lane(3, "unreliable", false, lifetime),
    ];
    for (n, mode) in channels_config.iter().enumerate() {
        let id = FIRST_CUSTOM_ID.saturating_add(n as u16);
        let (ordered, reliability) = match mode {
            TransferMode::Reliable => (true, Reliability::Reliable),
            TransferMode::UnreliableOrdered => (true, Reliability::MaxPacketLifetime(1)),
            TransferMode::Unreliable => (false, Reliability::MaxPacketLifetime(1)),
        };
        channels.push(lane(id, &id.to_string(), ordered, reliability));
    }
    channels
}

/// The index (in Godot's channel list) a packet goes out on: `transfer_channel` 0 picks the
/// default lane of the mode, N ≥ 1 picks custom channel N.
#[must_use]
pub fn lane_for(mode: TransferMode, channel: u8, lanes: usize) -> Option<usize> {
    let index = match (channel, mode) {
        (0, TransferMode::Reliable) => 0,
        (0, TransferMode::UnreliableOrdered) => 1,
        (0, TransferMode::Unreliable) => 2,
        (n, _) => usize::from(n) + 2,
    };
    (index < lanes).then_some(index)
}

/// The `get_packet_channel()` value of a packet that arrived on lane `index`.
#[must_use]
pub fn channel_of_lane(index: usize) -> u8 {
    if index < 3 { 0 } else { u8::try_from(index - 2).unwrap_or(u8::MAX) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // godot-protocol.md §6.2 and §10.6.
    #[test]
    fn godot_layout() {
        let ch = godot_channels(1, &[TransferMode::Unreliable, TransferMode::Reliable]);
        let summary: Vec<_> = ch.iter().map(|c| (c.id, c.label.as_str(), c.ordered, c.reliability)).collect();
        assert_eq!(
            summary,
            [
                (1, "reliable", true, Reliability::Reliable),
                (2, "ordered", true, Reliability::MaxPacketLifetime(1)),
                (3, "unreliable", false, Reliability::MaxPacketLifetime(1)),
                (4, "4", false, Reliability::MaxPacketLifetime(1)),
                (5, "5", true, Reliability::Reliable),
            ]
        );
        assert!(ch.iter().all(|c| c.negotiated));
        // transfer_channel 2 goes out on stream 5 and is reported as channel 2.
        let lane = lane_for(TransferMode::Reliable, 2, ch.len()).unwrap();
        assert_eq!((ch[lane].id, channel_of_lane(lane)), (5, 2));
        assert_eq!(lane_for(TransferMode::Unreliable, 0, 3), Some(2));
        assert_eq!(lane_for(TransferMode::Reliable, 1, 3), None);
        assert_eq!(ch[1].transfer_mode(), TransferMode::UnreliableOrdered);
    }
}
