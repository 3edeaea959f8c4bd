//! SceneMultiplayer on a [`WebSocketMultiplayerPeer`]: Godot's `multiplayer.rpc`, `rpc_id`,
//! `send_bytes`, `get_remote_sender_id`, `send_auth` and `complete_auth`, with the protocol in
//! the core's [`SceneMultiplayer`]; on a [`godot3`](WebSocketMultiplayerPeer::godot3) peer with
//! [`SceneConfig::godot3`](multipeer::scene::SceneConfig::godot3), Godot 3's `rpc`, `rpc_id`,
//! `rset`, `rset_id` and `get_rpc_sender_id`.

use multipeer::peer::{PeerId, Protocol, Target, TransferMode};
use multipeer::scene::{SceneEvent, SceneMultiplayer, SendError};
use multipeer::variant::Variant;

use super::{Active, MultiplayerError, WebSocketMultiplayerPeer};

impl WebSocketMultiplayerPeer {
    /// Makes this peer a SceneMultiplayer peer (Godot: `multiplayer.multiplayer_peer = peer`),
    /// from the next `create_server`/`create_client` on: RPCs, raw packets, authentication and
    /// the server relay are then the machine's, the transport's own relay is off, and what
    /// happens is read with [`poll_scene_event`](Self::poll_scene_event) instead of
    /// `poll_event`/`get_packet`. `None` goes back to plain packets. A Godot 3 machine
    /// ([`SceneConfig::godot3`](multipeer::scene::SceneConfig::godot3), 3.x `MultiplayerAPI`)
    /// belongs on a [`godot3`](Self::godot3) peer, whose relay stays the transport's.
    pub fn set_scene_multiplayer(&mut self, scene: Option<SceneMultiplayer>) {
        self.scene = scene.map(Box::new);
    }

    /// The SceneMultiplayer machine, if set (its node table, peers and counters).
    #[must_use]
    pub fn scene_multiplayer(&self) -> Option<&SceneMultiplayer> {
        self.scene.as_deref()
    }

    /// The SceneMultiplayer machine, to declare nodes and change authorities.
    pub fn scene_multiplayer_mut(&mut self) -> Option<&mut SceneMultiplayer> {
        self.scene.as_deref_mut()
    }

    /// A SceneMultiplayer of the other major version than the wire protocol would speak
    /// packets the peers cannot read: `create_*` refuses it.
    pub(super) fn check_scene_protocol(&self) -> Result<(), MultiplayerError> {
        let Some(scene) = self.scene.as_deref() else { return Ok(()) };
        if scene.config().version.is_godot4() == (self.settings.protocol == Protocol::Godot4) {
            Ok(())
        } else {
            Err(MultiplayerError::InvalidParameter(
                "the SceneMultiplayer's Godot version and the protocol differ (Godot 3: godot3() and SceneConfig::godot3())",
            ))
        }
    }

    /// Moves packets and events between the transport and the machine, and writes what it
    /// queued; [`poll`](Self::poll) calls it.
    pub(super) fn pump_scene(&mut self) {
        let Some(scene) = self.scene.as_deref_mut() else { return };
        match &mut self.active {
            Active::Server(side) => {
                let now = side.clock.now();
                scene.pump(now, &mut side.core);
                side.flush();
            }
            Active::Client(side) => {
                let now = side.clock.now();
                scene.pump(now, &mut side.core);
                side.flush();
            }
            Active::None => {}
        }
    }

    /// When the machine's next timer (an auth deadline) is due.
    pub(super) fn scene_timeout(&self) -> Option<std::time::Instant> {
        let at = self.scene.as_deref()?.poll_timeout()?;
        match &self.active {
            Active::Server(side) => Some(side.clock.to_std(at)),
            Active::Client(side) => Some(side.clock.to_std(at)),
            Active::None => None,
        }
    }

    fn with_scene(
        &mut self,
        f: impl FnOnce(&mut SceneMultiplayer) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        let scene = self.scene.as_deref_mut().ok_or(SendError::NotConnected)?;
        f(scene)?;
        self.pump_scene();
        self.dirty = true;
        Ok(())
    }

    /// `node.rpc(method, args...)`: to every peer (and here too with `call_local`; Godot 3:
    /// with a `*sync` mode).
    ///
    /// # Errors
    /// [`SendError`]; [`SendError::NotConnected`] without a SceneMultiplayer.
    pub fn rpc(&mut self, node: &str, method: &str, args: &[Variant]) -> Result<(), SendError> {
        self.rpc_id(Target::Broadcast, node, method, args)
    }

    /// `node.rpc_id(id, method, args...)`, with Godot's targets (0, 1, id, −id); Godot 3 calls
    /// by name.
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

    /// `multiplayer.send_bytes(bytes, id, mode, channel)`.
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

    /// `multiplayer.send_auth(id, data)`.
    ///
    /// # Errors
    /// [`SendError`].
    pub fn send_auth(&mut self, peer: PeerId, data: &[u8]) -> Result<(), SendError> {
        self.with_scene(|scene| scene.send_auth(peer, data))
    }

    /// `multiplayer.complete_auth(id)`.
    ///
    /// # Errors
    /// [`SendError`].
    pub fn complete_auth(&mut self, peer: PeerId) -> Result<(), SendError> {
        self.with_scene(|scene| scene.complete_auth(peer))
    }

    /// `multiplayer.get_remote_sender_id()`: the sender of the last RPC or packet read with
    /// [`poll_scene_event`](Self::poll_scene_event); 0 when none.
    #[must_use]
    pub fn get_remote_sender_id(&self) -> i32 {
        self.scene.as_deref().and_then(SceneMultiplayer::remote_sender_id).map_or(0, PeerId::get)
    }

    /// Godot 3 `node.rset(property, value)`: to every peer (and here too with a `*sync`
    /// mode), a [`SceneEvent::Rset`] where it arrives.
    ///
    /// # Errors
    /// [`SendError`]; [`SendError::Unsupported`] outside Godot 3.
    pub fn rset(&mut self, node: &str, property: &str, value: &Variant) -> Result<(), SendError> {
        self.rset_id(Target::Broadcast, node, property, value)
    }

    /// Godot 3 `node.rset_id(id, property, value)`, with Godot's targets (0, 1, id, −id).
    ///
    /// # Errors
    /// [`SendError`].
    pub fn rset_id(
        &mut self,
        target: Target,
        node: &str,
        property: &str,
        value: &Variant,
    ) -> Result<(), SendError> {
        self.with_scene(|scene| scene.rset(target, node, property, value))
    }

    /// Godot 3 `get_tree().get_rpc_sender_id()`: the same as
    /// [`get_remote_sender_id`](Self::get_remote_sender_id), the sender of the last RPC, `rset`
    /// or packet read with [`poll_scene_event`](Self::poll_scene_event); 0 when none.
    #[must_use]
    pub fn get_rpc_sender_id(&self) -> i32 {
        self.get_remote_sender_id()
    }

    /// The next SceneMultiplayer event: Godot's `multiplayer` signals, RPCs to run, raw
    /// packets (`peer_packet`), `auth_callback` calls, and refusals Godot only logs.
    pub fn poll_scene_event(&mut self) -> Option<SceneEvent> {
        self.scene.as_deref_mut()?.poll_event()
    }
}
