//! Interactive mode through a pseudo-terminal (python3's pty module drives the binary):
//! Enter accepts the defaults (a 5-minute high-load run), the equivalent command line is shown,
//! and custom settings run against the built-in mock.

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

#[test]
fn enter_accepts_the_defaults_and_shows_the_command_line() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
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
        text.contains(&format!(
            "llmbench run --target vllm-local --model llama-3.1-8b-instruct --workload high-load --configs {}",
            configs.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("high-load (20 req/s, concurrency 50, 300 s)"),
        "{text}"
    );
}

#[test]
fn custom_settings_run_against_the_mock() {
    let d = tempfile::tempdir().unwrap();
    let configs = d.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/workloads.yaml"),
        configs.join("workloads.yaml"),
    )
    .unwrap();
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
            ("Model", "\r"),
            ("Workload", "\r"),
            ("Customize", "y"),
            ("Duration", "1\r"),
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
        text.contains("llmbench run --target mock --model llmbench-mock --workload high-load --set duration=1.0 --set rps=4.0 --set input_tokens=16 --set output_tokens=8"),
        "{text}"
    );
    let raw: Vec<_> = std::fs::read_dir(results.join("raw")).unwrap().collect();
    assert_eq!(raw.len(), 1, "{text}");
    let records = llmbench::record::read_records(&raw[0].as_ref().unwrap().path()).unwrap();
    assert_eq!(records.len(), 4, "4 req/s for 1 s");
    assert!(records.iter().all(|r| r.output_tokens == 8));
}
