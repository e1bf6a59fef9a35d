//! Helpers shared by the integration tests: scripts in temp folders, runs against the mock
//! in this process; `process` for tests that run the binary.
#![allow(dead_code)]

mod process;
#[allow(unused_imports)]
pub use process::*;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use llmbench::config::Configs;
use llmbench::mock::{MockConfig, MockServer};
use llmbench::plan::{Plan, Target};
use llmbench::record::{RequestRecord, read_records};
use llmbench::run::{RunError, RunOutcome};
use llmbench::settings::Settings;

/// Evaluates `src` as a script saved in `dir`.
pub fn plan(dir: &Path, src: &str) -> Plan {
    try_plan(dir, src).unwrap()
}

/// Evaluates `src` as a script saved in `dir`: the plan, or the error as the user sees it.
pub fn try_plan(dir: &Path, src: &str) -> Result<Plan, String> {
    let path = dir.join("test.rhai");
    std::fs::write(&path, src).unwrap();
    llmbench::script::load(&path, &Configs::new(dir.join("configs"))).map_err(|e| e.to_string())
}

/// Starts a mock on 127.0.0.1 with the given timing.
pub fn mock(ttft_ms: u64, itl_ms: u64, tokens: u32) -> MockServer {
    MockServer::start(
        MockConfig {
            ttft: Duration::from_millis(ttft_ms),
            itl: Duration::from_millis(itl_ms),
            output_tokens: tokens,
            ..MockConfig::default()
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap()
}

/// Points `plan` at `server`.
pub fn target(plan: &mut Plan, server: &MockServer) {
    plan.target = Some(Target {
        name: "mock".into(),
        base_url: server.base_url(),
        api_key: None,
    });
    plan.model
        .get_or_insert_with(|| llmbench::mock::MOCK_MODEL.into());
}

/// Settings for a test run writing into `results` (5 s of grace after a signal).
pub fn options(results: &Path) -> Settings {
    Settings {
        grace: Duration::from_secs(5),
        ..Settings::new("test.rhai", results)
    }
}

/// Runs `plan` through the whole pipeline with `settings`.
pub async fn execute(plan: Plan, settings: &Settings) -> Result<RunOutcome, RunError> {
    llmbench::run::run(plan, settings, Vec::new()).await
}

/// Runs `plan`, returning how it finished and its raw records.
pub async fn run(plan: Plan, results: &Path) -> (RunOutcome, Vec<RequestRecord>) {
    let finished = execute(plan, &options(results)).await.unwrap();
    let records = read_records(&finished.files().unwrap().raw).unwrap();
    (finished, records)
}

/// Median of a list of values.
pub fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty());
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A server on 127.0.0.1 that answers every connection with a fixed HTTP response (after
/// reading the request), counting connections.
pub fn fixed_server(
    response: &'static str,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(response.as_bytes());
        }
    });
    (addr, hits)
}

/// A chat request spec: prompt "hi", `max_tokens` 16, streamed or not, with `timeout`.
pub fn chat_spec(stream: bool, timeout: Duration) -> llmbench::plan::RequestSpec {
    llmbench::plan::RequestSpec {
        endpoint: llmbench::plan::Endpoint::Chat,
        max_tokens: Some(16),
        stream,
        prompt: llmbench::plan::Prompt::Text("hi".into()),
        system: None,
        body: Default::default(),
        headers: Default::default(),
        timeout,
        tokenizer: None,
    }
}

/// Sends `n` requests for `spec` to `base_url` one after another through one client (a pool of
/// one connection), each dispatched the moment the last ended.
pub async fn send_in_turn(
    base_url: String,
    spec: &llmbench::plan::RequestSpec,
    n: u64,
) -> Vec<RequestRecord> {
    let target = Target {
        name: "test".into(),
        base_url,
        api_key: None,
    };
    send_in_turn_to(&target, spec, n).await
}

/// `send_in_turn` to any target (its key, its URL's credentials).
pub async fn send_in_turn_to(
    target: &Target,
    spec: &llmbench::plan::RequestSpec,
    n: u64,
) -> Vec<RequestRecord> {
    use llmbench::client::{Client, PhaseLabel, build_body};
    let clock = llmbench::clock::Clock::start();
    let client = Client::new(target, spec, 1, clock).unwrap();
    let label = PhaseLabel {
        name: "p".into(),
        warmup: false,
        probe: false,
        cancel: None,
    };
    let mut out = Vec::new();
    for id in 0..n {
        let now = clock.now_us();
        let dispatch = llmbench::schedule::Dispatch {
            id,
            phase_index: 0,
            intended_us: now,
            dispatched_us: now,
            admitted_us: Some(now),
        };
        let body = build_body(spec, "m", &llmbench::plan::Content::Text("hi".into())).unwrap();
        let abort = tokio_util::sync::CancellationToken::new();
        out.push(client.execute(dispatch, &label, body, &abort).await);
    }
    out
}
