//! The properties of Godot's `WebSocketMultiplayerPeer`, set before `create_*`, and Godot 3's
//! `set_buffers`: how they become the core's limits.

use core::time::Duration;

use multipeer::peer::{ConnectionStatus, Protocol};
use multipeer::ws;

use super::{MultiplayerError, SERVER_QUEUE_ALLOWANCE, WebSocketMultiplayerPeer};

/// The settings Godot copies into each connection when it starts (the properties of
/// `WebSocketMultiplayerPeer`, plus the wire protocol and SceneMultiplayer's `server_relay`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    pub(super) protocol: Protocol,
    pub(super) server_relay: bool,
    pub(super) supported_protocols: Vec<String>,
    pub(super) handshake_headers: Vec<String>,
    pub(super) inbound_buffer_size: usize,
    pub(super) outbound_buffer_size: usize,
    pub(super) max_queued_packets: usize,
    pub(super) max_outbound_packets: usize,
    pub(super) handshake_timeout: Duration,
    pub(super) slow_peer_timeout: Option<Duration>,
}

impl Settings {
    /// The core's limits; a server's outbound queue gets [`SERVER_QUEUE_ALLOWANCE`] more.
    pub(super) fn ws_config(&self, server: bool) -> ws::Config {
        let allowance = if server { SERVER_QUEUE_ALLOWANCE } else { 0 };
        ws::Config {
            max_message_size: self.inbound_buffer_size,
            max_queued_messages: self.max_queued_packets,
            outbound_buffer_size: self.outbound_buffer_size,
            outbound_queue_size: Some(self.outbound_buffer_size.saturating_add(allowance)),
            max_outbound_messages: self.max_outbound_packets,
            handshake_timeout: self.handshake_timeout,
            ..ws::Config::GODOT
        }
    }
}

/// The shortest handshake timeout: a zero one could never be met.
pub const MIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(1);

/// Godot 3's buffer size rounding: the power of two at or above `n` (`1 << nearest_shift(n − 1)`).
fn pow2_at_least(n: u32) -> Option<usize> {
    let shift = u32::BITS - n.checked_sub(1)?.leading_zeros();
    1usize.checked_shl(shift).filter(|v| *v <= 1 << 30)
}

impl WebSocketMultiplayerPeer {
    /// Which Godot protocol is spoken ([`Protocol::Godot4`] by default); Godot has one class per
    /// major version instead.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.settings.protocol = protocol;
    }

    /// The protocol the next `create_*` uses (in Godot, the class that was instantiated).
    #[must_use]
    pub fn get_protocol(&self) -> Protocol {
        self.settings.protocol
    }

    /// Godot 4 only: speak SceneMultiplayer's relay (`ADD_PEER`, `DEL_PEER`, `RELAY`), as
    /// SceneMultiplayer's `server_relay` (default true); Godot 3 always relays.
    pub fn set_server_relay(&mut self, relay: bool) {
        self.settings.server_relay = relay;
    }

    /// SceneMultiplayer's `server_relay` as set for the next `create_*`.
    #[must_use]
    pub fn is_server_relay_enabled(&self) -> bool {
        self.settings.server_relay
    }

    /// `supported_protocols`: subprotocols offered by a client or accepted by a server (entries
    /// are trimmed, as Godot does).
    pub fn set_supported_protocols<I, S>(&mut self, protocols: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.supported_protocols =
            protocols.into_iter().map(|p| p.into().trim().to_owned()).collect();
    }

    /// `supported_protocols`.
    #[must_use]
    pub fn get_supported_protocols(&self) -> &[String] {
        &self.settings.supported_protocols
    }

    /// `handshake_headers`: raw `"Name: value"` lines added to the client's request or the
    /// server's 101 response (checked at `create_*`).
    pub fn set_handshake_headers<I, S>(&mut self, headers: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.handshake_headers = headers.into_iter().map(Into::into).collect();
    }

    /// `handshake_headers`.
    #[must_use]
    pub fn get_handshake_headers(&self) -> &[String] {
        &self.settings.handshake_headers
    }

    /// `inbound_buffer_size` (65535): the largest message accepted; a larger one is answered
    /// with Close 1009, as Godot 4.4+ does.
    pub fn set_inbound_buffer_size(&mut self, bytes: usize) {
        self.settings.inbound_buffer_size = bytes;
    }

    /// `inbound_buffer_size`.
    #[must_use]
    pub fn get_inbound_buffer_size(&self) -> usize {
        self.settings.inbound_buffer_size
    }

    /// `outbound_buffer_size` (65535): most bytes queued per connection, so also the largest
    /// message sent; unlike Godot 4's server, a `put_packet` beyond it fails visibly.
    pub fn set_outbound_buffer_size(&mut self, bytes: usize) {
        self.settings.outbound_buffer_size = bytes;
    }

    /// `outbound_buffer_size`.
    #[must_use]
    pub fn get_outbound_buffer_size(&self) -> usize {
        self.settings.outbound_buffer_size
    }

    /// `max_queued_packets` (4096; 2048 in 4.0–4.3): most messages queued each way per
    /// connection. A full inbound queue stops reading that socket (TCP back-pressure, as
    /// 4.4+), it never drops.
    pub fn set_max_queued_packets(&mut self, packets: usize) {
        self.settings.max_queued_packets = packets;
        self.settings.max_outbound_packets = packets;
    }

    /// `max_queued_packets` (inbound, when `set_buffers` gave the two directions different
    /// values).
    #[must_use]
    pub fn get_max_queued_packets(&self) -> usize {
        self.settings.max_queued_packets
    }

    /// `handshake_timeout` (3 s): time for TCP connect (client) and the HTTP upgrade, and on a
    /// client also for the id (which Godot 4 waits for forever). Godot refuses a timeout of 0
    /// with an error print and keeps the old one; here it becomes the shortest,
    /// [`MIN_HANDSHAKE_TIMEOUT`], which the getter shows, so this setter needs no error like
    /// the others.
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.settings.handshake_timeout = timeout.max(MIN_HANDSHAKE_TIMEOUT);
    }

    /// `handshake_timeout`.
    #[must_use]
    pub fn get_handshake_timeout(&self) -> Duration {
        self.settings.handshake_timeout
    }

    /// How long a server lets a peer keep its send queue full, with a relay waiting on it,
    /// without writing a byte before disconnecting it (1008) so the senders go on; `None`
    /// never does. Godot has no such property: its server drops what does not fit. 10 s by
    /// default; see [`ServerConfig::slow_peer_timeout`](multipeer::peer::ServerConfig).
    pub fn set_slow_peer_timeout(&mut self, timeout: Option<Duration>) {
        self.settings.slow_peer_timeout = timeout;
    }

    /// The slow-peer timeout the next `create_server` uses.
    #[must_use]
    pub fn get_slow_peer_timeout(&self) -> Option<Duration> {
        self.settings.slow_peer_timeout
    }

    /// Godot 3's `set_buffers(in_kb, in_packets, out_kb, out_packets)`, rounded up to powers of
    /// two as 3.x does (64 KB → 65536 bytes, 1024 packets → 1024 slots) and mapped onto the
    /// core's limits as 3.x enforces them on the wire:
    ///
    /// * inbound: messages up to 2^k bytes are accepted and larger ones get Close 1009, as
    ///   3.x's `max_recv_msg_length` does; 3.x's ring (2^k − 1 bytes) then silently drops a
    ///   message of exactly 2^k bytes, which is delivered here instead; at most 2^p − 1 queued
    ///   messages (the ring's slots) before reading stops;
    /// * outbound (3.3.3+): queued bytes plus a new message must stay below 2^k, so one
    ///   message is at most 2^k − 1 bytes; at most 2^p queued messages.
    ///
    /// # Errors
    /// [`MultiplayerError::AlreadyInUse`] once a server or client is active (3.x: `FAILED`);
    /// [`MultiplayerError::InvalidParameter`] for 0 or a size beyond 1 GiB.
    pub fn set_buffers(
        &mut self,
        in_kb: u32,
        in_packets: u32,
        out_kb: u32,
        out_packets: u32,
    ) -> Result<(), MultiplayerError> {
        if self.get_connection_status() != ConnectionStatus::Disconnected {
            return Err(MultiplayerError::AlreadyInUse);
        }
        let kb = |n: u32| pow2_at_least(n).and_then(|v| v.checked_mul(1024)).filter(|v| *v <= 1 << 30);
        let bad = MultiplayerError::InvalidParameter("set_buffers values must be 1 ..= 2^20");
        let (Some(in_bytes), Some(in_slots), Some(out_bytes), Some(out_slots)) =
            (kb(in_kb), pow2_at_least(in_packets), kb(out_kb), pow2_at_least(out_packets))
        else {
            return Err(bad);
        };
        self.settings.inbound_buffer_size = in_bytes;
        self.settings.max_queued_packets = (in_slots - 1).max(1);
        self.settings.outbound_buffer_size = out_bytes - 1;
        self.settings.max_outbound_packets = out_slots;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn godot3_buffer_rounding() {
        assert_eq!(pow2_at_least(64), Some(64));
        assert_eq!(pow2_at_least(65), Some(128));
        assert_eq!(pow2_at_least(1), Some(1));
        assert_eq!(pow2_at_least(1024), Some(1024));
        assert_eq!(pow2_at_least(1025), Some(2048));
        assert_eq!(pow2_at_least(0), None);
        let mut peer = WebSocketMultiplayerPeer::new();
        peer.set_buffers(64, 1024, 64, 1024).unwrap();
        // 3.2.3 on the wire: 65536-byte messages pass, 1023 packet slots, 65535 bytes out.
        assert_eq!(peer.get_inbound_buffer_size(), 65536);
        assert_eq!(peer.get_max_queued_packets(), 1023);
        assert_eq!(peer.get_outbound_buffer_size(), 65535);
        assert_eq!(peer.settings.max_outbound_packets, 1024);
        peer.set_buffers(65, 1025, 3, 2).unwrap();
        assert_eq!(peer.get_inbound_buffer_size(), 131_072);
        assert_eq!(peer.get_max_queued_packets(), 2047);
        assert_eq!(peer.get_outbound_buffer_size(), 4095);
        assert_eq!(peer.settings.max_outbound_packets, 2);
        assert!(matches!(peer.set_buffers(0, 1, 1, 1), Err(MultiplayerError::InvalidParameter(_))));
        assert!(matches!(peer.set_buffers(1 << 21, 1, 1, 1), Err(MultiplayerError::InvalidParameter(_))));
        assert_eq!(WebSocketMultiplayerPeer::godot3().get_inbound_buffer_size(), 65536);
        assert_eq!(WebSocketMultiplayerPeer::godot_4_0().get_max_queued_packets(), 2048);
        assert_eq!(WebSocketMultiplayerPeer::new().get_max_queued_packets(), 4096);
    }

    #[test]
    fn a_zero_handshake_timeout_becomes_the_shortest() {
        let mut peer = WebSocketMultiplayerPeer::new();
        peer.set_handshake_timeout(Duration::ZERO);
        assert_eq!(peer.get_handshake_timeout(), MIN_HANDSHAKE_TIMEOUT);
        peer.set_handshake_timeout(Duration::from_millis(1500));
        assert_eq!(peer.get_handshake_timeout(), Duration::from_millis(1500));
        assert_eq!(peer.get_slow_peer_timeout(), Some(Duration::from_secs(10)));
        peer.set_slow_peer_timeout(None);
        assert_eq!(peer.get_slow_peer_timeout(), None);
    }
}
