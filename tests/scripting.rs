//! The scripting layer as a user meets it: `check` on every shipped script, `--set`, SLOs and
//! assertions (goodput against the mock's injected timing, exit code 1 on a failure), the
//! original tool's `run --target --model --workload`, and script errors.

mod common;

use std::path::Path;

use common::{llmbench, only_file};
use llmbench::record::read_records;

#[test]
fn check_succeeds_on_every_shipped_script() {
    let mut checked = 0;
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rhai") {
            continue;
        }
        let out = llmbench().arg("check").arg(&path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {stdout}{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("expected requests:"), "{stdout}");
        assert!(!stdout.contains("FAILS"), "the prompt works: {stdout}");
        checked += 1;
    }
    assert!(checked >= 5, "quickstart and the four standard workloads");
}

#[test]
fn check_prints_the_plan_with_set_values_and_redacted_secrets() {
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("w.rhai");
    std::fs::write(
        &script,
        r#"let rps = param("rps", 5);
        target(#{ base_url: "http://127.0.0.1:9/v1", api_key_env: "LLMBENCH_TEST_CHECK_KEY" });
        request(#{ prompt: "hi", headers: #{ "x-secret": "hunter2" } });
        phase("steady", #{ duration: 10, rps: rps, concurrency: 4 });
        slo(#{ ttft_ms: 500 });
        assert("p95", |s| s.ttft_ms.p95, "<", 500);"#,
    )
    .unwrap();
    let out = llmbench()
        .arg("check")
        .arg(&script)
        .args([
            "--set",
            "rps=20",
            "--api-key-env",
            "LLMBENCH_TEST_CHECK_KEY",
        ])
        .env("LLMBENCH_TEST_CHECK_KEY", "sk-planted-check-key")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("20 req/s") && stdout.contains("~200 requests"),
        "{stdout}"
    );
    assert!(stdout.contains("api key: [redacted]"), "{stdout}");
    assert!(
        stdout.contains("TTFT ≤ 500 ms") && stdout.contains("assert:   p95"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("sk-planted") && !stdout.contains("hunter2"),
        "{stdout}"
    );
}

#[test]
fn a_failing_assertion_exits_1_and_the_report_and_junit_name_it() {
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("gate.rhai");
    std::fs::write(
        &script,
        r#"mock(#{ ttft_ms: 30, itl_ms: 2, output_tokens: 4 });
        request(#{ prompt: |i| `q ${i}`, max_tokens: 4 });
        phase("steady", #{ requests: 6, concurrency: 3 });
        slo(#{ ttft_ms: 10 });
        assert("TTFT p50 under 10 ms", |s| s.phases.steady.ttft_ms.p50, "<", 10);
        assert("all succeeded", |s| s.success_rate == 100.0);"#,
    )
    .unwrap();
    let results = d.path().join("results");
    let junit = d.path().join("junit.xml");
    let out = llmbench()
        .arg(&script)
        .arg("--no-progress")
        .arg("--results")
        .arg(&results)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
    assert!(
        xml.contains("<testcase classname=\"llmbench\" name=\"TTFT p50 under 10 ms\"><failure"),
        "{xml}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("assert FAIL: TTFT p50 under 10 ms"),
        "{stdout}"
    );
    assert!(stdout.contains("assert pass: all succeeded"), "{stdout}");
    assert!(stdout.contains("0 of 6 requests good"), "{stdout}");
    let md = std::fs::read_to_string(only_file(&results, "reports", "md")).unwrap();
    assert!(md.contains("| TTFT p50 under 10 ms | **FAIL** |"), "{md}");
    assert!(md.contains("| all succeeded | pass | true |"), "{md}");
    let html = std::fs::read_to_string(only_file(&results, "reports", "html")).unwrap();
    assert!(
        html.contains("<td>TTFT p50 under 10 ms</td><td><strong>FAIL</strong>"),
        "{html}"
    );
    let meta = std::fs::read_to_string(only_file(&results, "runs", "json")).unwrap();
    assert!(meta.contains("\"assertions\""), "{meta}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goodput_counts_requests_within_the_slo() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(20, 5, 5);
    // TTFT ≈ 20 ms, TPOT ≈ 5 ms, E2EL ≈ 40 ms: the first SLO holds for every request, the
    // second for none.
    for (slo, good) in [
        ("ttft_ms: 200, tpot_ms: 50, e2el_ms: 400", 8),
        ("ttft_ms: 200, e2el_ms: 25", 0),
    ] {
        let mut plan = common::plan(
            dir.path(),
            &format!(
                r#"request(#{{ prompt: |i| `q ${{i}}`, max_tokens: 5 }});
                phase("p", #{{ requests: 8, concurrency: 4 }});
                slo(#{{ {slo} }});"#
            ),
        );
        common::target(&mut plan, &server);
        let (finished, _) = common::run(plan, dir.path()).await;
        let all = &finished.summary.all;
        assert_eq!(all.ok, 8);
        assert_eq!(all.good, Some(good), "{slo}");
        assert_eq!(all.good_rate, Some(100.0 * good as f64 / 8.0));
        let expected = good as f64 / all.duration_s;
        assert!((all.goodput_req_per_s.unwrap() - expected).abs() < 1e-9);
    }
}

#[test]
fn the_original_run_command_works_against_the_mock() {
    let d = tempfile::tempdir().unwrap();
    let server = common::mock(10, 2, 8);
    let configs = d.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    std::fs::write(
        configs.join("targets.yaml"),
        format!(
            "targets:\n  - name: vllm-local\n    base_url: {}\n    api_key: \"${{LLMBENCH_TEST_RUN_KEY}}\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    std::fs::write(
        configs.join("models.yaml"),
        "models:\n  - name: llama-3.1-8b-instruct\n    full_name: meta-llama/Meta-Llama-3.1-8B-Instruct\n",
    )
    .unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/workloads.yaml"),
        configs.join("workloads.yaml"),
    )
    .unwrap();
    let results = d.path().join("results");
    let out = llmbench()
        .args([
            "run",
            "--target",
            "vllm-local",
            "--model",
            "llama-3.1-8b-instruct",
        ])
        .args([
            "--workload",
            "medium-load",
            "--set",
            "duration=2",
            "--set",
            "input_tokens=32",
        ])
        .arg("--configs")
        .arg(&configs)
        .arg("--results")
        .arg(&results)
        .arg("--no-progress")
        .env("LLMBENCH_TEST_RUN_KEY", "sk-planted-run-key")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = only_file(&results, "raw", "jsonl");
    let name = raw.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.contains("medium-load"), "{name}");
    let records = read_records(&raw).unwrap();
    assert_eq!(records.len(), 10, "5 req/s for 2 s");
    assert!(
        records
            .iter()
            .all(|r| r.outcome == llmbench::record::Outcome::Ok)
    );
    for sub in ["raw", "summary", "reports", "runs"] {
        for f in std::fs::read_dir(results.join(sub)).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            assert!(
                !text.contains("sk-planted-run-key"),
                "the key leaked into {sub}"
            );
        }
    }

    let out = llmbench()
        .args([
            "run",
            "--target",
            "vllm-local",
            "--model",
            "m",
            "--workload",
            "huge",
        ])
        .arg("--configs")
        .arg(&configs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("workloads.yaml") && stderr.contains("stress-test"),
        "{stderr}"
    );
}

#[test]
fn an_error_in_a_library_script_names_its_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("lib")).unwrap();
    std::fs::write(
        d.path().join("lib/mine.rhai"),
        "fn phases() {\n    phase(\"a\", #{ duration: 1, rsp: 2 });\n}\n",
    )
    .unwrap();
    let script = d.path().join("w.rhai");
    std::fs::write(
        &script,
        "import \"lib/mine\" as mine;\nrequest(#{ prompt: \"x\" });\nmine::phases();\n",
    )
    .unwrap();
    let out = llmbench().arg(&script).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("lib/mine.rhai:2:5") && stderr.contains("unknown option \"rsp\""),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_finds_the_mocks_saturation_within_10_percent() {
    let dir = tempfile::tempdir().unwrap();
    // 4 slots, each busy 20 + 10 × 2 = 40 ms: saturation is 4 / 0.040 s = 100 req/s.
    let plan = common::plan(
        dir.path(),
        r#"mock(#{ ttft_ms: 20, itl_ms: 2, output_tokens: 10, max_running: 4 });
        request(#{ prompt: |i| `q ${i}`, max_tokens: 10 });
        slo(#{ ttft_ms: 35 });
        sweep(#{ concurrency: 16, probe: 2, steps: 2, low: 0.3, high: 1.5, duration: 1 });"#,
    );
    let finished = common::execute(plan, &common::options(dir.path()))
        .await
        .unwrap();
    let sweep = finished.sweep.clone().expect("a sweep outcome");
    let analytic = 100.0;
    assert!(
        (sweep.saturation_rps - analytic).abs() / analytic < 0.10,
        "saturation {} req/s, analytic {analytic}",
        sweep.saturation_rps
    );
    assert_eq!(sweep.steps.len(), 2);
    let (low, high) = (&sweep.steps[0], &sweep.steps[1]);
    assert!((low.rate / sweep.saturation_rps - 0.3).abs() < 1e-9);
    assert!((high.rate / sweep.saturation_rps - 1.5).abs() < 1e-9);
    // Below saturation nearly every request meets the TTFT SLO; far above it the queue grows
    // and most do not, so the highest rate within the SLO is the low step.
    assert!(low.good_rate.unwrap() >= 90.0, "{low:?}");
    assert!(high.good_rate.unwrap() < 90.0, "{high:?}");
    assert_eq!(sweep.best_rate_within_slo, Some(low.rate));
    assert!(!sweep.every_step_met);
    // The saturation probe has its own row but is left out of `all`, which holds the steps.
    let steps: u64 = finished
        .summary
        .phases
        .iter()
        .filter(|p| sweep.steps.iter().any(|s| s.phase == p.name))
        .map(|p| p.requests)
        .sum();
    assert_eq!(finished.summary.phases.len(), 3);
    assert_eq!(finished.summary.all.requests, steps);
    // At 1.5 times saturation the server falls behind: its requests complete at its own
    // rate, the analytic 100 req/s; the low step keeps up.
    let behind: Vec<_> = finished
        .warnings
        .iter()
        .filter_map(|w| match w {
            llmbench::stats::Warning::FellBehind {
                phase,
                completed_req_per_s,
                ..
            } => Some((phase.clone(), *completed_req_per_s)),
            _ => None,
        })
        .collect();
    assert_eq!(behind.len(), 1, "{:?}", finished.warnings);
    assert_eq!(behind[0].0, high.phase);
    assert!(
        (behind[0].1 - analytic).abs() / analytic < 0.15,
        "completed at {} req/s",
        behind[0].1
    );
    let md = std::fs::read_to_string(&finished.files().unwrap().markdown).unwrap();
    assert!(
        md.contains("## Capacity sweep") && md.contains("| sweep-2 |"),
        "{md}"
    );
    let html = std::fs::read_to_string(&finished.files().unwrap().html).unwrap();
    assert!(html.contains("<h2>Capacity sweep</h2>"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_ramp_sends_arrivals_at_the_rising_rate() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(5, 1, 2);
    // 0 -> 40 req/s over 2 s: 40 arrivals, 10 of them in the first second (Λ(t) = 10 t²).
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ prompt: |i| `q ${i}`, max_tokens: 2 });
        phase("up", #{ duration: 2, rps: ramp(0, 40), concurrency: ramp(2, 8) });"#,
    );
    assert_eq!(plan.expected_requests(), Some(40));
    common::target(&mut plan, &server);
    let (finished, records) = common::run(plan, dir.path()).await;
    assert_eq!(finished.summary.all.ok, 40);
    let start = records.iter().map(|r| r.intended_us).min().unwrap();
    let first_second = records
        .iter()
        .filter(|r| r.intended_us - start < 1_000_000)
        .count();
    assert_eq!(first_second, 10);
}

#[test]
fn no_script_without_a_terminal_is_a_usage_error() {
    let out = llmbench()
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no script given") && stderr.contains("interactive"),
        "{stderr}"
    );
}
