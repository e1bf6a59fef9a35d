//! Reading one response, without I/O: network reads go in (bytes plus the time they arrived),
//! the request's outcome and timings come out. The client feeds it from the socket; fixture
//! tests feed it captured bytes, so both exercise the very same logic.

use std::time::Duration;

use crate::record::{Outcome, RequestRecord, ServerTimings, TimeoutKind, TokenSource};

use super::answer::Answer;
use super::chunk::{
    BodyError, ChunkInfo, StreamItem, Usage, append_text, parse_body, parse_stream_data,
};
use super::sse::SseParser;

/// The most chunk arrival offsets one record keeps (800 KB); later chunks are counted in
/// `RequestRecord::chunk_offsets_dropped`, so a server streaming tiny chunks without end cannot
/// grow one record without bound.
pub const MAX_CHUNK_OFFSETS: usize = 100_000;

/// A failed attempt: its class, which timeout fired (if one did) and a message for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub outcome: Outcome,
    pub timeout: Option<TimeoutKind>,
    pub message: String,
}

impl Failure {
    pub fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            timeout: None,
            message: message.into(),
        }
    }

    pub fn timeout(kind: TimeoutKind, message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Timeout,
            timeout: Some(kind),
            message: message.into(),
        }
    }

    /// A failed send: a connect timeout, or a connection that could not be made or broke
    /// before the response. The URL is left out of the message.
    pub fn from_reqwest(e: reqwest::Error) -> Self {
        let (timeout, body) = (e.is_timeout(), e.is_body() || e.is_decode());
        let message = error_chain(&e.without_url());
        if timeout {
            Self::timeout(TimeoutKind::Connect, format!("connect timeout: {message}"))
        } else if body {
            Self::new(Outcome::StreamBroken, message)
        } else {
            Self::new(Outcome::Connection, message)
        }
    }

    /// Worth another attempt: the server refused or failed before producing anything (a
    /// connection failure, 429 or 5xx). Timeouts and broken streams are not retried.
    pub fn retryable(&self, received: &Received) -> bool {
        received.first_token_us.is_none()
            && match self.outcome {
                Outcome::Connection => true,
                Outcome::HttpStatus => received
                    .status
                    .is_some_and(|s| s == 429 || (500..600).contains(&s)),
                _ => false,
            }
    }
}

/// An error and its causes on one line ("a: b: c"), without repeating itself; uncut (the
/// client redacts, then cuts, what it records).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// What has arrived for one request so far.
#[derive(Debug)]
pub struct Received {
    pub status: Option<u16>,
    /// Times the request was resent because its connection closed before any response.
    pub reconnects: u32,
    pub headers_us: Option<u64>,
    /// The server's `Retry-After`, on a failed status.
    pub retry_after: Option<Duration>,
    first_token_us: Option<u64>,
    first_answer_us: Option<u64>,
    last_token_us: Option<u64>,
    offsets: Vec<u64>,
    /// Content chunks past `MAX_CHUNK_OFFSETS`, whose offsets were not kept.
    offsets_dropped: u64,
    chunks: u64,
    chars: u64,
    usage: Option<Usage>,
    timings: Option<ServerTimings>,
    /// How the body was read: as an SSE stream (true) or as one body, a JSON answer or an
    /// error status's message (false); `None` while no body was read.
    streamed: Option<bool>,
    /// `[DONE]` arrived.
    done: bool,
    /// A choice reported a finish reason.
    finished: bool,
    parser: SseParser,
    failure: Option<Failure>,
    /// The answer's text, when asked to keep it (`keeping`).
    answer: Option<Answer>,
    /// The whole generated text, kept only when the request counts its own tokens.
    text: Option<String>,
}

impl Default for Received {
    fn default() -> Self {
        Self {
            status: None,
            reconnects: 0,
            headers_us: None,
            retry_after: None,
            first_token_us: None,
            first_answer_us: None,
            last_token_us: None,
            offsets: Vec::new(),
            offsets_dropped: 0,
            chunks: 0,
            chars: 0,
            usage: None,
            timings: None,
            streamed: None,
            done: false,
            finished: false,
            parser: SseParser::new(),
            failure: None,
            answer: None,
            text: None,
        }
    }
}

impl Received {
    /// A reader that also keeps the answer's text when `answer` (a session turn: the next
    /// turn carries it) and the whole generated text when `text` (a tokenizer counts it).
    pub fn keeping(answer: bool, text: bool) -> Self {
        Self {
            answer: answer.then(Answer::default),
            text: text.then(String::new),
            ..Self::default()
        }
    }

    /// The answer's text, when it was kept and something was read.
    pub fn take_answer(&mut self) -> Option<String> {
        self.answer
            .take()
            .filter(|_| self.streamed.is_some())
            .map(Answer::into_text)
    }

    /// The generated text kept so far (`keeping`), leaving none.
    pub fn take_text(&mut self) -> Option<String> {
        self.text.take()
    }

    /// Feeds one network read of an SSE body that arrived at `now_us`.
    pub fn feed_stream(&mut self, bytes: &[u8], now_us: u64) {
        self.streamed = Some(true);
        let mut parser = std::mem::take(&mut self.parser);
        let fed = parser.feed(bytes, |ev| self.event(ev.data, now_us));
        self.parser = parser;
        if let Err(e) = fed {
            self.failure
                .get_or_insert(Failure::new(Outcome::InvalidResponse, e.to_string()));
        }
    }

    /// Content has arrived (the first-token timeout no longer applies).
    pub fn has_content(&self) -> bool {
        self.first_token_us.is_some()
    }

    /// True once nothing more needs reading: `[DONE]` or a failure arrived.
    pub fn complete(&self) -> bool {
        self.done || self.failure.is_some()
    }

    /// Ends an SSE body (the connection closed) at `now_us`; says how the stream ended.
    pub fn finish_stream(&mut self, now_us: u64) -> Result<(), Failure> {
        self.streamed = Some(true);
        let mut parser = std::mem::take(&mut self.parser);
        parser.finish(|ev| self.event(ev.data, now_us));
        if let Some(f) = self.failure.take() {
            return Err(f);
        }
        if !self.done && !self.finished {
            return Err(Failure::new(
                Outcome::StreamBroken,
                "stream ended without [DONE] or a finish_reason",
            ));
        }
        Ok(())
    }

    /// Takes a whole (non-streaming) JSON body that was complete at `now_us`.
    pub fn whole_body(&mut self, body: &[u8], now_us: u64) -> Result<(), Failure> {
        self.read_as_one_body();
        if let Some(answer) = &mut self.answer {
            answer.add(body);
        }
        match parse_body(body) {
            Ok(info) => {
                if let Some(text) = &mut self.text {
                    append_text(body, text);
                }
                self.chunk(&info, now_us);
                self.finished = true;
                Ok(())
            }
            Err(BodyError::Error(msg)) => Err(Failure::new(Outcome::InvalidResponse, msg)),
            Err(BodyError::Invalid(msg)) => Err(Failure::new(Outcome::InvalidResponse, msg)),
        }
    }

    /// The body is read as one piece, not as a stream (a JSON answer, an error's message).
    pub fn read_as_one_body(&mut self) {
        self.streamed = Some(false);
    }

    fn event(&mut self, data: &[u8], now_us: u64) {
        if self.complete() {
            return;
        }
        match parse_stream_data(data) {
            StreamItem::Done => self.done = true,
            StreamItem::Chunk(info) => {
                if let Some(answer) = &mut self.answer {
                    answer.add(data);
                }
                if let (Some(text), true) = (&mut self.text, info.content_chars > 0) {
                    append_text(data, text);
                }
                self.chunk(&info, now_us)
            }
            StreamItem::Error(msg) => {
                self.failure = Some(Failure::new(
                    Outcome::InvalidResponse,
                    format!("error in stream: {msg}"),
                ))
            }
            StreamItem::Invalid(msg) => {
                self.failure = Some(Failure::new(Outcome::InvalidResponse, msg))
            }
        }
    }

    fn chunk(&mut self, info: &ChunkInfo, now: u64) {
        if info.content_chars > 0 {
            let first = *self.first_token_us.get_or_insert(now);
            if info.answer_chars > 0 {
                self.first_answer_us.get_or_insert(now);
            }
            if self.offsets.len() < MAX_CHUNK_OFFSETS {
                self.offsets.push(now - first);
            } else {
                self.offsets_dropped += 1;
            }
            self.last_token_us = Some(now);
            self.chunks += 1;
            self.chars += info.content_chars;
        }
        self.finished |= info.finished;
        if info.usage.is_some() {
            self.usage = info.usage;
        }
        if info.timings.is_some() {
            self.timings = info.timings;
        }
    }

    /// Writes what arrived, and how it ended, into `rec`.
    pub fn into_record(self, rec: &mut RequestRecord, result: Result<(), Failure>) {
        match result {
            Ok(()) => rec.outcome = Outcome::Ok,
            Err(f) => {
                rec.outcome = f.outcome;
                rec.timeout = f.timeout;
                rec.error = Some(f.message);
            }
        }
        rec.status = self.status;
        rec.reconnects = self.reconnects;
        // Without a body (no response, or one that broke before its first byte) the record
        // keeps what was asked.
        rec.streamed = rec.streamed && self.streamed.unwrap_or(true);
        rec.headers_us = self.headers_us;
        rec.first_token_us = self.first_token_us;
        rec.first_answer_us = self.first_answer_us;
        rec.last_token_us = self.last_token_us;
        (rec.chunk_offsets_us, rec.chunk_offsets_dropped) = if rec.streamed {
            (self.offsets, self.offsets_dropped)
        } else {
            (Vec::new(), 0)
        };
        rec.content_chunks = self.chunks;
        rec.output_chars = self.chars;
        rec.input_tokens = self.usage.and_then(|u| u.prompt_tokens);
        rec.cached_tokens = self.usage.and_then(|u| u.cached_tokens());
        rec.server_timings = self.timings;
        match self.usage.and_then(|u| u.completion_tokens) {
            Some(n) => {
                rec.output_tokens = n;
                rec.tokens_source = TokenSource::Usage;
            }
            None => {
                rec.output_tokens = self.chunks;
                rec.tokens_source = TokenSource::Chunks;
            }
        }
    }
}

/// Replays captured SSE bytes, one `(bytes, arrival µs)` read at a time, through the reader the
/// client uses, and returns the record it would write (sent at 0). For fixture tests and for
/// checking how llmbench reads a server's stream.
pub fn replay_stream<'a>(reads: impl IntoIterator<Item = (&'a [u8], u64)>) -> RequestRecord {
    let mut rec = RequestRecord::unsent(0, "replay", 0, false, true, 0);
    rec.sent_us = Some(0);
    let mut st = Received::default();
    let mut last = 0;
    for (bytes, at) in reads {
        last = at;
        st.feed_stream(bytes, at);
        if st.complete() {
            break;
        }
    }
    let result = st.finish_stream(last);
    rec.end_us = last;
    st.into_record(&mut rec, result);
    rec
}
