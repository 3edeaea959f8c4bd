//! Flood soak: a couple of hundred peers relaying at a steady rate through the real server
//! (multipeer-mio's `Server::run` in a child process, as `multipeer serve` runs it, so its
//! memory is its own) while 10% of them flood as fast as their sockets allow: half broadcast,
//! half send to one honest peer each (issue 12).
//!
//! Relay flow control must slow the flooders, not cost anyone a packet or a connection: every
//! packet sent (honest or flood) arrives exactly once and in order per sender, no peer is
//! evicted, nothing is dropped, and the server's resident memory stays flat after warm-up (the
//! queues sit at their limits; they do not grow with the volume flooded).
//!
//! Settings (environment): `SOAK_SECS` (traffic time, default 120), `SOAK_FLOOD_PEERS` (200),
//! `SOAK_RATE` (honest packets per second per peer, 2), `SOAK_SIZE` (honest payload bytes, 64),
//! `SOAK_FLOOD_SIZE` (flood payload bytes, 4096). `#[ignore]`d like `soak.rs`; run with
//! `cargo test --release -p multipeer-tests --test soak_flood -- --ignored --nocapture`.

use core::time::Duration;
use std::time::Instant;

use multipeer::peer::{PutError, Target};
use multipeer_tests::hostile::child::Child;
use multipeer_tests::soak::{SoakPeers, XorShift, env, kib};

/// Most flood packets one flooder queues per turn, so every client gets its turn.
const BURST: usize = 16;

#[test]
#[ignore = "minutes long: cargo test --release -p multipeer-tests --test soak_flood -- --ignored --nocapture"]
fn a_tenth_of_the_peers_flooding_costs_the_others_no_packet_and_no_connection() {
    let secs = env("SOAK_SECS", 120);
    let n = env("SOAK_FLOOD_PEERS", 200) as usize;
    let rate = env("SOAK_RATE", 2) as f64;
    let size = env("SOAK_SIZE", 64) as usize;
    let flood_size = env("SOAK_FLOOD_SIZE", 4096) as usize;
    // Clients 0..flooders flood; the rest are honest.
    let flooders = (n / 10).max(2);
    let honest = n - flooders;
    assert!(honest >= 2, "SOAK_FLOOD_PEERS too small");
    let hard_end = Instant::now() + Duration::from_secs(secs + 300);
    let peers_arg = (n + 16).to_string();
    let mut child =
        Child::start(env!("CARGO_BIN_EXE_soak_server"), &["--max-peers", &peers_arg, "--status-ms", "200"]);
    let url = child.url();
    let mut peers = SoakPeers::new(n, flooders);

    // Join in batches; every peer learns every other.
    peers.join(&url);
    let ids = peers.await_announcements(hard_end);
    // Odd flooders send to one honest peer each; even ones broadcast.
    let flood_target = |k: usize| {
        if k % 2 == 0 { Target::Broadcast } else { Target::Peer(ids[flooders + (k * 7919) % honest]) }
    };
    let rss_start = child.rss().0;

    let started = Instant::now();
    let warm_up = Duration::from_secs((secs / 4).max(5)).min(Duration::from_secs(secs));
    let (mut rss_warm, mut rss_peak_after_warm) = (None, 0);
    let mut samples = Vec::new();
    let mut next_sample = started;
    let (mut credit, mut last_tick) = (0.0f64, started);
    let mut rng = XorShift::new();
    let mut next_broadcast = started + Duration::from_secs(1);
    let mut broadcaster = flooders;
    let mut flood_full = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        let now = Instant::now();
        // Honest traffic: `rate` packets a second per honest peer, each to a random other
        // honest peer; once a second one honest peer broadcasts to everyone.
        credit += rate * honest as f64 * (now - last_tick).as_secs_f64();
        last_tick = now;
        while credit >= 1.0 {
            credit -= 1.0;
            let r = rng.next_u64();
            let sender = flooders + (r % honest as u64) as usize;
            let target =
                flooders + (sender - flooders + 1 + ((r >> 32) % (honest as u64 - 1)) as usize) % honest;
            if let Err(e) = peers.send(sender, Target::Peer(ids[target]), size) {
                peers.problem(format!("honest client {sender}: put_packet: {e}"));
            }
        }
        if now >= next_broadcast {
            next_broadcast += Duration::from_secs(1);
            if let Err(e) = peers.send(broadcaster, Target::Broadcast, size) {
                peers.problem(format!("honest client {broadcaster}: broadcast: {e}"));
            }
            broadcaster = flooders + (broadcaster - flooders + 1) % honest;
        }
        // Flooders: as much as their queues take.
        for k in 0..flooders {
            for _ in 0..BURST {
                match peers.send(k, flood_target(k), flood_size) {
                    Ok(()) => {}
                    Err(PutError::Full) => {
                        flood_full += 1;
                        break;
                    }
                    Err(e) => {
                        peers.problem(format!("flooder {k}: put_packet: {e}"));
                        break;
                    }
                }
            }
        }
        peers.turn(Duration::from_millis(2));
        if now >= next_sample {
            next_sample += Duration::from_secs(1);
            let rss = child.rss().0;
            let status = child.status().clone();
            let get = |k: &str| status.get(k).copied().unwrap_or(0);
            samples.push((
                started.elapsed().as_secs(),
                kib(rss),
                get("bytes_out") >> 20,
                get("blocked_senders"),
            ));
            if started.elapsed() >= warm_up {
                rss_warm.get_or_insert(rss);
                rss_peak_after_warm = rss_peak_after_warm.max(rss);
            }
        }
        assert!(peers.problems.is_empty(), "{:?}", peers.problems);
    }
    let traffic = started.elapsed();
    let flood_bytes_at_end = peers.flood_bytes;

    // Drain: everything sent must arrive.
    let draining = Instant::now();
    while !peers.all_arrived() {
        if draining.elapsed() > Duration::from_secs(90) {
            let missing: Vec<_> = (0..n)
                .filter(|&s| peers.received_from[s] != peers.expected_from[s])
                .map(|s| (s, peers.expected_from[s] - peers.received_from[s]))
                .take(20)
                .collect();
            let released = peers.clients.iter().filter(|c| c.is_released()).count();
            panic!(
                "not all packets arrived: (sender, packets missing) {missing:?}; {released} clients \
                 released; server {:?}; {:?}",
                child.status(),
                peers.problems
            );
        }
        peers.turn(Duration::from_millis(5));
    }
    let drained_in = draining.elapsed();
    let drained_mib = (peers.flood_bytes - flood_bytes_at_end) >> 20;
    let rss_end = child.rss().0;
    rss_peak_after_warm = rss_peak_after_warm.max(rss_end);
    let sent = peers.sent();
    let status = child.wait("the last packets counted", Duration::from_secs(5), |s| s["packets_in"] == sent);
    drop(peers.clients);
    let end = child.stop();

    let delivered: u64 = peers.received_from.iter().sum();
    let honest_delivered: u64 = peers.received_from[flooders..].iter().sum();
    let flood_sent: u64 = peers.next_seq[..flooders].iter().map(|&s| u64::from(s)).sum();
    let rss_warm = rss_warm.unwrap_or(rss_end);
    eprintln!(
        "SOAK-FLOOD peers={n} flooders={flooders} secs={} honest_rate={rate}/s/peer size={size} \
         flood_size={flood_size} sent={sent} (flood {flood_sent}) delivered={delivered} (honest \
         {honest_delivered}) flood_delivered_mib={} flood_mib_per_sec={:.1} flooder_queue_full={flood_full} \
         drained_in={drained_in:.1?} (flood MiB delivered then: {drained_mib}) relay_waits={} \
         blocked_s={:.1} rss_start_kib={} rss_after_warmup_kib={} rss_peak_after_warmup_kib={} \
         rss_end_kib={} max_footprint={} max_buffered={} dropped={} slow_consumers={} unreported={}",
        traffic.as_secs(),
        peers.flood_bytes >> 20,
        (peers.flood_bytes >> 20) as f64 / traffic.as_secs_f64(),
        status["relay_waits"],
        end["blocked_micros"] as f64 / 1e6,
        kib(rss_start),
        kib(rss_warm),
        kib(rss_peak_after_warm),
        kib(rss_end),
        end["max_footprint"],
        end["max_buffered"],
        end["dropped"],
        end["slow_consumers"],
        end["unreported"],
    );
    let every_10s: Vec<_> = samples.iter().step_by(10).collect();
    eprintln!(
        "SOAK-FLOOD samples every 10 s (second, server RSS KiB, server MiB out, senders waiting): \
         {every_10s:?}"
    );
    // Nothing lost, nothing dropped, nobody cut off: the flooders were slowed instead.
    assert_eq!(delivered, peers.expected_from.iter().sum::<u64>());
    assert_eq!((end["dropped"], end["slow_consumers"], end["unreported"]), (0, 0, 0), "{end:?}");
    assert_eq!(status["packets_in"], sent);
    assert!(status["relay_waits"] > 0, "the flood never filled a queue: {status:?}");
    // Queues within their bound (1 MiB per peer by default).
    assert!(end["max_buffered"] <= 1 << 20, "{end:?}");
    // Flat after warm-up: at most 10% (and 8 MiB) above the first sample after it.
    let allowed = rss_warm + (rss_warm / 10).max(8 << 20);
    assert!(
        rss_peak_after_warm <= allowed,
        "RSS grew after warm-up: {} -> {} KiB",
        kib(rss_warm),
        kib(rss_peak_after_warm)
    );
}
