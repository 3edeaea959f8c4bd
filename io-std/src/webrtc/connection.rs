//! One remote peer: a `str0m::Rtc` and the glue between str0m's outputs and the mesh's engine
//! events. The engine reads the sockets and hands each peer the datagrams it accepts.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind};
use std::time::Instant as StdInstant;

use multipeer::mesh::{ChannelSpec, ConnectionState, EngineEvent, LaneFull, Mesh, Reliability, SdpKind};
use multipeer::peer::{PeerId, PutError};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability as RtcReliability};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use super::net::SocketGroup;
use super::outbox::Outbox;
use super::{EngineStats, MAX_PARKED_DATAGRAMS, WebRtcConfig};
use crate::Clock;

/// Most outputs taken from str0m in one drive (it stops at a timeout long before this).
const MAX_OUTPUTS_PER_DRIVE: usize = 100_000;
/// `a=max-message-size` absent means 64 KiB (RFC 8841 §6).
const DEFAULT_REMOTE_MAX_MESSAGE: usize = 65_536;
/// How long a peer that never connected may stay with every candidate pair failed before it
/// is reported failed (`RTCPeerConnectionState` "failed"): room for a candidate trickling in
/// late, which str0m would check at once. Pairs fail only after their checks ran out
/// ([`IceTiming`](super::IceTiming)), 18.75 s with the defaults.
const ICE_FAILED_GRACE: Duration = Duration::from_secs(3);

/// The engine side of one remote peer.
pub(crate) struct PeerConnection {
    peer: PeerId,
    pub(crate) rtc: Rtc,
    /// The offer awaiting its answer (offerer only).
    pending_offer: Option<SdpPendingOffer>,
    /// The local description went out: candidates may follow it.
    described: bool,
    /// Local candidates gathered before the description went out.
    unsent_candidates: Vec<String>,
    /// The application m-line's media id, for trickled candidates.
    mid: String,
    /// Channels str0m opened, by its id.
    open: HashMap<ChannelId, u16>,
    /// The remote side's `a=max-message-size` (`usize::MAX` for "no limit").
    remote_max_message: usize,
    /// Messages the mesh refused (a full reliable lane), in arrival order.
    held: VecDeque<(u16, Vec<u8>)>,
    /// Messages waiting for room in str0m's send buffer.
    outbox: Outbox,
    /// `maxPacketLifetime` of the channels that have one, by stream id.
    lifetimes: Vec<(u16, Duration)>,
    send_buffer: usize,
    /// Datagrams that arrived while messages were held: (source, local address, bytes).
    parked: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    timeout: StdInstant,
    /// (local, remote) address of the last datagram sent once connected: the pair ICE selected
    /// (a relayed local address when it goes through our TURN allocation).
    pub(crate) path: Option<(SocketAddr, SocketAddr)>,
    connected: bool,
    /// Since when ICE has had no candidate pair left to try, before the first connection.
    unreachable_since: Option<StdInstant>,
    /// The connection ended (failed, closed by either side); the mesh was told.
    pub(crate) finished: bool,
}

fn rtc_reliability(r: Reliability) -> RtcReliability {
    match r {
        Reliability::Reliable => RtcReliability::Reliable,
        Reliability::MaxPacketLifetime(lifetime) => RtcReliability::MaxPacketLifetime { lifetime },
        Reliability::MaxRetransmits(retransmits) => RtcReliability::MaxRetransmits { retransmits },
    }
}

/// The stream id and lifetime of a channel with `maxPacketLifetime`.
fn lifetime(spec: &ChannelSpec) -> Option<(u16, Duration)> {
    match spec.reliability {
        Reliability::MaxPacketLifetime(ms) => Some((spec.id, Duration::from_millis(u64::from(ms)))),
        Reliability::Reliable | Reliability::MaxRetransmits(_) => None,
    }
}

fn channel_config(spec: &ChannelSpec) -> ChannelConfig {
    ChannelConfig {
        label: spec.label.clone(),
        ordered: spec.ordered,
        reliability: rtc_reliability(spec.reliability),
        negotiated: spec.negotiated.then_some(spec.id),
        protocol: String::new(),
    }
}

/// The `a=mid:` of the first m-line of an SDP, if any.
fn sdp_mid(sdp: &str) -> Option<String> {
    sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=mid:")).map(str::to_string)
}

/// The remote `a=max-message-size` (RFC 8841): absent means 64 KiB, 0 means no limit.
fn sdp_max_message_size(sdp: &str) -> usize {
    let value = sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=max-message-size:"));
    match value.map(|v| v.trim().parse::<u64>()) {
        Some(Ok(0)) => usize::MAX,
        Some(Ok(n)) => usize::try_from(n).unwrap_or(usize::MAX),
        _ => DEFAULT_REMOTE_MAX_MESSAGE,
    }
}

/// Offers a message to str0m: whether its send buffer took it.
fn write(rtc: &mut Rtc, peer: PeerId, stream: u16, data: &[u8]) -> Result<bool, PutError> {
    let id = rtc.direct_api().channel_id_by_sctp_stream_id(stream);
    let Some(mut channel) = id.and_then(|id| rtc.channel(id)) else {
        return Err(PutError::UnknownPeer(peer));
    };
    // Godot sends binary messages (WebRTCDataChannel's default write mode).
    channel.write(true, data).map_err(|_| PutError::UnknownPeer(peer))
}

impl PeerConnection {
    /// Creates the connection with its channels; the offerer also creates the offer.
    pub(crate) fn create(
        peer: PeerId,
        offerer: bool,
        channels: &[ChannelSpec],
        config: &WebRtcConfig,
        group: &SocketGroup,
        mesh: &mut Mesh,
        clock: &Clock,
    ) -> io::Result<Self> {
        let now = StdInstant::now();
        // str0m panics outside its bounds; keep the target within them.
        let mtu = config.mtu.clamp(str0m::DATAGRAM_MTU_TARGET_MIN, str0m::DATAGRAM_MTU_TARGET_MAX);
        let mut builder = Rtc::builder()
            .set_sctp_max_buffered_amount(config.sctp_send_buffer)
            .set_sctp_max_message_size(config.max_message_size)
            .set_mtu(mtu..=mtu.max(super::config::MAX_UDP_PAYLOAD));
        builder.set_initial_stun_rto(config.ice_timing.initial_rto);
        builder.set_max_stun_rto(config.ice_timing.max_rto);
        builder.set_max_stun_retransmits(config.ice_timing.max_retransmits);
        let mut rtc = builder.build(now);
        let mut unsent_candidates = Vec::new();
        // Host addresses are not revealed to a relay-only peer (they are still bound: relayed
        // traffic comes through them).
        let locals = if config.relay_only { &[][..] } else { &group.locals[..] };
        for local in locals {
            let candidate = Candidate::host(*local, "udp")
                .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e.to_string()))?;
            if let Some(c) = rtc.add_local_candidate(candidate) {
                unsent_candidates.push(c.to_sdp_string());
            }
        }
        // Reflexive and relayed addresses the group's sockets already learned.
        let mapped = if config.relay_only { &[][..] } else { &group.mapped[..] };
        for (mapped, base) in mapped {
            let candidate = Candidate::server_reflexive(*mapped, *base, "udp").ok();
            if let Some(c) = candidate.and_then(|c| rtc.add_local_candidate(c)) {
                unsent_candidates.push(c.to_sdp_string());
            }
        }
        for (relayed, local) in group.relayed() {
            let candidate = Candidate::relayed(relayed, local, "udp").ok();
            if let Some(c) = candidate.and_then(|c| rtc.add_local_candidate(c)) {
                unsent_candidates.push(c.to_sdp_string());
            }
        }
        let mut this = Self {
            peer,
            rtc,
            pending_offer: None,
            described: false,
            unsent_candidates,
            mid: String::from("0"),
            open: HashMap::new(),
            remote_max_message: DEFAULT_REMOTE_MAX_MESSAGE,
            held: VecDeque::new(),
            outbox: Outbox::new(config.outbox_limit),
            lifetimes: channels.iter().filter_map(lifetime).collect(),
            send_buffer: config.sctp_send_buffer,
            parked: VecDeque::new(),
            timeout: now,
            path: None,
            connected: false,
            unreachable_since: None,
            finished: false,
        };
        if offerer {
            let mut api = this.rtc.sdp_api();
            for spec in channels {
                api.add_channel_with_config(channel_config(spec));
            }
            match api.apply() {
                Some((offer, pending)) => {
                    this.pending_offer = Some(pending);
                    this.describe(mesh, clock, SdpKind::Offer, &offer.to_sdp_string());
                }
                None => this.fail(mesh, clock),
            }
        } else {
            // Negotiated channels are declared on both sides with the same ids; they open
            // once the SCTP association is up, without DCEP.
            let mut api = this.rtc.direct_api();
            for spec in channels {
                api.create_data_channel(channel_config(spec));
            }
        }
        Ok(this)
    }

    fn describe(&mut self, mesh: &mut Mesh, clock: &Clock, kind: SdpKind, sdp: &str) {
        if let Some(mid) = sdp_mid(sdp) {
            self.mid = mid;
        }
        self.emit(mesh, clock, EngineEvent::LocalDescription { peer: self.peer, kind, sdp });
        self.described = true;
        for candidate in core::mem::take(&mut self.unsent_candidates) {
            self.emit_candidate(mesh, clock, &candidate);
        }
    }

    fn emit_candidate(&mut self, mesh: &mut Mesh, clock: &Clock, candidate: &str) {
        if !self.described {
            self.unsent_candidates.push(candidate.to_string());
            return;
        }
        let mid = self.mid.clone();
        let event = EngineEvent::LocalCandidate { peer: self.peer, mid: &mid, index: 0, candidate };
        self.emit(mesh, clock, event);
    }

    fn emit(&mut self, mesh: &mut Mesh, clock: &Clock, event: EngineEvent<'_>) {
        // Only messages can be refused, and those go through `deliver`.
        let _ = mesh.handle_engine_event(clock.now(), event);
    }

    /// Reports the connection failed (once) and stops it.
    pub(crate) fn fail(&mut self, mesh: &mut Mesh, clock: &Clock) {
        if !self.finished {
            self.finished = true;
            self.rtc.disconnect();
            self.emit(mesh, clock, EngineEvent::State { peer: self.peer, state: ConnectionState::Failed });
        }
    }

    /// A description from the remote peer: an offer is answered at once.
    pub(crate) fn remote_description(&mut self, mesh: &mut Mesh, clock: &Clock, kind: SdpKind, sdp: &str) {
        self.remote_max_message = sdp_max_message_size(sdp);
        match kind {
            SdpKind::Offer => {
                let answer = SdpOffer::from_sdp_string(sdp)
                    .ok()
                    .and_then(|offer| self.rtc.sdp_api().accept_offer(offer).ok());
                match answer {
                    Some(answer) => {
                        if let Some(mid) = sdp_mid(sdp) {
                            self.mid = mid;
                        }
                        let text = answer.to_sdp_string();
                        self.describe(mesh, clock, SdpKind::Answer, &text);
                    }
                    None => self.fail(mesh, clock),
                }
            }
            SdpKind::Answer => {
                let accepted = match (self.pending_offer.take(), SdpAnswer::from_sdp_string(sdp)) {
                    (Some(pending), Ok(answer)) => self.rtc.sdp_api().accept_answer(pending, answer).is_ok(),
                    _ => false,
                };
                if !accepted {
                    self.fail(mesh, clock);
                }
            }
        }
    }

    /// A trickled remote candidate; unusable ones (mDNS `.local` names, other transports,
    /// end-of-candidates) are ignored, as a browser ignores what it cannot use.
    /// Returns the candidate's address, for a TURN permission.
    pub(crate) fn remote_candidate(&mut self, candidate: &str) -> Option<SocketAddr> {
        let line = candidate.trim().trim_start_matches("a=");
        if line.is_empty() {
            return None;
        }
        let c = Candidate::from_sdp_string(line).ok()?;
        let addr = c.addr();
        self.rtc.add_remote_candidate(c);
        Some(addr)
    }

    /// The largest message the remote accepts and our send buffer can ever take.
    pub(crate) fn max_message(&self) -> usize {
        self.remote_max_message.min(self.send_buffer)
    }

    /// Sends one message, or keeps it for when str0m's send buffer has room.
    pub(crate) fn send(
        &mut self,
        stream: u16,
        data: Vec<u8>,
        stats: &mut EngineStats,
    ) -> Result<(), PutError> {
        let max = self.max_message();
        if data.len() > max {
            return Err(PutError::TooLarge { max });
        }
        if self.finished {
            return Err(PutError::UnknownPeer(self.peer));
        }
        if self.outbox.is_empty() && write(&mut self.rtc, self.peer, stream, &data)? {
            return Ok(());
        }
        let now = StdInstant::now();
        let expires =
            self.lifetimes.iter().find(|(id, _)| *id == stream).map(|(_, lifetime)| now + *lifetime);
        stats.expired_sends += self.outbox.push(now, stream, data, expires)?;
        Ok(())
    }

    fn flush_outbox(&mut self, stats: &mut EngineStats) {
        let Self { outbox, rtc, peer, .. } = self;
        stats.expired_sends +=
            outbox.flush(StdInstant::now(), |stream, data| write(rtc, *peer, stream, data));
    }

    /// Starts an orderly close (DTLS close_notify, SCTP shutdown) and sends what it produces.
    pub(crate) fn close(&mut self, mut group: Option<&mut SocketGroup>, stats: &mut EngineStats) {
        self.finished = true;
        let _ = self.rtc.close();
        for _ in 0..64 {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    if let Some(group) = group.as_deref_mut() {
                        group.transmit(t.source, t.destination, &t.contents, stats);
                    }
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
        self.rtc.disconnect();
    }

    /// When [`drive`](Self::drive) is due at the latest.
    pub(crate) fn next_timeout(&self) -> StdInstant {
        self.unreachable_since.map_or(self.timeout, |since| self.timeout.min(since + ICE_FAILED_GRACE))
    }

    /// Offers held messages (and the datagrams parked behind them) again, runs str0m's
    /// timers, and hands its outputs on.
    pub(crate) fn drive(
        &mut self,
        mesh: &mut Mesh,
        clock: &Clock,
        group: &mut SocketGroup,
        stats: &mut EngineStats,
    ) {
        if self.finished {
            return;
        }
        self.offer_held(mesh, clock);
        while self.held.is_empty() && !self.finished {
            let Some((source, local, datagram)) = self.parked.pop_front() else { break };
            if let Ok(receive) = Receive::new(Protocol::Udp, source, local, &datagram) {
                self.receive(Input::Receive(StdInstant::now(), receive), mesh, clock, group, stats);
            }
        }
        if self.finished {
            return;
        }
        let now = StdInstant::now();
        if now >= self.timeout && self.rtc.handle_input(Input::Timeout(now)).is_err() {
            self.fail(mesh, clock);
            return;
        }
        if self.unreachable_since.is_some_and(|since| now >= since + ICE_FAILED_GRACE) {
            stats.ice_failures += 1;
            stats.last_error = Some(format!("peer {}: ICE failed: no candidate pair works", self.peer));
            self.fail(mesh, clock);
            return;
        }
        self.flush_outbox(stats);
        self.poll_outputs(mesh, clock, group, stats);
    }

    fn offer_held(&mut self, mesh: &mut Mesh, clock: &Clock) {
        while let Some((stream, data)) = self.held.front() {
            let event = EngineEvent::Message { peer: self.peer, channel: *stream, data };
            if mesh.handle_engine_event(clock.now(), event).is_err() {
                return;
            }
            self.held.pop_front();
        }
    }

    /// Whether received messages are held for the application: datagrams then wait.
    pub(crate) fn is_holding(&self) -> bool {
        !self.held.is_empty() || !self.parked.is_empty()
    }

    /// Keeps a datagram until the held messages are taken; false when too many wait already.
    pub(crate) fn park(&mut self, source: SocketAddr, local: SocketAddr, datagram: &[u8]) -> bool {
        if self.parked.len() >= MAX_PARKED_DATAGRAMS {
            return false;
        }
        self.parked.push_back((source, local, datagram.to_vec()));
        true
    }

    /// A datagram this peer's `Rtc` accepted, and what it produces.
    pub(crate) fn receive(
        &mut self,
        input: Input<'_>,
        mesh: &mut Mesh,
        clock: &Clock,
        group: &mut SocketGroup,
        stats: &mut EngineStats,
    ) {
        if self.finished {
            return;
        }
        if self.rtc.handle_input(input).is_err() {
            self.fail(mesh, clock);
            return;
        }
        // Hand over what this datagram produced before the next is read, so that a lane
        // filling up holds the next datagrams.
        self.poll_outputs(mesh, clock, group, stats);
    }

    /// A relayed address a TURN server allocated for one of our sockets.
    pub(crate) fn add_relayed(
        &mut self,
        relayed: SocketAddr,
        local: SocketAddr,
        mesh: &mut Mesh,
        clock: &Clock,
    ) {
        self.signal_local_candidate(Candidate::relayed(relayed, local, "udp").ok(), mesh, clock);
    }

    /// A server-reflexive address a STUN server reported for one of our sockets.
    pub(crate) fn add_reflexive(
        &mut self,
        mapped: SocketAddr,
        base: SocketAddr,
        mesh: &mut Mesh,
        clock: &Clock,
    ) {
        self.signal_local_candidate(Candidate::server_reflexive(mapped, base, "udp").ok(), mesh, clock);
    }

    /// Adds a gathered candidate to str0m and signals it. str0m drops one equal to a candidate
    /// it has (a reflexive address equal to a host one, as ICE says): nothing new to signal then.
    fn signal_local_candidate(&mut self, candidate: Option<Candidate>, mesh: &mut Mesh, clock: &Clock) {
        let added = candidate.and_then(|c| self.rtc.add_local_candidate(c).map(Candidate::to_sdp_string));
        if let Some(line) = added {
            self.emit_candidate(mesh, clock, &line);
        }
    }

    fn poll_outputs(
        &mut self,
        mesh: &mut Mesh,
        clock: &Clock,
        group: &mut SocketGroup,
        stats: &mut EngineStats,
    ) {
        for _ in 0..MAX_OUTPUTS_PER_DRIVE {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.timeout = at;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    if self.connected {
                        self.path = Some((t.source, t.destination));
                    }
                    group.transmit(t.source, t.destination, &t.contents, stats);
                }
                Ok(Output::Event(event)) => self.event(event, mesh, clock, stats),
                Err(_) => {
                    self.fail(mesh, clock);
                    return;
                }
            }
            if self.finished {
                return;
            }
        }
    }

    fn event(&mut self, event: Event, mesh: &mut Mesh, clock: &Clock, stats: &mut EngineStats) {
        let peer = self.peer;
        match event {
            Event::Connected => {
                self.connected = true;
                self.emit(mesh, clock, EngineEvent::State { peer, state: ConnectionState::Connected });
            }
            // Before the first connection "disconnected" only means "no pair works yet"
            // (candidates may still trickle in); afterwards it ends the peer, as in Godot.
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) if self.connected => {
                self.finished = true;
                self.emit(mesh, clock, EngineEvent::State { peer, state: ConnectionState::Disconnected });
            }
            // Every pair failed; a new candidate brings ICE back to checking.
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.unreachable_since.get_or_insert_with(StdInstant::now);
            }
            Event::IceConnectionStateChange(_) => self.unreachable_since = None,
            Event::ChannelOpen(id, _label) => {
                if let Some(stream) = self.rtc.direct_api().sctp_stream_id_by_channel_id(id) {
                    self.open.insert(id, stream);
                    self.emit(mesh, clock, EngineEvent::ChannelOpen { peer, channel: stream });
                }
            }
            Event::ChannelData(data) => {
                let Some(stream) = self.open.get(&data.id).copied() else { return };
                if !self.held.is_empty() {
                    self.held.push_back((stream, data.data));
                    return;
                }
                let event = EngineEvent::Message { peer, channel: stream, data: &data.data };
                if let Err(LaneFull { .. }) = mesh.handle_engine_event(clock.now(), event) {
                    self.held.push_back((stream, data.data));
                }
            }
            Event::ChannelClose(id) => {
                if let Some(stream) = self.open.remove(&id) {
                    self.emit(mesh, clock, EngineEvent::ChannelClosed { peer, channel: stream });
                }
            }
            Event::ChannelBufferedAmountLow(_) => self.flush_outbox(stats),
            Event::Closed => {
                self.finished = true;
                self.emit(mesh, clock, EngineEvent::State { peer, state: ConnectionState::Closed });
            }
            _ => {}
        }
    }

    /// Whether [`send`](Self::send) would take a message of `len` bytes now: within the
    /// remote's limit, and room in the outbox should str0m's buffer be full.
    pub(crate) fn can_send(&self, len: usize) -> Result<(), PutError> {
        let max = self.max_message();
        if len > max {
            return Err(PutError::TooLarge { max });
        }
        if self.finished {
            return Err(PutError::UnknownPeer(self.peer));
        }
        if !self.outbox.has_room(len) {
            return Err(PutError::Full);
        }
        Ok(())
    }

    /// Messages waiting to be sent, and held for the application.
    pub(crate) fn backlog(&self) -> (usize, usize) {
        (self.outbox.len(), self.held.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_attributes() {
        let sdp = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
                   a=sctp-port:5000\r\na=max-message-size:262144\r\n";
        assert_eq!(sdp_mid(sdp).as_deref(), Some("0"));
        assert_eq!(sdp_max_message_size(sdp), 262_144);
        assert_eq!(sdp_max_message_size("v=0\r\n"), 65_536, "absent means 64 KiB");
        assert_eq!(sdp_max_message_size("a=max-message-size:0\r\n"), usize::MAX, "0 means no limit");
        assert_eq!(sdp_max_message_size("a=max-message-size:x\r\n"), 65_536);
    }

    #[test]
    fn godot_lanes_map_to_str0m_configs() {
        let specs = multipeer::mesh::godot_channels(1, &[]);
        let configs: Vec<_> = specs.iter().map(channel_config).collect();
        assert_eq!(configs[0].negotiated, Some(1));
        assert_eq!(configs[0].reliability, RtcReliability::Reliable);
        assert!(configs[1].ordered);
        assert_eq!(configs[1].reliability, RtcReliability::MaxPacketLifetime { lifetime: 1 });
        assert!(!configs[2].ordered);
        assert_eq!(configs[2].negotiated, Some(3));
        assert_eq!(configs[2].label, "unreliable");
    }
}
