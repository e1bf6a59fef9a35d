//! Trace replay against the mock: the synthetic Mooncake trace shipped in `scripts/data/`,
//! replayed at speed 1 and 2, sends each request at the trace's time (intended times exact,
//! sends close to them), with prompts of exactly `input_length` tokens (the mock counts the
//! words, each one token) and `max_tokens` = `output_length`; requests sharing a hash id share
//! that block of prompt text byte for byte, and the prompts have exactly `input_length` tokens
//! under the named encoding. BurstGPT and plain JSONL traces replay their lengths and prompts;
//! a bad line is an error naming the file and line.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use llmbench::mock::{LoggedTiming, MockServer};
use llmbench::plan::{Content, PromptGenerator};
use llmbench::record::Outcome;
use llmbench::script::tokens::TokenizerSet;
use llmbench::script::trace::{Ask, Format, Line, TracePrompts, read_lines};

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/data")
        .join(name)
}

fn mooncake_lines() -> Vec<Line> {
    let path = shipped("mooncake-trace.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    read_lines(&path, &text, Format::Mooncake, 0, None).unwrap()
}

async fn logged(server: &MockServer) -> HashMap<u64, LoggedTiming> {
    llmbench::client::install_tls_provider();
    let all: Vec<LoggedTiming> = reqwest::get(format!("http://{}/mock/timings", server.addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    all.into_iter().map(|t| (t.id, t)).collect()
}

fn p99(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[(v.len() * 99).div_ceil(100) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mooncake_trace_replays_on_time_with_its_lengths_at_speed_1_and_2() {
    let lines = mooncake_lines();
    for speed in [1.0, 2.0] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            shipped("mooncake-trace.jsonl"),
            dir.path().join("trace.jsonl"),
        )
        .unwrap();
        let server = common::mock(1, 0, 10_000);
        let mut plan = common::plan(
            dir.path(),
            &format!(
                r#"trace("trace.jsonl", #{{ format: "mooncake", speed: {speed:.1}, encoding: "cl100k_base" }});"#
            ),
        );
        common::target(&mut plan, &server);
        let (_, records) = common::run(plan, dir.path()).await;
        assert_eq!(records.len(), lines.len());
        let log = logged(&server).await;
        let first = records.iter().map(|r| r.intended_us).min().unwrap();
        let mut late = Vec::new();
        for r in &records {
            assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
            // Request k of the phase is line k of the trace.
            let line = &lines[r.id as usize];
            let want_us = (line.at_ms - lines[0].at_ms) / speed * 1000.0;
            let got_us = (r.intended_us - first) as f64;
            assert!(
                (got_us - want_us).abs() <= 2.0,
                "request {} intended at {got_us} µs, the trace says {want_us}",
                r.id
            );
            late.push(r.sent_us.unwrap() - r.intended_us);
            let Ask::Synth { input, .. } = &line.ask else {
                unreachable!()
            };
            let seen = &log[&r.id];
            assert_eq!(seen.prompt_tokens, *input as u64, "request {}", r.id);
            assert_eq!(seen.max_tokens, line.max_tokens.map(u64::from));
            assert_eq!(r.max_tokens, line.max_tokens);
            assert_eq!(Some(r.output_tokens as u32), line.max_tokens);
        }
        let p99_us = p99(late);
        eprintln!("speed {speed}: send p99 {p99_us} µs after the trace's time");
        // 1 ms on a quiet machine; generous here (a busy shared 2-core machine).
        assert!(p99_us < 50_000, "send p99 {p99_us} µs");
    }
}

#[test]
fn synthesized_prompts_are_exact_and_share_their_blocks_byte_for_byte() {
    let lines = mooncake_lines();
    let set = TokenizerSet::new(PathBuf::from("."));
    let tok = set.get("cl100k_base").unwrap();
    let prompts = TracePrompts::new(lines.clone(), &*tok, 512, 0, "t".into()).unwrap();
    let texts: Vec<String> = (0..lines.len() as u64)
        .map(|i| match prompts.shape(i).unwrap().content {
            Content::Text(t) => t,
            Content::Messages(_) => unreachable!(),
        })
        .collect();
    let mut shared_pairs = 0;
    for (i, a) in lines.iter().enumerate() {
        let Ask::Synth {
            input: in_a,
            hash_ids: ha,
        } = &a.ask
        else {
            unreachable!()
        };
        assert_eq!(tok.encode(&texts[i]).len(), *in_a, "line {i}");
        for (j, b) in lines.iter().enumerate().skip(i + 1) {
            let Ask::Synth {
                input: in_b,
                hash_ids: hb,
            } = &b.ask
            else {
                unreachable!()
            };
            let common = ha.iter().zip(hb).take_while(|(x, y)| x == y).count();
            // The first n words as the prompt's bytes: each word is " word".
            let words = |t: &str, n: usize| -> String {
                t.split_whitespace()
                    .take(n)
                    .map(|w| format!(" {w}"))
                    .collect()
            };
            let shared = (common * 512).min(*in_a).min(*in_b);
            if common > 0 {
                shared_pairs += 1;
                assert_eq!(
                    words(&texts[i], shared),
                    words(&texts[j], shared),
                    "lines {i} and {j} share {common} blocks"
                );
            } else {
                assert_ne!(words(&texts[i], 16), words(&texts[j], 16));
            }
        }
    }
    assert!(shared_pairs > 20, "the trace has shared prefixes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burstgpt_and_plain_traces_replay_their_lengths_and_prompts() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["burstgpt-trace.csv", "plain-trace.jsonl"] {
        std::fs::copy(shipped(f), dir.path().join(f)).unwrap();
    }
    let server = common::mock(1, 0, 10_000);
    let mut plan = common::plan(
        dir.path(),
        r#"trace("burstgpt-trace.csv", #{ speed: 4.0, limit: 10, offset: 2, name: "burst" });
           trace("plain-trace.jsonl", #{ format: "jsonl", speed: 4.0, name: "plain" });"#,
    );
    common::target(&mut plan, &server);
    let (_, records) = common::run(plan, dir.path()).await;
    let csv = std::fs::read_to_string(shipped("burstgpt-trace.csv")).unwrap();
    let rows: Vec<Vec<u64>> = csv
        .lines()
        .skip(3)
        .take(10)
        .map(|l| {
            l.split(',')
                .skip(2)
                .take(2)
                .map(|c| c.parse().unwrap())
                .collect()
        })
        .collect();
    let log = logged(&server).await;
    let mut records = records;
    records.sort_by_key(|r| r.id);
    let burst: Vec<_> = records.iter().filter(|r| r.phase == "burst").collect();
    assert_eq!(burst.len(), 10);
    for (k, r) in burst.iter().enumerate() {
        assert_eq!(log[&r.id].prompt_tokens, rows[k][0], "row {k}");
        assert_eq!(r.max_tokens, Some(rows[k][1] as u32));
    }
    let plain: Vec<_> = records.iter().filter(|r| r.phase == "plain").collect();
    assert_eq!(plain.len(), 20);
    let failed: Vec<_> = records
        .iter()
        .filter(|r| r.outcome != Outcome::Ok)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    // Line 1 of the plain trace: "Question 0: count to 9." and max_tokens 12.
    let first = &log[&plain[0].id];
    assert_eq!(first.prompt_tokens, 5);
    assert_eq!(first.max_tokens, Some(12));
}

#[test]
fn a_bad_trace_line_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.jsonl"),
        "{\"timestamp\": 1, \"input_length\": 3, \"output_length\": 2}\n\n{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 2}\n",
    )
    .unwrap();
    let path = dir.path().join("test.rhai");
    std::fs::write(&path, r#"trace("t.jsonl", #{ format: "mooncake" });"#).unwrap();
    let err = llmbench::script::load(
        &path,
        &llmbench::config::Configs::new(dir.path().join("configs")),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("t.jsonl:3") && err.contains("sort the trace"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("t.jsonl"),
        "{\"timestamp\": 1, \"input_length\": \"x\"}\n",
    )
    .unwrap();
    let err = llmbench::script::load(
        &path,
        &llmbench::config::Configs::new(dir.path().join("configs")),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("t.jsonl:1") && err.contains("input_length"),
        "{err}"
    );
}
