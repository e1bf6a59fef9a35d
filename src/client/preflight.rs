//! The preflight check: one small real request before the run, so a target that is unreachable,
//! refuses the key, or does not speak the OpenAI API gets one clear error instead of thousands
//! of identical failed records. It carries no request id, so it is never part of a run's records.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;

use super::chunk::{BodyError, StreamItem, parse_body, parse_stream_data};
use super::sse::SseParser;
use super::{Client, MAX_ERROR_CHARS, build_body, error_chain};
use crate::plan::{Endpoint, RequestSpec};
use crate::redact::{Redactor, public_url};

/// Why the target failed the preflight check (the run does not start).
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "preflight: cannot reach {url}: {reason}. Check --url (or the target's base_url) and that the server is running; --no-preflight skips this check"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "preflight: {url} refused the API key (HTTP {status}: {detail}). Check --api-key-env or the target's api_key"
    )]
    Unauthorized {
        url: String,
        status: u16,
        detail: String,
    },
    #[error(
        "preflight: {url} answered HTTP {status}: {detail}. {hint}Check the base URL (it usually ends in /v1) and --model; --no-preflight skips this check"
    )]
    Rejected {
        url: String,
        status: u16,
        detail: String,
        /// What the status suggests beyond the usual checks (empty, or a sentence and a space).
        hint: String,
    },
    #[error(
        "preflight: {url} does not speak the OpenAI API: {detail}. Check that the base URL points at an OpenAI-compatible server (it usually ends in /v1); --no-preflight skips this check"
    )]
    NotOpenAi { url: String, detail: String },
    #[error("preflight: no answer from {url} within {secs:.0} s; --no-preflight skips this check")]
    Timeout { url: String, secs: f64 },
}

/// What a passed preflight check learned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Passed {
    /// The server answered 429 or 5xx: it may be busy, so the run goes on with this warning.
    pub busy: Option<String>,
    /// The model the answer names (`models::answered_model`).
    pub answered_model: Option<String>,
}

/// The preflight request body: the run's request shape, a one-word prompt, one token.
pub fn body(spec: &RequestSpec, model: &str) -> Bytes {
    let spec = RequestSpec {
        max_tokens: Some(1),
        ..spec.clone()
    };
    build_body(&spec, model, &crate::plan::Content::Text("ping".into()))
        .expect("a text prompt builds for every endpoint")
}

/// Most bytes of the preflight response that are read.
const READ_LIMIT: usize = 64 * 1024;

impl Client {
    /// Sends one request and checks the answer looks like the OpenAI API (a 429 or 5xx passes
    /// with a warning: the server may be busy).
    pub async fn preflight(&self, body: Bytes) -> Result<Passed, PreflightError> {
        let limit = self.timeout.min(Duration::from_secs(60));
        let url = public_url(self.url.as_str());
        match tokio::time::timeout(limit, self.preflight_exchange(body, &url)).await {
            Ok(r) => r,
            Err(_) => Err(PreflightError::Timeout {
                url,
                secs: limit.as_secs_f64(),
            }),
        }
    }

    async fn preflight_exchange(&self, body: Bytes, url: &str) -> Result<Passed, PreflightError> {
        let url = url.to_owned();
        let mut resp = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| PreflightError::Unreachable {
                url: url.clone(),
                reason: self.clean(&error_chain(&e.without_url())),
            })?;
        let status = resp.status().as_u16();
        let sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut buf = Vec::new();
        while buf.len() < READ_LIMIT {
            match resp.chunk().await {
                Ok(Some(b)) => buf.extend_from_slice(&b),
                _ => break,
            }
        }
        buf.truncate(READ_LIMIT);
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&buf);
            let detail = match parse_body(text.trim().as_bytes()) {
                Err(BodyError::Error(msg)) => msg,
                _ => text.trim().to_owned(),
            };
            let detail = self.redactor.cut(&detail, 200);
            return match status {
                401 | 403 => Err(PreflightError::Unauthorized {
                    url,
                    status,
                    detail,
                }),
                429 | 500..=599 => Ok(Passed {
                    busy: Some(format!(
                        "preflight: {url} answered HTTP {status} ({detail}); going on, it may be busy"
                    )),
                    answered_model: None,
                }),
                _ => Err(PreflightError::Rejected {
                    url,
                    status,
                    detail,
                    hint: rejected_hint(status, self.endpoint),
                }),
            };
        }
        let r = &self.redactor;
        let verdict = if sse {
            first_stream_item(&buf, r)
        } else {
            match parse_body(&buf) {
                Ok(_) => Ok(()),
                Err(BodyError::Error(msg)) => Err(format!("an error object: {}", r.cut(&msg, 200))),
                Err(BodyError::Invalid(_)) => Err(format!(
                    "the body is not an OpenAI response: {:?}",
                    r.cut(String::from_utf8_lossy(&buf).trim(), 120)
                )),
            }
        };
        verdict
            .map(|()| Passed {
                busy: None,
                answered_model: super::models::answered_model(&buf, sse),
            })
            .map_err(|detail| PreflightError::NotOpenAi {
                url,
                detail: self.redactor.cut(&detail, MAX_ERROR_CHARS),
            })
    }
}

/// What a refusal's status suggests: a 404 may be a server without this endpoint (a chat-only
/// server has no `/completions`), so it names the other one.
fn rejected_hint(status: u16, endpoint: Endpoint) -> String {
    if status != 404 {
        return String::new();
    }
    let other = match endpoint {
        Endpoint::Chat => Endpoint::Completions,
        Endpoint::Completions => Endpoint::Chat,
    };
    format!(
        "The server may not serve this endpoint (a {other}-only server has no /{path}): try endpoint: \"{other}\" in the script's request(#{{...}}). ",
        other = other.name(),
        path = endpoint.path(),
    )
}

/// The first event of a stream must be an OpenAI chunk or `[DONE]`; what a message quotes of
/// the server is redacted by `r` before it is cut.
fn first_stream_item(bytes: &[u8], r: &Redactor) -> Result<(), String> {
    let mut parser = SseParser::new();
    let mut first = None;
    let mut take = |ev: super::sse::SseEvent<'_>| {
        if first.is_none() {
            first = Some(parse_stream_data(ev.data));
        }
    };
    if parser.feed(bytes, &mut take).is_ok() {
        parser.finish(&mut take);
    }
    match first {
        Some(StreamItem::Chunk(_)) | Some(StreamItem::Done) => Ok(()),
        Some(StreamItem::Error(msg)) => {
            Err(format!("an error in the stream: {}", r.cut(&msg, 200)))
        }
        Some(StreamItem::Invalid(msg)) => {
            Err(format!("its first stream event is {}", r.cut(&msg, 200)))
        }
        None => Err(format!(
            "the stream has no events: {:?}",
            r.cut(String::from_utf8_lossy(bytes).trim(), 120)
        )),
    }
}
