//! The OpenAI client: builds request bodies, sends them, reads the response (streamed or not),
//! stamps every event on the run clock, and turns the result into one `RequestRecord` with a
//! typed outcome. It never panics on what a server sends, and never puts the API key anywhere
//! but the Authorization header. Every message it records goes through the run's one
//! `Redactor` (the key, URL credentials, header values) before it is cut to
//! `MAX_ERROR_CHARS`, so a server echoing a secret leaves none of it, whole or in part. It
//! enforces the
//! first-token and whole-request timeouts, and retries (off by default) only failures that came
//! before any content, keeping each failed attempt in the record.
//!
//! Media types are compared without case or parameters (`Text/Event-Stream; charset=utf-8` is a
//! stream). A streamed request whose response has no Content-Type is read as SSE when its body
//! starts like SSE (`data:`, `event:`, `id:`, `retry:` or a `:` comment), as openai-python reads
//! any streamed response, and as one JSON body otherwise.
//!
//! Memory per request is bounded: a non-streamed body is read up to `MAX_BODY_BYTES` (more is an
//! `invalid_response`), an SSE line and event by `sse`'s limits, and a record keeps at most
//! `response::MAX_CHUNK_OFFSETS` chunk arrival times (the rest are counted as dropped).

pub mod answer;
mod body;
pub mod chunk;
mod counting;
mod fresh;
pub mod models;
pub mod options;
mod outgoing;
pub mod preflight;
pub mod response;
pub mod sse;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::plan::{CancelSpec, Endpoint, RequestSpec, Target, TokenCount};
use crate::record::{FailedAttempt, Outcome, RequestRecord, TimeoutKind};
use crate::redact::{Redactor, public_url};
use crate::schedule::Dispatch;
use body::failed_status;
pub use options::ClientOptions;
pub use outgoing::{Outgoing, build_body, build_request};
use response::{Failure, Received, error_chain};

/// Makes rustls use the `ring` crypto provider, once per process. Every HTTP client llmbench
/// builds (requests, scrapes) calls this first: without a provider reqwest panics.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Header carrying the run-wide request id, so server logs (and the mock) can be matched up.
pub const REQUEST_ID_HEADER: &str = "x-llmbench-request-id";
/// Header carrying a session turn's session number (`Outgoing::with_session_turn`).
pub const SESSION_HEADER: &str = "x-llmbench-session";
/// Header carrying a session turn's turn number within its session.
pub const TURN_HEADER: &str = "x-llmbench-turn";

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("target {name:?}: base_url {url:?} is not a valid http(s) URL ({reason})")]
    BadUrl {
        name: String,
        url: String,
        reason: String,
    },
    #[error("target {0:?}: the API key contains characters not allowed in an HTTP header")]
    BadKey(String),
    #[error(
        "request header {0:?}: not a valid HTTP header name or value; fix headers in request(...)"
    )]
    BadHeader(String),
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    #[error("--ca-cert {}: {reason}; give a PEM file of CA certificates", path.display())]
    CaCert {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("--proxy {proxy}: not a valid proxy URL; use e.g. http://HOST:PORT")]
    BadProxy { proxy: String },
}

/// Which phase a request belongs to, as the record names it.
#[derive(Debug, Clone)]
pub struct PhaseLabel {
    pub name: String,
    pub warmup: bool,
    /// A capacity sweep's saturation probe (left out of the `all` row).
    pub probe: bool,
    /// The requests the client abandons on purpose (`Phase::cancel`).
    pub cancel: Option<CancelSpec>,
}

impl PhaseLabel {
    /// The label of `phase`'s requests.
    pub fn of(phase: &crate::plan::Phase) -> Self {
        Self {
            name: phase.name.clone(),
            warmup: phase.warmup,
            probe: phase.sweep == Some(crate::plan::SweepStep::Saturation),
            cancel: phase.cancel,
        }
    }
}

/// Sends requests to one endpoint of one target.
pub struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
    /// The target's model list, `GET {base_url}/models`.
    models_url: reqwest::Url,
    /// The endpoint `url` ends in (the preflight names the other one when this one is missing).
    endpoint: Endpoint,
    headers: HeaderMap,
    stream: bool,
    timeout: Duration,
    first_token_timeout: Option<Duration>,
    retries: u32,
    /// Every secret of the target, the request headers and the proxy, to clean what a server
    /// sends back (and every error) before it is cut or recorded.
    redactor: Redactor,
    clock: Clock,
    /// Cancelled when the run stops (the first signal): no request starts another attempt.
    no_retries: CancellationToken,
    /// Counts each whole answer's tokens (the request's `tokenizer`), when one is configured.
    tokenizer: Option<Arc<dyn TokenCount>>,
}

/// The most characters of an error message a record keeps (after redaction).
pub const MAX_ERROR_CHARS: usize = 400;

/// The redactor of a run: the target's key and URL credentials, every request header's value
/// (any may carry a secret) and the proxy's credentials.
pub fn redactor(target: &Target, spec: &RequestSpec, options: &ClientOptions) -> Redactor {
    let mut r = Redactor::new().with_url(&target.base_url);
    if let Some(key) = &target.api_key {
        r.add(key.expose());
    }
    for (_, value) in &spec.headers {
        r.add_header_value(value);
    }
    if let Some(proxy) = &options.proxy {
        r.add_url(proxy);
    }
    r
}

/// The URL requests go to: the base URL's path with the endpoint's appended, its query (e.g.
/// Azure's `?api-version=`) kept, the fragment dropped.
fn endpoint_url(base: &str, endpoint: Endpoint) -> Result<reqwest::Url, String> {
    api_url(base, endpoint.path())
}

/// `base` (up to the API version) joined with `path`, e.g. `models`.
fn api_url(base: &str, path: &str) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(base.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?}", url.scheme()));
    }
    let path = format!("{}/{}", url.path().trim_end_matches('/'), path);
    url.set_path(&path);
    url.set_fragment(None);
    Ok(url)
}

/// Longest wait before a retry, whatever `Retry-After` says.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

impl Client {
    /// A client with a keep-alive pool of `pool` connections and default options.
    pub fn new(
        target: &Target,
        spec: &RequestSpec,
        pool: usize,
        clock: Clock,
    ) -> Result<Self, ClientError> {
        Self::with_options(target, spec, pool, clock, &ClientOptions::default())
    }

    /// A client with a keep-alive pool of `pool` connections.
    pub fn with_options(
        target: &Target,
        spec: &RequestSpec,
        pool: usize,
        clock: Clock,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let url = endpoint_url(&target.base_url, spec.endpoint).map_err(|reason| {
            ClientError::BadUrl {
                name: target.name.clone(),
                url: public_url(&target.base_url),
                reason,
            }
        })?;
        let models_url = api_url(&target.base_url, "models").expect("the endpoint URL parsed");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &target.api_key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                .map_err(|_| ClientError::BadKey(target.name.clone()))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        for (name, value) in &spec.headers {
            let (n, v) = outgoing::header(name, value)
                .ok_or_else(|| ClientError::BadHeader(name.clone()))?;
            headers.insert(n, v);
        }
        let http = options.build_http(pool, spec.timeout)?;
        Ok(Self {
            http,
            url,
            models_url,
            endpoint: spec.endpoint,
            headers,
            stream: spec.stream,
            timeout: spec.timeout,
            first_token_timeout: options.first_token_timeout,
            retries: options.retries,
            redactor: redactor(target, spec, options),
            clock,
            no_retries: CancellationToken::new(),
            tokenizer: spec.tokenizer.as_ref().map(|t| t.counter.clone()),
        })
    }

    /// Cancel it to stop retries: a request waiting to retry (a `Retry-After`, a back-off)
    /// ends with the failure it has instead of trying again. The run cancels it on a signal.
    pub fn retries_stop(&self) -> CancellationToken {
        self.no_retries.clone()
    }

    /// An error message as a record keeps it: redacted, then cut to `MAX_ERROR_CHARS`.
    fn clean(&self, message: &str) -> String {
        self.redactor.cut(message, MAX_ERROR_CHARS)
    }

    /// The run's redactor, for anything else that shows what a server sent.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Performs one request (a body, or a whole `Outgoing` with its own headers and shape) and
    /// returns its record. A dispatch that was never admitted (the run stopped while it queued)
    /// is recorded as cancelled without being sent. `abort` cuts a request short (recorded as
    /// cancelled, keeping what arrived).
    pub async fn execute(
        &self,
        dispatch: Dispatch,
        phase: &PhaseLabel,
        request: impl Into<Outgoing>,
        abort: &CancellationToken,
    ) -> RequestRecord {
        self.perform(dispatch, phase, request.into(), abort, false)
            .await
            .0
    }

    /// Like `execute`, also returning the answer's text as it streamed (the answer content,
    /// not reasoning; at most `answer::MAX_ANSWER_BYTES`): a session's next turn carries it.
    /// `None` when nothing was read.
    pub async fn execute_keeping_answer(
        &self,
        dispatch: Dispatch,
        phase: &PhaseLabel,
        request: Outgoing,
        abort: &CancellationToken,
    ) -> (RequestRecord, Option<String>) {
        self.perform(dispatch, phase, request, abort, true).await
    }

    async fn perform(
        &self,
        dispatch: Dispatch,
        phase: &PhaseLabel,
        request: Outgoing,
        abort: &CancellationToken,
        keep_answer: bool,
    ) -> (RequestRecord, Option<String>) {
        let Outgoing {
            body,
            headers,
            max_tokens,
            label,
        } = request;
        let mut rec = RequestRecord::unsent(
            dispatch.id,
            phase.name.as_str(),
            dispatch.phase_index,
            phase.warmup,
            self.stream,
            dispatch.intended_us,
        );
        rec.max_tokens = max_tokens;
        rec.label = label;
        let redactor = self.request_redactor(&headers);
        let clean = |m: &str| redactor.cut(m, MAX_ERROR_CHARS);
        rec.probe = phase.probe;
        rec.dispatched_us = dispatch.dispatched_us;
        rec.admitted_us = dispatch.admitted_us;
        rec.attempts = 1;
        if dispatch.admitted_us.is_none() || abort.is_cancelled() {
            rec.attempts = 0;
            rec.error = Some("run stopped before this request was sent".into());
            rec.end_us = self.clock.now_us();
            return (rec, None);
        }
        loop {
            let mut state = Received::keeping(keep_answer, self.tokenizer.is_some());
            let sent_us = self.clock.now_us();
            let give_up = phase.cancel.filter(|c| c.cancels(dispatch.id));
            let result = self
                .attempt(
                    dispatch.id,
                    (body.clone(), &headers),
                    &mut state,
                    abort,
                    give_up,
                )
                .await;
            let end_us = self.clock.now_us();
            let retry = match &result {
                Err(f)
                    if rec.attempts <= self.retries
                        && !abort.is_cancelled()
                        && !self.no_retries.is_cancelled() =>
                {
                    f.retryable(&state)
                }
                _ => false,
            };
            if retry {
                let wait = state
                    .retry_after
                    .unwrap_or(Duration::from_millis(100) * 2u32.pow(rec.attempts.min(8) - 1))
                    .min(MAX_RETRY_WAIT);
                let waited = tokio::select! {
                    _ = tokio::time::sleep(wait) => true,
                    _ = abort.cancelled() => false,
                    _ = self.no_retries.cancelled() => false,
                };
                if waited {
                    let f = result.expect_err("only failures are retried");
                    rec.failed_attempts.push(FailedAttempt {
                        outcome: f.outcome,
                        status: state.status,
                        error: Some(clean(&f.message)),
                        sent_us,
                        end_us,
                    });
                    rec.attempts += 1;
                    continue;
                }
            }
            rec.sent_us = Some(sent_us);
            rec.end_us = end_us;
            let answer = state.take_answer();
            let text = state.take_text();
            state.into_record(&mut rec, result);
            if let (Some(tokenizer), Some(text)) = (&self.tokenizer, text) {
                let n = counting::count_tokens(tokenizer.clone(), text).await;
                rec.counted_by_tokenizer(n);
            }
            rec.error = rec.error.take().map(|m| clean(&m));
            return (rec, answer);
        }
    }

    /// The redactor of one request: the client's, plus this request's own sensitive header
    /// values (a shape's; a session's ids are not secrets).
    fn request_redactor(&self, headers: &HeaderMap) -> std::borrow::Cow<'_, Redactor> {
        let mut secret = headers
            .values()
            .filter(|v| v.is_sensitive())
            .filter_map(|v| v.to_str().ok())
            .peekable();
        if secret.peek().is_none() {
            return std::borrow::Cow::Borrowed(&self.redactor);
        }
        let mut r = self.redactor.clone();
        secret.for_each(|v| r.add_header_value(v));
        std::borrow::Cow::Owned(r)
    }

    /// One attempt, bounded by the whole-request timeout, by `abort` and, for a request the
    /// client abandons, by its delay after the send.
    async fn attempt(
        &self,
        id: u64,
        body: (Bytes, &HeaderMap),
        state: &mut Received,
        abort: &CancellationToken,
        give_up: Option<CancelSpec>,
    ) -> Result<(), Failure> {
        let after = give_up.map(|c| c.after);
        tokio::select! {
            _ = tokio::time::sleep(after.unwrap_or_default()), if after.is_some() => Err(Failure::new(
                Outcome::CancelledByClient,
                format!("cancelled by the client {:.0} ms after the send, as a user abandoning", after.unwrap_or_default().as_secs_f64() * 1000.0),
            )),
            r = self.exchange(id, body, state) => r,
            _ = tokio::time::sleep(self.timeout) => Err(Failure::timeout(
                TimeoutKind::Total,
                format!("no complete response within the {:.0} s request timeout", self.timeout.as_secs_f64()),
            )),
            _ = abort.cancelled() => Err(Failure::new(Outcome::Cancelled, "run stopped while this request was in flight")),
        }
    }

    /// Waits for `fut`, bounded by the first-token deadline while no content has arrived.
    async fn before_first_token<F: std::future::Future>(
        &self,
        deadline: Option<tokio::time::Instant>,
        fut: F,
    ) -> Result<F::Output, Failure> {
        match deadline {
            None => Ok(fut.await),
            Some(d) => tokio::time::timeout_at(d, fut).await.map_err(|_| {
                Failure::timeout(
                    TimeoutKind::FirstToken,
                    format!(
                        "no content within the {:.1} s first-token timeout",
                        self.first_token_timeout.unwrap_or_default().as_secs_f64()
                    ),
                )
            }),
        }
    }

    /// Sends the request (its body, and its own headers after the client's) and reads the
    /// whole response into `state`.
    async fn exchange(
        &self,
        id: u64,
        (body, own): (Bytes, &HeaderMap),
        st: &mut Received,
    ) -> Result<(), Failure> {
        let first_token_deadline = self
            .first_token_timeout
            .map(|d| tokio::time::Instant::now() + d);
        let mut resp = loop {
            let send = self
                .http
                .post(self.url.clone())
                .headers(self.headers.clone())
                .headers(own.clone())
                .header(REQUEST_ID_HEADER, id)
                .body(body.clone())
                .send();
            let (sent, fresh) = self
                .before_first_token(first_token_deadline, fresh::watch(send))
                .await?;
            match sent {
                Ok(resp) => break resp,
                // The server closed a kept-alive connection just as the request went out, before
                // answering anything: the request was not processed, so it goes again on a new
                // connection (recorded; the latency keeps the lost time). Only a reused
                // connection: a new one closed unanswered is the server failing the request.
                Err(e)
                    if !fresh
                        && st.reconnects < MAX_RECONNECTS
                        && fresh::closed_before_response(&e) =>
                {
                    st.reconnects += 1;
                }
                Err(e) if fresh && fresh::closed_before_response(&e) => {
                    return Err(Failure::new(
                        Outcome::Connection,
                        format!(
                            "the server closed a new connection without answering the request ({})",
                            error_chain(&e.without_url())
                        ),
                    ));
                }
                Err(e) => return Err(Failure::from_reqwest(e)),
            }
        };
        st.headers_us = Some(self.clock.now_us());
        let status = resp.status();
        st.status = Some(status.as_u16());
        if !status.is_success() {
            return Err(failed_status(&mut resp, st, status).await);
        }
        self.read_body(&mut resp, st, first_token_deadline).await
    }
}

/// The most bytes of a non-streamed body llmbench reads (the largest real response is far
/// smaller); a longer body is an `invalid_response`, measured up to where reading stopped.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// How often a request is resent after its connection was closed before any response.
const MAX_RECONNECTS: u32 = 2;

#[cfg(test)]
mod tests;
