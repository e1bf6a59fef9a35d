//! Verdicts: a run's assertions evaluated against its statistics. Scripts see the statistics
//! as one map (`stats_view`): the overall numbers at the top level (`s.ttft_ms.p95`,
//! `s.success_rate`, `s.goodput_req_per_s`), every measured phase of the plan under
//! `s.phases.NAME` (one that saw no request with empty statistics: counts 0, values `()`), and
//! the same overall numbers again under `s.all`. Before the first request (and in
//! `llmbench check`), `dry_run` tries every assertion against views of exactly that shape, so a
//! field or phase that does not exist is an error then, not after the run.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::plan::Plan;
use crate::record::RequestRecord;
use crate::stats::{PhaseStats, STAT_KEYS, StatsBuilder, Summary, empty_phase};

/// One assertion's result.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Verdict {
    pub name: String,
    pub passed: bool,
    /// The measured value as the report shows it (or the error that stopped the check).
    pub value: String,
    /// For a comparison assertion: the measured number (`null` with no data or an error),
    /// the operator and the limit, as numbers for other tools.
    pub measured: Option<f64>,
    pub op: Option<String>,
    pub limit: Option<f64>,
}

/// The statistics of a run of `plan` as scripts see them.
pub fn stats_view(summary: &Summary, plan: &Plan) -> Value {
    let mut top = phase_view(&summary.all);
    let mut phases: Map<String, Value> = summary
        .phases
        .iter()
        .map(|p| (p.name.clone(), phase_view(p)))
        .collect();
    for p in plan.phases.iter().filter(|p| !p.warmup) {
        if !phases.contains_key(&p.name) {
            phases.insert(p.name.clone(), phase_view(&empty_phase(&p.name, plan.slo)));
        }
    }
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

/// Evaluates every assertion of `plan`; one that cannot be evaluated fails with its error as
/// the value.
pub fn evaluate(plan: &Plan, summary: &Summary) -> Vec<Verdict> {
    let view = stats_view(summary, plan);
    plan.assertions
        .iter()
        .map(|a| match a.check.check(&view) {
            Ok(o) => Verdict {
                name: a.name.clone(),
                passed: o.passed,
                value: o.value,
                measured: o.measured,
                op: o.op,
                limit: o.limit,
            },
            Err(e) => Verdict {
                name: a.name.clone(),
                passed: false,
                value: format!("error: {e}"),
                measured: None,
                op: None,
                limit: None,
            },
        })
        .collect()
}

/// Tries every assertion of `plan` before the run against views of the run's exact shape:
/// one with no data (every value `()`), one with a made-up successful request in every phase
/// (every metric has a value). Returns one error per assertion that fails whatever the run
/// measures (a field or phase the statistics do not have, a function that does not exist, a
/// result of the wrong type), each naming the script's file:line:col.
pub fn dry_run(plan: &Plan) -> Vec<String> {
    if plan.assertions.is_empty() {
        return Vec::new();
    }
    let empty = stats_view(&StatsBuilder::new().with_slo(plan.slo).finish(), plan);
    let sample = stats_view(&sample_summary(plan), plan);
    plan.assertions
        .iter()
        .filter_map(|a| a.check.dry_run(&empty, &sample).err())
        .collect()
}

/// The statistics of one made-up successful request in every phase of `plan` (streamed when
/// the plan's requests are, so what a real run leaves `()` stays `()`).
fn sample_summary(plan: &Plan) -> Summary {
    let mut stats = StatsBuilder::new().with_slo(plan.slo);
    for (i, p) in plan.phases.iter().enumerate() {
        let sent_us = 1_000 + i as u64 * 1_000_000;
        let mut r = RequestRecord::synthetic(i as u64, &p.name, i, sent_us, 100_000, 10_000, 4);
        r.warmup = p.warmup;
        r.streamed = plan.request.stream;
        stats.add(&r);
    }
    stats.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(source: &str) -> Plan {
        crate::script::load_source(
            std::path::Path::new("v.rhai"),
            source,
            &crate::config::Configs::new("/nonexistent"),
            &Default::default(),
        )
        .unwrap()
    }

    const PHASES: &str = "request(#{ prompt: \"x\" });
        phase(\"warm\", #{ requests: 2, warmup: true });
        phase(\"steady\", #{ requests: 5 });
        phase(\"hold\", #{ requests: 5 });\n";

    #[test]
    fn the_view_has_metrics_by_key_and_every_measured_phase_by_name() {
        let plan = plan(PHASES);
        let v = stats_view(&crate::stats::summarize(&[]), &plan);
        assert!(v["ttft_ms"]["p95"].is_null());
        assert_eq!(v["ttft_ms"]["count"], 0);
        assert_eq!(v["all"]["requests"], 0);
        assert!(v.get("metrics").is_none());
        // A phase that saw no request has the same fields, empty; a warmup phase is not there.
        let phases = v["phases"].as_object().unwrap();
        assert_eq!(phases.keys().collect::<Vec<_>>(), ["hold", "steady"]);
        assert_eq!(phases["hold"]["requests"], 0);
        assert!(phases["hold"]["e2el_ms"]["p99"].is_null());
        assert!(phases["hold"].get("goodput_req_per_s").unwrap().is_null());
        let sample = stats_view(&sample_summary(&plan), &plan);
        assert_eq!(
            sample["phases"]["hold"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            phases["hold"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            "the same shape with and without data"
        );
        for m in crate::stats::Metric::ALL {
            assert!(
                sample[m.key()]["p95"].is_number(),
                "{} has a value",
                m.key()
            );
        }
        assert_eq!(sample["warmup_requests"], 1);
    }

    #[test]
    fn a_dry_run_finds_missing_fields_and_phases_not_missing_data() {
        let errors = |asserts: &str| dry_run(&plan(&format!("{PHASES}{asserts}")));
        let fine = errors(
            "assert(\"a\", |s| s.ttft_ms.p95, \"<\", 500);
             assert(\"b\", |s| s.phases.hold.req_per_s > 1.0);
             assert(\"c\", |s| s.goodput_req_per_s, \">\", 1);
             assert(\"d\", |s| s.ttft_ms.p95 / 2.0 < 100.0);
             assert(\"e\", |s| (s.http_statuses.get(\"429\") ?? 0) == 0);
             assert(\"f\", |s| { if s.ok > 0 { throw \"no\" } true });",
        );
        assert!(fine.is_empty(), "{fine:?}");
        for (line, needle) in [
            (
                "assert(\"a\", |s| s.ttft_ms.p96, \"<\", 500);",
                "v.rhai:5:27:",
            ),
            (
                "assert(\"a\", |s| s.phases.hodl.req_per_s > 1.0);",
                "v.rhai:5:26:",
            ),
            (
                "assert(\"a\", |s| s.phases.warm.req_per_s > 1.0);",
                "v.rhai:5:26:",
            ),
            ("assert(\"a\", |s| nope(s));", "v.rhai:5:17:"),
            ("assert(\"a\", |s| s.ttft_ms.p95);", "true or false"),
            ("assert(\"a\", |s| \"x\", \"<\", 1);", "a number"),
        ] {
            let e = errors(line);
            assert_eq!(e.len(), 1, "{line}: {e:?}");
            assert!(e[0].contains(needle), "{line}: {}", e[0]);
        }
    }
}
