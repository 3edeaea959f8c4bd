//! The simulated world: a server, its clients (or silent TCP peers) over seeded links, and
//! what every application observed.

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

use chacha20::ChaCha8Rng;
use multipeer::Instant;
use multipeer::peer::{
    Client, ClientConfig, ConnectionStatus, DisconnectReason, DropReason, Event, MultiplayerPeer, PeerId,
    Protocol, Server, ServerConfig,
};
use multipeer::rand_core::{Rng as _, SeedableRng};
use multipeer::ws;
use multipeer_tests::sim::{Endpoint, LinkConfig, Sim, Star};

use super::{TICK, TestClient, US};

/// A peer id nobody has.
pub(crate) fn ghost() -> PeerId {
    PeerId::new(0x7fff_fff0).unwrap()
}

/// The last microsecond before `t`.
pub(crate) fn just_before(t: Instant) -> Instant {
    Instant::from_micros(t.as_micros() - 1)
}

pub(crate) fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    if n == 0 { 0 } else { rng.next_u64() % n }
}

pub(crate) fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[below(rng, items.len() as u64) as usize]
}

// ----- the far ends ------------------------------------------------------------------------

/// A TCP client that never sends the upgrade request; it keeps what it reads.
#[derive(Default)]
pub(crate) struct Silent {
    pub(crate) received: Vec<u8>,
    pub(crate) eof: bool,
}

impl Endpoint for Silent {
    fn handle_input(&mut self, _: Instant, bytes: &[u8]) -> usize {
        self.received.extend_from_slice(bytes);
        bytes.len()
    }
    fn poll_transmit(&self) -> Option<&[u8]> {
        None
    }
    fn consume_transmit(&mut self, _: usize) {}
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_eof(&mut self, _: Instant) {
        self.eof = true;
    }
    fn is_finished(&self) -> bool {
        self.eof
    }
}

pub(crate) enum Far {
    Peer(Box<TestClient>),
    Silent(Silent),
}

impl Far {
    pub(crate) fn end(&self) -> &dyn Endpoint {
        match self {
            Self::Peer(c) => &**c,
            Self::Silent(s) => s,
        }
    }

    pub(crate) fn end_mut(&mut self) -> &mut dyn Endpoint {
        match self {
            Self::Peer(c) => &mut **c,
            Self::Silent(s) => s,
        }
    }
}

impl Endpoint for Far {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        self.end_mut().handle_input(now, bytes)
    }
    fn poll_transmit(&self) -> Option<&[u8]> {
        self.end().poll_transmit()
    }
    fn consume_transmit(&mut self, n: usize) {
        self.end_mut().consume_transmit(n);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.end_mut().handle_timeout(now);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.end().poll_timeout()
    }
    fn handle_eof(&mut self, now: Instant) {
        self.end_mut().handle_eof(now);
    }
    fn is_finished(&self) -> bool {
        self.end().is_finished()
    }
}

// ----- what each application saw ---------------------------------------------------------

/// Everything one application observed, with the tick it observed it at.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) events: Vec<(Instant, Event)>,
    /// The peers it believes connected.
    pub(crate) peers: BTreeSet<PeerId>,
    pub(crate) packets: Vec<(PeerId, Vec<u8>)>,
    /// When it learnt that each peer left.
    pub(crate) left_at: BTreeMap<PeerId, Instant>,
}

impl Seen {
    pub(crate) fn from(&self, sender: PeerId) -> Vec<&[u8]> {
        self.packets.iter().filter(|(f, _)| *f == sender).map(|(_, d)| &d[..]).collect()
    }

    pub(crate) fn left(&self, peer: PeerId) -> Vec<(Instant, &DisconnectReason)> {
        let mut out = Vec::new();
        for (t, e) in &self.events {
            if let Event::PeerDisconnected { peer: p, reason } = e {
                if *p == peer {
                    out.push((*t, reason));
                }
            }
        }
        out
    }

    pub(crate) fn drops(&self) -> Vec<(Option<PeerId>, DropReason)> {
        let f = |(_, e): &(Instant, Event)| match e {
            Event::PacketDropped { from, reason } => Some((*from, *reason)),
            _ => None,
        };
        self.events.iter().filter_map(f).collect()
    }
}

/// A packet's sequence number (payloads are `03 <seq u32 LE> <filler>`).
pub(crate) fn seq(data: &[u8]) -> u32 {
    data.get(1..5).map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()))
}

/// Drains `peer`'s events and up to `limit` packets, in the order it produces them. A client's
/// packets must come from peers it knows while it is connected.
pub(crate) fn observe<P: MultiplayerPeer>(
    peer: &mut P,
    seen: &mut Seen,
    now: Instant,
    who: &str,
    limit: usize,
) -> Vec<String> {
    let mut trace = Vec::new();
    let mut read = 0;
    loop {
        while let Some(event) = peer.poll_event() {
            match &event {
                Event::PeerConnected(id) => assert!(seen.peers.insert(*id), "{who}: {id:?} connected twice"),
                Event::PeerDisconnected { peer, .. } => {
                    assert!(seen.peers.remove(peer), "{who}: {peer:?} left without having joined");
                    seen.left_at.insert(*peer, now);
                }
                _ => {}
            }
            trace.push(format!("{now:?} {who} {event:?}"));
            seen.events.push((now, event));
        }
        if read == limit {
            break;
        }
        let Some(packet) = peer.peek_packet() else { break };
        let from = packet.info.from;
        if !peer.is_server() && peer.connection_status() == ConnectionStatus::Connected {
            assert!(seen.peers.contains(&from), "{who}: packet #{} from unknown {from:?}", seq(packet.data));
        }
        trace.push(format!("{now:?} {who} <- {from:?} #{} {}B", seq(packet.data), packet.data.len()));
        seen.packets.push((from, packet.data.to_vec()));
        assert!(peer.pop_packet());
        read += 1;
    }
    trace
}

// ----- the world -------------------------------------------------------------------------

/// A server, its clients, the simulation, and what every application saw.
pub(crate) struct World {
    pub(crate) sim: Sim,
    pub(crate) star: Star<ChaCha8Rng, Far>,
    pub(crate) client_config: ClientConfig,
    pub(crate) links: Vec<LinkConfig>,
    pub(crate) server_seen: Seen,
    pub(crate) seen: Vec<Seen>,
    /// Whether each client's application reads (a stalled one does not).
    pub(crate) reading: Vec<bool>,
    /// Packets the server application reads per tick.
    pub(crate) server_reads: usize,
    pub(crate) trace: Vec<String>,
}

pub(crate) fn server_config(protocol: Protocol, ws: ws::Config) -> ServerConfig {
    ServerConfig { protocol, ws, ..ServerConfig::default() }
}

impl World {
    pub(crate) fn new(seed: u64, server: ServerConfig, client_ws: ws::Config) -> Self {
        let client_config = ClientConfig { protocol: server.protocol, relay: true, ws: client_ws };
        Self {
            sim: Sim::new(seed),
            star: Star::new(Server::new(server, ChaCha8Rng::seed_from_u64(seed ^ 0x5e))),
            client_config,
            links: Vec::new(),
            server_seen: Seen::default(),
            seen: Vec::new(),
            reading: Vec::new(),
            server_reads: usize::MAX,
            trace: Vec::new(),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.sim.now()
    }

    pub(crate) fn add(&mut self, far: Far, link: LinkConfig) -> usize {
        let k = self.star.connect(&mut self.sim, far, link).unwrap();
        self.links.push(link);
        self.seen.push(Seen::default());
        self.reading.push(true);
        k
    }

    /// A client starting now, over `link`.
    pub(crate) fn join(&mut self, seed: u64, link: LinkConfig) -> usize {
        let rng = ChaCha8Rng::seed_from_u64(seed);
        let client = Client::create(self.now(), "ws://game.example:9080/", self.client_config, rng).unwrap();
        self.add(Far::Peer(Box::new(client)), link)
    }

    pub(crate) fn client(&mut self, k: usize) -> &mut TestClient {
        match self.star.far(k) {
            Far::Peer(c) => c,
            Far::Silent(_) => panic!("spoke {k} is not a client"),
        }
    }

    pub(crate) fn client_ref(&self, k: usize) -> &TestClient {
        match &self.star.spoke(k).far {
            Far::Peer(c) => c,
            Far::Silent(_) => panic!("spoke {k} is not a client"),
        }
    }

    pub(crate) fn id(&self, k: usize) -> PeerId {
        self.client_ref(k).unique_id().expect("joined")
    }

    /// Runs the network to `t` without the applications, then lets them run once.
    pub(crate) fn run_to(&mut self, t: Instant) {
        let left = t - self.now();
        self.sim.run_for(&mut self.star, left);
        self.observe();
    }

    /// Runs to `t`, the applications running every tick.
    pub(crate) fn run_until(&mut self, t: Instant) {
        while self.now() + TICK < t {
            self.run_to(self.now() + TICK);
        }
        self.run_to(t);
    }

    pub(crate) fn observe(&mut self) {
        let now = self.now();
        let lines = observe(&mut self.star.server, &mut self.server_seen, now, "server", self.server_reads);
        self.trace.extend(lines);
        for k in 0..self.star.len() {
            if let (true, Far::Peer(c)) = (self.reading[k], self.star.far(k)) {
                let lines = observe(&mut **c, &mut self.seen[k], now, &format!("c{k}"), usize::MAX);
                self.trace.extend(lines);
            }
        }
    }

    /// Whether every client in `ks` has joined and sees every other one, and the server sees
    /// them all.
    pub(crate) fn all_joined(&self, ks: &[usize]) -> bool {
        let joined = |k: usize| self.client_ref(k).connection_status() == ConnectionStatus::Connected;
        if !ks.iter().all(|&k| joined(k)) {
            return false;
        }
        let ids: BTreeSet<PeerId> = ks.iter().map(|&k| self.id(k)).collect();
        self.server_seen.peers == ids
            && ks.iter().all(|&k| {
                let mut others = ids.clone();
                others.remove(&self.id(k));
                others.insert(PeerId::SERVER);
                self.seen[k].peers == others
            })
    }

    /// Starts `n` clients at staggered times in `0..stagger`, each over `link(k)`, and runs
    /// until all have joined (within 5 s of the last start); returns the start times.
    pub(crate) fn join_all(
        &mut self,
        rng: &mut ChaCha8Rng,
        seed: u64,
        n: usize,
        stagger: Duration,
        link: impl Fn(usize) -> LinkConfig,
    ) -> Vec<Instant> {
        let mut starts: Vec<Instant> =
            (0..n).map(|_| self.now() + US * below(rng, stagger.as_micros() as u64) as u32).collect();
        starts.sort();
        for (k, &t) in starts.iter().enumerate() {
            self.run_until(t);
            self.join(seed * 1000 + k as u64, link(k));
        }
        let deadline = self.now() + Duration::from_secs(5);
        let ks: Vec<usize> = (0..n).collect();
        while !self.all_joined(&ks) {
            assert!(self.now() < deadline, "seed {seed}: joins not done by {deadline:?}");
            self.run_to(self.now() + TICK);
        }
        starts
    }

    /// The whole trace, with the network's and the server's counters.
    pub(crate) fn finish_trace(mut self) -> Vec<String> {
        self.trace.push(format!(
            "{:?} delivered {} short reads {} full windows {} {:?} {:?}",
            self.now(),
            self.sim.delivered(),
            self.sim.short_reads(),
            self.sim.full_windows(),
            self.star.stats(),
            self.star.server.stats()
        ));
        self.trace
    }
}
