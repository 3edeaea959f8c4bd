//! A TURN relay (RFC 8656) for one of the engine's sockets: `turn-client-proto`'s sans-IO
//! client allocates a relayed address with long-term credentials, refreshes it, installs
//! permissions and channels, and wraps what str0m sends from the relayed address in Send
//! indications or ChannelData; what the server relays back comes out as datagrams from the
//! remote peer to the relayed address. The client reaches its server over the engine's UDP
//! socket, or (`?transport=tcp`) over a TCP connection of its own (RFC 8656 §3.1: the same
//! messages, ChannelData padded, framed by their lengths), which this module keeps
//! non-blocking with a bounded backlog. This module only moves bytes and time in and out.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::io::{self, ErrorKind, Read as _, Write as _};
use std::net::{TcpStream, UdpSocket};
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
use super::config::TurnTransport;

/// Peers one relay installs permissions for; beyond, a remote's candidates are not permitted
/// (a hostile peer signalling thousands of addresses cannot make us flood the server).
const MAX_PERMISSIONS: usize = 64;

/// Bytes of TURN frames a TCP link holds while the kernel's send buffer is full; beyond, a
/// frame is dropped whole (never cut, which would break the framing), as a full UDP socket
/// drops a datagram.
const MAX_TCP_BACKLOG: usize = 256 * 1024;

/// How long connecting to a TURN server over TCP may take (an unreachable server is reported
/// then, like a silent UDP one).
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes read from a TCP link in one drive, so that one busy relay leaves the others a turn.
const MAX_TCP_READ_PER_DRIVE: usize = 256 * 1024;

/// The largest frame a TURN server sends on a stream: ChannelData of 64 KiB, padded.
const MAX_TCP_FRAME: usize = 4 + 65_535 + 3;

/// The next whole frame at the start of a TURN stream: (its length with padding, the length of
/// the STUN message or ChannelData in it); `Ok(None)` until it is all there; `Err` for bytes
/// that start neither (RFC 8656 §12: the top two bits tell them apart).
fn stream_frame(bytes: &[u8]) -> Result<Option<(usize, usize)>, ()> {
    let (Some(first), Some(length)) = (bytes.first(), bytes.get(2..4)) else { return Ok(None) };
    let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
    let (content, total) = match first >> 6 {
        // A STUN message: a 20-byte header, a length that is a multiple of 4.
        0 => (20 + length, 20 + length),
        // ChannelData: a 4-byte header, padded to 4 bytes on streams.
        1 => (4 + length, (4 + length + 3) & !3),
        _ => return Err(()),
    };
    Ok((bytes.len() >= total).then_some((total, content)))
}

/// A TCP connection to a TURN server, non-blocking from its first byte.
struct TcpLink {
    stream: TcpStream,
    /// Our end of it: the TURN client's local address.
    local: SocketAddr,
    connected: bool,
    /// Why the connection is over (the server closed it, or sent what is no TURN frame).
    ended: Option<&'static str>,
    /// Bytes read but not yet a whole frame.
    incoming: Vec<u8>,
    /// Frames (the first maybe partly written) waiting for room in the kernel's buffer.
    backlog: Vec<u8>,
}

impl TcpLink {
    /// Starts connecting from `local_ip` (the engine's address of that family) to `server`.
    fn connect(local_ip: IpAddr, server: SocketAddr) -> io::Result<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(server),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.bind(&SocketAddr::new(local_ip, 0).into())?;
        socket.set_nonblocking(true)?;
        // ICE checks and SCTP are latency-bound; Nagle would hold them back.
        socket.set_tcp_nodelay(true)?;
        // A non-blocking connect reports "in progress" (an error kind std names only on
        // nightly); the outcome then comes from `SO_ERROR`. Errors known at once are returned.
        match socket.connect(&server.into()) {
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionRefused
                        | ErrorKind::NetworkUnreachable
                        | ErrorKind::HostUnreachable
                        | ErrorKind::AddrNotAvailable
                        | ErrorKind::PermissionDenied
                        | ErrorKind::InvalidInput
                ) =>
            {
                return Err(e);
            }
            Ok(()) | Err(_) => {}
        }
        let stream = TcpStream::from(socket);
        let local = stream.local_addr()?;
        Ok(Self { stream, local, connected: false, ended: None, incoming: Vec::new(), backlog: Vec::new() })
    }

    /// Whether the connection is up; `Err` once it failed.
    fn poll_connected(&mut self) -> io::Result<bool> {
        if let Some(why) = self.ended {
            return Err(io::Error::new(ErrorKind::ConnectionReset, why));
        }
        if !self.connected {
            if let Some(e) = self.stream.take_error()? {
                return Err(e);
            }
            match self.stream.peer_addr() {
                Ok(_) => self.connected = true,
                Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(false),
                Err(e) => return Err(e),
            }
            self.write_backlog();
        }
        Ok(true)
    }

    /// Writes what the kernel takes of the backlog.
    fn write_backlog(&mut self) {
        while self.connected && !self.backlog.is_empty() {
            match self.stream.write(&self.backlog) {
                Ok(0) | Err(_) => break,
                Ok(n) => drop(self.backlog.drain(..n)),
            }
        }
    }

    /// Queues one whole frame (or drops it whole when the backlog is full); false if dropped.
    /// ChannelData is padded to a multiple of 4 bytes, as streams need (RFC 8656 §12.5), which
    /// turn-client-proto 0.7.3 leaves out.
    fn send(&mut self, frame: &[u8]) -> bool {
        let padding =
            if frame.first().is_some_and(|b| b & 0xC0 == 0x40) { (4 - frame.len() % 4) % 4 } else { 0 };
        if padding == 0 {
            return self.send_padded(frame);
        }
        let mut padded = Vec::with_capacity(frame.len() + padding);
        padded.extend_from_slice(frame);
        padded.resize(frame.len() + padding, 0);
        self.send_padded(&padded)
    }

    fn send_padded(&mut self, frame: &[u8]) -> bool {
        if self.ended.is_some() {
            return false;
        }
        self.write_backlog();
        if self.connected && self.backlog.is_empty() {
            match self.stream.write(frame) {
                Ok(n) if n == frame.len() => return true,
                Ok(n) => {
                    self.backlog.extend_from_slice(&frame[n..]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
        }
        if self.backlog.len() + frame.len() > MAX_TCP_BACKLOG {
            return false;
        }
        self.backlog.extend_from_slice(frame);
        true
    }
}

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
    /// The TCP connection to the server; `None` when the client speaks over the UDP socket.
    tcp: Option<TcpLink>,
    /// Why the TCP connection could not even be started, reported by the first drive.
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

    /// Starts allocating on `server` from the socket bound to `local` (UDP), or over a new TCP
    /// connection from its address. UDP requests are retried 0.2, 0.6, 1.4 and 3 s after the
    /// first and given up 1.6 s after the last, so an unreachable server is reported within
    /// 5 s; a TCP connection gets as long to come up.
    pub fn allocate(
        socket: usize,
        local: SocketAddr,
        server: SocketAddr,
        transport: TurnTransport,
        (user, password): (&str, &str),
    ) -> Self {
        let mut config = TurnConfig::new(TurnCredentials::new(user, password));
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
        let (client, tcp, link_error) = match transport {
            TurnTransport::Udp => {
                (TurnClient::Udp(TurnClientUdp::allocate(local, server, config)), None, None)
            }
            TurnTransport::Tcp => match TcpLink::connect(local.ip(), server) {
                Ok(link) => {
                    (TurnClient::Tcp(TurnClientTcp::allocate(link.local, server, config)), Some(link), None)
                }
                Err(e) => {
                    let client = TurnClient::Udp(TurnClientUdp::allocate(local, server, config));
                    (client, None, Some(format!("TURN server {server} over TCP: {e}")))
                }
            },
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
            // Nothing is sent before the connection is up; the client's timers wait with it.
            Some(link) if !link.connected => return None,
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

    /// Why the TCP connection to the server failed (or never came up in time), if it did.
    fn link_failure(&mut self) -> Option<String> {
        if let Some(reason) = self.link_error.take() {
            return Some(reason);
        }
        let server = self.server;
        let link = self.tcp.as_mut()?;
        match link.poll_connected() {
            Ok(true) => None,
            Ok(false) if self.epoch.elapsed() < TCP_CONNECT_TIMEOUT => None,
            Ok(false) => Some(format!("TURN server {server} over TCP: no connection within 5 s")),
            Err(e) => Some(format!("TURN server {server} over TCP: {e}")),
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

    /// Reads what the server sent over TCP (a bounded amount) and hands it to
    /// [`receive`](Self::receive); the connection closing ends the allocation. Nothing for a
    /// relay over UDP, whose datagrams come through the engine's socket.
    pub fn read_tcp(
        &mut self,
        socket: &UdpSocket,
        stats: &mut EngineStats,
        mut deliver: impl FnMut(SocketAddr, &[u8]),
    ) {
        let mut buf = [0u8; 4096];
        let mut read = 0;
        while read < MAX_TCP_READ_PER_DRIVE && !matches!(self.state, RelayState::Failed(_)) {
            let Some(link) = self.tcp.as_mut().filter(|l| l.connected && l.ended.is_none()) else { return };
            let local = link.local;
            match link.stream.read(&mut buf) {
                // Reported by the next drive, as any failure of the link.
                Ok(0) => {
                    link.ended = Some("the server closed the connection");
                    return;
                }
                Ok(n) => {
                    read += n;
                    // The client is given whole frames only, without padding: its own stream
                    // buffer expects neither padding nor garbage, and would grow on garbage.
                    link.incoming.extend_from_slice(&buf[..n]);
                    loop {
                        let Some(link) = self.tcp.as_mut() else { return };
                        match stream_frame(&link.incoming) {
                            Ok(Some((total, content))) => {
                                let frame: Vec<u8> = link.incoming.drain(..total).take(content).collect();
                                self.receive(local, &frame, socket, stats, &mut deliver);
                            }
                            Ok(None) => break,
                            Err(()) => {
                                link.ended = Some("the server sent what is no STUN message or ChannelData");
                                return;
                            }
                        }
                    }
                    // What stays is less than one frame; the check keeps that a bound.
                    if let Some(link) = self.tcp.as_mut().filter(|l| l.incoming.len() > MAX_TCP_FRAME) {
                        link.ended = Some("the server sent a frame over 64 KiB");
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
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
        self.state = RelayState::Failed(String::from("closed"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_frames_are_cut_at_their_length_and_channel_data_padding() {
        // A STUN message header announcing 4 bytes of attributes.
        let mut stun = vec![0x01, 0x01, 0x00, 0x04];
        stun.extend_from_slice(&[0; 20]);
        assert_eq!(stream_frame(&stun), Ok(Some((24, 24))));
        assert_eq!(stream_frame(&stun[..23]), Ok(None));
        // ChannelData of 5 bytes: 9 with its header, 12 with the padding, which must be there.
        let channel = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0, 0x40];
        assert_eq!(stream_frame(&channel), Ok(Some((12, 9))));
        assert_eq!(stream_frame(&channel[..11]), Ok(None));
        assert_eq!(stream_frame(&[0x40]), Ok(None));
        // Neither (the top bits 10 or 11): the stream is broken.
        assert_eq!(stream_frame(&[0x80, 0, 0, 0]), Err(()));
        assert_eq!(stream_frame(&[0xC0, 0, 0, 0]), Err(()));
        // The longest frame announced waits for its bytes.
        assert_eq!(stream_frame(&[0x7F, 0xFF, 0xFF, 0xFF]), Ok(None));
    }
}
