//! `llmbench parse` and `llmbench report` as a user runs them, on runs made against the mock on
//! 127.0.0.1: parse reproduces a run's CSV byte for byte; report compares runs; both reject bad
//! input with exit 2 and write nothing, but one bad file among several is skipped with a warning.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use llmbench::record::read_records;

fn llmbench(args: &[&str], cwd: &Path) -> Output {
    common::llmbench()
        .args(args)
        .current_dir(cwd)
        .env_remove("LLMBENCH_CHROMIUM")
        .output()
        .unwrap()
}

const SCRIPT: &str = r#"
request(#{ max_tokens: 8, prompt: |i| `request ${i}` });
phase("warmup", #{ requests: 3, concurrency: 3, warmup: true });
phase("steady", #{ requests: 24, concurrency: 4 });
phase("rated", #{ requests: 20, rps: 100, concurrency: 8 });
"#;

/// Runs the script against a mock with the given TTFT into `results`.
async fn one_run(dir: &Path, results: &Path, ttft_ms: u64) -> llmbench::run::RunOutcome {
    let server = common::mock(ttft_ms, 1, 8);
    let mut plan = common::plan(dir, SCRIPT);
    common::target(&mut plan, &server);
    common::run(plan, results).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_reproduces_the_run_csv_and_report_compares_runs() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let a = one_run(dir.path(), &results, 5).await;
    let b = one_run(dir.path(), &results, 25).await;
    let raw_a = a.files().unwrap().raw.to_str().unwrap().to_owned();
    let raw_b = b.files().unwrap().raw.to_str().unwrap().to_owned();
    assert_eq!(read_records(&a.files().unwrap().raw).unwrap().len(), 47);

    // stdout, --out, --out-dir: the same bytes as the run's own CSV.
    let expected = std::fs::read(&a.files().unwrap().csv).unwrap();
    let out = llmbench(&["parse", &raw_a], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout, expected,
        "parse to stdout differs from the run's CSV"
    );
    let file = dir.path().join("a.csv");
    let out = llmbench(
        &["parse", &raw_a, "--out", file.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success());
    assert_eq!(std::fs::read(&file).unwrap(), expected);
    // --out-dir creates its folder.
    let many = dir.path().join("new/many");
    let out = llmbench(
        &["parse", &raw_a, &raw_b, "--out-dir", many.to_str().unwrap()],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(many.join(format!("{}.csv", b.run_id()))).unwrap(),
        std::fs::read(&b.files().unwrap().csv).unwrap()
    );

    // Several files need --out-dir; a bad line is named.
    let out = llmbench(&["parse", &raw_a, &raw_b], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out-dir"));
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": 1}\n").unwrap();
    let out = llmbench(&["parse", bad.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.jsonl:1"));

    // report: every run by default, baseline by id, export JSON.
    let res = results.to_str().unwrap();
    let json = dir.path().join("cmp.json");
    let out = llmbench(
        &[
            "report",
            "--results",
            res,
            "--baseline",
            b.run_id(),
            "--export-json",
            json.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(results.join("reports/benchmark_report.md")).unwrap();
    assert!(md.contains(&format!("`{}` (baseline)", b.run_id())), "{md}");
    assert!(md.contains(&format!("`{}`", a.run_id())));
    let html = std::fs::read_to_string(results.join("reports/benchmark_report.html")).unwrap();
    assert!(html.contains("<svg id=\"runs-ttft-ms-p50\""));
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(export["schema"], "llmbench.comparison/1");
    assert_eq!(export["baseline"], b.run_id());
    assert_eq!(export["runs"].as_array().unwrap().len(), 2);
    // Ground truth: the mock's TTFT of 5 ms vs 25 ms shows in the exported p50s.
    let p50 = |i: usize| {
        export["runs"][i]["all"]["metrics"][0]["p50"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(export["runs"][0]["all"]["metrics"][0]["key"], "ttft_ms");
    assert!(p50(0) >= 5.0 && p50(0) < 15.0, "{}", p50(0));
    assert!(p50(1) >= 25.0 && p50(1) < 35.0, "{}", p50(1));
    assert!(p50(1) > p50(0) + 15.0);

    // Bad input: unknown run, unknown baseline; nothing new written.
    let before = std::fs::read_dir(results.join("reports")).unwrap().count();
    let out = llmbench(&["report", "--results", res, "nope"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nope\" not found"));
    let out = llmbench(
        &["report", "--results", res, "--baseline", "nope"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--baseline nope"));
    assert_eq!(
        std::fs::read_dir(results.join("reports")).unwrap().count(),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_file_in_raw_is_skipped_and_the_other_runs_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let a = one_run(dir.path(), &results, 5).await;
    let b = one_run(dir.path(), &results, 5).await;
    let raw = results.join("raw");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    // A telemetry file (skipped by its name, whatever it holds), a corrupt run, an oversized
    // one, and run b torn at the end (half a record, no newline, as a full disk leaves it).
    let telemetry = raw.join("bench_x.telemetry.jsonl");
    std::fs::write(&telemetry, "{\"t_us\": 1}\n").unwrap();
    let corrupt = raw.join("bench_corrupt.jsonl");
    std::fs::write(&corrupt, "{oops\n").unwrap();
    let bad_telemetry = a.files().unwrap().telemetry.clone();
    std::fs::write(&bad_telemetry, "{oops\n").unwrap();
    let huge = raw.join("bench_huge.jsonl");
    std::fs::write(&huge, vec![b'x'; (16 << 20) + 10]).unwrap();
    let raw_b = b.files().unwrap().raw.clone();
    let text = std::fs::read_to_string(&raw_b).unwrap();
    let first = text.lines().next().unwrap();
    let mut torn = std::fs::OpenOptions::new()
        .append(true)
        .open(&raw_b)
        .unwrap();
    std::io::Write::write_all(&mut torn, &first.as_bytes()[..first.len() / 2]).unwrap();
    drop(torn);

    let res = path(&results);
    let out = llmbench(&["report", "--results", &res], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("skipping") && stderr.contains("bench_corrupt.jsonl:1"),
        "{stderr}"
    );
    assert!(stderr.contains("bench_huge.jsonl"), "{stderr}");
    assert!(!stderr.contains("bench_x"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:1: not a telemetry reading",
            bad_telemetry.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}: its last line", raw_b.display())),
        "{stderr}"
    );
    assert!(stderr.contains("cut short"), "{stderr}");
    let md = std::fs::read_to_string(results.join("reports/benchmark_report.md")).unwrap();
    assert!(md.contains(a.run_id()) && md.contains(b.run_id()), "{md}");
    assert!(!md.contains("bench_corrupt"), "{md}");

    // parse of every file in raw/: the good runs are written, b's CSV as the run wrote it.
    let out_dir = dir.path().join("csv");
    std::fs::create_dir(&out_dir).unwrap();
    let all: Vec<String> = [&a.files().unwrap().raw, &raw_b, &corrupt, &huge, &telemetry]
        .into_iter()
        .map(|p| path(p))
        .collect();
    let mut args = vec!["parse"];
    args.extend(all.iter().map(String::as_str));
    args.extend(["--out-dir", out_dir.to_str().unwrap()]);
    let out = llmbench(&args, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("bench_corrupt.jsonl") && stderr.contains("bench_huge.jsonl"));
    assert_eq!(common::all_files(&out_dir).len(), 2);
    assert_eq!(
        std::fs::read(out_dir.join(format!("{}.csv", b.run_id()))).unwrap(),
        std::fs::read(&b.files().unwrap().csv).unwrap()
    );
    // One torn file alone is read too; bad files only are exit 2.
    let out = llmbench(&["parse", &path(&raw_b)], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, std::fs::read(&b.files().unwrap().csv).unwrap());
    let out = llmbench(
        &[
            "parse",
            &path(&corrupt),
            &path(&huge),
            "--out-dir",
            out_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let only_bad = dir.path().join("bad-results");
    std::fs::create_dir_all(only_bad.join("raw")).unwrap();
    std::fs::copy(&corrupt, only_bad.join("raw/bench_corrupt.jsonl")).unwrap();
    std::fs::copy(&huge, only_bad.join("raw/bench_huge.jsonl")).unwrap();
    let out = llmbench(&["report", "--results", &path(&only_bad)], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(!only_bad.join("reports").exists());
}

#[test]
fn report_pdf_without_chromium_names_the_package() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args(["report", "--pdf", "--results", dir.path().to_str().unwrap()])
        .env("PATH", dir.path())
        .env_remove("LLMBENCH_CHROMIUM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apt-get install chromium"), "{err}");
}

/// A `LLMBENCH_CHROMIUM` that cannot be run is found out before any report file is written,
/// as a missing Chromium is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_pdf_with_an_unusable_chromium_writes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    one_run(dir.path(), &results, 1).await;
    let not_executable = dir.path().join("chromium");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let folder = dir.path().to_owned();
    for (chromium, why) in [
        (Path::new("/nonexistent").to_owned(), "no such file"),
        (not_executable, "not executable"),
        (folder, "not a file"),
    ] {
        let out = common::llmbench()
            .args(["report", "--pdf", "--results", results.to_str().unwrap()])
            .env("LLMBENCH_CHROMIUM", &chromium)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("LLMBENCH_CHROMIUM={}: {why}", chromium.display())),
            "{stderr}"
        );
        for ext in ["md", "html", "pdf"] {
            let report = results.join(format!("reports/benchmark_report.{ext}"));
            assert!(!report.exists(), "{} written", report.display());
        }
    }
}

#[test]
fn report_without_runs_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = llmbench(
        &["report", "--results", dir.path().to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no runs under"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_exports_json_with_its_schema_and_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let server = common::mock(10, 2, 8);
    let mut plan = common::plan(dir.path(), SCRIPT);
    common::target(&mut plan, &server);
    let mut options = common::options(&results);
    let json = dir.path().join("run.json");
    if let llmbench::settings::Outputs::Files { export_json, .. } = &mut options.outputs {
        *export_json = Some(json.clone());
    }
    let finished = common::execute(plan, &options).await.unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["schema"], "llmbench.run/1");
    assert_eq!(v["run"]["id"], finished.run_id());
    assert_eq!(v["run"]["max_tokens"], 8);
    assert_eq!(v["run"]["fixed_prompt"], false);
    assert_eq!(v["warmup_requests"], 3);
    assert_eq!(v["all"]["requests"], 44);
    let phases: Vec<&str> = v["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["steady", "rated"]);
    // The timeline covers every request, warmup included, and marks all three phases.
    let seconds = v["timeline"]["seconds"].as_array().unwrap();
    let sum = |k: &str| seconds.iter().map(|s| s[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("sent"), 47);
    assert_eq!(sum("completed") + sum("errors"), 47);
    let tokens: f64 = seconds
        .iter()
        .map(|s| s["output_tok_per_s"].as_f64().unwrap())
        .sum();
    assert!((tokens - 47.0 * 8.0).abs() < 1e-6, "{tokens}");
    assert_eq!(v["timeline"]["phases"].as_array().unwrap().len(), 3);
    assert_eq!(v["timeline"]["phases"][0]["warmup"], true);
}
