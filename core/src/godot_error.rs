//! Godot's `Error` numbers, so that a port keeps the logic that tests them.
//!
//! Each error type of this crate (and of the adapters) has a `godot_error()` that names the
//! code Godot returns in the same situation; the numbers are Godot's `@GlobalScope.Error`
//! values, the same in 3.x and 4.x.

use core::fmt;

use crate::peer::{PutError, UnknownPeer};
use crate::ws::SendError;

/// A value of Godot's `Error` enum (`OK` is `Ok(())` in Rust, so it has no variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(i32)]
pub enum GodotError {
    /// `FAILED` (1).
    Failed = 1,
    /// `ERR_UNAVAILABLE` (2).
    Unavailable = 2,
    /// `ERR_UNCONFIGURED` (3).
    Unconfigured = 3,
    /// `ERR_UNAUTHORIZED` (4).
    Unauthorized = 4,
    /// `ERR_OUT_OF_MEMORY` (6): Godot's answer to a full or too small outbound buffer.
    OutOfMemory = 6,
    /// `ERR_CANT_CREATE` (20).
    CantCreate = 20,
    /// `ERR_ALREADY_IN_USE` (22).
    AlreadyInUse = 22,
    /// `ERR_TIMEOUT` (24).
    Timeout = 24,
    /// `ERR_CANT_CONNECT` (25).
    CantConnect = 25,
    /// `ERR_CANT_RESOLVE` (26).
    CantResolve = 26,
    /// `ERR_CONNECTION_ERROR` (27).
    ConnectionError = 27,
    /// `ERR_INVALID_DATA` (30).
    InvalidData = 30,
    /// `ERR_INVALID_PARAMETER` (31).
    InvalidParameter = 31,
}

impl GodotError {
    /// The number GDScript sees.
    #[must_use]
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The name of the constant in GDScript.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Failed => "FAILED",
            Self::Unavailable => "ERR_UNAVAILABLE",
            Self::Unconfigured => "ERR_UNCONFIGURED",
            Self::Unauthorized => "ERR_UNAUTHORIZED",
            Self::OutOfMemory => "ERR_OUT_OF_MEMORY",
            Self::CantCreate => "ERR_CANT_CREATE",
            Self::AlreadyInUse => "ERR_ALREADY_IN_USE",
            Self::Timeout => "ERR_TIMEOUT",
            Self::CantConnect => "ERR_CANT_CONNECT",
            Self::CantResolve => "ERR_CANT_RESOLVE",
            Self::ConnectionError => "ERR_CONNECTION_ERROR",
            Self::InvalidData => "ERR_INVALID_DATA",
            Self::InvalidParameter => "ERR_INVALID_PARAMETER",
        }
    }
}

impl fmt::Display for GodotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl PutError {
    /// What Godot's `put_packet` returns in this case.
    #[must_use]
    pub const fn godot_error(self) -> GodotError {
        match self {
            // `MultiplayerPeer.put_packet` before connecting.
            Self::NotConnected => GodotError::Unconfigured,
            Self::UnknownPeer(_) => GodotError::InvalidParameter,
            // wslay's queue checks, in 3.x and 4.x alike.
            Self::TooLarge { .. } | Self::Full => GodotError::OutOfMemory,
            // Godot has no refusal here (its client sends to the server whatever the target);
            // "unavailable" names what is missing, the relay.
            Self::RelayUnsupported => GodotError::Unavailable,
        }
    }
}

impl From<PutError> for GodotError {
    fn from(e: PutError) -> Self {
        e.godot_error()
    }
}

impl UnknownPeer {
    /// Godot's `disconnect_peer` on an unknown id fails its `has_peer` check, an invalid
    /// parameter (it returns nothing; 3.x and 4.x only print it).
    #[must_use]
    pub const fn godot_error(self) -> GodotError {
        GodotError::InvalidParameter
    }
}

impl From<UnknownPeer> for GodotError {
    fn from(e: UnknownPeer) -> Self {
        e.godot_error()
    }
}

impl SendError {
    /// What Godot's `WebSocketPeer.send`/`put_packet` (or `close`) returns in this case.
    #[must_use]
    pub const fn godot_error(self) -> GodotError {
        match self {
            Self::NotOpen => GodotError::Failed,
            Self::Full { .. } | Self::TooLarge { .. } => GodotError::OutOfMemory,
            Self::WrongState => GodotError::Unconfigured,
            Self::ControlTooLong | Self::InvalidCloseCode(_) | Self::InvalidUtf8 | Self::Handshake(_) => {
                GodotError::InvalidParameter
            }
        }
    }
}

impl From<SendError> for GodotError {
    fn from(e: SendError) -> Self {
        e.godot_error()
    }
}

#[cfg(feature = "alloc")]
impl crate::mesh::MeshError {
    /// What Godot's `WebRTCMultiplayerPeer` returns in this case (`create_client(1)`, a peer
    /// added twice, `add_peer` while refusing, a closed peer).
    #[must_use]
    pub const fn godot_error(self) -> GodotError {
        match self {
            Self::InvalidId | Self::AlreadyAdded(_) => GodotError::InvalidParameter,
            Self::Refused => GodotError::Unauthorized,
            Self::Closed => GodotError::Unconfigured,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::PeerId;

    #[test]
    fn numbers_are_godots() {
        // @GlobalScope.Error, unchanged from 3.0 to 4.6.
        let table = [
            (GodotError::Failed, 1),
            (GodotError::Unavailable, 2),
            (GodotError::Unconfigured, 3),
            (GodotError::Unauthorized, 4),
            (GodotError::OutOfMemory, 6),
            (GodotError::CantCreate, 20),
            (GodotError::AlreadyInUse, 22),
            (GodotError::Timeout, 24),
            (GodotError::CantConnect, 25),
            (GodotError::CantResolve, 26),
            (GodotError::ConnectionError, 27),
            (GodotError::InvalidData, 30),
            (GodotError::InvalidParameter, 31),
        ];
        for (error, code) in table {
            assert_eq!(error.code(), code, "{}", error.name());
        }
    }

    #[test]
    fn put_errors_map_as_godot_returns_them() {
        let peer = PeerId::new(7).unwrap();
        assert_eq!(PutError::NotConnected.godot_error().code(), 3);
        assert_eq!(PutError::UnknownPeer(peer).godot_error(), GodotError::InvalidParameter);
        assert_eq!(PutError::TooLarge { max: 65535 }.godot_error().code(), 6);
        assert_eq!(GodotError::from(PutError::Full), GodotError::OutOfMemory);
        assert_eq!(PutError::RelayUnsupported.godot_error(), GodotError::Unavailable);
        assert_eq!(GodotError::from(UnknownPeer(peer)).code(), 31);
        assert_eq!(SendError::NotOpen.godot_error().code(), 1);
        assert_eq!(SendError::InvalidCloseCode(1005).godot_error().code(), 31);
        assert_eq!(alloc_free_display(), "ERR_OUT_OF_MEMORY (6)");
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn mesh_errors_map_as_webrtc_multiplayer_peer_returns_them() {
        use crate::mesh::MeshError;
        assert_eq!(MeshError::InvalidId.godot_error().code(), 31);
        assert_eq!(MeshError::AlreadyAdded(PeerId::new(3).unwrap()).godot_error().code(), 31);
        assert_eq!(MeshError::Refused.godot_error().code(), 4);
        assert_eq!(MeshError::Closed.godot_error(), GodotError::Unconfigured);
    }

    fn alloc_free_display() -> heapless::String<32> {
        let mut s = heapless::String::new();
        let _ = fmt::write(&mut s, format_args!("{}", GodotError::OutOfMemory));
        s
    }
}
