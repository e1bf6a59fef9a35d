//! Where a run's outputs go: the run id, the result folders (checked writable before the first
//! request), the raw records file (never overwriting another run), and atomic writes of the
//! summary, reports and metadata.

use std::path::{Path, PathBuf};

use crate::plan::{Plan, Target};
use crate::record::RecordWriter;

use super::RunError;

/// Where a run's outputs go.
#[derive(Debug, Clone)]
pub struct RunFiles {
    pub raw: PathBuf,
    pub csv: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub metadata: PathBuf,
    /// Telemetry readings, one JSON object per line.
    pub telemetry: PathBuf,
}

impl RunFiles {
    fn new(results: &Path, run_id: &str) -> Self {
        Self {
            raw: results.join("raw").join(format!("{run_id}.jsonl")),
            csv: results.join("summary").join(format!("{run_id}.csv")),
            markdown: results.join("reports").join(format!("{run_id}.md")),
            html: results.join("reports").join(format!("{run_id}.html")),
            metadata: results.join("runs").join(format!("{run_id}.json")),
            telemetry: results
                .join("raw")
                .join(format!("{run_id}.telemetry.jsonl")),
        }
    }
}

/// Creates the output folders and proves each is writable (a probe file, removed at once).
pub(super) fn check_results_writable(results: &Path) -> Result<(), RunError> {
    for sub in ["raw", "summary", "reports", "runs"] {
        let dir = results.join(sub);
        let probe = dir.join(format!(".llmbench-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&probe, b""))
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|source| RunError::Io {
                what: "cannot write into the results folder (pass --results DIR to use another)",
                path: dir.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Makes the run id, creates the output folders and opens the raw file (never overwriting).
pub(super) fn open_outputs(
    results: &Path,
    started: &chrono::DateTime<chrono::Utc>,
    target: &Target,
    model: &str,
    plan: &Plan,
) -> Result<(String, RunFiles, RecordWriter), RunError> {
    for sub in ["raw", "summary", "reports", "runs"] {
        let dir = results.join(sub);
        std::fs::create_dir_all(&dir).map_err(|source| RunError::Io {
            what: "cannot create the results folder (pass --results DIR to use another)",
            path: dir.clone(),
            source,
        })?;
    }
    let base = format!(
        "bench_{}_{}_{}_{}",
        started.format("%Y%m%dT%H%M%SZ"),
        sanitize(&target.name),
        sanitize(model),
        sanitize(&plan.workload)
    );
    for n in 1.. {
        let run_id = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let files = RunFiles::new(results, &run_id);
        match RecordWriter::create_new(&files.raw) {
            Ok(w) => return Ok((run_id, files, w)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(RunError::Io {
                    what: "cannot create the raw records file (pass --results DIR to use another folder)",
                    path: files.raw,
                    source,
                });
            }
        }
    }
    unreachable!("some suffix is free")
}

/// Keeps letters, digits, `.`, `_` and `-`; anything else becomes `-`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Writes `text` to a temporary file beside `path`, then renames it into place.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), RunError> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| RunError::Io {
            what: "cannot write",
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_file_safe() {
        assert_eq!(sanitize("meta-llama/Llama 3.1"), "meta-llama-Llama-3.1");
    }
}
