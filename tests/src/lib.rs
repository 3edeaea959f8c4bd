//! Test suites for multipeer that need more than one crate or more than one machine: the
//! deterministic simulation ([`sim`]) used by `tests/ws_simulation.rs` (and, later, by the
//! multiplayer layer with a server and N clients), interop runners against real peers
//! (tungstenite, Autobahn|Testsuite, Godot) and the helper binaries they start.

pub mod hostile;
pub mod interop_client;
pub mod sim;
pub mod soak;
