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
type Failed = (Box<EvalAltResult>, Option<Trip>);

impl Compiled {
    /// Calls `f` within `time` (and the memory budget).
    fn try_call(&self, f: &FnPtr, args: Vec<Dynamic>, time: Duration) -> Result<Dynamic, Failed> {
        budget::run(time, &self.cancel, || {
            f.call::<Dynamic>(&self.engine, &self.ast, args)
        })
    }

    /// Like `try_call`, with the error worded; `what` names the call for a budget error.
    fn call(
        &self,
        f: &FnPtr,
        args: Vec<Dynamic>,
        time: Duration,
        what: &dyn Fn() -> String,
    ) -> Result<Dynamic, String> {
        self.try_call(f, args, time)
            .map_err(|failed| self.error(failed, time, what))
    }

    fn error(&self, (e, trip): Failed, time: Duration, what: &dyn Fn() -> String) -> String {
        let source = std::fs::read_to_string(&self.file).ok();
        let mut err = ScriptError::from_rhai(&self.file, source.as_deref(), &e);
        if let Some(trip) = trip {
            err.message = trip.message(&what(), time);
        }
        err.to_string()
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
                        other.map_err(|failed| script.error(failed, PROMPT_BUDGET, &what))
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
/// `s.phases.steady.success_rate`, ...).
pub struct ScriptCheck {
    pub script: Compiled,
    pub name: String,
    pub check: AssertDraft,
}

impl StatsCheck for ScriptCheck {
    fn check(&self, stats: &serde_json::Value) -> Result<CheckOutcome, String> {
        let s = rhai::serde::to_dynamic(stats).map_err(|e| e.to_string())?;
        let fail = |e: String| format!("assert {:?}: {e}", self.name);
        let what = || format!("assertion {:?}", self.name);
        match &self.check {
            AssertDraft::Bool(f) => {
                let v = self
                    .script
                    .call(f, vec![s], ASSERT_BUDGET, &what)
                    .map_err(fail)?;
                let passed = v.as_bool().map_err(|t| {
                    fail(format!("the function returned {t}; it must return true or false (or use assert(name, |s| value, \"<\", limit))"))
                })?;
                Ok(CheckOutcome {
                    passed,
                    value: passed.to_string(),
                })
            }
            AssertDraft::Compare(f, op, limit) => {
                let v = self
                    .script
                    .call(f, vec![s], ASSERT_BUDGET, &what)
                    .map_err(fail)?;
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
                })
            }
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

/// A number with at most 3 decimals, trailing zeros dropped.
fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}
