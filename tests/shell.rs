//! The command line around the commands: shell completions, man pages, `--version`, the
//! suggestion for a mistyped command, and flags shown only in the help of commands they affect.

mod common;

use std::process::{Command, Output};

use common::llmbench;

fn run(args: &[&str]) -> Output {
    llmbench().args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const COMMANDS: [&str; 7] = [
    "mock",
    "parse",
    "report",
    "check",
    "run",
    "interactive",
    "calibrate",
];

#[test]
fn completions_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = stdout(&out);
        for command in COMMANDS.iter().chain(&["completions", "man"]) {
            assert!(script.contains(command), "{shell}: no {command}");
        }
        assert!(script.contains("no-nvml"), "{shell}: flags too");
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_printed_or_written_one_per_command() {
    let out = run(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = stdout(&out);
    assert!(page.contains(".TH llmbench 1"), "{page}");
    assert!(page.contains(".SH NAME") && page.contains("llmbench"));
    assert!(page.contains("calibrate"), "the commands are listed");

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("new/man1");
    let out = llmbench()
        .arg("man")
        .arg("--out")
        .arg(&pages)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(pages.join("llmbench.1")).unwrap(),
        page
    );
    for command in COMMANDS {
        let sub = std::fs::read_to_string(pages.join(format!("llmbench-{command}.1"))).unwrap();
        assert!(sub.contains(&format!(".TH llmbench-{command} 1")), "{sub}");
    }
    assert!(
        stdout(&out).contains("llmbench-run.1"),
        "names what it wrote"
    );
}

#[test]
fn the_version_names_the_commit_in_a_git_checkout() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let version = stdout(&out);
    assert!(
        version.starts_with(&format!("llmbench {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !git(&["rev-parse", "HEAD"]) {
        eprintln!("not a git checkout: the version names no commit");
        return;
    }
    let hash = version
        .split_once("(commit ")
        .map(|(_, rest)| rest.split([',', ')']).next().unwrap())
        .unwrap_or_else(|| panic!("no commit in {version:?}"));
    assert!(
        hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );
    assert!(git(&["cat-file", "-e", hash]), "{hash} is a commit here");
}

#[test]
fn a_mistyped_command_is_suggested_instead_of_read_as_a_script() {
    let out = run(&["repot"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "llmbench: no such command or script \"repot\"; did you mean `llmbench report`?"
    );
    // A script name is read as one, and said missing as before.
    let out = run(&["repot.rhai"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("did you mean"), "{stderr}");
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
    for args in [
        &["parse"][..],
        &["report"],
        &["check"],
        &["completions"],
        &["man"],
    ] {
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
