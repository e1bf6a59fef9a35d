//! The statistics' running state as data (`summary/<run-id>.hdr.json` of a shard run), so that
//! shards' statistics combine without their records (`llmbench merge --summaries-only`).
//!
//! Per measured phase: the counters (outcomes, statuses, tokens, window, pace spans, good
//! requests) and per metric its HDR histogram in the V2 serialization (hex) with the exact
//! count, sums, min and max. `combine` re-bases each state onto the merged clock and merges
//! them with the same `PhaseAcc::merge` that builds a run's `all` row, then `finish` makes the
//! summary as a run does. Histograms merge exactly, so every percentile, min, max and count
//! equals the raw merge's; means and standard deviations come from the same sums added in
//! another order (equal to the last bits of an f64). Per-label rows are not kept.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use super::pace::{PaceAcc, Span};
use super::{Acc, Metric, PhaseAcc, StatsBuilder, Summary};
use crate::plan::Slo;
use crate::record::Outcome;

/// Schema name of the file.
pub const SCHEMA: &str = "llmbench.histograms/1";

/// A run's statistics state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsState {
    pub schema: String,
    /// By phase index; `None` for warmup phases and phases that saw no request.
    pub phases: Vec<Option<PhaseState>>,
    pub warmup: u64,
    pub slo: Option<Slo>,
    /// Up to two distinct `max_tokens` the measured records sent.
    pub max_tokens_sent: Vec<u32>,
}

/// One phase's counters and histograms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseState {
    pub name: String,
    pub outcomes: BTreeMap<Outcome, u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub first_sent_us: Option<u64>,
    pub last_end_us: Option<u64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub from_usage: u64,
    pub from_chunks: u64,
    pub reconnects: u64,
    pub probe: bool,
    pub empty: u64,
    /// Arrivals, and the spans of their intended starts and ends (µs).
    pub pace: (u64, Span, Span),
    pub good: u64,
    /// By metric key.
    pub metrics: BTreeMap<String, MetricState>,
}

/// One metric: its histogram (HDR V2, hex) and exact running values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricState {
    pub hdr: String,
    pub n: u64,
    pub sum: f64,
    pub sum_sq: f64,
    /// `None` without values.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl StatsBuilder {
    /// The running state, as data.
    pub fn state(&self) -> StatsState {
        StatsState {
            schema: SCHEMA.into(),
            phases: self
                .phases
                .iter()
                .map(|p| p.as_ref().map(PhaseAcc::state))
                .collect(),
            warmup: self.warmup,
            slo: self.slo,
            max_tokens_sent: self.max_tokens_sent.clone(),
        }
    }
}

impl PhaseAcc {
    fn state(&self) -> PhaseState {
        PhaseState {
            name: self.name.clone(),
            outcomes: self.outcomes.clone(),
            statuses: self.statuses.clone(),
            first_sent_us: self.first_sent_us,
            last_end_us: self.last_end_us,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            from_usage: self.from_usage,
            from_chunks: self.from_chunks,
            reconnects: self.reconnects,
            probe: self.probe,
            empty: self.empty,
            pace: self.pace.parts(),
            good: self.good,
            metrics: Metric::ALL
                .iter()
                .zip(&self.metrics)
                .map(|(m, a)| (m.key().to_owned(), a.state()))
                .collect(),
        }
    }

    fn from_state(s: &PhaseState, slo: Option<Slo>, by_us: u64) -> Result<Self, String> {
        let mut p = PhaseAcc::new(s.name.clone(), slo);
        p.outcomes = s.outcomes.clone();
        p.statuses = s.statuses.clone();
        p.first_sent_us = s.first_sent_us.map(|t| t + by_us);
        p.last_end_us = s.last_end_us.map(|t| t + by_us);
        p.input_tokens = s.input_tokens;
        p.output_tokens = s.output_tokens;
        p.from_usage = s.from_usage;
        p.from_chunks = s.from_chunks;
        p.reconnects = s.reconnects;
        p.probe = s.probe;
        p.empty = s.empty;
        let shift = |span: Span| span.map(|(a, b)| (a + by_us, b + by_us));
        p.pace = PaceAcc::from_parts(s.pace.0, shift(s.pace.1), shift(s.pace.2));
        p.good = s.good;
        for (m, acc) in Metric::ALL.iter().zip(p.metrics.iter_mut()) {
            if let Some(state) = s.metrics.get(m.key()) {
                *acc = Acc::from_state(state).map_err(|e| format!("metric {}: {e}", m.key()))?;
            }
        }
        Ok(p)
    }
}

impl Acc {
    fn state(&self) -> MetricState {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.hist, &mut bytes)
            .expect("a histogram serializes into memory");
        let some = |v: f64| (self.n > 0).then_some(v);
        MetricState {
            hdr: hex(&bytes),
            n: self.n,
            sum: self.sum,
            sum_sq: self.sum_sq,
            min: some(self.min),
            max: some(self.max),
        }
    }

    fn from_state(s: &MetricState) -> Result<Self, String> {
        let bytes = unhex(&s.hdr).ok_or("the histogram is not hex")?;
        let hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("not an HDR V2 histogram ({e:?})"))?;
        let mut acc = Acc::new();
        acc.hist
            .add(&hist)
            .map_err(|e| format!("histogram out of range ({e:?})"))?;
        acc.n = s.n;
        acc.sum = s.sum;
        acc.sum_sq = s.sum_sq;
        acc.min = s.min.unwrap_or(f64::INFINITY);
        acc.max = s.max.unwrap_or(f64::NEG_INFINITY);
        Ok(acc)
    }
}

/// The summary of shard states, each moved `by_us` onto the merged clock.
pub fn combine(states: &[(StatsState, u64)]) -> Result<Summary, String> {
    let slo = states.first().and_then(|(s, _)| s.slo);
    let mut b = StatsBuilder::new().with_slo(slo);
    for (state, by_us) in states {
        if state.schema != SCHEMA {
            return Err(format!("schema {:?}, not {SCHEMA}", state.schema));
        }
        if b.phases.len() < state.phases.len() {
            b.phases.resize_with(state.phases.len(), || None);
        }
        for (slot, phase) in b.phases.iter_mut().zip(&state.phases) {
            let Some(phase) = phase else { continue };
            let acc = PhaseAcc::from_state(phase, slo, *by_us)?;
            match slot {
                Some(have) => have.merge(&acc),
                None => *slot = Some(acc),
            }
        }
        b.warmup += state.warmup;
        for n in &state.max_tokens_sent {
            if !b.max_tokens_sent.contains(n) && b.max_tokens_sent.len() < 2 {
                b.max_tokens_sent.push(*n);
            }
        }
    }
    Ok(b.finish())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.len().is_multiple_of(2).then_some(())?;
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::tests::rec;

    #[test]
    fn combined_states_give_the_percentiles_of_all_the_records() {
        let records: Vec<_> = (0..300)
            .map(|i| {
                rec(
                    i,
                    0,
                    i * 7_000,
                    20_000 + (i * 7919) % 50_000,
                    900 + i % 13,
                    5 + i % 9,
                )
            })
            .collect();
        let whole = crate::stats::summarize(&records);
        let mut states = Vec::new();
        for part in records.chunks(70) {
            let mut b = StatsBuilder::new();
            part.iter().for_each(|r| b.add(r));
            let json = serde_json::to_string(&b.state()).unwrap();
            states.push((serde_json::from_str::<StatsState>(&json).unwrap(), 0));
        }
        let merged = combine(&states).unwrap();
        for (a, b) in whole.rows().zip(merged.rows()) {
            assert_eq!(
                (a.requests, a.ok, a.window_us),
                (b.requests, b.ok, b.window_us)
            );
            assert_eq!(a.pace, b.pace);
            for (x, y) in a.metrics.iter().zip(&b.metrics) {
                assert_eq!(x.count, y.count, "{}", x.key);
                let pick = |d: &crate::stats::Distribution| {
                    [d.p50, d.p90, d.p95, d.p99, d.p999, d.min, d.max]
                };
                assert_eq!(pick(x), pick(y), "{}", x.key);
                assert_eq!(x.intervals, y.intervals, "{}", x.key);
                let close = |p: Option<f64>, q: Option<f64>| match (p, q) {
                    (Some(p), Some(q)) => (p - q).abs() <= 1e-9 * p.abs().max(1.0),
                    (p, q) => p == q,
                };
                assert!(close(x.mean, y.mean), "{}", x.key);
            }
        }
    }
}
