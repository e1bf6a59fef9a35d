//! The comparison report's context: one row per run (target, model, workload, labels, time) with
//! its key metrics over all measured phases, deltas against a baseline run, the runs grouped by
//! model, by workload and by label, each `--repeat` trial set's across-trial means with their
//! t intervals, bar charts of each key metric across runs, and the runs' load curves (a
//! sweep's steps or a ramp's windows) overlaid.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Chart;
use super::charts::{self, BarGroup};
use super::sweep_charts::LoadPoint;
use crate::record::{RunInfo, labels_line};
use crate::stats::Warning;
use crate::stats::errors::ErrorCount;
use crate::stats::trials::{self, AcrossTrials};
use crate::stats::{Metric, PhaseStats};

/// A metric the comparison shows, and which direction is better.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub lower_is_better: bool,
    /// Drawn as a chart across runs.
    #[serde(skip)]
    chart: bool,
}

/// The key metrics, in table order. Each is a value of the `all` row of the run's summary CSV.
pub const COLUMNS: [Column; 9] = [
    col("success_rate", "Success %", "%", false, false),
    col("req_per_s", "Req/s", "requests/s", false, true),
    col("output_tok_per_s", "Output tok/s", "tokens/s", false, true),
    col("ttft_ms_p50", "TTFT p50", "ms", true, true),
    col("ttft_ms_p99", "TTFT p99", "ms", true, true),
    col("tpot_ms_p50", "TPOT p50", "ms", true, false),
    col("itl_ms_p50", "ITL p50", "ms", true, false),
    col("e2el_ms_p50", "E2EL p50", "ms", true, true),
    col("e2el_ms_p99", "E2EL p99", "ms", true, false),
];

const fn col(
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    lower_is_better: bool,
    chart: bool,
) -> Column {
    Column {
        key,
        label,
        unit,
        lower_is_better,
        chart,
    }
}

fn value(p: &PhaseStats, key: &str) -> Option<f64> {
    let m = |m: Metric| p.metric(m);
    match key {
        "success_rate" => (p.requests > 0).then_some(p.success_rate),
        "req_per_s" => Some(p.req_per_s),
        "output_tok_per_s" => Some(p.output_tok_per_s),
        "ttft_ms_p50" => m(Metric::TtftMs).p50,
        "ttft_ms_p99" => m(Metric::TtftMs).p99,
        "tpot_ms_p50" => m(Metric::TpotMs).p50,
        "itl_ms_p50" => m(Metric::ItlMs).p50,
        "e2el_ms_p50" => m(Metric::E2elMs).p50,
        "e2el_ms_p99" => m(Metric::E2elMs).p99,
        _ => None,
    }
}

/// A run to compare: its description, the statistics of all its measured phases, its warnings.
pub struct ComparedRun<'a> {
    pub info: &'a RunInfo,
    pub all: &'a PhaseStats,
    pub warnings: &'a [Warning],
    /// Its most frequent kinds of failure (`Summary::errors`).
    pub errors: &'a [ErrorCount],
    /// The run's own HTML report, relative to the comparison report.
    pub report_link: String,
    /// Its load levels: a capacity sweep's steps, else its first ramp's windows (empty
    /// without either), for the curves across runs.
    pub levels: Vec<LoadPoint>,
}

/// One value and its change against the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub value: Option<f64>,
    /// Percent change against the baseline's value (none for the baseline itself).
    pub delta_pct: Option<f64>,
    /// `better`, `worse` or `same` (within 0.5 %); empty without a delta.
    pub verdict: &'static str,
}

/// One run's row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: String,
    /// Short label for charts: workload · model @ target · labels · start time.
    pub label: String,
    pub target: String,
    /// The run's labels as `k=v k2=v2` (empty without).
    pub labels: String,
    /// The `--repeat` set the run is a trial of.
    pub trial_set: Option<String>,
    pub model: String,
    pub workload: String,
    pub started_at: String,
    /// `started_at` to the second, for tables: `2026-01-01 00:00:00`.
    pub time: String,
    pub requests: u64,
    pub is_baseline: bool,
    /// The run its deltas are against: the baseline when it ran the same workload, else the
    /// earliest run of its own workload (runs of different workloads are never compared).
    pub reference: String,
    /// The run is the reference of its workload (no deltas of its own).
    pub is_reference: bool,
    pub interrupted: bool,
    pub cells: Vec<Cell>,
    pub warnings: Vec<Warning>,
    pub errors: Vec<ErrorCount>,
    pub report_link: String,
}

/// Runs sharing a model (or a workload), as indices into `rows`.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    pub rows: Vec<usize>,
}

/// Everything the comparison templates see.
#[derive(Debug, Serialize)]
pub struct ComparisonContext {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub baseline: String,
    pub by_model: Vec<Group>,
    pub by_workload: Vec<Group>,
    /// Runs sharing a label (`key=value`), one group per label.
    pub by_label: Vec<Group>,
    /// The `--repeat` trial sets among the runs.
    pub trial_sets: Vec<TrialSet>,
    /// Each charted metric across every run.
    pub charts: Vec<Chart>,
    /// Each charted metric by workload (bars per model and target, the latest run of each).
    pub workload_charts: Vec<Chart>,
    /// TTFT, TPOT and E2EL distributions of every run overlaid, one chart per metric.
    pub cdf_charts: Vec<Chart>,
    /// TTFT and E2EL p99 against achieved req/s, one line per run with load levels (sweeps
    /// and ramps).
    pub curve_charts: Vec<Chart>,
}

impl ComparisonContext {
    /// `runs` in report order; `baseline` indexes into it.
    pub fn new(runs: &[ComparedRun<'_>], baseline: usize) -> Self {
        let base = &runs[baseline];
        let labels = distinct_labels(runs);
        let references = references(runs, baseline);
        let rows: Vec<Row> = runs
            .iter()
            .zip(labels)
            .enumerate()
            .map(|(i, (r, label))| {
                let reference = &runs[references[i]];
                let is_reference = references[i] == i;
                Row {
                    id: r.info.id.clone(),
                    label,
                    target: r.info.target.clone(),
                    labels: labels_line(&r.info.labels),
                    trial_set: r.info.trial.as_ref().map(|t| t.set.clone()),
                    model: r.info.model.clone(),
                    workload: r.info.workload.clone(),
                    started_at: r.info.started_at.clone(),
                    time: r
                        .info
                        .started_at
                        .get(..19)
                        .unwrap_or(&r.info.started_at)
                        .replace('T', " "),
                    requests: r.all.requests,
                    is_baseline: i == baseline,
                    reference: reference.info.id.clone(),
                    is_reference: is_reference && i != baseline,
                    interrupted: r.info.interrupted,
                    cells: COLUMNS
                        .iter()
                        .map(|c| {
                            cell(
                                c,
                                value(r.all, c.key),
                                value(reference.all, c.key),
                                is_reference,
                            )
                        })
                        .collect(),
                    warnings: r.warnings.to_vec(),
                    errors: r.errors.to_vec(),
                    report_link: r.report_link.clone(),
                }
            })
            .collect();
        let group = |key: &dyn Fn(&Row) -> &str| -> Vec<Group> {
            let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (i, r) in rows.iter().enumerate() {
                m.entry(key(r).to_owned()).or_default().push(i);
            }
            m.into_iter()
                .map(|(name, rows)| Group { name, rows })
                .collect()
        };
        let by_model = group(&|r| &r.model);
        let by_workload = group(&|r| &r.workload);
        let by_label = label_groups(runs);
        let trial_sets = trial_sets(runs, &rows);
        let charts = overview_charts(&rows);
        let workload_charts = matrix_charts(&rows, &by_workload);
        let cdf_charts = cdf_charts(runs, &rows);
        let curve_charts = curve_charts(runs, &rows);
        Self {
            columns: COLUMNS.to_vec(),
            rows,
            baseline: base.info.id.clone(),
            by_model,
            by_workload,
            by_label,
            trial_sets,
            charts,
            workload_charts,
            cdf_charts,
            curve_charts,
        }
    }
}

/// Each run's reference: the baseline for runs of its workload, else the earliest run of the
/// run's own workload.
fn references(runs: &[ComparedRun<'_>], baseline: usize) -> Vec<usize> {
    let workload = |i: usize| runs[i].info.workload.as_str();
    (0..runs.len())
        .map(|i| {
            if workload(i) == workload(baseline) {
                baseline
            } else {
                (0..runs.len())
                    .find(|&j| workload(j) == workload(i))
                    .unwrap_or(i)
            }
        })
        .collect()
}

/// Each run's chart label, made distinct: runs that would read alike get their start time to
/// the second, then their position (`#2`).
fn distinct_labels(runs: &[ComparedRun<'_>]) -> Vec<String> {
    let first: Vec<String> = runs.iter().map(|r| chart_label(r.info, false)).collect();
    let mut out: Vec<String> = runs
        .iter()
        .zip(&first)
        .map(|(r, l)| {
            if first.iter().filter(|o| *o == l).count() > 1 {
                chart_label(r.info, true)
            } else {
                l.clone()
            }
        })
        .collect();
    for i in 0..out.len() {
        if out[..i].contains(&out[i]) {
            out[i] = format!("{} #{}", out[i], i + 1);
        }
    }
    out
}

/// The metrics overlaid as distributions, with their chart ids.
const CDF_METRICS: [(Metric, &str); 3] = [
    (Metric::TtftMs, "cdf-ttft"),
    (Metric::TpotMs, "cdf-tpot"),
    (Metric::E2elMs, "cdf-e2el"),
];

/// One chart per metric with every run's cumulative distribution (over all its measured
/// phases, from its HDR histogram), one series per run, named by its label.
fn cdf_charts(runs: &[ComparedRun<'_>], rows: &[Row]) -> Vec<Chart> {
    CDF_METRICS
        .iter()
        .filter_map(|&(m, id)| {
            let series: Vec<charts::Series> = runs
                .iter()
                .zip(rows)
                .map(|(r, row)| charts::Series {
                    name: row.label.clone(),
                    points: r
                        .all
                        .metric(m)
                        .shape
                        .cdf
                        .iter()
                        .map(|(v, q)| (*v, q * 100.0))
                        .collect(),
                })
                .collect();
            if series.iter().all(|s| s.points.is_empty()) {
                return None;
            }
            let label = runs[0].all.metric(m).label;
            let title = format!("{label}: cumulative distribution, every run");
            let svg = charts::line(id, &title, label, "% of requests at or below", &series, &[]);
            Some(Chart {
                id: id.to_owned(),
                title,
                svg,
            })
        })
        .collect()
}

/// Latency p99 against achieved throughput, one line per run that has load levels (a sweep's
/// steps or a ramp's windows, as its own report draws them); none when no run has them.
fn curve_charts(runs: &[ComparedRun<'_>], rows: &[Row]) -> Vec<Chart> {
    type P99 = fn(&LoadPoint) -> Option<f64>;
    let metrics: [(&str, &str, P99); 2] = [
        ("curves-ttft-throughput", "TTFT p99", |p| p.ttft_p99),
        ("curves-e2el-throughput", "E2EL p99", |p| p.e2el_p99),
    ];
    if runs.iter().all(|r| r.levels.is_empty()) {
        return Vec::new();
    }
    metrics
        .iter()
        .map(|&(id, label, of)| {
            let series: Vec<charts::Series> = runs
                .iter()
                .zip(rows)
                .filter(|(r, _)| !r.levels.is_empty())
                .map(|(r, row)| charts::Series {
                    name: row.label.clone(),
                    points: r
                        .levels
                        .iter()
                        .map(|p| (p.achieved, of(p).unwrap_or(f64::NAN)))
                        .collect(),
                })
                .collect();
            let title = format!("{label} against achieved req/s, every run's steps or windows");
            let svg = charts::Plot::new(id, &title, "achieved req/s", "ms", &series)
                .with_dots()
                .svg();
            Chart {
                id: id.to_owned(),
                title,
                svg,
            }
        })
        .collect()
}

/// What tells a run apart in a chart: `workload · model @ target · labels · start time` (to
/// the minute, or the second with `seconds`).
fn chart_label(info: &RunInfo, seconds: bool) -> String {
    let mut label = format!("{} · {}", info.workload, server(info));
    label.push_str(" · ");
    label.push_str(&short_time(&info.started_at, seconds));
    label
}

/// The model and server a run measured: `model @ target · labels`.
fn server(info: &RunInfo) -> String {
    let mut s = format!("{} @ {}", info.model, info.target);
    if !info.labels.is_empty() {
        s.push_str(" · ");
        s.push_str(&labels_line(&info.labels));
    }
    s
}

/// One group per distinct `key=value` label, in key then value order.
fn label_groups(runs: &[ComparedRun<'_>]) -> Vec<Group> {
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        for (k, v) in &r.info.labels {
            m.entry(format!("{k}={v}")).or_default().push(i);
        }
    }
    m.into_iter()
        .map(|(name, rows)| Group { name, rows })
        .collect()
}

/// A `--repeat` trial set: its runs and each key metric across them.
#[derive(Debug, Clone, Serialize)]
pub struct TrialSet {
    pub id: String,
    /// Indices into `rows`.
    pub rows: Vec<usize>,
    /// Confidence level of the intervals (0–1).
    pub level: f64,
    pub metrics: Vec<AcrossRow>,
}

/// One metric across a set's trials: the mean of the trials' values, its t interval, and the
/// coefficient of variation (flagged unstable over `trials::UNSTABLE_CV`).
#[derive(Debug, Clone, Serialize)]
pub struct AcrossRow {
    pub key: String,
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    /// `None` with one trial.
    pub cv_pct: Option<f64>,
    pub unstable: bool,
}

/// Level of the trial sets' intervals in reports (a run does not record the `--level` it was
/// summarised at; the trials CSV has that one).
const TRIAL_LEVEL: f64 = 0.95;

/// The trial sets among `runs`, in order of their first trial.
fn trial_sets(runs: &[ComparedRun<'_>], rows: &[Row]) -> Vec<TrialSet> {
    let mut sets: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let Some(set) = &r.trial_set else { continue };
        match sets.iter_mut().find(|(s, _)| s == set) {
            Some((_, members)) => members.push(i),
            None => sets.push((set.clone(), vec![i])),
        }
    }
    sets.into_iter()
        .map(|(id, members)| {
            let stats: Vec<&PhaseStats> = members.iter().map(|&i| runs[i].all).collect();
            let metrics = trials::across(&stats, TRIAL_LEVEL)
                .into_iter()
                .map(|a: AcrossTrials| AcrossRow {
                    cv_pct: a.cv.is_finite().then_some(a.cv * 100.0),
                    key: a.key,
                    mean: a.mean,
                    lo: a.lo,
                    hi: a.hi,
                    unstable: a.unstable,
                })
                .collect();
            TrialSet {
                id,
                rows: members,
                level: TRIAL_LEVEL,
                metrics,
            }
        })
        .collect()
}

/// `2026-11-27T23:04:53.790Z` → `11-27 23:04` (`11-27 23:04:53` with `seconds`).
fn short_time(rfc3339: &str, seconds: bool) -> String {
    let end = if seconds { 19 } else { 16 };
    match (rfc3339.get(5..10), rfc3339.get(11..end)) {
        (Some(d), Some(t)) => format!("{d} {t}"),
        _ => rfc3339.to_owned(),
    }
}

fn cell(c: &Column, v: Option<f64>, base: Option<f64>, is_baseline: bool) -> Cell {
    let delta_pct = match (v, base) {
        (Some(v), Some(b)) if !is_baseline && b != 0.0 => Some((v - b) / b.abs() * 100.0),
        _ => None,
    };
    let verdict = match delta_pct {
        None => "",
        Some(d) if d.abs() < 0.5 => "same",
        Some(d) if (d < 0.0) == c.lower_is_better => "better",
        Some(_) => "worse",
    };
    Cell {
        value: v,
        delta_pct,
        verdict,
    }
}

fn charted() -> impl Iterator<Item = (usize, &'static Column)> {
    COLUMNS.iter().enumerate().filter(|(_, c)| c.chart)
}

fn overview_charts(rows: &[Row]) -> Vec<Chart> {
    charted()
        .map(|(ci, c)| {
            let id = format!("runs-{}", c.key.replace('_', "-"));
            let title = format!("{} across runs", c.label);
            let groups: Vec<BarGroup> = rows
                .iter()
                .map(|r| BarGroup {
                    label: if r.is_baseline {
                        format!("{} ◆", r.label)
                    } else {
                        r.label.clone()
                    },
                    values: vec![r.cells[ci].value],
                })
                .collect();
            let svg = charts::bars(&id, &title, c.unit, &[c.label], &groups);
            Chart { id, title, svg }
        })
        .collect()
}

/// Bars per server (model @ target, labels) within each workload; a server run several times
/// on a workload shows its latest run (rows are in time order).
fn matrix_charts(rows: &[Row], by_workload: &[Group]) -> Vec<Chart> {
    let key = |r: &Row| {
        let mut k = format!("{} @ {}", r.model, r.target);
        if !r.labels.is_empty() {
            k.push_str(" · ");
            k.push_str(&r.labels);
        }
        k
    };
    let mut servers: Vec<String> = Vec::new();
    for r in rows {
        if !servers.contains(&key(r)) {
            servers.push(key(r));
        }
    }
    let names: Vec<&str> = servers.iter().map(String::as_str).collect();
    charted()
        .map(|(ci, c)| {
            let id = format!("workloads-{}", c.key.replace('_', "-"));
            let title = format!("{} by workload and server", c.label);
            let groups: Vec<BarGroup> = by_workload
                .iter()
                .map(|w| BarGroup {
                    label: w.name.clone(),
                    values: servers
                        .iter()
                        .map(|m| {
                            w.rows
                                .iter()
                                .rev()
                                .map(|&i| &rows[i])
                                .find(|r| key(r) == *m)
                                .and_then(|r| r.cells[ci].value)
                        })
                        .collect(),
                })
                .collect();
            let svg = charts::bars(&id, &title, c.unit, &names, &groups);
            Chart { id, title, svg }
        })
        .collect()
}
