//! Throughput of llmbench's own hot paths, single-threaded, on this machine.
//!
//!     cargo bench --bench throughput [-- sse records parse]     (default: all three)
//!
//! - `sse`: the SSE parser plus chunk parsing (`client::sse` + `client::chunk`) over the recorded
//!   llama.cpp stream `tests/fixtures/llamacpp/chat_stream.sse`, fed in 1,460-byte reads (one
//!   TCP segment), repeated; reports events/s and MB/s.
//! - `records`: `record::RecordWriter` appending 200,000 records of a 64-token streamed request
//!   (each flushed to the OS, as in a run) into a temp file; reports records/s.
//! - `parse`: 1,000,000 such records in a temp raw file, read back by `analysis::load_run`
//!   (the library path of `llmbench parse`) and by the binary `llmbench parse RAW --out CSV`;
//!   reports the time of each, the CPU time and peak resident memory of the binary (Linux:
//!   `/usr/bin/time` when installed), and how much the bench's own peak grew in `load_run`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use llmbench::client::chunk::{StreamItem, parse_stream_data};
use llmbench::client::sse::SseParser;
use llmbench::record::{Outcome, RecordWriter, RequestRecord};

fn sse() {
    let stream = std::fs::read("tests/fixtures/llamacpp/chat_stream.sse").expect("fixture");
    let rounds = 20_000;
    let mut events = 0u64;
    let mut content = 0u64;
    let started = Instant::now();
    for _ in 0..rounds {
        let mut parser = SseParser::new();
        for read in stream.chunks(1460) {
            parser
                .feed(read, |e| {
                    events += 1;
                    if let StreamItem::Chunk(c) = parse_stream_data(e.data) {
                        content += c.content_chars;
                    }
                })
                .expect("fixture parses");
        }
        parser.finish(|_| events += 1);
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(content > 0);
    println!(
        "RESULT sse: {rounds} streams of {} bytes, {events} events in {secs:.3} s: {:.0} events/s, {:.1} MB/s, {:.2} µs per event",
        stream.len(),
        events as f64 / secs,
        (rounds * stream.len()) as f64 / secs / 1e6,
        secs * 1e6 / events as f64,
    );
}

/// A completed 64-token streamed request, as a run records it.
fn record(id: u64) -> RequestRecord {
    let mut r = RequestRecord::unsent(id, "measure", 0, false, true, id * 2_000);
    r.outcome = Outcome::Ok;
    r.status = Some(200);
    r.attempts = 1;
    r.dispatched_us = r.intended_us + 37;
    r.admitted_us = Some(r.dispatched_us + 2);
    r.sent_us = Some(r.dispatched_us + 45);
    r.headers_us = Some(r.dispatched_us + 612);
    r.first_token_us = Some(r.dispatched_us + 50_321);
    r.first_answer_us = r.first_token_us;
    r.chunk_offsets_us = (0..64).map(|k| k * 2_003 + k % 7).collect();
    r.last_token_us = Some(r.first_token_us.unwrap() + 63 * 2_003);
    r.end_us = r.last_token_us.unwrap() + 120;
    r.input_tokens = Some(128);
    r.output_tokens = 64;
    r.content_chunks = 64;
    r.output_chars = 301;
    r
}

fn write_records(path: &Path, n: u64) -> f64 {
    let mut writer = RecordWriter::create_new(path).expect("raw file");
    let started = Instant::now();
    for id in 0..n {
        writer.append(&record(id)).expect("append");
    }
    drop(writer);
    started.elapsed().as_secs_f64()
}

fn records(dir: &Path) {
    let n = 200_000;
    let path = dir.join("records.jsonl");
    let secs = write_records(&path, n);
    let bytes = std::fs::metadata(&path).expect("raw file").len();
    println!(
        "RESULT records: {n} records ({} bytes each) in {secs:.3} s: {:.0} records/s, {:.1} MB/s",
        bytes / n,
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

fn parse(dir: &Path) {
    let n = 1_000_000;
    let raw_dir = dir.join("results").join("raw");
    std::fs::create_dir_all(&raw_dir).expect("raw folder");
    let raw = raw_dir.join("million.jsonl");
    write_records(&raw, n);
    let bytes = std::fs::metadata(&raw).expect("raw file").len();

    let peak_before = peak_rss_kb();
    let started = Instant::now();
    let run = llmbench::report::stored::load_run(&raw).expect("the raw file loads");
    let lib_secs = started.elapsed().as_secs_f64();
    let lib_growth = peak_rss_kb()
        .zip(peak_before)
        .map(|(a, b)| a.saturating_sub(b));
    assert_eq!(run.analysis.summary.all.ok, n);
    drop(run);

    let csv = dir.join("million.csv");
    // `/usr/bin/time` reports the child's CPU and peak memory; without it, the time alone.
    let timed = Path::new("/usr/bin/time").exists();
    let mut cmd = if timed {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "TIME %U %S %M"])
            .arg(env!("CARGO_BIN_EXE_llmbench"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_llmbench"))
    };
    let started = Instant::now();
    let out = cmd
        .arg("parse")
        .arg(&raw)
        .arg("--out")
        .arg(&csv)
        .output()
        .expect("llmbench runs");
    let bin_secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let usage = stderr
        .lines()
        .find_map(|l| l.strip_prefix("TIME "))
        .and_then(|l| {
            let v: Vec<f64> = l.split(' ').filter_map(|x| x.parse().ok()).collect();
            (v.len() == 3).then(|| {
                format!(
                    ", CPU {:.2} s user + {:.2} s system, peak resident {:.0} MB",
                    v[0],
                    v[1],
                    v[2] / 1024.0
                )
            })
        })
        .unwrap_or_default();
    let growth = lib_growth
        .map(|kb| format!(" (bench peak grew {:.0} MB)", kb as f64 / 1024.0))
        .unwrap_or_default();
    println!(
        "RESULT parse: {n} records ({:.0} MB): analysis::load_run {lib_secs:.3} s{growth}; `llmbench parse --out` (whole process) {bin_secs:.3} s{usage}",
        bytes as f64 / 1e6
    );
}

/// This process's peak resident memory so far, KB (Linux).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| picked.is_empty() || picked.iter().any(|p| p == name);
    let dir = tempfile::tempdir().expect("temp dir");
    if wants("sse") {
        sse();
    }
    if wants("records") {
        records(dir.path());
    }
    if wants("parse") {
        parse(dir.path());
    }
}
