//! The OpenAI client: builds request bodies, sends them, reads the response (streamed or not),
//! stamps every event on the run clock, and turns the result into one `RequestRecord` with a
//! typed outcome. It never panics on what a server sends, and never puts the API key anywhere
//! but the Authorization header.

pub mod chunk;
pub mod response;
pub mod sse;

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::plan::{Endpoint, RequestSpec, Target};
use crate::record::{Outcome, RequestRecord};
use crate::schedule::Dispatch;
use chunk::{BodyError, parse_body, truncate};
use response::{Failure, Received};

/// Header carrying the run-wide request id, so server logs (and the mock) can be matched up.
pub const REQUEST_ID_HEADER: &str = "x-llmbench-request-id";

/// Builds the JSON body for one request.
pub fn build_body(spec: &RequestSpec, model: &str, prompt: &str) -> Bytes {
    let mut body = match spec.endpoint {
        Endpoint::Chat => json!({
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
        }),
        Endpoint::Completions => json!({ "model": model, "prompt": prompt }),
    };
    let obj = body.as_object_mut().expect("built as an object");
    if let Some(n) = spec.max_tokens {
        obj.insert("max_tokens".into(), Value::from(n));
    }
    obj.insert("stream".into(), Value::Bool(spec.stream));
    if spec.stream {
        obj.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Bytes::from(serde_json::to_vec(&body).expect("JSON values serialize"))
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
        let mut rec = RequestRecord::unsent(
            dispatch.id,
            phase.name.as_str(),
            dispatch.phase_index,
            phase.warmup,
            self.stream,
            dispatch.intended_us,
        );
        rec.dispatched_us = dispatch.dispatched_us;
        rec.admitted_us = dispatch.admitted_us;
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
        let mut resp = loop {
            let sent = self
                .http
                .post(self.url.clone())
                .headers(self.headers.clone())
                .header(REQUEST_ID_HEADER, id)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(resp) => break resp,
                // The server closed a kept-alive connection just as the request went out, before
                // answering anything: the request was not processed, so it goes again on a new
                // connection (recorded; the latency keeps the lost time).
                Err(e) if st.reconnects < MAX_RECONNECTS && closed_before_response(&e) => {
                    st.reconnects += 1;
                }
                Err(e) => return Err(Failure::new(classify(&e, false), error_chain(&e))),
            }
        };
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
            loop {
                let read = resp
                    .chunk()
                    .await
                    .map_err(|e| Failure::new(Outcome::StreamBroken, error_chain(&e)))?;
                let now = self.clock.now_us();
                match read {
                    Some(bytes) => st.feed_stream(&bytes, now),
                    None => return st.finish_stream(now),
                }
                if st.complete() {
                    return st.finish_stream(now);
                }
            }
        } else {
            // Asked for no stream, or the server ignored `stream: true`: one body.
            let body = resp
                .bytes()
                .await
                .map_err(|e| Failure::new(Outcome::StreamBroken, error_chain(&e)))?;
            st.whole_body(&body, self.clock.now_us())
        }
    }
}

/// How often a request is resent after its connection was closed before any response.
const MAX_RECONNECTS: u32 = 2;

/// The connection closed before any response byte arrived (hyper's "incomplete message"): what
/// a server does when it drops an idle keep-alive connection as a request is written to it.
fn closed_before_response(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message();
        }
        source = s.source();
    }
    false
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
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn chat_body_asks_for_usage_when_streaming() {
        let b: Value =
            serde_json::from_slice(&build_body(&spec(Endpoint::Chat, true), "m", "hello")).unwrap();
        assert_eq!(
            b,
            json!({"model":"m","messages":[{"role":"user","content":"hello"}],
                   "max_tokens":32,"stream":true,"stream_options":{"include_usage":true}})
        );
    }

    #[test]
    fn completions_body_without_stream() {
        let b: Value =
            serde_json::from_slice(&build_body(&spec(Endpoint::Completions, false), "m", "x"))
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
