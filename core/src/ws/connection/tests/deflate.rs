//! permessage-deflate through the connection: negotiation in the handshake, RFC 7692 §7.2.3's
//! examples, limits, and round trips through any chunking.

use proptest::prelude::*;

use super::*;
use crate::ws::tests::frame;

fn t(data: &[u8]) -> (MessageKind, Vec<u8>) {
    (MessageKind::Text, data.to_vec())
}

fn b(data: &[u8]) -> (MessageKind, Vec<u8>) {
    (MessageKind::Binary, data.to_vec())
}
use crate::ws::deflate::{DeflateConfig, DeflateParams};

fn with_deflate(deflate: DeflateConfig) -> Config {
    Config { permessage_deflate: Some(deflate), ..Config::GODOT }
}

/// Compresses everything, however short.
const EAGER: DeflateConfig = DeflateConfig { min_message_size: 0, ..DeflateConfig::DEFAULT };

#[test]
fn godot_config_neither_offers_nor_accepts() {
    let c = client::<Heap>(NOW, Config::GODOT);
    let request = c.poll_transmit().unwrap().to_vec();
    assert!(!request.windows(10).any(|w| w.eq_ignore_ascii_case(b"extensions")));
    // A browser's offer to a server without deflate: answered without the extension, and a
    // compressed frame is then a protocol error.
    let mut s = Connection::<Heap, NoRng>::server(NOW, Config::GODOT);
    let offer = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    s.handle_input(NOW, offer);
    assert_eq!(events(&mut s), [Event::Request]);
    s.accept(NOW, None, &[]).unwrap();
    let response = s.poll_transmit().unwrap().to_vec();
    s.consume_transmit(response.len());
    assert!(!response.windows(10).any(|w| w.eq_ignore_ascii_case(b"extensions")));
    assert_eq!(s.permessage_deflate(), None);
    s.handle_input(NOW, &masked(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]));
    assert_eq!(s.close_info().unwrap().error, Some(Error::ReservedBits(0b100)));
}

#[test]
fn negotiated_both_ways_and_compressed_on_the_wire() {
    let (mut c, mut s) = open_pair::<Heap>(with_deflate(EAGER));
    let full = DeflateParams {
        window_bits: 15,
        no_context_takeover: false,
        peer_window_bits: 15,
        peer_no_context_takeover: false,
    };
    assert_eq!(c.permessage_deflate(), Some(full));
    assert_eq!(s.permessage_deflate(), Some(full));
    // "Hello" deflates to 7 bytes (RFC 7692 §7.2.3.1): longer than itself, so it goes plain.
    s.send_text("Hello").unwrap();
    assert_eq!(drain(&mut s), [Sent { b0: 0x81, masked: false, payload: b"Hello".to_vec() }]);
    s.send_text("Hello Hello Hello Hello").unwrap();
    let sent = drain(&mut s);
    assert_eq!(sent[0].b0, 0xc1);
    // What went out is raw deflate ending in a sync flush with its empty block stripped.
    let mut stream = sent[0].payload.clone();
    stream.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    let inflated = miniz_oxide::inflate::decompress_to_vec(&stream);
    // No final block: miniz reports the stream unfinished, with everything inflated.
    let out = inflated.map_err(|e| e.output).unwrap_err();
    assert!(out.starts_with(b"Hello Hello Hello Hello") && out[23..].iter().all(|&b| b == 0), "{out:?}");
    let json = br#"{"players":[{"name":"a","x":1},{"name":"b","x":2},{"name":"c","x":3}]}"#.repeat(20);
    c.send_text(core::str::from_utf8(&json).unwrap()).unwrap();
    let wire = c.buffered_amount();
    assert!(wire < json.len() / 4, "{wire} bytes on the wire for {}", json.len());
    pump(NOW, &mut c, &mut s);
    assert_eq!(messages(&mut s), [t(&json)]);
    // Control frames are never compressed.
    c.ping(b"ping").unwrap();
    assert_eq!(drain(&mut c), [Sent { b0: 0x89, masked: true, payload: b"ping".to_vec() }]);
    // The compressor and decompressor are counted once used.
    assert!(s.buffer_footprint() > 32 * 1024);
}

#[test]
fn rfc7692_examples_are_read() {
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut c = open_client(with_deflate(DeflateConfig::DEFAULT));
    // The pair negotiated with the default config; the client reads the server's frames.
    let cases: [&[Vec<u8>]; 5] = [
        // §7.2.3.1: one frame.
        &[unmasked(0xc1, &hello)],
        // §7.2.3.2: two fragments, RSV1 on the first only.
        &[unmasked(0x41, &hello[..3]), unmasked(0x80, &hello[3..])],
        // §7.2.3.4: a stored block.
        &[unmasked(0xc1, &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00])],
        // §7.2.3.5: two blocks in one message.
        &[unmasked(0xc1, &[0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00])],
        // §7.2.3.6: a block with BFINAL set, then padding.
        &[unmasked(0xc1, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00])],
    ];
    for frames in cases {
        for f in frames {
            assert_eq!(c.handle_input(NOW, f), f.len());
        }
        assert_eq!(messages(&mut c), [t(b"Hello")], "{frames:x?}");
    }
    // §7.2.3.3: the second "Hello" refers back to the first (context takeover).
    let mut c = open_client(with_deflate(DeflateConfig::DEFAULT));
    c.handle_input(NOW, &unmasked(0xc1, &hello));
    c.handle_input(NOW, &unmasked(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00]));
    assert_eq!(messages(&mut c), [t(b"Hello"), t(b"Hello")]);
    // Uncompressed messages may be interleaved (RSV1 clear).
    c.handle_input(NOW, &unmasked(0x81, b"plain"));
    assert_eq!(messages(&mut c), [t(b"plain")]);
}

#[test]
fn bad_compressed_frames_fail_the_connection() {
    let cases: [(Vec<u8>, Error); 5] = [
        // RSV1 on a continuation frame (§6.1).
        ([unmasked(0x41, &[0xf2]), unmasked(0xc0, &[0x48])].concat(), Error::ReservedBits(0b100)),
        // RSV1 on a control frame.
        (unmasked(0xc9, b""), Error::ReservedBits(0b100)),
        // RSV2 is still reserved.
        (unmasked(0xa1, b""), Error::ReservedBits(0b010)),
        // Not deflate: block type 3 is reserved.
        (unmasked(0xc1, &[0xff, 0xff, 0xff]), Error::InvalidCompressedData),
        // Valid deflate, invalid UTF-8 in a text message.
        (unmasked(0xc1, &miniz_oxide::deflate::compress_to_vec(&[0xff, 0xfe], 6)), Error::InvalidUtf8),
    ];
    for (wire, error) in cases {
        let mut c = open_client(with_deflate(DeflateConfig::DEFAULT));
        c.handle_input(NOW, &wire);
        let info = c.close_info().unwrap();
        assert_eq!(info.error, Some(error), "{wire:x?}");
        assert_eq!(info.code, error.close_code());
    }
}

#[test]
fn a_decompression_bomb_gets_1009_without_inflating_past_the_limit() {
    let limit = 4096;
    let config = Config { max_message_size: limit, ..with_deflate(DeflateConfig::DEFAULT) };
    let mut s = open_server(config);
    // 16 MiB of zeros deflate to about 16 KiB; the header alone would not catch it.
    let bomb = miniz_oxide::deflate::compress_to_vec(&std::vec![0u8; 16 << 20], 10);
    assert!(bomb.len() < limit * 8);
    let wire = masked(0xc2, &bomb);
    let mut at = 0;
    let mut peak = 0;
    while at < wire.len() && s.state() == State::Open {
        let n = s.handle_input(NOW, &wire[at..(at + 97).min(wire.len())]);
        peak = peak.max(s.inbound.footprint());
        at += n;
        assert!(n > 0);
    }
    let info = s.close_info().unwrap();
    assert_eq!(info.error, Some(Error::MessageTooBig { limit }));
    assert_eq!(info.code, CloseCode::MESSAGE_TOO_BIG);
    // The message never grew past the limit (plus the queue's record header and growth slack).
    assert!(peak <= 2 * limit, "inbound storage peaked at {peak}");
    // The 1009 went out.
    let sent = drain(&mut s);
    assert_eq!(sent.last().map(|f| f.b0), Some(0x88));
    // A compressed message whose wire size alone exceeds the limit (with deflate's slack) is
    // refused from its header.
    let mut s = open_server(config);
    s.handle_input(NOW, &masked(0xc2, &std::vec![0; limit * 2]));
    assert_eq!(s.close_info().unwrap().error, Some(Error::MessageTooBig { limit }));
}

#[test]
fn a_message_at_the_limit_is_read_and_back_pressure_holds() {
    let limit = 3000;
    let config =
        Config { max_message_size: limit, max_queued_messages: 1, ..with_deflate(DeflateConfig::DEFAULT) };
    let (mut c, mut s) = open_pair::<Heap>(config);
    let exact = std::vec![b'a'; limit];
    c.send_binary(&exact).unwrap();
    c.send_binary(&exact).unwrap();
    let wire = c.poll_transmit().unwrap().to_vec();
    // The second message waits for the first to be read: TCP back-pressure, nothing dropped.
    let used = s.handle_input(NOW, &wire);
    assert!(used < wire.len());
    assert_eq!(s.available_messages(), 1);
    assert_eq!(messages(&mut s), [b(&exact)]);
    let rest = s.handle_input(NOW, &wire[used..]);
    assert_eq!(used + rest, wire.len());
    assert_eq!(messages(&mut s), [b(&exact)]);
    assert_eq!(s.state(), State::Open);
}

#[test]
fn incompressible_messages_go_uncompressed_and_the_context_stays_in_step() {
    let (mut c, mut s) = open_pair::<Heap>(with_deflate(EAGER));
    let mut noise = std::vec![0u8; 600];
    let mut x = 0x1234_5678u32;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    s.send_binary(b"hello hello hello hello hello hello").unwrap();
    s.send_binary(&noise).unwrap();
    s.send_binary(b"hello hello hello hello hello hello").unwrap();
    let sent = drain(&mut s);
    assert_eq!(sent.iter().map(|f| f.b0).collect::<Vec<_>>(), [0xc2, 0x82, 0xc2]);
    assert_eq!(sent[1].payload, noise);
    for f in &sent {
        c.handle_input(NOW, &frame(f.b0, None, &f.payload));
    }
    let hello = b"hello hello hello hello hello hello";
    assert_eq!(messages(&mut c), [b(hello), b(&noise), b(hello)]);
}

#[test]
fn short_messages_are_sent_plain_by_default() {
    let (mut c, _) = open_pair::<Heap>(with_deflate(DeflateConfig::DEFAULT));
    c.send_text("hi").unwrap();
    assert_eq!(drain(&mut c), [Sent { b0: 0x81, masked: true, payload: b"hi".to_vec() }]);
}

#[test]
fn forwarded_messages_are_compressed_too() {
    let (mut c, mut s) = open_pair::<Heap>(with_deflate(EAGER));
    let json = br#"{"chat":"hello everyone","from":"player one"}"#.repeat(8);
    c.send_binary(&json).unwrap();
    pump(NOW, &mut c, &mut s);
    assert_eq!(s.forward_message(), Ok(Some(MessageKind::Binary)));
    let sent = drain(&mut s);
    assert_eq!(sent[0].b0, 0xc2);
    assert!(sent[0].payload.len() < json.len() / 3);
    c.handle_input(NOW, &frame(0xc2, None, &sent[0].payload));
    assert_eq!(messages(&mut c), [b(&json)]);
}

/// A message that compresses somewhat: words from a small vocabulary, some noise.
fn message_strategy() -> impl Strategy<Value = (bool, Vec<u8>)> {
    let word = prop::sample::select(&["lobby ", "player ", "{\"x\":", "12,", "\u{e9}t\u{e9} ", "\n"][..]);
    (
        any::<bool>(),
        prop::collection::vec(
            prop_oneof![
                word.prop_map(|w| w.as_bytes().to_vec()),
                any::<u8>().prop_map(|b| std::vec![b & 0x7f])
            ],
            0..400,
        ),
    )
        .prop_map(|(is_text, parts)| (is_text, parts.concat()))
}

fn deflate_config_strategy() -> impl Strategy<Value = DeflateConfig> {
    (8u8..=15, 8u8..=15, any::<bool>(), any::<bool>(), 0u8..=10, 0u8..64).prop_map(
        |(own, peer, nct, pnct, level, min)| DeflateConfig {
            max_window_bits: own,
            peer_max_window_bits: peer,
            no_context_takeover: nct,
            peer_no_context_takeover: pnct,
            level,
            min_message_size: min,
            max_connections: u16::MAX,
        },
    )
}

/// Feeds `wire` to `to` in the given chunk sizes, reading messages whenever it pushes back.
fn feed_chunked<S: Storage, R: MaskKeys>(
    to: &mut Connection<S, R>,
    wire: &[u8],
    chunks: &[usize],
    got: &mut Vec<(MessageKind, Vec<u8>)>,
) {
    let mut at = 0;
    let mut i = 0;
    while at < wire.len() {
        let size = chunks.get(i % chunks.len().max(1)).copied().unwrap_or(wire.len()).max(1);
        i += 1;
        let end = (at + size).min(wire.len());
        let n = to.handle_input(NOW, &wire[at..end]);
        at += n;
        if n < end - (at - n) {
            let before = got.len();
            got.extend(messages(to));
            assert!(n > 0 || got.len() > before, "stuck at {at} of {}", wire.len());
        }
        assert_eq!(to.state(), State::Open, "{:?}", to.close_info());
    }
    got.extend(messages(to));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trips_through_any_chunking(
        client_cfg in deflate_config_strategy(),
        server_cfg in deflate_config_strategy(),
        batch in prop::collection::vec(message_strategy(), 1..12),
        chunks in prop::collection::vec(1usize..300, 1..8),
        queued in 1usize..4,
    ) {
        let mut cc = with_deflate(client_cfg);
        let mut sc = with_deflate(server_cfg);
        cc.max_queued_messages = queued;
        sc.max_queued_messages = queued;
        let (mut c, mut s) = {
            let mut c = client::<Heap>(NOW, cc);
            let mut s = Connection::<Heap, NoRng>::server(NOW, sc);
            pump(NOW, &mut c, &mut s);
            s.accept(NOW, None, &[]).unwrap();
            pump(NOW, &mut c, &mut s);
            (c, s)
        };
        prop_assert!(c.permessage_deflate().is_some());
        let agreed_c = c.permessage_deflate().unwrap();
        let agreed_s = s.permessage_deflate().unwrap();
        // Each side's compressor stays within what the other expects (a window smaller than
        // announced is always allowed, and a server may not announce one unasked).
        prop_assert!(agreed_c.window_bits <= agreed_s.peer_window_bits);
        prop_assert_eq!(agreed_c.no_context_takeover, agreed_s.peer_no_context_takeover);
        prop_assert!(agreed_s.window_bits <= agreed_c.peer_window_bits);
        prop_assert_eq!(agreed_s.no_context_takeover, agreed_c.peer_no_context_takeover);
        // Text messages must be UTF-8: the vocabulary and 7-bit noise are.
        let expected: Vec<(MessageKind, Vec<u8>)> = batch
            .iter()
            .map(|(t, d)| (if *t { MessageKind::Text } else { MessageKind::Binary }, d.clone()))
            .collect();
        for (kind, data) in &expected {
            c.send(*kind, data).unwrap();
            s.send(*kind, data).unwrap();
        }
        let to_server: Vec<u8> = c.poll_transmit().unwrap().to_vec();
        let to_client: Vec<u8> = s.poll_transmit().unwrap().to_vec();
        let mut got = Vec::new();
        feed_chunked(&mut s, &to_server, &chunks, &mut got);
        prop_assert_eq!(&got, &expected);
        let mut got = Vec::new();
        feed_chunked(&mut c, &to_client, &chunks, &mut got);
        prop_assert_eq!(&got, &expected);
    }
}
#[test]
fn a_window_below_15_bits_is_kept_by_compressing_each_message_alone() {
    // The client asks the server for a 512-byte window (Autobahn 13.3).
    let small = DeflateConfig { peer_max_window_bits: 9, min_message_size: 0, ..DeflateConfig::DEFAULT };
    let (mut c, mut s) = open_pair::<Heap>(with_deflate(small));
    assert_eq!(s.permessage_deflate().map(|p| p.window_bits), Some(9));
    let mut block = [0u8; 600];
    let mut x = 0x9e37_79b9u32;
    for b in &mut block {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = b'a' + (x % 26) as u8;
    }
    // Longer than the window: a match 600 bytes back would be out of reach, so it goes plain.
    let long = block.repeat(3);
    // As long as the window: compressed, and twice the same bytes (no reference to the first).
    let short = &block[..128].repeat(4)[..];
    s.send_binary(&long).unwrap();
    s.send_binary(short).unwrap();
    s.send_binary(short).unwrap();
    let sent = drain(&mut s);
    assert_eq!(sent.iter().map(|f| f.b0).collect::<Vec<_>>(), [0x82, 0xc2, 0xc2]);
    assert_eq!(sent[1].payload, sent[2].payload);
    for f in &sent {
        c.handle_input(NOW, &frame(f.b0, None, &f.payload));
    }
    assert_eq!(messages(&mut c), [b(&long), b(short), b(short)]);
}

#[test]
fn stats_count_both_directions_and_state_is_given_back_without_context_takeover() {
    let json = br#"{"lobby":"main","players":[{"name":"a","x":1},{"name":"b","x":2}]}"#.repeat(10);
    let text = core::str::from_utf8(&json).unwrap();
    let (mut c, mut s) = open_pair::<Heap>(with_deflate(EAGER));
    s.send_text(text).unwrap();
    s.send_text(text).unwrap();
    // The history is kept between messages: the compressor (about 310 KiB) stays.
    assert!(s.buffer_footprint() > 300_000, "{}", s.buffer_footprint());
    // Two bytes do not shrink: sent plain, and the compressor, which saw them, starts afresh.
    s.send_text("hi").unwrap();
    pump(NOW, &mut c, &mut s);
    assert_eq!(messages(&mut c), [t(&json), t(&json), t(b"hi")]);
    let sent = s.permessage_deflate_stats().unwrap();
    assert_eq!((sent.messages_compressed, sent.messages_sent_plain), (2, 1));
    assert_eq!(sent.bytes_before_compression, 2 * json.len() as u64);
    // Context takeover: the second copy costs a few bytes.
    assert!(sent.bytes_after_compression < json.len() as u64 / 4, "{sent:?}");
    let got = c.permessage_deflate_stats().unwrap();
    assert_eq!((got.messages_inflated, got.bytes_inflated), (2, 2 * json.len() as u64));
    assert_eq!((got.messages_compressed, sent.messages_inflated), (0, 0));

    // Without context takeover both ways, neither side keeps any state between messages.
    let fresh = DeflateConfig { no_context_takeover: true, peer_no_context_takeover: true, ..EAGER };
    let (mut c, mut s) = open_pair::<Heap>(with_deflate(fresh));
    assert!(s.permessage_deflate().is_some_and(|p| p.no_context_takeover && p.peer_no_context_takeover));
    for _ in 0..2 {
        s.send_text(text).unwrap();
        c.send_text(text).unwrap();
        pump(NOW, &mut c, &mut s);
        assert_eq!(messages(&mut c), [t(&json)]);
        assert_eq!(messages(&mut s), [t(&json)]);
    }
    // Each message compressed alone: both copies the same size.
    let sent = s.permessage_deflate_stats().unwrap();
    assert_eq!(sent.messages_compressed, 2);
    assert_eq!(sent.bytes_after_compression % 2, 0);
    assert_eq!(c.permessage_deflate_stats().unwrap().messages_inflated, 2);
    // Less than the inflater alone (43 KiB): nothing of deflate is held.
    assert!(s.buffer_footprint() < 40_000, "{}", s.buffer_footprint());
    assert!(c.buffer_footprint() < 40_000, "{}", c.buffer_footprint());
}

#[test]
fn a_server_at_its_compressing_connection_limit_declines_the_offer() {
    let limited = DeflateConfig { max_connections: 2, ..DeflateConfig::DEFAULT };
    for (compressing, agreed) in [(0, true), (1, true), (2, false), (usize::MAX, false)] {
        let mut c = client::<Heap>(NOW, with_deflate(DeflateConfig::DEFAULT));
        let mut s = Connection::<Heap, NoRng>::server(NOW, with_deflate(limited));
        pump(NOW, &mut c, &mut s);
        assert_eq!(events(&mut s), [Event::Request]);
        s.set_compressing_connections(compressing);
        s.accept(NOW, None, &[]).unwrap();
        pump(NOW, &mut c, &mut s);
        assert_eq!(events(&mut c), [Event::Open]);
        assert_eq!(s.permessage_deflate().is_some(), agreed, "{compressing}");
        assert_eq!(c.permessage_deflate().is_some(), agreed, "{compressing}");
        assert_eq!(s.config().permessage_deflate.is_some(), agreed);
    }
    // Without a limit any count is admitted.
    assert!(DeflateConfig::DEFAULT.admits(usize::MAX));
    assert!(!DeflateConfig { max_connections: 0, ..DeflateConfig::DEFAULT }.admits(0));
}
