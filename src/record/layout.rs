//! The results layout: where a run's files live under a results folder, how a run id is made
//! (`bench_<UTC time>_<target>_<model>_<workload>`, file-safe, never reused), and proving the
//! folders writable before the first request. The one place that spells out folder and file
//! names; the run, `parse` and `report` all go through it.

use std::io;
use std::path::{Path, PathBuf};

use super::RecordWriter;

/// The folders of a results folder, in the order they are made.
pub const FOLDERS: [&str; 4] = ["raw", "summary", "reports", "runs"];

/// Where one run's files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFiles {
    /// `raw/<id>.jsonl`: one record per request.
    pub raw: PathBuf,
    /// `summary/<id>.csv`: statistics per phase.
    pub csv: PathBuf,
    /// `summary/<id>.intervals.csv`: the percentiles' confidence intervals per phase.
    pub intervals: PathBuf,
    /// `reports/<id>.md`
    pub markdown: PathBuf,
    /// `reports/<id>.html`
    pub html: PathBuf,
    /// `runs/<id>.json`: the run's metadata.
    pub metadata: PathBuf,
    /// `raw/<id>.telemetry.jsonl`: telemetry readings, one JSON object per line.
    pub telemetry: PathBuf,
    /// `summary/<id>.hdr.json`: a shard run's histograms and counters (`stats::state`).
    pub histograms: PathBuf,
}

impl RunFiles {
    /// The files of run `id` under the results folder `results`.
    pub fn new(results: &Path, id: &str) -> Self {
        Self {
            raw: results.join("raw").join(format!("{id}.jsonl")),
            csv: results.join("summary").join(format!("{id}.csv")),
            intervals: results.join("summary").join(format!("{id}.intervals.csv")),
            markdown: results.join("reports").join(format!("{id}.md")),
            html: results.join("reports").join(format!("{id}.html")),
            metadata: results.join("runs").join(format!("{id}.json")),
            telemetry: results.join("raw").join(telemetry_name(id)),
            histograms: results.join("summary").join(format!("{id}.hdr.json")),
        }
    }

    /// The files of the run whose raw records are at `raw` (`<results>/raw/<id>.jsonl`, or
    /// anywhere: the others are looked for beside the folder holding it).
    pub fn of_raw(raw: &Path) -> (String, Self) {
        let id = raw
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        let results = raw
            .parent()
            .and_then(Path::parent)
            .map(Path::to_owned)
            .unwrap_or_default();
        let mut files = Self::new(&results, &id);
        files.raw = raw.to_owned();
        files.telemetry = raw.with_file_name(telemetry_name(&id));
        (id, files)
    }
}

fn telemetry_name(id: &str) -> String {
    format!("{id}.telemetry.jsonl")
}

/// Creates the result folders and proves each is writable (a probe file, removed at once).
pub fn check_writable(results: &Path) -> Result<(), (PathBuf, io::Error)> {
    for sub in FOLDERS {
        let dir = results.join(sub);
        check_folder_writable(&dir).map_err(|e| (dir, e))?;
    }
    Ok(())
}

/// Creates `dir` if needed and proves a file can be written there.
pub fn check_folder_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".llmbench-probe-{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
}

/// The id of a run started at `started` against `target` with `model` running `workload`,
/// before any suffix.
pub fn base_id(
    started: &chrono::DateTime<chrono::Utc>,
    target: &str,
    model: &str,
    workload: &str,
) -> String {
    format!(
        "bench_{}_{}_{}_{}",
        started.format("%Y%m%dT%H%M%SZ"),
        sanitize(target),
        sanitize(model),
        sanitize(workload)
    )
}

/// Claims a run id starting with `base` under `results` by creating its raw file (a `-2`,
/// `-3`, … suffix when taken): a run never overwrites another.
pub fn claim(
    results: &Path,
    base: &str,
) -> Result<(String, RunFiles, RecordWriter), (PathBuf, io::Error)> {
    for sub in FOLDERS {
        let dir = results.join(sub);
        std::fs::create_dir_all(&dir).map_err(|e| (dir, e))?;
    }
    for n in 1.. {
        let id = if n == 1 {
            base.to_owned()
        } else {
            format!("{base}-{n}")
        };
        let files = RunFiles::new(results, &id);
        match RecordWriter::create_new(&files.raw) {
            Ok(w) => return Ok((id, files, w)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err((files.raw, e)),
        }
    }
    unreachable!("some suffix is free")
}

/// Keeps letters, digits, `.`, `_` and `-`; anything else becomes `-`.
pub fn sanitize(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_file_safe() {
        assert_eq!(sanitize("meta-llama/Llama 3.1"), "meta-llama-Llama-3.1");
    }

    #[test]
    fn a_raw_file_names_its_run_and_its_siblings() {
        let (id, f) = RunFiles::of_raw(Path::new("res/raw/bench_x.jsonl"));
        assert_eq!(id, "bench_x");
        assert_eq!(f, RunFiles::new(Path::new("res"), "bench_x"));
    }

    #[test]
    fn a_taken_id_gets_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let (a, ..) = claim(dir.path(), "bench_t").unwrap();
        let (b, ..) = claim(dir.path(), "bench_t").unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("bench_t", "bench_t-2"));
    }
}
