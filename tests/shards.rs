//! A sharded run simulated on one machine, as a Kubernetes Indexed Job runs it: four llmbench
//! processes, the same script, each's index from JOB_COMPLETION_INDEX with `--shards 4`, one
//! `--start-at` about 2 s ahead, against one `llmbench mock` in its own process; then
//! `llmbench merge`. Bounded: 200 requests in 2 s.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{MockProcess, all_files, llmbench, only_file};
use llmbench::plan::Arrival;
use llmbench::record::{RequestRecord, read_records};

const RATE: f64 = 100.0;
const SECONDS: f64 = 2.0;
const SHARDS: u32 = 4;

const SCRIPT: &str = r#"
request(#{ prompt: |i| `prompt ${i}`, max_tokens: 4 });
phase("steady", #{ rps: 100, duration: 2, concurrency: 16 });
"#;

/// Runs the four shards into `dir/shard<i>` and returns their results folders.
fn run_shards(dir: &Path, url: &str) -> Vec<PathBuf> {
    let script = dir.join("sharded.rhai");
    std::fs::write(&script, SCRIPT).unwrap();
    let start_at = chrono::Utc::now().timestamp_millis() + 2_000;
    let children: Vec<_> = (0..SHARDS)
        .map(|i| {
            let results = dir.join(format!("shard{i}"));
            let child = llmbench()
                .arg(&script)
                .args(["--url", url, "--shards", "4", "--no-progress"])
                .args(["--no-compare-report", "--start-at", &start_at.to_string()])
                .arg("--results")
                .arg(&results)
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .env("LLMBENCH_NO_NVML", "1")
                .env_remove("LLMBENCH_SHARD")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (results, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(results, child)| {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{}: {err}", results.display());
            results
        })
        .collect()
}

fn merge(args: &[&str], results: &Path) -> std::process::Output {
    let out = llmbench()
        .arg("merge")
        .args(args)
        .arg("--results")
        .arg(results)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn parse(raw: &Path) -> String {
    let out = llmbench().arg("parse").arg(raw).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The percentile columns (pNN, min, max) of a summary CSV, by row.
fn percentiles(csv: &str) -> Vec<Vec<String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| {
            let h = header[i];
            ["_p50", "_p90", "_p95", "_p99", "_p999", "_min", "_max"]
                .iter()
                .any(|s| h.ends_with(s))
        })
        .collect();
    assert!(keep.len() > 20, "{header:?}");
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i].to_owned()).collect()
        })
        .collect()
}

fn metadata(results: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(only_file(results, "runs", "json")).unwrap())
        .unwrap()
}

#[test]
fn four_shards_merge_into_the_single_process_run() {
    let mock = MockProcess::start(&["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "4"]);
    let dir = tempfile::tempdir().unwrap();
    let shards = run_shards(dir.path(), &mock.base_url);

    // Each shard sent exactly its constant arrivals of the global schedule: global request k
    // at k / rate after the phase start, whichever shard sent it.
    let offset = |k: u64| {
        let at = llmbench::schedule::arrival_offsets(RATE, Arrival::Constant, 0)
            .nth(k as usize)
            .unwrap();
        llmbench::units::duration_us(at)
    };
    let mut raws = Vec::new();
    for (i, results) in shards.iter().enumerate() {
        let raw = only_file(results, "raw", "jsonl");
        let records = read_records(&raw).unwrap();
        assert_eq!(records.len(), 50, "shard {i}");
        let first = records.iter().min_by_key(|r| r.id).unwrap();
        assert_eq!(first.id, i as u64);
        let phase_start = first.intended_us - offset(first.id);
        for r in &records {
            assert_eq!(r.shard, Some(i as u32));
            assert_eq!(r.id % 4, i as u64, "request {} dealt to shard {i}", r.id);
            assert_eq!(
                r.intended_us - phase_start,
                offset(r.id),
                "request {}",
                r.id
            );
        }
        raws.push(raw);
    }

    let merged_dir = dir.path().join("merged");
    let glob = format!("{}/shard*", dir.path().display());
    merge(&[&glob], &merged_dir);
    let merged_raw = only_file(&merged_dir, "raw", "jsonl");
    let merged: Vec<RequestRecord> = read_records(&merged_raw).unwrap();

    // Every request the mock saw, once; in intended-start order.
    let seen = mock.stats();
    assert_eq!(merged.len() as u64, seen.received);
    assert_eq!(seen.completed, seen.received);
    let mut ids: Vec<u64> = merged.iter().map(|r| r.id).collect();
    assert!(
        merged
            .windows(2)
            .all(|w| w[0].intended_us <= w[1].intended_us)
    );
    ids.sort();
    assert_eq!(ids, (0..(RATE * SECONDS) as u64).collect::<Vec<_>>());

    // The full offered rate, within 1 %, on the merged clock.
    let meta = metadata(&merged_dir);
    let offered = meta["summary"]["all"]["pace"]["offered_req_per_s"]
        .as_f64()
        .unwrap();
    assert!((offered - RATE).abs() <= RATE * 0.01, "offered {offered}");
    assert_eq!(meta["run"]["shards"].as_array().unwrap().len(), 4);

    // The merged statistics are parse's over the merged records, and its percentiles those of
    // parse over the shards' raw files concatenated.
    let summary = std::fs::read_to_string(only_file(&merged_dir, "summary", "csv")).unwrap();
    assert_eq!(parse(&merged_raw), summary);
    let concatenated = dir.path().join("all.jsonl");
    let text: String = raws
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    std::fs::write(&concatenated, text).unwrap();
    assert_eq!(percentiles(&parse(&concatenated)), percentiles(&summary));

    // Histograms only: the same percentiles as the raw merge.
    let hdr_dir = dir.path().join("hdr");
    merge(&["--summaries-only", &glob], &hdr_dir);
    let hdr_summary = std::fs::read_to_string(only_file(&hdr_dir, "summary", "csv")).unwrap();
    assert_eq!(percentiles(&hdr_summary), percentiles(&summary));
    assert!(
        all_files(&hdr_dir.join("raw")).is_empty(),
        "no records moved"
    );
}

#[test]
fn shards_of_different_plans_or_one_index_twice_are_refused() {
    let mock = MockProcess::start(&["--ttft-ms", "1", "--itl-ms", "1", "--output-tokens", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, script: &str, shard: &str| {
        // One workload name (the script's file stem) for every shard.
        std::fs::create_dir_all(dir.path().join(format!("src-{name}"))).unwrap();
        let path = dir.path().join(format!("src-{name}")).join("w.rhai");
        std::fs::write(&path, script).unwrap();
        let results = dir.path().join(name);
        let out = llmbench()
            .arg(&path)
            .args(["--url", &mock.base_url, "--shard", shard, "--no-progress"])
            .arg("--no-compare-report")
            .arg("--results")
            .arg(&results)
            .env("LLMBENCH_NO_NVML", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        results
    };
    let a = "request(#{ prompt: \"p\", max_tokens: 2 }); phase(\"p\", #{ requests: 4, concurrency: 2 });";
    let b = "request(#{ prompt: \"p\", max_tokens: 3 }); phase(\"p\", #{ requests: 4, concurrency: 2 });";
    let (a0, a1, b1) = (
        run("a0", a, "0/2"),
        run("a1", a, "0/2"),
        run("b1", b, "1/2"),
    );
    for (x, y, says) in [(&a0, &b1, "different runs"), (&a0, &a1, "both shard 0")] {
        let out = llmbench()
            .arg("merge")
            .arg(x)
            .arg(y)
            .arg("--results")
            .arg(dir.path().join("m"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
}
