//! The charts of one run's HTML report, chosen and labelled here and drawn by `charts`:
//! TTFT and E2EL distributions (histogram and CDF), input and output lengths (histograms), TTFT
//! percentiles, throughput, in-flight and queued requests, offered, completed and failed
//! requests over time with the phases marked, telemetry series on the same time axis (every
//! time axis ends at the run's end), the per-request swim lanes of a small run, and per-phase
//! comparisons.

use serde::Serialize;

use super::charts::{self, Band, Bar, BarGroup, Lane, Plot, Series};
use std::collections::BTreeMap;

use crate::stats::timeline::{MAX_SPANS, RequestSpan, Timeline};
use crate::stats::{Metric, PhaseStats, Summary};
use crate::telemetry::{Kind, Reading};

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
    /// Input and output tokens per request.
    pub lengths: Vec<Chart>,
    pub over_time: Vec<Chart>,
    /// The per-request swim lanes (empty for a run of more than `MAX_SPANS` requests).
    pub requests: Vec<Chart>,
    /// Requests in the run, and the most the per-request view draws.
    pub request_count: u64,
    pub max_lanes: usize,
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
            lengths: [
                (Metric::InputTokens, "input-tokens"),
                (Metric::OutputTokens, "output-tokens"),
            ]
            .into_iter()
            .filter_map(|(m, name)| histogram(summary, m, name, "longest"))
            .collect(),
            over_time: over_time(timeline),
            requests: requests(timeline),
            request_count: timeline.requests,
            max_lanes: MAX_SPANS,
            phases: phases(summary),
            telemetry: Vec::new(),
        }
    }

    /// Adds a chart per telemetry series name (gauges as levels, counters as rates per second),
    /// the best-known ones first, on the same time axis as the request charts.
    pub fn add_telemetry(&mut self, readings: &[Reading], timeline: &Timeline) {
        self.telemetry = telemetry(readings, timeline);
    }
}

/// Series charted first, in this order, when present; the rest follow by name.
const TELEMETRY_ORDER: [&str; 16] = [
    "gpu_power_w",
    "DCGM_FI_DEV_POWER_USAGE",
    "gpu_utilization_pct",
    "DCGM_FI_DEV_GPU_UTIL",
    "gpu_memory_used_bytes",
    "DCGM_FI_DEV_FB_USED",
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "sglang:num_running_reqs",
    "sglang:num_queue_reqs",
    "llamacpp:requests_processing",
    "llamacpp:requests_deferred",
    "vllm:generation_tokens_total",
    "llamacpp:tokens_predicted_total",
];

/// At most this many telemetry charts (a scrape can expose hundreds of series).
const MAX_TELEMETRY_CHARTS: usize = 16;

/// Labels left out of series names: long identifiers that say nothing on a chart.
const QUIET_LABELS: [&str; 5] = [
    "UUID",
    "Hostname",
    "pci_bus_id",
    "DCGM_FI_DRIVER_VERSION",
    "name",
];

/// One label set of a series: its kind and (seconds, value) points.
type LabelledSeries = (Kind, Vec<(f64, f64)>);

fn telemetry(readings: &[Reading], t: &Timeline) -> Vec<Chart> {
    let mut by_name: BTreeMap<&str, BTreeMap<String, LabelledSeries>> = BTreeMap::new();
    for r in readings.iter().filter(|r| r.value.is_finite()) {
        let labels: Vec<String> = r
            .labels
            .iter()
            .filter(|(k, _)| !QUIET_LABELS.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let key = if labels.is_empty() {
            r.source.clone()
        } else {
            labels.join(", ")
        };
        by_name
            .entry(&r.name)
            .or_default()
            .entry(key)
            .or_insert((r.kind, Vec::new()))
            .1
            .push((crate::units::us_to_s(r.t_us), r.value));
    }
    let mut names: Vec<&str> = by_name.keys().copied().collect();
    let rank = |n: &str| {
        TELEMETRY_ORDER
            .iter()
            .position(|o| *o == n)
            .unwrap_or(usize::MAX)
    };
    names.sort_by_key(|n| (rank(n), n.to_string()));
    let bands = bands(t);
    names
        .into_iter()
        .take(MAX_TELEMETRY_CHARTS)
        .map(|name| {
            let mut counter = false;
            let series: Vec<Series> = by_name[name]
                .iter()
                .map(|(label, (kind, pts))| {
                    counter = *kind == Kind::Counter;
                    let mut pts = pts.clone();
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let points = if counter {
                        // A counter as its rate between samples; a reset leaves a gap.
                        pts.windows(2)
                            .map(|w| {
                                let (dt, dv) = (w[1].0 - w[0].0, w[1].1 - w[0].1);
                                let rate = if dt > 0.0 && dv >= 0.0 {
                                    dv / dt
                                } else {
                                    f64::NAN
                                };
                                (w[1].0, rate)
                            })
                            .collect()
                    } else {
                        pts
                    };
                    Series {
                        name: label.clone(),
                        points,
                    }
                })
                .collect();
            let id = format!(
                "telemetry-{}",
                name.chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect::<String>()
            );
            let (title, unit) = if counter {
                (format!("{name} (rate)"), "per second")
            } else {
                (name.to_owned(), "value")
            };
            let svg = Plot::new(&id, &title, "seconds since the run started", unit, &series)
                .with_bands(&bands)
                .with_x_range((0.0, t.end_s()))
                .svg();
            chart(&id, &title, svg)
        })
        .collect()
}

/// A histogram of `m` over every measured request (`None`: no value), id `<name>-hist`; its
/// last bar adds the `top` 1 % (slowest, longest).
fn histogram(summary: &Summary, m: Metric, name: &str, top: &str) -> Option<Chart> {
    let all = summary.all.metric(m);
    if all.count == 0 {
        return None;
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
    let title = format!("{label}: histogram to p99 (last bar adds the {top} 1 %)");
    Some(chart(
        &id,
        &title,
        charts::histogram(&id, &title, label, &bars),
    ))
}

fn distributions(summary: &Summary) -> Vec<Chart> {
    let mut out = Vec::new();
    for (m, name) in [(Metric::TtftMs, "ttft"), (Metric::E2elMs, "e2el")] {
        let Some(hist) = histogram(summary, m, name, "slowest") else {
            continue;
        };
        out.push(hist);
        let label = summary.all.metric(m).label;
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

/// The phases as shaded bands of a time axis.
fn bands(t: &Timeline) -> Vec<Band> {
    t.phases
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
        .collect()
}

fn over_time(t: &Timeline) -> Vec<Chart> {
    if t.seconds.is_empty() {
        return Vec::new();
    }
    let bands = bands(t);
    let series = |name: &str, f: &dyn Fn(&crate::stats::timeline::Second) -> Option<f64>| Series {
        name: name.into(),
        points: t
            .seconds
            .iter()
            .map(|s| (s.t as f64 + 0.5, f(s).unwrap_or(f64::NAN)))
            .collect(),
    };
    let x = "seconds since the run started";
    let end = (0.0, t.end_s());
    let mut out = Vec::new();
    let mut add = |id: &str, title: &str, y: &str, s: Vec<Series>| {
        let svg = Plot::new(id, title, x, y, &s)
            .with_bands(&bands)
            .with_x_range(end)
            .svg();
        out.push(chart(id, title, svg));
    };
    add(
        "ttft-time",
        "TTFT over time (by send second)",
        "ms",
        vec![
            series("p50", &|s| s.ttft_p50_ms),
            series("p99", &|s| s.ttft_p99_ms),
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
        "Requests in flight and waiting for a slot (mean per second)",
        "requests",
        vec![
            series("in flight", &|s| Some(s.in_flight)),
            series("waiting for a slot", &|s| Some(s.queued)),
        ],
    );
    add(
        "errors-time",
        "Offered, completed and failed requests per second",
        "requests/s",
        vec![
            series("offered (intended starts)", &|s| Some(s.offered as f64)),
            series("completed", &|s| Some(s.completed as f64)),
            series("errors", &|s| Some(s.errors as f64)),
        ],
    );
    out
}

/// The per-request view: one swim lane per request of a run of at most `MAX_SPANS` requests
/// (none for a bigger run: the template says so).
fn requests(t: &Timeline) -> Vec<Chart> {
    if t.requests == 0 || t.requests > MAX_SPANS as u64 {
        return Vec::new();
    }
    let mut spans = t.spans.clone();
    spans.sort_by(|a, b| {
        let sent = |s: &RequestSpan| s.sent_s.unwrap_or(s.end_s);
        sent(a).total_cmp(&sent(b))
    });
    let lanes: Vec<Lane> = spans
        .iter()
        .map(|s| Lane {
            intended_s: s.intended_s,
            sent_s: s.sent_s,
            first_token_s: s.first_token_s,
            end_s: s.end_s,
            ok: s.ok,
        })
        .collect();
    let (id, title) = (
        "requests-lanes",
        "Every request over time (warmup included)",
    );
    vec![chart(
        id,
        title,
        charts::lanes(id, title, &lanes, (0.0, t.end_s())),
    )]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::tests::rec;

    /// The `<rect class="phase"` elements of an SVG: where its time axis puts each phase.
    fn phase_bands(svg: &str) -> Vec<&str> {
        svg.split("<rect class=\"phase\"")
            .skip(1)
            .map(|r| &r[..r.find("<title>").unwrap()])
            .collect()
    }

    #[test]
    fn telemetry_charts_share_the_request_charts_time_axis() {
        // Requests from 0 to about 6.3 s; readings stop at 5.5 s, well inside the run.
        let records: Vec<_> = (0..60)
            .map(|i| rec(i, 0, i * 100_000, 20_000, 10_000, 5))
            .collect();
        let a = crate::stats::analysis::analyze(&records);
        let readings: Vec<Reading> = (0..6)
            .map(|s| Reading {
                t_us: 500_000 + s * 1_000_000,
                source: "nvml".into(),
                name: "gpu_power_w".into(),
                labels: Default::default(),
                kind: Kind::Gauge,
                value: 100.0 + s as f64,
            })
            .collect();
        let mut charts = RunCharts::new(&a.summary, &a.timeline);
        charts.add_telemetry(&readings, &a.timeline);
        let power = &charts.telemetry[0];
        assert_eq!(power.id, "telemetry-gpu-power-w");
        let ttft = charts
            .over_time
            .iter()
            .find(|c| c.id == "ttft-time")
            .unwrap();
        let bands = phase_bands(&power.svg);
        assert_eq!(bands.len(), 1);
        assert_eq!(bands, phase_bands(&ttft.svg), "the same x axis");
    }
}
