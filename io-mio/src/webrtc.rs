//! The WebRTC mesh on a mio loop (feature `webrtc`): multipeer-std's engine
//! ([`WebRtcMultiplayerPeer`], one `str0m::Rtc` per remote peer over non-blocking UDP sockets)
//! with its sockets waited on by a `mio::Poll` and str0m's timeouts as the poll timeout,
//! instead of the std loop's 1 ms sleeps.
//!
//! The engine owns its sockets; this driver registers each of them (by file descriptor) under
//! one token, re-checks the set after every drive (peers come and go), and drives the engine
//! when a socket is readable or a timer is due.

use core::time::Duration;
use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd as _, RawFd};
use std::time::Instant;

use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use multipeer_std::webrtc::{WebRtcError, WebRtcMultiplayerPeer};

use crate::clock::shortest;

/// Longest sleep while a lobby WebSocket is open: its socket belongs to multipeer-std's
/// non-blocking WebSocket and is not registered here.
const LOBBY_POLL: Duration = Duration::from_millis(2);

/// A [`WebRtcMultiplayerPeer`] driven from a mio loop.
///
/// Register nothing yourself: pass every readiness event to
/// [`handle_event`](Self::handle_event), sleep at most [`poll_timeout`](Self::poll_timeout)
/// and then call [`handle_timeout`](Self::handle_timeout); after commands (`put_packet`,
/// `add_peer`, signalling) call [`drive`](Self::drive).
pub struct WebRtcDriver {
    peer: WebRtcMultiplayerPeer,
    token: Token,
    /// Sockets registered, by descriptor and local address (a closed socket leaves the poll
    /// by itself; a new socket reusing its descriptor has another address).
    registered: HashSet<(RawFd, Option<core::net::SocketAddr>)>,
    /// The last drive read datagrams: a socket may hold more than one drive reads, and
    /// readiness is edge-triggered, so drive again without waiting.
    read_more: bool,
}

impl core::fmt::Debug for WebRtcDriver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WebRtcDriver")
            .field("token", &self.token)
            .field("sockets", &self.registered.len())
            .finish()
    }
}

impl WebRtcDriver {
    /// Drives `peer`; its sockets will be registered under `token`.
    #[must_use]
    pub fn new(peer: WebRtcMultiplayerPeer, token: Token) -> Self {
        Self { peer, token, registered: HashSet::new(), read_more: false }
    }

    /// The WebRTC multiplayer peer (Godot's `WebRTCMultiplayerPeer`).
    #[must_use]
    pub fn peer(&self) -> &WebRtcMultiplayerPeer {
        &self.peer
    }

    /// The WebRTC multiplayer peer, for commands; call [`drive`](Self::drive) after them.
    pub fn peer_mut(&mut self) -> &mut WebRtcMultiplayerPeer {
        &mut self.peer
    }

    /// The token the sockets are registered under.
    #[must_use]
    pub fn token(&self) -> Token {
        self.token
    }

    /// Handles one readiness event; returns `false` if it is not this driver's.
    ///
    /// # Errors
    /// As [`drive`](Self::drive).
    pub fn handle_event(&mut self, registry: &Registry, event: &Event) -> Result<bool, WebRtcError> {
        if event.token() != self.token {
            return Ok(false);
        }
        self.drive(registry)?;
        Ok(true)
    }

    /// How long the loop may sleep before [`handle_timeout`](Self::handle_timeout).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.read_more {
            return Some(Duration::ZERO);
        }
        let engine = self.peer.next_timeout().map(|at| at.saturating_duration_since(Instant::now()));
        let lobby = self.peer.is_lobby_open().then_some(LOBBY_POLL);
        shortest(engine, lobby)
    }

    /// Drives the engine if a timer is due (or a socket may hold more datagrams).
    ///
    /// # Errors
    /// As [`drive`](Self::drive).
    pub fn handle_timeout(&mut self, registry: &Registry) -> Result<(), WebRtcError> {
        let due = self.peer.next_timeout().is_some_and(|t| t <= Instant::now());
        if self.read_more || due || self.peer.is_lobby_open() {
            self.drive(registry)?;
        }
        Ok(())
    }

    /// One drive of the engine ([`WebRtcMultiplayerPeer::poll`]): lobby, commands, every
    /// socket and timer; then registers sockets created meanwhile.
    ///
    /// # Errors
    /// What `poll` reports (the lobby connection failed or sent something else than its
    /// protocol). A socket the registry refuses is not an error here: it is still read at
    /// every drive, on timers; [`register_sockets`](Self::register_sockets) reports it.
    pub fn drive(&mut self, registry: &Registry) -> Result<(), WebRtcError> {
        let before = self.peer.stats().datagrams_received;
        let result = self.peer.poll();
        self.read_more = self.peer.stats().datagrams_received > before;
        // A registry failure leaves that socket to the timers: it is still read at each drive.
        let _ = self.register_sockets(registry);
        result
    }

    /// Registers the engine's sockets not registered yet.
    ///
    /// # Errors
    /// The registry refused a socket.
    pub fn register_sockets(&mut self, registry: &Registry) -> io::Result<()> {
        let mut result = Ok(());
        let mut current = HashSet::new();
        for socket in self.peer.udp_sockets() {
            let key = (socket.as_raw_fd(), socket.local_addr().ok());
            current.insert(key);
            if self.registered.contains(&key) {
                continue;
            }
            let fd = key.0;
            let registered = match registry.register(&mut SourceFd(&fd), self.token, Interest::READABLE) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    registry.reregister(&mut SourceFd(&fd), self.token, Interest::READABLE)
                }
                other => other,
            };
            if let Err(e) = registered {
                result = Err(e);
                current.remove(&key);
            }
        }
        // Sockets gone were closed, which removed them from the poll.
        self.registered = current;
        result
    }
}
