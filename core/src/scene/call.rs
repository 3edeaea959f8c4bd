//! `REMOTE_CALL` (4.x, `scene-multiplayer.md` §3.1):
//!
//! ```text
//! byte 0     bits 0-2 = 0; bits 4-5 node-id width (u8, u16, u32; 3 invalid);
//!            bit 6 method-id width (u8, u16); bit 7 byte-only (no argc)
//! node id    1, 2 or 4 bytes: a cache id, or 0x80000000 | offset of a cstr path (u32 only)
//! method id  1 or 2 bytes
//! argc       u8, unless byte-only
//! args       argc compressed variants; byte-only: the bytes of one PackedByteArray, or none
//! [path]     full-path form: the cstr path at the offset, after everything else
//! ```

use core::fmt;

use super::cstr;

const BYTE_ONLY: u8 = 0x80;
const METHOD_U16: u8 = 0x40;
const PATH_FLAG: u32 = 0x8000_0000;

/// How a call names its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeTarget<'a> {
    /// The sender's cache id, which the receiver learnt from its `SIMPLIFY_PATH`.
    Cached(u32),
    /// The node path itself (the full-path form, used until the receiver confirmed the id).
    Path(&'a str),
}

/// The arguments of a call, still encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arguments<'a> {
    /// The byte-only form: one `PackedByteArray` argument holding these bytes, or no argument
    /// at all when they are empty (Godot cannot tell the two apart; GDScript defaults apply).
    Bytes(&'a [u8]),
    /// `count` compressed variants at the start of `data` (bytes after them are ignored, as
    /// Godot ignores them).
    Compressed {
        /// The argument count (`argc`).
        count: u8,
        /// The encoded arguments.
        data: &'a [u8],
    },
}

/// A `REMOTE_CALL` packet (Godot's `SceneRPCInterface::_process_rpc` / `_send_rpc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteCall<'a> {
    /// The node.
    pub node: NodeTarget<'a>,
    /// The method id in the node's table (see [`RpcMethods`](super::RpcMethods)); 0x8000 and
    /// up are node-level (`rpc_config`) methods.
    pub method: u16,
    /// The arguments.
    pub args: Arguments<'a>,
}

/// A `REMOTE_CALL` that cannot be used; Godot logs these and drops the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteCallError {
    /// The command is not `REMOTE_CALL`.
    WrongCommand(u8),
    /// The packet ends inside its header.
    Truncated,
    /// Node-id width 3, which Godot refuses.
    InvalidNodeWidth,
    /// A full-path offset outside the packet or inside the header.
    InvalidPathOffset,
    /// The path is not UTF-8 (Godot would read it with replacement characters and then fail to
    /// find the node).
    InvalidPath,
    /// Encoding: a cache id with bit 31 set (it would read as a path offset), a path with a
    /// NUL, or a header that does not fit.
    Unencodable,
    /// Encoding: the caller's buffer is too small; `needed` bytes are needed.
    BufferTooSmall {
        /// The length of the whole packet.
        needed: usize,
    },
    /// Encoding: more than 255 arguments (Godot refuses them too).
    TooManyArguments,
    /// Encoding: an argument that cannot be encoded for the version.
    Argument(crate::variant::EncodeError),
}

impl fmt::Display for RemoteCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongCommand(c) => write!(f, "command {c} is not REMOTE_CALL"),
            Self::Truncated => f.write_str("REMOTE_CALL truncated"),
            Self::InvalidNodeWidth => f.write_str("REMOTE_CALL node-id width 3"),
            Self::InvalidPathOffset => f.write_str("REMOTE_CALL path offset out of range"),
            Self::InvalidPath => f.write_str("REMOTE_CALL path is not UTF-8"),
            Self::Unencodable => f.write_str("REMOTE_CALL cannot be encoded"),
            Self::BufferTooSmall { needed } => write!(f, "REMOTE_CALL needs {needed} bytes"),
            Self::TooManyArguments => f.write_str("REMOTE_CALL with more than 255 arguments"),
            Self::Argument(e) => write!(f, "REMOTE_CALL argument: {e}"),
        }
    }
}

impl core::error::Error for RemoteCallError {}

/// Reads `width` little-endian bytes (1, 2 or 4) at `at`.
fn read(bytes: &[u8], at: usize, width: usize) -> Result<u32, RemoteCallError> {
    let field = bytes.get(at..at + width).ok_or(RemoteCallError::Truncated)?;
    Ok(field.iter().rev().fold(0, |n, &b| n << 8 | u32::from(b)))
}

impl<'a> RemoteCall<'a> {
    /// Decodes a 4.x `REMOTE_CALL`: every node-id and method-id width, the full-path form and
    /// the byte-only form. Arguments stay encoded; see [`Arguments`].
    ///
    /// # Errors
    /// [`RemoteCallError`].
    pub fn decode(packet: &'a [u8]) -> Result<Self, RemoteCallError> {
        let first = *packet.first().ok_or(RemoteCallError::Truncated)?;
        if first & 7 != super::COMMAND_REMOTE_CALL {
            return Err(RemoteCallError::WrongCommand(first & 7));
        }
        let node_width = match first >> 4 & 3 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => return Err(RemoteCallError::InvalidNodeWidth),
        };
        let node_id = read(packet, 1, node_width)?;
        let (node, body) = if node_width == 4 && node_id & PATH_FLAG != 0 {
            // The call ends where the path starts.
            let offset = (node_id & !PATH_FLAG) as usize;
            if offset < 1 + node_width || offset >= packet.len() {
                return Err(RemoteCallError::InvalidPathOffset);
            }
            let path = cstr(&packet[offset..]).ok_or(RemoteCallError::InvalidPath)?;
            (NodeTarget::Path(path), &packet[..offset])
        } else {
            (NodeTarget::Cached(node_id), packet)
        };
        let method_width = if first & METHOD_U16 != 0 { 2 } else { 1 };
        let method = read(body, 1 + node_width, method_width)? as u16;
        let at = 1 + node_width + method_width;
        let args = if first & BYTE_ONLY != 0 {
            Arguments::Bytes(&body[at..])
        } else {
            let count = *body.get(at).ok_or(RemoteCallError::Truncated)?;
            Arguments::Compressed { count, data: &body[at + 1..] }
        };
        Ok(Self { node, method, args })
    }

    /// The length of [`encode`](Self::encode)'s output.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let node = match self.node {
            NodeTarget::Cached(id) if id <= 0xff => 1,
            NodeTarget::Cached(id) if id <= 0xffff => 2,
            NodeTarget::Cached(_) => 4,
            NodeTarget::Path(path) => 4 + path.len() + 1,
        };
        let method = if self.method <= 0xff { 1 } else { 2 };
        let args = match self.args {
            Arguments::Bytes(bytes) => bytes.len(),
            Arguments::Compressed { data, .. } => 1 + data.len(),
        };
        1 + node + method + args
    }

    /// Writes the packet as Godot 4 does: the smallest node-id and method-id widths, the path
    /// (if any) after the arguments; returns its length.
    ///
    /// # Errors
    /// [`RemoteCallError::Unencodable`] or [`RemoteCallError::BufferTooSmall`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, RemoteCallError> {
        let needed = self.encoded_len();
        let Some(out) = out.get_mut(..needed) else { return Err(RemoteCallError::BufferTooSmall { needed }) };
        let mut first = super::COMMAND_REMOTE_CALL;
        let mut at = 1;
        let mut put = |bytes: &[u8], at: &mut usize| {
            out[*at..*at + bytes.len()].copy_from_slice(bytes);
            *at += bytes.len();
        };
        let path_at = match self.node {
            NodeTarget::Cached(id) if id & PATH_FLAG != 0 => return Err(RemoteCallError::Unencodable),
            NodeTarget::Path(path) if path.contains('\0') => return Err(RemoteCallError::Unencodable),
            NodeTarget::Cached(id) if id <= 0xff => {
                put(&[id as u8], &mut at);
                None
            }
            NodeTarget::Cached(id) if id <= 0xffff => {
                first |= 1 << 4;
                put(&(id as u16).to_le_bytes(), &mut at);
                None
            }
            NodeTarget::Cached(id) => {
                first |= 2 << 4;
                put(&id.to_le_bytes(), &mut at);
                None
            }
            NodeTarget::Path(path) => {
                first |= 2 << 4;
                let offset = needed - path.len() - 1;
                let field = u32::try_from(offset).ok().filter(|o| o & PATH_FLAG == 0);
                put(&(field.ok_or(RemoteCallError::Unencodable)? | PATH_FLAG).to_le_bytes(), &mut at);
                Some(path)
            }
        };
        if self.method <= 0xff {
            put(&[self.method as u8], &mut at);
        } else {
            first |= METHOD_U16;
            put(&self.method.to_le_bytes(), &mut at);
        }
        match self.args {
            Arguments::Bytes(bytes) => {
                first |= BYTE_ONLY;
                put(bytes, &mut at);
            }
            Arguments::Compressed { count, data } => {
                put(&[count], &mut at);
                put(data, &mut at);
            }
        }
        if let Some(path) = path_at {
            put(path.as_bytes(), &mut at);
            put(&[0], &mut at);
        }
        out[0] = first;
        Ok(needed)
    }
}

#[cfg(feature = "alloc")]
pub use self::owned::{ArgumentError, encode_call};

#[cfg(feature = "alloc")]
mod owned {
    use alloc::vec::Vec;
    use core::fmt;

    use super::{Arguments, NodeTarget, RemoteCall, RemoteCallError};
    use crate::variant::{DecodeError, DecodeOptions, Variant, compressed};

    /// An argument that did not decode: which one, and why. Godot 4 still calls the method,
    /// with `null` from that argument on; this codec reports it instead, so the call can be
    /// refused.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ArgumentError {
        /// The argument's index.
        pub index: u8,
        /// Why it did not decode.
        pub error: DecodeError,
    }

    impl fmt::Display for ArgumentError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "RPC argument {}: {}", self.index, self.error)
        }
    }

    impl core::error::Error for ArgumentError {}

    impl Arguments<'_> {
        /// Decodes the arguments (Godot's `decode_and_decompress_variant` per argument, with
        /// `allow_object_decoding` as `options.allow_objects`).
        ///
        /// # Errors
        /// [`ArgumentError`] for the first argument that fails, including one the packet is
        /// too short to hold (where Godot would pass `null`).
        pub fn decode(&self, options: &DecodeOptions) -> Result<Vec<Variant>, ArgumentError> {
            match *self {
                Arguments::Bytes([]) => Ok(Vec::new()),
                Arguments::Bytes(bytes) => Ok(alloc::vec![Variant::PackedByteArray(bytes.into())]),
                Arguments::Compressed { count, mut data } => {
                    let mut args = Vec::new();
                    for index in 0..count {
                        let (value, used) = compressed::decode(data, options)
                            .map_err(|error| ArgumentError { index, error })?;
                        args.push(value);
                        data = &data[used..];
                    }
                    Ok(args)
                }
            }
        }
    }

    /// Appends a `REMOTE_CALL` of `method` on `node` with `args` to `out`, as Godot's
    /// `_send_rpc` builds it: the byte-only form for no arguments or one non-empty
    /// `PackedByteArray`, compressed variants otherwise; on error `out` is unchanged.
    ///
    /// Unlike Godot, one *empty* `PackedByteArray` goes in the compressed form: in the byte-only
    /// form the receiver would see no argument at all.
    ///
    /// # Errors
    /// [`RemoteCallError::TooManyArguments`], [`RemoteCallError::Argument`] for an argument
    /// `version` cannot carry, [`RemoteCallError::Unencodable`] for the node.
    pub fn encode_call(
        node: NodeTarget<'_>,
        method: u16,
        args: &[Variant],
        version: crate::variant::Version,
        out: &mut Vec<u8>,
    ) -> Result<(), RemoteCallError> {
        let mut data = Vec::new();
        let args = match args {
            [] => Arguments::Bytes(&[]),
            // Godot also sends an empty array this way, which the receiver reads as no
            // argument at all; the compressed form keeps the arity.
            [Variant::PackedByteArray(bytes)] if !bytes.is_empty() => Arguments::Bytes(bytes),
            _ => {
                let count = u8::try_from(args.len()).map_err(|_| RemoteCallError::TooManyArguments)?;
                for arg in args {
                    compressed::encode(arg, version, &mut data).map_err(RemoteCallError::Argument)?;
                }
                Arguments::Compressed { count, data: &data }
            }
        };
        let call = RemoteCall { node, method, args };
        let start = out.len();
        out.resize(start + call.encoded_len(), 0);
        call.encode(&mut out[start..]).map(|_| ()).inspect_err(|_| out.truncate(start))
    }
}
