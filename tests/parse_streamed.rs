//! `analysis::load_run` streams a raw file's records (several thousand, over many read blocks
//! and batches) into the analysis; the result must equal the analysis of the same records held
//! in memory, exactly, and `llmbench parse` must print the CSV of that analysis.

use std::path::Path;
use std::process::Command;

use llmbench::record::{Outcome, RecordWriter, RequestRecord};
use llmbench::report::stored::load_run;
use llmbench::stats::analysis::analyze;

/// Varied records: three phases (the first a warmup), streamed and not, failures of several
/// classes, uneven timings from a fixed-seed generator.
fn records(n: u64) -> Vec<RequestRecord> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    (0..n)
        .map(|id| {
            let phase = if id < 50 { 0 } else { 1 + (id % 2) as usize };
            let name = ["warmup", "steady", "burst"][phase];
            let sent = id * 3_000 + next(2_000);
            let tokens = 1 + next(80);
            let mut r = RequestRecord::synthetic(
                id,
                name,
                phase,
                sent,
                10_000 + next(90_000),
                500 + next(5_000),
                tokens,
            );
            r.warmup = phase == 0;
            r.intended_us = sent.saturating_sub(next(300));
            r.dispatched_us = r.intended_us + next(50);
            r.admitted_us = Some(r.dispatched_us + next(5));
            r.end_us += next(200);
            r.output_chars = tokens * (1 + next(6));
            match next(20) {
                0 => {
                    r.outcome = Outcome::HttpStatus;
                    r.status = Some([429, 500, 503][next(3) as usize]);
                }
                1 => r.outcome = Outcome::Timeout,
                2 => {
                    r.streamed = false;
                    r.chunk_offsets_us.clear();
                }
                _ => {}
            }
            r
        })
        .collect()
}

fn write(raw: &Path, records: &[RequestRecord]) {
    std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
    let mut w = RecordWriter::create_new(raw).unwrap();
    for r in records {
        w.append(r).unwrap();
    }
}

#[test]
fn streamed_analysis_equals_the_analysis_of_the_records_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir
        .path()
        .join("results")
        .join("raw")
        .join("streamed.jsonl");
    let records = records(6_000);
    write(&raw, &records);
    assert!(
        std::fs::metadata(&raw).unwrap().len() > 3 << 20,
        "several read blocks"
    );

    let expected = analyze(&records);
    let run = load_run(&raw).unwrap();
    assert_eq!(run.analysis.summary, expected.summary);
    assert_eq!(run.analysis.timeline, expected.timeline);
    assert_eq!(run.analysis.summary.warmup_requests, 50);
    assert!(run.analysis.summary.all.failed > 0);

    // No metadata file: the stand-in description comes from the stream.
    assert!(!run.has_metadata);
    assert_eq!(run.info.phases, ["warmup", "steady", "burst"]);
    let last_end = records.iter().map(|r| r.end_us).max().unwrap();
    assert_eq!(run.info.wall_s, last_end as f64 / 1e6);
    assert!(run.info.stream);

    // `llmbench parse` prints the CSV of exactly this analysis, the same bytes every time.
    let parse = || {
        let out = Command::new(env!("CARGO_BIN_EXE_llmbench"))
            .arg("parse")
            .arg(&raw)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let csv = parse();
    let text = String::from_utf8(csv.clone()).unwrap();
    assert_eq!(text.lines().count(), 1 + 3, "header, steady, burst, all");
    let all_ok = run.analysis.summary.all.ok;
    assert!(text.lines().last().unwrap().starts_with("all,"), "{text}");
    assert!(text.contains(&format!(",{all_ok},")), "{text}");
    assert_eq!(parse(), csv);
}

#[test]
fn a_bad_line_in_a_large_file_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("results").join("raw").join("bad.jsonl");
    write(&raw, &records(3_000));
    let mut text = std::fs::read(&raw).unwrap();
    text.extend_from_slice(b"{\"id\": oops}\n");
    std::fs::write(&raw, &text).unwrap();
    let csv = dir.path().join("out.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .arg("parse")
        .arg(&raw)
        .arg("--out")
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:3001:"), "{err}");
    assert!(!csv.exists());
}
