//! Soak: thousands of peers relaying at a steady rate through the real server (multipeer-mio's
//! `Server::run` in a child process, so its memory is its own) for a bounded time.
//!
//! Every reliable packet is accounted for: each receiver checks that packets from each sender
//! arrive in increasing order, and at the end every packet sent was received exactly once (no
//! drop, no slow consumer, no unreported event on the server). The server's resident memory is
//! sampled every second and must stay flat after warm-up; its queues never exceed their bound.
//!
//! Settings (environment): `SOAK_SECS` (traffic time, default 120), `SOAK_PEERS` (2000),
//! `SOAK_RATE` (packets per second per peer, default 2), `SOAK_SIZE` (payload bytes, 64).
//! It is `#[ignore]`d so `cargo test` stays quick; run it with
//! `cargo test -p multipeer-tests --test soak -- --ignored --nocapture` (debug: 2000 peers join
//! in about 15 s, since the Godot protocol announces every peer to every other, N² messages).

use core::time::Duration;
use std::time::Instant;

use multipeer::peer::Target;
use multipeer_tests::hostile::child::Child;
use multipeer_tests::soak::{SoakPeers, XorShift, env, kib};

#[test]
#[ignore = "minutes long: cargo test -p multipeer-tests --test soak -- --ignored --nocapture"]
fn thousands_of_peers_relay_for_minutes_without_loss_in_flat_memory() {
    let secs = env("SOAK_SECS", 120);
    let n = env("SOAK_PEERS", 2000) as usize;
    let rate = env("SOAK_RATE", 2) as f64;
    let size = env("SOAK_SIZE", 64) as usize;
    let hard_end = Instant::now() + Duration::from_secs(secs + 300);
    let peers_arg = (n + 16).to_string();
    let mut child =
        Child::start(env!("CARGO_BIN_EXE_soak_server"), &["--max-peers", &peers_arg, "--status-ms", "200"]);
    let url = child.url();
    let rss_start = child.rss().0;
    let mut peers = SoakPeers::new(n, 0);

    // Join in batches, then every peer learns every other (N² announcements).
    let joining = Instant::now();
    peers.join(&url);
    let ids = peers.await_announcements((Instant::now() + Duration::from_secs(120)).min(hard_end));
    let joined_in = joining.elapsed();
    let rss_joined = child.rss().0;

    // Steady traffic: each peer sends `rate` packets a second to a pseudo-random other peer;
    // once a second one peer broadcasts to everyone.
    let started = Instant::now();
    let warm_up = Duration::from_secs((secs / 4).max(5)).min(Duration::from_secs(secs));
    let mut rss_warm = None;
    let mut rss_peak_after_warm = 0;
    let mut samples = Vec::new();
    let mut next_sample = started;
    let mut credit = 0.0f64;
    let mut last_tick = started;
    let mut rng = XorShift::new();
    let mut next_broadcast = started + Duration::from_secs(1);
    let mut broadcaster = 0;
    let mut max_buffered = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        let now = Instant::now();
        credit += rate * n as f64 * (now - last_tick).as_secs_f64();
        last_tick = now;
        while credit >= 1.0 {
            credit -= 1.0;
            let r = rng.next_u64();
            let sender = (r % n as u64) as usize;
            let target = (sender + 1 + ((r >> 32) % (n as u64 - 1)) as usize) % n;
            if let Err(e) = peers.send(sender, Target::Peer(ids[target]), size) {
                peers.problem(format!("client {sender}: put_packet: {e}"));
            }
        }
        if now >= next_broadcast {
            next_broadcast += Duration::from_secs(1);
            if let Err(e) = peers.send(broadcaster, Target::Broadcast, size) {
                peers.problem(format!("client {broadcaster}: broadcast: {e}"));
            }
            broadcaster = (broadcaster + 1) % n;
        }
        peers.turn(Duration::from_millis(5));
        if now >= next_sample {
            next_sample += Duration::from_secs(1);
            let rss = child.rss().0;
            let status = child.status().clone();
            max_buffered = max_buffered.max(status.get("max_buffered").copied().unwrap_or(0));
            samples.push((
                started.elapsed().as_secs(),
                kib(rss),
                status.get("packets_out").copied().unwrap_or(0),
            ));
            if started.elapsed() >= warm_up {
                rss_warm.get_or_insert(rss);
                rss_peak_after_warm = rss_peak_after_warm.max(rss);
            }
        }
        assert!(peers.problems.is_empty(), "{:?}", peers.problems);
    }
    let traffic = started.elapsed();

    // Drain: everything sent must arrive.
    let draining = Instant::now();
    while !peers.all_arrived() {
        assert!(draining.elapsed() < Duration::from_secs(30), "not all packets arrived");
        peers.turn(Duration::from_millis(5));
    }
    let rss_end = child.rss().0;
    let (_, rss_peak) = child.rss();
    rss_peak_after_warm = rss_peak_after_warm.max(rss_end);
    let sent = peers.sent();
    let status = child.wait("the last packets counted", Duration::from_secs(5), |s| s["packets_in"] == sent);
    drop(peers.clients);
    let end = child.stop();

    let delivered: u64 = peers.received_from.iter().sum();
    let rss_warm = rss_warm.unwrap_or(rss_end);
    let per_peer = (rss_joined.saturating_sub(rss_start)) / n as u64;
    let msgs_per_sec = delivered as f64 / traffic.as_secs_f64();
    eprintln!(
        "SOAK peers={n} secs={} rate={rate}/s/peer size={size} joined_in={joined_in:.1?} sent={sent} \
         delivered={delivered} relayed_per_sec={msgs_per_sec:.0} server_packets_in={} server_packets_out={} \
         rss_start_kib={} rss_joined_kib={} per_peer_bytes={per_peer} rss_after_warmup_kib={} \
         rss_peak_after_warmup_kib={} rss_end_kib={} rss_hwm_kib={} max_buffered={max_buffered} \
         max_footprint={} dropped={} slow_consumers={} unreported={}",
        traffic.as_secs(),
        status["packets_in"],
        status["packets_out"],
        kib(rss_start),
        kib(rss_joined),
        kib(rss_warm),
        kib(rss_peak_after_warm),
        kib(rss_end),
        kib(rss_peak),
        end["max_footprint"],
        end["dropped"],
        end["slow_consumers"],
        end["unreported"],
    );
    let every_10s: Vec<_> = samples.iter().step_by(10).collect();
    eprintln!("SOAK samples every 10 s (second, server RSS KiB, server packets out): {every_10s:?}");
    // Nothing lost, nothing dropped, nobody cut off.
    assert_eq!(delivered, peers.expected_from.iter().sum::<u64>());
    assert_eq!((end["dropped"], end["slow_consumers"], end["unreported"]), (0, 0, 0), "{end:?}");
    assert_eq!(status["packets_in"], sent);
    // Queues within their bound (1 MiB per peer by default; this load never comes close).
    assert!(max_buffered <= 1 << 20, "{max_buffered}");
    // Flat after warm-up: at most 5% (and 4 MiB) above the first sample after it.
    let allowed = rss_warm + (rss_warm / 20).max(4 << 20);
    assert!(
        rss_peak_after_warm <= allowed,
        "RSS grew after warm-up: {} -> {} KiB",
        kib(rss_warm),
        kib(rss_peak_after_warm)
    );
    // A joined, idle-ish peer costs a few KiB of server memory.
    assert!(per_peer <= 64 * 1024, "{per_peer} bytes per peer");
}
