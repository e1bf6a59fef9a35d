//! Request bodies and URLs as the client builds them.

use super::*;
use crate::plan::{Content, Prompt};
use serde_json::{Value, json};

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
        tokenizer: None,
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
fn the_endpoint_goes_on_the_path_and_the_query_stays_a_query() {
    let url = |base: &str| endpoint_url(base, Endpoint::Chat).unwrap().to_string();
    assert_eq!(url("http://h:1/v1"), "http://h:1/v1/chat/completions");
    assert_eq!(url("http://h:1/v1/"), "http://h:1/v1/chat/completions");
    assert_eq!(url("http://h:1"), "http://h:1/chat/completions");
    assert_eq!(
        url("https://x.openai.azure.com/openai/deployments/d?api-version=2024-06-01#frag"),
        "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-06-01"
    );
    assert_eq!(
        endpoint_url("http://h/v1/?api_key=k", Endpoint::Completions)
            .unwrap()
            .as_str(),
        "http://h/v1/completions?api_key=k"
    );
}

#[test]
fn a_bad_url_error_shows_no_credential() {
    let t = Target {
        name: "t".into(),
        base_url: "ftp://bob:hunter2-pass@x/v1?api_key=sk-in-query-123".into(),
        api_key: None,
    };
    let err = Client::new(&t, &spec(Endpoint::Chat, true), 1, Clock::start())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("ftp://[redacted]@x/v1?api_key=[redacted]"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2") && !err.contains("sk-in-query"),
        "{err}"
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
