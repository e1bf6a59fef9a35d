//! A finished run read back from disk: its raw records (the source of truth) streamed through
//! the same `Analyzer` the run used, its metadata (`results/runs/<id>.json`) for the run's
//! description and what it amounted to (SLO, assertions, sweep, which phases were ramps) when
//! present, and its telemetry readings. `parse` and `report` both use it, and its report is
//! the one the run wrote.

use std::path::{Path, PathBuf};

use crate::outcome::sweep::{DEFAULT_ATTAINMENT, SweepOutcome};
use crate::outcome::verdict::Verdict;
use crate::plan::Slo;
use crate::record::{RecordReadError, RequestRecord, RunFiles, RunInfo, for_each_record};
use crate::stats::analysis::{Analysis, Analyzer, telemetry_over};
use crate::stats::{PhaseStats, Warning};
use crate::telemetry::Reading;
use crate::telemetry::summary::TelemetrySummary;

use super::sweep_charts::{LoadPoint, RampView, SweepView};
use super::{Files, ReportContext};

/// A finished run, read back from its files.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub info: RunInfo,
    pub analysis: Analysis,
    /// Warnings recomputed from the records and the run's description.
    pub warnings: Vec<Warning>,
    pub files: Files,
    /// Whether `results/runs/<id>.json` was found (otherwise `info` is a stand-in).
    pub has_metadata: bool,
    /// Telemetry readings (`raw/<id>.telemetry.jsonl`, when the run sampled any).
    pub readings: Vec<Reading>,
    pub telemetry: TelemetrySummary,
    /// What reading skipped, one warning each, naming its file: a torn last line of the records
    /// or the telemetry (a crash or a full disk), or a telemetry file that could not be read.
    pub notes: Vec<String>,
    /// What the run amounted to, from its metadata (empty without one).
    pub outcome: StoredOutcome,
}

/// What a run's metadata says it amounted to: its SLO (goodput is recomputed against it), the
/// assertions' verdicts and the capacity sweep's outcome as the run found them.
#[derive(Debug, Clone, Default)]
pub struct StoredOutcome {
    pub slo: Option<Slo>,
    /// The good share (0..=1) a sweep step or ramp window needs to meet the SLO.
    pub attainment: Option<f64>,
    pub verdicts: Vec<Verdict>,
    pub sweep: Option<SweepOutcome>,
}

impl StoredRun {
    /// Its load levels as its report draws them: a capacity sweep's steps, else its first
    /// ramp's windows (empty without either).
    pub fn load_levels(&self) -> Vec<LoadPoint> {
        let (o, t) = (&self.outcome, &self.analysis.timeline);
        if let Some(sweep) = &o.sweep {
            let phases: Vec<&PhaseStats> = self.analysis.summary.phases.iter().collect();
            return SweepView::new(sweep, &phases, o.slo.as_ref(), t).steps;
        }
        let attainment = o.attainment.unwrap_or(DEFAULT_ATTAINMENT);
        self.analysis
            .ramps
            .iter()
            .find_map(|r| RampView::new(r, o.slo.as_ref(), attainment, t))
            .map(|r| r.view.steps)
            .unwrap_or_default()
    }

    /// What the report templates render for this run, telemetry, SLO, assertions, sweep and
    /// ramps included, as the run rendered it.
    pub fn report_context(&self) -> ReportContext<'_> {
        let (summary, timeline) = (&self.analysis.summary, &self.analysis.timeline);
        let o = &self.outcome;
        ReportContext::new(
            &self.info,
            summary,
            timeline,
            &self.warnings,
            self.files.clone(),
        )
        .with_telemetry(summary, timeline, &self.telemetry, &self.readings)
        .with_verdicts(o.slo, &o.verdicts)
        .with_sweep(o.sweep.as_ref(), timeline)
        .with_ramps(
            &self.analysis.ramps,
            o.attainment.unwrap_or(DEFAULT_ATTAINMENT),
            timeline,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Records(#[from] RecordReadError),
    #[error(
        "{}: not llmbench run metadata ({message}); move it aside or rerun the benchmark",
        path.display()
    )]
    Metadata { path: PathBuf, message: String },
    #[error("{}:{line}: not a telemetry reading ({message})", path.display())]
    Telemetry {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The readings of `<results>/raw/<id>.telemetry.jsonl` (none when the file does not exist),
/// and a note when its last line was torn (no newline, cut inside a reading) and skipped.
fn read_telemetry(path: &Path) -> Result<(Vec<Reading>, Option<String>), LoadError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok((Vec::new(), None));
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let mut readings = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(l) {
            Ok(r) => readings.push(r),
            Err(e) if e.is_eof() && i + 1 == lines.len() => {
                let torn = crate::record::TornLine {
                    line: i + 1,
                    bytes: l.len(),
                };
                return Ok((readings, Some(format!("{}: {torn}", path.display()))));
            }
            Err(e) => {
                return Err(LoadError::Telemetry {
                    path: path.to_owned(),
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok((readings, None))
}

/// Reads the run whose raw records are at `raw` (`<results>/raw/<id>.jsonl`).
pub fn load_run(raw: &Path) -> Result<StoredRun, LoadError> {
    let (id, run_files) = RunFiles::of_raw(raw);
    let files = Files::from(&run_files);
    let meta_path = &run_files.metadata;
    // The metadata first: its SLO and ramp phases shape the analysis.
    let meta = match std::fs::read_to_string(meta_path) {
        Ok(text) => Some(parse_metadata(&text, meta_path)?),
        Err(_) => None,
    };
    let (outcome, ramps) = meta
        .as_ref()
        .map(|(_, value)| stored_outcome(value))
        .unwrap_or_default();
    // Streamed: memory does not grow with the number of records.
    let mut analyzer = Analyzer::new().with_slo(outcome.slo).with_ramps(&ramps);
    let mut seen = Seen::default();
    let torn = for_each_record(raw, |r| {
        analyzer.add(r);
        seen.add(r);
    })?;
    let mut notes: Vec<String> = torn
        .iter()
        .map(|t| format!("{}: {t}", raw.display()))
        .collect();
    let analysis = analyzer.finish();
    let has_metadata = meta.is_some();
    let info = match meta {
        Some((info, _)) => info,
        None => seen.stand_in_info(&id),
    };
    let warnings = analysis.summary.warnings(&info.requested());
    // Telemetry is beside the records: a bad telemetry file costs the run its telemetry only.
    let readings = match read_telemetry(&run_files.telemetry) {
        Ok((readings, torn)) => {
            notes.extend(torn);
            readings
        }
        Err(e) => {
            notes.push(format!("{e}; the run is read without its telemetry"));
            Vec::new()
        }
    };
    let telemetry = telemetry_over(&readings, &analysis.summary);
    Ok(StoredRun {
        info,
        analysis,
        warnings,
        files,
        has_metadata,
        readings,
        telemetry,
        notes,
        outcome,
    })
}

/// The description of the run whose raw records are at `raw`, from its metadata file; `None`
/// when that is missing or unreadable.
pub fn read_info(raw: &Path) -> Option<RunInfo> {
    let (_, files) = RunFiles::of_raw(raw);
    let text = std::fs::read_to_string(&files.metadata).ok()?;
    parse_metadata(&text, &files.metadata)
        .ok()
        .map(|(info, _)| info)
}

/// The run's description and the whole metadata document.
fn parse_metadata(text: &str, path: &Path) -> Result<(RunInfo, serde_json::Value), LoadError> {
    let fail = |message: String| LoadError::Metadata {
        path: path.to_owned(),
        message,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| fail(e.to_string()))?;
    let run = value
        .get("run")
        .cloned()
        .ok_or_else(|| fail("no \"run\" field".into()))?;
    let info = serde_json::from_value(run).map_err(|e| fail(e.to_string()))?;
    Ok((info, value))
}

/// What the metadata says the run amounted to, and the indices of its ramp phases (a part
/// missing or in an older shape is left out).
fn stored_outcome(meta: &serde_json::Value) -> (StoredOutcome, Vec<usize>) {
    let plan = &meta["plan"];
    fn field<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Option<T> {
        serde_json::from_value(v.clone()).ok()
    }
    let ramps = plan["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, p)| {
            let ramp = &p["ramp"];
            p["warmup"] != true && (!ramp["rate"].is_null() || !ramp["concurrency"].is_null())
        })
        .map(|(i, _)| i)
        .collect();
    let outcome = StoredOutcome {
        slo: field(&plan["slo"]),
        attainment: plan["attainment"].as_f64(),
        verdicts: field(&meta["assertions"]).unwrap_or_default(),
        sweep: field(&meta["sweep"]),
    };
    (outcome, ramps)
}

/// What the records tell about a run's description, gathered as they stream by.
#[derive(Default)]
struct Seen {
    /// Phase names by index (the last record's name for each).
    phases: Vec<String>,
    last_end_us: u64,
    streamed: bool,
}

impl Seen {
    fn add(&mut self, r: &RequestRecord) {
        if self.phases.len() <= r.phase_index {
            self.phases.resize(r.phase_index + 1, String::new());
        }
        let name = &mut self.phases[r.phase_index];
        if *name != r.phase {
            name.clone_from(&r.phase);
        }
        self.last_end_us = self.last_end_us.max(r.end_us);
        self.streamed |= r.streamed;
    }

    /// A description for a run whose metadata file is missing: what the records can tell.
    fn stand_in_info(self, id: &str) -> RunInfo {
        RunInfo {
            stream: self.streamed,
            wall_s: crate::units::us_to_s(self.last_end_us),
            phases: self.phases.into_iter().filter(|p| !p.is_empty()).collect(),
            ..RunInfo::placeholder(id, "unknown")
        }
    }
}
