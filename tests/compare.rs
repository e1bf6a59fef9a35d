//! `llmbench compare`: a real change between two runs is found and fails its gate; two runs of
//! the same server pass it; the intervals repeat with the seed.

mod common;

use std::path::Path;

use common::{MockProcess, in_folder};

/// Runs the standard low-load workload at 20/s for 2 s against `url`; returns the run id.
fn run(dir: &Path, url: &str) -> String {
    let before: Vec<_> = std::fs::read_dir(dir.join("results/raw"))
        .map_or(Vec::new(), |d| d.flatten().map(|e| e.path()).collect());
    let out = in_folder(
        dir,
        &[
            "low-load",
            "--url",
            url,
            "--rps",
            "20",
            "--concurrency",
            "8",
            "--duration",
            "2",
            "--no-compare-report",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = std::fs::read_dir(dir.join("results/raw"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| !before.contains(p) && !p.to_string_lossy().ends_with(".telemetry.jsonl"))
        .unwrap();
    new.file_stem().unwrap().to_string_lossy().into_owned()
}

fn compare(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = in_folder(dir, &[&["compare"], args].concat());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned()
            + String::from_utf8_lossy(&out.stderr).as_ref(),
    )
}

#[test]
fn a_real_change_fails_its_gate_and_noise_does_not() {
    let fast = MockProcess::start(&["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "8"]);
    let slow = MockProcess::start(&["--ttft-ms", "40", "--itl-ms", "2", "--output-tokens", "8"]);
    let dir = tempfile::tempdir().unwrap();
    let a = run(dir.path(), &fast.base_url);
    let b = run(dir.path(), &fast.base_url);
    let c = run(dir.path(), &slow.base_url);

    let gate = [
        "--fail-on",
        "ttft_ms_p95 > +30%",
        "--fail-on",
        "success_rate < -1",
    ];
    let (code, text) = compare(dir.path(), &[&a, &b, gate[0], gate[1], gate[2], gate[3]]);
    assert_eq!(code, Some(0), "the same server: {text}");
    assert!(text.contains("0 of 2 gates failed"), "{text}");

    let (code, text) = compare(dir.path(), &[&a, &c, gate[0], gate[1], gate[2], gate[3]]);
    assert_eq!(code, Some(1), "TTFT doubled: {text}");
    assert!(text.contains("FAIL ttft_ms_p95 > +30%"), "{text}");
    let line = text.lines().find(|l| l.starts_with("ttft_ms_p50")).unwrap();
    assert!(line.ends_with("worse"), "{line}");
    assert!(text.contains("1 of 2 gates failed"), "{text}");

    let (_, again) = compare(dir.path(), &[&a, &c, gate[0], gate[1], gate[2], gate[3]]);
    assert_eq!(again, text, "the same seed gives the same intervals");

    // The CI files say the same: JUnit cases, a Markdown summary (appended), JSON numbers.
    let (junit, md, json) = (
        dir.path().join("j.xml"),
        dir.path().join("s.md"),
        dir.path().join("c.json"),
    );
    std::fs::write(&md, "earlier step\n").unwrap();
    let files = [
        "--junit",
        junit.to_str().unwrap(),
        "--summary-md",
        md.to_str().unwrap(),
        "--export-json",
        json.to_str().unwrap(),
    ];
    let mut args = vec![a.as_str(), c.as_str()];
    args.extend(gate);
    args.extend(files);
    let (code, _) = compare(dir.path(), &args);
    assert_eq!(code, Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        md.starts_with("earlier step\n### llmbench compare: 1 of 2 gates failed"),
        "{md}"
    );
    assert!(md.contains("| ttft_ms_p95 &gt; +30% | FAIL |"), "{md}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["schema"], "llmbench.compare/1");
    assert_eq!(v["failed"], true);
    let p95 = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "ttft_ms_p95")
        .unwrap();
    assert!(
        p95["change_pct"].as_f64().unwrap() > 30.0 && p95["significant"] == true,
        "{p95}"
    );

    let (code, text) = compare(dir.path(), &[&a, &c, "--fail-on", "ttft_p95 > 10%"]);
    assert_eq!(code, Some(2));
    assert!(
        text.contains("ttft_ms_p95"),
        "the known metrics are listed: {text}"
    );
}

#[test]
fn repeat_runs_trials_of_one_set_and_reports_them_across() {
    let dir = tempfile::tempdir().unwrap();
    let out = in_folder(
        dir.path(),
        &[
            "low-load",
            "--rps",
            "8",
            "--concurrency",
            "8",
            "--duration",
            "1",
            "--repeat",
            "3",
            "--no-compare-report",
            "--level",
            "90",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(": 3 trials, mean and 90% t interval"),
        "{stdout}"
    );
    let metas: Vec<serde_json::Value> = std::fs::read_dir(dir.path().join("results/runs"))
        .unwrap()
        .map(|e| {
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(metas.len(), 3, "a run per trial");
    let trial = |m: &serde_json::Value| {
        let t = m
            .pointer("/run/trial")
            .or_else(|| m.get("trial"))
            .cloned()
            .unwrap_or_default();
        (
            t["set"].as_str().unwrap_or_default().to_owned(),
            t["index"].as_u64(),
            t["of"].as_u64(),
        )
    };
    let mut seen: Vec<_> = metas.iter().map(trial).collect();
    seen.sort();
    let set = seen[0].0.clone();
    assert!(set.starts_with("trials_"), "{seen:?}");
    assert_eq!(
        seen,
        (1..=3)
            .map(|i| (set.clone(), Some(i), Some(3)))
            .collect::<Vec<_>>()
    );
    let csv = std::fs::read_to_string(dir.path().join(format!("results/summary/{set}.trials.csv")))
        .unwrap();
    assert!(
        csv.starts_with("metric,trials,mean,ci_lo,ci_hi,cv,unstable,values\n"),
        "{csv}"
    );
    let ttft = csv
        .lines()
        .find(|l| l.starts_with("ttft_ms_p50,3,"))
        .unwrap();
    let cells: Vec<&str> = ttft.split(',').collect();
    let (mean, lo, hi): (f64, f64, f64) = (
        cells[2].parse().unwrap(),
        cells[3].parse().unwrap(),
        cells[4].parse().unwrap(),
    );
    assert!(
        lo <= mean && mean <= hi && (45.0..60.0).contains(&mean),
        "{ttft}"
    );
    assert_eq!(cells[7].split(';').count(), 3);
}

/// The trial set id a `--repeat` run printed.
fn trial_set(dir: &Path, url: &str) -> String {
    let out = in_folder(
        dir,
        &[
            "low-load",
            "--url",
            url,
            "--rps",
            "10",
            "--concurrency",
            "8",
            "--duration",
            "1",
            "--repeat",
            "3",
            "--no-compare-report",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("trials: ")).unwrap();
    let file = line.rsplit('/').next().unwrap();
    file.trim_end_matches(".trials.csv").to_owned()
}

#[test]
fn trial_sets_compare_their_means_with_welch() {
    let fast = MockProcess::start(&["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "8"]);
    let slow = MockProcess::start(&["--ttft-ms", "40", "--itl-ms", "2", "--output-tokens", "8"]);
    let dir = tempfile::tempdir().unwrap();
    let a = trial_set(dir.path(), &fast.base_url);
    std::thread::sleep(std::time::Duration::from_millis(1100)); // set ids are per second
    let b = trial_set(dir.path(), &slow.base_url);
    let (code, text) = compare(dir.path(), &[&a, &b, "--fail-on", "ttft_ms_p50 > +30%"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("Welch's t across 3 and 3 trials"), "{text}");
    assert!(text.contains("FAIL ttft_ms_p50 > +30%"), "{text}");
    let (code, text) = compare(
        dir.path(),
        &[&a, "trials_none", "--fail-on", "ttft_ms_p50 > +30%"],
    );
    assert_eq!(code, Some(2));
    assert!(text.contains("--repeat"), "{text}");
}

#[test]
fn a_script_asks_for_trials_with_repeat_and_the_flag_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.rhai"),
        r#"mock(#{ ttft_ms: 5, itl_ms: 1, output_tokens: 2 });
           request(#{ prompt: "hi", max_tokens: 2 });
           phase("p", #{ requests: 3, concurrency: 3 });
           repeat(2);"#,
    )
    .unwrap();
    let run = |args: &[&str]| in_folder(dir.path(), args);
    let check = run(&["check", "t.rhai"]);
    assert!(String::from_utf8_lossy(&check.stdout).contains("repeat:   2 trials"));
    let runs = |results: &str| {
        std::fs::read_dir(dir.path().join(results).join("runs"))
            .unwrap()
            .count()
    };
    let out = run(&["t.rhai", "--results", "a", "--no-compare-report"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(runs("a"), 2, "repeat(2): two trials");
    let out = run(&[
        "t.rhai",
        "--results",
        "b",
        "--no-compare-report",
        "--repeat",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(runs("b"), 1, "--repeat 1 overrides the script");
    let bad = std::fs::write(
        dir.path().join("bad.rhai"),
        r#"request(#{ prompt: "hi" }); phase("p", #{ requests: 1 }); repeat(0);"#,
    );
    bad.unwrap();
    let out = run(&["check", "bad.rhai"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("repeat(0)"));
}
