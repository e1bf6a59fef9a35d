//! The session driver: phases of multi-turn conversations. A session's turns form a feedback
//! loop (turn k+1 carries turn k's answer), so they cannot come from the feed by index: the
//! driver asks its `SessionWork` to open a session (its turn count and first turn, made before
//! the turn is due, so making it is never lateness) and then to perform each turn, which
//! answers with the state of the next turn and when this turn's answer ended. Turn k+1's
//! intended start is that end plus the think time (or, at a per-user turn rate, turn k's
//! intended start plus the interval: `plan::TurnPace`); a slow server or a slow next-turn
//! function shows up as that turn's lateness.
//!
//! Closed loop (no rate): `concurrency` users, each running one session after another. Open
//! loop: sessions arrive at the phase's rate (sessions per second, its arrival process), each
//! running its turns; a concurrency cap bounds the sessions active at once (a new session waits
//! for a slot, in order). Bounds: no session and no turn starts after the duration; with a
//! request bound a session reserves its turns when it starts (cut to what is left), so
//! `requests: 20` with 5-turn sessions runs exactly four whole sessions, and a session that
//! ends early (a failed turn ends its session) gives back the turns it did not send.
//!
//! A shard of a sharded run runs its share (`shard`): its own session arrivals or users, its
//! sessions numbered I, I + N, ... and its request ids likewise.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Dispatch, PhaseRun, Scheduler};
use crate::clock::Instant;
use crate::plan::{Phase, TurnPace};

/// Which turn of which session a dispatch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// Run-wide session number, from 0.
    pub session: u64,
    /// Turn within the session, from 0.
    pub turn: u32,
    /// The session's last turn (no next turn to prepare).
    pub last: bool,
}

/// What performs a session's turns.
pub trait SessionWork: Clone + Send + Sync + 'static {
    /// What the next turn needs (the conversation so far and its content).
    type State: Send + 'static;
    /// Opens session `session`: its turn count (at least 1) and its first turn's state.
    /// `None` stops the phase (the work failed, e.g. a script error; it keeps the error).
    fn open(&self, session: u64) -> impl Future<Output = Option<(u32, Self::State)>> + Send;
    /// Performs `turn`, released as `dispatch`. `Some((next, ended_us))`: the state of the next
    /// turn (unused after the last) and when this turn's answer ended; `None` ends the session.
    fn turn(
        &self,
        dispatch: Dispatch,
        turn: Turn,
        state: Self::State,
    ) -> impl Future<Output = Option<(Self::State, u64)>> + Send;
}

/// Counters the sessions of one phase share.
#[derive(Default)]
struct Budget {
    next_id: u64,
    next_session: u64,
    dispatched: u64,
    /// Turns reserved by started sessions and not given back.
    reserved: u64,
    failed: bool,
}

/// What every session task of a phase shares.
struct Shared<S> {
    budget: Mutex<Budget>,
    limit: Option<u64>,
    deadline: Option<Instant>,
    pace: TurnPace,
    phase_index: usize,
    /// Between this process's session numbers and request ids: 1, or a sharded run's N.
    step: u64,
    work: S,
}

impl<S> Shared<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Budget> {
        self.budget.lock().expect("session budget lock")
    }

    /// The next session's number, while the request bound has turns left.
    fn start(&self) -> Option<u64> {
        let mut b = self.lock();
        if b.failed || self.limit.is_some_and(|n| b.reserved >= n) {
            return None;
        }
        b.next_session += self.step;
        Some(b.next_session - self.step)
    }

    /// Reserves up to `turns` of the request bound; how many the session may send.
    fn reserve(&self, turns: u32) -> u32 {
        let mut b = self.lock();
        let left = self
            .limit
            .map_or(u64::MAX, |n| n.saturating_sub(b.reserved));
        let granted = (turns as u64).min(left) as u32;
        b.reserved += granted as u64;
        granted
    }

    fn past_deadline(&self, at: Instant) -> bool {
        self.deadline.is_some_and(|d| at >= d)
    }
}

impl<T: Send + 'static> Scheduler<T> {
    /// Runs one phase of sessions to its bound, then waits for every session to end.
    pub async fn run_sessions<S: SessionWork>(
        &mut self,
        phase_index: usize,
        phase: &Phase,
        pace: TurnPace,
        work: S,
    ) -> PhaseRun {
        let dealt;
        let phase = match self.shard {
            Some(s) => {
                dealt = super::shard::phase_share(phase, s);
                &dealt
            }
            None => phase,
        };
        let started_us = self.clock.now_us();
        let start = self.clock.instant_at(started_us);
        let shared = Arc::new(Shared {
            budget: Mutex::new(Budget {
                next_id: self.next_id,
                next_session: self.next_session,
                ..Budget::default()
            }),
            limit: phase.requests,
            deadline: phase.duration.map(|d| start + d),
            pace,
            phase_index,
            step: self.shard.map_or(1, |s| u64::from(s.count)),
            work,
        });
        let mut sessions = JoinSet::new();
        match phase.rate {
            Some(rate) => {
                self.arrive(phase, rate, start, &shared, &mut sessions)
                    .await
            }
            None => {
                for _ in 0..phase.concurrency.unwrap_or(1).max(1) {
                    sessions.spawn(self.user(shared.clone()));
                }
            }
        }
        while sessions.join_next().await.is_some() {}
        let b = shared.lock();
        self.next_id = b.next_id;
        self.next_session = b.next_session;
        PhaseRun {
            started_us,
            dispatched: b.dispatched,
            ended_us: self.clock.now_us(),
            feed_exhausted: b.failed,
        }
    }

    /// Open loop: a session at each arrival of the phase's process.
    async fn arrive<S: SessionWork>(
        &self,
        phase: &Phase,
        rate: f64,
        start: Instant,
        shared: &Arc<Shared<S>>,
        sessions: &mut JoinSet<()>,
    ) {
        let slots = phase
            .concurrency
            .map(|c| Arc::new(Semaphore::new(c.max(1) as usize)));
        for offset in super::shard::offsets(phase, rate, self.shard) {
            let intended = start + offset;
            if shared.past_deadline(intended) || self.stop.is_cancelled() {
                break;
            }
            let Some(session) = shared.start() else { break };
            // Opened before its arrival is due, so making the first turn is never lateness.
            let Some((turns, state)) = shared.work.open(session).await else {
                shared.lock().failed = true;
                break;
            };
            tokio::select! {
                _ = self.pacer.sleep_until(intended) => {}
                _ = self.stop.cancelled() => break,
            }
            let turns = shared.reserve(turns);
            let (shared, slots, task) = (shared.clone(), slots.clone(), self.turns());
            sessions.spawn(async move {
                let _slot = match slots {
                    Some(s) => Some(s.acquire_owned().await.expect("never closed")),
                    None => None,
                };
                task.run(&shared, session, turns, state, intended).await;
            });
            while sessions.try_join_next().is_some() {}
        }
    }

    /// Closed loop: one user, running sessions one after another until the bound.
    fn user<S: SessionWork>(&self, shared: Arc<Shared<S>>) -> impl Future<Output = ()> + use<S, T> {
        let task = self.turns();
        async move {
            while !task.stop.is_cancelled() && !shared.past_deadline(Instant::now()) {
                let Some(session) = shared.start() else { break };
                let Some((turns, state)) = shared.work.open(session).await else {
                    shared.lock().failed = true;
                    break;
                };
                let turns = shared.reserve(turns);
                task.run(&shared, session, turns, state, Instant::now())
                    .await;
            }
        }
    }

    fn turns(&self) -> TurnRunner {
        TurnRunner {
            clock: self.clock,
            stop: self.stop.clone(),
            pacer: self.pacer,
        }
    }
}

/// Runs one session's turns (what a session task needs of the scheduler).
struct TurnRunner {
    clock: crate::clock::Clock,
    stop: tokio_util::sync::CancellationToken,
    pacer: super::Pacer,
}

impl TurnRunner {
    /// Sends turns 0..`turns` of `session`, the first at `intended`, each later one `think`
    /// after the answer before it ended; gives back the turns it did not send.
    async fn run<S: SessionWork>(
        &self,
        shared: &Shared<S>,
        session: u64,
        turns: u32,
        mut state: S::State,
        mut intended: Instant,
    ) {
        let mut sent = 0;
        for k in 0..turns {
            if self.stop.is_cancelled() || shared.past_deadline(intended) {
                break;
            }
            tokio::select! {
                _ = self.pacer.sleep_until(intended) => {}
                _ = self.stop.cancelled() => break,
            }
            let now = self.clock.now_us();
            let id = {
                let mut b = shared.lock();
                b.next_id += shared.step;
                b.dispatched += 1;
                b.next_id - shared.step
            };
            let dispatch = Dispatch {
                id,
                phase_index: shared.phase_index,
                intended_us: self.clock.us_at(intended),
                dispatched_us: now,
                admitted_us: Some(now),
            };
            sent += 1;
            let turn = Turn {
                session,
                turn: k,
                last: k + 1 == turns,
            };
            match shared.work.turn(dispatch, turn, state).await {
                Some((next, ended_us)) => {
                    state = next;
                    intended = shared.pace.next(intended, self.clock.instant_at(ended_us));
                }
                None => break,
            }
        }
        shared.lock().reserved -= (turns - sent) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::plan::Arrival;
    use crate::schedule::Pacer;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    /// Each turn takes 5 ms and records (session, turn, intended, dispatched).
    #[derive(Clone)]
    struct Fake {
        clock: Clock,
        turns: u32,
        seen: Arc<Mutex<Vec<(Turn, Dispatch)>>>,
    }

    impl SessionWork for Fake {
        type State = ();
        async fn open(&self, _session: u64) -> Option<(u32, ())> {
            Some((self.turns, ()))
        }
        async fn turn(&self, d: Dispatch, t: Turn, _: ()) -> Option<((), u64)> {
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.seen.lock().unwrap().push((t, d));
            Some(((), self.clock.now_us()))
        }
    }

    fn phase(rate: Option<f64>, concurrency: Option<u32>, requests: Option<u64>) -> Phase {
        Phase {
            name: "chat".into(),
            duration: None,
            requests,
            rate,
            concurrency,
            arrival: Arrival::Constant,
            seed: 1,
            warmup: false,
            ramp: Default::default(),
            sweep: None,
            replay: None,
            cancel: None,
        }
    }

    async fn run(p: Phase, turns: u32) -> (PhaseRun, Vec<(Turn, Dispatch)>) {
        run_paced(p, turns, TurnPace::Think(Duration::from_millis(100))).await
    }

    async fn run_paced(p: Phase, turns: u32, pace: TurnPace) -> (PhaseRun, Vec<(Turn, Dispatch)>) {
        let clock = Clock::start();
        let (_tx, rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut s = Scheduler::new(clock, rx, CancellationToken::new()).with_pacer(Pacer::Tokio);
        let work = Fake {
            clock,
            turns,
            seen: Arc::default(),
        };
        let run = s.run_sessions(0, &p, pace, work.clone()).await;
        let seen = work.seen.lock().unwrap().clone();
        (run, seen)
    }

    #[tokio::test(start_paused = true)]
    async fn users_run_whole_sessions_with_think_time_between_turns() {
        let (run, seen) = run(phase(None, Some(4), Some(20)), 5).await;
        assert_eq!(run.dispatched, 20);
        assert_eq!(seen.len(), 20);
        for session in 0..4 {
            let mut turns: Vec<_> = seen.iter().filter(|(t, _)| t.session == session).collect();
            turns.sort_by_key(|(t, _)| t.turn);
            assert_eq!(turns.len(), 5, "session {session}");
            for (k, (t, d)) in turns.iter().enumerate() {
                assert_eq!(t.turn, k as u32);
                assert_eq!(t.last, k == 4);
                // Each turn: 5 ms of answer, then 100 ms of thinking.
                assert_eq!(d.intended_us, k as u64 * 105_000, "{t:?}");
            }
        }
        let mut ids: Vec<u64> = seen.iter().map(|(_, d)| d.id).collect();
        ids.sort();
        assert_eq!(ids, (0..20).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_sessions_arrive_at_the_rate_and_the_bound_cuts_the_last() {
        let (run, seen) = run(phase(Some(10.0), None, Some(7)), 3).await;
        assert_eq!(run.dispatched, 7);
        let firsts: Vec<u64> = {
            let mut f: Vec<_> = seen
                .iter()
                .filter(|(t, _)| t.turn == 0)
                .map(|(t, d)| (t.session, d.intended_us))
                .collect();
            f.sort();
            f.into_iter().map(|(_, at)| at).collect()
        };
        assert_eq!(firsts, [0, 100_000, 200_000], "one session per 100 ms");
        let last = seen.iter().filter(|(t, _)| t.session == 2).count();
        assert_eq!(last, 1, "the third session gets what is left of the bound");
    }

    #[tokio::test(start_paused = true)]
    async fn at_a_per_user_turn_rate_turns_are_due_on_the_users_clock() {
        // A turn every 50 ms per user, answers of 5 ms: due at exactly k × 50 ms.
        let every = TurnPace::Every(Duration::from_millis(50));
        let (run, seen) = run_paced(phase(None, Some(2), Some(8)), 4, every).await;
        assert_eq!(run.dispatched, 8);
        for (t, d) in &seen {
            assert_eq!(d.intended_us, u64::from(t.turn) * 50_000, "{t:?}");
            assert_eq!(d.dispatched_us, d.intended_us, "{t:?}");
        }
        // Every 2 ms against 5 ms answers: still due every 2 ms, each turn sent when the answer
        // before it is in, late by the difference.
        let fast = TurnPace::Every(Duration::from_millis(2));
        let (_, seen) = run_paced(phase(None, Some(1), Some(4)), 4, fast).await;
        for (t, d) in &seen {
            let k = u64::from(t.turn);
            assert_eq!(d.intended_us, k * 2_000, "{t:?}");
            assert_eq!(d.dispatched_us, k * 5_000, "{t:?}");
        }
    }
}
