//! SceneMultiplayer packets above the transport (`scene-multiplayer.md` §1–§3, §7): the path
//! cache (`SIMPLIFY_PATH` / `CONFIRM_PATH`), `REMOTE_CALL`, the RPC method table with Godot's
//! method ids and checksum, and Godot 3's calls by name ([`NamedCall`]).
//!
//! Every packet starts with a command byte whose low three bits are the command; the SYS
//! family (7) is in [`peer::scene`](crate::peer::scene). These are pure codecs: they borrow the
//! packet, never allocate (the method table aside), and report malformed bytes as errors.

mod call;
mod godot3;
#[cfg(feature = "alloc")]
mod methods;
#[cfg(feature = "alloc")]
mod multiplayer;
mod path;

#[cfg(test)]
mod tests;

#[cfg(feature = "alloc")]
pub use call::{ArgumentError, encode_call};
pub use call::{Arguments, NodeTarget, RemoteCall, RemoteCallError};
pub use godot3::{NamedArguments, NamedCall};
#[cfg(feature = "alloc")]
pub use methods::{RpcConfig, RpcMethods, RpcMode, TooManyMethods};
#[cfg(feature = "alloc")]
pub use multiplayer::{
    AUTH_FAILED_CODE, AUTH_FAILED_REASON, Arity, Refusal, RemoteMode, Replication, RpcCall, RpcNode,
    RsetCall, SceneConfig, SceneEvent, SceneMultiplayer, SceneStats, SendError, Transmit,
};
pub use path::{ConfirmPath, PathError, SimplifyPath};

/// `REMOTE_CALL` (4.x command 0; 3.x uses 0 too, with names instead of ids).
pub const COMMAND_REMOTE_CALL: u8 = 0;
/// `SIMPLIFY_PATH` in 4.x (3.x: 2).
pub const COMMAND_SIMPLIFY_PATH: u8 = 1;
/// `CONFIRM_PATH` in 4.x (3.x: 3).
pub const COMMAND_CONFIRM_PATH: u8 = 2;

/// The command of a SceneMultiplayer packet: the low three bits of byte 0 (Godot masks with 7,
/// so bits 3 and up never change it).
#[must_use]
pub fn command(packet: &[u8]) -> Option<u8> {
    packet.first().map(|b| b & 7)
}

/// The text of a `cstr` field: the bytes up to the first NUL (or the end), as UTF-8.
fn cstr(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).ok()
}
