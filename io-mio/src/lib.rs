//! # multipeer-mio
//!
//! The [`multipeer`] protocol core on [mio](https://docs.rs/mio) 1.x: Godot-compatible
//! WebSocket multiplayer servers and clients for custom event loops and many connections, with
//! TLS through rustls (feature `tls`, on by default; multipeer-std's [`tls`] module). The
//! `multipeer` command-line relay server
//! is built on it.
//!
//! The adapter is thin: sockets, TLS, the clock, the OS random generator and readiness. Every
//! protocol decision (handshake, ids, relay, limits, timers) is the core's.
//!
//! ## In your own event loop
//!
//! ```no_run
//! use mio::{Events, Poll, Token};
//! use multipeer::peer::{Event, MultiplayerPeer as _, ServerConfig};
//! use multipeer_mio::{ListenAddr, Server};
//!
//! # fn main() -> Result<(), Box<dyn core::error::Error>> {
//! let mut poll = Poll::new()?;
//! let mut server = Server::bind(&["127.0.0.1:9080".parse()?], ServerConfig::default())?;
//! // Tokens 100.. belong to the server (listeners, then one per connection).
//! server.register(poll.registry(), Token(100))?;
//! let mut events = Events::with_capacity(1024);
//! loop {
//!     poll.poll(&mut events, server.poll_timeout())?;
//!     for event in events.iter() {
//!         if !server.handle_event(poll.registry(), event) {
//!             // one of your own sources
//!         }
//!     }
//!     server.handle_timeout(poll.registry());
//!     let peer = server.peer_mut();
//!     while let Some(event) = peer.poll_event() {
//!         if let Event::PeerConnected(id) = event {
//!             println!("peer {id} joined");
//!         }
//!     }
//!     while peer.pop_packet() {}
//!     server.flush(poll.registry());
//! }
//! # }
//! ```
//!
//! [`Server::run`] is that loop for programs without one, stopped by a [`Stop`] flag.
//!
//! ## Plain WebSocket
//!
//! [`WebSocketServer`] and [`WebSocketClient`] are RFC 6455 without Godot's multiplayer framing
//! (no peer ids, no relay, any payload), in the same shapes: a token range, the same verbs, a
//! built-in `run`. The multiplayer [`Server`] and the WebRTC [`Lobby`] share their listening
//! and accepting half; the lobby is a `WebSocketServer` whose messages go to the lobby core.
//! Received messages are read where they were received ([`WebSocketServer::message`]) and can
//! be echoed or forwarded to another connection with at most one copy
//! ([`WebSocketServer::echo`], [`WebSocketServer::forward`]); the multiplayer server does the
//! same with `forward_packet` and `get_packet_with` of its core. Large messages skip that copy
//! when nothing waits to be sent before them: they are written to the socket from where they
//! lie, only what the socket does not take being queued ([`WebSocketServer::echo_all`] sends
//! all the messages of a read that way in one vectored write).
//!
//! ## Memory
//!
//! Reads go into one 64 KiB [`ReadBuffer`] per server (shared by every connection) and are
//! handed to the core at once; only bytes the core refuses (back-pressure) are kept per
//! connection, and only until it takes them. Writes go from the core's queue straight to the
//! socket. An idle connection holds its socket, the core's state and a few dozen bytes here.
//!
//! The multiplayer server's inbox (`ServerConfig::inbox`, 1 MiB and 16,384 packets by default)
//! is shared by every peer. Packets under 2 KiB are copied into it, a ring: when it stays full
//! under load, reading a packet and receiving the next move no bytes. Larger packets are not
//! copied: they wait in their connection's receive queue, the inbox records where, and
//! `peek_packet`, `get_packet_with` and `forward_packet` read them there (an echo to the sender
//! is sent from that queue, without a copy when nothing else is queued). Their bytes count
//! against their connection's limits, not the inbox's, so large messages need no inbox setting;
//! on a server that relays, one is copied into the inbox after all when more messages arrive
//! behind it, so that relayed traffic never waits for the application. A larger inbox absorbs
//! longer bursts of small packets before peers meet back-pressure (their input then waits in
//! their connections, nothing is lost) at the cost of that much memory while it is full; a
//! smaller one pushes back sooner.
#![forbid(unsafe_code)]

mod accept;
mod client;
mod clock;
#[cfg(feature = "cluster")]
mod cluster;
mod error;
mod listen;
mod lobby;
mod run;
mod scene;
mod server;
mod transport;
#[cfg(all(feature = "webrtc", unix))]
mod webrtc;
mod websocket;

/// TLS settings and errors (feature `tls`): multipeer-std's [`tls`]
/// module, the one TLS implementation of multipeer's adapters, re-exported.
#[cfg(feature = "tls")]
pub use multipeer_std::tls;

pub use client::{Client, ClientOptions, CoreClient};
pub use clock::Clock;
#[cfg(feature = "cluster")]
pub use cluster::{ClusterLink, ClusterLinkStatus, ClusterOptions, LEASE_AGE};
pub use error::{BindError, ConnectError, TransportError, TransportFailure};
pub use listen::{ListenAddr, bind_all};
pub use lobby::{CoreLobby, Lobby, LobbyOptions, LobbyStats};
pub use run::{RunEnd, Stop};
pub use scene::TransportRelayOn;
pub use server::{CoreServer, Server, TransportStats};
#[cfg(feature = "tls")]
pub use tls::{TlsConfigError, TlsError, TlsOptions};
#[cfg(all(feature = "webrtc", unix))]
pub use webrtc::WebRtcDriver;
pub use websocket::{
    ClientSocket, ConnectionId, Socket, WebSocketClient, WebSocketClientOptions, WebSocketEvent,
    WebSocketOptions, WebSocketServer, WebSocketStats,
};

pub use mio;
pub use multipeer;

use chacha20::ChaCha12Rng;
use multipeer::rand_core::SeedableRng as _;

/// Size of a [`ReadBuffer`]: one socket read takes at most this much.
pub const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Most bytes read from one connection per readiness event, so one fast sender cannot starve
/// the others; the rest is read on the next turn of the loop.
pub(crate) const READ_BUDGET: usize = 4 * READ_BUFFER_SIZE;

/// Messages from this size on are written to the socket at once when nothing is queued before
/// them (write-through), from where they lie, and only what the socket does not take is copied
/// into the send queue. Below it, copying into the queue and writing the messages of one turn
/// with one syscall costs less: each `send` on a connection carries the kernel's per-send work
/// (on loopback, the receiver's processing too). Measured side by side on the echo server
/// (tests/bench/PROFILE.md, section 11): write-through used 10 % more CPU per message at
/// 64 KiB with 4 in flight, 15 % less at 256 KiB; at 128 KiB the two were even.
pub(crate) const WRITE_THROUGH_MIN: usize = 128 * 1024;

/// `echo_all` writes the messages of a read through (all of them in one vectored write, no
/// copy) when the first is at least this large. It makes no more syscalls than the copy into
/// the send queue, whose one write per turn carries the same messages; for small messages the
/// copy is as cheap as the extra slices, so they keep the path every other send takes.
pub(crate) const BATCH_THROUGH_MIN: usize = 16 * 1024;

/// The scratch buffer socket reads land in before the core takes them; one serves any number
/// of connections.
#[derive(Debug)]
pub struct ReadBuffer(Box<[u8]>);

impl ReadBuffer {
    /// A buffer of [`READ_BUFFER_SIZE`] bytes.
    #[must_use]
    pub fn new() -> Self {
        Self::with_len(READ_BUFFER_SIZE)
    }

    /// A buffer of `len` bytes (at least 1).
    #[must_use]
    pub fn with_len(len: usize) -> Self {
        Self(vec![0; len.max(1)].into_boxed_slice())
    }

    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Default for ReadBuffer {
    fn default() -> Self {
        Self::new()
    }
}

/// A ChaCha12 generator seeded from the operating system (peer ids, WebSocket keys, masks).
pub(crate) fn os_rng() -> Result<ChaCha12Rng, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    Ok(ChaCha12Rng::from_seed(seed))
}
