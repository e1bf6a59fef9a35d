//! Workload scripts: the sandboxed Rhai engine that turns a script into a `Plan`.
//!
//! A script is evaluated once. Its DSL calls (`dsl`) fill a draft, which becomes the plan;
//! functions it hands over (prompt generators, assertions) stay callable through the plan's
//! `PromptGenerator` and `StatsCheck` traits (`callbacks`). Prompt built-ins live in `prompts`,
//! imports in `library`, the built-in scripts in `shipped`, strict option maps in `opts`. The engine is sandboxed: no file access
//! beyond `dataset(...)` and imports, no network, limits on operations, depth and sizes. Every
//! error names file, line and column, with the offending line.
//!
//! Hostile scripts (see `budget`): evaluation, each prompt call and each assertion call run
//! within a wall clock ([`EVAL_BUDGET`], [`PROMPT_BUDGET`], [`ASSERT_BUDGET`]) and a memory budget
//! ([`MEMORY_BUDGET`], every collection and map key counted), checked before every operation.
//! Files a script reads (imports, datasets, tokenizers) must lie inside the folder they were
//! found in, links followed; an import must be a `.rhai` file.
//!
//! What the caller grants, through [`Access`] and [`load_with_access`] / [`load_source_with`]:
//! - `allow_env`: environment variables the script may read as `target(#{ api_key_env })`, e.g.
//!   `Access::from_env().allowing(var)` for `--api-key-env VAR`. Variables `configs/targets.yaml`
//!   reads (`${VAR}`) are allowed too, and `Access::from_env` adds those listed in
//!   `LLMBENCH_ALLOW_ENV` (comma-separated). Any other is an error naming `--api-key-env`.
//!   `load`, `load_with` and `load_source` use `Access::from_env()`.
//! - `cancel`: a [`Cancel`] handle; `access.cancel.cancel()` (e.g. on Ctrl-C) stops the prompt or
//!   assertion call running now at its next operation ("... was cancelled") and makes every
//!   later call of that plan fail at once. Clones share the flag; keep one before loading.

mod blocks;
mod budget;
mod callbacks;
pub mod dataset;
mod dsl;
pub mod lengths;
mod library;
mod opts;
mod phases;
mod pool;
pub mod prompts;
mod sessions;
mod shape;
pub mod shipped;
mod targets;
pub mod tokens;
pub mod trace;
mod words;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rhai::{Engine, EvalAltResult, Position};

use crate::config::Configs;
use crate::plan::Plan;

pub use budget::{ASSERT_BUDGET, Cancel, EVAL_BUDGET, MEMORY_BUDGET, PROMPT_BUDGET};
pub use shipped::SCRIPT_PATH_VAR;

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
    pub(crate) fn at(path: &Path, source: Option<&str>, pos: Position, message: String) -> Self {
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

    /// An evaluation error; when it happened inside a library function, it names that file.
    pub(crate) fn from_rhai(path: &Path, source: Option<&str>, err: &EvalAltResult) -> Self {
        let (message, pos, file) = innermost(err);
        match file.filter(|f| !f.is_empty()) {
            Some(file) => {
                let text = library::source_text(&file);
                Self::at(Path::new(&file), text.as_deref(), pos, message)
            }
            None => Self::at(path, source, pos, message),
        }
    }

    /// An error about the script as a whole (no position).
    pub(crate) fn whole(path: &Path, message: impl Into<String>) -> Self {
        Self::at(path, None, Position::NONE, message.into())
    }
}

/// The message of the innermost error, the most precise position known, and the library file
/// that position is in (`None`: the script itself).
fn innermost(err: &EvalAltResult) -> (String, Position, Option<String>) {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, source, inner, pos) => {
            let (msg, inner_pos, file) = innermost(inner);
            if inner_pos.is_none() {
                (msg, *pos, None)
            } else {
                (msg, inner_pos, file.or_else(|| Some(source.clone())))
            }
        }
        EvalAltResult::ErrorInModule(_, inner, pos) => {
            let (msg, inner_pos, file) = innermost(inner);
            if inner_pos.is_none() {
                (msg, *pos, None)
            } else {
                (msg, inner_pos, file)
            }
        }
        EvalAltResult::ErrorRuntime(value, pos) => (value.to_string(), *pos, None),
        other => {
            // Display appends " (line L, position C)"; the location is shown separately.
            let pos = other.position();
            let text = other.to_string();
            let suffix = format!(" ({pos})");
            (
                text.strip_suffix(&suffix).unwrap_or(&text).to_owned(),
                pos,
                None,
            )
        }
    }
}

/// The error at the bottom of the calls and modules `err` passed through.
pub(crate) fn root_cause(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => root_cause(inner),
        other => other,
    }
}

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Values given on the command line with `--set name=value`, read by `param(name, default)`.
pub type Overrides = BTreeMap<String, String>;

/// Evaluates the script at `path` into a plan. `configs` resolves `target("name")` and
/// `model("name")`.
pub fn load(path: &Path, configs: &Configs) -> Result<Plan, ScriptError> {
    load_with(path, configs, &Overrides::new())
}

/// Like `load`, with `--set` overrides for the script's `param(...)` values.
pub fn load_with(
    path: &Path,
    configs: &Configs,
    overrides: &Overrides,
) -> Result<Plan, ScriptError> {
    load_with_access(path, configs, overrides, &Access::from_env())
}

/// Environment variable listing (comma-separated) more variables scripts may read as
/// `api_key_env`, for commands that take no `--api-key-env`. Read by `Access::from_env`.
pub const ALLOW_ENV_VAR: &str = "LLMBENCH_ALLOW_ENV";

/// What a loaded script may reach beyond its own folder, and the handle that stops its calls.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Environment variables the script may read as `api_key_env` (from `--api-key-env`),
    /// besides those `configs/targets.yaml` reads. Any other is an error naming the flag.
    pub allow_env: Vec<String>,
    /// Stops the script's running prompt or assertion call, and every later one (Ctrl-C).
    pub cancel: Cancel,
}

impl Access {
    /// The variables listed in `LLMBENCH_ALLOW_ENV`, and a fresh cancel handle.
    pub fn from_env() -> Self {
        let allow_env = std::env::var(ALLOW_ENV_VAR)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        Self {
            allow_env,
            cancel: Cancel::new(),
        }
    }

    /// Also allows `var` (e.g. the value of `--api-key-env`).
    pub fn allowing(mut self, var: impl Into<String>) -> Self {
        self.allow_env.push(var.into());
        self
    }
}

/// Like `load_with`, with what the script may reach and a cancel handle.
pub fn load_with_access(
    path: &Path,
    configs: &Configs,
    overrides: &Overrides,
    access: &Access,
) -> Result<Plan, ScriptError> {
    let found = shipped::locate(path)
        .map_err(|e| ScriptError::whole(path, format!("cannot read the script: {e}")))?
        .ok_or_else(|| {
            ScriptError::whole(
                path,
                "no such script: check the path, or run `llmbench scripts` to list the scripts \
                 available by name",
            )
        })?;
    load_source_with(&found.path, &found.text, configs, overrides, access)
}

/// Evaluates `source` as if it were the script at `path` (imports resolve beside `path`).
pub fn load_source(
    path: &Path,
    source: &str,
    configs: &Configs,
    overrides: &Overrides,
) -> Result<Plan, ScriptError> {
    load_source_with(path, source, configs, overrides, &Access::from_env())
}

/// Like `load_source`, with what the script may reach and a cancel handle.
pub fn load_source_with(
    path: &Path,
    source: &str,
    configs: &Configs,
    overrides: &Overrides,
    access: &Access,
) -> Result<Plan, ScriptError> {
    let source = source.to_owned();
    let draft = Arc::new(Mutex::new(dsl::Draft::new(overrides.clone())));
    let loaded = library::Loaded::default();
    let engine_for =
        |draft: &dsl::Shared| engine(path, configs.clone(), draft.clone(), loaded.clone(), access);
    let mut engine = engine_for(&draft);
    let ast = engine
        .compile(&source)
        .map_err(|e| ScriptError::at(path, Some(&source), e.1, e.0.to_string()))?;
    budget::run(EVAL_BUDGET, &access.cancel, || engine.run_ast(&ast)).map_err(|(e, trip)| {
        let mut err = ScriptError::from_rhai(path, Some(&source), &e);
        if let Some(trip) = trip {
            err.message = trip.message("script evaluation", EVAL_BUDGET);
        }
        err
    })?;
    // Assertions run on an engine of their own that fails on a map property that does not
    // exist, so a typo'd field is an error (prompt functions keep Rhai's `()` for one).
    let mut checks = engine_for(&draft);
    checks.set_fail_on_invalid_map_property(true);
    let ast = Arc::new(callable(
        &mut [&mut engine, &mut checks],
        ast,
        &source,
        &loaded,
    ));
    let compiled = |engine| callbacks::Compiled {
        file: path.to_owned(),
        engine: Arc::new(engine),
        ast: ast.clone(),
        cancel: access.cancel.clone(),
    };
    let (prompts, checks) = (compiled(engine), compiled(checks));
    let draft = std::mem::take(&mut *draft.lock().expect("draft lock"));
    let mut plan = draft.finish(path, prompts, checks)?;
    if plan.model.is_none() {
        plan.known_models = configs
            .model_full_names()
            .map_err(|e| ScriptError::whole(path, format!("no model given, and {e}")))?;
    }
    Ok(plan)
}

/// Makes functions the script handed over callable after its top level has run: imported
/// modules become static modules of each of `engines` under their aliases (closures call
/// `alias::f`), and the modules' functions join the script's (closures made inside a module
/// live there). The script's own functions win any clash.
fn callable(
    engines: &mut [&mut Engine],
    ast: rhai::AST,
    source: &str,
    loaded: &library::Loaded,
) -> rhai::AST {
    let loaded = loaded.lock().expect("library list");
    let mut aliases = library::import_aliases(source);
    let mut merged = rhai::AST::empty();
    for m in loaded.iter() {
        aliases.extend(m.aliases.iter().cloned());
        merged = merged.merge(&m.functions);
    }
    for (path, alias) in aliases {
        if let Some(m) = loaded.iter().find(|m| m.path == path) {
            for engine in engines.iter_mut() {
                engine.register_static_module(alias.clone(), m.module.clone());
            }
        }
    }
    merged.merge(&ast)
}

/// A sandboxed engine with the DSL and the prompt built-ins registered.
fn engine(
    path: &Path,
    configs: Configs,
    draft: dsl::Shared,
    loaded: library::Loaded,
    access: &Access,
) -> Engine {
    let mut engine = Engine::new();
    budget::install(&mut engine, access.cancel.clone());
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
    let mut allowed_env = access.allow_env.clone();
    allowed_env.extend(configs.key_vars());
    engine.set_module_resolver(library::Library::new(&base, loaded));
    engine.on_print(|s| eprintln!("{s}"));
    engine.on_debug(|s, src, pos| eprintln!("[debug {}{pos:?}] {s}", src.unwrap_or("")));
    let default_rng = Arc::new(Mutex::new(prompts::Rng::seeded(0)));
    let tokens = prompts::register(&mut engine, base.clone(), default_rng);
    targets::register(&mut engine, &draft, configs, allowed_env);
    sessions::register(&mut engine);
    pool::register(&mut engine, tokens.clone());
    let files = dsl::Files { base, tokens };
    trace::register(&mut engine, &draft, &files);
    dsl::register(&mut engine, draft, files);
    engine
}

#[cfg(test)]
mod sandbox_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lengths;
#[cfg(test)]
mod tests_pool;
#[cfg(test)]
mod tests_prompts;
