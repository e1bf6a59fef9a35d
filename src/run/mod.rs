//! The run pipeline in three stages with typed seams:
//!
//! - `prepare` (plan + settings → `Prepared`): every fallible check before the first request;
//! - `Prepared::measure` (→ `Measured`): the phases, each record handed to every `RecordSink`,
//!   SIGINT and SIGTERM (`signals`);
//! - `finish` (→ `RunOutcome`, pure): verdicts, sweep outcome, warnings, run metadata.
//!
//! `run` chains them, evaluates the assertions where a signal can cut them short, renders the
//! outputs to bytes (`outputs`) and writes them atomically. Beside the stages: the request
//! feed, the progress bar and the live metrics view, which are sinks or sources of the run.

pub mod feed;
mod finish;
pub mod live;
mod measure;
pub mod outputs;
mod prepare;
pub mod progress;
mod sessions;
pub mod signals;
pub mod sink;

use std::io::Write;
use std::path::PathBuf;

pub use finish::{RunOutcome, finish};
pub use measure::Measured;
pub use outputs::write_atomic;
pub use prepare::{Prepared, RunSetup, prepare, script_errors};
pub use signals::{Interrupt, Signals};
pub use sink::{MemorySink, RecordSink};

use crate::client::ClientError;
use crate::client::preflight::PreflightError;
use crate::config::ConfigError;
use crate::outcome::verdict::{self, Verdict};
use crate::plan::Plan;
use crate::report::RenderError;
use crate::script::ScriptError;
use crate::settings::{Outputs, Settings, SettingsError};

/// Everything that stops a run before or while it starts; all are the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// The script fails before the first request (its prompt function or an assertion), one
    /// error each, found by `script_errors`.
    #[error("{}", .0.join("\n"))]
    ScriptFails(Vec<String>),
}

/// Runs `plan` to the end (or to a signal) and writes every output; `sinks` also see every
/// record (calibrate and tests collect them in memory).
pub async fn run(
    plan: Plan,
    settings: &Settings,
    sinks: Vec<Box<dyn RecordSink>>,
) -> Result<RunOutcome, RunError> {
    let mut prepared = prepare(plan, settings).await?;
    let renderer = prepared.renderer.take();
    let signals = Signals::watch(settings.grace)
        .map_err(|e| RunError::Usage(format!("cannot watch for Ctrl-C and SIGTERM: {e}")))?;
    // A signal also stops the script's prompt or assertion call that is running.
    let cancel = prepared.setup.plan.cancel.clone();
    let _cancel_scripts = signals.on_stop(move || cancel.cancel());
    // ... and every retry a request is waiting to make.
    let retries = prepared.client.retries_stop();
    let _stop_retries = signals.on_stop(move || retries.cancel());
    let measured = prepared.measure(&signals, sinks).await?;
    let n = measured.setup.plan.assertions.len();
    if n > 0 && !settings.quiet {
        eprintln!(
            "llmbench: checking {n} assertion{}",
            if n == 1 { "" } else { "s" }
        );
    }
    let verdicts = signals.unless_stopped(evaluate(&measured)).await;
    let mut outcome = finish(measured, verdicts, signals.interrupted());
    if let (Some(renderer), Some(files), Outputs::Files { export_json, .. }) =
        (&renderer, outcome.files(), &settings.outputs)
    {
        let exports = outputs::render(&outcome, files, export_json.as_deref(), renderer)?;
        // The summary is printed even when a file cannot be written: the statistics are whole.
        let written = outputs::write_all(&exports.files);
        if !settings.quiet {
            print_summary(&outcome, &exports.terminal, files);
        }
        written?;
    }
    // A signal while the outputs were written let them finish (they describe a whole run);
    // the exit code still says the run was interrupted.
    outcome.interrupted = outcome.interrupted.or(signals.interrupted());
    Ok(outcome)
}

/// The assertions against the summary, on the blocking pool (a script function may be slow).
async fn evaluate(measured: &Measured) -> Vec<Verdict> {
    let plan = measured.setup.plan.clone();
    if plan.assertions.is_empty() {
        return Vec::new();
    }
    let summary = measured.analysis.summary.clone();
    tokio::task::spawn_blocking(move || verdict::evaluate(&plan, &summary))
        .await
        .unwrap_or_default()
}

fn print_summary(outcome: &RunOutcome, terminal: &str, files: &crate::record::RunFiles) {
    let sweep_line = outcome
        .sweep
        .as_ref()
        .map(|s| format!("\n{}", crate::outcome::sweep::describe(s)))
        .unwrap_or_default();
    // A closed stdout (`| head`) is not an error: everything is already on disk.
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}{sweep_line}\n\nraw records: {}\nsummary:     {}\nreports:     {}\n             {}",
        terminal.trim_end(),
        files.raw.display(),
        files.csv.display(),
        files.markdown.display(),
        files.html.display()
    );
}
