//! Honest peers: real clients (multipeer-mio `Client`s, the same core a Godot-compatible bot
//! uses) that keep relaying numbered packets to each other through the server on their own
//! thread while a test attacks it, and check that every packet arrives, in order, exactly once.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::peer::{ClientConfig, Event, MultiplayerPeer as _, PeerId, Protocol, Target};
use multipeer_mio::{Client, ClientOptions, ReadBuffer};

use super::flood;

/// What the honest peers did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Their ids, in client order.
    pub ids: Vec<PeerId>,
    /// Packets each sent.
    pub sent: Vec<u64>,
    /// Packets each received from its neighbour.
    pub received: Vec<u64>,
    /// Anything an honest peer should never see: a lost, duplicated or reordered packet, a
    /// drop report, its own or another honest peer's departure, losing the server.
    pub problems: Vec<String>,
    /// Longest time any peer went without receiving while traffic was flowing.
    pub max_gap: Duration,
    /// Every packet sent was received before the report was made.
    pub drained: bool,
    /// Numbered flood packets ([`flood::TAG`]) each received from other peers, in order per
    /// sender (only with [`Honest::start_accepting_floods`]).
    pub floods: Vec<u64>,
}

impl Report {
    /// Asserts the peers were unaffected: nothing lost, nothing odd, traffic flowed.
    ///
    /// # Panics
    /// If they were affected.
    pub fn assert_unaffected(&self) {
        assert!(self.problems.is_empty(), "honest peers were affected: {:?}", self.problems);
        assert!(
            self.drained,
            "honest packets still in flight: sent {:?}, received {:?}",
            self.sent, self.received
        );
        assert_eq!(self.sent.iter().sum::<u64>(), self.received.iter().sum::<u64>(), "{self:?}");
        assert!(self.received.iter().all(|&n| n > 0), "no traffic: {self:?}");
    }
}

#[derive(Debug, Default)]
struct State {
    report: Report,
    joined: bool,
    /// Ask the thread to stop sending and drain.
    draining: bool,
}

/// Honest peers running on their own thread.
pub struct Honest {
    shared: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Magic first byte of honest packets.
const MAGIC: u8 = 0xa5;

impl Honest {
    /// Connects `n` (at least 2) Godot 4 clients with relay on to `url`, waits until each
    /// sees all the others, then starts the traffic: each peer sends one packet every few
    /// milliseconds to the next peer, through the server's relay.
    ///
    /// # Panics
    /// If they cannot all join within ten seconds.
    #[must_use]
    pub fn start(url: &str, n: usize) -> Self {
        Self::start_with(url, n, Protocol::Godot4)
    }

    /// As [`start`](Self::start) with the given protocol.
    ///
    /// # Panics
    /// If they cannot all join within ten seconds.
    #[must_use]
    pub fn start_with(url: &str, n: usize, protocol: Protocol) -> Self {
        let config = ClientConfig { protocol, relay: true, ..ClientConfig::default() };
        Self::start_options(url, n, ClientOptions::new(config))
    }

    /// As [`start`](Self::start) with the given client options (TLS for `wss://`).
    ///
    /// # Panics
    /// If they cannot all join within ten seconds.
    #[must_use]
    pub fn start_options(url: &str, n: usize, options: ClientOptions) -> Self {
        Self::spawn(url, n, options, false)
    }

    /// As [`start_with`](Self::start_with), and the peers also take numbered flood packets
    /// ([`flood`]) from peers other than themselves: each must arrive in order, without gap
    /// or duplicate, and is counted in [`Report::floods`]. Bystanders of a flood.
    ///
    /// # Panics
    /// If they cannot all join within ten seconds.
    #[must_use]
    pub fn start_accepting_floods(url: &str, n: usize, protocol: Protocol) -> Self {
        let config = ClientConfig { protocol, relay: true, ..ClientConfig::default() };
        Self::spawn(url, n, ClientOptions::new(config), true)
    }

    fn spawn(url: &str, n: usize, options: ClientOptions, accept_floods: bool) -> Self {
        assert!(n >= 2);
        let shared = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop, url) = (shared.clone(), stop.clone(), url.to_owned());
            std::thread::Builder::new()
                .name("honest".into())
                .spawn(move || run(&url, n, &options, accept_floods, &shared, &stop))
                .expect("honest thread")
        };
        let honest = Self { shared, stop, thread: Some(thread) };
        let end = Instant::now() + Duration::from_secs(10);
        while !honest.state(|s| s.joined) {
            let problems = honest.state(|s| s.report.problems.clone());
            assert!(problems.is_empty(), "honest peers could not join: {problems:?}");
            assert!(Instant::now() < end, "honest peers did not join");
            std::thread::sleep(Duration::from_millis(5));
        }
        honest
    }

    fn state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.shared.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Their ids.
    #[must_use]
    pub fn ids(&self) -> Vec<PeerId> {
        self.state(|s| s.report.ids.clone())
    }

    /// Waits until every peer received `more` packets beyond what it had: the server is
    /// relaying for them right now.
    ///
    /// # Panics
    /// If that takes more than ten seconds, or a problem was seen.
    pub fn assert_flowing(&self, more: u64) {
        let start = self.state(|s| s.report.received.clone());
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let (now, problems) = self.state(|s| (s.report.received.clone(), s.report.problems.clone()));
            assert!(problems.is_empty(), "honest peers were affected: {problems:?}");
            if now.iter().zip(&start).all(|(n, s)| *n >= s + more) {
                return;
            }
            assert!(Instant::now() < end, "honest traffic stalled: {start:?} -> {now:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Numbered flood packets each peer received so far.
    #[must_use]
    pub fn floods(&self) -> Vec<u64> {
        self.state(|s| s.report.floods.clone())
    }

    /// Problems seen so far.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        self.state(|s| s.report.problems.clone())
    }

    /// Stops sending, waits (bounded) until every packet sent was received, disconnects and
    /// returns the report.
    ///
    /// # Panics
    /// If the thread panicked.
    #[must_use]
    pub fn finish(mut self) -> Report {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner).draining = true;
        if let Some(thread) = self.thread.take() {
            thread.join().expect("honest thread");
        }
        self.state(|s| s.report.clone())
    }
}

impl Drop for Honest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.shared.lock().unwrap_or_else(PoisonError::into_inner).draining = true;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    url: &str,
    n: usize,
    options: &ClientOptions,
    accept_floods: bool,
    shared: &Mutex<State>,
    stop: &AtomicBool,
) {
    let lock = || shared.lock().unwrap_or_else(PoisonError::into_inner);
    let problem = |text: String| lock().report.problems.push(text);
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(256);
    let mut buf = ReadBuffer::new();
    let mut clients: Vec<Client> = (0..n)
        .map(|i| Client::connect(poll.registry(), Token(i), url, options).expect("client connect"))
        .collect();
    let mut ids: Vec<Option<PeerId>> = vec![None; n];
    let mut seen: Vec<Vec<PeerId>> = vec![Vec::new(); n];
    let mut next_seq = vec![0u64; n];
    let mut expected = vec![0u64; n];
    let mut last_receive = vec![Instant::now(); n];
    let mut max_gap = Duration::ZERO;
    let mut floods = vec![0u64; n];
    // The next flood sequence number expected by each client from each flooder.
    let mut flood_next: std::collections::HashMap<(usize, PeerId), u32> = std::collections::HashMap::new();
    let mut flowing = false;
    let mut drain_deadline = None;
    // Bounded: ten minutes at most, whatever the test does.
    let hard_end = Instant::now() + Duration::from_secs(600);
    let tick = Duration::from_millis(4);
    let mut next_send = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) || Instant::now() >= hard_end {
            break;
        }
        let draining = lock().draining;
        let mut sleep = next_send.saturating_duration_since(Instant::now()).min(tick);
        for c in &clients {
            if let Some(t) = c.poll_timeout() {
                sleep = sleep.min(t);
            }
        }
        if let Err(e) = poll.poll(&mut events, Some(sleep)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                problem(format!("poll: {e}"));
                break;
            }
        }
        for event in events.iter() {
            let i = event.token().0;
            clients[i].handle_event(poll.registry(), event, &mut buf);
        }
        for c in &mut clients {
            c.handle_timeout(poll.registry(), &mut buf);
        }
        for i in 0..n {
            let peer = clients[i].peer_mut();
            while let Some(event) = peer.poll_event() {
                match event {
                    Event::ConnectionSucceeded => ids[i] = peer.unique_id(),
                    Event::PeerConnected(p) => seen[i].push(p),
                    Event::PeerDisconnected { peer: p, reason } => {
                        if ids.contains(&Some(p)) {
                            problem(format!("client {i} saw honest peer {p} leave: {reason:?}"));
                        }
                    }
                    other => problem(format!("client {i}: {other:?}")),
                }
            }
            while let Some(packet) = peer.peek_packet() {
                let data = packet.data;
                let from = packet.info.from;
                let sender = (i + n - 1) % n;
                let flood_seq = flood::sequence(data).filter(|_| accept_floods && !ids.contains(&Some(from)));
                if let Some(seq) = flood_seq {
                    let next = flood_next.entry((i, from)).or_default();
                    if seq != *next {
                        problem(format!("client {i}: flood packet {seq} from {from}, expected {next}"));
                    }
                    *next = seq.wrapping_add(1);
                    floods[i] += 1;
                } else if data.len() != 10 || data[0] != MAGIC || usize::from(data[1]) != sender {
                    problem(format!("client {i}: unexpected packet from {from}: {data:02x?}"));
                } else {
                    let seq = u64::from_le_bytes(data[2..10].try_into().unwrap_or_default());
                    if Some(from) != ids[sender] || seq != expected[i] {
                        problem(format!(
                            "client {i}: packet {seq} from {from}, expected {} from {:?}",
                            expected[i], ids[sender]
                        ));
                    }
                    expected[i] = seq + 1;
                    let now = Instant::now();
                    if flowing && !draining {
                        max_gap = max_gap.max(now - last_receive[i]);
                    }
                    last_receive[i] = now;
                }
                peer.pop_packet();
            }
        }
        if !flowing {
            let all_ids: Vec<PeerId> = ids.iter().flatten().copied().collect();
            let complete = all_ids.len() == n
                && (0..n).all(|i| all_ids.iter().all(|p| Some(*p) == ids[i] || seen[i].contains(p)));
            if complete {
                flowing = true;
                let now = Instant::now();
                last_receive.fill(now);
                let mut s = lock();
                s.report.ids = all_ids;
                s.report.sent = vec![0; n];
                s.report.received = vec![0; n];
                s.report.floods = vec![0; n];
                s.joined = true;
            }
            if clients.iter().any(Client::is_released) {
                problem("an honest client failed to join".into());
                break;
            }
        }
        if flowing && !draining && Instant::now() >= next_send {
            next_send = Instant::now() + tick;
            for i in 0..n {
                let to = ids[(i + 1) % n].expect("joined");
                let mut data = vec![MAGIC, i as u8];
                data.extend_from_slice(&next_seq[i].to_le_bytes());
                let peer = clients[i].peer_mut();
                peer.set_target_peer(Target::Peer(to));
                match peer.put_packet(&data) {
                    Ok(()) => next_seq[i] += 1,
                    Err(e) => problem(format!("client {i} put_packet: {e}")),
                }
            }
        }
        for c in &mut clients {
            c.flush(poll.registry(), &mut buf);
        }
        if flowing {
            let mut s = lock();
            s.report.sent.copy_from_slice(&next_seq);
            s.report.received.copy_from_slice(&expected);
            s.report.max_gap = max_gap;
            s.report.floods.copy_from_slice(&floods);
        }
        if draining {
            let deadline = *drain_deadline.get_or_insert(Instant::now() + Duration::from_secs(10));
            let done = (0..n).all(|i| expected[(i + 1) % n] == next_seq[i]);
            if done || Instant::now() >= deadline || !flowing {
                lock().report.drained = done && flowing;
                break;
            }
        }
    }
    // Leave cleanly so the server sees ordinary departures.
    for c in &mut clients {
        let now = c.now();
        c.peer_mut().close(now);
    }
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end && !clients.iter().all(Client::is_released) {
        let _ = poll.poll(&mut events, Some(Duration::from_millis(10)));
        for event in events.iter() {
            clients[event.token().0].handle_event(poll.registry(), event, &mut buf);
        }
        for c in &mut clients {
            c.handle_timeout(poll.registry(), &mut buf);
        }
    }
}
