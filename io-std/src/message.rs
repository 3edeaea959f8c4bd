//! An owned copy of a received message, for APIs that hand messages out by value.

use multipeer::ws::MessageKind;

/// A whole received message, copied out of the connection's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Text (valid UTF-8, checked by the core) or binary.
    pub kind: MessageKind,
    /// The payload, reassembled from its fragments.
    pub data: Vec<u8>,
}

impl Message {
    /// A text message.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self { kind: MessageKind::Text, data: text.into().into_bytes() }
    }

    /// A binary message.
    #[must_use]
    pub fn binary(data: impl Into<Vec<u8>>) -> Self {
        Self { kind: MessageKind::Binary, data: data.into() }
    }

    /// Whether this is a text message.
    #[must_use]
    pub fn is_text(&self) -> bool {
        self.kind == MessageKind::Text
    }

    /// The payload as text, for a text message.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        // The core validated text messages as UTF-8 while they arrived; this check is cheap
        // insurance and keeps the API free of unchecked conversions.
        if self.is_text() { core::str::from_utf8(&self.data).ok() } else { None }
    }

    /// The payload, consuming the message.
    #[must_use]
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}
