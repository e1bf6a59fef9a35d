//! `llmbench compare BASE NEW`: is the difference between two runs real? For each key metric
//! the change from BASE to NEW with its bootstrap confidence interval (`stats::bootstrap`,
//! resampling each run's requests, seeded) and a verdict: better, worse, or no significant
//! change. `--fail-on` gates (`outcome::gate`) make it a CI check: exit 1 when one fails, with
//! one line per failed condition. Runs are read back from their raw records, warmups left out.
//! Throughput (one number per run, whose spread comes from timing rather than from requests)
//! is not compared here: it needs repeated trials.

use std::path::Path;

use super::cli::CompareArgs;
use super::{EXIT_FAILED, EXIT_OK, usage_error};
use crate::outcome::gate::Gate;
use crate::record::{Outcome, RequestRecord, read_records};
use crate::stats::bootstrap::{Change, Side, Statistic, change};

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

/// A run read back for comparing: its measured records.
struct Run {
    id: String,
    records: Vec<RequestRecord>,
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

/// Reads the run `spec` names (a run id or a raw file).
fn read_run(spec: &str, results: &Path) -> Result<Run, String> {
    let raw = super::results::resolve_run(spec, results)?;
    let stored = crate::report::stored::load_run(&raw).map_err(|e| e.to_string())?;
    let records = read_records(&raw)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| !r.warmup)
        .collect();
    Ok(Run {
        id: stored.info.id.clone(),
        records,
    })
}

/// `llmbench compare BASE NEW`.
pub fn compare(args: &CompareArgs) -> u8 {
    let metrics = metrics();
    let keys: Vec<String> = metrics.iter().map(|m| m.key.clone()).collect();
    let gates: Result<Vec<Gate>, String> =
        args.fail_on.iter().map(|g| Gate::parse(g, &keys)).collect();
    let gates = match gates {
        Ok(g) => g,
        Err(e) => return usage_error(e),
    };
    let (base, new) = match (
        read_run(&args.base, &args.results),
        read_run(&args.new, &args.results),
    ) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => return usage_error(e),
    };
    let level = args.level / 100.0;
    println!(
        "{} → {}\n({}% confidence, {} bootstrap resamples of each run's requests, seed {})\n",
        base.id, new.id, args.level, args.resamples, args.seed
    );
    println!(
        "{:<22} {:>10} {:>10} {:>9}  {:<20} verdict",
        "metric",
        "base",
        "new",
        "change",
        format!("{}% CI", args.level)
    );
    let mut failed = Vec::new();
    for (i, m) in metrics.iter().enumerate() {
        let side = |run: &Run| {
            let values = run.records.iter().filter_map(m.value).collect();
            Side::new(values, (m.scale)(run), args.seed)
        };
        let seed = args.seed.wrapping_add(i as u64);
        let Some(c) = change(
            &side(&base),
            &side(&new),
            m.stat,
            level,
            args.resamples as usize,
            seed,
        ) else {
            println!("{:<22} {:>10} {:>10}", m.key, "-", "-");
            continue;
        };
        println!("{}", row(m, &c));
        for g in gates.iter().filter(|g| g.metric == m.key) {
            if g.fails(&c) {
                failed.push(format!(
                    "FAIL {}: changed {} (CI {}), significant",
                    g.text,
                    signed(c.rel_pct, c.diff),
                    interval(&c)
                ));
            }
        }
    }
    if !gates.is_empty() {
        println!();
        for line in &failed {
            println!("{line}");
        }
        println!("{} of {} gates failed", failed.len(), gates.len());
    }
    if failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// One line of the comparison table.
fn row(m: &Metric, c: &Change) -> String {
    let verdict = if !c.significant {
        "no significant change"
    } else if (c.diff < 0.0) == (m.better == Better::Lower) {
        "better"
    } else {
        "worse"
    };
    format!(
        "{:<22} {:>10.2} {:>10.2} {:>9}  {:<20} {verdict}",
        m.key,
        c.base,
        c.new,
        signed(c.rel_pct, c.diff),
        interval(c)
    )
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
