//! The common cases without writing a script: `--endpoint`, `--stream/--no-stream` and
//! `--max-tokens` change the plan's request; `--rps`, `--concurrency`, `--duration` and
//! `--requests` change its load. A load flag needs one measured phase to change (warmup phases
//! aside): with several, which one is meant is the script's business (`--set`). Pure.

use std::time::Duration;

use super::SettingsError;
use crate::plan::{Endpoint, Phase, Plan, Prompt};

/// What the request and load flags change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShapeOverrides {
    pub endpoint: Option<Endpoint>,
    pub stream: Option<bool>,
    pub max_tokens: Option<u32>,
    pub rps: Option<f64>,
    pub concurrency: Option<u32>,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
}

impl ShapeOverrides {
    fn changes_load(&self) -> bool {
        self.rps.is_some()
            || self.concurrency.is_some()
            || self.duration.is_some()
            || self.requests.is_some()
    }

    /// The load flags given, for messages: `--rps, --duration`.
    fn load_flags(&self) -> String {
        [
            ("--rps", self.rps.is_some()),
            ("--concurrency", self.concurrency.is_some()),
            ("--duration", self.duration.is_some()),
            ("--requests", self.requests.is_some()),
        ]
        .iter()
        .filter(|(_, given)| *given)
        .map(|(f, _)| *f)
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Puts the request and load flags on `plan`.
pub fn apply_shape(mut plan: Plan, o: &ShapeOverrides) -> Result<Plan, SettingsError> {
    let r = &mut plan.request;
    if let Some(e) = o.endpoint {
        if e == Endpoint::Completions
            && (r.system.is_some() || matches!(r.prompt, Prompt::Messages(_)))
        {
            return Err(SettingsError(format!(
                "--endpoint completions: the workload {:?} sends a system prompt or message lists, which need the chat endpoint",
                plan.workload
            )));
        }
        r.endpoint = e;
    }
    if let Some(s) = o.stream {
        r.stream = s;
    }
    if o.max_tokens.is_some() {
        r.max_tokens = o.max_tokens;
    }
    if o.changes_load() {
        let phase = measured_phase(&mut plan.phases, &plan.workload, &o.load_flags())?;
        load(phase, o);
    }
    Ok(plan)
}

/// The one phase that is not a warmup.
fn measured_phase<'a>(
    phases: &'a mut [Phase],
    workload: &str,
    flags: &str,
) -> Result<&'a mut Phase, SettingsError> {
    let names: Vec<String> = phases.iter().map(|p| p.name.clone()).collect();
    let mut measured = phases.iter_mut().filter(|p| !p.warmup);
    match (measured.next(), measured.next()) {
        (Some(p), None) if p.sweep.is_none() => Ok(p),
        (Some(p), None) => Err(SettingsError(format!(
            "{flags}: phase {:?} of {workload:?} is a capacity sweep step, whose load the sweep sets",
            p.name
        ))),
        _ => Err(SettingsError(format!(
            "{flags}: the load flags change a workload of one measured phase, and {workload:?} has the phases {}: change those with the script's params (--set NAME=VALUE, see `llmbench check`) or edit the script",
            names.join(", ")
        ))),
    }
}

/// The load flags on one phase. A duration alone replaces a request count and the other way
/// round (the run lasts what was asked); `--rps` makes a closed-loop phase open loop.
fn load(p: &mut Phase, o: &ShapeOverrides) {
    if let Some(rps) = o.rps {
        p.rate = Some(rps);
        p.ramp.rate = None;
    }
    if let Some(c) = o.concurrency {
        p.concurrency = Some(c);
        p.ramp.concurrency = None;
    }
    match (o.duration, o.requests) {
        (None, None) => {}
        (d, n) => {
            p.duration = d;
            p.requests = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(phases: &str) -> Plan {
        crate::script::load_source(
            std::path::Path::new("t.rhai"),
            &format!("request(#{{ prompt: \"hi\", max_tokens: 4 }}); {phases}"),
            &crate::config::Configs::new("/nonexistent"),
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn request_flags_change_the_request() {
        let o = ShapeOverrides {
            endpoint: Some(Endpoint::Completions),
            stream: Some(false),
            max_tokens: Some(9),
            ..Default::default()
        };
        let p = apply_shape(plan(r#"phase("p", #{ requests: 1 });"#), &o).unwrap();
        assert_eq!(p.request.endpoint, Endpoint::Completions);
        assert!(!p.request.stream);
        assert_eq!(p.request.max_tokens, Some(9));
    }

    #[test]
    fn load_flags_change_the_one_measured_phase() {
        let src = r#"phase("w", #{ requests: 2, warmup: true }); phase("p", #{ requests: 10, concurrency: 2 });"#;
        let o = ShapeOverrides {
            rps: Some(7.5),
            duration: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let p = apply_shape(plan(src), &o).unwrap();
        let (w, m) = (&p.phases[0], &p.phases[1]);
        assert_eq!((w.requests, w.rate), (Some(2), None), "the warmup stays");
        assert_eq!(m.rate, Some(7.5));
        assert_eq!(m.duration, Some(Duration::from_secs(3)));
        assert_eq!(
            m.requests, None,
            "a duration alone replaces the request count"
        );
        assert_eq!(m.concurrency, Some(2));
        let o = ShapeOverrides {
            requests: Some(5),
            concurrency: Some(3),
            ..Default::default()
        };
        let p = apply_shape(plan(src), &o).unwrap();
        assert_eq!(
            (p.phases[1].requests, p.phases[1].concurrency),
            (Some(5), Some(3))
        );
    }

    #[test]
    fn load_flags_refuse_a_plan_of_several_measured_phases() {
        let src = r#"phase("a", #{ requests: 1 }); phase("b", #{ requests: 1 });"#;
        let o = ShapeOverrides {
            rps: Some(1.0),
            ..Default::default()
        };
        let err = apply_shape(plan(src), &o).unwrap_err().to_string();
        assert!(
            err.contains("--rps") && err.contains("a, b") && err.contains("--set"),
            "{err}"
        );
        assert!(apply_shape(plan(src), &ShapeOverrides::default()).is_ok());
    }

    #[test]
    fn completions_refuse_message_prompts() {
        let p = crate::script::load_source(
            std::path::Path::new("t.rhai"),
            r#"request(#{ prompt: "hi", system: "be brief" }); phase("p", #{ requests: 1 });"#,
            &crate::config::Configs::new("/nonexistent"),
            &Default::default(),
        )
        .unwrap();
        let o = ShapeOverrides {
            endpoint: Some(Endpoint::Completions),
            ..Default::default()
        };
        let err = apply_shape(p, &o).unwrap_err().to_string();
        assert!(err.contains("--endpoint completions"), "{err}");
    }
}
