//! The example CI pipelines (`examples/ci/*.yml`) run `examples/ci/bench.sh`; this runs the
//! same script the way they do: a first run that becomes the baseline, then a run compared
//! against it under the pipelines' gates, then a run against a slower server that fails them.
//! The JUnit files are parsed as XML and must list every assertion and gate condition.

mod common;

use std::path::Path;
use std::process::Command;

/// Runs `examples/ci/bench.sh` with `env`; returns its exit code and output.
fn bench(out: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/bench.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .current_dir(out.parent().unwrap())
        .env("LLMBENCH", env!("CARGO_BIN_EXE_llmbench"))
        .env("OUT", out)
        .env("SCRIPT", "ramp-and-gate")
        .env("SET", "peak=10 ramp=1 hold=2")
        .env("GIT_SHA", "abc123")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("LLMBENCH_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned()
        + String::from_utf8_lossy(&o.stderr).as_ref();
    (o.status.code(), text)
}

#[test]
fn the_example_pipelines_benchmark_compare_and_gate() {
    let dir = tempfile::tempdir().unwrap();
    // The first pipeline run (main): no baseline yet; its results become the baseline.
    let first = dir.path().join("main");
    let (code, text) = bench(&first, &[]);
    assert_eq!(code, Some(0), "{text}");
    let run = common::junit_cases(&first.join("junit-run.xml"));
    assert!(
        run.len() >= 3 && run.iter().all(|(_, failed)| !failed),
        "{run:?}"
    );
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.join("run.json")).unwrap()).unwrap();
    assert_eq!(export["passed"], true);
    assert_eq!(export["run"]["labels"]["git_sha"], "abc123");
    assert!(
        export["assertions"][0]["measured"].is_number(),
        "{}",
        export["assertions"]
    );
    assert!(!first.join("compare.json").exists());

    // A pull request against the same server: the gates pass.
    let baseline = first.join("results");
    let pr = dir.path().join("pr");
    let (code, text) = bench(&pr, &[("BASELINE", baseline.to_str().unwrap())]);
    assert_eq!(code, Some(0), "{text}");
    let gates = common::junit_cases(&pr.join("junit-compare.xml"));
    let names: Vec<&str> = gates.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "ttft_ms_p95 > +10%",
            "e2el_ms_p95 > +10%",
            "success_rate < -1"
        ]
    );
    assert!(gates.iter().all(|(_, failed)| !failed), "{gates:?}");
    let summary = std::fs::read_to_string(pr.join("summary.md")).unwrap();
    assert!(summary.contains("all 3 gates passed"), "{summary}");
    assert!(pr.join("results/reports/benchmark_report.html").is_file());

    // A pull request that made the server 50% slower: the TTFT gate fails the job (exit 1).
    let slow = common::MockProcess::start(&["--ttft-ms", "60", "--itl-ms", "2"]);
    let regressed = dir.path().join("regressed");
    let (code, text) = bench(
        &regressed,
        &[
            ("BASELINE", baseline.to_str().unwrap()),
            ("LLMBENCH_URL", &slow.base_url),
        ],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL ttft_ms_p95 > +10%"), "{text}");
    let gates = common::junit_cases(&regressed.join("junit-compare.xml"));
    assert!(gates[0].1, "{gates:?}");
}

#[test]
fn the_example_pipelines_are_valid_yaml_calling_the_tested_script() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci");
    for name in ["github-actions.yml", "gitlab-ci.yml"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let _: serde_json::Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains("bash examples/ci/bench.sh"), "{name}");
    }
}
