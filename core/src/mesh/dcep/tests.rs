//! webrtc.md §4.2 vectors, and round trips.

use alloc::string::ToString;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

fn open(ordered: bool, reliability: Reliability, priority: u16, label: &str, protocol: &str) -> Message {
    Message::Open(Open {
        ordered,
        reliability,
        priority,
        label: label.to_string(),
        protocol: protocol.to_string(),
    })
}

#[test]
fn reference_vectors() {
    let vectors = [
        (
            "03 00 01 00 00 00 00 00 00 08 00 00 72 65 6c 69 61 62 6c 65",
            open(true, Reliability::Reliable, 256, "reliable", ""),
        ),
        (
            "03 02 01 00 00 00 00 01 00 07 00 00 6f 72 64 65 72 65 64",
            open(true, Reliability::MaxPacketLifetime(1), 256, "ordered", ""),
        ),
        (
            "03 82 01 00 00 00 00 01 00 0a 00 00 75 6e 72 65 6c 69 61 62 6c 65",
            open(false, Reliability::MaxPacketLifetime(1), 256, "unreliable", ""),
        ),
        ("03 81 00 00 00 00 00 00 00 00 00 00", open(false, Reliability::MaxRetransmits(0), 0, "", "")),
        (
            "03 80 02 00 00 00 00 00 00 04 00 04 63 68 61 74 6a 73 6f 6e",
            open(false, Reliability::Reliable, 512, "chat", "json"),
        ),
        ("02", Message::Ack),
    ];
    for (bytes, message) in vectors {
        assert_eq!(decode(&hex(bytes)), Ok(message.clone()), "{bytes}");
        assert_eq!(encode(&message), Some(hex(bytes)), "{bytes}");
    }
}

#[test]
fn rejections() {
    assert_eq!(decode(&hex("03 00 00 00 00 00 00 00 00 00 00")), Err(DcepError::Truncated));
    assert_eq!(decode(&hex("03 00 00 00 00 00 00 00 00 05 00 00 61 62")), Err(DcepError::Truncated));
    for t in ["03", "7f", "83"] {
        let bytes = hex(&alloc::format!("03 {t} 00 00 00 00 00 00 00 00 00 00"));
        assert!(matches!(decode(&bytes), Err(DcepError::UnknownChannelType(_))), "{t}");
    }
    assert_eq!(decode(&hex("03 00 00 00 00 00 00 00 00 01 00 00 ff")), Err(DcepError::InvalidUtf8));
    assert_eq!(
        decode(&hex("03 01 00 00 00 01 00 00 00 00 00 00")),
        Err(DcepError::ParameterOutOfRange(65536))
    );
    assert_eq!(decode(&hex("03 00 00 00 00 00 00 00 00 00 00 00 99")), Err(DcepError::TrailingBytes));
    assert_eq!(decode(&hex("02 00")), Err(DcepError::TrailingBytes));
    assert_eq!(decode(&[]), Err(DcepError::Truncated));
    assert_eq!(decode(&[0xff]), Err(DcepError::UnknownMessageType(0xff)));
    // N5: the DTLS server opens odd ids, the client even ones.
    assert!(parity_allows(1, false) && !parity_allows(1, true) && parity_allows(2, true));
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(
        ordered: bool, kind in 0u8..3, parameter: u16, priority: u16,
        label in ".{0,20}", protocol in ".{0,10}",
    ) {
        let reliability = match kind {
            0 => Reliability::Reliable,
            1 => Reliability::MaxRetransmits(parameter),
            _ => Reliability::MaxPacketLifetime(parameter),
        };
        let message = open(ordered, reliability, priority, &label, &protocol);
        prop_assert_eq!(decode(&encode(&message).unwrap()), Ok(message));
    }

    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&bytes);
    }
}
