//! A real-browser check of the HTML reports: a run report and a comparison report, rendered from
//! fixed records, loaded by headless Chromium. The page must log nothing to the console, carry
//! the expected SVG charts in the live DOM, reference nothing outside itself, and a screenshot
//! must not be blank. Skipped (with a message) when Chromium is not installed, unless
//! LLMBENCH_REQUIRE_CHROMIUM=1 (as .ci/run sets), which makes a missing Chromium a failure.

mod common;
mod report_fixture;

use std::path::{Path, PathBuf};
use std::process::Command;

use llmbench::app::chromium::{find_chromium, headless_args};
use llmbench::app::results::render_comparison;
use llmbench::report::Renderer;

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
    let Some(chromium) = chromium() else { return };
    check_page(
        &chromium,
        &page,
        &["sweep-ttft-throughput", "sweep-rates", "ttft-time"],
    );
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
    let thead = &html[html.find("<table id=\"runs\"").unwrap()..];
    let thead = &thead[..thead.find("</thead>").unwrap()];
    let headers: Vec<String> = thead
        .split("<th")
        .skip(1)
        .filter(|h| h.starts_with('>') || h.starts_with(' '))
        .map(|h| {
            let h = &h[h.find('>').unwrap() + 1..];
            let h = h.split("</th>").next().unwrap();
            h.split("<br>").next().unwrap().to_owned()
        })
        .collect();
    assert!(headers.len() > 10, "{headers:?}");
    let a4 = results.join("reports/benchmark_report.a4.html");
    std::fs::write(&a4, html.replace("</head>", "<style>@page { size: A4 portrait; } @page landscape { size: A4 landscape; }</style></head>")).unwrap();
    let a4_pdf = a4.with_extension("pdf");
    llmbench::app::chromium::print_pdf(&chromium, &a4, &a4_pdf).unwrap();
    for pdf in [results.join("reports/benchmark_report.pdf"), a4_pdf] {
        let text = pdftotext(&pdf);
        if text.is_empty() {
            continue;
        }
        let words: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for h in &headers {
            let h = h.replace("&#x2f;", "/").replace("&amp;", "&");
            // A header may wrap inside its cell: look for each of its words.
            for w in h.split_whitespace() {
                assert!(
                    words.contains(w),
                    "{}: header {h:?} (word {w:?}) missing",
                    pdf.display()
                );
            }
        }
    }
}

/// The text of `pdf` (poppler's `pdftotext`); a missing `pdftotext` fails where Chromium is
/// required (CI installs both), else the check is skipped with a message.
fn pdftotext(pdf: &Path) -> String {
    match Command::new("pdftotext").arg(pdf).arg("-").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        other => {
            assert!(
                std::env::var("LLMBENCH_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
                "pdftotext failed ({other:?}): install poppler-utils"
            );
            eprintln!("SKIPPED: pdftotext (poppler-utils) is not installed");
            String::new()
        }
    }
}
