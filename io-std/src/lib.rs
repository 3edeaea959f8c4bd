//! # multipeer-std
//!
//! The `std::net` adapter for the [`multipeer`] protocol core: it gives the core's WebSocket
//! machine ([`multipeer::ws::Connection`]) a TCP socket, a clock and an OS-seeded CSPRNG, and
//! adds no protocol logic of its own.
//!
//! Two front ends share one drive loop:
//!
//! * [`WebSocket`] and [`Server`] block: `connect`, `accept`, `recv`, `send`, `close` return
//!   when done. Socket timeouts are computed from the core's next timer, so the handshake
//!   timeout, close timeout and heartbeat run while a call waits.
//! * [`nonblocking::WebSocket`] and [`nonblocking::Listener`] never wait: the application calls
//!   `poll()` from its own loop and sleeps until readiness or `next_timeout()`.
//!
//! Both run over any [`Transport`]: a `TcpStream`, or with the `tls` feature a
//! [`tls::TlsStream`] over one. `connect_to_url` opens either from a `ws://` or `wss://` URL
//! ([`MaybeTlsStream`]), with [`ClientOptions::tls`] as Godot's `tls_client_options`; servers
//! wrap accepted connections with `accept_tls(&TlsOptions::server(..))`. The [`tls`] module
//! (rustls, ring) is the one TLS implementation of multipeer's adapters: multipeer-mio uses it
//! too.
//! Memory per idle connection is the core's (queues grow on demand, [`multipeer::VecStorage`])
//! plus a few words: the read buffer belongs to the thread, not to the connection.
//!
//! For Godot's multiplayer (peer ids, targets, the relay between clients),
//! [`WebSocketMultiplayerPeer`] is Godot's `WebSocketMultiplayerPeer` (4.x, and 3.x's
//! `WebSocketServer`/`WebSocketClient` with the multiplayer API): `create_server`,
//! `create_client`, `poll`, `put_packet`, `get_packet`, `get_peer`, its properties and Godot
//! 3's `set_buffers`, driven from the application's loop. `examples/godot_server.rs` is a
//! relay server for Godot clients in 20 lines.
//!
//! ```no_run
//! use multipeer::ws::CloseCode;
//! use multipeer_std::{ClientOptions, WebSocket};
//!
//! let mut ws = WebSocket::connect("ws://127.0.0.1:9080/chat", &ClientOptions::new().protocol("chat"))?;
//! ws.send_text("hello")?;
//! let reply = ws.recv()?;
//! println!("{:?}", reply.as_text());
//! let info = ws.close(CloseCode::NORMAL, "bye")?;
//! assert!(info.clean);
//! # Ok::<(), multipeer_std::Error>(())
//! ```
//!
//! A server, rejecting browsers from other sites (Godot's `supported_protocols` rules pick the
//! subprotocol):
//!
//! ```no_run
//! use multipeer_std::{Rejection, Server, ServerOptions};
//!
//! let options = ServerOptions::new().protocol("chat").check_request(|request| {
//!     match request.origin() {
//!         Some(origin) if origin != b"https://game.example" => Err(Rejection::new(403, "wrong origin")),
//!         _ => Ok(()),
//!     }
//! });
//! let server = Server::bind("127.0.0.1:9080", options)?;
//! loop {
//!     let Ok(mut ws) = server.accept() else { continue };
//!     std::thread::spawn(move || {
//!         while let Ok(message) = ws.recv() {
//!             if ws.send(message.kind, &message.data).is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! With the `webrtc` feature, [`webrtc::WebRtcMultiplayerPeer`] is Godot's
//! `WebRTCMultiplayerPeer`: one str0m `Rtc` per remote peer over UDP, Godot's negotiated
//! channels, and [`webrtc::connect_lobby`] to join a lobby of Godot's `webrtc_signaling` demo
//! protocol and mesh with everyone in it (browsers, Godot, other Rust programs). It turns on
//! `tls` too, for `turns:` TURN servers.
#![forbid(unsafe_code)]

mod blocking;
mod clock;
mod driver;
mod error;
mod message;
pub mod multiplayer;
pub mod nonblocking;
mod options;
mod rng;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;
#[cfg(feature = "webrtc")]
pub mod webrtc;

pub use blocking::{Server, WebSocket};
pub use clock::Clock;
pub use error::Error;
pub use message::Message;
pub use multiplayer::{
    Incoming, MultiplayerError, PeerConnection, TransportFailure, WebSocketMultiplayerPeer,
};
pub use options::{ClientOptions, Rejection, RequestCheck, ServerOptions};
pub use rng::client_rng;
#[cfg(feature = "tls")]
pub use tls::{TlsError, TlsOptions};
pub use transport::{MaybeTlsStream, Transport};
#[cfg(feature = "webrtc")]
pub use webrtc::{WebRtcConfig, WebRtcMultiplayerPeer};

pub use multipeer;
