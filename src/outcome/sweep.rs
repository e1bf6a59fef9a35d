//! Capacity sweeps: a saturation phase (closed loop at high concurrency) measures the highest
//! throughput the server sustains; the sweep's later phases then run open loop at fractions of
//! that rate. With an SLO, the outcome names the highest rate whose requests still met it;
//! when every step met it, the limit was not found: it is at or above the top step. The
//! saturation probe has its own row and is left out of the `all` row (`stats::StatsBuilder`),
//! which holds the steps.

use serde::{Deserialize, Serialize};

use crate::plan::{Phase, Slo, SweepStep};
use crate::schedule::PhaseRun;
use crate::stats::Summary;

/// Share of good requests (0..=1) a sweep step needs to count as meeting the SLO.
pub const DEFAULT_ATTAINMENT: f64 = 0.9;

/// Throughput of a finished saturation phase: requests completed per second of the phase.
pub fn saturation_rps(run: &PhaseRun) -> Option<f64> {
    let secs = crate::units::span_s(run.started_us, run.ended_us);
    (secs > 0.0 && run.dispatched > 0).then(|| run.dispatched as f64 / secs)
}

/// The phase as it will run: a sweep step gets its rate from the measured saturation.
pub fn resolve(phase: &Phase, saturation: Option<f64>) -> Phase {
    let mut p = phase.clone();
    if let (Some(SweepStep::Fraction(f)), Some(sat)) = (p.sweep, saturation) {
        p.rate = Some((f * sat).max(1e-3));
    }
    p
}

/// One sweep step's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub phase: String,
    /// Offered rate (req/s).
    pub rate: f64,
    /// Completed requests per second.
    pub achieved: f64,
    /// Good requests as a percentage of all requests (with an SLO).
    pub good_rate: Option<f64>,
}

/// What a sweep found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepOutcome {
    pub saturation_rps: f64,
    pub steps: Vec<StepOutcome>,
    /// The highest offered rate whose good share reached `attainment` (with an SLO).
    pub best_rate_within_slo: Option<f64>,
    /// With an SLO, every step met it: the limit is at or above the top step's rate
    /// (`best_rate_within_slo`), not found by this sweep.
    pub every_step_met: bool,
    pub attainment: f64,
}

/// Summarises a sweep from the phases as they ran.
pub fn outcome(
    ran: &[Phase],
    saturation: Option<f64>,
    summary: &Summary,
    slo: Option<&Slo>,
    attainment: f64,
) -> Option<SweepOutcome> {
    let saturation_rps = saturation?;
    let steps: Vec<StepOutcome> = ran
        .iter()
        .filter(|p| matches!(p.sweep, Some(SweepStep::Fraction(_))))
        .filter_map(|p| {
            let stats = summary.phases.iter().find(|s| s.name == p.name)?;
            Some(StepOutcome {
                phase: p.name.clone(),
                rate: p.rate?,
                achieved: stats.req_per_s,
                good_rate: stats.good_rate,
            })
        })
        .collect();
    let best_rate_within_slo = slo.and_then(|_| {
        steps
            .iter()
            .filter(|s| s.good_rate.is_some_and(|g| g >= attainment * 100.0))
            .map(|s| s.rate)
            .fold(None, |best: Option<f64>, r| {
                Some(best.map_or(r, |b| b.max(r)))
            })
    });
    let every_step_met = slo.is_some()
        && !steps.is_empty()
        && steps
            .iter()
            .all(|s| s.good_rate.is_some_and(|g| g >= attainment * 100.0));
    Some(SweepOutcome {
        saturation_rps,
        steps,
        best_rate_within_slo,
        every_step_met,
        attainment,
    })
}

/// The sweep's lines for the console.
pub fn describe(o: &SweepOutcome) -> String {
    let mut s = format!("sweep: saturation {:.2} req/s", o.saturation_rps);
    for step in &o.steps {
        s.push_str(&format!(
            "\n  {}: offered {:.2} req/s, achieved {:.2} req/s{}",
            step.phase,
            step.rate,
            step.achieved,
            step.good_rate
                .map_or(String::new(), |g| format!(", {g:.1} % good"))
        ));
    }
    match o.best_rate_within_slo {
        Some(r) if o.every_step_met => s.push_str(&format!(
            "\n  every step met the SLO ({:.0} % good): the limit is at or above the top step, {r:.2} req/s",
            o.attainment * 100.0
        )),
        Some(r) => s.push_str(&format!(
            "\n  highest rate meeting the SLO ({:.0} % good): {r:.2} req/s",
            o.attainment * 100.0
        )),
        None if o.steps.iter().any(|s| s.good_rate.is_some()) => s.push_str(&format!(
            "\n  no step met the SLO for {:.0} % of its requests",
            o.attainment * 100.0
        )),
        None => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RequestRecord;
    use crate::stats::StatsBuilder;
    use crate::stats::tests::rec;

    fn step(name: &str, f: f64) -> Phase {
        Phase {
            name: name.into(),
            duration: None,
            requests: Some(10),
            rate: Some(f * 10.0),
            concurrency: None,
            arrival: crate::plan::Arrival::Constant,
            seed: 0,
            warmup: false,
            ramp: Default::default(),
            sweep: Some(SweepStep::Fraction(f)),
            replay: None,
            cancel: None,
        }
    }

    /// A probe (phase 0, TTFT 600 ms) and two steps (TTFT 20 ms and `slow_ms`), 10 each.
    fn records(slow_ms: u64) -> Vec<RequestRecord> {
        let mut v = Vec::new();
        for (phase, ttft_ms) in [(0_usize, 600), (1, 20), (2, slow_ms)] {
            for i in 0..10 {
                let id = phase as u64 * 10 + i;
                let mut r = rec(id, phase, id * 100_000, ttft_ms * 1000, 1000, 4);
                r.phase = ["probe", "s1", "s2"][phase].into();
                r.probe = phase == 0;
                v.push(r);
            }
        }
        v
    }

    fn sweep_of(slow_ms: u64) -> (SweepOutcome, crate::stats::Summary) {
        let slo = Slo {
            ttft_ms: Some(100.0),
            ..Slo::default()
        };
        let mut b = StatsBuilder::new().with_slo(Some(slo));
        for r in &records(slow_ms) {
            b.add(r);
        }
        let summary = b.finish();
        let ran = [step("s1", 0.5), step("s2", 1.0)];
        let o = outcome(&ran, Some(10.0), &summary, Some(&slo), DEFAULT_ATTAINMENT).unwrap();
        (o, summary)
    }

    #[test]
    fn when_every_step_meets_the_slo_the_limit_is_at_or_above_the_top() {
        let (o, summary) = sweep_of(30);
        assert!(o.every_step_met);
        assert_eq!(o.best_rate_within_slo, Some(10.0));
        assert!(
            describe(&o).contains("at or above the top step"),
            "{}",
            describe(&o)
        );
        // The probe has its own row; `all` holds the steps only (its TTFT max is 30 ms, not 600).
        assert_eq!(summary.phases.len(), 3);
        assert_eq!(summary.all.requests, 20);
        let max = summary.all.metric(crate::stats::Metric::TtftMs).max;
        assert_eq!(max, Some(30.0));

        let (o, _) = sweep_of(300);
        assert!(!o.every_step_met);
        assert_eq!(o.best_rate_within_slo, Some(5.0));
    }
}
