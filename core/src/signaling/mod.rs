//! Signalling for the WebRTC mesh over Godot's `webrtc_signaling` demo protocol (requires
//! `alloc`): the message codec, a sans-IO lobby server, and a lobby client that drives a
//! [`Mesh`](crate::mesh::Mesh). Games built on the demo can use a multipeer lobby server
//! unchanged. SDP and candidates are opaque text.

mod client;
mod message;
mod server;
#[cfg(test)]
mod tests;

pub use client::{
    LobbyEvent, MAX_LOBBY_EVENTS, MeshSession, join_message, parse_server_message, seal_message,
    signal_message,
};
pub use message::{InvalidMessage, Message, MessageType};
pub use server::{LobbyConfig, LobbyOutput, LobbyServer};
