//! Unit tests of the connection machine, driven in memory with hand-built frames.
//!
//! `errors` covers every protocol error and its close code, `close` the closing handshake,
//! `limits` back-pressure and size limits, `timers` the handshake timeout, close timeout and
//! keepalive. This file covers messages, control frames in between, events and their order.

mod close;
#[cfg(feature = "deflate")]
mod deflate;
mod errors;
mod forward;
mod limits;
mod through;
mod timers;

use std::vec::Vec;

use super::*;
use crate::buffer::FixedStorage;
use crate::queue::ReadError;
use crate::ws::close::Initiator;
use crate::ws::tests::{
    Heap, Sent, client, closed, drain, events, masked, open_client, open_pair, open_server,
};
use crate::ws::tests::{parse_frames, pump, unmasked};
use crate::ws::{Error, Event, SendError};

const NOW: Instant = Instant::ZERO;

fn text(data: &[u8]) -> Option<(MessageKind, Vec<u8>)> {
    Some((MessageKind::Text, data.to_vec()))
}

fn binary(data: &[u8]) -> Option<(MessageKind, Vec<u8>)> {
    Some((MessageKind::Binary, data.to_vec()))
}

/// Pops every queued message.
fn messages<S: Storage, R: MaskKeys>(c: &mut Connection<S, R>) -> Vec<(MessageKind, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(m) = c.peek_message() {
        out.push((m.kind, m.data.to_vec()));
        assert!(c.pop_message());
    }
    out
}

#[test]
fn handshake_and_messages_both_ways() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    c.send_text("hello").unwrap();
    s.send_binary(&[1, 2, 3]).unwrap();
    pump(NOW, &mut c, &mut s);
    assert_eq!(s.peek_message(), Some(Message { kind: MessageKind::Text, data: b"hello" }));
    assert_eq!(c.peek_message(), Some(Message { kind: MessageKind::Binary, data: &[1, 2, 3] }));
    assert!(s.pop_message() && c.pop_message());
    assert_eq!(s.peek_message(), None);
    assert!(!s.pop_message());
}

#[test]
fn fixed_storage_works_without_alloc() {
    let (mut c, mut s) = open_pair::<FixedStorage<8192, 8192>>(Config::GODOT);
    c.send_binary(&[9; 4000]).unwrap();
    pump(NOW, &mut c, &mut s);
    assert_eq!(s.peek_message().unwrap().data, &[9; 4000][..]);
}

#[test]
fn frames_are_masked_by_clients_only() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    c.send_binary(b"abc").unwrap();
    s.send_binary(b"abc").unwrap();
    let from_client = drain(&mut c);
    let from_server = drain(&mut s);
    assert_eq!(from_client, [Sent { b0: 0x82, masked: true, payload: b"abc".to_vec() }]);
    assert_eq!(from_server, [Sent { b0: 0x82, masked: false, payload: b"abc".to_vec() }]);
    // Each client frame gets a fresh key.
    c.send_binary(b"abc").unwrap();
    c.send_binary(b"abc").unwrap();
    let wire = c.poll_transmit().unwrap();
    assert_ne!(wire[2..6], wire[11..15]);
}

#[test]
fn send_checks_text_and_state() {
    let (mut c, _s) = open_pair::<Heap>(Config::GODOT);
    assert_eq!(c.send(MessageKind::Text, b"\xff"), Err(SendError::InvalidUtf8));
    c.send(MessageKind::Text, "é".as_bytes()).unwrap();
    assert_eq!(drain(&mut c), [Sent { b0: 0x81, masked: true, payload: "é".as_bytes().to_vec() }]);
    let mut fresh = client::<Heap>(NOW, Config::GODOT);
    assert_eq!(fresh.send_binary(b"x"), Err(SendError::NotOpen));
    assert_eq!(fresh.ping(b""), Err(SendError::NotOpen));
    assert!(!fresh.can_send(0));
}

#[test]
fn any_chunking_gives_the_same_messages() {
    let mut stream = Vec::new();
    stream.extend(masked(0x81, b"Hello"));
    stream.extend(masked(0x02, &[1; 200]));
    stream.extend(masked(0x89, b"ping"));
    stream.extend(masked(0x80, &[2; 800]));
    stream.extend(masked(0x82, &[]));
    stream.extend(masked(0x01, "h\u{e9}".as_bytes()));
    stream.extend(masked(0x80, "\u{20ac}".as_bytes()));
    let expected = [
        text(b"Hello").unwrap(),
        binary(&[[1u8; 200].as_slice(), &[2; 800]].concat()).unwrap(),
        binary(&[]).unwrap(),
        text("h\u{e9}\u{20ac}".as_bytes()).unwrap(),
    ];
    for chunk in [stream.len(), 1, 2, 3, 7, 13, 125, 1000] {
        let mut s = open_server(Config::GODOT);
        for part in stream.chunks(chunk) {
            assert_eq!(s.handle_input(NOW, part), part.len(), "chunks of {chunk}");
        }
        assert_eq!(messages(&mut s), expected, "chunks of {chunk}");
        assert_eq!(drain(&mut s), [Sent { b0: 0x8a, masked: false, payload: b"ping".to_vec() }]);
        assert_eq!(events(&mut s), []);
    }
}

#[test]
fn control_frames_inside_a_fragmented_message() {
    let mut s = open_server(Config::GODOT);
    let input = [
        masked(0x01, b"Hel"),
        masked(0x89, b"a"),
        masked(0x00, b""),
        masked(0x8a, b"b"),
        masked(0x80, b"lo"),
    ]
    .concat();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(messages(&mut s), [text(b"Hello").unwrap()]);
    assert_eq!(drain(&mut s), [Sent { b0: 0x8a, masked: false, payload: b"a".to_vec() }]);
    assert_eq!(events(&mut s), [Event::Pong(ControlPayload::new(b"b").unwrap())]);
}

#[test]
fn a_close_inside_a_fragmented_message_drops_the_part() {
    let mut s = open_server(Config::GODOT);
    let input = [masked(0x82, b"whole"), masked(0x02, b"part"), masked(0x88, &[0x03, 0xe8])].concat();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(closed(&mut s).code, CloseCode::NORMAL);
    assert_eq!(messages(&mut s), [binary(b"whole").unwrap()], "complete messages stay readable");
}

#[test]
fn empty_messages() {
    let mut s = open_server(Config::GODOT);
    let input =
        [masked(0x81, b""), masked(0x82, b""), masked(0x02, b""), masked(0x00, b""), masked(0x80, b"")]
            .concat();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(messages(&mut s), [text(b"").unwrap(), binary(b"").unwrap(), binary(b"").unwrap()]);
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    c.send_text("").unwrap();
    s.send_binary(&[]).unwrap();
    pump(NOW, &mut c, &mut s);
    assert_eq!(
        (messages(&mut s), messages(&mut c)),
        (std::vec![text(b"").unwrap()], std::vec![binary(b"").unwrap()])
    );
}

#[test]
fn recv_copies_and_keeps_what_does_not_fit() {
    let mut s = open_server(Config::GODOT);
    let input = [masked(0x81, b"four"), masked(0x82, b"")].concat();
    s.handle_input(NOW, &input);
    let mut small = [0u8; 3];
    assert_eq!(s.recv(&mut small), Err(ReadError::TooSmall { needed: 4 }));
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(&mut buf), Ok((MessageKind::Text, 4)));
    assert_eq!(&buf[..4], b"four");
    assert_eq!(s.recv(&mut buf), Ok((MessageKind::Binary, 0)));
    assert_eq!(s.recv(&mut buf), Err(ReadError::Empty));
}

#[test]
fn automatic_pong_from_each_side() {
    let mut s = open_server(Config::GODOT);
    s.handle_input(NOW, &masked(0x89, &[7; 125]));
    assert_eq!(drain(&mut s), [Sent { b0: 0x8a, masked: false, payload: std::vec![7; 125] }]);
    let mut c = open_client(Config::GODOT);
    c.handle_input(NOW, &unmasked(0x89, b"hi"));
    assert_eq!(drain(&mut c), [Sent { b0: 0x8a, masked: true, payload: b"hi".to_vec() }]);
}

#[test]
fn ping_and_pong_event() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    assert_eq!(c.ping(&[0; 126]), Err(SendError::ControlTooLong));
    c.ping(b"rtt").unwrap();
    pump(NOW, &mut c, &mut s);
    assert_eq!(events(&mut c), [Event::Pong(ControlPayload::new(b"rtt").unwrap())]);
    assert_eq!(events(&mut s), []);
    // Between two polls only the latest pong is kept.
    c.handle_input(NOW, &[unmasked(0x8a, b"1"), unmasked(0x8a, b"2")].concat());
    assert_eq!(events(&mut c), [Event::Pong(ControlPayload::new(b"2").unwrap())]);
}

#[test]
fn events_come_in_order_and_end_once() {
    let now = NOW;
    let mut c = client::<Heap>(now, Config::GODOT);
    let mut s = Connection::<Heap>::server(now, Config::GODOT);
    pump(now, &mut c, &mut s);
    s.accept(now, None, &[]).unwrap();
    // Request, Open, a pong and a close all pending on the server before it is polled.
    pump(now, &mut c, &mut s);
    s.handle_input(now, &[masked(0x8a, b"p"), masked(0x88, &[0x03, 0xe8])].concat());
    let evs = events(&mut s);
    assert!(
        matches!(
            evs.as_slice(),
            [
                Event::Request,
                Event::Open,
                Event::Pong(_),
                Event::Closed(CloseInfo { initiator: Initiator::Remote, .. })
            ]
        ),
        "{evs:?}"
    );
    // Nothing after the terminal event, whatever happens next.
    s.handle_eof(now);
    s.handle_timeout(Instant::from_secs(1000));
    s.abort();
    assert_eq!(s.close(now, CloseCode::NORMAL, ""), Ok(()));
    assert_eq!(s.handle_input(now, &masked(0x88, &[])), 2 + 4);
    assert_eq!(events(&mut s), []);
    assert_eq!(c.poll_event(), Some(Event::Open));
}

#[test]
fn input_after_close_is_discarded() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    c.close(NOW, CloseCode::NORMAL, "").unwrap();
    pump(NOW, &mut c, &mut s);
    let _ = (closed(&mut c), closed(&mut s));
    let later = [masked(0x82, b"late"), masked(0x89, b"p"), masked(0x88, &[])].concat();
    assert_eq!(s.handle_input(NOW, &later), later.len());
    let later = [unmasked(0x82, b"late"), unmasked(0x89, b"p")].concat();
    assert_eq!(c.handle_input(NOW, &later), later.len());
    for (queued, sent, evs) in [
        (s.available_messages(), s.poll_transmit().is_some(), events(&mut s)),
        (c.available_messages(), c.poll_transmit().is_some(), events(&mut c)),
    ] {
        assert_eq!((queued, sent, evs), (0, false, std::vec![]));
    }
    assert_eq!(c.send_binary(b"x"), Err(SendError::NotOpen));
    assert_eq!(c.ping(b""), Err(SendError::NotOpen));
}

#[test]
fn abort_ends_at_once() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    c.send_binary(b"unsent").unwrap();
    c.abort();
    assert_eq!((c.poll_transmit(), c.is_finished(), c.state()), (None, true, State::Closed));
    let info = closed(&mut c);
    assert_eq!(
        (info.code, info.initiator, info.error, info.clean),
        (CloseCode::ABNORMAL, Initiator::Local, None, false)
    );
    assert_eq!(c.poll_timeout(), None);
    // The server learns of it from the transport.
    s.handle_eof(NOW);
    let info = closed(&mut s);
    assert_eq!(
        (info.code, info.initiator, info.error),
        (CloseCode::ABNORMAL, Initiator::Remote, Some(Error::ConnectionReset))
    );
    assert!(s.is_finished());

    // While connecting, abort fails the handshake instead.
    let mut c = client::<Heap>(NOW, Config::GODOT);
    c.abort();
    assert_eq!(events(&mut c), [Event::HandshakeFailed(HandshakeError::ConnectionClosed)]);
    assert_eq!(c.poll_transmit(), None, "the request is not sent");
}

#[test]
fn eof_during_the_handshake() {
    let mut c = client::<Heap>(NOW, Config::GODOT);
    c.handle_eof(NOW);
    assert_eq!(events(&mut c), [Event::HandshakeFailed(HandshakeError::ConnectionClosed)]);
    assert!(c.is_finished() && c.poll_transmit().is_none());
    let mut s = Connection::<Heap>::server(NOW, Config::GODOT);
    s.handle_input(NOW, b"GET / HTTP/1.1\r\n");
    s.handle_eof(NOW);
    assert_eq!(events(&mut s), [Event::HandshakeFailed(HandshakeError::ConnectionClosed)]);
}

#[test]
fn response_and_first_frames_in_one_read() {
    let mut c = client::<Heap>(NOW, Config::GODOT);
    let request = c.poll_transmit().unwrap().to_vec();
    c.consume_transmit(request.len());
    let mut s = Connection::<Heap>::server(NOW, Config::GODOT);
    s.handle_input(NOW, &request);
    s.accept(NOW, None, &[]).unwrap();
    s.send_text("first").unwrap();
    s.ping(b"p").unwrap();
    let wire = s.poll_transmit().unwrap().to_vec();
    for chunk in [wire.len(), 1, 5] {
        let mut c2 = client::<Heap>(NOW, Config::GODOT);
        c2.consume_transmit(request.len());
        for part in wire.chunks(chunk) {
            assert_eq!(c2.handle_input(NOW, part), part.len());
        }
        assert_eq!(events(&mut c2), [Event::Open]);
        assert_eq!(messages(&mut c2), [text(b"first").unwrap()]);
        assert_eq!(drain(&mut c2), [Sent { b0: 0x8a, masked: true, payload: b"p".to_vec() }]);
    }
}

#[test]
fn forward_message_sends_back_each_message_with_its_kind() {
    let mut s = open_server(Config::GODOT);
    let input = [masked(0x81, "héllo".as_bytes()), masked(0x82, &[7; 300]), masked(0x82, b"")].concat();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(s.forward_message(), Ok(Some(MessageKind::Text)));
    assert_eq!(s.forward_message(), Ok(Some(MessageKind::Binary)));
    assert_eq!(s.forward_message(), Ok(Some(MessageKind::Binary)));
    assert_eq!(s.forward_message(), Ok(None));
    assert_eq!(s.available_messages(), 0);
    assert_eq!(
        drain(&mut s),
        [
            Sent { b0: 0x81, masked: false, payload: "héllo".as_bytes().to_vec() },
            Sent { b0: 0x82, masked: false, payload: std::vec![7; 300] },
            Sent { b0: 0x82, masked: false, payload: Vec::new() },
        ]
    );
    // A client masks what it forwards, with a key of its own.
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    s.send_binary(b"round trip").unwrap();
    pump(NOW, &mut c, &mut s);
    assert_eq!(c.forward_message(), Ok(Some(MessageKind::Binary)));
    assert_eq!(drain(&mut c), [Sent { b0: 0x82, masked: true, payload: b"round trip".to_vec() }]);
}

#[test]
fn forward_message_that_does_not_fit_stays_queued() {
    let config = Config { max_outbound_messages: 1, outbound_buffer_size: 100, ..Config::GODOT };
    let mut s = open_server(config);
    let input = [masked(0x82, b"first"), masked(0x82, &[1; 101])].concat();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    s.send_binary(b"queued").unwrap();
    assert!(matches!(s.forward_message(), Err(SendError::Full { queued_messages: 1, .. })));
    assert_eq!(s.peek_message().unwrap().data, b"first");
    drain(&mut s);
    assert_eq!(s.forward_message(), Ok(Some(MessageKind::Binary)));
    drain(&mut s);
    assert_eq!(s.forward_message(), Err(SendError::TooLarge { max: 100 }));
    assert_eq!(s.peek_message().unwrap().data, &[1; 101][..]);
    // Once the connection is closing, nothing more is sent and the message is still readable.
    s.close(NOW, CloseCode::NORMAL, "").unwrap();
    assert_eq!(s.forward_message(), Err(SendError::NotOpen));
    assert_eq!(s.available_messages(), 1);
}
