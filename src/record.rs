//! The per-request record (the data contract of a run), the JSONL file it lives in, the run
//! metadata beside it (`meta`) and the results layout (`layout`).
//!
//! One record per request, appended and flushed the moment the request ends, so an interrupted
//! run keeps every request that completed. All stamps are microseconds since the run's clock
//! origin (see `clock`). Raw records are the source of truth: statistics are recomputed from them.

use serde::{Deserialize, Serialize};

pub mod layout;
mod meta;
mod read;
mod rebase;
mod write;
pub use layout::RunFiles;
pub use meta::{
    Labels, Requested, RunInfo, ShardRun, Trial, check_label, labels_line, parse_label,
};
pub use read::{
    MAX_RECORD_BYTES, RecordReadError, TornLine, for_each_record, parse_each, parse_records,
    read_records,
};
pub use write::RecordWriter;

/// How a request ended. Every request that was planned ends in exactly one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The full response arrived.
    Ok,
    /// The server answered with a non-2xx status (see `status`).
    HttpStatus,
    /// The request ran past its timeout.
    Timeout,
    /// Connecting or sending failed, or the connection dropped before a response.
    Connection,
    /// The response started but the stream broke, or ended without `[DONE]` or a finish reason.
    StreamBroken,
    /// The response was not what the OpenAI API returns (bad JSON, an error object in the stream).
    InvalidResponse,
    /// Stopped by the user (Ctrl-C) before it finished; never sent if `sent_us` is absent.
    Cancelled,
    /// Abandoned on purpose by the client after the phase's `cancel` delay, like a user giving
    /// up (`end_us` is when): neither a success nor a failure.
    CancelledByClient,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::HttpStatus,
        Outcome::Timeout,
        Outcome::Connection,
        Outcome::StreamBroken,
        Outcome::InvalidResponse,
        Outcome::Cancelled,
        Outcome::CancelledByClient,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::HttpStatus => "http_status",
            Outcome::Timeout => "timeout",
            Outcome::Connection => "connection",
            Outcome::StreamBroken => "stream_broken",
            Outcome::InvalidResponse => "invalid_response",
            Outcome::Cancelled => "cancelled",
            Outcome::CancelledByClient => "cancelled_by_client",
        }
    }
}

/// Which limit a `timeout` outcome ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutKind {
    /// Connecting took longer than `--connect-timeout`.
    Connect,
    /// No content arrived within `--first-token-timeout` of the send.
    FirstToken,
    /// The whole request took longer than its timeout (`--timeout` or the script's `timeout`).
    Total,
}

/// An attempt that failed and was retried (`--retries`); the record's own fields describe the
/// last attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedAttempt {
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub sent_us: u64,
    pub end_us: u64,
}

/// Where a record's output token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage` object.
    Usage,
    /// Counted content chunks (one token per chunk), because the server sent no usage and no
    /// tokenizer was configured: a last resort.
    Chunks,
    /// The request's tokenizer over the whole answer text, because the server sent no usage.
    Tokenizer,
}

/// Timings a server reports about its own work on a request (llama.cpp's `timings` object).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerTimings {
    /// Prompt tokens the server evaluated (not served from its cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_n: Option<u64>,
    /// Time the server spent on the prompt, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_ms: Option<f64>,
    /// Tokens the server generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_n: Option<u64>,
    /// Time the server spent generating, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_ms: Option<f64>,
}

/// One request, from its intended start to its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// 0-based index over the whole run (warmup included); also the prompt index.
    pub id: u64,
    pub phase: String,
    pub phase_index: usize,
    /// Warmup requests are recorded but left out of the statistics.
    pub warmup: bool,
    /// A capacity sweep's saturation probe: its phase has its own row, left out of `all`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
    pub outcome: Outcome,
    /// HTTP status, when a response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong, when something did (never contains a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `timeout` outcomes: which limit was hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutKind>,
    /// Attempts sent to the server: 0 if never sent, 1 without retries.
    #[serde(default = "one")]
    pub attempts: u32,
    /// Earlier attempts that failed and were retried, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_attempts: Vec<FailedAttempt>,
    /// Whether the response was read as an SSE stream (TTFT, TPOT and ITL need streaming): a
    /// JSON body, an error status's message included, is not. A request that got no response
    /// body keeps whether it asked for a stream.
    pub streamed: bool,

    /// When the schedule meant the request to start.
    pub intended_us: u64,
    /// When the scheduler released it (later than intended if the scheduler fell behind).
    pub dispatched_us: u64,
    /// When it got a concurrency slot (`None`: cancelled while still queued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_us: Option<u64>,
    /// When the request was handed to the HTTP client (`None`: never sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_us: Option<u64>,
    /// When the response status and headers arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_us: Option<u64>,
    /// When the first chunk carrying generated content arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_us: Option<u64>,
    /// When the first chunk carrying answer content (not reasoning) arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_answer_us: Option<u64>,
    /// When the last content chunk arrived (streaming) or the body was complete (non-streaming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_token_us: Option<u64>,
    /// When the request ended, whatever its outcome. For a successful request: when its stream
    /// closed (`[DONE]` or the end of the body arrived), which can be well after the last
    /// content chunk (the usage chunk, a proxy's buffering).
    pub end_us: u64,
    /// Arrival of every content chunk, in microseconds after `first_token_us`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "offsets_exact"
    )]
    pub chunk_offsets_us: Vec<u64>,
    /// Content chunks whose arrival is not in `chunk_offsets_us`: past the client's cap on
    /// offsets kept per record (`client::response::MAX_CHUNK_OFFSETS`), only the first are
    /// kept. Chunk and token counts stay exact. Absent (0) in older records.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub chunk_offsets_dropped: u64,

    /// Prompt tokens as the server counted them (usage), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens (see `tokens_source`).
    pub output_tokens: u64,
    pub tokens_source: TokenSource,
    /// Content chunks received.
    pub content_chunks: u64,
    /// Characters of generated content received.
    pub output_chars: u64,
    /// Times the request was resent because the server closed its kept-alive connection before
    /// answering (the latency includes the lost time).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reconnects: u32,
    /// What the server said about its own timing, when it says (llama.cpp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_timings: Option<ServerTimings>,
    /// `max_tokens` the request sent (its shape's or the script's), when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The request's label (the `label` of a prompt function's map), for per-label statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The shard that sent it, in a sharded run (`--shard I/N`): its `id` is then the global
    /// request index, unique across the shards. Absent in a run of one process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    /// The session this request is a turn of (0-based over the run), in a session phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
    /// Which turn of its session this request is (0-based), in a session phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// Prompt tokens the server served from its prefix cache
    /// (`usage.prompt_tokens_details.cached_tokens`), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// The configured tokenizer's count of the whole answer text (`request(#{ tokenizer })`),
    /// beside the server's usage when it sent one: their difference is reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_tokens: Option<u64>,
}

fn one() -> u32 {
    1
}

/// Reads a list of offsets into a vector of exactly its length, in one allocation (a plain
/// `Vec` grows by doubling: six allocations and five copies for a 64-token response, a tenth of
/// the time `llmbench parse` spends deserializing).
fn offsets_exact<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    struct Offsets;
    impl<'de> serde::de::Visitor<'de> for Offsets {
        type Value = Vec<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of microsecond offsets")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u64>, A::Error> {
            thread_local! {
                static SCRATCH: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
            }
            SCRATCH.with_borrow_mut(|scratch| {
                scratch.clear();
                while let Some(v) = seq.next_element()? {
                    scratch.push(v);
                }
                Ok(scratch.as_slice().to_vec())
            })
        }
    }
    d.deserialize_seq(Offsets)
}

impl RequestRecord {
    /// A record for a request not (yet) sent: outcome `cancelled`, no response stamps.
    pub fn unsent(
        id: u64,
        phase: impl Into<String>,
        phase_index: usize,
        warmup: bool,
        streamed: bool,
        intended_us: u64,
    ) -> Self {
        Self {
            id,
            phase: phase.into(),
            phase_index,
            warmup,
            probe: false,
            outcome: Outcome::Cancelled,
            status: None,
            error: None,
            timeout: None,
            attempts: 0,
            failed_attempts: Vec::new(),
            streamed,
            intended_us,
            dispatched_us: intended_us,
            admitted_us: None,
            sent_us: None,
            headers_us: None,
            first_token_us: None,
            first_answer_us: None,
            last_token_us: None,
            end_us: intended_us,
            chunk_offsets_us: Vec::new(),
            chunk_offsets_dropped: 0,
            input_tokens: None,
            output_tokens: 0,
            tokens_source: TokenSource::Chunks,
            content_chunks: 0,
            output_chars: 0,
            reconnects: 0,
            server_timings: None,
            max_tokens: None,
            label: None,
            shard: None,
            session: None,
            turn: None,
            cached_tokens: None,
            tokenizer_tokens: None,
        }
    }

    /// A successful streamed request with known timing: sent at `sent_us`, first token
    /// `ttft_us` later, `tokens` content chunks `itl_us` apart, ending with the last one; usage
    /// says 10 prompt tokens. For tests and benchmarks that need ground truth.
    pub fn synthetic(
        id: u64,
        phase: &str,
        phase_index: usize,
        sent_us: u64,
        ttft_us: u64,
        itl_us: u64,
        tokens: u64,
    ) -> Self {
        let first = sent_us + ttft_us;
        let last = first + itl_us * tokens.saturating_sub(1);
        let mut r = Self::unsent(id, phase, phase_index, false, true, sent_us);
        r.outcome = Outcome::Ok;
        r.status = Some(200);
        r.attempts = 1;
        r.admitted_us = Some(sent_us);
        r.sent_us = Some(sent_us);
        r.headers_us = Some(sent_us);
        r.first_token_us = Some(first);
        r.first_answer_us = Some(first);
        r.last_token_us = Some(last);
        r.end_us = last;
        r.chunk_offsets_us = (0..tokens).map(|k| k * itl_us).collect();
        r.input_tokens = Some(10);
        r.output_tokens = tokens;
        r.tokens_source = TokenSource::Usage;
        r.content_chunks = tokens;
        r.output_chars = tokens;
        r
    }

    /// Takes a tokenizer's count of the whole answer: the output count when the server sent no
    /// usage (`tokens_source: tokenizer`), kept beside the usage's count when it did.
    pub fn counted_by_tokenizer(&mut self, tokens: u64) {
        self.tokenizer_tokens = Some(tokens);
        if self.tokens_source != TokenSource::Usage {
            self.output_tokens = tokens;
            self.tokens_source = TokenSource::Tokenizer;
        }
    }

    /// Microseconds between two optional stamps.
    fn span(from: Option<u64>, to: Option<u64>) -> Option<u64> {
        Some(to?.saturating_sub(from?))
    }

    /// TTFT from the actual send, µs (streamed, successful requests).
    pub fn ttft_us(&self) -> Option<u64> {
        self.timed()
            .and_then(|_| Self::span(self.sent_us, self.first_token_us))
    }

    /// Time to the first answer token (after any reasoning) from the actual send, µs.
    pub fn ttft_answer_us(&self) -> Option<u64> {
        self.timed()
            .and_then(|_| Self::span(self.sent_us, self.first_answer_us))
    }

    /// TTFT from the intended start (includes queueing and scheduler lateness), µs.
    pub fn ttft_intended_us(&self) -> Option<u64> {
        self.timed()
            .and_then(|_| Self::span(Some(self.intended_us), self.first_token_us))
    }

    /// End-to-end latency from the actual send to the last content, µs (successful requests).
    pub fn e2el_us(&self) -> Option<u64> {
        self.succeeded()
            .and_then(|_| Self::span(self.sent_us, self.last_token_us))
    }

    /// End-to-end latency from the intended start, µs.
    pub fn e2el_intended_us(&self) -> Option<u64> {
        self.succeeded()
            .and_then(|_| Self::span(Some(self.intended_us), self.last_token_us))
    }

    /// Time to stream close: from the actual send to the end of the response (`[DONE]` or the
    /// end of the body), µs (successful requests). What it adds to E2EL is the stream's tail.
    pub fn stream_close_us(&self) -> Option<u64> {
        self.succeeded()
            .and_then(|_| Self::span(self.sent_us, Some(self.end_us)))
    }

    /// Time spent waiting for a concurrency slot, µs.
    pub fn queue_us(&self) -> Option<u64> {
        Self::span(Some(self.dispatched_us), self.admitted_us)
    }

    /// Scheduler lateness: dispatched minus intended, µs.
    pub fn lateness_us(&self) -> u64 {
        self.dispatched_us.saturating_sub(self.intended_us)
    }

    /// TPOT: (E2EL - TTFT) / (output_tokens - 1), µs, for timed requests with 2+ tokens.
    pub fn tpot_us(&self) -> Option<f64> {
        self.timed()?;
        if self.output_tokens < 2 {
            return None;
        }
        let decode = Self::span(self.first_token_us, self.last_token_us)?;
        Some(decode as f64 / (self.output_tokens - 1) as f64)
    }

    /// Gaps between consecutive content chunks, µs.
    pub fn itl_us(&self) -> impl Iterator<Item = u64> + '_ {
        let timed = self.timed().is_some();
        self.chunk_offsets_us
            .windows(2)
            .filter(move |_| timed)
            .map(|w| w[1].saturating_sub(w[0]))
    }

    /// Output tokens per second of end-to-end latency (successful requests).
    pub fn output_tok_per_s(&self) -> Option<f64> {
        let e2el = self.e2el_us()?;
        (e2el > 0).then(|| self.output_tokens as f64 / crate::units::us_to_s(e2el))
    }

    fn succeeded(&self) -> Option<()> {
        (self.outcome == Outcome::Ok).then_some(())
    }

    /// Successful and streamed: the requests whose token timing means something.
    fn timed(&self) -> Option<()> {
        (self.outcome == Outcome::Ok && self.streamed).then_some(())
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::path::Path;

    #[test]
    fn a_failed_write_keeps_only_whole_records() {
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let Ok(full) = OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut w = RecordWriter::on(Path::new("/dev/full"), full);
        let e = w.append(&sample()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(w.len, 0);
    }

    pub(crate) fn sample() -> RequestRecord {
        RequestRecord {
            id: 3,
            phase: "steady".into(),
            phase_index: 0,
            warmup: false,
            probe: false,
            outcome: Outcome::Ok,
            status: Some(200),
            error: None,
            timeout: None,
            attempts: 1,
            failed_attempts: Vec::new(),
            streamed: true,
            intended_us: 1_000,
            dispatched_us: 1_010,
            admitted_us: Some(1_500),
            sent_us: Some(1_520),
            headers_us: Some(1_800),
            first_token_us: Some(101_520),
            first_answer_us: Some(101_520),
            last_token_us: Some(131_520),
            end_us: 131_600,
            chunk_offsets_us: vec![0, 10_000, 20_000, 30_000],
            chunk_offsets_dropped: 0,
            input_tokens: Some(12),
            output_tokens: 4,
            tokens_source: TokenSource::Usage,
            content_chunks: 4,
            output_chars: 20,
            reconnects: 0,
            server_timings: None,
            max_tokens: None,
            label: None,
            shard: None,
            session: None,
            turn: None,
            cached_tokens: None,
            tokenizer_tokens: None,
        }
    }

    #[test]
    fn derived_timings_follow_the_definitions() {
        let r = sample();
        assert_eq!(r.ttft_us(), Some(100_000));
        assert_eq!(r.ttft_intended_us(), Some(100_520));
        assert_eq!(r.e2el_us(), Some(130_000));
        assert_eq!(r.stream_close_us(), Some(130_080));
        assert_eq!(r.tpot_us(), Some(10_000.0));
        assert_eq!(r.itl_us().collect::<Vec<_>>(), vec![10_000; 3]);
        assert_eq!(r.queue_us(), Some(490));
        assert_eq!(r.lateness_us(), 10);
        let tps = r.output_tok_per_s().unwrap();
        assert!((tps - 4.0 / 0.13).abs() < 1e-9);
    }

    #[test]
    fn failed_requests_have_no_latency() {
        let mut r = sample();
        r.outcome = Outcome::StreamBroken;
        assert_eq!(r.ttft_us(), None);
        assert_eq!(r.e2el_us(), None);
        assert_eq!(r.stream_close_us(), None);
        assert_eq!(r.tpot_us(), None);
        assert_eq!(r.itl_us().count(), 0);
    }

    #[test]
    fn records_round_trip_through_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let mut w = RecordWriter::create_new(&path).unwrap();
        let a = sample();
        let mut b = sample();
        b.id = 4;
        b.outcome = Outcome::Cancelled;
        b.sent_us = None;
        w.append(&a).unwrap();
        w.append(&b).unwrap();
        assert!(RecordWriter::create_new(&path).is_err(), "never overwrites");
        assert_eq!(read_records(&path).unwrap(), vec![a, b]);
    }
}
