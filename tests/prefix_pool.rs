//! Prefix-pool workloads end to end against the mock with its prefix cache on: with 4 shared
//! prefixes, every record's `cached_tokens` and the summary's cache hit share equal the mock's
//! own count exactly; the cache-bust variant gets no cached token at all; and TTFT with the
//! cache is below TTFT without it.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use llmbench::mock::{LoggedTiming, MockConfig, MockServer, PrefixCacheConfig};
use llmbench::record::{Outcome, RequestRecord};
use llmbench::run::RunOutcome;
use llmbench::stats::Metric;

fn pool_script(bust: bool) -> String {
    format!(
        r#"request(#{{ max_tokens: 4, prompt: prefix_pool(#{{
               prefixes: 4, prefix_tokens: 256, suffix_tokens: 16, cache_bust: {bust} }}) }});
           phase("warmup", #{{ requests: 4, concurrency: 1, warmup: true }});
           phase("steady", #{{ requests: 40, concurrency: 4 }});"#
    )
}

/// A mock with a prefix cache (blocks of 16 tokens) and 200 µs per uncached prompt token.
fn cached_mock() -> MockServer {
    MockServer::start(
        MockConfig {
            ttft: Duration::from_millis(20),
            itl: Duration::from_millis(1),
            output_tokens: 4,
            prefix_cache: PrefixCacheConfig {
                blocks: 10_000,
                block_tokens: 16,
                per_token: Duration::from_micros(200),
            },
            ..MockConfig::default()
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap()
}

async fn mock_log(server: &MockServer) -> HashMap<u64, LoggedTiming> {
    llmbench::client::install_tls_provider();
    let all: Vec<LoggedTiming> = reqwest::get(format!("http://{}/mock/timings", server.addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    all.into_iter().map(|t| (t.id, t)).collect()
}

/// Runs the pool script against a fresh cached mock; checks every record against the mock's
/// log and returns the run, its measured records, the mock's (cached, prompt) token sums over
/// them and the Markdown report.
async fn run_pool(bust: bool) -> (RunOutcome, Vec<RequestRecord>, (u64, u64), String) {
    let dir = tempfile::tempdir().unwrap();
    let server = cached_mock();
    let mut plan = common::plan(dir.path(), &pool_script(bust));
    common::target(&mut plan, &server);
    let (outcome, records) = common::run(plan, dir.path()).await;
    assert_eq!(records.len(), 44);
    let log = mock_log(&server).await;
    let mut sums = (0, 0);
    for r in &records {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        let seen = &log[&r.id];
        assert_eq!(seen.prompt_tokens, 272, "prefix + suffix tokens");
        assert_eq!(r.input_tokens, Some(seen.prompt_tokens));
        assert_eq!(
            r.cached_tokens,
            Some(seen.cached_tokens),
            "request {}",
            r.id
        );
        assert!(r.label.as_deref().unwrap().starts_with("prefix-"));
        if !r.warmup {
            sums.0 += seen.cached_tokens;
            sums.1 += seen.prompt_tokens;
        }
    }
    let measured = records.into_iter().filter(|r| !r.warmup).collect();
    let markdown = std::fs::read_to_string(&outcome.files().unwrap().markdown).unwrap();
    (outcome, measured, sums, markdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_prefixes_hit_the_cache_as_the_mock_counts_and_cache_bust_never_does() {
    let (shared, records, (cached, prompt), md) = run_pool(false).await;
    let all = &shared.summary.all;
    assert_eq!(all.cached_tokens, Some(cached), "the mock's own count");
    assert_eq!(
        all.cache_hit_share,
        Some(cached as f64 / prompt as f64),
        "the mock's count over the prompt tokens"
    );
    // Once a prefix is warm its 16 blocks of 16 tokens hit: only first uses miss.
    assert!(
        cached >= (records.len() as u64 - 8) * 256,
        "{cached} of {prompt}"
    );
    let labels: Vec<&str> = shared
        .summary
        .labels
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(labels, ["prefix-0", "prefix-1", "prefix-2", "prefix-3"]);

    let (bust, _, (bust_cached, _), bust_md) = run_pool(true).await;
    assert_eq!(bust_cached, 0, "no prompt shares a block with another");
    assert_eq!(bust.summary.all.cached_tokens, Some(0));
    assert_eq!(bust.summary.all.cache_hit_share, Some(0.0));

    // The mock's model: 20 ms + 0.2 ms × uncached tokens, about 24 ms against 74 ms.
    let ttft = |o: &RunOutcome| o.summary.all.metric(Metric::TtftMs).p50.unwrap();
    let (with, without) = (ttft(&shared), ttft(&bust));
    eprintln!("TTFT p50 with cache {with:.1} ms, without {without:.1} ms");
    assert!(with < without, "with cache {with} ms, without {without} ms");

    // The statistics' split and the report's "Prefix cache" section.
    let row = |o: &RunOutcome, name: &str| o.summary.cache.iter().find(|c| c.name == name).cloned();
    let hit = row(&shared, "cached").expect("a cached row");
    assert_eq!(hit.cached_tokens, Some(hit.requests * 256));
    let miss = row(&bust, "uncached").expect("an uncached row");
    assert_eq!(miss.requests, 40);
    assert!(row(&bust, "cached").is_none(), "cache bust: nothing hit");
    let (hit_p50, miss_p50) = (
        hit.metric(Metric::TtftMs).p50.unwrap(),
        miss.metric(Metric::TtftMs).p50.unwrap(),
    );
    assert!(hit_p50 < miss_p50, "{hit_p50} against {miss_p50}");
    assert!(md.contains("## Prefix cache"), "{md}");
    assert!(
        md.contains(&format!("| cached | {} |", hit.requests)),
        "{md}"
    );
    assert!(bust_md.contains("| uncached | 40 | 0.0 |"), "{bust_md}");
    assert!(!bust_md.contains("| cached |"), "{bust_md}");
}

/// The same workload twice against one mock: the first run starts cold and says nothing; the
/// second run's first request finds its prefix cached by the first run, and the run warns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_against_a_warm_cache_is_warned_about() {
    use llmbench::stats::Warning;
    let server = cached_mock();
    let mut warned = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = common::plan(dir.path(), &pool_script(false));
        common::target(&mut plan, &server);
        let (outcome, _) = common::run(plan, dir.path()).await;
        warned.push(outcome.warnings.iter().find_map(|w| match w {
            Warning::WarmCache { cached_tokens, .. } => Some(*cached_tokens),
            _ => None,
        }));
    }
    assert_eq!(warned[0], None, "a cold start is not warned about");
    // Request 0 of the second run repeats request 0 of the first: its 256-token prefix and
    // its own suffix were stored, so all but the last prompt token's block is cached.
    let cached = warned[1].expect("the second run warns");
    assert!(cached >= 256, "{cached}");
}
