//! The built-in mock OpenAI server: known timing, for the quick start, the tests and calibration.
//!
//! Serves `POST /v1/chat/completions` and `POST /v1/completions`, streaming (SSE) or not, plus
//! `GET /v1/models` and `GET /health`. Each response's first content token is written `ttft`
//! after the request body was read, and token k (0-based) `ttft + k * itl` after it, on absolute
//! deadlines so delays never accumulate. Output length is `output_tokens`, capped by the request's
//! `max_tokens`. A prompt token is a whitespace-separated word. The server runs on its own thread
//! and runtime so a busy load generator in the same process does not disturb its timing, and it
//! keeps a log of when it really wrote each first token, so callers can measure their own error.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::clock::Instant;

/// What the mock injects.
#[derive(Debug, Clone)]
pub struct MockConfig {
    pub ttft: Duration,
    pub itl: Duration,
    /// Tokens per response (a request's `max_tokens` caps it).
    pub output_tokens: u32,
    /// Model name reported by `/v1/models` and in responses.
    pub model: String,
    /// Batch limit: at most this many requests generate at once; the rest wait in a FIFO
    /// queue. A request holds its slot for `ttft + tokens × itl` from admission, so saturation
    /// is exactly `max_running / (ttft + tokens × itl)` requests per second. `None`: no limit.
    pub max_running: Option<u32>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            ttft: Duration::from_millis(50),
            itl: Duration::from_millis(10),
            output_tokens: 64,
            model: MOCK_MODEL.into(),
            max_running: None,
        }
    }
}

/// The model name the mock serves.
pub const MOCK_MODEL: &str = "llmbench-mock";

/// When the mock really did things for one request (request id from the client's header).
#[derive(Debug, Clone, Copy)]
pub struct MockTiming {
    /// The request body had been read.
    pub received: Instant,
    /// The first content token was handed to the connection.
    pub first_token: Option<Instant>,
}

#[derive(Clone)]
struct Shared {
    config: MockConfig,
    log: Arc<Mutex<HashMap<u64, MockTiming>>>,
    /// Generation slots when `max_running` is set.
    slots: Option<Arc<tokio::sync::Semaphore>>,
}

/// A running mock server; stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    log: Arc<Mutex<HashMap<u64, MockTiming>>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// Binds `addr` (port 0 picks a free port) and serves on a thread of its own.
    pub fn start(config: MockConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(HashMap::new()));
        let slots = config
            .max_running
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1) as usize)));
        let shared = Shared {
            config,
            log: log.clone(),
            slots,
        };
        let (tx, rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("llmbench-mock".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime starts");
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let listener = listener.tap_io(|s| {
                        let _ = s.set_nodelay(true);
                    });
                    let _ = axum::serve(listener, router(shared))
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await;
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("mock server thread died"))??;
        Ok(Self {
            addr,
            log,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// When the mock really received each request and wrote its first token, by request id.
    pub fn timings(&self) -> HashMap<u64, MockTiming> {
        self.log.lock().expect("mock log lock").clone()
    }

    /// Stops serving; open streams are cut.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// Serves until Ctrl-C (the `llmbench mock` command).
pub async fn serve_until_ctrl_c(config: MockConfig, addr: SocketAddr) -> std::io::Result<()> {
    let server = MockServer::start(config, addr)?;
    eprintln!(
        "llmbench mock: serving the OpenAI API at {} (Ctrl-C stops)",
        server.base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    server.stop();
    Ok(())
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { "ok" }))
        .with_state(shared)
}

async fn models(State(s): State<Shared>) -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": s.config.model, "object": "model", "owned_by": "llmbench"}]
    }))
    .into_response()
}

async fn chat(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    respond(s, Kind::Chat, &headers, &body).await
}

async fn completions(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    respond(s, Kind::Completions, &headers, &body).await
}

#[derive(Clone, Copy)]
enum Kind {
    Chat,
    Completions,
}

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

async fn respond(s: Shared, kind: Kind, headers: &HeaderMap, body: &[u8]) -> Response {
    let received = Instant::now();
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return error(StatusCode::BAD_REQUEST, "request body is not a JSON object");
        }
    };
    let prompt_tokens = match kind {
        Kind::Chat => req["messages"]
            .as_array()
            .map(|m| m.iter().map(|m| words(&m["content"])).sum())
            .unwrap_or(0),
        Kind::Completions => words(&req["prompt"]),
    };
    let cap = req["max_tokens"]
        .as_u64()
        .or_else(|| req["max_completion_tokens"].as_u64())
        .unwrap_or(u64::MAX);
    let n = (s.config.output_tokens as u64).min(cap);
    let stream = req["stream"].as_bool().unwrap_or(false);
    let usage_in_stream = req["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let id = headers
        .get(crate::client::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(id) = id {
        s.log.lock().expect("mock log lock").insert(
            id,
            MockTiming {
                received,
                first_token: None,
            },
        );
    }
    // With a batch limit, wait for a slot; generation starts at admission.
    let admitted = match &s.slots {
        None => received,
        Some(slots) => {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let at = Instant::now();
            let busy_until = at + s.config.ttft + s.config.itl * n.min(u32::MAX as u64) as u32;
            tokio::spawn(async move {
                crate::timer::sleep_until(busy_until).await;
                drop(permit);
            });
            at
        }
    };
    let generation = Generation {
        kind,
        model: s.config.model.clone(),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        prompt_tokens,
        tokens: n,
        first_at: admitted + s.config.ttft,
        itl: s.config.itl,
    };
    if stream {
        stream_response(generation, usage_in_stream, id, s.log)
    } else {
        whole_response(generation)
    }
}

fn words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        // Content parts: [{"type":"text","text":"..."}]
        Value::Array(parts) => parts.iter().map(|p| words(&p["text"])).sum(),
        _ => 0,
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "invalid_request_error"}})),
    )
        .into_response()
}

/// One response being generated.
struct Generation {
    kind: Kind,
    model: String,
    created: u64,
    prompt_tokens: u64,
    tokens: u64,
    first_at: Instant,
    itl: Duration,
}

impl Generation {
    fn token_at(&self, k: u64) -> Instant {
        self.first_at + self.itl * k as u32
    }

    fn finish_reason(&self, k: u64) -> Value {
        if k + 1 == self.tokens {
            Value::from("length")
        } else {
            Value::Null
        }
    }

    fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.tokens,
            "total_tokens": self.prompt_tokens + self.tokens,
        })
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
}

fn sse(v: &Value) -> Bytes {
    let mut out = b"data: ".to_vec();
    serde_json::to_writer(&mut out, v).expect("JSON values serialize");
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn stream_response(
    generation: Generation,
    usage: bool,
    id: Option<u64>,
    log: Arc<Mutex<HashMap<u64, MockTiming>>>,
) -> Response {
    // Steps: role chunk (chat), tokens 0..n, usage chunk (if asked), [DONE].
    enum Step {
        Role,
        Token(u64),
        Usage,
        Done,
        End,
    }
    let first = match generation.kind {
        Kind::Chat => Step::Role,
        Kind::Completions if generation.tokens > 0 => Step::Token(0),
        Kind::Completions => Step::Usage,
    };
    let stream = futures_util::stream::unfold((generation, first), move |(generation, step)| {
        let log = log.clone();
        async move {
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
            let (bytes, next) = match step {
                Step::Role => {
                    let role = match generation.kind {
                        Kind::Chat => {
                            json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null})
                        }
                        Kind::Completions => unreachable!("completions have no role chunk"),
                    };
                    let next = if generation.tokens > 0 {
                        Step::Token(0)
                    } else {
                        after_tokens
                    };
                    (generation.chunk(role), next)
                }
                Step::Token(k) => {
                    crate::timer::sleep_until(generation.token_at(k)).await;
                    if k == 0
                        && let Some(id) = id
                        && let Some(t) = log.lock().expect("mock log lock").get_mut(&id)
                    {
                        t.first_token = Some(Instant::now());
                    }
                    (generation.token_chunk(k), next_after(k))
                }
                Step::Usage => {
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
                Step::Done => (Bytes::from_static(b"data: [DONE]\n\n"), Step::End),
                Step::End => return None,
            };
            Some((Ok::<_, std::convert::Infallible>(bytes), (generation, next)))
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("static response parts are valid")
}

fn whole_response(generation: Generation) -> Response {
    let body = async move {
        if generation.tokens > 0 {
            crate::timer::sleep_until(generation.token_at(generation.tokens - 1)).await;
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
            "usage": generation.usage(),
        });
        Ok::<_, std::convert::Infallible>(Bytes::from(
            serde_json::to_vec(&v).expect("JSON values serialize"),
        ))
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures_util::stream::once(body)))
        .expect("static response parts are valid")
}
