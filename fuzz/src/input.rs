//! Decoding fuzz bytes into choices, and encoding choices back into bytes for seeds.

/// Reads fuzz input front to back. Past the end it yields zeros and empty slices, so every
/// input, however short, decodes to some run.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether everything has been read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes as a little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A byte-length-prefixed slice: the inverse of [`Output::slice`].
    pub fn slice(&mut self) -> &'a [u8] {
        let n = self.byte();
        self.bytes(n.into())
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }
}

/// Builds fuzz inputs, mirroring [`Input`]; used to write seeds.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// The bytes so far.
    pub bytes: Vec<u8>,
}

impl Output {
    /// Appends one byte.
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.bytes.push(b);
        self
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, n: u16) -> &mut Self {
        self.bytes.extend_from_slice(&n.to_le_bytes());
        self
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// Appends a byte-length-prefixed slice; longer slices are cut at 255 bytes.
    pub fn slice(&mut self, bytes: &[u8]) -> &mut Self {
        let n = bytes.len().min(255);
        self.byte(n as u8).raw(&bytes[..n])
    }
}
