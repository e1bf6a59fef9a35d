//! `llmbench compare BASE NEW`: is the difference between two runs real? For each key metric
//! the change from BASE to NEW with its bootstrap confidence interval (`stats::bootstrap`,
//! resampling each run's requests, seeded) and a verdict: better, worse, or no significant
//! change. Two trial sets (`--repeat`, ids `trials_...`) compare their across-trial means
//! with Welch's t (`stats::trials::welch`) instead. `--fail-on` gates (`outcome::gate`) make it a CI check: exit 1 when one fails, with
//! one line per failed condition; `--junit`, `--summary-md` and `--export-json` write the
//! same for CI systems. Runs are read back from their raw records, warmups left out.
//! Throughput (one number per run, whose spread comes from timing rather than from requests)
//! is not compared here: it needs repeated trials.

use std::path::Path;

use super::cli::CompareArgs;
use super::{EXIT_FAILED, EXIT_OK, usage_error};
use crate::outcome::ci::{Case, junit, markdown_table};
use crate::outcome::gate::Gate;
use crate::record::{Labels, Outcome, RequestRecord, labels_line, read_records};
use crate::stats::bootstrap::{Change, Side, Statistic, change};
use crate::stats::trials;

/// Whether a rise of the metric is good news.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
}

/// A metric's value for one measured request (`None`: not counted).
type PerRequest = fn(&RequestRecord) -> Option<f64>;

/// One compared metric: its CSV-style key, which way is better, and its statistic.
struct Metric {
    key: String,
    better: Better,
    stat: Statistic,
    value: PerRequest,
    /// The reported value from the statistic on a run's values (see `Side::scale`).
    scale: fn(&Run) -> f64,
}

/// A run read back for comparing: its measured records and its labels.
struct Run {
    id: String,
    records: Vec<RequestRecord>,
    labels: Labels,
}

fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|u| u as f64 / 1000.0)
}

fn ok(r: &RequestRecord) -> bool {
    r.outcome == Outcome::Ok
}

/// The metrics compared, in report order.
fn metrics() -> Vec<Metric> {
    let latencies: [(&str, PerRequest); 4] = [
        ("ttft_ms", |r| ms(r.ttft_us()).filter(|_| ok(r))),
        ("tpot_ms", |r| {
            r.tpot_us().map(|t| t / 1000.0).filter(|_| ok(r))
        }),
        ("e2el_ms", |r| ms(r.e2el_us()).filter(|_| ok(r))),
        ("stream_close_ms", |r| {
            ms(r.stream_close_us()).filter(|_| ok(r))
        }),
    ];
    let stats = [
        ("mean", Statistic::Mean),
        ("p50", Statistic::Quantile(0.5)),
        ("p95", Statistic::Quantile(0.95)),
        ("p99", Statistic::Quantile(0.99)),
    ];
    let mut out = Vec::new();
    for (prefix, value) in latencies {
        for (suffix, stat) in stats {
            out.push(Metric {
                key: format!("{prefix}_{suffix}"),
                better: Better::Lower,
                stat,
                value,
                scale: |_| 1.0,
            });
        }
    }
    out.push(Metric {
        key: "success_rate".into(),
        better: Better::Higher,
        stat: Statistic::Mean,
        value: |r| Some(if ok(r) { 1.0 } else { 0.0 }),
        scale: |_| 100.0,
    });
    out
}

/// Reads the run `spec` names (a run id or a raw file; a run's id is its raw file's name).
fn read_run(spec: &str, results: &Path) -> Result<Run, String> {
    let raw = super::results::resolve_run(spec, results)?;
    let id = raw
        .file_stem()
        .map_or_else(|| spec.to_owned(), |s| s.to_string_lossy().into_owned());
    let records = read_records(&raw)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| !r.warmup)
        .collect();
    let labels = crate::report::stored::read_info(&raw)
        .map(|i| i.labels)
        .unwrap_or_default();
    Ok(Run {
        id,
        records,
        labels,
    })
}

/// One metric's result.
struct Compared {
    key: String,
    better: Better,
    change: Option<Change>,
}

impl Compared {
    fn verdict(&self) -> &'static str {
        match &self.change {
            None => "no data",
            Some(c) if !c.significant => "no significant change",
            Some(c) if (c.diff < 0.0) == (self.better == Better::Lower) => "better",
            Some(_) => "worse",
        }
    }
}

/// What was compared, and how: the two ids and their labels, the method for the header, every
/// metric.
struct Comparison {
    base: String,
    new: String,
    labels: [Labels; 2],
    method: String,
    metrics: Vec<Compared>,
}

/// A gate and whether it failed (a metric without data in either run fails it).
struct Checked<'g> {
    gate: &'g Gate,
    failed: bool,
    message: String,
}

/// `llmbench compare BASE NEW`.
pub fn compare(args: &CompareArgs) -> u8 {
    let sets = args.base.starts_with("trials_") || args.new.starts_with("trials_");
    let keys: Vec<String> = if sets {
        trials::metrics().into_iter().map(|(k, _, _)| k).collect()
    } else {
        metrics().iter().map(|m| m.key.clone()).collect()
    };
    let gates: Result<Vec<Gate>, String> =
        args.fail_on.iter().map(|g| Gate::parse(g, &keys)).collect();
    let gates = match gates {
        Ok(g) => g,
        Err(e) => return usage_error(e),
    };
    let outputs = [
        ("--junit", &args.junit),
        ("--summary-md", &args.summary_md),
        ("--export-json", &args.export_json),
    ];
    for (flag, path) in outputs {
        if let Some(p) = path
            && let Err(e) = super::check_output_file(flag, p)
        {
            return usage_error(e);
        }
    }
    let compared = if sets {
        compare_trial_sets(args)
    } else {
        compare_runs(args)
    };
    let all = match compared {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    let checked = check_gates(&gates, &all.metrics);
    let report = Report {
        base: &all.base,
        new: &all.new,
        labels: &all.labels,
        method: &all.method,
        compared: &all.metrics,
        checked: &checked,
        args,
    };
    report.print();
    if let Err(e) = report.write_outputs() {
        return usage_error(e);
    }
    if checked.iter().any(|c| c.failed) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// Two runs: every metric's change bootstrapped from their requests.
fn compare_runs(args: &CompareArgs) -> Result<Comparison, String> {
    let base = read_run(&args.base, &args.results)?;
    let new = read_run(&args.new, &args.results)?;
    let level = args.level / 100.0;
    let metrics = metrics()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let side = |run: &Run| {
                let values = run.records.iter().filter_map(m.value).collect();
                Side::new(values, (m.scale)(run), args.seed)
            };
            let seed = args.seed.wrapping_add(i as u64);
            let resamples = args.resamples as usize;
            let change = change(&side(&base), &side(&new), m.stat, level, resamples, seed);
            Compared {
                key: m.key.clone(),
                better: m.better,
                change,
            }
        })
        .collect();
    Ok(Comparison {
        method: format!(
            "{}% confidence, {} bootstrap resamples of each run's requests, seed {}",
            args.level, args.resamples, args.seed
        ),
        base: base.id,
        new: new.id,
        labels: [base.labels, new.labels],
        metrics,
    })
}

/// Two trial sets (`--repeat`): every metric's change of the across-trial mean, Welch's t.
fn compare_trial_sets(args: &CompareArgs) -> Result<Comparison, String> {
    let (base, base_labels) = trial_set(&args.base, &args.results)?;
    let (new, new_labels) = trial_set(&args.new, &args.results)?;
    let metrics = trials::metrics()
        .into_iter()
        .map(|(key, read, higher)| {
            let values = |set: &[crate::stats::PhaseStats]| -> Vec<f64> {
                set.iter().filter_map(&read).collect()
            };
            Compared {
                key,
                better: if higher {
                    Better::Higher
                } else {
                    Better::Lower
                },
                change: trials::welch(&values(&base), &values(&new), args.level / 100.0),
            }
        })
        .collect();
    Ok(Comparison {
        method: format!(
            "{}% confidence, Welch's t across {} and {} trials",
            args.level,
            base.len(),
            new.len()
        ),
        base: args.base.clone(),
        new: args.new.clone(),
        labels: [base_labels, new_labels],
        metrics,
    })
}

/// The overall statistics of every trial of the set `set` (run metadata names its set;
/// each trial's statistics are recomputed from its raw records), and the first trial's labels.
fn trial_set(set: &str, results: &Path) -> Result<(Vec<crate::stats::PhaseStats>, Labels), String> {
    let mut ids: Vec<String> = std::fs::read_dir(results.join("runs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            (v.pointer("/run/trial/set")?.as_str()? == set)
                .then(|| v.pointer("/run/id")?.as_str().map(str::to_owned))?
        })
        .collect();
    ids.sort();
    if ids.is_empty() {
        return Err(format!(
            "no trial set {set:?} under {}: run with --repeat N (its set id is printed at the end), or compare two run ids",
            results.join("runs").display()
        ));
    }
    let mut labels = None;
    let trials = ids
        .iter()
        .map(|id| {
            let raw = results.join("raw").join(format!("{id}.jsonl"));
            let run = crate::report::stored::load_run(&raw).map_err(|e| e.to_string())?;
            labels.get_or_insert(run.info.labels);
            Ok(run.analysis.summary.all)
        })
        .collect::<Result<_, String>>()?;
    Ok((trials, labels.unwrap_or_default()))
}

/// Each gate against its metric's change.
fn check_gates<'g>(gates: &'g [Gate], compared: &[Compared]) -> Vec<Checked<'g>> {
    gates
        .iter()
        .map(|g| {
            let c = compared.iter().find(|c| c.key == g.metric);
            match c.and_then(|c| c.change.as_ref()) {
                None => Checked {
                    gate: g,
                    failed: true,
                    message: "no data in one of the runs".into(),
                },
                Some(ch) => Checked {
                    gate: g,
                    failed: g.fails(ch),
                    message: format!(
                        "changed {} (CI {}), {}",
                        signed(ch.rel_pct, ch.diff),
                        interval(ch),
                        if ch.significant {
                            "significant"
                        } else {
                            "not significant"
                        }
                    ),
                },
            }
        })
        .collect()
}

/// Everything the comparison shows, for the terminal and the CI files.
struct Report<'a> {
    base: &'a str,
    new: &'a str,
    labels: &'a [Labels; 2],
    method: &'a str,
    compared: &'a [Compared],
    checked: &'a [Checked<'a>],
    args: &'a CompareArgs,
}

impl Report<'_> {
    /// The table's cells of one metric: key, base, new, change, interval, verdict.
    fn cells(c: &Compared) -> Vec<String> {
        match &c.change {
            None => vec![
                c.key.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                c.verdict().into(),
            ],
            Some(ch) => vec![
                c.key.clone(),
                format!("{:.2}", ch.base),
                format!("{:.2}", ch.new),
                signed(ch.rel_pct, ch.diff),
                interval(ch),
                c.verdict().into(),
            ],
        }
    }

    /// The base (0) or new (1) id with its labels, as `id [k=v k2=v2]`.
    fn named(&self, side: usize) -> String {
        let id = [self.base, self.new][side];
        format!("{id}{}", self.labels_of(side))
    }

    /// ` [k=v k2=v2]`, or nothing without labels.
    fn labels_of(&self, side: usize) -> String {
        match labels_line(&self.labels[side]) {
            l if l.is_empty() => l,
            l => format!(" [{l}]"),
        }
    }

    fn failed(&self) -> usize {
        self.checked.iter().filter(|c| c.failed).count()
    }

    fn print(&self) {
        let a = self.args;
        println!(
            "{} → {}\n({})\n",
            crate::escape::terminal(&self.named(0)),
            crate::escape::terminal(&self.named(1)),
            self.method
        );
        let ci = format!("{}% CI", a.level);
        let line = |c: &[String]| {
            format!(
                "{:<22} {:>10} {:>10} {:>9}  {:<20} {}",
                c[0], c[1], c[2], c[3], c[4], c[5]
            )
        };
        let header = ["metric", "base", "new", "change", &ci, "verdict"].map(String::from);
        println!("{}", line(&header));
        for c in self.compared {
            println!("{}", line(&Self::cells(c)));
        }
        if !self.checked.is_empty() {
            println!();
            for c in self.checked.iter().filter(|c| c.failed) {
                println!("FAIL {}: {}", c.gate.text, c.message);
            }
            println!("{} of {} gates failed", self.failed(), self.checked.len());
        }
    }

    /// `--junit`, `--summary-md` (appended, as GitHub's step summary wants) and `--export-json`.
    fn write_outputs(&self) -> Result<(), String> {
        let a = self.args;
        if let Some(path) = &a.junit {
            let cases: Vec<Case> = self
                .checked
                .iter()
                .map(|c| Case {
                    name: c.gate.text.clone(),
                    passed: !c.failed,
                    message: c.message.clone(),
                })
                .collect();
            let suite = format!("compare {} {}", self.base, self.new);
            crate::run::write_atomic(path, junit(&suite, &cases)).map_err(|e| e.to_string())?;
        }
        if let Some(path) = &a.summary_md {
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(self.markdown().as_bytes()))
                .map_err(|e| format!("--summary-md {}: {e}", path.display()))?;
        }
        if let Some(path) = &a.export_json {
            let text = serde_json::to_string_pretty(&self.json()).unwrap_or_default() + "\n";
            crate::run::write_atomic(path, text).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The comparison as Markdown, for a pull-request comment.
    fn markdown(&self) -> String {
        let n = self.checked.len();
        let headline = match (n, self.failed()) {
            (0, _) => "no gates".to_owned(),
            (n, 0) => format!("all {n} gates passed"),
            (n, f) => format!("{f} of {n} gates failed"),
        };
        let mut out = format!(
            "### llmbench compare: {headline}\n\n`{}`{} → `{}`{}\n\n",
            crate::escape::markdown(self.base),
            crate::escape::markdown(&self.labels_of(0)),
            crate::escape::markdown(self.new),
            crate::escape::markdown(&self.labels_of(1))
        );
        let ci = format!("{}% CI", self.args.level);
        let rows: Vec<Vec<String>> = self.compared.iter().map(Self::cells).collect();
        let header = ["metric", "base", "new", "change", ci.as_str(), "verdict"];
        out.push_str(&markdown_table(&header, &rows));
        if n > 0 {
            let rows: Vec<Vec<String>> = self
                .checked
                .iter()
                .map(|c| {
                    let result = if c.failed { "FAIL" } else { "pass" };
                    vec![c.gate.text.clone(), result.into(), c.message.clone()]
                })
                .collect();
            out.push('\n');
            out.push_str(&markdown_table(&["gate", "result", "change"], &rows));
        }
        out.push('\n');
        out
    }

    /// The comparison as JSON (schema `llmbench.compare/1`), values as numbers.
    fn json(&self) -> serde_json::Value {
        use serde_json::{Value, json};
        let num = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
        let metrics: Vec<Value> = self
            .compared
            .iter()
            .map(|c| {
                let mut m = json!({ "metric": c.key, "verdict": c.verdict() });
                if let Some(ch) = &c.change {
                    m["base"] = num(ch.base);
                    m["new"] = num(ch.new);
                    m["diff"] = num(ch.diff);
                    m["diff_ci"] = json!([num(ch.diff_ci.0), num(ch.diff_ci.1)]);
                    m["change_pct"] = num(ch.rel_pct);
                    m["change_pct_ci"] = json!([num(ch.rel_ci.0), num(ch.rel_ci.1)]);
                    m["significant"] = json!(ch.significant);
                }
                m
            })
            .collect();
        let gates: Vec<Value> = self
            .checked
            .iter()
            .map(|c| json!({ "condition": c.gate.text, "failed": c.failed, "detail": c.message }))
            .collect();
        let a = self.args;
        json!({
            "schema": "llmbench.compare/1",
            "base": self.base,
            "new": self.new,
            "base_labels": &self.labels[0],
            "new_labels": &self.labels[1],
            "level_pct": a.level,
            "method": self.method,
            "resamples": a.resamples,
            "seed": a.seed,
            "metrics": metrics,
            "gates": gates,
            "failed": self.failed() > 0,
        })
    }
}

/// The relative change, or the absolute one when the base is 0.
fn signed(rel_pct: f64, diff: f64) -> String {
    if rel_pct.is_finite() {
        format!("{rel_pct:+.1}%")
    } else {
        format!("{diff:+.2}")
    }
}

fn interval(c: &Change) -> String {
    if c.rel_pct.is_finite() {
        format!("[{:+.1}%, {:+.1}%]", c.rel_ci.0, c.rel_ci.1)
    } else {
        format!("[{:+.2}, {:+.2}]", c.diff_ci.0, c.diff_ci.1)
    }
}
