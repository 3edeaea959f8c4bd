//! permessage-deflate: `deflate_negotiation` (the extension header parsers of both roles) and
//! `deflate_frames` (compressed frames into a connection that negotiated the extension).

use chacha20::ChaCha8Rng;
use multipeer::rand_core::SeedableRng;
use multipeer::ws::deflate::{DeflateConfig, client_accept, client_offer, server_answer};
use multipeer::ws::handshake::{ClientRequest, Url};
use multipeer::ws::{Config, Connection, Event, MessageKind, NoRng, State};
use multipeer::{Instant, VecStorage};

use super::input::Input;

/// A configuration from two bytes: both window sizes, both context flags, the level.
fn deflate_config(input: &mut Input<'_>) -> DeflateConfig {
    let (a, b) = (input.byte(), input.byte());
    DeflateConfig {
        max_window_bits: 8 + (a & 7),
        peer_max_window_bits: 8 + (a >> 3 & 7),
        no_context_takeover: a & 0x40 != 0,
        peer_no_context_takeover: a & 0x80 != 0,
        level: b % 11,
        min_message_size: b >> 4,
        max_connections: u16::MAX,
    }
}

/// Header values split at newlines.
fn values(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b'\n')
}

/// Two configurations, then `Sec-WebSocket-Extensions` values separated by `\n`, given to the
/// server as offers and to the client as answers. Checks: windows stay in 8–15 and lines
/// within their bound; whatever a server answers, a client that could have made the offer
/// accepts, and both agree on who resets and who may use which window; a client's own offer
/// is always accepted and the round trip agrees.
pub fn deflate_negotiation(data: &[u8]) {
    let mut input = Input::new(data);
    let server = deflate_config(&mut input);
    let client = deflate_config(&mut input);
    let headers = input.rest();

    let _ = client_accept(&client, values(headers));
    if let Some((agreed, line)) = server_answer(&server, values(headers)) {
        for bits in [agreed.window_bits, agreed.peer_window_bits] {
            assert!((8..=15).contains(&bits), "{agreed:?}");
        }
        // A client that asked for nothing in particular accepts any answer to any offer.
        let lenient = DeflateConfig { peer_max_window_bits: 15, peer_no_context_takeover: false, ..client };
        let seen = client_accept(&lenient, [line.as_bytes()])
            .unwrap_or_else(|e| panic!("client refused {line:?}: {e}"))
            .unwrap_or_else(|| panic!("client saw no extension in {line:?}"));
        assert!(seen.peer_window_bits >= agreed.window_bits, "{seen:?} {agreed:?} {line:?}");
        assert_eq!(seen.peer_no_context_takeover, agreed.no_context_takeover, "{line:?}");
        assert!(seen.no_context_takeover || !agreed.peer_no_context_takeover, "{line:?}");
    }

    let offer = client_offer(&client);
    let (agreed, line) =
        server_answer(&server, [offer.as_bytes()]).unwrap_or_else(|| panic!("server declined {offer:?}"));
    let seen = client_accept(&client, [line.as_bytes()])
        .unwrap_or_else(|e| panic!("{offer:?} answered with {line:?}: {e}"))
        .unwrap_or_else(|| panic!("no extension in {line:?}"));
    assert!(seen.window_bits <= agreed.peer_window_bits, "{seen:?} {agreed:?}");
    assert!(agreed.window_bits <= seen.peer_window_bits, "{seen:?} {agreed:?}");
    assert!(seen.window_bits <= client.max_window_bits && agreed.window_bits <= server.max_window_bits);
    assert_eq!(seen.no_context_takeover, agreed.peer_no_context_takeover);
    assert_eq!(seen.peer_no_context_takeover, agreed.no_context_takeover);
}

/// A client/server pair that negotiated permessage-deflate, the server's limits set by the
/// first bytes. Then steps: `0` the server sends a message from the input, which the client
/// must read back unchanged; anything else feeds the server a client frame (RSV1 and the
/// opcode from the step byte, payload from the input) in chunks. Checks: no panic; a
/// delivered message never exceeds the message limit, nor the inbound storage twice the
/// limit; a failure closes with the error's own code; the pair keeps its context in step.
pub fn deflate_frames(data: &[u8]) {
    let mut input = Input::new(data);
    let deflate = deflate_config(&mut input);
    let limit = 64 + usize::from(input.u16() % 8192);
    let config = Config {
        max_message_size: limit,
        max_queued_messages: 1 + usize::from(input.byte() % 4),
        permessage_deflate: Some(deflate),
        ..Config::GODOT
    };
    let now = Instant::ZERO;
    let Ok(url) = Url::parse("ws://127.0.0.1/") else { return };
    let rng = ChaCha8Rng::seed_from_u64(7);
    let Ok(mut client) =
        Connection::<VecStorage, _>::client(now, &ClientRequest::from_url(&url), config, rng)
    else {
        return;
    };
    let mut server = Connection::<VecStorage, NoRng>::server(now, config);
    pump(&mut client, &mut server);
    assert_eq!(server.poll_event(), Some(Event::Request));
    server.accept(now, None, &[]).expect("accept");
    pump(&mut client, &mut server);
    assert!(server.permessage_deflate().is_some() && client.permessage_deflate().is_some());

    while !input.is_empty() && server.state() == State::Open {
        let step = input.byte();
        if step == 0 {
            let len = usize::from(input.u16()) % (limit + 1);
            let text = input.byte() & 1 == 1;
            let seed = input.bytes(len).to_vec();
            // Repeat the input so it compresses; text stays ASCII.
            let payload: Vec<u8> =
                seed.iter().cycle().take(len).map(|&b| if text { b & 0x7f } else { b }).collect();
            let kind = if text { MessageKind::Text } else { MessageKind::Binary };
            if server.send(kind, &payload).is_ok() {
                pump(&mut client, &mut server);
                let got = client.peek_message().map(|m| (m.kind, m.data.to_vec()));
                assert_eq!(got, Some((kind, payload)), "{:?}", client.close_info());
                client.pop_message();
            }
            continue;
        }
        // b0: FIN, RSV1 and opcode from the step byte (RSV2/RSV3 left to the other targets).
        let b0 = (step & 0xc0) | (step & 0x0f);
        let payload = input.slice();
        let chunk = 1 + usize::from(input.byte());
        let mut frame = vec![b0];
        frame.push(0x80 | payload.len() as u8);
        let key = [1, 2, 3, 4];
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        if payload.len() > 125 {
            // Longer payloads take the 16-bit length form.
            frame.splice(1..2, [0xfe, (payload.len() >> 8) as u8, payload.len() as u8]);
        }
        let mut at = 0;
        while at < frame.len() && server.state() == State::Open {
            let end = (at + chunk).min(frame.len());
            let used = server.handle_input(now, &frame[at..end]);
            at += used;
            // Pongs and the Close go nowhere: the client only reads what `pump` carries.
            if let Some(n) = server.poll_transmit().map(<[u8]>::len) {
                server.consume_transmit(n);
            }
            assert!(server.buffer_footprint() <= 2 * limit + 512 * 1024, "{}", server.buffer_footprint());
            let mut popped = false;
            while let Some(m) = server.peek_message() {
                assert!(m.data.len() <= limit);
                if m.kind == MessageKind::Text {
                    assert!(core::str::from_utf8(m.data).is_ok());
                }
                popped |= server.pop_message();
            }
            if used == 0 && !popped {
                break;
            }
        }
        if let Some(info) = server.close_info() {
            if let Some(error) = info.error {
                assert_eq!(info.code, error.close_code());
            }
        }
    }
}

fn pump<R1: multipeer::ws::MaskKeys, R2: multipeer::ws::MaskKeys>(
    a: &mut Connection<VecStorage, R1>,
    b: &mut Connection<VecStorage, R2>,
) {
    let now = Instant::ZERO;
    loop {
        let mut moved = false;
        if let Some(bytes) = a.poll_transmit().map(<[u8]>::to_vec) {
            let n = b.handle_input(now, &bytes);
            a.consume_transmit(n);
            moved |= n > 0;
        }
        if let Some(bytes) = b.poll_transmit().map(<[u8]>::to_vec) {
            let n = a.handle_input(now, &bytes);
            b.consume_transmit(n);
            moved |= n > 0;
        }
        if !moved {
            return;
        }
    }
}

/// The seeds of both targets, as `(target, name, bytes)`.
#[must_use]
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut out = Vec::new();
    // Configurations: full windows and context kept, level 3, compress from 0 bytes; and
    // small windows, no context takeover either way.
    let plain = [0b0011_1111, 3];
    let tight = [0b1100_0010, 0x13];
    let negotiation: [(&str, [u8; 2], &str); 6] = [
        ("chromium", plain, "permessage-deflate; client_max_window_bits"),
        ("firefox", plain, "permessage-deflate"),
        ("tight", tight, "permessage-deflate; client_max_window_bits"),
        (
            "all-parameters",
            plain,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9",
        ),
        (
            "offer-list",
            tight,
            "permessage-deflate; server_max_window_bits=7, permessage-deflate; client_no_context_takeover\n\
             x-webkit-deflate-frame; a=\"x,y\"",
        ),
        ("quoted", plain, "permessage-deflate; server_max_window_bits=\"10\""),
    ];
    for (name, config, headers) in negotiation {
        out.push(("deflate_negotiation", name, [&config[..], headers.as_bytes()].concat()));
    }
    // deflate_frames: config (2 bytes), message limit (u16), queue length, then steps.
    let setup = |config: [u8; 2], limit: u16| {
        let mut v = config.to_vec();
        v.extend_from_slice(&limit.to_le_bytes());
        v.push(1);
        v
    };
    let frame = |b0: u8, payload: &[u8], chunk: u8| {
        let mut v = vec![b0, payload.len() as u8];
        v.extend_from_slice(payload);
        v.push(chunk);
        v
    };
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut rfc = setup(plain, 4096);
    rfc.extend(frame(0xc1, &hello, 3));
    rfc.extend(frame(0x41, &hello[..3], 255));
    rfc.extend(frame(0x80, &hello[3..], 1));
    // §7.2.3.3: the second "Hello" refers to the first.
    rfc.extend(frame(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00], 2));
    // A stored block, and a block with BFINAL set.
    rfc.extend(frame(0xc1, &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00], 4));
    out.push(("deflate_frames", "rfc7692-examples", rfc));
    let mut echo = setup(tight, 2000);
    for len in [300u16, 40, 1999] {
        echo.push(0);
        echo.extend_from_slice(&len.to_le_bytes());
        echo.push(1);
        echo.extend(b"{\"player\":1,\"x\":12.5,\"chat\":\"hello\"}".iter().copied());
    }
    out.push(("deflate_frames", "server-sends", echo));
    // 32 KiB of zeros (zlib level 9, sync flush, tail stripped) against a 100-byte limit:
    // 1009 after 101 bytes.
    let mut bomb = setup(plain, 100 - 64);
    let mut zeros = vec![0xec, 0xc1, 0x01, 0x01, 0x00, 0x00, 0x00, 0x80, 0x90, 0xfe, 0xaf, 0xee, 0x08, 0x0a];
    zeros.extend([0; 31]);
    zeros.push(0x18);
    bomb.extend(frame(0xc2, &zeros, 5));
    out.push(("deflate_frames", "bomb", bomb));
    out
}
