//! `forward_message` sending a lone message from where it lies (no payload copy), and falling
//! back to a copy whenever that does not apply, with the same bytes on the wire either way.

use super::*;

/// The length of an unmasked server frame header for a payload of `len` bytes.
fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    }
}

#[test]
fn a_lone_message_is_sent_from_where_it_lies_when_its_header_fits_in_front() {
    let config = Config {
        max_message_size: 1 << 20,
        outbound_buffer_size: 1 << 20,
        // Storage kept while the connection is busy, as the adapters configure it.
        buffer_release_delay: Some(core::time::Duration::from_secs(1)),
        ..Config::GODOT
    };
    for len in [0, 1, 125, 126, 16_384, 65_535, 65_536, 70_000] {
        let mut s = open_server(config);
        let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        let input = masked(0x82, &payload);
        assert_eq!(s.handle_input(NOW, &input), input.len());
        let lies_at = s.peek_message().unwrap().data.as_ptr();
        assert_eq!(s.forward_message(), Ok(Some(MessageKind::Binary)), "{len}");
        assert_eq!(s.available_messages(), 0);
        let wire = s.poll_transmit().unwrap();
        // The queue leaves room in front of a packet for the longest header (10 bytes).
        assert_eq!(wire[header_len(len)..].as_ptr(), lies_at, "{len}");
        assert_eq!(drain(&mut s), [Sent { b0: 0x82, masked: false, payload: payload.clone() }], "{len}");
        // The connection goes on, whether its storage was given back after the first exchange
        // or kept once it is needed again soon.
        for _ in 0..3 {
            assert_eq!(s.handle_input(NOW, &input), input.len());
            let lies_at = s.peek_message().unwrap().data.as_ptr();
            assert_eq!(s.forward_message(), Ok(Some(MessageKind::Binary)), "{len}");
            let wire = s.poll_transmit().unwrap();
            assert_eq!(wire[header_len(len)..].as_ptr(), lies_at, "{len}");
            assert_eq!(drain(&mut s), [Sent { b0: 0x82, masked: false, payload: payload.clone() }], "{len}");
        }
        let next = masked(0x81, b"next");
        assert_eq!(s.handle_input(NOW, &next), next.len());
        assert_eq!(s.forward_message(), Ok(Some(MessageKind::Text)));
        assert_eq!(drain(&mut s), [Sent { b0: 0x81, masked: false, payload: b"next".to_vec() }]);
    }
}

#[test]
fn a_message_forwarded_in_place_and_written_in_parts_keeps_order_with_later_ones() {
    let mut s = open_server(Config::GODOT);
    let first = [9u8; 3000];
    let input = masked(0x82, &first);
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(s.forward_message(), Ok(Some(MessageKind::Binary)));
    // Header and payload wait for the transport.
    assert_eq!(s.buffered_amount(), 4 + 3000);
    let mut wire = Vec::new();
    let part = s.poll_transmit().unwrap()[..1000].to_vec();
    wire.extend_from_slice(&part);
    s.consume_transmit(part.len());
    // A message that arrives while the first is still being written is copied behind it; a
    // Pong queued in between too.
    let input = [masked(0x89, b"p"), masked(0x81, "dé".as_bytes())].concat();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(s.forward_message(), Ok(Some(MessageKind::Text)));
    while let Some(bytes) = s.poll_transmit() {
        let take = bytes.len().min(700);
        wire.extend_from_slice(&bytes[..take]);
        s.consume_transmit(take);
    }
    assert_eq!(s.buffered_amount(), 0);
    assert_eq!(s.queued_outbound_messages(), 0);
    assert_eq!(
        parse_frames(&wire),
        [
            Sent { b0: 0x82, masked: false, payload: first.to_vec() },
            Sent { b0: 0x8a, masked: false, payload: b"p".to_vec() },
            Sent { b0: 0x81, masked: false, payload: "dé".as_bytes().to_vec() },
        ]
    );
}

#[test]
fn inbound_storage_larger_than_the_outbound_bound_is_not_handed_over() {
    let config = Config {
        max_message_size: 64 << 10,
        outbound_buffer_size: 100,
        outbound_queue_size: None,
        max_outbound_messages: 1,
        buffer_release_delay: Some(core::time::Duration::from_secs(1)),
        ..Config::GODOT
    };
    let mut s = open_server(config);
    // Large messages grow the inbound storage well past what the outbound side may hold
    // (the second time it is kept: the connection needed it again soon).
    let big = masked(0x82, &[1; 40_000]);
    for _ in 0..2 {
        assert_eq!(s.handle_input(NOW, &big), big.len());
        assert!(s.pop_message());
    }
    let small = masked(0x82, b"small");
    assert_eq!(s.handle_input(NOW, &small), small.len());
    let lies_at = s.peek_message().unwrap().data.as_ptr();
    assert_eq!(s.forward_message(), Ok(Some(MessageKind::Binary)));
    assert_ne!(s.poll_transmit().unwrap()[2..].as_ptr(), lies_at);
    assert!(s.buffer_footprint() >= 40_000);
    assert_eq!(drain(&mut s), [Sent { b0: 0x82, masked: false, payload: b"small".to_vec() }]);
}

#[test]
fn fixed_storage_copies_what_it_forwards() {
    let (_, mut s) = open_pair::<crate::buffer::FixedStorage<4096, 4096>>(Config::GODOT);
    let input = masked(0x82, b"fixed");
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(s.forward_message(), Ok(Some(MessageKind::Binary)));
    assert_eq!(drain(&mut s), [Sent { b0: 0x82, masked: false, payload: b"fixed".to_vec() }]);
}
