//! Stateless targets for the Godot multiplayer codecs: the Godot 3 nine-byte header and the
//! SceneMultiplayer SYS packets the Godot 4 relay reads.

use multipeer::peer::godot3::{self, HEADER_LEN, Header, MessageType, SYS_LEN};
use multipeer::peer::scene::{self, COMMAND_SYS, SYS_HEADER_LEN, SysCommand, SysError};

/// `Header::decode` on the bytes, then `encode` → `decode`, `sys_id` and `sys_message`.
///
/// Checks: decoding reads the fields the bytes hold and leaves the rest as payload; encoding a
/// decoded header gives back the same nine bytes; `sys_id` reads the first four payload bytes
/// (and nothing from a shorter payload); `MessageType` round-trips through its byte; a system
/// message built from any id decodes to that type, sender 1, target 0 and the id.
pub fn godot3_header(data: &[u8]) {
    match Header::decode(data) {
        Some((h, payload)) => {
            assert!(data.len() >= HEADER_LEN);
            assert_eq!(h.kind, data[0]);
            assert_eq!(h.from.to_le_bytes(), data[1..5]);
            assert_eq!(h.to.to_le_bytes(), data[5..9]);
            assert_eq!(payload, &data[HEADER_LEN..]);
            assert_eq!(h.encode(), data[..HEADER_LEN]);
            assert_eq!(Header::decode(&h.encode()), Some((h, &[][..])));
            match godot3::sys_id(payload) {
                Some(id) => assert_eq!(id.to_le_bytes(), payload[..4]),
                None => assert!(payload.len() < 4),
            }
            if let Some(kind) = MessageType::from_byte(h.kind) {
                assert_eq!(kind.to_byte(), h.kind);
                let id = godot3::sys_id(payload).unwrap_or(h.from);
                let sys = godot3::sys_message(kind, id);
                assert_eq!(sys.len(), SYS_LEN);
                let (back, rest) = Header::decode(&sys).expect("a system message has a header");
                assert_eq!((back.kind, back.from, back.to), (kind.to_byte(), 1, 0));
                assert_eq!(godot3::sys_id(rest), Some(id));
            } else {
                assert!(h.kind > 3);
            }
        }
        None => assert!(data.len() < HEADER_LEN),
    }
}

/// `scene::decode` on the bytes, and `header` → `decode` for the fields they hold.
///
/// Checks: `is_sys` looks at the low three bits of byte 0 only; a decoded packet names the
/// sub-command of byte 1 and the id of bytes 2–5, and its payload is the rest; a relay is never
/// empty; errors name the cause; the header of any command and id decodes back to them, and
/// re-encodes the packet's first six bytes (with the command byte normalised to 7).
pub fn scene_sys(data: &[u8]) {
    assert_eq!(scene::is_sys(data), data.first().is_some_and(|b| b & 7 == COMMAND_SYS));
    match scene::decode(data) {
        Ok(sys) => {
            assert!(data.len() >= SYS_HEADER_LEN);
            assert_eq!(sys.command.to_byte(), data[1]);
            assert_eq!(sys.id.to_le_bytes(), data[2..6]);
            assert_eq!(sys.payload, &data[SYS_HEADER_LEN..]);
            assert!(sys.command != SysCommand::Relay || !sys.payload.is_empty());
            let head = scene::header(sys.command, sys.id);
            assert_eq!(head[1..], data[1..SYS_HEADER_LEN]);
            assert_eq!(head[0], COMMAND_SYS);
            let mut again = head.to_vec();
            again.extend_from_slice(sys.payload);
            assert_eq!(scene::decode(&again), Ok(sys));
        }
        Err(SysError::TooShort) => {
            assert!(data.len() < SYS_HEADER_LEN || (data[1] == 3 && data.len() == SYS_HEADER_LEN));
        }
        Err(SysError::UnknownCommand(c)) => {
            assert!(data.len() >= SYS_HEADER_LEN && c == data[1] && c > 3);
        }
    }
    // Every command with an id drawn from the input survives header → decode.
    let id = i32::from_le_bytes(core::array::from_fn(|i| data.get(i).copied().unwrap_or(0)));
    for command in [SysCommand::Auth, SysCommand::AddPeer, SysCommand::DelPeer, SysCommand::Relay] {
        let mut packet = scene::header(command, id).to_vec();
        packet.push(data.len() as u8);
        let sys = scene::decode(&packet).expect("a header with one payload byte decodes");
        assert_eq!((sys.command, sys.id, sys.payload), (command, id, &packet[SYS_HEADER_LEN..]));
        assert!(scene::is_sys(&packet));
    }
}
