//! A TURN relay (RFC 8656) for one of the engine's sockets: `turn-client-proto`'s sans-IO UDP
//! client allocates a relayed address with long-term credentials, refreshes it, installs
//! permissions and channels, and wraps what str0m sends from the relayed address in Send
//! indications or ChannelData; what the server relays back comes out as datagrams from the
//! remote peer to the relayed address. This module only moves bytes and time in and out.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::net::UdpSocket;
use std::time::Instant as StdInstant;

use turn_client_proto::api::{TurnClientApi, TurnConfig, TurnEvent, TurnPollRet, TurnRecvRet};
use turn_client_proto::stun::Instant as TurnInstant;
use turn_client_proto::stun::agent::Transmit;
use turn_client_proto::stun::types::TransportType;
use turn_client_proto::stun::types::attribute::ErrorCode;
use turn_client_proto::stun::types::message::{Message, MessageClass};
use turn_client_proto::types::TurnCredentials;
use turn_client_proto::udp::TurnClientUdp;

use super::EngineStats;

/// Peers one relay installs permissions for; beyond, a remote's candidates are not permitted
/// (a hostile peer signalling thousands of addresses cannot make us flood the server).
const MAX_PERMISSIONS: usize = 64;

/// How an allocation ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RelayState {
    /// Allocate request in flight (with its retransmissions).
    Allocating,
    /// The server relays for us at this address.
    Allocated(SocketAddr),
    /// No allocation: the reason, for `EngineStats::last_error`.
    Failed(String),
}

/// One allocation on one TURN server, over one of the group's sockets.
pub(crate) struct TurnRelay {
    client: TurnClientUdp,
    /// Index of the socket in its group.
    pub(crate) socket: usize,
    pub(crate) server: SocketAddr,
    pub(crate) state: RelayState,
    /// `TurnInstant`s count from here.
    epoch: StdInstant,
    next: StdInstant,
    permitted: Vec<IpAddr>,
    /// Peers a channel was asked for (ChannelData: 4 bytes of overhead instead of the 36 of a
    /// Send indication), bounded like the permissions.
    channels: Vec<SocketAddr>,
    /// The last error response from the server (code, reason), to say why an allocation failed.
    last_refusal: Option<(u16, String)>,
}

impl TurnRelay {
    /// Starts allocating on `server` from the socket bound to `local`. Requests are retried
    /// 0.2, 0.6, 1.4 and 3 s after the first and given up 1.6 s after the last, so an
    /// unreachable server is reported within 5 s.
    pub(crate) fn allocate(
        socket: usize,
        local: SocketAddr,
        server: SocketAddr,
        user: &str,
        password: &str,
    ) -> Self {
        let mut config = TurnConfig::new(TurnCredentials::new(user, password));
        config.set_request_retransmits(
            Duration::from_millis(200),
            Duration::from_millis(1600),
            5,
            Duration::from_millis(1600),
        );
        let epoch = StdInstant::now();
        Self {
            client: TurnClientUdp::allocate(local, server, config),
            socket,
            server,
            state: RelayState::Allocating,
            epoch,
            next: epoch,
            permitted: Vec::new(),
            channels: Vec::new(),
            last_refusal: None,
        }
    }

    fn now(&self) -> TurnInstant {
        TurnInstant::from_std(self.epoch) + StdInstant::now().saturating_duration_since(self.epoch)
    }

    /// The relayed address, once allocated.
    pub(crate) fn relayed(&self) -> Option<SocketAddr> {
        match self.state {
            RelayState::Allocated(addr) => Some(addr),
            _ => None,
        }
    }

    /// When [`drive`](Self::drive) is due.
    pub(crate) fn next_timeout(&self) -> Option<StdInstant> {
        matches!(self.state, RelayState::Failed(_)).then_some(()).map_or(Some(self.next), |()| None)
    }

    /// Runs the client's timers (retransmissions, refreshes) and sends what it produced;
    /// returns the state when it changed.
    pub(crate) fn drive(&mut self, socket: &UdpSocket, stats: &mut EngineStats) -> Option<RelayState> {
        if matches!(self.state, RelayState::Failed(_)) {
            return None;
        }
        let now = self.now();
        let poll = self.client.poll(now);
        self.flush(socket, stats);
        let mut changed = None;
        while let Some(event) = self.client.poll_event() {
            match event {
                TurnEvent::AllocationCreated(TransportType::Udp, relayed) if self.relayed().is_none() => {
                    self.state = RelayState::Allocated(relayed);
                    changed = Some(self.state.clone());
                }
                TurnEvent::AllocationCreateFailed(_) if matches!(self.state, RelayState::Allocating) => {
                    self.state = RelayState::Failed(self.refusal());
                    changed = Some(self.state.clone());
                }
                _ => {}
            }
        }
        match poll {
            TurnPollRet::WaitUntil(at) => {
                self.next = self.epoch + at.saturating_duration_since(TurnInstant::from_std(self.epoch));
            }
            TurnPollRet::Closed if !matches!(self.state, RelayState::Failed(_)) => {
                self.state = RelayState::Failed(if self.relayed().is_some() {
                    format!("TURN server {}: allocation closed", self.server)
                } else {
                    self.refusal()
                });
                changed = Some(self.state.clone());
            }
            // TCP allocations are never requested.
            _ => {}
        }
        changed
    }

    /// Why no allocation was made: the server's last error response, or its silence.
    fn refusal(&self) -> String {
        match &self.last_refusal {
            Some((401, reason)) => {
                format!("TURN server {}: allocation refused: 401 {reason} (wrong credentials)", self.server)
            }
            Some((code, reason)) => {
                format!("TURN server {}: allocation refused: {code} {reason}", self.server)
            }
            None => format!("TURN server {}: no answer", self.server),
        }
    }

    fn flush(&mut self, socket: &UdpSocket, stats: &mut EngineStats) {
        let now = self.now();
        // A transmit per request or refresh: a handful at a time.
        for _ in 0..64 {
            let Some(t) = self.client.poll_transmit(now) else { break };
            if socket.send_to(t.data.as_ref(), t.to).is_ok() {
                stats.turn_datagrams_sent += 1;
            }
        }
    }

    /// A datagram from the TURN server: the client's own business, or a peer's datagram it
    /// relayed to us (returned with the peer's address). Malformed or unexpected ones are
    /// dropped by the client.
    pub(crate) fn receive(
        &mut self,
        local: SocketAddr,
        datagram: &[u8],
        socket: &UdpSocket,
        stats: &mut EngineStats,
        mut deliver: impl FnMut(SocketAddr, &[u8]),
    ) {
        let now = self.now();
        // The client retries a 401 with fresh credentials and says only "failed" in the end;
        // the code and reason are kept to tell the user why.
        if let Ok(message) = Message::from_bytes(datagram) {
            if message.has_class(MessageClass::Error) {
                if let Ok(error) = message.attribute::<ErrorCode>() {
                    let reason: String = error.reason().chars().take(64).collect();
                    self.last_refusal = Some((error.code(), reason));
                }
            }
        }
        let transmit =
            Transmit { data: datagram, transport: TransportType::Udp, from: self.server, to: local };
        match self.client.recv(transmit, now) {
            TurnRecvRet::PeerData(data) => {
                stats.turn_datagrams_received += 1;
                deliver(data.peer, data.data());
            }
            TurnRecvRet::Handled | TurnRecvRet::Ignored(_) | TurnRecvRet::PeerIcmp { .. } => {}
        }
        while let Some(data) = self.client.poll_recv(now) {
            stats.turn_datagrams_received += 1;
            deliver(data.peer, data.data());
        }
        // An answer may have produced more requests (the authenticated retry, a refresh).
        self.flush(socket, stats);
    }

    /// Lets `peer` send to us through the relay (a remote candidate, or a destination str0m
    /// wants to reach); bounded by [`MAX_PERMISSIONS`].
    pub(crate) fn permit(&mut self, peer: IpAddr, socket: &UdpSocket, stats: &mut EngineStats) {
        if self.relayed().is_none()
            || self.permitted.contains(&peer)
            || self.permitted.len() >= MAX_PERMISSIONS
        {
            return;
        }
        let now = self.now();
        if self.client.create_permission(TransportType::Udp, peer, now).is_ok() {
            self.permitted.push(peer);
        }
        self.flush(socket, stats);
    }

    /// Sends `data` to `peer` through the relay. Until the permission is installed, the
    /// datagram is dropped (ICE retransmits its checks).
    pub(crate) fn send(
        &mut self,
        peer: SocketAddr,
        data: &[u8],
        socket: &UdpSocket,
        stats: &mut EngineStats,
    ) {
        self.permit(peer.ip(), socket, stats);
        let now = self.now();
        if self.client.have_permission(TransportType::Udp, peer.ip())
            && !self.channels.contains(&peer)
            && self.channels.len() < MAX_PERMISSIONS
        {
            // Until the server confirms it, data goes in Send indications.
            let _ = self.client.bind_channel(TransportType::Udp, peer, now);
            self.channels.push(peer);
        }
        if let Ok(Some(transmit)) = self.client.send_to(TransportType::Udp, peer, data, now) {
            let transmit = transmit.build();
            if socket.send_to(&transmit.data, transmit.to).is_ok() {
                stats.datagrams_sent += 1;
                stats.relayed_datagrams_sent += 1;
                stats.bytes_sent += transmit.data.len() as u64;
                stats.largest_datagram = stats.largest_datagram.max(data.len());
            }
        }
        self.flush(socket, stats);
    }

    /// Deletes the allocation (a Refresh with lifetime 0), best effort.
    pub(crate) fn close(&mut self, socket: &UdpSocket, stats: &mut EngineStats) {
        if self.relayed().is_some() {
            let now = self.now();
            let _ = self.client.delete(now);
            self.flush(socket, stats);
        }
        self.state = RelayState::Failed(String::from("closed"));
    }
}
