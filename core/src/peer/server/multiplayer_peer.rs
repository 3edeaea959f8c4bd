//! The application's side of the server: Godot's `MultiplayerPeer` members.

use rand_core::CryptoRng;

use super::*;

impl<R: CryptoRng> MultiplayerPeer for Server<R> {
    fn unique_id(&self) -> Option<PeerId> {
        Some(PeerId::SERVER)
    }

    fn connection_status(&self) -> ConnectionStatus {
        if self.closed { ConnectionStatus::Disconnected } else { ConnectionStatus::Connected }
    }

    fn is_server_relay_supported(&self) -> bool {
        self.config.relay || self.config.protocol == Protocol::Godot3
    }

    crate::peer::kept_send_settings!(target, mode, channel);

    fn set_refuse_new_connections(&mut self, refuse: bool) {
        self.config.refuse_new_connections = refuse;
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.config.refuse_new_connections
    }

    fn put_packet(&mut self, data: &[u8]) -> Result<(), PutError> {
        self.timeless = true;
        let result = self.send_to(self.target, data);
        self.serve_ready();
        self.timeless = false;
        result
    }

    fn hold_peer(&mut self, peer: PeerId, held: bool) -> bool {
        self.set_peer_held(peer, held)
    }

    fn max_packet_size(&self) -> usize {
        let overhead = match self.config.protocol {
            Protocol::Godot3 => crate::peer::godot3::HEADER_LEN,
            Protocol::Godot4 => 0,
        };
        self.config.ws.outbound_buffer_size.saturating_sub(overhead)
    }

    fn available_packet_count(&self) -> usize {
        self.inbox.len()
    }

    fn peek_packet(&self) -> Option<Packet<'_>> {
        let (from, data) = match self.inbox.front()? {
            inbox::Front::Here { from, data, .. } => (from, data),
            inbox::Front::Held { index, generation } => {
                let slot = self.slots.get(index as usize).filter(|s| s.generation == generation)?;
                let c = slot.conn.as_ref()?;
                let data = c.ws.peek_message()?.data.get(usize::from(c.app_hold?)..)?;
                // Its sender may have left since: the packet is still its.
                (c.peer.or(c.former)?, data)
            }
        };
        Some(Packet { info: PacketInfo { from, mode: TransferMode::Reliable, channel: 0 }, data })
    }

    fn pop_packet(&mut self) -> bool {
        let Some(held) = self.inbox.pop() else { return false };
        self.popped += 1;
        self.timeless = true;
        if let Some((index, generation)) = held {
            self.release_hold(index, generation);
        }
        self.unblock_routing();
        self.serve_ready();
        self.timeless = false;
        true
    }

    fn disconnect_peer(&mut self, now: Instant, peer: PeerId, force: bool) -> Result<(), UnknownPeer> {
        self.disconnect_peer_with(now, peer, CloseCode::NORMAL, "", force)
    }

    fn disconnect_peer_with(
        &mut self,
        now: Instant,
        peer: PeerId,
        code: CloseCode,
        reason: &str,
        force: bool,
    ) -> Result<(), UnknownPeer> {
        Server::disconnect_peer_with(self, now, peer, code, reason, force)
    }

    /// Godot 3's `stop()` closes every peer with 1000 and no reason (3.2.3 and 3.6.2 alike),
    /// and so does a Godot 3 server here; a Godot 4 server says 1001 "server closing", where
    /// Godot 4's `close()` drops TCP without a Close frame.
    fn close(&mut self, now: Instant) {
        self.set_now(now);
        self.closed = true;
        let (code, reason) = match self.config.protocol {
            Protocol::Godot3 => (CloseCode::NORMAL, ""),
            Protocol::Godot4 => (CloseCode::GOING_AWAY, "server closing"),
        };
        for index in 0..self.slots.len() as u32 {
            let live = self.slots[index as usize].conn.as_ref().is_some_and(|c| !c.released);
            if live {
                self.end_peer(index, DisconnectReason::Kicked, code, reason, false);
            }
        }
        self.ready.clear();
        self.popped += self.inbox.len() as u64;
        self.inbox.clear();
        self.drop_holds();
    }

    fn poll_event(&mut self) -> Option<Event> {
        let (_, event) = self.events.pop_front()?;
        if matches!(event, Event::PacketDropped { .. } | Event::ConnectionRejected(_)) {
            self.reports = self.reports.saturating_sub(1);
        }
        Some(event)
    }
}
