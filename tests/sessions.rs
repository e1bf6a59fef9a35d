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

async fn mock_log(
    server: &llmbench::mock::MockServer,
) -> HashMap<u64, llmbench::mock::LoggedTiming> {
    llmbench::client::install_tls_provider();
    let all: Vec<llmbench::mock::LoggedTiming> =
        reqwest::get(format!("http://{}/mock/timings", server.addr()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    all.into_iter().map(|t| (t.id, t)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_mock_prefix_cache_ttft_by_turn_follows_the_model_and_cached_tokens_match() {
    use llmbench::mock::{MockConfig, MockServer, PrefixCacheConfig};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (base, per_token) = (Duration::from_millis(60), Duration::from_micros(500));
    let server = MockServer::start(
        MockConfig {
            ttft: base,
            itl: Duration::from_millis(1),
            output_tokens: 8,
            prefix_cache: PrefixCacheConfig {
                blocks: 10_000,
                block_tokens: 4,
                per_token,
            },
            ..MockConfig::default()
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap();
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ max_tokens: 8, prompt: session(#{
               turns: 5, think_ms: 10,
               first_turn: |s, rng| `user ${s}: ` + words(rng, 40),
               next_turn: |s, k, rng| words(rng, 10),
           }) });
           phase("chat", #{ concurrency: 4, requests: 20 });"#,
    );
    common::target(&mut plan, &server);
    let (outcome, records) = common::run(plan, dir.path()).await;
    assert_eq!(records.len(), 20);
    let log = mock_log(&server).await;
    let mut by_turn: Vec<Vec<(f64, f64)>> = vec![Vec::new(); 5];
    for r in &records {
        assert_eq!(r.outcome, Outcome::Ok);
        let seen = &log[&r.id];
        assert_eq!(seen.session, r.session, "the mock saw the session header");
        assert_eq!(seen.turn, r.turn, "the mock saw the turn header");
        assert_eq!(
            r.cached_tokens,
            Some(seen.cached_tokens),
            "request {}",
            r.id
        );
        assert_eq!(r.input_tokens, Some(seen.prompt_tokens));
        let k = r.turn.unwrap() as usize;
        if k > 0 {
            assert!(seen.cached_tokens > 0, "turn {k} finds its history cached");
        } else {
            assert_eq!(
                seen.cached_tokens, 0,
                "a new session's opening is not cached"
            );
        }
        let model = base + per_token * (seen.prompt_tokens - seen.cached_tokens) as u32;
        by_turn[k].push((r.ttft_us().unwrap() as f64, model.as_micros() as f64));
    }
    let medians: Vec<(f64, f64)> = by_turn
        .into_iter()
        .map(|v| {
            let (m, f): (Vec<f64>, Vec<f64>) = v.into_iter().unzip();
            (common::median(m), common::median(f))
        })
        .collect();
    for (k, (measured, model)) in medians.iter().enumerate() {
        assert!(
            (measured - model).abs() <= 0.05 * model,
            "turn {k}: TTFT {measured} µs, the mock's formula {model} µs"
        );
    }
    assert!(
        medians[1].0 < medians[0].0,
        "a cached history makes turn 1 faster: {medians:?}"
    );
    // The run's own statistics: one row per turn, and the cache hit share.
    let turns = &outcome.summary.turns;
    assert_eq!(turns.len(), 5);
    let cached: u64 = records.iter().map(|r| r.cached_tokens.unwrap()).sum();
    let prompt: u64 = records.iter().map(|r| r.input_tokens.unwrap()).sum();
    let share = outcome.summary.all.cache_hit_share.unwrap();
    assert!((share - cached as f64 / prompt as f64).abs() < 1e-12);
    // The report shows TTFT by turn and the prefix cache's split.
    let md = std::fs::read_to_string(&outcome.files().unwrap().markdown).unwrap();
    assert!(
        md.contains("## TTFT by turn") && md.contains("## Prefix cache"),
        "{md}"
    );
    let html = std::fs::read_to_string(&outcome.files().unwrap().html).unwrap();
    assert!(html.contains("<h2>TTFT by turn</h2>"), "{html}");
}

/// At a per-user turn rate, each turn is due 1/rate after the one before it was due, on the
/// user's own clock (AIPerf's user-centric rate): exactly, against a server that answers well
/// within the interval; `think_ms` and `turn_rate` together are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_turn_rate_turns_are_due_every_interval_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(5, 1, 4);
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ max_tokens: 4, prompt: session(#{
               turns: 4, turn_rate: 10,
               first_turn: |s| `user ${s}`,
               next_turn: |s, k| `more ${k}`,
           }) });
           phase("chat", #{ concurrency: 2, requests: 8 });"#,
    );
    common::target(&mut plan, &server);
    let (_, records) = common::run(plan, dir.path()).await;
    assert_eq!(records.len(), 8);
    for s in 0..2 {
        let mut turns: Vec<_> = records.iter().filter(|r| r.session == Some(s)).collect();
        turns.sort_by_key(|r| r.turn);
        let first = turns[0].intended_us;
        for r in &turns {
            let k = u64::from(r.turn.unwrap());
            assert_eq!(r.intended_us - first, k * 100_000, "session {s} turn {k}");
            assert_eq!(r.outcome, Outcome::Ok);
        }
    }
    let both = common::try_plan(
        dir.path(),
        r#"request(#{ prompt: session(#{ turns: 2, think_ms: 5, turn_rate: 1,
               first_turn: |s| "a", next_turn: |s, k| "b" }) });
           phase("p", #{ requests: 2 });"#,
    )
    .unwrap_err();
    assert!(both.contains("not both"), "{both}");
}
