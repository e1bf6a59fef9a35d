//! `--export-json`: a run's (or a comparison's) results as JSON with a versioned schema, for
//! other tools. The `schema` field names the format and its major version; a field is only ever
//! added within a version, and a change that removes or redefines a field bumps it. README
//! documents every field.

use serde::Serialize;

use crate::record::RunInfo;
use crate::stats::timeline::Timeline;
use crate::stats::{PhaseStats, Summary, Warning};

/// Schema of `llmbench run --export-json`.
pub const RUN_SCHEMA: &str = "llmbench.run/1";
/// Schema of `llmbench report --export-json`.
pub const COMPARISON_SCHEMA: &str = "llmbench.comparison/1";

/// One run: what it was, its statistics per phase and overall, its warnings and timeline.
#[derive(Debug, Serialize)]
pub struct RunExport<'a> {
    pub schema: &'static str,
    pub run: &'a RunInfo,
    pub phases: &'a [PhaseStats],
    pub all: &'a PhaseStats,
    pub warmup_requests: u64,
    pub warnings: &'a [Warning],
    pub timeline: &'a Timeline,
}

impl<'a> RunExport<'a> {
    pub fn new(
        run: &'a RunInfo,
        summary: &'a Summary,
        timeline: &'a Timeline,
        warnings: &'a [Warning],
    ) -> Self {
        Self {
            schema: RUN_SCHEMA,
            run,
            phases: &summary.phases,
            all: &summary.all,
            warmup_requests: summary.warmup_requests,
            warnings,
            timeline,
        }
    }
}

/// Several runs and the baseline the comparison report measured deltas against.
#[derive(Debug, Serialize)]
pub struct ComparisonExport<'a> {
    pub schema: &'static str,
    pub baseline: &'a str,
    pub runs: Vec<RunExport<'a>>,
}

impl<'a> ComparisonExport<'a> {
    pub fn new(baseline: &'a str, runs: Vec<RunExport<'a>>) -> Self {
        Self {
            schema: COMPARISON_SCHEMA,
            baseline,
            runs,
        }
    }
}

/// Pretty JSON with a trailing newline.
pub fn to_json(value: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("exports serialize");
    s.push('\n');
    s
}
