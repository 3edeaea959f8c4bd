//! The engine's UDP sockets: one group for the whole mesh (or one per peer with
//! [`SocketLayout::PerPeer`]), each holding a socket per local address, the STUN queries that
//! learn their server-reflexive addresses, and the routes from remote addresses to the peer
//! connection that owns them.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::UdpSocket;
use std::time::Instant as StdInstant;

use multipeer::peer::PeerId;

use super::config::{SocketLayout, TurnTransport, WebRtcConfig};
use super::turn::{RelayState, TurnRelay};
use super::{EngineStats, stun};
use crate::tls::TlsOptions;

/// STUN Binding retransmissions (RFC 8489 §6.2.1, shortened: loopback or LAN servers). The
/// last wait bounds gathering: a server silent for 1.75 s is given up, and the others were
/// asked at the same time.
const STUN_RETRIES: [Duration; 4] =
    [Duration::ZERO, Duration::from_millis(250), Duration::from_millis(750), Duration::from_millis(1750)];

/// Remote addresses remembered for routing; beyond, the table starts over (routes are a
/// cache: every datagram is still checked by the owner's `Rtc::accepts`).
const MAX_ROUTES: usize = 4096;

struct StunQuery {
    server: SocketAddr,
    socket: usize,
    transaction: [u8; 12],
    started: StdInstant,
    sent: usize,
}

/// Sockets shared by the peers of a mesh (`owner: None`) or owned by one peer.
pub(crate) struct SocketGroup {
    pub(crate) owner: Option<PeerId>,
    pub(crate) sockets: Vec<UdpSocket>,
    /// The bound address of each socket (its host candidate).
    pub(crate) locals: Vec<SocketAddr>,
    stun: Vec<StunQuery>,
    /// (server-reflexive address, the local socket address it maps).
    pub(crate) mapped: Vec<(SocketAddr, SocketAddr)>,
    /// The peer each remote address was last routed to.
    pub(crate) routes: HashMap<SocketAddr, PeerId>,
    /// One allocation per usable `turn:` server, on the socket of its address family.
    pub(crate) relays: Vec<TurnRelay>,
}

fn random_transaction() -> [u8; 12] {
    let mut t = [0u8; 12];
    // A failing OS generator leaves zeros; the id only has to match our own response.
    let _ = getrandom::fill(&mut t);
    t
}

/// Binds a UDP socket on `ip`, on the first free port of `config.ports` (any port without it).
fn bind(ip: core::net::IpAddr, config: &WebRtcConfig) -> io::Result<UdpSocket> {
    let socket = match &config.ports {
        None => UdpSocket::bind(SocketAddr::new(ip, 0))?,
        Some(range) => {
            range.clone().find_map(|port| UdpSocket::bind(SocketAddr::new(ip, port)).ok()).ok_or_else(
                || io::Error::new(ErrorKind::AddrInUse, "every port of the configured range is taken"),
            )?
        }
    };
    socket.set_nonblocking(true)?;
    // The kernel charges each small datagram about 1 KiB of buffer: the default (~208 KiB on
    // Linux) overflows on a burst of a few hundred messages between two polls, and every drop
    // costs the sender a retransmission timeout. The kernel caps the request at its maximum
    // (`net.core.rmem_max`); failure leaves the default.
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(config.socket_receive_buffer);
    Ok(socket)
}

impl SocketGroup {
    /// Binds one socket per configured local address and starts asking every `stun:` server
    /// for the mapped address of the socket of its address family.
    pub(crate) fn bind(config: &WebRtcConfig, owner: Option<PeerId>) -> io::Result<Self> {
        let mut sockets = Vec::new();
        let mut locals = Vec::new();
        for ip in &config.local_ips {
            if ip.is_unspecified() {
                return Err(io::Error::new(
                    ErrorKind::InvalidInput,
                    "a wildcard address is no ICE candidate",
                ));
            }
            let socket = bind(*ip, config)?;
            locals.push(socket.local_addr()?);
            sockets.push(socket);
        }
        let now = StdInstant::now();
        let mut stun = Vec::new();
        for server in config.stun_servers() {
            let resolved = std::net::ToSocketAddrs::to_socket_addrs(&server).ok().into_iter().flatten();
            for addr in resolved {
                if let Some(socket) = locals.iter().position(|l| l.is_ipv4() == addr.is_ipv4()) {
                    stun.push(StunQuery {
                        server: addr,
                        socket,
                        transaction: random_transaction(),
                        started: now,
                        sent: 0,
                    });
                    break;
                }
            }
        }
        let mut relays = Vec::new();
        // `turns:` servers share one TLS configuration (the webpki roots and the configured
        // CAs), made only if there is one.
        let tls = config.turn_servers().flatten().any(|s| s.transport == TurnTransport::Tls).then(|| {
            TlsOptions::client_also_trusting(config.turn_trusted_cas.iter().map(Vec::as_slice))
                .map_err(|e| format!("turn_trusted_cas: {e}"))
        });
        // Unusable URLs were reported when the engine was made.
        for server in config.turn_servers().filter_map(Result::ok) {
            let resolved =
                std::net::ToSocketAddrs::to_socket_addrs(&server.address).ok().into_iter().flatten();
            for addr in resolved {
                if let Some(socket) = locals.iter().position(|l| l.is_ipv4() == addr.is_ipv4()) {
                    relays.push(TurnRelay::allocate(socket, locals[socket], addr, &server, tls.as_ref()));
                    break;
                }
            }
        }
        Ok(Self { owner, sockets, locals, stun, mapped: Vec::new(), routes: HashMap::new(), relays })
    }

    /// Runs the relays' timers; returns the allocations that succeeded or failed just now.
    pub(crate) fn drive_relays(&mut self, stats: &mut EngineStats) -> Vec<RelayState> {
        let mut changes = Vec::new();
        for relay in &mut self.relays {
            if let Some(socket) = self.sockets.get(relay.socket) {
                changes.extend(relay.drive(socket, stats));
            }
        }
        changes
    }

    /// Whether every relay failed (or there is none): a relay-only peer cannot connect.
    pub(crate) fn relays_exhausted(&self) -> bool {
        self.relays.iter().all(|r| matches!(r.state, RelayState::Failed(_)))
    }

    /// (relayed address, the local address of the socket it is allocated through) of every
    /// relay allocated.
    pub(crate) fn relayed(&self) -> Vec<(SocketAddr, SocketAddr)> {
        self.relays.iter().filter_map(|r| Some((r.relayed()?, *self.locals.get(r.socket)?))).collect()
    }

    /// Lets `peer` reach us through every relay.
    pub(crate) fn permit(&mut self, peer: core::net::IpAddr, stats: &mut EngineStats) {
        for relay in &mut self.relays {
            if let Some(socket) = self.sockets.get(relay.socket) {
                relay.permit(peer, socket, stats);
            }
        }
    }

    /// A datagram from a TURN server of this socket: handled by its relay; the peer datagrams
    /// it carried are returned as (peer address, relayed address, bytes). `None` when the
    /// source is no TURN server of this socket.
    pub(crate) fn relay_receive(
        &mut self,
        socket: usize,
        source: SocketAddr,
        datagram: &[u8],
        stats: &mut EngineStats,
    ) -> Option<Vec<(SocketAddr, SocketAddr, Vec<u8>)>> {
        let relay = self.relays.iter_mut().find(|r| r.socket == socket && r.server == source)?;
        let local = *self.locals.get(socket)?;
        let udp = self.sockets.get(socket)?;
        let relayed = relay.relayed();
        let mut out = Vec::new();
        relay.receive(local, datagram, udp, stats, |peer, data| {
            if let Some(relayed) = relayed {
                out.push((peer, relayed, data.to_vec()));
            }
        });
        Some(out)
    }

    /// Reads the relays that reach their server over TCP; the peer datagrams they carried are
    /// returned as [`relay_receive`](Self::relay_receive) returns them.
    pub(crate) fn relay_read_tcp(
        &mut self,
        stats: &mut EngineStats,
    ) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        for relay in &mut self.relays {
            let Some(udp) = self.sockets.get(relay.socket) else { continue };
            let relayed = relay.relayed();
            relay.read_tcp(udp, stats, |peer, data| {
                if let Some(relayed) = relayed {
                    out.push((peer, relayed, data.to_vec()));
                }
            });
        }
        out
    }

    /// When the next relay timer is due.
    pub(crate) fn next_relay(&self) -> Option<StdInstant> {
        self.relays.iter().filter_map(TurnRelay::next_timeout).min()
    }

    /// Deletes every allocation.
    pub(crate) fn close_relays(&mut self, stats: &mut EngineStats) {
        for relay in &mut self.relays {
            if let Some(socket) = self.sockets.get(relay.socket) {
                relay.close(socket, stats);
            }
        }
    }

    /// Whether this group carries `peer`'s traffic under `layout`.
    pub(crate) fn serves(&self, layout: SocketLayout, peer: PeerId) -> bool {
        match layout {
            SocketLayout::PerMesh => self.owner.is_none(),
            SocketLayout::PerPeer => self.owner == Some(peer),
        }
    }

    /// Sends the STUN Binding requests (and retransmissions) that are due.
    pub(crate) fn send_stun(&mut self, stats: &mut EngineStats) {
        let now = StdInstant::now();
        for q in &mut self.stun {
            if STUN_RETRIES.get(q.sent).is_some_and(|d| now >= q.started + *d) {
                q.sent += 1;
                if let Some(socket) = self.sockets.get(q.socket) {
                    if socket.send_to(&stun::binding_request(q.transaction), q.server).is_ok() {
                        stats.stun_requests += 1;
                    }
                }
            }
        }
        // A query whose last retransmission went unanswered for as long again is over.
        let last = STUN_RETRIES[STUN_RETRIES.len() - 1];
        self.stun.retain(|q| q.sent < STUN_RETRIES.len() || now < q.started + last * 2);
    }

    /// When the next STUN (re)transmission or give-up is due.
    pub(crate) fn next_stun(&self) -> Option<StdInstant> {
        let last = STUN_RETRIES[STUN_RETRIES.len() - 1];
        self.stun
            .iter()
            .map(|q| STUN_RETRIES.get(q.sent).map_or(q.started + last * 2, |d| q.started + *d))
            .min()
    }

    /// A STUN server's answer to one of our Binding requests: the mapped address and the local
    /// address it maps, once per query. Anything else is `None`.
    pub(crate) fn stun_answer(
        &mut self,
        socket: usize,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Option<(SocketAddr, SocketAddr)> {
        let i = self.stun.iter().position(|q| q.socket == socket && q.server == source)?;
        let mapped = stun::parse_binding_success(datagram, &self.stun[i].transaction)?;
        self.stun.remove(i);
        let base = *self.locals.get(socket)?;
        if !self.mapped.contains(&(mapped, base)) {
            self.mapped.push((mapped, base));
        }
        Some((mapped, base))
    }

    /// Sends `data` from the socket bound to `source` (the first one if none is), or through
    /// the relay whose relayed address `source` is.
    pub(crate) fn transmit(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
        stats: &mut EngineStats,
    ) {
        if let Some(relay) = self.relays.iter_mut().find(|r| r.relayed() == Some(source)) {
            if let Some(socket) = self.sockets.get(relay.socket) {
                relay.send(destination, data, socket, stats);
            }
            return;
        }
        let index = self.locals.iter().position(|l| *l == source).unwrap_or(0);
        if let Some(socket) = self.sockets.get(index) {
            // UDP may drop; so may the kernel when its buffer is full. SCTP retransmits.
            if socket.send_to(data, destination).is_ok() {
                stats.datagrams_sent += 1;
                stats.bytes_sent += data.len() as u64;
                stats.largest_datagram = stats.largest_datagram.max(data.len());
            }
        }
    }

    /// Remembers that datagrams from `source` belong to `peer`.
    pub(crate) fn remember(&mut self, source: SocketAddr, peer: PeerId) {
        if self.routes.len() >= MAX_ROUTES && !self.routes.contains_key(&source) {
            self.routes.clear();
        }
        self.routes.insert(source, peer);
    }

    /// Forgets the routes to a peer that is gone.
    pub(crate) fn forget(&mut self, peer: PeerId) {
        self.routes.retain(|_, p| *p != peer);
    }
}
