//! [`Pair`]: two endpoints on one link.

use core::time::Duration;

use multipeer::Instant;

use super::{Endpoint, LinkConfig, LinkId, Outcome, Sim};

/// Two endpoints on one link: the common case, with the endpoints in reach as fields.
#[derive(Debug)]
pub struct Pair<A, B> {
    /// The simulation.
    pub sim: Sim,
    /// Endpoint 0 (usually the client).
    pub a: A,
    /// Endpoint 1 (usually the server).
    pub b: B,
    link: LinkId,
}

impl<A: Endpoint, B: Endpoint> Pair<A, B> {
    /// `a` and `b` joined by a link with `config`; every random choice follows from `seed`.
    pub fn new(seed: u64, a: A, b: B, config: LinkConfig) -> Self {
        let mut sim = Sim::new(seed);
        let link = sim.connect(0, 1, config);
        Self { sim, a, b, link }
    }

    /// The virtual time.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.sim.now()
    }

    /// Runs until idle or until the clock would pass `until`.
    pub fn drive_until(&mut self, until: Instant) -> Outcome {
        let mut parties: [&mut dyn Endpoint; 2] = [&mut self.a, &mut self.b];
        self.sim.drive(&mut parties[..], until)
    }

    /// Runs until idle, for at most a minute of virtual time.
    pub fn drive(&mut self) -> Outcome {
        let until = self.now() + Duration::from_secs(60);
        self.drive_until(until)
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) -> Outcome {
        let mut parties: [&mut dyn Endpoint; 2] = [&mut self.a, &mut self.b];
        self.sim.run_for(&mut parties[..], duration)
    }

    /// Whether `a` (`end` 0) or `b` (`end` 1) has released its transport.
    #[must_use]
    pub fn is_released(&self, end: usize) -> bool {
        self.sim.is_released(self.link, end)
    }
}
