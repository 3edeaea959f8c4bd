//! Write-through (`forward_message_through`, `send_through`): a frame offered to the transport
//! from where its payload lies, the part not taken queued, the wire the same as through the
//! queue whatever the transport takes.

use super::*;
use std::vec;

fn config() -> Config {
    Config {
        max_message_size: 1 << 20,
        outbound_buffer_size: 1 << 20,
        buffer_release_delay: Some(core::time::Duration::from_secs(1)),
        ..Config::GODOT
    }
}

/// A transport that takes at most `limit` bytes of what it is offered, recording them.
fn transport(wire: &mut Vec<u8>, limit: usize) -> impl FnOnce(&[&[u8]]) -> usize + '_ {
    move |parts| {
        let mut taken = 0;
        for part in parts {
            let n = part.len().min(limit - taken);
            wire.extend_from_slice(&part[..n]);
            taken += n;
        }
        taken
    }
}

/// Writes everything queued in pieces of `step` bytes.
fn write_queue<S: Storage, R: MaskKeys>(c: &mut Connection<S, R>, wire: &mut Vec<u8>, step: usize) {
    while let Some(bytes) = c.poll_transmit() {
        let n = bytes.len().min(step);
        wire.extend_from_slice(&bytes[..n]);
        c.consume_transmit(n);
    }
}

#[test]
fn whatever_the_transport_takes_the_rest_follows_and_the_accounting_ends_at_zero() {
    for len in [0usize, 1, 125, 126, 3000, 65_535, 65_536, 70_000] {
        let hlen = match len {
            0..=125 => 2,
            126..=0xffff => 4,
            _ => 10,
        };
        let total = hlen + len;
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let mut takes = vec![0, 1, hlen - 1, hlen, hlen + 1, total / 2, total.saturating_sub(1), total];
        takes.retain(|&t| t <= total);
        for taken in takes {
            let mut s = open_server(config());
            let input = [masked(0x82, &payload), masked(0x81, b"after")].concat();
            assert_eq!(s.handle_input(NOW, &input), input.len());
            let mut wire = Vec::new();
            assert_eq!(
                s.forward_message_through(transport(&mut wire, taken)),
                Ok(Some(MessageKind::Binary)),
                "{len} {taken}"
            );
            assert_eq!(wire.len(), taken);
            // The rest waits in the queue as one message.
            assert_eq!(s.buffered_amount(), total - taken, "{len} {taken}");
            assert_eq!(s.queued_outbound_messages(), usize::from(taken < total), "{len} {taken}");
            assert_eq!(s.available_messages(), 1);
            // Output is queued now (unless all was taken): the next message goes behind it.
            let mut second = Vec::new();
            assert_eq!(
                s.forward_message_through(transport(&mut second, usize::MAX)),
                Ok(Some(MessageKind::Text))
            );
            assert_eq!(second.is_empty(), taken < total, "{len} {taken}");
            wire.extend_from_slice(&second);
            write_queue(&mut s, &mut wire, 999);
            assert_eq!(s.buffered_amount(), 0);
            assert_eq!(s.queued_outbound_messages(), 0);
            assert_eq!(
                parse_frames(&wire),
                [
                    Sent { b0: 0x82, masked: false, payload: payload.clone() },
                    Sent { b0: 0x81, masked: false, payload: b"after".to_vec() },
                ],
                "{len} {taken}"
            );
        }
    }
}

#[test]
fn a_send_goes_straight_from_the_callers_buffer() {
    let mut s = open_server(config());
    let data = vec![5u8; 40_000];
    let mut wire = Vec::new();
    assert_eq!(s.send_through(MessageKind::Binary, &data, transport(&mut wire, usize::MAX)), Ok(()));
    assert_eq!(s.buffered_amount(), 0);
    // Nothing was queued, so no storage was taken for it.
    assert_eq!(s.buffer_footprint(), 0);
    let mut wire2 = Vec::new();
    assert_eq!(s.send_through(MessageKind::Text, "dé".as_bytes(), transport(&mut wire2, 1)), Ok(()));
    wire.extend_from_slice(&wire2);
    write_queue(&mut s, &mut wire, 7);
    assert_eq!(
        parse_frames(&wire),
        [
            Sent { b0: 0x82, masked: false, payload: data },
            Sent { b0: 0x81, masked: false, payload: "dé".as_bytes().to_vec() },
        ]
    );
}

#[test]
fn queued_output_goes_first_and_the_transport_is_not_offered_anything() {
    let mut s = open_server(config());
    s.send(MessageKind::Binary, b"queued first").unwrap();
    let input = masked(0x82, &[3; 5000]);
    assert_eq!(s.handle_input(NOW, &input), input.len());
    let offered = |_: &[&[u8]]| -> usize { panic!("offered while output was queued") };
    assert_eq!(s.forward_message_through(offered), Ok(Some(MessageKind::Binary)));
    assert_eq!(s.send_through(MessageKind::Binary, b"x", offered), Ok(()));
    assert_eq!(
        drain(&mut s),
        [
            Sent { b0: 0x82, masked: false, payload: b"queued first".to_vec() },
            Sent { b0: 0x82, masked: false, payload: vec![3; 5000] },
            Sent { b0: 0x82, masked: false, payload: b"x".to_vec() },
        ]
    );
}

#[test]
fn a_client_masks_so_it_queues_instead() {
    let mut c = open_client(config());
    let offered = |_: &[&[u8]]| -> usize { panic!("a client offered unmasked bytes") };
    assert_eq!(c.send_through(MessageKind::Binary, b"masked", offered), Ok(()));
    assert_eq!(drain(&mut c), [Sent { b0: 0x82, masked: true, payload: b"masked".to_vec() }]);
}

#[test]
fn refused_messages_reach_no_transport_and_stay_queued() {
    let limited = Config { outbound_buffer_size: 100, outbound_queue_size: None, ..config() };
    let mut s = open_server(limited);
    let offered = |_: &[&[u8]]| -> usize { panic!("offered a refused message") };
    assert_eq!(s.send_through(MessageKind::Text, &[0xff], offered), Err(SendError::InvalidUtf8));
    assert_eq!(
        s.send_through(MessageKind::Binary, &[0; 101], offered),
        Err(SendError::TooLarge { max: 100 })
    );
    let input = masked(0x82, &[1; 101]);
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(s.forward_message_through(offered), Err(SendError::TooLarge { max: 100 }));
    assert_eq!(s.available_messages(), 1);
    assert_eq!(s.buffered_amount(), 0);
    s.abort();
    assert_eq!(s.send_through(MessageKind::Binary, b"late", offered), Err(SendError::NotOpen));
}

#[test]
fn fixed_storage_that_cannot_hold_the_frame_is_not_offered_it() {
    let (_, mut s) = open_pair::<FixedStorage<4096, 1024>>(Config {
        outbound_buffer_size: 4096,
        outbound_queue_size: None,
        ..Config::GODOT
    });
    // The frame is within the limits but the storage could not hold it if the transport
    // took only part: it goes nowhere, rather than be cut mid-frame.
    let offered = |_: &[&[u8]]| -> usize { panic!("offered what the queue could not finish") };
    assert!(matches!(s.send_through(MessageKind::Binary, &[2; 2000], offered), Err(SendError::Full { .. })));
    let mut wire = Vec::new();
    assert_eq!(s.send_through(MessageKind::Binary, &[2; 900], transport(&mut wire, 10)), Ok(()));
    write_queue(&mut s, &mut wire, 64);
    assert_eq!(parse_frames(&wire), [Sent { b0: 0x82, masked: false, payload: vec![2; 900] }]);
}

/// Messages of several kinds and sizes, as a client sends them (masked).
fn batch() -> Vec<(u8, Vec<u8>)> {
    [(0x82, 3000), (0x81, 5), (0x82, 0), (0x82, 70_000), (0x81, 126), (0x82, 1)]
        .iter()
        .enumerate()
        .map(|(i, &(b0, len))| (b0, (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect()))
        .collect()
}

#[test]
fn every_message_goes_in_one_write_and_any_cut_leaves_the_rest_queued_in_order() {
    let messages = batch();
    let total: usize = messages
        .iter()
        .map(|(_, p)| {
            p.len()
                + if p.len() < 126 {
                    2
                } else if p.len() < 65_536 {
                    4
                } else {
                    10
                }
        })
        .sum();
    let expected: Vec<Sent> =
        messages.iter().map(|(b0, p)| Sent { b0: *b0, masked: false, payload: p.clone() }).collect();
    let mut cuts: Vec<usize> = (0..=total).step_by(997).collect();
    cuts.extend([1, 2, 3, 3003, 3004, 3006, 3009, total - 1, total]);
    for taken in cuts {
        let mut s = open_server(config());
        let input: Vec<u8> = messages.iter().flat_map(|(b0, p)| masked(*b0, p)).collect();
        assert_eq!(s.handle_input(NOW, &input), input.len());
        let listed: Vec<(u8, Vec<u8>)> = s
            .messages()
            .map(|m| (if m.kind == MessageKind::Text { 0x81 } else { 0x82 }, m.data.to_vec()))
            .collect();
        assert_eq!(listed, messages);
        let mut wire = Vec::new();
        let mut writes = 0;
        let n = s.forward_messages_through(|parts| {
            writes += 1;
            assert_eq!(parts.len(), 2 * messages.len(), "one write for all");
            let mut left = taken;
            for part in parts {
                let step = part.len().min(left);
                wire.extend_from_slice(&part[..step]);
                left -= step;
            }
            taken
        });
        assert_eq!((n, writes), (Ok(messages.len()), 1), "{taken}");
        assert_eq!(s.available_messages(), 0);
        assert_eq!(s.buffered_amount(), total - taken, "{taken}");
        write_queue(&mut s, &mut wire, 4096);
        assert_eq!(s.queued_outbound_messages(), 0);
        assert_eq!(parse_frames(&wire), expected, "{taken}");
    }
}

#[test]
fn more_messages_than_one_write_takes_go_in_several() {
    let mut s = open_server(config());
    let input: Vec<u8> = (0..40u8).flat_map(|i| masked(0x82, &[i; 100])).collect();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    let mut wire = Vec::new();
    let mut writes = Vec::new();
    let n = s.forward_messages_through(|parts| {
        writes.push(parts.len() / 2);
        parts.iter().for_each(|p| wire.extend_from_slice(p));
        parts.iter().map(|p| p.len()).sum()
    });
    assert_eq!(n, Ok(40));
    assert_eq!(writes, [16, 16, 8]);
    assert_eq!(
        parse_frames(&wire),
        (0..40u8).map(|i| Sent { b0: 0x82, masked: false, payload: vec![i; 100] }).collect::<Vec<_>>()
    );
    // Once the transport stops taking, the rest goes through the queue, in order.
    assert_eq!(s.handle_input(NOW, &input), input.len());
    let mut wire = Vec::new();
    let mut offers = 0;
    let n = s.forward_messages_through(|parts| {
        offers += 1;
        wire.extend_from_slice(parts[0]);
        parts[0].len()
    });
    assert_eq!((n, offers), (Ok(40), 1));
    write_queue(&mut s, &mut wire, 333);
    assert_eq!(
        parse_frames(&wire),
        (0..40u8).map(|i| Sent { b0: 0x82, masked: false, payload: vec![i; 100] }).collect::<Vec<_>>()
    );
}

#[test]
fn the_outbound_limits_bound_each_write_and_a_message_that_cannot_go_stays() {
    let limited = Config {
        max_outbound_messages: 2,
        outbound_buffer_size: 1000,
        outbound_queue_size: None,
        ..config()
    };
    let mut s = open_server(limited);
    let input =
        [masked(0x82, &[1; 400]), masked(0x82, &[2; 400]), masked(0x82, &[3; 400]), masked(0x82, &[4; 2000])]
            .concat();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    let mut sizes = Vec::new();
    // A transport that takes everything: two messages per write (the message limit), and the
    // one larger than the outbound bound stays.
    let n = s.forward_messages_through(|parts| {
        sizes.push(parts.len() / 2);
        parts.iter().map(|p| p.len()).sum()
    });
    assert_eq!(n, Ok(3));
    assert_eq!(sizes, [2, 1]);
    assert_eq!(s.available_messages(), 1);
    let offered = |_: &[&[u8]]| -> usize { panic!("offered a message over the bound") };
    assert_eq!(s.forward_messages_through(offered), Err(SendError::TooLarge { max: 1000 }));
    assert_eq!(s.available_messages(), 1);
}

#[test]
fn forward_messages_queues_every_message_received_so_far() {
    let mut s = open_server(config());
    let input: Vec<u8> = (0..5u8).flat_map(|i| masked(0x82, &[i; 10])).collect();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(s.forward_messages(), Ok(5));
    assert_eq!(s.forward_messages(), Ok(0));
    assert_eq!(
        drain(&mut s),
        (0..5u8).map(|i| Sent { b0: 0x82, masked: false, payload: vec![i; 10] }).collect::<Vec<_>>()
    );
}
