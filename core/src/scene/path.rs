//! The path cache packets: `SIMPLIFY_PATH` ("my id N means this node") and `CONFIRM_PATH`
//! ("understood"), in their 4.3+, 4.0–4.2 and 3.x layouts (`scene-multiplayer.md` §2, §7, §11).

use core::fmt;

use super::cstr;
use crate::variant::Version;

/// Bytes of the 4.x checksum field: 32 lowercase hex digits and a NUL.
const CHECKSUM_FIELD: usize = 33;
/// The shortest 4.x SIMPLIFY_PATH Godot accepts: command, checksum field, id.
const SIMPLIFY_MIN_LEN: usize = 1 + CHECKSUM_FIELD + 4;

/// A path-cache packet that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// Not the command this decoder reads.
    WrongCommand(u8),
    /// Shorter than the layout (or, for a 4.3+ CONFIRM, not exactly 6 bytes).
    BadLength,
    /// The path (or checksum) is not UTF-8.
    InvalidText,
    /// An encoding input that cannot be sent: a path with a NUL, or a checksum that is not 32
    /// bytes.
    Unencodable,
    /// The caller's buffer is too small; `needed` bytes are needed.
    BufferTooSmall {
        /// The length of the whole packet.
        needed: usize,
    },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongCommand(c) => write!(f, "command {c} is not a path-cache packet"),
            Self::BadLength => f.write_str("path-cache packet of the wrong length"),
            Self::InvalidText => f.write_str("path-cache text is not UTF-8"),
            Self::Unencodable => f.write_str("path or checksum cannot be encoded"),
            Self::BufferTooSmall { needed } => write!(f, "path-cache packet needs {needed} bytes"),
        }
    }
}

impl core::error::Error for PathError {}

/// Writes `parts` into `out`, or reports the length needed.
fn write_parts(out: &mut [u8], parts: &[&[u8]]) -> Result<usize, PathError> {
    let needed = parts.iter().map(|p| p.len()).sum();
    let Some(dst) = out.get_mut(..needed) else { return Err(PathError::BufferTooSmall { needed }) };
    let mut at = 0;
    for part in parts {
        dst[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(needed)
}

/// `SIMPLIFY_PATH`: the sender's cache id for a node path (Godot's `SceneCacheInterface`
/// `send_object_cache` / `process_simplify_path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimplifyPath<'a> {
    /// 4.x: the md5 (32 lowercase hex bytes) of the node's RPC names, see
    /// [`RpcMethods::checksum`](super::RpcMethods::checksum); 3.x sends none.
    pub checksum: Option<&'a [u8]>,
    /// The cache id the sender will use for the node.
    pub id: u32,
    /// The node path, relative to the sender's `root_path` (`Probe` for `/root/Probe`).
    pub path: &'a str,
}

impl<'a> SimplifyPath<'a> {
    /// Decodes `01 <cstr md5> <u32 id> <cstr path>` (4.x) or `02 <u32 id> <cstr path>` (3.x).
    ///
    /// Like Godot, the checksum field is read as 32 bytes and the byte after it is not
    /// checked; the path ends at a NUL or at the end of the packet. Unlike Godot, a path that is
    /// not UTF-8 is an error rather than text with replacement characters.
    ///
    /// # Errors
    /// [`PathError`].
    pub fn decode(packet: &'a [u8], version: Version) -> Result<Self, PathError> {
        let command = if version.is_godot4() { super::COMMAND_SIMPLIFY_PATH } else { 2 };
        let first = *packet.first().ok_or(PathError::BadLength)?;
        if first & 7 != command {
            return Err(PathError::WrongCommand(first & 7));
        }
        let (checksum, rest) = if version.is_godot4() {
            if packet.len() < SIMPLIFY_MIN_LEN {
                return Err(PathError::BadLength);
            }
            (Some(&packet[1..33]), &packet[1 + CHECKSUM_FIELD..])
        } else {
            (None, &packet[1..])
        };
        let Some((id, path)) = rest.split_first_chunk::<4>() else { return Err(PathError::BadLength) };
        if checksum.is_some_and(|c| core::str::from_utf8(c).is_err()) {
            return Err(PathError::InvalidText);
        }
        Ok(Self { checksum, id: u32::from_le_bytes(*id), path: cstr(path).ok_or(PathError::InvalidText)? })
    }

    /// Writes the packet into `out` in `version`'s layout; returns its length.
    ///
    /// # Errors
    /// [`PathError::Unencodable`] for a path holding a NUL or (4.x) a checksum that is not 32
    /// bytes; [`PathError::BufferTooSmall`].
    pub fn encode(&self, version: Version, out: &mut [u8]) -> Result<usize, PathError> {
        if self.path.contains('\0') {
            return Err(PathError::Unencodable);
        }
        let id = self.id.to_le_bytes();
        if version.is_godot4() {
            let checksum = self.checksum.filter(|c| c.len() == 32).ok_or(PathError::Unencodable)?;
            write_parts(
                out,
                &[&[super::COMMAND_SIMPLIFY_PATH], checksum, &[0], &id, self.path.as_bytes(), &[0]],
            )
        } else {
            write_parts(out, &[&[2], &id, self.path.as_bytes(), &[0]])
        }
    }
}

/// `CONFIRM_PATH`: the answer to a [`SimplifyPath`] (Godot's `process_confirm_path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmPath<'a> {
    /// 4.3+: `02 <u8 valid> <u32 id>`, exactly 6 bytes (godotengine/godot#90027).
    Id {
        /// Whether the checksum matched (a mismatch still confirms the path).
        valid: bool,
        /// The cache id being confirmed.
        id: u32,
    },
    /// 4.0–4.2: `02 <u8 valid> <cstr path>`; 3.x: `03 <cstr path>` (`valid` is then true).
    Path {
        /// Whether the checksum matched (4.x); always true in 3.x.
        valid: bool,
        /// The confirmed path.
        path: &'a str,
    },
}

impl<'a> ConfirmPath<'a> {
    /// Decodes the layout of `version`.
    ///
    /// # Errors
    /// [`PathError`].
    pub fn decode(packet: &'a [u8], version: Version) -> Result<Self, PathError> {
        let command = if version.is_godot4() { super::COMMAND_CONFIRM_PATH } else { 3 };
        let first = *packet.first().ok_or(PathError::BadLength)?;
        if first & 7 != command {
            return Err(PathError::WrongCommand(first & 7));
        }
        match version {
            Version::Godot3 => {
                Ok(Self::Path { valid: true, path: cstr(&packet[1..]).ok_or(PathError::InvalidText)? })
            }
            Version::Godot4 { minor } if minor >= 3 => match packet {
                [_, valid, a, b, c, d] => {
                    Ok(Self::Id { valid: *valid != 0, id: u32::from_le_bytes([*a, *b, *c, *d]) })
                }
                _ => Err(PathError::BadLength),
            },
            Version::Godot4 { .. } => match packet {
                [_, valid, path @ ..] => {
                    Ok(Self::Path { valid: *valid != 0, path: cstr(path).ok_or(PathError::InvalidText)? })
                }
                _ => Err(PathError::BadLength),
            },
        }
    }

    /// Writes the packet into `out`; returns its length. The form must suit the version: `Id`
    /// for 4.3+, `Path` otherwise.
    ///
    /// # Errors
    /// [`PathError::Unencodable`] for the other form or a path holding a NUL;
    /// [`PathError::BufferTooSmall`].
    pub fn encode(&self, version: Version, out: &mut [u8]) -> Result<usize, PathError> {
        let id_form = matches!(version, Version::Godot4 { minor } if minor >= 3);
        match *self {
            Self::Id { valid, id } if id_form => {
                write_parts(out, &[&[super::COMMAND_CONFIRM_PATH, u8::from(valid)], &id.to_le_bytes()])
            }
            Self::Path { valid, path } if !id_form && !path.contains('\0') => {
                let head: &[u8] =
                    if version.is_godot4() { &[super::COMMAND_CONFIRM_PATH, u8::from(valid)] } else { &[3] };
                write_parts(out, &[head, path.as_bytes(), &[0]])
            }
            _ => Err(PathError::Unencodable),
        }
    }
}
