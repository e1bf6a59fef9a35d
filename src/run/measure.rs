//! The second stage of a run: the phases. Request bodies come from the feed (made ahead on
//! their own thread), the scheduler releases each at its intended time, the client performs it,
//! and every finished record goes through the bounded record channel to the sinks. A signal
//! stops new arrivals; in-flight requests get the grace period, then are cancelled. The first
//! phase starts once the feed has its first body, so start-up costs (a tokenizer loading) are
//! not counted as the first requests' lateness. What comes out (`Measured`) is plain data for
//! the finish stage.

use std::sync::Arc;

use crate::client::PhaseLabel;
use crate::plan::{Phase, Prompt, SweepStep};
use crate::record::RequestRecord;
use crate::run::feed::{Body, Feed};
use crate::run::progress::Progress;
use crate::run::sessions::SessionTurns;
use crate::schedule::{Dispatch, Scheduler};
use crate::stats::analysis::{Analysis, Analyzer};
use crate::telemetry::{Reading, ScrapeFailure};

use super::RunError;
use super::prepare::{Prepared, RunSetup};
use super::signals::Signals;
use super::sink::{RawSink, RecordPump, RecordSink, Sinks};

/// What measuring a run produced.
pub struct Measured {
    pub setup: RunSetup,
    /// Statistics and timeline over every record.
    pub analysis: Analysis,
    /// Telemetry readings on the run clock.
    pub readings: Vec<Reading>,
    /// Scraped endpoints whose scrapes failed.
    pub scrape_failures: Vec<ScrapeFailure>,
    /// Phases as they ran (a sweep step's rate is set from the measured saturation).
    pub ran_phases: Vec<Phase>,
    /// Throughput of a sweep's saturation phase, requests per second.
    pub saturation: Option<f64>,
    /// Share of the phases' wall time llmbench's request thread was on the CPU (one request
    /// thread only).
    pub busy_share: Option<f64>,
    /// Writing the raw records failed: the first error (naming the file) and how many records
    /// the file kept.
    pub write_error: Option<(String, u64)>,
    /// The prompt generator failed (a script error), which ended the run early.
    pub feed_error: Option<String>,
    /// Seconds from the run clock's origin to the end of the phases.
    pub wall_s: f64,
    /// How late the first phase started after `--start-at`, ms (0 when on time).
    pub start_late_ms: Option<f64>,
    /// A shard run's statistics state (its histograms and counters).
    pub histograms: Option<crate::stats::state::StatsState>,
}

impl Prepared {
    /// Runs every phase, feeding each record to the run's own sinks and to `others`.
    pub async fn measure(
        self,
        signals: &Signals,
        others: Vec<Box<dyn RecordSink>>,
    ) -> Result<Measured, RunError> {
        let Prepared {
            setup,
            raw,
            renderer: _,
            client,
            mut telemetry,
            live,
            mock,
        } = self;
        let (plan, clock) = (&setup.plan, setup.clock);
        let shard = setup.settings.shard;
        let feed = Feed::start_shard(&plan.request, &setup.model, plan.cancel.clone(), shard);
        let (replays, mut ready, replay_status) = replay_feeds(plan, &setup.model, shard);
        let mut sinks = Sinks {
            stats: Analyzer::new()
                .with_slo(plan.slo)
                .with_ramps(&plan.ramp_phases()),
            raw: raw.map(RawSink::new),
            others: vec![Box::new(Progress::new(
                plan.expected_requests(),
                setup.settings.progress,
            ))],
        };
        let view = live
            .as_ref()
            .map(|(v, _)| Box::new(v.clone()) as Box<dyn RecordSink>);
        sinks.others.extend(view.into_iter().chain(others));
        let (records, pump) = RecordPump::start(sinks)
            .map_err(|e| RunError::Usage(format!("cannot start the record writer: {e}")))?;

        ready.push(feed.ready);
        let scraped = telemetry.first_scrapes();
        let start_late_ms = ready_to_start(ready, scraped, setup.settings.start_at, signals).await;
        let mut scheduler =
            Scheduler::new(clock, feed.bodies, signals.stop.clone()).with_shard(shard);
        let busy = crate::host::BusyMeter::start();
        let shared = PhaseShared {
            client: client.clone(),
            records: records.clone(),
            abort: signals.abort.clone(),
            live: live.as_ref().map(|(l, _)| l.clone()),
            spec: Arc::new(plan.request.clone()),
            model: setup.model.as_str().into(),
            session_failure: Arc::default(),
            shard: shard.map(|s| s.index),
        };
        let (ran_phases, saturation) = shared
            .run_phases(&mut scheduler, &plan.phases, replays, signals)
            .await;
        let wall_s = crate::units::us_to_s(clock.now_us());
        let busy_share = busy.map(|b| b.busy_share());
        if let Some((_, server)) = &live {
            server.abort();
        }
        let collected = telemetry.stop().await;
        drop(scheduler);
        drop(records);
        // The producer stops at its next body; nobody waits for it to get there.
        let feed_error = replay_status
            .iter()
            .fold(feed.status.stop(), |e, s| e.or(s.stop()))
            .or_else(|| {
                shared
                    .session_failure
                    .lock()
                    .expect("session failure")
                    .clone()
            });
        drop(shared);
        let sinks = pump
            .join()
            .await
            .ok_or_else(|| RunError::Usage("the record writer stopped unexpectedly".into()))?;
        if let Some(m) = mock {
            tokio::task::spawn_blocking(move || m.stop()).await.ok();
        }
        Ok(Measured {
            setup,
            analysis: sinks.stats.finish(),
            histograms: shard.map(|_| sinks.stats.state()),
            readings: collected.readings,
            scrape_failures: collected.scrape_failures,
            ran_phases,
            saturation,
            busy_share,
            write_error: sinks.raw.and_then(|r| r.error.map(|e| (e, r.written))),
            feed_error,
            wall_s,
            start_late_ms,
        })
    }
}

/// The feeds of the phases that replay a trace (each made ahead from the start, its requests
/// the trace's own), by phase index, with their readiness and status.
#[allow(clippy::type_complexity)]
fn replay_feeds(
    plan: &crate::plan::Plan,
    model: &str,
    shard: Option<crate::plan::Shard>,
) -> (
    Vec<Option<tokio::sync::mpsc::Receiver<Body>>>,
    Vec<crate::run::feed::FeedReady>,
    Vec<crate::run::feed::FeedStatus>,
) {
    let (mut replays, mut ready, mut status) = (Vec::new(), Vec::new(), Vec::new());
    for p in &plan.phases {
        let own = p.replay.as_ref().map(|r| {
            let f = Feed::start_replay(&plan.request, r, model, &plan.cancel, shard);
            ready.push(f.ready);
            status.push(f.status);
            f.bodies
        });
        replays.push(own);
    }
    (replays, ready, status)
}

/// Waits until everything the run needs is loaded (every feed's first body), so start-up costs
/// are not the first requests' lateness, and every scraper has a reading from before the load
/// (`scraped`); then, with `--start-at`, until that time: how late the first phase then
/// starts, ms.
async fn ready_to_start(
    ready: Vec<crate::run::feed::FeedReady>,
    scraped: impl std::future::Future<Output = ()>,
    start_at: Option<chrono::DateTime<chrono::Utc>>,
    signals: &Signals,
) -> Option<f64> {
    let feeds = futures_util::future::join_all(ready.into_iter().map(|r| r.wait()));
    tokio::select! {
        _ = futures_util::future::join(feeds, scraped) => {}
        () = signals.stop.cancelled() => {}
    }
    match start_at {
        Some(at) => Some(wait_until(at, signals).await),
        None => None,
    }
}

/// Waits until the wall-clock time `at` (a stop ends the wait); returns how late it is then, ms
/// (0 when on time), and says so on stderr when late.
async fn wait_until(at: chrono::DateTime<chrono::Utc>, signals: &Signals) -> f64 {
    let ahead = (at - chrono::Utc::now()).to_std().ok();
    if let Some(ahead) = ahead {
        let deadline = crate::clock::Instant::now() + ahead;
        tokio::select! {
            () = crate::schedule::Pacer::Precise.sleep_until(deadline) => {}
            () = signals.stop.cancelled() => {}
        }
    }
    let late_us = (chrono::Utc::now() - at)
        .num_microseconds()
        .unwrap_or(i64::MAX);
    let late_ms = crate::units::us_to_ms(late_us.max(0) as u64);
    if late_ms > crate::stats::START_LATE_MS {
        eprintln!(
            "llmbench: this shard started {late_ms:.1} ms after --start-at {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
    }
    late_ms
}

/// What every phase's requests share.
struct PhaseShared {
    client: Arc<crate::client::Client>,
    records: tokio::sync::mpsc::Sender<RequestRecord>,
    abort: tokio_util::sync::CancellationToken,
    live: Option<Arc<crate::run::live::Live>>,
    spec: Arc<crate::plan::RequestSpec>,
    model: Arc<str>,
    /// A session function's first error (session phases).
    session_failure: Arc<std::sync::Mutex<Option<String>>>,
    /// This process's shard index, stamped on each record of a sharded run.
    shard: Option<u32>,
}

impl PhaseShared {
    /// Runs the phases in order (a sweep's steps at the rate its probe found) until the last,
    /// a stop, or the feed's end: the phases as run, and the probe's saturation rate.
    async fn run_phases(
        &self,
        scheduler: &mut Scheduler<Body>,
        phases: &[Phase],
        mut replays: Vec<Option<tokio::sync::mpsc::Receiver<Body>>>,
        signals: &Signals,
    ) -> (Vec<Phase>, Option<f64>) {
        let (mut ran_phases, mut saturation) = (Vec::new(), None);
        for (index, phase) in phases.iter().enumerate() {
            let phase = &crate::outcome::sweep::resolve(phase, saturation);
            ran_phases.push(phase.clone());
            let ran = self
                .run_replaying(scheduler, index, phase, replays[index].take())
                .await;
            if phase.sweep == Some(SweepStep::Saturation) {
                saturation = crate::outcome::sweep::saturation_rps(&ran);
            }
            if signals.stop.is_cancelled() || ran.feed_exhausted {
                break;
            }
        }
        (ran_phases, saturation)
    }

    /// `run`, with a replayed trace's own feed (`own`) in place of the run's for this phase.
    async fn run_replaying(
        &self,
        scheduler: &mut Scheduler<Body>,
        index: usize,
        phase: &Phase,
        own: Option<tokio::sync::mpsc::Receiver<Body>>,
    ) -> crate::schedule::PhaseRun {
        let before = own.map(|bodies| scheduler.swap_feed(bodies));
        let ran = self.run(scheduler, index, phase).await;
        if let Some(before) = before {
            scheduler.restore_feed(before);
        }
        ran
    }

    /// Runs one phase: of sessions when the request is `session(...)`, else of requests from
    /// the feed.
    async fn run(
        &self,
        scheduler: &mut Scheduler<Body>,
        index: usize,
        phase: &Phase,
    ) -> crate::schedule::PhaseRun {
        let label = Arc::new(PhaseLabel::of(phase));
        if let Prompt::Session(spec) = &self.spec.prompt {
            let work = SessionTurns {
                spec: self.spec.clone(),
                model: self.model.clone(),
                generator: spec.generator.clone(),
                client: self.client.clone(),
                label,
                records: self.records.clone(),
                abort: self.abort.clone(),
                live: self.live.clone(),
                failure: self.session_failure.clone(),
            };
            return scheduler.run_sessions(index, phase, spec.pace, work).await;
        }
        let (client, tx, abort) = (
            self.client.clone(),
            self.records.clone(),
            self.abort.clone(),
        );
        let view = self.live.clone();
        let shard = self.shard;
        let exec = move |dispatch: Dispatch, body: Body| {
            let (client, label, tx, abort) =
                (client.clone(), label.clone(), tx.clone(), abort.clone());
            if let Some(view) = view.as_ref().filter(|_| dispatch.admitted_us.is_some()) {
                view.sent();
            }
            // Taken here (sent now, or released unsent): its bytes leave the feed's budget.
            let body = body.take();
            async move {
                let mut record: RequestRecord =
                    client.execute(dispatch, &label, body, &abort).await;
                record.shard = shard;
                let _ = tx.send(record).await;
            }
        };
        scheduler.run_phase(index, phase, exec).await
    }
}
