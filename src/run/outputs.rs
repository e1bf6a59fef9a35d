//! A run's outputs as bytes, and the one writer that puts bytes on disk. Each exporter renders
//! from the `RunOutcome` alone (summary CSV, Markdown and HTML reports, run metadata JSON,
//! `--export-json`); `write_atomic` writes each to a temporary file beside its path and renames
//! it into place, so a reader never sees half a file. The raw records are streamed by their
//! sink during the run, not here.

use std::path::{Path, PathBuf};

use crate::outcome::sweep::DEFAULT_ATTAINMENT;
use crate::record::RunFiles;
use crate::report::export::{RunExport, to_json};
use crate::report::{Files, RenderError, Renderer, ReportContext};
use crate::stats::timeline::Timeline;

use super::RunError;
use super::finish::RunOutcome;

/// One output file's path and contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Everything a run writes at its end, plus the terminal summary it prints.
#[derive(Debug, Clone)]
pub struct Exports {
    pub files: Vec<Export>,
    pub terminal: String,
}

/// Renders every output of `outcome` whose files are `files`; `export_json` is the
/// `--export-json` path, if given.
pub fn render(
    outcome: &RunOutcome,
    files: &RunFiles,
    export_json: Option<&Path>,
    renderer: &Renderer,
) -> Result<Exports, RenderError> {
    let ctx = report_context(outcome, files, &outcome.timeline);
    let report = renderer.run_report(&ctx)?;
    let mut out = vec![
        export(&files.csv, report.csv),
        export(&files.intervals, report.intervals),
        export(&files.markdown, report.markdown),
        export(&files.html, report.html),
    ];
    if let Some(path) = export_json {
        let json = RunExport::new(
            &outcome.info,
            &outcome.summary,
            &outcome.timeline,
            &outcome.warnings,
        )
        .with_outcome(
            outcome.setup.plan.slo,
            &outcome.verdicts,
            outcome.sweep.as_ref(),
        );
        out.push(export(path, to_json(&json)));
    }
    if let Some(state) = &outcome.histograms {
        let json = serde_json::to_string(state).expect("a statistics state serializes");
        out.push(export(&files.histograms, json));
    }
    out.push(export(&files.metadata, metadata(outcome)));
    Ok(Exports {
        files: out,
        terminal: report.terminal,
    })
}

fn export(path: &Path, text: String) -> Export {
    Export {
        path: path.to_owned(),
        bytes: text.into_bytes(),
    }
}

fn report_context<'a>(
    o: &'a RunOutcome,
    files: &RunFiles,
    timeline: &'a Timeline,
) -> ReportContext<'a> {
    ReportContext::new(
        &o.info,
        &o.summary,
        timeline,
        &o.warnings,
        Files::from(files),
    )
    .with_telemetry(&o.summary, timeline, &o.telemetry, &o.readings)
    .with_verdicts(o.setup.plan.slo, &o.verdicts)
    .with_sweep(o.sweep.as_ref(), timeline)
    .with_ramps(
        &o.ramps,
        o.setup.plan.attainment.unwrap_or(DEFAULT_ATTAINMENT),
        timeline,
    )
}

/// `results/runs/<id>.json`: the run, its plan and target (secrets redacted), the client's
/// settings, statistics, telemetry, warnings, assertions and sweep.
fn metadata(o: &RunOutcome) -> String {
    let value = serde_json::json!({
        "run": &o.info,
        "plan": &o.setup.plan,
        "target": &o.setup.target,
        "client": &o.setup.settings.client,
        "summary": &o.summary,
        "telemetry": &o.telemetry,
        "warnings": &o.warnings,
        "assertions": &o.verdicts,
        "sweep": &o.sweep,
    });
    serde_json::to_string_pretty(&value).expect("metadata serializes")
}

/// Writes every export; stops at the first that fails, naming its file.
pub fn write_all(exports: &[Export]) -> Result<(), RunError> {
    exports
        .iter()
        .try_for_each(|e| write_atomic(&e.path, &e.bytes))
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place. On failure
/// the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), RunError> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            RunError::Io {
                what: "cannot write",
                path: path.to_owned(),
                source,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_neither_file_nor_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-folder").join("x.csv");
        assert!(write_atomic(&path, "a").is_err());
        assert!(!path.exists());
        let ok = dir.path().join("x.csv");
        write_atomic(&ok, "a,b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&ok).unwrap(), "a,b\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
