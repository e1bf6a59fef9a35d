//! One pass over a run's records into everything its reports need (statistics, timeline and
//! ramp windows), and telemetry over the measured windows. A run being measured and `llmbench parse` /
//! `llmbench report` (through `report::stored`) all go through `Analyzer`, so they agree.

use super::ramp::{RampBuilder, RampWindows};
use super::timeline::{Timeline, TimelineBuilder};
use crate::record::RequestRecord;
use crate::stats::{StatsBuilder, Summary};
use crate::telemetry::Reading;
use crate::telemetry::summary::{TelemetrySummary, Window, summarize};

/// Feeds every record to the statistics, the timeline and the ramp windows.
#[derive(Default)]
pub struct Analyzer {
    stats: StatsBuilder,
    timeline: TimelineBuilder,
    ramps: RampBuilder,
}

/// What a run's records say.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub summary: Summary,
    pub timeline: Timeline,
    /// The ramp phases cut into windows (`stats::ramp`), in phase order.
    pub ramps: Vec<RampWindows>,
}

impl Analyzer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts good requests against `slo` (goodput), when there is one.
    pub fn with_slo(mut self, slo: Option<crate::plan::Slo>) -> Self {
        self.stats = self.stats.with_slo(slo);
        self.ramps = std::mem::take(&mut self.ramps).with_slo(slo);
        self
    }

    /// Cuts the phases at `indices` (ramps: their load changes over time) into windows.
    pub fn with_ramps(mut self, indices: &[usize]) -> Self {
        self.ramps = std::mem::take(&mut self.ramps).with_phases(indices);
        self
    }

    pub fn add(&mut self, r: &RequestRecord) {
        self.stats.add(r);
        self.timeline.add(r);
        self.ramps.add(r);
    }

    /// The statistics' running state (`stats::state`), for a shard run's histogram file.
    pub fn state(&self) -> super::state::StatsState {
        self.stats.state()
    }

    pub fn finish(&self) -> Analysis {
        Analysis {
            summary: self.stats.finish(),
            timeline: self.timeline.finish(),
            ramps: self.ramps.finish(),
        }
    }
}

/// Analysis of a set of records in one pass.
pub fn analyze<'a>(records: impl IntoIterator<Item = &'a RequestRecord>) -> Analysis {
    let mut a = Analyzer::new();
    for r in records {
        a.add(r);
    }
    a.finish()
}

/// Telemetry over each measured phase's window (and `all`): the phases' windows come from the
/// records, so a run and `parse` of its files agree.
pub fn telemetry_over(readings: &[Reading], summary: &Summary) -> TelemetrySummary {
    let windows: Vec<Window> = summary
        .rows()
        .filter_map(|p| {
            let (start_us, end_us) = p.window_us?;
            Some(Window {
                name: p.name.clone(),
                start_us,
                end_us,
                output_tokens: p.output_tokens,
            })
        })
        .collect();
    summarize(readings, &windows)
}
