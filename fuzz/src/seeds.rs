//! Seed inputs built from the test vectors of RFC 6455 and `godot-protocol.md` §10.
//!
//! The files under `fuzz/seeds/<target>/` are exactly these bytes; the replay test checks
//! that they are current and rewrites them when `MULTIPEER_WRITE_SEEDS=1` is set.

use multipeer::ws::frame::CloseCode;

use super::connection::{CLOSE_CODES, Op, Setup, encode_run};
use super::input::Output;

/// One seed file.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The cargo-fuzz target.
    pub target: &'static str,
    /// The file name.
    pub name: &'static str,
    /// The input.
    pub bytes: Vec<u8>,
}

/// RFC 6455 §1.3's sample request (protocols "chat, superchat", an Origin).
pub const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// `godot-protocol.md` §10.1: a Godot client's request (with the RFC sample key).
pub const GODOT_REQUEST: &[u8] = b"GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:18766\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: proto-b,proto-a\r\nX-Custom: yes\r\n\r\n";

/// §10.1: what a Godot-compatible server must accept (lower case, no Host, mixed tokens).
pub const LENIENT_REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n\
sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";

/// §10.1: a Godot server's 101 without a subprotocol, for the RFC sample key.
pub const GODOT_101: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// Frames of RFC 6455 §5.7 and `godot-protocol.md` §10.3–10.4, as whole frames.
pub const FRAMES: &[(&str, &[u8])] = &[
    ("rfc-text-hello", b"\x81\x05Hello"),
    ("rfc-masked-hello", b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
    ("rfc-fragment-hel", b"\x01\x03Hel"),
    ("rfc-fragment-lo", b"\x80\x02lo"),
    ("rfc-ping-hello", b"\x89\x05Hello"),
    ("rfc-masked-pong", b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
    ("rfc-binary-256", b"\x82\x7e\x01\x00"),
    ("rfc-binary-64k", b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ("godot4-id", b"\x82\x04\x39\x30\x00\x00"),
    ("godot4-add-peer", b"\x82\x06\x07\x01\x39\x30\x00\x00"),
    ("godot4-close-bye", b"\x88\x05\x0f\xa0bye"),
    ("godot-close-echo-going", b"\x88\x07\x03\xe9going"),
    ("godot-close-1002", b"\x88\x02\x03\xea"),
    ("godot-close-1009", b"\x88\x02\x03\xf1"),
    ("godot-pong-hi", b"\x8a\x02hi"),
    ("godot3-client-raw", b"\x82\x8b\x01\x02\x03\x04\x01\x3b\x33\x04\x01\x03\x03\x04\x01\x06\xa8"),
    ("reserved-opcode", b"\x83\x00"),
    ("length-high-bit", b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"),
];

/// Godot payloads (§10.2, §10.3) that the connection seeds carry in frames.
const GODOT4_ID: &[u8] = &[0x39, 0x30, 0, 0];
const GODOT4_ADD_PEER: &[u8] = &[0x07, 0x01, 0x39, 0x30, 0, 0];
const GODOT4_RELAY: &[u8] = &[0x07, 0x03, 0x32, 0x09, 0x01, 0x00, 0x03, 0xab];
const GODOT4_DIRECT: &[u8] = &[0x03, 0x61, 0x62];
const GODOT3_SYS_ID: &[u8] = &[0x03, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x39, 0x30, 0, 0];

/// A frame op: FIN set unless `more`, masked as the role expects, shortest length.
fn frame(opcode: u8, more: bool, payload: &[u8]) -> Op {
    Op::Frame { head: if more { opcode } else { 0x80 | opcode }, flags: 0x50, payload: payload.to_vec() }
}

fn close_frame(code: u16, reason: &str) -> Op {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    frame(0x8, false, &payload)
}

fn close_op(code: CloseCode, reason_len: u8) -> Op {
    let index = CLOSE_CODES.iter().position(|&c| c == code.0).unwrap_or(0);
    Op::Close { code: index as u8, reason: reason_len }
}

fn prefixed(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut out = Output::default();
    out.raw(prefix).raw(rest);
    out.bytes
}

/// Every seed, for every target.
#[must_use]
pub fn seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut add = |target, name, bytes| seeds.push(Seed { target, name, bytes });

    // handshake_request: header-array size, then the head.
    add("handshake_request", "rfc-sample", prefixed(&[64], RFC_REQUEST));
    add("handshake_request", "godot-client", prefixed(&[64], GODOT_REQUEST));
    add("handshake_request", "godot-lenient", prefixed(&[64], LENIENT_REQUEST));
    add("handshake_request", "too-few-slots", prefixed(&[3], RFC_REQUEST));
    let version_8 = String::from_utf8_lossy(LENIENT_REQUEST).replace("version: 13", "version: 8");
    add("handshake_request", "version-8", prefixed(&[64], version_8.as_bytes()));
    add("handshake_request", "two-headers", prefixed(&[64], b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"));

    // handshake_response: header-array size, offered-protocol bits, then the head.
    add("handshake_response", "godot-101", prefixed(&[64, 0], GODOT_101));
    let with_chat =
        String::from_utf8_lossy(GODOT_101).replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
    add("handshake_response", "protocol-chat", prefixed(&[64, 0b011], with_chat.as_bytes()));
    add("handshake_response", "protocol-unoffered", prefixed(&[64, 0b100], with_chat.as_bytes()));
    let keep_alive =
        String::from_utf8_lossy(GODOT_101).replace("Connection: Upgrade", "Connection: Upgrade, keep-alive");
    add("handshake_response", "connection-list", prefixed(&[64, 0], keep_alive.as_bytes()));
    add(
        "handshake_response",
        "status-400",
        prefixed(&[64, 0], b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"),
    );

    for (name, bytes) in FRAMES {
        add("frame_header", name, bytes.to_vec());
    }

    for (name, bytes) in server_seeds() {
        add("connection_server", name, bytes);
    }
    for (name, bytes) in client_seeds() {
        add("connection_client", name, bytes);
    }
    #[cfg(feature = "deflate")]
    for (target, name, bytes) in super::deflate::seeds() {
        add(target, name, bytes);
    }
    for (target, name, bytes) in super::seeds_multiplayer::seeds() {
        add(target, name, bytes);
    }
    for (target, name, bytes) in super::variant::seeds()
        .into_iter()
        .chain(super::scene_rpc::seeds())
        .chain(super::scene_machine::seeds())
        .chain(super::cluster::seeds())
    {
        add(target, name, bytes);
    }
    seeds
}

fn server_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let all = usize::MAX as u16;
    let godot_session = [
        Op::Decide(0),
        Op::Transmit(all),
        frame(0x2, false, GODOT4_DIRECT),
        frame(0x2, false, GODOT4_RELAY),
        frame(0x1, true, b"Hel"),
        frame(0x9, false, b"hi"),
        frame(0x0, false, b"lo"),
        Op::Pop,
        Op::Recv(255),
        Op::Pop,
        Op::Send { kind: 0, len: 4 },
        Op::Send { kind: 1, len: 11 },
        Op::Transmit(3),
        Op::Transmit(all),
        close_frame(1001, "going"),
        Op::Events,
        Op::Transmit(all),
    ];
    let tight = [
        Op::Decide(4),
        Op::Transmit(all),
        frame(0x2, false, &[0x11; 64]),
        frame(0x2, false, &[0x22; 10]),
        frame(0x2, false, &[0x33; 10]),
        Op::Receive(vec![]),
        Op::Pop,
        Op::Receive(vec![]),
        Op::Send { kind: 0, len: 60 },
        Op::Send { kind: 0, len: 10 },
        Op::Advance(0x80 | 1),
        Op::Advance(0xc0),
        Op::Transmit(7),
        Op::Advance(0xc0),
        Op::Events,
    ];
    let raw_request_rejected = [
        Op::Receive(RFC_REQUEST[..40].to_vec()),
        Op::Receive(RFC_REQUEST[40..].to_vec()),
        Op::Events,
        Op::Decide(6),
    ];
    let bad_frames =
        [Op::Decide(1), Op::Frame { head: 0x81, flags: 0x51, payload: b"unmasked".to_vec() }, Op::Events];
    let invalid_utf8 = [Op::Decide(0), frame(0x1, true, &[0xce]), frame(0x0, false, &[0xff]), Op::Events];
    let too_big = [
        Op::Decide(0),
        Op::Receive(b"\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec()),
        Op::Events,
        Op::Transmit(all),
    ];
    let server_closes = [
        Op::Decide(0),
        Op::Send { kind: 1, len: 6 },
        close_op(CloseCode(4000), 3),
        Op::Transmit(all),
        close_frame(4000, "bye"),
        Op::Events,
    ];
    let timeout = [Op::Events, Op::Advance(0xc0), Op::Events, Op::Transmit(all)];
    // An echo server with tight limits (2 messages queued each way): forwards what it reads;
    // the third message waits for inbound room, then for the first two to be written.
    let echo = [
        Op::Decide(0),
        Op::Transmit(all),
        frame(0x2, false, &[0x44; 40]),
        frame(0x1, true, "hé".as_bytes()),
        frame(0x0, false, "llo".as_bytes()),
        frame(0x2, false, &[0x55; 30]),
        Op::Forward,
        Op::Forward,
        Op::Receive(vec![]),
        Op::Forward,
        Op::Transmit(all),
        Op::Forward,
        Op::Transmit(all),
        Op::Events,
    ];
    // Write-through: each pick of how much the transport takes, echoes and sends, with output
    // queued before some of them (so the transport is not offered those).
    let mut through = vec![Op::Decide(0), Op::Transmit(all)];
    for pick in 0..8u8 {
        through.push(frame(0x2, false, &[pick; 200]));
        through.push(Op::ForwardThrough(pick));
        through.push(Op::Send { kind: 8 | pick << 4, len: 300 });
        through.push(Op::Send { kind: 9 | pick << 4, len: 7 });
        if pick % 2 == 0 {
            through.push(Op::Transmit(all));
        }
    }
    // All at once: five messages, each cut of the one write.
    for pick in 0..8u8 {
        for i in 0..5u8 {
            through.push(frame(
                if i == 1 { 0x1 } else { 0x2 },
                false,
                &vec![b'a' + i; 40 + 300 * usize::from(i)],
            ));
        }
        through.push(Op::ForwardThrough(8 | pick));
        if pick % 2 == 1 {
            through.push(Op::Transmit(all));
        }
    }
    through.extend([Op::Transmit(all), Op::Events]);
    let godot = Setup::GODOT;
    let tight_setup = Setup::TIGHT;
    vec![
        ("godot4-session", encode_run(godot, &[1], &godot_session)),
        ("tight-limits-heartbeat", encode_run(tight_setup, &[1 | 0b011 << 5], &tight)),
        ("rfc-request-rejected", encode_run(godot, &[0], &raw_request_rejected)),
        ("godot-lenient-unmasked", encode_run(godot, &[1 | 4 | 8 | 16], &bad_frames)),
        ("invalid-utf8-across-fragments", encode_run(godot, &[1], &invalid_utf8)),
        ("message-too-big", encode_run(godot, &[1], &too_big)),
        (
            "server-closes",
            encode_run(Setup([2, 255, 255, 255, 255, 255, 255, 255, 0x88]), &[1], &server_closes),
        ),
        ("handshake-timeout", encode_run(godot, &[1], &timeout)),
        ("echo-forward", encode_run(tight_setup, &[1], &echo)),
        ("write-through", encode_run(godot, &[1], &through)),
    ]
}

fn client_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let all = usize::MAX as u16;
    let godot4 = [
        Op::Transmit(all),
        frame(0x2, false, GODOT4_ID),
        frame(0x2, false, GODOT4_ADD_PEER),
        frame(0x1, false, "héllo".as_bytes()),
        frame(0x9, false, b"hi"),
        Op::Pop,
        Op::Recv(3),
        Op::Recv(64),
        Op::Send { kind: 3, len: 8 },
        Op::Transmit(all),
        frame(0x8, false, b"\x0f\xa0bye"),
        Op::Events,
        Op::Transmit(all),
        Op::Eof,
    ];
    let godot3 = [
        frame(0x2, false, GODOT3_SYS_ID),
        Op::Frame { head: 0x82, flags: 0x02, payload: GODOT3_SYS_ID.to_vec() },
        Op::Frame { head: 0x82, flags: 0x04, payload: GODOT3_SYS_ID.to_vec() },
        Op::Pop,
        Op::Pop,
        Op::Pop,
    ];
    let heartbeat = [
        Op::Advance(0xc0),
        Op::Transmit(all),
        frame(0xa, false, b""),
        Op::Events,
        Op::Advance(0xc0),
        Op::Advance(0xc0),
        Op::Events,
    ];
    let client_closes = [
        Op::Ping(5),
        close_op(CloseCode::NORMAL, 0),
        Op::Transmit(all),
        close_frame(1000, ""),
        Op::Events,
        Op::Advance(0xc0),
        Op::Events,
    ];
    let rejected =
        [Op::Receive(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n".to_vec()), Op::Events];
    let godot = Setup::GODOT;
    vec![
        ("godot4-session", encode_run(godot, &[0, 1], &godot4)),
        ("godot3-frames-length-forms", encode_run(godot, &[0b0010_0000, 1], &godot3)),
        ("protocol-first-offered", encode_run(godot, &[0b0001_1011, 1 | 1 << 2 | 1 << 5], &[Op::Events])),
        ("protocol-never-offered", encode_run(godot, &[0b011, 1 | 3 << 2], &[Op::Events])),
        ("heartbeat-timeout", encode_run(Setup::TIGHT, &[0b100, 1 | 2 << 2 | 1 << 4], &heartbeat)),
        ("client-closes", encode_run(godot, &[0, 1], &client_closes)),
        ("http-400", encode_run(godot, &[0, 0], &rejected)),
    ]
}
