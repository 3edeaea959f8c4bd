//! The fuzz harness of the multipeer core, shared by the cargo-fuzz targets and by the stable
//! replay test (`core/tests/fuzz_replay.rs`, which includes this file with `#[path]`).
//!
//! Every target takes arbitrary bytes and panics only when an invariant breaks: the parsers
//! must agree with themselves (round trips, prefix monotonicity, header-array size), and the
//! connection machines must keep the sans-IO contract of `DESIGN.md` §2 whatever they are fed
//! and whatever the application does between inputs (see [`connection`]).

pub mod cluster;
pub mod connection;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod godot;
pub mod input;
pub mod lobby_client;
pub mod multiplayer;
pub mod parsers;
pub mod scene_machine;
pub mod scene_rpc;
pub mod seeds;
pub mod seeds_multiplayer;
pub mod signaling;
pub mod variant;
pub mod webrtc;
pub mod wire;

pub use cluster::cluster;
pub use connection::{connection_client, connection_server};
#[cfg(feature = "deflate")]
pub use deflate::{deflate_frames, deflate_negotiation};
pub use godot::{godot3_header, scene_sys};
pub use lobby_client::lobby_client;
pub use multiplayer::{client_stateful, server_stateful};
pub use parsers::{frame_header, handshake_request, handshake_response};
pub use scene_machine::scene_machine;
pub use scene_rpc::scene_rpc;
pub use signaling::signaling;
pub use variant::{variant, variant_compressed};
pub use webrtc::{dcep, mesh_stateful};

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every target by its cargo-fuzz name, for the replay test.
pub const TARGETS: &[(&str, Target)] = &[
    ("handshake_request", handshake_request),
    ("handshake_response", handshake_response),
    ("frame_header", frame_header),
    ("connection_server", connection_server),
    ("connection_client", connection_client),
    ("godot3_header", godot3_header),
    ("scene_sys", scene_sys),
    ("server_stateful", server_stateful),
    ("client_stateful", client_stateful),
    ("mesh_stateful", mesh_stateful),
    ("dcep", dcep),
    ("signaling", signaling),
    ("lobby_client", lobby_client),
    ("variant", variant),
    ("variant_compressed", variant_compressed),
    ("scene_rpc", scene_rpc),
    ("scene_machine", scene_machine),
    ("cluster", cluster),
    #[cfg(feature = "deflate")]
    ("deflate_negotiation", deflate_negotiation),
    #[cfg(feature = "deflate")]
    ("deflate_frames", deflate_frames),
];
