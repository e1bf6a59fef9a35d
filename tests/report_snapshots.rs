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
