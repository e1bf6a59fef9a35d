//! One mock response as it is generated: the token stream on its deadlines (and its end held
//! back by the tail), the faults that strike mid-response, and the counting of how each response
//! ended.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Fault, Kind, MockStats, MockTiming};
use crate::clock::Instant;

/// Words the mock "generates", one token each.
const WORDS: [&str; 8] = [
    " lorem",
    " ipsum",
    " dolor",
    " sit",
    " amet",
    " consectetur",
    " adipiscing",
    " elit",
];

/// Adds to the mock's counters; a request without an id counts only as `unlabelled`.
#[derive(Clone)]
pub(super) struct Tally {
    pub(super) stats: Arc<Mutex<MockStats>>,
    pub(super) labelled: bool,
}

impl Tally {
    pub(super) fn count(&self, f: impl FnOnce(&mut MockStats)) {
        if self.labelled {
            f(&mut self.stats.lock().expect("mock stats lock"));
        }
    }
}

/// How a response body ended, counted exactly once: completed, cut by a fault, or (when dropped
/// before either) the client went away.
struct Ending {
    tally: Tally,
    settled: bool,
}

impl Ending {
    fn settle(&mut self, f: impl FnOnce(&mut MockStats)) {
        if !self.settled {
            self.settled = true;
            self.tally.count(f);
        }
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.settle(|c| c.client_gone += 1);
    }
}

/// One response being generated.
pub(super) struct Generation {
    pub(super) kind: Kind,
    pub(super) model: String,
    pub(super) created: u64,
    pub(super) prompt_tokens: u64,
    /// Prompt tokens the prefix cache served (`None`: no cache, not reported).
    pub(super) cached_tokens: Option<u64>,
    pub(super) tokens: u64,
    pub(super) first_at: Instant,
    pub(super) itl: Duration,
    /// Wait between the last token and the stream's end (usage chunk, `[DONE]`).
    pub(super) tail: Duration,
    /// Drop, garbage and stall strike before token `tokens / 2`.
    pub(super) fault: Fault,
    pub(super) stall: Duration,
    pub(super) tally: Tally,
    /// A whole body carries `usage` (the mock's `usage` setting).
    pub(super) usage: bool,
}

impl Generation {
    fn token_at(&self, k: u64) -> Instant {
        self.first_at + self.itl * k as u32
    }

    /// Holds the stream's end back until `tail` after the last token (at once without a tail).
    async fn wait_for_tail(&self) {
        if !self.tail.is_zero() {
            let last = self.token_at(self.tokens.saturating_sub(1));
            crate::schedule::timer::sleep_until(last + self.tail).await;
        }
    }

    fn finish_reason(&self, k: u64) -> Value {
        if k + 1 == self.tokens {
            Value::from("length")
        } else {
            Value::Null
        }
    }

    fn usage(&self) -> Value {
        let mut usage = json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.tokens,
            "total_tokens": self.prompt_tokens + self.tokens,
        });
        if let Some(cached) = self.cached_tokens {
            usage["prompt_tokens_details"] = json!({ "cached_tokens": cached });
        }
        usage
    }

    fn chunk(&self, choice: Value) -> Bytes {
        let object = match self.kind {
            Kind::Chat => "chat.completion.chunk",
            Kind::Completions => "text_completion",
        };
        let v = json!({
            "id": "cmpl-llmbench-mock",
            "object": object,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        });
        sse(&v)
    }

    fn token_chunk(&self, k: u64) -> Bytes {
        let word = WORDS[(k % WORDS.len() as u64) as usize];
        let choice = match self.kind {
            Kind::Chat => {
                json!({"index": 0, "delta": {"content": word}, "finish_reason": self.finish_reason(k)})
            }
            Kind::Completions => {
                json!({"index": 0, "text": word, "finish_reason": self.finish_reason(k)})
            }
        };
        self.chunk(choice)
    }

    /// Takes the pending fault. A stall happens here (and moves later deadlines by its length);
    /// drop and garbage are returned for the caller to act on.
    async fn strike(&mut self, ending: &mut Ending) -> Fault {
        let fault = std::mem::replace(&mut self.fault, Fault::None);
        match fault {
            Fault::Stall => {
                self.tally.count(|c| c.stalled += 1);
                crate::schedule::timer::sleep_until(Instant::now() + self.stall).await;
                self.first_at += self.stall;
            }
            Fault::Drop => ending.settle(|c| c.dropped += 1),
            Fault::Garbage => ending.settle(|c| c.garbage += 1),
            Fault::None | Fault::Fail | Fault::RateLimit => {}
        }
        fault
    }
}

/// The malformed SSE line `--garbage-rate` sends.
const GARBAGE: &[u8] = b"data: {\"choices\": [{\"delta\": <html>oops\n\n";

fn sse(v: &Value) -> Bytes {
    let mut out = b"data: ".to_vec();
    serde_json::to_writer(&mut out, v).expect("JSON values serialize");
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn cut() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "mock: injected connection drop",
    )
}

/// The tokens of an `n`-token answer, as the prefix cache sees them.
pub(super) fn answer_words(n: u64) -> Vec<&'static str> {
    (0..n.min(1 << 20))
        .map(|k| WORDS[(k % WORDS.len() as u64) as usize].trim())
        .collect()
}

/// Steps of a streamed response: role chunk (chat), tokens 0..n, usage chunk (if asked), [DONE].
enum Step {
    Role,
    Token(u64),
    Usage,
    Done,
    End,
}

/// What the stream sends next, and the state it goes on from.
type Piece = (Result<Bytes, std::io::Error>, (Generation, Step, Ending));

/// A streamed (SSE) response: one piece per step, each on its deadline.
pub(super) fn stream_response(
    generation: Generation,
    usage: bool,
    id: Option<u64>,
    log: Arc<Mutex<super::recent::Recent<MockTiming>>>,
) -> Response {
    let first = match generation.kind {
        Kind::Chat => Step::Role,
        Kind::Completions if generation.tokens > 0 => Step::Token(0),
        Kind::Completions => Step::Usage,
    };
    let ending = Ending {
        tally: generation.tally.clone(),
        settled: false,
    };
    let state = (generation, first, ending);
    let stream = futures_util::stream::unfold(state, move |(generation, step, ending)| {
        let log = log.clone();
        advance(generation, step, ending, usage, id, log)
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("static response parts are valid")
}

/// One step of the stream: the fault due there, then the step's bytes; `None` at the end.
async fn advance(
    mut generation: Generation,
    step: Step,
    mut ending: Ending,
    usage: bool,
    id: Option<u64>,
    log: Arc<Mutex<super::recent::Recent<MockTiming>>>,
) -> Option<Piece> {
    let prefix = match fault_before(&mut generation, &step, &mut ending).await {
        Ok(prefix) => prefix,
        Err(cut) => return Some((Err(cut), (generation, Step::End, ending))),
    };
    let Some((bytes, next)) = piece(&generation, step, usage, id, &log).await else {
        ending.settle(|c| c.completed += 1);
        return None;
    };
    let bytes = match prefix {
        Some(p) => [p, bytes].concat().into(),
        None => bytes,
    };
    Some((Ok::<_, std::io::Error>(bytes), (generation, next, ending)))
}

/// Strikes the pending fault once the stream is at its middle: a drop is the error that cuts
/// the stream, garbage the bytes sent before this step's.
async fn fault_before(
    generation: &mut Generation,
    step: &Step,
    ending: &mut Ending,
) -> Result<Option<Bytes>, std::io::Error> {
    let mid = generation.tokens / 2;
    let at_fault_point = match step {
        Step::Token(k) => *k >= mid,
        Step::Usage | Step::Done => true,
        Step::Role | Step::End => false,
    };
    if !at_fault_point || generation.fault == Fault::None {
        return Ok(None);
    }
    if let (Fault::Drop, Step::Token(k)) = (generation.fault, step) {
        // Cut when the next token is due, after a real pause (the server flushes
        // while the stream waits), so the tokens before it are on the wire.
        crate::schedule::timer::sleep_until(generation.token_at(*k)).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    match generation.strike(ending).await {
        Fault::Drop => Err(cut()),
        Fault::Garbage => Ok(Some(Bytes::from_static(GARBAGE))),
        _ => Ok(None),
    }
}

/// The bytes of one step (a token on its deadline, logged when first or last) and the step
/// after it; `None` for the end.
async fn piece(
    generation: &Generation,
    step: Step,
    usage: bool,
    id: Option<u64>,
    log: &Mutex<super::recent::Recent<MockTiming>>,
) -> Option<(Bytes, Step)> {
    let after_tokens = if usage { Step::Usage } else { Step::Done };
    let next_after = |k: u64| {
        if k + 1 < generation.tokens {
            Step::Token(k + 1)
        } else if usage {
            Step::Usage
        } else {
            Step::Done
        }
    };
    Some(match step {
        Step::Role => {
            let role = json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null});
            let next = if generation.tokens > 0 {
                Step::Token(0)
            } else {
                after_tokens
            };
            (generation.chunk(role), next)
        }
        Step::Token(k) => {
            crate::schedule::timer::sleep_until(generation.token_at(k)).await;
            let last = k + 1 == generation.tokens;
            if (k == 0 || last)
                && let Some(id) = id
                && let Some(t) = log.lock().expect("mock log lock").get_mut(&id)
            {
                let now = Instant::now();
                if k == 0 {
                    t.first_token = Some(now);
                }
                if last {
                    t.last_token = Some(now);
                }
            }
            (generation.token_chunk(k), next_after(k))
        }
        Step::Usage => {
            generation.wait_for_tail().await;
            let v = json!({
                "id": "cmpl-llmbench-mock",
                "object": "chat.completion.chunk",
                "created": generation.created,
                "model": generation.model,
                "choices": [],
                "usage": generation.usage(),
            });
            (sse(&v), Step::Done)
        }
        Step::Done => {
            generation.wait_for_tail().await;
            (Bytes::from_static(b"data: [DONE]\n\n"), Step::End)
        }
        Step::End => return None,
    })
}

pub(super) fn whole_response(mut generation: Generation) -> Response {
    let body = async move {
        let mut ending = Ending {
            tally: generation.tally.clone(),
            settled: false,
        };
        let fault = generation.strike(&mut ending).await;
        if fault == Fault::Drop {
            return Err(cut());
        }
        if generation.tokens > 0 {
            crate::schedule::timer::sleep_until(generation.token_at(generation.tokens - 1)).await;
        }
        if fault == Fault::Garbage {
            return Ok(Bytes::from_static(b"{\"choices\": [<html>oops"));
        }
        let text: String = (0..generation.tokens)
            .map(|k| WORDS[(k % WORDS.len() as u64) as usize])
            .collect();
        let choice = match generation.kind {
            Kind::Chat => {
                json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"})
            }
            Kind::Completions => json!({"index": 0, "text": text, "finish_reason": "length"}),
        };
        let object = match generation.kind {
            Kind::Chat => "chat.completion",
            Kind::Completions => "text_completion",
        };
        let v = json!({
            "id": "cmpl-llmbench-mock",
            "object": object,
            "created": generation.created,
            "model": generation.model,
            "choices": [choice],
            "usage": if generation.usage { generation.usage() } else { Value::Null },
        });
        ending.settle(|c| c.completed += 1);
        Ok::<_, std::io::Error>(Bytes::from(
            serde_json::to_vec(&v).expect("JSON values serialize"),
        ))
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures_util::stream::once(body)))
        .expect("static response parts are valid")
}
