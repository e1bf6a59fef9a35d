//! The commands around the run pipeline: `check` (evaluate a script and print its plan),
//! `run --target --model --workload` (the original tool's command, reading configs/*.yaml) and
//! interactive mode. A `workloads.yaml` entry becomes a plan through the shipped script library
//! (`lib/workloads`), so one definition of "the original tool's workload" serves all three.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::cli::{CheckArgs, RunArgs, WorkloadArgs};
use super::{EXIT_OK, EXIT_USAGE, exit_code, run_with_flags, usage_error};
use crate::config::{Configs, Workload};
use crate::plan::{Plan, Prompt, RequestSpec};
use crate::run::RunError;
use crate::script::{self, Overrides};
use crate::settings::LoadFlags;

/// Prompt and answer lengths the original tool's workloads use unless overridden.
pub const DEFAULT_INPUT_TOKENS: u32 = 256;
pub const DEFAULT_OUTPUT_TOKENS: u32 = 256;

/// `llmbench check SCRIPT`: prints the plan, sends nothing.
pub fn check(args: &CheckArgs) -> u8 {
    let overrides: Overrides = args.set.iter().cloned().collect();
    let access = super::access(args.api_key_env.as_deref());
    match script::load_with_access(
        &args.script,
        &Configs::new(&args.configs),
        &overrides,
        &access,
    ) {
        Ok(plan) => {
            print!("{}", describe(&plan));
            EXIT_OK
        }
        Err(e) => usage_error(e),
    }
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

/// The script a `workloads.yaml` entry runs as. `target` `None`: the built-in mock server.
pub fn workload_source(target: Option<&str>, model: &str, w: &Workload) -> String {
    let mut s = String::from("import \"lib/workloads\" as workloads;\n");
    if let Some(t) = target {
        let _ = writeln!(s, "target({t:?});");
    }
    let _ = writeln!(s, "model({model:?});");
    let _ = writeln!(
        s,
        "workloads::open_loop({name:?}, param(\"rps\", {rps:?}), param(\"concurrency\", {c}), \
         param(\"duration\", {d:?}), param(\"input_tokens\", {DEFAULT_INPUT_TOKENS}), \
         param(\"output_tokens\", {DEFAULT_OUTPUT_TOKENS}));",
        name = w.name,
        rps = w.rps,
        c = w.concurrency,
        d = w.duration,
    );
    s
}

/// The plan for `run --target --model --workload`.
pub fn workload_plan(
    configs: &Configs,
    target: &str,
    model: &str,
    workload: &str,
    overrides: &Overrides,
) -> Result<Plan, RunError> {
    let w = configs.workload(workload)?;
    let names = configs.target_names()?;
    let target = if target == "mock" && !names.iter().any(|n| n == "mock") {
        None
    } else {
        // Fails with the list of known targets when the name is not there.
        configs.target(target)?;
        Some(target)
    };
    let source = workload_source(target, model, &w);
    let path = PathBuf::from(format!("run --workload {workload}"));
    Ok(script::load_source(&path, &source, configs, overrides)?)
}

/// `llmbench run --target T --model M --workload W`.
pub async fn run_workload(args: &WorkloadArgs) -> u8 {
    let configs = Configs::new(&args.load.output.configs);
    let overrides: Overrides = args.set.iter().cloned().collect();
    let plan = workload_plan(
        &configs,
        &args.target,
        &args.model,
        &args.workload,
        &overrides,
    );
    match plan {
        Ok(plan) => run_plan(plan, &args.workload, &args.load).await,
        Err(e) => usage_error(e),
    }
}

async fn run_plan(plan: Plan, workload: &str, load: &LoadFlags) -> u8 {
    let label = format!("run --workload {workload}");
    exit_code(&run_with_flags(plan, load, None, &label).await)
}

/// `llmbench` with no script: interactive in a terminal, a usage error otherwise.
pub async fn no_script(args: &RunArgs) -> u8 {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        interactive(&args.load).await
    } else {
        eprintln!(
            "llmbench: no script given: run llmbench SCRIPT.rhai (e.g. scripts/quickstart.rhai), \
             llmbench run --target T --model M --workload W, or llmbench interactive in a terminal"
        );
        EXIT_USAGE
    }
}

/// What interactive mode decided to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub target: String,
    pub model: String,
    pub workload: String,
    pub set: Vec<(String, String)>,
}

impl Choice {
    /// The `llmbench run ...` command line that runs the same thing.
    pub fn command_line(&self, configs: &Path) -> String {
        let mut s = format!(
            "llmbench run --target {} --model {} --workload {}",
            quote(&self.target),
            quote(&self.model),
            quote(&self.workload)
        );
        for (k, v) in &self.set {
            let _ = write!(s, " --set {k}={}", quote(v));
        }
        if configs != Path::new("configs") {
            let _ = write!(s, " --configs {}", quote(&configs.display().to_string()));
        }
        s
    }
}

fn quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `llmbench interactive`.
pub async fn interactive(load: &LoadFlags) -> u8 {
    let configs = Configs::new(&load.output.configs);
    let choice = match ask(&configs) {
        Ok(Some(c)) => c,
        Ok(None) => return EXIT_OK,
        Err(e) => return usage_error(e),
    };
    let overrides: Overrides = choice.set.iter().cloned().collect();
    match workload_plan(
        &configs,
        &choice.target,
        &choice.model,
        &choice.workload,
        &overrides,
    ) {
        Ok(plan) => run_plan(plan, &choice.workload, load).await,
        Err(e) => usage_error(e),
    }
}

/// Asks the questions; `None` when the user declines to start.
fn ask(configs: &Configs) -> Result<Option<Choice>, String> {
    use dialoguer::Confirm;
    let target = choose_target(configs)?;
    let model = choose_model(configs)?;
    let w = choose_workload(configs)?;
    let mut set = Vec::new();
    if Confirm::new()
        .with_prompt("Customize duration, rps, concurrency or token counts?")
        .default(false)
        .interact()
        .map_err(io)?
    {
        set = customize(&w)?;
    }
    let choice = Choice {
        target,
        model,
        workload: w.name.clone(),
        set,
    };
    eprintln!(
        "\nThe same run from the command line:\n  {}\n",
        choice.command_line(configs.dir())
    );
    let go = Confirm::new()
        .with_prompt("Start the run?")
        .default(true)
        .interact()
        .map_err(io)?;
    Ok(go.then_some(choice))
}

/// A prompt that could not be shown, as interactive mode reports it.
fn io(e: dialoguer::Error) -> String {
    format!("interactive mode needs a terminal: {e}")
}

/// Asks for a target: those in `targets.yaml`, then the built-in mock.
fn choose_target(configs: &Configs) -> Result<String, String> {
    let mut targets = configs.target_names().map_err(|e| e.to_string())?;
    targets.push("mock".into());
    let labels: Vec<String> = targets
        .iter()
        .map(|t| {
            if t == "mock" {
                "mock (the built-in mock server)".into()
            } else {
                t.clone()
            }
        })
        .collect();
    let t = dialoguer::Select::new()
        .with_prompt("Target")
        .items(&labels)
        .default(0)
        .interact()
        .map_err(io)?;
    Ok(targets[t].clone())
}

/// Asks for a model: those in `models.yaml`, or the mock's when there are none.
fn choose_model(configs: &Configs) -> Result<String, String> {
    let mut models = configs.model_names().map_err(|e| e.to_string())?;
    if models.is_empty() {
        models.push(crate::mock::MOCK_MODEL.into());
    }
    let m = dialoguer::Select::new()
        .with_prompt("Model")
        .items(&models)
        .default(0)
        .interact()
        .map_err(io)?;
    Ok(models[m].clone())
}

/// Asks for a workload from `workloads.yaml` (`high-load` first when there is one).
fn choose_workload(configs: &Configs) -> Result<Workload, String> {
    let workloads = configs.workloads().map_err(|e| e.to_string())?;
    let names: Vec<String> = workloads
        .iter()
        .map(|w| {
            format!(
                "{} ({} req/s, concurrency {}, {} s)",
                w.name, w.rps, w.concurrency, w.duration
            )
        })
        .collect();
    let default = workloads
        .iter()
        .position(|w| w.name == "high-load")
        .unwrap_or(0);
    let wi = dialoguer::Select::new()
        .with_prompt("Workload")
        .items(&names)
        .default(default)
        .interact()
        .map_err(io)?;
    Ok(workloads[wi].clone())
}

/// Asks for the workload's numbers; the `--set` pairs of those that differ from its own.
fn customize(w: &Workload) -> Result<Vec<(String, String)>, String> {
    use dialoguer::Input;
    let mut set = Vec::new();
    let duration: f64 = Input::new()
        .with_prompt("Duration (s)")
        .default(w.duration)
        .interact_text()
        .map_err(io)?;
    let rps: f64 = Input::new()
        .with_prompt("Requests per second")
        .default(w.rps)
        .interact_text()
        .map_err(io)?;
    let conc: u32 = Input::new()
        .with_prompt("Concurrency")
        .default(w.concurrency)
        .interact_text()
        .map_err(io)?;
    let input: u32 = Input::new()
        .with_prompt("Input tokens")
        .default(DEFAULT_INPUT_TOKENS)
        .interact_text()
        .map_err(io)?;
    let out: u32 = Input::new()
        .with_prompt("Output tokens")
        .default(DEFAULT_OUTPUT_TOKENS)
        .interact_text()
        .map_err(io)?;
    let mut put = |k: &str, v: String, d: String| {
        if v != d {
            set.push((k.to_owned(), v));
        }
    };
    put(
        "duration",
        format!("{duration:?}"),
        format!("{:?}", w.duration),
    );
    put("rps", format!("{rps:?}"), format!("{:?}", w.rps));
    put("concurrency", conc.to_string(), w.concurrency.to_string());
    put(
        "input_tokens",
        input.to_string(),
        DEFAULT_INPUT_TOKENS.to_string(),
    );
    put(
        "output_tokens",
        out.to_string(),
        DEFAULT_OUTPUT_TOKENS.to_string(),
    );
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs() -> Configs {
        Configs::new(concat!(env!("CARGO_MANIFEST_DIR"), "/configs"))
    }

    #[test]
    fn a_workload_entry_becomes_the_original_tools_plan() {
        let plan = workload_plan(
            &configs(),
            "vllm-local",
            "llama-3.1-8b-instruct",
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
        assert_eq!(plan.request.max_tokens, Some(DEFAULT_OUTPUT_TOKENS));
        let text = describe(&plan);
        assert!(
            text.contains("api key: [redacted]") && !text.contains("EMPTY"),
            "{text}"
        );
        assert!(text.contains("~6000 requests"), "{text}");

        let o: Overrides = [("duration".to_string(), "60".to_string())].into();
        let plan = workload_plan(&configs(), "mock", "m", "low-load", &o).unwrap();
        assert!(plan.target.is_none(), "mock: the built-in server");
        assert_eq!(
            plan.phases[0].duration,
            Some(std::time::Duration::from_secs(60))
        );
        let err = workload_plan(&configs(), "nope", "m", "low-load", &Overrides::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("targets.yaml") && err.contains("vllm-local"),
            "{err}"
        );
    }

    #[test]
    fn the_equivalent_command_line_is_quoted() {
        let c = Choice {
            target: "vllm-local".into(),
            model: "my model".into(),
            workload: "high-load".into(),
            set: vec![("duration".into(), "60.0".into())],
        };
        assert_eq!(
            c.command_line(Path::new("configs")),
            "llmbench run --target vllm-local --model 'my model' --workload high-load --set duration=60.0"
        );
    }
}
