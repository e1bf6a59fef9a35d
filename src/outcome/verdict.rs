//! Verdicts: a run's assertions evaluated against its statistics. Scripts see the statistics
//! as one map (`stats_view`): the overall numbers at the top level (`s.ttft_ms.p95`,
//! `s.success_rate`, `s.goodput_req_per_s`), each measured phase under `s.phases.NAME`, and the
//! same overall numbers again under `s.all`.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::plan::Assertion;
use crate::stats::{PhaseStats, STAT_KEYS, Summary};

/// One assertion's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub name: String,
    pub passed: bool,
    /// The measured value (or the error that stopped the check).
    pub value: String,
}

/// The statistics as scripts see them.
pub fn stats_view(summary: &Summary) -> Value {
    let mut top = phase_view(&summary.all);
    let phases: Map<String, Value> = summary
        .phases
        .iter()
        .map(|p| (p.name.clone(), phase_view(p)))
        .collect();
    let obj = top.as_object_mut().expect("a phase view is an object");
    obj.insert("all".into(), phase_view(&summary.all));
    obj.insert("phases".into(), Value::Object(phases));
    let labels: Map<String, Value> = summary
        .labels
        .iter()
        .map(|p| (p.name.clone(), phase_view(p)))
        .collect();
    obj.insert("labels".into(), Value::Object(labels));
    obj.insert("warmup_requests".into(), summary.warmup_requests.into());
    top
}

fn phase_view(p: &PhaseStats) -> Value {
    let mut v = serde_json::to_value(p).expect("stats serialize");
    let obj = v.as_object_mut().expect("stats are an object");
    obj.remove("metrics");
    for d in &p.metrics {
        let stats: Map<String, Value> = STAT_KEYS
            .iter()
            .zip(d.values())
            .map(|(k, v)| (k.to_string(), v.map_or(Value::Null, Value::from)))
            .chain([("count".to_string(), Value::from(d.count))])
            .collect();
        obj.insert(d.key.to_owned(), Value::Object(stats));
    }
    v
}

/// Evaluates every assertion; one that cannot be evaluated fails with its error as the value.
pub fn evaluate(assertions: &[Assertion], summary: &Summary) -> Vec<Verdict> {
    let view = stats_view(summary);
    assertions
        .iter()
        .map(|a| match a.check.check(&view) {
            Ok(o) => Verdict {
                name: a.name.clone(),
                passed: o.passed,
                value: o.value,
            },
            Err(e) => Verdict {
                name: a.name.clone(),
                passed: false,
                value: format!("error: {e}"),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_has_metrics_by_key_and_phases_by_name() {
        let s = crate::stats::summarize(&[]);
        let v = stats_view(&s);
        assert!(v["ttft_ms"]["p95"].is_null());
        assert_eq!(v["ttft_ms"]["count"], 0);
        assert_eq!(v["all"]["requests"], 0);
        assert!(v["phases"].as_object().unwrap().is_empty());
        assert!(v.get("metrics").is_none());
    }
}
