//! Faults and bad input, in process against the mock on 127.0.0.1: for every fault mode, each
//! request is in the raw records exactly once, and the records' outcome classes match the mock's
//! own counters (and the fault the mock's seeded draw gave each request id).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::execute;
use llmbench::mock::{Fault, FaultConfig, MockConfig, MockServer, MockStats};
use llmbench::plan::{ApiKey, Plan};
use llmbench::record::{Outcome, RequestRecord, TimeoutKind, read_records};
use llmbench::run::{RunError, RunOutcome};
use llmbench::settings::Settings;

const TOKENS: u32 = 10;
const PER_PHASE: u64 = 40;

fn faulty_mock(faults: FaultConfig, ttft_ms: u64) -> MockServer {
    MockServer::start(
        MockConfig {
            ttft: Duration::from_millis(ttft_ms),
            itl: Duration::from_millis(2),
            output_tokens: TOKENS,
            faults,
            ..MockConfig::default()
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap()
}

/// Two phases of `PER_PHASE` requests each, streamed.
fn two_phases(dir: &Path, server: &MockServer) -> Plan {
    let mut plan = common::plan(
        dir,
        r#"request(#{ max_tokens: 10, prompt: |i| `q ${i}`, timeout: 10 });
           phase("first", #{ requests: 40, concurrency: 8 });
           phase("second", #{ requests: 40, rps: 200, concurrency: 8 });"#,
    );
    common::target(&mut plan, server);
    plan
}

async fn run_with(plan: Plan, options: Settings) -> (RunOutcome, Vec<RequestRecord>) {
    let finished = execute(plan, &options).await.unwrap();
    let records = read_records(&finished.files().unwrap().raw).unwrap();
    (finished, records)
}

/// The mock's counters once every request it saw has ended (its side may lag the client's by
/// a poll).
async fn settled(server: &MockServer) -> MockStats {
    for _ in 0..200 {
        let s = server.stats();
        if s.ended() == s.received {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the mock never settled: {:?}", server.stats());
}

fn count(records: &[RequestRecord], f: impl Fn(&RequestRecord) -> bool) -> u64 {
    records.iter().filter(|r| f(r)).count() as u64
}

/// Every request once, every phase adds up, and the records match the mock's counters.
fn assert_accounted(finished: &RunOutcome, records: &[RequestRecord], mock: &MockStats) {
    let mut ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, (0..2 * PER_PHASE).collect::<Vec<_>>(), "every id once");
    for phase in &finished.summary.phases {
        assert_eq!(phase.requests, PER_PHASE, "{}", phase.name);
        let classes: u64 = phase.outcomes.values().sum();
        assert_eq!(classes, phase.requests, "sent = ok + every failure class");
        assert_eq!(phase.ok + phase.failed, phase.requests);
    }
    let attempts: u64 = records.iter().map(|r| u64::from(r.attempts)).sum();
    assert_eq!(
        mock.received, attempts,
        "the mock saw every attempt: {mock:?}"
    );
    assert_eq!(mock.unlabelled, 1, "one preflight request, without an id");
    // Every attempt, retried ones included, as (outcome, status).
    let tried: Vec<(Outcome, Option<u16>)> = records
        .iter()
        .flat_map(|r| {
            r.failed_attempts
                .iter()
                .map(|a| (a.outcome, a.status))
                .chain([(r.outcome, r.status)])
        })
        .collect();
    let n = |f: &dyn Fn(Outcome, Option<u16>) -> bool| {
        tried.iter().filter(|(o, s)| f(*o, *s)).count() as u64
    };
    let status = |code| move |o, s| o == Outcome::HttpStatus && s == Some(code);
    assert_eq!(n(&|o, _| o == Outcome::Ok), mock.completed);
    assert_eq!(n(&status(500)), mock.failed);
    assert_eq!(n(&status(429)), mock.rate_limited);
    assert_eq!(n(&status(401)), mock.unauthorized);
    assert_eq!(n(&|o, _| o == Outcome::StreamBroken), mock.dropped);
    assert_eq!(n(&|o, _| o == Outcome::InvalidResponse), mock.garbage);
    assert_eq!(mock.client_gone, 0, "{mock:?}");
    assert_eq!(mock.bad_request, 0);
}

/// Runs the two phases against a mock with `faults`, checks the accounting, and checks each
/// record's outcome against the fault the mock drew for its id.
async fn fault_mode(faults: FaultConfig, expect: impl Fn(Fault, &RequestRecord)) -> MockStats {
    let dir = tempfile::tempdir().unwrap();
    let server = faulty_mock(faults.clone(), 5);
    let plan = two_phases(dir.path(), &server);
    let (finished, records) = run_with(plan, common::options(dir.path())).await;
    let mock = settled(&server).await;
    assert_accounted(&finished, &records, &mock);
    for r in &records {
        expect(faults.fault_for(r.id, 0), r);
    }
    mock
}

fn seeded(f: impl FnOnce(&mut FaultConfig)) -> FaultConfig {
    let mut c = FaultConfig {
        seed: 42,
        ..FaultConfig::default()
    };
    f(&mut c);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_http_status_500() {
    let mock = fault_mode(seeded(|c| c.fail_rate = 0.3), |fault, r| match fault {
        Fault::Fail => {
            assert_eq!((r.outcome, r.status), (Outcome::HttpStatus, Some(500)));
            assert!(
                r.error
                    .as_deref()
                    .unwrap()
                    .contains("injected server error")
            );
        }
        _ => assert_eq!(r.outcome, Outcome::Ok, "{r:?}"),
    })
    .await;
    assert!(mock.failed > 5 && mock.completed > 30, "{mock:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_http_status_429() {
    let mock = fault_mode(seeded(|c| c.rate_limit_rate = 0.3), |fault, r| {
        let want = if fault == Fault::RateLimit {
            (Outcome::HttpStatus, Some(429))
        } else {
            (Outcome::Ok, Some(200))
        };
        assert_eq!((r.outcome, r.status), want, "{r:?}");
    })
    .await;
    assert!(mock.rate_limited > 5, "{mock:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_stream_broken_and_keep_their_tokens() {
    let mock = fault_mode(seeded(|c| c.drop_rate = 0.3), |fault, r| {
        if fault == Fault::Drop {
            assert_eq!(r.outcome, Outcome::StreamBroken, "{r:?}");
            // The mock cuts when token 5 is due, after handing over tokens 0-4; a cut socket
            // may lose what was still buffered, so the client keeps what reached it: 1 to 5.
            assert!(
                (1..=u64::from(TOKENS / 2)).contains(&r.content_chunks),
                "tokens before the drop: {r:?}"
            );
            assert_eq!(r.output_tokens, r.content_chunks, "counted from chunks");
            assert_eq!(r.chunk_offsets_us.len() as u64, r.content_chunks);
            assert!(r.first_token_us.is_some());
        } else {
            assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        }
    })
    .await;
    assert!(mock.dropped > 5, "{mock:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sse_is_invalid_response_and_keeps_its_tokens() {
    let mock = fault_mode(seeded(|c| c.garbage_rate = 0.3), |fault, r| {
        if fault == Fault::Garbage {
            assert_eq!(r.outcome, Outcome::InvalidResponse, "{r:?}");
            assert_eq!(r.content_chunks, u64::from(TOKENS / 2));
        } else {
            assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        }
    })
    .await;
    assert!(mock.garbage > 5, "{mock:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_complete_and_add_exactly_their_pause() {
    let stall = seeded(|c| {
        c.stall_rate = 0.5;
        c.stall = Duration::from_millis(80);
    });
    let dir = tempfile::tempdir().unwrap();
    let server = faulty_mock(stall.clone(), 5);
    let plan = two_phases(dir.path(), &server);
    let (finished, records) = run_with(plan, common::options(dir.path())).await;
    let mock = settled(&server).await;
    assert_accounted(&finished, &records, &mock);
    assert_eq!(mock.completed, 2 * PER_PHASE, "a stall still completes");
    let stalled: Vec<&RequestRecord> = records
        .iter()
        .filter(|r| stall.fault_for(r.id, 0) == Fault::Stall)
        .collect();
    assert_eq!(stalled.len() as u64, mock.stalled);
    // The pause falls between token 4 and token 5: that one gap is 2 + 80 ms (± 10 ms for a
    // busy machine), the others stay 2 ms.
    for r in &stalled {
        let gap = r.chunk_offsets_us[5] - r.chunk_offsets_us[4];
        assert!((72_000..92_000).contains(&gap), "stall gap {gap} µs");
    }
    let unstalled_e2el = common::median(
        records
            .iter()
            .filter(|r| stall.fault_for(r.id, 0) != Fault::Stall)
            .map(|r| r.e2el_us().unwrap() as f64)
            .collect(),
    );
    let stalled_e2el = common::median(
        stalled
            .iter()
            .map(|r| r.e2el_us().unwrap() as f64)
            .collect(),
    );
    let added = (stalled_e2el - unstalled_e2el) / 1e3;
    assert!((70.0..90.0).contains(&added), "a stall adds {added} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_http_status_401_for_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = faulty_mock(seeded(|c| c.require_key = Some("right".into())), 5);
    let mut plan = two_phases(dir.path(), &server);
    plan.target.as_mut().unwrap().api_key = Some(ApiKey::new("wrong-key-123"));
    let mut options = common::options(dir.path());
    // With the preflight on, the run stops before it starts.
    let err = execute(plan.clone(), &options).await.unwrap_err();
    assert!(matches!(err, RunError::Preflight(_)), "{err}");
    assert!(err.to_string().contains("refused the API key"), "{err}");
    assert!(!err.to_string().contains("wrong-key-123"), "{err}");
    assert_eq!(server.stats().received, 0, "no request of the run was sent");

    options.preflight = false;
    let (finished, records) = run_with(plan, options).await;
    let mock = settled(&server).await;
    assert_eq!(mock.unauthorized, 2 * PER_PHASE);
    assert_eq!(
        llmbench::app::outcome_code(&finished),
        llmbench::app::EXIT_NO_SUCCESS,
        "nothing succeeded"
    );
    for r in &records {
        assert_eq!(r.status, Some(401));
        let e = r.error.as_deref().unwrap();
        assert!(
            e.contains("[redacted]") && !e.contains("wrong-key-123"),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_record_every_attempt() {
    let faults = seeded(|c| c.fail_rate = 0.4);
    let dir = tempfile::tempdir().unwrap();
    let server = faulty_mock(faults.clone(), 5);
    let plan = two_phases(dir.path(), &server);
    let mut options = common::options(dir.path());
    options.client.retries = 2;
    let (finished, records) = run_with(plan, options).await;
    let mock = settled(&server).await;
    assert_accounted(&finished, &records, &mock);
    for r in &records {
        // The mock draws a fresh fault for each attempt of the same id.
        let fails = (0..3)
            .take_while(|&a| faults.fault_for(r.id, a) == Fault::Fail)
            .count() as u32;
        assert_eq!(r.attempts, (fails + 1).min(3), "{r:?}");
        assert_eq!(r.failed_attempts.len() as u32, r.attempts - 1);
        assert!(r.failed_attempts.iter().all(|a| a.status == Some(500)));
        let want = if fails >= 3 {
            Outcome::HttpStatus
        } else {
            Outcome::Ok
        };
        assert_eq!(r.outcome, want);
    }
    let failed_attempts: u64 = records.iter().map(|r| r.failed_attempts.len() as u64).sum();
    let final_500 = count(&records, |r| r.status == Some(500));
    assert_eq!(failed_attempts + final_500, mock.failed);
    assert!(failed_attempts > 10, "retries happened: {failed_attempts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_say_which_limit_and_keep_what_arrived() {
    let dir = tempfile::tempdir().unwrap();
    // First token after 400 ms, first-token limit 100 ms.
    let slow = faulty_mock(FaultConfig::default(), 400);
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ max_tokens: 10, prompt: |i| `q ${i}` }); phase("p", #{ requests: 6, concurrency: 6 });"#,
    );
    common::target(&mut plan, &slow);
    let mut options = common::options(dir.path());
    options.preflight = false;
    options.client.first_token_timeout = Some(Duration::from_millis(100));
    let (_, records) = run_with(plan.clone(), options.clone()).await;
    for r in &records {
        assert_eq!(
            (r.outcome, r.timeout),
            (Outcome::Timeout, Some(TimeoutKind::FirstToken))
        );
        let waited = r.end_us - r.sent_us.unwrap();
        assert!((100_000..300_000).contains(&waited), "{waited} µs");
    }
    assert_eq!(settled(&slow).await.client_gone, 6);

    // 10 tokens 50 ms apart take 5 ms + 450 ms; a 200 ms whole-request limit cuts them.
    let long = MockServer::start(
        MockConfig {
            ttft: Duration::from_millis(5),
            itl: Duration::from_millis(50),
            output_tokens: TOKENS,
            ..MockConfig::default()
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap();
    common::target(&mut plan, &long);
    plan.request.timeout = Duration::from_millis(200);
    options.client.first_token_timeout = None;
    let (_, records) = run_with(plan, options).await;
    for r in &records {
        assert_eq!(
            (r.outcome, r.timeout),
            (Outcome::Timeout, Some(TimeoutKind::Total))
        );
        assert!(
            (3..=5).contains(&r.content_chunks),
            "tokens before the timeout stay: {}",
            r.content_chunks
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_fails_the_preflight_or_is_recorded_as_connection() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ prompt: "hi" }); phase("p", #{ requests: 5, concurrency: 5 });"#,
    );
    plan.target = Some(llmbench::plan::Target {
        name: "gone".into(),
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: None,
    });
    plan.model = Some("m".into());
    let mut options = common::options(dir.path());
    let err = execute(plan.clone(), &options).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot reach") && msg.contains(&format!("127.0.0.1:{port}")),
        "{msg}"
    );
    assert!(
        std::fs::read_dir(dir.path().join("raw"))
            .unwrap()
            .next()
            .is_none()
    );

    options.preflight = false;
    let (finished, records) = run_with(plan, options).await;
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r.outcome == Outcome::Connection));
    assert_eq!(
        llmbench::app::outcome_code(&finished),
        llmbench::app::EXIT_NO_SUCCESS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_openai_gets_one_clear_error() {
    let html = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 31\r\nConnection: close\r\n\r\n<!DOCTYPE html><html>hi</html>";
    let json = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"hello\":\"world\"}";
    for (response, needle) in [(html, "<!DOCTYPE html>"), (json, "hello")] {
        let dir = tempfile::tempdir().unwrap();
        let (addr, hits) = common::fixed_server(response);
        let mut plan = common::plan(
            dir.path(),
            r#"request(#{ prompt: "hi" }); phase("p", #{ requests: 50, concurrency: 5 });"#,
        );
        plan.target = Some(llmbench::plan::Target {
            name: "web".into(),
            base_url: format!("http://{addr}/v1"),
            api_key: None,
        });
        plan.model = Some("m".into());
        let err = execute(plan, &common::options(dir.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not speak the OpenAI API") && err.contains(needle),
            "{err}"
        );
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one request"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_at_preflight_names_the_endpoint_and_suggests_the_other() {
    // A server serving neither endpoint, echoing the request line (credentials and all).
    let not_found = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 75\r\nConnection: close\r\n\r\n{\"error\":{\"message\":\"no route for POST /v1/x?api_key=s3cr3t-query-key-42\"}}";
    assert_eq!(not_found.split("\r\n\r\n").nth(1).unwrap().len(), 75);
    for (endpoint, path, other) in [
        ("completions", "/completions", "chat"),
        ("chat", "/chat/completions", "completions"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (addr, hits) = common::fixed_server(not_found);
        let mut plan = common::plan(
            dir.path(),
            &format!(
                r#"request(#{{ endpoint: "{endpoint}", prompt: "hi" }}); phase("p", #{{ requests: 5 }});"#
            ),
        );
        plan.target = Some(llmbench::plan::Target {
            name: "chat-only".into(),
            base_url: format!("http://user:pa55-w0rd-99@{addr}/v1?api_key=s3cr3t-query-key-42"),
            api_key: None,
        });
        plan.model = Some("m".into());
        let err = execute(plan, &common::options(dir.path()))
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Preflight(_)), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("HTTP 404"), "{msg}");
        assert!(
            msg.contains(&format!(
                "may not serve this endpoint (a {other}-only server has no {path})"
            )) && msg.contains(&format!("try endpoint: \"{other}\"")),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("{addr}/v1{path}")),
            "the URL is named: {msg}"
        );
        for secret in ["pa55-w0rd-99", "s3cr3t-query-key-42"] {
            assert!(!msg.contains(secret), "{secret} in {msg}");
        }
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_results_folder_fails_before_the_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = faulty_mock(FaultConfig::default(), 5);
    let plan = two_phases(dir.path(), &server);
    // A file where the results folder should be.
    let results = dir.path().join("results");
    std::fs::write(&results, "not a folder").unwrap();
    let err = execute(plan, &common::options(&results)).await.unwrap_err();
    assert!(matches!(err, RunError::Io { .. }), "{err}");
    assert!(err.to_string().contains("--results"), "{err}");
    let s = server.stats();
    assert_eq!(
        (s.received, s.unlabelled),
        (0, 0),
        "not even the preflight was sent"
    );
}
