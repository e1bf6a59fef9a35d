//! Regression gates for CI: `--fail-on 'ttft_ms_p95 > +10%'`, `'success_rate < -0.5'`,
//! `'output_tok_per_s < -5%'`. A gate names a compared metric, a direction and a threshold,
//! relative (`%`) or absolute (the metric's unit). It fails only when the change is
//! significant (its confidence interval excludes 0) *and* beyond the threshold, so noise
//! never fails a build and a small real change fails only when it is larger than allowed.

use crate::stats::bootstrap::Change;

/// Which way a change must go to fail the gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Direction {
    /// `>`: a rise beyond the threshold fails.
    Above,
    /// `<`: a fall beyond the threshold fails.
    Below,
}

/// How far the change may go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Percent of the base value.
    Relative(f64),
    /// In the metric's own unit.
    Absolute(f64),
}

/// One `--fail-on` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// As written, for messages.
    pub text: String,
    pub metric: String,
    pub direction: Direction,
    pub threshold: Threshold,
}

impl Gate {
    /// Parses `METRIC > +10%` / `METRIC < -0.5`; `known` lists the metrics that can be gated.
    pub fn parse(text: &str, known: &[String]) -> Result<Self, String> {
        let usage = "write METRIC > +10% or METRIC < -5% (relative) or METRIC < -0.5 (absolute), e.g. 'ttft_ms_p95 > +10%'";
        let (metric, direction, rest) = match (text.split_once('>'), text.split_once('<')) {
            (Some((m, r)), None) => (m, Direction::Above, r),
            (None, Some((m, r))) => (m, Direction::Below, r),
            _ => return Err(format!("--fail-on {text:?}: {usage}")),
        };
        let metric = metric.trim().to_owned();
        if !known.contains(&metric) {
            return Err(format!(
                "--fail-on {text:?}: {metric:?} is not a compared metric; use one of: {}",
                known.join(", ")
            ));
        }
        let rest = rest.trim().trim_start_matches('=').trim();
        let (number, relative) = match rest.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (rest, false),
        };
        let value: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("--fail-on {text:?}: {number:?} is not a number; {usage}"))?;
        Ok(Self {
            text: text.trim().to_owned(),
            metric,
            direction,
            threshold: if relative {
                Threshold::Relative(value)
            } else {
                Threshold::Absolute(value)
            },
        })
    }

    /// Whether `change` fails the gate: significant, and beyond the threshold in its direction.
    pub fn fails(&self, change: &Change) -> bool {
        let moved = match self.threshold {
            Threshold::Relative(_) => change.rel_pct,
            Threshold::Absolute(_) => change.diff,
        };
        let limit = match self.threshold {
            Threshold::Relative(v) | Threshold::Absolute(v) => v,
        };
        change.significant
            && moved.is_finite()
            && match self.direction {
                Direction::Above => moved > limit,
                Direction::Below => moved < limit,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        ["ttft_ms_p95", "success_rate"].map(String::from).to_vec()
    }

    fn change(rel_pct: f64, diff: f64, significant: bool) -> Change {
        Change {
            base: 100.0,
            new: 100.0 + diff,
            diff,
            diff_ci: (diff - 1.0, diff + 1.0),
            rel_pct,
            rel_ci: (rel_pct - 1.0, rel_pct + 1.0),
            significant,
        }
    }

    #[test]
    fn gates_parse_relative_and_absolute_thresholds() {
        let g = Gate::parse("ttft_ms_p95 > +10%", &known()).unwrap();
        assert_eq!(
            (g.direction, g.threshold),
            (Direction::Above, Threshold::Relative(10.0))
        );
        let g = Gate::parse(" success_rate < -0.5 ", &known()).unwrap();
        assert_eq!(
            (g.direction, g.threshold),
            (Direction::Below, Threshold::Absolute(-0.5))
        );
        let err = Gate::parse("ttft_p95 > 10%", &known()).unwrap_err();
        assert!(err.contains("ttft_ms_p95"), "{err}");
        assert!(Gate::parse("ttft_ms_p95 10%", &known()).is_err());
        assert!(Gate::parse("ttft_ms_p95 > ten", &known()).is_err());
    }

    #[test]
    fn a_gate_fails_only_on_a_significant_change_beyond_its_threshold() {
        let g = Gate::parse("ttft_ms_p95 > +10%", &known()).unwrap();
        assert!(g.fails(&change(23.0, 23.0, true)));
        assert!(!g.fails(&change(23.0, 23.0, false)), "noise never fails");
        assert!(
            !g.fails(&change(5.0, 5.0, true)),
            "a real change within the threshold"
        );
        assert!(
            !g.fails(&change(-30.0, -30.0, true)),
            "the other way is better"
        );
        let g = Gate::parse("success_rate < -0.5", &known()).unwrap();
        assert!(g.fails(&change(-2.0, -2.0, true)));
        assert!(!g.fails(&change(-2.0, -0.2, true)));
    }
}
