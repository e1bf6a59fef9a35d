//! A fixed run for report tests: deterministic records and a fixed description (no wall clock,
//! no host name), so rendered reports are byte-for-byte stable.
#![allow(dead_code)]

use llmbench::record::{Outcome, RequestRecord, RunFiles, RunInfo};
use llmbench::report::Files;
use llmbench::report::stored::StoredRun;
use llmbench::stats::analysis::{Analysis, analyze};

/// One record: sent at `sent_ms`, TTFT and ITL in ms, `tokens` chunks of one token each.
fn record(
    id: u64,
    phase: (&str, usize, bool),
    sent_ms: u64,
    ttft_ms: u64,
    itl_ms: u64,
    tokens: u64,
) -> RequestRecord {
    let sent = sent_ms * 1000;
    let mut r = RequestRecord::synthetic(
        id,
        phase.0,
        phase.1,
        sent,
        ttft_ms * 1000,
        itl_ms * 1000,
        tokens,
    );
    r.warmup = phase.2;
    r.intended_us = sent - 200;
    r.dispatched_us = sent - 150;
    r.admitted_us = Some(sent - 100);
    r.headers_us = Some(sent + 300);
    r.end_us += 100;
    r.input_tokens = Some(20 + id % 7);
    r.output_chars = tokens * 5;
    r
}

/// A warmup phase of 4 requests, a steady phase of 40 (one every 100 ms from 1 s, most of them
/// labelled "chat" or "rag") and a burst of 80 (one every 25 ms from 5.5 s) with three 503s and a timeout; `slower_ms` adds to TTFT.
pub fn records(slower_ms: u64) -> Vec<RequestRecord> {
    let mut v = Vec::new();
    for i in 0..4 {
        v.push(record(i, ("warmup", 0, true), 100 + i * 150, 90, 10, 16));
    }
    for i in 0..40 {
        let id = 4 + i;
        let mut r = record(
            id,
            ("steady", 1, false),
            1000 + i * 100,
            40 + (i * 37) % 23 + slower_ms,
            8 + i % 3,
            16 + i % 17,
        );
        // Per-label rows: half the steady requests are "chat", a third "rag", the rest none.
        r.label = match i % 6 {
            0 | 2 | 4 => Some("chat".into()),
            1 | 3 => Some("rag".into()),
            _ => None,
        };
        v.push(r);
    }
    for i in 0..80 {
        let id = 44 + i;
        let mut r = record(
            id,
            ("burst", 2, false),
            5500 + i * 25,
            60 + (i * 53) % 71 + slower_ms,
            9 + i % 4,
            24,
        );
        if i % 23 == 5 {
            r.outcome = Outcome::HttpStatus;
            r.status = Some(503);
            r.error = Some("HTTP 503: overloaded".into());
            r.first_token_us = None;
            r.last_token_us = None;
            r.chunk_offsets_us.clear();
            r.output_tokens = 0;
            r.content_chunks = 0;
            r.end_us = r.sent_us.unwrap() + 2000;
        }
        if i == 70 {
            r.outcome = Outcome::Timeout;
            r.error = Some("no response within 1 s".into());
        }
        v.push(r);
    }
    v
}

pub fn info(id: &str, model: &str, workload: &str, started_at: &str) -> RunInfo {
    RunInfo {
        id: id.into(),
        workload: workload.into(),
        script: format!("scripts/{workload}.rhai"),
        target: "vllm-local".into(),
        base_url: "http://127.0.0.1:8000/v1".into(),
        model: model.into(),
        endpoint: "chat".into(),
        stream: true,
        mock: false,
        started_at: started_at.into(),
        wall_s: 8.25,
        interrupted: false,
        llmbench_version: "test".into(),
        host: "test-host (2 cores, linux x86_64)".into(),
        phases: vec![
            "warmup: closed loop, 1 concurrent, 4 requests (warmup)".into(),
            "steady: 10 req/s constant, concurrency cap 8, 4 s".into(),
            "burst: 40 req/s constant, concurrency cap 32, 2 s".into(),
        ],
        max_tokens: Some(24),
        fixed_prompt: false,
        trial: None,
        labels: Default::default(),
        clock_anchor_unix_us: None,
        shard: None,
        shards: Vec::new(),
    }
}

/// A stored run built from the fixture, as `llmbench report` would load it.
pub fn stored(info: RunInfo, records: &[RequestRecord]) -> StoredRun {
    let analysis: Analysis = analyze(records);
    let warnings = analysis.summary.warnings(&info.requested());
    let files = Files::from(&RunFiles::new(std::path::Path::new("results"), &info.id));
    StoredRun {
        info,
        analysis,
        warnings,
        files,
        has_metadata: true,
        readings: Vec::new(),
        telemetry: Default::default(),
        notes: Vec::new(),
        outcome: Default::default(),
    }
}

/// The baseline and a slower run of another model on the same workload, plus a third workload.
pub fn runs() -> Vec<StoredRun> {
    vec![
        stored(
            info(
                "bench_20260101T000000Z_vllm-local_llama-8b_medium-load",
                "llama-8b",
                "medium-load",
                "2026-01-01T00:00:00.000Z",
            ),
            &records(0),
        ),
        stored(
            info(
                "bench_20260101T010000Z_vllm-local_qwen-7b_medium-load",
                "qwen-7b",
                "medium-load",
                "2026-01-01T01:00:00.000Z",
            ),
            &records(15),
        ),
        stored(
            info(
                "bench_20260101T020000Z_vllm-local_llama-8b_high-load",
                "llama-8b",
                "high-load",
                "2026-01-01T02:00:00.000Z",
            ),
            &records(40),
        ),
    ]
}
