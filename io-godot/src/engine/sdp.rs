//! What descriptions and DCEP announce: the SDP attributes the engine reads, and a channel's
//! configuration as Godot's `create_data_channel` dictionary would give it.

use str0m::channel::{ChannelConfig, Reliability};

use super::{ChannelSpec, DEFAULT_REMOTE_MAX_MESSAGE};

/// Godot's channel spec of a channel str0m configured (one the remote opened with DCEP).
pub(super) fn spec_of(config: &ChannelConfig) -> ChannelSpec {
    let (lifetime, retransmits) = match config.reliability {
        Reliability::Reliable => (None, None),
        Reliability::MaxPacketLifetime { lifetime } => (Some(lifetime), None),
        Reliability::MaxRetransmits { retransmits } => (None, Some(retransmits)),
    };
    ChannelSpec {
        label: config.label.clone(),
        negotiated: config.negotiated,
        ordered: config.ordered,
        max_packet_lifetime: lifetime,
        max_retransmits: retransmits,
        protocol: config.protocol.clone(),
    }
}

/// The `a=mid:` of the first m-line of an SDP.
pub(super) fn sdp_mid(sdp: &str) -> Option<String> {
    sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=mid:")).map(str::to_string)
}

/// The remote `a=max-message-size` (RFC 8841): absent means 64 KiB, 0 means no limit.
pub(super) fn sdp_max_message_size(sdp: &str) -> usize {
    let value = sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=max-message-size:"));
    match value.map(|v| v.trim().parse::<u64>()) {
        Some(Ok(0)) => usize::MAX,
        Some(Ok(n)) => usize::try_from(n).unwrap_or(usize::MAX),
        _ => DEFAULT_REMOTE_MAX_MESSAGE,
    }
}
