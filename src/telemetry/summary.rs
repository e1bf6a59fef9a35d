//! Telemetry over the measured windows, as a pure pass over readings: per series level statistics
//! (gauges) or delta and rate (counters), energy per phase from the best source there is, and
//! the server's prefix-cache hit share per phase (`prefix_cache`).
//!
//! Energy, in order of preference: a GPU energy counter (NVML `gpu_energy_joules`, DCGM
//! `DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION` in mJ), as the counter's increase over the window;
//! else a power gauge (NVML `gpu_power_w`, DCGM `DCGM_FI_DEV_POWER_USAGE`) integrated over the
//! window by the trapezoid rule. Values at the window's edges are interpolated linearly between
//! the nearest samples (held flat beyond the first or last). GPUs (label sets) are summed.

use std::collections::BTreeMap;

use serde::Serialize;

pub use super::series::Window;
use super::series::{group, increase, integral, value_at};
use super::{Kind, Reading};
use crate::units::span_s;

/// One series over the whole measured window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesSummary {
    pub source: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub kind: Kind,
    pub samples: usize,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub last: f64,
    /// Counters: increase over the window (resets handled).
    pub delta: Option<f64>,
    /// Counters: increase per second over the window.
    pub rate_per_s: Option<f64>,
}

/// Energy of one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Energy {
    pub window: String,
    pub joules: f64,
    /// How it was measured: `energy counter` or `power integration`, and the series used.
    pub method: String,
    pub gpus: usize,
    pub avg_power_w: f64,
    pub joules_per_output_token: Option<f64>,
    /// Equivalently output tokens/s per watt (the original tool's "tokens/W").
    pub output_tokens_per_joule: Option<f64>,
}

/// Everything telemetry says about a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TelemetrySummary {
    pub series: Vec<SeriesSummary>,
    /// Per window, in the order given; absent when no power or energy series exists.
    pub energy: Vec<Energy>,
    /// The server's prefix-cache hit share per window (`prefix_cache`), where it exposes one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prefix_cache: Vec<super::prefix_cache::PrefixCacheWindow>,
}

/// Energy sources, best first: (series name, is a counter, unit per joule).
const ENERGY_SOURCES: [(&str, bool, f64); 4] = [
    ("gpu_energy_joules", true, 1.0),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", true, 1000.0),
    ("gpu_power_w", false, 1.0),
    ("DCGM_FI_DEV_POWER_USAGE", false, 1.0),
];

/// Summarises `readings` over `windows`; series statistics cover the span of all windows.
pub fn summarize(readings: &[Reading], windows: &[Window]) -> TelemetrySummary {
    let grouped = group(readings);
    let (Some(start), Some(end)) = (
        windows.iter().map(|w| w.start_us).min(),
        windows.iter().map(|w| w.end_us).max(),
    ) else {
        return TelemetrySummary::default();
    };
    let secs = span_s(start, end);
    let series = grouped
        .iter()
        .map(|((source, name, labels), (kind, pts))| {
            let inside: Vec<f64> = pts
                .iter()
                .filter(|p| p.0 >= start && p.0 <= end)
                .map(|p| p.1)
                .collect();
            let values = if inside.is_empty() {
                vec![value_at(pts, end)]
            } else {
                inside
            };
            let delta = (*kind == Kind::Counter).then(|| increase(pts, start, end));
            SeriesSummary {
                source: source.to_string(),
                name: name.to_string(),
                labels: (*labels).clone(),
                kind: *kind,
                samples: values.len(),
                min: values.iter().copied().fold(f64::INFINITY, f64::min),
                mean: values.iter().sum::<f64>() / values.len() as f64,
                max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                last: *values.last().expect("at least one value"),
                delta,
                rate_per_s: delta.filter(|_| secs > 0.0).map(|d| d / secs),
            }
        })
        .collect();
    let energy = ENERGY_SOURCES
        .iter()
        .find_map(|&(name, counter, per_joule)| {
            let gpus: Vec<&Vec<(u64, f64)>> = grouped
                .iter()
                .filter(|((_, n, _), _)| *n == name)
                .map(|(_, (_, pts))| pts)
                .collect();
            if gpus.is_empty() {
                return None;
            }
            let method = if counter {
                format!("energy counter ({name})")
            } else {
                format!("power integration ({name})")
            };
            Some(
                windows
                    .iter()
                    .map(|w| {
                        let joules: f64 = gpus
                            .iter()
                            .map(|pts| {
                                if counter {
                                    increase(pts, w.start_us, w.end_us) / per_joule
                                } else {
                                    integral(pts, w.start_us, w.end_us)
                                }
                            })
                            .sum();
                        let secs = span_s(w.start_us, w.end_us);
                        let tokens = (w.output_tokens > 0).then_some(w.output_tokens as f64);
                        Energy {
                            window: w.name.clone(),
                            joules,
                            method: method.clone(),
                            gpus: gpus.len(),
                            avg_power_w: if secs > 0.0 { joules / secs } else { 0.0 },
                            joules_per_output_token: tokens.map(|t| joules / t),
                            output_tokens_per_joule: tokens
                                .filter(|_| joules > 0.0)
                                .map(|t| t / joules),
                        }
                    })
                    .collect(),
            )
        })
        .unwrap_or_default();
    TelemetrySummary {
        series,
        energy,
        prefix_cache: super::prefix_cache::per_window(readings, windows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(name: &str, kind: Kind, gpu: &str, t_us: u64, value: f64) -> Reading {
        Reading {
            t_us,
            source: "test".into(),
            name: name.into(),
            labels: [("gpu".to_owned(), gpu.to_owned())].into(),
            kind,
            value,
        }
    }

    fn window(start_s: f64, end_s: f64, tokens: u64) -> Window {
        Window {
            name: "w".into(),
            start_us: crate::units::s_to_us(start_s),
            end_us: crate::units::s_to_us(end_s),
            output_tokens: tokens,
        }
    }

    #[test]
    fn linear_power_integrates_exactly_between_samples() {
        // P(t) = 100 + 10 t watts, sampled every 0.5 s; energy over [1.25, 3.75] s is
        // 100 × 2.5 + 5 × (3.75² − 1.25²) = 312.5 J.
        let readings: Vec<Reading> = (0..=10)
            .map(|k| {
                let t = k as f64 * 0.5;
                reading(
                    "gpu_power_w",
                    Kind::Gauge,
                    "0",
                    crate::units::s_to_us(t),
                    100.0 + 10.0 * t,
                )
            })
            .collect();
        let s = summarize(&readings, &[window(1.25, 3.75, 625)]);
        let e = &s.energy[0];
        assert!((e.joules - 312.5).abs() < 1e-6, "{}", e.joules);
        assert!((e.avg_power_w - 125.0).abs() < 1e-6);
        assert!((e.joules_per_output_token.unwrap() - 0.5).abs() < 1e-9);
        assert!((e.output_tokens_per_joule.unwrap() - 2.0).abs() < 1e-9);
        assert!(e.method.starts_with("power integration"));
    }

    #[test]
    fn an_energy_counter_wins_and_gpus_add_up() {
        let mut readings = Vec::new();
        for gpu in ["0", "1"] {
            for k in 0..=4 {
                let t = k as u64 * 1_000_000;
                // 2000 mJ per second per GPU, and a power gauge that disagrees (ignored).
                readings.push(reading(
                    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
                    Kind::Counter,
                    gpu,
                    t,
                    5e6 + 2000.0 * k as f64,
                ));
                readings.push(reading(
                    "DCGM_FI_DEV_POWER_USAGE",
                    Kind::Gauge,
                    gpu,
                    t,
                    999.0,
                ));
            }
        }
        let s = summarize(&readings, &[window(0.5, 3.5, 0)]);
        let e = &s.energy[0];
        assert_eq!(e.gpus, 2);
        assert!((e.joules - 2.0 * 2.0 * 3.0).abs() < 1e-9, "{}", e.joules);
        assert!(e.method.contains("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"));
        assert_eq!(
            e.joules_per_output_token, None,
            "no tokens, no per-token figure"
        );
    }

    #[test]
    fn counters_get_deltas_and_rates_across_resets() {
        let pts = [
            (0, 10.0),
            (1_000_000, 30.0),
            (2_000_000, 5.0),
            (3_000_000, 25.0),
        ];
        let readings: Vec<Reading> = pts
            .iter()
            .map(|&(t, v)| reading("vllm:generation_tokens_total", Kind::Counter, "0", t, v))
            .collect();
        let s = summarize(&readings, &[window(0.0, 3.0, 0)]);
        let c = &s.series[0];
        // 10→30 (+20), reset to 5 (+5), 5→25 (+20)
        assert_eq!(c.delta, Some(45.0));
        assert_eq!(c.rate_per_s, Some(15.0));
        assert_eq!(c.max, 30.0);
        assert!(s.energy.is_empty());
    }
}
