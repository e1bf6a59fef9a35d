//! Telemetry against a fake `/metrics` endpoint on 127.0.0.1 whose values change over time in a
//! known way (vLLM and DCGM exporter names), so scraped series, counter deltas, energy and
//! joules per token can be checked against exact formulas.

mod common;

use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use llmbench::clock::Instant;
use llmbench::telemetry::{Kind, Reading};

/// Serves, at time t seconds after it started: a token counter at 100 t, power 200 + 20 t W,
/// and (if `energy`) an energy counter in mJ at 1000 (200 t + 10 t²), the integral of that power.
async fn fake_metrics(energy: bool) -> (String, Instant) {
    let t0 = Instant::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/metrics",
        get(move || async move {
            let t = t0.elapsed().as_secs_f64();
            let mut text = format!(
                "# HELP vllm:num_requests_running Running.\n# TYPE vllm:num_requests_running gauge\n\
                 vllm:num_requests_running{{model_name=\"m\"}} 4\n\
                 # TYPE vllm:generation_tokens counter\n\
                 vllm:generation_tokens_total{{model_name=\"m\"}} {}\n\
                 # TYPE DCGM_FI_DEV_POWER_USAGE gauge\n\
                 DCGM_FI_DEV_POWER_USAGE{{gpu=\"0\",UUID=\"GPU-abc\"}} {}\n\
                 process_cpu_seconds_total 12\n",
                100.0 * t,
                200.0 + 20.0 * t
            );
            if energy {
                text.push_str(&format!(
                    "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n\
                     DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu=\"0\",UUID=\"GPU-abc\"}} {}\n",
                    1000.0 * (200.0 * t + 10.0 * t * t)
                ));
            }
            text
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, t0)
}

async fn run_with(url: &str) -> (llmbench::run::RunOutcome, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(20, 5, 20);
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ max_tokens: 20, prompt: |i| `p ${i}` });
           phase("a", #{ duration: 1.5, rps: 10, concurrency: 4 });
           phase("b", #{ duration: 1.0, rps: 20, concurrency: 8 });"#,
    );
    common::target(&mut plan, &server);
    plan.telemetry.prometheus = vec![url.to_owned()];
    plan.telemetry.every = Duration::from_millis(50);
    plan.telemetry.nvml = false;
    let (finished, _) = common::run(plan, dir.path()).await;
    (finished, dir)
}

/// Seconds on the fake server's clock at run-clock time `us`.
fn server_s(finished: &llmbench::run::RunOutcome, t0: Instant, us: u64) -> f64 {
    finished
        .clock()
        .instant_at(us)
        .duration_since(t0)
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_counters_and_energy_match_the_known_curves() {
    let (url, t0) = fake_metrics(true).await;
    let (finished, _dir) = run_with(&url).await;
    let t = &finished.telemetry;

    // Known series kept, unknown ones (process_cpu_seconds_total) left out.
    let names: Vec<&str> = t.series.iter().map(|s| s.name.as_str()).collect();
    for n in [
        "vllm:num_requests_running",
        "vllm:generation_tokens_total",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert!(!names.contains(&"process_cpu_seconds_total"));
    let running = t
        .series
        .iter()
        .find(|s| s.name == "vllm:num_requests_running")
        .unwrap();
    assert_eq!(
        (running.kind, running.mean, running.max),
        (Kind::Gauge, 4.0, 4.0)
    );
    assert_eq!(running.labels["model_name"], "m");

    // The counter rises 100 per second: its delta over the measured span is 100 × span.
    let all = finished.summary.rows().last().unwrap();
    let (start, end) = all.window_us.unwrap();
    let span = (end - start) as f64 / 1e6;
    let tokens = t
        .series
        .iter()
        .find(|s| s.name == "vllm:generation_tokens_total")
        .unwrap();
    assert_eq!(tokens.kind, Kind::Counter);
    let delta = tokens.delta.unwrap();
    assert!(
        (delta - 100.0 * span).abs() <= 0.01 * 100.0 * span,
        "delta {delta} over {span} s"
    );
    assert!((tokens.rate_per_s.unwrap() - 100.0).abs() <= 1.0);

    // Energy per phase from the energy counter: the integral of 200 + 20 t over the window.
    assert_eq!(t.energy.len(), 3, "phases a, b and all");
    for (e, p) in t.energy.iter().zip(finished.summary.rows()) {
        let (ws, we) = p.window_us.unwrap();
        let (a, b) = (server_s(&finished, t0, ws), server_s(&finished, t0, we));
        let expected = 200.0 * (b - a) + 10.0 * (b * b - a * a);
        assert_eq!(e.window, p.name);
        assert!(e.method.contains("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"));
        assert!(
            (e.joules - expected).abs() <= 0.01 * expected,
            "{}: {} J vs {expected}",
            e.window,
            e.joules
        );
        let per_token = e.joules_per_output_token.unwrap();
        assert!((per_token - e.joules / p.output_tokens as f64).abs() < 1e-9);
        assert!((e.output_tokens_per_joule.unwrap() * per_token - 1.0).abs() < 1e-9);
    }

    // Every reading is in the telemetry file, on the run clock.
    let text = std::fs::read_to_string(&finished.files().unwrap().telemetry).unwrap();
    let readings: Vec<Reading> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        readings.len() >= 4 * 30,
        "about 50 scrapes of 4 series: {}",
        readings.len()
    );
    assert!(readings.iter().all(|r| r.source == url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_energy_counter_power_is_integrated() {
    let (url, t0) = fake_metrics(false).await;
    let (finished, _dir) = run_with(&url).await;
    for (e, p) in finished
        .telemetry
        .energy
        .iter()
        .zip(finished.summary.rows())
    {
        let (ws, we) = p.window_us.unwrap();
        let (a, b) = (server_s(&finished, t0, ws), server_s(&finished, t0, we));
        let expected = 200.0 * (b - a) + 10.0 * (b * b - a * a);
        assert!(e.method.starts_with("power integration"));
        assert!(
            (e.joules - expected).abs() <= 0.01 * expected,
            "{} J vs {expected}",
            e.joules
        );
        let avg = expected / (b - a);
        assert!((e.avg_power_w - avg).abs() <= 0.01 * avg);
    }
}

/// Without a GPU a run says so in one short line, once (it must not wrap under the progress
/// bar); `LLMBENCH_NO_NVML=1` turns NVML off, so nothing is said.
#[test]
fn without_a_gpu_the_run_says_so_once_in_one_short_line_unless_nvml_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        "mock(#{ ttft_ms: 5, itl_ms: 1, output_tokens: 4 });\nrequest(#{ prompt: \"hi\" });\nphase(\"p\", #{ requests: 5 });\n",
    )
    .unwrap();
    let run = |no_nvml: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_llmbench"));
        command
            .arg(&script)
            .args(["--no-progress", "--results"])
            .arg(dir.path())
            .env_remove("LLMBENCH_NO_NVML");
        if let Some(value) = no_nvml {
            command.env("LLMBENCH_NO_NVML", value);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        stderr
    };
    let stderr = run(Some("1"));
    assert!(!stderr.contains("NVML"), "{stderr}");
    if std::path::Path::new("/dev/nvidiactl").exists() {
        return; // a GPU machine: nothing to say
    }
    let stderr = run(None);
    let notices: Vec<&str> = stderr.lines().filter(|l| l.contains("NVML")).collect();
    assert_eq!(notices.len(), 1, "{stderr}");
    assert!(notices[0].len() < 100, "{:?}", notices[0]);
    assert!(
        notices[0].contains("--no-nvml"),
        "the notice says how to silence it: {stderr}"
    );
    let stderr = run(Some("0"));
    assert_eq!(stderr.lines().filter(|l| l.contains("NVML")).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_are_served_during_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(20, 5, 10);
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ max_tokens: 10, prompt: |i| `p ${i}` });
           phase("steady", #{ duration: 2, rps: 20, concurrency: 8 });"#,
    );
    common::target(&mut plan, &server);
    plan.telemetry.nvml = false;
    // A free port on 127.0.0.1 for the live view.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut options = common::options(dir.path());
    options.metrics_listen = Some(([127, 0, 0, 1], port).into());
    let run = tokio::spawn(async move { common::execute(plan, &options).await });
    let url = format!("http://127.0.0.1:{port}/metrics");
    llmbench::client::install_tls_provider();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut seen = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(r) = http.get(&url).send().await
            && let Ok(text) = r.text().await
        {
            let ok = llmbench::telemetry::prometheus::parse(&text)
                .into_iter()
                .find(|s| s.name == "llmbench_requests_total" && s.labels["outcome"] == "ok")
                .map(|s| s.value);
            if let Some(ok) = ok {
                seen.push(ok);
            }
        }
    }
    let finished = run.await.unwrap().unwrap();
    assert!(seen.len() >= 5, "scraped during the run: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "a counter: {seen:?}");
    assert!(*seen.last().unwrap() <= finished.summary.all.ok as f64);
    assert!(*seen.last().unwrap() >= 20.0, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_endpoint_that_redirects_is_followed() {
    // Some servers answer /metrics with 307 to /metrics/ (or another path).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, "/real-metrics")],
                )
            }),
        )
        .route(
            "/real-metrics",
            get(|| async {
                "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 2\n"
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (finished, _dir) = run_with(&format!("{base}/metrics")).await;
    let running = finished
        .telemetry
        .series
        .iter()
        .find(|s| s.name == "vllm:num_requests_running")
        .expect("scraped through the redirect");
    assert_eq!((running.min, running.max), (2.0, 2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_scrape_is_a_run_warning() {
    // A page that is not Prometheus text, and an address nothing listens on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let html = format!("http://{}/metrics", listener.local_addr().unwrap());
    let app = Router::new().route("/metrics", get(|| async { "<html><body>hi</body></html>" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/metrics", l.local_addr().unwrap())
    };
    for (url, why) in [(html, "no Prometheus sample line"), (closed, "")] {
        let (finished, _dir) = run_with(&url).await;
        let failed: Vec<_> = finished
            .warnings
            .iter()
            .filter_map(|w| match w {
                llmbench::stats::Warning::ScrapeFailed {
                    url: u,
                    failed,
                    tried,
                    error,
                } => Some((u.clone(), *failed, *tried, error.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(failed.len(), 1, "{url}: {:?}", finished.warnings);
        let (u, n, of, error) = &failed[0];
        assert!(u.contains(url.trim_start_matches("http://")), "{u}");
        assert!(*n >= 1 && n == of, "every scrape failed: {n} of {of}");
        assert!(error.contains(why), "{error}");
        // The run metadata carries it too.
        let meta = &finished.files().unwrap().metadata;
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(meta).unwrap()).unwrap();
        let texts = meta["warnings"].as_array().unwrap();
        assert!(
            texts
                .iter()
                .any(|t| *t == serde_json::json!(failed_text(&finished))),
            "{texts:?}"
        );
    }
}

/// The ScrapeFailed warning's message, as the metadata stores it.
fn failed_text(finished: &llmbench::run::RunOutcome) -> String {
    finished
        .warnings
        .iter()
        .find(|w| matches!(w, llmbench::stats::Warning::ScrapeFailed { .. }))
        .unwrap()
        .to_string()
}

/// The mock with its prefix cache serves vLLM's prefix-cache counters at `/metrics`; scraping
/// them gives each phase the server's own hit share: for a run of one phase, exactly the
/// mock's own counts over its requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_prefix_cache_counters_give_the_hit_share_per_phase() {
    use llmbench::mock::{LoggedTiming, MockConfig, MockServer, PrefixCacheConfig};
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(
        MockConfig {
            ttft: Duration::from_millis(20),
            itl: Duration::from_millis(2),
            output_tokens: 8,
            prefix_cache: PrefixCacheConfig {
                blocks: 10_000,
                block_tokens: 4,
                per_token: Duration::ZERO,
            },
            ..MockConfig::default()
        },
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap();
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ max_tokens: 8, prompt: session(#{
               turns: 4, think_ms: 20,
               first_turn: |s, rng| `user ${s}: ` + words(rng, 60),
               next_turn: |s, k, rng| words(rng, 10),
           }) });
           phase("chat", #{ concurrency: 4, requests: 32 });"#,
    );
    common::target(&mut plan, &server);
    plan.telemetry.prometheus = vec![format!("http://{}/metrics", server.addr())];
    plan.telemetry.every = Duration::from_millis(50);
    plan.telemetry.nvml = false;
    let (outcome, records) = common::run(plan, dir.path()).await;
    assert_eq!(records.len(), 32);
    llmbench::client::install_tls_provider();
    let log: Vec<LoggedTiming> = reqwest::get(format!("http://{}/mock/timings", server.addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hit: u64 = log.iter().map(|t| t.cached_tokens).sum();
    let queried: u64 = log.iter().map(|t| t.prompt_tokens).sum();
    let truth = hit as f64 / queried as f64;
    assert!(truth > 0.3, "later turns find their history: {truth}");
    let windows = &outcome.telemetry.prefix_cache;
    assert_eq!(
        windows
            .iter()
            .map(|w| w.window.as_str())
            .collect::<Vec<_>>(),
        ["chat", "all"]
    );
    let all = &windows[1];
    assert!(all.source.starts_with("vllm:prefix_cache_hits_total"));
    // The run waits for a first scrape before its load, and takes one more after it: the
    // window spans every lookup, so the server's counts come out exactly.
    assert_eq!(all.queried_tokens, Some(queried as f64));
    assert_eq!(all.hit_tokens, Some(hit as f64));
    assert!((all.hit_share.unwrap() - truth).abs() < 1e-12);
    // The run reports show it.
    let files = outcome.files().unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("| Window | Hit share % |"), "{md}");
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("<th>Hit share %</th>"));
}
