//! A real-browser check of the HTML reports: a run report and a comparison report, rendered from
//! fixed records, loaded by headless Chromium. The page must log nothing to the console, carry
//! the expected SVG charts in the live DOM, reference nothing outside itself, and a screenshot
//! must not be blank. Skipped (with a message) when Chromium is not installed, unless
//! LLMBENCH_REQUIRE_CHROMIUM=1 (as .ci/run sets), which makes a missing Chromium a failure.

mod common;
mod printing;
mod report_fixture;

use std::path::{Path, PathBuf};
use std::process::Command;

use llmbench::app::chromium::{find_chromium, headless_args};
use llmbench::app::results::render_comparison;
use llmbench::report::Renderer;
use printing::{assert_printed, column_headers, print_on_a4};

fn chromium() -> Option<PathBuf> {
    let found = find_chromium();
    if let Err(e) = &found {
        if std::env::var("LLMBENCH_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!("LLMBENCH_REQUIRE_CHROMIUM=1 but no usable Chromium: {e}");
        }
        eprintln!("SKIPPED: the real-browser test needs Chromium: {e}");
    }
    found.ok()
}

/// Runs Chromium on `page` with `extra` flags; returns (stdout, stderr).
fn browse(chromium: &Path, page: &Path, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args(headless_args(profile.path()))
        .args(["--enable-logging=stderr", "--v=0", "--hide-scrollbars"])
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// Console messages the page produced (Chromium logs them as `...:CONSOLE...] "text"`).
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// Loads `page`: no console output, each chart present as an SVG in the DOM, a screenshot
/// with real content.
fn check_page(chromium: &Path, page: &Path, charts: &[&str]) {
    let html = std::fs::read_to_string(page).unwrap();
    for banned in ["<script", "<link", "src=", "@import", "url(", "@font-face"] {
        assert!(
            !html.contains(banned),
            "{}: {banned} makes the page load something",
            page.display()
        );
    }
    let (dom, stderr) = browse(chromium, page, &["--dump-dom".to_string()]);
    assert!(
        console_lines(&stderr).is_empty(),
        "console output: {:?}",
        console_lines(&stderr)
    );
    for id in charts {
        let tag = format!("<svg id=\"{id}\"");
        assert!(
            dom.contains(&tag),
            "{}: no {tag} in the DOM",
            page.display()
        );
    }
    assert!(
        dom.matches("<path class=\"series\"").count() + dom.matches("<rect class=\"bar\"").count()
            > 10
    );

    let shot = page.with_extension("png");
    let (_, stderr) = browse(
        chromium,
        page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
        ],
    );
    assert!(console_lines(&stderr).is_empty());
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    assert_eq!((info.width, info.height), (1280, 2000));
    let first = pixels[0];
    let differing = pixels.iter().filter(|p| *p != &first).count();
    let mut colours: Vec<&[u8]> = pixels.iter().step_by(7).copied().collect();
    colours.sort();
    colours.dedup();
    assert!(
        differing * 50 > pixels.len() && colours.len() > 20,
        "{}: the screenshot is blank ({differing} of {} pixels differ from the first, {} colours)",
        shot.display(),
        pixels.len(),
        colours.len()
    );
}

#[test]
fn reports_load_in_a_real_browser_with_their_charts() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("LLMBENCH_KEEP_BROWSER_PAGES").map(PathBuf::from);
    let out = keep.as_deref().unwrap_or(dir.path());
    let renderer = Renderer::new(None);
    let runs = report_fixture::runs();

    let run = &runs[0];
    let ctx = run.report_context();
    let page = out.join("run.html");
    std::fs::write(&page, renderer.run_report(&ctx).unwrap().html).unwrap();
    check_page(
        &chromium,
        &page,
        &[
            "ttft-hist",
            "ttft-cdf",
            "e2el-hist",
            "e2el-cdf",
            "ttft-time",
            "throughput-time",
            "inflight-time",
            "errors-time",
            "phase-ttft",
            "phase-e2el",
            "phase-throughput",
        ],
    );

    let (_, html) = render_comparison(&runs, 0, &renderer).unwrap();
    let page = out.join("comparison.html");
    std::fs::write(&page, html).unwrap();
    check_page(
        &chromium,
        &page,
        &[
            "runs-req-per-s",
            "runs-output-tok-per-s",
            "runs-ttft-ms-p50",
            "runs-ttft-ms-p99",
            "runs-e2el-ms-p50",
            "workloads-ttft-ms-p50",
        ],
    );
}

#[test]
fn the_console_check_catches_a_page_that_logs() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("noisy.html");
    std::fs::write(
        &page,
        "<html><body><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let (_, stderr) = browse(&chromium, &page, &["--dump-dom".to_string()]);
    assert_eq!(console_lines(&stderr).len(), 1, "{stderr}");
}

#[test]
fn report_pdf_prints_the_comparison_with_chromium() {
    let Some(chromium) = chromium() else { return };
    let results = tempfile::tempdir().unwrap();
    for sub in ["raw", "runs"] {
        std::fs::create_dir_all(results.path().join(sub)).unwrap();
    }
    for run in report_fixture::runs() {
        let raw = results.path().join(format!("raw/{}.jsonl", run.info.id));
        let mut w = llmbench::record::RecordWriter::create_new(&raw).unwrap();
        for r in report_fixture::records(0) {
            w.append(&r).unwrap();
        }
        let meta = serde_json::json!({ "run": run.info });
        std::fs::write(
            results.path().join(format!("runs/{}.json", run.info.id)),
            meta.to_string(),
        )
        .unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args([
            "report",
            "--pdf",
            "--results",
            results.path().to_str().unwrap(),
        ])
        .env("LLMBENCH_CHROMIUM", &chromium)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pdf = std::fs::read(results.path().join("reports/benchmark_report.pdf")).unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let md = std::fs::read_to_string(results.path().join("reports/benchmark_report.md")).unwrap();
    assert!(
        md.contains("| qwen-7b | medium-load |"),
        "metadata read back: {md}"
    );
}

/// The one file under `dir/results/reports` named like a run (not the comparison) ending `ext`.
fn run_report(results: &Path, ext: &str) -> PathBuf {
    std::fs::read_dir(results.join("reports"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("bench_") && n.ends_with(ext)
        })
        .unwrap_or_else(|| panic!("no run report *{ext} in {}", results.display()))
}

/// The SVG element with id `id` in `html`.
fn svg<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("no chart {id}"));
    let len = html[start..].find("</svg>").unwrap();
    &html[start..start + len]
}

#[test]
fn the_capacity_sweep_report_draws_latency_against_throughput_with_slo_and_knee() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/capacity-sweep.rhai");
    let out = common::in_folder(
        dir.path(),
        &[
            script.to_str().unwrap(),
            "--set",
            "duration=2",
            "--set",
            "probe=2",
            "--no-compare-report",
            "--no-progress",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = run_report(&dir.path().join("results"), ".html");
    let html = std::fs::read_to_string(&page).unwrap();
    let steps = 5;
    for id in [
        "sweep-ttft-throughput",
        "sweep-e2el-throughput",
        "sweep-ttft-concurrency",
    ] {
        let chart = svg(&html, id);
        for series in 0..2 {
            let points = chart
                .matches(&format!("<circle class=\"point\" data-series=\"{series}\""))
                .count();
            assert_eq!(points, steps, "{id}: series {series} has {points} points");
        }
        assert_eq!(
            chart.matches("<g class=\"mark\"").count(),
            1,
            "{id}: the knee"
        );
    }
    // The script's SLO limits TTFT and TPOT: each has its line (or its note above the range).
    for id in ["sweep-ttft-throughput", "sweep-tpot-throughput"] {
        assert_eq!(
            svg(&html, id).matches("<g class=\"rule\"").count(),
            1,
            "{id}"
        );
    }
    assert_eq!(
        svg(&html, "sweep-rates")
            .matches("data-series=\"1\"")
            .count(),
        steps
    );
    // The steps' table marks the knee and the Pareto-optimal steps.
    let table = &html[html.find("<table id=\"sweep-steps\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr").count(), steps + 1);
    assert!(
        table.contains("<td>yes</td>"),
        "no Pareto-optimal step: {table}"
    );
    // Read back from its files, the run's report draws the same sweep.
    let again = read_back(&page);
    let mut ids: Vec<String> = ["ttft", "tpot", "e2el"]
        .iter()
        .flat_map(|m| ["throughput", "concurrency"].map(|a| format!("sweep-{m}-{a}")))
        .collect();
    ids.push("sweep-rates".into());
    for id in &ids {
        assert_eq!(svg(&html, id), svg(&again, id), "{id} read back");
    }
    assert_eq!(
        table_of(&html, "sweep-steps"),
        table_of(&again, "sweep-steps")
    );
    let Some(chromium) = chromium() else { return };
    check_page(
        &chromium,
        &page,
        &["sweep-ttft-throughput", "sweep-rates", "ttft-time"],
    );
}

/// The table with id `id` in `html`.
fn table_of<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}"));
    let len = html[start..].find("</table>").unwrap();
    &html[start..start + len]
}

/// The HTML report of the run whose report is `page`, rendered again from the run's files
/// (`results/raw/<id>.jsonl` and `results/runs/<id>.json`) as `llmbench report` reads them.
fn read_back(page: &Path) -> String {
    let id = page.file_stem().unwrap().to_str().unwrap();
    let results = page.parent().unwrap().parent().unwrap();
    let run = llmbench::report::stored::load_run(&results.join(format!("raw/{id}.jsonl"))).unwrap();
    Renderer::new(None)
        .run_report(&run.report_context())
        .unwrap()
        .html
}

/// The requests of phase `phase` in the summary CSV of the run whose report is `page`.
fn phase_requests(page: &Path, phase: &str) -> usize {
    let id = page.file_stem().unwrap().to_str().unwrap();
    let results = page.parent().unwrap().parent().unwrap();
    let csv = std::fs::read_to_string(results.join(format!("summary/{id}.csv"))).unwrap();
    let row = csv
        .lines()
        .find(|l| l.split(',').next() == Some(phase))
        .unwrap_or_else(|| panic!("no row {phase}: {csv}"));
    row.split(',').nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_ramp_report_draws_one_point_per_window_reads_back_alike_and_prints_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ramp-and-gate.rhai");
    let out = common::in_folder(
        dir.path(),
        &[
            script.to_str().unwrap(),
            "--set",
            "peak=40",
            "--set",
            "ramp=5",
            "--set",
            "hold=3",
            "--no-compare-report",
            "--no-progress",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = dir.path().join("results");
    let page = run_report(&results, ".html");
    let html = std::fs::read_to_string(&page).unwrap();
    // About 100 requests ramp from 1 to 40 req/s: 20 or more a window, at most 10 windows.
    let windows = llmbench::stats::ramp::window_count(phase_requests(&page, "ramp"));
    assert!(windows >= 2, "{windows} windows");
    let ids: Vec<String> = ["ttft", "tpot", "e2el"]
        .iter()
        .flat_map(|m| ["throughput", "concurrency"].map(|a| format!("ramp-ramp-{m}-{a}")))
        .chain(["ramp-ramp-rates".to_owned()])
        .collect();
    for id in &ids[..6] {
        let chart = svg(&html, id);
        for series in 0..2 {
            let points = chart
                .matches(&format!("<circle class=\"point\" data-series=\"{series}\""))
                .count();
            assert_eq!(points, windows, "{id}: series {series} has {points} points");
        }
        // The relaxed SLO holds for every window: the top one is marked as the limit's floor.
        assert_eq!(
            chart.matches("<g class=\"mark\"").count(),
            1,
            "{id}: the knee"
        );
    }
    // The script's SLO limits TTFT and TPOT: each has its line (or its note above the range).
    for id in ["ramp-ramp-ttft-throughput", "ramp-ramp-tpot-throughput"] {
        assert_eq!(
            svg(&html, id).matches("<g class=\"rule\"").count(),
            1,
            "{id}"
        );
    }
    let table = table_of(&html, "ramp-ramp-windows");
    assert_eq!(table.matches("<tr").count(), windows + 1);
    assert!(table.contains("limit ≥ here"), "{table}");

    // Read back from its files, the run's report draws the same ramp, SLO and assertions.
    let again = read_back(&page);
    for id in &ids {
        assert_eq!(svg(&html, id), svg(&again, id), "{id} read back");
    }
    assert_eq!(table, table_of(&again, "ramp-ramp-windows"));
    let section = |h: &str| {
        let s = &h[h.find("<h2>SLO and assertions</h2>").expect("SLO section")..];
        s[..s[4..].find("<h2>").unwrap()].to_owned()
    };
    assert_eq!(section(&html), section(&again));
    assert!(section(&html).contains("hold phase keeps up"));

    // A second, gentler ramp: the comparison overlays both runs' windows, one line each.
    let mut args = vec![script.to_str().unwrap()];
    args.extend(["--set", "peak=30", "--set", "ramp=5", "--set", "hold=3"]);
    args.extend(["--no-compare-report", "--no-progress"]);
    let out = common::in_folder(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = common::llmbench()
        .args(["report", "--results", results.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let comparison =
        std::fs::read_to_string(results.join("reports/benchmark_report.html")).unwrap();
    let curves = svg(&comparison, "curves-e2el-throughput");
    assert_eq!(
        curves.matches("<path class=\"series\"").count(),
        2,
        "{curves}"
    );
    let per_series: Vec<usize> = (0..2)
        .map(|i| curves.matches(&format!("data-series=\"{i}\"")).count())
        .collect();
    assert!(per_series.contains(&windows), "{per_series:?} vs {windows}");
    assert!(per_series.iter().all(|&n| n >= 2), "{per_series:?}");

    let Some(chromium) = chromium() else { return };
    check_page(
        &chromium,
        &page,
        &["ramp-ramp-ttft-throughput", "ttft-time"],
    );
    // `report RUN --pdf` prints the run's own report; every column header of its wide tables
    // (the summary and the ramp's windows) survives printing, on the default paper and on A4.
    let id = page.file_stem().unwrap().to_str().unwrap();
    let out = common::llmbench()
        .args([
            "report",
            id,
            "--pdf",
            "--results",
            results.to_str().unwrap(),
        ])
        .env("LLMBENCH_CHROMIUM", &chromium)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut headers = column_headers(&html, "summary");
    assert_eq!(headers.len(), 15, "{headers:?}");
    headers.extend(column_headers(&html, "ramp-ramp-windows"));
    let a4 = print_on_a4(&chromium, &html, &results.join("reports/run.a4.html"));
    for pdf in [page.with_extension("pdf"), a4] {
        assert_printed(&pdf, &headers);
    }
}

/// Runs the quickstart workload briefly against `url` in `dir`.
fn short_run(dir: &Path, url: &str, label: &str) {
    let out = common::in_folder(
        dir,
        &[
            "low-load",
            "--url",
            url,
            "--rps",
            "20",
            "--duration",
            "1.5",
            "--label",
            label,
            "--no-compare-report",
            "--no-progress",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_comparison_of_two_servers_overlays_their_cdfs_and_prints_every_column() {
    let dir = tempfile::tempdir().unwrap();
    let a =
        common::MockProcess::start(&["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "8"]);
    let b =
        common::MockProcess::start(&["--ttft-ms", "40", "--itl-ms", "2", "--output-tokens", "8"]);
    short_run(dir.path(), &a.base_url, "server=a");
    short_run(dir.path(), &b.base_url, "server=b");
    short_run(dir.path(), &a.base_url, "server=a");
    let results = dir.path().join("results");
    let mut args = vec!["report", "--results", results.to_str().unwrap()];
    let chromium = chromium();
    if chromium.is_some() {
        args.push("--pdf");
    }
    let mut cmd = common::llmbench();
    cmd.args(&args);
    if let Some(c) = &chromium {
        cmd.env("LLMBENCH_CHROMIUM", c);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(results.join("reports/benchmark_report.html")).unwrap();
    for id in ["cdf-ttft", "cdf-tpot", "cdf-e2el"] {
        let chart = svg(&html, id);
        let names: Vec<&str> = chart
            .split("<path class=\"series\"")
            .skip(1)
            .map(|p| {
                let t = &p[p.find("<title>").unwrap() + 7..];
                &t[..t.find("</title>").unwrap()]
            })
            .collect();
        assert_eq!(names.len(), 3, "{id}: one series per run");
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "{id}: runs named alike: {names:?}");
    }
    let Some(chromium) = chromium else { return };
    check_page(
        &chromium,
        &results.join("reports/benchmark_report.html"),
        &["cdf-ttft"],
    );
    // Every column header of the runs table survives printing (nothing clipped), on the
    // default paper and on A4.
    let headers = column_headers(&html, "runs");
    assert!(headers.len() > 10, "{headers:?}");
    let a4 = results.join("reports/benchmark_report.a4.html");
    let a4_pdf = print_on_a4(&chromium, &html, &a4);
    for pdf in [results.join("reports/benchmark_report.pdf"), a4_pdf] {
        assert_printed(&pdf, &headers);
    }
}
