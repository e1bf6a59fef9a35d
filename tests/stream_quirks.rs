//! Streaming quirks of real servers, from fixture bytes (tests/fixtures/): each replayed through
//! the client's own response reader with read k arriving at (k + 1) ms, so the expected TTFT is
//! exact; and a few served over a real socket to the real client.

mod common;

use std::path::Path;
use std::time::Duration;

use llmbench::client::response::replay_stream;
use llmbench::client::{Client, PhaseLabel};
use llmbench::clock::Clock;
use llmbench::plan::{Content, Target};
use llmbench::record::{Outcome, RequestRecord, TokenSource};
use llmbench::schedule::Dispatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Splits an SSE body after each blank line: one network read per event (or comment block).
fn reads(body: &[u8]) -> Vec<&[u8]> {
    let sep: &[u8] = if body.windows(4).any(|w| w == b"\r\n\r\n") {
        b"\r\n\r\n"
    } else {
        b"\n\n"
    };
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + sep.len() <= body.len() {
        if &body[i..i + sep.len()] == sep {
            out.push(&body[start..i + sep.len()]);
            start = i + sep.len();
            i = start;
        } else {
            i += 1;
        }
    }
    if start < body.len() {
        out.push(&body[start..]);
    }
    out
}

fn replay(name: &str) -> RequestRecord {
    let body = fixture(name);
    let parts = reads(&body);
    let rec = replay_stream(
        parts
            .iter()
            .enumerate()
            .map(|(k, b)| (*b, (k as u64 + 1) * 1000)),
    );
    // The same bytes one at a time give the same outcome and counts.
    let bytewise = replay_stream(body.chunks(1).map(|b| (b, 1)));
    assert_eq!(
        (rec.outcome, rec.output_tokens, rec.content_chunks),
        (
            bytewise.outcome,
            bytewise.output_tokens,
            bytewise.content_chunks
        ),
        "{name}: read boundaries must not matter"
    );
    rec
}

/// What a fixture must produce. Reads are 0-based; read k arrives at (k + 1) ms.
struct Expect {
    file: &'static str,
    outcome: Outcome,
    first_token_read: Option<u64>,
    first_answer_read: Option<u64>,
    last_token_read: Option<u64>,
    chunks: u64,
    tokens: u64,
    source: TokenSource,
    input_tokens: Option<u64>,
}

fn check(e: &Expect) -> RequestRecord {
    let r = replay(e.file);
    let at = |k: Option<u64>| k.map(|k| (k + 1) * 1000);
    assert_eq!(r.outcome, e.outcome, "{}: {:?}", e.file, r.error);
    assert_eq!(
        r.first_token_us,
        at(e.first_token_read),
        "{}: TTFT chunk",
        e.file
    );
    assert_eq!(
        r.first_answer_us,
        at(e.first_answer_read),
        "{}: first answer",
        e.file
    );
    assert_eq!(
        r.last_token_us,
        at(e.last_token_read),
        "{}: last chunk",
        e.file
    );
    assert_eq!(r.content_chunks, e.chunks, "{}: content chunks", e.file);
    assert_eq!(r.output_tokens, e.tokens, "{}: output tokens", e.file);
    assert_eq!(r.tokens_source, e.source, "{}: token source", e.file);
    assert_eq!(r.input_tokens, e.input_tokens, "{}: input tokens", e.file);
    r
}

use Outcome::{InvalidResponse, Ok as Done, StreamBroken};
use TokenSource::{Chunks, Usage};

#[test]
fn llama_cpp_streams_captured_from_the_real_server() {
    let r = check(&Expect {
        file: "llamacpp/chat_stream.sse",
        outcome: Done,
        first_token_read: Some(1), // read 0 is the role-only chunk
        first_answer_read: Some(1),
        last_token_read: Some(16),
        chunks: 16,
        tokens: 16,
        source: Usage,
        input_tokens: Some(35),
    });
    let t = r.server_timings.expect("llama.cpp reports timings");
    assert_eq!((t.prompt_n, t.predicted_n), (Some(35), Some(16)));
    assert_eq!(t.predicted_ms, Some(164.779));
    check(&Expect {
        file: "llamacpp/chat_stream_no_usage.sse",
        outcome: Done,
        first_token_read: Some(1),
        first_answer_read: Some(1),
        last_token_read: Some(16),
        chunks: 16,
        tokens: 16,
        source: Chunks, // no usage without stream_options: counted chunks
        input_tokens: None,
    });
    check(&Expect {
        file: "llamacpp/completions_stream.sse",
        outcome: Done,
        first_token_read: Some(0), // completions have no role chunk
        first_answer_read: Some(0),
        last_token_read: Some(15),
        chunks: 16,
        tokens: 16,
        source: Usage,
        input_tokens: Some(9),
    });
    check(&Expect {
        // Multi-byte characters: 16 tokens in 8 visible chunks, and no role chunk at all.
        file: "llamacpp/chat_stream_no_role.sse",
        outcome: Done,
        first_token_read: Some(0),
        first_answer_read: Some(0),
        last_token_read: Some(7),
        chunks: 8,
        tokens: 16,
        source: Usage,
        input_tokens: Some(35),
    });
    check(&Expect {
        file: "llamacpp/chat_stream_ignore_eos.sse",
        outcome: Done,
        first_token_read: Some(1),
        first_answer_read: Some(1),
        last_token_read: Some(32),
        chunks: 32,
        tokens: 32,
        source: Usage,
        input_tokens: Some(33),
    });
}

#[test]
fn reasoning_deltas_time_first_token_and_first_answer_separately() {
    check(&Expect {
        file: "quirks/vllm_reasoning.sse",
        outcome: Done,
        first_token_read: Some(1),
        first_answer_read: Some(4),
        last_token_read: Some(7),
        chunks: 7,
        tokens: 7,
        source: Usage,
        input_tokens: Some(9),
    });
    check(&Expect {
        file: "quirks/reasoning_key.sse",
        outcome: Done,
        first_token_read: Some(1),
        first_answer_read: Some(2),
        last_token_read: Some(2),
        chunks: 2,
        tokens: 2,
        source: Usage,
        input_tokens: Some(3),
    });
}

#[test]
fn empty_chunks_and_keep_alives_are_not_tokens() {
    check(&Expect {
        file: "quirks/empty_content.sse",
        outcome: Done,
        first_token_read: Some(2),
        first_answer_read: Some(2),
        last_token_read: Some(3),
        chunks: 2,
        tokens: 2,
        source: Usage,
        input_tokens: Some(4),
    });
    check(&Expect {
        file: "quirks/keepalive_comments.sse",
        outcome: Done,
        first_token_read: Some(3),
        first_answer_read: Some(3),
        last_token_read: Some(5),
        chunks: 2,
        tokens: 2,
        source: Usage,
        input_tokens: Some(1),
    });
}

#[test]
fn chunks_that_are_not_tokens_are_counted_from_usage() {
    check(&Expect {
        file: "quirks/litellm_multichar.sse",
        outcome: Done,
        first_token_read: Some(0), // the role chunk already carries text
        first_answer_read: Some(0),
        last_token_read: Some(3),
        chunks: 4,
        tokens: 12,
        source: Usage,
        input_tokens: Some(6),
    });
    check(&Expect {
        file: "quirks/ollama_chat.sse",
        outcome: Done,
        first_token_read: Some(0),
        first_answer_read: Some(0),
        last_token_read: Some(3),
        chunks: 4,
        tokens: 4,
        source: Usage,
        input_tokens: Some(11),
    });
    check(&Expect {
        file: "quirks/tool_calls.sse",
        outcome: Done,
        first_token_read: Some(0), // the function name is generated
        first_answer_read: Some(0),
        last_token_read: Some(3),
        chunks: 4,
        tokens: 9,
        source: Usage,
        input_tokens: Some(20),
    });
}

#[test]
fn framing_variants_parse_the_same() {
    check(&Expect {
        file: "quirks/nospace_crlf.sse",
        outcome: Done,
        first_token_read: Some(0),
        first_answer_read: Some(0),
        last_token_read: Some(2),
        chunks: 3,
        tokens: 3,
        source: Usage,
        input_tokens: Some(2),
    });
}

#[test]
fn how_a_stream_ends_decides_its_outcome() {
    check(&Expect {
        file: "quirks/no_done_finished.sse",
        outcome: Done, // a finish_reason without [DONE] is a complete answer
        first_token_read: Some(1),
        first_answer_read: Some(1),
        last_token_read: Some(2),
        chunks: 2,
        tokens: 2,
        source: Chunks,
        input_tokens: None,
    });
    let cut = check(&Expect {
        file: "quirks/cut_off.sse",
        outcome: StreamBroken,
        first_token_read: Some(1),
        first_answer_read: Some(1),
        last_token_read: Some(3),
        chunks: 3, // tokens received before the break are kept
        tokens: 3,
        source: Chunks,
        input_tokens: None,
    });
    assert!(cut.error.unwrap().contains("without [DONE]"));
    let err = check(&Expect {
        file: "quirks/error_in_stream.sse",
        outcome: InvalidResponse,
        first_token_read: Some(1),
        first_answer_read: Some(1),
        last_token_read: Some(2),
        chunks: 2,
        tokens: 2,
        source: Chunks,
        input_tokens: None,
    });
    assert!(err.error.unwrap().contains("CUDA out of memory"));
    let garbage = check(&Expect {
        file: "quirks/garbage_line.sse",
        outcome: InvalidResponse,
        first_token_read: Some(1),
        first_answer_read: Some(1),
        last_token_read: Some(1),
        chunks: 1,
        tokens: 1,
        source: Chunks,
        input_tokens: None,
    });
    assert!(garbage.error.unwrap().contains("not an OpenAI response"));
}

/// Serves `response` (raw HTTP bytes) to each connection on 127.0.0.1, after reading a request.
async fn canned_server(response: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 64 * 1024];
                let mut got = Vec::new();
                // Read the head and the Content-Length body of the request.
                loop {
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let len = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if got.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = sock.write_all(&response).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

async fn fetch(base_url: String, stream: bool) -> RequestRecord {
    let clock = Clock::start();
    let spec = common::chat_spec(stream, Duration::from_secs(10));
    let target = Target {
        name: "canned".into(),
        base_url,
        api_key: None,
    };
    let client = Client::new(&target, &spec, 1, clock).unwrap();
    let now = clock.now_us();
    let dispatch = Dispatch {
        id: 0,
        phase_index: 0,
        intended_us: now,
        dispatched_us: now,
        admitted_us: Some(now),
    };
    let label = PhaseLabel {
        name: "p".into(),
        warmup: false,
        probe: false,
        cancel: None,
    };
    let body = llmbench::client::build_body(&spec, "m", &Content::Text("hi".into())).unwrap();
    client
        .execute(dispatch, &label, body, &CancellationToken::new())
        .await
}

#[tokio::test]
async fn captured_http_responses_through_the_real_client() {
    for (file, chunks) in [
        ("llamacpp/chat_stream.http", 16),
        ("llamacpp/chat_stream_no_role.http", 8),
        ("llamacpp/completions_stream.http", 16),
    ] {
        let url = canned_server(fixture(file)).await;
        let r = fetch(url, true).await;
        assert_eq!(r.outcome, Outcome::Ok, "{file}: {:?}", r.error);
        assert_eq!(r.content_chunks, chunks, "{file}");
        assert_eq!(r.output_tokens, 16, "{file}");
        assert_eq!(r.tokens_source, TokenSource::Usage, "{file}");
        assert!(r.streamed);
        assert!(r.ttft_us().is_some());
    }
}

#[tokio::test]
async fn a_non_streaming_reply_to_a_streaming_request_is_read_as_one_body() {
    let body = fixture("llamacpp/chat_nonstream.json");
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let r = fetch(canned_server(response).await, true).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert!(!r.streamed, "recorded as not streamed");
    assert_eq!(r.tokens_source, TokenSource::Usage);
    assert!(r.output_tokens > 0);
    assert_eq!(r.ttft_us(), None, "no TTFT without a stream");
    assert!(r.e2el_us().is_some());
}

#[tokio::test]
async fn an_error_status_keeps_the_servers_message() {
    let body = br#"{"error":{"message":"model not loaded","type":"invalid_request_error"}}"#;
    let mut response = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    let r = fetch(canned_server(response).await, true).await;
    assert_eq!(r.outcome, Outcome::HttpStatus);
    assert_eq!(r.status, Some(404));
    assert!(r.error.unwrap().contains("model not loaded"));
}

/// A server that answers the first request on its first connection, then closes that connection
/// as the next request arrives on it (what a server does when it drops an idle keep-alive
/// connection); later connections are answered normally.
async fn closes_reused_connections(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            let answers = if first { 1 } else { usize::MAX };
            first = false;
            tokio::spawn(async move {
                let mut buf = vec![0; 64 * 1024];
                for _ in 0..answers {
                    if sock.read(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                }
                let _ = sock.read(&mut buf).await; // the next request ...
                // ... and the connection closes without an answer.
            });
        }
    });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn a_kept_alive_connection_closed_under_a_request_is_retried_on_a_new_one() {
    let url = closes_reused_connections(fixture("llamacpp/chat_nonstream.json")).await;
    let spec = common::chat_spec(false, Duration::from_secs(10));
    let records = common::send_in_turn(url, &spec, 2).await;
    assert_eq!(records[0].outcome, Outcome::Ok);
    assert_eq!(records[0].reconnects, 0);
    assert_eq!(records[1].outcome, Outcome::Ok, "{:?}", records[1].error);
    assert_eq!(
        records[1].reconnects, 1,
        "resent once on a fresh connection"
    );
}
