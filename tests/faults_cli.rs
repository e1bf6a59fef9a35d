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
    let (code, stderr) = run_planted(
        &script,
        url,
        &[&["--connect-timeout", "2"], extra].concat(),
        dir.path(),
        &[SECRET],
    );
    (code, stderr, all_files(&dir.path().join("results")))
}

/// Runs `script` against `url` with the planted key (`--api-key-env`) and `extra` flags,
/// writing under `dir/results`; checks that none of `secrets` (whole or an 8+ character piece)
/// reached stdout, stderr or any file under `dir`; returns the exit code and stderr.
fn run_planted(
    script: &std::path::Path,
    url: &str,
    extra: &[&str],
    dir: &std::path::Path,
    secrets: &[&str],
) -> (Option<i32>, String) {
    let out = llmbench()
        .arg(script)
        .args(["--no-progress", "--url", url, "--model", "m"])
        .args(["--api-key-env", "LLMBENCH_PLANTED_KEY"])
        .args(extra)
        .arg("--results")
        .arg(dir.join("results"))
        .env("LLMBENCH_PLANTED_KEY", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_no_leak(secrets, &stdout, &stderr, dir);
    (out.status.code(), stderr)
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
    assert_eq!(code, Some(3), "every request got 401: no success");
    assert_eq!(
        files.len(),
        8,
        "the run's six and the comparison's two: {files:?}"
    );
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
    assert_eq!(code, Some(3));
    assert_eq!(files.len(), 8);
    let (code, stderr, _) = run_with_planted_key(&url, &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot reach"), "{stderr}");
}

/// No secret of `secrets`, nor its first 8 characters, is in `stdout`, `stderr`, or the name
/// or contents of any file under `dir`.
fn assert_no_leak(secrets: &[&str], stdout: &str, stderr: &str, dir: &std::path::Path) {
    let files = all_files(dir);
    let mut texts = vec![
        ("stdout".to_owned(), stdout.to_owned()),
        ("stderr".to_owned(), stderr.to_owned()),
    ];
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        texts.push((f.display().to_string(), f.display().to_string()));
        texts.push((
            f.display().to_string(),
            String::from_utf8_lossy(&bytes).into(),
        ));
    }
    for (what, text) in &texts {
        for s in secrets {
            assert!(!text.contains(&s[..8]), "{s} leaked into {what}: {text}");
        }
    }
}

const PASSWORD: &str = "pw-cli-planted-9876543210";
const USER: &str = "planted-user-name";
const QUERY_KEY: &str = "q-cli-planted-1357924680";
const HEADER_VALUE: &str = "h-cli-planted-2468013579";

/// A server answering the `i`-th request (from 0) with `answer(i)` and closing the
/// connection; it keeps each request's first line.
fn answering_server(
    answer: impl Fn(usize) -> Vec<u8> + Send + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = lines.clone();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let complete = loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if buf.len() >= end + 4 + len {
                        break true;
                    }
                }
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break false,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            if !complete {
                continue;
            }
            let first = String::from_utf8_lossy(&buf)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            seen.lock().unwrap().push(first);
            let _ = conn.write_all(&answer(i));
        }
    });
    (format!("http://{addr}/v1"), lines)
}

/// Answer `i`: a secret echoed after `offset` characters, as an OpenAI error (401), a plain
/// 500 or an invalid body.
fn echo_answer(offset: usize, secret: &str, kind: usize) -> Vec<u8> {
    let text = format!("{}{secret} is not valid", "y".repeat(offset));
    let (status, ctype, body) = match kind {
        0 => (
            "401 Unauthorized",
            "application/json",
            serde_json::json!({"error": {"message": text}}).to_string(),
        ),
        1 => ("500 Internal Server Error", "text/plain", text),
        _ => (
            "200 OK",
            "application/json",
            serde_json::json!({ "choices": text }).to_string(),
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Runs a script sending `requests` requests to `url` with every kind of secret planted (key,
/// URL user and password, credential query parameter, a header); returns the exit code and
/// stderr after checking that no output holds any of them.
fn run_with_every_secret(url: &str, requests: usize, extra: &[&str]) -> (Option<i32>, String) {
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("s.rhai");
    std::fs::write(
        &script,
        format!("request(#{{ prompt: \"hi\", max_tokens: 3, stream: false, headers: #{{ \"x-api-key\": \"{HEADER_VALUE}\" }} }});\nphase(\"p\", #{{ requests: {requests} }});\n"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "{}?api_key={QUERY_KEY}&api-version=2024-06-01",
        url.replace("http://", &format!("http://{USER}:{PASSWORD}@"))
    );
    let secrets = [SECRET, PASSWORD, USER, QUERY_KEY, HEADER_VALUE];
    run_planted(&script, &url, extra, dir.path(), &secrets)
}

#[test]
fn secrets_echoed_around_every_cut_reach_no_output_whole_or_in_part() {
    let secrets = [SECRET, PASSWORD, USER, QUERY_KEY, HEADER_VALUE];
    let offsets: Vec<usize> = (0..10)
        .chain(185..215)
        .chain(280..320)
        .chain(375..415)
        .collect();
    let n = offsets.len();
    let plan = offsets.clone();
    let (url, lines) = answering_server(move |i| {
        let offset = plan[i % plan.len()];
        echo_answer(offset, secrets[i % secrets.len()], (i / secrets.len()) % 3)
    });
    let (code, _) = run_with_every_secret(&url, n, &["--no-preflight"]);
    assert_eq!(code, Some(3), "every request failed");
    let lines = lines.lock().unwrap();
    assert_eq!(lines.len(), n);
    let want =
        format!("POST /v1/chat/completions?api_key={QUERY_KEY}&api-version=2024-06-01 HTTP/1.1");
    assert!(lines.iter().all(|l| *l == want), "{:?}", lines[0]);

    // The preflight's message (a refusal, a warning about a 500, not the OpenAI API), cut at
    // 200 characters, around its cut; a run that goes on gets the same kind of answer.
    for j in 0..24 {
        let (url, _) =
            answering_server(move |_| echo_answer(185 + j, secrets[j % secrets.len()], j % 3));
        let (code, stderr) = run_with_every_secret(&url, 1, &[]);
        assert!(matches!(code, Some(2 | 3)), "{stderr}");
        assert!(stderr.contains("preflight"), "{stderr}");
    }
}

#[test]
fn a_key_given_as_the_variable_name_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        "request(#{ prompt: \"hi\" });\nphase(\"p\", #{ requests: 1 });\n",
    )
    .unwrap();
    let out = llmbench()
        .arg(&script)
        .args(["--url", "http://127.0.0.1:9/v1", "--model", "m"])
        .args(["--api-key-env", SECRET])
        .arg("--results")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("looks like a key"), "{stderr}");
    assert!(!stderr.contains(&SECRET[..8]), "{stderr}");
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
