//! Hostile frames from a peer that completed the handshake and joined, against the real server
//! while honest peers keep relaying through it.
//!
//! Each protocol violation must close the attacker with the exact RFC 6455 code and reason,
//! report its departure as `Closed` by the library with the exact `ws::Error`, release its
//! connection, leave the honest peers' traffic untouched, and keep the attacker's buffers within
//! its limits whatever length it claims.

use core::time::Duration;

use multipeer::peer::{DisconnectReason, PeerId};
use multipeer::ws::{Error, Initiator};
use multipeer_tests::hostile::honest::Honest;
use multipeer_tests::hostile::quick_config;
use multipeer_tests::hostile::raw::{READ_LIMIT, Raw, binary, frame, header};
use multipeer_tests::hostile::server::Harness;

const SECOND: Duration = Duration::from_secs(1);
const MASK: [u8; 4] = [1, 2, 3, 4];

/// Joins a raw peer and waits until the server counts it.
fn join(server: &Harness) -> (Raw, PeerId) {
    let (raw, id) = Raw::joined_godot4(server.addr());
    let id = PeerId::new(id).expect("a valid id");
    server.wait("the attacker joined", SECOND, |o| o.peers.contains(&id));
    (raw, id)
}

/// Joins, sends `bytes`, and expects a Close with `code` and `error`'s text, the end of the
/// connection, and the departure reported with exactly that error.
fn expect_closed(server: &Harness, name: &str, bytes: &[u8], code: u16, error: Error) -> PeerId {
    let (mut raw, id) = join(server);
    // Writing may fail once the server closed: the bytes it needed were read by then.
    let _ = raw.send(bytes);
    let (close, _) = raw.read_close(READ_LIMIT).unwrap_or_else(|e| panic!("{name}: no Close: {e}"));
    assert_eq!((close.close_code(), close.close_reason()), (Some(code), error.to_string()), "{name}");
    raw.wait_end(READ_LIMIT).unwrap_or_else(|e| panic!("{name}: not closed: {e}"));
    server.wait(&format!("{name}: departure"), SECOND, |o| o.departure(id).is_some());
    let reason = server.with(|o| o.departure(id).cloned()).expect("departed");
    let DisconnectReason::Closed(info) = reason else { panic!("{name}: {reason:?}") };
    assert_eq!(
        (info.code.0, info.initiator, info.error, info.clean, info.reason.as_str()),
        (code, Initiator::Library, Some(error), false, error.to_string().as_str()),
        "{name}"
    );
    server.wait_connections(2, SECOND);
    id
}

#[test]
fn protocol_violations_close_with_the_exact_code_and_release() {
    let server = Harness::start(quick_config());
    let honest = Honest::start(&server.url(), 2);
    let msb = header(true, 0, 0x2, Some(MASK), 1 << 63 | 5);
    let two_63 = header(true, 0, 0x2, Some(MASK), 1 << 63);
    let mut fragmented_text = frame(false, 0, 0x1, &[b'a', 0xe2, 0x82]);
    fragmented_text.extend(frame(true, 0, 0x0, &[0x28]));
    let mut truncated_text = frame(false, 0, 0x1, b"ok");
    truncated_text.extend(frame(true, 0, 0x0, &[0xe2, 0x82]));
    let mut binary_then_text = frame(false, 0, 0x2, b"a");
    binary_then_text.extend(frame(true, 0, 0x1, b"b"));
    let too_big = Error::MessageTooBig { limit: 65535 };
    let mut cases: Vec<(String, Vec<u8>, u16, Error)> = vec![
        ("length with the MSB set".into(), msb, 1002, Error::LengthOverflow),
        ("length 2^63".into(), two_63, 1002, Error::LengthOverflow),
        ("length 2^63-1".into(), header(true, 0, 0x2, Some(MASK), (1 << 63) - 1), 1009, too_big),
        ("length 2^32".into(), header(true, 0, 0x2, Some(MASK), 1 << 32), 1009, too_big),
        ("length 65536".into(), header(true, 0, 0x2, Some(MASK), 65536), 1009, too_big),
        ("unmasked frame".into(), header(true, 0, 0x2, None, 0), 1002, Error::UnmaskedFrame),
        ("ping longer than 125".into(), frame(true, 0, 0x9, &[0; 126]), 1002, Error::ControlFrameTooLong),
        ("close longer than 125".into(), frame(true, 0, 0x8, &[3; 126]), 1002, Error::ControlFrameTooLong),
        ("fragmented ping".into(), frame(false, 0, 0x9, b"x"), 1002, Error::FragmentedControlFrame),
        ("fragmented close".into(), frame(false, 0, 0x8, &[3, 232]), 1002, Error::FragmentedControlFrame),
        ("continuation first".into(), frame(true, 0, 0x0, b"x"), 1002, Error::UnexpectedContinuation),
        ("new message inside a fragmented one".into(), binary_then_text, 1002, Error::ExpectedContinuation),
        ("invalid UTF-8 split across fragments".into(), fragmented_text, 1007, Error::InvalidUtf8),
        ("text ending inside a character".into(), truncated_text, 1007, Error::InvalidUtf8),
        ("close with one byte".into(), frame(true, 0, 0x8, &[3]), 1002, Error::InvalidClosePayload),
        ("close reason not UTF-8".into(), frame(true, 0, 0x8, &[3, 232, 0xff]), 1007, Error::InvalidUtf8),
    ];
    for rsv in 1..8 {
        cases.push((format!("RSV {rsv:#05b}"), frame(true, rsv, 0x2, b"x"), 1002, Error::ReservedBits(rsv)));
    }
    for op in (3..8).chain(0xb..0x10) {
        cases.push((format!("opcode {op:#x}"), frame(true, 0, op, b""), 1002, Error::ReservedOpcode(op)));
    }
    for code in [0u16, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2999, 5000, 65535] {
        let payload = code.to_be_bytes();
        cases.push((
            format!("close code {code}"),
            frame(true, 0, 0x8, &payload),
            1002,
            Error::InvalidCloseCode(code),
        ));
    }
    let mut attackers = Vec::new();
    for (name, bytes, code, error) in &cases {
        attackers.push(expect_closed(&server, name, bytes, *code, *error));
        honest.assert_flowing(2);
    }
    honest.finish().assert_unaffected();
    let observed = server.stop();
    // Nothing any attacker sent reached the application or another peer, and none of them held
    // more than a header's worth of buffer, whatever its frame claimed.
    assert!(observed.packets.is_empty(), "{:?}", observed.packets);
    for id in &attackers {
        let footprint = observed.peer_footprint.get(id).copied().unwrap_or(0);
        assert!(footprint <= 1024, "peer {id} held {footprint} bytes: {}", observed.summary());
    }
    assert!(observed.max_footprint < 32 * 1024, "{}", observed.summary());
    assert_eq!(observed.stats.dropped, 0, "{}", observed.summary());
}

#[test]
fn a_million_one_byte_continuations_stop_at_max_fragments() {
    let server = Harness::start(quick_config());
    let honest = Honest::start(&server.url(), 2);
    let (mut raw, id) = join(&server);
    let first = frame(false, 0, 0x2, b"x");
    let one = frame(false, 0, 0x0, b"x");
    let mut batch = Vec::with_capacity(10_000 * one.len());
    for _ in 0..10_000 {
        batch.extend_from_slice(&one);
    }
    let _ = raw.send(&first);
    let mut sent = 1usize;
    // 10^6 frames in batches of 10^4; the server stops reading them after 4096.
    for _ in 0..100 {
        if raw.send(&batch).is_err() {
            break;
        }
        sent += 10_000;
    }
    let (close, _) = raw.read_close(READ_LIMIT).expect("a Close");
    let error = Error::TooManyFragments { limit: 4096 };
    assert_eq!((close.close_code(), close.close_reason()), (Some(1009), error.to_string()));
    raw.wait_end(READ_LIMIT).expect("closed");
    server.wait_connections(2, SECOND);
    honest.assert_flowing(3);
    honest.finish().assert_unaffected();
    let observed = server.stop();
    let Some(DisconnectReason::Closed(info)) = observed.departure(id) else {
        panic!("{}", observed.summary())
    };
    assert_eq!((info.error, info.initiator), (Some(error), Initiator::Library));
    // The 4096 one-byte fragments were the only buffered bytes (a few KiB with queue headers).
    let footprint = observed.peer_footprint[&id];
    assert!(footprint <= 16 * 1024, "{footprint} bytes for {sent} frames: {}", observed.summary());
    assert!(observed.packets.is_empty());
}

#[test]
fn an_oversized_claim_with_its_bytes_is_refused_before_buffering() {
    let server = Harness::start(quick_config());
    let honest = Honest::start(&server.url(), 2);
    let (mut raw, id) = join(&server);
    // A 16 MiB message announced and sent: refused from its header, nothing buffered.
    let mut bytes = header(true, 0, 0x2, Some(MASK), 16 << 20);
    bytes.resize(bytes.len() + (1 << 20), 0x55);
    let _ = raw.send(&bytes);
    let (close, _) = raw.read_close(READ_LIMIT).expect("a Close");
    assert_eq!(close.close_code(), Some(1009));
    raw.wait_end(READ_LIMIT).expect("closed");
    // The largest message allowed, 65535 bytes, is delivered whole.
    let (mut ok, ok_id) = join(&server);
    let big = vec![0x42u8; 65535];
    ok.send(&binary(&big)).unwrap();
    server.wait("the 65535-byte packet", SECOND, |o| o.packets.iter().any(|(f, d)| *f == ok_id && *d == big));
    honest.assert_flowing(3);
    honest.finish().assert_unaffected();
    drop(ok);
    let observed = server.stop();
    assert!(observed.peer_footprint[&id] <= 1024, "{}", observed.summary());
    // The allowed message needed its 64 KiB, and no more than twice that.
    assert!(observed.peer_footprint[&ok_id] <= 2 * 65536, "{}", observed.summary());
}

#[test]
fn valid_utf8_split_across_fragments_and_a_valid_close_are_accepted() {
    let server = Harness::start(quick_config());
    let (mut raw, id) = join(&server);
    let mut euro = frame(false, 0, 0x1, &[b'a', 0xe2, 0x82]);
    euro.extend(frame(false, 0, 0x0, &[]));
    euro.extend(frame(true, 0, 0x9, b"mid-message ping"));
    euro.extend(frame(true, 0, 0x0, &[0xac]));
    raw.send(&euro).unwrap();
    let pong = raw.read_frame(READ_LIMIT).expect("a pong");
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xa, &b"mid-message ping"[..]));
    server.wait("the text", SECOND, |o| o.packets.iter().any(|(f, d)| *f == id && d == "a€".as_bytes()));
    // An application close code with a reason: echoed, clean, reported as the peer's.
    raw.send(&frame(true, 0, 0x8, b"\x0f\xa0bye")).unwrap();
    let (close, _) = raw.read_close(READ_LIMIT).expect("the echo");
    assert_eq!((close.close_code(), close.close_reason()), (Some(4000), "bye".to_owned()));
    raw.wait_end(READ_LIMIT).expect("closed");
    // Data after the Close is never read (the connection is gone or discards it).
    let _ = raw.send(&binary(b"after close"));
    server.wait_connections(0, SECOND);
    let observed = server.stop();
    let Some(DisconnectReason::Closed(info)) = observed.departure(id) else {
        panic!("{}", observed.summary())
    };
    assert_eq!(
        (info.code.0, info.reason.as_str(), info.initiator, info.clean),
        (4000, "bye", Initiator::Remote, true)
    );
    assert_eq!(observed.packets.len(), 1, "{:?}", observed.packets);
}

#[test]
fn data_after_close_is_discarded_and_never_delivered() {
    let server = Harness::start(quick_config());
    let (mut raw, id) = join(&server);
    let mut bytes = frame(true, 0, 0x8, &1000u16.to_be_bytes());
    bytes.extend(binary(b"after close"));
    bytes.extend(frame(true, 0, 0x9, b"after close"));
    raw.send(&bytes).unwrap();
    let (close, before) = raw.read_close(READ_LIMIT).expect("the echo");
    assert_eq!((close.close_code(), before), (Some(1000), 0), "no pong after the close");
    raw.wait_end(READ_LIMIT).expect("closed");
    server.wait_connections(0, SECOND);
    let observed = server.stop();
    assert!(observed.packets.is_empty(), "{:?}", observed.packets);
    assert!(
        matches!(observed.departure(id), Some(DisconnectReason::Closed(i)) if i.clean && i.code.0 == 1000)
    );
    assert_eq!(observed.stats.dropped, 0, "nothing was read to drop: {}", observed.summary());
}

#[test]
fn a_ping_flood_that_never_reads_pongs_meets_back_pressure() {
    let server = Harness::start(quick_config());
    let honest = Honest::start(&server.url(), 2);
    let (mut raw, id) = join(&server);
    raw.stream.set_nonblocking(true).unwrap();
    // 125-byte pings numbered in their first 8 bytes; the attacker never reads.
    let ping = |n: u64| {
        let mut payload = [0xeeu8; 125];
        payload[..8].copy_from_slice(&n.to_le_bytes());
        frame(true, 0, 0x9, &payload)
    };
    let frame_len = ping(0).len();
    let mut written = 0usize;
    let mut next = 0u64;
    let mut out: Vec<u8> = Vec::new();
    let mut stalled_since = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // Write until the kernel buffers on both sides are full and the server stopped reading.
    while std::time::Instant::now() < deadline {
        if out.is_empty() {
            out = (next..next + 64).flat_map(ping).collect();
            next += 64;
        }
        match std::io::Write::write(&mut raw.stream, &out) {
            Ok(n) => {
                written += n;
                out.drain(..n);
                stalled_since = None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > Duration::from_millis(300) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    // A ping cut by the stall is never completed, so never answered.
    let sent = (written / frame_len) as u64;
    assert!(stalled_since.is_some(), "the server kept reading {sent} pings without their pongs being read");
    // While stalled: the attacker is still connected, its queue is a few pongs, others flow.
    honest.assert_flowing(5);
    let during = server.observed();
    assert!(during.peers.contains(&id));
    let queued = during.peer_buffered.get(&id).copied().unwrap_or(0);
    assert!(queued <= 8 * 127 + 64, "{queued} bytes of pongs queued for {sent} pings");
    // Now it reads: every ping is answered, once, in order, with its own payload.
    raw.stream.set_nonblocking(false).unwrap();
    let mut n = 0;
    while n < sent {
        let pong = raw.read_frame(READ_LIMIT).unwrap_or_else(|e| panic!("pong {n} of {sent}: {e}"));
        if pong.opcode == 0x2 {
            // ADD_PEER for the honest peers, queued at join.
            assert_eq!(&pong.payload[..2], &[7, 1], "{pong:?}");
            continue;
        }
        assert_eq!((pong.opcode, &pong.payload[..8]), (0xa, &n.to_le_bytes()[..]), "pong {n}");
        n += 1;
    }
    assert!(raw.silent_for(Duration::from_millis(100)).unwrap(), "more pongs than pings");
    honest.finish().assert_unaffected();
    drop(raw);
    let observed = server.stop();
    let footprint = observed.peer_footprint[&id];
    assert!(footprint <= 8 * 1024, "{footprint} bytes held for a flood of {sent} pings");
    assert!(sent > 1000, "only {sent} pings were needed to stall");
}
