//! The `llmbench` binary as a user runs it: the quick start, exit codes, secrets, and the
//! flags every load-running command shares.

mod common;

use std::path::Path;
use std::process::Command;

use common::{all_files, llmbench, only_file, result_files};

#[test]
fn the_quick_start_writes_the_four_files_with_the_documented_columns() {
    let results = tempfile::tempdir().unwrap();
    let out = llmbench()
        .args(["scripts/quickstart.rhai", "--no-progress", "--results"])
        .arg(results.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("built-in mock server at http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stdout.contains("TTFT p50"), "a summary table: {stdout}");

    // The run's six files (raw, summary, intervals, two reports, metadata), and the
    // comparison report over every run in the folder.
    let files = all_files(results.path());
    assert_eq!(files.len(), 8, "{files:?}");
    let comparison = results.path().join("reports/benchmark_report");
    assert!(
        comparison.with_extension("md").is_file() && comparison.with_extension("html").is_file()
    );
    let raw = only_file(results.path(), "raw", "jsonl");
    let csv = only_file(results.path(), "summary", "csv");
    let run_report = |ext: &str| {
        let found: Vec<_> = all_files(&results.path().join("reports"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .filter(|p| !p.to_string_lossy().contains("benchmark_report"))
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found[0].clone()
    };
    let md = run_report("md");
    let html = run_report("html");
    let meta = only_file(results.path(), "runs", "json");
    assert!(
        raw.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("bench_")
    );

    let records = llmbench::record::read_records(&raw).unwrap();
    assert!(records.len() > 200, "{}", records.len());
    assert!(
        records
            .iter()
            .all(|r| r.outcome == llmbench::record::Outcome::Ok)
    );

    // The CSV has exactly the documented columns, and every one is documented in the README.
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv_text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header, llmbench::report::csv_columns());
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let documented = |name: &str| readme.contains(&format!("`{name}`"));
    for col in &header {
        let ok = documented(col)
            || llmbench::stats::STAT_KEYS.iter().any(|stat| {
                col.strip_suffix(&format!("_{stat}"))
                    .is_some_and(|metric| documented(metric) && documented(stat))
            })
            || readme.contains(&format!("`{col}`,"));
        assert!(ok, "column {col} is not documented in the README");
    }
    let phases: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(phases, vec!["steady", "busy", "all"], "warmup has no row");

    let md_text = std::fs::read_to_string(&md).unwrap();
    assert!(md_text.contains("| steady |") && md_text.contains("TTFT p50 ms"));
    let html_text = std::fs::read_to_string(&html).unwrap();
    assert!(html_text.starts_with("<!DOCTYPE html>") && html_text.contains("<table>"));
    assert!(
        !html_text.contains("http://") || html_text.contains("127.0.0.1"),
        "no external resources"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert_eq!(meta["run"]["mock"], true);

    // No warning fires on the quick start: the mock keeps up, nothing queues (no cap is
    // reached), usage counts exactly max_tokens, every answer has tokens. The records' own
    // warnings are read back as variants; the metadata holds those and nothing run-only (a
    // failed scrape, a busy thread). Only lateness may show on a machine too busy to keep a
    // schedule, which is what that warning is for.
    let stored = llmbench::report::stored::load_run(&raw).unwrap();
    let texts = meta["warnings"].as_array().unwrap();
    assert_eq!(texts.len(), stored.warnings.len(), "{texts:?}");
    assert!(
        stored
            .warnings
            .iter()
            .all(|w| matches!(w, llmbench::stats::Warning::BehindSchedule { .. })),
        "{:?}",
        stored.warnings
    );
}

#[test]
fn a_script_error_exits_2_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.rhai");
    std::fs::write(
        &script,
        "request(#{ prompt: \"x\" });\nphase(\"a\", #{ duration: 1, rsp: 5 });\n",
    )
    .unwrap();
    let out = llmbench()
        .arg(&script)
        .arg("--results")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.rhai:2:1:") && stderr.contains("\"rsp\""),
        "{stderr}"
    );
    assert!(
        result_files(dir.path()).is_empty(),
        "nothing written for a bad script"
    );

    let out = llmbench()
        .arg(dir.path().join("missing.rhai"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = llmbench()
        .args(["x.rhai", "--grace", "soon"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad flag value is a usage error"
    );
}

#[test]
fn too_few_file_descriptors_for_the_concurrency_is_a_clear_error_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("wide.rhai");
    std::fs::write(
        &script,
        "request(#{ prompt: \"x\" });\nphase(\"wide\", #{ requests: 10, concurrency: 5000 });\n",
    )
    .unwrap();
    // A shell with a hard limit of 256 open files: llmbench cannot raise it past that.
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_llmbench"))
        .arg(&script)
        .arg("--results")
        .arg(dir.path())
        .args(["--no-progress", "--no-nvml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("10000 connections") && stderr.contains("ulimit -n"),
        "{stderr}"
    );
    assert!(
        all_files(dir.path())
            .iter()
            .all(|f| f.ends_with("wide.rhai")),
        "nothing written"
    );
}

#[test]
fn an_api_key_never_reaches_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "sk-llmbench-planted-7f3a9c";
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        "request(#{ prompt: \"hi\", max_tokens: 3 });\nphase(\"p\", #{ requests: 3 });\n",
    )
    .unwrap();
    // A mock of our own, addressed by --url, so the key is really sent.
    let server = llmbench::mock::MockServer::start(
        llmbench::mock::MockConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let out = llmbench()
        .arg(&script)
        .args([
            "--no-progress",
            "--url",
            &server.base_url(),
            "--model",
            "m",
            "--api-key-env",
            "LLMBENCH_PLANTED_KEY",
            "--results",
        ])
        .arg(dir.path())
        .env("LLMBENCH_PLANTED_KEY", secret)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(secret));
    }
    let files = result_files(dir.path());
    assert_eq!(
        files.len(),
        8,
        "the run's six files and the comparison's two: {files:?}"
    );
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains(secret),
            "the key leaked into {}",
            f.display()
        );
    }
}

/// `llmbench run --target --model --workload` takes the connection, output and telemetry flags
/// of `llmbench SCRIPT`: here the URL, the key's variable and a JSON export, against a mock
/// that refuses any other key.
#[test]
fn the_workload_command_takes_the_shared_flags() {
    let dir = tempfile::tempdir().unwrap();
    let mock = common::MockProcess::start(&[
        "--ttft-ms",
        "5",
        "--itl-ms",
        "1",
        "--output-tokens",
        "4",
        "--require-key",
        "sk-shared-flags-test",
    ]);
    let json = dir.path().join("run.json");
    let out = llmbench()
        .args([
            "run",
            "--target",
            "mock",
            "--model",
            "m",
            "--workload",
            "low-load",
        ])
        .args([
            "--set",
            "duration=2",
            "--set",
            "rps=3",
            "--set",
            "output_tokens=4",
        ])
        .args([
            "--url",
            &mock.base_url,
            "--api-key-env",
            "LLMBENCH_TEST_SHARED_KEY",
        ])
        .arg("--export-json")
        .arg(&json)
        .arg("--results")
        .arg(dir.path().join("results"))
        .args([
            "--no-progress",
            "--timeout",
            "30",
            "--retries",
            "0",
            "--no-nvml",
        ])
        .env("LLMBENCH_TEST_SHARED_KEY", "sk-shared-flags-test")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["schema"], "llmbench.run/1");
    assert_eq!(v["run"]["workload"], "low-load");
    assert_eq!(v["run"]["base_url"], mock.base_url.as_str());
    let ok = v["all"]["ok"].as_u64().unwrap();
    let stats = mock.stats();
    assert!(ok >= 5, "{v}");
    assert_eq!(
        stats.completed, ok,
        "every request carried the key: {stats:?}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk-shared-flags-test"));
}

/// `interactive` and `run` show the same flag groups in their help as `llmbench SCRIPT`.
#[test]
fn every_load_command_lists_the_same_flags() {
    let flags = |args: &[&str]| -> Vec<String> {
        let out = llmbench().args(args).arg("--help").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut f: Vec<String> = text
            .split_whitespace()
            .filter(|w| w.starts_with("--"))
            .map(|w| w.trim_end_matches([',', '.']).to_owned())
            .filter(|w| {
                ![
                    "--target",
                    "--workload",
                    "--model",
                    "--set",
                    "--help",
                    "--version",
                ]
                .contains(&w.as_str())
            })
            .collect();
        f.sort();
        f.dedup();
        f
    };
    let script = flags(&[]);
    assert!(script.contains(&"--api-key-env".to_owned()), "{script:?}");
    assert!(script.contains(&"--scrape".to_owned()), "{script:?}");
    assert_eq!(flags(&["run"]), script);
    assert_eq!(flags(&["interactive"]), script);
}

/// A template that does not compile stops the run before any request reaches the server.
#[test]
fn a_broken_template_exits_2_before_the_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let mock = common::MockProcess::start(&["--ttft-ms", "1", "--itl-ms", "1"]);
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(templates.join("report.md.j2"), "# {{ run.id }\n{% if %}\n").unwrap();
    let out = llmbench()
        .args([
            "scripts/quickstart.rhai",
            "--no-progress",
            "--url",
            &mock.base_url,
            "--model",
            "m",
        ])
        .arg("--templates")
        .arg(&templates)
        .arg("--results")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("report.md.j2"), "{stderr}");
    let stats = mock.stats_now();
    assert_eq!((stats.received, stats.unlabelled), (0, 0), "{stats:?}");
    assert!(all_files(&dir.path().join("results")).is_empty());
}

/// A results folder on a 64 KiB tmpfs fills up mid-run: the raw file keeps whole records only
/// (it reads back), no temporary file is left, the summary is still printed and the message
/// names the file that could not be written. Needs permission to mount (root in a container
/// with CAP_SYS_ADMIN, as CI has); elsewhere it says so and checks nothing.
#[test]
fn a_full_disk_loses_no_completed_record_and_still_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("small");
    std::fs::create_dir(&results).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&results)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let script = dir.path().join("many.rhai");
    std::fs::write(
        &script,
        "mock(#{ ttft_ms: 1, itl_ms: 1, output_tokens: 4 });\n\
         request(#{ max_tokens: 4, prompt: |i| `prompt number ${i} with some words to fill it` });\n\
         phase(\"p\", #{ requests: 400, concurrency: 8 });\n",
    )
    .unwrap();
    let out = llmbench()
        .arg(&script)
        .arg("--no-progress")
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let files = all_files(&results);
    let raw = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .cloned();
    let records = raw.map(|r| llmbench::record::read_records(&r));
    let _ = Command::new("umount").arg(&results).status();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stdout.contains("requests"),
        "the summary is printed: {stdout}"
    );
    assert!(stderr.contains("cannot write"), "{stderr}");
    let records = records
        .expect("a raw file")
        .expect("every line is a whole record");
    assert!(
        !records.is_empty() && records.len() < 400,
        "{}",
        records.len()
    );
    assert!(
        !files.iter().any(|p| p.to_string_lossy().ends_with(".tmp")),
        "{files:?}"
    );
}
