//! Interactive mode through a pseudo-terminal (python3's pty module drives the binary): Enter
//! alone runs the default workload against the built-in mock when no configured target
//! answers (against the target when one does), the equivalent command line is shown, and
//! custom settings are checked as they are typed.

mod common;

use std::path::Path;
use std::process::Command;

/// Runs llmbench `args` in a pseudo-terminal, answering each prompt that contains the first
/// item of a pair with the second; returns (exit code, everything the terminal showed).
fn in_pty(args: &[&str], answers: &[(&str, &str)]) -> Option<(i32, String)> {
    const DRIVER: &str = r#"
import json, os, pty, select, sys, time
binary, args, answers = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary] + args)
seen = b""
def pump(timeout):
    global seen
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return False
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        return None
    if not chunk:
        return None
    seen += chunk
    return True
start = time.time()
for prompt, reply in answers:
    pos = len(seen)
    while prompt.encode() not in seen[max(0, pos - 200):]:
        if pump(1) is None or time.time() - start > 60:
            sys.stdout.write(seen.decode(errors="replace"))
            sys.exit("no prompt " + prompt)
    time.sleep(0.2)
    while pump(0.1):
        pass
    os.write(fd, reply.encode())
while pump(1) is not None and time.time() - start < 120:
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let to_json = |v: Vec<String>| {
        format!(
            "[{}]",
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let args_json = to_json(args.iter().map(|s| s.to_string()).collect());
    let answers_json = format!(
        "[{}]",
        answers
            .iter()
            .map(|(p, r)| format!("[{p:?},{r:?}]"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let out = match Command::new("python3")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("-c")
        .arg(DRIVER)
        .arg(env!("CARGO_BIN_EXE_llmbench"))
        .arg(args_json)
        .arg(answers_json)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipped: python3 is needed to drive a pseudo-terminal ({e})");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned()
        + String::from_utf8_lossy(&out.stderr).as_ref();
    Some((out.status.code().unwrap_or(-1), text))
}

/// A config folder whose one target does not answer and whose workloads are short.
fn configs_without_a_server(dir: &Path, high_load_s: u32) -> std::path::PathBuf {
    let configs = dir.join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        configs.join("targets.yaml"),
        format!("targets:\n  - name: gpu-box\n    base_url: http://127.0.0.1:{port}/v1\n"),
    )
    .unwrap();
    std::fs::write(
        configs.join("workloads.yaml"),
        format!(
            "workloads:\n  - name: low-load\n    duration: 300\n    rps: 1\n    concurrency: 1\n  - name: high-load\n    duration: {high_load_s}\n    rps: 20\n    concurrency: 50\n"
        ),
    )
    .unwrap();
    configs
}

fn records(results: &Path) -> Vec<llmbench::record::RequestRecord> {
    let raw: Vec<_> = std::fs::read_dir(results.join("raw"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".telemetry.jsonl"))
        .collect();
    assert_eq!(raw.len(), 1, "{raw:?}");
    llmbench::record::read_records(&raw[0]).unwrap()
}

#[test]
fn enter_alone_runs_against_the_mock_when_no_configured_target_answers() {
    let d = tempfile::tempdir().unwrap();
    let configs = configs_without_a_server(d.path(), 2);
    let results = d.path().join("results");
    let Some((code, text)) = in_pty(
        &[
            "interactive",
            "--configs",
            configs.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ],
        &[
            ("Target", "\r"),
            ("Workload", "\r"),
            ("Customize", "\r"),
            ("Start the run?", "\r"),
        ],
    ) else {
        return;
    };
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("gpu-box (not answering)"), "{text}");
    assert!(
        text.contains(&format!(
            "llmbench run --target mock --workload high-load --configs {}",
            configs.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("high-load (20 req/s, concurrency 50, 2 s)"),
        "{text}"
    );
    let n = records(&results).len();
    assert!((36..=44).contains(&n), "20 req/s for 2 s: {n}");
}

#[test]
fn an_answering_target_is_the_default_and_the_model_is_the_servers() {
    let mock = common::MockProcess::start(&[]);
    let d = tempfile::tempdir().unwrap();
    let configs = configs_without_a_server(d.path(), 300);
    std::fs::write(
        configs.join("targets.yaml"),
        format!(
            "targets:\n  - name: local\n    base_url: {}\n",
            mock.base_url
        ),
    )
    .unwrap();
    let Some((code, text)) = in_pty(
        &["interactive", "--configs", configs.to_str().unwrap()],
        &[
            ("Target", "\r"),
            ("Model", "\r"),
            ("Workload", "\r"),
            ("Customize", "\r"),
            ("Start the run?", "n"),
        ],
    ) else {
        return;
    };
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("llmbench run --target local --workload high-load --configs"),
        "{text}"
    );
}

#[test]
fn custom_settings_are_checked_and_run_against_the_mock() {
    let d = tempfile::tempdir().unwrap();
    let configs = configs_without_a_server(d.path(), 300);
    let results = d.path().join("results");
    let Some((code, text)) = in_pty(
        &[
            "interactive",
            "--configs",
            configs.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--no-progress",
        ],
        &[
            ("Target", "\r"),
            ("Workload", "\r"),
            ("Customize", "y"),
            ("Duration", "soon\r"),
            ("expected a number above 0", "1\r"),
            ("Requests per second", "4\r"),
            ("Concurrency", "\r"),
            ("Input tokens", "16\r"),
            ("Output tokens", "8\r"),
            ("Start the run?", "\r"),
        ],
    ) else {
        return;
    };
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("llmbench run --target mock --workload high-load --set duration=1 --set rps=4 --set input_tokens=16 --set output_tokens=8"),
        "{text}"
    );
    let records = records(&results);
    assert_eq!(records.len(), 4, "4 req/s for 1 s");
    assert!(records.iter().all(|r| r.output_tokens == 8));
}
