//! The sans-IO boundary between the mesh and a WebRTC engine (str0m in the adapters, a fake
//! in tests): commands the mesh asks for, events the engine reports. SDP and candidates are
//! opaque text the mesh only carries between the engine and the application's signalling.

use alloc::string::String;
use alloc::vec::Vec;

use super::channel::ChannelSpec;
use crate::peer::PeerId;

/// Offer or answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SdpKind {
    /// An SDP offer.
    Offer,
    /// An SDP answer.
    Answer,
}

/// What the mesh asks the engine to do, drained with [`Mesh::poll_command`](super::Mesh::poll_command).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Create a peer connection with these channels; the offerer creates the offer at once.
    CreatePeer {
        /// The remote peer.
        peer: PeerId,
        /// Whether this side sends the offer (fixed rule: the higher id offers).
        offerer: bool,
        /// The channels, created identically on both sides.
        channels: Vec<ChannelSpec>,
    },
    /// Apply the remote description received through signalling.
    RemoteDescription {
        /// The remote peer.
        peer: PeerId,
        /// Offer or answer.
        kind: SdpKind,
        /// The SDP text.
        sdp: String,
    },
    /// Add a remote ICE candidate received through signalling.
    RemoteCandidate {
        /// The remote peer.
        peer: PeerId,
        /// Media id.
        mid: String,
        /// m-line index.
        index: u32,
        /// The `candidate:` line.
        candidate: String,
    },
    /// Send one message on a channel.
    Send {
        /// The remote peer.
        peer: PeerId,
        /// SCTP stream id of the channel.
        channel: u16,
        /// The message.
        data: Vec<u8>,
    },
    /// Close the peer connection and all its channels.
    ClosePeer {
        /// The remote peer.
        peer: PeerId,
    },
}

/// The state of a peer connection, as the engine reports it (`RTCPeerConnectionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Negotiating.
    Connecting,
    /// ICE and DTLS are up.
    Connected,
    /// Connectivity lost (may recover per the spec; Godot treats it as the end, and so do we).
    Disconnected,
    /// Connectivity failed.
    Failed,
    /// Closed.
    Closed,
}

/// What the engine reports, given to [`Mesh::handle_engine_event`](super::Mesh::handle_engine_event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineEvent<'a> {
    /// A local description to send to the peer through signalling.
    LocalDescription {
        /// The remote peer it is for.
        peer: PeerId,
        /// Offer or answer.
        kind: SdpKind,
        /// The SDP text.
        sdp: &'a str,
    },
    /// A local ICE candidate to send to the peer through signalling.
    LocalCandidate {
        /// The remote peer it is for.
        peer: PeerId,
        /// Media id.
        mid: &'a str,
        /// m-line index.
        index: u32,
        /// The `candidate:` line.
        candidate: &'a str,
    },
    /// A channel opened.
    ChannelOpen {
        /// The remote peer.
        peer: PeerId,
        /// SCTP stream id.
        channel: u16,
    },
    /// A channel closed.
    ChannelClosed {
        /// The remote peer.
        peer: PeerId,
        /// SCTP stream id.
        channel: u16,
    },
    /// A message arrived on a channel.
    Message {
        /// The remote peer.
        peer: PeerId,
        /// SCTP stream id.
        channel: u16,
        /// The message.
        data: &'a [u8],
    },
    /// The peer connection changed state.
    State {
        /// The remote peer.
        peer: PeerId,
        /// The new state.
        state: ConnectionState,
    },
}

/// Signalling the application must carry to a peer, drained with
/// [`Mesh::poll_signal`](super::Mesh::poll_signal).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// Send this description to `peer`.
    Description {
        /// The remote peer.
        peer: PeerId,
        /// Offer or answer.
        kind: SdpKind,
        /// The SDP text.
        sdp: String,
    },
    /// Send this candidate to `peer`.
    Candidate {
        /// The remote peer.
        peer: PeerId,
        /// Media id.
        mid: String,
        /// m-line index.
        index: u32,
        /// The `candidate:` line.
        candidate: String,
    },
}
