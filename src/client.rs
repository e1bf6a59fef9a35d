//! The OpenAI client: builds request bodies, sends them, reads the response (streamed or not),
//! stamps every event on the run clock, and turns the result into one `RequestRecord` with a
//! typed outcome. It never panics on what a server sends, and never puts the API key anywhere
//! but the Authorization header.

pub mod chunk;
pub mod sse;

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::plan::{Content, Endpoint, RequestSpec, Target};
use crate::record::{Outcome, RequestRecord, TokenSource};
use crate::schedule::Dispatch;
use chunk::{BodyError, StreamItem, Usage, parse_body, parse_stream_data, truncate};
use sse::SseParser;

/// Header carrying the run-wide request id, so server logs (and the mock) can be matched up.
pub const REQUEST_ID_HEADER: &str = "x-llmbench-request-id";

/// Builds the JSON body for one request: the endpoint's prompt fields, `max_tokens`, streaming
/// (with `stream_options.include_usage`), then the spec's extra body fields.
pub fn build_body(spec: &RequestSpec, model: &str, prompt: &Content) -> Result<Bytes, String> {
    let mut body = match (spec.endpoint, prompt) {
        (Endpoint::Chat, content) => {
            let mut messages = Vec::new();
            if let Some(system) = &spec.system {
                messages.push(json!({"role": "system", "content": system}));
            }
            match content {
                Content::Text(text) => messages.push(json!({"role": "user", "content": text})),
                Content::Messages(list) => messages.extend(
                    list.iter()
                        .map(|m| json!({"role": m.role, "content": m.content})),
                ),
            }
            json!({ "model": model, "messages": messages })
        }
        (Endpoint::Completions, Content::Text(text)) => json!({ "model": model, "prompt": text }),
        (Endpoint::Completions, Content::Messages(_)) => {
            return Err(
                "the prompt is a list of chat messages, but the endpoint is \"completions\"; use endpoint: \"chat\" or return a string".into(),
            );
        }
    };
    let obj = body.as_object_mut().expect("built as an object");
    if let Some(n) = spec.max_tokens {
        obj.insert("max_tokens".into(), Value::from(n));
    }
    obj.insert("stream".into(), Value::Bool(spec.stream));
    if spec.stream {
        obj.insert("stream_options".into(), json!({"include_usage": true}));
    }
    for (k, v) in &spec.body {
        obj.insert(k.clone(), v.clone());
    }
    Ok(Bytes::from(
        serde_json::to_vec(&body).expect("JSON values serialize"),
    ))
}

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
}

/// Which phase a request belongs to, as the record names it.
#[derive(Debug, Clone)]
pub struct PhaseLabel {
    pub name: String,
    pub warmup: bool,
}

/// Sends requests to one endpoint of one target.
pub struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    stream: bool,
    timeout: Duration,
    clock: Clock,
}

impl Client {
    /// A client with a keep-alive pool of `pool` connections.
    pub fn new(
        target: &Target,
        spec: &RequestSpec,
        pool: usize,
        clock: Clock,
    ) -> Result<Self, ClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = target.base_url.trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{base}/{}", spec.endpoint.path()))
            .map_err(|e| e.to_string())
            .and_then(|u| match u.scheme() {
                "http" | "https" => Ok(u),
                other => Err(format!("scheme {other:?}")),
            })
            .map_err(|reason| ClientError::BadUrl {
                name: target.name.clone(),
                url: target.base_url.clone(),
                reason,
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &target.api_key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                .map_err(|_| ClientError::BadKey(target.name.clone()))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        for (name, value) in &spec.headers {
            let bad = || ClientError::BadHeader(name.clone());
            let n = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let mut v = HeaderValue::from_str(value).map_err(|_| bad())?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(pool.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(Duration::from_secs(10).min(spec.timeout))
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(Self {
            http,
            url,
            headers,
            stream: spec.stream,
            timeout: spec.timeout,
            clock,
        })
    }

    /// Performs one request and returns its record. A dispatch that was never admitted (the run
    /// stopped while it queued) is recorded as cancelled without being sent. `abort` cuts a
    /// request short (recorded as cancelled, keeping what arrived).
    pub async fn execute(
        &self,
        dispatch: Dispatch,
        phase: &PhaseLabel,
        body: Bytes,
        abort: &CancellationToken,
    ) -> RequestRecord {
        let mut rec = RequestRecord {
            id: dispatch.id,
            phase: phase.name.clone(),
            phase_index: dispatch.phase_index,
            warmup: phase.warmup,
            outcome: Outcome::Cancelled,
            status: None,
            error: None,
            streamed: self.stream,
            intended_us: dispatch.intended_us,
            dispatched_us: dispatch.dispatched_us,
            admitted_us: dispatch.admitted_us,
            sent_us: None,
            headers_us: None,
            first_token_us: None,
            last_token_us: None,
            end_us: 0,
            chunk_offsets_us: Vec::new(),
            input_tokens: None,
            output_tokens: 0,
            tokens_source: TokenSource::Chunks,
            content_chunks: 0,
            output_chars: 0,
        };
        if dispatch.admitted_us.is_none() || abort.is_cancelled() {
            rec.error = Some("run stopped before this request was sent".into());
            rec.end_us = self.clock.now_us();
            return rec;
        }
        let mut state = Received::default();
        rec.sent_us = Some(self.clock.now_us());
        let result = tokio::select! {
            r = self.exchange(dispatch.id, body, &mut state) => r,
            _ = tokio::time::sleep(self.timeout) => Err(Failure::new(
                Outcome::Timeout,
                format!("no complete response within the {:.0} s request timeout", self.timeout.as_secs_f64()),
            )),
            _ = abort.cancelled() => Err(Failure::new(Outcome::Cancelled, "run stopped while this request was in flight")),
        };
        rec.end_us = self.clock.now_us();
        state.into_record(&mut rec, result);
        rec
    }

    /// Sends the request and reads the whole response into `state`.
    async fn exchange(&self, id: u64, body: Bytes, st: &mut Received) -> Result<(), Failure> {
        let mut resp = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(REQUEST_ID_HEADER, id)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::new(classify(&e, false), error_chain(&e)))?;
        st.headers_us = Some(self.clock.now_us());
        let status = resp.status();
        st.status = Some(status.as_u16());
        if !status.is_success() {
            let text = read_prefix(&mut resp, 2048).await;
            let detail = match parse_body(text.as_bytes()) {
                Err(BodyError::Error(msg)) => msg,
                _ => truncate(text.trim(), 300),
            };
            return Err(Failure::new(
                Outcome::HttpStatus,
                format!("HTTP {}: {detail}", status.as_u16()),
            ));
        }
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if self.stream && is_sse {
            self.read_stream(&mut resp, st).await
        } else {
            // Asked for no stream, or the server ignored `stream: true`: one body.
            st.streamed = false;
            let body = resp
                .bytes()
                .await
                .map_err(|e| Failure::new(Outcome::StreamBroken, error_chain(&e)))?;
            let now = self.clock.now_us();
            match parse_body(&body) {
                Ok(info) => {
                    st.content(now, info.content_chars);
                    st.usage = info.usage;
                    st.finished = true;
                    Ok(())
                }
                Err(BodyError::Error(msg)) => Err(Failure::new(Outcome::InvalidResponse, msg)),
                Err(BodyError::Invalid(msg)) => Err(Failure::new(Outcome::InvalidResponse, msg)),
            }
        }
    }

    async fn read_stream(
        &self,
        resp: &mut reqwest::Response,
        st: &mut Received,
    ) -> Result<(), Failure> {
        let mut parser = SseParser::new();
        let mut failure = None;
        loop {
            let chunk = resp
                .chunk()
                .await
                .map_err(|e| Failure::new(Outcome::StreamBroken, error_chain(&e)))?;
            let now = self.clock.now_us();
            let mut on_event = |ev: sse::SseEvent<'_>| {
                if failure.is_some() || st.done {
                    return;
                }
                match parse_stream_data(ev.data) {
                    StreamItem::Done => st.done = true,
                    StreamItem::Chunk(info) => {
                        if info.content_chars > 0 {
                            st.content(now, info.content_chars);
                        }
                        st.finished |= info.finished;
                        if info.usage.is_some() {
                            st.usage = info.usage;
                        }
                    }
                    StreamItem::Error(msg) => {
                        failure = Some(Failure::new(
                            Outcome::InvalidResponse,
                            format!("error in stream: {msg}"),
                        ))
                    }
                    StreamItem::Invalid(msg) => {
                        failure = Some(Failure::new(Outcome::InvalidResponse, msg))
                    }
                }
            };
            match chunk {
                Some(bytes) => parser.feed(&bytes, &mut on_event),
                None => {
                    parser.finish(&mut on_event);
                    break;
                }
            }
            if failure.is_some() || st.done {
                break;
            }
        }
        if let Some(f) = failure {
            return Err(f);
        }
        if !st.done && !st.finished {
            return Err(Failure::new(
                Outcome::StreamBroken,
                "stream ended without [DONE] or a finish_reason",
            ));
        }
        Ok(())
    }
}

/// What arrived for one request, filled in as it arrives.
#[derive(Debug)]
struct Received {
    status: Option<u16>,
    headers_us: Option<u64>,
    first_token_us: Option<u64>,
    last_token_us: Option<u64>,
    offsets: Vec<u64>,
    chunks: u64,
    chars: u64,
    usage: Option<Usage>,
    streamed: bool,
    done: bool,
    finished: bool,
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
        }
    }
}

impl Received {
    fn content(&mut self, now: u64, chars: u64) {
        let first = *self.first_token_us.get_or_insert(now);
        self.offsets.push(now - first);
        self.last_token_us = Some(now);
        self.chunks += 1;
        self.chars += chars;
    }

    fn into_record(self, rec: &mut RequestRecord, result: Result<(), Failure>) {
        match result {
            Ok(()) => rec.outcome = Outcome::Ok,
            Err(f) => {
                rec.outcome = f.outcome;
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
struct Failure {
    outcome: Outcome,
    message: String,
}

impl Failure {
    fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            message: message.into(),
        }
    }
}

fn classify(e: &reqwest::Error, body_started: bool) -> Outcome {
    if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_body() || e.is_decode() || body_started {
        Outcome::StreamBroken
    } else {
        Outcome::Connection
    }
}

/// An error and its causes on one line ("a: b: c"), without repeating itself.
fn error_chain(e: &dyn std::error::Error) -> String {
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

/// Up to `limit` bytes of a body, as text (for error messages).
async fn read_prefix(resp: &mut reqwest::Response, limit: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(b)) => buf.extend_from_slice(&b),
            _ => break,
        }
    }
    buf.truncate(limit);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Prompt;

    fn spec(endpoint: Endpoint, stream: bool) -> RequestSpec {
        RequestSpec {
            endpoint,
            max_tokens: Some(32),
            stream,
            prompt: Prompt::Text("hi".into()),
            system: None,
            body: Default::default(),
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
        }
    }

    fn text(t: &str) -> Content {
        Content::Text(t.into())
    }

    #[test]
    fn system_messages_extra_fields_and_chat_turns() {
        let mut s = spec(Endpoint::Chat, false);
        s.system = Some("be brief".into());
        s.body.insert("temperature".into(), json!(0.5));
        s.body.insert("ignore_eos".into(), json!(true));
        let turns = Content::Messages(vec![
            crate::plan::Message {
                role: "user".into(),
                content: "a".into(),
            },
            crate::plan::Message {
                role: "assistant".into(),
                content: "b".into(),
            },
        ]);
        let b: Value = serde_json::from_slice(&build_body(&s, "m", &turns).unwrap()).unwrap();
        assert_eq!(
            b,
            json!({"model":"m","messages":[{"role":"system","content":"be brief"},
                   {"role":"user","content":"a"},{"role":"assistant","content":"b"}],
                   "max_tokens":32,"stream":false,"temperature":0.5,"ignore_eos":true})
        );
        let err = build_body(&spec(Endpoint::Completions, true), "m", &turns).unwrap_err();
        assert!(err.contains("chat"), "{err}");
    }

    #[test]
    fn chat_body_asks_for_usage_when_streaming() {
        let b: Value = serde_json::from_slice(
            &build_body(&spec(Endpoint::Chat, true), "m", &text("hello")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            b,
            json!({"model":"m","messages":[{"role":"user","content":"hello"}],
                   "max_tokens":32,"stream":true,"stream_options":{"include_usage":true}})
        );
    }

    #[test]
    fn completions_body_without_stream() {
        let b: Value = serde_json::from_slice(
            &build_body(&spec(Endpoint::Completions, false), "m", &text("x")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            b,
            json!({"model":"m","prompt":"x","max_tokens":32,"stream":false})
        );
    }

    #[test]
    fn a_bad_base_url_is_a_clear_error() {
        let t = Target {
            name: "t".into(),
            base_url: "ftp://x".into(),
            api_key: None,
        };
        let err = Client::new(&t, &spec(Endpoint::Chat, true), 1, Clock::start())
            .err()
            .unwrap();
        assert!(err.to_string().contains("ftp://x"), "{err}");
    }
}
