//! Script functions the plan keeps calling after evaluation: prompt generators (on the feed's
//! producer thread) and assertions (after the run). Each holds the engine and AST and calls its
//! function pointer without re-running the script's top level.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use rhai::{AST, Dynamic, Engine, EvalAltResult, FnPtr};

use super::ScriptError;
use super::budget::{self, ASSERT_BUDGET, Cancel, PROMPT_BUDGET, Trip};
use super::prompts::Rng;
use super::shape::shape_of;
use crate::plan::{CheckOutcome, PromptGenerator, RequestShape, StatsCheck};

/// `assert(name, |s| bool)` or `assert(name, |s| value, op, limit)`, as the script gave it.
pub enum AssertDraft {
    Bool(FnPtr),
    Compare(FnPtr, String, f64),
}

/// A compiled script and the file it came from.
#[derive(Clone)]
pub struct Compiled {
    pub file: PathBuf,
    pub engine: Arc<Engine>,
    pub ast: Arc<AST>,
    /// Stops this script's calls early (see `budget`).
    pub cancel: Cancel,
}

/// A call that failed, and the budget it ran out of, if that was why.
pub(super) type Failed = (Box<EvalAltResult>, Option<Trip>);

impl Compiled {
    /// Calls `f` within `time` (and the memory budget).
    pub(super) fn try_call(
        &self,
        f: &FnPtr,
        args: Vec<Dynamic>,
        time: Duration,
    ) -> Result<Dynamic, Failed> {
        budget::run(time, &self.cancel, || {
            f.call::<Dynamic>(&self.engine, &self.ast, args)
        })
    }

    /// Like `try_call`, with the error worded; `what` names the call for a budget error.
    pub(super) fn call(
        &self,
        f: &FnPtr,
        args: Vec<Dynamic>,
        time: Duration,
        what: &dyn Fn() -> String,
    ) -> Result<Dynamic, String> {
        self.try_call(f, args, time)
            .map_err(|failed| self.error(failed, time, what).to_string())
    }

    pub(super) fn error(
        &self,
        (e, trip): Failed,
        time: Duration,
        what: &dyn Fn() -> String,
    ) -> ScriptError {
        let source = std::fs::read_to_string(&self.file).ok();
        let mut err = ScriptError::from_rhai(&self.file, source.as_deref(), &e);
        if let Some(trip) = trip {
            err.message = trip.message(&what(), time);
        }
        err
    }
}

/// A prompt function: `|i|` or `|i, rng|`, returning a string, a list of messages, or a map
/// (`shape`: prompt or messages, max_tokens, body, headers, label).
pub struct ScriptPrompt {
    pub script: Compiled,
    pub f: FnPtr,
    pub seed: u64,
    /// 0: not yet known, 1: takes `(i)`, 2: takes `(i, rng)`.
    arity: AtomicU8,
}

impl ScriptPrompt {
    pub fn new(script: Compiled, f: FnPtr, seed: u64) -> Self {
        Self {
            script,
            f,
            seed,
            arity: AtomicU8::new(0),
        }
    }

    fn call(&self, index: u64) -> Result<Dynamic, String> {
        let what = || format!("the prompt function for request {index}");
        let with_rng = || {
            vec![
                Dynamic::from(index as i64),
                Dynamic::from(Rng::for_request(self.seed, index)),
            ]
        };
        let one = || vec![Dynamic::from(index as i64)];
        let script = &self.script;
        match self.arity.load(Ordering::Relaxed) {
            1 => script.call(&self.f, one(), PROMPT_BUDGET, &what),
            2 => script.call(&self.f, with_rng(), PROMPT_BUDGET, &what),
            _ => {
                // Try (i, rng); a function that takes only (i) is not found with two arguments.
                match script.try_call(&self.f, with_rng(), PROMPT_BUDGET) {
                    Err((e, None))
                        if matches!(&*e, EvalAltResult::ErrorFunctionNotFound(sig, _)
                        if sig.starts_with(&format!("{} (", self.f.fn_name()))) =>
                    {
                        self.arity.store(1, Ordering::Relaxed);
                        script.call(&self.f, one(), PROMPT_BUDGET, &what)
                    }
                    other => {
                        self.arity.store(2, Ordering::Relaxed);
                        other.map_err(|failed| {
                            script.error(failed, PROMPT_BUDGET, &what).to_string()
                        })
                    }
                }
            }
        }
    }
}

impl PromptGenerator for ScriptPrompt {
    fn shape(&self, index: u64) -> Result<RequestShape, String> {
        let v = self.call(index)?;
        shape_of(v).map_err(|e| {
            format!(
                "{}: the prompt function's result for request {index}: {e}",
                self.script.file.display()
            )
        })
    }

    fn describe(&self) -> String {
        format!(
            "function {} in {}",
            self.f.fn_name(),
            self.script.file.display()
        )
    }
}

/// An assertion: the function gets the statistics as a map (`s.ttft_ms.p95`,
/// `s.phases.steady.success_rate`, ...). Its script's engine fails on a map property that does
/// not exist (a typo is an error, not `()`); a field that is there with no data is `()`.
pub struct ScriptCheck {
    pub script: Compiled,
    pub name: String,
    pub check: AssertDraft,
}

impl ScriptCheck {
    fn function(&self) -> &FnPtr {
        match &self.check {
            AssertDraft::Bool(f) | AssertDraft::Compare(f, ..) => f,
        }
    }

    /// The function's value for `stats`.
    fn value(&self, stats: &serde_json::Value) -> Result<Dynamic, Failed> {
        let s = rhai::serde::to_dynamic(stats).map_err(|e| (e, None))?;
        self.script
            .try_call(self.function(), vec![s], ASSERT_BUDGET)
    }

    /// The error of a call that failed, worded; a missing field is said with the fields
    /// `stats` has.
    fn error(&self, failed: Failed, stats: &serde_json::Value) -> String {
        let missing = matches!(
            super::root_cause(&failed.0),
            EvalAltResult::ErrorPropertyNotFound(..)
        );
        let mut err = self.script.error(failed, ASSERT_BUDGET, &|| {
            format!("assertion {:?}", self.name)
        });
        if missing {
            err.message.push_str(&fields_hint(stats));
        }
        format!("assert {:?}: {err}", self.name)
    }

    /// What the function's value `v` says.
    fn outcome(&self, v: Dynamic) -> Result<CheckOutcome, String> {
        let fail = |e: String| format!("assert {:?}: {e}", self.name);
        match &self.check {
            AssertDraft::Bool(_) => {
                let passed = v.as_bool().map_err(|t| {
                    fail(format!("the function returned {t}; it must return true or false (or use assert(name, |s| value, \"<\", limit))"))
                })?;
                Ok(CheckOutcome {
                    passed,
                    value: passed.to_string(),
                    measured: None,
                    op: None,
                    limit: None,
                })
            }
            AssertDraft::Compare(_, op, limit) => {
                let value = if v.is_unit() {
                    None
                } else {
                    Some(
                        v.as_float()
                            .or_else(|_| v.as_int().map(|i| i as f64))
                            .map_err(|t| {
                                fail(format!(
                                    "the function returned {t}; it must return a number"
                                ))
                            })?,
                    )
                };
                let passed = value.is_some_and(|x| match op.as_str() {
                    "<" => x < *limit,
                    "<=" => x <= *limit,
                    ">" => x > *limit,
                    ">=" => x >= *limit,
                    "==" => x == *limit,
                    _ => x != *limit,
                });
                Ok(CheckOutcome {
                    passed,
                    value: value.map_or("no data".into(), |x| format!("{} {op} {limit}", trim(x))),
                    measured: value,
                    op: Some(op.clone()),
                    limit: Some(*limit),
                })
            }
        }
    }
}

impl StatsCheck for ScriptCheck {
    fn check(&self, stats: &serde_json::Value) -> Result<CheckOutcome, String> {
        let v = self.value(stats).map_err(|f| self.error(f, stats))?;
        self.outcome(v)
    }

    fn dry_run(&self, empty: &serde_json::Value, sample: &serde_json::Value) -> Result<(), String> {
        match self.value(sample) {
            Ok(v) => {
                self.outcome(v)?;
            }
            Err((e, None)) if depends_on_the_numbers(&e) => {}
            Err(failed) => return Err(self.error(failed, sample)),
        }
        // Without data every value is `()`: only a missing field is the script's mistake.
        match self.value(empty) {
            Err((e, None))
                if matches!(
                    super::root_cause(&e),
                    EvalAltResult::ErrorPropertyNotFound(..)
                ) =>
            {
                Err(self.error((e, None), empty))
            }
            _ => Ok(()),
        }
    }

    fn describe(&self) -> String {
        match &self.check {
            AssertDraft::Bool(f) => {
                format!("function {} in {}", f.fn_name(), self.script.file.display())
            }
            AssertDraft::Compare(f, op, limit) => format!(
                "function {} in {} {op} {limit}",
                f.fn_name(),
                self.script.file.display()
            ),
        }
    }
}

/// An error that other numbers might not raise: a `throw`, arithmetic (a division by zero),
/// an index out of bounds.
fn depends_on_the_numbers(e: &EvalAltResult) -> bool {
    matches!(
        super::root_cause(e),
        EvalAltResult::ErrorRuntime(..)
            | EvalAltResult::ErrorArithmetic(..)
            | EvalAltResult::ErrorArrayBounds(..)
            | EvalAltResult::ErrorStringBounds(..)
            | EvalAltResult::ErrorBitFieldBounds(..)
    )
}

/// What the statistics `stats` have, for an error about a field they do not.
fn fields_hint(stats: &serde_json::Value) -> String {
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .map(|o| o.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let phases = keys(&stats["phases"]);
    format!(
        " (a metric such as s.ttft_ms has {}; s.phases has {}, warmup phases are not in the \
         statistics; README \"SLOs and assertions\" lists every field)",
        keys(&stats["ttft_ms"]),
        if phases.is_empty() {
            "no phase".into()
        } else {
            phases
        }
    )
}

/// A number with at most 3 decimals, trailing zeros dropped.
fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}
