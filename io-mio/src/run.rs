//! A ready-made event loop for the servers ([`Server`], [`WebSocketServer`], the lobby), for
//! programs that have no loop of their own.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use mio::event::Event;
use mio::{Events, Poll, Registry, Token, Waker};

use crate::clock::shortest;
use crate::server::Server;
use crate::websocket::WebSocketServer;

/// A flag that ends a server's `run` from anywhere (a signal thread, another thread, a test);
/// raising it wakes the loop at once.
#[derive(Clone, Default)]
pub struct Stop {
    inner: Arc<StopInner>,
}

#[derive(Default)]
struct StopInner {
    raised: AtomicBool,
    wakers: Mutex<Vec<Arc<Waker>>>,
}

impl core::fmt::Debug for Stop {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stop").field("raised", &self.is_raised()).finish()
    }
}

impl Stop {
    /// A flag not raised yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag and wakes every loop watching it.
    pub fn raise(&self) {
        self.inner.raised.store(true, Ordering::SeqCst);
        for waker in self.inner.wakers.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = waker.wake();
        }
    }

    /// Wakes every loop watching the flag without raising it: another thread has work for
    /// the loop's `app` (the cluster link's messages).
    pub fn wake(&self) {
        for waker in self.inner.wakers.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = waker.wake();
        }
    }

    /// Whether the flag was raised.
    #[must_use]
    pub fn is_raised(&self) -> bool {
        self.inner.raised.load(Ordering::SeqCst)
    }

    pub(crate) fn watch(&self, waker: Arc<Waker>) {
        self.inner.wakers.lock().unwrap_or_else(PoisonError::into_inner).push(waker);
    }

    pub(crate) fn unwatch(&self, waker: &Arc<Waker>) {
        self.inner.wakers.lock().unwrap_or_else(PoisonError::into_inner).retain(|w| !Arc::ptr_eq(w, waker));
    }
}

/// Why a server's `run` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// The stop flag was raised.
    Stopped,
    /// The time limit passed.
    TimeLimit,
}

/// Token of the loop's waker; the server's tokens start after it.
const WAKER: Token = Token(0);
/// Extra time the closing handshake may take beyond the close timeout before run gives up.
const CLOSE_MARGIN: Duration = Duration::from_secs(1);

/// A server the ready-made loop can drive: the verbs every server here has.
pub(crate) trait Drive {
    fn register(&mut self, registry: &Registry, first: Token) -> io::Result<()>;
    fn handle_event(&mut self, registry: &Registry, event: &Event) -> bool;
    fn poll_timeout(&self) -> Option<Duration>;
    fn handle_timeout(&mut self, registry: &Registry);
    fn flush(&mut self, registry: &Registry);
    /// [`flush`](Drive::flush), stopping after `budget` writes; returns whether it stopped
    /// there. `None`: this server does not flush in slices (its writes cannot gain from input
    /// read between them: its application relays, and is called only after the turn), and
    /// nothing was written.
    fn flush_up_to(&mut self, _registry: &Registry, _budget: usize) -> Option<bool> {
        None
    }
    fn close(&mut self, registry: &Registry);
    fn is_closed(&self) -> bool;
    /// How long the closing handshake may take.
    fn close_timeout(&self) -> Duration;
}

/// Implements [`Drive`] for a server type by its inherent methods of the same names; `$timeout`
/// maps the server to its close timeout. A trailing `flush_up_to` takes that method from the
/// server too.
macro_rules! drive_by_inherent_methods {
    ($server:ty, $timeout:expr, flush_up_to) => {
        $crate::run::drive_by_inherent_methods!(@impl $server, $timeout,
            fn flush_up_to(&mut self, registry: &mio::Registry, budget: usize) -> Option<bool> {
                Some(Self::flush_up_to(self, registry, budget))
            }
        );
    };
    ($server:ty, $timeout:expr) => {
        $crate::run::drive_by_inherent_methods!(@impl $server, $timeout,);
    };
    (@impl $server:ty, $timeout:expr, $($extra:item)*) => {
        impl $crate::run::Drive for $server {
            fn register(&mut self, registry: &mio::Registry, first: mio::Token) -> std::io::Result<()> {
                Self::register(self, registry, first)
            }

            fn handle_event(&mut self, registry: &mio::Registry, event: &mio::event::Event) -> bool {
                Self::handle_event(self, registry, event)
            }

            fn poll_timeout(&self) -> Option<core::time::Duration> {
                Self::poll_timeout(self)
            }

            fn handle_timeout(&mut self, registry: &mio::Registry) {
                Self::handle_timeout(self, registry);
            }

            fn flush(&mut self, registry: &mio::Registry) {
                Self::flush(self, registry);
            }

            $($extra)*

            fn close(&mut self, registry: &mio::Registry) {
                Self::close(self, registry);
            }

            fn is_closed(&self) -> bool {
                Self::is_closed(self)
            }

            fn close_timeout(&self) -> core::time::Duration {
                let timeout: fn(&Self) -> core::time::Duration = $timeout;
                timeout(self)
            }
        }
    };
}
pub(crate) use drive_by_inherent_methods;

/// Runs `server` on its own `mio::Poll` until `stop` is raised or `limit` passes; then closes
/// it and waits, at most the close timeout plus a second, until every connection is released.
/// `app` is called after every wake-up and returns how soon it wants to be called again.
pub(crate) fn run<D: Drive>(
    server: &mut D,
    stop: &Stop,
    limit: Option<Duration>,
    app: &mut dyn FnMut(&mut D) -> Option<Duration>,
) -> io::Result<RunEnd> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    stop.watch(waker.clone());
    let result = run_on(server, &mut poll, stop, limit, app);
    stop.unwatch(&waker);
    result
}

fn run_on<D: Drive>(
    server: &mut D,
    poll: &mut Poll,
    stop: &Stop,
    limit: Option<Duration>,
    app: &mut dyn FnMut(&mut D) -> Option<Duration>,
) -> io::Result<RunEnd> {
    server.register(poll.registry(), Token(WAKER.0 + 1))?;
    let deadline = limit.map(|l| Instant::now() + l);
    let mut events = Events::with_capacity(1024);
    let mut app_wants = app(server);
    server.flush(poll.registry());
    let end = loop {
        if stop.is_raised() {
            break RunEnd::Stopped;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break RunEnd::TimeLimit;
        }
        let sleep = shortest(shortest(server.poll_timeout(), app_wants), deadline.map(|d| d - now));
        turn(server, poll, &mut events, sleep)?;
        app_wants = app(server);
        server.flush(poll.registry());
    };
    server.close(poll.registry());
    let give_up = Instant::now() + server.close_timeout() + CLOSE_MARGIN;
    while !server.is_closed() {
        let now = Instant::now();
        if now >= give_up {
            break;
        }
        let sleep = shortest(server.poll_timeout(), Some(give_up - now));
        turn(server, poll, &mut events, sleep)?;
        app(server);
        server.flush(poll.registry());
    }
    Ok(end)
}

/// Writes per slice of a flush: between slices the loop reads what arrived meanwhile.
const FLUSH_SLICE: usize = 8;
/// Reads between slices in one flush at most; what is left is then written without them, so
/// a stream of input cannot hold the turn (timers, `app`) back.
const FLUSH_READS: usize = 32;

/// Flushes in slices of [`FLUSH_SLICE`] writes and, between two, handles the events that came
/// in the meantime (a zero-timeout poll). A relayed packet that arrives while the fan-out of
/// the one before is under way joins it in the writes still to come — one `send` carries
/// both to each of those peers, sooner than the next turn would — instead of costing a second
/// round of sends. On a 100-client relay at 20 messages/s each this cut sends per delivery
/// from about 0.8 to 0.67 and the p99 from about 1.1 to 0.7 ms (`tests/bench/PROFILE.md`).
///
/// Only `run` does this: it owns the `Poll`, so every event is the server's. Events read here
/// go to the server before `app` sees the turn, as the turn's own do.
fn flush_reading<D: Drive>(server: &mut D, poll: &mut Poll, events: &mut Events) -> io::Result<()> {
    let mut reads = 0;
    while reads < FLUSH_READS {
        // Done (`Some(false)`), or a server that does not flush in slices (`None`).
        if server.flush_up_to(poll.registry(), FLUSH_SLICE) != Some(true) {
            return Ok(());
        }
        reads += 1;
        match poll.poll(events, Some(Duration::ZERO)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            server.handle_event(poll.registry(), event);
        }
    }
    // Out of reads: the rest is written without them.
    server.flush(poll.registry());
    Ok(())
}

/// One poll: wait, handle every event, write what they produced, fire timers.
fn turn<D: Drive>(
    server: &mut D,
    poll: &mut Poll,
    events: &mut Events,
    sleep: Option<Duration>,
) -> io::Result<()> {
    match poll.poll(events, sleep) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => return Err(e),
    }
    for event in events.iter() {
        server.handle_event(poll.registry(), event);
    }
    flush_reading(server, poll, events)?;
    server.handle_timeout(poll.registry());
    Ok(())
}

impl Server {
    /// Runs the server on its own `mio::Poll` until `stop` is raised or `limit` passes; then
    /// closes every peer with 1001 (Godot's `close()`) and waits, at most the close timeout
    /// plus a second, until they are released.
    ///
    /// `app` is called after every wake-up with the server (read packets and events through
    /// [`peer_mut`](Server::peer_mut), send, look at transport failures); it returns how soon
    /// it wants to be called again, if it does not want to wait for network activity.
    ///
    /// The loop writes what a turn's input produced in slices of a few connections and reads
    /// what arrived between them, so a packet relayed during a fan-out joins the writes still
    /// to come (one `send` per peer for both) instead of waiting for the next turn.
    ///
    /// # Errors
    /// Creating the poll or registering the server failed (it must not be registered already).
    pub fn run<F>(&mut self, stop: &Stop, limit: Option<Duration>, mut app: F) -> io::Result<RunEnd>
    where
        F: FnMut(&mut Self) -> Option<Duration>,
    {
        run(self, stop, limit, &mut app)
    }
}

impl WebSocketServer {
    /// Runs the server on its own `mio::Poll` until `stop` is raised or `limit` passes; then
    /// closes every connection with 1001 and waits, at most the close timeout plus a second,
    /// until they are released.
    ///
    /// `app` is called after every wake-up with the server (poll its events, read and send
    /// messages); it returns how soon it wants to be called again, if it does not want to wait
    /// for network activity.
    ///
    /// # Errors
    /// Creating the poll or registering the server failed (it must not be registered already).
    pub fn run<F>(&mut self, stop: &Stop, limit: Option<Duration>, mut app: F) -> io::Result<RunEnd>
    where
        F: FnMut(&mut Self) -> Option<Duration>,
    {
        run(self, stop, limit, &mut app)
    }
}
