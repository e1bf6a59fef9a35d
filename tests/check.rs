//! Scripts fail early, not late: `llmbench check` tries the prompt function for several
//! requests and dry-runs every assertion against statistics of the run's shape, so a typo'd
//! field or phase, or a prompt function that fails, exits 2 naming file:line:col; a run does
//! the same before its first request. A run that fails before its first request leaves no file
//! in the results folder.

mod common;

use std::path::{Path, PathBuf};

use common::{MockProcess, llmbench, result_files};

/// A script of `lines` (one per line, so positions are known) in a fresh folder.
fn script(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

const HEAD: [&str; 3] = [
    "request(#{ prompt: |i| `question ${i}`, max_tokens: 4 });",
    "phase(\"steady\", #{ requests: 20, concurrency: 2 });",
    "phase(\"hold\", #{ requests: 20, concurrency: 2 });",
];

/// `llmbench check PATH`: exit code, stdout, stderr.
fn check(path: &Path) -> (Option<i32>, String, String) {
    let out = llmbench().arg("check").arg(path).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_exits_2_at_a_typo_in_an_assertion_field_or_phase() {
    let d = tempfile::tempdir().unwrap();
    let field = [
        &HEAD[..],
        &["assert(\"p95\", |s| s.ttft_ms.p96, \"<\", 500);"],
    ]
    .concat();
    let (code, stdout, stderr) = check(&script(d.path(), "field.rhai", &field));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("field.rhai:4:29: "), "{stderr}");
    assert!(stderr.contains("p96"), "{stderr}");
    assert!(
        stderr.contains("p95") && stderr.contains("s.phases has hold, steady"),
        "the error says what there is: {stderr}"
    );
    assert!(
        stdout.contains("assert:   p95"),
        "the plan is printed: {stdout}"
    );

    let phase = [
        &HEAD[..],
        &[
            "let ok = 1;",
            "assert(\"hold\", |s| s.phases.hodl.req_per_s > 1.0);",
        ],
    ]
    .concat();
    let (code, _, stderr) = check(&script(d.path(), "phase.rhai", &phase));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("phase.rhai:5:29: "), "{stderr}");
    assert!(stderr.contains("hodl"), "{stderr}");

    // A warmup phase is not in the statistics, so naming it is an error too.
    let warmup = [
        "request(#{ prompt: \"x\" });",
        "phase(\"warm\", #{ requests: 2, warmup: true });",
        "phase(\"steady\", #{ requests: 2 });",
        "assert(\"w\", |s| s.phases.warm.ok, \">\", 0);",
    ];
    let (code, _, stderr) = check(&script(d.path(), "warm.rhai", &warmup));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("warm.rhai:4:26: "), "{stderr}");
}

#[test]
fn check_exits_2_when_the_prompt_function_fails_for_a_request_it_tries() {
    let d = tempfile::tempdir().unwrap();
    let lines = [
        "fn make(i) {",
        "    if i == 3 { throw `no prompt for request ${i}`; }",
        "    `question ${i}`",
        "}",
        "request(#{ prompt: |i| make(i) });",
        "phase(\"steady\", #{ requests: 20 });",
    ];
    let (code, stdout, stderr) = check(&script(d.path(), "throws.rhai", &lines));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("throws.rhai:2:17: "), "{stderr}");
    assert!(
        stderr.contains("fails for request 3") && stderr.contains("no prompt for request 3"),
        "{stderr}"
    );
    assert!(stdout.contains("request 0: question 0"), "{stdout}");

    let lines = [
        "request(#{ prompt: |i| undefined_helper(i) });",
        "phase(\"steady\", #{ requests: 5 });",
    ];
    let (code, _, stderr) = check(&script(d.path(), "undefined.rhai", &lines));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("undefined.rhai:1:24: "), "{stderr}");
    assert!(stderr.contains("undefined_helper"), "{stderr}");
}

#[test]
fn check_accepts_assertions_whose_fields_exist_even_without_data() {
    let d = tempfile::tempdir().unwrap();
    let lines = [
        &HEAD[..],
        &[
            "assert(\"p95\", |s| s.ttft_ms.p95, \"<\", 500);",
            "assert(\"hold keeps up\", |s| s.phases.hold.req_per_s > 1.0);",
            "assert(\"goodput (no SLO: no data)\", |s| s.goodput_req_per_s, \">\", 1);",
            "assert(\"scaled\", |s| s.all.e2el_ms.p99 / 1000.0 < 2.0);",
            "assert(\"no 429\", |s| (s.http_statuses.get(\"429\") ?? 0) == 0);",
        ],
    ]
    .concat();
    let (code, stdout, stderr) = check(&script(d.path(), "fine.rhai", &lines));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("assert:   no 429"), "{stdout}");
}

/// The run tries the same before its first request: no request reaches the server and
/// nothing is written.
#[test]
fn a_run_with_a_typo_in_an_assertion_exits_2_before_the_first_request() {
    let d = tempfile::tempdir().unwrap();
    let mock = MockProcess::start(&["--ttft-ms", "1", "--itl-ms", "1"]);
    let lines = [
        &HEAD[..],
        &["assert(\"p95\", |s| s.ttft_ms.p96, \"<\", 500);"],
    ]
    .concat();
    let results = d.path().join("results");
    let out = llmbench()
        .arg(script(d.path(), "typo.rhai", &lines))
        .args(["--no-progress", "--url", &mock.base_url, "--model", "m"])
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("typo.rhai:4:29: "), "{stderr}");
    let stats = mock.stats_now();
    assert_eq!((stats.received, stats.unlabelled), (0, 0), "{stats:?}");
    assert!(result_files(&results).is_empty());
}

/// Preflight refused (nobody listening), a prompt that fails for request 0, a `--metrics-listen`
/// port in use: each exits 2 and leaves no run behind (a broken template: see tests/cli.rs).
#[test]
fn a_run_that_fails_before_its_first_request_leaves_no_file_in_results() {
    let d = tempfile::tempdir().unwrap();
    let fine = script(d.path(), "fine.rhai", &HEAD);
    let throws = script(
        d.path(),
        "throws.rhai",
        &[
            "request(#{ prompt: |i| { throw \"no prompt\"; } });",
            "phase(\"steady\", #{ requests: 5 });",
        ],
    );
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let nobody = format!("http://127.0.0.1:{nobody}/v1");
    let cases: [(&str, &Path, Vec<&str>, &str); 3] = [
        (
            "preflight",
            &fine,
            vec!["--url", &nobody, "--model", "m"],
            "cannot reach",
        ),
        ("prompt", &throws, vec![], "throws.rhai:1:26: "),
        (
            "metrics-listen",
            &fine,
            vec!["--metrics-listen", &taken],
            "cannot listen there",
        ),
    ];
    for (case, script, args, needle) in cases {
        let results = d.path().join(case);
        let out = llmbench()
            .arg(script)
            .arg("--no-progress")
            .args(&args)
            .arg("--results")
            .arg(&results)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
        assert!(stderr.contains(needle), "{case}: {stderr}");
        assert!(
            result_files(&results).is_empty(),
            "{case}: {:?}",
            result_files(&results)
        );
    }
}
