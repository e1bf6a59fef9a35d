//! The command line around the commands: flags shown only in the help of commands they affect.

mod common;

use std::process::Output;

use common::llmbench;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn threads_shows_only_in_the_help_of_commands_that_send_or_serve() {
    let lists_threads = |args: &[&str]| {
        let out = llmbench().args(args).arg("--help").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        stdout(&out).contains("--threads")
    };
    for args in [
        &[][..],
        &["run"],
        &["interactive"],
        &["mock"],
        &["calibrate"],
    ] {
        assert!(lists_threads(args), "{args:?} --help lists --threads");
    }
    for args in [&["parse"][..], &["report"], &["check"]] {
        assert!(!lists_threads(args), "{args:?} --help lists --threads");
    }
}

#[test]
fn threads_is_taken_before_a_script_and_by_the_mock() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        "mock(#{ ttft_ms: 1, itl_ms: 1, output_tokens: 2 });\nrequest(#{ prompt: \"hi\" });\nphase(\"p\", #{ requests: 3 });\n",
    )
    .unwrap();
    let out = llmbench()
        .args(["--threads", "2"])
        .arg(&script)
        .args(["--no-progress", "--no-nvml", "--results"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mock = common::MockProcess::start(&["--threads", "2"]);
    assert_eq!(mock.stats_now().received, 0, "it serves");
}
