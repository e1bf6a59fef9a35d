//! The workload DSL: the functions a script calls (`target`, `model`, `mock`, `request`,
//! `phase`, `ramp`, `steps`, `sweep`, `param`, `slo`, `assert`, `workload`) and the draft they
//! fill, which becomes the plan. Phase and sweep options are read in `phases`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::{Dynamic, Engine, FnPtr, Map};

use super::callbacks::{AssertDraft, Compiled, ScriptCheck, ScriptPrompt};
use super::opts::Opts;
use super::phases::{number, phase_options, sweep_phases};
use super::pool::PoolHandle;
use super::prompts::content_of;
use super::sessions::{ScriptSession, SessionDraft};
use super::shape::{body_fields, header_pairs};
use super::tokens::TokenizerSet;
use super::{Overrides, RhaiResult, ScriptError};
use crate::plan::{
    Assertion, Content, Endpoint, MockSpec, Phase, Plan, Prompt, RequestSpec, SessionSpec, Shape,
    Slo, Target, TelemetrySpec,
};

/// What the script's DSL calls have said so far.
#[derive(Default)]
pub struct Draft {
    pub(super) workload: Option<String>,
    pub(super) target: Option<Target>,
    pub(super) model: Option<String>,
    mock: Option<MockSpec>,
    request: Option<RequestDraft>,
    phases: Vec<Phase>,
    slo: Option<Slo>,
    assertions: Vec<(String, AssertDraft)>,
    overrides: Overrides,
    params: BTreeMap<String, String>,
    attainment: Option<f64>,
    repeat: Option<u32>,
    labels: crate::record::Labels,
    telemetry: Option<TelemetrySpec>,
}

pub type Shared = Arc<Mutex<Draft>>;

struct RequestDraft {
    endpoint: Endpoint,
    max_tokens: Option<u32>,
    stream: bool,
    timeout: Duration,
    prompt: PromptDraft,
    system: Option<String>,
    body: serde_json::Map<String, serde_json::Value>,
    headers: Vec<(String, String)>,
    seed: u64,
    tokenizer: Option<crate::plan::Tokenizer>,
}

/// What the DSL reads beside the script: files relative to its folder and its tokenizers.
#[derive(Clone)]
pub struct Files {
    pub base: std::path::PathBuf,
    pub tokens: Arc<TokenizerSet>,
}

impl RequestDraft {
    /// The request of a script whose phases all replay traces: the defaults, streamed chat.
    fn for_replays() -> Self {
        Self {
            endpoint: Endpoint::Chat,
            max_tokens: None,
            stream: true,
            timeout: Duration::from_secs(600),
            prompt: PromptDraft::Fixed(Content::Text(String::new())),
            system: None,
            body: serde_json::Map::new(),
            headers: Vec::new(),
            seed: 0,
            tokenizer: None,
        }
    }
}

enum PromptDraft {
    Fixed(Content),
    Function(FnPtr),
    Session(SessionDraft),
    Pool(PoolHandle),
}

impl Draft {
    pub fn new(overrides: Overrides) -> Self {
        Self {
            overrides,
            ..Self::default()
        }
    }

    pub(super) fn phase_count(&self) -> usize {
        self.phases.len()
    }

    /// Adds a phase made elsewhere (a replayed trace); its name must be new.
    pub(super) fn add_phase(&mut self, phase: Phase) -> Result<(), String> {
        if self.phases.iter().any(|p| p.name == phase.name) {
            return Err(format!(
                "phase {:?}: a phase with this name already exists",
                phase.name
            ));
        }
        self.phases.push(phase);
        Ok(())
    }

    /// Turns the draft into a plan, or says what the script still lacks.
    /// `prompts` runs the prompt function, `checks` the assertions (the same script).
    pub fn finish(
        self,
        path: &Path,
        prompts: Compiled,
        checks: Compiled,
    ) -> Result<Plan, ScriptError> {
        let whole = |m: String| ScriptError::whole(path, m);
        if let Some(name) = self
            .overrides
            .keys()
            .find(|k| !self.params.contains_key(*k))
        {
            let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
            return Err(whole(format!(
                "--set {name}: the script has no param(\"{name}\", ...); it declares: {}",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        }
        let replays_only =
            !self.phases.is_empty() && self.phases.iter().all(|p| p.replay.is_some());
        let request = match self.request {
            Some(r) => r,
            // Every request comes from a trace: the request's defaults, no prompt of its own.
            None if replays_only => RequestDraft::for_replays(),
            None => return Err(whole("the script defines no request: add request(#{ prompt: \"Hello\", max_tokens: 128 })".into())),
        };
        if self.phases.is_empty() {
            return Err(whole(
                "the script defines no phase: add phase(\"main\", #{ duration: 30, rps: 2, concurrency: 4 })".into(),
            ));
        }
        let cancel = prompts.cancel.clone();
        let prompt = match request.prompt {
            PromptDraft::Fixed(Content::Text(t)) => Prompt::Text(t),
            PromptDraft::Fixed(Content::Messages(m)) => Prompt::Messages(m),
            PromptDraft::Function(f) => {
                Prompt::Generated(Arc::new(ScriptPrompt::new(prompts, f, request.seed)))
            }
            PromptDraft::Session(d) => Prompt::Session(SessionSpec {
                pace: d.pace,
                generator: Arc::new(ScriptSession::new(prompts, d, request.seed)),
            }),
            PromptDraft::Pool(p) => Prompt::Generated(p.0),
        };
        let assertions = self
            .assertions
            .into_iter()
            .map(|(name, check)| Assertion {
                name: name.clone(),
                check: Arc::new(ScriptCheck {
                    script: checks.clone(),
                    name,
                    check,
                }),
            })
            .collect();
        let workload = self.workload.unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "workload".into(), |s| s.to_string_lossy().into_owned())
        });
        Ok(Plan {
            workload,
            target: self.target,
            model: self.model,
            known_models: Vec::new(),
            mock: self.mock.unwrap_or_default(),
            request: RequestSpec {
                endpoint: request.endpoint,
                max_tokens: request.max_tokens,
                stream: request.stream,
                prompt,
                system: request.system,
                body: request.body,
                headers: request.headers,
                timeout: request.timeout,
                tokenizer: request.tokenizer,
            },
            phases: self.phases,
            telemetry: self.telemetry.unwrap_or_default(),
            slo: self.slo,
            assertions,
            params: self.params,
            attainment: self.attainment,
            repeat: self.repeat,
            labels: self.labels,
            cancel,
        })
    }
}

pub(super) fn lock(d: &Shared) -> std::sync::MutexGuard<'_, Draft> {
    d.lock().expect("draft lock")
}

/// Registers the DSL functions of the run's shape (mock, telemetry, request, phases, params,
/// checks); `targets` registers those of where requests go.
pub fn register(engine: &mut Engine, draft: Shared, files: Files) {
    register_mock(engine, &draft);
    register_telemetry(engine, &draft);
    register_request(engine, &draft, &files);
    register_phases(engine, &draft);
    register_params(engine, &draft);
    register_checks(engine, &draft);
}

/// `mock`: the built-in mock server's pace.
fn register_mock(engine: &mut Engine, draft: &Shared) {
    let d = draft.clone();
    engine.register_fn("mock", move |map: Map| -> RhaiResult<()> {
        let mut o = Opts::new(
            "mock",
            map,
            &[
                "ttft_ms",
                "itl_ms",
                "output_tokens",
                "max_running",
                "prefix_cache",
                "block_tokens",
                "ttft_per_token_us",
            ],
        )?;
        let def = MockSpec::default();
        let spec = MockSpec {
            ttft_ms: o.non_negative("ttft_ms")?.unwrap_or(def.ttft_ms),
            itl_ms: o.non_negative("itl_ms")?.unwrap_or(def.itl_ms),
            output_tokens: o
                .count("output_tokens")?
                .map_or(def.output_tokens, |n| n as u32),
            max_running: match o.count("max_running")? {
                Some(0) => return Err("mock: max_running must be at least 1".into()),
                n => n.map(|n| n.min(u32::MAX as u64) as u32),
            },
            prefix_cache: o
                .count("prefix_cache")?
                .map_or(0, |n| n.min(u32::MAX as u64) as u32),
            block_tokens: match o.count("block_tokens")? {
                Some(0) => return Err("mock: block_tokens must be at least 1".into()),
                n => n.map_or(def.block_tokens, |n| n.min(4096) as u32),
            },
            ttft_per_token_us: o.non_negative("ttft_per_token_us")?.unwrap_or(0.0),
        };
        lock(&d).mock = Some(spec);
        Ok(())
    });
}

/// `telemetry`: Prometheus scrapes and NVML sampling during the run.
fn register_telemetry(engine: &mut Engine, draft: &Shared) {
    let d = draft.clone();
    engine.register_fn("telemetry", move |map: Map| -> RhaiResult<()> {
        let mut o = Opts::new(
            "telemetry",
            map,
            &["prometheus", "every_ms", "nvml", "gpus", "series"],
        )?;
        let strings = |o: &mut Opts, key: &str| -> RhaiResult<Vec<String>> {
            match o.take(key) {
                None => Ok(Vec::new()),
                Some(v) if v.is_string() => Ok(vec![v.into_string().expect("checked string")]),
                Some(v) if v.is_array() => v
                    .into_array()
                    .expect("checked array")
                    .into_iter()
                    .map(|x| {
                        x.into_string().map_err(|t| {
                            format!("telemetry: {key} must hold strings, not {t}").into()
                        })
                    })
                    .collect(),
                Some(v) => o.err(key, "a string or an array of strings", &v),
            }
        };
        let def = TelemetrySpec::default();
        let prometheus = strings(&mut o, "prometheus")?;
        let series = strings(&mut o, "series")?;
        let every = match o.count("every_ms")? {
            Some(n) if n < 10 => return Err("telemetry: every_ms must be at least 10".into()),
            Some(n) => Duration::from_millis(n),
            None => def.every,
        };
        let gpus = match o.take("gpus") {
            None => None,
            Some(v) if v.is_array() => Some(
                v.into_array()
                    .expect("checked array")
                    .into_iter()
                    .map(|x| {
                        x.as_int()
                            .ok()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| "telemetry: gpus must be GPU indices like [0, 1]".into())
                    })
                    .collect::<RhaiResult<Vec<u32>>>()?,
            ),
            Some(v) => return o.err("gpus", "an array of GPU indices", &v),
        };
        let nvml = o.bool("nvml")?.unwrap_or(def.nvml);
        lock(&d).telemetry = Some(TelemetrySpec {
            prometheus,
            every,
            nvml,
            gpus,
            series,
        });
        Ok(())
    });
}

/// `request`: what every request sends.
fn register_request(engine: &mut Engine, draft: &Shared, files: &Files) {
    let (d, tokens) = (draft.clone(), files.tokens.clone());
    engine.register_fn("request", move |map: Map| -> RhaiResult<()> {
        let request = request_options(map, &tokens)?;
        lock(&d).request = Some(request);
        Ok(())
    });
}

/// `phase`, `sweep` and the `ramp` and `steps` shapes their options take.
fn register_phases(engine: &mut Engine, draft: &Shared) {
    let d = draft.clone();
    engine.register_fn("phase", move |name: &str, map: Map| -> RhaiResult<()> {
        let mut draft = lock(&d);
        if draft.phases.iter().any(|p| p.name == name) {
            return Err(format!("phase {name:?}: a phase with this name already exists").into());
        }
        let index = draft.phases.len();
        draft.phases.push(phase_options(name, map, index)?);
        Ok(())
    });

    engine.register_type_with_name::<Shape>("Shape");
    engine.register_fn("ramp", |from: Dynamic, to: Dynamic| -> RhaiResult<Shape> {
        Ok(Shape::Linear {
            from: number(&from, "ramp: from")?,
            to: number(&to, "ramp: to")?,
        })
    });
    engine.register_fn("steps", |values: rhai::Array| -> RhaiResult<Shape> {
        if values.is_empty() {
            return Err("steps([]): give at least one value, e.g. steps([5, 10, 20])".into());
        }
        let v = values
            .iter()
            .map(|x| number(x, "steps: each value"))
            .collect::<RhaiResult<Vec<f64>>>()?;
        Ok(Shape::Steps(v))
    });
    let d = draft.clone();
    engine.register_fn("sweep", move |map: Map| -> RhaiResult<()> {
        let mut draft = lock(&d);
        if draft.phases.iter().any(|p| p.sweep.is_some()) {
            return Err("sweep: a script can hold one sweep".into());
        }
        let (phases, attainment) = sweep_phases(map, draft.phases.len())?;
        if let Some(p) = phases
            .iter()
            .find(|p| draft.phases.iter().any(|q| q.name == p.name))
        {
            return Err(format!("sweep: a phase named {:?} already exists", p.name).into());
        }
        draft.phases.extend(phases);
        draft.attainment = Some(attainment);
        Ok(())
    });
}

/// `param`: a script value that `--set NAME=VALUE` can change.
fn register_params(engine: &mut Engine, draft: &Shared) {
    let d = draft.clone();
    engine.register_fn("repeat", move |n: rhai::INT| -> RhaiResult<()> {
        if !(1..=1000).contains(&n) {
            return Err(format!("repeat({n}): give a number of trials from 1 to 1000").into());
        }
        lock(&d).repeat = Some(n as u32);
        Ok(())
    });
    let d = draft.clone();
    engine.register_fn(
        "label",
        move |key: &str, value: Dynamic| -> RhaiResult<()> {
            let value = value.to_string();
            crate::record::check_label(key, &value).map_err(|e| format!("label: {e}"))?;
            lock(&d).labels.insert(key.to_owned(), value);
            Ok(())
        },
    );
    let d = draft.clone();
    engine.register_fn(
        "param",
        move |name: &str, default: Dynamic| -> RhaiResult<Dynamic> {
            let mut draft = lock(&d);
            let value = match draft.overrides.get(name) {
                None => default,
                Some(text) => parse_like(name, text, &default)?,
            };
            draft.params.insert(name.to_owned(), value.to_string());
            Ok(value)
        },
    );
}

/// `slo` and `assert`: what the run is judged by.
fn register_checks(engine: &mut Engine, draft: &Shared) {
    let d = draft.clone();
    engine.register_fn("slo", move |map: Map| -> RhaiResult<()> {
        let mut o = Opts::new("slo", map, &["ttft_ms", "tpot_ms", "e2el_ms"])?;
        let slo = Slo {
            ttft_ms: o.positive("ttft_ms")?,
            tpot_ms: o.positive("tpot_ms")?,
            e2el_ms: o.positive("e2el_ms")?,
        };
        if slo == Slo::default() {
            return Err("slo: give at least one limit, e.g. #{ ttft_ms: 500, tpot_ms: 50 }".into());
        }
        lock(&d).slo = Some(slo);
        Ok(())
    });

    let d = draft.clone();
    engine.register_fn("assert", move |name: &str, f: FnPtr| {
        lock(&d)
            .assertions
            .push((name.to_owned(), AssertDraft::Bool(f)));
    });
    let d = draft.clone();
    engine.register_fn(
        "assert",
        move |name: &str, f: FnPtr, op: &str, limit: Dynamic| -> RhaiResult<()> {
            if !matches!(op, "<" | "<=" | ">" | ">=" | "==" | "!=") {
                return Err(format!(
                    "assert {name:?}: operator {op:?} is not known; use <, <=, >, >=, == or !="
                )
                .into());
            }
            let limit = limit
                .as_float()
                .or_else(|_| limit.as_int().map(|i| i as f64))
                .map_err(|t| format!("assert {name:?}: the limit must be a number, not {t}"))?;
            lock(&d).assertions.push((
                name.to_owned(),
                AssertDraft::Compare(f, op.to_owned(), limit),
            ));
            Ok(())
        },
    );
}

fn request_options(map: Map, tokens: &TokenizerSet) -> RhaiResult<RequestDraft> {
    let mut o = Opts::new(
        "request",
        map,
        &[
            "endpoint",
            "max_tokens",
            "prompt",
            "system",
            "body",
            "headers",
            "stream",
            "timeout",
            "seed",
            "tokenizer",
        ],
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
        None => return Err("request: prompt is required: a string, a list of messages, a function of the request index like |i| `Question ${i}: ...`, session(#{ ... }) or prefix_pool(#{ ... })".into()),
        Some(v) if v.is_fnptr() => PromptDraft::Function(v.cast::<FnPtr>()),
        Some(v) if v.is::<SessionDraft>() => PromptDraft::Session(v.cast::<SessionDraft>()),
        Some(v) if v.is::<PoolHandle>() => PromptDraft::Pool(v.cast::<PoolHandle>()),
        Some(v) => PromptDraft::Fixed(content_of(v).map_err(|e| format!("request: prompt: {e}"))?),
    };
    let system = o.string("system")?;
    if endpoint == Endpoint::Completions
        && (system.is_some() || matches!(prompt, PromptDraft::Fixed(Content::Messages(_))))
    {
        return Err("request: system and message lists need endpoint \"chat\"".into());
    }
    let body = match o.take("body") {
        None => serde_json::Map::new(),
        Some(v) => body_fields("request", v)?,
    };
    let headers = match o.take("headers") {
        None => Vec::new(),
        Some(v) => header_pairs("request", v)?,
    };
    let tokenizer = match o.string("tokenizer")? {
        None => None,
        Some(name) => Some(
            tokens
                .tokenizer(&name)
                .map_err(|e| format!("request: tokenizer: {e}"))?,
        ),
    };
    Ok(RequestDraft {
        endpoint,
        max_tokens: o
            .count("max_tokens")?
            .map(|n| n.min(u32::MAX as u64) as u32),
        stream: o.bool("stream")?.unwrap_or(true),
        timeout: Duration::from_secs_f64(o.positive("timeout")?.unwrap_or(600.0)),
        prompt,
        system,
        body,
        headers,
        seed: o.count("seed")?.unwrap_or(0),
        tokenizer,
    })
}

/// Parses a `--set` value as the same type as the param's default. A number may be given for
/// either kind of numeric default: a whole number stays an integer for an integer default
/// (`--set n=3`) and becomes a float for a float one; a fraction for an integer default
/// (`--set from=2.5` where the script wrote `param("from", 2)`) gives a float.
fn parse_like(name: &str, text: &str, default: &Dynamic) -> RhaiResult<Dynamic> {
    let bad = |kind: &str| -> Box<rhai::EvalAltResult> {
        format!("--set {name}={text}: param {name:?} is {kind} (its default is {default})").into()
    };
    let number = || {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| bad("a number"))
    };
    if default.is_int() {
        match text.trim().parse::<i64>() {
            Ok(n) => Ok(Dynamic::from(n)),
            Err(_) => number().map(Dynamic::from),
        }
    } else if default.is_float() {
        number().map(Dynamic::from)
    } else if default.is_bool() {
        text.parse::<bool>()
            .map(Dynamic::from)
            .map_err(|_| bad("true or false"))
    } else if default.is_string() {
        Ok(Dynamic::from(text.to_owned()))
    } else {
        Err(format!(
            "param {name:?}: the default must be a number, true/false or a string, not {}",
            default.type_name()
        )
        .into())
    }
}
