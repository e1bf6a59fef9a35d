//! The scheduler: turns a phase into dispatches at their intended times.
//!
//! Open loop (a rate): arrival times come from a pure, seeded process (`arrival_offsets`); each
//! arrival is released at its absolute deadline (through the precise `timer`),
//! then waits in a FIFO queue for a concurrency slot if a cap is set. Nothing is dropped: a late
//! scheduler shows up as lateness, a full cap as queue time, both recorded per request.
//! Closed loop (no rate): `concurrency` lanes each send their next request as soon as the last ends.
//! A sharded run (`shard`) sends its share of each phase: see `shard` for how it is dealt. Its
//! request ids are global: its j-th request is global request `index + j · count`, so ids are
//! unique across shards and request i gets prompt i whichever shard sends it.
//! Phases of multi-turn sessions run in `sessions` (turns depend on earlier answers).
//! A replayed trace is open loop with the trace's own offsets (`plan::Replay`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

mod arrivals;
mod sessions;
pub mod shard;
pub mod timer;

use arrivals::phase_offsets;
pub use arrivals::{arrival_offsets, shaped_offsets};
pub use sessions::{SessionWork, Turn};
pub use timer::Pacer;

use crate::clock::{Clock, Instant};
use crate::plan::{Phase, Shape, Shard};

/// One request released by the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatch {
    /// Run-wide request index.
    pub id: u64,
    pub phase_index: usize,
    /// When the schedule meant it to start (µs on the run clock).
    pub intended_us: u64,
    /// When the scheduler actually released it.
    pub dispatched_us: u64,
    /// When it got a concurrency slot; `None` if the run stopped while it was queued.
    pub admitted_us: Option<u64>,
}

/// What the scheduler shares with the rest of the run.
pub struct Scheduler<T> {
    pub clock: Clock,
    /// Next run-wide request id.
    next_id: u64,
    /// Next run-wide session number (session phases).
    next_session: u64,
    /// Ready-made payloads in request-id order (prompt generation runs ahead of the scheduler).
    feed: Arc<Mutex<mpsc::Receiver<T>>>,
    /// Cancelled on the first Ctrl-C: no new arrivals, queued ones are released as cancelled.
    stop: CancellationToken,
    /// How arrivals wait for their deadline.
    pacer: Pacer,
    /// This process's shard of a sharded run.
    shard: Option<Shard>,
}

/// What happened in one phase, as the scheduler saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseRun {
    pub started_us: u64,
    pub dispatched: u64,
    pub ended_us: u64,
    /// The feed ran dry (a prompt generator ended or failed) before the phase's bound.
    pub feed_exhausted: bool,
}

impl<T: Send + 'static> Scheduler<T> {
    pub fn new(clock: Clock, feed: mpsc::Receiver<T>, stop: CancellationToken) -> Self {
        Self {
            clock,
            next_id: 0,
            next_session: 0,
            feed: Arc::new(Mutex::new(feed)),
            stop,
            pacer: Pacer::Precise,
            shard: None,
        }
    }

    /// Sends shard `shard`'s share of each phase, with global request ids.
    pub fn with_shard(mut self, shard: Option<Shard>) -> Self {
        self.shard = shard;
        self.next_id = shard.map_or(0, |s| s.global(0));
        self.next_session = self.next_id;
        self
    }

    /// The id after `id` (the next one of this shard's).
    fn after(&self, id: u64) -> u64 {
        id + self.shard.map_or(1, |s| u64::from(s.count))
    }

    /// Waits for deadlines with `pacer` (tests on tokio's paused clock use `Pacer::Tokio`).
    pub fn with_pacer(mut self, pacer: Pacer) -> Self {
        self.pacer = pacer;
        self
    }

    /// Takes payloads from `feed` from now on (a phase with its own requests, a replayed
    /// trace), returning the feed it took them from before.
    pub fn swap_feed(&mut self, feed: mpsc::Receiver<T>) -> Arc<Mutex<mpsc::Receiver<T>>> {
        std::mem::replace(&mut self.feed, Arc::new(Mutex::new(feed)))
    }

    /// Takes payloads from `feed` again (what `swap_feed` returned).
    pub fn restore_feed(&mut self, feed: Arc<Mutex<mpsc::Receiver<T>>>) {
        self.feed = feed;
    }

    /// Runs one phase to its bound, then waits for all of its requests to finish.
    /// `exec` performs one request; it is called once per dispatch, queued or not.
    pub async fn run_phase<F, Fut>(
        &mut self,
        phase_index: usize,
        phase: &Phase,
        exec: F,
    ) -> PhaseRun
    where
        F: Fn(Dispatch, T) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shared;
        let phase = match self.shard {
            Some(s) => {
                shared = shard::phase_share(phase, s);
                &shared
            }
            None => phase,
        };
        let started_us = self.clock.now_us();
        let deadline = phase
            .duration
            .map(|d| self.clock.instant_at(started_us) + d);
        let mut run = match phase.rate {
            Some(rate) => {
                self.open_loop(phase_index, phase, rate, started_us, exec)
                    .await
            }
            None => self.closed_loop(phase_index, phase, deadline, exec).await,
        };
        run.started_us = started_us;
        run.ended_us = self.clock.now_us();
        run
    }

    async fn open_loop<F, Fut>(
        &mut self,
        phase_index: usize,
        phase: &Phase,
        rate: f64,
        started_us: u64,
        exec: F,
    ) -> PhaseRun
    where
        F: Fn(Dispatch, T) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let slots = match &phase.ramp.concurrency {
            Some(shape) => Some(Arc::new(Semaphore::new(level(shape, 0.0)))),
            None => phase
                .concurrency
                .map(|c| Arc::new(Semaphore::new(c as usize))),
        };
        let mut in_flight = JoinSet::new();
        let mut run = PhaseRun::default();
        let start = self.clock.instant_at(started_us);
        let offsets = shard::offsets(phase, rate, self.shard);
        let _controller = match (&phase.ramp.concurrency, &slots, phase.duration) {
            (Some(shape), Some(slots), Some(d)) => Some(AbortOnDrop(tokio::spawn(
                control_concurrency(shape.clone(), slots.clone(), start, d, self.pacer),
            ))),
            _ => None,
        };
        for offset in offsets {
            if phase.duration.is_some_and(|d| offset >= d)
                || phase.requests.is_some_and(|n| run.dispatched >= n)
                || self.stop.is_cancelled()
            {
                break;
            }
            // Take the payload before waiting, so a slow generator shows up as lateness.
            let Some(payload) = self.feed.lock().await.recv().await else {
                run.feed_exhausted = true;
                break;
            };
            let intended = start + offset;
            tokio::select! {
                _ = self.pacer.sleep_until(intended) => {}
                _ = self.stop.cancelled() => break,
            }
            let dispatched_us = self.clock.now_us();
            // A free slot is taken here, at release, so queue time is the wait for a slot only,
            // never the spawned task's start-up: only a full cap makes an arrival wait.
            let slot = match &slots {
                None => Slot::Held(None),
                Some(slots) => match slots.clone().try_acquire_owned() {
                    Ok(permit) => Slot::Held(Some(permit)),
                    Err(_) => Slot::Wait(slots.clone()),
                },
            };
            let dispatch = Dispatch {
                id: self.next_id,
                phase_index,
                intended_us: self.clock.us_at(intended),
                dispatched_us,
                admitted_us: matches!(slot, Slot::Held(_)).then_some(dispatched_us),
            };
            self.next_id = self.after(self.next_id);
            run.dispatched += 1;
            let (exec, stop, clock) = (exec.clone(), self.stop.clone(), self.clock);
            in_flight.spawn(async move {
                let mut dispatch = dispatch;
                let _permit = match slot {
                    Slot::Held(permit) => permit,
                    Slot::Wait(slots) => tokio::select! {
                        // A stopped run admits no one, even a waiter whose slot just freed.
                        biased;
                        _ = stop.cancelled() => return exec(dispatch, payload).await,
                        // FIFO: tokio's semaphore serves waiters in order (a free permit is
                        // only left over when nobody waits, so taking one never jumps the queue).
                        permit = slots.acquire_owned() => {
                            dispatch.admitted_us = Some(clock.now_us());
                            Some(permit.expect("semaphore never closed"))
                        }
                    },
                };
                exec(dispatch, payload).await
            });
            while in_flight.try_join_next().is_some() {}
        }
        while in_flight.join_next().await.is_some() {}
        run
    }

    async fn closed_loop<F, Fut>(
        &mut self,
        phase_index: usize,
        phase: &Phase,
        deadline: Option<Instant>,
        exec: F,
    ) -> PhaseRun
    where
        F: Fn(Dispatch, T) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let lanes = phase.concurrency.unwrap_or(1).max(1);
        // Shared by the lanes: the next id and how many were sent, taken together with the payload.
        let counter = Arc::new(Mutex::new((self.next_id, 0_u64, false)));
        let step = self.after(0);
        let mut set = JoinSet::new();
        for _ in 0..lanes {
            let (exec, feed, stop, clock, counter) = (
                exec.clone(),
                self.feed.clone(),
                self.stop.clone(),
                self.clock,
                counter.clone(),
            );
            let limit = phase.requests;
            set.spawn(async move {
                loop {
                    if stop.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let (dispatch, payload) = {
                        let mut c = counter.lock().await;
                        if limit.is_some_and(|n| c.1 >= n) {
                            break;
                        }
                        let Some(payload) = feed.lock().await.recv().await else {
                            c.2 = true;
                            break;
                        };
                        let now = clock.now_us();
                        let d = Dispatch {
                            id: c.0,
                            phase_index,
                            intended_us: now,
                            dispatched_us: now,
                            admitted_us: Some(now),
                        };
                        c.0 += step;
                        c.1 += 1;
                        (d, payload)
                    };
                    exec(dispatch, payload).await;
                }
            });
        }
        while set.join_next().await.is_some() {}
        let (next_id, dispatched, feed_exhausted) = *counter.lock().await;
        self.next_id = next_id;
        PhaseRun {
            dispatched,
            feed_exhausted,
            ..PhaseRun::default()
        }
    }
}

/// An arrival's concurrency slot at release: held (taken, or no cap), or to wait for.
enum Slot {
    Held(Option<OwnedSemaphorePermit>),
    Wait(Arc<Semaphore>),
}

/// The concurrency cap `frac` of the way through a phase (at least 1).
fn level(shape: &Shape, frac: f64) -> usize {
    shape.at(frac).floor().max(1.0) as usize
}

/// Follows a concurrency shape: adds slots as it rises; as it falls, takes free slots out
/// (waiting for in-flight requests to finish, never cutting one short).
async fn control_concurrency(
    shape: Shape,
    slots: Arc<Semaphore>,
    start: Instant,
    d: Duration,
    pacer: Pacer,
) {
    const TICK: Duration = Duration::from_millis(10);
    let mut current = level(&shape, 0.0);
    let mut at = Duration::ZERO;
    while at < d {
        at += TICK;
        pacer.sleep_until(start + at).await;
        let want = level(&shape, at.as_secs_f64() / d.as_secs_f64());
        if want > current {
            slots.add_permits(want - current);
        } else if want < current {
            let take = (current - want) as u32;
            if let Ok(p) = slots.clone().acquire_many_owned(take).await {
                p.forget();
            }
        }
        current = want;
    }
}

/// Aborts a background task when dropped (the concurrency controller ends with its phase).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Arrival;
    use std::sync::Mutex as StdMutex;

    fn phase(rate: Option<f64>, duration_ms: Option<u64>, requests: Option<u64>) -> Phase {
        Phase {
            name: "p".into(),
            duration: duration_ms.map(Duration::from_millis),
            requests,
            rate,
            concurrency: None,
            arrival: Arrival::Constant,
            seed: 7,
            warmup: false,
            ramp: Default::default(),
            sweep: None,
            replay: None,
            cancel: None,
        }
    }

    /// Runs `phase` on tokio's paused clock over a feed of `feed_len` payloads; each request
    /// takes `service` (virtual time). Returns the run and every dispatch, in completion order.
    async fn collect_with(
        phase: Phase,
        feed_len: usize,
        service: Duration,
    ) -> (PhaseRun, Vec<Dispatch>) {
        let (tx, rx) = mpsc::channel(feed_len.max(1));
        for i in 0..feed_len {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let mut s =
            Scheduler::new(Clock::start(), rx, CancellationToken::new()).with_pacer(Pacer::Tokio);
        let sink = seen.clone();
        let run = s
            .run_phase(0, &phase, move |d, payload: usize| {
                let sink = sink.clone();
                async move {
                    assert_eq!(d.id as usize, payload, "payloads follow request ids");
                    tokio::time::sleep(service).await;
                    sink.lock().unwrap().push(d);
                }
            })
            .await;
        let seen = seen.lock().unwrap().clone();
        (run, seen)
    }

    async fn collect(phase: Phase, feed_len: usize) -> (PhaseRun, Vec<Dispatch>) {
        collect_with(phase, feed_len, Duration::from_millis(5)).await
    }

    fn by_id(mut seen: Vec<Dispatch>) -> Vec<Dispatch> {
        seen.sort_by_key(|d| d.id);
        seen
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_sends_rate_times_duration() {
        let (run, seen) = collect(phase(Some(20.0), Some(1_000), None), 100).await;
        assert_eq!(run.dispatched, 20);
        assert_eq!(seen.len(), 20);
        assert!(!run.feed_exhausted);
    }

    #[tokio::test(start_paused = true)]
    async fn a_constant_phase_sends_exactly_rate_times_duration_on_time() {
        let (run, seen) = collect(phase(Some(20.0), Some(10_000), None), 1_000).await;
        assert_eq!(run.dispatched, 200);
        for (i, d) in by_id(seen).iter().enumerate() {
            assert_eq!(d.intended_us, i as u64 * 50_000, "arrival {i}");
            assert_eq!(
                d.dispatched_us, d.intended_us,
                "no lateness on the paused clock"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_seeded_poisson_phase_sends_its_exact_schedule() {
        let mut p = phase(Some(50.0), Some(10_000), None);
        p.arrival = Arrival::Poisson;
        p.seed = 3;
        let (run, seen) = collect(p, 2_000).await;
        // Seed 3 at 50 req/s puts 507 arrivals in the first 10 s (the mean is 500).
        assert_eq!(run.dispatched, 507);
        let expected: Vec<u64> = arrival_offsets(50.0, Arrival::Poisson, 3)
            .take(507)
            .map(crate::units::duration_us)
            .collect();
        let seen = by_id(seen);
        for (d, at) in seen.iter().zip(&expected) {
            assert!(
                d.intended_us.abs_diff(*at) <= 1,
                "{} vs {at}",
                d.intended_us
            );
            // tokio's timer wheel fires on whole milliseconds, on the paused clock too.
            assert!(d.dispatched_us - d.intended_us <= 1_000, "{d:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn request_bound_and_feed_end_stop_a_phase() {
        let (run, _) = collect(phase(Some(100.0), None, Some(7)), 100).await;
        assert_eq!(run.dispatched, 7);
        let (run, _) = collect(phase(Some(100.0), None, Some(50)), 5).await;
        assert_eq!(run.dispatched, 5);
        assert!(run.feed_exhausted);
    }

    #[tokio::test(start_paused = true)]
    async fn a_concurrency_cap_queues_in_order_and_never_drops() {
        // Arrivals every 1 ms, 2 slots, 5 ms per request: request k (k ≥ 2) gets a slot when
        // request k − 2 ends, at 5·⌊k/2⌋ + k mod 2 ms.
        let mut p = phase(Some(1000.0), None, Some(30));
        p.concurrency = Some(2);
        let (run, seen) = collect(p, 30).await;
        assert_eq!(run.dispatched, 30);
        let seen = by_id(seen);
        assert_eq!(seen.len(), 30);
        for (k, d) in seen.iter().enumerate() {
            let k = k as u64;
            let admitted_ms = if k < 2 { k } else { 5 * (k / 2) + k % 2 };
            assert_eq!(d.dispatched_us, k * 1_000, "request {k} released on time");
            assert_eq!(d.admitted_us, Some(admitted_ms * 1_000), "request {k}");
        }
    }

    /// Queue time is the wait for a slot only. Each request here blocks its thread for 2 ms
    /// before its first await (a busy runtime), so spawned tasks start well after their
    /// release; with no cap, or a cap never reached, every arrival is admitted when released.
    #[test]
    fn a_slow_task_start_is_not_queue_time() {
        for cap in [None, Some(100)] {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let seen = rt.block_on(async {
                let (tx, rx) = mpsc::channel(20);
                for i in 0..20 {
                    tx.send(i).await.unwrap();
                }
                let mut p = phase(Some(1000.0), None, Some(20));
                p.concurrency = cap;
                let seen = Arc::new(StdMutex::new(Vec::new()));
                let sink = seen.clone();
                let mut s = Scheduler::new(Clock::start(), rx, CancellationToken::new())
                    .with_pacer(Pacer::Tokio);
                s.run_phase(0, &p, move |d, _: usize| {
                    std::thread::sleep(Duration::from_millis(2));
                    sink.lock().unwrap().push(d);
                    async {}
                })
                .await;
                seen.lock().unwrap().clone()
            });
            assert_eq!(seen.len(), 20);
            for d in &seen {
                assert_eq!(d.admitted_us, Some(d.dispatched_us), "cap {cap:?}: {d:?}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_keeps_lanes_busy_until_the_bound() {
        let mut p = phase(None, None, Some(12));
        p.concurrency = Some(3);
        let (run, seen) = collect(p, 100).await;
        assert_eq!(run.dispatched, 12);
        let seen = by_id(seen);
        assert_eq!(
            seen.iter().map(|d| d.id).collect::<Vec<_>>(),
            (0..12).collect::<Vec<_>>()
        );
        // Three lanes of 5 ms requests: four rounds, each starting when the last ended.
        for (k, d) in seen.iter().enumerate() {
            assert_eq!(d.intended_us, (k as u64 / 3) * 5_000, "request {k}");
        }
        assert_eq!(run.ended_us - run.started_us, 20_000);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_releases_queued_requests_unadmitted() {
        let mut p = phase(Some(1000.0), None, Some(20));
        p.concurrency = Some(1);
        let (tx, rx) = mpsc::channel(20);
        for i in 0..20 {
            tx.send(i).await.unwrap();
        }
        let stop = CancellationToken::new();
        let mut s = Scheduler::new(Clock::start(), rx, stop.clone()).with_pacer(Pacer::Tokio);
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let sink = seen.clone();
        let stopper = stop.clone();
        s.run_phase(0, &p, move |d, _: usize| {
            let (sink, stopper) = (sink.clone(), stopper.clone());
            async move {
                if d.admitted_us.is_some() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    stopper.cancel();
                }
                sink.lock().unwrap().push(d);
            }
        })
        .await;
        let seen = seen.lock().unwrap();
        // The first request held the one slot for 100 ms; arrivals 1..=19 came meanwhile and
        // were released unadmitted when the run stopped.
        assert_eq!(seen.len(), 20);
        assert_eq!(seen.iter().filter(|d| d.admitted_us.is_some()).count(), 1);
    }
}
