//! Shutdown and slow readers: the server closing (`Server::run` stopped, which is what the
//! `multipeer` binary does on SIGINT/SIGTERM) while packets are queued, and peers that read
//! slower than they are sent to.
//!
//! Every reliable packet the server accepted is delivered, or reported dropped with a reason;
//! none disappears silently. A reader that keeps up on average is never cut off; one that falls
//! behind by more than its outbound queue is cut off alone, after receiving everything up to
//! the cut in order.

use core::time::Duration;
use std::time::Instant;

use multipeer::peer::{DisconnectReason, DropReason, PeerId};
use multipeer_tests::hostile::honest::Honest;
use multipeer_tests::hostile::quick_config;
use multipeer_tests::hostile::raw::{Frame, READ_LIMIT, Raw, binary, frame};
use multipeer_tests::hostile::server::Harness;

const SECOND: Duration = Duration::from_secs(1);

/// A relay of a numbered packet of `len` bytes to `target`.
fn numbered(target: PeerId, n: u32, len: usize) -> Vec<u8> {
    let mut m = vec![7, 3];
    m.extend_from_slice(&target.get().to_le_bytes());
    m.push(3);
    m.extend_from_slice(&n.to_le_bytes());
    m.resize(6 + len, 0x11);
    binary(&m)
}

/// The number in a relayed packet `07 03 <from> 03 <n> ...`.
fn number(payload: &[u8]) -> Option<u32> {
    (payload.len() >= 11 && payload[..2] == [7, 3])
        .then(|| u32::from_le_bytes(payload[7..11].try_into().unwrap()))
}

fn join(server: &Harness, raw: Raw) -> (Raw, PeerId) {
    let (raw, id) = Raw::joined_godot4_from(raw);
    let id = PeerId::new(id).unwrap();
    server.wait("joined", SECOND, |o| o.peers.contains(&id));
    (raw, id)
}

#[test]
fn closing_the_server_delivers_or_reports_every_accepted_packet() {
    let mut config = quick_config();
    config.ws.close_timeout = Duration::from_secs(3);
    // Room for what the kernel cannot take, so the receiver is not cut off as a slow consumer.
    config.ws.outbound_queue_size = Some(16 << 20);
    let server = Harness::start(config);
    let (mut sender, s) = join(&server, Raw::connect(server.addr()));
    // A small receive buffer, so what the receiver has not read waits in the server's queue.
    let small = Raw::try_connect_with(None, Some(8 * 1024), server.addr()).unwrap();
    let (mut receiver, r) = join(&server, small);
    // The receiver does not read yet, so packets wait in the server's queue for it (and in the
    // kernel's buffers); the sender keeps sending from a thread while the server closes.
    const TOTAL: u32 = 10_000;
    let sending = std::thread::spawn(move || {
        let mut sent = 0;
        let started = Instant::now();
        for n in 0..TOTAL {
            if sender.send(&numbered(r, n, 1000)).is_err() {
                break;
            }
            sent += 1;
            // 10 packets a millisecond: the close lands in the middle.
            if n % 10 == 9 {
                let due = started + Duration::from_millis(u64::from(n / 10 + 1));
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
        // Then it answers the server's Close (after everything it sent), as any client does.
        let close = sender.read_close(READ_LIMIT).map(|(f, _)| (f.close_code(), f.close_reason()));
        let _ = sender.send(&frame(true, 0, 0x8, &1001u16.to_be_bytes()));
        let end = sender.wait_end(READ_LIMIT).map(|(e, _)| e);
        (sent, close, end)
    });
    // Close while the server holds packets for the receiver in its own queue (not only in the
    // kernel's buffers).
    let end = Instant::now() + 5 * SECOND;
    let mut queued = 0;
    while queued < 64 * 1024 {
        assert!(Instant::now() < end, "nothing queued for the receiver: {}", server.observed().summary());
        queued = server.command(move |s| s.peer().peer_info(r).map_or(0, |i| i.buffered_amount));
    }
    // Stop: every peer is closed with 1001 after what is queued for it.
    let stopping = std::thread::spawn(move || server.stop());
    // The receiver now reads everything that reaches it, then the Close, and answers it.
    let mut received = Vec::new();
    let close = loop {
        match receiver.read_frame(READ_LIMIT).expect("the receiver's stream") {
            Frame { opcode: 0x2, payload, .. } => {
                if let Some(n) = number(&payload) {
                    received.push(n);
                }
            }
            f if f.opcode == 0x8 => break (f.close_code(), f.close_reason()),
            f => panic!("{f:?}"),
        }
    };
    receiver.send(&frame(true, 0, 0x8, &1001u16.to_be_bytes())).unwrap();
    let (sent, sender_close, sender_end) = sending.join().unwrap();
    let observed = stopping.join().unwrap();
    assert_eq!(close, (Some(1001), "server closing".to_owned()));
    assert_eq!(sender_close.unwrap(), (Some(1001), "server closing".to_owned()));
    assert!(sender_end.is_ok(), "{sender_end:?}");
    // In order, without gaps, from the first.
    assert!(received.iter().copied().eq(0..received.len() as u32), "gaps or reordering");
    // Everything sent was read by the server: either delivered, or reported as sent by a peer
    // that had already been closed.
    let left = observed.drops().iter().filter(|d| **d == (Some(s), DropReason::SenderLeft)).count();
    assert_eq!(received.len() + left, sent as usize, "{}", observed.summary());
    assert_eq!(observed.stats.dropped as usize, left, "{}", observed.summary());
    assert_eq!(observed.connections, 0, "{}", observed.summary());
    for peer in [s, r] {
        assert_eq!(observed.departure(peer), Some(&DisconnectReason::Kicked), "{peer}");
    }
    eprintln!(
        "shutdown: {sent} sent, {} delivered ({queued} bytes were queued for the receiver at the close), \
         {left} reported (sender left)",
        received.len()
    );
    // Both fates were exercised: the close came in the middle of the stream.
    assert!(!received.is_empty() && left > 0 && sent == TOTAL, "the close came too early or too late");
}

#[test]
fn a_slow_reader_that_keeps_up_on_average_gets_everything() {
    let mut config = quick_config();
    config.ws.outbound_queue_size = Some(256 * 1024);
    let server = Harness::start(config);
    let honest = Honest::start(&server.url(), 2);
    let (mut sender, _) = join(&server, Raw::connect(server.addr()));
    let small = Raw::try_connect_with(None, Some(16 * 1024), server.addr()).unwrap();
    let (mut reader, r) = join(&server, small);
    reader.stream.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    // 2000 packets of 1 kB at 1 MB/s; the reader takes 32 kB every 20 ms (1.6 MB/s) in bursts.
    // A burst is counted in packets, not time: a debug build on a loaded machine reads too few
    // frames in a fixed 2 ms window to keep up, which made this test fail for the wrong reason.
    let sending = std::thread::spawn(move || {
        let started = Instant::now();
        for n in 0..2000u32 {
            sender.send(&numbered(r, n, 1000)).unwrap();
            if n % 10 == 9 {
                let due = started + Duration::from_millis(u64::from(n + 1));
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
        sender
    });
    let mut next = 0u32;
    let deadline = Instant::now() + Duration::from_secs(20);
    while next < 2000 {
        assert!(Instant::now() < deadline, "stalled at {next}");
        std::thread::sleep(Duration::from_millis(20));
        for _ in 0..32 {
            match reader.read_frame(Duration::from_millis(1)) {
                Ok(Frame { opcode: 0x2, payload, .. }) => {
                    if let Some(n) = number(&payload) {
                        assert_eq!(n, next);
                        next += 1;
                    }
                }
                Ok(f) => panic!("{f:?}"),
                Err(_) => break,
            }
        }
    }
    let _sender = sending.join().unwrap();
    honest.assert_flowing(3);
    honest.finish().assert_unaffected();
    let observed = server.stop();
    assert_eq!((observed.stats.slow_consumers, observed.stats.dropped), (0, 0), "{}", observed.summary());
    assert!(observed.departure(r).is_none_or(|d| *d == DisconnectReason::Kicked));
}

#[test]
fn a_reader_slower_than_its_traffic_is_cut_off_alone_after_an_unbroken_prefix() {
    let mut config = quick_config();
    config.ws.outbound_queue_size = Some(256 * 1024);
    let server = Harness::start(config);
    let honest = Honest::start(&server.url(), 2);
    let (mut sender, sender_id) = join(&server, Raw::connect(server.addr()));
    let small = Raw::try_connect_with(None, Some(16 * 1024), server.addr()).unwrap();
    let (mut reader, r) = join(&server, small);
    reader.stream.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    // 1 kB packets as fast as the sender can write; the reader takes 4 kB every 10 ms.
    let sending = std::thread::spawn(move || {
        let mut n = 0u32;
        while n < 20_000 && sender.send(&numbered(r, n, 1000)).is_ok() {
            n += 1;
            if n % 500 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        (sender, n)
    });
    let mut next = 0u32;
    let mut close = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut read_before_cut = None;
    while close.is_none() && Instant::now() < deadline {
        // Slow until the server gives up on it; then it reads what is left in the kernel's
        // buffers at full speed (megabytes, once the socket buffers have grown).
        let cut = server.with(|o| o.departure(r).is_some());
        if cut {
            read_before_cut.get_or_insert(next);
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
        for _ in 0..if cut { 10_000 } else { 4 } {
            match reader.read_frame(Duration::from_millis(1)) {
                Ok(Frame { opcode: 0x2, payload, .. }) => {
                    if let Some(n) = number(&payload) {
                        assert_eq!(n, next, "a gap before the cut");
                        next += 1;
                    }
                }
                Ok(f) if f.opcode == 0x8 => close = Some((f.close_code(), f.close_reason())),
                Ok(f) => panic!("{f:?}"),
                Err(_) => {
                    if server.with(|o| o.departure(r).is_some()) && server.with(|o| o.connections == 3) {
                        close = Some((None, "released".into()));
                    }
                    break;
                }
            }
        }
    }
    let close = close.expect("the slow reader was never cut off");
    // Either it read up to the Close 1008, or the server gave up on it after the close timeout.
    assert!(close == (Some(1008), "outbound queue full".to_owned()) || close.0.is_none(), "{close:?}");
    server.wait("the reader released", quick_config().ws.close_timeout + SECOND, |o| o.connections == 3);
    assert_eq!(server.with(|o| o.departure(r).cloned()), Some(DisconnectReason::SlowConsumer));
    let (_sender, sent) = sending.join().unwrap();
    assert!(server.with(|o| o.peers.contains(&sender_id)), "the sender was punished");
    honest.assert_flowing(3);
    honest.finish().assert_unaffected();
    let observed = server.stop();
    assert_eq!(observed.stats.slow_consumers, 1, "{}", observed.summary());
    eprintln!(
        "slow reader: {} read before the cut, {next} of {sent} in all, in order; ended with {close:?}",
        read_before_cut.unwrap_or(next)
    );
}
