//! Relay latency and deliveries per second of one room on one `multipeer serve` instance
//! against the same room spread over two instances of a cluster (through a local nats-server),
//! in one run (tests/bench/cluster/run.sh; results in BENCHMARKS.md).
//!
//! One sender and three receivers (multipeer-std's `WebSocketMultiplayerPeer`, Godot's client
//! behaviour) polled by one thread without sleeping. Latency: 2,000 broadcasts of 64 bytes, one
//! a millisecond, each carrying its send time. Throughput: 20,000 broadcasts sent as fast as the
//! sender's queue takes them; deliveries (packets × receivers) over the time until the last one.
//! Spread: the sender and one receiver on instance 0, two receivers on instance 1.

use core::time::Duration;
use std::time::Instant;

use multipeer::peer::{Event, Target};
use multipeer_std::WebSocketMultiplayerPeer;
use multipeer_tests::cluster::Nats;
use multipeer_tests::hostile::serve::{Serve, cluster_binary};

const PACKET: usize = 64;
const LATENCY_PACKETS: u32 = 2000;
const THROUGHPUT_PACKETS: u32 = 20_000;

struct Client {
    peer: WebSocketMultiplayerPeer,
    peers: usize,
}

impl Client {
    fn join(serve: &Serve, room: &str) -> Self {
        let mut peer = WebSocketMultiplayerPeer::new();
        peer.create_client_blocking(&format!("ws://{}/{room}", serve.addr())).expect("connect");
        Self { peer, peers: 0 }
    }

    fn poll(&mut self) {
        self.peer.poll().expect("poll");
        while let Some(event) = self.peer.poll_event() {
            match event {
                Event::PeerConnected(_) => self.peers += 1,
                Event::PeerDisconnected { .. } => self.peers -= 1,
                _ => {}
            }
        }
    }
}

struct Result {
    p50_us: f64,
    p99_us: f64,
    deliveries_per_second: f64,
}

/// Reads every receiver; records the latency of timed packets when `t0` is given; returns how
/// many packets arrived.
fn drain(receivers: &mut [Client], latencies: &mut Vec<f64>, t0: Option<Instant>) -> u64 {
    let mut received = 0;
    for r in receivers.iter_mut() {
        r.poll();
        while let Some((data, _)) = r.peer.get_packet() {
            received += 1;
            if let (Some(t0), true) = (t0, data.len() == PACKET) {
                let mut sent = [0; 8];
                sent.copy_from_slice(&data[4..12]);
                let now = t0.elapsed().as_nanos() as u64;
                latencies.push(now.saturating_sub(u64::from_le_bytes(sent)) as f64 / 1000.0);
            }
        }
    }
    received
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// One room: the sender on `sender_on`, receivers on `receivers_on`.
fn measure(room: &str, sender_on: &Serve, receivers_on: &[&Serve]) -> Result {
    let mut sender = Client::join(sender_on, room);
    let mut receivers: Vec<Client> = receivers_on.iter().map(|s| Client::join(s, room)).collect();
    let everyone = receivers.len() + 1;
    let end = Instant::now() + Duration::from_secs(15);
    while sender.peers < everyone || receivers.iter().any(|r| r.peers < everyone) {
        assert!(Instant::now() < end, "the room did not form");
        sender.poll();
        receivers.iter_mut().for_each(Client::poll);
    }
    let t0 = Instant::now();
    let mut latencies = Vec::with_capacity(LATENCY_PACKETS as usize * receivers.len());
    let mut received = 0u64;
    sender.peer.set_target_peer(Target::Broadcast);
    let mut packet = [0u8; PACKET];
    let mut next = Instant::now();
    let mut sent = 0;
    while sent < LATENCY_PACKETS {
        if Instant::now() >= next {
            packet[..4].copy_from_slice(&sent.to_le_bytes());
            packet[4..12].copy_from_slice(&(t0.elapsed().as_nanos() as u64).to_le_bytes());
            sender.peer.put_packet(&packet).expect("put_packet");
            sent += 1;
            next += Duration::from_millis(1);
        }
        sender.poll();
        received += drain(&mut receivers, &mut latencies, Some(t0));
    }
    let want = u64::from(LATENCY_PACKETS) * receivers.len() as u64;
    let end = Instant::now() + Duration::from_secs(15);
    while received < want {
        assert!(Instant::now() < end, "latency phase: {received} of {want} deliveries");
        sender.poll();
        received += drain(&mut receivers, &mut latencies, Some(t0));
    }
    // Throughput: as fast as the sender's queue takes them.
    let started = Instant::now();
    let mut sent = 0;
    let small = [7u8; PACKET - 1];
    while sent < THROUGHPUT_PACKETS {
        for _ in 0..64 {
            if sent < THROUGHPUT_PACKETS && sender.peer.put_packet(&small).is_ok() {
                sent += 1;
            }
        }
        sender.poll();
        received += drain(&mut receivers, &mut latencies, None);
    }
    let want = want + u64::from(THROUGHPUT_PACKETS) * receivers.len() as u64;
    let end = Instant::now() + Duration::from_secs(60);
    while received < want {
        assert!(Instant::now() < end, "throughput phase: {received} of {want} deliveries");
        sender.poll();
        received += drain(&mut receivers, &mut latencies, None);
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Result {
        p50_us: percentile(&latencies, 0.5),
        p99_us: percentile(&latencies, 0.99),
        deliveries_per_second: (u64::from(THROUGHPUT_PACKETS) * receivers.len() as u64) as f64 / secs,
    }
}

fn main() {
    let nats = Nats::start();
    let url = nats.url();
    let mut a = Serve::start_binary(cluster_binary(), &["--cluster", &url, "--node", "bench-a", "--quiet"]);
    let mut b = Serve::start_binary(cluster_binary(), &["--cluster", &url, "--node", "bench-b", "--quiet"]);
    a.wait_line("multipeer: cluster", Duration::from_secs(15));
    b.wait_line("multipeer: cluster", Duration::from_secs(15));
    // Warm-up, then each layout twice, alternating; the better of the two runs is reported.
    let _ = measure("warm", &a, &[&a, &b, &b]);
    let mut one: Vec<Result> = Vec::new();
    let mut two: Vec<Result> = Vec::new();
    for round in 0..2 {
        one.push(measure(&format!("one-{round}"), &a, &[&a, &a, &a]));
        two.push(measure(&format!("two-{round}"), &a, &[&a, &b, &b]));
    }
    let best = |runs: &[Result]| -> (f64, f64, f64) {
        let p50 = runs.iter().map(|r| r.p50_us).fold(f64::MAX, f64::min);
        let p99 = runs.iter().map(|r| r.p99_us).fold(f64::MAX, f64::min);
        let rate = runs.iter().map(|r| r.deliveries_per_second).fold(0.0, f64::max);
        (p50, p99, rate)
    };
    println!("| layout | relay latency p50 | p99 | deliveries/s (1 sender → 3 receivers, {PACKET} B) |");
    println!("|---|---|---|---|");
    for (label, runs) in [("one instance", &one), ("two instances (1 + 2 receivers remote)", &two)] {
        let (p50, p99, rate) = best(runs);
        println!("| {label} | {p50:.0} µs | {p99:.0} µs | {rate:.0} |");
    }
    for (label, runs) in [("one", &one), ("two", &two)] {
        for r in runs.iter() {
            eprintln!(
                "{label}: p50 {:.0} µs p99 {:.0} µs {:.0}/s",
                r.p50_us, r.p99_us, r.deliveries_per_second
            );
        }
    }
    drop((a, b));
}
