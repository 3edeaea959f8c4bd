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

use mio::{Events, Poll, Token};
use multipeer::peer::{ClientConfig, Event, MultiplayerPeer as _, PeerId, Target};
use multipeer_mio::{Client, ClientOptions, ReadBuffer};
use multipeer_tests::hostile::child::Child;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The test's side: every client, what each sent and what each received from whom.
struct Peers {
    poll: Poll,
    events: Events,
    buf: ReadBuffer,
    clients: Vec<Client>,
    ids: Vec<Option<PeerId>>,
    index_of: std::collections::HashMap<PeerId, usize>,
    known: Vec<usize>,
    /// Packets each sender sent, counted once per receiver they were meant for.
    expected_from: Vec<u64>,
    /// Packets received from each sender, all receivers together.
    received_from: Vec<u64>,
    /// `last[receiver * n + sender]`: the last sequence number received (+1), for order.
    last: Vec<u32>,
    next_seq: Vec<u32>,
    problems: Vec<String>,
}

impl Peers {
    fn turn(&mut self, max: Duration) {
        let n = self.clients.len();
        let mut sleep = max;
        for c in &self.clients {
            if let Some(t) = c.poll_timeout() {
                sleep = sleep.min(t);
            }
        }
        self.poll.poll(&mut self.events, Some(sleep)).expect("poll");
        for event in self.events.iter() {
            let i = event.token().0;
            self.clients[i].handle_event(self.poll.registry(), event, &mut self.buf);
        }
        for i in 0..n {
            let client = &mut self.clients[i];
            client.handle_timeout(self.poll.registry(), &mut self.buf);
            let peer = client.peer_mut();
            while let Some(event) = peer.poll_event() {
                match event {
                    Event::ConnectionSucceeded => {
                        let id = peer.unique_id().expect("an id");
                        self.ids[i] = Some(id);
                        self.index_of.insert(id, i);
                    }
                    Event::PeerConnected(p) if !p.is_server() => self.known[i] += 1,
                    Event::PeerConnected(_) => {}
                    other => {
                        if self.problems.len() < 20 {
                            self.problems.push(format!("client {i}: {other:?}"));
                        }
                    }
                }
            }
            while let Some(packet) = peer.peek_packet() {
                let data = packet.data;
                let from = packet.info.from;
                match (data.get(..2), data.get(2..6), self.index_of.get(&from)) {
                    (Some(s), Some(seq), Some(&sender))
                        if usize::from(u16::from_le_bytes([s[0], s[1]])) == sender =>
                    {
                        let seq = u32::from_le_bytes(seq.try_into().unwrap());
                        let slot = &mut self.last[i * n + sender];
                        if seq < *slot && self.problems.len() < 20 {
                            self.problems
                                .push(format!("client {i}: {seq} from {sender} after {}", *slot - 1));
                        }
                        *slot = seq + 1;
                        self.received_from[sender] += 1;
                    }
                    _ => {
                        if self.problems.len() < 20 {
                            self.problems.push(format!("client {i}: stray packet from {from}: {data:02x?}"));
                        }
                    }
                }
                peer.pop_packet();
            }
            client.flush(self.poll.registry(), &mut self.buf);
        }
    }

    fn send(&mut self, sender: usize, target: Target, size: usize) {
        let n = self.clients.len();
        let mut data = Vec::with_capacity(size.max(6));
        data.extend_from_slice(&(sender as u16).to_le_bytes());
        data.extend_from_slice(&self.next_seq[sender].to_le_bytes());
        data.resize(size.max(6), 0xab);
        let peer = self.clients[sender].peer_mut();
        peer.set_target_peer(target);
        match peer.put_packet(&data) {
            Ok(()) => {
                self.next_seq[sender] += 1;
                self.expected_from[sender] += if target == Target::Broadcast { n as u64 - 1 } else { 1 };
            }
            Err(e) => {
                if self.problems.len() < 20 {
                    self.problems.push(format!("client {sender}: put_packet: {e}"));
                }
            }
        }
    }
}

fn kib(bytes: u64) -> u64 {
    bytes / 1024
}

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
    let mut peers = Peers {
        poll: Poll::new().unwrap(),
        events: Events::with_capacity(4096),
        buf: ReadBuffer::new(),
        clients: Vec::with_capacity(n),
        ids: vec![None; n],
        index_of: std::collections::HashMap::new(),
        known: vec![0; n],
        expected_from: vec![0; n],
        received_from: vec![0; n],
        last: vec![0; n * n],
        next_seq: vec![0; n],
        problems: Vec::new(),
    };

    // Join in batches the listen backlog (128) can take.
    let joining = Instant::now();
    let options = ClientOptions::new(ClientConfig::default());
    for i in 0..n {
        let client = Client::connect(peers.poll.registry(), Token(i), &url, &options).expect("connect");
        peers.clients.push(client);
        if i % 100 == 99 || i + 1 == n {
            let batch_end = Instant::now() + Duration::from_secs(60);
            while peers.ids[..=i].iter().any(Option::is_none) {
                assert!(Instant::now() < batch_end, "batch ending at {i} did not join: {:?}", peers.problems);
                peers.turn(Duration::from_millis(5));
            }
        }
    }
    // Every peer learns every other (N² announcements).
    let announced_by = Instant::now() + Duration::from_secs(120);
    while peers.known.iter().any(|&k| k < n - 1) {
        assert!(
            Instant::now() < announced_by.min(hard_end),
            "announcements incomplete: {:?}",
            peers.problems
        );
        peers.turn(Duration::from_millis(5));
    }
    let joined_in = joining.elapsed();
    let rss_joined = child.rss().0;
    assert!(peers.problems.is_empty(), "{:?}", peers.problems);
    let ids: Vec<PeerId> = peers.ids.iter().map(|id| id.unwrap()).collect();

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
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next_broadcast = started + Duration::from_secs(1);
    let mut broadcaster = 0;
    let mut max_buffered = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        let now = Instant::now();
        credit += rate * n as f64 * (now - last_tick).as_secs_f64();
        last_tick = now;
        while credit >= 1.0 {
            credit -= 1.0;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let sender = (rng % n as u64) as usize;
            let target = (sender + 1 + ((rng >> 32) % (n as u64 - 1)) as usize) % n;
            peers.send(sender, Target::Peer(ids[target]), size);
        }
        if now >= next_broadcast {
            next_broadcast += Duration::from_secs(1);
            peers.send(broadcaster, Target::Broadcast, size);
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
    while peers.received_from != peers.expected_from {
        assert!(draining.elapsed() < Duration::from_secs(30), "not all packets arrived");
        peers.turn(Duration::from_millis(5));
    }
    let rss_end = child.rss().0;
    let (_, rss_peak) = child.rss();
    rss_peak_after_warm = rss_peak_after_warm.max(rss_end);
    let status = child.wait("the last packets counted", Duration::from_secs(5), |s| {
        s["packets_in"] == peers.next_seq.iter().map(|&s| u64::from(s)).sum::<u64>()
    });
    drop(peers.clients);
    let end = child.stop();

    let sent: u64 = peers.next_seq.iter().map(|&s| u64::from(s)).sum();
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
