//! Hostile servers and hostile scripts: what llmbench does when a server closes connections
//! unanswered, reports impossible numbers, spells media types oddly, floods tiny chunks or
//! sends a huge body; and when a script tries to hold `llmbench check` for hours. Each server
//! here is a small raw-TCP server on 127.0.0.1 started by its test.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use llmbench::plan::{Prompt, RequestSpec};
use llmbench::record::{Outcome, RequestRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the test server does with one request: `conn` counts connections from 0, `nth`
/// requests on that connection from 0.
#[derive(Clone)]
enum Action {
    /// Write these bytes (a whole response).
    Reply(Vec<u8>),
    /// Close the connection without answering.
    Close,
    /// Write `head`, then `body` `times` times, then `tail`.
    Repeat {
        head: Vec<u8>,
        body: Vec<u8>,
        times: usize,
        tail: Vec<u8>,
    },
}

/// Reads one request (head and Content-Length body); false when the peer closed.
async fn read_request(sock: &mut TcpStream, pending: &mut Vec<u8>) -> bool {
    let mut buf = vec![0; 64 * 1024];
    loop {
        if let Some(head_end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..head_end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if pending.len() >= head_end + 4 + len {
                pending.drain(..head_end + 4 + len);
                return true;
            }
        }
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

/// Starts a server that answers by `plan(conn, nth)`; returns its base URL.
async fn serve(plan: impl Fn(usize, usize) -> Action + Send + Sync + 'static) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let plan = Arc::new(plan);
    let conns = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let conn = conns.fetch_add(1, Ordering::SeqCst);
            let plan = plan.clone();
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                let mut pending = Vec::new();
                for nth in 0.. {
                    if !read_request(&mut sock, &mut pending).await {
                        return;
                    }
                    let ok = match plan(conn, nth) {
                        Action::Reply(bytes) => sock.write_all(&bytes).await.is_ok(),
                        Action::Close => return,
                        Action::Repeat {
                            head,
                            body,
                            times,
                            tail,
                        } => {
                            let mut ok = sock.write_all(&head).await.is_ok();
                            // Batches of writes, so a flood is fast.
                            let batch: Vec<u8> = body.repeat((64 * 1024 / body.len()).max(1));
                            let per = batch.len() / body.len();
                            let mut left = times;
                            while ok && left > 0 {
                                let n = left.min(per);
                                ok = sock.write_all(&batch[..n * body.len()]).await.is_ok();
                                left -= n;
                            }
                            ok && sock.write_all(&tail).await.is_ok()
                        }
                    };
                    if !ok {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/v1")
}

fn spec(stream: bool) -> RequestSpec {
    common::chat_spec(stream, Duration::from_secs(20))
}

/// Sends `n` requests one after another through one client (pool of one connection).
async fn fetch_n(base_url: String, stream: bool, n: u64) -> Vec<RequestRecord> {
    common::send_in_turn(base_url, &spec(stream), n).await
}

async fn fetch(base_url: String, stream: bool) -> RequestRecord {
    fetch_n(base_url, stream, 1).await.remove(0)
}

fn json_response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const CHAT_BODY: &str = r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

// ---- C(1): the resend-once rule is for reused connections only ----

#[tokio::test]
async fn a_new_connection_closed_unanswered_is_a_connection_failure() {
    // Every connection reads its request and closes: nothing was ever answered.
    let url = serve(|_, _| Action::Close).await;
    let records = fetch_n(url, false, 3).await;
    for r in &records {
        assert_eq!(r.outcome, Outcome::Connection, "{:?}", r.error);
        assert_eq!(r.reconnects, 0, "a new connection is not resent");
        let e = r.error.as_deref().unwrap();
        assert!(
            e.contains("closed a new connection without answering"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn a_reused_connection_closed_unanswered_is_still_resent_once() {
    // The first connection answers once and closes under the next request; later ones answer.
    let url = serve(|conn, nth| {
        if conn == 0 && nth > 0 {
            Action::Close
        } else {
            Action::Reply(json_response(CHAT_BODY))
        }
    })
    .await;
    let records = fetch_n(url, false, 2).await;
    assert_eq!(records[0].outcome, Outcome::Ok);
    assert_eq!(records[1].outcome, Outcome::Ok, "{:?}", records[1].error);
    assert_eq!(records[1].reconnects, 1);
}

#[tokio::test]
async fn a_server_that_answers_once_per_connection_is_resent_on_a_new_one() {
    // Each connection answers its first request and closes under the second: a resend goes on a
    // new connection, which answers; no request is counted twice or lost.
    let url = serve(|_, nth| {
        if nth == 0 {
            Action::Reply(json_response(CHAT_BODY))
        } else {
            Action::Close
        }
    })
    .await;
    let records = fetch_n(url, false, 3).await;
    for r in &records {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    }
    assert_eq!(records[1].reconnects, 1);
}

// ---- C(3): media types ----

const SSE_BODY: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"he\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"llo\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

fn sse_response(content_type: Option<&str>) -> Vec<u8> {
    let ct = content_type.map_or(String::new(), |t| format!("Content-Type: {t}\r\n"));
    format!(
        "HTTP/1.1 200 OK\r\n{ct}Content-Length: {}\r\n\r\n{SSE_BODY}",
        SSE_BODY.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn media_types_are_case_insensitive() {
    for ct in [
        "Text/Event-Stream; charset=utf-8",
        "TEXT/EVENT-STREAM",
        "text/event-stream;charset=UTF-8",
    ] {
        let response = sse_response(Some(ct));
        let r = fetch(
            serve(move |_, _| Action::Reply(response.clone())).await,
            true,
        )
        .await;
        assert_eq!(r.outcome, Outcome::Ok, "{ct}: {:?}", r.error);
        assert!(r.streamed, "{ct}");
        assert_eq!(r.content_chunks, 2, "{ct}");
    }
}

#[tokio::test]
async fn a_stream_without_content_type_is_read_by_how_it_starts() {
    let response = sse_response(None);
    let r = fetch(
        serve(move |_, _| Action::Reply(response.clone())).await,
        true,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert!(r.streamed);
    assert_eq!(r.content_chunks, 2);

    // A JSON body without Content-Type, to a streamed request, is one body.
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{CHAT_BODY}",
        CHAT_BODY.len()
    )
    .into_bytes();
    let r = fetch(
        serve(move |_, _| Action::Reply(response.clone())).await,
        true,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert!(!r.streamed);
    assert_eq!(r.output_tokens, 2);
}

#[tokio::test]
async fn a_json_error_to_a_streamed_request_is_not_recorded_as_streamed() {
    const ERROR: &str =
        r#"{"error":{"message":"max_tokens is too large","type":"invalid_request_error"}}"#;
    let answer = |status: &str, content_type: &str, body: &str| -> &'static str {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .leak()
    };
    let in_stream = format!("data: {ERROR}\n\n");
    for (response, outcome, streamed) in [
        // A plain JSON error body, with an error status or with 200: one body, not a stream.
        (
            answer("400 Bad Request", "application/json", ERROR),
            Outcome::HttpStatus,
            false,
        ),
        (
            answer("200 OK", "application/json", ERROR),
            Outcome::InvalidResponse,
            false,
        ),
        // The same error as an event of a stream is a stream.
        (
            answer("200 OK", "text/event-stream", &in_stream),
            Outcome::InvalidResponse,
            true,
        ),
    ] {
        let (addr, _) = common::fixed_server(response);
        let r = fetch(format!("http://{addr}/v1"), true).await;
        assert_eq!(r.outcome, outcome, "{response}");
        assert!(
            r.error
                .as_deref()
                .unwrap()
                .contains("max_tokens is too large")
        );
        assert_eq!(r.streamed, streamed, "{response}");
    }
}

// ---- C(2): impossible server numbers ----

fn chat_with_usage(completion: &str) -> Vec<u8> {
    json_response(&CHAT_BODY.replace(
        r#""completion_tokens":2"#,
        &format!(r#""completion_tokens":{completion}"#),
    ))
}

#[tokio::test]
async fn impossible_usage_is_an_invalid_response_and_totals_stay_sane() {
    for bad in ["18446744073709551615", "-5", "2.5", "1e30"] {
        let response = chat_with_usage(bad);
        let r = fetch(
            serve(move |_, _| Action::Reply(response.clone())).await,
            false,
        )
        .await;
        assert_eq!(r.outcome, Outcome::InvalidResponse, "{bad}: {:?}", r.error);
        assert!(
            r.error.as_deref().unwrap().contains("usage"),
            "{bad}: {:?}",
            r.error
        );
    }
    // The same in a stream's usage chunk.
    let stream = format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"hi\"}},\"finish_reason\":\"stop\"}}]}}\n\ndata: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":1,\"completion_tokens\":{}}}}}\n\ndata: [DONE]\n\n",
        u64::MAX
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{stream}",
        stream.len()
    )
    .into_bytes();
    let ok = chat_with_usage("7");
    let url = serve(move |_, nth| {
        if nth == 0 {
            Action::Reply(response.clone())
        } else {
            Action::Reply(ok.clone())
        }
    })
    .await;
    let records = fetch_n(url, true, 2).await;
    assert_eq!(records[0].outcome, Outcome::InvalidResponse);
    assert_eq!(records[1].outcome, Outcome::Ok);
    let summary = llmbench::stats::summarize(&records);
    assert_eq!(summary.all.output_tokens, 7, "only the sane request counts");

    // Records already holding huge counts (an old JSONL file) saturate instead of wrapping.
    let mut huge = records[1].clone();
    huge.output_tokens = u64::MAX;
    huge.input_tokens = Some(u64::MAX);
    let summary = llmbench::stats::summarize([&huge, &huge, &records[1]]);
    assert_eq!(summary.all.output_tokens, u64::MAX);
    assert_eq!(summary.all.input_tokens, u64::MAX);
}

// ---- C(4): memory per request is bounded ----

#[tokio::test]
async fn a_flood_of_tiny_chunks_keeps_a_bounded_number_of_offsets() {
    const CHUNKS: usize = 150_000;
    let max = llmbench::client::response::MAX_CHUNK_OFFSETS;
    let url = serve(|_, _| Action::Repeat {
        head: b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            .to_vec(),
        body: b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n".to_vec(),
        times: CHUNKS,
        tail: b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
            .to_vec(),
    })
    .await;
    let r = fetch(url, true).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.content_chunks, CHUNKS as u64, "every chunk is counted");
    assert_eq!(r.chunk_offsets_us.len(), max, "offsets are capped");
    assert_eq!(r.chunk_offsets_dropped, (CHUNKS - max) as u64);
    // The new field round-trips, and a record written before it existed still parses.
    let line = serde_json::to_string(&r).unwrap();
    assert!(line.contains("\"chunk_offsets_dropped\":50000"));
    let back: RequestRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(back.chunk_offsets_dropped, 50_000);
    let mut old: serde_json::Value = serde_json::from_str(&line).unwrap();
    old.as_object_mut().unwrap().remove("chunk_offsets_dropped");
    let old: RequestRecord = serde_json::from_value(old).unwrap();
    assert_eq!(old.chunk_offsets_dropped, 0);
}

/// Peak resident memory of this process, in bytes (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::test]
async fn a_huge_body_is_cut_at_the_cap_with_bounded_memory() {
    const BODY: usize = 400 << 20;
    let url = serve(|_, _| Action::Repeat {
        head: format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {BODY}\r\n\r\n"
        )
        .into_bytes(),
        body: vec![b' '; 64 * 1024],
        times: BODY / (64 * 1024),
        tail: Vec::new(),
    })
    .await;
    let started = Instant::now();
    let r = fetch(url, false).await;
    assert_eq!(r.outcome, Outcome::InvalidResponse, "{:?}", r.error);
    let e = r.error.as_deref().unwrap();
    assert!(e.contains("larger than 16 MiB"), "{e}");
    assert!(r.headers_us.is_some() && r.end_us > 0, "still measured");
    assert!(started.elapsed() < Duration::from_secs(10));
    if let Some(peak) = peak_rss() {
        assert!(peak < 200 << 20, "peak RSS {} MiB", peak >> 20);
    }
}

// ---- A: a prompt function at run time ----

#[test]
fn a_hostile_prompt_function_stops_within_its_budget_on_the_producer_thread() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("w.rhai");
    std::fs::write(
        &path,
        "request(#{ prompt: |i| { if i > 0 { let a = []; a.pad(999000, 0); loop { a.push(1); a.pop(); } } `ok` } });\nphase(\"a\", #{ requests: 5 });",
    )
    .unwrap();
    let plan =
        llmbench::script::load(&path, &llmbench::config::Configs::new(d.path().join("c"))).unwrap();
    let Prompt::Generated(g) = plan.request.prompt.clone() else {
        panic!("a generated prompt")
    };
    // As the feed does: request 0, 1, ... on a thread of its own, stopping at the first error.
    let started = Instant::now();
    let producer =
        std::thread::spawn(move || (0..5u64).find_map(|i| g.generate(i).err().map(|e| (i, e))));
    let (stopped_at, failure) = producer.join().unwrap().expect("the generator fails");
    let took = started.elapsed();
    assert_eq!(stopped_at, 1);
    assert!(
        failure.contains("the prompt function for request 1 took more than 5 s (the budget)"),
        "{failure}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
}

// ---- A: `llmbench check` on scripts that would hold it for hours ----

#[test]
fn check_stops_a_script_that_stays_within_the_limits_for_hours() {
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("slow.rhai");
    std::fs::write(
        &script,
        "let a = []; a.pad(999000, 0); loop { a.push(1); a.pop(); }\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .current_dir(d.path())
        .arg("check")
        .arg(&script)
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("script evaluation took more than 10 s (the budget)"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(14), "{took:?}");
}

// ---- Secrets a server echoes back, at every offset around the cuts ----

const KEY: &str = "sk-hostile-planted-0123456789abcdefghijklmnop";
const PASSWORD: &str = "pw-hostile-planted-9876543210";
const QUERY_KEY: &str = "q-hostile-planted-1357924680";
const HEADER_VALUE: &str = "h-hostile-planted-2468013579";
const SECRETS: [&str; 4] = [KEY, PASSWORD, QUERY_KEY, HEADER_VALUE];

/// The first secret whose first 8 characters (or more) appear in `text`.
fn leaked(text: &str) -> Option<&'static str> {
    SECRETS.into_iter().find(|s| text.contains(&s[..8]))
}

fn http(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answer `i` of a server that echoes a secret after `i` characters of padding: as an OpenAI
/// error object (`kind` 0), a plain-text 500 (1), an error event in a stream (2), or a body
/// whose field holds the text where a list belongs (3).
fn echo(kind: usize, i: usize) -> Vec<u8> {
    let text = format!("{}{} is not valid", "x".repeat(i), SECRETS[i % 4]);
    let error = serde_json::json!({"error": {"message": text}}).to_string();
    match kind {
        0 => http("401 Unauthorized", "application/json", &error),
        1 => http("500 Internal Server Error", "text/plain", &text),
        2 => http("200 OK", "text/event-stream", &format!("data: {error}\n\n")),
        _ => {
            let body = serde_json::json!({ "choices": text }).to_string();
            http("200 OK", "application/json", &body)
        }
    }
}

#[tokio::test]
async fn no_echoed_secret_survives_in_a_record_whole_or_in_part() {
    const OFFSETS: usize = 470;
    for kind in 0..4 {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let base =
            serve(move |_, _| Action::Reply(echo(kind, c.fetch_add(1, Ordering::SeqCst)))).await;
        let target = llmbench::plan::Target {
            name: "t".into(),
            base_url: format!(
                "{}?api_key={QUERY_KEY}&api-version=2024-06-01",
                base.replace("http://", &format!("http://planted-user:{PASSWORD}@"))
            ),
            api_key: Some(llmbench::plan::ApiKey::new(KEY)),
        };
        let mut spec = spec(kind == 2);
        spec.headers = vec![("x-api-key".into(), HEADER_VALUE.into())];
        let records = common::send_in_turn_to(&target, &spec, OFFSETS as u64).await;
        assert_eq!(count.load(Ordering::SeqCst), OFFSETS, "one request each");
        for (i, r) in records.iter().enumerate() {
            assert_ne!(r.outcome, Outcome::Ok, "{kind} {i}");
            let line = serde_json::to_string(r).unwrap();
            assert_eq!(leaked(&line), None, "kind {kind}, offset {i}: {line}");
            let error = r.error.as_deref().unwrap_or_default();
            assert!(error.chars().count() <= 401, "{error}");
            if i < 250 {
                assert!(
                    error.contains("[redacted]"),
                    "kind {kind}, offset {i}: {error}"
                );
            }
        }
    }
}
