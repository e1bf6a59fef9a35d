//! What one attempt received and how it failed: the state filled in as a response arrives, the
//! typed failure (outcome class, timeout kind, message), and how both land in a `RequestRecord`.

use std::time::Duration;

use super::chunk::{Usage, truncate};
use crate::record::{Outcome, RequestRecord, TimeoutKind, TokenSource};

/// What arrived for one request, filled in as it arrives.
#[derive(Debug)]
pub(super) struct Received {
    pub(super) status: Option<u16>,
    pub(super) headers_us: Option<u64>,
    pub(super) first_token_us: Option<u64>,
    pub(super) last_token_us: Option<u64>,
    pub(super) offsets: Vec<u64>,
    pub(super) chunks: u64,
    pub(super) chars: u64,
    pub(super) usage: Option<Usage>,
    pub(super) streamed: bool,
    pub(super) done: bool,
    pub(super) finished: bool,
    /// The server's `Retry-After`, on a failed status.
    pub(super) retry_after: Option<Duration>,
}

impl Default for Received {
    fn default() -> Self {
        Self {
            status: None,
            headers_us: None,
            first_token_us: None,
            last_token_us: None,
            offsets: Vec::new(),
            chunks: 0,
            chars: 0,
            usage: None,
            streamed: true,
            done: false,
            finished: false,
            retry_after: None,
        }
    }
}

impl Received {
    pub(super) fn content(&mut self, now: u64, chars: u64) {
        let first = *self.first_token_us.get_or_insert(now);
        self.offsets.push(now - first);
        self.last_token_us = Some(now);
        self.chunks += 1;
        self.chars += chars;
    }

    pub(super) fn into_record(self, rec: &mut RequestRecord, result: Result<(), Failure>) {
        match result {
            Ok(()) => rec.outcome = Outcome::Ok,
            Err(f) => {
                rec.outcome = f.outcome;
                rec.timeout = f.timeout;
                rec.error = Some(f.message);
            }
        }
        rec.status = self.status;
        rec.streamed = rec.streamed && self.streamed;
        rec.headers_us = self.headers_us;
        rec.first_token_us = self.first_token_us;
        rec.last_token_us = self.last_token_us;
        rec.chunk_offsets_us = if rec.streamed {
            self.offsets
        } else {
            Vec::new()
        };
        rec.content_chunks = self.chunks;
        rec.output_chars = self.chars;
        rec.input_tokens = self.usage.and_then(|u| u.prompt_tokens);
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

/// A failed request: its class and a message for the record.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) outcome: Outcome,
    pub(super) timeout: Option<TimeoutKind>,
    pub(super) message: String,
}

impl Failure {
    pub(super) fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            timeout: None,
            message: message.into(),
        }
    }

    pub(super) fn timeout(kind: TimeoutKind, message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Timeout,
            timeout: Some(kind),
            message: message.into(),
        }
    }

    /// A failed send: a connect timeout, or a connection that could not be made or broke
    /// before the response. The URL is left out of the message.
    pub(super) fn from_reqwest(e: reqwest::Error) -> Self {
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
    pub(super) fn retryable(&self, received: &Received) -> bool {
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

/// An error and its causes on one line ("a: b: c"), without repeating itself.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
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
    truncate(&msg, 400)
}
