//! The plan: what a run will do, as plain data. A workload script evaluates into a `Plan` once;
//! nothing after that point runs script code except prompt generators, which sit behind the
//! `PromptGenerator` trait so this module stays free of Rhai.

mod describe;
mod session;
mod shard;
mod traffic;

pub use session::{Conversation, SessionGenerator, SessionSpec, TurnPace};
pub use shard::{Shard, fingerprint};
pub use traffic::{CancelSpec, Replay};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// Everything a run needs to know, fixed before the first request.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Workload name (the script's file stem unless the script names it).
    pub workload: String,
    /// The server to load; `None` means the built-in mock server.
    pub target: Option<Target>,
    /// Model name sent in each request; `None`: the mock's, or the one the server serves (see
    /// `client::models`).
    pub model: Option<String>,
    /// The full names of `configs/models.yaml`, in file order: the choice among several models
    /// a server serves when the plan names none.
    pub known_models: Vec<String>,
    /// Timing of the built-in mock server, used when no target is configured.
    pub mock: MockSpec,
    pub request: RequestSpec,
    pub phases: Vec<Phase>,
    /// What to sample beside the load.
    pub telemetry: TelemetrySpec,
    /// Service-level objectives: a request that meets all of them is good (goodput).
    pub slo: Option<Slo>,
    /// Checks run against the statistics after the run; any failure makes the exit code 1.
    pub assertions: Vec<Assertion>,
    /// The script's `param(...)` values as used (after `--set`), by name.
    pub params: std::collections::BTreeMap<String, String>,
    /// With a sweep: the share of good requests (0..=1) a step needs to meet the SLO.
    pub attainment: Option<f64>,
    /// `repeat(N)`: run the plan N times as trials (`--repeat` overrides it).
    pub repeat: Option<u32>,
    /// `label(KEY, VALUE)` and `--label KEY=VALUE` (which wins), for the run's metadata.
    pub labels: crate::record::Labels,
    /// Stops the script's prompt and assertion calls (the run cancels it on a signal).
    #[serde(skip)]
    pub cancel: Cancel,
}

impl Plan {
    /// Indices of the ramp phases (`Phase::is_ramp`).
    pub fn ramp_phases(&self) -> Vec<usize> {
        (0..self.phases.len())
            .filter(|&i| self.phases[i].is_ramp())
            .collect()
    }
}

/// Stops the running (and every later) call into one loaded script. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the call running now at its next operation, and makes every later call fail
    /// at once.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Telemetry to collect during a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TelemetrySpec {
    /// Prometheus endpoints to scrape (full URLs, e.g. `http://127.0.0.1:8000/metrics`),
    /// serialized without credentials.
    #[serde(serialize_with = "serialize_public_urls")]
    pub prometheus: Vec<String>,
    /// Sampling interval for every source.
    #[serde(serialize_with = "serialize_secs")]
    pub every: Duration,
    /// Read local GPUs through NVML (a notice, not an error, when there is no driver).
    pub nvml: bool,
    /// GPU indices to read (`None`: all).
    pub gpus: Option<Vec<u32>>,
    /// Extra scraped series to keep besides the known vLLM, SGLang, TGI, llama.cpp and DCGM ones.
    pub series: Vec<String>,
}

impl Default for TelemetrySpec {
    fn default() -> Self {
        Self {
            prometheus: Vec::new(),
            every: Duration::from_millis(500),
            nvml: true,
            gpus: None,
            series: Vec::new(),
        }
    }
}

/// Latency limits a good request stays within (each `None`: not limited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2el_ms: Option<f64>,
}

/// A named check of the run's statistics.
#[derive(Clone, Serialize)]
pub struct Assertion {
    pub name: String,
    #[serde(serialize_with = "serialize_check")]
    pub check: Arc<dyn StatsCheck>,
}

impl fmt::Debug for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Assertion({:?}, {})", self.name, self.check.describe())
    }
}

fn serialize_check<S: serde::Serializer>(c: &Arc<dyn StatsCheck>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&c.describe())
}

/// What an assertion found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckOutcome {
    pub passed: bool,
    /// The measured value, as shown in the report (e.g. `412.3 < 500`, or `true`).
    pub value: String,
    /// The measured number of a comparison (`None` for a true/false assertion or no data).
    pub measured: Option<f64>,
    /// The comparison and its limit (`"<"`, 500.0), for a comparison.
    pub op: Option<String>,
    pub limit: Option<f64>,
}

/// Evaluates an assertion against the statistics, given as JSON (the shape scripts see).
pub trait StatsCheck: Send + Sync {
    fn check(&self, stats: &serde_json::Value) -> Result<CheckOutcome, String>;
    /// Tries the check before the run against statistics of the run's shape: `empty` (no data,
    /// every value null) and `sample` (made-up values). An error is one the check has whatever
    /// the run measures: a field or phase that does not exist (in either), any other failure
    /// that does not depend on the numbers (in `sample`), a result of the wrong type.
    fn dry_run(&self, empty: &serde_json::Value, sample: &serde_json::Value) -> Result<(), String>;
    /// A short description for run metadata and `llmbench check`.
    fn describe(&self) -> String;
}

impl Plan {
    /// Connections to keep alive: the largest concurrency of any phase (an open-loop phase
    /// without a cap may have any number in flight: up to `UNCAPPED_POOL` are kept).
    pub fn max_concurrency(&self) -> usize {
        let cap = self.concurrency_cap() as usize;
        if self.phases.iter().any(|p| p.concurrency.is_none()) {
            cap.max(UNCAPPED_POOL)
        } else {
            cap.max(1)
        }
    }

    /// The most requests any phase caps in flight (concurrency or closed-loop lanes); 0 when
    /// no phase sets one.
    pub fn concurrency_cap(&self) -> u64 {
        self.phases
            .iter()
            .filter_map(|p| p.concurrency)
            .max()
            .unwrap_or(0) as u64
    }

    /// Requests the plan is expected to send, where that can be known in advance.
    pub fn expected_requests(&self) -> Option<u64> {
        self.phases.iter().map(Phase::expected_requests).sum()
    }
}

/// Idle connections kept for an open-loop phase without a concurrency cap.
pub const UNCAPPED_POOL: usize = 1024;

/// An OpenAI-compatible server.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    /// Base URL up to and including the API version, e.g. `http://127.0.0.1:8000/v1`; it may
    /// carry credentials (userinfo, a `?api_key=`), so it serializes as `redact::public_url`.
    #[serde(serialize_with = "serialize_public_url")]
    pub base_url: String,
    /// Bearer token; never serialized or printed.
    #[serde(serialize_with = "ApiKey::serialize_redacted")]
    pub api_key: Option<ApiKey>,
}

fn serialize_public_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::redact::public_url(url))
}

fn serialize_public_urls<S: serde::Serializer>(urls: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(|u| crate::redact::public_url(u)))
}

/// A secret API key. Its `Debug` and `Serialize` forms never contain the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the Authorization header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn serialize_redacted<S: serde::Serializer>(
        key: &Option<ApiKey>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match key {
            Some(_) => s.serialize_str("[redacted]"),
            None => s.serialize_none(),
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// Timing the built-in mock server injects.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MockSpec {
    pub ttft_ms: f64,
    pub itl_ms: f64,
    pub output_tokens: u32,
    /// Batch limit (requests generating at once); `None`: unlimited.
    pub max_running: Option<u32>,
    /// Prefix-cache blocks the mock models (0: no cache), of `block_tokens` tokens each.
    pub prefix_cache: u32,
    pub block_tokens: u32,
    /// Time to first token added per prompt token not served from the cache, µs.
    pub ttft_per_token_us: f64,
}

impl Default for MockSpec {
    fn default() -> Self {
        Self {
            ttft_ms: 50.0,
            itl_ms: 10.0,
            output_tokens: 64,
            max_running: None,
            prefix_cache: 0,
            block_tokens: 16,
            ttft_per_token_us: 0.0,
        }
    }
}

/// Which OpenAI endpoint requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST {base_url}/chat/completions`
    Chat,
    /// `POST {base_url}/completions`
    Completions,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat/completions",
            Endpoint::Completions => "completions",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Completions => "completions",
        }
    }
}

/// The shape of every request in the run.
#[derive(Debug, Clone, Serialize)]
pub struct RequestSpec {
    pub endpoint: Endpoint,
    /// `max_tokens` sent with each request (`None`: not sent, the server decides).
    pub max_tokens: Option<u32>,
    /// Stream the response (SSE). Latency per token needs streaming.
    pub stream: bool,
    pub prompt: Prompt,
    /// A system message put before every chat prompt.
    pub system: Option<String>,
    /// Extra JSON body fields (temperature, top_p, seed, ignore_eos, ...), added to every request.
    pub body: serde_json::Map<String, serde_json::Value>,
    /// Extra HTTP headers; their values are never serialized (they may carry secrets).
    #[serde(serialize_with = "serialize_header_names")]
    pub headers: Vec<(String, String)>,
    /// Whole-request timeout, from send to the last byte.
    #[serde(serialize_with = "serialize_secs")]
    pub timeout: Duration,
    /// Counts each answer's output tokens over its whole text (`request(#{ tokenizer })`):
    /// the count when the server sends no usage, a check of the usage when it does.
    pub tokenizer: Option<Tokenizer>,
}

/// Counts the tokens of a text; the script's tokenizers (tiktoken encodings, a
/// `tokenizer.json`) implement it, so this module stays free of them.
pub trait TokenCount: Send + Sync {
    fn count(&self, text: &str) -> u64;
}

/// A named tokenizer: the encoding (`cl100k_base`) or `tokenizer.json` path the script gave.
#[derive(Clone)]
pub struct Tokenizer {
    pub name: String,
    pub counter: Arc<dyn TokenCount>,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokenizer({})", self.name)
    }
}

impl Serialize for Tokenizer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

fn serialize_header_names<S: serde::Serializer>(
    h: &[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(h.iter().map(|(name, _)| (name, "[redacted]")))
}

fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Where each request's prompt comes from.
#[derive(Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// The same text for every request.
    Text(String),
    /// The same chat messages for every request.
    Messages(Vec<Message>),
    /// A function of the request index, evaluated ahead of the scheduler.
    #[serde(serialize_with = "serialize_generator")]
    Generated(Arc<dyn PromptGenerator>),
    /// Multi-turn conversations (`session(...)`): each turn built from the answers before it,
    /// so it cannot be made ahead by request index.
    #[serde(serialize_with = "serialize_session")]
    Session(SessionSpec),
}

fn serialize_session<S: serde::Serializer>(spec: &SessionSpec, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}, {}", spec.generator.describe(), spec.pace))
}

fn serialize_generator<S: serde::Serializer>(
    g: &Arc<dyn PromptGenerator>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&g.describe())
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prompt::Text(t) => f.debug_tuple("Text").field(t).finish(),
            Prompt::Messages(m) => f.debug_tuple("Messages").field(m).finish(),
            Prompt::Generated(g) => f.debug_tuple("Generated").field(&g.describe()).finish(),
            Prompt::Session(spec) => f.debug_tuple("Session").field(spec).finish(),
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// What a prompt generator makes for one request: a text, or chat messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    Messages(Vec<Message>),
}

/// What one request is, beyond the run-wide `RequestSpec`: its content and what it changes of
/// the request. A prompt function returning a string or messages makes a shape with only
/// `content`; one returning a map (`prompt`/`messages`, `max_tokens`, `body`, `headers`,
/// `label`) fills the rest. Request `i`'s shape depends only on the seed and `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestShape {
    pub content: Content,
    /// This request's `max_tokens`, over the spec's (`None`: the spec's, if any).
    pub max_tokens: Option<u32>,
    /// JSON body fields set over the spec's `body` (never the fields the request owns:
    /// model, messages, prompt, stream, max_tokens, stream_options).
    pub body: serde_json::Map<String, serde_json::Value>,
    /// Extra HTTP headers for this request, over the spec's (values may be secrets: never
    /// printed, and redacted from what the server sends back).
    pub headers: Vec<(String, String)>,
    /// The request's class for per-label statistics.
    pub label: Option<String>,
}

impl From<Content> for RequestShape {
    fn from(content: Content) -> Self {
        Self {
            content,
            max_tokens: None,
            body: serde_json::Map::new(),
            headers: Vec::new(),
            label: None,
        }
    }
}

/// Produces request `index` (0-based over the whole run, warmup included).
pub trait PromptGenerator: Send + Sync {
    /// The whole shape of request `index`.
    fn shape(&self, index: u64) -> Result<RequestShape, String>;
    /// Only the content of request `index`.
    fn generate(&self, index: u64) -> Result<Content, String> {
        self.shape(index).map(|s| s.content)
    }
    /// A short description for run metadata, e.g. `script function at quickstart.rhai:4`.
    fn describe(&self) -> String;
}

/// How arrivals are spaced in an open-loop phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Evenly spaced at 1/rate.
    Constant,
    /// Exponential gaps with mean 1/rate (a Poisson process), from a seeded generator.
    Poisson,
}

/// One stretch of load. Bounded by duration, by request count, or by both (whichever ends first).
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    #[serde(serialize_with = "serialize_opt_secs")]
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    /// Requests per second (open loop); `None` runs closed loop at `concurrency`.
    pub rate: Option<f64>,
    /// Most requests in flight at once; arrivals over it wait in a queue. `None`: no cap.
    pub concurrency: Option<u32>,
    pub arrival: Arrival,
    pub seed: u64,
    /// Runs, but stays out of the statistics.
    pub warmup: bool,
    /// How rate and concurrency change over the phase; with a rate shape, `rate` is its value at
    /// the start, and `concurrency` is the largest value the concurrency shape reaches.
    pub ramp: Ramp,
    /// This phase is part of a capacity sweep (its rate is set from the measured saturation).
    pub sweep: Option<SweepStep>,
    /// A replayed trace: the phase's own arrival times and requests (`trace(path, ...)`).
    pub replay: Option<Replay>,
    /// Requests the client abandons on purpose, like users giving up.
    pub cancel: Option<CancelSpec>,
}

/// Time-varying load of a phase (both `None`: constant).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ramp {
    pub rate: Option<Shape>,
    pub concurrency: Option<Shape>,
}

/// A value over a phase's duration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// From `from` at the start to `to` at the end, linearly.
    Linear { from: f64, to: f64 },
    /// Equal-length steps, one value each.
    Steps(Vec<f64>),
}

impl Shape {
    /// The value `frac` (0..=1) of the way through the phase.
    pub fn at(&self, frac: f64) -> f64 {
        match self {
            Shape::Linear { from, to } => from + (to - from) * frac.clamp(0.0, 1.0),
            Shape::Steps(v) => {
                let i = ((frac * v.len() as f64) as usize).min(v.len() - 1);
                v[i]
            }
        }
    }

    pub fn max(&self) -> f64 {
        match self {
            Shape::Linear { from, to } => from.max(*to),
            Shape::Steps(v) => v.iter().copied().fold(f64::MIN, f64::max),
        }
    }

    /// The integral over a phase of `secs` seconds (expected arrivals for a rate shape).
    pub fn integral(&self, secs: f64) -> f64 {
        match self {
            Shape::Linear { from, to } => (from + to) / 2.0 * secs,
            Shape::Steps(v) => v.iter().sum::<f64>() * secs / v.len() as f64,
        }
    }
}

/// A phase's role in a capacity sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepStep {
    /// Closed loop at high concurrency: its throughput is the saturation rate.
    Saturation,
    /// Open loop at this fraction of the measured saturation rate.
    Fraction(f64),
}

fn serialize_opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl Phase {
    /// Open loop (arrivals at a rate) or closed loop (a fixed number of users).
    pub fn is_open_loop(&self) -> bool {
        self.rate.is_some()
    }

    /// A measured phase whose rate or concurrency changes over time: the report cuts it into
    /// windows (`stats::ramp`).
    pub fn is_ramp(&self) -> bool {
        !self.warmup && self.ramp != Ramp::default()
    }

    /// Requests this phase is expected to send, where that can be known in advance.
    pub fn expected_requests(&self) -> Option<u64> {
        if matches!(self.sweep, Some(SweepStep::Fraction(_))) {
            // The rate is known only once the saturation phase has run.
            return self.requests;
        }
        let by_duration = match (&self.ramp.rate, self.rate, self.duration) {
            (Some(shape), _, Some(d)) => Some(shape.integral(d.as_secs_f64()).ceil() as u64),
            (None, Some(rate), Some(d)) => Some((rate * d.as_secs_f64()).ceil() as u64),
            _ => None,
        };
        match (by_duration, self.requests) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
