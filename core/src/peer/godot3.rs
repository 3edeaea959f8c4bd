//! Godot 3.x WebSocket multiplayer framing: a 9-byte header on every message.
//!
//! `type u8 | from i32 LE | to i32 LE | payload`. Types: data (0), and the server's system
//! messages `SYS_ADD` (1), `SYS_DEL` (2), `SYS_ID` (3), whose payload is an i32 LE peer id and
//! whose `from` is 1 and `to` 0.

/// Bytes of the header.
pub const HEADER_LEN: usize = 9;

/// Length of a system message: header plus an i32 id.
pub const SYS_LEN: usize = HEADER_LEN + 4;

/// The message type in byte 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// `SYS_NONE`: application data.
    Data,
    /// `SYS_ADD`: a peer exists (to the new peer, `SYS_ADD(1)` means "joined").
    Add,
    /// `SYS_DEL`: a peer left.
    Del,
    /// `SYS_ID`: your id.
    Id,
}

impl MessageType {
    /// The wire value.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Data => 0,
            Self::Add => 1,
            Self::Del => 2,
            Self::Id => 3,
        }
    }

    /// The type for a wire value.
    #[must_use]
    pub const fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Data,
            1 => Self::Add,
            2 => Self::Del,
            3 => Self::Id,
            _ => return None,
        })
    }
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The type byte, as received (unknown values are kept for the caller to reject).
    pub kind: u8,
    /// The sender's id.
    pub from: i32,
    /// The target: >0 one peer, 0 broadcast, <0 all except −to.
    pub to: i32,
}

impl Header {
    /// Encodes the header.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = self.kind;
        out[1..5].copy_from_slice(&self.from.to_le_bytes());
        out[5..9].copy_from_slice(&self.to.to_le_bytes());
        out
    }

    /// Decodes the header at the start of `message`; `None` if shorter than 9 bytes.
    #[must_use]
    pub fn decode(message: &[u8]) -> Option<(Self, &[u8])> {
        let (head, payload) = message.split_first_chunk::<HEADER_LEN>()?;
        let from = i32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        let to = i32::from_le_bytes([head[5], head[6], head[7], head[8]]);
        Some((Self { kind: head[0], from, to }, payload))
    }
}

/// A system message from the server: `kind` with peer id `id`.
#[must_use]
pub fn sys_message(kind: MessageType, id: i32) -> [u8; SYS_LEN] {
    let mut out = [0u8; SYS_LEN];
    out[..HEADER_LEN].copy_from_slice(&Header { kind: kind.to_byte(), from: 1, to: 0 }.encode());
    out[HEADER_LEN..].copy_from_slice(&id.to_le_bytes());
    out
}

/// The id carried by a system message's payload; `None` if shorter than 4 bytes.
#[must_use]
pub fn sys_id(payload: &[u8]) -> Option<i32> {
    payload.first_chunk::<4>().map(|b| i32::from_le_bytes(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    // godot-protocol.md §10.2, id 12345.
    #[test]
    fn godot_vectors() {
        assert_eq!(sys_message(MessageType::Id, 12345), [3, 1, 0, 0, 0, 0, 0, 0, 0, 0x39, 0x30, 0, 0]);
        assert_eq!(sys_message(MessageType::Add, 1), [1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(sys_message(MessageType::Del, 12345), [2, 1, 0, 0, 0, 0, 0, 0, 0, 0x39, 0x30, 0, 0]);
        let to_all_but = Header { kind: 0, from: 1, to: -12345 }.encode();
        assert_eq!(to_all_but, [0, 1, 0, 0, 0, 0xc7, 0xcf, 0xff, 0xff]);
        let relayed = [0, 0x39, 0x30, 0, 0, 0x32, 0x09, 0x01, 0, 0x04, 0xab];
        let (h, payload) = Header::decode(&relayed).unwrap();
        assert_eq!((h.kind, h.from, h.to, payload), (0, 12345, 67890, &[0x04, 0xab][..]));
        assert_eq!(Header::decode(&[0, 1, 2]), None);
        assert_eq!(sys_id(&[0x39, 0x30]), None);
    }
}
