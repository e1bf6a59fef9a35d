//! The binary under faults, as a user runs it: planted keys on error paths, bad flags and YAML,
//! and the proxy rule (HTTP_PROXY ignored, --proxy obeyed). Signals are in `signals.rs`.

mod common;

use std::path::PathBuf;

use common::{all_files, llmbench};

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
