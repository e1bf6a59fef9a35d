//! The shape of a metric's distribution for charts: the CDF at every percentile and an
//! equal-width histogram, read from the metric's HDR histogram.

use super::Acc;

/// The shape of a distribution, for charts: the CDF at every percentile and a histogram.
/// Values in the metric's display unit. Not part of the CSV or the metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shape {
    /// `(value, fraction of samples at or below it)`, fraction rising from 0 to 1.
    pub cdf: Vec<(f64, f64)>,
    /// Equal-width bins from the minimum to the 99th percentile; the last bin also counts
    /// the samples above it (the slowest 1 %).
    pub bins: Vec<Bin>,
}

/// One histogram bin: samples with `lo <= value < hi`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// Bins in a `Shape`'s histogram.
pub(crate) const SHAPE_BINS: usize = 30;

impl Acc {
    /// CDF at each percentile (plus the exact extremes) and equal-width bins up to p99.
    pub(super) fn shape(&self, scale: f64) -> Shape {
        if self.n == 0 {
            return Shape::default();
        }
        let mut cdf = vec![(self.min / scale, 0.0)];
        for i in 1..100 {
            let q = i as f64 / 100.0;
            cdf.push((self.hist.value_at_quantile(q) as f64 / scale, q));
        }
        cdf.push((self.hist.value_at_quantile(0.999) as f64 / scale, 0.999));
        cdf.push((self.max / scale, 1.0));
        for point in &mut cdf {
            point.0 = point.0.clamp(self.min / scale, self.max / scale);
        }
        let lo = self.min / scale;
        let top = (self.hist.value_at_quantile(0.99) as f64 / scale).max(lo);
        let (n_bins, width) = if top > lo {
            (SHAPE_BINS, (top - lo) / SHAPE_BINS as f64)
        } else {
            (1, 1.0)
        };
        let mut bins: Vec<Bin> = (0..n_bins)
            .map(|i| Bin {
                lo: lo + i as f64 * width,
                hi: lo + (i + 1) as f64 * width,
                count: 0,
            })
            .collect();
        for v in self.hist.iter_recorded() {
            let x = self.hist.median_equivalent(v.value_iterated_to()) as f64 / scale;
            let i = (((x - lo) / width).floor().max(0.0) as usize).min(n_bins - 1);
            bins[i].count += v.count_at_value();
        }
        Shape { cdf, bins }
    }
}
