//! RFC 6455 §5.7 examples and header edge cases, parsed and encoded.

use std::string::ToString;
use std::vec::Vec;

use super::*;
use crate::ws::mask::apply_mask;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

struct Example {
    name: &'static str,
    /// The whole frame as it appears on the wire.
    wire: Vec<u8>,
    header: FrameHeader,
    /// The unmasked payload.
    payload: Vec<u8>,
}

fn header(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>, payload_len: u64) -> FrameHeader {
    FrameHeader { fin, rsv: 0, opcode, mask, payload_len }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Every example of RFC 6455 §5.7, byte for byte.
fn rfc_examples() -> Vec<Example> {
    let hello = b"Hello".to_vec();
    let masked_hello: &[u8] = &[0x7f, 0x9f, 0x4d, 0x51, 0x58];
    let bin256: Vec<u8> = (0..=255).collect();
    let bin64k: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
    std::vec![
        Example {
            name: "single-frame unmasked text",
            wire: cat(&[&[0x81, 0x05], b"Hello"]),
            header: header(true, OpCode::Text, None, 5),
            payload: hello.clone(),
        },
        Example {
            name: "single-frame masked text",
            wire: cat(&[&[0x81, 0x85], &KEY, masked_hello]),
            header: header(true, OpCode::Text, Some(KEY), 5),
            payload: hello.clone(),
        },
        Example {
            name: "fragmented unmasked text, first",
            wire: cat(&[&[0x01, 0x03], b"Hel"]),
            header: header(false, OpCode::Text, None, 3),
            payload: b"Hel".to_vec(),
        },
        Example {
            name: "fragmented unmasked text, last",
            wire: cat(&[&[0x80, 0x02], b"lo"]),
            header: header(true, OpCode::Continuation, None, 2),
            payload: b"lo".to_vec(),
        },
        Example {
            name: "unmasked ping",
            wire: cat(&[&[0x89, 0x05], b"Hello"]),
            header: header(true, OpCode::Ping, None, 5),
            payload: hello.clone(),
        },
        Example {
            name: "masked pong",
            wire: cat(&[&[0x8a, 0x85], &KEY, masked_hello]),
            header: header(true, OpCode::Pong, Some(KEY), 5),
            payload: hello,
        },
        Example {
            name: "256 bytes binary, 16-bit length",
            wire: cat(&[&[0x82, 0x7e, 0x01, 0x00], &bin256]),
            header: header(true, OpCode::Binary, None, 256),
            payload: bin256,
        },
        Example {
            name: "64 KiB binary, 64-bit length",
            wire: cat(&[&[0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00], &bin64k]),
            header: header(true, OpCode::Binary, None, 65536),
            payload: bin64k,
        },
    ]
}

#[test]
fn rfc6455_examples_parse() {
    for ex in rfc_examples() {
        let (parsed, len) = FrameHeader::parse(&ex.wire).unwrap().unwrap();
        assert_eq!(parsed, ex.header, "{}", ex.name);
        assert_eq!(len, parsed.encoded_len(), "{}", ex.name);
        let mut payload = ex.wire[len..].to_vec();
        assert_eq!(payload.len() as u64, parsed.payload_len, "{}", ex.name);
        if let Some(key) = parsed.mask {
            apply_mask(&mut payload, key, 0);
        }
        assert_eq!(payload, ex.payload, "{}", ex.name);
    }
}

#[test]
fn rfc6455_examples_encode() {
    for ex in rfc_examples() {
        let (bytes, len) = ex.header.encode();
        assert_eq!(len, ex.header.encoded_len(), "{}", ex.name);
        let mut payload = ex.payload.clone();
        if let Some(key) = ex.header.mask {
            apply_mask(&mut payload, key, 0);
        }
        assert_eq!(cat(&[&bytes[..len], &payload]), ex.wire, "{}", ex.name);
    }
}

#[test]
fn every_prefix_of_a_header_asks_for_more() {
    for ex in rfc_examples() {
        let len = ex.header.encoded_len();
        for cut in 0..len {
            assert_eq!(FrameHeader::parse(&ex.wire[..cut]), Ok(None), "{} cut at {cut}", ex.name);
        }
    }
    // The longest form: 64-bit length and a mask.
    let h = header(true, OpCode::Binary, Some(KEY), 1 << 40);
    let (bytes, len) = h.encode();
    assert_eq!(len, MAX_HEADER_LEN);
    for cut in 0..len {
        assert_eq!(FrameHeader::parse(&bytes[..cut]), Ok(None), "cut at {cut}");
    }
    assert_eq!(FrameHeader::parse(&bytes[..len]), Ok(Some((h, MAX_HEADER_LEN))));
}

#[test]
fn length_forms_switch_at_their_boundaries() {
    // (payload length, header length unmasked, second byte)
    let table: &[(u64, usize, u8)] = &[
        (0, 2, 0),
        (125, 2, 125),
        (126, 4, 126),
        (0xffff, 4, 126),
        (0x1_0000, 10, 127),
        (u64::MAX >> 1, 10, 127),
    ];
    for &(payload_len, len, b1) in table {
        for mask in [None, Some(KEY)] {
            let h = header(true, OpCode::Binary, mask, payload_len);
            let (bytes, n) = h.encode();
            let extra = if mask.is_some() { 4 } else { 0 };
            assert_eq!((n, h.encoded_len()), (len + extra, len + extra), "{payload_len}");
            assert_eq!(bytes[1], b1 | if mask.is_some() { 0x80 } else { 0 }, "{payload_len}");
            assert_eq!(FrameHeader::parse(&bytes[..n]), Ok(Some((h, n))), "{payload_len}");
        }
    }
}

#[test]
fn header_bits_are_read_independently() {
    // (first byte, fin, rsv, opcode)
    let table: &[(u8, bool, u8, OpCode)] = &[
        (0x00, false, 0, OpCode::Continuation),
        (0x80, true, 0, OpCode::Continuation),
        (0xc1, true, 0b100, OpCode::Text),
        (0xa2, true, 0b010, OpCode::Binary),
        (0x98, true, 0b001, OpCode::Close),
        (0x79, false, 0b111, OpCode::Ping),
        (0x8a, true, 0, OpCode::Pong),
    ];
    for &(b0, fin, rsv, opcode) in table {
        let (h, n) = FrameHeader::parse(&[b0, 0]).unwrap().unwrap();
        assert_eq!((h.fin, h.rsv, h.opcode, h.mask, h.payload_len, n), (fin, rsv, opcode, None, 0, 2));
        assert_eq!(h.encode().0[0], b0, "{b0:#04x} round trip");
    }
}

#[test]
fn reserved_opcodes_are_refused() {
    for bits in (0x3..=0x7).chain(0xb..=0xf) {
        assert_eq!(OpCode::from_bits(bits), None);
        assert_eq!(FrameHeader::parse(&[0x80 | bits, 0]), Err(FrameError::ReservedOpcode(bits)));
        // The opcode is known from the first byte: refused before the rest of the header.
        assert_eq!(FrameHeader::parse(&[0x80 | bits, 0xff]), Err(FrameError::ReservedOpcode(bits)));
    }
    for op in [OpCode::Continuation, OpCode::Text, OpCode::Binary, OpCode::Close, OpCode::Ping, OpCode::Pong]
    {
        assert_eq!(OpCode::from_bits(op.bits()), Some(op));
        assert_eq!(op.is_control(), op.bits() >= 8, "{op:?}");
    }
}

#[test]
fn a_64_bit_length_with_the_high_bit_is_refused() {
    let mut wire = std::vec![0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(FrameHeader::parse(&wire), Err(FrameError::LengthOverflow));
    wire[2] = 0x7f;
    let (h, n) = FrameHeader::parse(&wire).unwrap().unwrap();
    assert_eq!((h.payload_len, n), (0x7f00_0000_0000_0000, 10));
}

#[test]
fn non_minimal_lengths_are_read_as_written() {
    // RFC 6455 §5.2 asks senders for the minimal form; a reader gains nothing by refusing
    // others, and wslay accepts them too.
    assert_eq!(FrameHeader::parse(&[0x82, 0x7e, 0x00, 0x05]).unwrap().unwrap().0.payload_len, 5);
    let wire = [0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0x05];
    assert_eq!(FrameHeader::parse(&wire).unwrap().unwrap().0.payload_len, 5);
}

#[test]
fn close_codes_print_as_numbers() {
    assert_eq!(std::format!("{} {:?}", CloseCode::NORMAL, CloseCode(4000)), "1000 4000");
    assert_eq!(FrameError::ReservedOpcode(3).to_string(), "reserved opcode 0x3");
}
