//! The request feed: ready-to-send request bodies, made ahead of the scheduler.
//!
//! A producer thread builds the body of request 0, 1, 2, ... (calling the script's prompt
//! function where there is one) into a bounded channel, so generating a prompt never delays an
//! arrival. The scheduler takes bodies in order, so request `id` always gets prompt `id`.
//! When the run ends the producer is told to stop and is not waited for: it makes no prompt
//! after the one in hand.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::client::build_body;
use crate::plan::{Cancel, Content, Prompt, RequestSpec};

/// How many bodies the producer keeps ready.
pub const AHEAD: usize = 1024;

/// The producer's end: the scheduler reads `bodies`; `status` says why the feed stopped early.
pub struct Feed {
    pub bodies: mpsc::Receiver<Bytes>,
    pub status: FeedStatus,
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
    /// Starts producing bodies for `spec` addressed to `model`. A generator error after
    /// `cancel` (the run is stopping) is the stop, not a failure.
    pub fn start(spec: &RequestSpec, model: &str, cancel: Cancel) -> Self {
        let (tx, rx) = mpsc::channel(AHEAD);
        let (spec, model) = (spec.clone(), model.to_owned());
        let status = FeedStatus::default();
        let shared = status.clone();
        std::thread::Builder::new()
            .name("llmbench-feed".into())
            .spawn(move || {
                let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    produce(&spec, &model, &tx, &shared)
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
        Self { bodies: rx, status }
    }
}

fn produce(
    spec: &RequestSpec,
    model: &str,
    tx: &mpsc::Sender<Bytes>,
    status: &FeedStatus,
) -> Result<(), String> {
    let fixed = match &spec.prompt {
        Prompt::Text(text) => Some(Content::Text(text.clone())),
        Prompt::Messages(m) => Some(Content::Messages(m.clone())),
        Prompt::Generated(_) => None,
    };
    if let Some(content) = fixed {
        let body = build_body(spec, model, &content)?;
        while !status.stopped() && tx.blocking_send(body.clone()).is_ok() {}
        return Ok(());
    }
    let Prompt::Generated(generator) = &spec.prompt else {
        unreachable!("fixed prompts returned above")
    };
    for index in 0.. {
        if status.stopped() {
            break;
        }
        let body = generator
            .generate(index)
            .and_then(|content| build_body(spec, model, &content))?;
        if tx.blocking_send(body).is_err() {
            break;
        }
    }
    Ok(())
}
