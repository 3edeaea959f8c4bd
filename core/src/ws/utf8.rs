//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! RFC 6455 §8.1: an endpoint receiving invalid UTF-8 in a text message must fail the connection.
//! Validating each piece as it arrives fails as soon as the bytes can no longer be UTF-8, even in
//! the middle of a frame (Autobahn 6.4.x "fail fast"), and costs no buffering beyond the up to
//! three bytes of a code point split between pieces.

/// The bytes seen so far are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// State of a UTF-8 validation that spans several pieces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// Leading bytes of a code point that the previous piece ended in.
    pending: [u8; 4],
    pending_len: u8,
}

/// Length of the code point that starts with `first`, from its lead byte (0 if not a lead byte).
fn sequence_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 0,
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    #[must_use]
    pub const fn new() -> Self {
        Self { pending: [0; 4], pending_len: 0 }
    }

    /// Validates the next piece.
    ///
    /// # Errors
    /// [`InvalidUtf8`] as soon as the bytes so far cannot start any valid UTF-8 text.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            let have = usize::from(self.pending_len);
            let want = sequence_len(self.pending[0]);
            let take = (want - have).min(piece.len());
            let mut seq = self.pending;
            seq[have..have + take].copy_from_slice(&piece[..take]);
            match core::str::from_utf8(&seq[..have + take]) {
                Ok(_) => {
                    self.pending_len = 0;
                    piece = &piece[take..];
                }
                Err(e) if e.error_len().is_none() => {
                    self.pending = seq;
                    self.pending_len = (have + take) as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
        }
        match core::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let rest = &piece[e.valid_up_to()..];
                self.pending[..rest.len()].copy_from_slice(rest);
                self.pending_len = rest.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Whether the text ends on a code point boundary (required at the end of a message).
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(bytes: &[u8], at: usize) -> Result<bool, InvalidUtf8> {
        let mut v = Utf8Validator::new();
        v.feed(&bytes[..at])?;
        v.feed(&bytes[at..])?;
        Ok(v.is_complete())
    }

    #[test]
    fn every_split_agrees_with_the_standard_library() {
        let samples: &[&[u8]] = &[
            "κόσμε".as_bytes(),
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            b"\xf0\x9f\x98\x80 emoji",
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", // surrogate
            b"\xf4\x90\x80\x80",                                               // > U+10FFFF
            b"\xc0\xaf",                                                       // overlong
            b"\xe0\x80",                                                       // truncated overlong
            b"abc\xf0\x9f\x98",                                                // incomplete end
        ];
        for s in samples {
            let expect = core::str::from_utf8(s);
            for at in 0..=s.len() {
                let got = feed_split(s, at);
                match expect {
                    Ok(_) => assert_eq!(got, Ok(true), "{s:?} at {at}"),
                    Err(e) if e.error_len().is_none() => assert_eq!(got, Ok(false)),
                    Err(_) => assert_eq!(got, Err(InvalidUtf8), "{s:?} at {at}"),
                }
            }
        }
    }

    #[test]
    fn fails_fast_inside_a_code_point() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn byte_by_byte() {
        let s = "Hello-µ@ßöäüàá-UTF-8!! 😀".as_bytes();
        let mut v = Utf8Validator::new();
        for b in s {
            v.feed(core::slice::from_ref(b)).unwrap();
        }
        assert!(v.is_complete());
    }
}
