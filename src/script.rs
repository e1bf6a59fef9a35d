//! Workload scripts: a sandboxed Rhai engine and the DSL that turns a script into a `Plan`.
//!
//! A script is evaluated once. Its DSL calls (`target`, `model`, `request`, `phase`, `mock`,
//! `workload`) fill a draft, which becomes the plan; a prompt given as a function stays callable
//! through `PromptGenerator`. Option maps are checked strictly: an unknown key is an error, so a
//! typo never falls back to a default. Every error names file, line and column, with the line.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::{AST, Dynamic, Engine, EvalAltResult, FnPtr, Map, Position};

use crate::config::Configs;
use crate::plan::{
    ApiKey, Arrival, Endpoint, MockSpec, Phase, Plan, Prompt, PromptGenerator, RequestSpec, Target,
    TelemetrySpec,
};

/// A script that could not be evaluated into a plan.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}{excerpt}")]
pub struct ScriptError {
    /// `file:line:col`, or just the file when there is no position.
    pub location: String,
    pub message: String,
    /// The offending line and a caret under the column, when known.
    pub excerpt: String,
}

impl ScriptError {
    fn at(path: &Path, source: Option<&str>, pos: Position, message: String) -> Self {
        let file = path.display().to_string();
        match (pos.line(), pos.position()) {
            (Some(line), col) => {
                let col = col.unwrap_or(1);
                let excerpt = source
                    .and_then(|s| s.lines().nth(line - 1))
                    .map(|text| {
                        let pad = " ".repeat(col.saturating_sub(1));
                        format!("\n  {line:>4} | {text}\n       | {pad}^")
                    })
                    .unwrap_or_default();
                Self {
                    location: format!("{file}:{line}:{col}"),
                    message,
                    excerpt,
                }
            }
            (None, _) => Self {
                location: file,
                message,
                excerpt: String::new(),
            },
        }
    }

    fn from_rhai(path: &Path, source: Option<&str>, err: &EvalAltResult) -> Self {
        let (message, pos) = innermost(err);
        Self::at(path, source, pos, message)
    }
}

/// The message of the innermost error and the most precise position known.
fn innermost(err: &EvalAltResult) -> (String, Position) {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, pos)
        | EvalAltResult::ErrorInModule(_, inner, pos) => {
            let (msg, inner_pos) = innermost(inner);
            (msg, if inner_pos.is_none() { *pos } else { inner_pos })
        }
        EvalAltResult::ErrorRuntime(value, pos) => (value.to_string(), *pos),
        other => {
            // Display appends " (line L, position C)"; the location is shown separately.
            let pos = other.position();
            let text = other.to_string();
            let suffix = format!(" ({pos})");
            (text.strip_suffix(&suffix).unwrap_or(&text).to_owned(), pos)
        }
    }
}

/// What the script's DSL calls have said so far.
#[derive(Default)]
struct Draft {
    workload: Option<String>,
    target: Option<Target>,
    model: Option<String>,
    mock: Option<MockSpec>,
    request: Option<RequestDraft>,
    phases: Vec<Phase>,
}

struct RequestDraft {
    endpoint: Endpoint,
    max_tokens: Option<u32>,
    stream: bool,
    timeout: Duration,
    prompt: PromptDraft,
}

enum PromptDraft {
    Text(String),
    Function(FnPtr),
}

type Shared = Arc<Mutex<Draft>>;
type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Evaluates the script at `path` into a plan. `configs` resolves `target("name")` and
/// `model("name")`.
pub fn load(path: &Path, configs: &Configs) -> Result<Plan, ScriptError> {
    let source = std::fs::read_to_string(path).map_err(|e| ScriptError {
        location: path.display().to_string(),
        message: format!("cannot read the script: {e}"),
        excerpt: String::new(),
    })?;
    let draft: Shared = Arc::default();
    let engine = Arc::new(engine(path, configs.clone(), draft.clone()));
    let ast = engine
        .compile(&source)
        .map_err(|e| ScriptError::at(path, Some(&source), e.1, e.0.to_string()))?;
    let ast = Arc::new(ast);
    engine
        .run_ast(&ast)
        .map_err(|e| ScriptError::from_rhai(path, Some(&source), &e))?;
    let draft = std::mem::take(&mut *draft.lock().expect("draft lock"));
    finish(path, draft, engine, ast)
}

fn finish(path: &Path, d: Draft, engine: Arc<Engine>, ast: Arc<AST>) -> Result<Plan, ScriptError> {
    let whole = |message: &str| ScriptError::at(path, None, Position::NONE, message.to_owned());
    let request = d.request.ok_or_else(|| {
        whole("the script defines no request: add request(#{ prompt: \"Hello\", max_tokens: 128 })")
    })?;
    if d.phases.is_empty() {
        return Err(whole(
            "the script defines no phase: add phase(\"main\", #{ duration: 30, rps: 2, concurrency: 4 })",
        ));
    }
    let prompt = match request.prompt {
        PromptDraft::Text(t) => Prompt::Text(t),
        PromptDraft::Function(f) => Prompt::Generated(Arc::new(ScriptPrompt {
            file: path.to_owned(),
            engine,
            ast,
            f,
        })),
    };
    let workload = d.workload.unwrap_or_else(|| {
        path.file_stem()
            .map_or_else(|| "workload".into(), |s| s.to_string_lossy().into_owned())
    });
    Ok(Plan {
        workload,
        target: d.target,
        model: d.model,
        mock: d.mock.unwrap_or_default(),
        request: RequestSpec {
            endpoint: request.endpoint,
            max_tokens: request.max_tokens,
            stream: request.stream,
            prompt,
            timeout: request.timeout,
        },
        phases: d.phases,
        telemetry: TelemetrySpec::default(),
    })
}

/// A prompt function defined in a script.
struct ScriptPrompt {
    file: PathBuf,
    engine: Arc<Engine>,
    ast: Arc<AST>,
    f: FnPtr,
}

impl PromptGenerator for ScriptPrompt {
    fn generate(&self, index: u64) -> Result<String, String> {
        let v: Dynamic = self
            .f
            .call(&self.engine, &self.ast, (index as i64,))
            .map_err(|e| {
                let source = std::fs::read_to_string(&self.file).ok();
                ScriptError::from_rhai(&self.file, source.as_deref(), &e).to_string()
            })?;
        if v.is_string() {
            Ok(v.into_string().expect("checked string"))
        } else {
            Err(format!(
                "{}: the prompt function returned {} for request {index}; it must return a string",
                self.file.display(),
                v.type_name()
            ))
        }
    }

    fn describe(&self) -> String {
        format!("function {} in {}", self.f.fn_name(), self.file.display())
    }
}

/// A sandboxed engine with the DSL registered.
fn engine(path: &Path, configs: Configs, draft: Shared) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(50_000_000)
        .set_max_call_levels(64)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(16 * 1024 * 1024)
        .set_max_array_size(1_000_000)
        .set_max_map_size(100_000)
        .set_max_modules(100);
    engine.disable_symbol("eval");
    let base = path.parent().unwrap_or(Path::new(".")).to_owned();
    engine.set_module_resolver(rhai::module_resolvers::FileModuleResolver::new_with_path(
        base,
    ));
    engine.on_print(|s| eprintln!("{s}"));
    engine.on_debug(|s, src, pos| eprintln!("[debug {}{pos:?}] {s}", src.unwrap_or("")));

    let d = draft.clone();
    engine.register_fn("workload", move |name: &str| {
        d.lock().expect("draft lock").workload = Some(name.to_owned());
    });

    let (d, c) = (draft.clone(), configs.clone());
    engine.register_fn("target", move |name: &str| -> RhaiResult<()> {
        let t = c.target(name).map_err(|e| e.to_string())?;
        d.lock().expect("draft lock").target = Some(t);
        Ok(())
    });
    let d = draft.clone();
    engine.register_fn("target", move |map: Map| -> RhaiResult<()> {
        let mut o = Opts::new("target", map, &["name", "base_url", "api_key_env"])?;
        let base_url = o
            .string("base_url")?
            .ok_or("target: base_url is required, e.g. \"http://127.0.0.1:8000/v1\"")?;
        let name = o.string("name")?.unwrap_or_else(|| host_of(&base_url));
        let api_key = match o.string("api_key_env")? {
            None => None,
            Some(var) => Some(ApiKey::new(std::env::var(&var).map_err(|_| {
                format!("target: api_key_env names {var}, which is not set; export {var}=<key>")
            })?)),
        };
        d.lock().expect("draft lock").target = Some(Target {
            name,
            base_url,
            api_key,
        });
        Ok(())
    });

    let (d, c) = (draft.clone(), configs);
    engine.register_fn("model", move |name: &str| -> RhaiResult<()> {
        let full = c.model(name).map_err(|e| e.to_string())?;
        d.lock().expect("draft lock").model = Some(full);
        Ok(())
    });

    let d = draft.clone();
    engine.register_fn("mock", move |map: Map| -> RhaiResult<()> {
        let mut o = Opts::new("mock", map, &["ttft_ms", "itl_ms", "output_tokens"])?;
        let def = MockSpec::default();
        let spec = MockSpec {
            ttft_ms: o.non_negative("ttft_ms")?.unwrap_or(def.ttft_ms),
            itl_ms: o.non_negative("itl_ms")?.unwrap_or(def.itl_ms),
            output_tokens: o
                .count("output_tokens")?
                .map_or(def.output_tokens, |n| n as u32),
        };
        d.lock().expect("draft lock").mock = Some(spec);
        Ok(())
    });

    let d = draft.clone();
    engine.register_fn("request", move |map: Map| -> RhaiResult<()> {
        let mut o = Opts::new(
            "request",
            map,
            &["endpoint", "max_tokens", "prompt", "stream", "timeout"],
        )?;
        let endpoint = match o.string("endpoint")?.as_deref() {
            None | Some("chat") => Endpoint::Chat,
            Some("completions") => Endpoint::Completions,
            Some(other) => {
                return Err(format!(
                    "request: endpoint {other:?} is not known; use \"chat\" or \"completions\""
                )
                .into());
            }
        };
        let prompt = match o.take("prompt") {
            None => return Err("request: prompt is required: a string, or a function of the request index like |i| `Question ${i}: ...`".into()),
            Some(v) if v.is_string() => PromptDraft::Text(v.into_string().expect("checked string")),
            Some(v) if v.is_fnptr() => PromptDraft::Function(v.cast::<FnPtr>()),
            Some(v) => {
                return Err(format!(
                    "request: prompt must be a string or a function, not {}",
                    v.type_name()
                )
                .into());
            }
        };
        let max_tokens = o.count("max_tokens")?.map(|n| n.min(u32::MAX as u64) as u32);
        let stream = o.bool("stream")?.unwrap_or(true);
        let timeout = o.positive("timeout")?.unwrap_or(600.0);
        d.lock().expect("draft lock").request = Some(RequestDraft {
            endpoint,
            max_tokens,
            stream,
            timeout: Duration::from_secs_f64(timeout),
            prompt,
        });
        Ok(())
    });

    let d = draft;
    engine.register_fn("phase", move |name: &str, map: Map| -> RhaiResult<()> {
        let what = format!("phase {name:?}");
        let mut o = Opts::new(
            &what,
            map,
            &[
                "duration",
                "requests",
                "rps",
                "concurrency",
                "arrival",
                "seed",
                "warmup",
            ],
        )?;
        let duration = o.positive("duration")?.map(Duration::from_secs_f64);
        let requests = o.count("requests")?;
        if duration.is_none() && requests.is_none() {
            return Err(format!(
                "{what}: give a duration (seconds) or a number of requests, e.g. #{{ duration: 30 }}"
            )
            .into());
        }
        if requests == Some(0) {
            return Err(format!("{what}: requests must be at least 1").into());
        }
        let rate = o.positive("rps")?;
        let concurrency = o.count("concurrency")?;
        if concurrency == Some(0) {
            return Err(format!("{what}: concurrency must be at least 1").into());
        }
        let arrival = match o.string("arrival")?.as_deref() {
            None | Some("constant") => Arrival::Constant,
            Some("poisson") => Arrival::Poisson,
            Some(other) => {
                return Err(format!(
                    "{what}: arrival {other:?} is not known; use \"constant\" or \"poisson\""
                )
                .into());
            }
        };
        if rate.is_none() && o.was_given("arrival") {
            return Err(format!("{what}: arrival needs a rate; add rps").into());
        }
        let mut draft = d.lock().expect("draft lock");
        if draft.phases.iter().any(|p| p.name == name) {
            return Err(format!("{what}: a phase with this name already exists").into());
        }
        let seed = o.count("seed")?.unwrap_or(draft.phases.len() as u64);
        let warmup = o.bool("warmup")?.unwrap_or(false);
        draft.phases.push(Phase {
            name: name.to_owned(),
            duration,
            requests,
            rate,
            concurrency: concurrency.map(|c| c.min(u32::MAX as u64) as u32),
            arrival,
            seed,
            warmup,
        });
        Ok(())
    });
    engine
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(url)
        .to_owned()
}

/// An option map being read; unknown keys are rejected up front.
struct Opts {
    what: String,
    map: Map,
    given: Vec<String>,
}

impl Opts {
    fn new(what: &str, map: Map, allowed: &[&str]) -> RhaiResult<Self> {
        if let Some(bad) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "{what}: unknown option {:?}; allowed: {}",
                bad.as_str(),
                allowed.join(", ")
            )
            .into());
        }
        let given = map.keys().map(|k| k.to_string()).collect();
        Ok(Self {
            what: what.to_owned(),
            map,
            given,
        })
    }

    fn was_given(&self, key: &str) -> bool {
        self.given.iter().any(|k| k == key)
    }

    fn take(&mut self, key: &str) -> Option<Dynamic> {
        self.map.remove(key).filter(|v| !v.is_unit())
    }

    fn err<T>(&self, key: &str, wanted: &str, got: &Dynamic) -> RhaiResult<T> {
        Err(format!(
            "{}: {key} must be {wanted}, not {}",
            self.what,
            got.type_name()
        )
        .into())
    }

    fn number(&mut self, key: &str) -> RhaiResult<Option<f64>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_int() => Ok(Some(v.as_int().expect("checked int") as f64)),
            Some(v) if v.is_float() => Ok(Some(v.as_float().expect("checked float"))),
            Some(v) => self.err(key, "a number", &v),
        }
    }

    fn positive(&mut self, key: &str) -> RhaiResult<Option<f64>> {
        match self.number(key)? {
            Some(x) if !(x > 0.0 && x.is_finite()) => {
                Err(format!("{}: {key} must be greater than 0, not {x}", self.what).into())
            }
            x => Ok(x),
        }
    }

    fn non_negative(&mut self, key: &str) -> RhaiResult<Option<f64>> {
        match self.number(key)? {
            Some(x) if !(x >= 0.0 && x.is_finite()) => {
                Err(format!("{}: {key} must be 0 or more, not {x}", self.what).into())
            }
            x => Ok(x),
        }
    }

    fn count(&mut self, key: &str) -> RhaiResult<Option<u64>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_int() => {
                let n = v.as_int().expect("checked int");
                u64::try_from(n)
                    .map(Some)
                    .map_err(|_| format!("{}: {key} must be 0 or more, not {n}", self.what).into())
            }
            Some(v) => self.err(key, "a whole number", &v),
        }
    }

    fn bool(&mut self, key: &str) -> RhaiResult<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_bool() => Ok(v.as_bool().ok()),
            Some(v) => self.err(key, "true or false", &v),
        }
    }

    fn string(&mut self, key: &str) -> RhaiResult<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.into_string().expect("checked string"))),
            Some(v) => self.err(key, "a string", &v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_src(src: &str) -> Result<Plan, ScriptError> {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("w.rhai");
        std::fs::write(&path, src).unwrap();
        load(&path, &Configs::new(d.path().join("configs")))
    }

    #[test]
    fn a_full_script_becomes_a_plan() {
        let plan = load_src(
            r#"
            target(#{ base_url: "http://127.0.0.1:9/v1" });
            model("m1");
            mock(#{ ttft_ms: 20, itl_ms: 5.5, output_tokens: 10 });
            request(#{ endpoint: "completions", max_tokens: 32, prompt: |i| `Q${i}`, stream: false, timeout: 30 });
            phase("warm", #{ requests: 5, concurrency: 1, warmup: true });
            phase("steady", #{ duration: 10, rps: 20, concurrency: 8, arrival: "poisson", seed: 9 });
            "#,
        )
        .unwrap();
        assert_eq!(plan.workload, "w");
        assert_eq!(plan.target.as_ref().unwrap().name, "127.0.0.1:9");
        assert_eq!(plan.model.as_deref(), Some("m1"));
        assert_eq!(plan.mock.itl_ms, 5.5);
        assert_eq!(plan.request.endpoint, Endpoint::Completions);
        assert_eq!(plan.request.max_tokens, Some(32));
        assert!(!plan.request.stream);
        assert_eq!(plan.request.timeout, Duration::from_secs(30));
        let Prompt::Generated(g) = &plan.request.prompt else {
            panic!("a function prompt")
        };
        assert_eq!(g.generate(7).unwrap(), "Q7");
        assert_eq!(plan.phases.len(), 2);
        assert!(plan.phases[0].warmup && !plan.phases[0].is_open_loop());
        let p = &plan.phases[1];
        assert_eq!(p.rate, Some(20.0));
        assert_eq!(p.concurrency, Some(8));
        assert_eq!(p.arrival, Arrival::Poisson);
        assert_eq!(p.seed, 9);
        assert_eq!(plan.expected_requests(), Some(205));
    }

    #[test]
    fn unknown_keys_are_errors_with_file_line_and_column() {
        let err =
            load_src("request(#{ prompt: \"x\" });\nphase(\"a\", #{ duration: 1, rsp: 5 });\n")
                .unwrap_err();
        let text = err.to_string();
        assert!(err.location.ends_with("w.rhai:2:1"), "{text}");
        assert!(text.contains("unknown option \"rsp\""), "{text}");
        assert!(text.contains("phase(\"a\""), "the line is shown: {text}");
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let err = load_src("request(#{ prompt: \"x\" };\n").unwrap_err();
        assert!(err.location.contains("w.rhai:1:"), "{err}");
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        for (src, needle) in [
            ("phase(\"a\", #{ rps: 5 });", "give a duration"),
            ("phase(\"a\", #{ duration: -1 });", "greater than 0"),
            (
                "phase(\"a\", #{ duration: 1, rps: \"fast\" });",
                "rps must be a number",
            ),
            (
                "phase(\"a\", #{ duration: 1, arrival: \"poisson\" });",
                "needs a rate",
            ),
            (
                "phase(\"a\", #{ duration: 1, rps: 1, arrival: \"bursty\" });",
                "constant",
            ),
            (
                "phase(\"a\", #{ duration: 1 }); phase(\"a\", #{ duration: 1 });",
                "already exists",
            ),
            (
                "request(#{ endpoint: \"embeddings\", prompt: \"x\" });",
                "chat",
            ),
            ("request(#{ max_tokens: 3 });", "prompt is required"),
            ("request(#{ prompt: 5 });", "string or a function"),
            ("target(#{ name: \"x\" });", "base_url is required"),
            (
                "target(#{ base_url: \"http://h/v1\", api_key_env: \"LLMBENCH_UNSET_VAR_X\" });",
                "not set",
            ),
            ("request(#{ prompt: \"x\" });", "no phase"),
            ("phase(\"a\", #{ duration: 1 });", "no request"),
            ("let x = 0; loop { x += 1; }", "operations"),
        ] {
            let err = load_src(src).unwrap_err().to_string();
            assert!(err.contains(needle), "{src}\n  => {err}");
        }
    }

    #[test]
    fn a_failing_prompt_function_names_the_script() {
        let plan = load_src(
            "request(#{ prompt: |i| if i > 1 { throw \"no more\" } else { `p${i}` } });\nphase(\"a\", #{ requests: 3 });",
        )
        .unwrap();
        let Prompt::Generated(g) = &plan.request.prompt else {
            panic!()
        };
        assert_eq!(g.generate(0).unwrap(), "p0");
        let err = g.generate(2).unwrap_err();
        assert!(
            err.contains("w.rhai:1:") && err.contains("no more"),
            "{err}"
        );
    }
}
