//! Whether `compare` and `--repeat` tell real differences from noise, against mocks whose TTFT
//! has a known distribution: uniform in TTFT ± 20 ms (`--ttft-jitter-ms`), so its median is
//! the TTFT. Two mocks of one configuration are "no significant change" in at least 19 of 20
//! seeded repetitions; 10 ms slower is "worse" with the change inside its interval and fails a
//! `ttft_ms_p95 > +5%` gate that the same mock passes; the t
//! interval of five trials' median holds the true median and is as wide as theory says.

mod common;

use std::path::Path;

use common::{MockProcess, in_folder};

/// Half the width of the mock's uniform TTFT jitter, ms.
const JITTER_MS: f64 = 20.0;

/// One test at a time: each loads the machine, and a second one's load would shift one run's
/// timings against its pair's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn jittered(ttft_ms: u32, seed: u64) -> MockProcess {
    MockProcess::start(&[
        "--ttft-ms",
        &ttft_ms.to_string(),
        "--ttft-jitter-ms",
        &JITTER_MS.to_string(),
        "--itl-ms",
        "1",
        "--output-tokens",
        "4",
        "--seed",
        &seed.to_string(),
    ])
}

/// Runs `rps` × `seconds` requests of the low-load workload against `url` (plus `extra`
/// flags); returns stdout.
fn run(dir: &Path, url: &str, rps: u32, seconds: f64, extra: &[&str]) -> String {
    let (rps, seconds) = (rps.to_string(), seconds.to_string());
    let args = [
        &[
            "low-load",
            "--url",
            url,
            "--rps",
            &rps,
            "--concurrency",
            "64",
            "--duration",
            &seconds,
            "--no-compare-report",
            "--no-progress",
        ],
        extra,
    ]
    .concat();
    let out = in_folder(dir, &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The run ids under `dir/results/raw`, oldest first.
fn run_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("results/raw"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl") && !n.ends_with(".telemetry.jsonl"))
        .map(|n| n.trim_end_matches(".jsonl").to_owned())
        .collect();
    ids.sort();
    ids
}

/// `compare BASE NEW` as its JSON export.
fn compare(dir: &Path, base: &str, new: &str) -> serde_json::Value {
    let json = dir.join("compare.json");
    let out = in_folder(
        dir,
        &[
            "compare",
            base,
            new,
            "--export-json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

fn metric<'a>(export: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    export["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == key)
        .unwrap()
}

#[test]
fn two_mocks_of_one_configuration_are_no_significant_change_in_19_of_20_repetitions() {
    let _alone = alone();
    // 4 workers × 5 repetitions; each repetition: two mocks of TTFT 100 ms (different seeds),
    // 60 requests each.
    let verdicts: Vec<[String; 2]> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4u64)
            .map(|w| {
                s.spawn(move || {
                    (0..5u64)
                        .map(|r| {
                            let rep = w * 5 + r;
                            let (a, b) = (jittered(100, 2 * rep + 1), jittered(100, 2 * rep + 2));
                            let dir = tempfile::tempdir().unwrap();
                            run(dir.path(), &a.base_url, 40, 1.5, &[]);
                            run(dir.path(), &b.base_url, 40, 1.5, &[]);
                            let ids = run_ids(dir.path());
                            let c = compare(dir.path(), &ids[0], &ids[1]);
                            ["ttft_ms_p50", "ttft_ms_p95"]
                                .map(|k| metric(&c, k)["verdict"].as_str().unwrap().to_owned())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(verdicts.len(), 20);
    for (i, key) in ["ttft_ms_p50", "ttft_ms_p95"].iter().enumerate() {
        let quiet = verdicts
            .iter()
            .filter(|v| v[i] == "no significant change")
            .count();
        eprintln!("{key}: no significant change in {quiet} of 20");
        assert!(quiet >= 19, "{key}: {quiet} of 20: {verdicts:?}");
    }
}

#[test]
fn ten_ms_slower_is_worse_and_its_interval_holds_the_change() {
    let _alone = alone();
    let (base, slow) = (jittered(100, 101), jittered(110, 102));
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &base.base_url, 100, 2.0, &[]);
    run(dir.path(), &slow.base_url, 100, 2.0, &[]);
    run(dir.path(), &base.base_url, 100, 2.0, &[]);
    let ids = run_ids(dir.path());
    let c = compare(dir.path(), &ids[0], &ids[1]);
    // The gate: exit 1 for the slower mock, 0 for the same one again; the JUnit XML parses
    // and lists each condition.
    for (new, expected) in [(&ids[1], 1), (&ids[2], 0)] {
        let junit = dir.path().join("junit.xml");
        let out = in_folder(
            dir.path(),
            &[
                "compare",
                &ids[0],
                new,
                "--fail-on",
                "ttft_ms_p95 > +5%",
                "--fail-on",
                "success_rate < -0.5",
                "--junit",
                junit.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(expected), "{out:?}");
        let cases = common::junit_cases(&junit);
        assert_eq!(
            cases,
            [
                ("ttft_ms_p95 > +5%".to_owned(), expected == 1),
                ("success_rate < -0.5".to_owned(), false)
            ]
        );
    }
    for key in ["ttft_ms_p50", "ttft_ms_mean"] {
        let m = metric(&c, key);
        assert_eq!(m["verdict"], "worse", "{key}: {m}");
        let (lo, hi) = (
            m["diff_ci"][0].as_f64().unwrap(),
            m["diff_ci"][1].as_f64().unwrap(),
        );
        assert!(lo <= 10.0 && 10.0 <= hi, "{key}: {lo}..{hi}");
    }
}

#[test]
fn five_trials_give_an_interval_of_the_median_that_holds_the_true_median_and_is_as_wide_as_theory()
{
    let _alone = alone();
    let mock = jittered(100, 7);
    let dir = tempfile::tempdir().unwrap();
    let stdout = run(
        dir.path(),
        &mock.base_url,
        40,
        1.5,
        &["--repeat", "5", "--cooldown", "0"],
    );
    let line = stdout.lines().find(|l| l.starts_with("trials: ")).unwrap();
    let csv = std::fs::read_to_string(dir.path().join(line.trim_start_matches("trials: ").trim()))
        .unwrap();
    // metric,trials,mean,ci_lo,ci_hi,cv,unstable,values
    let row: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("ttft_ms_p50,"))
        .unwrap()
        .split(',')
        .collect();
    let (lo, hi): (f64, f64) = (row[3].parse().unwrap(), row[4].parse().unwrap());
    // The mock's median is 100 ms; llmbench measures it plus the loopback round trip and its
    // own overhead (well under 1 ms).
    assert!(lo <= 101.0 && 100.0 <= hi, "{lo}..{hi}");
    // A median of n uniform draws over a width of 2J has standard deviation J / √n; the 95% t
    // interval of the mean of 5 such medians is 2 · t(0.975, 4) · (J / √n) / √5 wide.
    let n = run_ids(dir.path())
        .iter()
        .map(|id| {
            let raw = dir.path().join(format!("results/raw/{id}.jsonl"));
            llmbench::record::read_records(&raw).unwrap().len()
        })
        .sum::<usize>() as f64
        / 5.0;
    let analytic = 2.0 * 2.776 * (JITTER_MS / n.sqrt()) / 5f64.sqrt();
    let width = hi - lo;
    assert!(
        analytic / 2.0 <= width && width <= analytic * 2.0,
        "width {width} against {analytic} (n {n})"
    );
}
