//! Tests of the sandbox against hostile scripts: scripts that stay within Rhai's limits but
//! would hold the run for hours or eat memory, at evaluation (`llmbench check`) and in the calls
//! the run makes later.

use std::time::{Duration, Instant};

use super::*;
use crate::plan::{Prompt, PromptGenerator};

/// Scripts that stay under the operation and size limits while taking minutes or hours, or
/// holding hundreds of MiB; each is stopped by a budget whose message this names.
const HOSTILE: [(&str, &str, &str); 3] = [
    // The array size check walks the whole array after every push: quadratic, ~400 s.
    ("push", "let a = []; loop { a.push(1); }", "took more than"),
    // Each push walks ~1M elements and the pop keeps it under the limit: hours.
    (
        "pad",
        "let a = []; a.pad(999000, 0); loop { a.push(1); a.pop(); }",
        "took more than",
    ),
    // Map keys are not counted by Rhai's size check: 300 keys of 1 MiB.
    (
        "keys",
        r#"let k = "k"; k.pad(1048576, "x"); let m = #{}; for i in 0..300 { m[k + i] = i; }"#,
        "memory budget",
    ),
];

fn write(dir: &Path, src: &str) -> std::path::PathBuf {
    let path = dir.join("w.rhai");
    std::fs::write(&path, src).unwrap();
    path
}

/// Runs `f` for each hostile body at once (threads), so the whole test takes one budget.
fn each_hostile(f: impl Fn(&str, &str, &str) + Sync) {
    std::thread::scope(|s| {
        for (name, body, needle) in HOSTILE {
            let f = &f;
            s.spawn(move || f(name, body, needle));
        }
    });
}

#[test]
fn hostile_scripts_stop_within_the_evaluation_budget() {
    each_hostile(|name, body, needle| {
        let d = tempfile::tempdir().unwrap();
        let path = write(d.path(), body);
        let started = Instant::now();
        let err = load(&path, &Configs::new(d.path().join("configs")))
            .expect_err(name)
            .to_string();
        let took = started.elapsed();
        assert!(
            took < EVAL_BUDGET + Duration::from_secs(3),
            "{name}: {took:?}"
        );
        assert!(
            err.contains("script evaluation") && err.contains(needle),
            "{name}: {err}"
        );
        assert!(
            err.contains("w.rhai:1:"),
            "{name}: the error names the place: {err}"
        );
        if needle == "took more than" {
            assert!(err.contains("more than 10 s (the budget)"), "{name}: {err}");
        }
    });
}

#[test]
fn hostile_prompt_functions_stop_within_the_call_budget() {
    each_hostile(|name, body, needle| {
        let d = tempfile::tempdir().unwrap();
        let src = format!(
            "request(#{{ prompt: |i| {{ if i > 0 {{ {body} }} `ok ${{i}}` }} }});\nphase(\"a\", #{{ requests: 2 }});"
        );
        let plan = load(
            &write(d.path(), &src),
            &Configs::new(d.path().join("configs")),
        )
        .unwrap();
        let Prompt::Generated(g) = &plan.request.prompt else {
            panic!("a generated prompt")
        };
        assert!(g.generate(0).is_ok());
        let started = Instant::now();
        let err = g.generate(1).expect_err(name);
        let took = started.elapsed();
        assert!(
            took < PROMPT_BUDGET + Duration::from_secs(3),
            "{name}: {took:?}"
        );
        assert!(
            err.contains("the prompt function for request 1") && err.contains(needle),
            "{name}: {err}"
        );
        if needle == "took more than" {
            assert!(err.contains("more than 5 s (the budget)"), "{name}: {err}");
        }
        // The next call has a budget of its own.
        assert!(g.generate(0).is_ok(), "{name}");
    });
}

#[test]
fn a_hostile_assertion_stops_and_names_the_assertion() {
    let d = tempfile::tempdir().unwrap();
    let src = format!(
        "request(#{{ prompt: \"x\" }});\nphase(\"a\", #{{ requests: 1 }});\nassert(\"spins\", |s| {{ {} true }});",
        HOSTILE[2].1
    );
    let plan = load(
        &write(d.path(), &src),
        &Configs::new(d.path().join("configs")),
    )
    .unwrap();
    let err = plan.assertions[0]
        .check
        .check(&serde_json::json!({}))
        .unwrap_err();
    assert!(
        err.contains("assertion \"spins\"") && err.contains("memory budget"),
        "{err}"
    );
}

#[test]
fn cancel_stops_a_running_prompt_call_promptly() {
    let d = tempfile::tempdir().unwrap();
    let src = "request(#{ prompt: |i| { if i > 0 { loop { } } `ok` } });\nphase(\"a\", #{ requests: 2 });";
    let access = Access {
        cancel: Cancel::new(),
        ..Access::default()
    };
    let plan = load_with_access(
        &write(d.path(), src),
        &Configs::new(d.path().join("configs")),
        &Overrides::new(),
        &access,
    )
    .unwrap();
    let Prompt::Generated(g) = &plan.request.prompt else {
        panic!("a generated prompt")
    };
    let g: std::sync::Arc<dyn PromptGenerator> = g.clone();
    let running = std::thread::spawn(move || {
        let started = Instant::now();
        (g.generate(1), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    access.cancel.cancel();
    let (out, took) = running.join().unwrap();
    let err = out.unwrap_err();
    assert!(err.contains("was cancelled"), "{err}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn built_in_counts_are_bounded_before_allocating() {
    let d = tempfile::tempdir().unwrap();
    let err = load(
        &write(d.path(), "let w = words(1000000000000);"),
        &Configs::new(d.path().join("configs")),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("at most"), "{err}");
}

// ---- What a script may read ----

const REQ: &str = "request(#{ prompt: \"x\" }); phase(\"a\", #{ requests: 1 });";

fn key_of(plan: &Plan) -> Option<String> {
    plan.target
        .as_ref()
        .and_then(|t| t.api_key.as_ref())
        .map(|k| k.expose().to_owned())
}

#[test]
fn a_script_reads_only_the_environment_variables_it_was_given() {
    // SAFETY: these variable names are used by this test alone.
    unsafe {
        std::env::set_var("LLMBENCH_TEST_SANDBOX_SECRET", "aws-secret");
        std::env::set_var("LLMBENCH_TEST_SANDBOX_FLAG", "sk-flag");
        std::env::set_var("LLMBENCH_TEST_SANDBOX_YAML", "sk-yaml");
    }
    let d = tempfile::tempdir().unwrap();
    let configs = Configs::new(d.path().join("configs"));
    let src = |var: &str| {
        format!("target(#{{ base_url: \"http://127.0.0.1:9/v1\", api_key_env: \"{var}\" }}); {REQ}")
    };
    let load_as = |var: &str, access: &Access| {
        load_with_access(
            &write(d.path(), &src(var)),
            &configs,
            &Overrides::new(),
            access,
        )
    };
    // Not named anywhere: refused, naming the flag, and the value never appears.
    let err = load_as("LLMBENCH_TEST_SANDBOX_SECRET", &Access::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("may not read") && err.contains("--api-key-env LLMBENCH_TEST_SANDBOX_SECRET"),
        "{err}"
    );
    assert!(!err.contains("aws-secret"), "{err}");
    // Given on the command line (the loader's allow-list).
    let plan = load_as(
        "LLMBENCH_TEST_SANDBOX_FLAG",
        &Access::default().allowing("LLMBENCH_TEST_SANDBOX_FLAG"),
    )
    .unwrap();
    assert_eq!(key_of(&plan).as_deref(), Some("sk-flag"));
    // Allowed but not set: says so.
    let err = load_as(
        "LLMBENCH_TEST_SANDBOX_UNSET",
        &Access::default().allowing("LLMBENCH_TEST_SANDBOX_UNSET"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("which is not set"), "{err}");
    // Allowing one variable does not allow another.
    assert!(
        load_as(
            "LLMBENCH_TEST_SANDBOX_SECRET",
            &Access::default().allowing("LLMBENCH_TEST_SANDBOX_FLAG"),
        )
        .is_err()
    );
    // Named in configs/targets.yaml.
    std::fs::create_dir_all(d.path().join("configs")).unwrap();
    std::fs::write(
        d.path().join("configs/targets.yaml"),
        "targets:\n  - name: t\n    base_url: http://127.0.0.1:9/v1\n    api_key: \"${LLMBENCH_TEST_SANDBOX_YAML}\"\n",
    )
    .unwrap();
    let plan = load_as("LLMBENCH_TEST_SANDBOX_YAML", &Access::default()).unwrap();
    assert_eq!(key_of(&plan).as_deref(), Some("sk-yaml"));
}

#[test]
fn access_from_env_reads_the_allow_list() {
    // SAFETY: only this test reads the allow-list variable through `Access::from_env`; other
    // tests that load scripts only gain permission for a variable nobody names.
    unsafe {
        std::env::set_var(
            ALLOW_ENV_VAR,
            " LLMBENCH_TEST_SANDBOX_A ,LLMBENCH_TEST_SANDBOX_B,",
        )
    };
    let a = Access::from_env();
    assert_eq!(
        a.allow_env,
        vec!["LLMBENCH_TEST_SANDBOX_A", "LLMBENCH_TEST_SANDBOX_B"]
    );
}

#[cfg(unix)]
#[test]
fn imports_and_datasets_that_lead_outside_are_refused_without_showing_the_file() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("passwd");
    std::fs::write(&secret, "root:x:0:0:SECRET-LINE-1\n{ nope SECRET-LINE-2\n").unwrap();
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("lib")).unwrap();
    std::fs::create_dir_all(d.path().join("configs")).unwrap();
    std::fs::write(
        d.path().join("configs/targets.yaml"),
        "targets: [ SECRET-YAML\n",
    )
    .unwrap();
    symlink(&secret, d.path().join("lib/evil.rhai")).unwrap();
    symlink(
        d.path().join("configs/targets.yaml"),
        d.path().join("lib/cfg.rhai"),
    )
    .unwrap();
    symlink(&secret, d.path().join("data.jsonl")).unwrap();
    symlink(&secret, d.path().join("tok.json")).unwrap();
    let configs = Configs::new(d.path().join("nothing"));
    for (src, needle) in [
        ("import \"lib/evil\" as e;", "leads outside"),
        ("import \"lib/cfg\" as c;", "not a .rhai script"),
        ("let ds = dataset(\"data.jsonl\");", "leads outside"),
        ("let t = tokens(5, \"tok.json\");", "leads outside"),
    ] {
        let err = load(&write(d.path(), src), &configs)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{src}\n  => {err}");
        assert!(!err.contains("SECRET"), "{src}\n  => {err}");
    }
    // A real library file in the folder still imports.
    std::fs::write(d.path().join("lib/ok.rhai"), "fn f() { 1 }").unwrap();
    load(
        &write(d.path(), &format!("import \"lib/ok\" as ok; {REQ}")),
        &configs,
    )
    .unwrap();
}
