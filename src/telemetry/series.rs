//! Telemetry series as points over time, and what a window of the run reads from them: the
//! value at an instant (interpolated linearly between samples, held flat beyond them), a
//! counter's increase (a drop is a reset to zero) and a gauge's integral. `summary` and
//! `prefix_cache` read the series through these.

use std::collections::BTreeMap;

use super::{Kind, Reading};
use crate::units::span_s;

/// A stretch of the run to summarise: a phase, or all measured phases.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub name: String,
    pub start_us: u64,
    pub end_us: u64,
    pub output_tokens: u64,
}

/// A series' source, name and labels.
pub type Key<'a> = (&'a str, &'a str, &'a BTreeMap<String, String>);
/// A series' (time µs, value) points, in time order.
pub type Points = Vec<(u64, f64)>;

/// Time-ordered points of each series.
pub fn group(readings: &[Reading]) -> BTreeMap<Key<'_>, (Kind, Points)> {
    let mut out: BTreeMap<Key<'_>, (Kind, Points)> = BTreeMap::new();
    for r in readings.iter().filter(|r| r.value.is_finite()) {
        out.entry((&r.source, &r.name, &r.labels))
            .or_insert((r.kind, Vec::new()))
            .1
            .push((r.t_us, r.value));
    }
    for (_, pts) in out.values_mut() {
        pts.sort_by_key(|p| p.0);
    }
    out
}

/// The series' value at `t`, interpolated linearly, held flat outside the samples.
pub fn value_at(pts: &[(u64, f64)], t: u64) -> f64 {
    match pts.iter().position(|p| p.0 >= t) {
        None => pts.last().map_or(0.0, |p| p.1),
        Some(0) => pts[0].1,
        Some(i) => {
            let (a, b) = (pts[i - 1], pts[i]);
            if b.0 == a.0 {
                b.1
            } else {
                a.1 + (b.1 - a.1) * (t - a.0) as f64 / (b.0 - a.0) as f64
            }
        }
    }
}

/// The series clipped to [start, end], with interpolated end points.
fn clip(pts: &[(u64, f64)], start: u64, end: u64) -> Vec<(u64, f64)> {
    let mut out = vec![(start, value_at(pts, start))];
    out.extend(pts.iter().copied().filter(|p| p.0 > start && p.0 < end));
    out.push((end, value_at(pts, end)));
    out
}

/// A counter's increase over [start, end]; a drop is a reset to zero.
pub fn increase(pts: &[(u64, f64)], start: u64, end: u64) -> f64 {
    clip(pts, start, end)
        .windows(2)
        .map(|w| {
            if w[1].1 >= w[0].1 {
                w[1].1 - w[0].1
            } else {
                w[1].1
            }
        })
        .sum()
}

/// A gauge's integral over [start, end] in value·seconds (trapezoid rule).
pub fn integral(pts: &[(u64, f64)], start: u64, end: u64) -> f64 {
    clip(pts, start, end)
        .windows(2)
        .map(|w| span_s(w[0].0, w[1].0) * (w[0].1 + w[1].1) / 2.0)
        .sum()
}
