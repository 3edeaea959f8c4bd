//! Property tests of the RFC 6455 §5.2 frame codec: every opcode, every length class, FIN and
//! RSV bits, masked and unmasked, checked against a reference encoder written from the RFC.

use multipeer::ws::OpCode;
use multipeer::ws::frame::{FrameHeader, MAX_HEADER_LEN};
use multipeer::ws::mask::{apply_mask, copy_masked};
use proptest::prelude::*;

const OPCODES: [OpCode; 6] =
    [OpCode::Continuation, OpCode::Text, OpCode::Binary, OpCode::Close, OpCode::Ping, OpCode::Pong];

fn opcode() -> impl Strategy<Value = OpCode> {
    proptest::sample::select(&OPCODES[..])
}

/// A payload length from each class: 7-bit, 16-bit and 64-bit (up to the largest legal).
fn header_len() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..=125, 126u64..=65535, 65536u64..=(u64::MAX >> 1), Just(u64::MAX >> 1)]
}

fn header() -> impl Strategy<Value = FrameHeader> {
    (any::<bool>(), 0u8..8, opcode(), any::<Option<[u8; 4]>>(), header_len())
        .prop_map(|(fin, rsv, opcode, mask, payload_len)| FrameHeader { fin, rsv, opcode, mask, payload_len })
}

/// RFC 6455 §5.2 written out: the shortest length form, then the key.
fn reference_encode(h: &FrameHeader) -> Vec<u8> {
    let mut out = vec![u8::from(h.fin) << 7 | h.rsv << 4 | h.opcode.bits()];
    let mask_bit = if h.mask.is_some() { 0x80 } else { 0 };
    match h.payload_len {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.extend(h.mask.iter().flatten());
    out
}

proptest! {
    #[test]
    fn header_encodes_as_the_rfc_says_and_parses_back(h in header()) {
        let (bytes, len) = h.encode();
        prop_assert!(len <= MAX_HEADER_LEN);
        prop_assert_eq!(&bytes[..len], &reference_encode(&h)[..]);
        prop_assert_eq!(h.encoded_len(), len);
        prop_assert_eq!(FrameHeader::parse(&bytes[..len]), Ok(Some((h, len))));
        for k in 0..len {
            prop_assert_eq!(FrameHeader::parse(&bytes[..k]), Ok(None), "prefix of {}", k);
        }
    }

    /// Bytes after the header (the payload, the next frame) never change what is parsed.
    #[test]
    fn trailing_bytes_are_not_the_header(h in header(), tail in proptest::collection::vec(any::<u8>(), 0..20)) {
        let mut bytes = reference_encode(&h);
        let len = bytes.len();
        bytes.extend_from_slice(&tail);
        prop_assert_eq!(FrameHeader::parse(&bytes), Ok(Some((h, len))));
    }

    /// Non-minimal length forms (a 16- or 64-bit field holding a short length) are read
    /// as the length they hold.
    #[test]
    fn long_length_forms_parse(op in opcode(), len in 0u16..=0xffff, wide: bool, mask: Option<[u8; 4]>) {
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        let mut bytes = vec![0x80 | op.bits()];
        if wide {
            bytes.push(mask_bit | 127);
            bytes.extend_from_slice(&u64::from(len).to_be_bytes());
        } else {
            bytes.push(mask_bit | 126);
            bytes.extend_from_slice(&len.to_be_bytes());
        }
        bytes.extend(mask.iter().flatten());
        let expected = FrameHeader { fin: true, rsv: 0, opcode: op, mask, payload_len: u64::from(len) };
        prop_assert_eq!(FrameHeader::parse(&bytes), Ok(Some((expected, bytes.len()))));
    }
}

/// A payload length from each class, kept modest so whole frames stay cheap.
fn payload_len() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..=125, 126usize..=1024, 65530usize..=65535, 65536usize..=65600]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A whole frame, payload masked with the library's word-wise masking, decodes back to
    /// the header and payload that went in; the masking agrees with byte-by-byte XOR.
    #[test]
    fn whole_frame_round_trip(
        fin: bool,
        rsv in 0u8..8,
        op in opcode(),
        mask: Option<[u8; 4]>,
        len in payload_len(),
        seed: u8,
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let header = FrameHeader { fin, rsv, opcode: op, mask, payload_len: len as u64 };
        let (head, hlen) = header.encode();
        let mut frame = head[..hlen].to_vec();
        let start = frame.len();
        frame.resize(start + len, 0);
        match mask {
            Some(key) => copy_masked(&mut frame[start..], &payload, key, 0),
            None => frame[start..].copy_from_slice(&payload),
        }
        if let Some(key) = mask {
            let naive: Vec<u8> = payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
            prop_assert!(frame[start..] == naive[..], "word-wise masking differs from XOR");
        }

        let (parsed, used) = FrameHeader::parse(&frame).unwrap().unwrap();
        prop_assert_eq!((parsed, used), (header, hlen));
        let mut body = frame[used..used + parsed.payload_len as usize].to_vec();
        if let Some(key) = parsed.mask {
            // Unmask in two pieces, as a reader does when the payload arrives split.
            let cut = len / 3;
            let (a, b) = body.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
        }
        prop_assert!(body == payload, "payload changed in the round trip");
    }
}

#[test]
fn reserved_opcodes_and_oversized_lengths_are_refused() {
    for op in (3..=7).chain(0xb..=0xf) {
        assert!(FrameHeader::parse(&[0x80 | op, 0]).is_err(), "opcode {op:#x}");
    }
    let mut high = vec![0x82, 127];
    high.extend_from_slice(&(1u64 << 63).to_be_bytes());
    assert!(FrameHeader::parse(&high).is_err());
}
