//! Reports: a serialisable context built from the statistics, rendered by minijinja templates
//! into Markdown, HTML, the summary CSV and the terminal summary. Templates load from a folder
//! (`templates/` by default) and fall back to copies embedded in the binary. Undefined variables
//! are errors, and every printed value is escaped for its file type (`escape`: HTML, Markdown,
//! terminal; CSV fields go through the `csv` filter).
//! `RunReport` is the one path from a run's analysis to its files: the run itself and
//! `llmbench parse` both go through it, so the CSV they write is the same.

mod charts;
pub mod comparison;
pub mod export;
mod run_charts;
pub mod stored;
pub mod sweep_charts;

pub use run_charts::{Chart, RunCharts};

use std::collections::BTreeMap;
use std::path::PathBuf;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};

use crate::outcome::sweep::SweepOutcome;
use crate::outcome::verdict::Verdict;
use crate::plan::Slo;
use crate::record::{Outcome, RunFiles, RunInfo};
use crate::stats::ramp::RampWindows;
use crate::stats::timeline::Timeline;
use crate::stats::{Distribution, Metric, PhaseStats, STAT_KEYS, Summary, Warning};
use crate::telemetry::Reading;
use crate::telemetry::summary::{Energy, TelemetrySummary};
use sweep_charts::{RampView, SweepView};

/// Templates the binary carries, by name.
const EMBEDDED: [(&str, &str); 7] = [
    ("report.md.j2", include_str!("../templates/report.md.j2")),
    (
        "report.html.j2",
        include_str!("../templates/report.html.j2"),
    ),
    (
        "summary.csv.j2",
        include_str!("../templates/summary.csv.j2"),
    ),
    (
        "summary.txt.j2",
        include_str!("../templates/summary.txt.j2"),
    ),
    ("style.html.j2", include_str!("../templates/style.html.j2")),
    (
        "comparison.md.j2",
        include_str!("../templates/comparison.md.j2"),
    ),
    (
        "comparison.html.j2",
        include_str!("../templates/comparison.html.j2"),
    ),
];

/// A phase's statistics plus its metrics by key (`p.m.ttft_ms.p50` in a template).
#[derive(Debug, Serialize)]
pub struct PhaseView<'a> {
    #[serde(flatten)]
    pub stats: &'a PhaseStats,
    pub m: BTreeMap<&'static str, &'a Distribution>,
}

impl<'a> PhaseView<'a> {
    fn new(stats: &'a PhaseStats) -> Self {
        Self {
            stats,
            m: stats.metrics.iter().map(|d| (d.key, d)).collect(),
        }
    }
}

/// Everything a template sees.
#[derive(Debug, Serialize)]
pub struct ReportContext<'a> {
    pub run: &'a RunInfo,
    /// Measured phases, in run order.
    pub phases: Vec<PhaseView<'a>>,
    /// All measured phases together.
    pub all: PhaseView<'a>,
    pub warmup_requests: u64,
    pub warnings: &'a [Warning],
    /// The most frequent kinds of failure among measured requests.
    pub errors: &'a [crate::stats::errors::ErrorCount],
    /// Measured requests by label (empty when no request had one).
    pub labels: Vec<PhaseView<'a>>,
    /// TTFT with and without cache: `cached` and `uncached` rows (empty when no usage said).
    pub cache: Vec<PhaseView<'a>>,
    /// Measured session turns by turn index (empty without sessions).
    pub turns: Vec<PhaseView<'a>>,
    /// Summary CSV header and rows (phases, `all`, then one `label:NAME` row per label),
    /// already formatted.
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Outcome classes other than `ok`, in column order.
    pub failure_classes: Vec<&'static str>,
    /// Paths of the run's files, as shown to the user.
    pub files: Files,
    /// Inline SVG charts of the HTML report.
    pub charts: RunCharts,
    /// Telemetry series and energy, when any were sampled.
    pub telemetry: Option<&'a TelemetrySummary>,
    /// The script's SLO (goodput is in each phase's `good*` fields), if it set one.
    pub slo: Option<Slo>,
    /// Every assertion with pass/fail and its value.
    pub verdicts: &'a [Verdict],
    /// What a capacity sweep found, if the run held one.
    pub sweep: Option<&'a SweepOutcome>,
    /// The sweep's steps as curves and a table (knee, Pareto front), with `sweep`.
    pub sweep_view: Option<SweepView>,
    /// Each ramp phase's windows as the same curves and table.
    pub ramps: Vec<RampView>,
}

/// A run's files as shown to the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Files {
    pub raw: String,
    pub csv: String,
    #[serde(default)]
    pub intervals: String,
    pub markdown: String,
    pub html: String,
    pub metadata: String,
}

impl From<&RunFiles> for Files {
    fn from(f: &RunFiles) -> Self {
        let shown = |p: &std::path::Path| p.display().to_string();
        Self {
            raw: shown(&f.raw),
            csv: shown(&f.csv),
            intervals: shown(&f.intervals),
            markdown: shown(&f.markdown),
            html: shown(&f.html),
            metadata: shown(&f.metadata),
        }
    }
}

impl<'a> ReportContext<'a> {
    pub fn new(
        run: &'a RunInfo,
        summary: &'a Summary,
        timeline: &Timeline,
        warnings: &'a [Warning],
        files: Files,
    ) -> Self {
        Self {
            run,
            phases: summary.phases.iter().map(PhaseView::new).collect(),
            all: PhaseView::new(&summary.all),
            warmup_requests: summary.warmup_requests,
            labels: summary.labels.iter().map(PhaseView::new).collect(),
            cache: summary.cache.iter().map(PhaseView::new).collect(),
            turns: summary.turns.iter().map(PhaseView::new).collect(),
            warnings,
            errors: &summary.errors,
            columns: csv_columns(),
            rows: csv_rows(summary, |_| None),
            failure_classes: failure_classes().collect(),
            files,
            charts: RunCharts::new(summary, timeline),
            telemetry: None,
            slo: None,
            verdicts: &[],
            sweep: None,
            sweep_view: None,
            ramps: Vec::new(),
        }
    }

    /// Adds what telemetry measured: energy in the CSV rows, tables and charts in the reports.
    pub fn with_telemetry(
        mut self,
        summary: &'a Summary,
        timeline: &Timeline,
        telemetry: &'a TelemetrySummary,
        readings: &[Reading],
    ) -> Self {
        let energy = |name: &str| telemetry.energy.iter().find(|e| e.window == name);
        self.rows = csv_rows(summary, energy);
        self.charts.add_telemetry(readings, timeline);
        self.telemetry = Some(telemetry).filter(|t| !t.series.is_empty());
        self
    }

    /// Adds a capacity sweep's outcome and its curves (against the SLO `with_verdicts` gave,
    /// so call that first).
    pub fn with_sweep(mut self, sweep: Option<&'a SweepOutcome>, timeline: &Timeline) -> Self {
        self.sweep = sweep;
        self.sweep_view = sweep.map(|s| {
            let phases: Vec<&PhaseStats> = self.phases.iter().map(|p| p.stats).collect();
            SweepView::new(s, &phases, self.slo.as_ref(), timeline)
        });
        self
    }

    /// Adds the ramp phases' curves, a window meeting the SLO `with_verdicts` gave (call that
    /// first) when `attainment` (0..=1) of its requests were good.
    pub fn with_ramps(
        mut self,
        ramps: &[RampWindows],
        attainment: f64,
        timeline: &Timeline,
    ) -> Self {
        self.ramps = ramps
            .iter()
            .filter_map(|r| RampView::new(r, self.slo.as_ref(), attainment, timeline))
            .collect();
        self
    }

    /// Adds the SLO and the assertions' verdicts.
    pub fn with_verdicts(mut self, slo: Option<Slo>, verdicts: &'a [Verdict]) -> Self {
        self.slo = slo;
        self.verdicts = verdicts;
        self
    }
}

/// A run's rendered outputs.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// `results/summary/<run-id>.csv`
    pub csv: String,
    /// `results/summary/<run-id>.intervals.csv`
    pub intervals: String,
    pub markdown: String,
    pub html: String,
    /// The summary table printed at the end of a run.
    pub terminal: String,
}

fn failure_classes() -> impl Iterator<Item = &'static str> {
    Outcome::ALL
        .iter()
        .filter(|o| !matches!(o, Outcome::Ok | Outcome::CancelledByClient))
        .map(|o| o.name())
}

/// Columns of the summary CSV, in order. README documents each.
pub fn csv_columns() -> Vec<String> {
    let mut cols: Vec<String> = [
        "phase",
        "requests",
        "ok",
        "failed",
        "success_rate",
        "duration_s",
        "req_per_s",
        "output_tok_per_s",
        "total_tok_per_s",
        "input_tokens",
        "output_tokens",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cols.extend(failure_classes().map(|c| format!("failed_{c}")));
    cols.extend(ENERGY_COLUMNS.iter().map(|c| c.to_string()));
    for m in Metric::ALL {
        for s in STAT_KEYS {
            cols.push(format!("{}_{s}", m.key()));
        }
    }
    // Columns added later go last, so the earlier ones keep their places.
    cols.push("empty_answers".into());
    cols.push("cancelled_by_client".into());
    cols
}

/// Columns of the intervals CSV. README documents each.
pub const INTERVAL_COLUMNS: [&str; 8] = [
    "phase", "metric", "stat", "value", "lo", "hi", "level", "count",
];

/// `summary/<run-id>.intervals.csv`: one row per phase (then `all`), metric with intervals
/// (`stats::interval`) and percentile: its value as in the summary CSV and its interval.
fn intervals_csv(ctx: &ReportContext<'_>) -> String {
    let mut out = INTERVAL_COLUMNS.join(",");
    out.push('\n');
    for p in ctx.phases.iter().chain([&ctx.all]) {
        for d in &p.stats.metrics {
            let Some(intervals) = &d.intervals else {
                continue;
            };
            let values = [d.p50, d.p95, d.p99];
            for ((stat, i), value) in intervals.each().into_iter().zip(values) {
                let value = value.map(|v| format!("{v:.3}")).unwrap_or_default();
                out.push_str(&format!(
                    "{},{},{stat},{value},{:.3},{:.3},{},{}\n",
                    crate::escape::csv(&p.stats.name),
                    d.key,
                    i.lo,
                    i.hi,
                    intervals.level,
                    d.count
                ));
            }
        }
    }
    out
}

/// Energy columns, filled from telemetry (empty when the run had no power or energy series).
const ENERGY_COLUMNS: [&str; 4] = [
    "energy_j",
    "avg_power_w",
    "j_per_output_tok",
    "output_tok_per_j",
];

/// The CSV rows: each phase and `all` (with its energy), then one row per label named
/// `label:NAME`, then one per session turn index named `turn:N` (labels and turns interleave
/// in time: no energy of their own).
fn csv_rows<'e>(
    summary: &Summary,
    energy: impl Fn(&str) -> Option<&'e Energy>,
) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = summary
        .rows()
        .map(|p| csv_row(p, energy(&p.name)))
        .collect();
    rows.extend(summary.labels.iter().map(|p| {
        let mut row = csv_row(p, None);
        row[0] = format!("label:{}", p.name);
        row
    }));
    rows.extend(summary.turns.iter().map(|p| {
        let mut row = csv_row(p, None);
        row[0] = format!("turn:{}", p.name);
        row
    }));
    rows
}

/// One CSV row; fixed decimals so files diff cleanly, empty where a value does not exist.
fn csv_row(p: &PhaseStats, energy: Option<&Energy>) -> Vec<String> {
    let f3 = |v: f64| format!("{v:.3}");
    let mut row = vec![
        p.name.clone(),
        p.requests.to_string(),
        p.ok.to_string(),
        p.failed.to_string(),
        f3(p.success_rate),
        f3(p.duration_s),
        f3(p.req_per_s),
        f3(p.output_tok_per_s),
        p.total_tok_per_s.map(f3).unwrap_or_default(),
        p.input_tokens.to_string(),
        p.output_tokens.to_string(),
    ];
    row.extend(failure_classes().map(|c| p.outcomes[c].to_string()));
    let e = |f: &dyn Fn(&Energy) -> Option<f64>| energy.and_then(f).map(f3).unwrap_or_default();
    row.push(e(&|e| Some(e.joules)));
    row.push(e(&|e| Some(e.avg_power_w)));
    row.push(e(&|e| e.joules_per_output_token));
    row.push(e(&|e| e.output_tokens_per_joule));
    for m in Metric::ALL {
        for v in p.metric(m).values() {
            row.push(v.map(f3).unwrap_or_default());
        }
    }
    row.push(p.empty_answers.to_string());
    row.push(p.cancelled_by_client.to_string());
    row
}

/// Why rendering failed; names the template and the whole error chain.
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct RenderError {
    pub name: String,
    pub message: String,
}

/// The template environment.
pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    /// Templates from `dir` where it has them, else the embedded ones.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.contains(".html") {
                AutoEscape::Html
            } else if name.contains(".md") {
                AutoEscape::Custom("markdown".into())
            } else if name.contains(".txt") {
                AutoEscape::Custom("terminal".into())
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(format_value);
        env.set_loader(move |name| {
            if let Some(dir) = &dir {
                let path = dir.join(name);
                if path.is_file() {
                    return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                        minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            format!("cannot read {}: {e}", path.display()),
                        )
                    });
                }
            }
            Ok(EMBEDDED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, src)| src.to_string()))
        });
        env.add_filter("csv", csv_field);
        env.add_filter("num", num);
        env.add_filter("pad", pad);
        Self { env }
    }

    /// The summary CSV of a run: the one function the run and `llmbench parse` both use.
    pub fn summary_csv(&self, ctx: &ReportContext<'_>) -> Result<String, RenderError> {
        self.render("summary.csv.j2", ctx)
    }

    /// Every output of a run.
    pub fn run_report(&self, ctx: &ReportContext<'_>) -> Result<RunReport, RenderError> {
        Ok(RunReport {
            csv: self.summary_csv(ctx)?,
            intervals: intervals_csv(ctx),
            markdown: self.render("report.md.j2", ctx)?,
            html: self.render("report.html.j2", ctx)?,
            terminal: self.render("summary.txt.j2", ctx)?,
        })
    }

    /// Renders template `name` with any serialisable context.
    pub fn render(&self, name: &str, ctx: &impl Serialize) -> Result<String, RenderError> {
        let fail = |e| RenderError::new(name, e);
        let tmpl = self.env.get_template(name).map_err(fail)?;
        tmpl.render(Value::from(minijinja::value::Serde(ctx)))
            .map_err(fail)
    }

    /// Compiles every template (a syntax error names its file and line) and renders the run's
    /// templates once against a run with no records, so a broken template stops a run before
    /// its first request instead of costing it its reports.
    pub fn check(&self) -> Result<(), RenderError> {
        for (name, _) in EMBEDDED {
            self.env
                .get_template(name)
                .map_err(|e| RenderError::new(name, e))?;
        }
        let empty = crate::stats::analysis::analyze(std::iter::empty());
        let info = RunInfo::placeholder("template-check", "");
        let files = Files::from(&RunFiles::new(std::path::Path::new(""), &info.id));
        let ctx = ReportContext::new(&info, &empty.summary, &empty.timeline, &[], files);
        self.run_report(&ctx).map(|_| ())
    }
}

impl RenderError {
    /// The error of template `name`, with minijinja's whole error chain.
    fn new(name: &str, e: minijinja::Error) -> Self {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        Self {
            name: name.to_owned(),
            message,
        }
    }
}

/// The `csv` filter: one CSV field (see `escape::csv`).
fn csv_field(v: String) -> String {
    crate::escape::csv(&v)
}

/// Prints a template value, escaped for the template's format (see `escape`).
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let escape: fn(&str) -> String = match state.auto_escape() {
        AutoEscape::Custom(f) if f == "markdown" => crate::escape::markdown,
        AutoEscape::Custom(f) if f == "terminal" => crate::escape::terminal,
        _ => return minijinja::escape_formatter(out, state, value),
    };
    if value.is_safe() {
        write!(out, "{value}").map_err(minijinja::Error::from)
    } else {
        out.write_str(&escape(&value.to_string()))
            .map_err(minijinja::Error::from)
    }
}

/// Formats a number with `digits` decimals (default 2); none/undefined prints as `–`.
fn num(v: Value, digits: Option<usize>) -> String {
    if v.is_none() || v.is_undefined() {
        return "–".into();
    }
    match f64::try_from(v.clone()) {
        Ok(x) => format!("{x:.*}", digits.unwrap_or(2)),
        Err(_) => v.to_string(),
    }
}

/// Pads to `width` characters: right-aligned for a positive width, left-aligned for negative.
fn pad(v: Value, width: i64) -> String {
    let s = v.to_string();
    let w = width.unsigned_abs() as usize;
    if width >= 0 {
        format!("{s:>w$}")
    } else {
        format!("{s:<w$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_pass_the_check() {
        Renderer::new(None).check().unwrap();
    }

    #[test]
    fn csv_columns_are_unique_and_follow_the_naming_rule() {
        let cols = csv_columns();
        let mut sorted = cols.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), cols.len());
        for needed in [
            "ttft_ms_p95",
            "e2el_ms_mean",
            "tpot_ms_p99",
            "itl_ms_p50",
            "output_tok_s_p50",
            "success_rate",
            "total_tok_per_s",
        ] {
            assert!(cols.iter().any(|c| c == needed), "{needed}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a".into()), "a");
        assert_eq!(csv_field("a,b".into()), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"".into()), "\"say \"\"hi\"\"\"");
    }
}
