//! The comparison report's context: one row per run (target, model, workload, time) with its key
//! metrics over all measured phases, deltas against a baseline run, the runs grouped by model
//! and by workload, and bar charts of each key metric across runs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Chart;
use super::charts::{self, BarGroup};
use crate::record::RunInfo;
use crate::stats::Warning;
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
    /// The run's own HTML report, relative to the comparison report.
    pub report_link: String,
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
    /// Short label for charts: workload · model · start time.
    pub label: String,
    pub target: String,
    pub model: String,
    pub workload: String,
    pub started_at: String,
    /// `started_at` to the second, for tables: `2026-01-01 00:00:00`.
    pub time: String,
    pub requests: u64,
    pub is_baseline: bool,
    pub interrupted: bool,
    pub cells: Vec<Cell>,
    pub warnings: Vec<Warning>,
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
    /// Each charted metric across every run.
    pub charts: Vec<Chart>,
    /// Each charted metric by workload (bars per model, the latest run of each).
    pub workload_charts: Vec<Chart>,
}

impl ComparisonContext {
    /// `runs` in report order; `baseline` indexes into it.
    pub fn new(runs: &[ComparedRun<'_>], baseline: usize) -> Self {
        let base = &runs[baseline];
        let rows: Vec<Row> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| Row {
                id: r.info.id.clone(),
                label: format!(
                    "{} · {} · {}",
                    r.info.workload,
                    r.info.model,
                    short_time(&r.info.started_at)
                ),
                target: r.info.target.clone(),
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
                interrupted: r.info.interrupted,
                cells: COLUMNS
                    .iter()
                    .map(|c| {
                        cell(
                            c,
                            value(r.all, c.key),
                            value(base.all, c.key),
                            i == baseline,
                        )
                    })
                    .collect(),
                warnings: r.warnings.to_vec(),
                report_link: r.report_link.clone(),
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
        let charts = overview_charts(&rows);
        let workload_charts = matrix_charts(&rows, &by_workload, &by_model);
        Self {
            columns: COLUMNS.to_vec(),
            rows,
            baseline: base.info.id.clone(),
            by_model,
            by_workload,
            charts,
            workload_charts,
        }
    }
}

/// `2026-11-27T23:04:53.790Z` → `11-27 23:04`.
fn short_time(rfc3339: &str) -> String {
    match (rfc3339.get(5..10), rfc3339.get(11..16)) {
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

/// Bars per model within each workload; a model run several times on a workload shows its
/// latest run (rows are in time order).
fn matrix_charts(rows: &[Row], by_workload: &[Group], by_model: &[Group]) -> Vec<Chart> {
    let models: Vec<&str> = by_model.iter().map(|g| g.name.as_str()).collect();
    charted()
        .map(|(ci, c)| {
            let id = format!("workloads-{}", c.key.replace('_', "-"));
            let title = format!("{} by workload and model", c.label);
            let groups: Vec<BarGroup> = by_workload
                .iter()
                .map(|w| BarGroup {
                    label: w.name.clone(),
                    values: models
                        .iter()
                        .map(|m| {
                            w.rows
                                .iter()
                                .rev()
                                .map(|&i| &rows[i])
                                .find(|r| r.model == *m)
                                .and_then(|r| r.cells[ci].value)
                        })
                        .collect(),
                })
                .collect();
            let svg = charts::bars(&id, &title, c.unit, &models, &groups);
            Chart { id, title, svg }
        })
        .collect()
}
