//! `llmbench merge --summaries-only`: joins shard runs from the histogram files they wrote
//! (`summary/<id>.hdr.json`, see `stats::state`) instead of their records, for runs whose raw
//! records are too costly to move. The shards are found and checked as for a raw merge; each
//! state is moved onto the merged clock by its shard's anchor and combined; the merged run gets
//! a summary CSV, its intervals, the reports and metadata, but no raw file (so no timeline and
//! no per-label rows). Its percentiles, counts, windows and rates equal the raw merge's.

use std::io::Write;

use super::cli::MergeArgs;
use super::merge::{ShardInput, merged_base, merged_info, origin, write_metadata};
use crate::record::{RunFiles, layout};
use crate::report::{Files, ReportContext};
use crate::run::write_atomic;
use crate::settings::templates_folder;
use crate::stats::state::{StatsState, combine};
use crate::stats::timeline::Timeline;

/// Merges `inputs` from their histogram files into `args.results`.
pub(super) fn merge(inputs: &[ShardInput], args: &MergeArgs) -> Result<(), String> {
    let origin = origin(inputs);
    let mut states = Vec::new();
    for i in inputs {
        let (_, files) = RunFiles::of_raw(&i.raw);
        let text = std::fs::read_to_string(&files.histograms).map_err(|e| {
            format!(
                "{}: cannot read the shard's histograms ({e}); merge its raw records instead (leave out the summaries-only flag)",
                files.histograms.display()
            )
        })?;
        let state: StatsState = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a histogram file ({e})", files.histograms.display()))?;
        states.push((state, i.offset_us(origin)));
    }
    let summary = combine(&states)?;
    let files = claim(args, inputs)?;
    let id = id_of(&files);
    let info = merged_info(inputs, &id);
    let warnings = summary.warnings(&info.requested());
    let timeline = Timeline::default();
    let ctx = ReportContext::new(&info, &summary, &timeline, &warnings, Files::from(&files));
    let renderer = crate::report::Renderer::new(templates_folder(args.templates.as_ref()));
    let report = renderer.run_report(&ctx).map_err(|e| e.to_string())?;
    for (path, text) in [
        (&files.csv, &report.csv),
        (&files.intervals, &report.intervals),
        (&files.markdown, &report.markdown),
        (&files.html, &report.html),
    ] {
        write_atomic(path, text).map_err(|e| e.to_string())?;
    }
    write_metadata(inputs, &files, &info, Some((&summary, &warnings)))?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}\n\nmerged {} shards from their histograms\nsummary:     {}\nreports:     {}\n             {}",
        report.terminal.trim_end(),
        inputs.len(),
        files.csv.display(),
        files.markdown.display(),
        files.html.display()
    );
    Ok(())
}

/// Claims the merged run's id (its metadata file is the claim: no raw file is written).
fn claim(args: &MergeArgs, inputs: &[ShardInput]) -> Result<RunFiles, String> {
    let base = format!("{}-summaries", merged_base(inputs));
    for sub in layout::FOLDERS {
        let dir = args.results.join(sub);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e} (pass --results DIR)", dir.display()))?;
    }
    for n in 1.. {
        let id = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let files = RunFiles::new(&args.results, &id);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&files.metadata)
        {
            Ok(_) => return Ok(files),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", files.metadata.display())),
        }
    }
    unreachable!("some suffix is free")
}

fn id_of(files: &RunFiles) -> String {
    files
        .metadata
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
