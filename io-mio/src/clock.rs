//! The std clock turned into the core's microsecond [`Instant`](multipeer::Instant)s.

use core::time::Duration;
use std::time::Instant;

/// A monotonic clock whose epoch is the moment it was created.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    #[must_use]
    pub fn new() -> Self {
        Self { epoch: Instant::now() }
    }

    /// The current time as the core counts it.
    #[must_use]
    pub fn now(&self) -> multipeer::Instant {
        self.to_core(Instant::now())
    }

    /// A std instant as the core counts it (the epoch if it is earlier).
    #[must_use]
    pub fn to_core(&self, at: Instant) -> multipeer::Instant {
        let micros = at.saturating_duration_since(self.epoch).as_micros();
        multipeer::Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// How long to sleep until the core instant `deadline`: zero if it has passed, rounded up to
    /// whole milliseconds so that `epoll` (millisecond resolution) never wakes just before it.
    #[must_use]
    pub fn until(&self, deadline: multipeer::Instant) -> Duration {
        let left = deadline.as_micros().saturating_sub(self.now().as_micros());
        Duration::from_millis(left.div_ceil(1000))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The shorter of two optional sleeps (`None` is "forever").
#[must_use]
pub(crate) fn shortest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_round_up_to_milliseconds_and_never_go_negative() {
        let clock = Clock::new();
        assert_eq!(clock.until(multipeer::Instant::ZERO), Duration::ZERO);
        let later = clock.now() + Duration::from_micros(2_500_100);
        let sleep = clock.until(later);
        assert!(sleep >= Duration::from_millis(2_499) && sleep <= Duration::from_millis(2_501), "{sleep:?}");
        assert_eq!(shortest(None, Some(sleep)), Some(sleep));
        assert_eq!(shortest(Some(Duration::ZERO), Some(sleep)), Some(Duration::ZERO));
        assert_eq!(shortest(None, None), None);
    }
}
