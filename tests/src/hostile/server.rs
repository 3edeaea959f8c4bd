//! The real server (multipeer-mio's `Server` and its `run` loop) on its own thread over
//! loopback, with everything it reports recorded where a test can wait for it.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use multipeer::peer::{
    DisconnectReason, DropReason, Event, MultiplayerPeer as _, PeerId, ServerConfig, ServerStats,
};
use multipeer::ws::HandshakeError;
use multipeer_mio::{ListenAddr, RunEnd, Server, Stop, TransportStats};

/// A command run on the server's thread, between two turns of its loop.
type Command = Box<dyn FnOnce(&mut Server) + Send>;

/// What the server reported and how it looked, kept up to date by its loop.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Packets the server application received, with their sender.
    pub packets: Vec<(PeerId, Vec<u8>)>,
    /// The core's counters.
    pub stats: ServerStats,
    /// The adapter's counters.
    pub transport: TransportStats,
    /// Transport failures, as text.
    pub failures: Vec<String>,
    /// Connections open (handshaking or joined).
    pub connections: usize,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Joined peers.
    pub peers: Vec<PeerId>,
    /// `buffer_footprint()` now and at most.
    pub footprint: usize,
    /// Largest `buffer_footprint()` seen.
    pub max_footprint: usize,
    /// Largest buffer footprint seen per joined peer's connection.
    pub peer_footprint: HashMap<PeerId, usize>,
    /// Largest `buffered_amount` (bytes queued for the socket) seen per peer.
    pub peer_buffered: HashMap<PeerId, usize>,
    /// Outbound accounting seen out of step with the queue: a peer with nothing left to write
    /// but messages still counted as queued (which would cut it off early as a slow consumer).
    pub accounting: Vec<String>,
    /// The run loop returned (after closing every peer).
    pub finished: bool,
}

impl Observed {
    /// Handshakes refused for `error`.
    #[must_use]
    pub fn rejections(&self, error: HandshakeError) -> usize {
        self.events.iter().filter(|e| **e == Event::ConnectionRejected(error)).count()
    }

    /// Every handshake refusal, in order.
    #[must_use]
    pub fn rejected(&self) -> Vec<HandshakeError> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ConnectionRejected(h) => Some(*h),
                _ => None,
            })
            .collect()
    }

    /// Every drop report, in order.
    #[must_use]
    pub fn drops(&self) -> Vec<(Option<PeerId>, DropReason)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::PacketDropped { from, reason } => Some((*from, *reason)),
                _ => None,
            })
            .collect()
    }

    /// Why `peer` left, if it did.
    #[must_use]
    pub fn departure(&self, peer: PeerId) -> Option<&DisconnectReason> {
        self.events.iter().find_map(|e| match e {
            Event::PeerDisconnected { peer: p, reason } if *p == peer => Some(reason),
            _ => None,
        })
    }

    /// Peers that joined, in order.
    #[must_use]
    pub fn joined(&self) -> Vec<PeerId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::PeerConnected(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    /// A short description for failure messages.
    #[must_use]
    pub fn summary(&self) -> String {
        let tail: Vec<_> = self.events.iter().rev().take(12).rev().collect();
        format!(
            "connections {} (max {}), peers {:?}, footprint {} (max {}), {:?}, {:?}, failures {:?}, last events {:?}",
            self.connections,
            self.max_connections,
            self.peers,
            self.footprint,
            self.max_footprint,
            self.stats,
            self.transport,
            self.failures.iter().rev().take(4).collect::<Vec<_>>(),
            tail
        )
    }
}

/// Options of the harness itself.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Record per-peer footprints on every turn (costs O(peers) per turn).
    pub per_peer: bool,
    /// Leave packets for the server application unread (its inbox fills).
    pub read_packets: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { per_peer: true, read_packets: true }
    }
}

/// A server running on its own thread.
pub struct Harness {
    addr: SocketAddr,
    stop: Stop,
    shared: Arc<Mutex<Observed>>,
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

/// How often the loop wakes up without network activity, to record and run commands.
const TICK: Duration = Duration::from_millis(5);

impl Harness {
    /// Starts a plain `ws://` server on 127.0.0.1 with `config`.
    ///
    /// # Panics
    /// If it cannot bind.
    #[must_use]
    pub fn start(config: ServerConfig) -> Self {
        Self::start_with(config, Options::default(), None)
    }

    /// Starts a server; `tls` makes it `wss://`.
    ///
    /// # Panics
    /// If it cannot bind.
    #[must_use]
    pub fn start_with(
        config: ServerConfig,
        options: Options,
        tls: Option<multipeer_mio::TlsOptions>,
    ) -> Self {
        let addrs = [ListenAddr::One(SocketAddr::from(([127, 0, 0, 1], 0)))];
        let mut server = match tls {
            Some(tls) => Server::bind_tls(&addrs, config, tls),
            None => Server::bind(&addrs, config),
        }
        .expect("bind");
        let addr = server.local_addrs()[0];
        let stop = Stop::new();
        let shared = Arc::new(Mutex::new(Observed::default()));
        let (commands, inbox) = mpsc::channel::<Command>();
        let thread = {
            let (stop, shared) = (stop.clone(), shared.clone());
            std::thread::Builder::new()
                .name("server".into())
                .spawn(move || {
                    // Bounded: no test runs a server for more than ten minutes.
                    let end = server
                        .run(&stop, Some(Duration::from_secs(600)), |server| {
                            while let Ok(command) = inbox.try_recv() {
                                command(server);
                            }
                            record(server, &shared, options);
                            Some(TICK)
                        })
                        .expect("server loop");
                    assert_eq!(end, RunEnd::Stopped, "a test left its server running");
                    record(&mut server, &shared, options);
                    lock(&shared).finished = true;
                })
                .expect("server thread")
        };
        Self { addr, stop, shared, commands, thread: Some(thread) }
    }

    /// The listening address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// A copy of what was observed so far.
    #[must_use]
    pub fn observed(&self) -> Observed {
        lock(&self.shared).clone()
    }

    /// Looks at what was observed so far without copying it.
    pub fn with<T>(&self, f: impl FnOnce(&Observed) -> T) -> T {
        f(&lock(&self.shared))
    }

    /// Waits until `done` holds; panics with `what` and a summary after `limit`.
    pub fn wait(&self, what: &str, limit: Duration, done: impl Fn(&Observed) -> bool) {
        let end = Instant::now() + limit;
        loop {
            if self.with(&done) {
                return;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}: {}", self.observed().summary());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until only `n` connections are open.
    pub fn wait_connections(&self, n: usize, limit: Duration) {
        self.wait(&format!("{n} connections"), limit, |o| o.connections == n);
    }

    /// Runs `command` on the server's thread and waits for it to finish.
    ///
    /// # Panics
    /// If the server thread is gone.
    pub fn command<T: Send + 'static>(&self, command: impl FnOnce(&mut Server) -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(Box::new(move |server| {
                let _ = tx.send(command(server));
            }))
            .expect("server thread alive");
        rx.recv_timeout(Duration::from_secs(10)).expect("command ran")
    }

    /// Raises the stop flag: the loop closes every peer with 1001 and returns once they are
    /// released (or the close timeout passed). Returns what was observed.
    ///
    /// # Panics
    /// If the server thread panicked.
    pub fn stop(mut self) -> Observed {
        self.stop.raise();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
        self.observed()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.raise();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(shared: &Mutex<Observed>) -> std::sync::MutexGuard<'_, Observed> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn record(server: &mut Server, shared: &Mutex<Observed>, options: Options) {
    let mut o = lock(shared);
    let peer = server.peer_mut();
    while let Some(event) = peer.poll_event() {
        o.events.push(event);
    }
    if options.read_packets {
        while let Some(packet) = peer.peek_packet() {
            let (from, data) = (packet.info.from, packet.data.to_vec());
            o.packets.push((from, data));
            peer.pop_packet();
        }
        // Events raised while packets were read (routing resumed).
        while let Some(event) = peer.poll_event() {
            o.events.push(event);
        }
    }
    o.stats = peer.stats();
    o.connections = peer.connection_count();
    o.max_connections = o.max_connections.max(o.connections);
    o.footprint = peer.buffer_footprint();
    o.max_footprint = o.max_footprint.max(o.footprint);
    o.peers = peer.peers().collect();
    if options.per_peer {
        for id in o.peers.clone() {
            if let Some(c) = peer.connection(id) {
                let f = o.peer_footprint.entry(id).or_default();
                *f = (*f).max(c.buffer_footprint());
                let b = o.peer_buffered.entry(id).or_default();
                *b = (*b).max(c.buffered_amount());
                if c.buffered_amount() == 0 && c.queued_outbound_messages() != 0 && o.accounting.len() < 16 {
                    let text = format!(
                        "peer {id}: nothing buffered, {} messages counted",
                        c.queued_outbound_messages()
                    );
                    o.accounting.push(text);
                }
            }
        }
    }
    o.transport = server.transport_stats();
    while let Some(failure) = server.poll_transport_failure() {
        o.failures.push(format!("{failure} [{:?}]", failure.error));
    }
}
