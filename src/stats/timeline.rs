//! Timelines: what happened in each second of a run, for the charts over time. A pure pass over
//! request records, fed one at a time like `StatsBuilder`; memory grows with the run's length in
//! seconds (one bucket each), never with the request count. Warmup requests are included (their
//! phases are marked), because a timeline shows the whole run.
//!
//! Definitions, per one-second bucket `[t, t + 1)` of the run clock:
//! - `sent`: requests sent in the bucket; `ttft_mean_ms` / `ttft_max_ms`: TTFT of the successful,
//!   streamed requests among them.
//! - `completed`: successful requests that ended in it; `errors`: failed ones that ended in it.
//! - `output_tok_per_s`: output tokens of successful requests that arrived in it; a request's
//!   tokens are spread evenly over its content chunks, by each chunk's arrival (a non-streamed
//!   response counts at its completion).
//! - `in_flight`: mean number of requests in flight (sent, not yet ended) over the bucket.
//! - `offered`: requests whose intended start fell in the bucket (the schedule's rate).
//! - `queued`: mean number of requests waiting for a concurrency slot (released by the
//!   scheduler, not yet admitted) over the bucket.
//! - `ttft_p50_ms` / `ttft_p99_ms`: nearest-rank percentiles of the same TTFTs as the mean (the
//!   smallest TTFT with at least 50 % / 99 % of them at or below it), so within [min, max]. These
//!   keep each TTFT until `finish` (8 bytes a streamed request).
//!
//! The first `MAX_SPANS` requests (all of them in a small run) are also kept as `RequestSpan`s
//! for the report's per-request view; `requests` counts them all.

use serde::Serialize;

use crate::record::{Outcome, RequestRecord};

const US: u64 = 1_000_000;
/// Buckets kept at most (about 12 days); later stamps land in the last bucket.
const MAX_SECONDS: usize = 1 << 20;
/// Requests kept for the per-request view; a run with more shows none of them.
pub const MAX_SPANS: usize = 200;

/// One second of a run.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Second {
    /// Start of the bucket, seconds since the run started.
    pub t: u64,
    pub sent: u64,
    pub completed: u64,
    pub errors: u64,
    pub ttft_mean_ms: Option<f64>,
    pub ttft_max_ms: Option<f64>,
    pub output_tok_per_s: f64,
    pub in_flight: f64,
    pub offered: u64,
    pub queued: f64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
}

/// One request's stamps, in seconds since the run started, for the per-request view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestSpan {
    pub phase_index: usize,
    pub warmup: bool,
    pub intended_s: f64,
    pub sent_s: Option<f64>,
    pub first_token_s: Option<f64>,
    pub end_s: f64,
    pub ok: bool,
}

/// When a phase ran: its first intended start to its last request's end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSpan {
    pub name: String,
    pub index: usize,
    pub warmup: bool,
    pub start_s: f64,
    pub end_s: f64,
}

/// A run, second by second.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Timeline {
    pub seconds: Vec<Second>,
    pub phases: Vec<PhaseSpan>,
    /// The first `MAX_SPANS` requests, in the order they were fed (not exported).
    #[serde(skip)]
    pub spans: Vec<RequestSpan>,
    /// Every request fed, warmup included (not exported).
    #[serde(skip)]
    pub requests: u64,
}

impl Timeline {
    /// When the run's last request ended (its last phase's end), seconds since it started.
    pub fn end_s(&self) -> f64 {
        self.phases
            .iter()
            .map(|p| p.end_s)
            .fold(self.seconds.len().min(1) as f64, f64::max)
    }
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    sent: u64,
    completed: u64,
    errors: u64,
    ttft_sum_us: u64,
    ttft_n: u64,
    ttft_max_us: u64,
    ttfts_us: Vec<u64>,
    offered: u64,
    output_tokens: f64,
    /// µs of requests that were in flight for part of this bucket.
    partial_busy_us: u64,
    /// Change in the number of requests in flight for the whole bucket (a difference array).
    whole_delta: i64,
    /// The same two for requests waiting for a concurrency slot.
    queued_partial_us: u64,
    queued_delta: i64,
}

/// Which time-weighted count an interval adds to.
#[derive(Clone, Copy)]
enum Occupancy {
    InFlight,
    Queued,
}

/// Accumulates records into a `Timeline`.
#[derive(Debug, Default)]
pub struct TimelineBuilder {
    buckets: Vec<Bucket>,
    phases: Vec<Option<(PhaseSpan, u64, u64)>>,
    spans: Vec<RequestSpan>,
    requests: u64,
}

impl TimelineBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn bucket(&mut self, us: u64) -> &mut Bucket {
        let i = ((us / US) as usize).min(MAX_SECONDS - 1);
        if self.buckets.len() <= i {
            self.buckets.resize_with(i + 1, Bucket::default);
        }
        &mut self.buckets[i]
    }

    pub fn add(&mut self, r: &RequestRecord) {
        self.add_phase(r);
        self.add_span(r);
        self.bucket(r.intended_us).offered += 1;
        let queued_until = r.admitted_us.unwrap_or(r.end_us).max(r.dispatched_us);
        self.add_occupancy(Occupancy::Queued, r.dispatched_us, queued_until);
        let ok = r.outcome == Outcome::Ok;
        if ok {
            self.bucket(r.end_us).completed += 1;
        } else {
            self.bucket(r.end_us).errors += 1;
        }
        let Some(sent) = r.sent_us else { return };
        let ttft = r.ttft_us();
        let b = self.bucket(sent);
        b.sent += 1;
        if let Some(t) = ttft {
            b.ttft_sum_us += t;
            b.ttft_n += 1;
            b.ttft_max_us = b.ttft_max_us.max(t);
            b.ttfts_us.push(t);
        }
        self.add_occupancy(Occupancy::InFlight, sent, r.end_us.max(sent));
        if ok {
            self.add_tokens(r);
        }
    }

    fn add_phase(&mut self, r: &RequestRecord) {
        if self.phases.len() <= r.phase_index {
            self.phases.resize_with(r.phase_index + 1, || None);
        }
        let (span, first, last) = self.phases[r.phase_index].get_or_insert_with(|| {
            (
                PhaseSpan {
                    name: r.phase.clone(),
                    index: r.phase_index,
                    warmup: r.warmup,
                    start_s: 0.0,
                    end_s: 0.0,
                },
                u64::MAX,
                0,
            )
        });
        *first = (*first).min(r.intended_us);
        *last = (*last).max(r.end_us);
        span.start_s = *first as f64 / US as f64;
        span.end_s = *last as f64 / US as f64;
    }

    fn add_span(&mut self, r: &RequestRecord) {
        self.requests += 1;
        if self.spans.len() < MAX_SPANS {
            let s = |us: u64| us as f64 / US as f64;
            self.spans.push(RequestSpan {
                phase_index: r.phase_index,
                warmup: r.warmup,
                intended_s: s(r.intended_us),
                sent_s: r.sent_us.map(s),
                first_token_s: r.first_token_us.map(s),
                end_s: s(r.end_us),
                ok: r.outcome == Outcome::Ok,
            });
        }
    }

    /// Time-weighted counts (in flight, queued): partial seconds at both ends, whole seconds
    /// between.
    fn add_occupancy(&mut self, what: Occupancy, from: u64, to: u64) {
        fn add(b: &mut Bucket, what: Occupancy, partial_us: u64, delta: i64) {
            let (p, d) = match what {
                Occupancy::InFlight => (&mut b.partial_busy_us, &mut b.whole_delta),
                Occupancy::Queued => (&mut b.queued_partial_us, &mut b.queued_delta),
            };
            *p += partial_us;
            *d += delta;
        }
        if to <= from {
            return;
        }
        let (a, z) = (from / US, to / US);
        if a == z {
            add(self.bucket(from), what, to - from, 0);
            return;
        }
        add(self.bucket(from), what, (a + 1) * US - from, 0);
        add(self.bucket(to), what, to - z * US, 0);
        if z > a + 1 {
            add(self.bucket((a + 1) * US), what, 0, 1);
            add(self.bucket(z * US), what, 0, -1);
        }
    }

    fn add_tokens(&mut self, r: &RequestRecord) {
        let tokens = r.output_tokens as f64;
        match (r.first_token_us, r.chunk_offsets_us.len()) {
            (Some(first), n) if n > 0 => {
                let share = tokens / n as f64;
                for off in &r.chunk_offsets_us {
                    self.bucket(first + off).output_tokens += share;
                }
            }
            _ => {
                let at = r.last_token_us.unwrap_or(r.end_us);
                self.bucket(at).output_tokens += tokens;
            }
        }
    }

    pub fn finish(&self) -> Timeline {
        let (mut whole, mut queued): (i64, i64) = (0, 0);
        let seconds = self
            .buckets
            .iter()
            .enumerate()
            .map(|(t, b)| {
                whole += b.whole_delta;
                queued += b.queued_delta;
                let ms = crate::units::us_to_ms;
                let mut ttfts = b.ttfts_us.clone();
                ttfts.sort_unstable();
                Second {
                    t: t as u64,
                    sent: b.sent,
                    completed: b.completed,
                    errors: b.errors,
                    ttft_mean_ms: (b.ttft_n > 0).then(|| ms(b.ttft_sum_us) / b.ttft_n as f64),
                    ttft_max_ms: (b.ttft_n > 0).then(|| ms(b.ttft_max_us)),
                    output_tok_per_s: b.output_tokens,
                    in_flight: whole.max(0) as f64 + b.partial_busy_us as f64 / US as f64,
                    offered: b.offered,
                    queued: queued.max(0) as f64 + b.queued_partial_us as f64 / US as f64,
                    ttft_p50_ms: nearest_rank(&ttfts, 0.50).map(ms),
                    ttft_p99_ms: nearest_rank(&ttfts, 0.99).map(ms),
                }
            })
            .collect();
        Timeline {
            seconds,
            phases: self
                .phases
                .iter()
                .flatten()
                .map(|(s, _, _)| s.clone())
                .collect(),
            spans: self.spans.clone(),
            requests: self.requests,
        }
    }
}

/// The smallest of `sorted` with at least share `q` of the values at or below it.
fn nearest_rank(sorted: &[u64], q: f64) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sent at `sent` µs, first token `ttft` later, `n` chunks `itl` apart, ends at the last.
    fn rec(sent: u64, ttft: u64, itl: u64, n: u64) -> RequestRecord {
        let mut r = RequestRecord::synthetic(0, "p", 0, sent, ttft, itl, n);
        r.input_tokens = Some(1);
        r
    }

    #[test]
    fn buckets_follow_the_definitions() {
        let mut b = TimelineBuilder::new();
        // Sent at 0.5 s, TTFT 100 ms, 4 chunks 1 s apart (0.6, 1.6, 2.6, 3.6 s), ends at 3.6 s:
        // in flight for half of second 0, all of 1 and 2, and 0.6 of second 3.
        b.add(&rec(500_000, 100_000, 1_000_000, 4));
        // A failure sent at 1.2 s, ending at 1.4 s.
        let mut bad = rec(1_200_000, 100_000, 100_000, 2);
        bad.outcome = Outcome::HttpStatus;
        b.add(&bad);
        let t = b.finish();
        assert_eq!(t.seconds.len(), 4);
        let s = &t.seconds;
        assert_eq!(
            s.iter().map(|x| x.sent).collect::<Vec<_>>(),
            vec![1, 1, 0, 0]
        );
        assert_eq!(s[0].ttft_mean_ms, Some(100.0));
        assert_eq!(s[1].ttft_mean_ms, None, "failures have no TTFT");
        assert_eq!(s[1].errors, 1);
        assert_eq!(s[3].completed, 1);
        let tokens: Vec<f64> = s.iter().map(|x| x.output_tok_per_s).collect();
        assert_eq!(tokens, vec![1.0, 1.0, 1.0, 1.0]);
        let inflight: Vec<f64> = s.iter().map(|x| x.in_flight).collect();
        assert!((inflight[0] - 0.5).abs() < 1e-9);
        assert!((inflight[1] - 1.2).abs() < 1e-9, "{inflight:?}");
        assert!((inflight[2] - 1.0).abs() < 1e-9);
        assert!((inflight[3] - 0.6).abs() < 1e-9);
        assert_eq!(t.phases.len(), 1);
        assert_eq!((t.phases[0].start_s, t.phases[0].end_s), (0.5, 3.6));
    }

    #[test]
    fn constant_concurrency_reads_as_that_concurrency() {
        // 4 users back to back, each request 250 ms, for 10 s: 4 in flight every second.
        let mut b = TimelineBuilder::new();
        for user in 0..4 {
            for k in 0..40 {
                let _ = user;
                b.add(&rec(k * 250_000, 50_000, 50_000, 5));
            }
        }
        let t = b.finish();
        for s in &t.seconds[..10] {
            assert!((s.in_flight - 4.0).abs() < 1e-9, "{s:?}");
            // Ends at 0.25, 0.5, 0.75 s fall in second 0; the one at 1.0 s in second 1.
            assert_eq!(s.completed, if s.t == 0 { 12 } else { 16 });
        }
    }

    #[test]
    fn offered_queued_percentiles_and_spans_follow_the_definitions() {
        let mut b = TimelineBuilder::new();
        // Ten requests meant to start in second 0, TTFT 10, 20, ..., 100 ms; each waits for a
        // slot from 0.2 s to 0.7 s (half a second queued).
        for k in 0..10u64 {
            let mut r = rec(800_000, (k + 1) * 10_000, 1_000, 2);
            r.intended_us = 100_000;
            r.dispatched_us = 200_000;
            r.admitted_us = Some(700_000);
            b.add(&r);
        }
        let t = b.finish();
        let s = &t.seconds[0];
        assert_eq!(s.offered, 10);
        assert!((s.queued - 5.0).abs() < 1e-9, "{}", s.queued);
        assert_eq!(s.ttft_p50_ms, Some(50.0));
        assert_eq!(s.ttft_p99_ms, Some(100.0));
        assert_eq!((t.requests, t.spans.len()), (10, 10));
        assert_eq!(t.spans[0].sent_s, Some(0.8));
        assert_eq!(t.spans[0].intended_s, 0.1);
    }

    #[test]
    fn nearest_rank_percentiles_stay_within_the_values() {
        assert_eq!(nearest_rank(&[], 0.5), None);
        assert_eq!(nearest_rank(&[7], 0.99), Some(7));
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 0.99), Some(4));
    }
}
