//! SceneMultiplayer (Godot 4) packets the relay understands: the SYS command family.
//!
//! Every SceneMultiplayer packet starts with a command byte whose low 3 bits are the command;
//! 7 is SYS. SYS packets are `07 <sys> <i32 LE id> [payload]` with sys `AUTH` 0, `ADD_PEER` 1,
//! `DEL_PEER` 2, `RELAY` 3. A client sends `RELAY(target, inner)` to the server, which forwards
//! `RELAY(source, inner)` — the id rewritten to the sender — to the targets. The relay never
//! needs to understand `inner` (RPCs, path caches and raw bytes all pass through).

/// The command value of SYS packets (low 3 bits of byte 0).
pub const COMMAND_SYS: u8 = 7;
/// The command value of `send_bytes` payloads (`03 <bytes>`).
pub const COMMAND_RAW: u8 = 3;
/// Bytes of a SYS header: command, sys command, i32 id.
pub const SYS_HEADER_LEN: usize = 6;

/// The SYS sub-command in byte 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysCommand {
    /// `SYS_COMMAND_AUTH` (0).
    Auth,
    /// `SYS_COMMAND_ADD_PEER` (1): server → client, a peer exists.
    AddPeer,
    /// `SYS_COMMAND_DEL_PEER` (2): server → client, a peer left.
    DelPeer,
    /// `SYS_COMMAND_RELAY` (3): relayed packet.
    Relay,
}

impl SysCommand {
    /// The wire value.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Auth => 0,
            Self::AddPeer => 1,
            Self::DelPeer => 2,
            Self::Relay => 3,
        }
    }

    const fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Auth,
            1 => Self::AddPeer,
            2 => Self::DelPeer,
            3 => Self::Relay,
            _ => return None,
        })
    }
}

/// Whether `packet` is a SceneMultiplayer SYS packet (by its command byte).
#[must_use]
pub fn is_sys(packet: &[u8]) -> bool {
    packet.first().is_some_and(|b| b & 7 == COMMAND_SYS)
}

/// A decoded SYS packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sys<'a> {
    /// The sub-command.
    pub command: SysCommand,
    /// The id field: target (client → server relay) or source (server → client relay) or peer.
    pub id: i32,
    /// Bytes after the header (the relayed packet).
    pub payload: &'a [u8],
}

/// A SYS packet that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysError {
    /// Shorter than 6 bytes, or a relay with an empty inner packet.
    TooShort,
    /// An unknown sub-command.
    UnknownCommand(u8),
}

/// Decodes a SYS packet (the caller checked [`is_sys`]).
///
/// # Errors
/// [`SysError`] for short packets, empty relays and unknown sub-commands.
pub fn decode(packet: &[u8]) -> Result<Sys<'_>, SysError> {
    let Some((head, payload)) = packet.split_first_chunk::<SYS_HEADER_LEN>() else {
        return Err(SysError::TooShort);
    };
    let command = SysCommand::from_byte(head[1]).ok_or(SysError::UnknownCommand(head[1]))?;
    if command == SysCommand::Relay && payload.is_empty() {
        return Err(SysError::TooShort);
    }
    let id = i32::from_le_bytes([head[2], head[3], head[4], head[5]]);
    Ok(Sys { command, id, payload })
}

/// The header of a SYS packet: `07 <command> <id LE>`.
#[must_use]
pub fn header(command: SysCommand, id: i32) -> [u8; SYS_HEADER_LEN] {
    let id = id.to_le_bytes();
    [COMMAND_SYS, command.to_byte(), id[0], id[1], id[2], id[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    // godot-protocol.md §10.3 and §7.4.
    #[test]
    fn godot_vectors() {
        assert_eq!(header(SysCommand::AddPeer, 12345), [7, 1, 0x39, 0x30, 0, 0]);
        assert_eq!(header(SysCommand::DelPeer, 12345), [7, 2, 0x39, 0x30, 0, 0]);
        let to_67890 = [7, 3, 0x32, 0x09, 0x01, 0x00, 0x03, 0xab];
        let sys = decode(&to_67890).unwrap();
        assert_eq!((sys.command, sys.id, sys.payload), (SysCommand::Relay, 67890, &[3, 0xab][..]));
        assert_eq!(decode(&[7, 3, 0xce, 0xf6, 0xfe, 0xff, 3, 0xab]).unwrap().id, -67890);
        assert_eq!(decode(&[7, 3, 0xff, 0xff, 0xff, 0xff, 3, 0x65]).unwrap().id, -1);
        assert_eq!(decode(&[7, 3, 0, 0, 0, 0]), Err(SysError::TooShort));
        assert_eq!(decode(&[7, 0]), Err(SysError::TooShort));
        assert_eq!(decode(&[7, 9, 0, 0, 0, 0]), Err(SysError::UnknownCommand(9)));
        assert!(is_sys(&[7, 0]) && !is_sys(&[3, 0x61]) && !is_sys(&[]));
    }
}
