//! The request feed: ready-to-send request bodies, made ahead of the scheduler.
//!
//! A producer thread builds the body of request 0, 1, 2, ... (calling the script's prompt
//! function where there is one) into a bounded channel, so generating a prompt never delays an
//! arrival. The scheduler takes bodies in order, so request `id` always gets prompt `id`.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::client::build_body;
use crate::plan::{Content, Prompt, RequestSpec};

/// How many bodies the producer keeps ready.
pub const AHEAD: usize = 1024;

/// The producer's end: the scheduler reads `bodies`; `failure` says why the feed stopped early.
pub struct Feed {
    pub bodies: mpsc::Receiver<Bytes>,
    failure: std::thread::JoinHandle<Option<String>>,
}

impl Feed {
    /// Starts producing bodies for `spec` addressed to `model`.
    pub fn start(spec: &RequestSpec, model: &str) -> Self {
        let (tx, rx) = mpsc::channel(AHEAD);
        let spec = spec.clone();
        let model = model.to_owned();
        let failure = std::thread::Builder::new()
            .name("llmbench-feed".into())
            .spawn(move || produce(&spec, &model, &tx))
            .expect("the feed thread starts");
        Self {
            bodies: rx,
            failure,
        }
    }

    /// Splits the feed into the receiver and a handle that reports a generator failure.
    pub fn split(self) -> (mpsc::Receiver<Bytes>, FeedStatus) {
        (self.bodies, FeedStatus(self.failure))
    }
}

/// Tells, once the run is over, whether the prompt generator failed.
pub struct FeedStatus(std::thread::JoinHandle<Option<String>>);

impl FeedStatus {
    /// The generator's error, if it stopped with one. Call after the receiver is dropped.
    pub fn failure(self) -> Option<String> {
        self.0
            .join()
            .unwrap_or_else(|_| Some("the prompt generator panicked".into()))
    }
}

fn produce(spec: &RequestSpec, model: &str, tx: &mpsc::Sender<Bytes>) -> Option<String> {
    let fixed = match &spec.prompt {
        Prompt::Text(text) => Some(Content::Text(text.clone())),
        Prompt::Messages(m) => Some(Content::Messages(m.clone())),
        Prompt::Generated(_) => None,
    };
    if let Some(content) = fixed {
        let body = match build_body(spec, model, &content) {
            Ok(b) => b,
            Err(e) => return Some(e),
        };
        while tx.blocking_send(body.clone()).is_ok() {}
        return None;
    }
    let Prompt::Generated(generator) = &spec.prompt else {
        unreachable!("fixed prompts returned above")
    };
    for index in 0.. {
        let body = generator
            .generate(index)
            .and_then(|content| build_body(spec, model, &content));
        match body {
            Ok(body) => {
                if tx.blocking_send(body).is_err() {
                    return None;
                }
            }
            Err(e) => return Some(e),
        }
    }
    None
}
