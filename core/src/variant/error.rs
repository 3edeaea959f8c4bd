//! Why a Variant could not be decoded or encoded.

use core::fmt;

use super::VariantType;

/// Bytes that are not a Variant this decoder accepts; Godot's `ERR_INVALID_DATA`,
/// `ERR_UNAUTHORIZED` and "Variant is too deep", told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends inside a value (or a length field claims more than is left).
    Truncated,
    /// The header's type id is not a type of this version.
    UnknownType(u32),
    /// A string is not valid UTF-8 (overlong forms, surrogates, code points above U+10FFFF,
    /// truncated sequences).
    InvalidUtf8,
    /// A length or count is negative, or its byte size overflows.
    InvalidLength,
    /// A `NodePath` in the old format (count word without bit 31), which Godot also refuses.
    OldNodePath,
    /// A typed container names an element type that is not a type of this version.
    InvalidContainerType,
    /// A value sits deeper than the nesting limit ([`MAX_DEPTH`](super::MAX_DEPTH) by default).
    TooDeep,
    /// The decoded value would take more memory than the budget allows.
    OverBudget,
    /// A full object (class name and properties) while objects are not allowed
    /// (Godot's `ERR_UNAUTHORIZED`).
    ObjectNotAllowed,
    /// A container or a type [`VariantRef`](super::VariantRef) cannot hold without allocating.
    NeedsAlloc(VariantType),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("variant truncated"),
            Self::UnknownType(id) => write!(f, "unknown variant type {id}"),
            Self::InvalidUtf8 => f.write_str("variant string is not valid UTF-8"),
            Self::InvalidLength => f.write_str("variant length is negative or overflows"),
            Self::OldNodePath => f.write_str("NodePath in the old format"),
            Self::InvalidContainerType => f.write_str("typed container of an unknown type"),
            Self::TooDeep => f.write_str("variant is too deep"),
            Self::OverBudget => f.write_str("variant exceeds the decoding budget"),
            Self::ObjectNotAllowed => f.write_str("object decoding is not allowed"),
            Self::NeedsAlloc(t) => write!(f, "{t:?} needs the allocating decoder"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// A value that cannot be encoded as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The caller's storage is too small; `needed` bytes are needed in all.
    BufferTooSmall {
        /// The length of the whole encoding.
        needed: usize,
    },
    /// The version has no such type (a `Vector2i` for Godot 3, a `PackedVector4Array` for 4.2).
    NotInVersion(VariantType),
    /// A value sits deeper than [`MAX_DEPTH`](super::MAX_DEPTH) (Godot's "Potential infinite
    /// recursion detected").
    TooDeep,
    /// A length does not fit the format's 31-bit count.
    TooLong,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => write!(f, "encoding needs {needed} bytes"),
            Self::NotInVersion(t) => write!(f, "{t:?} does not exist in this Godot version"),
            Self::TooDeep => f.write_str("variant is too deep to encode"),
            Self::TooLong => f.write_str("variant length does not fit the format"),
        }
    }
}

impl core::error::Error for EncodeError {}
