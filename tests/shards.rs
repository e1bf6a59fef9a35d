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

/// Runs the four shards of `SCRIPT` into `dir/shard<i>` and returns their results folders.
fn run_shards(dir: &Path, url: &str) -> Vec<PathBuf> {
    run_shards_of(dir, url, SCRIPT, SHARDS)
}

/// Runs `count` shards of `script` (written to `dir`, so its files are found there) into
/// `dir/shard<i>`, each's index from JOB_COMPLETION_INDEX, one `--start-at` 2 s ahead.
fn run_shards_of(dir: &Path, url: &str, script: &str, count: u32) -> Vec<PathBuf> {
    let path = dir.join("sharded.rhai");
    std::fs::write(&path, script).unwrap();
    let start_at = chrono::Utc::now().timestamp_millis() + 2_000;
    let children: Vec<_> = (0..count)
        .map(|i| {
            let results = dir.join(format!("shard{i}"));
            let child = llmbench()
                .arg(&path)
                .args([
                    "--url",
                    url,
                    "--shards",
                    &count.to_string(),
                    "--no-progress",
                ])
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

#[test]
fn sessions_are_dealt_by_session() {
    let mock = MockProcess::start(&["--ttft-ms", "2", "--itl-ms", "1", "--output-tokens", "3"]);
    let dir = tempfile::tempdir().unwrap();
    // 4 users × 3-turn sessions, 12 turns: one process runs sessions 0-3; two shards run two
    // users and 6 turns each.
    let script = r#"
request(#{ max_tokens: 3, prompt: session(#{
    turns: 3, think_ms: 5,
    first_turn: |s, rng| `I am user ${s}.`,
    next_turn: |s, k, rng| `Question ${k} from ${s}`,
}) });
phase("chat", #{ requests: 12, concurrency: 4 });
"#;
    run_shards_of(dir.path(), &mock.base_url, script, 2);
    let merged_dir = dir.path().join("merged");
    merge(&[&format!("{}/shard*", dir.path().display())], &merged_dir);
    let merged = read_records(&only_file(&merged_dir, "raw", "jsonl")).unwrap();
    assert_eq!(merged.len(), 12);
    let mut turns: Vec<(u64, u32)> = Vec::new();
    for r in &merged {
        let session = r.session.expect("a session turn");
        // Session s is shard s mod 2's, every turn of it.
        assert_eq!(r.shard, Some((session % 2) as u32), "{r:?}");
        turns.push((session, r.turn.unwrap()));
    }
    turns.sort();
    let want: Vec<(u64, u32)> = (0..4).flat_map(|s| (0..3).map(move |k| (s, k))).collect();
    assert_eq!(turns, want);
    // The ids are unique, and the mock saw each turn once, with its session's headers.
    let mut ids: Vec<u64> = merged.iter().map(|r| r.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12);
    let seen = mock.timings();
    assert_eq!(seen.len(), 12);
    for r in &merged {
        let t = seen.iter().find(|t| t.id == r.id).unwrap();
        assert_eq!((t.session, t.turn), (r.session, r.turn));
    }
}

#[test]
fn trace_lines_are_dealt_by_line() {
    let mock = MockProcess::start(&["--ttft-ms", "2", "--itl-ms", "1", "--output-tokens", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/data");
    std::fs::copy(
        data.join("mooncake-trace.jsonl"),
        dir.path().join("trace.jsonl"),
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join("trace.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let speed = 4.0;
    let script = format!(
        r#"trace("trace.jsonl", #{{ format: "mooncake", speed: {speed:.1}, encoding: "cl100k_base" }});"#
    );
    let shards = run_shards_of(dir.path(), &mock.base_url, &script, 3);
    let at = |k: usize| lines[k]["timestamp"].as_f64().unwrap();
    for (i, results) in shards.iter().enumerate() {
        // Within a shard, each of its lines at the trace's own time, exactly.
        let records = read_records(&only_file(results, "raw", "jsonl")).unwrap();
        let first = records.iter().min_by_key(|r| r.id).unwrap();
        assert_eq!(first.id, i as u64);
        for r in &records {
            let want_us = (at(r.id as usize) - at(i)) / speed * 1000.0;
            let got_us = (r.intended_us - first.intended_us) as f64;
            assert!(
                (got_us - want_us).abs() <= 2.0,
                "line {}: {got_us} µs",
                r.id
            );
        }
    }
    let merged_dir = dir.path().join("merged");
    merge(&[&format!("{}/shard*", dir.path().display())], &merged_dir);
    let merged = read_records(&only_file(&merged_dir, "raw", "jsonl")).unwrap();
    assert_eq!(merged.len(), lines.len(), "every line replayed once");
    let seen = mock.timings();
    assert_eq!(seen.len(), lines.len());
    let first = merged.iter().map(|r| r.intended_us).min().unwrap();
    for r in &merged {
        // Request k is line k, sent by shard k mod 3 at the line's own time.
        let k = r.id as usize;
        assert_eq!(r.shard, Some((k % 3) as u32));
        let want_us = (at(k) - at(0)) / speed * 1000.0;
        let got_us = (r.intended_us - first) as f64;
        // Within a shard exact; across shards as close as their wall clocks' anchors and
        // their starts at --start-at (a busy machine: milliseconds).
        assert!(
            (got_us - want_us).abs() <= 20_000.0,
            "line {k}: {got_us} µs, want {want_us}"
        );
        let t = seen.iter().find(|t| t.id == r.id).unwrap();
        assert_eq!(
            t.prompt_tokens,
            lines[k]["input_length"].as_u64().unwrap(),
            "line {k}"
        );
    }
}
