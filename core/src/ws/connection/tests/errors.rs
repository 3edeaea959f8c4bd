//! Every protocol error: its close code, its event, and that it is found as early as possible.

use std::string::ToString;

use super::*;

/// A masked 64-bit-length header claiming `len` bytes.
fn huge_header(b0: u8, len: u64) -> Vec<u8> {
    [&[b0, 0xff][..], &len.to_be_bytes(), &crate::ws::tests::MASK].concat()
}

/// Checks that `c` failed with `error`: one Close frame with its code and reason went out
/// (`sent_close`), one `Closed` event from the library, and the connection is done.
fn assert_failed<S: Storage, R: MaskKeys>(
    c: &mut Connection<S, R>,
    error: Error,
    sent_close: bool,
    name: &str,
) {
    let code = error.close_code();
    let reason = error.to_string();
    let sent = drain(c);
    if sent_close {
        let payload = [&code.0.to_be_bytes()[..], reason.as_bytes()].concat();
        assert_eq!(sent.len(), 1, "{name}: {sent:?}");
        assert_eq!((sent[0].b0, &sent[0].payload), (0x88, &payload), "{name}");
        assert_eq!(sent[0].masked, c.role() == Role::Client, "{name}");
    } else {
        assert_eq!(sent, [], "{name}");
    }
    let info = closed(c);
    assert_eq!(
        (info.code, info.reason.as_str(), info.initiator, info.error, info.clean),
        (code, reason.as_str(), Initiator::Library, Some(error), false),
        "{name}"
    );
    assert_eq!((c.state(), c.is_finished(), c.available_messages()), (State::Closed, true, 0), "{name}");
    assert_eq!(c.poll_timeout(), None, "{name}");
}

#[test]
fn server_protocol_errors() {
    let big_ping = [0u8; 126];
    let mut table: Vec<(&str, Vec<u8>, Error)> = std::vec![
        ("unmasked client frame", unmasked(0x82, b"x"), Error::UnmaskedFrame),
        ("unmasked client ping", unmasked(0x89, b""), Error::UnmaskedFrame),
        ("RSV1", masked(0xc2, b"x"), Error::ReservedBits(0b100)),
        ("RSV2", masked(0xa2, b"x"), Error::ReservedBits(0b010)),
        ("RSV3", masked(0x92, b"x"), Error::ReservedBits(0b001)),
        ("RSV1 on a ping", masked(0xc9, b""), Error::ReservedBits(0b100)),
        ("ping of 126 bytes", masked(0x89, &big_ping), Error::ControlFrameTooLong),
        ("close of 126 bytes", masked(0x88, &big_ping), Error::ControlFrameTooLong),
        ("ping claiming 2^40 bytes", huge_header(0x89, 1 << 40), Error::ControlFrameTooLong),
        ("fragmented ping", masked(0x09, b""), Error::FragmentedControlFrame),
        ("fragmented close", masked(0x08, &[0x03, 0xe8]), Error::FragmentedControlFrame),
        ("continuation without a message", masked(0x80, b"x"), Error::UnexpectedContinuation),
        ("unfinished continuation without a message", masked(0x00, b"x"), Error::UnexpectedContinuation),
        (
            "text inside a fragmented message",
            [masked(0x01, b"a"), masked(0x81, b"b")].concat(),
            Error::ExpectedContinuation,
        ),
        (
            "binary inside a fragmented message",
            [masked(0x02, b"a"), masked(0x02, b"b")].concat(),
            Error::ExpectedContinuation,
        ),
        ("64-bit length with the MSB set", huge_header(0x82, 1 << 63), Error::LengthOverflow),
        ("close with a 1-byte payload", masked(0x88, &[0x03]), Error::InvalidClosePayload),
        ("close reason not UTF-8", masked(0x88, &[0x03, 0xe8, 0xff]), Error::InvalidUtf8),
        ("invalid UTF-8 text", masked(0x81, b"\xff"), Error::InvalidUtf8),
        ("overlong UTF-8", masked(0x81, b"\xc0\x80"), Error::InvalidUtf8),
        ("UTF-16 surrogate", masked(0x81, b"\xed\xa0\x80"), Error::InvalidUtf8),
        ("text ending inside a code point", masked(0x81, b"ok\xe2\x82"), Error::InvalidUtf8),
        ("message over the limit", masked(0x82, &[0; 65536]), Error::MessageTooBig { limit: 65535 }),
    ];
    for op in (0x3..=0x7).chain(0xb..=0xf) {
        table.push(("reserved opcode", masked(0x80 | op, b""), Error::ReservedOpcode(op)));
    }
    for code in [0, 999, 1004, 1005, 1006, 1012, 1015, 2000, 2999, 5000, 65535] {
        table.push(("invalid close code", masked(0x88, &code_bytes(code)), Error::InvalidCloseCode(code)));
    }
    for (name, input, error) in &table {
        // Whole, and byte by byte (a header split anywhere).
        for chunk in [input.len(), 1] {
            let mut s = open_server(Config::GODOT);
            for part in input.chunks(chunk) {
                assert_eq!(s.handle_input(NOW, part), part.len(), "{name}");
            }
            assert_failed(&mut s, *error, true, name);
        }
    }
}

fn code_bytes(code: u16) -> [u8; 2] {
    code.to_be_bytes()
}

#[test]
fn client_protocol_errors() {
    let table: &[(&str, Vec<u8>, Error)] = &[
        ("masked server frame", masked(0x82, b"x"), Error::MaskedFrame),
        ("masked server close", masked(0x88, &[0x03, 0xe8]), Error::MaskedFrame),
        ("RSV1", unmasked(0xc1, b"x"), Error::ReservedBits(0b100)),
        ("reserved opcode", unmasked(0x83, b""), Error::ReservedOpcode(3)),
        ("continuation without a message", unmasked(0x80, b""), Error::UnexpectedContinuation),
        ("invalid UTF-8 text", unmasked(0x81, b"\xfe"), Error::InvalidUtf8),
        ("invalid close code", unmasked(0x88, &[0x03, 0xee]), Error::InvalidCloseCode(1006)),
    ];
    for (name, input, error) in table {
        let mut c = open_client(Config::GODOT);
        assert_eq!(c.handle_input(NOW, input), input.len(), "{name}");
        assert_failed(&mut c, *error, true, name);
    }
}

#[test]
fn invalid_utf8_split_across_fragments_fails_before_the_message_ends() {
    let mut s = open_server(Config::GODOT);
    // "a" and the first two bytes of "€" are a valid prefix.
    s.handle_input(NOW, &masked(0x01, b"a\xe2\x82"));
    assert_eq!(events(&mut s), []);
    // 0x28 cannot continue "€": refused in this non-final fragment.
    s.handle_input(NOW, &masked(0x00, b"\x28"));
    assert_failed(&mut s, Error::InvalidUtf8, true, "split");

    // Inside one frame: the first bad byte is enough, long before the frame's end.
    let mut s = open_server(Config::GODOT);
    let input = masked(0x81, &[b'\xff'; 1000]);
    s.handle_input(NOW, &input[..8 + 1]);
    assert_failed(&mut s, Error::InvalidUtf8, true, "first byte");

    // A valid code point split byte by byte over three fragments is fine.
    let mut s = open_server(Config::GODOT);
    let input = [masked(0x01, b"\xe2"), masked(0x00, b"\x82"), masked(0x80, b"\xac")].concat();
    s.handle_input(NOW, &input);
    assert_eq!(messages(&mut s), [text("€".as_bytes()).unwrap()]);
}

#[test]
fn a_huge_claimed_length_allocates_nothing() {
    let mut s = open_server(Config::GODOT);
    let before = s.buffer_footprint();
    let header = huge_header(0x82, 1 << 62);
    assert_eq!(s.handle_input(NOW, &header), header.len());
    assert_failed(&mut s, Error::MessageTooBig { limit: 65535 }, true, "2^62");
    assert!(s.buffer_footprint() <= before.max(256) + 256, "{} bytes held", s.buffer_footprint());

    // The limit counts every fragment: refused at the header of the one that crosses it.
    let mut s = open_server(Config::GODOT);
    s.handle_input(NOW, &masked(0x02, &[0; 65000]));
    s.handle_input(NOW, &masked(0x00, &[0; 535]));
    assert_eq!(events(&mut s), []);
    let crossing = masked(0x80, &[0; 1]);
    assert_eq!(s.handle_input(NOW, &crossing[..6]), 6, "the header alone is enough");
    assert_failed(&mut s, Error::MessageTooBig { limit: 65535 }, true, "fragments");
}

#[test]
fn too_many_fragments() {
    let config = Config { max_fragments: 3, ..Config::GODOT };
    let three = [masked(0x02, b"a"), masked(0x00, b""), masked(0x80, b"c")].concat();
    let mut s = open_server(config);
    assert_eq!(s.handle_input(NOW, &three), three.len());
    assert_eq!(messages(&mut s), [binary(b"ac").unwrap()]);
    let four = [masked(0x02, b"a"), masked(0x00, b""), masked(0x00, b""), masked(0x80, b"d")].concat();
    s.handle_input(NOW, &four);
    assert_failed(&mut s, Error::TooManyFragments { limit: 3 }, true, "4 fragments");
}

#[test]
fn an_error_after_our_close_sends_no_second_close() {
    let mut s = open_server(Config::GODOT);
    s.close(NOW, CloseCode::GOING_AWAY, "").unwrap();
    assert_eq!(drain(&mut s), [Sent { b0: 0x88, masked: false, payload: std::vec![0x03, 0xe9] }]);
    s.handle_input(NOW, &unmasked(0x82, b"x"));
    assert_failed(&mut s, Error::UnmaskedFrame, false, "while closing");
}

#[test]
fn messages_before_an_error_stay_readable() {
    let mut s = open_server(Config::GODOT);
    let input = [masked(0x82, b"ok"), masked(0x81, b"bad\xff"), masked(0x82, b"never")].concat();
    assert_eq!(s.handle_input(NOW, &input), input.len());
    assert_eq!(closed(&mut s).error, Some(Error::InvalidUtf8));
    assert_eq!(messages(&mut s), [binary(b"ok").unwrap()]);
}

#[test]
fn fixed_storage_too_small_for_a_message_closes_with_1009() {
    let mut s = open_pair::<FixedStorage<1024, 1024>>(Config::GODOT).1;
    let input = masked(0x82, &[5; 2000]);
    assert_eq!(s.handle_input(NOW, &input), input.len());
    let info = closed(&mut s);
    assert_eq!(
        (info.code, info.error),
        (CloseCode::MESSAGE_TOO_BIG, Some(Error::MessageTooBig { limit: 65535 }))
    );
}

/// Autobahn 3.2 / 4.1.3: a valid message and a bad frame in one read. The message is the
/// application's to read (and answer) before the connection fails on the frame after it.
#[test]
fn a_bad_frame_waits_until_the_messages_before_it_are_read() {
    let mut s = open_server(Config::GODOT);
    let hello = masked(0x81, b"Hello");
    let input = [hello.clone(), masked(0xc1, b"rsv1")].concat();
    let used = s.handle_input(Instant::ZERO, &input);
    assert_eq!(used, hello.len(), "the bad frame is left unconsumed");
    assert_eq!(s.state(), State::Open);
    assert_eq!(s.peek_message().map(|m| m.data), Some(&b"Hello"[..]));
    s.send_text("Hello").unwrap();
    assert!(s.pop_message());
    assert_eq!(s.handle_input(Instant::ZERO, &input[used..]), input.len() - used);
    let sent = drain(&mut s);
    assert_eq!(sent[0].payload, b"Hello", "the answer goes out before the close");
    assert_eq!(closed(&mut s).error, Some(Error::ReservedBits(4)));
}

/// A TLS ClientHello (first byte 0x16) on a plain port is answered with 400 at once, not at
/// the handshake timeout.
#[test]
fn bytes_that_cannot_start_a_request_are_refused_at_once() {
    for first in [0x16u8, 0x00, 0x80, b' '] {
        let mut s = Connection::<Heap, NoRng>::server(Instant::ZERO, Config::GODOT);
        assert_eq!(s.handle_input(Instant::ZERO, &[first, 0x03, 0x01, 0x02, 0x00]), 5);
        assert!(s.poll_transmit().unwrap().starts_with(b"HTTP/1.1 400 "), "{first:#x}");
        assert_eq!(s.poll_event(), Some(Event::HandshakeFailed(HandshakeError::MalformedHttp)));
        assert!(s.is_finished());
    }
    // An empty line before the request line is allowed.
    let mut s = Connection::<Heap, NoRng>::server(Instant::ZERO, Config::GODOT);
    let request = b"\r\nGET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    s.handle_input(Instant::ZERO, request);
    assert_eq!(s.poll_event(), Some(Event::Request));
}
