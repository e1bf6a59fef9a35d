//! The `llmbench` binary as a user runs it: the quick start, exit codes, Ctrl-C, secrets.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn llmbench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llmbench"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["raw", "summary", "reports", "runs"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            out.extend(entries.map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

fn with_ext(files: &[PathBuf], sub: &str, ext: &str) -> PathBuf {
    files
        .iter()
        .find(|p| p.parent().unwrap().ends_with(sub) && p.extension().unwrap() == ext)
        .unwrap_or_else(|| panic!("no {sub}/*.{ext} in {files:?}"))
        .clone()
}

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

    let files = files_in(results.path());
    assert_eq!(files.len(), 5, "{files:?}");
    let raw = with_ext(&files, "raw", "jsonl");
    let csv = with_ext(&files, "summary", "csv");
    let md = with_ext(&files, "reports", "md");
    let html = with_ext(&files, "reports", "html");
    let meta = with_ext(&files, "runs", "json");
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
        files_in(dir.path()).is_empty(),
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
        files_in(dir.path())
            .iter()
            .all(|f| f.ends_with("wide.rhai")),
        "nothing written"
    );
}

#[test]
fn ctrl_c_writes_what_was_measured_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("long.rhai");
    std::fs::write(
        &script,
        "mock(#{ ttft_ms: 20, itl_ms: 5, output_tokens: 20 });\n\
         request(#{ prompt: |i| `p ${i}` });\n\
         phase(\"long\", #{ duration: 60, rps: 20, concurrency: 8 });\n",
    )
    .unwrap();
    let child = llmbench()
        .arg(&script)
        .args(["--no-progress", "--grace", "5", "--results"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stops within the grace period"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("INTERRUPTED"), "{stdout}");
    let files = files_in(dir.path());
    assert_eq!(files.len(), 5, "{files:?}");
    let records = llmbench::record::read_records(&with_ext(&files, "raw", "jsonl")).unwrap();
    assert!(
        records.len() >= 20,
        "about 2.5 s at 20 req/s: {}",
        records.len()
    );
    assert!(
        records
            .iter()
            .all(|r| r.outcome == llmbench::record::Outcome::Ok)
    );
    let md = std::fs::read_to_string(with_ext(&files, "reports", "md")).unwrap();
    assert!(md.contains("Interrupted"));
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
    let files = files_in(dir.path());
    assert_eq!(files.len(), 5);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains(secret),
            "the key leaked into {}",
            f.display()
        );
    }
}
