//! Per-request shapes end to end against the mock: a prompt function returning a map with
//! `max_tokens` from `lengths::lognormal` and a `label`; the mock's own log shows exactly the
//! lengths the distribution gives for each request index (computed here from the library's
//! distribution and the request's generator), the records carry them, per-label statistics
//! exist, and the reports show the length distributions. A shape's header values stay secret.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use llmbench::mock::{FaultConfig, LoggedTiming, MockConfig, MockServer};
use llmbench::record::Outcome;
use llmbench::script::lengths::{Bounds, lognormal};
use llmbench::script::prompts::Rng;

const SEED: u64 = 21;
const REQUESTS: u64 = 30;

/// The max_tokens request `i` must send: the same draw, from the same per-request generator.
fn expected(i: u64) -> u64 {
    let b = Bounds { min: 4, max: 400 };
    lognormal(&mut Rng::for_request(SEED, i), 120.0, 60.0, b).unwrap() as u64
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lognormal_max_tokens_reach_the_mock_exactly_and_the_report_shows_the_lengths() {
    let dir = tempfile::tempdir().unwrap();
    // More tokens than any request asks for: each answer is exactly its max_tokens long.
    let server = common::mock(2, 0, 10_000);
    let mut plan = common::plan(
        dir.path(),
        &format!(
            r#"request(#{{ seed: {SEED}, max_tokens: 16, prompt: |i, rng| #{{
                   max_tokens: lengths::lognormal(rng, 120, 60, #{{ min: 4, max: 400 }}),
                   prompt: words(rng, 5 + i % 3 * 10),
                   label: if i % 3 == 0 {{ "long-prompt" }} else {{ "short-prompt" }} }} }});
               phase("warm", #{{ requests: 3, concurrency: 1, warmup: true }});
               phase("main", #{{ requests: {}, concurrency: 4 }});"#,
            REQUESTS - 3
        ),
    );
    common::target(&mut plan, &server);
    let (outcome, records) = common::run(plan, dir.path()).await;
    assert_eq!(records.len(), REQUESTS as usize);
    assert!(
        !outcome.warnings.iter().any(|w| matches!(
            w,
            llmbench::stats::Warning::FewerTokens { .. }
                | llmbench::stats::Warning::MoreTokens { .. }
        )),
        "each request got the length it asked for: {:?}",
        outcome.warnings
    );

    let log = logged(&server).await;
    assert_eq!(log.len(), REQUESTS as usize, "one log entry per request");
    for r in &records {
        let want = expected(r.id);
        let seen = &log[&r.id];
        assert_eq!(
            seen.max_tokens,
            Some(want),
            "the mock saw request {}'s draw",
            r.id
        );
        assert_eq!(
            r.max_tokens,
            Some(want as u32),
            "the record keeps what was sent"
        );
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.output_tokens, want, "the mock honours max_tokens");
        let words = 5 + r.id % 3 * 10;
        assert_eq!(
            seen.prompt_tokens, words,
            "the mock counts the prompt's words"
        );
        assert_eq!(r.input_tokens, Some(words));
        let label = if r.id % 3 == 0 {
            "long-prompt"
        } else {
            "short-prompt"
        };
        assert_eq!(r.label.as_deref(), Some(label));
    }
    let distinct: std::collections::BTreeSet<u64> = (0..REQUESTS).map(expected).collect();
    assert!(distinct.len() > 10, "the lengths vary: {distinct:?}");

    // Per-label statistics over the measured requests (warmup left out).
    let s = &outcome.summary;
    let names: Vec<&str> = s.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["long-prompt", "short-prompt"]);
    let measured = records.iter().filter(|r| !r.warmup);
    let long: Vec<_> = measured.clone().filter(|r| r.id % 3 == 0).collect();
    assert_eq!(s.labels[0].requests, long.len() as u64);
    assert_eq!(
        s.labels[0].output_tokens,
        long.iter().map(|r| r.output_tokens).sum::<u64>()
    );
    assert_eq!(
        s.all.output_tokens,
        measured.map(|r| expected(r.id)).sum::<u64>(),
        "output tokens are exactly the distribution's draws"
    );

    let files = outcome.files().unwrap();
    let csv = std::fs::read_to_string(&files.csv).unwrap();
    assert!(
        csv.lines().any(|l| l.starts_with("label:long-prompt,")),
        "{csv}"
    );
    assert!(
        csv.lines().any(|l| l.starts_with("label:short-prompt,")),
        "{csv}"
    );
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(
        md.contains("## Labels") && md.contains("## Request lengths"),
        "{md}"
    );
    let out = &s.all.metrics[llmbench::stats::Metric::ALL
        .iter()
        .position(|m| *m == llmbench::stats::Metric::OutputTokens)
        .unwrap()];
    let max = format!("| {:.0} |\n", out.max.unwrap());
    assert!(
        md.contains(&max),
        "the output length row ends in its max {max}: {md}"
    );
    let html = std::fs::read_to_string(&files.html).unwrap();
    for id in ["input-tokens-hist", "output-tokens-hist", "id=\"lengths\""] {
        assert!(html.contains(id), "{id} in the HTML report");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shapes_header_is_sent_and_its_value_never_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(
        MockConfig {
            output_tokens: 3,
            faults: FaultConfig {
                require_key: Some("right-key".into()),
                ..FaultConfig::default()
            },
            ..MockConfig::default()
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap();
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ prompt: |i| #{ prompt: "q",
               headers: #{ authorization: if i % 2 == 0 { "Bearer right-key" } else { "Bearer sk-shape-secret-42" } } } });
           phase("p", #{ requests: 4, concurrency: 1 });"#,
    );
    common::target(&mut plan, &server);
    let mut settings = common::options(dir.path());
    settings.preflight = false; // its ping carries no shape, so no key
    let finished = common::execute(plan, &settings).await.unwrap();
    let records = llmbench::record::read_records(&finished.files().unwrap().raw).unwrap();
    assert_eq!(records.len(), 4);
    for r in &records {
        if r.id % 2 == 0 {
            assert_eq!(r.outcome, Outcome::Ok, "the shape's header was sent: {r:?}");
        } else {
            assert_eq!(r.status, Some(401), "{r:?}");
        }
    }
    for f in common::result_files(dir.path()) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            !text.contains("shape-secret"),
            "{} leaks the header: {text}",
            f.display()
        );
    }
}
