//! Budgets for every call into a script: a wall clock, a memory budget and a cancel flag,
//! enforced from inside the engine (`Engine::on_progress` runs before every operation), so a
//! script that stays within the operation and size limits still cannot hold the run for long.
//!
//! The limits, in one place:
//! - [`EVAL_BUDGET`]: evaluating the script (its top level and its imports), 10 s.
//! - [`PROMPT_BUDGET`]: one call of a prompt function, 5 s.
//! - [`ASSERT_BUDGET`]: one call of an assertion function, 5 s.
//! - [`MEMORY_BUDGET`]: heap a single evaluation or call may hold at once, 128 MiB. It counts
//!   every byte the call allocates on its thread, so every array, map (keys included), string
//!   and closure counts, whatever Rhai's own size check walks. Trusted built-ins that read
//!   files (`dataset`, tokenizers) are not counted: their data is bounded by the files.
//!
//! Memory is counted by a global allocator that keeps a per-thread tally of live bytes (one
//! thread-local add per allocation); a call compares the tally with the one it started with.
//!
//! A call that runs out stops with `EvalAltResult::ErrorTerminated`; the caller asks [`run`]
//! which budget tripped and words the error ([`Trip::message`]). A [`Cancel`] handle stops the
//! calls of one loaded script early: the engine checks it before every operation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult};

/// Wall-clock budget for evaluating a script (top level and imports).
pub const EVAL_BUDGET: Duration = Duration::from_secs(10);
/// Wall-clock budget for one call of a prompt function.
pub const PROMPT_BUDGET: Duration = Duration::from_secs(5);
/// Wall-clock budget for one call of an assertion function.
pub const ASSERT_BUDGET: Duration = Duration::from_secs(5);
/// Heap one evaluation or call may hold at once.
pub const MEMORY_BUDGET: usize = 128 * 1024 * 1024;

/// The clock is read every this many operations (an operation is ~100 ns; reading the clock
/// costs ~20 ns).
const CLOCK_EVERY: u64 = 16;

pub use crate::plan::Cancel;

/// Which budget a call ran out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trip {
    Time,
    Memory,
    Cancelled,
}

impl Trip {
    /// The error for `what` (e.g. "script evaluation", "the prompt function for request 3")
    /// that ran out, with the wall-clock budget it had.
    pub fn message(self, what: &str, time: Duration) -> String {
        match self {
            Trip::Time => format!(
                "{what} took more than {} s (the budget); look for a loop that does not end, or one that grows a collection",
                time.as_secs_f64()
            ),
            Trip::Memory => format!(
                "{what} held more than {} MiB (the memory budget); every array, map (keys included) and string it makes counts: look for a collection that grows without end",
                MEMORY_BUDGET / (1024 * 1024)
            ),
            Trip::Cancelled => format!("{what} was cancelled (the run is stopping)"),
        }
    }
}

#[derive(Clone, Copy)]
struct Active {
    deadline: Instant,
    live_at_start: isize,
}

thread_local! {
    /// Live heap bytes allocated minus freed on this thread (any start; only deltas matter).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The call running on this thread, if any.
    static ACTIVE: Cell<Option<Active>> = const { Cell::new(None) };
    /// What the running call ran out of.
    static TRIPPED: Cell<Option<Trip>> = const { Cell::new(None) };
}

/// The allocator: the system one, plus the per-thread tally of live bytes.
pub struct Counting;

#[inline]
fn tally(delta: isize) {
    let _ = LIVE.try_with(|c| c.set(c.get().wrapping_add(delta)));
}

// SAFETY: every method forwards to `System` unchanged; the tally touches only a const-initialised
// thread-local without a destructor, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            tally(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            tally(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        tally(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            tally(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.try_with(Cell::get).unwrap_or(0)
}

/// Runs `f` (a trusted built-in reading a file) without counting what it keeps toward the
/// running call's memory budget.
pub fn untracked<T>(f: impl FnOnce() -> T) -> T {
    let before = live();
    let out = f();
    let kept = live().wrapping_sub(before);
    tally(-kept);
    out
}

/// Installs the budget check on `engine`; `cancel` stops its calls early.
pub fn install(engine: &mut Engine, cancel: Cancel) {
    engine.on_progress(move |ops| check(ops, &cancel).map(|t| Dynamic::from(format!("{t:?}"))));
}

fn check(ops: u64, cancel: &Cancel) -> Option<Trip> {
    let active = ACTIVE.with(Cell::get)?;
    let trip = if cancel.is_cancelled() {
        Some(Trip::Cancelled)
    } else if live().wrapping_sub(active.live_at_start) > MEMORY_BUDGET as isize {
        Some(Trip::Memory)
    } else if ops.is_multiple_of(CLOCK_EVERY) && Instant::now() > active.deadline {
        Some(Trip::Time)
    } else {
        None
    };
    if trip.is_some() {
        TRIPPED.with(|t| t.set(trip));
    }
    trip
}

/// Runs one call into the script with `time` to spare. On failure, says which budget (if any)
/// it ran out of; a call on a cancelled script fails at once.
pub fn run<T>(
    time: Duration,
    cancel: &Cancel,
    f: impl FnOnce() -> Result<T, Box<EvalAltResult>>,
) -> Result<T, (Box<EvalAltResult>, Option<Trip>)> {
    if cancel.is_cancelled() {
        let e = EvalAltResult::ErrorTerminated("Cancelled".into(), rhai::Position::NONE);
        return Err((e.into(), Some(Trip::Cancelled)));
    }
    let outer = ACTIVE.with(|a| {
        a.replace(Some(Active {
            deadline: Instant::now() + time,
            live_at_start: live(),
        }))
    });
    let outer_trip = TRIPPED.with(|t| t.replace(None));
    let out = f();
    let trip = TRIPPED.with(|t| t.replace(outer_trip));
    ACTIVE.with(|a| a.set(outer));
    out.map_err(|e| (e, trip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(cancel: &Cancel) -> Engine {
        let mut e = Engine::new();
        install(&mut e, cancel.clone());
        e
    }

    #[test]
    fn the_clock_stops_a_loop_within_its_budget() {
        let cancel = Cancel::new();
        let e = engine(&cancel);
        let started = Instant::now();
        let (_, trip) = run(Duration::from_millis(200), &cancel, || {
            e.run("let x = 0; loop { x += 1; }")
        })
        .unwrap_err();
        assert_eq!(trip, Some(Trip::Time));
        assert!(started.elapsed() < Duration::from_secs(2));
        // Outside a call nothing is limited, and a later call starts afresh.
        assert_eq!(
            run(EVAL_BUDGET, &cancel, || e.eval::<i64>("40 + 2")).unwrap(),
            42
        );
    }

    #[test]
    fn memory_counts_map_keys() {
        let cancel = Cancel::new();
        let e = engine(&cancel);
        let (_, trip) = run(EVAL_BUDGET, &cancel, || {
            e.run(r#"let k = "k"; k.pad(1048576, "x"); let m = #{}; for i in 0..300 { m[k + i] = 1; }"#)
        })
        .unwrap_err();
        assert_eq!(trip, Some(Trip::Memory));
        let text = trip.unwrap().message("script evaluation", EVAL_BUDGET);
        assert!(
            text.contains("128 MiB") && text.contains("keys included"),
            "{text}"
        );
    }

    #[test]
    fn cancel_stops_the_running_call_and_every_later_one() {
        let cancel = Cancel::new();
        let e = engine(&cancel);
        let c = cancel.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            c.cancel();
        });
        let started = Instant::now();
        let (_, trip) = run(EVAL_BUDGET, &cancel, || e.run("loop { }")).unwrap_err();
        stopper.join().unwrap();
        assert_eq!(trip, Some(Trip::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(2));
        let (_, trip) = run(EVAL_BUDGET, &cancel, || e.eval::<i64>("1")).unwrap_err();
        assert_eq!(trip, Some(Trip::Cancelled));
    }

    #[test]
    fn untracked_work_does_not_count() {
        let before = live();
        let kept = untracked(|| vec![0u8; 1 << 20]);
        assert!(live().wrapping_sub(before) < 4096);
        drop(kept);
    }
}
