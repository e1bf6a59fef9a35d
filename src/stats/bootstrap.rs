//! Whether a difference between two runs is real: a seeded percentile bootstrap of the change
//! in one statistic (a mean, a percentile, a total per second) between two samples of
//! requests. Each resample draws both runs' requests with replacement, computes the statistic
//! on each and takes the difference; the central `level` of those differences is the
//! confidence interval. A change is significant when its interval excludes 0. The same seed
//! gives the same interval. Percentiles are nearest rank (`Sample`).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::sample::Sample;

/// Most values of one side a resample draws from: a larger run is first cut to a seeded
/// random subset of this size (its interval is then a little wider, never narrower).
pub const MAX_VALUES: usize = 20_000;

/// What is computed on a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    Mean,
    /// The q-quantile, nearest rank.
    Quantile(f64),
    /// The sum (a total, e.g. tokens, that `Side::scale` turns into a rate).
    Sum,
}

/// One run's values of a metric, and the factor that turns the statistic into the reported
/// value (1 for latencies; 100 for a 0/1 success share; 1 / window for a total per second).
#[derive(Debug, Clone)]
pub struct Side {
    values: Sample,
    /// The sum of every value (before any cut), for `Statistic::Sum`.
    full_sum: f64,
    full_len: usize,
    pub scale: f64,
}

impl Side {
    pub fn new(values: Vec<f64>, scale: f64, seed: u64) -> Self {
        let full_sum = values.iter().sum();
        let full_len = values.len();
        Self {
            values: Sample::new(cut(values, seed)),
            full_sum,
            full_len,
            scale,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The statistic on every value.
    pub fn value(&self, stat: Statistic) -> f64 {
        self.scale
            * match stat {
                Statistic::Mean => self.full_sum / self.full_len.max(1) as f64,
                Statistic::Quantile(q) => self.values.quantile(q),
                Statistic::Sum => self.full_sum,
            }
    }

    /// The statistic on one resample with replacement (a sum is scaled up to the run's size).
    fn resampled(&self, stat: Statistic, rng: &mut StdRng, idx: &mut Vec<usize>) -> f64 {
        let n = self.values.len();
        idx.clear();
        idx.extend((0..n).map(|_| rng.random_range(0..n)));
        let v = self.values.as_slice();
        self.scale
            * match stat {
                Statistic::Quantile(q) => {
                    // The values are sorted, so the k-th smallest index is the k-th value.
                    let k = ((n - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
                    let (_, nth, _) = idx.select_nth_unstable(k);
                    v[*nth]
                }
                Statistic::Mean => idx.iter().map(|&i| v[i]).sum::<f64>() / n as f64,
                Statistic::Sum => {
                    idx.iter().map(|&i| v[i]).sum::<f64>() * self.full_len as f64 / n as f64
                }
            }
    }
}

/// At most `MAX_VALUES` of `values`, a seeded random subset when there are more.
fn cut(mut values: Vec<f64>, seed: u64) -> Vec<f64> {
    if values.len() > MAX_VALUES {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        for i in 0..MAX_VALUES {
            let j = rng.random_range(i..values.len());
            values.swap(i, j);
        }
        values.truncate(MAX_VALUES);
    }
    values
}

/// The change of a statistic from `base` to `new`, with its confidence interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub base: f64,
    pub new: f64,
    /// `new − base`, and its interval.
    pub diff: f64,
    pub diff_ci: (f64, f64),
    /// The change relative to `base`, percent, and its interval (NaN when `base` is 0).
    pub rel_pct: f64,
    pub rel_ci: (f64, f64),
    /// The interval excludes 0.
    pub significant: bool,
}

/// Bootstraps the change of `stat` with `resamples` resamples at confidence `level` (0–1).
/// `None` when either side has no values.
pub fn change(
    base: &Side,
    new: &Side,
    stat: Statistic,
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<Change> {
    if base.is_empty() || new.is_empty() {
        return None;
    }
    let (b, n) = (base.value(stat), new.value(stat));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut idx = Vec::new();
    let (mut diffs, mut rels) = (Vec::with_capacity(resamples), Vec::with_capacity(resamples));
    for _ in 0..resamples.max(1) {
        let rb = base.resampled(stat, &mut rng, &mut idx);
        let rn = new.resampled(stat, &mut rng, &mut idx);
        diffs.push(rn - rb);
        rels.push(relative(rb, rn));
    }
    let tail = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    let interval = |v: Vec<f64>| {
        let s = Sample::new(v.into_iter().filter(|x| x.is_finite()).collect());
        (s.quantile(tail), s.quantile(1.0 - tail))
    };
    let diff_ci = interval(diffs);
    Some(Change {
        base: b,
        new: n,
        diff: n - b,
        diff_ci,
        rel_pct: relative(b, n),
        rel_ci: interval(rels),
        significant: diff_ci.0 > 0.0 || diff_ci.1 < 0.0,
    })
}

/// `(new − base) / base` in percent; NaN when `base` is 0.
fn relative(base: f64, new: f64) -> f64 {
    if base == 0.0 {
        f64::NAN
    } else {
        (new - base) / base * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(values: impl Iterator<Item = f64>) -> Side {
        Side::new(values.collect(), 1.0, 7)
    }

    #[test]
    fn a_real_shift_is_significant_and_inside_its_interval() {
        let base = side((0..400).map(|i| 100.0 + (i % 40) as f64));
        let new = side((0..400).map(|i| 130.0 + (i % 40) as f64));
        let c = change(&base, &new, Statistic::Quantile(0.95), 0.95, 500, 1).unwrap();
        assert!(c.significant, "{c:?}");
        assert!(c.diff_ci.0 <= 30.0 && 30.0 <= c.diff_ci.1, "{c:?}");
        assert!((c.diff - 30.0).abs() < 1e-9);
        let c = change(&base, &new, Statistic::Mean, 0.95, 500, 1).unwrap();
        assert!(
            c.significant && (c.rel_pct - 30.0 / 119.5 * 100.0).abs() < 1e-6,
            "{c:?}"
        );
    }

    #[test]
    fn the_same_distribution_is_no_significant_change_and_the_seed_repeats() {
        let base = side((0..300).map(|i| ((i * 37) % 101) as f64));
        let new = side((0..300).map(|i| ((i * 53) % 101) as f64));
        let a = change(&base, &new, Statistic::Quantile(0.5), 0.95, 400, 3).unwrap();
        assert!(!a.significant, "{a:?}");
        let b = change(&base, &new, Statistic::Quantile(0.5), 0.95, 400, 3).unwrap();
        assert_eq!(a, b);
        assert!(
            change(
                &side(std::iter::empty()),
                &new,
                Statistic::Mean,
                0.95,
                10,
                1
            )
            .is_none()
        );
    }

    #[test]
    fn a_sum_is_scaled_to_the_whole_run_after_a_cut() {
        let n = MAX_VALUES * 2;
        let s = Side::new(vec![2.0; n], 0.5, 1);
        assert_eq!(s.value(Statistic::Sum), n as f64);
        let mut rng = StdRng::seed_from_u64(1);
        let r = s.resampled(Statistic::Sum, &mut rng, &mut Vec::new());
        assert!((r - n as f64).abs() < 1e-6, "{r}");
    }

    /// The method's false-positive rate, measured: two samples from one distribution (uniform,
    /// as the jittered mock's TTFT) are called significantly different in about 5% of
    /// repetitions at 95% (README states the measured rate).
    #[test]
    fn two_samples_of_one_distribution_differ_significantly_about_5_percent_of_the_time() {
        use rand::rngs::StdRng;
        use rand::{RngExt, SeedableRng};
        let mut rng = StdRng::seed_from_u64(2026);
        let reps = 400;
        for (q, n) in [(0.5, 60), (0.95, 60), (0.5, 200), (0.95, 200)] {
            let draw = |rng: &mut StdRng| -> Side {
                side((0..n).map(|_| 80.0 + rng.random_range(0..40_000) as f64 / 1000.0))
            };
            let significant = (0..reps)
                .filter(|i| {
                    let (a, b) = (draw(&mut rng), draw(&mut rng));
                    change(&a, &b, Statistic::Quantile(q), 0.95, 1000, *i as u64)
                        .unwrap()
                        .significant
                })
                .count();
            let rate = significant as f64 / reps as f64;
            eprintln!("q {q} n {n}: false positives {rate:.3}");
            assert!(rate <= 0.09, "q {q} n {n}: {rate}");
        }
    }
}
