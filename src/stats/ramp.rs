//! Ramp windows: a phase whose load changes over time (a rate or concurrency ramp) cut into
//! consecutive windows, each a load level like a capacity sweep's step, so the report can draw
//! latency against achieved throughput across the ramp. Owns the windowing rule:
//!
//! - The phase's measured requests, in intended-start order, are cut into `n` windows of equal
//!   count, `n = min(MAX_WINDOWS, requests / MIN_WINDOW_REQUESTS)`; a phase with fewer than
//!   two windows' worth of requests has none (a curve needs two points).
//! - Window `i` spans `[b_i, b_(i+1))` of the run clock: `b_i` is the intended start of its first
//!   request, the last window ends at the phase's last intended start (and holds that request).
//! - `offered`: intended starts per second over the window (the gaps between consecutive
//!   intended starts that begin in it, over its length).
//! - `achieved` / `goodput`: the phase's successful (good) requests that ended within the
//!   window, per second of it: what the server delivered while that load was offered.
//! - `good_rate`: good requests as a percentage of the window's requests; the latency
//!   percentiles (TTFT, TPOT, E2EL p50 and p99, as `Distribution` defines them) are over the
//!   window's successful requests.
//!
//! Each measured request of a ramp phase is kept as a few numbers until `finish` (about 64
//! bytes a request); other phases cost nothing.

use serde::Serialize;

use super::{Acc, Metric, meets};
use crate::plan::Slo;
use crate::record::{Outcome, RequestRecord};
use crate::units::{us_f_to_ms, us_to_ms, us_to_s};

/// A ramp is cut into at most this many windows.
pub const MAX_WINDOWS: usize = 10;
/// Each window holds at least this many requests.
pub const MIN_WINDOW_REQUESTS: usize = 20;

/// One window of a ramp phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RampWindow {
    /// 1-based, in time order.
    pub index: usize,
    /// Seconds since the run started.
    pub start_s: f64,
    pub end_s: f64,
    pub requests: u64,
    /// Intended starts per second (req/s).
    pub offered: f64,
    /// Successful requests that ended in the window, per second.
    pub achieved: f64,
    /// Good requests that ended in the window, per second (with an SLO).
    pub goodput: Option<f64>,
    /// Good requests as a percentage of the window's requests (with an SLO).
    pub good_rate: Option<f64>,
    /// (p50, p99) of the window's successful requests, ms.
    pub ttft_ms: (Option<f64>, Option<f64>),
    pub tpot_ms: (Option<f64>, Option<f64>),
    pub e2el_ms: (Option<f64>, Option<f64>),
}

/// A ramp phase's windows (empty when it had too few requests).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RampWindows {
    pub phase: String,
    pub phase_index: usize,
    pub windows: Vec<RampWindow>,
}

/// What a window needs of one request.
#[derive(Debug, Clone, Copy)]
struct Sample {
    intended_us: u64,
    end_us: u64,
    ok: bool,
    good: bool,
    ttft_ms: Option<f64>,
    tpot_ms: Option<f64>,
    e2el_ms: Option<f64>,
}

/// Keeps the measured requests of the ramp phases (by phase index) for `finish`.
#[derive(Debug, Default)]
pub struct RampBuilder {
    /// (phase index, its name, its requests).
    phases: Vec<(usize, String, Vec<Sample>)>,
    slo: Option<Slo>,
}

impl RampBuilder {
    /// Windows the phases at `indices` (and no other).
    pub fn with_phases(mut self, indices: &[usize]) -> Self {
        self.phases = indices
            .iter()
            .map(|&i| (i, String::new(), Vec::new()))
            .collect();
        self
    }

    /// Counts good requests against `slo`.
    pub fn with_slo(mut self, slo: Option<Slo>) -> Self {
        self.slo = slo;
        self
    }

    pub fn add(&mut self, r: &RequestRecord) {
        if r.warmup {
            return;
        }
        let Some((_, name, samples)) = self.phases.iter_mut().find(|p| p.0 == r.phase_index) else {
            return;
        };
        if name.is_empty() {
            name.clone_from(&r.phase);
        }
        let ok = r.outcome == Outcome::Ok;
        samples.push(Sample {
            intended_us: r.intended_us,
            end_us: r.end_us,
            ok,
            good: self.slo.as_ref().is_some_and(|s| meets(s, r)),
            ttft_ms: r.ttft_us().filter(|_| ok).map(us_to_ms),
            tpot_ms: r.tpot_us().filter(|_| ok).map(us_f_to_ms),
            e2el_ms: r.e2el_us().filter(|_| ok).map(us_to_ms),
        });
    }

    /// Each ramp phase that saw requests, with its windows.
    pub fn finish(&self) -> Vec<RampWindows> {
        self.phases
            .iter()
            .filter(|(_, _, s)| !s.is_empty())
            .map(|(i, name, samples)| RampWindows {
                phase: name.clone(),
                phase_index: *i,
                windows: windows(samples, self.slo.is_some()),
            })
            .collect()
    }
}

/// How many windows `requests` make.
pub fn window_count(requests: usize) -> usize {
    let n = (requests / MIN_WINDOW_REQUESTS).min(MAX_WINDOWS);
    if n < 2 { 0 } else { n }
}

fn windows(samples: &[Sample], with_slo: bool) -> Vec<RampWindow> {
    let n = window_count(samples.len());
    if n == 0 {
        return Vec::new();
    }
    let mut by_start = samples.to_vec();
    by_start.sort_by_key(|s| s.intended_us);
    let total = by_start.len();
    let last_start = by_start[total - 1].intended_us;
    // Window `w` holds requests `cut(w)..cut(w + 1)`.
    let cut = |w: usize| w * total / n;
    (0..n)
        .map(|w| {
            let members = &by_start[cut(w)..cut(w + 1)];
            let from = members[0].intended_us;
            let to = if w + 1 < n {
                by_start[cut(w + 1)].intended_us
            } else {
                last_start
            };
            window(w, members, samples, (from, to), w + 1 == n, with_slo)
        })
        .collect()
}

/// Window `w` of `members` (in intended-start order) spanning `[from, to)` (closed for the
/// last); completions are counted over all of the phase's `samples`.
fn window(
    w: usize,
    members: &[Sample],
    samples: &[Sample],
    (from, to): (u64, u64),
    last: bool,
    with_slo: bool,
) -> RampWindow {
    let secs = us_to_s(to.saturating_sub(from));
    let per_s = |n: usize| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let within = |t: u64| t >= from && (t < to || (last && t == to));
    let ended =
        |f: fn(&Sample) -> bool| samples.iter().filter(|s| f(s) && within(s.end_us)).count();
    // The last request of the phase starts no gap.
    let gaps = members.len() - usize::from(last);
    let good = members.iter().filter(|s| s.good).count();
    let percentiles = |m: Metric, f: fn(&Sample) -> Option<f64>| {
        let mut acc = Acc::new();
        for v in members.iter().filter_map(f) {
            acc.add(v * m.scale());
        }
        let d = acc.distribution(m);
        (d.p50, d.p99)
    };
    RampWindow {
        index: w + 1,
        start_s: us_to_s(from),
        end_s: us_to_s(to),
        requests: members.len() as u64,
        offered: per_s(gaps),
        achieved: per_s(ended(|s| s.ok)),
        goodput: with_slo.then(|| per_s(ended(|s| s.good))),
        good_rate: with_slo.then(|| 100.0 * good as f64 / members.len() as f64),
        ttft_ms: percentiles(Metric::TtftMs, |s| s.ttft_ms),
        tpot_ms: percentiles(Metric::TpotMs, |s| s.tpot_ms),
        e2el_ms: percentiles(Metric::E2elMs, |s| s.e2el_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::tests::rec;

    /// A ramp of 100 requests: request `i` intended (and sent) at `i * 100 ms` (10 req/s),
    /// with a TTFT of `10 + i` ms and two tokens, ending 1 s (and 50 µs) after it was sent;
    /// then a request of another phase, which the builder ignores.
    fn ramp_records() -> Vec<RequestRecord> {
        let mut v: Vec<RequestRecord> = (0..100)
            .map(|i| {
                let ttft = (10 + i) * 1000;
                rec(i, 1, i * 100_000, ttft, 1_000_000 - ttft, 2)
            })
            .collect();
        v.push(rec(100, 2, 0, 5_000_000, 6_000_000, 5));
        // Fed in completion order, not intended order.
        v.reverse();
        v
    }

    #[test]
    fn a_ramp_is_cut_into_windows_of_equal_count_in_intended_order() {
        assert_eq!(window_count(39), 0);
        assert_eq!(window_count(40), 2);
        assert_eq!(window_count(105), 5);
        assert_eq!(window_count(10_000), MAX_WINDOWS);

        let slo = Slo {
            ttft_ms: Some(50.0),
            ..Slo::default()
        };
        let mut b = RampBuilder::default().with_phases(&[1]).with_slo(Some(slo));
        for r in ramp_records() {
            b.add(&r);
        }
        let ramps = b.finish();
        assert_eq!(ramps.len(), 1);
        let w = &ramps[0].windows;
        assert_eq!(w.len(), 5);
        assert!(w.iter().all(|w| w.requests == 20));
        assert_eq!(
            w.iter().map(|w| w.index).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        // Window 2 holds requests 20..40: it spans 2.0 s to 4.0 s, 20 gaps of 100 ms.
        assert!((w[1].start_s - 2.0).abs() < 1e-9 && (w[1].end_s - 4.0).abs() < 1e-9);
        assert!((w[1].offered - 10.0).abs() < 1e-9, "{}", w[1].offered);
        // The last window: requests 80..100 over 8.0 s to 9.9 s, 19 gaps.
        assert!((w[4].end_s - 9.9).abs() < 1e-9);
        assert!((w[4].offered - 10.0).abs() < 1e-6, "{}", w[4].offered);
        // Completions end 1 s after the start: window 2 saw requests 10..30 end.
        assert!((w[1].achieved - 10.0).abs() < 1e-9, "{}", w[1].achieved);
        // The first window: only requests 0..10 ended in [0, 2 s).
        assert!((w[0].achieved - 5.0).abs() < 1e-9, "{}", w[0].achieved);
        // TTFT of window 2 is 30..49 ms: p50 the 10th of 20 values (within the histogram's
        // resolution), p99 the largest.
        let (p50, p99) = w[1].ttft_ms;
        assert!((p50.unwrap() - 39.0).abs() < 0.05, "{p50:?}");
        assert_eq!(p99, Some(49.0));
        // TTFT ≤ 50 ms for requests 0..=40: all of window 2, one of window 3.
        assert_eq!(w[1].good_rate, Some(100.0));
        assert_eq!(w[2].good_rate, Some(5.0));
        assert!(w[0].goodput.is_some() && w[4].ttft_ms.1 == Some(109.0));
    }

    #[test]
    fn a_short_ramp_has_no_windows_and_other_phases_are_not_kept() {
        let mut b = RampBuilder::default().with_phases(&[1]);
        for r in ramp_records().iter().take(30) {
            b.add(r);
        }
        let ramps = b.finish();
        assert_eq!(ramps.len(), 1);
        assert!(ramps[0].windows.is_empty());
        assert!(RampBuilder::default().finish().is_empty());
    }
}
