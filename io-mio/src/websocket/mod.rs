//! Plain RFC 6455 WebSocket on mio, without Godot's multiplayer framing: a server of many
//! [`ws::Connection`]s ([`WebSocketServer`]) and one outgoing connection
//! ([`WebSocketClient`]). Messages are whatever the application sends; nothing is added to
//! them and nothing in them is interpreted.

mod client;
mod server;

use multipeer::VecStorage;
use multipeer::ws;

pub use client::{ClientSocket, WebSocketClient, WebSocketClientOptions};
pub use server::{ConnectionId, WebSocketEvent, WebSocketOptions, WebSocketServer, WebSocketStats};

use crate::transport::Machine;

/// The core connection both sides drive.
pub type Socket = ws::Connection<VecStorage>;

/// One WebSocket connection seen as a transport [`Machine`].
pub(crate) struct Ws<'a> {
    pub(crate) ws: &'a mut Socket,
    pub(crate) now: multipeer::Instant,
}

impl Machine for Ws<'_> {
    fn input(&mut self, bytes: &[u8]) -> usize {
        self.ws.handle_input(self.now, bytes)
    }

    fn eof(&mut self) {
        self.ws.handle_eof(self.now);
    }

    fn output(&self) -> Option<&[u8]> {
        self.ws.poll_transmit()
    }

    fn consume(&mut self, n: usize) {
        self.ws.consume_transmit(n);
    }
}
