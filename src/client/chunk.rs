//! What one OpenAI response object (a stream chunk or a whole non-streaming body) says, for
//! timing purposes: how much generated content it carries, whether it finishes the choice, the
//! usage it reports, or the error it carries. Pure; borrows from the input where it can.

use std::borrow::Cow;

use serde::Deserialize;

use crate::record::ServerTimings;

/// Token usage as the server reports it. A count that no request can have (negative, not a
/// whole number, or over [`MAX_USAGE_TOKENS`]) makes the whole object invalid, so a server's
/// nonsense never reaches the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default, deserialize_with = "token_count")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "token_count")]
    pub completion_tokens: Option<u64>,
    /// `prompt_tokens_details`: what the server says of the prompt (its prefix cache's hits).
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// `usage.prompt_tokens_details` (vLLM, SGLang and OpenAI send it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens the server took from its prefix cache.
    #[serde(default, deserialize_with = "token_count")]
    pub cached_tokens: Option<u64>,
}

impl Usage {
    /// Prompt tokens served from the server's prefix cache, when it said.
    pub fn cached_tokens(&self) -> Option<u64> {
        self.prompt_tokens_details.and_then(|d| d.cached_tokens)
    }
}

/// The most tokens one request can plausibly count on either side (100 million: ten times the
/// largest context windows). Not a bound from the bytes received: hidden reasoning tokens
/// count toward `completion_tokens` without being sent.
pub const MAX_USAGE_TOKENS: u64 = 100_000_000;

fn token_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Number>::deserialize(d)?;
    match v {
        None => Ok(None),
        Some(n) => match n.as_u64() {
            Some(t) if t <= MAX_USAGE_TOKENS => Ok(Some(t)),
            _ => Err(serde::de::Error::custom(format!(
                "usage reports {n} tokens; a token count is a whole number from 0 to {MAX_USAGE_TOKENS}, so the server's usage is wrong"
            ))),
        },
    }
}

/// The parts of a chunk that matter for timing.
#[derive(Debug, Default, PartialEq)]
pub struct ChunkInfo {
    /// Characters of generated content: answer text, reasoning text or tool-call arguments.
    /// A chunk with none (role-only, empty content, usage-only) is not a token for TTFT.
    pub content_chars: u64,
    /// Characters of answer content (text or tool calls), not reasoning: for time to first answer.
    pub answer_chars: u64,
    /// A choice finished (a `finish_reason` was set).
    pub finished: bool,
    pub usage: Option<Usage>,
    /// Timings the server reports about itself (llama.cpp's `timings`).
    pub timings: Option<ServerTimings>,
}

/// A parsed stream event.
#[derive(Debug, PartialEq)]
pub enum StreamItem {
    /// `[DONE]`: the stream is complete.
    Done,
    Chunk(ChunkInfo),
    /// An `{"error": ...}` object: the server failed mid-stream.
    Error(String),
    /// Not JSON, or not shaped like an OpenAI chunk.
    Invalid(String),
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    choices: Option<Choices>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    timings: Option<ServerTimings>,
}

/// One choice of a chunk or body (also read by `answer`).
#[derive(Deserialize)]
pub(super) struct Choice<'a> {
    /// Chat streaming.
    #[serde(default, borrow)]
    pub(super) delta: Option<Message<'a>>,
    /// Chat, non-streaming.
    #[serde(default, borrow)]
    pub(super) message: Option<Message<'a>>,
    /// Completions (both modes).
    #[serde(default, borrow)]
    pub(super) text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(super) struct Message<'a> {
    #[serde(default, borrow)]
    pub(super) content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<serde_json::Value>,
}

/// What a `choices` list adds up to, summed while it is read: no list is built, so a stream
/// chunk costs no allocation here.
#[derive(Default)]
struct Choices {
    answer_chars: u64,
    content_chars: u64,
    finished: bool,
}

impl Choices {
    fn add(&mut self, choice: &Choice<'_>) {
        let message = choice.delta.as_ref().or(choice.message.as_ref());
        let answer = message.map_or(0, Message::answer_chars) + chars(&choice.text);
        self.answer_chars += answer;
        self.content_chars += answer + message.map_or(0, Message::reasoning_chars);
        self.finished |= choice.finish_reason.is_some();
    }
}

impl<'de> Deserialize<'de> for Choices {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Sum;
        impl<'de> serde::de::Visitor<'de> for Sum {
            type Value = Choices;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of choices")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Choices, A::Error> {
                let mut sum = Choices::default();
                while let Some(choice) = seq.next_element::<Choice<'de>>()? {
                    sum.add(&choice);
                }
                Ok(sum)
            }
        }
        d.deserialize_seq(Sum)
    }
}

fn chars(s: &Option<Cow<'_, str>>) -> u64 {
    s.as_deref().map_or(0, |s| s.chars().count() as u64)
}

impl Message<'_> {
    fn reasoning_chars(&self) -> u64 {
        chars(&self.reasoning_content) + chars(&self.reasoning)
    }

    fn answer_chars(&self) -> u64 {
        let tools = match &self.tool_calls {
            Some(serde_json::Value::Array(calls)) if !calls.is_empty() => {
                // Tool-call deltas carry their generated text in function.arguments (or a name).
                calls
                    .iter()
                    .map(|c| {
                        let f = &c["function"];
                        let n = f["arguments"].as_str().map_or(0, str::len)
                            + f["name"].as_str().map_or(0, str::len);
                        n.max(1) as u64
                    })
                    .sum()
            }
            _ => 0,
        };
        chars(&self.content) + tools
    }
}

/// The generated text of one chunk or whole body (answer, reasoning, completion text and
/// tool-call arguments), appended to `out`: what a tokenizer counts. Read only when the request
/// counts its own tokens, after the chunk was parsed for timing; unreadable JSON adds nothing.
pub fn append_text(json: &[u8], out: &mut String) {
    #[derive(Deserialize)]
    struct Texts<'a> {
        #[serde(default, borrow)]
        choices: Vec<Choice<'a>>,
    }
    let Ok(body) = serde_json::from_slice::<Texts>(json.trim_ascii()) else {
        return;
    };
    for c in &body.choices {
        if let Some(m) = c.delta.as_ref().or(c.message.as_ref()) {
            for part in [&m.reasoning_content, &m.reasoning, &m.content] {
                out.push_str(part.as_deref().unwrap_or(""));
            }
            if let Some(serde_json::Value::Array(calls)) = &m.tool_calls {
                for call in calls {
                    out.push_str(call["function"]["name"].as_str().unwrap_or(""));
                    out.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
                }
            }
        }
        out.push_str(c.text.as_deref().unwrap_or(""));
    }
}

/// Interprets one SSE `data` payload.
pub fn parse_stream_data(data: &[u8]) -> StreamItem {
    let trimmed = data.trim_ascii();
    if trimmed == b"[DONE]" {
        return StreamItem::Done;
    }
    match parse_body(trimmed) {
        Ok(info) => StreamItem::Chunk(info),
        Err(BodyError::Error(msg)) => StreamItem::Error(msg),
        Err(BodyError::Invalid(msg)) => StreamItem::Invalid(msg),
    }
}

/// Why a body could not be read as a successful response.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The server sent an error object.
    Error(String),
    Invalid(String),
}

/// Interprets a whole JSON object: a stream chunk or a non-streaming response.
pub fn parse_body(json: &[u8]) -> Result<ChunkInfo, BodyError> {
    let body: Body = serde_json::from_slice(json)
        .map_err(|e| BodyError::Invalid(format!("not an OpenAI response object: {e}")))?;
    if let Some(err) = body.error.filter(|e| !e.is_null()) {
        let msg = err
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_owned)
            .or_else(|| err.as_str().map(str::to_owned))
            .unwrap_or_else(|| err.to_string());
        return Err(BodyError::Error(msg));
    }
    let Some(choices) = body.choices else {
        if body.usage.is_some() || body.timings.is_some() {
            return Ok(ChunkInfo {
                usage: body.usage,
                timings: body.timings,
                ..ChunkInfo::default()
            });
        }
        return Err(BodyError::Invalid(
            "response object has neither choices nor usage".into(),
        ));
    };
    Ok(ChunkInfo {
        content_chars: choices.content_chars,
        answer_chars: choices.answer_chars,
        finished: choices.finished,
        usage: body.usage,
        timings: body.timings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(json: &str) -> ChunkInfo {
        match parse_stream_data(json.as_bytes()) {
            StreamItem::Chunk(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn role_only_and_empty_chunks_carry_no_content() {
        let role = chunk(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        );
        assert_eq!(role.content_chars, 0);
        let empty = chunk(r#"{"choices":[{"delta":{}}]}"#);
        assert_eq!(empty.content_chars, 0);
    }

    #[test]
    fn content_reasoning_text_and_tool_calls_count() {
        assert_eq!(
            chunk(r#"{"choices":[{"delta":{"content":"héllo"}}]}"#).content_chars,
            5
        );
        assert_eq!(
            chunk(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#).content_chars,
            3
        );
        assert_eq!(
            chunk(r#"{"choices":[{"delta":{"reasoning":"ok"}}]}"#).content_chars,
            2
        );
        assert_eq!(
            chunk(r#"{"choices":[{"text":" a","finish_reason":null}]}"#).content_chars,
            2
        );
        let tool = chunk(
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x"}}]}}]}"#,
        );
        assert_eq!(tool.content_chars, 3);
    }

    #[test]
    fn usage_chunk_and_finish_reason() {
        let u = chunk(
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":50,"total_tokens":57}}"#,
        );
        assert_eq!(u.content_chars, 0);
        assert_eq!(
            u.usage,
            Some(Usage {
                prompt_tokens: Some(7),
                completion_tokens: Some(50),
                prompt_tokens_details: None,
            })
        );
        let f = chunk(r#"{"choices":[{"delta":{},"finish_reason":"length"}],"usage":null}"#);
        assert!(f.finished);
        assert_eq!(f.usage, None);
    }

    #[test]
    fn impossible_usage_is_invalid() {
        for bad in ["18446744073709551615", "-1", "1.5", "100000001", "\"12\""] {
            let json = format!(
                r#"{{"choices":[],"usage":{{"prompt_tokens":1,"completion_tokens":{bad}}}}}"#
            );
            match parse_stream_data(json.as_bytes()) {
                StreamItem::Invalid(msg) => {
                    assert!(
                        msg.contains("usage") || bad.starts_with('"'),
                        "{bad}: {msg}"
                    )
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let ok =
            chunk(r#"{"choices":[],"usage":{"prompt_tokens":null,"completion_tokens":100000000}}"#);
        assert_eq!(ok.usage.unwrap().completion_tokens, Some(MAX_USAGE_TOKENS));
        assert_eq!(ok.usage.unwrap().prompt_tokens, None);
    }

    #[test]
    fn done_errors_and_garbage() {
        assert_eq!(parse_stream_data(b"[DONE]"), StreamItem::Done);
        assert_eq!(parse_stream_data(b" [DONE] "), StreamItem::Done);
        assert_eq!(
            parse_stream_data(br#"{"error":{"message":"out of memory","code":500}}"#),
            StreamItem::Error("out of memory".into())
        );
        assert!(matches!(
            parse_stream_data(b"{oops"),
            StreamItem::Invalid(_)
        ));
        assert!(matches!(parse_stream_data(b"{}"), StreamItem::Invalid(_)));
        assert!(matches!(
            parse_stream_data(br#"{"choices":{"delta":{"content":"a"}}}"#),
            StreamItem::Invalid(_)
        ));
    }

    #[test]
    fn every_choice_adds_up() {
        let c = chunk(
            r#"{"choices":[{"index":0,"delta":{"content":"ab"}},{"index":1,"delta":{"reasoning_content":"xyz"},"finish_reason":"stop"},{"index":2,"text":"q"}]}"#,
        );
        assert_eq!((c.content_chars, c.answer_chars, c.finished), (6, 3, true));
        let none = chunk(r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#);
        assert_eq!((none.content_chars, none.finished), (0, false));
        assert_eq!(none.usage.unwrap().completion_tokens, Some(4));
    }

    #[test]
    fn non_streaming_bodies() {
        let chat = parse_body(br#"{"choices":[{"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#).unwrap();
        assert_eq!(chat.content_chars, 8);
        assert!(chat.finished);
        let comp = parse_body(br#"{"choices":[{"text":"abc","finish_reason":"length"}]}"#).unwrap();
        assert_eq!(comp.content_chars, 3);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_an_item_never_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_stream_data(&bytes);
            let _ = parse_body(&bytes);
        }

        #[test]
        fn any_json_shape_is_an_item_never_a_panic(
            content in proptest::option::of(".{0,16}"),
            finish in proptest::option::of("[a-z]{0,8}"),
            tools in 0usize..3,
            usage in proptest::option::of((0u64..1000, 0u64..1000)),
            error in proptest::bool::ANY,
        ) {
            let calls: Vec<serde_json::Value> = (0..tools)
                .map(|i| serde_json::json!({"index": i, "function": {"arguments": "{}"}}))
                .collect();
            let mut v = serde_json::json!({
                "choices": [{"delta": {"content": content, "tool_calls": calls}, "finish_reason": finish}],
            });
            if let Some((p, c)) = usage {
                v["usage"] = serde_json::json!({"prompt_tokens": p, "completion_tokens": c});
            }
            if error {
                v["error"] = serde_json::json!({"message": "boom"});
            }
            let item = parse_stream_data(v.to_string().as_bytes());
            if error {
                proptest::prop_assert_eq!(item, StreamItem::Error("boom".into()));
            } else {
                proptest::prop_assert!(matches!(item, StreamItem::Chunk(_)));
            }
        }
    }
}
