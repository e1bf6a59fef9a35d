//! The server's own prefix-cache hit share per window, from what its Prometheus endpoint
//! exposes, as the scraper recorded it: the one place that knows the servers' cache series.
//!
//! Sources, best first (the first one the run has is used for every window):
//! - token counters, as a ratio of increases over the window (from the last scrape at or
//!   before its start to the first at or after its end: a lookup counts when the server sees
//!   the request, so a window's requests are all inside that span; back-to-back phases share up
//!   to one scrape interval of each other's requests): vLLM's
//!   `vllm:prefix_cache_hits_total` over `vllm:prefix_cache_queries_total` (V1 engine; tokens
//!   found in the cache over tokens looked up), vLLM's older `vllm:gpu_prefix_cache_hits_total`
//!   over `vllm:gpu_prefix_cache_queries_total`, SGLang's `sglang:cached_tokens_total` over
//!   `sglang:prompt_tokens_total`. Series with several label sets (engines, data-parallel
//!   ranks) are summed.
//! - a hit-rate gauge, as its time-weighted mean over the window: vLLM V0's
//!   `vllm:gpu_prefix_cache_hit_rate`, SGLang's `sglang:cache_hit_rate`.

use serde::Serialize;

use super::Reading;
use super::series::{Points, Window, group, increase, integral};
use crate::units::span_s;

/// The prefix cache over one window, as the server counted it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefixCacheWindow {
    pub window: String,
    /// Prompt tokens served from the cache and looked up (counter sources only).
    pub hit_tokens: Option<f64>,
    pub queried_tokens: Option<f64>,
    /// Hits over queries, 0 to 1; `None` when nothing was looked up.
    pub hit_share: Option<f64>,
    /// The series it comes from.
    pub source: String,
}

/// Counter pairs (hits, queries), best first.
const COUNTERS: [(&str, &str); 3] = [
    (
        "vllm:prefix_cache_hits_total",
        "vllm:prefix_cache_queries_total",
    ),
    (
        "vllm:gpu_prefix_cache_hits_total",
        "vllm:gpu_prefix_cache_queries_total",
    ),
    ("sglang:cached_tokens_total", "sglang:prompt_tokens_total"),
];

/// Hit-rate gauges (0 to 1), best first.
const GAUGES: [&str; 2] = ["vllm:gpu_prefix_cache_hit_rate", "sglang:cache_hit_rate"];

/// The prefix cache per window; empty when the run scraped none of the series above.
pub fn per_window(readings: &[Reading], windows: &[Window]) -> Vec<PrefixCacheWindow> {
    let grouped = group(readings);
    let series = |name: &str| -> Vec<&Points> {
        grouped
            .iter()
            .filter(|((_, n, _), _)| *n == name)
            .map(|(_, (_, pts))| pts)
            .collect()
    };
    for (hits, queries) in COUNTERS {
        let (h, q) = (series(hits), series(queries));
        if h.is_empty() || q.is_empty() {
            continue;
        }
        let sum = |s: &[&Points], w: &Window| -> f64 {
            s.iter()
                .map(|p| increase_around(p, w.start_us, w.end_us))
                .sum()
        };
        return windows
            .iter()
            .map(|w| {
                let (hit, queried) = (sum(&h, w), sum(&q, w));
                PrefixCacheWindow {
                    window: w.name.clone(),
                    hit_tokens: Some(hit),
                    queried_tokens: Some(queried),
                    hit_share: (queried > 0.0).then(|| (hit / queried).clamp(0.0, 1.0)),
                    source: format!("{hits} / {queries}"),
                }
            })
            .collect();
    }
    for gauge in GAUGES {
        let g = series(gauge);
        if g.is_empty() {
            continue;
        }
        return windows
            .iter()
            .map(|w| {
                let secs = span_s(w.start_us, w.end_us);
                let mean = g
                    .iter()
                    .map(|p| integral(p, w.start_us, w.end_us) / secs)
                    .sum::<f64>()
                    / g.len() as f64;
                PrefixCacheWindow {
                    window: w.name.clone(),
                    hit_tokens: None,
                    queried_tokens: None,
                    hit_share: (secs > 0.0 && mean.is_finite()).then_some(mean),
                    source: gauge.to_string(),
                }
            })
            .collect();
    }
    Vec::new()
}

/// A counter's increase from its last sample at or before `start` (its first, when none) to
/// its first at or after `end` (its last, when none).
fn increase_around(pts: &[(u64, f64)], start: u64, end: u64) -> f64 {
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
        return 0.0;
    };
    let from = pts.iter().rev().find(|p| p.0 <= start).unwrap_or(first).0;
    let to = pts.iter().find(|p| p.0 >= end).unwrap_or(last).0;
    increase(pts, from, to.max(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Kind;

    fn reading(name: &str, kind: Kind, engine: &str, t_ms: u64, value: f64) -> Reading {
        Reading {
            t_us: t_ms * 1000,
            source: "http://127.0.0.1:1/metrics".into(),
            name: name.into(),
            labels: [("engine".to_owned(), engine.to_owned())].into(),
            kind,
            value,
        }
    }

    fn window(name: &str, start_ms: u64, end_ms: u64) -> Window {
        Window {
            name: name.into(),
            start_us: start_ms * 1000,
            end_us: end_ms * 1000,
            output_tokens: 0,
        }
    }

    #[test]
    fn vllm_counters_give_each_phase_its_own_increase_summed_over_engines() {
        let mut r = Vec::new();
        // Two engines; each second 100 tokens looked up and 60 hits per engine in phase a
        // (0-2 s), 100 and 0 in phase b (2-4 s); a reset of engine 1 at 3 s.
        for engine in ["0", "1"] {
            for s in 0..=4u64 {
                let q = 100.0 * s as f64;
                let h = 60.0 * s.min(2) as f64;
                let (q, h) = if engine == "1" && s >= 3 {
                    (q - 300.0, 0.0)
                } else {
                    (q, h)
                };
                r.push(reading(
                    "vllm:prefix_cache_queries_total",
                    Kind::Counter,
                    engine,
                    s * 1000,
                    q,
                ));
                r.push(reading(
                    "vllm:prefix_cache_hits_total",
                    Kind::Counter,
                    engine,
                    s * 1000,
                    h,
                ));
            }
        }
        // Windows between scrapes take the scrapes around them.
        let w = per_window(&r, &[window("a", 0, 2000), window("b", 2500, 3500)]);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].queried_tokens, Some(400.0));
        assert_eq!(w[0].hit_tokens, Some(240.0));
        assert_eq!(w[0].hit_share, Some(0.6));
        // From the 2 s scrape to the 4 s one: engine 0 counted 200; engine 1 reset to 0 at 3 s
        // and counted 100 from there (a reset is not a drop).
        assert_eq!(w[1].queried_tokens, Some(300.0));
        assert_eq!(w[1].hit_tokens, Some(0.0));
        assert_eq!(w[1].hit_share, Some(0.0));
        assert!(w[0].source.starts_with("vllm:prefix_cache_hits_total"));
    }

    #[test]
    fn an_sglang_gauge_is_averaged_over_time_and_nothing_gives_nothing() {
        let r: Vec<Reading> = [(0, 0.2), (1000, 0.4), (2000, 0.4)]
            .iter()
            .map(|&(t, v)| reading("sglang:cache_hit_rate", Kind::Gauge, "0", t, v))
            .collect();
        let w = per_window(&r, &[window("all", 0, 2000)]);
        // Trapezoids: (0.2 + 0.4) / 2 for a second, then 0.4 for a second.
        assert!((w[0].hit_share.unwrap() - 0.35).abs() < 1e-12, "{w:?}");
        assert_eq!(w[0].hit_tokens, None);
        let none = vec![reading(
            "vllm:num_requests_running",
            Kind::Gauge,
            "0",
            0,
            3.0,
        )];
        assert!(per_window(&none, &[window("all", 0, 2000)]).is_empty());
        // No lookups in a window: no share rather than 0/0.
        let idle: Vec<Reading> = [
            "vllm:prefix_cache_queries_total",
            "vllm:prefix_cache_hits_total",
        ]
        .iter()
        .map(|n| reading(n, Kind::Counter, "0", 0, 5.0))
        .collect();
        assert_eq!(
            per_window(&idle, &[window("all", 0, 1000)])[0].hit_share,
            None
        );
    }
}
