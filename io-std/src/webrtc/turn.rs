//! A TURN relay (RFC 8656) for one of the engine's sockets: `turn-client-proto`'s sans-IO
//! client allocates a relayed address with long-term credentials, refreshes it, installs
//! permissions and channels, and wraps what str0m sends from the relayed address in Send
//! indications or ChannelData; what the server relays back comes out as datagrams from the
//! remote peer to the relayed address. The client reaches its server over the engine's UDP
//! socket, or (`?transport=tcp`) over a TCP connection of its own (RFC 8656 §3.1: the same
//! messages, ChannelData padded, framed by their lengths), with TLS over it for `turns:`
//! (RFC 7065), kept non-blocking with a bounded backlog by the `turn_stream` module. This
//! module only moves bytes and time in and out.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::net::UdpSocket;
use std::time::Instant as StdInstant;

use turn_client_proto::api::{TurnClientApi, TurnConfig, TurnEvent, TurnPollRet, TurnRecvRet};
use turn_client_proto::client::TurnClient;
use turn_client_proto::stun::Instant as TurnInstant;
use turn_client_proto::stun::agent::Transmit;
use turn_client_proto::stun::types::TransportType;
use turn_client_proto::stun::types::attribute::ErrorCode;
use turn_client_proto::stun::types::message::{Message, MessageClass};
use turn_client_proto::tcp::TurnClientTcp;
use turn_client_proto::types::{AddressFamily, TurnCredentials};
use turn_client_proto::udp::TurnClientUdp;

use super::EngineStats;
use super::config::{TurnServer, TurnTransport};
use super::turn_stream::{MAX_TCP_FRAME, MAX_TCP_READ_PER_DRIVE, TCP_CONNECT_TIMEOUT, TcpLink, stream_frame};
use crate::tls::{TlsOptions, TlsSession};

/// Peers one relay installs permissions for; beyond, a remote's candidates are not permitted
/// (a hostile peer signalling thousands of addresses cannot make us flood the server).
const MAX_PERMISSIONS: usize = 64;

/// How an allocation ended up (no Godot counterpart: the relay state of an ICE agent that
/// Godot's `WebRTCPeerConnection` keeps inside its engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayState {
    /// Allocate request in flight (with its retransmissions).
    Allocating,
    /// The server relays for us at this address.
    Allocated(SocketAddr),
    /// No allocation: the reason, for `EngineStats::last_error`.
    Failed(String),
}

/// One allocation on one TURN server, over one of the caller's UDP sockets (the relay candidate
/// of Godot's `WebRTCPeerConnection` `iceServers` `turn:` entries). The caller owns the
/// sockets and the clock loop: it calls [`drive`](Self::drive) when
/// [`next_timeout`](Self::next_timeout) is due, hands datagrams from [`server`](Self::server)
/// to [`receive`](Self::receive), calls [`read_tcp`](Self::read_tcp) on each poll, and sends
/// what its ICE agent sends from the relayed address with [`send`](Self::send).
pub struct TurnRelay {
    client: TurnClient,
    /// The TCP connection to the server (TLS over it for `turns:`); `None` when the client
    /// speaks over the UDP socket.
    tcp: Option<TcpLink>,
    /// Why the TCP connection (or the TLS session) could not even be started, reported by the
    /// first drive.
    link_error: Option<String>,
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
    /// The TURN server this relay allocates on: datagrams from it on the relay's UDP socket
    /// go to [`receive`](Self::receive).
    #[must_use]
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The index of the socket given to [`allocate`](Self::allocate).
    #[must_use]
    pub fn socket(&self) -> usize {
        self.socket
    }

    /// How the allocation stands.
    #[must_use]
    pub fn state(&self) -> &RelayState {
        &self.state
    }

    /// Starts allocating on `server` (an address of `turn`'s host) from the socket bound to
    /// `local` (UDP), or over a new TCP connection from its address, with a TLS session from
    /// `tls` (the engine's options, or why there are none) for `turns:`. UDP requests are
    /// retried 0.2, 0.6, 1.4 and 3 s after the first and given up 1.6 s after the last, so an
    /// unreachable server is reported within 5 s; a TCP connection and its TLS handshake get as
    /// long to come up.
    pub fn allocate(
        socket: usize,
        local: SocketAddr,
        server: SocketAddr,
        turn: &TurnServer,
        tls: Option<&Result<TlsOptions, String>>,
    ) -> Self {
        let mut config = TurnConfig::new(TurnCredentials::new(&turn.username, &turn.credential));
        config.set_request_retransmits(
            Duration::from_millis(200),
            Duration::from_millis(1600),
            5,
            Duration::from_millis(1600),
        );
        // The relayed address is of the server's family (RFC 6156 REQUESTED-ADDRESS-FAMILY):
        // an IPv6 server relays for IPv6 peers.
        if server.is_ipv6() {
            config.set_address_family(AddressFamily::IPV6);
        }
        let epoch = StdInstant::now();
        let session = match (turn.transport, tls) {
            (TurnTransport::Tls, Some(Ok(options))) => {
                TlsSession::client(options, &turn.host).map(Some).map_err(|e| e.to_string())
            }
            (TurnTransport::Tls, Some(Err(why))) => Err(why.clone()),
            (TurnTransport::Tls, None) => Err(String::from("no TLS configuration")),
            (TurnTransport::Udp | TurnTransport::Tcp, _) => Ok(None),
        };
        let link = match turn.transport {
            TurnTransport::Udp => None,
            TurnTransport::Tcp | TurnTransport::Tls => {
                let over = if turn.transport == TurnTransport::Tls { "TLS" } else { "TCP" };
                Some(
                    session
                        .and_then(|session| {
                            TcpLink::connect(local.ip(), server, session).map_err(|e| e.to_string())
                        })
                        .map_err(|e| format!("TURN server {server} over {over}: {e}")),
                )
            }
        };
        let (client, tcp, link_error) = match link {
            Some(Ok(link)) => {
                (TurnClient::Tcp(TurnClientTcp::allocate(link.local, server, config)), Some(link), None)
            }
            // A client that is never driven: the first drive reports the reason.
            Some(Err(why)) => {
                (TurnClient::Udp(TurnClientUdp::allocate(local, server, config)), None, Some(why))
            }
            None => (TurnClient::Udp(TurnClientUdp::allocate(local, server, config)), None, None),
        };
        Self {
            client,
            tcp,
            link_error,
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
    pub fn relayed(&self) -> Option<SocketAddr> {
        match self.state {
            RelayState::Allocated(addr) => Some(addr),
            _ => None,
        }
    }

    /// When [`drive`](Self::drive) is due.
    pub fn next_timeout(&self) -> Option<StdInstant> {
        matches!(self.state, RelayState::Failed(_)).then_some(()).map_or(Some(self.next), |()| None)
    }

    /// Runs the client's timers (retransmissions, refreshes) and sends what it produced;
    /// returns the state when it changed.
    pub fn drive(&mut self, socket: &UdpSocket, stats: &mut EngineStats) -> Option<RelayState> {
        if matches!(self.state, RelayState::Failed(_)) {
            return None;
        }
        if let Some(reason) = self.link_failure() {
            self.state = RelayState::Failed(reason);
            return Some(self.state.clone());
        }
        match &mut self.tcp {
            // Nothing is sent before the connection (and TLS) is up; the client's timers wait.
            Some(link) if !link.is_ready() => return None,
            Some(link) => link.write_backlog(),
            None => {}
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

    /// Why the TCP connection to the server (or TLS over it) failed or never came up in time,
    /// if it did.
    fn link_failure(&mut self) -> Option<String> {
        if let Some(reason) = self.link_error.take() {
            return Some(reason);
        }
        let server = self.server;
        let link = self.tcp.as_mut()?;
        let over = link.transport_name();
        match link.poll_ready() {
            Ok(true) => None,
            Ok(false) if self.epoch.elapsed() < TCP_CONNECT_TIMEOUT => None,
            Ok(false) if link.is_connected() => {
                Some(format!("TURN server {server} over TLS: no TLS handshake within 5 s"))
            }
            Ok(false) => Some(format!("TURN server {server} over {over}: no connection within 5 s")),
            // TLS errors say "TLS: ..." themselves.
            Err(e) => {
                let why = e.to_string();
                Some(format!(
                    "TURN server {server} over {over}: {}",
                    why.strip_prefix("TLS: ").unwrap_or(&why)
                ))
            }
        }
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
            if self.send_frame(t.data.as_ref(), socket) {
                stats.turn_datagrams_sent += 1;
            }
        }
    }

    /// Sends one message or ChannelData to the server over the client's transport.
    fn send_frame(&mut self, frame: &[u8], socket: &UdpSocket) -> bool {
        match &mut self.tcp {
            Some(link) => link.send(frame),
            None => socket.send_to(frame, self.server).is_ok(),
        }
    }

    /// Reads what the server sent over TCP or TLS (a bounded amount) and hands it to
    /// [`receive`](Self::receive); the connection closing ends the allocation. Nothing for a
    /// relay over UDP, whose datagrams come through the engine's socket.
    pub fn read_tcp(
        &mut self,
        socket: &UdpSocket,
        stats: &mut EngineStats,
        mut deliver: impl FnMut(SocketAddr, &[u8]),
    ) {
        let mut read = 0;
        while read < MAX_TCP_READ_PER_DRIVE && !matches!(self.state, RelayState::Failed(_)) {
            // A link that ended is reported by the next drive, as any failure of the link.
            let Some(link) = self.tcp.as_mut() else { return };
            let local = link.local;
            let Some(n) = link.read_some() else { return };
            read += n;
            // The client is given whole frames only, without padding: its own stream buffer
            // expects neither padding nor garbage, and would grow on garbage.
            loop {
                let Some(link) = self.tcp.as_mut() else { return };
                match stream_frame(&link.incoming) {
                    Ok(Some((total, content))) => {
                        let frame: Vec<u8> = link.incoming.drain(..total).take(content).collect();
                        self.receive(local, &frame, socket, stats, &mut deliver);
                    }
                    Ok(None) => break,
                    Err(()) => {
                        link.end("the server sent what is no STUN message or ChannelData");
                        return;
                    }
                }
            }
            // What stays is less than one frame; the check keeps that a bound.
            if let Some(link) = self.tcp.as_mut().filter(|l| l.incoming.len() > MAX_TCP_FRAME) {
                link.end("the server sent a frame over 64 KiB");
                return;
            }
        }
    }

    /// A datagram from the TURN server: the client's own business, or a peer's datagram it
    /// relayed to us (returned with the peer's address). Malformed or unexpected ones are
    /// dropped by the client.
    pub fn receive(
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
        let transport = if self.tcp.is_some() { TransportType::Tcp } else { TransportType::Udp };
        let transmit = Transmit { data: datagram, transport, from: self.server, to: local };
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
    /// wants to reach); bounded (64 addresses).
    pub fn permit(&mut self, peer: IpAddr, socket: &UdpSocket, stats: &mut EngineStats) {
        // A relay reaches peers of its own address family only (the server would refuse).
        if self.relayed().is_none_or(|relayed| relayed.is_ipv4() != peer.is_ipv4())
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
    pub fn send(&mut self, peer: SocketAddr, data: &[u8], socket: &UdpSocket, stats: &mut EngineStats) {
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
            if self.send_frame(&transmit.data, socket) {
                stats.datagrams_sent += 1;
                stats.relayed_datagrams_sent += 1;
                stats.bytes_sent += transmit.data.len() as u64;
                stats.largest_datagram = stats.largest_datagram.max(data.len());
            }
        }
        self.flush(socket, stats);
    }

    /// Deletes the allocation (a Refresh with lifetime 0), best effort.
    pub fn close(&mut self, socket: &UdpSocket, stats: &mut EngineStats) {
        if self.relayed().is_some() {
            let now = self.now();
            let _ = self.client.delete(now);
            self.flush(socket, stats);
        }
        if let Some(link) = &mut self.tcp {
            link.close();
        }
        self.state = RelayState::Failed(String::from("closed"));
    }
}
