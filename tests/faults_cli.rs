//! The binary under faults, as a user runs it: Ctrl-C against `llmbench mock` running as its own
//! process (both sides' counts compared), planted keys on error paths, bad flags and YAML, and the
//! proxy rule (HTTP_PROXY ignored, --proxy obeyed).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use llmbench::mock::MockStats;
use llmbench::record::{Outcome, RequestRecord, read_records};

fn llmbench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llmbench"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn raw_records(dir: &Path) -> Vec<RequestRecord> {
    let raw: Vec<PathBuf> = all_files(&dir.join("raw"));
    assert_eq!(raw.len(), 1, "{raw:?}");
    read_records(&raw[0]).unwrap()
}

/// `llmbench mock` as a child process on a free port, with its base URL.
struct MockProcess {
    child: Child,
    base_url: String,
}

impl MockProcess {
    fn start(args: &[&str]) -> Self {
        let mut child = llmbench()
            .args(["mock", "--port", "0"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let line = lines.next().unwrap().unwrap();
        let base_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Self { child, base_url }
    }

    /// `GET /mock/stats`, once every request the mock saw has ended.
    fn stats(&self) -> MockStats {
        let addr = self
            .base_url
            .trim_start_matches("http://")
            .trim_end_matches("/v1");
        for _ in 0..200 {
            let mut conn = std::net::TcpStream::connect(addr).unwrap();
            write!(
                conn,
                "GET /mock/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut text = String::new();
            conn.read_to_string(&mut text).unwrap();
            let body = text.split_once("\r\n\r\n").unwrap().1;
            let stats: MockStats = serde_json::from_str(body).unwrap();
            if stats.ended() == stats.received {
                return stats;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the mock never settled");
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script_src` against `url`, sends SIGINT after `after`, and returns the exit code and
/// the raw records.
fn interrupted_run(
    dir: &Path,
    script_src: &str,
    url: &str,
    grace: &str,
    after: Duration,
) -> (Option<i32>, String, Vec<RequestRecord>) {
    let script = dir.join("long.rhai");
    std::fs::write(&script, script_src).unwrap();
    let child = llmbench()
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
        .unwrap();
    std::thread::sleep(after);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
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
    let (code, stdout, records) = interrupted_run(
        dir.path(),
        "request(#{ max_tokens: 20, prompt: |i| `p ${i}` });\n\
         phase(\"long\", #{ duration: 60, rps: 20, concurrency: 8 });\n",
        &mock.base_url,
        "5",
        Duration::from_millis(2500),
    );
    assert_eq!(code, Some(130), "{stdout}");
    assert!(stdout.contains("INTERRUPTED"), "{stdout}");
    let stats = mock.stats();
    assert_both_sides_agree(&records, &stats);
    assert_eq!(
        stats.client_gone, 0,
        "the grace period let every stream finish"
    );
    assert!(
        records.len() >= 20,
        "about 2.5 s at 20 req/s: {}",
        records.len()
    );
    assert!(stats.failed > 0 && stats.dropped > 0, "{stats:?}");
}

#[test]
fn ctrl_c_after_a_short_grace_cancels_the_rest_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Streams of 2 s: many are in flight when the 0.2 s grace runs out.
    let mock = MockProcess::start(&["--ttft-ms", "20", "--itl-ms", "50", "--output-tokens", "40"]);
    let (code, _, records) = interrupted_run(
        dir.path(),
        "request(#{ max_tokens: 40, prompt: |i| `p ${i}` });\n\
         phase(\"long\", #{ duration: 60, rps: 20, concurrency: 64 });\n",
        &mock.base_url,
        "0.2",
        Duration::from_millis(3000),
    );
    assert_eq!(code, Some(130));
    let stats = mock.stats();
    assert_both_sides_agree(&records, &stats);
    assert!(stats.completed > 5 && stats.client_gone > 5, "{stats:?}");
    for r in records.iter().filter(|r| r.outcome == Outcome::Cancelled) {
        assert!(r.content_chunks > 0, "tokens before the cut stay: {r:?}");
    }
}

#[test]
fn a_second_ctrl_c_exits_at_once_with_the_records_already_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockProcess::start(&["--ttft-ms", "20", "--itl-ms", "50", "--output-tokens", "40"]);
    let script = dir.path().join("long.rhai");
    std::fs::write(
        &script,
        "request(#{ max_tokens: 40, prompt: |i| `p ${i}` });\n\
         phase(\"long\", #{ duration: 60, rps: 20, concurrency: 64 });\n",
    )
    .unwrap();
    let mut child = llmbench()
        .arg(&script)
        .args([
            "--no-progress",
            "--url",
            &mock.base_url,
            "--model",
            "m",
            "--grace",
            "30",
        ])
        .arg("--results")
        .arg(dir.path().join("results"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let int = |pid: u32| {
        assert!(
            Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        )
    };
    std::thread::sleep(Duration::from_millis(3000));
    int(child.id());
    std::thread::sleep(Duration::from_millis(300));
    let second = std::time::Instant::now();
    int(child.id());
    let status = child.wait().unwrap();
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "no wait for the 30 s grace"
    );
    assert_eq!(status.code(), Some(130));
    // Every line on disk is a whole record, and the requests that finished before the first
    // Ctrl-C are there.
    let records = raw_records(&dir.path().join("results"));
    let stats = mock.stats();
    assert!(
        count(&records, |r| r.outcome == Outcome::Ok) >= 10,
        "{stats:?}"
    );
    assert!(count(&records, |r| r.outcome == Outcome::Ok) <= stats.completed);
}

const SECRET: &str = "sk-llmbench-planted-7f3a9c";

/// Runs a 4-request script against `url` with the planted key; checks that the key is in no
/// output; returns the exit code and stderr.
fn run_with_planted_key(url: &str, extra: &[&str]) -> (Option<i32>, String, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        "request(#{ prompt: \"hi\", max_tokens: 3 });\nphase(\"p\", #{ requests: 4 });\n",
    )
    .unwrap();
    let out = llmbench()
        .arg(&script)
        .args(["--no-progress", "--url", url, "--model", "m"])
        .args([
            "--api-key-env",
            "LLMBENCH_PLANTED_KEY",
            "--connect-timeout",
            "2",
        ])
        .args(extra)
        .arg("--results")
        .arg(dir.path().join("results"))
        .env("LLMBENCH_PLANTED_KEY", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stdout.contains(SECRET), "stdout: {stdout}");
    assert!(!stderr.contains(SECRET), "stderr: {stderr}");
    let files = all_files(dir.path());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "the key leaked into {}",
            f.display()
        );
    }
    (
        out.status.code(),
        stderr,
        all_files(&dir.path().join("results")),
    )
}

#[test]
fn a_planted_key_reaches_no_output_on_error_paths() {
    // A server that refuses the key and echoes it back in its error message.
    let server = llmbench::mock::MockServer::start(
        llmbench::mock::MockConfig {
            faults: llmbench::mock::FaultConfig {
                require_key: Some("the-right-key".into()),
                ..Default::default()
            },
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let (code, _, files) = run_with_planted_key(&server.base_url(), &["--no-preflight"]);
    assert_eq!(code, Some(1), "every request got 401");
    assert_eq!(files.len(), 5, "{files:?}");
    assert_eq!(server.stats().unauthorized, 4);
    let (code, stderr, files) = run_with_planted_key(&server.base_url(), &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("refused the API key"), "{stderr}");
    assert!(files.is_empty(), "nothing written: {files:?}");

    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let (code, _, files) = run_with_planted_key(&url, &["--no-preflight"]);
    assert_eq!(code, Some(1));
    assert_eq!(files.len(), 5);
    let (code, stderr, _) = run_with_planted_key(&url, &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot reach"), "{stderr}");
}

fn exit_2_mentioning(args: &[&str], needles: &[&str]) {
    let out = llmbench().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: no {n:?} in {stderr}");
    }
}

#[test]
fn bad_flag_values_exit_2_naming_the_flag_and_the_fix() {
    exit_2_mentioning(&["x.rhai", "--retries", "some"], &["--retries"]);
    exit_2_mentioning(&["x.rhai", "--timeout", "0"], &["--timeout", "above 0"]);
    exit_2_mentioning(
        &["x.rhai", "--first-token-timeout", "soon"],
        &["--first-token-timeout", "seconds"],
    );
    exit_2_mentioning(
        &["mock", "--fail-rate", "1.5"],
        &["--fail-rate", "from 0 to 1"],
    );
    exit_2_mentioning(
        &[
            "mock",
            "--port",
            "0",
            "--fail-rate",
            "0.6",
            "--drop-rate",
            "0.6",
        ],
        &["add up", "1 or less"],
    );
}

#[test]
fn malformed_yaml_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs");
    std::fs::create_dir(&configs).unwrap();
    std::fs::write(
        configs.join("targets.yaml"),
        "targets:\n  - name: a\n    base_url: [unclosed\n    api_key: x\n",
    )
    .unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        "target(\"a\");\nrequest(#{ prompt: \"hi\" });\nphase(\"p\", #{ requests: 1 });\n",
    )
    .unwrap();
    let out = llmbench()
        .arg(&script)
        .arg("--configs")
        .arg(&configs)
        .arg("--results")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("targets.yaml"), "{stderr}");
    assert!(stderr.contains("line"), "{stderr}");
    assert!(!dir.path().join("results").exists(), "nothing written");
}

/// A server that answers every connection with an HTML page, counting connections.
fn counting_web_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let (addr, hits) = common::fixed_server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\nConnection: close\r\n\r\n<html></html>",
    );
    (format!("http://{addr}"), hits)
}

#[test]
fn requests_use_a_proxy_only_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        "request(#{ prompt: \"hi\", max_tokens: 3 });\nphase(\"p\", #{ requests: 3 });\n",
    )
    .unwrap();
    let (proxy, hits) = counting_web_server();
    let server = llmbench::mock::MockServer::start(
        llmbench::mock::MockConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        llmbench()
            .arg(&script)
            .args(["--no-progress", "--url", &server.base_url(), "--model", "m"])
            .args(extra)
            .arg("--results")
            .arg(dir.path().join("results"))
            .env("HTTP_PROXY", &proxy)
            .env("http_proxy", &proxy)
            .env("ALL_PROXY", &proxy)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(seen, 0, "HTTP_PROXY is ignored");
    assert_eq!(server.stats().received, 3);

    // With --proxy, the (HTML-serving) proxy gets the preflight and the run stops there.
    let out = run(&["--proxy", &proxy]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not speak the OpenAI API"), "{stderr}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        server.stats().received,
        3,
        "nothing more reached the server"
    );
}
