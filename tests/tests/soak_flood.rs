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
use std::collections::HashMap;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::peer::{ClientConfig, Event, MultiplayerPeer as _, PeerId, PutError, Target};
use multipeer_mio::{Client, ClientOptions, ReadBuffer};
use multipeer_tests::hostile::child::Child;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Most flood packets one flooder queues per turn, so every client gets its turn.
const BURST: usize = 16;

/// The test's side: every client, what each sent and what each received from whom.
struct Peers {
    poll: Poll,
    events: Events,
    buf: ReadBuffer,
    clients: Vec<Client>,
    ids: Vec<Option<PeerId>>,
    index_of: HashMap<PeerId, usize>,
    known: Vec<usize>,
    /// Packets each sender sent, counted once per receiver they were meant for.
    expected_from: Vec<u64>,
    /// Packets received from each sender, all receivers together.
    received_from: Vec<u64>,
    /// Payload bytes received from flooders, all receivers together.
    flood_bytes: u64,
    /// `last[receiver * n + sender]`: the last sequence number received (+1), for order.
    last: Vec<u32>,
    next_seq: Vec<u32>,
    problems: Vec<String>,
}

impl Peers {
    fn problem(&mut self, text: String) {
        if self.problems.len() < 20 {
            self.problems.push(text);
        }
    }

    fn turn(&mut self, max: Duration, flooders: usize) {
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
            self.clients[i].handle_timeout(self.poll.registry(), &mut self.buf);
            let mut seen = Vec::new();
            let peer = self.clients[i].peer_mut();
            while let Some(event) = peer.poll_event() {
                match event {
                    Event::ConnectionSucceeded => {
                        let id = peer.unique_id().expect("an id");
                        self.ids[i] = Some(id);
                        self.index_of.insert(id, i);
                    }
                    Event::PeerConnected(p) if !p.is_server() => self.known[i] += 1,
                    Event::PeerConnected(_) => {}
                    other => seen.push(format!("client {i}: {other:?}")),
                }
            }
            let mut received = Vec::new();
            while let Some(packet) = peer.peek_packet() {
                let data = packet.data;
                let sender = self.index_of.get(&packet.info.from).copied();
                match (data.get(..2), data.get(2..6), sender) {
                    (Some(s), Some(seq), Some(sender))
                        if usize::from(u16::from_le_bytes([s[0], s[1]])) == sender =>
                    {
                        received.push((sender, u32::from_le_bytes(seq.try_into().unwrap()), data.len()));
                    }
                    _ => seen
                        .push(format!("client {i}: stray packet from {}: {:02x?}", packet.info.from, data)),
                }
                peer.pop_packet();
            }
            for text in seen {
                self.problem(text);
            }
            for (sender, seq, len) in received {
                let slot = &mut self.last[i * n + sender];
                if seq < *slot {
                    let text = format!("client {i}: {seq} from {sender} after {}", *slot - 1);
                    self.problem(text);
                }
                self.last[i * n + sender] = seq + 1;
                self.received_from[sender] += 1;
                if sender < flooders {
                    self.flood_bytes += len as u64;
                }
            }
            self.clients[i].flush(self.poll.registry(), &mut self.buf);
        }
    }

    /// Queues one numbered packet; `Err(Full)` when the sender's queue has no room.
    fn send(&mut self, sender: usize, target: Target, size: usize) -> Result<(), PutError> {
        let n = self.clients.len();
        let mut data = Vec::with_capacity(size.max(6));
        data.extend_from_slice(&(sender as u16).to_le_bytes());
        data.extend_from_slice(&self.next_seq[sender].to_le_bytes());
        data.resize(size.max(6), 0xab);
        let peer = self.clients[sender].peer_mut();
        peer.set_target_peer(target);
        peer.put_packet(&data)?;
        self.next_seq[sender] += 1;
        self.expected_from[sender] += if target == Target::Broadcast { n as u64 - 1 } else { 1 };
        Ok(())
    }
}

fn kib(bytes: u64) -> u64 {
    bytes / 1024
}

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
    let mut peers = Peers {
        poll: Poll::new().unwrap(),
        events: Events::with_capacity(4096),
        buf: ReadBuffer::new(),
        clients: Vec::with_capacity(n),
        ids: vec![None; n],
        index_of: HashMap::new(),
        known: vec![0; n],
        expected_from: vec![0; n],
        received_from: vec![0; n],
        flood_bytes: 0,
        last: vec![0; n * n],
        next_seq: vec![0; n],
        problems: Vec::new(),
    };

    // Join in batches the listen backlog (128) can take; every peer learns every other.
    let options = ClientOptions::new(ClientConfig::default());
    for i in 0..n {
        let client = Client::connect(peers.poll.registry(), Token(i), &url, &options).expect("connect");
        peers.clients.push(client);
        if i % 100 == 99 || i + 1 == n {
            let batch_end = Instant::now() + Duration::from_secs(60);
            while peers.ids[..=i].iter().any(Option::is_none) {
                assert!(Instant::now() < batch_end, "batch ending at {i} did not join: {:?}", peers.problems);
                peers.turn(Duration::from_millis(5), flooders);
            }
        }
    }
    while peers.known.iter().any(|&k| k < n - 1) {
        assert!(Instant::now() < hard_end, "announcements incomplete: {:?}", peers.problems);
        peers.turn(Duration::from_millis(5), flooders);
    }
    assert!(peers.problems.is_empty(), "{:?}", peers.problems);
    let ids: Vec<PeerId> = peers.ids.iter().map(|id| id.unwrap()).collect();
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
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
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
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let sender = flooders + (rng % honest as u64) as usize;
            let target =
                flooders + (sender - flooders + 1 + ((rng >> 32) % (honest as u64 - 1)) as usize) % honest;
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
        peers.turn(Duration::from_millis(2), flooders);
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
    while peers.received_from != peers.expected_from {
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
        peers.turn(Duration::from_millis(5), flooders);
    }
    let drained_in = draining.elapsed();
    let drained_mib = (peers.flood_bytes - flood_bytes_at_end) >> 20;
    let rss_end = child.rss().0;
    rss_peak_after_warm = rss_peak_after_warm.max(rss_end);
    let sent: u64 = peers.next_seq.iter().map(|&s| u64::from(s)).sum();
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
