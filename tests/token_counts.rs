//! Honest token counts against the mock. A server that sends no usage: with a tokenizer named
//! in the request, each answer's output tokens are the tokenizer's count of the whole answer
//! text (`tokens_source: "tokenizer"`), not its chunk count; without one, chunks, saying so.
//! Input tokens nobody counted are unknown: no total-token throughput, a warning instead. With
//! usage and a tokenizer, the discrepancy between the two is reported.

mod common;

use std::net::SocketAddr;

use llmbench::mock::{MockConfig, MockServer};
use llmbench::record::{Outcome, TokenSource};
use llmbench::stats::Warning;

const TOKENS: u32 = 12;

fn mock(usage: bool) -> MockServer {
    MockServer::start(
        MockConfig {
            ttft: std::time::Duration::from_millis(2),
            itl: std::time::Duration::ZERO,
            output_tokens: TOKENS,
            usage,
            ..MockConfig::default()
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap()
}

/// The mock's whole answer text, read from a non-streamed answer: the same words every time.
async fn answer_text(server: &MockServer) -> String {
    llmbench::client::install_tls_provider();
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "q"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["usage"].is_null(), "the mock sent no usage: {v}");
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An encoding whose count of `text` differs from one token per chunk (so a test tells the
/// two apart), and that count.
fn splitting_encoding(text: &str) -> (&'static str, u64) {
    ["cl100k_base", "o200k_base", "p50k_base", "r50k_base"]
        .into_iter()
        .map(|e| {
            let bpe = llmbench::script::tokens::encoding(e).unwrap();
            (e, bpe.encode_ordinary(text).len() as u64)
        })
        .find(|(_, n)| *n != TOKENS as u64)
        .expect("an encoding that splits the mock's words")
}

fn script(tokenizer: &str, stream: bool) -> String {
    format!(
        r#"request(#{{ prompt: |i| `question ${{i}}`, stream: {stream} {tokenizer} }});
           phase("p", #{{ requests: 6, concurrency: 2 }});"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_usage_the_tokenizer_counts_the_whole_answer() {
    let server = mock(false);
    let text = answer_text(&server).await;
    let (encoding, want) = splitting_encoding(&text);
    for stream in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = format!(r#", tokenizer: "{encoding}""#);
        let mut plan = common::plan(dir.path(), &script(&tokenizer, stream));
        common::target(&mut plan, &server);
        let (outcome, records) = common::run(plan, dir.path()).await;
        assert_eq!(records.len(), 6);
        for r in &records {
            assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
            assert_eq!(r.tokens_source, TokenSource::Tokenizer);
            assert_eq!(r.output_tokens, want, "stream {stream}: {r:?}");
            assert_eq!(r.input_tokens, None);
        }
        let raw = std::fs::read_to_string(outcome.files().unwrap().raw.clone()).unwrap();
        assert!(raw.contains(r#""tokens_source":"tokenizer""#), "{raw}");
        let a = &outcome.summary.all;
        assert_eq!(a.tokens_from_tokenizer, 6);
        assert_eq!(a.output_tokens, 6 * want);
        assert_eq!(a.total_tok_per_s, None, "no throughput from a zero");
        assert!(
            outcome
                .warnings
                .contains(&Warning::InputTokensUnknown { requests: 6, ok: 6 }),
            "{:?}",
            outcome.warnings
        );
        assert!(
            !outcome
                .warnings
                .iter()
                .any(|w| matches!(w, Warning::TokensFromChunks { .. }))
        );
        let csv = std::fs::read_to_string(&outcome.files().unwrap().csv).unwrap();
        let all = csv.lines().find(|l| l.starts_with("all,")).unwrap();
        assert_eq!(all.split(',').nth(8), Some(""), "total_tok_per_s empty");
        let md = std::fs::read_to_string(&outcome.files().unwrap().markdown).unwrap();
        assert!(md.contains("6 by the tokenizer"), "{md}");
        assert!(md.contains("6 successful requests without a count: unknown, not 0"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_usage_or_tokenizer_chunks_are_the_last_resort() {
    let server = mock(false);
    let dir = tempfile::tempdir().unwrap();
    let mut plan = common::plan(dir.path(), &script("", true));
    common::target(&mut plan, &server);
    let (outcome, records) = common::run(plan, dir.path()).await;
    for r in &records {
        assert_eq!(r.tokens_source, TokenSource::Chunks);
        assert_eq!(r.output_tokens, TOKENS as u64);
        assert_eq!(r.tokenizer_tokens, None);
    }
    assert!(
        outcome
            .warnings
            .contains(&Warning::TokensFromChunks { requests: 6 })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_usage_and_a_tokenizer_their_discrepancy_is_reported() {
    let server = mock(true);
    let text = answer_text(&mock(false)).await;
    let (encoding, counted) = splitting_encoding(&text);
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = format!(r#", tokenizer: "{encoding}""#);
    let mut plan = common::plan(dir.path(), &script(&tokenizer, true));
    common::target(&mut plan, &server);
    let (outcome, records) = common::run(plan, dir.path()).await;
    for r in &records {
        assert_eq!(r.tokens_source, TokenSource::Usage);
        assert_eq!(r.output_tokens, TOKENS as u64, "usage wins");
        assert_eq!(r.tokenizer_tokens, Some(counted));
    }
    let d = outcome.summary.all.token_discrepancy.unwrap();
    let pct = 100.0 * counted.abs_diff(TOKENS as u64) as f64 / TOKENS as f64;
    assert_eq!(d.requests, 6);
    assert!(pct > 0.0);
    assert!((d.mean_pct - pct).abs() < 1e-9 && (d.max_pct - pct).abs() < 1e-9);
    assert!(outcome.summary.all.total_tok_per_s.is_some());
    // The run reports say it, per phase.
    let said = format!(
        "differs from the server's usage by {pct:.1}% on average and at most {pct:.1}%, over the 6 requests both counted"
    );
    for report in [
        &outcome.files().unwrap().markdown,
        &outcome.files().unwrap().html,
    ] {
        let text = std::fs::read_to_string(report).unwrap();
        assert!(text.contains(&said), "{said} not in {}", report.display());
    }
    assert!(
        !outcome
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::InputTokensUnknown { .. }))
    );
}
