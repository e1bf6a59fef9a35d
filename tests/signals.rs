//! Stopping a run from outside, against `llmbench mock` running as its own process (both
//! sides' counts compared): Ctrl-C (SIGINT) and SIGTERM stop new arrivals, give in-flight
//! requests the grace period, record the rest as cancelled, write every output marked
//! interrupted and exit 130 / 143; a second signal quits at once; a signal after the last
//! phase (during a slow assertion) is honoured too. Every wait is on a readiness signal (the
//! records the run has flushed), never a fixed sleep.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{
    MockProcess, all_files, llmbench, only_file, raw_records, signal, stderr_until,
    wait_for_records,
};
use llmbench::mock::MockStats;
use llmbench::record::{Outcome, RequestRecord};

/// Starts `script_src` against `url` with `--grace grace`, writing into `dir/results`.
fn start_run(dir: &Path, script_src: &str, url: &str, grace: &str) -> Child {
    let script = dir.join("long.rhai");
    std::fs::write(&script, script_src).unwrap();
    llmbench()
        .arg(&script)
        .args([
            "--no-progress",
            "--url",
            url,
            "--model",
            "m",
            "--grace",
            grace,
        ])
        .arg("--results")
        .arg(dir.join("results"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `script_src` against `url`, sends `sig` once `ready` records are on disk, and returns
/// the exit code, stdout and the raw records.
fn interrupted_run(
    dir: &Path,
    script_src: &str,
    url: &str,
    grace: &str,
    ready: usize,
    sig: &str,
) -> (Option<i32>, String, Vec<RequestRecord>) {
    let child = start_run(dir, script_src, url, grace);
    wait_for_records(&dir.join("results"), ready);
    signal(&child, sig);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), stdout, raw_records(&dir.join("results")))
}

fn count(records: &[RequestRecord], f: impl Fn(&RequestRecord) -> bool) -> u64 {
    records.iter().filter(|r| f(r)).count() as u64
}

/// Both sides agree on every request: the records hold all the mock saw, class by class.
fn assert_both_sides_agree(records: &[RequestRecord], mock: &MockStats) {
    assert_eq!(records.len() as u64, mock.received, "{mock:?}");
    let sent = |r: &RequestRecord| r.sent_us.is_some();
    // A request the interrupt cut just as its last bytes were on the wire is `completed` for the
    // mock and `cancelled` for the client; every other one must match class for class, and the
    // two sides must account for the same requests.
    let ok = count(records, |r| r.outcome == Outcome::Ok);
    let cut = count(records, |r| r.outcome == Outcome::Cancelled && sent(r));
    assert!(
        ok <= mock.completed && mock.completed <= ok + cut.min(2),
        "every request the mock completed is in the raw records (ok {ok}, cut {cut}): {mock:?}"
    );
    assert_eq!(ok + cut, mock.completed + mock.client_gone, "{mock:?}");
    assert_eq!(count(records, |r| r.status == Some(500)), mock.failed);
    assert_eq!(
        count(records, |r| r.outcome == Outcome::StreamBroken),
        mock.dropped
    );
    assert_eq!(mock.unlabelled, 1, "the preflight");
}

/// The summary, both reports and the metadata are there and say the run was interrupted.
fn assert_outputs_marked_interrupted(results: &Path, stdout: &str) {
    assert!(stdout.contains("INTERRUPTED"), "{stdout}");
    only_file(results, "summary", "csv");
    let md = std::fs::read_to_string(only_file(results, "reports", "md")).unwrap();
    assert!(md.contains("Interrupted"), "{md}");
    only_file(results, "reports", "html");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(only_file(results, "runs", "json")).unwrap())
            .unwrap();
    assert_eq!(meta["run"]["interrupted"], true);
    let tmp: Vec<_> = all_files(results)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

const LONG: &str = "request(#{ max_tokens: 20, prompt: |i| `p ${i}` });\n\
                    phase(\"long\", #{ duration: 60, rps: 20, concurrency: 8 });\n";

#[test]
fn ctrl_c_keeps_every_request_the_mock_completed_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockProcess::start(&[
        "--ttft-ms",
        "20",
        "--itl-ms",
        "5",
        "--output-tokens",
        "20",
        "--seed",
        "3",
        "--fail-rate",
        "0.1",
        "--drop-rate",
        "0.1",
    ]);
    let (code, stdout, records) = interrupted_run(dir.path(), LONG, &mock.base_url, "5", 30, "INT");
    assert_eq!(code, Some(130), "{stdout}");
    assert_outputs_marked_interrupted(&dir.path().join("results"), &stdout);
    let stats = mock.stats();
    assert_both_sides_agree(&records, &stats);
    assert_eq!(
        stats.client_gone, 0,
        "the grace period let every stream finish"
    );
    assert!(records.len() >= 30, "{}", records.len());
    assert!(stats.failed > 0 && stats.dropped > 0, "{stats:?}");
}

#[test]
fn sigterm_is_ctrl_c_with_exit_143() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockProcess::start(&["--ttft-ms", "20", "--itl-ms", "5", "--output-tokens", "20"]);
    let started = Instant::now();
    let (code, stdout, records) =
        interrupted_run(dir.path(), LONG, &mock.base_url, "5", 20, "TERM");
    assert_eq!(code, Some(143), "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopped well before the 60 s phase"
    );
    assert_outputs_marked_interrupted(&dir.path().join("results"), &stdout);
    let stats = mock.stats();
    assert_both_sides_agree(&records, &stats);
    assert!(records.len() >= 20);
}

#[test]
fn a_signal_after_a_short_grace_cancels_the_rest_and_loses_nothing() {
    for sig in ["INT", "TERM"] {
        let dir = tempfile::tempdir().unwrap();
        // Streams of 2 s: many are in flight when the 0.2 s grace runs out.
        let mock =
            MockProcess::start(&["--ttft-ms", "20", "--itl-ms", "50", "--output-tokens", "40"]);
        let (code, _, records) = interrupted_run(
            dir.path(),
            "request(#{ max_tokens: 40, prompt: |i| `p ${i}` });\n\
             phase(\"long\", #{ duration: 60, rps: 20, concurrency: 64 });\n",
            &mock.base_url,
            "0.2",
            10,
            sig,
        );
        assert_eq!(code, Some(if sig == "INT" { 130 } else { 143 }));
        let stats = mock.stats();
        assert_both_sides_agree(&records, &stats);
        assert!(stats.completed >= 10 && stats.client_gone > 5, "{stats:?}");
        for r in records.iter().filter(|r| r.outcome == Outcome::Cancelled) {
            assert!(
                r.content_chunks > 0 || r.sent_us.is_none(),
                "tokens before the cut stay: {r:?}"
            );
        }
    }
}

#[test]
fn a_second_signal_exits_at_once_with_the_records_already_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockProcess::start(&["--ttft-ms", "20", "--itl-ms", "50", "--output-tokens", "40"]);
    let mut child = start_run(
        dir.path(),
        "request(#{ max_tokens: 40, prompt: |i| `p ${i}` });\n\
         phase(\"long\", #{ duration: 60, rps: 20, concurrency: 64 });\n",
        &mock.base_url,
        "30",
    );
    let results = dir.path().join("results");
    wait_for_records(&results, 10);
    signal(&child, "INT");
    // Ready for the second: the run said it is stopping (so the first was seen first).
    let stderr = stderr_until(&mut child, "received; stopping");
    let second = Instant::now();
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "no wait for the 30 s grace"
    );
    assert_eq!(out.status.code(), Some(130), "the first signal's code");
    // Every line on disk is a whole record, and the requests that finished before the first
    // signal are there.
    let records = raw_records(&results);
    let stats = mock.stats();
    assert!(
        count(&records, |r| r.outcome == Outcome::Ok) >= 10,
        "{stats:?}"
    );
    assert!(count(&records, |r| r.outcome == Outcome::Ok) <= stats.completed);
    drop(stderr);
}

#[test]
fn ctrl_c_during_a_slow_assertion_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockProcess::start(&["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "4"]);
    // With the run's 8 requests the assertion spins until the sandbox's limits stop it:
    // seconds, far longer than the run's wind-down. (The dry run before the first request,
    // with at most one made-up request, passes.)
    let mut child = start_run(
        dir.path(),
        "request(#{ max_tokens: 4, prompt: |i| `p ${i}` });\n\
         phase(\"short\", #{ requests: 8, rps: 50 });\n\
         assert(\"slow\", |s| { let n = 0; while s.requests >= 8 { n += 1; } true });\n",
        &mock.base_url,
        "5",
    );
    let results = dir.path().join("results");
    wait_for_records(&results, 8);
    // Kept open until the run ends: its last lines still fit in the pipe.
    let stderr = stderr_until(&mut child, "checking 1 assertion");
    let sent = Instant::now();
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "stopped without finishing the assertion: {:?}",
        sent.elapsed()
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert_outputs_marked_interrupted(&results, &stdout);
    assert_eq!(raw_records(&results).len(), 8);
    assert_eq!(mock.stats().completed, 8);
    drop(stderr);
}

#[test]
fn a_signal_stops_requests_waiting_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    // Every answer is a 429 with Retry-After: 1; with --retries 20 each request would keep
    // trying for 20 s, well past the signal.
    let mock = MockProcess::start(&["--ttft-ms", "1", "--itl-ms", "1", "--rate-limit-rate", "1"]);
    let script = dir.path().join("retry.rhai");
    std::fs::write(
        &script,
        "request(#{ max_tokens: 4, prompt: |i| `p ${i}` });\n\
         phase(\"p\", #{ requests: 6, rps: 20 });\n",
    )
    .unwrap();
    let child = llmbench()
        .arg(&script)
        .args(["--no-progress", "--url", &mock.base_url, "--model", "m"])
        .args(["--retries", "20", "--grace", "30", "--no-preflight"])
        .arg("--results")
        .arg(dir.path().join("results"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ready: every request has been answered once and is waiting for its retry.
    let until = Instant::now() + Duration::from_secs(30);
    while mock.stats_now().rate_limited < 6 {
        assert!(Instant::now() < until, "the mock never saw six requests");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "no retry after the signal: {:?}",
        sent.elapsed()
    );
    assert_eq!(out.status.code(), Some(130));
    let records = raw_records(&dir.path().join("results"));
    assert_eq!(records.len(), 6);
    assert!(
        records
            .iter()
            .all(|r| r.status == Some(429) && r.attempts < 20),
        "{records:?}"
    );
}
