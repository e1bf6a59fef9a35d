//! The built-in mock OpenAI server: known timing, for the quick start, the tests and calibration.
//!
//! Serves `POST /v1/chat/completions` and `POST /v1/completions`, streaming (SSE) or not, plus
//! `GET /v1/models` and `GET /health`. Each response's first content token is written `ttft`
//! after the request body was read, and token k (0-based) `ttft + k * itl` after it, on absolute
//! deadlines so delays never accumulate. A stream ends (usage chunk, `[DONE]`) `tail` after its
//! last token (0 by default), as behind a proxy that holds the end back. Output length is
//! `output_tokens`, capped by the request's `max_tokens`. A prompt token is a whitespace-separated word; with a
//! prefix cache (`cache`), TTFT grows with the prompt tokens it did not serve. The server runs on its own thread
//! and runtime so a busy load generator in the same process does not disturb its timing, and it
//! keeps a log of when it really read each request and wrote its first and last tokens, with the
//! `max_tokens` and prompt length it saw (`timings()`, and `GET /mock/timings` for a mock running
//! as its own process), so callers can measure the error they add and check what they sent. It can also break requests on purpose (see `faults`) and counts
//! what it did (`stats()`, and `GET /mock/stats`).

mod cache;
pub mod faults;
mod recent;
mod response;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::clock::Instant;
use cache::PrefixCache;
pub use cache::PrefixCacheConfig;
pub use faults::{Fault, FaultConfig, MockStats};
pub use recent::REMEMBERED_IDS;
use recent::Recent;
use response::{Generation, Tally, stream_response, whole_response};

/// What the mock injects.
#[derive(Debug, Clone)]
pub struct MockConfig {
    pub ttft: Duration,
    /// Each request's TTFT is drawn uniformly from `ttft ± ttft_jitter` (never below 0) by the
    /// faults' seed and the order requests arrive in (the n-th request the mock reads gets the
    /// n-th draw), so the true median stays `ttft`. Zero: every TTFT is exactly `ttft`.
    pub ttft_jitter: Duration,
    pub itl: Duration,
    /// Tokens per response (a request's `max_tokens` caps it).
    pub output_tokens: u32,
    /// How long after its last content token a stream sends its usage chunk and `[DONE]`.
    pub tail: Duration,
    /// Model name reported by `/v1/models` and in responses.
    pub model: String,
    /// What to break, and how often.
    pub faults: FaultConfig,
    /// Batch limit: at most this many requests generate at once; the rest wait in a FIFO
    /// queue. A request holds its slot for `ttft + tokens × itl` from admission, so saturation
    /// is exactly `max_running / (ttft + tokens × itl)` requests per second. `None`: no limit.
    pub max_running: Option<u32>,
    /// Threads serving requests (1: one thread, the default). More let the mock take bursts
    /// of thousands of simultaneous requests without queueing them behind each other.
    pub threads: usize,
    /// The prefix-cache model and the cost of each uncached prompt token (see `cache`).
    pub prefix_cache: PrefixCacheConfig,
    /// Send usage (a stream's usage chunk when asked, a whole body's `usage`); false: never,
    /// as servers that count no tokens.
    pub usage: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            ttft: Duration::from_millis(50),
            ttft_jitter: Duration::ZERO,
            itl: Duration::from_millis(10),
            output_tokens: 64,
            tail: Duration::ZERO,
            model: MOCK_MODEL.into(),
            faults: FaultConfig::default(),
            max_running: None,
            threads: 1,
            prefix_cache: PrefixCacheConfig::default(),
            usage: true,
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
    /// The last content token was handed to the connection.
    pub last_token: Option<Instant>,
    /// The request's `max_tokens` (or `max_completion_tokens`), when it sent one.
    pub max_tokens: Option<u64>,
    /// The prompt's length in the mock's tokens (whitespace-separated words).
    pub prompt_tokens: u64,
    /// Prompt tokens its prefix cache served (0 without a cache).
    pub cached_tokens: u64,
    /// The session and turn headers the request carried (`x-llmbench-session`, `-turn`).
    pub session: Option<u64>,
    pub turn: Option<u32>,
}

impl MockTiming {
    /// The time to first token the mock really produced: first token written minus body read.
    pub fn ttft(&self) -> Option<Duration> {
        self.first_token
            .map(|t| t.saturating_duration_since(self.received))
    }
}

/// One request of the mock's log as `GET /mock/timings` serves it: µs since the mock started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoggedTiming {
    /// The client's request id (`x-llmbench-request-id`).
    pub id: u64,
    pub received_us: u64,
    pub first_token_us: Option<u64>,
    pub last_token_us: Option<u64>,
    /// The `max_tokens` the request asked for (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The prompt's length in the mock's tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Prompt tokens the prefix cache served.
    #[serde(default)]
    pub cached_tokens: u64,
    /// The session and turn headers the request carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
}

impl LoggedTiming {
    /// The time to first token the mock really produced, µs.
    pub fn ttft_us(&self) -> Option<u64> {
        self.first_token_us
            .map(|t| t.saturating_sub(self.received_us))
    }
}

#[derive(Clone)]
struct Shared {
    config: Arc<MockConfig>,
    /// When the server started: the zero of `GET /mock/timings`.
    started: Instant,
    log: Arc<Mutex<Recent<MockTiming>>>,
    stats: Arc<Mutex<MockStats>>,
    /// Times each request id was seen (a retry is the same id again).
    seen: Arc<Mutex<Recent<u32>>>,
    /// Generation slots when `max_running` is set.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Requests read so far: the key of each one's TTFT jitter draw.
    arrivals: Arc<std::sync::atomic::AtomicU64>,
    cache: Option<Arc<Mutex<PrefixCache>>>,
}

/// A running mock server; stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    log: Arc<Mutex<Recent<MockTiming>>>,
    stats: Arc<Mutex<MockStats>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// Binds `addr` (port 0 picks a free port) and serves on a thread of its own.
    /// Fault rates that are not probabilities are an `InvalidInput` error.
    pub fn start(config: MockConfig, addr: SocketAddr) -> std::io::Result<Self> {
        config
            .faults
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let log = Arc::new(Mutex::new(Recent::default()));
        let stats = Arc::new(Mutex::new(MockStats::default()));
        let slots = config
            .max_running
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1) as usize)));
        let cache = PrefixCache::new(&config.prefix_cache).map(|c| Arc::new(Mutex::new(c)));
        let shared = Shared {
            config: Arc::new(config),
            started: Instant::now(),
            log: log.clone(),
            stats: stats.clone(),
            seen: Arc::default(),
            arrivals: Arc::default(),
            cache,
            slots,
        };
        let threads = shared.config.threads.max(1);
        let (tx, rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("llmbench-mock".into())
            .spawn(move || {
                let mut builder = match threads {
                    1 => tokio::runtime::Builder::new_current_thread(),
                    n => {
                        let mut b = tokio::runtime::Builder::new_multi_thread();
                        b.worker_threads(n);
                        b
                    }
                };
                let rt = builder
                    .enable_all()
                    .build()
                    .expect("a tokio runtime starts");
                rt.block_on(async move {
                    let listener = match listen(addr) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(listener.local_addr());
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
        let addr = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("mock server thread died"))??;
        Ok(Self {
            addr,
            log,
            stats,
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

    /// When the mock really received each request and wrote its first and last tokens, by id.
    pub fn timings(&self) -> HashMap<u64, MockTiming> {
        let log = self.log.lock().expect("mock log lock");
        log.iter().map(|(&id, &t)| (id, t)).collect()
    }

    /// What the mock has done so far (also served as JSON at `GET /mock/stats`).
    pub fn stats(&self) -> MockStats {
        self.stats.lock().expect("mock stats lock").clone()
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

/// Connections waiting to be accepted: thousands of streams may connect at once.
const BACKLOG: u32 = 4096;

/// Binds `addr` with a backlog deep enough for thousands of simultaneous connects.
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves until Ctrl-C (the `llmbench mock` command).
pub async fn serve_until_ctrl_c(config: MockConfig, addr: SocketAddr) -> std::io::Result<()> {
    // Room for thousands of connections where the hard limit allows.
    let _ = crate::host::ensure_fd_limit(0);
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
        .route("/mock/stats", get(mock_stats))
        .route("/mock/timings", get(mock_timings))
        .route("/metrics", get(cache::metrics))
        .with_state(shared)
}

async fn models(State(s): State<Shared>) -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": s.config.model, "object": "model", "owned_by": "llmbench"}]
    }))
    .into_response()
}

async fn mock_stats(State(s): State<Shared>) -> Response {
    let stats = s.stats.lock().expect("mock stats lock").clone();
    axum::Json(stats).into_response()
}

/// The log of `timings()`, in request-id order.
async fn mock_timings(State(s): State<Shared>) -> Response {
    let us = |t: Instant| t.saturating_duration_since(s.started).as_micros() as u64;
    let mut logged: Vec<LoggedTiming> = s
        .log
        .lock()
        .expect("mock log lock")
        .iter()
        .map(|(&id, t)| LoggedTiming {
            id,
            received_us: us(t.received),
            first_token_us: t.first_token.map(us),
            last_token_us: t.last_token.map(us),
            max_tokens: t.max_tokens,
            prompt_tokens: t.prompt_tokens,
            cached_tokens: t.cached_tokens,
            session: t.session,
            turn: t.turn,
        })
        .collect();
    logged.sort_by_key(|t| t.id);
    axum::Json(logged).into_response()
}

async fn chat(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    respond(s, Kind::Chat, &headers, &body).await
}

async fn completions(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    respond(s, Kind::Completions, &headers, &body).await
}

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Chat,
    Completions,
}

/// Answers one request: checks it, applies the fault chosen for it, then generates the reply.
async fn respond(s: Shared, kind: Kind, headers: &HeaderMap, body: &[u8]) -> Response {
    let received = Instant::now();
    let id = headers
        .get(crate::client::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let tally = Tally {
        stats: s.stats.clone(),
        labelled: id.is_some(),
    };
    if tally.labelled {
        tally.count(|c| c.received += 1);
    } else {
        s.stats.lock().expect("mock stats lock").unlabelled += 1;
    }
    let req = match checked_request(&s, &tally, headers, body) {
        Ok(req) => req,
        Err(refused) => return *refused,
    };
    let fault = id.map_or(Fault::None, |id| fault_for(&s, id));
    if let Some(r) = injected_error(fault, &tally) {
        return r;
    }
    let max_tokens = req["max_tokens"]
        .as_u64()
        .or_else(|| req["max_completion_tokens"].as_u64());
    let n = (s.config.output_tokens as u64).min(max_tokens.unwrap_or(u64::MAX));
    let words = cache::prompt_words(matches!(kind, Kind::Chat), &req);
    let prompt_tokens = words.len() as u64;
    let cached_tokens = s.cache.as_ref().map(|c| {
        let answer = response::answer_words(n);
        c.lock().expect("mock cache lock").serve(&words, &answer)
    });
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok()?.parse().ok())
    };
    let stream = req["stream"].as_bool().unwrap_or(false);
    let usage_in_stream = s.config.usage
        && req["stream_options"]["include_usage"]
            .as_bool()
            .unwrap_or(false);
    if let Some(id) = id {
        let timing = MockTiming {
            received,
            first_token: None,
            last_token: None,
            max_tokens,
            prompt_tokens,
            cached_tokens: cached_tokens.unwrap_or(0),
            session: header(crate::client::SESSION_HEADER),
            turn: header(crate::client::TURN_HEADER).and_then(|t: u64| u32::try_from(t).ok()),
        };
        // A retry of the same id starts its log afresh.
        *s.log.lock().expect("mock log lock").entry(id, || timing) = timing;
    }
    let admitted = admit(&s, received, n).await;
    let generation = Generation {
        kind,
        model: s.config.model.clone(),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        prompt_tokens,
        cached_tokens,
        tokens: n,
        first_at: admitted
            + ttft_of(&s)
            + s.config.prefix_cache.per_token
                * (prompt_tokens - cached_tokens.unwrap_or(0)).min(u32::MAX as u64) as u32,
        itl: s.config.itl,
        tail: s.config.tail,
        fault,
        stall: s.config.faults.stall,
        tally,
        usage: s.config.usage,
    };
    if stream {
        stream_response(generation, usage_in_stream, id, s.log)
    } else {
        whole_response(generation)
    }
}

/// This request's TTFT: `ttft`, moved by its jitter draw when the mock has jitter.
fn ttft_of(s: &Shared) -> Duration {
    let c = &s.config;
    if c.ttft_jitter.is_zero() {
        return c.ttft;
    }
    faults::jittered_ttft(
        c,
        s.arrivals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    )
}

/// The request's JSON object, or the 401 (wrong API key) or 400 (not a JSON object) answer.
fn checked_request(
    s: &Shared,
    tally: &Tally,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, Box<Response>> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !s.config.faults.authorized(authorization) {
        tally.count(|c| c.unauthorized += 1);
        // Like some real servers, echo what was given: the client must scrub it.
        let given = authorization.unwrap_or("").trim_start_matches("Bearer ");
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            &format!("Incorrect API key provided: {given}"),
        )));
    }
    match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => {
            tally.count(|c| c.bad_request += 1);
            Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "request body is not a JSON object",
            )))
        }
    }
}

/// The fault for this attempt of request `id` (counting how often the id was seen).
fn fault_for(s: &Shared, id: u64) -> Fault {
    let attempt = {
        let mut seen = s.seen.lock().expect("mock seen lock");
        let n = seen.entry(id, || 0);
        *n += 1;
        *n - 1
    };
    s.config.faults.fault_for(id, attempt)
}

/// The error answer of a fault that is one (500, or 429 with `Retry-After`); `None` otherwise.
fn injected_error(fault: Fault, tally: &Tally) -> Option<Response> {
    match fault {
        Fault::Fail => {
            tally.count(|c| c.failed += 1);
            Some(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "mock: injected server error",
            ))
        }
        Fault::RateLimit => {
            tally.count(|c| c.rate_limited += 1);
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "mock: injected rate limit",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            Some(r)
        }
        Fault::None | Fault::Drop | Fault::Garbage | Fault::Stall => None,
    }
}

/// When generation of `n` tokens starts: on arrival, or with a batch limit once a slot is free
/// (held until the generation would end).
async fn admit(s: &Shared, received: Instant, n: u64) -> Instant {
    match &s.slots {
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
                crate::schedule::timer::sleep_until(busy_until).await;
                drop(permit);
            });
            at
        }
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": kind}})),
    )
        .into_response()
}
