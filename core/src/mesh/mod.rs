//! WebRTC mesh: Godot's `WebRTCMultiplayerPeer` (4.x) and `WebRTCMultiplayer` (3.x) without
//! the WebRTC stack (requires `alloc`).
//!
//! [`Mesh`] keeps the peer table, Godot's channel layout ([`godot_channels`]), the connection
//! rules (a peer counts as connected once all its channels are open and is removed when any
//! closes; the 3.x server-compatibility announcements), targets, and bounded per-channel
//! receive queues read round-robin. It talks to a WebRTC engine through a sans-IO boundary:
//! it emits [`Command`]s (create a peer with its channel specs, apply a remote description or
//! candidate, send, close) and takes [`EngineEvent`]s (local description and candidates,
//! channel open/closed, message, connection state). The adapters run str0m behind that
//! boundary; tests run a fake engine. SDP is opaque text carried through [`Signal`]s.

mod channel;
pub mod dcep;
mod engine;
#[cfg(test)]
pub(crate) mod fake;
#[allow(clippy::module_inception)]
mod mesh;
#[cfg(test)]
mod tests;

pub use channel::{
    ChannelSpec, DEFAULT_UNRELIABLE_LIFETIME, FIRST_CUSTOM_ID, Reliability, channel_of_lane, godot_channels,
    lane_for,
};
pub use engine::{Command, ConnectionState, EngineEvent, SdpKind, Signal};
pub use mesh::{LaneFull, Mesh, MeshError, MeshMode, MeshPeerInfo};
