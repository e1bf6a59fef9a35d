//! How much error llmbench adds to TTFT, measured against the built-in mock's own log of when it
//! really wrote each first token (same process, same monotonic clock, mock on its own thread).
//!
//!     cargo bench --bench ttft_error [-- CONCURRENCY...]     (default: 1 256)
//!
//! For each concurrency it runs a closed-loop phase (mock TTFT 50 ms, ITL 5 ms, 32 tokens) and
//! prints, per request: the client's first-token stamp minus the mock's write time ("added"),
//! and the measured TTFT minus the injected 50 ms ("vs injected", which also holds the request's
//! trip to the server and the mock's own timer error).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use llmbench::mock::{MOCK_MODEL, MockConfig, MockServer};
use llmbench::plan::{Arrival, Endpoint, MockSpec, Phase, Plan, Prompt, RequestSpec, Target};
use llmbench::run::{Options, execute};

const TTFT_MS: f64 = 50.0;

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

async fn measure(concurrency: u32, requests: u64) {
    let server = MockServer::start(
        MockConfig {
            ttft: Duration::from_secs_f64(TTFT_MS / 1000.0),
            itl: Duration::from_millis(5),
            output_tokens: 32,
            ..MockConfig::default()
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .expect("mock starts");
    let plan = Plan {
        workload: format!("ttft-error-c{concurrency}"),
        target: Some(Target {
            name: "mock".into(),
            base_url: server.base_url(),
            api_key: None,
        }),
        model: Some(MOCK_MODEL.into()),
        mock: MockSpec::default(),
        request: RequestSpec {
            endpoint: Endpoint::Chat,
            max_tokens: Some(32),
            stream: true,
            prompt: Prompt::Text("measure me".into()),
            system: None,
            body: Default::default(),
            headers: Vec::new(),
            timeout: Duration::from_secs(60),
        },
        phases: vec![
            Phase {
                name: "warmup".into(),
                duration: None,
                requests: Some(concurrency as u64),
                rate: None,
                concurrency: Some(concurrency),
                arrival: Arrival::Constant,
                seed: 0,
                warmup: true,
                ramp: Default::default(),
                sweep: None,
            },
            Phase {
                name: "measure".into(),
                duration: None,
                requests: Some(requests),
                rate: None,
                concurrency: Some(concurrency),
                arrival: Arrival::Constant,
                seed: 0,
                warmup: false,
                ramp: Default::default(),
                sweep: None,
            },
        ],
        telemetry: llmbench::plan::TelemetrySpec {
            nvml: false,
            ..Default::default()
        },
        slo: None,
        assertions: Vec::new(),
        params: Default::default(),
        attainment: None,
    };
    let results = tempfile::tempdir().expect("temp dir");
    let options = Options {
        script: PathBuf::from("benches/ttft_error.rs"),
        results: results.path().to_owned(),
        templates: None,
        progress: false,
        grace: Duration::from_secs(1),
        export_json: None,
        client: llmbench::client::ClientOptions::default(),
        preflight: true,
        metrics_listen: None,
        quiet: true,
    };
    let finished = execute(plan, &options).await.expect("run succeeds");
    let records = llmbench::record::read_records(&finished.files.raw).expect("records");
    let log = server.timings();
    let mut added = Vec::new();
    let mut vs_injected = Vec::new();
    for r in records.iter().filter(|r| !r.warmup) {
        let (Some(first), Some(ttft)) = (r.first_token_us, r.ttft_us()) else {
            continue;
        };
        let written = log[&r.id].first_token.expect("mock wrote a first token");
        let written_us = finished.clock.us_at(written) as f64;
        added.push((first as f64 - written_us) / 1000.0);
        vs_injected.push(ttft as f64 / 1000.0 - TTFT_MS);
    }
    added.sort_by(f64::total_cmp);
    vs_injected.sort_by(f64::total_cmp);
    println!(
        "RESULT concurrency {concurrency:>4}  requests {:>5}  added p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  |  vs injected p50 {:.3} ms  p99 {:.3} ms",
        added.len(),
        percentile(&added, 0.5),
        percentile(&added, 0.99),
        added.last().copied().unwrap_or(0.0),
        percentile(&vs_injected, 0.5),
        percentile(&vs_injected, 0.99),
    );
}

fn main() {
    let levels: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let levels = if levels.is_empty() {
        vec![1, 256]
    } else {
        levels
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for c in levels {
        let requests = if c == 1 { 200 } else { c as u64 * 8 };
        rt.block_on(measure(c, requests));
    }
}
