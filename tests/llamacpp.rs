//! End to end against a real llama.cpp server (started by `.ci/llama-server.sh start`, which
//! `.ci/run` does). The server's URL comes from LLMBENCH_LLAMA_URL; without it these tests are
//! skipped with a message, unless LLMBENCH_REQUIRE_LLAMA=1 (set by .ci/run) makes that a failure.
//!
//! Consistency with the server's own `timings` (llama.cpp reports, per request, the time it spent
//! on the prompt and on generating): with one request in flight, measured TTFT must be within
//! 30 ms + 20 % of the server's prompt time, and the decode span (last minus first content
//! chunk) within 30 ms + 20 % of its generation time; under concurrency, the whole response can
//! never take less than the server says it spent.

mod common;

use llmbench::record::{Outcome, RequestRecord, TokenSource};

/// The server's base URL and model, or `None` (after saying why) when the tests should skip.
fn server() -> Option<(String, String)> {
    let required = std::env::var("LLMBENCH_REQUIRE_LLAMA").is_ok_and(|v| v == "1");
    match std::env::var("LLMBENCH_LLAMA_URL") {
        Ok(url) => Some((
            url,
            std::env::var("LLMBENCH_LLAMA_MODEL")
                .unwrap_or_else(|_| "smollm2-135m-instruct".into()),
        )),
        Err(_) if required => panic!(
            "LLMBENCH_REQUIRE_LLAMA=1 but LLMBENCH_LLAMA_URL is not set: start the server with `bash .ci/llama-server.sh start`"
        ),
        Err(_) => {
            eprintln!(
                "SKIPPED: no llama.cpp server (set LLMBENCH_LLAMA_URL, e.g. after `bash .ci/llama-server.sh start`)"
            );
            None
        }
    }
}

/// One scenario at a time: the server has one thread, and the timing checks need it to ourselves.
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `phases` with a request of the given shape against the server.
async fn run(endpoint: &str, stream: bool, phases: &str) -> Option<Vec<RequestRecord>> {
    run_scraped(endpoint, stream, phases, false)
        .await
        .map(|(records, _)| records)
}

/// Like `run`, also scraping the server's `/metrics` when `scrape` is set.
async fn run_scraped(
    endpoint: &str,
    stream: bool,
    phases: &str,
    scrape: bool,
) -> Option<(Vec<RequestRecord>, llmbench::run::RunOutcome)> {
    let (url, model) = server()?;
    let _alone = SERVER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut plan = common::plan(
        dir.path(),
        &format!(
            r#"target(#{{ base_url: "{url}" }});
               model("{model}");
               request(#{{ endpoint: "{endpoint}", stream: {stream}, max_tokens: 24, timeout: 120,
                           prompt: |i| `Request ${{i}} ({endpoint}, {stream}): name a color and a fruit.` }});
               {phases}"#
        ),
    );
    plan.workload = format!("llamacpp-{endpoint}-{stream}");
    plan.telemetry.nvml = false;
    if scrape {
        let base = url.trim_end_matches('/').trim_end_matches("/v1");
        plan.telemetry.prometheus = vec![format!("{base}/metrics")];
        plan.telemetry.every = std::time::Duration::from_millis(100);
    }
    let (finished, records) = common::run(plan, dir.path()).await;
    // The reports rendered.
    for f in [
        &finished.files().unwrap().csv,
        &finished.files().unwrap().markdown,
        &finished.files().unwrap().html,
    ] {
        assert!(std::fs::metadata(f).unwrap().len() > 0, "{}", f.display());
    }
    assert_eq!(finished.summary.all.ok, finished.summary.all.requests);
    if scrape {
        let html = std::fs::read_to_string(&finished.files().unwrap().html).unwrap();
        assert!(
            html.contains("id=\"telemetry-llamacpp-tokens-predicted-total\""),
            "the server's series are charted"
        );
    }
    Some((records, finished))
}

fn check_tokens(records: &[RequestRecord]) {
    for r in records {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert_eq!(
            r.tokens_source,
            TokenSource::Usage,
            "llama.cpp sends usage when asked"
        );
        assert!(r.output_tokens > 0 && r.output_tokens <= 24);
        assert!(r.input_tokens.unwrap() > 0);
        let t = r.server_timings.expect("llama.cpp reports timings");
        assert_eq!(
            t.predicted_n,
            Some(r.output_tokens),
            "usage and timings agree"
        );
        if r.streamed {
            assert!(
                r.content_chunks <= r.output_tokens,
                "never more chunks than tokens"
            );
            // A sampled answer can be all tokens that decode to no visible text (the model's
            // usage still counts them): such a stream has, by definition, no first token.
            if r.content_chunks > 0 {
                assert!(r.ttft_us().unwrap() > 0);
            }
            if r.output_tokens > 1 && r.content_chunks > 1 {
                assert!(r.tpot_us().unwrap() > 0.0);
            }
        }
    }
    let streamed: Vec<_> = records.iter().filter(|r| r.streamed).collect();
    assert!(
        streamed.is_empty() || streamed.iter().any(|r| r.content_chunks > 0),
        "some stream carried visible text"
    );
}

fn within(measured_ms: f64, server_ms: f64, what: &str) {
    let tolerance = 30.0 + 0.2 * server_ms;
    assert!(
        (measured_ms - server_ms).abs() <= tolerance,
        "{what}: measured {measured_ms:.1} ms, server says {server_ms:.1} ms (tolerance {tolerance:.1})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streaming_agrees_with_the_servers_own_timings() {
    let Some(records) = run(
        "chat",
        true,
        r#"phase("one", #{ requests: 4, concurrency: 1 });"#,
    )
    .await
    else {
        return;
    };
    check_tokens(&records);
    for r in &records {
        let t = r.server_timings.unwrap();
        let ttft = r.ttft_us().unwrap() as f64 / 1e3;
        eprintln!(
            "ttft {ttft:.1} ms vs prompt_ms {:.1}; decode {:.1} ms vs predicted_ms {:.1} ({} tokens, {} chunks)",
            t.prompt_ms.unwrap(),
            (r.last_token_us.unwrap() - r.first_token_us.unwrap()) as f64 / 1e3,
            t.predicted_ms.unwrap(),
            r.output_tokens,
            r.content_chunks
        );
        within(ttft, t.prompt_ms.unwrap(), "TTFT vs prompt_ms");
        let decode = (r.last_token_us.unwrap() - r.first_token_us.unwrap()) as f64 / 1e3;
        within(
            decode,
            t.predicted_ms.unwrap(),
            "decode span vs predicted_ms",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_never_measure_less_than_the_server_spent() {
    let Some(records) = run(
        "chat",
        true,
        r#"phase("open", #{ requests: 8, rps: 8, concurrency: 4 });"#,
    )
    .await
    else {
        return;
    };
    assert_eq!(records.len(), 8);
    check_tokens(&records);
    for r in &records {
        // The server sends its timings in the last chunk, after its work is done; the whole
        // response (send to end) can never be shorter. (E2EL stops at the last visible content,
        // which can come before an end-of-sequence token the server still counts.)
        let t = r.server_timings.unwrap();
        let whole = (r.end_us - r.sent_us.unwrap()) as f64 / 1e3;
        let server_total = t.prompt_ms.unwrap() + t.predicted_ms.unwrap();
        assert!(
            whole + 1.0 >= server_total,
            "the response took {whole:.1} ms, less than the server's own {server_total:.1} ms"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_streaming_and_both_endpoints_without_streaming() {
    for (endpoint, stream) in [
        ("completions", true),
        ("completions", false),
        ("chat", false),
    ] {
        let Some(records) = run(
            endpoint,
            stream,
            r#"phase("two", #{ requests: 2, concurrency: 2 });"#,
        )
        .await
        else {
            return;
        };
        assert_eq!(records.len(), 2);
        check_tokens(&records);
        assert!(records.iter().all(|r| r.streamed == stream));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_own_metrics_are_scraped_and_agree() {
    let Some((records, finished)) = run_scraped(
        "chat",
        true,
        r#"phase("scraped", #{ requests: 4, concurrency: 2 });"#,
        true,
    )
    .await
    else {
        return;
    };
    let t = &finished.telemetry;
    let series = |name: &str| t.series.iter().find(|s| s.name == name);
    let predicted = series("llamacpp:tokens_predicted_total").expect("llama.cpp's token counter");
    let generated: u64 = records.iter().map(|r| r.output_tokens).sum();
    // Scraping starts before the first request and ends after the last one: between the first
    // and the last scrape the server's counter rose by exactly the tokens llmbench counted.
    let values: Vec<f64> = finished
        .readings
        .iter()
        .filter(|r| r.name == "llamacpp:tokens_predicted_total")
        .map(|r| r.value)
        .collect();
    let scraped = values.last().unwrap() - values.first().unwrap();
    assert!(
        (scraped - generated as f64).abs() <= 1.0,
        "the server's counter rose by {scraped} between the first and last scrape, llmbench counted {generated} tokens"
    );
    // Over the measured window the counter is interpolated linearly at the edges (exact for
    // energy and other steadily rising counters); llama.cpp adds a request's tokens in steps,
    // so the window's share can only be less, never more.
    let delta = predicted.delta.unwrap();
    assert!(
        delta > 0.0 && delta <= scraped + 1e-9,
        "the counter rose by {delta} over the window, {scraped} in all"
    );
    assert!(series("llamacpp:requests_processing").is_some());
}
