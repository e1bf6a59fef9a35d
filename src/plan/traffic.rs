//! What a phase does to its requests besides sending them: the trace it replays (its
//! arrivals and requests) and the share of requests the client abandons.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{PromptGenerator, serialize_secs};

/// A seeded share of a phase's requests that the client cancels `after` their send: request
/// `id`'s fate depends only on the seed and `id`, so it is the same on every run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CancelSpec {
    /// 0..=1: the share of requests cancelled.
    pub share: f64,
    #[serde(serialize_with = "serialize_secs")]
    pub after: Duration,
    pub seed: u64,
}

impl CancelSpec {
    /// Whether request `id` is one the client cancels.
    pub fn cancels(&self, id: u64) -> bool {
        let z = crate::seeded::mix(self.seed, id);
        // Share 1 (the deadline form) is every request, also where z rounds up to 2^64.
        self.share >= 1.0 || (z as f64) < self.share * 2f64.powi(64)
    }
}

/// A trace a phase replays: its arrivals at `offsets` from the phase start (absolute
/// deadlines, the trace's timestamps relative to its first replayed line, divided by the
/// speed) and its own requests, request k of the phase being line k of the trace.
#[derive(Clone, Serialize)]
pub struct Replay {
    /// The trace file and format, e.g. `data/trace.jsonl (mooncake, speed 2)`.
    pub source: String,
    #[serde(skip)]
    pub offsets: Arc<[Duration]>,
    #[serde(skip)]
    pub requests: Arc<dyn PromptGenerator>,
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Replay({}, {} arrivals)",
            self.source,
            self.offsets.len()
        )
    }
}
