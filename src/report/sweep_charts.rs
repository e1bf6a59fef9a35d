//! Load levels as curves: a capacity sweep's steps, or a ramp phase's windows (`stats::ramp`),
//! both as `LoadPoint`s: latency (TTFT, TPOT, E2EL at p50 and p99) against achieved
//! throughput and against measured concurrency, with the SLO limits and the knee marked;
//! offered against achieved rate and goodput. Owns the two definitions the report states: the
//! knee (`knee`) and the Pareto front of throughput against latency (`pareto`).

use serde::Serialize;

use super::Chart;
use super::charts::{Mark, Plot, Rule, Series};
use crate::outcome::sweep::SweepOutcome;
use crate::plan::Slo;
use crate::stats::ramp::{RampWindow, RampWindows};
use crate::stats::timeline::Timeline;
use crate::stats::{Metric, PhaseStats};

/// One load level as the report shows it: a sweep step or a ramp window.
#[derive(Debug, Clone, Serialize)]
pub struct LoadPoint {
    /// The step's phase, or `PHASE N/M` for window N of M of a ramp.
    pub name: String,
    /// Offered rate (req/s).
    pub offered: f64,
    /// Completed requests per second (a step: of its window; a ramp window: that ended in it).
    pub achieved: f64,
    /// Good requests per second (with an SLO).
    pub goodput: Option<f64>,
    /// Good requests as a percentage of the level's requests (with an SLO).
    pub good_rate: Option<f64>,
    /// Mean requests in flight over the level's span (from the timeline).
    pub concurrency: f64,
    pub ttft_p50: Option<f64>,
    pub ttft_p99: Option<f64>,
    pub tpot_p50: Option<f64>,
    pub tpot_p99: Option<f64>,
    pub e2el_p50: Option<f64>,
    pub e2el_p99: Option<f64>,
    /// No other level has at least its throughput and at most its E2EL p99 (one of them
    /// strictly).
    pub pareto: bool,
    pub knee: bool,
}

/// A sweep's or a ramp's curves and table.
#[derive(Debug, Clone, Serialize)]
pub struct SweepView {
    pub steps: Vec<LoadPoint>,
    pub charts: Vec<Chart>,
    /// How the knee was found: `slo` (the highest offered rate that met the SLO), `slo-all`
    /// (every level met it: the top one, the limit is at or above it), `growth` (latency
    /// started growing faster than throughput), or empty when there is none.
    pub knee_by: &'static str,
}

/// A ramp phase's curves, one point per window.
#[derive(Debug, Clone, Serialize)]
pub struct RampView {
    pub phase: String,
    /// Prefix of its charts' ids (`ramp-PHASE`).
    pub id: String,
    pub view: SweepView,
}

impl RampView {
    /// A ramp phase's windows, a window meeting the SLO when `attainment` (0..=1) of its
    /// requests were good; `None` when the ramp had too few requests for a curve.
    pub fn new(
        ramp: &RampWindows,
        slo: Option<&Slo>,
        attainment: f64,
        t: &Timeline,
    ) -> Option<Self> {
        if ramp.windows.is_empty() {
            return None;
        }
        let n = ramp.windows.len();
        let points = ramp
            .windows
            .iter()
            .map(|w| window_point(&ramp.phase, w, n, t))
            .collect();
        let id = format!(
            "ramp-{}",
            ramp.phase
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
        );
        let curves = Curves {
            id: id.clone(),
            level: "window",
            slo,
            attainment,
        };
        Some(Self {
            id,
            phase: ramp.phase.clone(),
            view: SweepView::of(points, &curves),
        })
    }
}

/// Mean requests in flight over `[start_s, end_s]`, from the timeline's per-second means.
fn mean_in_flight(t: &Timeline, start_s: f64, end_s: f64) -> f64 {
    let (mut busy, mut span) = (0.0, 0.0);
    for s in &t.seconds {
        let (a, z) = (s.t as f64, s.t as f64 + 1.0);
        let overlap = (z.min(end_s) - a.max(start_s)).max(0.0);
        busy += s.in_flight * overlap;
        span += overlap;
    }
    if span > 0.0 { busy / span } else { 0.0 }
}

fn step_point(p: &PhaseStats, offered: f64, t: &Timeline) -> LoadPoint {
    let m = |m: Metric| p.metric(m);
    let concurrency = t
        .phases
        .iter()
        .find(|s| s.name == p.name && !s.warmup)
        .map_or(0.0, |s| mean_in_flight(t, s.start_s, s.end_s));
    LoadPoint {
        name: p.name.clone(),
        offered,
        achieved: p.req_per_s,
        goodput: p.goodput_req_per_s,
        good_rate: p.good_rate,
        concurrency,
        ttft_p50: m(Metric::TtftMs).p50,
        ttft_p99: m(Metric::TtftMs).p99,
        tpot_p50: m(Metric::TpotMs).p50,
        tpot_p99: m(Metric::TpotMs).p99,
        e2el_p50: m(Metric::E2elMs).p50,
        e2el_p99: m(Metric::E2elMs).p99,
        pareto: false,
        knee: false,
    }
}

fn window_point(phase: &str, w: &RampWindow, of: usize, t: &Timeline) -> LoadPoint {
    LoadPoint {
        name: format!("{phase} {}/{of}", w.index),
        offered: w.offered,
        achieved: w.achieved,
        goodput: w.goodput,
        good_rate: w.good_rate,
        concurrency: mean_in_flight(t, w.start_s, w.end_s),
        ttft_p50: w.ttft_ms.0,
        ttft_p99: w.ttft_ms.1,
        tpot_p50: w.tpot_ms.0,
        tpot_p99: w.tpot_ms.1,
        e2el_p50: w.e2el_ms.0,
        e2el_p99: w.e2el_ms.1,
        pareto: false,
        knee: false,
    }
}

/// Which of `(throughput, latency)` points are Pareto-optimal: no other point has at least
/// the throughput and at most the latency, one of them strictly. A point without a latency
/// is not.
pub fn pareto(points: &[(f64, Option<f64>)]) -> Vec<bool> {
    points
        .iter()
        .map(|&(thr, lat)| {
            let Some(lat) = lat else { return false };
            !points
                .iter()
                .any(|&(t, l)| l.is_some_and(|l| t >= thr && l <= lat && (t > thr || l < lat)))
        })
        .collect()
}

/// Latency must grow by more than this share between two steps to make a knee (noise guard).
const KNEE_MIN_GROWTH: f64 = 0.10;

/// The knee of a sweep, steps in offered-rate order. With an SLO (`met`: whether each step
/// met it), the highest step that met it; otherwise, or when none did, the last step before
/// latency (E2EL p99) starts growing faster than throughput in relative terms: the first step
/// `k` where latency grows by more than 10 % to step `k + 1` and by a larger share than
/// throughput does (or throughput does not grow at all). `None`: no knee in the range swept.
pub fn knee(points: &[(f64, Option<f64>)], met: Option<&[bool]>) -> (Option<usize>, &'static str) {
    if let Some(k) = met.and_then(|m| m.iter().rposition(|&ok| ok)) {
        return (Some(k), "slo");
    }
    for (k, w) in points.windows(2).enumerate() {
        let ((t0, Some(l0)), (t1, Some(l1))) = (w[0], w[1]) else {
            continue;
        };
        if l0 <= 0.0 || t0 <= 0.0 {
            continue;
        }
        let lat_growth = (l1 - l0) / l0;
        let thr_growth = (t1 - t0) / t0;
        if lat_growth > KNEE_MIN_GROWTH && lat_growth > thr_growth.max(0.0) {
            return (Some(k), "growth");
        }
    }
    (None, "")
}

impl SweepView {
    /// A capacity sweep's steps.
    pub fn new(
        sweep: &SweepOutcome,
        phases: &[&PhaseStats],
        slo: Option<&Slo>,
        t: &Timeline,
    ) -> Self {
        let steps: Vec<LoadPoint> = sweep
            .steps
            .iter()
            .filter_map(|s| {
                let p = phases.iter().find(|p| p.name == s.phase)?;
                Some(step_point(p, s.rate, t))
            })
            .collect();
        let curves = Curves {
            id: "sweep".into(),
            level: "step",
            slo,
            attainment: sweep.attainment,
        };
        Self::of(steps, &curves)
    }

    /// Marks the Pareto front and the knee of `steps` (in offered-rate order), and draws them.
    fn of(mut steps: Vec<LoadPoint>, c: &Curves<'_>) -> Self {
        let front: Vec<(f64, Option<f64>)> =
            steps.iter().map(|s| (s.achieved, s.e2el_p99)).collect();
        for (s, optimal) in steps.iter_mut().zip(pareto(&front)) {
            s.pareto = optimal;
        }
        let met: Option<Vec<bool>> = c.slo.map(|_| {
            steps
                .iter()
                .map(|s| s.good_rate.is_some_and(|g| g >= c.attainment * 100.0))
                .collect()
        });
        let (k, mut knee_by) = knee(&front, met.as_deref());
        if knee_by == "slo" && met.as_ref().is_some_and(|m| m.iter().all(|&ok| ok)) {
            knee_by = "slo-all";
        }
        if let Some(k) = k {
            steps[k].knee = true;
        }
        let charts = charts(&steps, c, k.map(|k| (k, knee_by)));
        Self {
            steps,
            charts,
            knee_by,
        }
    }
}

/// What the charts of a set of load levels are: their ids' prefix, what one level is
/// (`step`, `window`), the SLO and the good share that meets it.
struct Curves<'a> {
    id: String,
    level: &'static str,
    slo: Option<&'a Slo>,
    attainment: f64,
}

/// An x axis of the step charts: its id part, label and value.
type AxisOf = (&'static str, &'static str, fn(&LoadPoint) -> f64);
/// One of a metric's (p50, p99).
type Pick = fn((Option<f64>, Option<f64>)) -> Option<f64>;

/// A latency metric of the step charts: key, label, its p50 and p99, its SLO limit.
type LatencyOf = (
    &'static str,
    &'static str,
    fn(&LoadPoint) -> (Option<f64>, Option<f64>),
    Option<f64>,
);

fn charts(steps: &[LoadPoint], c: &Curves<'_>, knee: Option<(usize, &str)>) -> Vec<Chart> {
    if steps.is_empty() {
        return Vec::new();
    }
    let limit = |f: fn(&Slo) -> Option<f64>| c.slo.and_then(f);
    let metrics: [LatencyOf; 3] = [
        (
            "ttft",
            "TTFT",
            |s| (s.ttft_p50, s.ttft_p99),
            limit(|s| s.ttft_ms),
        ),
        (
            "tpot",
            "TPOT",
            |s| (s.tpot_p50, s.tpot_p99),
            limit(|s| s.tpot_ms),
        ),
        (
            "e2el",
            "E2EL",
            |s| (s.e2el_p50, s.e2el_p99),
            limit(|s| s.e2el_ms),
        ),
    ];
    let axes: [AxisOf; 2] = [
        ("throughput", "achieved req/s", |s| s.achieved),
        ("concurrency", "mean requests in flight", |s| s.concurrency),
    ];
    let mut out = Vec::new();
    for (axis, x_label, x) in axes {
        for (key, label, of, limit) in metrics {
            let at = |q: Pick| -> Vec<(f64, f64)> {
                steps
                    .iter()
                    .map(|s| (x(s), q(of(s)).unwrap_or(f64::NAN)))
                    .collect()
            };
            let series = [
                Series {
                    name: format!("{label} p50"),
                    points: at(|v| v.0),
                },
                Series {
                    name: format!("{label} p99"),
                    points: at(|v| v.1),
                },
            ];
            if series.iter().all(|s| s.points.iter().all(|p| p.1.is_nan())) {
                continue;
            }
            let rules: Vec<Rule> = limit
                .map(|y| Rule {
                    y,
                    label: format!("SLO {label} ≤ {y} ms"),
                })
                .into_iter()
                .collect();
            let marks: Vec<Mark> = knee
                .and_then(|(k, by)| Some((k, by, of(&steps[k]).1?)))
                .map(|(k, by, y)| Mark {
                    x: x(&steps[k]),
                    y,
                    label: if by == "slo-all" {
                        format!("{}: every {} met the SLO", steps[k].name, c.level)
                    } else {
                        format!("knee: {}", steps[k].name)
                    },
                })
                .into_iter()
                .collect();
            let id = format!("{}-{key}-{axis}", c.id);
            let title = format!("{label} against {x_label} (one point per {})", c.level);
            let svg = Plot::new(&id, &title, x_label, "ms", &series)
                .with_dots()
                .with_rules(&rules)
                .with_marks(&marks)
                .svg();
            out.push(Chart { id, title, svg });
        }
    }
    out.push(rates_chart(steps, &c.id));
    out
}

/// Achieved rate and goodput against the offered rate, with the offered rate itself as the
/// diagonal a server that keeps up follows.
fn rates_chart(steps: &[LoadPoint], id: &str) -> Chart {
    let mut series = vec![
        Series {
            name: "offered (keeping up)".into(),
            points: steps.iter().map(|s| (s.offered, s.offered)).collect(),
        },
        Series {
            name: "achieved".into(),
            points: steps.iter().map(|s| (s.offered, s.achieved)).collect(),
        },
    ];
    if steps.iter().any(|s| s.goodput.is_some()) {
        series.push(Series {
            name: "goodput (requests within the SLO)".into(),
            points: steps
                .iter()
                .map(|s| (s.offered, s.goodput.unwrap_or(f64::NAN)))
                .collect(),
        });
    }
    let id = format!("{id}-rates");
    let title = "Achieved rate and goodput against offered rate".to_owned();
    let svg = Plot::new(&id, &title, "offered req/s", "req/s", &series)
        .with_dots()
        .svg();
    Chart { id, title, svg }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pareto_front_keeps_the_steps_nothing_beats() {
        // (throughput, p99): the third is beaten by the fourth (more throughput, less latency).
        let pts = [
            (10.0, Some(50.0)),
            (20.0, Some(60.0)),
            (30.0, Some(90.0)),
            (35.0, Some(80.0)),
            (34.0, Some(400.0)),
            (36.0, None),
        ];
        assert_eq!(pareto(&pts), vec![true, true, false, true, false, false]);
        // Two equal points are both optimal (neither is strictly better).
        assert_eq!(
            pareto(&[(1.0, Some(1.0)), (1.0, Some(1.0))]),
            vec![true, true]
        );
    }

    #[test]
    fn the_knee_is_where_latency_outgrows_throughput() {
        // Throughput doubles while latency barely moves, then latency triples for 10 % more.
        let pts = [
            (20.0, Some(84.0)),
            (40.0, Some(86.0)),
            (60.0, Some(90.0)),
            (66.0, Some(270.0)),
            (67.0, Some(900.0)),
        ];
        assert_eq!(knee(&pts, None), (Some(2), "growth"));
        // Noise: 2 % more latency for 0.5 % more throughput is no knee.
        assert_eq!(
            knee(&[(95.0, Some(84.0)), (95.5, Some(86.0))], None),
            (None, "")
        );
        // Saturated: throughput falls while latency grows.
        assert_eq!(
            knee(&[(90.0, Some(100.0)), (88.0, Some(150.0))], None),
            (Some(0), "growth")
        );
    }

    #[test]
    fn with_an_slo_the_knee_is_the_highest_step_that_met_it() {
        let pts = [(1.0, Some(1.0)); 4];
        assert_eq!(
            knee(&pts, Some(&[true, true, false, false])),
            (Some(1), "slo")
        );
        assert_eq!(
            knee(&pts, Some(&[true, true, true, true])),
            (Some(3), "slo")
        );
        // No step met it: the growth rule (none here).
        assert_eq!(knee(&pts, Some(&[false; 4])), (None, ""));
    }

    #[test]
    fn mean_in_flight_weights_each_second_by_its_overlap() {
        use crate::stats::timeline::Second;
        let sec = |t: u64, in_flight: f64| Second {
            t,
            sent: 0,
            completed: 0,
            errors: 0,
            ttft_mean_ms: None,
            ttft_max_ms: None,
            output_tok_per_s: 0.0,
            in_flight,
            ..Second::default()
        };
        let t = Timeline {
            seconds: vec![sec(0, 2.0), sec(1, 4.0), sec(2, 8.0)],
            ..Timeline::default()
        };
        // Half of second 0 (2), all of second 1 (4): (1 + 4) / 1.5.
        assert!((mean_in_flight(&t, 0.5, 2.0) - 5.0 / 1.5).abs() < 1e-9);
    }
}
