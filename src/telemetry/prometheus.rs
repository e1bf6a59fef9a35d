//! Prometheus text exposition format: a pure parser, the list of series llmbench knows from
//! serving stacks and GPU exporters, and the scraper task that polls `/metrics` endpoints.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Kind, Reading, SampleSink, ScrapeFailure};
use crate::clock::Clock;

/// One sample line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub kind: Kind,
}

/// Parses the text exposition format. Malformed lines are skipped (a scrape must never fail a
/// run); `# TYPE` lines give each family its kind, and `_sum`/`_count`/`_total` of histograms,
/// summaries and counters are counters.
pub fn parse(text: &str) -> Vec<Parsed> {
    let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut words = rest.split_whitespace();
            if words.next() == Some("TYPE")
                && let (Some(name), Some(kind)) = (words.next(), words.next())
            {
                kinds.insert(name.to_owned(), Kind::from_type(kind));
            }
            continue;
        }
        if let Some((name, labels, value)) = sample_line(line) {
            let kind = kind_of(&name, &kinds);
            out.push(Parsed {
                name,
                labels,
                value,
                kind,
            });
        }
    }
    out
}

fn kind_of(name: &str, kinds: &BTreeMap<String, Kind>) -> Kind {
    if let Some(k) = kinds.get(name) {
        return *k;
    }
    for suffix in ["_sum", "_count", "_total", "_bucket"] {
        if let Some(family) = name.strip_suffix(suffix)
            && let Some(k) = kinds.get(family)
        {
            return match k {
                Kind::Histogram | Kind::Counter => Kind::Counter,
                other => *other,
            };
        }
    }
    Kind::Untyped
}

/// `name{a="b",c="d"} value [timestamp]`
fn sample_line(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(body)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some((name.to_owned(), labels, value))
}

/// Parses `a="b",c="d"}` (after the opening brace); returns the labels and the rest of the line.
fn label_set(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(rest) = s.strip_prefix('}') {
            return Some((labels, rest));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_owned();
        let mut chars = s[eq + 1..].trim_start().char_indices();
        let open = s.len() - s[eq + 1..].trim_start().len();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let mut escaped = false;
        let mut end = None;
        for (i, c) in chars {
            match (escaped, c) {
                (true, 'n') => (value.push('\n'), escaped = false).1,
                (true, c) => (value.push(c), escaped = false).1,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(open + i + 1);
                    break;
                }
                (false, c) => value.push(c),
            }
        }
        labels.insert(key, value);
        s = &s[end?..];
    }
}

/// Series prefixes llmbench keeps from any endpoint: vLLM, SGLang, TGI, llama.cpp, DCGM exporter.
pub const KNOWN_PREFIXES: [&str; 5] = ["vllm:", "sglang:", "tgi_", "llamacpp:", "DCGM_FI_"];

/// Whether a scraped series is kept: a known family (histogram buckets left out) or named.
pub fn keep(name: &str, named: &[String]) -> bool {
    named.iter().any(|n| n == name)
        || (KNOWN_PREFIXES.iter().any(|p| name.starts_with(p)) && !name.ends_with("_bucket"))
}

/// Polls `url` every `every` until the sink closes, then once more (`first` is told when the
/// first scrape is over, so a run can start its load after it); each kept series becomes a
/// reading stamped at the middle of the request. A scrape fails when the endpoint cannot be
/// reached, answers with an error status, or sends a page with no Prometheus sample line; the
/// failures are reported to the sink when the loop ends.
pub async fn scrape_loop(
    url: String,
    every: Duration,
    named: Vec<String>,
    clock: Clock,
    sink: SampleSink,
    first: tokio::sync::oneshot::Sender<()>,
) {
    let shown = crate::redact::public_url(&url);
    let mut tally = Tally::default();
    let mut first = Some(first);
    scrape_until_stopped(&url, every, &named, clock, &sink, &mut tally, &mut first).await;
    if let Some(error) = tally.first_error {
        sink.scrape_failed(ScrapeFailure {
            url: shown,
            failed: tally.failed,
            tried: tally.tried,
            error,
        });
    }
}

/// Scrapes tried and failed, and the first failure's error.
#[derive(Default)]
struct Tally {
    tried: u64,
    failed: u64,
    first_error: Option<String>,
}

impl Tally {
    fn fail(&mut self, error: String) {
        self.failed += 1;
        self.first_error.get_or_insert(error);
    }
}

async fn scrape_until_stopped(
    url: &str,
    every: Duration,
    named: &[String],
    clock: Clock,
    sink: &SampleSink,
    tally: &mut Tally,
    first: &mut Option<tokio::sync::oneshot::Sender<()>>,
) {
    crate::client::install_tls_provider();
    // The URL may carry credentials: readings and notices name it without them.
    let shown = crate::redact::public_url(url);
    let redactor = crate::redact::Redactor::new().with_url(url);
    let http = match reqwest::Client::builder()
        .no_proxy()
        .timeout(every.max(Duration::from_secs(2)))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            let error = redactor.redact(&e.to_string());
            sink.notice(format!("cannot scrape {shown}: {error}"));
            tally.tried += 1;
            tally.fail(error);
            return;
        }
    };
    let mut next = crate::clock::Instant::now();
    let mut failing = false;
    loop {
        let last = tokio::select! {
            _ = crate::schedule::timer::sleep_until(next) => sink.closed(),
            _ = sink.stopping() => true,
        };
        next += every;
        let sent = clock.now_us();
        let result = async { http.get(url).send().await?.error_for_status()?.text().await }.await;
        let t_us = sent + (clock.now_us() - sent) / 2;
        tally.tried += 1;
        match result {
            Ok(text) => {
                // Parsed off the thread that drives the requests (by default one thread drives
                // them all): a large /metrics page would delay the reads of every stream.
                let parsed = tokio::task::spawn_blocking(move || parse(&text))
                    .await
                    .unwrap_or_default();
                if parsed.is_empty() {
                    if !failing {
                        sink.notice(format!(
                            "scraping {shown}: the page has no Prometheus sample line; will keep trying"
                        ));
                    }
                    failing = true;
                    tally.fail("the page has no Prometheus sample line".into());
                } else {
                    failing = false;
                    let readings = parsed
                        .into_iter()
                        .filter(|p| keep(&p.name, named))
                        .map(|p| Reading {
                            t_us,
                            source: shown.clone(),
                            name: p.name,
                            labels: p.labels,
                            kind: p.kind,
                            value: p.value,
                        });
                    if !sink.send_all(readings) {
                        return;
                    }
                }
            }
            Err(e) => {
                let error =
                    redactor.redact(&crate::client::response::error_chain(&e.without_url()));
                if !failing {
                    sink.notice(format!(
                        "scraping {shown} failed: {error}; will keep trying"
                    ));
                }
                failing = true;
                tally.fail(error);
            }
        }
        if let Some(f) = first.take() {
            let _ = f.send(());
        }
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_labels_and_special_values() {
        let text = r#"
# HELP vllm:num_requests_running Number of requests running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m",engine="0"} 3.0
# TYPE vllm:generation_tokens counter
vllm:generation_tokens_total{model_name="m"} 1.5e3
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 7
vllm:e2e_request_latency_seconds_sum{model_name="m"} 12.5
weird{path="a\"b\\c\nd"} NaN 1700000000000
bad line
DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-1"} 231.5
"#;
        let p = parse(text);
        assert_eq!(p.len(), 6);
        assert_eq!(p[0].name, "vllm:num_requests_running");
        assert_eq!(p[0].kind, Kind::Gauge);
        assert_eq!(p[0].labels["model_name"], "m");
        assert_eq!(p[1].kind, Kind::Counter);
        assert_eq!(p[1].value, 1500.0);
        assert_eq!(p[2].value, 7.0);
        assert_eq!(p[3].kind, Kind::Counter, "a histogram's _sum is a counter");
        assert_eq!(p[4].labels["path"], "a\"b\\c\nd");
        assert!(p[4].value.is_nan());
        assert_eq!(p[5].labels["gpu"], "0");
        assert_eq!(p[5].kind, Kind::Untyped);
    }

    #[test]
    fn keeps_known_families_and_named_series() {
        assert!(keep("vllm:num_requests_waiting", &[]));
        assert!(keep("llamacpp:requests_processing", &[]));
        assert!(keep("DCGM_FI_DEV_GPU_UTIL", &[]));
        assert!(!keep("vllm:e2e_request_latency_seconds_bucket", &[]));
        assert!(!keep("process_cpu_seconds_total", &[]));
        assert!(keep(
            "process_cpu_seconds_total",
            &["process_cpu_seconds_total".into()]
        ));
    }

    #[test]
    fn parses_the_real_llama_cpp_metrics() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/llamacpp/metrics.txt"
        ))
        .unwrap();
        let p = parse(&text);
        let tokens = p
            .iter()
            .find(|s| s.name == "llamacpp:tokens_predicted_total")
            .expect("llama.cpp exposes its token counter");
        assert_eq!(tokens.kind, Kind::Counter);
        assert!(p.iter().all(|s| keep(&s.name, &[])));
    }

    #[test]
    fn never_panics_on_odd_lines() {
        for line in [
            "{",
            "a{",
            "a{b",
            "a{b=",
            "a{b=\"",
            "a{b=\"c\"",
            "a{b=\"c\"} x",
            "a 1 2 3",
            "a{,} 1",
            "=",
            "\u{fffd}{\"=\"} 1",
        ] {
            parse(line);
        }
    }
}
