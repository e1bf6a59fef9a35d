//! The `parse` and `report` commands: read finished runs back from `results/` (raw records are
//! the source of truth), recompute their statistics, and write the summary CSV (`parse`) or the
//! comparison report across runs (`report`, optionally printed to PDF by headless Chromium;
//! `refresh_comparison` rewrites it after every run, as the original tool's pipeline did).
//! Everything is read and rendered before the first file is written, so a bad template leaves
//! nothing half-written. One bad file does not stop the others: among several runs, one that
//! cannot be read is skipped with a warning naming it and why (exit 2 only when none is left);
//! a telemetry file (`raw/<id>.telemetry.jsonl`) is never taken for a run's records; a torn
//! last line (a crash, a full disk) is skipped with a warning.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::EXIT_OK;
use super::chromium::{find_chromium, print_pdf};
use super::cli::{ParseArgs, ReportArgs};
use crate::report::Renderer;
use crate::report::comparison::{ComparedRun, ComparisonContext};
use crate::report::export::{ComparisonExport, RunExport, to_json};
use crate::report::stored::{StoredRun, load_run};
use crate::run::write_atomic;
use crate::settings::templates_folder;

/// File name of the comparison report (the original tool's), under `<results>/reports/`.
pub const COMPARISON_NAME: &str = "benchmark_report";

use super::usage_error as usage;

/// Prints a warning about one file that the command goes on without (in part or whole).
fn warn(message: impl std::fmt::Display) {
    eprintln!("llmbench: warning: {message}");
}

/// A run's telemetry readings, not its records (`raw/<id>.telemetry.jsonl`).
fn is_telemetry_file(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(".telemetry.jsonl"))
}

/// Loads the run at `raw`, printing a warning for each torn line it skipped.
fn load_noting(raw: &Path) -> Result<StoredRun, String> {
    if is_telemetry_file(raw) {
        return Err(format!(
            "{}: a run's telemetry readings, not its records; give its raw/<run-id>.jsonl",
            raw.display()
        ));
    }
    let run = load_run(raw).map_err(|e| e.to_string())?;
    run.notes.iter().for_each(warn);
    Ok(run)
}

/// Loads every run of `raws`. With one, a run that cannot be read is the error; with several it
/// is skipped with a warning naming it (telemetry files quietly), and only none left is an error.
fn load_all(raws: &[PathBuf]) -> Result<Vec<StoredRun>, String> {
    if let [one] = raws {
        return load_noting(one).map(|r| vec![r]);
    }
    let mut runs = Vec::new();
    for raw in raws.iter().filter(|p| !is_telemetry_file(p)) {
        match load_noting(raw) {
            Ok(r) => runs.push(r),
            Err(e) => warn(format_args!("skipping {}: {e}", raw.display())),
        }
    }
    if runs.is_empty() {
        return Err(format!(
            "none of the {} files given could be read as a run's records (see the warnings above)",
            raws.len()
        ));
    }
    Ok(runs)
}

fn renderer(templates: &Option<PathBuf>) -> Renderer {
    Renderer::new(templates_folder(templates.as_ref()))
}

/// `llmbench parse RAW.jsonl...`: the summary CSV of each run, recomputed from its records.
pub fn parse(args: &ParseArgs) -> u8 {
    if args.raw.len() > 1 && args.out_dir.is_none() {
        return usage(format!(
            "{} raw files given: pass --out-dir DIR to write DIR/<run-id>.csv for each (standard output and --out take one)",
            args.raw.len()
        ));
    }
    let renderer = renderer(&args.templates);
    let runs = match load_all(&args.raw) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let mut outputs = Vec::new();
    for run in &runs {
        let csv = match renderer.summary_csv(&run.report_context()) {
            Ok(c) => c,
            Err(e) => return usage(e),
        };
        outputs.push((run.info.id.clone(), csv));
    }
    match (&args.out, &args.out_dir) {
        (Some(path), _) => {
            if let Err(e) = write_atomic(path, &outputs[0].1) {
                return usage(e);
            }
        }
        (None, Some(dir)) => {
            if let Err(e) = std::fs::create_dir_all(dir) {
                return usage(format!(
                    "--out-dir {}: cannot create it: {e}",
                    dir.display()
                ));
            }
            for (id, csv) in &outputs {
                if let Err(e) = write_atomic(&dir.join(format!("{id}.csv")), csv) {
                    return usage(e);
                }
            }
        }
        (None, None) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error.
            let _ = out
                .write_all(outputs[0].1.as_bytes())
                .and_then(|()| out.flush());
        }
    }
    EXIT_OK
}

/// Finds run `spec`: a raw records file, or a run id under `<results>/raw/`.
pub(super) fn resolve_run(spec: &str, results: &Path) -> Result<PathBuf, String> {
    let as_path = PathBuf::from(spec);
    if as_path.is_file() {
        return Ok(as_path);
    }
    let id = spec.strip_suffix(".jsonl").unwrap_or(spec);
    let raw = results.join("raw").join(format!("{id}.jsonl"));
    if raw.is_file() {
        Ok(raw)
    } else {
        Err(format!(
            "run {spec:?} not found: neither a file nor {}; list runs with `ls {}`",
            raw.display(),
            results.join("raw").display()
        ))
    }
}

/// Every raw records file under `<results>/raw/`, by name (telemetry files left out).
fn all_runs(results: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(results.join("raw"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl") && !is_telemetry_file(p))
        .collect();
    v.sort();
    v
}

/// `llmbench report [RUNS...]`: the comparison report across runs.
pub fn report(args: &ReportArgs) -> u8 {
    // Chromium is found (and checked) before anything is written.
    let chromium = match args.pdf.then(find_chromium).transpose() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let runs = match chosen_runs(args) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let baseline = match &args.baseline {
        None => 0,
        Some(spec) => match baseline_index(spec, &runs) {
            Ok(i) => i,
            Err(e) => return usage(e),
        },
    };
    let (md_path, html_path) =
        match write_comparison(&args.results, &runs, baseline, &renderer(&args.templates)) {
            Ok(paths) => paths,
            Err(e) => return usage(e),
        };
    if let Some(path) = &args.export_json
        && let Err(e) = write_export(path, &runs, baseline)
    {
        return usage(e);
    }
    println!(
        "compared {} runs (baseline {})\nreports: {}\n         {}",
        runs.len(),
        runs[baseline].info.id,
        md_path.display(),
        html_path.display()
    );
    if let Some(chromium) = chromium {
        let pdf = html_path.with_extension("pdf");
        if let Err(e) = print_pdf(&chromium, &html_path, &pdf) {
            return usage(e);
        }
        println!("         {}", pdf.display());
        if let [run] = runs.as_slice()
            && args.runs.len() == 1
        {
            match run_pdf(&chromium, run, &renderer(&args.templates)) {
                Ok(pdf) => println!("run:     {}", pdf.display()),
                Err(e) => return usage(e),
            }
        }
    }
    EXIT_OK
}

/// `report RUN --pdf` for one run also prints that run's own report, `reports/<id>.html`
/// (rendered from its records first when the run left none), to `reports/<id>.pdf`.
fn run_pdf(chromium: &Path, run: &StoredRun, renderer: &Renderer) -> Result<PathBuf, String> {
    let html = PathBuf::from(&run.files.html);
    if !html.is_file() {
        let report = renderer
            .run_report(&run.report_context())
            .map_err(|e| e.to_string())?;
        if let Some(dir) = html.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        write_atomic(&html, report.html).map_err(|e| e.to_string())?;
    }
    let pdf = html.with_extension("pdf");
    print_pdf(chromium, &html, &pdf)?;
    Ok(pdf)
}

/// Writes `<results>/reports/benchmark_report.md` and `.html` comparing `runs` against
/// `runs[baseline]`; both are rendered before either is written.
fn write_comparison(
    results: &Path,
    runs: &[StoredRun],
    baseline: usize,
    renderer: &Renderer,
) -> Result<(PathBuf, PathBuf), String> {
    let reports = results.join("reports");
    let (md, html) = render_comparison(runs, baseline, renderer).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&reports)
        .map_err(|e| format!("cannot create {}: {e}", reports.display()))?;
    let md_path = reports.join(format!("{COMPARISON_NAME}.md"));
    let html_path = reports.join(format!("{COMPARISON_NAME}.html"));
    for (path, text) in [(&md_path, &md), (&html_path, &html)] {
        write_atomic(path, text).map_err(|e| e.to_string())?;
    }
    Ok((md_path, html_path))
}

/// After a run: rewrites the comparison report over every run in `results` (what
/// `llmbench report --results DIR` writes, the earliest run the baseline). Returns the
/// Markdown report's path and how many runs it compares.
pub fn refresh_comparison(
    results: &Path,
    templates: Option<&PathBuf>,
) -> Result<(PathBuf, usize), String> {
    let args = ReportArgs {
        runs: Vec::new(),
        baseline: None,
        results: results.to_owned(),
        templates: templates.cloned(),
        pdf: false,
        export_json: None,
    };
    let runs = chosen_runs(&args)?;
    let (md, _) = write_comparison(results, &runs, 0, &renderer(&args.templates))?;
    Ok((md, runs.len()))
}

/// The runs the report compares (those named, or all under `--results`), loaded, in start
/// order, each once.
fn chosen_runs(args: &ReportArgs) -> Result<Vec<StoredRun>, String> {
    let raws = if args.runs.is_empty() {
        let all = all_runs(&args.results);
        if all.is_empty() {
            return Err(format!(
                "no runs under {}: run a benchmark first, or pass --results DIR",
                args.results.join("raw").display()
            ));
        }
        all
    } else {
        let mut v = Vec::new();
        for spec in &args.runs {
            v.push(resolve_run(spec, &args.results)?);
        }
        v
    };
    let mut runs = load_all(&raws)?;
    runs.sort_by(|a, b| (&a.info.started_at, &a.info.id).cmp(&(&b.info.started_at, &b.info.id)));
    runs.dedup_by(|a, b| a.info.id == b.info.id);
    Ok(runs)
}

/// Where the run `--baseline` names (a run id or a raw file's path) is among `runs`.
fn baseline_index(spec: &str, runs: &[StoredRun]) -> Result<usize, String> {
    let id = Path::new(spec)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.to_owned());
    runs.iter().position(|r| r.info.id == id).ok_or_else(|| {
        format!(
            "--baseline {spec}: not among the runs compared; name one of: {}",
            runs.iter()
                .map(|r| r.info.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Writes the comparison's JSON export (`--export-json`) to `path`.
fn write_export(path: &Path, runs: &[StoredRun], baseline: usize) -> Result<(), String> {
    let export = ComparisonExport::new(
        &runs[baseline].info.id,
        runs.iter()
            .map(|r| {
                let o = &r.outcome;
                RunExport::new(
                    &r.info,
                    &r.analysis.summary,
                    &r.analysis.timeline,
                    &r.warnings,
                )
                .with_outcome(o.slo, &o.verdicts, o.sweep.as_ref())
            })
            .collect(),
    );
    write_atomic(path, to_json(&export)).map_err(|e| e.to_string())
}

/// The comparison report's Markdown and HTML; `runs` in report order.
pub fn render_comparison(
    runs: &[StoredRun],
    baseline: usize,
    renderer: &Renderer,
) -> Result<(String, String), crate::report::RenderError> {
    let compared: Vec<ComparedRun<'_>> = runs
        .iter()
        .map(|r| ComparedRun {
            info: &r.info,
            all: &r.analysis.summary.all,
            warnings: &r.warnings,
            errors: &r.analysis.summary.errors,
            report_link: format!("{}.html", r.info.id),
            levels: r.load_levels(),
        })
        .collect();
    let ctx = ComparisonContext::new(&compared, baseline);
    Ok((
        renderer.render("comparison.md.j2", &ctx)?,
        renderer.render("comparison.html.j2", &ctx)?,
    ))
}
