//! Close-frame payloads and the record of how a connection ended.

use core::fmt;

use super::{CloseCode, Error};

/// Who started the close (as h2 records it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// The application asked to close.
    Local,
    /// The peer sent a Close frame or dropped the transport.
    Remote,
    /// This library closed: the peer broke the protocol or a limit, or a timer ran out.
    Library,
}

/// A close reason: at most 123 bytes of UTF-8 (RFC 6455 §5.5.1).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CloseReason(heapless::String<123>);

impl CloseReason {
    /// The longest reason that fits in a Close frame.
    pub const MAX_LEN: usize = 123;

    /// A reason from text; `None` if longer than 123 bytes.
    #[must_use]
    pub fn new(text: &str) -> Option<Self> {
        let mut s = heapless::String::new();
        s.push_str(text).ok()?;
        Some(Self(s))
    }

    /// A reason from text cut at a character boundary to fit.
    #[must_use]
    pub fn truncated(text: &str) -> Self {
        let mut end = text.len().min(Self::MAX_LEN);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self::new(&text[..end]).unwrap_or_default()
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A control-frame payload: at most 125 bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ControlPayload(pub(crate) heapless::Vec<u8, 125>);

impl ControlPayload {
    /// A payload from bytes; `None` if longer than 125.
    #[must_use]
    pub fn new(bytes: &[u8]) -> Option<Self> {
        heapless::Vec::from_slice(bytes).ok().map(Self)
    }

    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ControlPayload({:02x?})", self.as_bytes())
    }
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The code received (Godot's `get_close_code()`): the peer's Close, or its answer to
    /// ours; 1005 if that frame carried none. When nothing was received, the code this side
    /// sent (a close that timed out or whose transport ended unanswered, or a protocol error),
    /// or 1006 if no Close frame went either way ([`godot_code`](Self::godot_code) gives
    /// Godot's −1 for that).
    pub code: CloseCode,
    /// The reason of that Close frame (Godot's `get_close_reason()`), as it arrived: Godot 3
    /// peers end theirs with a NUL byte, which the multiplayer peers remove.
    pub reason: CloseReason,
    /// Who started it.
    pub initiator: Initiator,
    /// For [`Initiator::Library`] (and a reset transport): what went wrong.
    pub error: Option<Error>,
    /// Whether both Close frames were exchanged (Godot's `was_clean_close`).
    pub clean: bool,
}

impl CloseInfo {
    /// The code as Godot's `get_close_code()` returns it: −1 when no Close frame was exchanged
    /// (recorded here as 1006, which never appears on the wire).
    #[must_use]
    pub fn godot_code(&self) -> i32 {
        if self.code == CloseCode::ABNORMAL { -1 } else { i32::from(self.code.0) }
    }
}

/// A parsed Close-frame payload.
pub(crate) struct ClosePayload<'a> {
    pub(crate) code: Option<CloseCode>,
    pub(crate) reason: &'a str,
}

/// Parses a received Close payload (RFC 6455 §5.5.1, §7.4).
pub(crate) fn parse_close(payload: &[u8]) -> Result<ClosePayload<'_>, Error> {
    match payload {
        [] => Ok(ClosePayload { code: None, reason: "" }),
        [_] => Err(Error::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(Error::InvalidCloseCode(code.0));
            }
            let reason = core::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
            Ok(ClosePayload { code: Some(code), reason })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_payload_rules() {
        assert!(matches!(parse_close(&[]), Ok(ClosePayload { code: None, .. })));
        assert_eq!(parse_close(&[3]).err(), Some(Error::InvalidClosePayload));
        assert_eq!(parse_close(&[0x03, 0xed]).err(), Some(Error::InvalidCloseCode(1005)));
        assert_eq!(parse_close(&[0x03, 0xe8, 0xff]).err(), Some(Error::InvalidUtf8));
        let ok = parse_close(b"\x0f\xa0bye\0").unwrap();
        assert_eq!((ok.code, ok.reason), (Some(CloseCode(4000)), "bye\0"));
        for valid in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999] {
            assert!(CloseCode(valid).is_valid_on_wire(), "{valid}");
        }
        for invalid in [0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
        {
            assert!(!CloseCode(invalid).is_valid_on_wire(), "{invalid}");
        }
    }

    #[test]
    fn godot_codes_are_minus_one_without_a_close_frame() {
        let info = |code| CloseInfo {
            code: CloseCode(code),
            reason: CloseReason::default(),
            initiator: Initiator::Remote,
            error: None,
            clean: false,
        };
        assert_eq!(info(1006).godot_code(), -1);
        assert_eq!(info(1005).godot_code(), 1005, "a Close without a code is still a Close");
        assert_eq!(info(4000).godot_code(), 4000);
    }

    #[test]
    fn reasons_are_bounded() {
        assert!(CloseReason::new(&"x".repeat(123)).is_some());
        assert!(CloseReason::new(&"x".repeat(124)).is_none());
        let cut = CloseReason::truncated(&"é".repeat(70));
        assert_eq!(cut.as_str().len(), 122);
        assert!(ControlPayload::new(&[0; 126]).is_none());
    }
}
