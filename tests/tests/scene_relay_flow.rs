//! SceneMultiplayer's relay flow control over real sockets, against the real
//! `multipeer serve --auth-token` (the relay is then the core's SceneMultiplayer machine, not
//! the transport's): four authenticated clients; A floods B, which never reads; C's packets to
//! D keep flowing, complete and in order, while A waits; B alone is cut off with 1008 after
//! `--slow-peer-timeout`, not before; A was slowed meanwhile (its socket was not read).

use core::net::SocketAddr;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use multipeer_tests::hostile::flood::{Received, Wire};
use multipeer_tests::hostile::raw::{Frame, Raw, binary};
use multipeer_tests::hostile::serve::Serve;

const TOKEN: &str = "s3cret";
const TIMEOUT_SECS: u64 = 8;
const FLOOD: u32 = 4096;
const FLOOD_SIZE: usize = 16 * 1024;
const BYSTANDER: u32 = 1000;
const BYSTANDER_SIZE: usize = 4 * 1024;

/// Joins, authenticates with the token, and reads up to the server's `07 00`.
fn join(addr: SocketAddr) -> (Raw, u32) {
    let (mut raw, id) = Raw::joined_godot4(addr);
    raw.send(&binary(&[&[7, 0][..], TOKEN.as_bytes()].concat())).expect("auth data");
    raw.send(&binary(&[7, 0])).expect("auth completion");
    loop {
        let frame = raw.read_frame(Duration::from_secs(10)).expect("the server's auth completion");
        assert_eq!(frame.opcode, 0x2, "{frame:?}");
        if frame.payload == [7, 0] {
            return (raw, id);
        }
    }
}

/// Sends `count` numbered relays of `size` bytes from `from` to `to` on its own thread.
fn flood(mut raw: Raw, from: u32, to: u32, count: u32, size: usize) -> (JoinHandle<Raw>, Arc<AtomicU32>) {
    raw.stream.set_write_timeout(Some(Duration::from_secs(60))).expect("write timeout");
    let sent = Arc::new(AtomicU32::new(0));
    let counter = sent.clone();
    let thread = std::thread::spawn(move || {
        for seq in 0..count {
            let target = i32::try_from(to).expect("a peer id");
            if raw.send(&Wire::Godot4.packet(from, target, seq, size)).is_err() {
                break;
            }
            counter.store(seq + 1, Ordering::SeqCst);
        }
        raw
    });
    (thread, sent)
}

#[test]
fn a_stalled_receiver_does_not_stop_relays_between_others_and_is_cut_off() {
    let timeout = TIMEOUT_SECS.to_string();
    let mut serve = Serve::start(&["--auth-token", TOKEN, "--slow-peer-timeout", &timeout]);
    let addr = serve.addr();
    let (a, ia) = join(addr);
    let (mut b, ib) = join(addr);
    let (c, ic) = join(addr);
    let (mut d, id) = join(addr);

    // A floods B, which reads nothing from now on.
    let started = Instant::now();
    let (flooder, a_sent) = flood(a, ia, ib, FLOOD, FLOOD_SIZE);
    serve.wait("A waiting on B", Duration::from_secs(10), |s| s.waiting_senders >= 1);

    // Meanwhile C's relays to D go through, all of them, in order.
    let (bystander, _) = flood(c, ic, id, BYSTANDER, BYSTANDER_SIZE);
    let mut received = Received::default();
    // Well before B's timeout, so that a loaded machine cannot blur the two.
    let end = Instant::now() + Duration::from_secs(TIMEOUT_SECS - 3);
    while received.packets < BYSTANDER && Instant::now() < end {
        match d.read_frame(Duration::from_millis(100)) {
            Ok(Frame { opcode: 0x2, payload, .. }) => received.take(Wire::Godot4, BYSTANDER, &payload),
            Ok(frame) => panic!("D got {frame:?}"),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("D: {e}"),
        }
    }
    let bystanders_done = started.elapsed();
    assert_eq!(
        received.packets, BYSTANDER,
        "D got {} of C's packets: {:?}",
        received.packets, received.problems
    );
    assert!(received.problems.is_empty(), "{:?}", received.problems);
    assert_eq!(received.next.get(&ic), Some(&BYSTANDER));
    let status = serve.status();
    assert_eq!(status.evicted, 0, "evicted before the timeout: {status:?}");
    assert!(status.waiting_senders >= 1, "A still waits: {status:?}");
    let bystander = bystander.join().expect("bystander thread");

    // B is cut off after the timeout (not before), and A was slowed down until then.
    let sent_while_b_stalled = a_sent.load(Ordering::SeqCst);
    serve.wait("B evicted", Duration::from_secs(TIMEOUT_SECS + 10), |s| s.evicted >= 1);
    let evicted_after = started.elapsed();
    let (close, _) = b.read_close(Duration::from_secs(20)).expect("B's Close after its queued packets");
    assert_eq!(close.close_code(), Some(1008));
    assert_eq!(close.close_reason(), "slow peer: outbound queue full, not draining");
    assert!(
        evicted_after >= Duration::from_secs(TIMEOUT_SECS - 1),
        "B evicted after {evicted_after:?}, the timeout is {TIMEOUT_SECS} s"
    );
    assert!(
        sent_while_b_stalled < FLOOD / 2,
        "A wrote {sent_while_b_stalled} of {FLOOD} packets of {FLOOD_SIZE} bytes while B read nothing"
    );
    eprintln!(
        "bystanders done at {bystanders_done:?}; B evicted at {evicted_after:?}; A had written \
         {sent_while_b_stalled} x {FLOOD_SIZE} B before"
    );

    // Nobody else was disconnected: C and D are still peers, and D learns that B left.
    let status = serve.wait("B gone", Duration::from_secs(10), |s| s.peers == 3);
    assert_eq!(status.evicted, 1);
    let end = Instant::now() + Duration::from_secs(10);
    while !received.left.iter().any(|(p, _)| *p == ib) && Instant::now() < end {
        if let Ok(Frame { opcode: 0x2, payload, .. }) = d.read_frame(Duration::from_millis(100)) {
            received.take(Wire::Godot4, BYSTANDER, &payload);
        }
    }
    assert!(received.left.iter().any(|(p, _)| *p == ib), "D was told B left");
    let (status, output) = serve.stop();
    assert_eq!(status.evicted, 1, "{output}");
    // The server is gone: A's blocked write fails and its thread ends.
    drop((bystander, flooder.join().expect("flooder thread")));
}
