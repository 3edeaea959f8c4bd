//! The WebRTC engine behind a [`Mesh`]: carries out its commands with one `str0m::Rtc` per
//! remote peer and feeds what str0m reports back as engine events.

use core::net::SocketAddr;
use std::collections::BTreeMap;
use std::time::Instant as StdInstant;

use multipeer::mesh::{Command, ConnectionState, EngineEvent, Mesh};
use multipeer::peer::{PeerId, PutError};

use super::connection::PeerConnection;
use super::{EngineStats, WebRtcConfig};
use crate::Clock;

/// Largest UDP datagram we read (str0m sends at most its MTU, 1150 by default; browsers 1200).
const RECEIVE_BUFFER: usize = 2048;

/// One `str0m::Rtc` per remote peer, driven by a [`Mesh`]'s commands.
pub(crate) struct Engine {
    config: WebRtcConfig,
    clock: Clock,
    peers: BTreeMap<PeerId, PeerConnection>,
    buf: Vec<u8>,
    pub(crate) stats: EngineStats,
}

impl Engine {
    pub(crate) fn new(config: WebRtcConfig) -> Self {
        Self {
            config,
            clock: Clock::new(),
            peers: BTreeMap::new(),
            buf: vec![0; RECEIVE_BUFFER],
            stats: EngineStats::default(),
        }
    }

    pub(crate) fn config(&self) -> &WebRtcConfig {
        &self.config
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Carries out one command. A send that cannot be carried out is reported, so that
    /// `put_packet` can say why; everything else is reported to the mesh as events.
    pub(crate) fn execute(&mut self, mesh: &mut Mesh, command: Command) -> Result<(), PutError> {
        match command {
            Command::CreatePeer { peer, offerer, channels } => {
                if let Some(mut old) = self.peers.remove(&peer) {
                    old.close(&mut self.stats);
                }
                match PeerConnection::create(peer, offerer, &channels, &self.config, mesh, &self.clock) {
                    Ok(connection) => {
                        self.peers.insert(peer, connection);
                    }
                    Err(e) => {
                        self.stats.last_error = Some(e.to_string());
                        let event = EngineEvent::State { peer, state: ConnectionState::Failed };
                        let _ = mesh.handle_engine_event(self.clock.now(), event);
                    }
                }
            }
            Command::RemoteDescription { peer, kind, sdp } => {
                if let Some(c) = self.peers.get_mut(&peer) {
                    c.remote_description(mesh, &self.clock, kind, &sdp);
                }
            }
            Command::RemoteCandidate { peer, candidate, .. } => {
                if let Some(c) = self.peers.get_mut(&peer) {
                    c.remote_candidate(&candidate);
                }
            }
            Command::Send { peer, channel, data } => {
                let c = self.peers.get_mut(&peer).ok_or(PutError::UnknownPeer(peer))?;
                let result = c.send(channel, data, &mut self.stats);
                if let Err(PutError::TooLarge { .. } | PutError::Full) = result {
                    self.stats.refused_sends += 1;
                }
                return result;
            }
            Command::ClosePeer { peer } => {
                if let Some(mut c) = self.peers.remove(&peer) {
                    c.close(&mut self.stats);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Drives every peer connection once: held messages, sockets, timers, outputs.
    pub(crate) fn drive(&mut self, mesh: &mut Mesh) {
        for c in self.peers.values_mut() {
            c.drive(mesh, &self.clock, &mut self.buf, &mut self.stats);
        }
    }

    /// The earliest time a peer connection must be driven.
    pub(crate) fn next_timeout(&self) -> Option<StdInstant> {
        self.peers.values().filter(|c| !c.finished).map(PeerConnection::next_timeout).min()
    }

    /// The largest message `peer` accepts (its `a=max-message-size`, capped by our buffer).
    pub(crate) fn max_message(&self, peer: PeerId) -> Option<usize> {
        self.peers.get(&peer).map(PeerConnection::max_message)
    }

    /// Every UDP socket of every peer connection (for readiness in an event loop).
    pub(crate) fn udp_sockets(&self) -> Vec<&std::net::UdpSocket> {
        self.peers.values().flat_map(PeerConnection::sockets).collect()
    }

    /// The UDP addresses this side uses for `peer`.
    pub(crate) fn local_addrs(&self, peer: PeerId) -> Vec<SocketAddr> {
        self.peers.get(&peer).map(PeerConnection::local_addrs).unwrap_or_default()
    }

    /// Server-reflexive addresses STUN servers reported for `peer`'s sockets.
    pub(crate) fn mapped_addrs(&self, peer: PeerId) -> Vec<SocketAddr> {
        self.peers.get(&peer).map(|c| c.mapped.clone()).unwrap_or_default()
    }

    /// Whether a message of `len` bytes to `peer` would be taken now; a refusal for its size or
    /// for a full outbox is counted in `refused_sends`, as a refused send is.
    pub(crate) fn check_send(&mut self, peer: PeerId, len: usize) -> Result<(), PutError> {
        let result = self.peers.get(&peer).ok_or(PutError::UnknownPeer(peer))?.can_send(len);
        if let Err(PutError::TooLarge { .. } | PutError::Full) = result {
            self.stats.refused_sends += 1;
        }
        result
    }

    /// (messages waiting for send-buffer room, messages held for the application) of `peer`.
    pub(crate) fn backlog(&self, peer: PeerId) -> (usize, usize) {
        self.peers.get(&peer).map(PeerConnection::backlog).unwrap_or_default()
    }

    /// Closes every peer connection.
    pub(crate) fn close_all(&mut self) {
        for (_, mut c) in core::mem::take(&mut self.peers) {
            c.close(&mut self.stats);
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.close_all();
    }
}
