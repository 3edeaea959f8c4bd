//! A ready-made event loop for a [`Server`], for programs that have no loop of their own.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use mio::{Events, Poll, Token, Waker};

use crate::clock::shortest;
use crate::server::Server;

/// A flag that ends [`Server::run`] from anywhere (a signal thread, another thread, a test);
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

/// Why [`Server::run`] returned.
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

impl Server {
    /// Runs the server on its own `mio::Poll` until `stop` is raised or `limit` passes; then
    /// closes every peer with 1001 (Godot's `close()`) and waits, at most the close timeout
    /// plus a second, until they are released.
    ///
    /// `app` is called after every wake-up with the server (read packets and events through
    /// [`peer_mut`](Server::peer_mut), send, look at transport failures); it returns how soon
    /// it wants to be called again, if it does not want to wait for network activity.
    ///
    /// # Errors
    /// Creating the poll or registering the server failed (it must not be registered already).
    pub fn run<F>(&mut self, stop: &Stop, limit: Option<Duration>, mut app: F) -> io::Result<RunEnd>
    where
        F: FnMut(&mut Self) -> Option<Duration>,
    {
        let mut poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        stop.watch(waker.clone());
        let result = self.run_on(&mut poll, stop, limit, &mut app);
        stop.unwatch(&waker);
        result
    }

    fn run_on(
        &mut self,
        poll: &mut Poll,
        stop: &Stop,
        limit: Option<Duration>,
        app: &mut dyn FnMut(&mut Self) -> Option<Duration>,
    ) -> io::Result<RunEnd> {
        self.register(poll.registry(), Token(WAKER.0 + 1))?;
        let deadline = limit.map(|l| Instant::now() + l);
        let mut events = Events::with_capacity(1024);
        let mut app_wants = app(self);
        self.flush(poll.registry());
        let end = loop {
            if stop.is_raised() {
                break RunEnd::Stopped;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break RunEnd::TimeLimit;
            }
            let sleep = shortest(shortest(self.poll_timeout(), app_wants), deadline.map(|d| d - now));
            self.turn(poll, &mut events, sleep)?;
            app_wants = app(self);
            self.flush(poll.registry());
        };
        self.close(poll.registry());
        let give_up = Instant::now() + self.peer().config().ws.close_timeout + CLOSE_MARGIN;
        while !self.is_closed() {
            let now = Instant::now();
            if now >= give_up {
                break;
            }
            let sleep = shortest(self.poll_timeout(), Some(give_up - now));
            self.turn(poll, &mut events, sleep)?;
            app(self);
            self.flush(poll.registry());
        }
        Ok(end)
    }

    /// One poll: wait, handle every event, fire timers.
    fn turn(&mut self, poll: &mut Poll, events: &mut Events, sleep: Option<Duration>) -> io::Result<()> {
        match poll.poll(events, sleep) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            self.handle_event(poll.registry(), event);
        }
        self.handle_timeout(poll.registry());
        Ok(())
    }
}
