//! The client side shared by the soak suites (`tests/soak.rs`, `tests/soak_flood.rs`): many
//! multipeer-mio clients on one `Poll`, joined to a server in batches, sending numbered packets
//! and checking that each arrives exactly once and in order per sender.
//!
//! Each packet starts with the sender's index (u16 LE) and its sequence number (u32 LE), so a
//! receiver can tell a lost, duplicated or reordered packet from a correct one.

use core::time::Duration;
use std::collections::HashMap;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::peer::{ClientConfig, Event, MultiplayerPeer as _, PeerId, PutError, Target};
use multipeer_mio::{Client, ClientOptions, ReadBuffer};

/// Clients joined in one batch before waiting for their ids: what a listen backlog of 128 takes.
const JOIN_BATCH: usize = 100;
/// Problems kept for the failure message; the rest are only counted by the first ones' presence.
const MAX_PROBLEMS: usize = 20;

/// A numeric setting from the environment, or `default`.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Bytes to KiB, for reports.
pub fn kib(bytes: u64) -> u64 {
    bytes / 1024
}

/// A xorshift64 generator: reproducible traffic patterns without a dependency.
pub struct XorShift(u64);

impl XorShift {
    /// A generator with a fixed seed, so every run sends the same pattern.
    pub fn new() -> Self {
        Self(0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl Default for XorShift {
    fn default() -> Self {
        Self::new()
    }
}

/// Every client, what each sent and what each received from whom.
pub struct SoakPeers {
    poll: Poll,
    events: Events,
    buf: ReadBuffer,
    /// The clients, indexed as their senders' numbers.
    pub clients: Vec<Client>,
    ids: Vec<Option<PeerId>>,
    index_of: HashMap<PeerId, usize>,
    known: Vec<usize>,
    /// Clients `0..flooders` are flooders: their received payload bytes are summed separately.
    flooders: usize,
    /// Packets each sender sent, counted once per receiver they were meant for.
    pub expected_from: Vec<u64>,
    /// Packets received from each sender, all receivers together.
    pub received_from: Vec<u64>,
    /// Payload bytes received from flooders, all receivers together.
    pub flood_bytes: u64,
    /// `last[receiver * n + sender]`: the last sequence number received (+1), for order.
    last: Vec<u32>,
    /// The next sequence number of each sender: also the packets it sent.
    pub next_seq: Vec<u32>,
    /// The first problems seen (unexpected events, stray or reordered packets, refused sends).
    pub problems: Vec<String>,
}

impl SoakPeers {
    /// Room for `n` clients, of which the first `flooders` are counted as flooders.
    pub fn new(n: usize, flooders: usize) -> Self {
        Self {
            poll: Poll::new().expect("poll"),
            events: Events::with_capacity(4096),
            buf: ReadBuffer::new(),
            clients: Vec::with_capacity(n),
            ids: vec![None; n],
            index_of: HashMap::new(),
            known: vec![0; n],
            flooders,
            expected_from: vec![0; n],
            received_from: vec![0; n],
            flood_bytes: 0,
            last: vec![0; n * n],
            next_seq: vec![0; n],
            problems: Vec::new(),
        }
    }

    /// Records a problem (the first few are kept for the failure message).
    pub fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }

    /// Connects every client to `url` in batches the listen backlog can take, waiting up to a
    /// minute per batch for their ids.
    pub fn join(&mut self, url: &str) {
        let n = self.ids.len();
        let options = ClientOptions::new(ClientConfig::default());
        for i in 0..n {
            let client = Client::connect(self.poll.registry(), Token(i), url, &options).expect("connect");
            self.clients.push(client);
            if i % JOIN_BATCH == JOIN_BATCH - 1 || i + 1 == n {
                let batch_end = Instant::now() + Duration::from_secs(60);
                while self.ids[..=i].iter().any(Option::is_none) {
                    assert!(
                        Instant::now() < batch_end,
                        "batch ending at {i} did not join: {:?}",
                        self.problems
                    );
                    self.turn(Duration::from_millis(5));
                }
            }
        }
    }

    /// Turns until every client has learnt every other (N² announcements), up to `deadline`;
    /// returns the peer ids by client index.
    pub fn await_announcements(&mut self, deadline: Instant) -> Vec<PeerId> {
        let n = self.ids.len();
        while self.known.iter().any(|&k| k < n - 1) {
            assert!(Instant::now() < deadline, "announcements incomplete: {:?}", self.problems);
            self.turn(Duration::from_millis(5));
        }
        assert!(self.problems.is_empty(), "{:?}", self.problems);
        self.ids.iter().map(|id| id.expect("joined")).collect()
    }

    /// One loop turn: waits up to `max` for socket events, then takes every client's events and
    /// packets, checks them and flushes what the clients queued.
    pub fn turn(&mut self, max: Duration) {
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
            let mut received = Vec::new();
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
            while let Some(packet) = peer.peek_packet() {
                let data = packet.data;
                let sender = self.index_of.get(&packet.info.from).copied();
                match (data.get(..2), data.get(2..6), sender) {
                    (Some(s), Some(seq), Some(sender))
                        if usize::from(u16::from_le_bytes([s[0], s[1]])) == sender =>
                    {
                        let seq = u32::from_le_bytes([seq[0], seq[1], seq[2], seq[3]]);
                        received.push((sender, seq, data.len()));
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
                let slot = self.last[i * n + sender];
                if seq < slot {
                    self.problem(format!("client {i}: {seq} from {sender} after {}", slot - 1));
                }
                self.last[i * n + sender] = seq + 1;
                self.received_from[sender] += 1;
                if sender < self.flooders {
                    self.flood_bytes += len as u64;
                }
            }
            self.clients[i].flush(self.poll.registry(), &mut self.buf);
        }
    }

    /// Queues one numbered packet of `size` bytes (at least 6); `Err(Full)` when the sender's
    /// queue has no room.
    pub fn send(&mut self, sender: usize, target: Target, size: usize) -> Result<(), PutError> {
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

    /// Packets sent by all senders.
    pub fn sent(&self) -> u64 {
        self.next_seq.iter().map(|&s| u64::from(s)).sum()
    }

    /// Whether every packet sent has arrived at every receiver it was meant for.
    pub fn all_arrived(&self) -> bool {
        self.received_from == self.expected_from
    }
}
