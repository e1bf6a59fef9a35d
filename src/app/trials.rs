//! `--repeat N` (or `repeat(N)` in the script): the plan runs N times (with `--cooldown` seconds between), each trial a run of
//! its own (records, summary, reports) marked in its metadata as trial i of N of one set. Then
//! each key metric's across-trial mean, Student-t interval (`--level`) and coefficient of
//! variation are printed and written to `summary/<set>.trials.csv`, an unstable metric (CV
//! over 10%) flagged. An interrupted trial ends the set; the trials before it stay.

use std::path::Path;
use std::time::Duration;

use crate::plan::Plan;
use crate::record::Trial;
use crate::run::{RunError, RunOutcome};
use crate::settings::LoadFlags;
use crate::stats::trials::{AcrossTrials, UNSTABLE_CV, across};

/// Runs the trials; returns the outcome the exit code follows (the first trial that did not
/// succeed, else the last).
pub async fn run(
    plan: Plan,
    of: u32,
    flags: &LoadFlags,
    label: &str,
) -> Result<RunOutcome, RunError> {
    let set = format!(
        "trials_{}_{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        crate::record::layout::sanitize(&plan.workload)
    );
    let mut outcomes: Vec<RunOutcome> = Vec::new();
    for index in 1..=of {
        eprintln!("llmbench: trial {index} of {of} ({set})");
        let mut settings = flags.settings(label);
        settings.trial = Some(Trial {
            set: set.clone(),
            index,
            of,
        });
        let outcome = crate::run::run(plan.clone(), &settings, Vec::new()).await?;
        let stop = outcome.interrupted.is_some();
        outcomes.push(outcome);
        if stop {
            break;
        }
        if index < of && flags.control.cooldown > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(flags.control.cooldown)).await;
        }
    }
    let stats: Vec<_> = outcomes.iter().map(|o| &o.summary.all).collect();
    let rows = across(&stats, flags.control.level / 100.0);
    print(&set, outcomes.len(), flags.control.level, &rows);
    let path = flags
        .output
        .results
        .join("summary")
        .join(format!("{set}.trials.csv"));
    write_csv(&path, &rows)?;
    println!("trials:      {}", path.display());
    let worst = outcomes
        .iter()
        .position(|o| super::outcome_code(o) != super::EXIT_OK)
        .unwrap_or(outcomes.len() - 1);
    Ok(outcomes.swap_remove(worst))
}

fn print(set: &str, n: usize, level: f64, rows: &[AcrossTrials]) {
    println!("\n{set}: {n} trials, mean and {level}% t interval across trials");
    println!(
        "{:<18} {:>10} {:>22} {:>7}",
        "metric", "mean", "interval", "CV"
    );
    for r in rows {
        let flag = if r.unstable { "  unstable" } else { "" };
        println!(
            "{:<18} {:>10.2} {:>22} {:>7}{flag}",
            r.key,
            r.mean,
            format!("[{:.2}, {:.2}]", r.lo, r.hi),
            if r.cv.is_finite() {
                format!("{:.1}%", r.cv * 100.0)
            } else {
                "-".into()
            }
        );
    }
    if rows.iter().any(|r| r.unstable) {
        println!(
            "unstable: the trials of a metric vary by more than {:.0}% of its mean (CV); run longer trials or more of them before comparing",
            UNSTABLE_CV * 100.0
        );
    }
}

/// `metric,trials,mean,ci_lo,ci_hi,cv,unstable,values` (values `;`-separated, in trial order).
fn write_csv(path: &Path, rows: &[AcrossTrials]) -> Result<(), RunError> {
    let mut out = String::from("metric,trials,mean,ci_lo,ci_hi,cv,unstable,values\n");
    let num = |x: f64| {
        if x.is_finite() {
            format!("{x:.4}")
        } else {
            String::new()
        }
    };
    for r in rows {
        let values: Vec<String> = r.values.iter().map(|v| num(*v)).collect();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            r.key,
            r.values.len(),
            num(r.mean),
            num(r.lo),
            num(r.hi),
            num(r.cv),
            r.unstable,
            values.join(";")
        ));
    }
    crate::run::write_atomic(path, out)
}
