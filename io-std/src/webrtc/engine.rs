//! The WebRTC engine behind a [`Mesh`]: carries out its commands with one `str0m::Rtc` per
//! remote peer, reads the shared sockets and routes each datagram to the `Rtc` that accepts
//! it, and feeds what str0m reports back as engine events.

use core::net::SocketAddr;
use std::collections::BTreeMap;
use std::time::Instant as StdInstant;

use str0m::Input;
use str0m::net::{Protocol, Receive};

use multipeer::mesh::{Command, ConnectionState, EngineEvent, Mesh};
use multipeer::peer::{PeerId, PutError};

use super::config::SocketLayout;
use super::connection::PeerConnection;
use super::net::SocketGroup;
use super::turn::RelayState;
use super::{EngineStats, WebRtcConfig};
use crate::Clock;

/// Largest UDP datagram we read (str0m sends at most its MTU, 1150 by default; browsers 1200).
const RECEIVE_BUFFER: usize = 2048;
/// Most datagrams read from one socket in one drive, so that timers and sends of every peer
/// get their turn (a socket is otherwise drained: browsers and aiortc send bursts of
/// unbundled small packets).
const MAX_READS_PER_DRIVE: usize = 4096;

/// One `str0m::Rtc` per remote peer, driven by a [`Mesh`]'s commands.
pub(crate) struct Engine {
    config: WebRtcConfig,
    clock: Clock,
    peers: BTreeMap<PeerId, PeerConnection>,
    /// The mesh's shared sockets, or one group per peer ([`SocketLayout::PerPeer`]).
    groups: Vec<SocketGroup>,
    buf: Vec<u8>,
    pub(crate) stats: EngineStats,
}

impl Engine {
    pub(crate) fn new(config: WebRtcConfig) -> Self {
        // A TURN URL this engine cannot use is reported before any peer needs it.
        let stats =
            EngineStats { last_error: config.turn_servers().find_map(Result::err), ..Default::default() };
        Self {
            config,
            clock: Clock::new(),
            peers: BTreeMap::new(),
            groups: Vec::new(),
            buf: vec![0; RECEIVE_BUFFER],
            stats,
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
                self.remove_peer(peer);
                let created = self.group_for(peer).and_then(|group| {
                    let group = &self.groups[group];
                    PeerConnection::create(peer, offerer, &channels, &self.config, group, mesh, &self.clock)
                });
                match created {
                    Ok(mut connection) => {
                        let group = self.groups.iter().find(|g| g.serves(self.config.socket_layout, peer));
                        if self.config.relay_only && group.is_none_or(SocketGroup::relays_exhausted) {
                            if group.is_some_and(|g| g.relays.is_empty()) {
                                self.stats.last_error =
                                    Some(String::from("relay only, but no usable turn: server"));
                            }
                            connection.fail(mesh, &self.clock);
                        }
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
                let addr = self.peers.get_mut(&peer).and_then(|c| c.remote_candidate(&candidate));
                // The relay must let the remote's checks in before ours go out.
                let layout = self.config.socket_layout;
                if let (Some(addr), Some(group)) =
                    (addr, self.groups.iter_mut().find(|g| g.serves(layout, peer)))
                {
                    group.permit(addr.ip(), &mut self.stats);
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
            Command::ClosePeer { peer } => self.remove_peer(peer),
            _ => {}
        }
        Ok(())
    }

    /// The index of the socket group that carries `peer`, bound now if there is none yet.
    fn group_for(&mut self, peer: PeerId) -> std::io::Result<usize> {
        let layout = self.config.socket_layout;
        if let Some(i) = self.groups.iter().position(|g| g.serves(layout, peer)) {
            return Ok(i);
        }
        let owner = (layout == SocketLayout::PerPeer).then_some(peer);
        self.groups.push(SocketGroup::bind(&self.config, owner)?);
        Ok(self.groups.len() - 1)
    }

    /// Closes `peer`'s connection, and its own sockets if it has any.
    fn remove_peer(&mut self, peer: PeerId) {
        let Some(mut c) = self.peers.remove(&peer) else { return };
        let layout = self.config.socket_layout;
        let group = self.groups.iter().position(|g| g.serves(layout, peer));
        c.close(group.map(|i| &mut self.groups[i]), &mut self.stats);
        if let Some(i) = group {
            self.groups[i].forget(peer);
            if self.groups[i].owner.is_some() {
                self.groups[i].close_relays(&mut self.stats);
                self.groups.swap_remove(i);
            }
        }
    }

    /// Drives everything once: STUN gathering, the sockets (each datagram to the peer that
    /// accepts it), then every peer's held messages, timers and outputs.
    pub(crate) fn drive(&mut self, mesh: &mut Mesh) {
        let layout = self.config.socket_layout;
        let relay_only = self.config.relay_only;
        let Self { groups, peers, buf, stats, clock, .. } = self;
        for group in groups.iter_mut() {
            group.send_stun(stats);
            for change in group.drive_relays(stats) {
                let members = peers.iter_mut().filter(|(p, _)| group.owner.is_none_or(|o| o == **p));
                match change {
                    RelayState::Allocated(relayed) => {
                        let local = group.relayed().into_iter().find(|(r, _)| *r == relayed).map(|(_, l)| l);
                        for (_, c) in members {
                            c.add_relayed(relayed, local.unwrap_or(relayed), mesh, clock);
                        }
                    }
                    RelayState::Failed(reason) => {
                        stats.turn_failures += 1;
                        stats.last_error = Some(reason);
                        if relay_only && group.relays_exhausted() {
                            for (_, c) in members {
                                c.fail(mesh, clock);
                            }
                        }
                    }
                    RelayState::Allocating => {}
                }
            }
            for socket in 0..group.sockets.len() {
                read_socket(group, socket, peers, mesh, clock, buf, stats, relay_only);
            }
            for (peer, relayed, data) in group.relay_read_tcp(stats) {
                route(group, peers, mesh, clock, stats, peer, relayed, &data);
            }
        }
        for (peer, c) in peers.iter_mut() {
            if let Some(group) = groups.iter_mut().find(|g| g.serves(layout, *peer)) {
                c.drive(mesh, clock, group, stats);
            }
        }
    }

    /// The earliest time the engine must be driven (a peer's timer or a STUN retransmission).
    pub(crate) fn next_timeout(&self) -> Option<StdInstant> {
        let peers = self.peers.values().filter(|c| !c.finished).map(PeerConnection::next_timeout);
        let stun = self.groups.iter().filter_map(SocketGroup::next_stun);
        peers.chain(stun).chain(self.groups.iter().filter_map(SocketGroup::next_relay)).min()
    }

    /// The largest message `peer` accepts (its `a=max-message-size`, capped by our buffer).
    pub(crate) fn max_message(&self, peer: PeerId) -> Option<usize> {
        self.peers.get(&peer).map(PeerConnection::max_message)
    }

    /// Every UDP socket of the engine (for readiness in an event loop); a finished peer's own
    /// sockets are left out.
    pub(crate) fn udp_sockets(&self) -> Vec<&std::net::UdpSocket> {
        let live = |g: &&SocketGroup| g.owner.is_none_or(|p| self.peers.get(&p).is_some_and(|c| !c.finished));
        self.groups.iter().filter(live).flat_map(|g| g.sockets.iter()).collect()
    }

    fn group_of(&self, peer: PeerId) -> Option<&SocketGroup> {
        if !self.peers.contains_key(&peer) {
            return None;
        }
        self.groups.iter().find(|g| g.serves(self.config.socket_layout, peer))
    }

    /// The UDP addresses this side uses for `peer`.
    pub(crate) fn local_addrs(&self, peer: PeerId) -> Vec<SocketAddr> {
        self.group_of(peer).map(|g| g.locals.clone()).unwrap_or_default()
    }

    /// Server-reflexive addresses STUN servers reported for `peer`'s sockets.
    pub(crate) fn mapped_addrs(&self, peer: PeerId) -> Vec<SocketAddr> {
        self.group_of(peer).map(|g| g.mapped.iter().map(|(m, _)| *m).collect()).unwrap_or_default()
    }

    /// (local, remote) address of the pair `peer`'s traffic goes over.
    pub(crate) fn path(&self, peer: PeerId) -> Option<(SocketAddr, SocketAddr)> {
        self.peers.get(&peer).and_then(|c| c.path)
    }

    /// Every relayed address allocated for the engine's sockets.
    pub(crate) fn relayed_addrs(&self) -> Vec<SocketAddr> {
        self.groups.iter().flat_map(SocketGroup::relayed).map(|(r, _)| r).collect()
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
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.remove_peer(peer);
        }
        // The next mesh binds afresh (a lobby may hand out another session).
        for group in &mut self.groups {
            group.close_relays(&mut self.stats);
        }
        self.groups.clear();
    }
}

/// Reads one socket of `group` until it would block (or the per-drive cap) and hands each
/// datagram on: a STUN or TURN server's to the group, anything else (and what a TURN server
/// relayed) to the peer whose `Rtc` accepts it.
#[expect(clippy::too_many_arguments, reason = "the engine's parts, borrowed apart")]
fn read_socket(
    group: &mut SocketGroup,
    socket: usize,
    peers: &mut BTreeMap<PeerId, PeerConnection>,
    mesh: &mut Mesh,
    clock: &Clock,
    buf: &mut [u8],
    stats: &mut EngineStats,
    relay_only: bool,
) {
    let local = group.locals[socket];
    for _ in 0..MAX_READS_PER_DRIVE {
        // Would-block ends the batch; ICMP errors (port unreachable) are not fatal for a
        // connectionless socket.
        let Ok((len, source)) = group.sockets[socket].recv_from(buf) else { break };
        let datagram = &buf[..len];
        stats.datagrams_received += 1;
        if let Some((mapped, base)) = group.stun_answer(socket, source, datagram) {
            if !relay_only {
                for (peer, c) in peers.iter_mut() {
                    if group.owner.is_none_or(|o| o == *peer) {
                        c.add_reflexive(mapped, base, mesh, clock);
                    }
                }
            }
            continue;
        }
        // After the STUN answers (matched by transaction): a TURN server is often the STUN
        // server too.
        if let Some(relayed) = group.relay_receive(socket, source, datagram, stats) {
            for (peer, relayed, data) in relayed {
                route(group, peers, mesh, clock, stats, peer, relayed, &data);
            }
            continue;
        }
        route(group, peers, mesh, clock, stats, source, local, datagram);
    }
}

/// Hands a datagram from `source` to `local` (a socket's or a relayed address) to the peer
/// whose `Rtc` accepts it: the one that last did for this source first.
#[expect(clippy::too_many_arguments, reason = "the engine's parts, borrowed apart")]
fn route(
    group: &mut SocketGroup,
    peers: &mut BTreeMap<PeerId, PeerConnection>,
    mesh: &mut Mesh,
    clock: &Clock,
    stats: &mut EngineStats,
    source: SocketAddr,
    local: SocketAddr,
    datagram: &[u8],
) {
    let Ok(receive) = Receive::new(Protocol::Udp, source, local, datagram) else { return };
    let input = Input::Receive(StdInstant::now(), receive);
    let owner = group.owner.or_else(|| group.routes.get(&source).copied());
    let accepts = |c: &PeerConnection| !c.finished && c.rtc.accepts(&input);
    let peer = owner
        .filter(|p| peers.get(p).is_some_and(accepts))
        .or_else(|| peers.iter().find(|(_, c)| accepts(c)).map(|(p, _)| *p));
    let Some((peer, c)) = peer.and_then(|p| Some((p, peers.get_mut(&p)?))) else {
        stats.unrouted_datagrams += 1;
        return;
    };
    if group.owner.is_none() && owner != Some(peer) {
        group.remember(source, peer);
    }
    if c.is_holding() {
        if !c.park(source, local, datagram) {
            stats.parked_drops += 1;
        }
        return;
    }
    c.receive(input, mesh, clock, group, stats);
}
