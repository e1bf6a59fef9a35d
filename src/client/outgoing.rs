//! What one request sends: its JSON body (the endpoint's prompt fields, `max_tokens`,
//! streaming, the spec's body fields, then the request shape's), the shape's own headers
//! (checked as HTTP headers here, like the spec's), and what its record keeps of the shape
//! (`max_tokens` sent, `label`). A shape's header values may be secrets: the client adds them
//! to that request's redactor.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::plan::{Content, Endpoint, RequestShape, RequestSpec};

/// One request, ready to send.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub body: Bytes,
    /// Headers of this request alone, sent after the client's own.
    pub headers: HeaderMap,
    /// `max_tokens` as sent (`None`: not sent).
    pub max_tokens: Option<u32>,
    pub label: Option<String>,
}

impl From<Bytes> for Outgoing {
    /// A body alone: no headers of its own, nothing recorded of a shape.
    fn from(body: Bytes) -> Self {
        Self {
            body,
            ..Self::default()
        }
    }
}

impl Outgoing {
    /// Marks this request as turn `turn` of session `session` (the session and turn headers;
    /// their values are not secrets).
    pub fn with_session_turn(mut self, session: u64, turn: u32) -> Self {
        for (name, value) in [
            (super::SESSION_HEADER, session.to_string()),
            (super::TURN_HEADER, turn.to_string()),
        ] {
            let value = HeaderValue::from_str(&value).expect("digits are a header value");
            self.headers.insert(HeaderName::from_static(name), value);
        }
        self
    }

    /// The values of this request's own headers (each may be a secret).
    pub fn header_values(&self) -> impl Iterator<Item = &str> {
        self.headers.values().filter_map(|v| v.to_str().ok())
    }
}

/// Builds the JSON body for one request with the spec's content fields and nothing of a shape.
pub fn build_body(spec: &RequestSpec, model: &str, prompt: &Content) -> Result<Bytes, String> {
    body(
        spec,
        model,
        prompt,
        spec.max_tokens,
        &serde_json::Map::new(),
    )
}

/// Builds request `index` of the run from its shape: the shape's `max_tokens` over the spec's,
/// its body fields over the spec's, its headers checked.
pub fn build_request(
    spec: &RequestSpec,
    model: &str,
    shape: &RequestShape,
    index: u64,
) -> Result<Outgoing, String> {
    let max_tokens = shape.max_tokens.or(spec.max_tokens);
    let mut headers = HeaderMap::new();
    for (name, value) in &shape.headers {
        let (n, v) = header(name, value).ok_or_else(|| {
            format!("request {index}: header {name:?} is not a valid HTTP header name or value; fix the headers the prompt function returns")
        })?;
        headers.insert(n, v);
    }
    Ok(Outgoing {
        body: body(spec, model, &shape.content, max_tokens, &shape.body)?,
        headers,
        max_tokens,
        label: shape.label.clone(),
    })
}

/// A header as HTTP wants it, its value marked sensitive; `None` when either part is invalid.
pub(super) fn header(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    let n = HeaderName::from_bytes(name.as_bytes()).ok()?;
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some((n, v))
}

fn body(
    spec: &RequestSpec,
    model: &str,
    prompt: &Content,
    max_tokens: Option<u32>,
    over: &serde_json::Map<String, Value>,
) -> Result<Bytes, String> {
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
    if let Some(n) = max_tokens {
        obj.insert("max_tokens".into(), Value::from(n));
    }
    obj.insert("stream".into(), Value::Bool(spec.stream));
    if spec.stream {
        obj.insert("stream_options".into(), json!({"include_usage": true}));
    }
    for (k, v) in spec.body.iter().chain(over) {
        obj.insert(k.clone(), v.clone());
    }
    Ok(Bytes::from(
        serde_json::to_vec(&body).expect("JSON values serialize"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Prompt;

    fn spec() -> RequestSpec {
        let mut body = serde_json::Map::new();
        body.insert("temperature".into(), json!(0.5));
        body.insert("top_p".into(), json!(0.9));
        RequestSpec {
            endpoint: Endpoint::Chat,
            max_tokens: Some(32),
            stream: false,
            prompt: Prompt::Text("hi".into()),
            system: None,
            body,
            headers: Vec::new(),
            timeout: std::time::Duration::from_secs(5),
            tokenizer: None,
        }
    }

    #[test]
    fn a_shape_overrides_max_tokens_and_body_fields_and_brings_headers() {
        let mut shape = RequestShape::from(Content::Text("q".into()));
        let plain = build_request(&spec(), "m", &shape, 0).unwrap();
        assert_eq!(
            plain.max_tokens,
            Some(32),
            "the spec's max_tokens is recorded"
        );
        assert!(plain.headers.is_empty() && plain.label.is_none());
        assert_eq!(
            plain.body,
            build_body(&spec(), "m", &shape.content).unwrap()
        );

        shape.max_tokens = Some(7);
        shape.body.insert("temperature".into(), json!(0.0));
        shape.headers.push(("x-tenant".into(), "secret-t".into()));
        shape.label = Some("short".into());
        let o = build_request(&spec(), "m", &shape, 0).unwrap();
        let b: Value = serde_json::from_slice(&o.body).unwrap();
        assert_eq!(
            b,
            json!({"model":"m","messages":[{"role":"user","content":"q"}],
                   "max_tokens":7,"stream":false,"temperature":0.0,"top_p":0.9})
        );
        assert_eq!((o.max_tokens, o.label.as_deref()), (Some(7), Some("short")));
        assert_eq!(o.header_values().collect::<Vec<_>>(), ["secret-t"]);
        assert!(o.headers["x-tenant"].is_sensitive());

        shape.headers = vec![("bad name".into(), "v".into())];
        let err = build_request(&spec(), "m", &shape, 4).unwrap_err();
        assert!(err.contains("request 4: header \"bad name\""), "{err}");
    }
}
