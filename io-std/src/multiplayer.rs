//! Godot's `WebSocketMultiplayerPeer` over `std::net`: one type that is a multiplayer server or
//! client, driven by [`poll`](WebSocketMultiplayerPeer::poll) from the application's loop.
//!
//! The protocol is the core's ([`multipeer::peer::Server`] and [`multipeer::peer::Client`]);
//! this module owns only sockets, a clock and the OS-seeded RNG. Members keep Godot's names
//! (`create_server`, `put_packet`, `get_packet_peer`, ...) with Rust shapes: enums for targets
//! and modes, `Option` where Godot returns 0 or an empty value, `Result` where Godot returns an
//! error code (with `godot_error()` for Godot's number), and an event queue where Godot emits
//! signals. `GODOT.md` at the repository root maps every Godot member to its counterpart here.
//!
//! ```no_run
//! use multipeer_std::multipeer::peer::{Event, Target};
//! use multipeer_std::WebSocketMultiplayerPeer;
//!
//! let mut peer = WebSocketMultiplayerPeer::new();
//! peer.create_server(9080, "*")?; // or, with the `tls` feature, create_server_with_tls(.., TlsOptions::server(..)?)
//! loop {
//!     peer.poll()?;
//!     while let Some(event) = peer.poll_event() {
//!         if let Event::PeerConnected(id) = event {
//!             peer.set_target_peer(Target::Peer(id));
//!             let _ = peer.put_packet(b"\x03welcome"); // SceneMultiplayer's send_bytes framing
//!         }
//!     }
//!     while let Some((data, info)) = peer.get_packet() {
//!         println!("{} sent {} bytes", info.from, data.len());
//!     }
//!     peer.wait(std::time::Duration::from_millis(100));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Waiting without spinning
//!
//! std has no readiness API for several sockets, so [`wait`](WebSocketMultiplayerPeer::wait)
//! does this: a client blocks on its one socket (a `peek` with a read timeout) until the server
//! sends something or the core's next timer is due; a server sleeps in slices of at most
//! [`SERVER_WAIT_SLICE`], bounded by the core's next timer, because new connections and input
//! on any socket can only be seen by polling. Both return at once when commands queued output
//! since the last poll. A server with many connections belongs on `multipeer-mio`.

mod client;
mod failures;
mod linger;
mod scene;
mod server;
mod settings;
#[cfg(feature = "tls")]
mod tls;
mod types;

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::VecDeque;
use std::io;
use std::time::Instant as StdInstant;

use multipeer::peer::{
    ClientConfig, ConnectionStatus, Event, MultiplayerPeer as _, Packet, PacketInfo, PeerId, Protocol,
    PutError, ServerConfig, Target, TransferMode, UnknownPeer,
};
use multipeer::ws::{self, CloseCode};

use self::client::{ClientSide, Opening, TlsClientOptions};
pub use self::failures::TransportFailure;
use self::linger::Linger;
use self::server::{ServerSide, TlsServerOptions};
pub use self::settings::MIN_HANDSHAKE_TIMEOUT;
use self::settings::Settings;
pub use self::types::{Incoming, MultiplayerError, PeerConnection};
use crate::client_rng;

/// The longest a server's [`wait`](WebSocketMultiplayerPeer::wait) sleeps before polling
/// again, so the delay before a new connection or a packet is noticed (Godot's counterpart is
/// its frame time).
pub const SERVER_WAIT_SLICE: Duration = Duration::from_millis(5);

/// Bytes asked of a socket per read call.
const READ_CHUNK: usize = 64 * 1024;

/// Extra outbound queue room per server connection beyond `outbound_buffer_size` (Godot's
/// counterpart is the kernel's socket send buffer).
///
/// Godot hands every message to the socket as it is sent, so its `outbound_buffer_size` bounds
/// only what the kernel has not taken. Here the core routes a whole read's worth of messages
/// (relays, announcements) before the adapter writes, so its queue also holds what Godot would
/// already have given the kernel: without this room, a maximum-size relay queued behind one
/// small packet would cut a healthy peer off as a slow consumer. One message stays bounded by
/// `outbound_buffer_size` (the core's `ws::Config::outbound_queue_size` carries the allowance);
/// a peer that stops reading is cut off once this much more is queued.
pub const SERVER_QUEUE_ALLOWANCE: usize = 1 << 20;

/// The active half, if any.
enum Active {
    None,
    Server(Box<ServerSide>),
    Client(Box<ClientSide>),
}

/// Godot's `WebSocketMultiplayerPeer` (4.x; 3.x `WebSocketServer`/`WebSocketClient` with the
/// multiplayer API when the protocol is [`Protocol::Godot3`]) over `std::net`.
///
/// Configure it (the property setters apply at the next `create_*`), then
/// [`create_server`](Self::create_server) or [`create_client`](Self::create_client), then call
/// [`poll`](Self::poll) from a loop, drain [`poll_event`](Self::poll_event) (Godot's signals)
/// and [`get_packet`](Self::get_packet), and sleep with [`wait`](Self::wait).
///
/// Deliberate differences from Godot, besides the Rust shapes (each is explained in `GODOT.md`):
/// errors Godot only prints (a packet too large for the target's buffer, a dropped relay) are
/// returned or reported as [`Event::PacketDropped`]; a server's `disconnect_peer` reports
/// `peer_disconnected` at once, even with `force`, and the kicked peer's answer later as
/// [`Event::PeerClosed`]; `close()` sends a Close frame to every peer instead of dropping TCP;
/// a Godot 3 client that loses its server after joining reports `server_disconnected`, not
/// `connection_failed`.
pub struct WebSocketMultiplayerPeer {
    settings: Settings,
    target: Target,
    mode: TransferMode,
    channel: u8,
    refuse: bool,
    active: Active,
    linger: Linger,
    /// Events of a server or client that was closed, still to be read.
    leftover: VecDeque<Event>,
    /// Commands queued output (or read packets) since the last poll.
    dirty: bool,
    scratch: Vec<u8>,
    /// SceneMultiplayer on top, when set (see `set_scene_multiplayer`).
    scene: Option<Box<multipeer::scene::SceneMultiplayer>>,
}

impl fmt::Debug for WebSocketMultiplayerPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match &self.active {
            Active::None => "none",
            Active::Server(_) => "server",
            Active::Client(_) => "client",
        };
        f.debug_struct("WebSocketMultiplayerPeer")
            .field("role", &role)
            .field("status", &self.get_connection_status())
            .field("unique_id", &self.unique_id())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for WebSocketMultiplayerPeer {
    fn default() -> Self {
        Self::new()
    }
}

impl WebSocketMultiplayerPeer {
    /// A peer with Godot 4.4+'s defaults (`WebSocketMultiplayerPeer.new()`): Godot 4 framing,
    /// relay on, 65535-byte buffers, 4096 queued packets, 3 s handshake timeout.
    #[must_use]
    pub fn new() -> Self {
        let ws = ws::Config::GODOT;
        Self::with_settings(Settings {
            protocol: Protocol::Godot4,
            server_relay: true,
            supported_protocols: Vec::new(),
            handshake_headers: Vec::new(),
            inbound_buffer_size: ws.max_message_size,
            outbound_buffer_size: ws.outbound_buffer_size,
            max_queued_packets: ws.max_queued_messages,
            max_outbound_packets: ws.max_outbound_messages,
            handshake_timeout: ws.handshake_timeout,
            slow_peer_timeout: Some(multipeer::peer::DEFAULT_SLOW_PEER_TIMEOUT),
        })
    }

    /// A peer with Godot 4.0–4.3's defaults: as [`new`](Self::new) but `max_queued_packets`
    /// 2048 (4.4 raised it to 4096).
    #[must_use]
    pub fn godot_4_0() -> Self {
        let mut peer = Self::new();
        peer.set_max_queued_packets(ws::Config::GODOT_4_0.max_queued_messages);
        peer
    }

    /// A peer speaking Godot 3.x's protocol (9-byte header, relay in the server) with 3.x's
    /// default buffers (`set_buffers(64, 1024, 64, 1024)`) and the 3 s handshake timeout of
    /// 3.3+ (3.6.2 checked; 3.2.3 had a fixed 1 s: set it with
    /// [`set_handshake_timeout`](Self::set_handshake_timeout)). Where 3.x (3.2.3 and 3.6.2
    /// alike) differs from what this does (a relay to −1 reaching the server, a 65536-byte
    /// message dropped silently, every loss reported as `connection_failed`), `GODOT.md` says
    /// why.
    #[must_use]
    pub fn godot3() -> Self {
        let mut peer = Self::new();
        peer.settings.protocol = Protocol::Godot3;
        // In range, and nothing is active yet: this cannot fail.
        let _ = peer.set_buffers(64, 1024, 64, 1024);
        peer
    }

    fn with_settings(settings: Settings) -> Self {
        Self {
            settings,
            target: Target::Broadcast,
            mode: TransferMode::Reliable,
            channel: 0,
            refuse: false,
            active: Active::None,
            linger: Linger::default(),
            leftover: VecDeque::new(),
            dirty: false,
            scratch: Vec::new(),
            scene: None,
        }
    }

    // ----- create, poll, close ---------------------------------------------------------------

    /// `create_server(port, bind_address)`: listens on `port` (0 picks a free one, see
    /// [`local_addr`](Self::local_addr)); `bind_address` `"*"` is every interface, IPv6 and
    /// IPv4, otherwise an IP address. Plain `ws://`; see
    /// [`create_server_with_tls`](Self::create_server_with_tls) for `wss://`.
    ///
    /// # Errors
    /// [`MultiplayerError::AlreadyInUse`] while active, [`MultiplayerError::InvalidParameter`]
    /// for a bind address that is neither or a SceneMultiplayer of the other Godot version, [`MultiplayerError::Listen`] when binding fails,
    /// [`MultiplayerError::Connect`] when the OS has no randomness for peer ids.
    pub fn create_server(&mut self, port: u16, bind_address: &str) -> Result<(), MultiplayerError> {
        self.start_server(port, bind_address, None)
    }

    /// `create_server` with or without TLS options (checked by the caller).
    fn start_server(
        &mut self,
        port: u16,
        bind_address: &str,
        tls: Option<TlsServerOptions>,
    ) -> Result<(), MultiplayerError> {
        self.check_idle()?;
        self.check_scene_protocol()?;
        // A new session: SceneMultiplayer forgets the last one's peers and caches.
        if let Some(scene) = self.scene.as_deref_mut() {
            scene.clear();
        }
        if bind_address != "*" && bind_address.parse::<IpAddr>().is_err() {
            return Err(MultiplayerError::InvalidParameter("bind_address must be \"*\" or an IP address"));
        }
        let rng = client_rng().map_err(MultiplayerError::Connect)?;
        let listeners = server::listen(port, bind_address).map_err(MultiplayerError::Listen)?;
        let s = &self.settings;
        let config = ServerConfig {
            protocol: s.protocol,
            // SceneMultiplayer speaks SYS (auth, relay) itself.
            relay: s.server_relay && self.scene.is_none(),
            ws: s.ws_config(true),
            supported_protocols: s.supported_protocols.clone(),
            handshake_headers: s.handshake_headers.clone(),
            refuse_new_connections: self.refuse,
            slow_peer_timeout: s.slow_peer_timeout,
            ..ServerConfig::default()
        };
        let mut side = ServerSide::new(listeners, config, rng, tls);
        side.core.set_target_peer(self.target);
        side.core.set_transfer_mode(self.mode);
        side.core.set_transfer_channel(self.channel);
        self.retire();
        self.active = Active::Server(Box::new(side));
        Ok(())
    }

    /// `create_client(url)`: starts connecting to a `ws://` or `wss://` URL and returns at
    /// once, as Godot does: the TCP connect runs in a background thread, then the TLS and
    /// WebSocket handshakes in [`poll`](Self::poll). The status is `Connecting` until
    /// [`Event::ConnectionSucceeded`] or [`Event::ConnectionFailed`] (then
    /// [`connection_error`](Self::connection_error) says why, when the transport failed: a
    /// refused connect, a certificate the client refused). `handshake_timeout` bounds it all.
    /// [`create_client_blocking`](Self::create_client_blocking) connects in the calling
    /// thread instead.
    ///
    /// `wss://` uses Godot's default `tls_client_options`, [`TlsOptions::client`](crate::tls::TlsOptions::client) (webpki
    /// roots, host name checked); [`create_client_with_tls`](Self::create_client_with_tls)
    /// takes others.
    ///
    /// # Errors
    /// [`MultiplayerError::AlreadyInUse`] while active; [`MultiplayerError::Connect`] for a bad
    /// URL, `wss://` without the `tls` feature ([`Error::TlsUnsupported`](crate::Error::TlsUnsupported)), an unusable
    /// subprotocol or header line, no OS randomness, or no thread for the connect;
    /// [`MultiplayerError::InvalidParameter`] for a SceneMultiplayer of the other Godot version.
    pub fn create_client(&mut self, url: &str) -> Result<(), MultiplayerError> {
        self.start_client(url, None, Opening::Background)
    }

    /// [`create_client`](Self::create_client) with the TCP connect in the calling thread
    /// (blocking up to `handshake_timeout`); a failed connect is returned here as
    /// [`MultiplayerError::Connect`] instead of reported as `connection_failed`.
    ///
    /// # Errors
    /// As [`create_client`](Self::create_client), and the connect's failure.
    pub fn create_client_blocking(&mut self, url: &str) -> Result<(), MultiplayerError> {
        self.start_client(url, None, Opening::Blocking)
    }

    /// `create_client` with or without TLS options (checked by the caller).
    fn start_client(
        &mut self,
        url: &str,
        tls: Option<TlsClientOptions>,
        opening: Opening,
    ) -> Result<(), MultiplayerError> {
        self.check_idle()?;
        self.check_scene_protocol()?;
        // A new session: SceneMultiplayer forgets the last one's peers and caches.
        if let Some(scene) = self.scene.as_deref_mut() {
            scene.clear();
        }
        let s = &self.settings;
        let relay = s.server_relay && self.scene.is_none();
        let config = ClientConfig { protocol: s.protocol, relay, ws: s.ws_config(false) };
        let mut side =
            ClientSide::connect(url, &s.supported_protocols, &s.handshake_headers, config, tls, opening)
                .map_err(MultiplayerError::Connect)?;
        side.core.set_target_peer(self.target);
        side.core.set_transfer_mode(self.mode);
        side.core.set_transfer_channel(self.channel);
        self.retire();
        self.active = Active::Client(Box::new(side));
        self.dirty = true;
        Ok(())
    }

    fn check_idle(&self) -> Result<(), MultiplayerError> {
        if self.get_connection_status() == ConnectionStatus::Disconnected {
            Ok(())
        } else {
            Err(MultiplayerError::AlreadyInUse)
        }
    }

    /// Hands a finished client's transport to the linger list before it is replaced.
    fn retire(&mut self) {
        match core::mem::replace(&mut self.active, Active::None) {
            Active::Client(mut side) => {
                self.leftover.extend(core::iter::from_fn(|| side.core.poll_event()));
                side.hand_over(&mut self.linger);
            }
            Active::Server(mut side) => {
                self.leftover.extend(core::iter::from_fn(|| side.core.poll_event()));
                side.shut_down(&mut self.linger);
            }
            Active::None => {}
        }
    }

    /// `poll()`: does all the I/O possible without waiting — accepts connections, reads every
    /// socket, runs the core's timers, writes queued output, closes finished sockets — and
    /// never blocks.
    ///
    /// # Errors
    /// A server's listening socket failed to accept (for example, out of file descriptors);
    /// the rest of the poll was done and the server keeps running. Connection failures are
    /// reported as events, not here.
    pub fn poll(&mut self) -> io::Result<()> {
        self.dirty = false;
        if self.scratch.is_empty() {
            self.scratch.resize(READ_CHUNK, 0);
        }
        let result = match &mut self.active {
            Active::Server(side) => side.poll(&mut self.scratch, &mut self.linger),
            Active::Client(side) => {
                side.poll(&mut self.scratch, &mut self.linger);
                Ok(())
            }
            Active::None => Ok(()),
        };
        self.pump_scene();
        if !self.linger.is_empty() {
            self.linger.poll(&mut self.scratch);
        }
        result
    }

    /// When [`poll`](Self::poll) must run at the latest (the core's next timer, or now when
    /// commands queued output since the last poll); `None` when only network input matters.
    #[must_use]
    pub fn next_timeout(&self) -> Option<StdInstant> {
        if self.dirty {
            return Some(StdInstant::now());
        }
        let side = match &self.active {
            Active::Server(side) => side.next_timeout(),
            Active::Client(side) => side.next_timeout(),
            Active::None => None,
        };
        let side = match (side, self.scene_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (side, self.linger.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sleeps until there may be work for [`poll`](Self::poll), at most `max` (see the module
    /// documentation for how; Godot's main loop does this between frames).
    pub fn wait(&mut self, max: Duration) {
        let until = self.next_timeout();
        let now = StdInstant::now();
        let mut timeout = until.map_or(max, |t| t.saturating_duration_since(now).min(max));
        if timeout.is_zero() {
            return;
        }
        match &mut self.active {
            Active::Client(side) => side.wait_readable(timeout),
            Active::Server(_) => std::thread::sleep(timeout.min(SERVER_WAIT_SLICE)),
            Active::None => {
                if !self.linger.is_empty() {
                    timeout = timeout.min(SERVER_WAIT_SLICE);
                }
                std::thread::sleep(timeout);
            }
        }
    }

    /// `close()`: ends every connection with a Close frame (from a server 1001 "server
    /// closing", or 1000 with no reason in Godot 3 mode as 3.x's `stop()` sends; 1000 from a
    /// client; Godot 4 drops TCP without one), stops listening, drops unread packets, and
    /// returns to `Disconnected`. The `peer_disconnected` events it causes can still be read, and the
    /// sockets finish closing in later polls.
    pub fn close(&mut self) {
        match &mut self.active {
            Active::Server(side) => {
                let now = side.clock.now();
                side.core.close(now);
            }
            Active::Client(side) => {
                let now = side.clock.now();
                side.core.close(now);
                side.flush();
            }
            Active::None => return,
        }
        self.retire();
    }

    // ----- MultiplayerPeer -------------------------------------------------------------------

    /// `get_unique_id()` as Godot returns it: 1 on a server, the assigned id on a client, 0
    /// before it is known or when not active.
    #[must_use]
    pub fn get_unique_id(&self) -> i32 {
        self.unique_id().map_or(0, PeerId::get)
    }

    /// [`get_unique_id`](Self::get_unique_id) as a [`PeerId`], `None` where Godot returns 0.
    #[must_use]
    pub fn unique_id(&self) -> Option<PeerId> {
        match &self.active {
            Active::Server(side) => side.core.unique_id(),
            Active::Client(side) => side.core.unique_id(),
            Active::None => None,
        }
    }

    /// `get_connection_status()`.
    #[must_use]
    pub fn get_connection_status(&self) -> ConnectionStatus {
        match &self.active {
            Active::Server(side) => side.core.connection_status(),
            Active::Client(side) => side.core.connection_status(),
            Active::None => ConnectionStatus::Disconnected,
        }
    }

    /// `is_server()`.
    #[must_use]
    pub fn is_server(&self) -> bool {
        matches!(&self.active, Active::Server(side) if side.core.connection_status() != ConnectionStatus::Disconnected)
    }

    /// `is_server_relay_supported()`: true while active with the relay (always for Godot 3).
    #[must_use]
    pub fn is_server_relay_supported(&self) -> bool {
        match &self.active {
            Active::Server(side) => side.core.is_server_relay_supported(),
            Active::Client(side) => side.core.is_server_relay_supported(),
            Active::None => false,
        }
    }

    /// `set_target_peer(id)`: where the next `put_packet` goes.
    pub fn set_target_peer(&mut self, target: Target) {
        self.target = target.normalized();
        self.with_core(|peer| peer.set_target_peer(target));
    }

    /// `get_target_peer()`.
    #[must_use]
    pub fn get_target_peer(&self) -> Target {
        self.target
    }

    /// `set_transfer_mode()`: kept and reported; WebSocket is always reliable and ordered.
    pub fn set_transfer_mode(&mut self, mode: TransferMode) {
        self.mode = mode;
        self.with_core(|peer| peer.set_transfer_mode(mode));
    }

    /// `get_transfer_mode()`.
    #[must_use]
    pub fn get_transfer_mode(&self) -> TransferMode {
        self.mode
    }

    /// `set_transfer_channel()`: kept and reported; WebSocket has one channel.
    pub fn set_transfer_channel(&mut self, channel: u8) {
        self.channel = channel;
        self.with_core(|peer| peer.set_transfer_channel(channel));
    }

    /// `get_transfer_channel()`.
    #[must_use]
    pub fn get_transfer_channel(&self) -> u8 {
        self.channel
    }

    /// `refuse_new_connections` setter: a server answers new upgrade requests with HTTP 503
    /// (Godot 4 leaves them in the kernel backlog, 3.x drops them); it applies at once.
    pub fn set_refuse_new_connections(&mut self, refuse: bool) {
        self.refuse = refuse;
        self.with_core(|peer| peer.set_refuse_new_connections(refuse));
    }

    /// `refuse_new_connections` getter.
    #[must_use]
    pub fn is_refusing_new_connections(&self) -> bool {
        self.refuse
    }

    fn with_core(&mut self, f: impl FnOnce(&mut dyn multipeer::peer::MultiplayerPeer)) {
        match &mut self.active {
            Active::Server(side) => f(&mut side.core),
            Active::Client(side) => f(&mut side.core),
            Active::None => {}
        }
    }

    /// `put_packet(data)` to the target peer, written to the socket at once as far as it takes
    /// it (as Godot does; the rest goes at the next [`poll`](Self::poll)).
    ///
    /// # Errors
    /// [`PutError`]: not connected, an unknown target, larger than `outbound_buffer_size` (with
    /// the protocol's header), or the target's queue is full (Godot 4's server ignores the last
    /// two; here nothing is sent to anyone when it fails).
    pub fn put_packet(&mut self, data: &[u8]) -> Result<(), PutError> {
        let max = self.get_max_packet_size();
        let result = match &mut self.active {
            Active::Server(_) if data.len() > max => Err(PutError::TooLarge { max }),
            Active::Server(side) => side.core.put_packet(data).inspect(|()| side.flush()),
            Active::Client(side) => side.core.put_packet(data).inspect(|()| side.flush()),
            Active::None => Err(PutError::NotConnected),
        };
        self.dirty |= result.is_ok();
        result
    }

    /// `get_max_packet_size()`: the largest `put_packet` for the current target (Godot 4
    /// reports `outbound_buffer_size − 9` whatever the framing; this is exact).
    #[must_use]
    pub fn get_max_packet_size(&self) -> usize {
        match &self.active {
            Active::Server(side) => side.core.max_packet_size(),
            Active::Client(side) => side.core.max_packet_size(),
            Active::None => 0,
        }
    }

    /// `get_available_packet_count()`.
    #[must_use]
    pub fn get_available_packet_count(&self) -> usize {
        match &self.active {
            Active::Server(side) => side.core.available_packet_count(),
            Active::Client(side) => side.core.available_packet_count(),
            Active::None => 0,
        }
    }

    /// `get_packet()`: the next packet, copied out and removed, with its sender, mode and
    /// channel (Godot: `get_packet_peer/mode/channel` before `get_packet`); `None` when there is
    /// none (Godot: an error).
    pub fn get_packet(&mut self) -> Option<(Vec<u8>, PacketInfo)> {
        let packet = self.peek_packet().map(|p| (p.data.to_vec(), p.info))?;
        self.pop_packet();
        Some(packet)
    }

    /// The next packet, borrowed, without removing it (no copy; Godot has no equivalent).
    #[must_use]
    pub fn peek_packet(&self) -> Option<Packet<'_>> {
        match &self.active {
            Active::Server(side) => side.core.peek_packet(),
            Active::Client(side) => side.core.peek_packet(),
            Active::None => None,
        }
    }

    /// Removes the next packet; returns whether there was one (Godot's `get_packet` without the
    /// copy).
    pub fn pop_packet(&mut self) -> bool {
        let popped = match &mut self.active {
            Active::Server(side) => side.core.pop_packet(),
            Active::Client(side) => side.core.pop_packet(),
            Active::None => false,
        };
        // Room was made: input held back may be accepted at the next poll.
        self.dirty |= popped;
        popped
    }

    /// `get_packet_peer()`: the sender of the next packet; `None` when there is none (Godot: 1
    /// with an error).
    #[must_use]
    pub fn get_packet_peer(&self) -> Option<PeerId> {
        self.peek_packet().map(|p| p.info.from)
    }

    /// `disconnect_peer(id, force)`: a Close 1000 with no reason to that peer (on a client,
    /// id 1 is the server), or with `force` an immediate drop; see
    /// [`disconnect_peer_with`](Self::disconnect_peer_with) for what is reported when.
    ///
    /// # Errors
    /// [`UnknownPeer`] when `peer` is not connected.
    pub fn disconnect_peer(&mut self, peer: PeerId, force: bool) -> Result<(), UnknownPeer> {
        self.disconnect_peer_with(peer, CloseCode::NORMAL, "", force)
    }

    /// Closes one peer's connection with a code and reason: Godot 4's
    /// `get_peer(id).close(code, reason)`, Godot 3's `disconnect_peer(id, code, reason)` on a
    /// server and `disconnect_from_host(code, reason)` on a client (`peer` 1). With `force`
    /// the connection is dropped without a Close frame.
    ///
    /// A server reports `peer_disconnected` at once (Godot 4 waits for the close, and reports
    /// nothing with `force`), then [`Event::PeerClosed`] with the code and reason the peer
    /// answered with once its connection has closed. A client reports `peer_disconnected(1)`
    /// and `server_disconnected` when the close completes, as Godot 4 does (at once with
    /// `force`); its status is `Disconnected` from this call on. A code that may not be sent
    /// (1005, 1006, 1015, ...) is sent as 1000 and a reason over 123 bytes is cut to fit,
    /// where Godot sends nothing and waits for the close timeout.
    ///
    /// # Errors
    /// [`UnknownPeer`] when `peer` is not connected.
    pub fn disconnect_peer_with(
        &mut self,
        peer: PeerId,
        code: CloseCode,
        reason: &str,
        force: bool,
    ) -> Result<(), UnknownPeer> {
        let result = match &mut self.active {
            Active::Server(side) => {
                let now = side.clock.now();
                side.core.disconnect_peer_with(now, peer, code, reason, force).inspect(|()| side.flush())
            }
            Active::Client(side) => {
                let now = side.clock.now();
                side.core.disconnect_peer_with(now, peer, code, reason, force).inspect(|()| side.flush())
            }
            Active::None => Err(UnknownPeer(peer)),
        };
        self.dirty |= result.is_ok();
        result
    }

    /// The next event (Godot's signals: `peer_connected`, `peer_disconnected`, and on a client
    /// `connected_to_server`, `connection_failed`, `server_disconnected`), plus reports of what
    /// Godot drops silently. Drain it after each poll: a client handles the server's system
    /// messages only while its event queue has room, so packets behind them wait.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(event) = self.leftover.pop_front() {
            return Some(event);
        }
        match &mut self.active {
            Active::Server(side) => side.core.poll_event(),
            Active::Client(side) => side.core.poll_event(),
            Active::None => None,
        }
    }

    /// The next event or packet, in the order they happened (Godot emits its signals and
    /// queues packets in one order; [`poll_event`](Self::poll_event) and
    /// [`get_packet`](Self::get_packet) read two queues, so a port that must know whether a
    /// packet came before or after a `peer_disconnected` reads with this instead).
    pub fn poll_next(&mut self) -> Option<Incoming> {
        let event_first = !self.leftover.is_empty()
            || match &mut self.active {
                Active::Server(side) => side.core.event_is_next(),
                Active::Client(side) => side.core.event_is_next(),
                Active::None => true,
            };
        if event_first {
            return self.poll_event().map(Incoming::Event);
        }
        match self.get_packet() {
            Some((data, info)) => Some(Incoming::Packet(data, info)),
            None => self.poll_event().map(Incoming::Event),
        }
    }

    /// Every event queued now (the signals Godot would emit), as an iterator over
    /// [`poll_event`](Self::poll_event).
    pub fn events(&mut self) -> impl Iterator<Item = Event> + '_ {
        core::iter::from_fn(move || self.poll_event())
    }

    // ----- the connection behind a peer ------------------------------------------------------

    /// `get_peer(id)`: the WebSocket connection behind a peer (a server's clients, also one
    /// that left until its connection is released, so a kicked peer's answer can be read; on a
    /// client only id 1, the server, also after it closed, until the next `create_*` or
    /// `close`).
    #[must_use]
    pub fn get_peer(&self, peer: PeerId) -> Option<PeerConnection> {
        match &self.active {
            Active::Server(side) => side.core.peer_info(peer).map(|info| PeerConnection {
                state: info.state,
                remote: info.addr,
                subprotocol: info.subprotocol,
                buffered_amount: info.buffered_amount,
                close: info.close,
            }),
            Active::Client(side) if peer.is_server() => {
                let ws = side.core.connection();
                Some(PeerConnection {
                    state: ws.state(),
                    remote: side.peer_addr(),
                    subprotocol: ws.protocol().map(String::from),
                    buffered_amount: ws.buffered_amount(),
                    close: side.core.close_info(),
                })
            }
            _ => None,
        }
    }

    /// The peers connected now, ascending (Godot: the keys of the peer map a script reads with
    /// `has_peer`/`get_peer`; `WebRTCMultiplayerPeer.get_peers()`): a server's joined clients,
    /// or on a connected client the server, 1.
    #[must_use]
    pub fn get_peers(&self) -> Vec<PeerId> {
        match &self.active {
            Active::Server(side) => side.core.peers().collect(),
            Active::Client(side) if side.core.connection_status() == ConnectionStatus::Connected => {
                vec![PeerId::SERVER]
            }
            _ => Vec::new(),
        }
    }

    /// `has_peer(id)` (Godot 3's `WebSocketServer.has_peer`): whether `peer` is connected now.
    #[must_use]
    pub fn has_peer(&self, peer: PeerId) -> bool {
        match &self.active {
            Active::Server(side) => side.core.has_peer(peer),
            Active::Client(side) => {
                peer.is_server() && side.core.connection_status() == ConnectionStatus::Connected
            }
            Active::None => false,
        }
    }

    /// `get_peer_address(id)`: the remote IP address of a connected peer.
    #[must_use]
    pub fn get_peer_address(&self, peer: PeerId) -> Option<IpAddr> {
        self.get_peer(peer)?.remote.map(|a| a.ip())
    }

    /// `get_peer_port(id)`: the remote port of a connected peer.
    #[must_use]
    pub fn get_peer_port(&self, peer: PeerId) -> Option<u16> {
        self.get_peer(peer)?.remote.map(|a| a.port())
    }

    /// The address a server listens on (the first socket for `"*"`); Godot has no getter, but
    /// `create_server(0, ..)` needs one.
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.active {
            Active::Server(side) => side.local_addr(),
            _ => None,
        }
    }

    /// A server's counters (packets, bytes, drops, refusals); Godot has none.
    #[must_use]
    pub fn server_stats(&self) -> Option<multipeer::peer::ServerStats> {
        match &self.active {
            Active::Server(side) => Some(side.core.stats()),
            _ => None,
        }
    }
}
