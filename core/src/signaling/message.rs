//! The JSON messages of Godot's `webrtc_signaling` demo protocol.
//!
//! Every message is a text WebSocket message holding one JSON object
//! `{"type": <int>, "id": <int>, "data": "<string>"}`. Only those three members are read (others
//! are ignored, as the demo server does); a member of the wrong type reads as absent. The
//! parser is small, bounded by the message (which the WebSocket layer already limited), and
//! never panics.

use alloc::string::String;
use core::fmt::Write as _;

/// The message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 0: client → server, join lobby `data` ("" creates one; `id` 0 asks for a mesh);
    /// server → client, the lobby joined.
    Join,
    /// 1: server → client, your id (the lobby's host is 1; `data` "true" for a mesh).
    Id,
    /// 2: server → client, a peer joined the lobby.
    PeerConnect,
    /// 3: server → client, a peer left the lobby.
    PeerDisconnect,
    /// 4: an SDP offer, to (client → server) or from (server → client) peer `id`.
    Offer,
    /// 5: an SDP answer, likewise.
    Answer,
    /// 6: an ICE candidate, likewise; `data` is `"\n<mid>\n<index>\n<candidate>"`.
    Candidate,
    /// 7: the host seals the lobby; the server tells everyone and closes it after 10 s.
    Seal,
}

impl MessageType {
    /// The wire number.
    #[must_use]
    pub const fn to_number(self) -> i64 {
        match self {
            Self::Join => 0,
            Self::Id => 1,
            Self::PeerConnect => 2,
            Self::PeerDisconnect => 3,
            Self::Offer => 4,
            Self::Answer => 5,
            Self::Candidate => 6,
            Self::Seal => 7,
        }
    }

    /// The type for a wire number.
    #[must_use]
    pub const fn from_number(n: i64) -> Option<Self> {
        Some(match n {
            0 => Self::Join,
            1 => Self::Id,
            2 => Self::PeerConnect,
            3 => Self::PeerDisconnect,
            4 => Self::Offer,
            5 => Self::Answer,
            6 => Self::Candidate,
            7 => Self::Seal,
            _ => return None,
        })
    }
}

/// One signalling message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What it is.
    pub kind: MessageType,
    /// A peer id (or 0).
    pub id: i64,
    /// The payload.
    pub data: String,
}

/// A message that is not a valid protocol message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidMessage;

impl core::fmt::Display for InvalidMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Invalid message format")
    }
}

impl core::error::Error for InvalidMessage {}

impl Message {
    /// A message.
    #[must_use]
    pub fn new(kind: MessageType, id: i64, data: &str) -> Self {
        Self { kind, id, data: String::from(data) }
    }

    /// The JSON text.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.data.len() + 32);
        let _ = write!(out, "{{\"type\":{},\"id\":{},\"data\":\"", self.kind.to_number(), self.id);
        for c in self.data.chars() {
            let _ = match c {
                '"' => out.write_str("\\\""),
                '\\' => out.write_str("\\\\"),
                '\n' => out.write_str("\\n"),
                '\r' => out.write_str("\\r"),
                '\t' => out.write_str("\\t"),
                c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c)),
                c => out.write_char(c),
            };
        }
        out.push_str("\"}");
        out
    }

    /// Parses the JSON text. A missing or non-integer `type` or `id`, a negative one, or an
    /// unknown type is invalid, as in the demo server; a missing `data` reads as "".
    ///
    /// # Errors
    /// [`InvalidMessage`].
    pub fn decode(text: &str) -> Result<Self, InvalidMessage> {
        let mut p = Parser { s: text.as_bytes(), at: 0, depth: 0 };
        let (mut kind, mut id, mut data) = (None, None, String::new());
        p.ws();
        p.expect(b'{')?;
        p.ws();
        if p.peek() == Some(b'}') {
            p.at += 1;
        } else {
            loop {
                p.ws();
                let key = p.string()?;
                p.ws();
                p.expect(b':')?;
                p.ws();
                match key.as_str() {
                    "type" => kind = p.number_or_skip()?,
                    "id" => id = p.number_or_skip()?,
                    "data" => data = p.string_or_skip()?.unwrap_or_default(),
                    _ => p.skip_value()?,
                }
                p.ws();
                match p.next() {
                    Some(b',') => continue,
                    Some(b'}') => break,
                    _ => return Err(InvalidMessage),
                }
            }
        }
        p.ws();
        if p.at != p.s.len() {
            return Err(InvalidMessage);
        }
        let kind = kind.and_then(MessageType::from_number).ok_or(InvalidMessage)?;
        let id = id.filter(|&i| i >= 0).ok_or(InvalidMessage)?;
        Ok(Self { kind, id, data })
    }
}

/// Nesting allowed in ignored members (deeper is rejected rather than recursed into).
const MAX_DEPTH: usize = 16;

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), InvalidMessage> {
        if self.next() == Some(b) { Ok(()) } else { Err(InvalidMessage) }
    }

    fn string(&mut self) -> Result<String, InvalidMessage> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.at;
            while !matches!(self.peek(), Some(b'"' | b'\\') | None) {
                self.at += 1;
            }
            out.push_str(core::str::from_utf8(&self.s[start..self.at]).map_err(|_| InvalidMessage)?);
            match self.next() {
                Some(b'"') => return Ok(out),
                Some(b'\\') => {
                    let c = match self.next().ok_or(InvalidMessage)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(InvalidMessage),
                    };
                    out.push(c);
                }
                _ => return Err(InvalidMessage),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, InvalidMessage> {
        let digits = self.s.get(self.at..self.at + 4).ok_or(InvalidMessage)?;
        let text = core::str::from_utf8(digits).map_err(|_| InvalidMessage)?;
        self.at += 4;
        u32::from_str_radix(text, 16).map_err(|_| InvalidMessage)
    }

    fn unicode_escape(&mut self) -> Result<char, InvalidMessage> {
        let first = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&first) {
            // A surrogate pair spells one code point.
            if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                return Err(InvalidMessage);
            }
            let second = self.hex4()?;
            if !(0xdc00..0xe000).contains(&second) {
                return Err(InvalidMessage);
            }
            0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
        } else {
            first
        };
        char::from_u32(code).ok_or(InvalidMessage)
    }

    /// A JSON number (RFC 8259 grammar, exponents included) floored to an integer, as the
    /// demo's Node server reads `type` and `id` (`Math.floor` of `JSON.parse`'s double): `7.9`
    /// is 7, `-0.5` is -1, `0e0` is 0, `15e-1` is 1. `None` when the value is another type
    /// (skipped). A number whose floor falls outside `i64` is invalid: no id or type is that
    /// large, and the demo server would not find such a peer or type either.
    fn number_or_skip(&mut self) -> Result<Option<i64>, InvalidMessage> {
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            self.skip_value()?;
            return Ok(None);
        }
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let int_digits = self.digits();
        if int_digits.is_empty() || (int_digits.len() > 1 && int_digits[0] == b'0') {
            return Err(InvalidMessage);
        }
        let mut frac_digits: &[u8] = &[];
        if self.peek() == Some(b'.') {
            self.at += 1;
            frac_digits = self.digits();
            if frac_digits.is_empty() {
                return Err(InvalidMessage);
            }
        }
        let mut exponent: i64 = 0;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            let exp_negative = match self.peek() {
                Some(b'-') => {
                    self.at += 1;
                    true
                }
                Some(b'+') => {
                    self.at += 1;
                    false
                }
                _ => false,
            };
            let exp_digits = self.digits();
            if exp_digits.is_empty() {
                return Err(InvalidMessage);
            }
            // Saturating: any exponent beyond a million digits ends the same way.
            for &d in exp_digits {
                exponent = (exponent * 10 + i64::from(d - b'0')).min(1_000_000);
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        floor_decimal(negative, int_digits, frac_digits, exponent).map(Some).ok_or(InvalidMessage)
    }

    /// The run of ASCII digits at the cursor (possibly empty), consumed.
    fn digits(&mut self) -> &'a [u8] {
        let (s, start) = (self.s, self.at);
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        &s[start..self.at]
    }

    fn string_or_skip(&mut self) -> Result<Option<String>, InvalidMessage> {
        if self.peek() == Some(b'"') {
            return self.string().map(Some);
        }
        self.skip_value().map(|()| None)
    }

    fn skip_value(&mut self) -> Result<(), InvalidMessage> {
        match self.peek().ok_or(InvalidMessage)? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(InvalidMessage);
                }
                let close = if self.next() == Some(b'{') { b'}' } else { b']' };
                self.ws();
                if self.peek() == Some(close) {
                    self.at += 1;
                } else {
                    loop {
                        self.ws();
                        if close == b'}' {
                            self.string()?;
                            self.ws();
                            self.expect(b':')?;
                            self.ws();
                        }
                        self.skip_value()?;
                        self.ws();
                        match self.next() {
                            Some(b',') => continue,
                            Some(c) if c == close => break,
                            _ => return Err(InvalidMessage),
                        }
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            // Only a number may remain: `number_or_skip` skips anything else by calling back
            // here, so any other byte (`{"type":x}`) recursed until the stack overflowed.
            b'-' | b'0'..=b'9' => self.number_or_skip().map(|_| ()),
            _ => Err(InvalidMessage),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), InvalidMessage> {
        if self.s.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(InvalidMessage)
        }
    }
}

/// `floor(±0.<digits> × 10^…)` of the decimal `int.frac × 10^exponent`, if it fits an `i64`.
/// Exact integer arithmetic: core has no `f64::floor`, and a double would round large ids.
fn floor_decimal(negative: bool, int_digits: &[u8], frac_digits: &[u8], exponent: i64) -> Option<i64> {
    // The digits of the mantissa without its point, and where the point falls in them.
    let all = int_digits.iter().chain(frac_digits).copied();
    let point = i64::try_from(int_digits.len()).ok()?.checked_add(exponent)?;
    let mut whole: i64 = 0;
    let mut fraction = false;
    for (at, d) in (0_i64..).zip(all) {
        if at < point {
            whole = whole.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
        } else if d != b'0' {
            fraction = true;
        }
    }
    // Digits the exponent shifts past the written ones are zeros.
    let written = i64::try_from(int_digits.len() + frac_digits.len()).ok()?;
    for _ in written..point {
        if whole == 0 {
            break;
        }
        whole = whole.checked_mul(10)?;
    }
    Some(if !negative {
        whole
    } else if fraction {
        whole.checked_neg()?.checked_sub(1)?
    } else {
        whole.checked_neg()?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_messages_round_trip() {
        for (kind, id, data) in [
            (MessageType::Join, 0, ""),
            (MessageType::Id, 1, "true"),
            (MessageType::Candidate, 1234, "\n0\n0\ncandidate:1 1 UDP 2122 127.0.0.1 5000 typ host"),
            (MessageType::Offer, 5, "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=\"x\"\\"),
        ] {
            let m = Message::new(kind, id, data);
            assert_eq!(Message::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn reads_what_other_encoders_write() {
        let m = Message::decode(
            r#" { "data" : "a\u00e9\ud83d\ude00", "extra": [1, {"x": null}], "id": 7.9, "type": 4 } "#,
        );
        assert_eq!(m, Ok(Message::new(MessageType::Offer, 7, "aé😀")));
        assert_eq!(
            Message::decode(r#"{"type":2,"id":3}"#),
            Ok(Message::new(MessageType::PeerConnect, 3, ""))
        );
        assert_eq!(
            Message::decode(r#"{"type":0,"id":0,"data":5}"#),
            Ok(Message::new(MessageType::Join, 0, ""))
        );
    }

    #[test]
    fn numbers_with_exponents_are_floored_as_the_demo_server_floors_them() {
        for (text, kind, id) in [
            (r#"{"type":0e0,"id":0E+0}"#, MessageType::Join, 0),
            (r#"{"type":4.0e0,"id":1e3}"#, MessageType::Offer, 1000),
            (r#"{"type":45e-1,"id":12345e-2}"#, MessageType::Offer, 123),
            (r#"{"type":0.4e1,"id":-0}"#, MessageType::Offer, 0),
            (r#"{"type":1,"id":9223372036854775807}"#, MessageType::Id, i64::MAX),
            (r#"{"type":1,"id":922337203685477580.7e1}"#, MessageType::Id, i64::MAX),
            (r#"{"type":1,"id":1e-999999999999}"#, MessageType::Id, 0),
            (r#"{"type":1,"id":0e999999999999}"#, MessageType::Id, 0),
            (r#"{"type":1,"id":2.5}"#, MessageType::Id, 2),
        ] {
            assert_eq!(Message::decode(text), Ok(Message::new(kind, id, "")), "{text}");
        }
    }

    #[test]
    fn rejects_what_the_demo_server_rejects() {
        for bad in [
            "",
            "[]",
            r#"{"type":9,"id":0}"#,
            r#"{"type":"0","id":0}"#,
            r#"{"type":0,"id":-1}"#,
            // Math.floor(-0.5) is -1, a negative id.
            r#"{"type":0,"id":-0.5}"#,
            r#"{"type":0,"id":-1e-9}"#,
            // Not JSON numbers.
            r#"{"type":0,"id":01}"#,
            r#"{"type":0,"id":1.}"#,
            r#"{"type":0,"id":.5}"#,
            r#"{"type":0,"id":1e}"#,
            r#"{"type":0,"id":1e+}"#,
            r#"{"type":0,"id":+1}"#,
            r#"{"type":0,"id":1-2}"#,
            // Beyond i64.
            r#"{"type":0,"id":9223372036854775808}"#,
            r#"{"type":0,"id":1e19}"#,
            r#"{"type":0,"id":1e999999999999}"#,
            r#"{"type":0}"#,
            r#"{"type":0,"id":0,}"#,
            r#"{"type":0,"id":0} x"#,
            r#"{"type":0,"id":0,"data":"\x"}"#,
            r#"{"type":0,"id":0,"data":"\ud800"}"#,
            &["{\"a\":", &"[".repeat(100), &"]".repeat(100), ",\"type\":0,\"id\":0}"].concat(),
        ] {
            assert_eq!(Message::decode(bad), Err(InvalidMessage), "{bad}");
        }
    }
}
