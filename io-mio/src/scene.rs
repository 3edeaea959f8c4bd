//! SceneMultiplayer on the mio [`Server`] and [`Client`]: Godot's `multiplayer.rpc`, `rpc_id`,
//! `send_bytes`, `get_remote_sender_id`, `send_auth` and `complete_auth`, with the protocol in
//! the core's [`SceneMultiplayer`]. The adapter only moves packets between the transport and
//! the machine when it flushes.

use core::fmt;
use core::time::Duration;

use mio::Registry;
use multipeer::peer::{MultiplayerPeer as _, PeerId, Target, TransferMode};
use multipeer::scene::{SceneEvent, SceneMultiplayer, SendError};
use multipeer::variant::Variant;

use crate::{Client, ReadBuffer, Server};

/// [`set_scene_multiplayer`](Server::set_scene_multiplayer) on a transport that relays by
/// itself: SceneMultiplayer speaks `SYS` (auth, relay) and must see those packets, so the
/// server must be bound with [`ServerConfig::relay`](multipeer::peer::ServerConfig::relay)
/// false and the client connected with
/// [`ClientConfig::relay`](multipeer::peer::ClientConfig::relay) false (the machine's
/// [`SceneConfig::server_relay`](multipeer::scene::SceneConfig::server_relay) relays instead,
/// as Godot's SceneMultiplayer does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportRelayOn;

impl fmt::Display for TransportRelayOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the transport relays by itself: turn its relay off, SceneMultiplayer relays")
    }
}

impl core::error::Error for TransportRelayOn {}

/// The SceneMultiplayer commands and getters both adapters share (Godot's names), for a type
/// with a `scene: Option<Box<SceneMultiplayer>>` field. Commands queue into the machine; the
/// next `flush` sends.
macro_rules! scene_methods {
    () => {
        /// The SceneMultiplayer machine, if set (its node table, peers and counters).
        #[must_use]
        pub fn scene_multiplayer(&self) -> Option<&SceneMultiplayer> {
            self.scene.as_deref()
        }

        /// The SceneMultiplayer machine, to declare nodes and change authorities.
        pub fn scene_multiplayer_mut(&mut self) -> Option<&mut SceneMultiplayer> {
            self.scene.as_deref_mut()
        }

        fn with_scene(
            &mut self,
            f: impl FnOnce(&mut SceneMultiplayer) -> Result<(), SendError>,
        ) -> Result<(), SendError> {
            f(self.scene.as_deref_mut().ok_or(SendError::NotConnected)?)
        }

        /// `node.rpc(method, args...)`: to every peer (and here too with `call_local`); call
        /// `flush` to send.
        ///
        /// # Errors
        /// [`SendError`]; [`SendError::NotConnected`] without a SceneMultiplayer.
        pub fn rpc(&mut self, node: &str, method: &str, args: &[Variant]) -> Result<(), SendError> {
            self.rpc_id(Target::Broadcast, node, method, args)
        }

        /// `node.rpc_id(id, method, args...)`, with Godot's targets (0, 1, id, −id); call
        /// `flush` to send.
        ///
        /// # Errors
        /// [`SendError`].
        pub fn rpc_id(
            &mut self,
            target: Target,
            node: &str,
            method: &str,
            args: &[Variant],
        ) -> Result<(), SendError> {
            self.with_scene(|scene| scene.rpc(target, node, method, args))
        }

        /// `multiplayer.send_bytes(bytes, id, mode, channel)`; call `flush` to send.
        ///
        /// # Errors
        /// [`SendError`].
        pub fn send_bytes(
            &mut self,
            bytes: &[u8],
            target: Target,
            mode: TransferMode,
            channel: u8,
        ) -> Result<(), SendError> {
            self.with_scene(|scene| scene.send_bytes(target, bytes, mode, channel))
        }

        /// `multiplayer.send_auth(id, data)`; call `flush` to send.
        ///
        /// # Errors
        /// [`SendError`].
        pub fn send_auth(&mut self, peer: PeerId, data: &[u8]) -> Result<(), SendError> {
            self.with_scene(|scene| scene.send_auth(peer, data))
        }

        /// `multiplayer.complete_auth(id)`; call `flush` to send.
        ///
        /// # Errors
        /// [`SendError`].
        pub fn complete_auth(&mut self, peer: PeerId) -> Result<(), SendError> {
            self.with_scene(|scene| scene.complete_auth(peer))
        }

        /// `multiplayer.get_remote_sender_id()`: the sender of the last RPC or packet read
        /// with [`poll_scene_event`](Self::poll_scene_event); 0 when none.
        #[must_use]
        pub fn get_remote_sender_id(&self) -> i32 {
            self.scene.as_deref().and_then(SceneMultiplayer::remote_sender_id).map_or(0, PeerId::get)
        }

        /// The next SceneMultiplayer event: Godot's `multiplayer` signals, RPCs to run, raw
        /// packets (`peer_packet`), `auth_callback` calls (as [`SceneEvent::AuthData`]), the
        /// transport's own events, and refusals Godot only logs.
        pub fn poll_scene_event(&mut self) -> Option<SceneEvent> {
            self.scene.as_deref_mut()?.poll_event()
        }
    };
}

impl Server {
    /// Makes this server a SceneMultiplayer peer (Godot: `multiplayer.multiplayer_peer =
    /// peer`): RPCs, raw packets, authentication and the relay are then the machine's, and
    /// what happens is read with [`poll_scene_event`](Self::poll_scene_event) instead of the
    /// core's `poll_event`/`peek_packet` (the machine takes those in [`flush`](Self::flush)).
    /// `None` goes back to plain packets.
    ///
    /// # Errors
    /// [`TransportRelayOn`] when the server was bound with `ServerConfig::relay` true.
    pub fn set_scene_multiplayer(&mut self, scene: Option<SceneMultiplayer>) -> Result<(), TransportRelayOn> {
        if scene.is_some() && self.core.config().relay {
            return Err(TransportRelayOn);
        }
        self.scene = scene.map(Box::new);
        Ok(())
    }

    scene_methods!();

    /// Moves packets and events between the core server and the machine (which fires its
    /// auth timeouts) and hands the machine's packets to the core; `flush` calls it.
    pub(crate) fn pump_scene(&mut self) {
        if let Some(scene) = self.scene.as_deref_mut() {
            scene.pump(self.clock.now(), &mut self.core);
        }
    }

    /// How long until the machine's next timer (an auth deadline).
    pub(crate) fn scene_timeout(&self) -> Option<Duration> {
        self.scene.as_deref()?.poll_timeout().map(|at| self.clock.until(at))
    }
}

impl Client {
    /// Makes this client a SceneMultiplayer peer (Godot: `multiplayer.multiplayer_peer =
    /// peer`); set it before the connection opens, so that the machine sees the server
    /// arrive. What happens is read with [`poll_scene_event`](Self::poll_scene_event).
    ///
    /// # Errors
    /// [`TransportRelayOn`] when the client was connected with `ClientConfig::relay` true.
    pub fn set_scene_multiplayer(&mut self, scene: Option<SceneMultiplayer>) -> Result<(), TransportRelayOn> {
        if scene.is_some() && self.link.core.is_server_relay_supported() {
            return Err(TransportRelayOn);
        }
        self.scene = scene.map(Box::new);
        Ok(())
    }

    scene_methods!();

    /// Moves packets and events between the core client and the machine, then writes.
    pub(crate) fn pump_scene(&mut self, registry: &Registry, buf: &mut ReadBuffer) {
        if let Some(scene) = self.scene.as_deref_mut() {
            scene.pump(self.link.clock.now(), &mut self.link.core);
        }
        self.link.flush(registry, buf);
    }

    /// How long until the machine's next timer (an auth deadline).
    pub(crate) fn scene_timeout(&self) -> Option<Duration> {
        self.scene.as_deref()?.poll_timeout().map(|at| self.link.clock.until(at))
    }
}
