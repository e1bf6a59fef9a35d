//! Exact percentiles of a sample held in memory: for short measurements whose values may be
//! negative or need no histogram (calibrate's added TTFT error, the benches). Nearest rank on
//! the sorted values: the q-quantile of n values is the value at index round((n − 1)·q).

/// Sorted values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample(Vec<f64>);

impl Sample {
    pub fn new(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        Self(values)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The values, sorted.
    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The q-quantile (0 ≤ q ≤ 1); NaN for an empty sample.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let i = ((self.0.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        self.0[i]
    }

    /// The largest value; NaN for an empty sample.
    pub fn max(&self) -> f64 {
        self.0.last().copied().unwrap_or(f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nearest_rank() {
        let s = Sample::new(vec![5.0, -1.0, 3.0, 2.0, 4.0]);
        assert_eq!(
            (s.quantile(0.0), s.quantile(0.5), s.quantile(1.0)),
            (-1.0, 3.0, 5.0)
        );
        assert!(Sample::new(vec![]).quantile(0.5).is_nan());
    }

    proptest! {
        #[test]
        fn a_quantile_lies_within_min_and_max(v in proptest::collection::vec(-1e9f64..1e9, 1..200), q in 0.0f64..=1.0) {
            let s = Sample::new(v.clone());
            let (min, max) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
            let x = s.quantile(q);
            prop_assert!(min <= x && x <= max);
            prop_assert!(s.quantile(q) <= s.quantile((q + 0.1).min(1.0)));
        }
    }
}
