//! One WebRTC peer connection, free of Godot types: a `str0m::Rtc` driven over non-blocking UDP
//! sockets, with the W3C/Godot shape (offer, answer, trickled candidates, data channels) that
//! `WebRTCPeerConnection` expects. The Godot classes in [`crate::peer_connection`] and
//! [`crate::data_channel`] are thin wrappers over this.
//!
//! Everything is bounded: received messages per channel ([`MAX_INBOX_PACKETS`]), messages
//! waiting for send-buffer room per channel ([`MAX_OUTBOX_BYTES`]), queued signals
//! ([`MAX_SIGNALS`]), datagrams read per poll ([`MAX_DATAGRAMS_PER_POLL`]). What overflows is
//! counted in [`Drops`] and refused with an error, never dropped silently.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::time::Instant;

use multipeer_std::webrtc::TurnServer;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

pub use self::host::local_ips;
use self::relay::Relays;
use self::sdp::{sdp_max_message_size, sdp_mid, spec_of};
pub use self::stun::stun_servers;
use self::stun::{STUN_GIVE_UP, StunQuery};

mod host;
mod relay;
mod sdp;
mod stun;

/// Received messages one channel keeps for the game; beyond, new ones are dropped and counted.
pub const MAX_INBOX_PACKETS: usize = 4096;
/// Bytes one channel may hold waiting for room in str0m's send buffer; beyond, `put_packet`
/// fails.
pub const MAX_OUTBOX_BYTES: usize = 4 << 20;
/// Signals (descriptions, candidates, new channels) waiting for the next poll.
pub const MAX_SIGNALS: usize = 256;
/// Datagrams read from the sockets in one poll, so that a flood cannot stall a frame.
pub const MAX_DATAGRAMS_PER_POLL: usize = 4096;
/// Bytes str0m's SCTP may hold unacknowledged for the whole connection.
const SCTP_SEND_BUFFER: usize = 1 << 20;
/// `a=max-message-size` we announce: what browsers and libdatachannel announce.
const MAX_MESSAGE_SIZE: u32 = 256 * 1024;
/// `a=max-message-size` absent means 64 KiB (RFC 8841 §6).
const DEFAULT_REMOTE_MAX_MESSAGE: usize = 65_536;
/// `SO_RCVBUF` asked for each socket.
const SOCKET_RECEIVE_BUFFER: usize = 2 << 20;
/// The largest UDP datagram read.
const RECEIVE_BUFFER: usize = 2048;
/// Most outputs taken from str0m in one go (it stops at its next timeout long before).
const MAX_OUTPUTS: usize = 100_000;

/// Godot's `WebRTCPeerConnection.ConnectionState`, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// `STATE_NEW`.
    New,
    /// `STATE_CONNECTING`.
    Connecting,
    /// `STATE_CONNECTED`.
    Connected,
    /// `STATE_DISCONNECTED`.
    Disconnected,
    /// `STATE_FAILED`.
    Failed,
    /// `STATE_CLOSED`.
    Closed,
}

/// Godot's `WebRTCPeerConnection.SignalingState` (the pranswer states never occur).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalingState {
    /// `SIGNALING_STATE_STABLE`.
    Stable,
    /// `SIGNALING_STATE_HAVE_LOCAL_OFFER`.
    HaveLocalOffer,
    /// `SIGNALING_STATE_HAVE_REMOTE_OFFER`.
    HaveRemoteOffer,
    /// `SIGNALING_STATE_CLOSED`.
    Closed,
}

/// Godot's `WebRTCPeerConnection.GatheringState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatheringState {
    /// `GATHERING_STATE_NEW`: no local description yet.
    New,
    /// `GATHERING_STATE_GATHERING`: STUN servers are still being asked.
    Gathering,
    /// `GATHERING_STATE_COMPLETE`.
    Complete,
}

/// Godot's `WebRTCDataChannel.ChannelState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// `STATE_CONNECTING`.
    Connecting,
    /// `STATE_OPEN`.
    Open,
    /// `STATE_CLOSED` (`STATE_CLOSING` is never reported: a close is immediate here).
    Closed,
}

/// What Godot's `create_data_channel` config dictionary asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelSpec {
    /// The label.
    pub label: String,
    /// `negotiated: true` with `id`: declared on both sides out of band, no DCEP.
    pub negotiated: Option<u16>,
    /// `ordered` (Godot's default: true).
    pub ordered: bool,
    /// `maxPacketLifeTime` in milliseconds.
    pub max_packet_lifetime: Option<u16>,
    /// `maxRetransmits`.
    pub max_retransmits: Option<u16>,
    /// `protocol`.
    pub protocol: String,
}

impl ChannelSpec {
    fn config(&self) -> ChannelConfig {
        let reliability = match (self.max_packet_lifetime, self.max_retransmits) {
            (Some(lifetime), _) => Reliability::MaxPacketLifetime { lifetime },
            (None, Some(retransmits)) => Reliability::MaxRetransmits { retransmits },
            (None, None) => Reliability::Reliable,
        };
        ChannelConfig {
            label: self.label.clone(),
            ordered: self.ordered,
            reliability,
            negotiated: self.negotiated,
            protocol: self.protocol.clone(),
        }
    }
}

/// What the connection tells the game, emitted as Godot signals on the next poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// `session_description_created(type, sdp)`.
    Description {
        /// `"offer"` or `"answer"`.
        kind: &'static str,
        /// The SDP.
        sdp: String,
    },
    /// `ice_candidate_created(media, index, name)`.
    Candidate {
        /// The media id.
        mid: String,
        /// The m-line index.
        index: i32,
        /// The `candidate:` line.
        candidate: String,
    },
    /// `data_channel_received(channel)`: the remote opened a channel with DCEP (the key of
    /// the new channel).
    ChannelReceived(usize),
}

/// Counters of what was refused or dropped, so that loss is visible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// Received messages dropped because a channel's inbox was full.
    pub inbox_full: u64,
    /// Messages refused because a channel's outbox was full.
    pub outbox_full: u64,
    /// Messages on `maxPacketLifeTime` channels whose lifetime ended in the outbox.
    pub expired: u64,
    /// Datagrams no socket could send (the kernel refused them).
    pub send_errors: u64,
    /// Signals dropped because [`MAX_SIGNALS`] were waiting.
    pub signals: u64,
}

/// Why a call failed; the Godot layer maps these to `Error` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The call does not fit the current state (`ERR_INVALID_PARAMETER`/`ERR_UNAVAILABLE`).
    State(&'static str),
    /// A description or candidate could not be parsed or applied (`ERR_INVALID_PARAMETER`).
    Invalid(String),
    /// The message is larger than the remote accepts (`ERR_INVALID_PARAMETER`).
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// The outbox is full (`ERR_BUSY`).
    Full,
    /// A socket could not be bound (`ERR_CANT_CREATE`).
    Io(String),
}

impl core::fmt::Display for EngineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::State(what) => write!(f, "not in a state for this call: {what}"),
            Self::Invalid(what) => write!(f, "invalid: {what}"),
            Self::TooLarge { max } => write!(f, "message larger than {max} bytes"),
            Self::Full => f.write_str("send queue full"),
            Self::Io(what) => write!(f, "socket: {what}"),
        }
    }
}

/// One data channel as the engine tracks it.
#[derive(Debug)]
pub struct Channel {
    /// What it was created with (or what DCEP announced).
    pub spec: ChannelSpec,
    /// str0m's id, once the channel exists in str0m.
    id: Option<ChannelId>,
    /// The SCTP stream id, once known.
    pub stream: Option<u16>,
    /// The ready state.
    pub state: ChannelState,
    /// Received messages: (bytes, binary).
    inbox: VecDeque<(Vec<u8>, bool)>,
    /// Messages waiting for str0m's send buffer: (bytes, binary, when sent).
    outbox: VecDeque<(Vec<u8>, bool, Instant)>,
    outbox_bytes: usize,
}

impl Channel {
    fn new(spec: ChannelSpec, id: Option<ChannelId>) -> Self {
        let stream = spec.negotiated;
        Self {
            spec,
            id,
            stream,
            state: ChannelState::Connecting,
            inbox: VecDeque::new(),
            outbox: VecDeque::new(),
            outbox_bytes: 0,
        }
    }

    /// Messages received and not yet taken.
    pub fn available(&self) -> usize {
        self.inbox.len()
    }

    /// Bytes waiting in the outbox.
    pub fn buffered(&self) -> usize {
        self.outbox_bytes
    }
}

/// One peer connection: `str0m::Rtc`, its sockets, its channels and queued signals.
pub struct Connection {
    rtc: Rtc,
    sockets: Vec<(UdpSocket, SocketAddr)>,
    /// Local candidates not yet signalled (before `set_local_description`).
    unsent_candidates: Vec<String>,
    described: bool,
    negotiating: bool,
    pending_offer: Option<SdpPendingOffer>,
    mid: String,
    channels: Vec<Channel>,
    signals: VecDeque<Signal>,
    remote_max_message: usize,
    timeout: Instant,
    /// The connection state.
    pub state: ConnectionState,
    /// The signaling state.
    pub signaling: SignalingState,
    /// STUN servers not answered yet.
    stun: Vec<StunQuery>,
    /// TURN allocations (relay candidates).
    relays: Relays,
    /// Drop and refusal counters.
    pub drops: Drops,
    ever_connected: bool,
    /// `MULTIPEER_GODOT_TRACE` is set: every str0m event goes to stderr.
    trace: bool,
    /// Received messages one channel keeps ([`MAX_INBOX_PACKETS`]; tests lower it).
    inbox_limit: usize,
    /// Why the connection failed (str0m's error), for the Godot log.
    pub failure: Option<String>,
    buf: Vec<u8>,
}

impl Connection {
    /// Binds one non-blocking UDP socket per local address, prepares the ICE agent and starts
    /// asking the STUN servers for the sockets' mapped addresses (Godot's `initialize`).
    pub fn new(ips: &[IpAddr], stun_servers: &[SocketAddr]) -> Result<Self, EngineError> {
        Self::with_relays(ips, stun_servers, &[], false)
    }

    /// [`new`](Self::new), and an allocation on each TURN server; `relay_only`
    /// (`iceTransportPolicy: "relay"`) gathers relay candidates only.
    pub fn with_relays(
        ips: &[IpAddr],
        stun_servers: &[SocketAddr],
        turn_servers: &[TurnServer],
        relay_only: bool,
    ) -> Result<Self, EngineError> {
        let now = Instant::now();
        // str0m's default MTU target overshoots the browser-safe datagram budget once
        // sctp-proto bundles small messages; multipeer-std's engine settles the same value.
        let mtu = multipeer_std::webrtc::DEFAULT_MTU;
        let mut rtc = Rtc::builder()
            .set_sctp_max_buffered_amount(SCTP_SEND_BUFFER)
            .set_sctp_max_message_size(MAX_MESSAGE_SIZE)
            .set_mtu(mtu..=mtu.max(multipeer_std::webrtc::MAX_UDP_PAYLOAD))
            .build(now);
        let mut sockets = Vec::new();
        let mut unsent_candidates = Vec::new();
        for ip in ips {
            let socket = UdpSocket::bind((*ip, 0)).map_err(|e| EngineError::Io(e.to_string()))?;
            socket.set_nonblocking(true).map_err(|e| EngineError::Io(e.to_string()))?;
            // The kernel charges each small datagram about 1 KiB of buffer: its default
            // (~208 KiB) overflows on a burst of a few hundred messages between two frames,
            // and every drop costs the sender a retransmission timeout. The kernel caps the
            // request (`net.core.rmem_max`); failure leaves the default.
            let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(SOCKET_RECEIVE_BUFFER);
            let local = socket.local_addr().map_err(|e| EngineError::Io(e.to_string()))?;
            let candidate = Candidate::host(local, "udp").map_err(|e| EngineError::Invalid(e.to_string()))?;
            // A relay-only connection reveals no host address (its relayed ones use the socket).
            if !relay_only && let Some(c) = rtc.add_local_candidate(candidate) {
                unsent_candidates.push(c.to_sdp_string());
            }
            sockets.push((socket, local));
        }
        let mut stun = Vec::new();
        for server in stun_servers.iter().filter(|_| !relay_only) {
            // A loopback server answers only loopback sockets, any other only the others.
            let usable = sockets.iter().enumerate().filter(|(_, (_, local))| {
                local.is_ipv4() == server.is_ipv4() && local.ip().is_loopback() == server.ip().is_loopback()
            });
            for (socket, _) in usable {
                let mut transaction = [0; 12];
                getrandom::fill(&mut transaction).map_err(|e| EngineError::Io(e.to_string()))?;
                stun.push(StunQuery {
                    server: *server,
                    socket,
                    transaction,
                    next_send: now,
                    give_up: now + STUN_GIVE_UP,
                });
            }
        }
        Ok(Self {
            rtc,
            relays: Relays::start(&sockets, turn_servers, relay_only),
            sockets,
            stun,
            unsent_candidates,
            described: false,
            negotiating: false,
            pending_offer: None,
            mid: String::from("0"),
            channels: Vec::new(),
            signals: VecDeque::new(),
            remote_max_message: DEFAULT_REMOTE_MAX_MESSAGE,
            timeout: now,
            state: ConnectionState::New,
            signaling: SignalingState::Stable,
            drops: Drops::default(),
            ever_connected: false,
            trace: std::env::var_os("MULTIPEER_GODOT_TRACE").is_some(),
            inbox_limit: MAX_INBOX_PACKETS,
            failure: None,
            buf: vec![0; RECEIVE_BUFFER],
        })
    }

    /// The ICE gathering state.
    pub fn gathering_state(&self) -> GatheringState {
        match (self.described, self.stun.is_empty() && !self.relays.allocating()) {
            (false, _) => GatheringState::New,
            (true, false) => GatheringState::Gathering,
            (true, true) => GatheringState::Complete,
        }
    }

    /// The local socket addresses (host candidates).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets.iter().map(|(_, a)| *a).collect()
    }

    fn closed(&self) -> bool {
        matches!(self.state, ConnectionState::Closed | ConnectionState::Failed)
    }

    fn signal(&mut self, signal: Signal) {
        if self.signals.len() >= MAX_SIGNALS {
            self.drops.signals += 1;
            return;
        }
        self.signals.push_back(signal);
    }

    /// Takes the signals to emit.
    pub fn take_signals(&mut self) -> Vec<Signal> {
        self.signals.drain(..).collect()
    }

    /// A channel by key.
    pub fn channel(&self, key: usize) -> Option<&Channel> {
        self.channels.get(key)
    }

    /// Godot's `create_data_channel`: returns the channel's key. Before the first offer or
    /// answer the channel goes into it; afterwards it is created at once (negotiated channels
    /// open with the association, others announce themselves with DCEP).
    pub fn create_data_channel(&mut self, spec: ChannelSpec) -> Result<usize, EngineError> {
        if self.closed() {
            return Err(EngineError::State("connection closed"));
        }
        if let Some(id) = spec.negotiated
            && self.channels.iter().any(|c| c.spec.negotiated == Some(id))
        {
            return Err(EngineError::Invalid(format!("channel id {id} already in use")));
        }
        let id = if self.negotiating {
            Some(self.rtc.direct_api().create_data_channel(spec.config()))
        } else {
            None
        };
        self.channels.push(Channel::new(spec, id));
        Ok(self.channels.len() - 1)
    }

    /// Godot's `create_offer`: the offer is signalled as `session_description_created`.
    pub fn create_offer(&mut self) -> Result<(), EngineError> {
        if self.closed() || self.signaling != SignalingState::Stable || self.negotiating {
            return Err(EngineError::State("offer already made or connection closed"));
        }
        let mut api = self.rtc.sdp_api();
        let mut ids = Vec::new();
        for channel in &self.channels {
            ids.push(api.add_channel_with_config(channel.spec.config()));
        }
        let Some((offer, pending)) = api.apply() else {
            return Err(EngineError::State("an offer needs a data channel"));
        };
        for (channel, id) in self.channels.iter_mut().zip(ids) {
            channel.id = Some(id);
        }
        self.negotiating = true;
        self.pending_offer = Some(pending);
        self.signal(Signal::Description { kind: "offer", sdp: offer.to_sdp_string() });
        Ok(())
    }

    /// Godot's `set_local_description`: the description we created; candidates follow it.
    pub fn set_local_description(&mut self, kind: &str, sdp: &str) -> Result<(), EngineError> {
        match (kind, self.signaling) {
            ("offer", SignalingState::Stable) if self.pending_offer.is_some() => {
                self.signaling = SignalingState::HaveLocalOffer;
            }
            ("answer", SignalingState::HaveRemoteOffer) => self.signaling = SignalingState::Stable,
            _ => return Err(EngineError::State("local description does not fit the signaling state")),
        }
        if let Some(mid) = sdp_mid(sdp) {
            self.mid = mid;
        }
        if self.state == ConnectionState::New {
            self.state = ConnectionState::Connecting;
        }
        self.described = true;
        for candidate in core::mem::take(&mut self.unsent_candidates) {
            let mid = self.mid.clone();
            self.signal(Signal::Candidate { mid, index: 0, candidate });
        }
        Ok(())
    }

    /// Godot's `set_remote_description`: an offer is answered (the answer signalled as
    /// `session_description_created`), an answer completes our offer.
    pub fn set_remote_description(&mut self, kind: &str, sdp: &str) -> Result<(), EngineError> {
        if self.closed() {
            return Err(EngineError::State("connection closed"));
        }
        self.remote_max_message = sdp_max_message_size(sdp);
        match kind {
            "offer" => {
                if self.signaling != SignalingState::Stable || self.negotiating {
                    return Err(EngineError::State("an offer arrived while negotiating"));
                }
                let offer =
                    SdpOffer::from_sdp_string(sdp).map_err(|e| EngineError::Invalid(e.to_string()))?;
                // Channels created so far are declared before the offer is accepted, so that
                // negotiated ones match the remote's ids and others are announced by DCEP.
                let mut api = self.rtc.direct_api();
                for channel in &mut self.channels {
                    channel.id = Some(api.create_data_channel(channel.spec.config()));
                }
                let answer = self
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .map_err(|e| EngineError::Invalid(e.to_string()))?;
                self.negotiating = true;
                self.signaling = SignalingState::HaveRemoteOffer;
                if let Some(mid) = sdp_mid(sdp) {
                    self.mid = mid;
                }
                if self.state == ConnectionState::New {
                    self.state = ConnectionState::Connecting;
                }
                self.signal(Signal::Description { kind: "answer", sdp: answer.to_sdp_string() });
                Ok(())
            }
            "answer" => {
                if self.signaling != SignalingState::HaveLocalOffer {
                    return Err(EngineError::State("an answer without our offer"));
                }
                let pending = self.pending_offer.take().ok_or(EngineError::State("no offer pending"))?;
                let answer =
                    SdpAnswer::from_sdp_string(sdp).map_err(|e| EngineError::Invalid(e.to_string()))?;
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(|e| EngineError::Invalid(e.to_string()))?;
                self.signaling = SignalingState::Stable;
                Ok(())
            }
            other => Err(EngineError::Invalid(format!("description type {other:?}"))),
        }
    }

    /// Godot's `add_ice_candidate`. An empty line (end of candidates) is accepted; a
    /// candidate str0m cannot use (an mDNS `.local` name, TCP) is refused.
    pub fn add_ice_candidate(&mut self, candidate: &str) -> Result<(), EngineError> {
        let line = candidate.trim().trim_start_matches("a=");
        if line.is_empty() || line == "end-of-candidates" {
            return Ok(());
        }
        let c = Candidate::from_sdp_string(line).map_err(|e| EngineError::Invalid(e.to_string()))?;
        self.relay_permit(c.addr().ip());
        self.rtc.add_remote_candidate(c);
        Ok(())
    }

    /// The largest message the remote accepts and our send buffer can hold.
    pub fn max_message(&self) -> usize {
        self.remote_max_message.min(SCTP_SEND_BUFFER)
    }

    /// Godot's `put_packet` on a channel: handed to SCTP at once, or queued in the channel's
    /// bounded outbox while the send buffer is full.
    pub fn send(&mut self, key: usize, data: &[u8], binary: bool) -> Result<(), EngineError> {
        let max = self.max_message();
        if data.len() > max {
            return Err(EngineError::TooLarge { max });
        }
        let Some(channel) = self.channels.get(key) else { return Err(EngineError::State("no such channel")) };
        if channel.state != ChannelState::Open {
            return Err(EngineError::State("channel not open"));
        }
        let id = channel.id;
        let written = if channel.outbox.is_empty() { write(&mut self.rtc, id, data, binary)? } else { false };
        if !written {
            let Some(channel) = self.channels.get_mut(key) else {
                return Err(EngineError::State("no such channel"));
            };
            if channel.outbox_bytes + data.len() > MAX_OUTBOX_BYTES {
                self.drops.outbox_full += 1;
                return Err(EngineError::Full);
            }
            channel.outbox_bytes += data.len();
            channel.outbox.push_back((data.to_vec(), binary, Instant::now()));
        }
        self.drain_outputs();
        Ok(())
    }

    /// Godot's `get_packet` on a channel: the oldest received message and whether it was
    /// binary.
    pub fn receive(&mut self, key: usize) -> Option<(Vec<u8>, bool)> {
        self.channels.get_mut(key)?.inbox.pop_front()
    }

    /// Godot's `WebRTCDataChannel.close`.
    pub fn close_channel(&mut self, key: usize) {
        let Some(channel) = self.channels.get_mut(key) else { return };
        channel.state = ChannelState::Closed;
        if let Some(id) = channel.id {
            self.rtc.direct_api().close_data_channel(id);
        }
        self.drain_outputs();
    }

    /// Godot's `WebRTCPeerConnection.close`: an orderly close, then every channel is closed.
    pub fn close(&mut self) {
        if self.state != ConnectionState::Closed {
            let _ = self.rtc.close();
            self.drain_outputs();
            self.rtc.disconnect();
            self.close_relays();
        }
        self.state = ConnectionState::Closed;
        self.signaling = SignalingState::Closed;
        for channel in &mut self.channels {
            channel.state = ChannelState::Closed;
        }
    }

    /// Godot's `poll`: reads what the sockets have, runs str0m's timers and flushes outboxes.
    pub fn poll(&mut self) {
        if self.closed() {
            return;
        }
        self.ask_stun(Instant::now());
        self.drive_relays();
        let mut read = 0;
        'sockets: for index in 0..self.sockets.len() {
            while read < MAX_DATAGRAMS_PER_POLL {
                let (socket, local) = &self.sockets[index];
                let local = *local;
                let (len, source) = match socket.recv_from(&mut self.buf) {
                    Ok(got) => got,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue 'sockets,
                    // ICMP errors (port unreachable) surface here on Linux: skip them.
                    Err(_) => continue,
                };
                read += 1;
                if !self.stun.is_empty() {
                    let datagram = self.buf[..len].to_vec();
                    if self.stun_answer(index, source, &datagram) {
                        continue;
                    }
                }
                if self.relays.is_server(index, source) {
                    let datagram = self.buf[..len].to_vec();
                    self.relay_datagram(index, source, &datagram);
                    continue;
                }
                if self.relays.relay_only {
                    continue;
                }
                let Ok(receive) = Receive::new(Protocol::Udp, source, local, &self.buf[..len]) else {
                    continue;
                };
                if let Err(e) = self.rtc.handle_input(Input::Receive(Instant::now(), receive)) {
                    self.fail(format!("receive: {e}"));
                    return;
                }
                // Hand over what this datagram produced before the next one.
                self.drain_outputs();
                if self.closed() {
                    return;
                }
            }
        }
        let now = Instant::now();
        if now >= self.timeout
            && let Err(e) = self.rtc.handle_input(Input::Timeout(now))
        {
            self.fail(format!("timeout: {e}"));
            return;
        }
        self.flush_outboxes();
        self.drain_outputs();
    }

    fn fail(&mut self, reason: String) {
        if self.failure.is_none() {
            self.failure = Some(reason);
        }
        self.state = ConnectionState::Failed;
        self.rtc.disconnect();
        for channel in &mut self.channels {
            channel.state = ChannelState::Closed;
        }
    }

    fn flush_outboxes(&mut self) {
        let now = Instant::now();
        for channel in &mut self.channels {
            let lifetime = channel.spec.max_packet_lifetime.map(|ms| Duration::from_millis(u64::from(ms)));
            while let Some((data, binary, sent)) = channel.outbox.front() {
                if lifetime.is_some_and(|l| now.duration_since(*sent) > l) {
                    // SCTP would abandon it too once its lifetime is over.
                    self.drops.expired += 1;
                } else if !matches!(write(&mut self.rtc, channel.id, data, *binary), Ok(true)) {
                    break;
                }
                let len = data.len();
                channel.outbox.pop_front();
                channel.outbox_bytes -= len;
            }
        }
    }

    fn drain_outputs(&mut self) {
        for _ in 0..MAX_OUTPUTS {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.timeout = at;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    if self.relay_send(t.source, t.destination, &t.contents) {
                        continue;
                    }
                    let socket = self.sockets.iter().find(|(_, a)| *a == t.source).map(|(s, _)| s);
                    let sent = socket.map(|s| s.send_to(&t.contents, t.destination));
                    if !matches!(sent, Some(Ok(_))) {
                        self.drops.send_errors += 1;
                    }
                }
                Ok(Output::Event(event)) => self.event(event),
                Err(e) => {
                    self.fail(format!("output: {e}"));
                    return;
                }
            }
        }
    }

    fn event(&mut self, event: Event) {
        if self.trace {
            match &event {
                Event::ChannelData(d) => eprintln!(
                    "trace data id={:?} len={} head={:?}",
                    d.id,
                    d.data.len(),
                    String::from_utf8_lossy(&d.data[..d.data.len().min(8)])
                ),
                other => eprintln!("trace {other:?}"),
            }
        }
        match event {
            Event::Connected => {
                self.ever_connected = true;
                self.state = ConnectionState::Connected;
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) if self.ever_connected => {
                self.state = ConnectionState::Disconnected;
            }
            Event::ChannelOpen(id, label) => {
                let stream = self.rtc.direct_api().sctp_stream_id_by_channel_id(id);
                if let Some(channel) = self.channels.iter_mut().find(|c| c.id == Some(id)) {
                    channel.state = ChannelState::Open;
                    channel.stream = stream.or(channel.stream);
                    return;
                }
                // Opened by the remote with DCEP: a new channel for `data_channel_received`.
                let spec = self.rtc.channel(id).and_then(|c| c.config().cloned());
                let spec = spec.map_or_else(
                    || ChannelSpec { label: label.clone(), ordered: true, ..ChannelSpec::default() },
                    |c| spec_of(&c),
                );
                let mut channel = Channel::new(spec, Some(id));
                channel.stream = stream;
                channel.state = ChannelState::Open;
                self.channels.push(channel);
                let key = self.channels.len() - 1;
                self.signal(Signal::ChannelReceived(key));
            }
            Event::ChannelData(data) => {
                let Some(channel) = self.channels.iter_mut().find(|c| c.id == Some(data.id)) else { return };
                if channel.inbox.len() >= self.inbox_limit {
                    self.drops.inbox_full += 1;
                    return;
                }
                channel.inbox.push_back((data.data, data.binary));
            }
            Event::ChannelClose(id) => {
                if let Some(channel) = self.channels.iter_mut().find(|c| c.id == Some(id)) {
                    channel.state = ChannelState::Closed;
                }
            }
            Event::ChannelBufferedAmountLow(_) => self.flush_outboxes(),
            Event::Closed => {
                self.state = ConnectionState::Closed;
                for channel in &mut self.channels {
                    channel.state = ChannelState::Closed;
                }
            }
            _ => {}
        }
    }
}

/// Offers a message to str0m: whether its send buffer took it.
fn write(rtc: &mut Rtc, id: Option<ChannelId>, data: &[u8], binary: bool) -> Result<bool, EngineError> {
    let Some(mut channel) = id.and_then(|id| rtc.channel(id)) else {
        return Err(EngineError::State("channel not open"));
    };
    channel.write(binary, data).map_err(|e| EngineError::Invalid(e.to_string()))
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
