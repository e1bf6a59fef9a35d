//! Sharding a phase: what shard I of N sends of a phase's load, so that the N shards together
//! send the single-process schedule.
//!
//! - Constant arrivals (at a fixed rate or along a rate shape) and a replayed trace's lines are
//!   deterministic: the shard walks the global schedule and keeps arrival (or line) k when
//!   `Shard::owns(k)` (round-robin), so the union of the shards' intended starts is exactly the
//!   single-process schedule, and line k's request is the trace's line k whichever shard sends it.
//! - Poisson arrivals: the shard runs its own seeded substream at rate/N (the shape's values
//!   divided by N); the superposition of N independent Poisson processes at rate/N is a Poisson
//!   process at the full rate.
//! - A request count, a concurrency cap (or a concurrency shape) and closed-loop users split as
//!   evenly as possible (`Shard::share`).
//! - Multi-turn sessions are dealt by session: an open loop's session arrivals like any
//!   arrivals, a closed loop's users as above, and shard I numbers its sessions I, I + N, ...,
//!   so session s has the same turns whichever shard runs it. A request bound splits by turns.
//!
//! `check` refuses what cannot be split: a capacity sweep (its rates come from a probe each
//! shard would measure alone), a cap or a user count smaller than N.

use crate::plan::{Arrival, Phase, Plan, Shape, Shard};
use std::time::Duration;

/// Whether shard `shard` keeps only its own arrivals of `phase`'s global schedule (constant
/// arrivals, a replayed trace's lines), rather than running a substream of its own (Poisson).
pub fn deals_global_schedule(phase: &Phase) -> bool {
    phase.arrival == Arrival::Constant || phase.replay.is_some()
}

/// The phase shard `shard` runs. With constant arrivals the rate and rate shape stay global
/// (the scheduler deals the global schedule); the rest is the shard's share.
pub fn phase_share(phase: &Phase, shard: Shard) -> Phase {
    let n = f64::from(shard.count);
    let mut p = phase.clone();
    p.requests = phase.requests.map(|r| shard.share(r));
    p.concurrency = phase
        .concurrency
        .map(|c| shard.share(u64::from(c)).max(1) as u32);
    p.ramp.concurrency = phase.ramp.concurrency.as_ref().map(|s| scaled(s, n));
    if !deals_global_schedule(phase) {
        p.rate = phase.rate.map(|r| r / n);
        p.ramp.rate = phase.ramp.rate.as_ref().map(|s| scaled(s, n));
        p.seed = shard.substream_seed(phase.seed);
    }
    p
}

fn scaled(shape: &Shape, n: f64) -> Shape {
    match shape {
        Shape::Linear { from, to } => Shape::Linear {
            from: from / n,
            to: to / n,
        },
        Shape::Steps(v) => Shape::Steps(v.iter().map(|x| x / n).collect()),
    }
}

/// Why `plan` cannot be split into `shard.count` shards, naming the phase and the fix.
pub fn check(plan: &Plan, shard: Shard) -> Result<(), String> {
    let n = shard.count;
    for p in &plan.phases {
        if p.sweep.is_some() {
            return Err(format!(
                "phase {:?} is part of a capacity sweep, which cannot be sharded (each shard would probe the server's saturation alone); run the sweep in one process, then shard a plan at the rate it found",
                p.name
            ));
        }
        let cap = match (&p.ramp.concurrency, p.concurrency) {
            (Some(shape), _) => Some(shape.max().floor() as u64),
            (None, c) => c.map(u64::from),
        };
        if let Some(c) = cap.filter(|c| *c < u64::from(n)) {
            let what = if p.is_open_loop() {
                "a concurrency cap"
            } else {
                "users (concurrency)"
            };
            return Err(format!(
                "phase {:?} has {what} of {c}, fewer than the {n} shards: each shard needs at least one; raise the phase's concurrency to {n} or more, or run fewer shards",
                p.name
            ));
        }
    }
    Ok(())
}

/// The arrival offsets of an open-loop phase at `rate` (or along its rate shape); a shard of a
/// constant schedule keeps its own arrivals of the global one.
pub fn offsets(
    phase: &Phase,
    rate: f64,
    shard: Option<Shard>,
) -> Box<dyn Iterator<Item = Duration> + Send> {
    let offsets = super::phase_offsets(phase, rate);
    match shard {
        Some(s) if deals_global_schedule(phase) => Box::new(
            offsets
                .enumerate()
                .filter(move |(k, _)| s.owns(*k as u64))
                .map(|(_, o)| o),
        ),
        _ => offsets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::schedule::{Dispatch, Pacer, Scheduler};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    /// The dispatches of `phase` run as `shard` on tokio's paused clock (1 ms per request);
    /// payloads are the feed's global indices, as `Feed` makes them.
    async fn dispatches(phase: &Phase, shard: Option<Shard>) -> Vec<Dispatch> {
        let (tx, rx) = mpsc::channel(4096);
        let mut j = 0;
        while tx.try_send(shard.map_or(j, |s| s.global(j))).is_ok() {
            j += 1;
        }
        drop(tx);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let mut s = Scheduler::new(Clock::start(), rx, CancellationToken::new())
            .with_pacer(Pacer::Tokio)
            .with_shard(shard);
        s.run_phase(0, phase, move |d, payload: u64| {
            assert_eq!(d.id, payload, "request i gets prompt i");
            let sink = sink.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                sink.lock().unwrap().push(d);
            }
        })
        .await;
        let mut v = seen.lock().unwrap().clone();
        v.sort_by_key(|d| d.id);
        v
    }

    #[tokio::test(start_paused = true)]
    async fn shards_of_a_constant_phase_send_exactly_the_single_schedule() {
        let mut p = phase(Arrival::Constant);
        p.requests = None;
        p.concurrency = None;
        p.duration = Some(Duration::from_millis(1_030));
        let single: Vec<(u64, u64)> = dispatches(&p, None)
            .await
            .iter()
            .map(|d| (d.id, d.intended_us))
            .collect();
        assert_eq!(single.len(), 42);
        let mut union = Vec::new();
        for i in 0..4 {
            let s = Shard::new(i, 4).unwrap();
            let mine = dispatches(&p, Some(s)).await;
            assert!(mine.iter().all(|d| s.owns(d.id)));
            union.extend(mine.iter().map(|d| (d.id, d.intended_us)));
        }
        union.sort();
        assert_eq!(union, single);
        // A request bound splits too.
        p.requests = Some(10);
        let sent: usize = futures_util::future::join_all(
            (0..4)
                .map(|i| dispatches(&p, Shard::new(i, 4)))
                .collect::<Vec<_>>(),
        )
        .await
        .iter()
        .map(Vec::len)
        .sum();
        assert_eq!(sent, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_users_and_requests_split_evenly() {
        let mut p = phase(Arrival::Constant);
        p.rate = None;
        p.duration = None;
        p.requests = Some(10);
        p.concurrency = Some(6);
        let mut ids = Vec::new();
        for i in 0..4 {
            let s = Shard::new(i, 4).unwrap();
            assert_eq!(
                phase_share(&p, s).concurrency,
                Some(if i < 2 { 2 } else { 1 })
            );
            ids.extend(dispatches(&p, Some(s)).await.iter().map(|d| d.id));
        }
        ids.sort();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_sweep_or_too_few_users_cannot_be_sharded() {
        let mut plan = crate::script::load_source(
            std::path::Path::new("s.rhai"),
            "request(#{ prompt: \"p\", max_tokens: 1 }); phase(\"p\", #{ requests: 4, concurrency: 2 });",
            &crate::config::Configs::new("/nonexistent"),
            &Default::default(),
        )
        .unwrap();
        let four = Shard::new(0, 4).unwrap();
        assert!(
            check(&plan, four)
                .unwrap_err()
                .contains("fewer than the 4 shards")
        );
        assert!(check(&plan, Shard::new(0, 2).unwrap()).is_ok());
        plan.phases[0].sweep = Some(crate::plan::SweepStep::Saturation);
        assert!(
            check(&plan, Shard::new(0, 2).unwrap())
                .unwrap_err()
                .contains("capacity sweep")
        );
    }

    fn phase(arrival: Arrival) -> Phase {
        Phase {
            name: "p".into(),
            duration: Some(Duration::from_secs(10)),
            requests: Some(10),
            rate: Some(40.0),
            concurrency: Some(7),
            arrival,
            seed: 3,
            warmup: false,
            ramp: Default::default(),
            sweep: None,
            replay: None,
            cancel: None,
        }
    }

    #[test]
    fn constant_phases_keep_the_global_rate_poisson_ones_split_it() {
        let s = Shard::new(3, 4).unwrap();
        let c = phase_share(&phase(Arrival::Constant), s);
        assert_eq!(
            (c.rate, c.requests, c.concurrency, c.seed),
            (Some(40.0), Some(2), Some(1), 3)
        );
        let p = phase_share(&phase(Arrival::Poisson), s);
        assert_eq!((p.rate, p.requests), (Some(10.0), Some(2)));
        assert_ne!(p.seed, 3);
    }
}
