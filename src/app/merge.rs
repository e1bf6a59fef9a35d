//! `llmbench merge SHARD_RUN...`: joins the shard runs of one sharded run (`--shard I/N`) into
//! one run with the ordinary results layout.
//!
//! The shards are found (run ids, raw record files, results folders, or globs of these) and
//! checked: each must be a shard run, all of one plan (the plan fingerprint in their metadata)
//! and one shard count, no index twice (a missing index is a warning). Their records are put on
//! one clock (each shard's stamps moved by its clock anchor's distance from the earliest
//! anchor), sorted by intended start (then shard and id) and written as the merged run's raw
//! file, each keeping its `shard`. The merged run is then read back exactly as `llmbench parse`
//! reads a run (`report::stored::load_run`), so its statistics are those of `parse` over the
//! concatenated records, and its summary, reports and metadata are written from that.
//! Shard 0's telemetry (the one that scraped) comes along on the merged clock.
//! `--summaries-only` combines the shards' histogram files instead (`merge_summaries`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::cli::MergeArgs;
use crate::record::{RequestRecord, RunFiles, RunInfo, ShardRun, layout};
use crate::report::stored::{load_run, read_info};
use crate::run::write_atomic;
use crate::settings::templates_folder;

/// One shard run to merge: its raw file, its description, and its shard.
pub struct ShardInput {
    pub raw: PathBuf,
    pub info: RunInfo,
    pub shard: ShardRun,
}

impl ShardInput {
    /// µs from the merged clock's origin (`origin`, the earliest anchor) to this shard's.
    pub fn offset_us(&self, origin: i64) -> u64 {
        (self.shard.clock_anchor_unix_us - origin).max(0) as u64
    }
}

/// The shard runs `args` name, checked (see `checked`).
pub fn shards(args: &MergeArgs) -> Result<Vec<ShardInput>, String> {
    find_shards(&args.runs, &args.results).and_then(|raws| checked(&raws))
}

/// The raw record files `specs` name: a raw file, a results folder (every run in its `raw/`),
/// a folder of raw files, a run id under `results/raw/`, or a glob (`*`, `?`) of these.
pub(super) fn find_shards(specs: &[String], results: &Path) -> Result<Vec<PathBuf>, String> {
    let mut raws = Vec::new();
    for spec in specs {
        if spec.contains(['*', '?']) {
            let matched = glob(spec);
            if matched.is_empty() {
                return Err(format!("{spec:?} matches nothing; check the pattern"));
            }
            // A pattern's matches are folders and raw files (a script beside them is not a run).
            for m in matched.iter().filter(|m| m.is_dir() || is_raw_file(m)) {
                raws.extend(runs_at(m, results)?);
            }
        } else {
            raws.extend(runs_at(Path::new(spec), results)?);
        }
    }
    let mut seen = BTreeSet::new();
    raws.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(raws)
}

/// The runs at `path`: a raw file, every raw file in a folder (or its `raw/`), or a run id.
fn runs_at(path: &Path, results: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    if path.is_dir() {
        let dir = if path.join("raw").is_dir() {
            path.join("raw")
        } else {
            path.to_owned()
        };
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: cannot read the folder: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_raw_file(p))
            .collect();
        found.sort();
        if found.is_empty() {
            return Err(format!("{}: no raw record files in it", dir.display()));
        }
        return Ok(found);
    }
    let spec = path.to_string_lossy();
    super::results::resolve_run(&spec, results).map(|p| vec![p])
}

fn is_raw_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.ends_with(".jsonl") && !name.ends_with(".telemetry.jsonl")
}

/// The paths matching `pattern`, whose components may hold `*` (any run of characters) and
/// `?` (one character), sorted.
fn glob(pattern: &str) -> Vec<PathBuf> {
    let absolute = pattern.starts_with('/');
    let mut paths = vec![if absolute {
        PathBuf::from("/")
    } else {
        PathBuf::from(".")
    }];
    for part in pattern.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let mut next = Vec::new();
        for base in &paths {
            if !part.contains(['*', '?']) {
                let p = base.join(part);
                if p.exists() {
                    next.push(p);
                }
                continue;
            }
            let Ok(entries) = std::fs::read_dir(base) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if wildcard(part.as_bytes(), name.as_bytes()) && !name.starts_with('.') {
                    next.push(base.join(name));
                }
            }
        }
        next.sort();
        paths = next;
    }
    let strip = |p: PathBuf| p.strip_prefix(".").map(Path::to_owned).unwrap_or(p);
    paths.into_iter().map(strip).collect()
}

/// Whether `name` matches `pat` (`*`: any run, `?`: any one byte).
fn wildcard(pat: &[u8], name: &[u8]) -> bool {
    match (pat.split_first(), name.split_first()) {
        (None, _) => name.is_empty(),
        (Some((b'*', rest)), _) => {
            wildcard(rest, name) || (!name.is_empty() && wildcard(pat, &name[1..]))
        }
        (Some((b'?', rest)), Some((_, tail))) => wildcard(rest, tail),
        (Some((p, rest)), Some((n, tail))) => p == n && wildcard(rest, tail),
        (Some(_), None) => false,
    }
}

/// Reads each run's description and checks the set: shard runs of one plan and count, each
/// index once. A missing index is said on stderr. Sorted by shard index.
pub(super) fn checked(raws: &[PathBuf]) -> Result<Vec<ShardInput>, String> {
    if raws.is_empty() {
        return Err("no shard runs given: llmbench merge results/raw/<id>_shard*.jsonl".into());
    }
    let mut inputs = Vec::new();
    for raw in raws {
        let info = read_info(raw).ok_or_else(|| {
            format!(
                "{}: no run metadata beside it (runs/<id>.json); merge needs each shard's metadata",
                raw.display()
            )
        })?;
        let shard = info.shard.clone().ok_or_else(|| {
            format!(
                "{}: not a shard run (its metadata names no shard); run each shard with the shard flag, I/N",
                raw.display()
            )
        })?;
        inputs.push(ShardInput {
            raw: raw.clone(),
            info,
            shard,
        });
    }
    inputs.sort_by_key(|i| i.shard.index);
    let first = &inputs[0];
    for i in &inputs[1..] {
        if i.shard.plan != first.shard.plan || i.shard.count != first.shard.count {
            return Err(format!(
                "{} and {} are shards of different runs (plan {} of {} shards against plan {} of {}): merge only the shards of one plan, started together",
                first.raw.display(),
                i.raw.display(),
                first.shard.plan,
                first.shard.count,
                i.shard.plan,
                i.shard.count
            ));
        }
    }
    for w in inputs.windows(2) {
        if w[0].shard.index == w[1].shard.index {
            return Err(format!(
                "{} and {} are both shard {} of {}: each shard may be merged once; leave one out",
                w[0].raw.display(),
                w[1].raw.display(),
                w[0].shard.index,
                w[0].shard.count
            ));
        }
    }
    let have: BTreeSet<u32> = inputs.iter().map(|i| i.shard.index).collect();
    let missing: Vec<String> = (0..first.shard.count)
        .filter(|i| !have.contains(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "llmbench: warning: merging {} of {} shards (missing: {}); the merged run has only their share of the load",
            inputs.len(),
            first.shard.count,
            missing.join(", ")
        );
    }
    Ok(inputs)
}

/// The merged run's clock origin: the earliest shard anchor (µs since the Unix epoch).
pub(super) fn origin(inputs: &[ShardInput]) -> i64 {
    inputs
        .iter()
        .map(|i| i.shard.clock_anchor_unix_us)
        .min()
        .unwrap_or(0)
}

/// The merged run's description: shard 0's (or the first's), on the merged clock, with every
/// shard listed.
pub(super) fn merged_info(inputs: &[ShardInput], id: &str) -> RunInfo {
    let origin = origin(inputs);
    let mut info = inputs[0].info.clone();
    info.id = id.to_owned();
    info.started_at = chrono::DateTime::from_timestamp_micros(origin)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    info.clock_anchor_unix_us = Some(origin);
    info.wall_s = inputs
        .iter()
        .map(|i| crate::units::us_to_s(i.offset_us(origin)) + i.info.wall_s)
        .fold(0.0, f64::max);
    info.interrupted = inputs.iter().any(|i| i.info.interrupted);
    let hosts: BTreeSet<&str> = inputs.iter().map(|i| i.info.host.as_str()).collect();
    info.host = hosts.into_iter().collect::<Vec<_>>().join("; ");
    info.shard = None;
    info.shards = inputs.iter().map(|i| i.shard.clone()).collect();
    info
}

/// The merged run's base id: the first shard's without its shard suffix.
pub(super) fn merged_base(inputs: &[ShardInput]) -> String {
    let id = &inputs[0].shard.run_id;
    let suffix = format!("_shard{}of{}", inputs[0].shard.index, inputs[0].shard.count);
    match id.find(&suffix) {
        Some(at) => format!("{}_merged", &id[..at]),
        None => format!("{id}_merged"),
    }
}

/// Every shard's records on the merged clock, in intended-start order (shard, then id, break
/// ties).
pub(super) fn merged_records(inputs: &[ShardInput]) -> Result<Vec<RequestRecord>, String> {
    let origin = origin(inputs);
    let mut all = Vec::new();
    for i in inputs {
        let by = i.offset_us(origin);
        crate::record::for_each_record(&i.raw, |r| {
            let mut r = r.clone();
            r.rebase(by);
            r.shard = Some(i.shard.index);
            all.push(r);
        })
        .map_err(|e| e.to_string())?;
    }
    all.sort_by_key(|r| (r.intended_us, r.shard, r.id));
    Ok(all)
}

/// The raw path: the merged raw file, then the ordinary statistics and reports read from it.
pub(super) fn merge_records(inputs: &[ShardInput], args: &MergeArgs) -> Result<(), String> {
    let records = merged_records(inputs)?;
    let (id, files, mut writer) = layout::claim(&args.results, &merged_base(inputs))
        .map_err(|(p, e)| format!("cannot create {}: {e} (pass --results DIR)", p.display()))?;
    for r in &records {
        writer
            .append(r)
            .map_err(|e| format!("{}: {e}", writer.path().display()))?;
    }
    drop(writer);
    copy_telemetry(inputs, &files)?;
    let info = merged_info(inputs, &id);
    write_metadata(inputs, &files, &info, None)?;
    // Read back exactly as `llmbench parse` reads a run.
    let run = load_run(&files.raw).map_err(|e| e.to_string())?;
    let renderer = crate::report::Renderer::new(templates_folder(args.templates.as_ref()));
    let report = renderer
        .run_report(&run.report_context())
        .map_err(|e| e.to_string())?;
    for (path, text) in [
        (&files.csv, &report.csv),
        (&files.intervals, &report.intervals),
        (&files.markdown, &report.markdown),
        (&files.html, &report.html),
    ] {
        write_atomic(path, text).map_err(|e| e.to_string())?;
    }
    write_metadata(
        inputs,
        &files,
        &run.info,
        Some((&run.analysis.summary, &run.warnings)),
    )?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}\n\nmerged {} shards ({} records)\nraw records: {}\nsummary:     {}\nreports:     {}\n             {}",
        report.terminal.trim_end(),
        inputs.len(),
        records.len(),
        files.raw.display(),
        files.csv.display(),
        files.markdown.display(),
        files.html.display()
    );
    Ok(())
}

/// `runs/<id>.json` of the merged run: shard 0's plan and target, the merged description, and
/// (once computed) the statistics and warnings.
pub(super) fn write_metadata(
    inputs: &[ShardInput],
    files: &RunFiles,
    info: &RunInfo,
    stats: Option<(&crate::stats::Summary, &[crate::stats::Warning])>,
) -> Result<(), String> {
    let (_, first) = RunFiles::of_raw(&inputs[0].raw);
    let mut value: serde_json::Value = std::fs::read_to_string(&first.metadata)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    let map = value
        .as_object_mut()
        .ok_or("shard metadata is not an object")?;
    for key in ["summary", "telemetry", "warnings", "assertions", "sweep"] {
        map.remove(key);
    }
    map.insert(
        "run".into(),
        serde_json::to_value(info).map_err(|e| e.to_string())?,
    );
    if let Some((summary, warnings)) = stats {
        map.insert(
            "summary".into(),
            serde_json::to_value(summary).map_err(|e| e.to_string())?,
        );
        map.insert(
            "warnings".into(),
            serde_json::to_value(warnings).map_err(|e| e.to_string())?,
        );
    }
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    write_atomic(&files.metadata, text).map_err(|e| e.to_string())
}

/// Shard 0's telemetry readings (the shard that scrapes), moved onto the merged clock.
fn copy_telemetry(inputs: &[ShardInput], files: &RunFiles) -> Result<(), String> {
    let Some(zero) = inputs.iter().find(|i| i.shard.index == 0) else {
        return Ok(());
    };
    let (_, shard_files) = RunFiles::of_raw(&zero.raw);
    let Ok(text) = std::fs::read_to_string(&shard_files.telemetry) else {
        return Ok(());
    };
    let by = zero.offset_us(origin(inputs));
    let mut out = String::new();
    for line in text.lines() {
        if let Ok(mut r) = serde_json::from_str::<crate::telemetry::Reading>(line) {
            r.t_us += by;
            out.push_str(&serde_json::to_string(&r).map_err(|e| e.to_string())?);
            out.push('\n');
        }
    }
    write_atomic(&files.telemetry, out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_and_stars() {
        assert!(wildcard(
            b"bench_*_shard?of4.jsonl",
            b"bench_x_shard2of4.jsonl"
        ));
        assert!(!wildcard(
            b"bench_*_shard?of4.jsonl",
            b"bench_x_shard12of4.jsonl"
        ));
        assert!(wildcard(b"*", b""));
        assert!(!wildcard(b"a*b", b"ac"));
    }

    #[test]
    fn a_glob_finds_files_across_folders() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["r0", "r1", "x"] {
            std::fs::create_dir_all(dir.path().join(d).join("raw")).unwrap();
            std::fs::write(dir.path().join(d).join("raw").join("a.jsonl"), "").unwrap();
        }
        let pattern = format!("{}/r*/raw/*.jsonl", dir.path().display());
        let found = glob(&pattern);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].ends_with("r0/raw/a.jsonl"));
    }
}
