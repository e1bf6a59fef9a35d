//! llmbench at scale against the built-in mock running as a separate process on 127.0.0.1: the
//! set-ups of issue 8, each measured the way a user would run it (the `llmbench` binary, a
//! script, `--url`), with the mock's own timing log (`GET /mock/timings`) as ground truth.
//!
//!     cargo bench --bench scale [-- rate500 rate150 rate2000 streams1000 open1000 streams5000
//!                          streams10000]
//!
//! `LLMBENCH_BENCH_ARGS="--threads 2"` passes more flags to the llmbench run,
//! `LLMBENCH_MOCK_ARGS="--threads 2"` to the mock.
//!
//! Per set-up it prints: requests and errors; achieved send rate (requests − 1 over the span
//! from the first to the last send); scheduler lateness (dispatched − intended) and send delay
//! (sent − intended: lateness plus everything until the request goes out) at p50/p99/max; the
//! added TTFT error (`calibrate::added_ttft_us`: llmbench's TTFT minus the mock's own) at p50/p99;
//! the llmbench process's CPU time (user + system, start-up and reports included) per request
//! and its peak resident memory, from `wait4`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use llmbench::app::calibrate::added_ttft_us;
use llmbench::mock::LoggedTiming;
use llmbench::record::{Outcome, read_records};
use llmbench::stats::sample::Sample;

/// One set-up: the mock's timing, and the script's request and phase.
struct SetUp {
    name: &'static str,
    ttft_ms: f64,
    itl_ms: f64,
    tokens: u32,
    phase: &'static str,
}

const SET_UPS: &[SetUp] = &[
    SetUp {
        name: "rate500",
        ttft_ms: 20.0,
        itl_ms: 2.0,
        tokens: 64,
        phase: r#"#{ requests: 5000, rps: 500, arrival: "poisson", seed: 1 }"#,
    },
    SetUp {
        name: "rate150",
        ttft_ms: 20.0,
        itl_ms: 5.0,
        tokens: 128,
        phase: r#"#{ requests: 3000, rps: 150, arrival: "poisson", seed: 1 }"#,
    },
    SetUp {
        name: "rate2000",
        ttft_ms: 5.0,
        itl_ms: 1.0,
        tokens: 4,
        phase: r#"#{ duration: 10, rps: 2000, arrival: "poisson", seed: 1 }"#,
    },
    SetUp {
        name: "streams1000",
        ttft_ms: 100.0,
        itl_ms: 50.0,
        tokens: 32,
        phase: r#"#{ requests: 4000, concurrency: 1000 }"#,
    },
    SetUp {
        // ~1,000 streams in flight on average (600/s × 1.65 s each), arrivals spread out
        // rather than started together, so tokens do not come in bursts of a thousand.
        name: "open1000",
        ttft_ms: 100.0,
        itl_ms: 50.0,
        tokens: 32,
        phase: r#"#{ requests: 6000, rps: 600, arrival: "poisson", seed: 1 }"#,
    },
    SetUp {
        name: "streams5000",
        ttft_ms: 500.0,
        itl_ms: 200.0,
        tokens: 16,
        phase: r#"#{ requests: 15000, concurrency: 5000 }"#,
    },
    SetUp {
        // Issue 18's one-process goal: 10,000 concurrent streams under 1 GB resident.
        name: "streams10000",
        ttft_ms: 1000.0,
        itl_ms: 200.0,
        tokens: 16,
        phase: r#"#{ requests: 20000, concurrency: 10000 }"#,
    },
];

fn main() {
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    for s in SET_UPS {
        if picked.is_empty() || picked.iter().any(|p| p == s.name) {
            measure(s, dir.path());
        }
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llmbench"))
}

/// Starts `llmbench mock` on a free loopback port; returns it and its base URL.
fn start_mock(s: &SetUp) -> (Child, String) {
    let mut mock = bin()
        .args(["mock", "--host", "127.0.0.1", "--port", "0"])
        .args(
            std::env::var("LLMBENCH_MOCK_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .args(["--ttft-ms", &s.ttft_ms.to_string()])
        .args(["--itl-ms", &s.itl_ms.to_string()])
        .args(["--output-tokens", &s.tokens.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mock starts");
    let mut line = String::new();
    BufReader::new(mock.stderr.take().expect("piped"))
        .read_line(&mut line)
        .expect("the mock says where it listens");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (mock, url)
}

/// CPU seconds (user, system) and peak resident KB of a finished child, from `wait4`.
fn wait_with_usage(child: Child) -> (i32, f64, f64, i64) {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pid of our own child, pointers to live locals.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        status,
        secs(usage.ru_utime),
        secs(usage.ru_stime),
        usage.ru_maxrss,
    )
}

fn ms_summary(v: Vec<f64>) -> String {
    let v = Sample::new(v);
    format!(
        "p50 {:.3} / p99 {:.3} / max {:.3} ms",
        v.quantile(0.5),
        v.quantile(0.99),
        v.max()
    )
}

fn measure(s: &SetUp, dir: &Path) {
    let (mut mock, url) = start_mock(s);
    let script = dir.join(format!("{}.rhai", s.name));
    std::fs::write(
        &script,
        format!(
            "request(#{{ endpoint: \"chat\", max_tokens: {}, prompt: |i| `Request ${{i}}: measure me.` }});\nphase(\"{}\", {});\n",
            s.tokens, s.name, s.phase
        ),
    )
    .expect("script written");
    let results = dir.join(s.name);
    let client = bin()
        .arg(&script)
        .args([
            "--url",
            &url,
            "--model",
            "llmbench-mock",
            "--no-progress",
            "--no-nvml",
            // The run alone: not the comparison report rewritten after it.
            "--no-compare-report",
        ])
        .args(
            std::env::var("LLMBENCH_BENCH_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .arg("--results")
        .arg(&results)
        .stdout(Stdio::null())
        .spawn()
        .expect("llmbench runs");
    let (status, user, sys, maxrss_kb) = wait_with_usage(client);
    let timings_url = format!("{}/mock/timings", url.trim_end_matches("/v1"));
    let logged: Vec<LoggedTiming> = fetch_json(&timings_url);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(mock.id() as i32, libc::SIGINT) };
    let _ = mock.wait();
    assert!(status == 0, "llmbench exited with status {status}");

    let raw = std::fs::read_dir(results.join("raw"))
        .expect("raw folder")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "jsonl")
                && !p.to_string_lossy().contains(".telemetry.")
        })
        .expect("a raw file");
    let records = read_records(&raw).expect("records read back");
    let server_ttft: std::collections::HashMap<u64, u64> = logged
        .iter()
        .filter_map(|t| Some((t.id, t.ttft_us()?)))
        .collect();
    let n = records.len();
    let errors = records.iter().filter(|r| r.outcome != Outcome::Ok).count();
    let mut sent: Vec<u64> = records.iter().filter_map(|r| r.sent_us).collect();
    sent.sort_unstable();
    let rate = match (sent.first(), sent.last()) {
        (Some(a), Some(b)) if b > a => (sent.len() - 1) as f64 * 1e6 / (b - a) as f64,
        _ => f64::NAN,
    };
    let lateness = records
        .iter()
        .map(|r| r.lateness_us() as f64 / 1e3)
        .collect();
    let send_delay = records
        .iter()
        .filter_map(|r| Some(r.sent_us?.saturating_sub(r.intended_us) as f64 / 1e3))
        .collect();
    let added: Vec<f64> = records
        .iter()
        .filter_map(|r| added_ttft_us(r, *server_ttft.get(&r.id)?))
        .map(|us| us as f64 / 1e3)
        .collect();
    let matched = added.len();
    let (mean_flight, max_flight) = in_flight(&records);
    let scheduled = scheduled_rate(&records);
    println!(
        "RESULT {name}: {n} requests, {errors} errors; sent at {rate:.2}/s (schedule: {scheduled:.2}/s); in flight mean {mean_flight:.0}, max {max_flight}\n  lateness   {late}\n  send delay {delay}\n  added TTFT {added} ({matched} matched to the mock's log)\n  client CPU {user:.2} user + {sys:.2} sys = {cpu:.2} s = {per:.3} ms/request; peak RSS {rss:.1} MB",
        name = s.name,
        late = ms_summary(lateness),
        delay = ms_summary(send_delay),
        added = ms_summary(added),
        cpu = user + sys,
        per = (user + sys) * 1e3 / n.max(1) as f64,
        rss = maxrss_kb as f64 / 1024.0,
    );
}

/// Requests in flight (sent, not yet ended): time-weighted mean and maximum.
fn in_flight(records: &[llmbench::record::RequestRecord]) -> (f64, usize) {
    let mut events: Vec<(u64, i64)> = records
        .iter()
        .filter_map(|r| Some([(r.sent_us?, 1), (r.end_us, -1)]))
        .flatten()
        .collect();
    events.sort_unstable();
    let (mut now, mut max, mut area, mut last) = (0_i64, 0_i64, 0_f64, None);
    for &(t, d) in &events {
        if let Some(l) = last {
            area += now as f64 * (t - l) as f64;
        }
        now += d;
        max = max.max(now);
        last = Some(t);
    }
    let span = match (events.first(), events.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => (b.0 - a.0) as f64,
        _ => 1.0,
    };
    (area / span, max as usize)
}

/// The rate the schedule itself asked for: requests − 1 over the span of intended starts
/// (a seeded Poisson schedule's own rate differs from the nominal one by chance).
fn scheduled_rate(records: &[llmbench::record::RequestRecord]) -> f64 {
    let first = records.iter().map(|r| r.intended_us).min().unwrap_or(0);
    let last = records.iter().map(|r| r.intended_us).max().unwrap_or(0);
    if last > first {
        (records.len() - 1) as f64 * 1e6 / (last - first) as f64
    } else {
        f64::NAN
    }
}

fn fetch_json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    llmbench::client::install_tls_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        reqwest::get(url)
            .await
            .expect("the mock answers")
            .json()
            .await
            .expect("JSON")
    })
}
