//! What the client reads of a response once its headers are in: a success body as an SSE
//! stream or as one JSON body (by what was asked and the Content-Type, sniffing the start when
//! there is none), read under the first-token deadline and `MAX_BODY_BYTES`; an error status's
//! message and `Retry-After`.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};

use super::chunk::{BodyError, parse_body};
use super::response::{Failure, Received, error_chain};
use super::{Client, MAX_BODY_BYTES, MAX_RETRY_WAIT};
use crate::record::Outcome;

impl Client {
    /// Reads a success response's body into `st`: as a stream or as one body.
    pub(super) async fn read_body(
        &self,
        resp: &mut reqwest::Response,
        st: &mut Received,
        first_token_deadline: Option<tokio::time::Instant>,
    ) -> Result<(), Failure> {
        match (self.stream, media_type(resp.headers()).as_deref()) {
            (true, Some(SSE)) => self.read_stream(resp, st, first_token_deadline).await,
            (true, None) => {
                // No Content-Type: read it as SSE when it starts like SSE, as openai-python
                // does with any streamed response; otherwise as one body.
                let mut start = Vec::new();
                while start.len() < SNIFF_BYTES
                    && start.iter().all(u8::is_ascii_whitespace)
                    && let Some(bytes) = self
                        .before_first_token(first_token_deadline, resp.chunk())
                        .await?
                        .map_err(|e| {
                            Failure::new(Outcome::StreamBroken, error_chain(&e.without_url()))
                        })?
                {
                    start.extend_from_slice(&bytes);
                }
                if looks_like_sse(&start) {
                    st.feed_stream(&start, self.clock.now_us());
                    if st.complete() {
                        return st.finish_stream(self.clock.now_us());
                    }
                    self.read_stream(resp, st, first_token_deadline).await
                } else {
                    self.read_whole(resp, st, start, first_token_deadline).await
                }
            }
            // Asked for no stream, or the server ignored `stream: true`: one body.
            _ => {
                self.read_whole(resp, st, Vec::new(), first_token_deadline)
                    .await
            }
        }
    }

    /// Reads a whole (non-streamed) body after the `start` already read.
    async fn read_whole(
        &self,
        resp: &mut reqwest::Response,
        st: &mut Received,
        start: Vec<u8>,
        first_token_deadline: Option<tokio::time::Instant>,
    ) -> Result<(), Failure> {
        let mut body = start;
        let read_all = async {
            while let Some(bytes) = resp.chunk().await? {
                if body.len() + bytes.len() > MAX_BODY_BYTES {
                    return Ok(false);
                }
                body.extend_from_slice(&bytes);
            }
            Ok::<bool, reqwest::Error>(true)
        };
        let whole = self
            .before_first_token(first_token_deadline, read_all)
            .await?
            .map_err(|e| Failure::new(Outcome::StreamBroken, error_chain(&e.without_url())))?;
        if !whole {
            return Err(Failure::new(
                Outcome::InvalidResponse,
                format!(
                    "the response body is larger than {} MiB, the most llmbench reads of a body that is not streamed; it stopped reading there",
                    MAX_BODY_BYTES >> 20
                ),
            ));
        }
        st.whole_body(&body, self.clock.now_us())
    }

    /// Reads an SSE stream into `st` until its last event, or until the body ends.
    async fn read_stream(
        &self,
        resp: &mut reqwest::Response,
        st: &mut Received,
        first_token_deadline: Option<tokio::time::Instant>,
    ) -> Result<(), Failure> {
        loop {
            let deadline = first_token_deadline.filter(|_| !st.has_content());
            let read = self
                .before_first_token(deadline, resp.chunk())
                .await?
                .map_err(|e| Failure::new(Outcome::StreamBroken, error_chain(&e.without_url())))?;
            let now = self.clock.now_us();
            match read {
                Some(bytes) => st.feed_stream(&bytes, now),
                None => return st.finish_stream(now),
            }
            if st.complete() {
                return st.finish_stream(now);
            }
        }
    }
}

/// The failure of a response with an error status: its message (the server's error, or the
/// start of its body, uncut: the client redacts it and then cuts it) and `Retry-After` (kept in
/// `st`).
pub(super) async fn failed_status(
    resp: &mut reqwest::Response,
    st: &mut Received,
    status: StatusCode,
) -> Failure {
    st.retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_RETRY_WAIT.as_secs_f64())));
    st.read_as_one_body();
    let text = read_prefix(resp, 2048).await;
    let detail = match parse_body(text.as_bytes()) {
        Err(BodyError::Error(msg)) => msg,
        _ => text.trim().to_owned(),
    };
    Failure::new(
        Outcome::HttpStatus,
        format!("HTTP {}: {detail}", status.as_u16()),
    )
}

/// The media type of a server-sent event stream.
const SSE: &str = "text/event-stream";

/// How much of a response without Content-Type is read to tell SSE from JSON.
const SNIFF_BYTES: usize = 1024;

/// The response's media type, lowercased, without parameters (`Text/Event-Stream;
/// charset=utf-8` is `text/event-stream`); `None` without a Content-Type.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(v.as_bytes());
    let media = text.split(';').next().unwrap_or_default().trim();
    Some(media.to_ascii_lowercase())
}

/// The body starts like an SSE stream: its first line is a field (`data:`, `event:`, `id:`,
/// `retry:`) or a comment (`:`).
fn looks_like_sse(start: &[u8]) -> bool {
    let start = start.trim_ascii_start();
    [&b"data:"[..], b"event:", b"id:", b"retry:", b":"]
        .iter()
        .any(|p| start.starts_with(p))
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
    use reqwest::header::HeaderValue;

    #[test]
    fn media_types_are_case_insensitive_and_sse_is_recognised_by_its_start() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            media_type(&h)
        };
        assert_eq!(
            with("Text/Event-Stream; charset=utf-8").as_deref(),
            Some(SSE)
        );
        assert_eq!(with(" TEXT/EVENT-STREAM ").as_deref(), Some(SSE));
        assert_eq!(
            with("application/json").as_deref(),
            Some("application/json")
        );
        assert_eq!(media_type(&HeaderMap::new()), None);
        assert!(looks_like_sse(b"\n data: {}"));
        assert!(looks_like_sse(b": ping\n\n"));
        assert!(!looks_like_sse(b"{\"data:\": 1}"));
        assert!(!looks_like_sse(b""));
    }
}
