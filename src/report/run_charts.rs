//! The charts of one run's HTML report, chosen and labelled here and drawn by `charts`:
//! TTFT and E2EL distributions (histogram and CDF), TTFT, throughput, in-flight requests and
//! errors over time with the phases marked, and per-phase comparisons.

use serde::Serialize;

use super::charts::{self, Band, Bar, BarGroup, Series};
use crate::stats::{Metric, PhaseStats, Summary};
use crate::timeline::Timeline;

/// One chart: an id (also the SVG element's id), a title and the SVG itself.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub id: String,
    pub title: String,
    pub svg: String,
}

/// A run report's charts by section. `telemetry` stays empty until telemetry samples exist;
/// templates render nothing for an empty section.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunCharts {
    pub distributions: Vec<Chart>,
    pub over_time: Vec<Chart>,
    pub phases: Vec<Chart>,
    pub telemetry: Vec<Chart>,
}

fn chart(id: &str, title: &str, svg: String) -> Chart {
    Chart {
        id: id.into(),
        title: title.into(),
        svg,
    }
}

impl RunCharts {
    pub fn new(summary: &Summary, timeline: &Timeline) -> Self {
        Self {
            distributions: distributions(summary),
            over_time: over_time(timeline),
            phases: phases(summary),
            telemetry: Vec::new(),
        }
    }
}

fn distributions(summary: &Summary) -> Vec<Chart> {
    let mut out = Vec::new();
    for (m, name) in [(Metric::TtftMs, "ttft"), (Metric::E2elMs, "e2el")] {
        let all = summary.all.metric(m);
        if all.count == 0 {
            continue;
        }
        let label = all.label;
        let bars: Vec<Bar> = all
            .shape
            .bins
            .iter()
            .map(|b| Bar {
                lo: b.lo,
                hi: b.hi,
                count: b.count,
            })
            .collect();
        let id = format!("{name}-hist");
        let title = format!("{label}: histogram to p99 (last bar adds the slowest 1 %)");
        out.push(chart(
            &id,
            &title,
            charts::histogram(&id, &title, label, &bars),
        ));
        let mut series: Vec<Series> = Vec::new();
        let rows: Vec<&PhaseStats> = if summary.phases.len() > 1 {
            summary.rows().collect()
        } else {
            vec![&summary.all]
        };
        for p in rows {
            let d = p.metric(m);
            if d.count > 0 {
                series.push(Series {
                    name: p.name.clone(),
                    points: d.shape.cdf.iter().map(|(v, q)| (*v, q * 100.0)).collect(),
                });
            }
        }
        let id = format!("{name}-cdf");
        let title = format!("{label}: cumulative distribution");
        out.push(chart(
            &id,
            &title,
            charts::line(
                &id,
                &title,
                label,
                "% of requests at or below",
                &series,
                &[],
            ),
        ));
    }
    out
}

fn over_time(t: &Timeline) -> Vec<Chart> {
    if t.seconds.is_empty() {
        return Vec::new();
    }
    let bands: Vec<Band> = t
        .phases
        .iter()
        .map(|p| Band {
            x0: p.start_s,
            x1: p.end_s,
            label: if p.warmup {
                format!("{} (warmup)", p.name)
            } else {
                p.name.clone()
            },
            strong: p.warmup,
        })
        .collect();
    let series = |name: &str, f: &dyn Fn(&crate::timeline::Second) -> Option<f64>| Series {
        name: name.into(),
        points: t
            .seconds
            .iter()
            .map(|s| (s.t as f64 + 0.5, f(s).unwrap_or(f64::NAN)))
            .collect(),
    };
    let x = "seconds since the run started";
    let mut out = Vec::new();
    let mut add = |id: &str, title: &str, y: &str, s: Vec<Series>| {
        out.push(chart(id, title, charts::line(id, title, x, y, &s, &bands)));
    };
    add(
        "ttft-time",
        "TTFT over time (by send second)",
        "ms",
        vec![
            series("mean", &|s| s.ttft_mean_ms),
            series("max", &|s| s.ttft_max_ms),
        ],
    );
    add(
        "throughput-time",
        "Output token throughput over time",
        "tokens/s",
        vec![series("output tok/s", &|s| Some(s.output_tok_per_s))],
    );
    add(
        "inflight-time",
        "Requests in flight over time (mean per second)",
        "requests",
        vec![series("in flight", &|s| Some(s.in_flight))],
    );
    add(
        "errors-time",
        "Completions and errors per second",
        "requests/s",
        vec![
            series("completed", &|s| Some(s.completed as f64)),
            series("errors", &|s| Some(s.errors as f64)),
        ],
    );
    out
}

fn phases(summary: &Summary) -> Vec<Chart> {
    if summary.phases.is_empty() {
        return Vec::new();
    }
    let groups = |f: &dyn Fn(&PhaseStats) -> Vec<Option<f64>>| -> Vec<BarGroup> {
        summary
            .rows()
            .map(|p| BarGroup {
                label: p.name.clone(),
                values: f(p),
            })
            .collect()
    };
    let pct = |m: Metric| {
        move |p: &PhaseStats| {
            let d = p.metric(m);
            vec![d.p50, d.p99]
        }
    };
    let mut out = Vec::new();
    for (id, title, unit, series, g) in [
        (
            "phase-ttft",
            "TTFT by phase",
            "ms",
            vec!["p50", "p99"],
            groups(&pct(Metric::TtftMs)),
        ),
        (
            "phase-e2el",
            "E2E latency by phase",
            "ms",
            vec!["p50", "p99"],
            groups(&pct(Metric::E2elMs)),
        ),
        (
            "phase-throughput",
            "Output token throughput by phase",
            "tokens/s",
            vec!["output tok/s"],
            groups(&|p| vec![Some(p.output_tok_per_s)]),
        ),
    ] {
        out.push(chart(id, title, charts::bars(id, title, unit, &series, &g)));
    }
    out
}
