//! Statistics: a pure pass over request records. Fed one record at a time (memory does not grow
//! with the request count), it keeps an HDR histogram per metric per phase plus exact running
//! sums, and yields a `Summary` of every measured phase and of all measured phases together.
//! Warmup records are left out. Definitions are the ones in DESIGN.md and the README.
//! `warnings` turns a summary into what a reader must know before trusting it.

mod acc;
pub mod analysis;
pub mod bootstrap;
mod cache;
mod counts;
pub mod errors;
pub mod interval;
mod labels;
mod metric;
mod pace;
pub mod ramp;
mod round;
pub mod sample;
mod shape;
pub mod state;
pub mod timeline;
pub mod trials;
mod turns;
mod warnings;
use acc::Acc;
pub use labels::MAX_LABELS;
pub use metric::Metric;
pub use pace::Pace;
pub use shape::{Bin, Shape};
pub use turns::MAX_TURN_ROWS;
pub use warnings::{START_LATE_MS, TokenCounter, Warning, behind_schedule};
pub use {crate::record::Requested, counts::TokenDiscrepancy};

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::Slo;
use crate::record::{Outcome, RequestRecord, TokenSource};
use crate::units::{span_s, us_f_to_ms, us_to_ms};

/// The statistics reported for every metric, in CSV column order (suffixes).
pub const STAT_KEYS: [&str; 9] = [
    "mean", "p50", "p90", "p95", "p99", "p999", "min", "max", "stddev",
];

/// Distribution of one metric in one phase. All values in the metric's display unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    pub key: &'static str,
    pub label: &'static str,
    pub count: u64,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub stddev: Option<f64>,
    /// The 95% bootstrap intervals of p50, p95, p99 (`interval::QUANTILES`); `None` without
    /// samples and for ITL. Also in `summary/<run-id>.intervals.csv`, not the summary CSV.
    pub intervals: Option<interval::Intervals>,
    /// For charts only.
    #[serde(skip)]
    pub shape: Shape,
}

impl Distribution {
    /// The statistics in `STAT_KEYS` order.
    pub fn values(&self) -> [Option<f64>; 9] {
        [
            self.mean,
            self.p50,
            self.p90,
            self.p95,
            self.p99,
            self.p999,
            self.min,
            self.max,
            self.stddev,
        ]
    }
}

/// Everything measured in one phase (or in all measured phases: name `all`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseStats {
    pub name: String,
    /// Requests that ended in any way.
    pub requests: u64,
    pub ok: u64,
    /// Requests that neither succeeded nor were cancelled by the client on purpose.
    pub failed: u64,
    /// Requests the client abandoned on purpose (a phase's `cancel`): not failures.
    pub cancelled_by_client: u64,
    /// Count per outcome class (`ok`, `http_status`, `timeout`, ...), zero classes included.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Count per HTTP status among `http_status` failures.
    pub http_statuses: BTreeMap<u16, u64>,
    /// ok / (requests − cancelled_by_client), in percent.
    pub success_rate: f64,
    /// Measured window: first send to last completion, seconds.
    pub duration_s: f64,
    /// The window's start and end on the run clock (µs), when anything was sent.
    pub window_us: Option<(u64, u64)>,
    /// Successful requests per second of the window.
    pub req_per_s: f64,
    /// Output tokens of successful requests per second of the window.
    pub output_tok_per_s: f64,
    /// Input plus output tokens of successful requests per second of the window; `None` when
    /// a successful request's input tokens are unknown (nobody counted them).
    pub total_tok_per_s: Option<f64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Successful requests whose output count came from usage / from counted chunks.
    pub tokens_from_usage: u64,
    pub tokens_from_chunks: u64,
    /// Successful requests whose output count came from the configured tokenizer.
    pub tokens_from_tokenizer: u64,
    /// Successful requests without an input token count (the server sent no prompt_tokens).
    pub input_tokens_unknown: u64,
    /// Usage against the configured tokenizer, where both counted (`None`: nowhere).
    pub token_discrepancy: Option<TokenDiscrepancy>,
    /// Requests resent because the server closed their kept-alive connection before answering.
    pub reconnects: u64,
    /// Successful requests with no output token: no TTFT, TPOT or (streamed) E2EL, so the
    /// latency statistics leave them out.
    pub empty_answers: u64,
    /// Offered against completion rate (`None` with fewer than two requests).
    pub pace: Option<Pace>,
    pub metrics: Vec<Distribution>,
    /// With an SLO: successful requests within every limit (`None` without an SLO).
    pub good: Option<u64>,
    /// Good requests per second of the window (goodput).
    pub goodput_req_per_s: Option<f64>,
    /// Good requests as a percentage of all requests.
    pub good_rate: Option<f64>,
    /// Prompt tokens the server said it served from its prefix cache
    /// (`usage.prompt_tokens_details.cached_tokens`), over the successful requests that said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// The prefix-cache hit share: `cached_tokens` over the prompt tokens of the same
    /// requests (0..=1); `None` when no request's usage said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit_share: Option<f64>,
}

impl PhaseStats {
    pub fn metric(&self, m: Metric) -> &Distribution {
        &self.metrics[Metric::ALL
            .iter()
            .position(|x| *x == m)
            .expect("all metrics kept")]
    }
}

/// Statistics of a whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Measured (non-warmup) phases, in run order.
    pub phases: Vec<PhaseStats>,
    /// All measured phases together.
    pub all: PhaseStats,
    /// Warmup requests seen (not in the statistics).
    pub warmup_requests: u64,
    /// Measured requests by label, in label order (each row's name is the label; empty when no
    /// request had one). Not in `rows()`.
    pub labels: Vec<PhaseStats>,
    /// Measured requests sent different `max_tokens` (per-request shapes).
    pub varied_max_tokens: bool,
    /// The most frequent kinds of failure among measured requests (`errors::ErrorTally`).
    pub errors: Vec<errors::ErrorCount>,
    /// Measured session turns by turn index (each row's name is the index, from 0; empty
    /// without sessions). Not in `rows()`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<PhaseStats>,
    /// Measured requests whose usage reported cached tokens: `cached` (some) then `uncached`
    /// (none), each when any request fell in it (`cache::CacheSplit`). Not in `rows()`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<PhaseStats>,
    /// The run's first request (by intended start, warmup included) found prompt tokens in
    /// the server's cache: nothing this run sent can have put them there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<WarmStart>,
}

/// What the server's cache held before a run's first request, as its usage said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WarmStart {
    pub cached_tokens: u64,
    pub prompt_tokens: Option<u64>,
}

impl Summary {
    /// `phases` then `all`: the rows of the summary CSV.
    pub fn rows(&self) -> impl Iterator<Item = &PhaseStats> {
        self.phases.iter().chain(std::iter::once(&self.all))
    }
}

/// One phase's running state.
struct PhaseAcc {
    name: String,
    outcomes: BTreeMap<Outcome, u64>,
    statuses: BTreeMap<u16, u64>,
    first_sent_us: Option<u64>,
    last_end_us: Option<u64>,
    input_tokens: u64,
    output_tokens: u64,
    from_usage: u64,
    from_chunks: u64,
    counts: counts::CountsAcc,
    reconnects: u64,
    /// A sweep's saturation probe (left out of `all` beside other phases).
    probe: bool,
    empty: u64,
    pace: pace::PaceAcc,
    metrics: Vec<Acc>,
    slo: Option<Slo>,
    good: u64,
    /// (cached, prompt) tokens of successful requests whose usage gave both.
    cache: Option<(u64, u64)>,
}

/// Whether a successful request meets every limit of `slo`. TTFT counts from the actual send
/// (a request without a TTFT, i.e. not streamed, fails a TTFT limit); a request with one output
/// token has no TPOT and meets a TPOT limit.
pub fn meets(slo: &Slo, r: &RequestRecord) -> bool {
    let within = |limit: Option<f64>, ms: Option<f64>| match (limit, ms) {
        (None, _) => true,
        (Some(l), Some(v)) => v <= l,
        (Some(_), None) => false,
    };
    r.outcome == Outcome::Ok
        && within(slo.ttft_ms, r.ttft_us().map(us_to_ms))
        && (r.tpot_us().is_none() || within(slo.tpot_ms, r.tpot_us().map(us_f_to_ms)))
        && within(slo.e2el_ms, r.e2el_us().map(us_to_ms))
}

impl PhaseAcc {
    fn new(name: String, slo: Option<Slo>) -> Self {
        Self {
            name,
            slo,
            good: 0,
            cache: None,
            outcomes: BTreeMap::new(),
            statuses: BTreeMap::new(),
            first_sent_us: None,
            last_end_us: None,
            input_tokens: 0,
            output_tokens: 0,
            from_usage: 0,
            from_chunks: 0,
            counts: Default::default(),
            reconnects: 0,
            probe: false,
            empty: 0,
            pace: Default::default(),
            metrics: Metric::ALL.iter().map(|_| Acc::new()).collect(),
        }
    }

    fn add(&mut self, r: &RequestRecord) {
        *self.outcomes.entry(r.outcome).or_default() += 1;
        self.pace.add(r);
        self.probe |= r.probe;
        self.reconnects += u64::from(r.reconnects.min(1));
        if let (Outcome::HttpStatus, Some(s)) = (r.outcome, r.status) {
            *self.statuses.entry(s).or_default() += 1;
        }
        if let Some(sent) = r.sent_us {
            self.first_sent_us = Some(self.first_sent_us.map_or(sent, |f| f.min(sent)));
            self.last_end_us = Some(self.last_end_us.map_or(r.end_us, |l| l.max(r.end_us)));
        }
        let mut put = |m: Metric, v: Option<f64>| {
            if let Some(v) = v {
                let i = m as usize;
                self.metrics[i].add(v * m.scale());
            }
        };
        let ms = |us: Option<u64>| us.map(us_to_ms);
        put(Metric::QueueMs, ms(r.queue_us()));
        put(Metric::LatenessMs, ms(Some(r.lateness_us())));
        if r.outcome != Outcome::Ok {
            return;
        }
        self.empty += u64::from(r.output_tokens == 0);
        if self.slo.as_ref().is_some_and(|slo| meets(slo, r)) {
            self.good += 1;
        }
        self.input_tokens = self
            .input_tokens
            .saturating_add(r.input_tokens.unwrap_or(0));
        self.output_tokens = self.output_tokens.saturating_add(r.output_tokens);
        if let (Some(cached), Some(prompt)) = (r.cached_tokens, r.input_tokens) {
            let (c, p) = self.cache.get_or_insert((0, 0));
            (*c, *p) = (c.saturating_add(cached), p.saturating_add(prompt));
        }
        match r.tokens_source {
            TokenSource::Usage => self.from_usage += 1,
            TokenSource::Chunks => self.from_chunks += 1,
            TokenSource::Tokenizer => {}
        }
        self.counts.add(r);
        put(Metric::TtftMs, ms(r.ttft_us()));
        put(Metric::TtftAnswerMs, ms(r.ttft_answer_us()));
        put(Metric::TtftIntendedMs, ms(r.ttft_intended_us()));
        put(Metric::TpotMs, r.tpot_us().map(us_f_to_ms));
        put(Metric::E2elMs, ms(r.e2el_us()));
        put(Metric::E2elIntendedMs, ms(r.e2el_intended_us()));
        put(Metric::StreamCloseMs, ms(r.stream_close_us()));
        put(Metric::OutputTokS, r.output_tok_per_s());
        put(Metric::InputTokens, r.input_tokens.map(|t| t as f64));
        put(Metric::OutputTokens, Some(r.output_tokens as f64));
        let itl = &mut self.metrics[Metric::ItlMs as usize];
        for gap in r.itl_us() {
            itl.add_us(gap);
        }
    }

    fn merge(&mut self, other: &PhaseAcc) {
        for (k, v) in &other.outcomes {
            *self.outcomes.entry(*k).or_default() += v;
        }
        for (k, v) in &other.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        let min = |a: Option<u64>, b: Option<u64>| a.into_iter().chain(b).min();
        let max = |a: Option<u64>, b: Option<u64>| a.into_iter().chain(b).max();
        self.first_sent_us = min(self.first_sent_us, other.first_sent_us);
        self.last_end_us = max(self.last_end_us, other.last_end_us);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.from_usage += other.from_usage;
        self.from_chunks += other.from_chunks;
        self.counts.merge(&other.counts);
        self.reconnects += other.reconnects;
        self.empty += other.empty;
        self.pace.merge(&other.pace);
        self.good += other.good;
        if let Some((oc, op)) = other.cache {
            let (c, p) = self.cache.get_or_insert((0, 0));
            (*c, *p) = (c.saturating_add(oc), p.saturating_add(op));
        }
        for (a, b) in self.metrics.iter_mut().zip(&other.metrics) {
            a.hist.add(&b.hist).expect("auto-resizing histograms merge");
            a.n += b.n;
            a.sum += b.sum;
            a.sum_sq += b.sum_sq;
            a.min = a.min.min(b.min);
            a.max = a.max.max(b.max);
        }
    }

    fn finish(&self) -> PhaseStats {
        let requests: u64 = self.outcomes.values().sum();
        let ok = self.outcomes.get(&Outcome::Ok).copied().unwrap_or(0);
        let abandoned = self
            .outcomes
            .get(&Outcome::CancelledByClient)
            .copied()
            .unwrap_or(0);
        let duration_s = match (self.first_sent_us, self.last_end_us) {
            (Some(a), Some(b)) if b > a => span_s(a, b),
            _ => 0.0,
        };
        let per_s = |n: u64| {
            if duration_s > 0.0 {
                n as f64 / duration_s
            } else {
                0.0
            }
        };
        PhaseStats {
            name: self.name.clone(),
            requests,
            ok,
            failed: requests - ok - abandoned,
            cancelled_by_client: abandoned,
            outcomes: Outcome::ALL
                .iter()
                .map(|o| (o.name(), self.outcomes.get(o).copied().unwrap_or(0)))
                .collect(),
            http_statuses: self.statuses.clone(),
            success_rate: if requests > abandoned {
                100.0 * ok as f64 / (requests - abandoned) as f64
            } else {
                0.0
            },
            duration_s,
            window_us: self.first_sent_us.zip(self.last_end_us),
            req_per_s: per_s(ok),
            output_tok_per_s: per_s(self.output_tokens),
            total_tok_per_s: (self.counts.input_unknown == 0)
                .then(|| per_s(self.input_tokens + self.output_tokens)),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            tokens_from_usage: self.from_usage,
            tokens_from_chunks: self.from_chunks,
            tokens_from_tokenizer: self.counts.from_tokenizer,
            input_tokens_unknown: self.counts.input_unknown,
            token_discrepancy: self.counts.discrepancy(),
            reconnects: self.reconnects,
            empty_answers: self.empty,
            pace: self.pace.finish(),
            metrics: Metric::ALL
                .iter()
                .zip(&self.metrics)
                .map(|(m, acc)| acc.distribution(*m))
                .collect(),
            good: self.slo.map(|_| self.good),
            goodput_req_per_s: self.slo.map(|_| per_s(self.good)),
            good_rate: self.slo.map(|_| {
                if requests > 0 {
                    100.0 * self.good as f64 / requests as f64
                } else {
                    0.0
                }
            }),
            cached_tokens: self.cache.map(|(c, _)| c),
            cache_hit_share: self
                .cache
                .map(|(c, p)| if p > 0 { c as f64 / p as f64 } else { 0.0 }),
        }
    }
}

/// Accumulates records into a `Summary`.
pub struct StatsBuilder {
    /// Indexed by phase index; `None` for phases not seen or warmup.
    phases: Vec<Option<PhaseAcc>>,
    warmup: u64,
    slo: Option<Slo>,
    labels: labels::Labels,
    turns: turns::Turns,
    cache: cache::CacheSplit,
    /// Up to two distinct `max_tokens` the measured records sent.
    max_tokens_sent: Vec<u32>,
    errors: errors::ErrorTally,
    /// The earliest intended request so far (warmup included): when, and its cache usage.
    first: Option<(u64, Option<u64>, Option<u64>)>,
}

impl Default for StatsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StatsBuilder {
    pub fn new() -> Self {
        Self {
            phases: Vec::new(),
            warmup: 0,
            slo: None,
            labels: labels::Labels::default(),
            turns: turns::Turns::default(),
            cache: cache::CacheSplit::default(),
            max_tokens_sent: Vec::new(),
            errors: errors::ErrorTally::default(),
            first: None,
        }
    }

    /// Counts good requests (goodput) against `slo`.
    pub fn with_slo(mut self, slo: Option<Slo>) -> Self {
        self.slo = slo;
        self
    }

    pub fn add(&mut self, r: &RequestRecord) {
        if self.first.is_none_or(|(at, ..)| r.intended_us < at) {
            self.first = Some((r.intended_us, r.cached_tokens, r.input_tokens));
        }
        if r.warmup {
            self.warmup += 1;
            return;
        }
        if self.phases.len() <= r.phase_index {
            self.phases.resize_with(r.phase_index + 1, || None);
        }
        self.phases[r.phase_index]
            .get_or_insert_with(|| PhaseAcc::new(r.phase.clone(), self.slo))
            .add(r);
        self.labels.add(r, self.slo);
        self.errors.add(r);
        self.turns.add(r, self.slo);
        self.cache.add(r, self.slo);
        if let Some(n) = r.max_tokens.filter(|n| !self.max_tokens_sent.contains(n))
            && self.max_tokens_sent.len() < 2
        {
            self.max_tokens_sent.push(n);
        }
    }

    pub fn finish(&self) -> Summary {
        let mut all = PhaseAcc::new("all".into(), self.slo);
        let mut phases = Vec::new();
        // A sweep's saturation probe (closed loop at its highest concurrency) is not one of
        // the load levels: `all` holds the other phases, or the probe when it ran alone.
        let probe_alone = self.phases.iter().flatten().all(|p| p.probe);
        for p in self.phases.iter().flatten() {
            if !p.probe || probe_alone {
                all.merge(p);
            }
            phases.push(p.finish());
        }
        Summary {
            phases,
            all: all.finish(),
            warmup_requests: self.warmup,
            labels: self.labels.finish(),
            turns: self.turns.finish(),
            cache: self.cache.finish(),
            varied_max_tokens: self.max_tokens_sent.len() > 1,
            errors: self.errors.top(),
            warm_start: match self.first {
                Some((_, Some(cached), prompt)) if cached > 0 => Some(WarmStart {
                    cached_tokens: cached,
                    prompt_tokens: prompt,
                }),
                _ => None,
            },
        }
    }
}

/// The statistics of a phase named `name` that saw no request: every count 0, every metric's
/// values `None`, the goodput fields present exactly when there is an `slo`.
pub fn empty_phase(name: &str, slo: Option<Slo>) -> PhaseStats {
    PhaseAcc::new(name.into(), slo).finish()
}

/// Statistics of a set of records in one pass.
pub fn summarize<'a>(records: impl IntoIterator<Item = &'a RequestRecord>) -> Summary {
    let mut b = StatsBuilder::new();
    for r in records {
        b.add(r);
    }
    b.finish()
}

#[cfg(test)]
pub(crate) mod tests;
