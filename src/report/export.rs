//! `--export-json`: a run's (or a comparison's) results as JSON with a versioned schema, for
//! other tools. The `schema` field names the format and its major version; a field is only ever
//! added within a version, and a change that removes or redefines a field bumps it. README
//! documents every field.

use serde::Serialize;

use crate::outcome::sweep::SweepOutcome;
use crate::outcome::verdict::Verdict;
use crate::plan::Slo;
use crate::record::RunInfo;
use crate::stats::timeline::Timeline;
use crate::stats::{PhaseStats, Summary, Warning};

/// Schema of `llmbench run --export-json`.
pub const RUN_SCHEMA: &str = "llmbench.run/1";
/// Schema of `llmbench report --export-json`.
pub const COMPARISON_SCHEMA: &str = "llmbench.comparison/1";

/// One run: what it was, its statistics per phase and overall, its warnings and timeline, and
/// what it amounted to: the SLO it was measured against, each assertion's verdict and the
/// sweep's outcome (`null`/empty when the plan had none, or when a run re-read by `llmbench
/// report` has no metadata file).
#[derive(Debug, Serialize)]
pub struct RunExport<'a> {
    pub schema: &'static str,
    pub run: &'a RunInfo,
    pub phases: &'a [PhaseStats],
    pub all: &'a PhaseStats,
    pub warmup_requests: u64,
    pub warnings: &'a [Warning],
    pub timeline: &'a Timeline,
    pub slo: Option<Slo>,
    pub assertions: &'a [Verdict],
    /// Whether every assertion passed (`true` with none).
    pub passed: bool,
    pub sweep: Option<&'a SweepOutcome>,
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
            slo: None,
            assertions: &[],
            passed: true,
            sweep: None,
        }
    }

    /// Adds what the run amounted to (a fresh run has it; a re-read one from its metadata).
    pub fn with_outcome(
        mut self,
        slo: Option<Slo>,
        assertions: &'a [Verdict],
        sweep: Option<&'a SweepOutcome>,
    ) -> Self {
        self.slo = slo;
        self.assertions = assertions;
        self.passed = assertions.iter().all(|v| v.passed);
        self.sweep = sweep;
        self
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_exported_as_numbers_and_passed_says_whether_all_passed() {
        let summary = crate::stats::summarize(&[]);
        let timeline = Timeline::default();
        let info = RunInfo::placeholder("r", "unknown");
        let verdicts = [
            Verdict {
                name: "fast".into(),
                passed: true,
                value: "412.3 < 500".into(),
                measured: Some(412.3),
                op: Some("<".into()),
                limit: Some(500.0),
            },
            Verdict {
                name: "ok".into(),
                passed: false,
                value: "false".into(),
                measured: None,
                op: None,
                limit: None,
            },
        ];
        let slo = Slo {
            ttft_ms: Some(500.0),
            ..Slo::default()
        };
        let export = RunExport::new(&info, &summary, &timeline, &[]).with_outcome(
            Some(slo),
            &verdicts,
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&to_json(&export)).unwrap();
        assert_eq!(v["schema"], RUN_SCHEMA);
        assert_eq!(v["passed"], false);
        assert_eq!(v["assertions"][0]["measured"], 412.3);
        assert_eq!(v["assertions"][0]["limit"], 500.0);
        assert_eq!(v["assertions"][0]["op"], "<");
        assert!(v["assertions"][1]["measured"].is_null());
        assert_eq!(v["slo"]["ttft_ms"], 500.0);
        assert!(v["slo"]["tpot_ms"].is_null());
        assert!(v["sweep"].is_null());
        let bare = RunExport::new(&info, &summary, &timeline, &[]);
        let v: serde_json::Value = serde_json::from_str(&to_json(&bare)).unwrap();
        assert_eq!(v["passed"], true);
        assert_eq!(v["assertions"], serde_json::json!([]));
    }
}
