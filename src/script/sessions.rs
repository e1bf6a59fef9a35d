//! `session(#{ turns, think_ms | turn_rate, first_turn, next_turn })`: multi-turn conversations, given to
//! `request` as its prompt. `first_turn(s)` makes session s's opening (a string, messages, or
//! a shape map), `next_turn(s, k)` what turn k adds after the answer before it (a string is a
//! user message); either may take a last `rng` argument, seeded by (seed, s, k). `turns` is a
//! whole number or a function `|s, rng|` drawing one (e.g. `lengths::uniform`). The history
//! itself (earlier turns and the server's real answers) is kept by the run, never the script.

use std::sync::atomic::{AtomicU8, Ordering};

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map};

use super::RhaiResult;
use super::budget::PROMPT_BUDGET;
use super::callbacks::Compiled;
use super::opts::Opts;
use super::shape::shape_of;
use super::words::Rng;
use crate::plan::{RequestShape, SessionGenerator};

/// How many turns each session has.
#[derive(Clone)]
pub enum TurnCount {
    Fixed(u32),
    Drawn(FnPtr),
}

/// What `session(...)` returned, before the script is compiled into a plan.
#[derive(Clone)]
pub struct SessionDraft {
    pub turns: TurnCount,
    pub pace: crate::plan::TurnPace,
    pub first_turn: FnPtr,
    pub next_turn: FnPtr,
}

/// Registers `session`.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<SessionDraft>("Session");
    engine.register_fn("session", |map: Map| -> RhaiResult<SessionDraft> {
        let mut o = Opts::new(
            "session",
            map,
            &["turns", "think_ms", "turn_rate", "first_turn", "next_turn"],
        )?;
        let turns = match o.take("turns") {
            Some(v) if v.is_fnptr() => TurnCount::Drawn(v.cast()),
            Some(v) => match v.as_int() {
                Ok(n @ 1..=100_000) => TurnCount::Fixed(n as u32),
                _ => return Err(format!("session: turns must be a whole number from 1 to 100000 or a function |s, rng| giving one, not {v}").into()),
            },
            None => return Err("session: turns is required, e.g. turns: 5".into()),
        };
        let pace = pace(o.non_negative("think_ms")?, o.non_negative("turn_rate")?)?;
        let mut function = |key: &str, example: &str| match o.take(key) {
            Some(v) if v.is_fnptr() => Ok(v.cast::<FnPtr>()),
            _ => Err(format!("session: {key} must be a function, e.g. {key}: {example}")),
        };
        let first_turn = function("first_turn", "|s| `Hello, I am user ${s}`")?;
        let next_turn = function("next_turn", "|s, k| `Tell me more (${k})`")?;
        Ok(SessionDraft {
            turns,
            pace,
            first_turn,
            next_turn,
        })
    });
}

/// `think_ms` (after each answer) or `turn_rate` (turns per second per user, AIPerf's
/// user-centric rate), not both; neither is no think time.
fn pace(think_ms: Option<f64>, turn_rate: Option<f64>) -> RhaiResult<crate::plan::TurnPace> {
    use crate::plan::TurnPace;
    match (think_ms, turn_rate) {
        (Some(_), Some(_)) => Err("session: give think_ms (a pause after each answer) or turn_rate (turns per second per user), not both".into()),
        (_, Some(r)) if r <= 0.0 || r > 1e6 => Err(format!("session: turn_rate is turns per second per user, above 0 (e.g. turn_rate: 0.5 for a turn every 2 s), not {r}").into()),
        (_, Some(r)) => Ok(TurnPace::Every(std::time::Duration::from_secs_f64(1.0 / r))),
        (think, None) => Ok(TurnPace::Think(std::time::Duration::from_secs_f64(think.unwrap_or(0.0) / 1e3))),
    }
}

/// The script's session functions, callable after evaluation.
pub struct ScriptSession {
    script: Compiled,
    draft: SessionDraft,
    seed: u64,
    /// Per function (turns, first_turn, next_turn): 0 not yet known, 1 without rng, 2 with.
    arity: [AtomicU8; 3],
}

impl ScriptSession {
    pub fn new(script: Compiled, draft: SessionDraft, seed: u64) -> Self {
        Self {
            script,
            draft,
            seed,
            arity: Default::default(),
        }
    }

    /// The generator of turn `turn` of `session` (`u32::MAX`: the turn-count draw).
    fn rng(&self, session: u64, turn: u32) -> Rng {
        let session_seed = Rng::for_request(self.seed, session)
            .int(0, i64::MAX)
            .unwrap_or(0);
        Rng::for_request(session_seed as u64, turn as u64)
    }

    /// Calls function `which` of `f` with `args`, then `rng` if it takes one.
    fn call(
        &self,
        which: usize,
        f: &FnPtr,
        args: Vec<Dynamic>,
        rng: Rng,
        what: &dyn Fn() -> String,
    ) -> Result<Dynamic, String> {
        let script = &self.script;
        let with_rng = || {
            let mut a = args.clone();
            a.push(Dynamic::from(rng.clone()));
            a
        };
        match self.arity[which].load(Ordering::Relaxed) {
            1 => script.call(f, args.clone(), PROMPT_BUDGET, what),
            2 => script.call(f, with_rng(), PROMPT_BUDGET, what),
            _ => match script.try_call(f, with_rng(), PROMPT_BUDGET) {
                Err((e, None))
                    if matches!(&*e, EvalAltResult::ErrorFunctionNotFound(sig, _)
                        if sig.starts_with(&format!("{} (", f.fn_name()))) =>
                {
                    self.arity[which].store(1, Ordering::Relaxed);
                    script.call(f, args.clone(), PROMPT_BUDGET, what)
                }
                other => {
                    self.arity[which].store(2, Ordering::Relaxed);
                    other.map_err(|failed| script.error(failed, PROMPT_BUDGET, what).to_string())
                }
            },
        }
    }
}

impl SessionGenerator for ScriptSession {
    fn turns(&self, session: u64) -> Result<u32, String> {
        let f = match &self.draft.turns {
            TurnCount::Fixed(n) => return Ok(*n),
            TurnCount::Drawn(f) => f,
        };
        let what = || format!("the turns function for session {session}");
        let s = Dynamic::from(session as i64);
        let v = self.call(0, f, vec![s], self.rng(session, u32::MAX), &what)?;
        match v.as_int() {
            Ok(n @ 1..=100_000) => Ok(n as u32),
            _ => Err(format!(
                "{}: the turns function gave {v} for session {session}; a session has 1 to 100000 turns",
                self.script.file.display()
            )),
        }
    }

    fn turn(&self, session: u64, turn: u32) -> Result<RequestShape, String> {
        let s = Dynamic::from(session as i64);
        let rng = self.rng(session, turn);
        let v = if turn == 0 {
            let what = || format!("first_turn for session {session}");
            self.call(1, &self.draft.first_turn, vec![s], rng, &what)?
        } else {
            let what = || format!("next_turn for session {session} turn {turn}");
            let k = Dynamic::from(turn as i64);
            self.call(2, &self.draft.next_turn, vec![s, k], rng, &what)?
        };
        shape_of(v).map_err(|e| {
            format!(
                "{}: the session function's result for session {session} turn {turn}: {e}",
                self.script.file.display()
            )
        })
    }

    fn describe(&self) -> String {
        format!(
            "session functions {} and {} in {}",
            self.draft.first_turn.fn_name(),
            self.draft.next_turn.fn_name(),
            self.script.file.display()
        )
    }
}
