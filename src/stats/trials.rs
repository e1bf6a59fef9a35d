//! Repeated trials of one plan: each metric's across-trial mean with a Student-t confidence
//! interval, the change between two trial sets (`welch`), and the coefficient of variation (standard deviation / mean, sample standard
//! deviation), flagged unstable above `UNSTABLE_CV`. The t quantile is computed, not tabled:
//! the regularized incomplete beta function (continued fraction) gives the t distribution's
//! CDF, which is inverted by bisection.

use super::PhaseStats;

/// A metric whose trials vary more than this share of their mean is flagged unstable.
pub const UNSTABLE_CV: f64 = 0.10;

/// One metric over the trials.
#[derive(Debug, Clone, PartialEq)]
pub struct AcrossTrials {
    /// CSV-style key, e.g. `ttft_ms_p95`.
    pub key: String,
    pub values: Vec<f64>,
    pub mean: f64,
    /// The t interval of the mean (equal to the mean with one trial).
    pub lo: f64,
    pub hi: f64,
    /// Coefficient of variation (NaN with one trial or a zero mean).
    pub cv: f64,
    pub unstable: bool,
}

/// How a trial's value of one metric is read from its statistics.
type Pick = Box<dyn Fn(&PhaseStats) -> Option<f64>>;

/// The metrics compared across trials, each with how a trial's value is read and whether a
/// higher value is better.
pub fn metrics() -> Vec<(String, Pick, bool)> {
    let mut keys: Vec<(String, Pick, bool)> = Vec::new();
    for metric in ["ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"] {
        for (suffix, pick) in [("p50", 0usize), ("p95", 1), ("p99", 2)] {
            let read: Pick = Box::new(move |s: &PhaseStats| {
                let d = s.metrics.iter().find(|d| d.key == metric)?;
                [d.p50, d.p95, d.p99][pick]
            });
            keys.push((format!("{metric}_{suffix}"), read, false));
        }
    }
    keys.push((
        "success_rate".into(),
        Box::new(|s| Some(s.success_rate)),
        true,
    ));
    keys.push(("req_per_s".into(), Box::new(|s| Some(s.req_per_s)), true));
    keys.push((
        "output_tok_per_s".into(),
        Box::new(|s| Some(s.output_tok_per_s)),
        true,
    ));
    keys
}

/// The metrics reported across trials, from each trial's `all` statistics.
pub fn across(trials: &[&PhaseStats], level: f64) -> Vec<AcrossTrials> {
    metrics()
        .into_iter()
        .filter_map(|(key, f, _)| {
            let values: Vec<f64> = trials.iter().filter_map(|s| f(s)).collect();
            (!values.is_empty()).then(|| summarize(key, values, level))
        })
        .collect()
}

/// The change of the mean from the trials `base` to the trials `new`: Welch's t interval of the
/// difference (unequal variances, Welch–Satterthwaite degrees of freedom); the relative
/// interval is the difference's over the base mean. `None` with fewer than 2 trials a side.
pub fn welch(base: &[f64], new: &[f64], level: f64) -> Option<super::bootstrap::Change> {
    if base.len() < 2 || new.len() < 2 {
        return None;
    }
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var / n, n)
    };
    let ((mb, vb, nb), (mn, vn, nn)) = (stats(base), stats(new));
    let se2 = vb + vn;
    let diff = mn - mb;
    let (lo, hi) = if se2 == 0.0 {
        (diff, diff)
    } else {
        let df = se2 * se2 / (vb * vb / (nb - 1.0) + vn * vn / (nn - 1.0));
        let half = t_quantile(0.5 + level / 2.0, df) * se2.sqrt();
        (diff - half, diff + half)
    };
    let rel = |x: f64| if mb == 0.0 { f64::NAN } else { x / mb * 100.0 };
    Some(super::bootstrap::Change {
        base: mb,
        new: mn,
        diff,
        diff_ci: (lo, hi),
        rel_pct: rel(diff),
        rel_ci: (rel(lo), rel(hi)),
        significant: lo > 0.0 || hi < 0.0,
    })
}

/// Mean, t interval and coefficient of variation of `values`.
pub fn summarize(key: String, values: Vec<f64>, level: f64) -> AcrossTrials {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let (lo, hi, cv) = if values.len() < 2 {
        (mean, mean, f64::NAN)
    } else {
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let sd = var.sqrt();
        let half = t_quantile(0.5 + level / 2.0, n - 1.0) * sd / n.sqrt();
        let cv = if mean == 0.0 {
            f64::NAN
        } else {
            sd / mean.abs()
        };
        (mean - half, mean + half, cv)
    };
    AcrossTrials {
        key,
        values,
        mean,
        lo,
        hi,
        cv,
        unstable: cv > UNSTABLE_CV,
    }
}

/// The p-quantile (0.5 < p < 1) of Student's t with `df` degrees of freedom.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    while t_cdf(hi, df) < p {
        hi *= 2.0;
        if hi > 1e9 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// P(T ≤ t) for t ≥ 0.
fn t_cdf(t: f64, df: f64) -> f64 {
    1.0 - 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// The regularized incomplete beta function I_x(a, b) (also P(Binomial(a + b − 1, x) ≥ a) for
/// whole a, b).
pub(super) fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_fraction(1.0 - x, b, a) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut h = d;
    // Converges in about √max(a, b) steps: a few for t quantiles, a thousand for the binomial
    // of a million-request run.
    for m in 1..20_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            d = 1.0 / if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_tables() {
        for (df, want) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (4.0, 2.776),
            (9.0, 2.262),
            (30.0, 2.042),
            (1000.0, 1.962),
        ] {
            let got = t_quantile(0.975, df);
            assert!((got - want).abs() < 0.002, "df {df}: {got} vs {want}");
        }
        assert!((t_quantile(0.95, 9.0) - 1.833).abs() < 0.002);
    }

    #[test]
    fn welch_finds_a_shift_between_trial_sets_and_not_noise() {
        let base = [100.0, 102.0, 98.0, 101.0, 99.0];
        let shifted = [110.0, 112.0, 108.0, 111.0, 109.0];
        let c = welch(&base, &shifted, 0.95).unwrap();
        assert!(
            c.significant && c.diff_ci.0 < 10.0 && 10.0 < c.diff_ci.1,
            "{c:?}"
        );
        let same = [101.0, 99.0, 100.0, 98.0, 102.0];
        assert!(!welch(&base, &same, 0.95).unwrap().significant);
        assert!(welch(&base[..1], &same, 0.95).is_none());
    }

    #[test]
    fn trials_give_a_t_interval_and_flag_spread() {
        let a = summarize("x".into(), vec![10.0, 12.0, 11.0, 9.0, 13.0], 0.95);
        assert_eq!(a.mean, 11.0);
        // sd = sqrt(2.5), t(0.975, 4) = 2.776: half width 1.963.
        assert!(
            (a.hi - a.mean - 2.776 * 2.5f64.sqrt() / 5f64.sqrt()).abs() < 0.01,
            "{a:?}"
        );
        assert!(a.unstable, "cv {} is over 10%", a.cv);
        let b = summarize("y".into(), vec![100.0, 101.0, 99.0], 0.95);
        assert!(!b.unstable && b.lo < 100.0 && b.hi > 100.0, "{b:?}");
        let one = summarize("z".into(), vec![5.0], 0.95);
        assert_eq!((one.lo, one.hi), (5.0, 5.0));
        assert!(!one.unstable);
    }
}
