//! Godot 3.x `MultiplayerAPI` calls by name (`scene-multiplayer.md` §7): `REMOTE_CALL` (0) and
//! `REMOTE_SET` (1), inside the payload after the 9-byte transport header.
//!
//! ```text
//! REMOTE_CALL  00 <u32 node target> <cstr method> <u8 argc> <argc plain variants> [cstr path]
//! REMOTE_SET   01 <u32 node target> <cstr property> <one plain variant> [cstr path]
//! ```
//!
//! The node target is the sender's cache id, or `0x80000000 | offset` of the path, counted from
//! byte 0 of this payload. 3.x has no method ids, no compressed arguments and no byte-only form.

use super::call::{NodeTarget, RemoteCallError};
use super::cstr;

const PATH_FLAG: u32 = 0x8000_0000;

/// What a [`NamedCall`] carries after the member name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedArguments<'a> {
    /// `REMOTE_CALL`: `count` plain variants at the start of `data`.
    Call {
        /// The argument count (`argc`).
        count: u8,
        /// The encoded arguments (bytes after them are ignored).
        data: &'a [u8],
    },
    /// `REMOTE_SET`: the new value of the property, one plain variant at the start.
    Set(&'a [u8]),
}

/// A Godot 3 `REMOTE_CALL` or `REMOTE_SET` (3.x `MultiplayerAPI::_process_rpc` /
/// `_process_rset`, `_send_rpc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedCall<'a> {
    /// The node.
    pub node: NodeTarget<'a>,
    /// The method (`REMOTE_CALL`) or property (`REMOTE_SET`) name.
    pub name: &'a str,
    /// The arguments or the value.
    pub args: NamedArguments<'a>,
}

impl<'a> NamedCall<'a> {
    /// Decodes a 3.x `REMOTE_CALL` or `REMOTE_SET` payload.
    ///
    /// # Errors
    /// [`RemoteCallError`]: `WrongCommand` for any other first byte, `Truncated` when the name
    /// has no NUL or `argc` is missing (3.2.3 refuses both), `InvalidPathOffset`,
    /// `InvalidPath` for a name or path that is not UTF-8.
    pub fn decode(packet: &'a [u8]) -> Result<Self, RemoteCallError> {
        let command = *packet.first().ok_or(RemoteCallError::Truncated)?;
        if command > 1 {
            return Err(RemoteCallError::WrongCommand(command));
        }
        let target = packet.get(1..5).ok_or(RemoteCallError::Truncated)?;
        let target = u32::from_le_bytes([target[0], target[1], target[2], target[3]]);
        let (node, body) = if target & PATH_FLAG != 0 {
            let offset = (target & !PATH_FLAG) as usize;
            if offset < 5 || offset >= packet.len() {
                return Err(RemoteCallError::InvalidPathOffset);
            }
            (
                NodeTarget::Path(cstr(&packet[offset..]).ok_or(RemoteCallError::InvalidPath)?),
                &packet[..offset],
            )
        } else {
            (NodeTarget::Cached(target), packet)
        };
        let rest = &body[5..];
        let end = rest.iter().position(|&b| b == 0).ok_or(RemoteCallError::Truncated)?;
        let name = core::str::from_utf8(&rest[..end]).map_err(|_| RemoteCallError::InvalidPath)?;
        let rest = &rest[end + 1..];
        let args = if command == 0 {
            let (&count, data) = rest.split_first().ok_or(RemoteCallError::Truncated)?;
            NamedArguments::Call { count, data }
        } else {
            NamedArguments::Set(rest)
        };
        Ok(Self { node, name, args })
    }

    /// The length of [`encode`](Self::encode)'s output.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let path = match self.node {
            NodeTarget::Cached(_) => 0,
            NodeTarget::Path(path) => path.len() + 1,
        };
        let args = match self.args {
            NamedArguments::Call { data, .. } => 1 + data.len(),
            NamedArguments::Set(value) => value.len(),
        };
        5 + self.name.len() + 1 + args + path
    }

    /// Writes the payload as Godot 3 does; returns its length.
    ///
    /// # Errors
    /// [`RemoteCallError::Unencodable`] for a cache id with bit 31 set or a name or path holding
    /// a NUL; [`RemoteCallError::BufferTooSmall`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, RemoteCallError> {
        let needed = self.encoded_len();
        if self.name.contains('\0') {
            return Err(RemoteCallError::Unencodable);
        }
        let target = match self.node {
            NodeTarget::Cached(id) if id & PATH_FLAG == 0 => id,
            NodeTarget::Path(path) if !path.contains('\0') => {
                let offset =
                    u32::try_from(needed - path.len() - 1).map_err(|_| RemoteCallError::Unencodable)?;
                if offset & PATH_FLAG != 0 {
                    return Err(RemoteCallError::Unencodable);
                }
                PATH_FLAG | offset
            }
            _ => return Err(RemoteCallError::Unencodable),
        };
        let Some(out) = out.get_mut(..needed) else { return Err(RemoteCallError::BufferTooSmall { needed }) };
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        let (command, count, data) = match self.args {
            NamedArguments::Call { count, data } => (0, Some(count), data),
            NamedArguments::Set(value) => (1, None, value),
        };
        put(&[command]);
        put(&target.to_le_bytes());
        put(self.name.as_bytes());
        put(&[0]);
        if let Some(count) = count {
            put(&[count]);
        }
        put(data);
        if let NodeTarget::Path(path) = self.node {
            put(path.as_bytes());
            put(&[0]);
        }
        Ok(needed)
    }
}

#[cfg(feature = "alloc")]
mod owned {
    use alloc::vec::Vec;

    use super::NamedArguments;
    use crate::scene::ArgumentError;
    use crate::variant::{DecodeOptions, Variant};

    impl NamedArguments<'_> {
        /// Decodes the arguments (or the one value of a `REMOTE_SET`) as plain variants, with
        /// `options` (a 3.x version; `allow_objects` as 3.x `allow_object_decoding`). 3.2.3
        /// drops the call when one fails; so can the caller, knowing which.
        ///
        /// # Errors
        /// [`ArgumentError`] for the first value that does not decode.
        pub fn decode(&self, options: &DecodeOptions) -> Result<Vec<Variant>, ArgumentError> {
            let (count, mut data) = match *self {
                NamedArguments::Call { count, data } => (count, data),
                NamedArguments::Set(value) => (1, value),
            };
            let mut values = Vec::new();
            for index in 0..count {
                let (value, used) =
                    Variant::from_bytes(data, options).map_err(|error| ArgumentError { index, error })?;
                values.push(value);
                data = &data[used..];
            }
            Ok(values)
        }
    }
}
