//! One metric's running state: an HDR histogram plus exact count, sums and extremes, and the
//! `Distribution` it yields (percentiles clamped into the exact extremes).

use hdrhistogram::Histogram;

use super::round::round_to_unit;
use super::{Distribution, Metric};

/// One metric's running state.
pub(super) struct Acc {
    pub(super) hist: Histogram<u64>,
    pub(super) n: u64,
    pub(super) sum: f64,
    pub(super) sum_sq: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

impl Acc {
    pub(super) fn new() -> Self {
        Self {
            // 1 to 1e12 units: an hour in µs, or a billion tokens/s in thousandths.
            hist: Histogram::new_with_bounds(1, 1_000_000_000_000, 3).expect("valid bounds"),
            n: 0,
            sum: 0.0,
            sum_sq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Adds one value in histogram units.
    pub(super) fn add(&mut self, v: f64) {
        self.hist.saturating_record(round_to_unit(v));
        self.n += 1;
        self.sum += v;
        self.sum_sq += v * v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds a whole number of µs of a millisecond metric (scale 1000): exactly
    /// `add(us as f64 * 1000.0 / 1000.0)`, cheaper for the dozens of ITL gaps of each request.
    pub(super) fn add_us(&mut self, us: u64) {
        // Below 2^43, `us * 1000` is exact in an f64, so dividing by 1000 gives `us` exactly,
        // and `us` is its own rounding.
        if us >= 1 << 43 {
            return self.add(us as f64 * 1000.0 / 1000.0);
        }
        let v = us as i64 as f64;
        self.hist.saturating_record(us);
        self.n += 1;
        self.sum += v;
        self.sum_sq += v * v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub(super) fn distribution(&self, m: Metric) -> Distribution {
        let s = m.scale();
        let some = |v: f64| (self.n > 0).then_some(v / s);
        // A histogram bucket's value may lie past the exact extremes (a p99 of 351.23 ms over
        // a max of 351.00): a percentile is clamped into [min, max].
        let q = |q: f64| {
            (self.n > 0)
                .then(|| (self.hist.value_at_quantile(q) as f64).clamp(self.min, self.max) / s)
        };
        let mean = self.sum / self.n.max(1) as f64;
        let var = (self.sum_sq / self.n.max(1) as f64 - mean * mean).max(0.0);
        Distribution {
            key: m.key(),
            label: m.label(),
            count: self.n,
            mean: some(mean),
            p50: q(0.5),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            // min and max are exact, not histogram buckets.
            min: some(self.min),
            max: some(self.max),
            stddev: some(var.sqrt()),
            intervals: if m == Metric::ItlMs {
                None
            } else {
                self.intervals(s)
            },
            shape: self.shape(s),
        }
    }
}
