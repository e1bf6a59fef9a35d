//! The third stage of a run, pure: from what was measured (and the assertions' verdicts, which
//! the pipeline evaluates off the request thread so a signal can cut them short) to the
//! `RunOutcome`: telemetry over the measured windows, the sweep's outcome, the warnings and the
//! run metadata. Exporters render the outcome; nothing here touches a file.

use crate::clock::Clock;
use crate::outcome::sweep::{self, SweepOutcome};
use crate::outcome::verdict::Verdict;
use crate::plan::Prompt;
use crate::record::{Requested, RunFiles, RunInfo};
use crate::stats::analysis::telemetry_over;
use crate::stats::timeline::Timeline;
use crate::stats::{Summary, Warning};
use crate::telemetry::Reading;
use crate::telemetry::summary::TelemetrySummary;

use super::measure::Measured;
use super::prepare::RunSetup;
use super::signals::Interrupt;

/// How a run went: everything its outputs are rendered from.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub setup: RunSetup,
    /// The run metadata's description of the run.
    pub info: RunInfo,
    pub summary: Summary,
    pub timeline: Timeline,
    /// Telemetry over the measured windows (empty when nothing was sampled).
    pub telemetry: TelemetrySummary,
    pub readings: Vec<Reading>,
    pub warnings: Vec<Warning>,
    /// The script's assertions, evaluated against `summary`.
    pub verdicts: Vec<Verdict>,
    /// What a capacity sweep found, if the plan held one.
    pub sweep: Option<SweepOutcome>,
    /// The plan's ramp phases, cut into windows.
    pub ramps: Vec<crate::stats::ramp::RampWindows>,
    /// The signal that stopped the run, if one did.
    pub interrupted: Option<Interrupt>,
    /// The prompt generator failed mid-run (a script error).
    pub feed_error: Option<String>,
    /// A shard run's statistics state, for `llmbench merge --summaries-only`.
    pub histograms: Option<crate::stats::state::StatsState>,
}

impl RunOutcome {
    pub fn run_id(&self) -> &str {
        &self.setup.run_id
    }

    /// The run's files; `None` for a run that wrote nothing.
    pub fn files(&self) -> Option<&RunFiles> {
        self.setup.files.as_ref()
    }

    /// The run's clock: record stamps are microseconds since its origin.
    pub fn clock(&self) -> Clock {
        self.setup.clock
    }
}

/// Turns what was measured into the outcome. `verdicts` is `None` when a signal stopped the
/// run before or while its assertions were evaluated (they are then reported as not evaluated).
pub fn finish(
    m: Measured,
    verdicts: Option<Vec<Verdict>>,
    interrupted: Option<Interrupt>,
) -> RunOutcome {
    let setup = m.setup;
    let plan = &setup.plan;
    let summary = m.analysis.summary;
    let telemetry = telemetry_over(&m.readings, &summary);
    let sweep = sweep::outcome(
        &m.ran_phases,
        m.saturation,
        &summary,
        plan.slo.as_ref(),
        plan.attainment.unwrap_or(sweep::DEFAULT_ATTAINMENT),
    );
    let requested = Requested {
        // Requests that each asked for their own length have no one length to check.
        max_tokens: plan
            .request
            .max_tokens
            .filter(|_| !summary.varied_max_tokens),
        // A replayed trace sends its own prompts.
        fixed_prompt: matches!(plan.request.prompt, Prompt::Text(_))
            && plan.phases.iter().any(|p| p.replay.is_none()),
    };
    let mut warnings = Vec::new();
    if let Some(e) = &m.feed_error {
        warnings.push(Warning::PromptGeneratorFailed { error: e.clone() });
    }
    if let Some((error, kept)) = &m.write_error {
        warnings.push(Warning::RawWriteFailed {
            error: error.clone(),
            kept: *kept,
        });
    }
    warnings.extend(summary.warnings(&requested));
    warnings.extend(m.scrape_failures.iter().map(|f| Warning::ScrapeFailed {
        url: f.url.clone(),
        failed: f.failed,
        tried: f.tried,
        error: f.error.clone(),
    }));
    if let Some(share) = m.busy_share.filter(|s| *s >= crate::host::BUSY_WARNING) {
        warnings.push(Warning::BusyRequestThread { share });
    }
    if verdicts.is_none() && !plan.assertions.is_empty() {
        warnings.push(Warning::AssertionsNotEvaluated);
    }
    let shard = shard_run(&setup, m.start_late_ms);
    if let Some(s) = &shard
        && let Some(late_ms) = s.late_ms.filter(|l| *l > crate::stats::START_LATE_MS)
    {
        warnings.push(Warning::ShardStartedLate {
            shard: format!("{}/{}", s.index, s.count),
            late_ms,
        });
    }
    let info = RunInfo {
        id: setup.run_id.clone(),
        workload: plan.workload.clone(),
        script: setup.settings.label.display().to_string(),
        target: setup.target.name.clone(),
        base_url: crate::redact::public_url(&setup.target.base_url),
        model: setup.model.clone(),
        endpoint: plan.request.endpoint.name().into(),
        stream: plan.request.stream,
        mock: plan.target.is_none(),
        started_at: setup
            .started
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        wall_s: m.wall_s,
        interrupted: interrupted.is_some(),
        llmbench_version: env!("CARGO_PKG_VERSION").into(),
        host: crate::host::description(),
        phases: m.ran_phases.iter().map(|p| p.describe()).collect(),
        max_tokens: requested.max_tokens,
        fixed_prompt: requested.fixed_prompt,
        trial: setup.settings.trial.clone(),
        labels: plan.labels.clone(),
        clock_anchor_unix_us: Some(setup.started.timestamp_micros()),
        shard,
        shards: Vec::new(),
    };
    RunOutcome {
        info,
        timeline: m.analysis.timeline,
        ramps: m.analysis.ramps,
        telemetry,
        readings: m.readings,
        warnings,
        verdicts: verdicts.unwrap_or_default(),
        sweep,
        interrupted,
        feed_error: m.feed_error,
        histograms: m.histograms,
        summary,
        setup,
    }
}

/// What the run metadata records of a shard run: which shard, of what plan, its clock anchor
/// and how late it started.
fn shard_run(setup: &RunSetup, late_ms: Option<f64>) -> Option<crate::record::ShardRun> {
    let shard = setup.settings.shard?;
    Some(crate::record::ShardRun {
        index: shard.index,
        count: shard.count,
        run_id: setup.run_id.clone(),
        plan: crate::plan::fingerprint(&setup.plan),
        clock_anchor_unix_us: setup.started.timestamp_micros(),
        start_at: setup
            .settings
            .start_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        late_ms,
        clock_error: crate::host::clock_error(),
    })
}
