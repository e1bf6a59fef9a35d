//! The commands around the run pipeline: `check` (evaluate a script and print its plan) and
//! `run --target --model --workload` (the original tool's command, reading configs/*.yaml, with
//! its defaults); interactive mode (`interactive`) builds on the same plan. A `workloads.yaml`
//! entry becomes a plan through the shipped script library
//! (`lib/workloads`), so one definition of "the original tool's workload" serves all three.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::cli::{CheckArgs, WorkloadArgs};
use super::{EXIT_OK, exit_code, run_with_flags, usage_error};
use crate::client::preflight::PreflightError;
use crate::config::{Configs, Workload};
use crate::plan::{Plan, Prompt, RequestSpec};
use crate::run::RunError;
use crate::script::{self, Overrides};

/// `llmbench check SCRIPT [run flags]`: prints the plan those flags would run, sends nothing.
/// Then tries the script (`run::script_errors`): the prompt of each of `checked_requests` and
/// every assertion against statistics of the run's shape. Any error: exit 2.
pub fn check(args: &CheckArgs) -> u8 {
    let overrides: Overrides = args.set.iter().cloned().collect();
    let load = &args.load;
    let access = super::access(load.connection.api_key_env.as_deref());
    let configs = Configs::new(&load.output.configs);
    let resolved = script::load_with_access(&args.script, &configs, &overrides, &access)
        .map_err(RunError::from)
        .and_then(|plan| {
            let flags = load.overrides(args.model.as_deref(), |var| std::env::var(var).ok())?;
            Ok(crate::settings::apply(plan, &flags)?)
        });
    match resolved {
        Ok(plan) => {
            print!("{}", describe(&plan));
            let errors = crate::run::script_errors(&plan, &checked_requests(&plan));
            if errors.is_empty() {
                return EXIT_OK;
            }
            for e in &errors {
                usage_error(e);
            }
            usage_error(format!(
                "the script would fail the run ({} error{} above); fix and check again",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            ))
        }
        Err(e) => usage_error(e),
    }
}

/// The requests whose prompt `check` makes: 0 to 3, 10, 100, 1,000 and 10,000, and the middle
/// and last of the plan's expected requests; none past the last when that is known.
pub fn checked_requests(plan: &Plan) -> Vec<u64> {
    let expected = plan.expected_requests();
    let mut at: Vec<u64> = [0, 1, 2, 3, 10, 100, 1_000, 10_000].into();
    if let Some(n) = expected.filter(|n| *n > 0) {
        at.extend([n / 2, n - 1]);
        at.retain(|i| *i < n);
    }
    at.sort_unstable();
    at.dedup();
    at
}

/// What a plan will do, for people: target (secrets redacted), request, phases with their
/// rates and expected request counts, SLO and assertions.
pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "workload: {}", plan.workload);
    describe_target(w, plan);
    describe_request(w, &plan.request);
    if !plan.params.is_empty() {
        let p: Vec<String> = plan
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            w,
            "params:   {} (change with --set NAME=VALUE)",
            p.join(" ")
        );
    }
    if !plan.labels.is_empty() {
        let labels = crate::record::labels_line(&plan.labels);
        let _ = writeln!(w, "labels:   {labels}");
    }
    describe_phases(w, plan);
    describe_checks(w, plan);
    out
}

/// The `target:` and `model:` lines (the API key only said to be there or not).
fn describe_target(w: &mut String, plan: &Plan) {
    match &plan.target {
        Some(t) => {
            let key = if t.api_key.is_some() {
                "[redacted]"
            } else {
                "none"
            };
            let url = crate::redact::public_url(&t.base_url);
            let _ = writeln!(w, "target:   {} at {url} (api key: {key})", t.name);
        }
        None => {
            let m = &plan.mock;
            let _ = writeln!(
                w,
                "target:   the built-in mock server (TTFT {} ms, ITL {} ms, {} tokens)",
                m.ttft_ms, m.itl_ms, m.output_tokens
            );
        }
    }
    let _ = writeln!(
        w,
        "model:    {}",
        plan.model.as_deref().unwrap_or("(the mock's)")
    );
}

/// The `request:` line and its system, body, headers (names only) and prompt lines.
fn describe_request(w: &mut String, r: &RequestSpec) {
    let _ = writeln!(
        w,
        "request:  {} endpoint, {}, max_tokens {}, timeout {} s",
        r.endpoint.name(),
        if r.stream {
            "streaming"
        } else {
            "not streaming"
        },
        r.max_tokens.map_or("not sent".into(), |n| n.to_string()),
        r.timeout.as_secs_f64()
    );
    if let Some(s) = &r.system {
        let _ = writeln!(w, "  system:  {}", shorten(s, 100));
    }
    if !r.body.is_empty() {
        let _ = writeln!(
            w,
            "  body:    {}",
            serde_json::Value::Object(r.body.clone())
        );
    }
    if !r.headers.is_empty() {
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        let _ = writeln!(w, "  headers: {} (values redacted)", names.join(", "));
    }
    let _ = writeln!(w, "  prompt:  {}", prompt_sample(&r.prompt));
}

/// What the prompt is, with request 0's for a generated one.
fn prompt_sample(prompt: &Prompt) -> String {
    match prompt {
        Prompt::Text(t) => format!("the same text every time: {}", shorten(t, 100)),
        Prompt::Messages(m) => format!("the same {} messages every time", m.len()),
        Prompt::Generated(g) => match g.generate(0) {
            Ok(crate::plan::Content::Text(t)) => {
                format!("{}; request 0: {}", g.describe(), shorten(&t, 100))
            }
            Ok(crate::plan::Content::Messages(m)) => {
                format!("{}; request 0: {} messages", g.describe(), m.len())
            }
            Err(e) => format!("{}; FAILS for request 0: {e}", g.describe()),
        },
        Prompt::Session(spec) => format!("sessions: {}, {}", spec.generator.describe(), spec.pace),
    }
}

/// The `phases:` list with each phase's time span and expected requests, then the total.
fn describe_phases(w: &mut String, plan: &Plan) {
    let _ = writeln!(w, "phases:");
    let mut at = 0.0;
    for p in &plan.phases {
        let expected = p
            .expected_requests()
            .map_or("request count unknown".into(), |n| format!("~{n} requests"));
        let span = match p.duration {
            Some(d) => {
                let s = format!("t={at:.0}–{:.0} s", at + d.as_secs_f64());
                at += d.as_secs_f64();
                s
            }
            None => format!("from t={at:.0} s"),
        };
        let _ = writeln!(w, "  {}  [{span}, {expected}]", p.describe());
    }
    let total = plan.expected_requests().map_or(
        "unknown (closed-loop phases run as fast as the server answers)".into(),
        |n| n.to_string(),
    );
    let _ = writeln!(w, "expected requests: {total}");
    if let Some(n) = plan.repeat.filter(|n| *n > 1) {
        let _ = writeln!(
            w,
            "repeat:   {n} trials, each a run of its own (--repeat overrides)"
        );
    }
}

/// The `slo:` line and one `assert:` line per assertion.
fn describe_checks(w: &mut String, plan: &Plan) {
    if let Some(s) = &plan.slo {
        let limits: Vec<String> = [
            ("TTFT", s.ttft_ms),
            ("TPOT", s.tpot_ms),
            ("E2EL", s.e2el_ms),
        ]
        .iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n} ≤ {v} ms")))
        .collect();
        let _ = writeln!(w, "slo:      {}", limits.join(", "));
    }
    for a in &plan.assertions {
        let _ = writeln!(w, "assert:   {} ({})", a.name, a.check.describe());
    }
}

fn shorten(s: &str, n: usize) -> String {
    let one_line = s.replace('\n', " ");
    match one_line.char_indices().nth(n) {
        Some((i, _)) => format!("{}… ({} chars)", &one_line[..i], s.chars().count()),
        None => one_line,
    }
}

/// The script a `workloads.yaml` entry runs as (the shipped library's `standard`, which reads
/// the entry itself). `target` `None`: the built-in mock server.
/// `model` `None`: the one the server serves (`client::models`).
pub fn workload_source(target: Option<&str>, model: Option<&str>, workload: &str) -> String {
    let mut s = String::from("import \"lib/workloads\" as workloads;\n");
    if let Some(t) = target {
        let _ = writeln!(s, "target({t:?});");
    }
    if let Some(m) = model {
        let _ = writeln!(s, "model({m:?});");
    }
    let _ = writeln!(s, "workloads::standard({workload:?});");
    s
}

/// The plan for `run --target --model --workload`. `target` `None` (or `mock`, when
/// targets.yaml has no target of that name): no target, so the built-in mock unless `--url`.
pub fn workload_plan(
    configs: &Configs,
    target: Option<&str>,
    model: Option<&str>,
    workload: &str,
    overrides: &Overrides,
) -> Result<Plan, RunError> {
    // Fails with the list of known workloads when the name is not there.
    configs.workload(workload)?;
    let names = configs.target_names()?;
    let target = match target {
        Some("mock") if !names.iter().any(|n| n == "mock") => None,
        None => None,
        Some(target) => {
            // Fails with the list of known targets when the name is not there.
            configs.target(target)?;
            Some(target)
        }
    };
    let source = workload_source(target, model, workload);
    let path = PathBuf::from(format!("run --workload {workload}"));
    Ok(script::load_source(&path, &source, configs, overrides)?)
}

/// `llmbench run [--target T] [--model M] [--workload W]`: each left out takes the original
/// tool's default (`Defaults`), said on stderr.
pub async fn run_workload(args: &WorkloadArgs) -> u8 {
    let configs = Configs::new(&args.load.output.configs);
    let defaults = match Defaults::read(&configs) {
        Ok(d) => d,
        Err(e) => return usage_error(e),
    };
    // With --url and no --target, the URL is the target.
    let url_only = args.target.is_none() && args.load.connection.url.is_some();
    let target = args.target.clone().unwrap_or_else(|| {
        if !url_only {
            eprintln!(
                "llmbench: --target not given: {}, {}",
                defaults.target, defaults.target_why
            );
        }
        defaults.target.clone()
    });
    let workload = args.workload.clone().unwrap_or_else(|| {
        eprintln!("llmbench: --workload not given: {}", defaults.workload);
        defaults.workload.clone()
    });
    let overrides: Overrides = args.set.iter().cloned().collect();
    let plan = workload_plan(
        &configs,
        (!url_only).then_some(target.as_str()),
        args.model.as_deref(),
        &workload,
        &overrides,
    );
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => return usage_error(e),
    };
    let label = format!("run --workload {workload}");
    let result = run_with_flags(plan, &args.load, args.runtime.threads, None, &label).await;
    let code = exit_code(&result);
    if args.target.is_none()
        && !url_only
        && matches!(
            result,
            Err(RunError::Preflight(PreflightError::Unreachable { .. }))
        )
    {
        eprintln!(
            "llmbench: {target} is the default target ({}) and does not answer: start it, pick another with --target NAME, or try llmbench against its built-in mock server with --target mock",
            defaults.target_why
        );
    }
    code
}

/// What `run` and interactive mode take when told nothing: the original tool's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// The first target of `targets.yaml` (`mock` when it lists none).
    pub target: String,
    /// Where `target` came from, for messages: `the first in configs/targets.yaml`.
    pub target_why: String,
    /// `high-load`, else the first workload of `workloads.yaml`.
    pub workload: String,
}

impl Defaults {
    pub fn read(configs: &Configs) -> Result<Self, crate::config::ConfigError> {
        let file = configs.path_of("targets.yaml").display().to_string();
        let (target, target_why) = match configs.target_names()?.into_iter().next() {
            Some(t) => (t, format!("the first in {file}")),
            None => ("mock".into(), format!("as {file} lists no target")),
        };
        let workloads = configs.workloads()?;
        let workload = workloads[default_workload(&workloads)].name.clone();
        Ok(Self {
            target,
            target_why,
            workload,
        })
    }
}

/// The default workload among `workloads`: `high-load` when there is one, else the first.
fn default_workload(workloads: &[Workload]) -> usize {
    workloads
        .iter()
        .position(|w| w.name == "high-load")
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs() -> Configs {
        Configs::new(concat!(env!("CARGO_MANIFEST_DIR"), "/configs"))
    }

    #[test]
    fn check_tries_the_first_requests_and_some_spread_over_the_plan() {
        let plan = |phases: &str| {
            let source = format!("request(#{{ prompt: |i| `q ${{i}}` }}); {phases}");
            script::load_source(
                std::path::Path::new("c.rhai"),
                &source,
                &configs(),
                &Overrides::new(),
            )
            .unwrap()
        };
        let known = plan("phase(\"a\", #{ requests: 20 }); phase(\"b\", #{ requests: 30 });");
        assert_eq!(checked_requests(&known), [0, 1, 2, 3, 10, 25, 49]);
        let closed = plan("phase(\"a\", #{ duration: 10, concurrency: 2 });");
        assert_eq!(
            checked_requests(&closed),
            [0, 1, 2, 3, 10, 100, 1_000, 10_000]
        );
        let one = plan("phase(\"a\", #{ requests: 1 });");
        assert_eq!(checked_requests(&one), [0]);
    }

    #[test]
    fn a_workload_entry_becomes_the_original_tools_plan() {
        let plan = workload_plan(
            &configs(),
            Some("vllm-local"),
            Some("llama-3.1-8b-instruct"),
            "high-load",
            &Overrides::new(),
        )
        .unwrap();
        assert_eq!(plan.workload, "high-load");
        assert_eq!(
            plan.target.as_ref().unwrap().base_url,
            "http://localhost:8000/v1"
        );
        assert_eq!(
            plan.model.as_deref(),
            Some("meta-llama/Meta-Llama-3.1-8B-Instruct")
        );
        let p = &plan.phases[0];
        assert_eq!((p.rate, p.concurrency), (Some(20.0), Some(50)));
        assert_eq!(p.duration, Some(std::time::Duration::from_secs(300)));
        assert_eq!(plan.request.max_tokens, Some(256));
        let text = describe(&plan);
        assert!(
            text.contains("api key: [redacted]") && !text.contains("EMPTY"),
            "{text}"
        );
        assert!(text.contains("~6000 requests"), "{text}");

        let o: Overrides = [("duration".to_string(), "60".to_string())].into();
        let plan = workload_plan(&configs(), Some("mock"), Some("m"), "low-load", &o).unwrap();
        assert!(plan.target.is_none(), "mock: the built-in server");
        assert_eq!(
            plan.phases[0].duration,
            Some(std::time::Duration::from_secs(60))
        );
        let err = workload_plan(
            &configs(),
            Some("nope"),
            Some("m"),
            "low-load",
            &Overrides::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("targets.yaml") && err.contains("vllm-local"),
            "{err}"
        );
    }
}
