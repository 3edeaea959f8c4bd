//! What a [`Server`] shows of itself: configuration, counters, peers, rooms and memory, read
//! without changing anything.

use alloc::string::String;

use rand_core::CryptoRng;

use super::{ConnId, PeerInfo, RoomInfo, Server, ServerConfig, ServerStats};
use crate::buffer::VecStorage;
use crate::peer::PeerId;
use crate::ws::{self, NoRng};

impl<R: CryptoRng> Server<R> {
    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Counters since start.
    #[must_use]
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Connections open now (handshaking or joined).
    #[must_use]
    pub fn connection_count(&self) -> usize {
        self.live
    }

    /// Connections that agreed to permessage-deflate (browsers offer it; Godot never does).
    #[must_use]
    pub fn compressing_connections(&self) -> usize {
        self.compressing
    }

    /// Joined peers, in ascending id order.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// Whether `peer` is joined (Godot: `has_peer`).
    #[must_use]
    pub fn has_peer(&self, peer: PeerId) -> bool {
        self.peers.contains_key(&peer)
    }

    /// The connection behind `peer` (Godot: `get_peer(id)`); also for a peer that left
    /// until its transport is released, so that how a kicked peer answered stays readable
    /// while it closes (Godot keeps the `WebSocketPeer` object as long as a script holds it).
    #[must_use]
    pub fn peer_info(&self, peer: PeerId) -> Option<PeerInfo> {
        let index = match self.peers.get(&peer) {
            Some(&index) => index,
            // Departed peers are few and short-lived: a scan only when the id is not joined.
            None => self
                .slots
                .iter()
                .position(|s| s.conn.as_ref().is_some_and(|c| !c.released && c.former == Some(peer)))?
                as u32,
        };
        let slot = self.slots.get(index as usize)?;
        let conn = slot.conn.as_ref()?;
        Some(PeerInfo {
            conn: ConnId { index, generation: slot.generation },
            addr: conn.addr,
            state: conn.ws.state(),
            subprotocol: conn.ws.protocol().map(String::from),
            buffered_amount: conn.ws.buffered_amount(),
            close: conn
                .ws
                .close_info()
                .cloned()
                .map(|info| crate::peer::presented(info, self.config.protocol)),
        })
    }

    /// The name of the room `peer` is in (`""`: the default room).
    #[must_use]
    pub fn room_of(&self, peer: PeerId) -> Option<&str> {
        let &index = self.peers.get(&peer)?;
        let room = self.slots.get(index as usize)?.conn.as_ref()?.room;
        self.rooms.name(room)
    }

    /// Every room that exists now, in name order, with its peers and traffic.
    pub fn rooms(&self) -> impl Iterator<Item = RoomInfo<'_>> + '_ {
        self.rooms.iter()
    }

    /// How many rooms exist now.
    #[must_use]
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// The WebSocket connection behind `peer`.
    #[must_use]
    pub fn connection(&self, peer: PeerId) -> Option<&ws::Connection<VecStorage, NoRng>> {
        let &index = self.peers.get(&peer)?;
        self.slots.get(index as usize)?.conn.as_ref().map(|c| &c.ws)
    }

    /// The peer id behind a connection, once joined.
    #[must_use]
    pub fn peer_of(&self, conn: ConnId) -> Option<PeerId> {
        self.get(conn).ok()?.peer
    }

    /// Bytes of buffer storage held by all connections and the inbox (memory accounting).
    #[must_use]
    pub fn buffer_footprint(&self) -> usize {
        let conns: usize =
            self.slots.iter().filter_map(|s| s.conn.as_ref()).map(|c| c.ws.buffer_footprint()).sum();
        conns + self.inbox.footprint()
    }
}
