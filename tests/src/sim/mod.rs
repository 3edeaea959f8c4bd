//! Deterministic simulation: sans-IO endpoints over in-memory byte links with a virtual clock.
//!
//! A [`Sim`] owns the clock, a seeded generator and the links; the endpoints stay with the
//! caller, who reaches them between runs to send messages, read events and give commands.
//! [`Sim::drive`] repeats one step until nothing moves: fire due timers, let every endpoint
//! write (in random chunks: partial writes), deliver what has arrived, let every endpoint read
//! (in random chunks, stopping at back-pressure), and pass end of stream on. When nothing more
//! can happen at this instant it jumps to the earliest timer or arrival, until the network is
//! idle or the bound is reached. quinn's `Pair::drive` and str0m's `progress()` are the models.
//!
//! Links behave like TCP: bytes arrive in order after `latency` plus seeded jitter, a window
//! bounds the bytes in flight and unread (so a receiver that stops reading stalls its sender),
//! and an endpoint that [`is_finished`](Endpoint::is_finished) with nothing left to send
//! releases its transport: its peer reads what was sent and then end of stream. Faults: an
//! abrupt disconnect (both ends see end of stream at once, unread bytes are lost) and a
//! partition (bytes stop arriving, silently, as with a pulled cable).
//!
//! Endpoints are reached through [`Parties`], by index: a slice of `&mut dyn Endpoint` for
//! independent connections, or a type of one's own that lends a view per connection of a
//! machine serving many. [`Star`] is that type for a `peer::Server` and the far ends of its
//! connections (`peer::Client`s or anything else that is an [`Endpoint`]); it drives the
//! server as a strict adapter would, so a server that forgets to name a connection in
//! `poll_transmit`, `poll_release` or `poll_resume` stalls the simulation instead of being
//! rescued by it.

use core::time::Duration;
use std::collections::VecDeque;
use std::vec::Vec;

use multipeer::peer::{self};
use multipeer::rand_core::CryptoRng;
use multipeer::ws::{Connection, MaskKeys};
use multipeer::{Instant, Storage};

mod pair;
mod star;

pub use pair::Pair;
pub use star::{Spoke, Star, StarStats};

/// One end of a byte stream, as the simulation drives it: the sans-IO verbs of
/// `multipeer::ws::Connection`.
pub trait Endpoint {
    /// Takes bytes read from the transport; returns how many were accepted.
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize;
    /// The bytes to write next, if any.
    fn poll_transmit(&self) -> Option<&[u8]>;
    /// Reports that the transport took the first `n` bytes of [`poll_transmit`](Self::poll_transmit).
    fn consume_transmit(&mut self, n: usize);
    /// Fires the timers due at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Reports the end of the stream.
    fn handle_eof(&mut self, now: Instant);
    /// Whether the transport may be released once nothing is left to transmit.
    fn is_finished(&self) -> bool;
}

impl<S: Storage, R: MaskKeys> Endpoint for Connection<S, R> {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        Connection::handle_input(self, now, bytes)
    }

    fn poll_transmit(&self) -> Option<&[u8]> {
        Connection::poll_transmit(self)
    }

    fn consume_transmit(&mut self, n: usize) {
        Connection::consume_transmit(self, n);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Connection::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Connection::poll_timeout(self)
    }

    fn handle_eof(&mut self, now: Instant) {
        Connection::handle_eof(self, now);
    }

    fn is_finished(&self) -> bool {
        Connection::is_finished(self)
    }
}

impl<S: Storage, R: CryptoRng> Endpoint for peer::Client<S, R> {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        peer::Client::handle_input(self, now, bytes)
    }

    fn poll_transmit(&self) -> Option<&[u8]> {
        peer::Client::poll_transmit(self)
    }

    fn consume_transmit(&mut self, n: usize) {
        peer::Client::consume_transmit(self, n);
    }

    fn handle_timeout(&mut self, now: Instant) {
        peer::Client::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        peer::Client::poll_timeout(self)
    }

    fn handle_eof(&mut self, now: Instant) {
        peer::Client::handle_eof(self, now);
    }

    fn is_finished(&self) -> bool {
        peer::Client::is_finished(self)
    }
}

/// The endpoints of a simulation, reached by index.
pub trait Parties {
    /// How many endpoints there are; indices run from 0.
    fn count(&self) -> usize;
    /// Runs `f` on endpoint `id`.
    fn with(&mut self, id: usize, f: &mut dyn FnMut(&mut dyn Endpoint));
}

impl Parties for [&mut dyn Endpoint] {
    fn count(&self) -> usize {
        self.len()
    }

    fn with(&mut self, id: usize, f: &mut dyn FnMut(&mut dyn Endpoint)) {
        f(&mut *self[id]);
    }
}

/// How a link behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// One-way delay of every byte.
    pub latency: Duration,
    /// Extra delay drawn from `0..=jitter` per write; arrival order is kept (TCP).
    pub jitter: Duration,
    /// Largest chunk one write takes; chunks are drawn from `1..=max_write` (partial writes).
    pub max_write: usize,
    /// Largest chunk one read returns; drawn from `1..=max_read`.
    pub max_read: usize,
    /// Most bytes in flight plus unread, per direction, before writes stall (the TCP window).
    pub window: usize,
    /// Abrupt disconnect: at this time both ends see end of stream and unread bytes are lost.
    pub cut_at: Option<Instant>,
    /// Partition: bytes that have not arrived by this time never arrive, and no end of stream
    /// is seen (a pulled cable, a frozen peer).
    pub partition_at: Option<Instant>,
}

impl LinkConfig {
    /// A fast, reliable link: 1 ms latency, whole writes and reads, a 256 KiB window.
    pub const LAN: Self = Self {
        latency: Duration::from_millis(1),
        jitter: Duration::ZERO,
        max_write: usize::MAX,
        max_read: usize::MAX,
        window: 256 * 1024,
        cut_at: None,
        partition_at: None,
    };

    /// A link drawn from `seed`: latency up to 50 ms, jitter up to 20 ms, writes and reads
    /// cut into chunks of at most 1 to 1500 bytes, a window of 2 to 64 KiB.
    #[must_use]
    pub fn random(seed: u64) -> Self {
        let mut rng = SplitMix64(seed);
        let max_chunk = [1, 2, 7, 64, 1500, usize::MAX];
        Self {
            latency: Duration::from_micros(rng.below(50_000)),
            jitter: Duration::from_micros(rng.below(20_000)),
            max_write: max_chunk[rng.below(6) as usize],
            max_read: max_chunk[rng.below(6) as usize],
            window: 2048 + rng.below(62 * 1024) as usize,
            cut_at: None,
            partition_at: None,
        }
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self::LAN
    }
}

/// SplitMix64: a small, seedable generator for delays and chunk sizes.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// A chunk size in `1..=max.min(available)`.
    fn chunk(&mut self, max: usize, available: usize) -> usize {
        let cap = max.min(available).max(1);
        1 + self.below(cap as u64) as usize
    }
}

/// Bytes written by one end, not yet read by the other.
#[derive(Debug, Default)]
struct Direction {
    /// Writes on their way, in arrival order: arrival time and bytes.
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    in_flight_bytes: usize,
    /// Arrived bytes; those before `read_at` have been read.
    readable: Vec<u8>,
    read_at: usize,
    last_arrival: Instant,
    /// When the writer's end of stream (FIN) arrives, once it released its transport.
    fin_at: Option<Instant>,
    eof_delivered: bool,
}

impl Direction {
    fn unread(&self) -> &[u8] {
        &self.readable[self.read_at..]
    }

    fn pending(&self) -> usize {
        self.unread().len() + self.in_flight_bytes
    }

    fn write(&mut self, arrival: Instant, bytes: &[u8]) {
        let arrival = arrival.max(self.last_arrival);
        self.last_arrival = arrival;
        self.in_flight_bytes += bytes.len();
        match self.in_flight.back_mut() {
            Some((t, last)) if *t == arrival => last.extend_from_slice(bytes),
            _ => self.in_flight.push_back((arrival, bytes.to_vec())),
        }
    }

    /// Moves what has arrived by `now` to the readable bytes; a partition swallows the rest.
    fn arrive(&mut self, now: Instant, partition: Option<Instant>) {
        while let Some((t, _)) = self.in_flight.front().filter(|(t, _)| *t <= now) {
            let t = *t;
            let Some((_, bytes)) = self.in_flight.pop_front() else { break };
            self.in_flight_bytes -= bytes.len();
            if partition.is_none_or(|p| t < p) {
                self.readable.extend_from_slice(&bytes);
            }
        }
    }

    fn read(&mut self, n: usize) {
        self.read_at += n;
        if self.read_at == self.readable.len() {
            self.readable.clear();
            self.read_at = 0;
        } else if self.read_at > 4096 && self.read_at * 2 > self.readable.len() {
            self.readable.drain(..self.read_at);
            self.read_at = 0;
        }
    }

    fn drop_all(&mut self) {
        self.in_flight.clear();
        self.in_flight_bytes = 0;
        self.readable.clear();
        self.read_at = 0;
    }

    /// The next time something arrives here after `now`. A FIN that has arrived but waits
    /// behind bytes the reader does not take is no event: it is delivered once they are read.
    fn next_arrival(&self, now: Instant) -> Option<Instant> {
        let fin = self.fin_at.filter(|t| !self.eof_delivered && *t > now);
        match (self.in_flight.front().map(|(t, _)| *t), fin) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A byte stream between two endpoints.
#[derive(Debug)]
struct Link {
    ends: [usize; 2],
    config: LinkConfig,
    /// `dirs[i]`: bytes written by `ends[i]`.
    dirs: [Direction; 2],
    /// Whether `ends[i]` released its transport.
    released: [bool; 2],
    cut: bool,
}

/// Identifies a link of a [`Sim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkId(usize);

/// How a [`Sim::drive`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing left to happen: no timer, nothing in flight, nothing readable that is read.
    Idle,
    /// The bound was reached with events still to come.
    Bound,
}

/// Steps at one instant before the simulation declares a livelock.
const MAX_STEPS_PER_INSTANT: usize = 100_000;

/// A virtual clock, a seeded generator and the links between endpoints.
#[derive(Debug)]
pub struct Sim {
    now: Instant,
    rng: SplitMix64,
    links: Vec<Link>,
    /// Total bytes delivered to endpoints, for reports.
    delivered: u64,
    /// Reads that accepted fewer bytes than offered (receiver back-pressure).
    short_reads: u64,
    /// Writes held back by a full window (sender back-pressure).
    full_windows: u64,
}

impl Sim {
    /// A simulation at time zero whose every random choice follows from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            now: Instant::ZERO,
            rng: SplitMix64(seed),
            links: Vec::new(),
            delivered: 0,
            short_reads: 0,
            full_windows: 0,
        }
    }

    /// The virtual time.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Bytes handed to endpoints so far.
    #[must_use]
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Reads so far that an endpoint accepted only in part (its back-pressure).
    #[must_use]
    pub fn short_reads(&self) -> u64 {
        self.short_reads
    }

    /// Times so far a writer found the window full (the back-pressure reached the sender).
    #[must_use]
    pub fn full_windows(&self) -> u64 {
        self.full_windows
    }

    /// Connects endpoints `a` and `b` (indices into the [`Parties`] given to [`drive`](Self::drive)).
    ///
    /// # Panics
    /// If `a == b`, or if the window or a chunk size is zero.
    pub fn connect(&mut self, a: usize, b: usize, config: LinkConfig) -> LinkId {
        assert!(a != b, "a link joins two endpoints");
        assert!(config.window > 0 && config.max_write > 0 && config.max_read > 0);
        self.links.push(Link {
            ends: [a, b],
            config,
            dirs: [Direction::default(), Direction::default()],
            released: [false; 2],
            cut: false,
        });
        LinkId(self.links.len() - 1)
    }

    /// Whether `end` (0 or 1, in the order given to [`connect`](Self::connect)) of `link` has
    /// released its transport.
    #[must_use]
    pub fn is_released(&self, link: LinkId, end: usize) -> bool {
        self.links[link.0].released[end]
    }

    /// Runs until nothing is left to happen or the clock would pass `until`.
    ///
    /// # Panics
    /// When an endpoint breaks the contract the simulation checks: a `poll_timeout` still due
    /// after `handle_timeout`, more bytes accepted than offered, or a livelock at one instant.
    pub fn drive<P: Parties + ?Sized>(&mut self, parties: &mut P, until: Instant) -> Outcome {
        // Rounds at one instant, counted across idle rounds too: an event that stays due
        // without moving anything would otherwise spin here for ever.
        let mut rounds = 0;
        loop {
            let mut steps = 0;
            while self.step(parties) {
                steps += 1;
                assert!(steps < MAX_STEPS_PER_INSTANT, "livelock at {:?}", self.now);
            }
            match self.next_event(parties) {
                None => return Outcome::Idle,
                Some(t) if t > until => {
                    self.now = self.now.max(until);
                    return Outcome::Bound;
                }
                Some(t) if t <= self.now => {
                    rounds += 1;
                    assert!(rounds < MAX_STEPS_PER_INSTANT, "an event stays due at {t:?} and moves nothing");
                }
                Some(t) => {
                    rounds = 0;
                    self.now = t;
                }
            }
        }
    }

    /// Runs for `duration` of virtual time (or until idle).
    pub fn run_for<P: Parties + ?Sized>(&mut self, parties: &mut P, duration: Duration) -> Outcome {
        let until = self.now + duration;
        let outcome = self.drive(parties, until);
        self.now = until;
        outcome
    }

    /// The earliest future timer, arrival, cut or partition.
    fn next_event<P: Parties + ?Sized>(&self, parties: &mut P) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for link in &self.links {
            for (i, dir) in link.dirs.iter().enumerate() {
                if !link.released[1 - i] {
                    dir.next_arrival(self.now).into_iter().for_each(&mut consider);
                }
            }
            if let Some(t) = link.config.cut_at.filter(|_| !link.cut && !link.released.iter().all(|r| *r)) {
                consider(t);
            }
        }
        for id in 0..parties.count() {
            if self.endpoint_released(id) {
                continue;
            }
            parties.with(id, &mut |e| {
                if let Some(t) = e.poll_timeout() {
                    consider(t);
                }
            });
        }
        next
    }

    fn endpoint_released(&self, id: usize) -> bool {
        self.links.iter().any(|l| (l.ends[0] == id && l.released[0]) || (l.ends[1] == id && l.released[1]))
    }

    /// One round at the current instant; returns whether anything moved.
    fn step<P: Parties + ?Sized>(&mut self, parties: &mut P) -> bool {
        let now = self.now;
        let mut moved = false;

        // Faults first: a cut ends both streams at once.
        for link in &mut self.links {
            if !link.cut && link.config.cut_at.is_some_and(|t| t <= now) {
                link.cut = true;
                for i in 0..2 {
                    link.dirs[i].drop_all();
                    link.dirs[i].fin_at = Some(now);
                    link.dirs[i].eof_delivered = true;
                    if !link.released[i] {
                        parties.with(link.ends[i], &mut |e| e.handle_eof(now));
                    }
                }
                moved = true;
            }
        }

        // Timers.
        for id in 0..parties.count() {
            if self.endpoint_released(id) {
                continue;
            }
            parties.with(id, &mut |e| {
                if e.poll_timeout().is_some_and(|t| t <= now) {
                    e.handle_timeout(now);
                    let again = e.poll_timeout();
                    assert!(again.is_none_or(|t| t > now), "timer still due after handle_timeout at {now:?}");
                    moved = true;
                }
            });
        }

        for link in &mut self.links {
            for i in 0..2 {
                let (writer, reader) = (link.ends[i], link.ends[1 - i]);
                // Writes, in random chunks, while the window has room.
                if !link.released[i] {
                    let dir = &mut link.dirs[i];
                    let rng = &mut self.rng;
                    let config = link.config;
                    let lost = link.cut || link.released[1 - i];
                    let full_windows = &mut self.full_windows;
                    parties.with(writer, &mut |e| {
                        while let Some(bytes) = e.poll_transmit() {
                            if lost {
                                // Nobody reads any more: the writes go nowhere.
                                let n = bytes.len();
                                e.consume_transmit(n);
                                moved = true;
                                continue;
                            }
                            let room = config.window.saturating_sub(dir.pending());
                            if room == 0 {
                                *full_windows += 1;
                                break;
                            }
                            let n = rng.chunk(config.max_write, bytes.len().min(room));
                            let jitter = rng.below(config.jitter.as_micros() as u64 + 1);
                            dir.write(now + config.latency + Duration::from_micros(jitter), &bytes[..n]);
                            e.consume_transmit(n);
                            moved = true;
                        }
                    });
                    // Release: finished with nothing left to send.
                    let mut release = false;
                    parties.with(writer, &mut |e| release = e.is_finished() && e.poll_transmit().is_none());
                    if release {
                        link.released[i] = true;
                        // The FIN travels like data, behind it.
                        let dir = &mut link.dirs[i];
                        let fin_at = (now + link.config.latency).max(dir.last_arrival);
                        let lost = link.config.partition_at.is_some_and(|p| fin_at >= p);
                        dir.fin_at = (!lost).then_some(fin_at);
                        link.dirs[1 - i].drop_all();
                        moved = true;
                    }
                }

                // Arrivals; what a partition swallows never arrives.
                let dir = &mut link.dirs[i];
                dir.arrive(now, link.config.partition_at);

                // Reads, in random chunks, until back-pressure; then end of stream.
                if link.released[1 - i] {
                    continue;
                }
                let rng = &mut self.rng;
                let config = link.config;
                let delivered = &mut self.delivered;
                let short_reads = &mut self.short_reads;
                parties.with(reader, &mut |e| {
                    while !dir.unread().is_empty() {
                        let n = rng.chunk(config.max_read, dir.unread().len());
                        let used = e.handle_input(now, &dir.unread()[..n]);
                        assert!(used <= n, "accepted {used} of {n} bytes");
                        dir.read(used);
                        *delivered += used as u64;
                        moved |= used > 0;
                        if used < n {
                            *short_reads += 1;
                            break;
                        }
                    }
                    let fin_arrived = dir.fin_at.is_some_and(|t| t <= now);
                    if fin_arrived && !dir.eof_delivered && dir.pending() == 0 {
                        dir.eof_delivered = true;
                        e.handle_eof(now);
                        moved = true;
                    }
                });
            }
        }
        moved
    }
}
