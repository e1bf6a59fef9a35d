//! A phase's pace: the rate its arrivals were offered at against the rate its requests
//! completed at. Offered: (n − 1) arrivals over the span of their intended starts (exact for a
//! constant rate). Completed: (n − 1) completions over the span from the first request's end to
//! the last's. A latency that stays put shifts both spans alike, so the two rates agree while
//! the server keeps up; a server that falls behind completes at its own, lower, rate. A closed
//! loop's arrivals follow its completions, so its two rates always agree.

use serde::Serialize;

use crate::record::RequestRecord;

/// Running spans of a phase's intended starts and ends, µs on the run clock.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PaceAcc {
    n: u64,
    intended: Option<(u64, u64)>,
    ended: Option<(u64, u64)>,
}

/// A span of stamps (first, last), µs; `None` before the first.
pub(super) type Span = Option<(u64, u64)>;

fn widen(span: Option<(u64, u64)>, lo: u64, hi: u64) -> Option<(u64, u64)> {
    Some(span.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))))
}

impl PaceAcc {
    pub(super) fn add(&mut self, r: &RequestRecord) {
        self.n += 1;
        self.intended = widen(self.intended, r.intended_us, r.intended_us);
        self.ended = widen(self.ended, r.end_us, r.end_us);
    }

    /// Arrivals and the two spans, as data (`state`).
    pub(super) fn parts(&self) -> (u64, Span, Span) {
        (self.n, self.intended, self.ended)
    }

    pub(super) fn from_parts(n: u64, intended: Span, ended: Span) -> Self {
        Self { n, intended, ended }
    }

    pub(super) fn merge(&mut self, o: &PaceAcc) {
        self.n += o.n;
        if let Some((a, b)) = o.intended {
            self.intended = widen(self.intended, a, b);
        }
        if let Some((a, b)) = o.ended {
            self.ended = widen(self.ended, a, b);
        }
    }

    /// `None` with fewer than two requests or arrivals all at one instant.
    pub(super) fn finish(&self) -> Option<Pace> {
        let rate =
            |(a, b): (u64, u64)| (b > a).then(|| (self.n - 1) as f64 / crate::units::span_s(a, b));
        if self.n < 2 {
            return None;
        }
        Some(Pace {
            offered_req_per_s: rate(self.intended?)?,
            completed_req_per_s: rate(self.ended?).unwrap_or(f64::INFINITY),
        })
    }
}

/// A phase's offered and completion rates, requests per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pace {
    pub offered_req_per_s: f64,
    pub completed_req_per_s: f64,
}

impl Pace {
    /// Completions this share of the offered rate, or less, mean the server fell behind: well
    /// past what a latency that varies over a phase does to the completion span.
    pub const BEHIND_SHARE: f64 = 0.75;

    /// Whether requests completed well below the offered rate.
    pub fn fell_behind(&self) -> bool {
        self.completed_req_per_s < Self::BEHIND_SHARE * self.offered_req_per_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::tests::rec;

    #[test]
    fn offered_and_completed_rates_follow_the_spans() {
        // 21 arrivals 100 ms apart (10 req/s); a server that keeps up (50 ms each) and one that
        // serves one request per 400 ms in order (2.5 req/s).
        let mut keeps_up = PaceAcc::default();
        let mut behind = PaceAcc::default();
        for i in 0..21 {
            let r = rec(i, 0, i * 100_000, 10_000, 10_000, 5);
            keeps_up.add(&r);
            let mut slow = r.clone();
            slow.end_us = (i + 1) * 400_000;
            behind.add(&slow);
        }
        let p = keeps_up.finish().unwrap();
        assert!((p.offered_req_per_s - 10.0).abs() < 1e-9, "{p:?}");
        assert!((p.completed_req_per_s - 10.0).abs() < 1e-9, "{p:?}");
        assert!(!p.fell_behind());
        let p = behind.finish().unwrap();
        assert!((p.completed_req_per_s - 2.5).abs() < 1e-9, "{p:?}");
        assert!(p.fell_behind());
        assert_eq!(PaceAcc::default().finish(), None);
    }
}
