//! [`Star`]: a `peer::Server` and the far ends of its connections, driven as a strict
//! adapter drives a server.

use core::cell::Cell;
use std::collections::BTreeMap;
use std::vec::Vec;

use multipeer::Instant;
use multipeer::peer::{self, AcceptError, ConnId};
use multipeer::rand_core::CryptoRng;

use super::{Endpoint, LinkConfig, LinkId, Parties, Sim};

/// What the adapter of a [`Star`] knows about one server connection.
#[derive(Debug, Default)]
struct ConnState {
    /// `poll_transmit` named it and its output has not run dry since (a socket waiting to be
    /// written, or writable again after a partial write).
    announced: Cell<bool>,
    /// It accepted fewer bytes than offered: read nothing more until `poll_resume` names it.
    held: bool,
    /// `poll_release` named it: the transport is closed.
    released: bool,
    /// The server called it unknown (released but not yet polled).
    refused: bool,
}

/// One connection of a [`Star`]: the server's id for it, its link and its far end.
#[derive(Debug)]
pub struct Spoke<F> {
    /// The server's id of the connection.
    pub conn: ConnId,
    /// The link between the server and `far`.
    pub link: LinkId,
    /// The far end (a client, usually).
    pub far: F,
    state: ConnState,
}

/// The server side of one connection, as an [`Endpoint`].
struct ServerSide<'a, R: CryptoRng> {
    server: &'a mut peer::Server<R>,
    conn: ConnId,
    state: &'a mut ConnState,
}

impl<R: CryptoRng> Endpoint for ServerSide<'_, R> {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        if self.state.released || self.state.refused {
            // The transport is closed: what arrives goes nowhere.
            return bytes.len();
        }
        if self.state.held {
            return 0;
        }
        match self.server.handle_input(now, self.conn, bytes) {
            Ok(used) => {
                self.state.held = used < bytes.len();
                used
            }
            Err(_) => {
                self.state.refused = true;
                bytes.len()
            }
        }
    }

    fn poll_transmit(&self) -> Option<&[u8]> {
        if !self.state.announced.get() {
            return None;
        }
        let bytes = self.server.transmit(self.conn);
        self.state.announced.set(bytes.is_some());
        bytes
    }

    fn consume_transmit(&mut self, n: usize) {
        let known = self.server.consume_transmit(self.conn, n);
        assert!(known.is_ok(), "{} vanished between transmit and consume_transmit", self.conn);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.server.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.server.poll_timeout()
    }

    fn handle_eof(&mut self, now: Instant) {
        if !self.state.released && self.server.handle_eof(now, self.conn).is_err() {
            self.state.refused = true;
        }
    }

    fn is_finished(&self) -> bool {
        self.state.released
    }
}

/// Counters of a [`Star`]'s adapter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StarStats {
    /// Connections `poll_release` named.
    pub released: u64,
    /// Times `poll_resume` named a connection that had been held back.
    pub resumed: u64,
    /// Reads the server accepted only in part (its back-pressure).
    pub held: u64,
}

/// A `peer::Server` at the hub of a star of links, one per connection, each to a far end
/// `F`: the [`Parties`] of a server with N clients.
///
/// Party `2k` is the server side of spoke `k`, party `2k + 1` its far end. The server side is
/// driven only through what the server announces: output is written for connections
/// `poll_transmit` named (until it runs dry), input held back after a short read is offered
/// again only once `poll_resume` names the connection, and a transport is closed when
/// `poll_release` names it. Every time a server side is reached, the adapter also checks that
/// no output is waiting unannounced.
pub struct Star<R: CryptoRng, F> {
    /// The server.
    pub server: peer::Server<R>,
    spokes: Vec<Spoke<F>>,
    by_conn: BTreeMap<ConnId, usize>,
    stats: StarStats,
}

impl<R: CryptoRng, F: Endpoint> Star<R, F> {
    /// A star with no spokes yet.
    pub fn new(server: peer::Server<R>) -> Self {
        Self { server, spokes: Vec::new(), by_conn: BTreeMap::new(), stats: StarStats::default() }
    }

    /// Accepts a transport from `far` at the simulation's current time and links them with
    /// `config`; returns the spoke's index.
    ///
    /// # Errors
    /// The server's [`AcceptError`]; nothing is linked then.
    pub fn connect(&mut self, sim: &mut Sim, far: F, config: LinkConfig) -> Result<usize, AcceptError> {
        let conn = self.server.accept(sim.now(), None)?;
        let k = self.spokes.len();
        let link = sim.connect(2 * k, 2 * k + 1, config);
        self.spokes.push(Spoke { conn, link, far, state: ConnState::default() });
        self.by_conn.insert(conn, k);
        Ok(k)
    }

    /// The number of spokes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.spokes.len()
    }

    /// Whether there are no spokes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.spokes.is_empty()
    }

    /// Spoke `k`.
    #[must_use]
    pub fn spoke(&self, k: usize) -> &Spoke<F> {
        &self.spokes[k]
    }

    /// The far end of spoke `k`.
    pub fn far(&mut self, k: usize) -> &mut F {
        &mut self.spokes[k].far
    }

    /// Every spoke.
    pub fn spokes_mut(&mut self) -> impl Iterator<Item = &mut Spoke<F>> {
        self.spokes.iter_mut()
    }

    /// Whether the server released spoke `k`'s transport (`poll_release` named it).
    #[must_use]
    pub fn is_released(&self, k: usize) -> bool {
        self.spokes[k].state.released
    }

    /// The adapter's counters.
    #[must_use]
    pub fn stats(&self) -> StarStats {
        self.stats
    }

    /// Takes in what the server announced: connections to write, to close and to read again.
    fn poll_server(&mut self) {
        while let Some(conn) = self.server.poll_transmit() {
            if let Some(&k) = self.by_conn.get(&conn) {
                self.spokes[k].state.announced.set(true);
            }
        }
        while let Some(conn) = self.server.poll_release() {
            let k = self.by_conn[&conn];
            assert!(!self.spokes[k].state.released, "{conn} released twice");
            self.spokes[k].state.released = true;
            self.stats.released += 1;
        }
        while let Some(conn) = self.server.poll_resume() {
            if let Some(&k) = self.by_conn.get(&conn) {
                let state = &mut self.spokes[k].state;
                if core::mem::take(&mut state.held) {
                    self.stats.resumed += 1;
                }
            }
        }
    }
}

impl<R: CryptoRng, F: Endpoint> Parties for Star<R, F> {
    fn count(&self) -> usize {
        2 * self.spokes.len()
    }

    fn with(&mut self, id: usize, f: &mut dyn FnMut(&mut dyn Endpoint)) {
        let k = id / 2;
        if id % 2 == 1 {
            f(&mut self.spokes[k].far);
            return;
        }
        self.poll_server();
        let spoke = &mut self.spokes[k];
        let conn = spoke.conn;
        let state = &mut spoke.state;
        assert!(!state.refused || state.released, "{conn}: unknown to the server, yet never released");
        assert!(
            state.announced.get() || state.released || self.server.transmit(conn).is_none(),
            "{conn}: output waiting that poll_transmit never named"
        );
        let was_held = state.held;
        f(&mut ServerSide { server: &mut self.server, conn, state });
        if !was_held && self.spokes[k].state.held {
            self.stats.held += 1;
        }
        self.poll_server();
    }
}
