//! How sure one run's percentiles are: a 95% bootstrap confidence interval for p50, p95 and
//! p99 of each per-request metric, computed exactly rather than by drawing resamples.
//!
//! The bootstrap resamples the run's n requests with replacement and takes the q-quantile
//! (nearest rank k = ⌈q·n⌉, as the reported percentiles) of each resample; the interval is the
//! central 95% of those resampled quantiles. The k-th smallest of n draws from the run's own
//! values is at most v exactly when at least k draws are ≤ v, and each draw is with probability
//! F(v), the share of the run's requests at or below v. So the resampled quantile's distribution
//! is P(q* ≤ v) = P(Binomial(n, F(v)) ≥ k) = I_F(v)(k, n − k + 1), the regularized incomplete
//! beta function. Reading its 2.5% and 97.5% points off the histogram gives the interval that
//! infinitely many resamples would: the same every time, with no seed, at the histogram's
//! precision (3 significant digits), in a few microseconds per percentile.
//!
//! Not for ITL: a request has many gaps, which do not vary independently, so resampling gaps
//! would understate the uncertainty.

use serde::Serialize;

use super::Acc;
use super::trials::incomplete_beta;

/// Confidence level of the intervals.
pub const LEVEL: f64 = 0.95;

/// The percentiles that get an interval, by their column suffix.
pub const QUANTILES: [(&str, f64); 3] = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)];

/// One percentile's interval, in the metric's display unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

/// The intervals of one metric's `QUANTILES`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Intervals {
    pub level: f64,
    pub p50: Interval,
    pub p95: Interval,
    pub p99: Interval,
}

impl Intervals {
    /// `(suffix, interval)` in `QUANTILES` order.
    pub fn each(&self) -> [(&'static str, Interval); 3] {
        [("p50", self.p50), ("p95", self.p95), ("p99", self.p99)]
    }
}

impl Acc {
    /// The interval of each of `QUANTILES`, clamped into [min, max]; `None` without samples.
    pub(super) fn intervals(&self, scale: f64) -> Option<Intervals> {
        if self.n == 0 {
            return None;
        }
        let mut cumulative = Vec::new();
        let mut below = 0;
        for v in self.hist.iter_recorded() {
            below += v.count_at_value();
            cumulative.push((v.value_iterated_to(), below));
        }
        let n = below;
        let edge = |units: u64| (units as f64).clamp(self.min, self.max) / scale;
        let [p50, p95, p99] = QUANTILES.map(|(_, q)| {
            let (lo, hi) = quantile_interval(&cumulative, n, q, LEVEL);
            Interval {
                lo: edge(lo),
                hi: edge(hi),
            }
        });
        Some(Intervals {
            level: LEVEL,
            p50,
            p95,
            p99,
        })
    }
}

/// The bootstrap interval of the q-quantile of `n` values given as `(value, values at or below
/// it)` in rising order (the last count is `n`); values in any unit.
pub fn quantile_interval(cumulative: &[(u64, u64)], n: u64, q: f64, level: f64) -> (u64, u64) {
    let k = ((q * n as f64).ceil() as u64).clamp(1, n);
    // P(resampled quantile ≤ the j-th value): rises with j, reaching 1 at the last.
    let at_most = |j: usize| {
        let share = cumulative[j].1 as f64 / n as f64;
        if share >= 1.0 {
            1.0
        } else {
            incomplete_beta(share, k as f64, (n - k + 1) as f64)
        }
    };
    let tail = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    let first_reaching = |p: f64| {
        let j = partition(cumulative.len(), |j| at_most(j) < p);
        cumulative[j.min(cumulative.len() - 1)].0
    };
    (first_reaching(tail), first_reaching(1.0 - tail))
}

/// The first index in `0..len` where `below` is false (`below` is true, then false).
fn partition(len: usize, below: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// `(value, at or below)` of whole-number values.
    fn cumulative(values: &[u64]) -> (Vec<(u64, u64)>, u64) {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (i, v) in sorted.iter().enumerate() {
            match out.last_mut() {
                Some(last) if last.0 == *v => last.1 = i as u64 + 1,
                _ => out.push((*v, i as u64 + 1)),
            }
        }
        (out, values.len() as u64)
    }

    /// The interval from 40,000 real resamples, for comparison.
    fn resampled(values: &[u64], q: f64, seed: u64) -> (f64, f64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = values.len();
        let mut qs: Vec<f64> = (0..40_000)
            .map(|_| {
                let mut r: Vec<u64> = (0..n).map(|_| values[rng.random_range(0..n)]).collect();
                r.sort_unstable();
                let k = ((q * n as f64).ceil() as usize).clamp(1, n);
                r[k - 1] as f64
            })
            .collect();
        qs.sort_by(f64::total_cmp);
        (qs[1000], qs[39_000])
    }

    #[test]
    fn the_exact_interval_is_what_many_resamples_give() {
        let mut rng = StdRng::seed_from_u64(5);
        let values: Vec<u64> = (0..300).map(|_| rng.random_range(80..120)).collect();
        let (cum, n) = cumulative(&values);
        for q in [0.5, 0.95, 0.99] {
            let (lo, hi) = quantile_interval(&cum, n, q, 0.95);
            let (rlo, rhi) = resampled(&values, q, 9);
            // Whole-number values: the two agree to the value, or to its neighbour where the
            // resampled tail falls right at a step of the exact distribution.
            assert!((lo as f64 - rlo).abs() <= 1.0, "q {q}: {lo} vs {rlo}");
            assert!((hi as f64 - rhi).abs() <= 1.0, "q {q}: {hi} vs {rhi}");
        }
    }

    #[test]
    fn the_interval_of_the_median_covers_the_true_median_about_95_percent_of_the_time() {
        // Uniform 1000..=2999: the true median is 2000 (to a value).
        let mut rng = StdRng::seed_from_u64(11);
        let trials = 1000;
        let covered = (0..trials)
            .filter(|_| {
                let values: Vec<u64> = (0..200).map(|_| rng.random_range(1000..3000)).collect();
                let (cum, n) = cumulative(&values);
                let (lo, hi) = quantile_interval(&cum, n, 0.5, 0.95);
                lo <= 2000 && 2000 <= hi
            })
            .count();
        let share = covered as f64 / trials as f64;
        assert!((0.92..=0.985).contains(&share), "coverage {share}");
    }

    #[test]
    fn a_larger_run_gives_a_narrower_interval_and_large_runs_stay_finite() {
        let width = |n: u64| {
            let values: Vec<u64> = (0..n).map(|i| 1000 + (i * 7919) % 1000).collect();
            let (cum, n) = cumulative(&values);
            let (lo, hi) = quantile_interval(&cum, n, 0.95, 0.95);
            hi - lo
        };
        let (small, large) = (width(100), width(10_000));
        assert!(large < small, "{small} vs {large}");
        let (cum, n) = cumulative(&(0..1_000_000u64).map(|i| i % 5000).collect::<Vec<_>>());
        let (lo, hi) = quantile_interval(&cum, n, 0.99, 0.95);
        assert!(lo <= 4950 && 4949 <= hi && hi - lo <= 10, "{lo}..{hi}");
    }

    proptest::proptest! {
        #[test]
        fn the_interval_holds_the_estimate_and_lies_within_the_values(
            values in proptest::collection::vec(1u64..5000, 1..300),
            q in 0.01f64..=0.99,
        ) {
            let (cum, n) = cumulative(&values);
            let (lo, hi) = quantile_interval(&cum, n, q, 0.95);
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let k = ((q * n as f64).ceil() as usize).clamp(1, values.len());
            let estimate = sorted[k - 1];
            proptest::prop_assert!(lo <= estimate && estimate <= hi, "{lo} {estimate} {hi}");
            proptest::prop_assert!(sorted[0] <= lo && hi <= sorted[values.len() - 1]);
        }
    }
}
