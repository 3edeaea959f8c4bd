//! The std clock, turned into the core's microsecond [`Instant`](multipeer::Instant)s.

use core::time::Duration;
use std::time::Instant;

/// A monotonic clock whose epoch is the moment it was created.
///
/// Each connection and listener keeps its own, so the core's `u64` microseconds start near zero
/// and never overflow in practice.
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

    /// A core instant as a std instant (the far future saturates to about a century ahead).
    #[must_use]
    pub fn to_std(&self, at: multipeer::Instant) -> Instant {
        let since_epoch = Duration::from_micros(at.as_micros());
        self.epoch
            .checked_add(since_epoch)
            .or_else(|| Instant::now().checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
            .unwrap_or(self.epoch)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Time left until `deadline`, rounded up to whole milliseconds so that a socket timeout never
/// wakes up just before the deadline, and never zero (which sockets refuse).
pub(crate) fn timeout_until(deadline: Instant) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    let millis = left.as_micros().div_ceil(1000).max(1);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_between_std_and_core() {
        let clock = Clock::new();
        let later = clock.epoch + Duration::from_millis(1500);
        let core = clock.to_core(later);
        assert_eq!(core, multipeer::Instant::from_micros(1_500_000));
        assert_eq!(clock.to_std(core), later);
        if let Some(before) = clock.epoch.checked_sub(Duration::from_millis(1)) {
            assert_eq!(clock.to_core(before), multipeer::Instant::ZERO);
        }
        assert!(clock.to_std(multipeer::Instant::from_micros(u64::MAX)) > later);
    }

    #[test]
    fn socket_timeouts_round_up_and_are_never_zero() {
        assert_eq!(timeout_until(Instant::now()), Duration::from_millis(1));
        let t = timeout_until(Instant::now() + Duration::from_micros(2_500_100));
        assert!(t >= Duration::from_millis(2_500) && t <= Duration::from_millis(2_501), "{t:?}");
    }
}
