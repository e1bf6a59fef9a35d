//! The live view: llmbench's own counters and latency histograms in the Prometheus text format,
//! served while a run goes (`--metrics-listen 127.0.0.1:9464`), so Grafana can show the load
//! beside the server's and the GPUs' series (`configs/grafana/llmbench.json`).
//!
//! Fed by the record sink (one update per completed request) and by the dispatcher (one atomic
//! increment per request sent), so the hot path pays next to nothing. Histograms use fixed
//! buckets, in seconds, as Prometheus expects.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::record::RequestRecord;

/// Bucket upper bounds (seconds) for first-token and end-to-end latency.
const LATENCY_BUCKETS: [f64; 21] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5,
    10.0, 15.0, 30.0, 60.0,
];

/// Bucket upper bounds (seconds) for per-token times.
const TOKEN_BUCKETS: [f64; 17] = [
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
    0.5, 1.0,
];

/// One Prometheus histogram: counts per bucket (not cumulative), sum and count.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c;
            let le = self
                .bounds
                .get(i)
                .map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Everything kept per phase.
#[derive(Debug, Clone)]
struct PhaseMetrics {
    outcomes: BTreeMap<&'static str, u64>,
    input_tokens: u64,
    output_tokens: u64,
    ttft: Histogram,
    tpot: Histogram,
    itl: Histogram,
    e2el: Histogram,
}

impl PhaseMetrics {
    fn new() -> Self {
        Self {
            outcomes: BTreeMap::new(),
            input_tokens: 0,
            output_tokens: 0,
            ttft: Histogram::new(&LATENCY_BUCKETS),
            tpot: Histogram::new(&TOKEN_BUCKETS),
            itl: Histogram::new(&TOKEN_BUCKETS),
            e2el: Histogram::new(&LATENCY_BUCKETS),
        }
    }
}

/// The live metrics of one run.
#[derive(Debug)]
pub struct Live {
    /// `run_id`, `workload`, `target`, `model` for `llmbench_run_info`.
    info: Vec<(&'static str, String)>,
    sent: AtomicU64,
    /// Requests that were sent and have ended.
    ended: AtomicU64,
    phases: Mutex<BTreeMap<String, PhaseMetrics>>,
}

impl Live {
    pub fn new(run_id: &str, workload: &str, target: &str, model: &str) -> Self {
        Self {
            info: vec![
                ("run_id", run_id.to_owned()),
                ("workload", workload.to_owned()),
                ("target", target.to_owned()),
                ("model", model.to_owned()),
            ],
            sent: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            phases: Mutex::new(BTreeMap::new()),
        }
    }

    /// A request was handed to the client.
    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A request ended.
    pub fn record(&self, r: &RequestRecord) {
        if r.sent_us.is_some() {
            self.ended.fetch_add(1, Ordering::Relaxed);
        }
        let mut phases = self.phases.lock().expect("live metrics lock");
        let p = phases
            .entry(r.phase.clone())
            .or_insert_with(PhaseMetrics::new);
        *p.outcomes.entry(r.outcome.name()).or_default() += 1;
        if r.outcome != crate::record::Outcome::Ok {
            return;
        }
        p.input_tokens += r.input_tokens.unwrap_or(0);
        p.output_tokens += r.output_tokens;
        let secs = crate::units::us_to_s;
        if let Some(v) = r.ttft_us() {
            p.ttft.observe(secs(v));
        }
        if let Some(v) = r.tpot_us() {
            p.tpot.observe(crate::units::us_f_to_s(v));
        }
        for gap in r.itl_us() {
            p.itl.observe(secs(gap));
        }
        if let Some(v) = r.e2el_us() {
            p.e2el.observe(secs(v));
        }
    }

    /// The text exposition of everything so far.
    pub fn render(&self) -> String {
        let phases = self.phases.lock().expect("live metrics lock").clone();
        let mut out = String::new();
        let info: Vec<String> = self
            .info
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(
            out,
            "# HELP llmbench_run_info The run being measured.\n# TYPE llmbench_run_info gauge\nllmbench_run_info{{{}}} 1",
            info.join(",")
        );
        let ended = self.ended.load(Ordering::Relaxed);
        let sent = self.sent.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP llmbench_requests_in_flight Requests sent and not yet ended.\n# TYPE llmbench_requests_in_flight gauge\nllmbench_requests_in_flight {}",
            sent.saturating_sub(ended)
        );
        let _ = writeln!(
            out,
            "# HELP llmbench_requests_total Requests ended, by phase and outcome.\n# TYPE llmbench_requests_total counter"
        );
        for (phase, p) in &phases {
            for (outcome, n) in &p.outcomes {
                let _ = writeln!(
                    out,
                    "llmbench_requests_total{{phase=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(phase)
                );
            }
        }
        for (name, help, get) in [
            (
                "llmbench_output_tokens_total",
                "Output tokens of successful requests.",
                (|p: &PhaseMetrics| p.output_tokens) as fn(&PhaseMetrics) -> u64,
            ),
            (
                "llmbench_input_tokens_total",
                "Prompt tokens of successful requests (server usage).",
                |p: &PhaseMetrics| p.input_tokens,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (phase, p) in &phases {
                let _ = writeln!(out, "{name}{{phase=\"{}\"}} {}", escape(phase), get(p));
            }
        }
        for (name, help, get) in [
            (
                "llmbench_ttft_seconds",
                "Time to first token, from the send.",
                (|p: &PhaseMetrics| &p.ttft) as fn(&PhaseMetrics) -> &Histogram,
            ),
            (
                "llmbench_tpot_seconds",
                "Time per output token after the first.",
                |p: &PhaseMetrics| &p.tpot,
            ),
            (
                "llmbench_itl_seconds",
                "Gaps between content chunks.",
                |p: &PhaseMetrics| &p.itl,
            ),
            (
                "llmbench_e2e_latency_seconds",
                "End-to-end latency, from the send.",
                |p: &PhaseMetrics| &p.e2el,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (phase, p) in &phases {
                get(p).write(&mut out, name, &format!("phase=\"{}\"", escape(phase)));
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `live` at `GET /metrics` on `listener` until the returned task is aborted.
pub fn serve(listener: tokio::net::TcpListener, live: Arc<Live>) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(live): State<Arc<Live>>| async move {
                // Rendered off the thread that drives the requests.
                let text = tokio::task::spawn_blocking(move || live.render())
                    .await
                    .unwrap_or_default();
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
            }),
        )
        .with_state(live);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

/// Binds the live view's address before the run, so a taken port fails early.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Outcome;
    use crate::telemetry::prometheus::parse;

    fn record(phase: &str, outcome: Outcome, ttft_ms: u64, tokens: u64) -> RequestRecord {
        let mut r = RequestRecord::unsent(0, phase, 0, false, true, 0);
        r.outcome = outcome;
        r.sent_us = Some(0);
        r.first_token_us = Some(ttft_ms * 1000);
        r.last_token_us = Some(ttft_ms * 1000 + (tokens - 1) * 10_000);
        r.chunk_offsets_us = (0..tokens).map(|k| k * 10_000).collect();
        r.output_tokens = tokens;
        r.input_tokens = Some(7);
        r
    }

    #[test]
    fn renders_exact_counts_and_cumulative_buckets() {
        let live = Live::new("run-1", "w", "mock", "m\"odel");
        for _ in 0..5 {
            live.sent();
        }
        live.record(&record("steady", Outcome::Ok, 40, 11));
        live.record(&record("steady", Outcome::Ok, 120, 11));
        live.record(&record("steady", Outcome::HttpStatus, 0, 1));
        let mut queued = RequestRecord::unsent(9, "steady", 0, false, true, 0);
        queued.sent_us = None; // cancelled before it was sent: not in flight, never was
        live.record(&queued);
        let text = live.render();
        let series = parse(&text);
        let value = |name: &str, want: &[(&str, &str)]| {
            series
                .iter()
                .find(|s| {
                    s.name == name
                        && want
                            .iter()
                            .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
                })
                .unwrap_or_else(|| panic!("{name} {want:?} in\n{text}"))
                .value
        };
        assert_eq!(value("llmbench_requests_in_flight", &[]), 2.0);
        assert_eq!(value("llmbench_requests_total", &[("outcome", "ok")]), 2.0);
        assert_eq!(
            value("llmbench_requests_total", &[("outcome", "http_status")]),
            1.0
        );
        assert_eq!(
            value("llmbench_requests_total", &[("outcome", "cancelled")]),
            1.0
        );
        assert_eq!(value("llmbench_output_tokens_total", &[]), 22.0);
        assert_eq!(
            value("llmbench_ttft_seconds_bucket", &[("le", "0.05")]),
            1.0
        );
        assert_eq!(
            value("llmbench_ttft_seconds_bucket", &[("le", "0.15")]),
            2.0
        );
        assert_eq!(
            value("llmbench_ttft_seconds_bucket", &[("le", "+Inf")]),
            2.0
        );
        assert!((value("llmbench_ttft_seconds_sum", &[]) - 0.16).abs() < 1e-12);
        assert_eq!(value("llmbench_itl_seconds_count", &[]), 20.0);
        assert_eq!(
            value("llmbench_tpot_seconds_bucket", &[("le", "0.01")]),
            2.0
        );
        assert_eq!(value("llmbench_run_info", &[("model", "m\"odel")]), 1.0);
    }

    #[test]
    fn the_grafana_dashboard_asks_only_for_series_llmbench_serves() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/grafana/llmbench.json");
        let dash: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let live = Live::new("r", "w", "t", "m");
        live.sent();
        live.record(&record("p", Outcome::Ok, 10, 3));
        let served: Vec<String> = parse(&live.render()).into_iter().map(|s| s.name).collect();
        let text = dash.to_string();
        let mut asked = 0;
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("llmbench_") {
                asked += 1;
                assert!(served.iter().any(|s| s == word), "{word} is not served");
            }
        }
        assert!(asked >= 8, "the dashboard charts llmbench's series");
    }
}
