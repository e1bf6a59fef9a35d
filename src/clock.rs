//! The run's one clock. Every timestamp in a run is microseconds since the run's origin on the
//! monotonic clock; the wall-clock time of that origin is kept once, for the record.

use std::time::{Duration, SystemTime};

/// tokio's `Instant` (the std monotonic clock, usable directly with tokio's timers).
pub use tokio::time::Instant;

/// A monotonic origin plus the wall-clock time it corresponds to.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
    wall: SystemTime,
}

impl Clock {
    /// Starts a clock whose origin is now.
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// Microseconds from the origin to now.
    pub fn now_us(&self) -> u64 {
        self.us_at(Instant::now())
    }

    /// Microseconds from the origin to `t` (0 for instants before the origin).
    pub fn us_at(&self, t: Instant) -> u64 {
        crate::units::duration_us(t.saturating_duration_since(self.origin))
    }

    /// The instant `us` microseconds after the origin.
    pub fn instant_at(&self, us: u64) -> Instant {
        self.origin + Duration::from_micros(us)
    }

    /// The monotonic origin.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Wall-clock time of the origin.
    pub fn wall_start(&self) -> SystemTime {
        self.wall
    }
}
