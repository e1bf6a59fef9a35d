//! The request feed: ready-to-send requests, made ahead of the scheduler.
//!
//! A producer thread builds request 0, 1, 2, ... (calling the script's prompt function where
//! there is one; its shape gives the body, headers, `max_tokens` and label) into a bounded
//! channel, so generating a prompt never delays an
//! arrival. The scheduler takes bodies in order, so request `id` always gets prompt `id`. A
//! shard of a sharded run makes only its own requests' bodies: index, index + count, ...
//! When the run ends the producer is told to stop and is not waited for: it makes no prompt
//! after the one in hand. What is made ahead is bounded twice: at most `AHEAD` bodies and at
//! most `AHEAD_BYTES` of them (a script making 640 KB prompts keeps ~100 ready, not 1,024).
//! `Feed::ready` resolves once the first body is made (or the producer ended without one), so
//! a run can finish its start-up costs (loading a tokenizer, a dataset) before its first phase's
//! clock starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::client::{Outgoing, build_request};
use crate::plan::{Cancel, Prompt, Replay, RequestShape, RequestSpec, Shard};
use crate::stats::MAX_LABELS;

/// How many bodies the producer keeps ready.
pub const AHEAD: usize = 1024;
/// How many bytes of bodies the producer keeps ready (one larger body is always allowed).
pub const AHEAD_BYTES: usize = 64 * 1024 * 1024;

/// The producer's end: the scheduler reads `bodies`; `status` says why the feed stopped early;
/// `ready` says when the first body is there.
pub struct Feed {
    pub bodies: mpsc::Receiver<Body>,
    pub status: FeedStatus,
    pub ready: FeedReady,
}

/// Resolves once the producer has made its first body, or ended (finished or failed) without
/// making one.
pub struct FeedReady(oneshot::Receiver<()>);

impl FeedReady {
    /// Waits until the first body is in the feed or the producer has ended.
    pub async fn wait(self) {
        // An error is the producer ending before a first body: ready all the same.
        let _ = self.0.await;
    }
}

/// A ready request. Its body's bytes count toward `AHEAD_BYTES` until it is taken.
pub struct Body {
    request: Outgoing,
    ahead: Arc<Ahead>,
}

impl Body {
    /// The request; the producer may make another in its place.
    pub fn take(self) -> Outgoing {
        self.ahead.release(self.request.body.len());
        self.request
    }
}

/// Bytes of bodies made and not yet taken.
#[derive(Default)]
struct Ahead {
    bytes: Mutex<usize>,
    taken: std::sync::Condvar,
}

impl Ahead {
    /// Waits until `len` more bytes fit (or nothing is ahead), then counts them.
    fn reserve(&self, len: usize, status: &FeedStatus) {
        let mut ahead = self.bytes.lock().expect("feed budget lock");
        while *ahead > 0 && *ahead + len > AHEAD_BYTES && !status.stopped() {
            ahead = self
                .taken
                .wait_timeout(ahead, std::time::Duration::from_millis(50))
                .expect("feed budget lock")
                .0;
        }
        *ahead += len;
    }

    fn release(&self, len: usize) {
        *self.bytes.lock().expect("feed budget lock") -= len;
        self.taken.notify_one();
    }
}

/// Shared with the producer: its failure, and the run's word to stop.
#[derive(Clone, Default)]
pub struct FeedStatus {
    failure: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
}

impl FeedStatus {
    /// Tells the producer to stop and returns the generator's error, if it failed. The error is
    /// stored before the producer's channel closes, so a run that ended because the feed ran
    /// dry always sees it.
    pub fn stop(&self) -> Option<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.failure.lock().expect("feed status lock").clone()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn fail(&self, e: String) {
        *self.failure.lock().expect("feed status lock") = Some(e);
    }
}

impl Feed {
    /// The feed of a replayed trace: the run's request spec with the trace's requests (its
    /// request k is the trace's line k; a shard's, its own lines').
    pub fn start_replay(
        spec: &RequestSpec,
        replay: &Replay,
        model: &str,
        cancel: &Cancel,
        shard: Option<Shard>,
    ) -> Self {
        let spec = RequestSpec {
            prompt: Prompt::Generated(replay.requests.clone()),
            ..spec.clone()
        };
        Self::start_shard(&spec, model, cancel.clone(), shard)
    }

    /// Starts producing bodies for `spec` addressed to `model`. A generator error after
    /// `cancel` (the run is stopping) is the stop, not a failure.
    pub fn start(spec: &RequestSpec, model: &str, cancel: Cancel) -> Self {
        Self::start_shard(spec, model, cancel, None)
    }

    /// Starts producing the bodies of shard `shard`'s requests (every request without one).
    pub fn start_shard(
        spec: &RequestSpec,
        model: &str,
        cancel: Cancel,
        shard: Option<Shard>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(AHEAD);
        let (ready_tx, ready_rx) = oneshot::channel();
        let (spec, model) = (spec.clone(), model.to_owned());
        let status = FeedStatus::default();
        let shared = status.clone();
        std::thread::Builder::new()
            .name("llmbench-feed".into())
            .spawn(move || {
                let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    produce(&spec, &model, shard, &tx, &shared, ready_tx)
                }));
                match made {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) if cancel.is_cancelled() => {}
                    Ok(Err(e)) => shared.fail(e),
                    Err(_) => shared.fail("the prompt generator panicked".into()),
                }
                drop(tx);
            })
            .expect("the feed thread starts");
        Self {
            bodies: rx,
            status,
            ready: FeedReady(ready_rx),
        }
    }
}

/// Makes bodies until stopped or the generator ends; `ready` is told once the first is in the
/// channel (dropped unsent, it tells the same when the producer ends without one).
fn produce(
    spec: &RequestSpec,
    model: &str,
    shard: Option<Shard>,
    tx: &mpsc::Sender<Body>,
    status: &FeedStatus,
    ready: oneshot::Sender<()>,
) -> Result<(), String> {
    let ahead = Arc::new(Ahead::default());
    let mut ready = Some(ready);
    let mut send = |request: Outgoing| {
        ahead.reserve(request.body.len(), status);
        let ahead = ahead.clone();
        let sent = tx.blocking_send(Body { request, ahead }).is_ok();
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        sent
    };
    let fixed = match &spec.prompt {
        Prompt::Text(text) => Some(crate::plan::Content::Text(text.clone())),
        Prompt::Messages(m) => Some(crate::plan::Content::Messages(m.clone())),
        Prompt::Generated(_) => None,
        // Sessions make each turn when it is due (`run::sessions`): nothing to make ahead.
        Prompt::Session(_) => return Ok(()),
    };
    if let Some(content) = fixed {
        let request = build_request(spec, model, &RequestShape::from(content), 0)?;
        while !status.stopped() && send(request.clone()) {}
        return Ok(());
    }
    let Prompt::Generated(generator) = &spec.prompt else {
        unreachable!("fixed prompts returned above")
    };
    let mut labels = std::collections::BTreeSet::new();
    for j in 0.. {
        let index = shard.map_or(j, |s| s.global(j));
        if status.stopped() {
            break;
        }
        let shape = generator.shape(index)?;
        if let Some(label) = &shape.label
            && !labels.contains(label)
        {
            if labels.len() == MAX_LABELS {
                return Err(format!(
                    "request {index}: label {label:?} would be label number {}; a run has at most {MAX_LABELS} distinct labels (they name classes of requests)",
                    MAX_LABELS + 1
                ));
            }
            labels.insert(label.clone());
        }
        if !send(build_request(spec, model, &shape, index)?) {
            break;
        }
    }
    Ok(())
}

/// Makes the bodies of requests `indices` as the feed would (for sessions: every turn of
/// sessions `indices`), and drops them: the first error, naming its request. `llmbench check` and a run's first stage call it, so a prompt function
/// that fails is found before the first request.
pub fn try_requests(spec: &RequestSpec, model: &str, indices: &[u64]) -> Result<(), String> {
    for &index in indices {
        let shape = match &spec.prompt {
            Prompt::Text(text) => RequestShape::from(crate::plan::Content::Text(text.clone())),
            Prompt::Messages(m) => RequestShape::from(crate::plan::Content::Messages(m.clone())),
            Prompt::Generated(generator) => generator
                .shape(index)
                .map_err(|e| format!("the prompt function fails for request {index}: {e}"))?,
            Prompt::Session(session) => {
                super::sessions::try_session(spec, model, session, index)?;
                continue;
            }
        };
        build_request(spec, model, &shape, index)
            .map_err(|e| format!("the prompt for request {index}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_of(prompt: &str) -> Feed {
        let plan = crate::script::load_source(
            std::path::Path::new("feed.rhai"),
            &format!(
                "request(#{{ prompt: {prompt}, max_tokens: 1 }}); phase(\"p\", #{{ requests: 4 }});"
            ),
            &crate::config::Configs::new("/nonexistent"),
            &Default::default(),
        )
        .unwrap();
        Feed::start(&plan.request, "m", plan.cancel.clone())
    }

    #[tokio::test]
    async fn ready_means_the_first_body_is_there_or_the_producer_ended() {
        let Feed {
            mut bodies,
            status,
            ready,
        } = feed_of("|i| `prompt ${i}`");
        ready.wait().await;
        assert!(bodies.try_recv().is_ok(), "a body is ready");
        status.stop();

        // A generator that fails on its first prompt ends the producer: ready, no body, the error.
        let Feed {
            mut bodies,
            status,
            ready,
        } = feed_of("|i| { throw \"no prompt\"; }");
        ready.wait().await;
        assert!(bodies.recv().await.is_none(), "no body");
        assert!(status.stop().unwrap().contains("no prompt"));
    }

    #[tokio::test]
    async fn a_run_has_at_most_max_labels_distinct_labels() {
        let Feed {
            mut bodies, status, ..
        } = feed_of("|i| #{ prompt: \"p\", label: `l${i % 100}`, max_tokens: i + 1 }");
        let mut made = Vec::new();
        while let Some(b) = bodies.recv().await {
            made.push(b.take());
        }
        assert_eq!(
            made.len(),
            MAX_LABELS,
            "one request per new label up to the limit"
        );
        assert_eq!(made[5].label.as_deref(), Some("l5"));
        assert_eq!(made[5].max_tokens, Some(6));
        let err = status.stop().unwrap();
        assert!(
            err.contains("request 64") && err.contains("at most 64"),
            "{err}"
        );
    }

    #[test]
    fn big_prompts_are_made_ahead_by_bytes_not_only_by_count() {
        let feed = feed_of("|i| words(100000)");
        // Wait until the producer stops adding (it blocks on the byte budget).
        let (mut last, mut still) = (0, 0);
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let n = feed.bodies.len();
            still = if n == last { still + 1 } else { 0 };
            last = n;
            if still >= 10 && n > 0 {
                break;
            }
        }
        let mut bodies = feed.bodies;
        let one = bodies.try_recv().unwrap().take().body.len();
        assert!(one > 500_000, "{one}");
        assert!(
            last <= AHEAD_BYTES / one + 1,
            "{last} bodies of {one} bytes ahead"
        );
        assert!(last < AHEAD);
        feed.status.stop();
    }
}
