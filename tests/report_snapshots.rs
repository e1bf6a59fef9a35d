//! Snapshot tests: the Markdown reports and the summary CSV rendered from a fixed set of records
//! must match tests/snapshots/ byte for byte. After an intended change, regenerate them with
//! `UPDATE_SNAPSHOTS=1 cargo test --release --test report_snapshots` and review the diff.

mod report_fixture;

use std::path::PathBuf;

use llmbench::app::results::render_comparison;
use llmbench::report::Renderer;

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with UPDATE_SNAPSHOTS=1", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(
                expected.lines().count().min(actual.lines().count()) + 1,
                |n| n + 1,
            );
        panic!(
            "{} differs from the rendered output at line {line}:\n  expected: {:?}\n  actual:   {:?}\nrerun with UPDATE_SNAPSHOTS=1 if the change is intended",
            path.display(),
            expected.lines().nth(line - 1).unwrap_or(""),
            actual.lines().nth(line - 1).unwrap_or("")
        );
    }
}

#[test]
fn the_run_report_and_csv_match_their_snapshots() {
    let runs = report_fixture::runs();
    let run = &runs[0];
    let ctx = run.report_context();
    let report = Renderer::new(None).run_report(&ctx).unwrap();
    check("run_report.md", &report.markdown);
    check("summary.csv", &report.csv);
    check("summary.txt", &report.terminal);
    // The HTML is checked in a real browser (tests/browser.rs); here, that it carries its charts.
    for id in [
        "ttft-hist",
        "ttft-cdf",
        "e2el-hist",
        "e2el-cdf",
        "ttft-time",
        "throughput-time",
        "inflight-time",
        "errors-time",
        "phase-ttft",
    ] {
        assert!(report.html.contains(&format!("<svg id=\"{id}\"")), "{id}");
    }
}

#[test]
fn the_comparison_report_matches_its_snapshot() {
    let runs = report_fixture::runs();
    let (md, html) = render_comparison(&runs, 0, &Renderer::new(None)).unwrap();
    check("comparison.md", &md);
    for id in [
        "runs-ttft-ms-p50",
        "runs-output-tok-per-s",
        "workloads-ttft-ms-p50",
    ] {
        assert!(html.contains(&format!("<svg id=\"{id}\"")), "{id}");
    }
}

#[test]
fn rendering_is_deterministic() {
    let a = report_fixture::runs();
    let b = report_fixture::runs();
    let r = Renderer::new(None);
    assert_eq!(
        render_comparison(&a, 1, &r).unwrap(),
        render_comparison(&b, 1, &r).unwrap()
    );
}

/// Checks one metric's statistics: every percentile within [min, max], rising with the quantile.
fn check_percentiles(what: &str, p: [f64; 5], min: f64, max: f64) {
    for (i, v) in p.iter().enumerate() {
        assert!(
            min <= *v && *v <= max,
            "{what}: percentile {i} ({v}) outside [{min}, {max}]"
        );
        if i > 0 {
            assert!(p[i - 1] <= *v, "{what}: percentiles fall: {p:?}");
        }
    }
}

#[test]
fn every_snapshot_percentile_lies_within_min_and_max() {
    // The stored summary CSV: for each `<metric>_p50` column, the metric's p50..p999, min, max.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/summary.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let metrics: Vec<&str> = header
        .iter()
        .filter_map(|h| h.strip_suffix("_p50"))
        .collect();
    assert!(metrics.len() >= 10, "{metrics:?}");
    let mut checked = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        for m in &metrics {
            let get = |s: &str| {
                let i = col(&format!("{m}_{s}")).unwrap_or_else(|| panic!("{m}_{s} column"));
                cells[i].parse::<f64>().ok()
            };
            let (Some(min), Some(max)) = (get("min"), get("max")) else {
                continue;
            };
            let p = ["p50", "p90", "p95", "p99", "p999"].map(|s| get(s).unwrap());
            check_percentiles(&format!("summary.csv {} {m}", cells[0]), p, min, max);
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked}");
    // Every fixture run's summary, every phase and `all`, every metric.
    for run in report_fixture::runs() {
        for row in run.analysis.summary.rows() {
            for d in &row.metrics {
                let (Some(min), Some(max)) = (d.min, d.max) else {
                    continue;
                };
                let p = [d.p50, d.p90, d.p95, d.p99, d.p999].map(|v| v.unwrap());
                check_percentiles(
                    &format!("{} {} {}", run.info.id, row.name, d.key),
                    p,
                    min,
                    max,
                );
            }
        }
    }
}
