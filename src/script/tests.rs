//! Tests of the DSL: the plan a script becomes, its options and its error cases (target, model,
//! params, phases and sweeps, SLO and assertions); request and prompt tests are in `tests_prompts`.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::plan::{Arrival, Content, Endpoint, Prompt};

pub(super) fn load_src(src: &str) -> Result<Plan, ScriptError> {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("w.rhai");
    std::fs::write(&path, src).unwrap();
    load(&path, &Configs::new(d.path().join("configs")))
}

#[test]
fn a_full_script_becomes_a_plan() {
    let plan = load_src(
        r#"
        target(#{ base_url: "http://127.0.0.1:9/v1" });
        model("m1");
        mock(#{ ttft_ms: 20, itl_ms: 5.5, output_tokens: 10 });
        request(#{ endpoint: "completions", max_tokens: 32, prompt: |i| `Q${i}`, stream: false, timeout: 30 });
        phase("warm", #{ requests: 5, concurrency: 1, warmup: true });
        phase("steady", #{ duration: 10, rps: 20, concurrency: 8, arrival: "poisson", seed: 9 });
        "#,
    )
    .unwrap();
    assert_eq!(plan.workload, "w");
    assert_eq!(plan.target.as_ref().unwrap().name, "127.0.0.1:9");
    assert_eq!(plan.model.as_deref(), Some("m1"));
    assert_eq!(plan.mock.itl_ms, 5.5);
    assert_eq!(plan.request.endpoint, Endpoint::Completions);
    assert_eq!(plan.request.max_tokens, Some(32));
    assert!(!plan.request.stream);
    assert_eq!(plan.request.timeout, Duration::from_secs(30));
    let Prompt::Generated(g) = &plan.request.prompt else {
        panic!("a function prompt")
    };
    assert_eq!(g.generate(7).unwrap(), Content::Text("Q7".into()));
    assert_eq!(plan.phases.len(), 2);
    assert!(plan.phases[0].warmup && !plan.phases[0].is_open_loop());
    let p = &plan.phases[1];
    assert_eq!(p.rate, Some(20.0));
    assert_eq!(p.concurrency, Some(8));
    assert_eq!(p.arrival, Arrival::Poisson);
    assert_eq!(p.seed, 9);
    assert_eq!(plan.expected_requests(), Some(205));
}

#[test]
fn unknown_keys_are_errors_with_file_line_and_column() {
    let err = load_src("request(#{ prompt: \"x\" });\nphase(\"a\", #{ duration: 1, rsp: 5 });\n")
        .unwrap_err();
    let text = err.to_string();
    assert!(err.location.ends_with("w.rhai:2:1"), "{text}");
    assert!(text.contains("unknown option \"rsp\""), "{text}");
    assert!(text.contains("phase(\"a\""), "the line is shown: {text}");
}

#[test]
fn syntax_errors_name_the_position() {
    let err = load_src("request(#{ prompt: \"x\" };\n").unwrap_err();
    assert!(err.location.contains("w.rhai:1:"), "{err}");
}

#[test]
fn bad_values_say_what_is_wrong() {
    for (src, needle) in [
        ("phase(\"a\", #{ rps: 5 });", "give a duration"),
        ("phase(\"a\", #{ duration: -1 });", "greater than 0"),
        (
            "phase(\"a\", #{ duration: 1, rps: \"fast\" });",
            "rps must be a number",
        ),
        (
            "phase(\"a\", #{ duration: 1, arrival: \"poisson\" });",
            "needs a rate",
        ),
        (
            "phase(\"a\", #{ duration: 1, rps: 1, arrival: \"bursty\" });",
            "constant",
        ),
        (
            "phase(\"a\", #{ duration: 1 }); phase(\"a\", #{ duration: 1 });",
            "already exists",
        ),
        (
            "request(#{ endpoint: \"embeddings\", prompt: \"x\" });",
            "chat",
        ),
        ("request(#{ max_tokens: 3 });", "prompt is required"),
        ("request(#{ prompt: 5 });", "string or a list of messages"),
        ("target(#{ name: \"x\" });", "base_url is required"),
        (
            "target(#{ base_url: \"http://h/v1\", api_key_env: \"LLMBENCH_UNSET_VAR_X\" });",
            "may not read",
        ),
        ("request(#{ prompt: \"x\" });", "no phase"),
        ("phase(\"a\", #{ duration: 1 });", "no request"),
        ("let x = 0; loop { x += 1; }", "operations"),
    ] {
        let err = load_src(src).unwrap_err().to_string();
        assert!(err.contains(needle), "{src}\n  => {err}");
    }
}

#[test]
fn a_failing_prompt_function_names_the_script() {
    let plan = load_src(
        "request(#{ prompt: |i| if i > 1 { throw \"no more\" } else { `p${i}` } });\nphase(\"a\", #{ requests: 3 });",
    )
    .unwrap();
    let Prompt::Generated(g) = &plan.request.prompt else {
        panic!()
    };
    assert_eq!(g.generate(0).unwrap(), Content::Text("p0".into()));
    let err = g.generate(2).unwrap_err();
    assert!(
        err.contains("w.rhai:1:") && err.contains("no more"),
        "{err}"
    );
}

pub(super) fn load_in(
    dir: &Path,
    src: &str,
    overrides: &[(&str, &str)],
) -> Result<Plan, ScriptError> {
    let path = dir.join("w.rhai");
    std::fs::write(&path, src).unwrap();
    let o = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_with(&path, &Configs::new(dir.join("configs")), &o)
}

pub(super) const PHASE: &str = "phase(\"a\", #{ requests: 1 });";

#[test]
fn params_take_set_overrides_of_the_same_type() {
    let d = tempfile::tempdir().unwrap();
    let src =
        "let rps = param(\"rps\", 5); let d = param(\"duration\", 2.5); let label = param(\"label\", \"x\"); let on = param(\"on\", false);
         workload(label); request(#{ prompt: \"x\", stream: on }); phase(\"a\", #{ duration: d, rps: rps });";
    let plan = load_in(d.path(), src, &[]).unwrap();
    assert_eq!(
        (plan.phases[0].rate, plan.workload.as_str()),
        (Some(5.0), "x")
    );
    let plan = load_in(
        d.path(),
        src,
        &[
            ("rps", "20"),
            ("duration", "60"),
            ("label", "y"),
            ("on", "true"),
        ],
    )
    .unwrap();
    assert_eq!(plan.phases[0].rate, Some(20.0));
    assert_eq!(plan.phases[0].duration, Some(Duration::from_secs(60)));
    assert!(plan.request.stream && plan.workload == "y");
    for (set, needle) in [
        (("rps", "fast"), "a number"),
        (("rps", "inf"), "a number"),
        (("duration", "x"), "a number"),
        (("on", "1"), "true or false"),
        (("rsp", "3"), "no param(\"rsp\""),
    ] {
        let err = load_in(d.path(), src, &[set]).unwrap_err().to_string();
        assert!(err.contains(needle), "{set:?} => {err}");
    }
}

/// A numeric param takes any number: `--set from=2.5` for `param("from", 2)` gives a float,
/// `--set n=3` for `param("n", 1.5)` gives the float 3.0, a whole number for an integer default
/// stays an integer.
#[test]
fn a_numeric_param_takes_a_whole_number_or_a_fraction() {
    let d = tempfile::tempdir().unwrap();
    let src = format!(
        "let from = param(\"from\", 2); let n = param(\"n\", 1.5);
         workload(`${{type_of(from)}} ${{from}} ${{type_of(n)}} ${{n}}`); request(#{{ prompt: \"x\" }}); {PHASE}"
    );
    let workload = |sets: &[(&str, &str)]| load_in(d.path(), &src, sets).unwrap().workload;
    assert_eq!(workload(&[]), "i64 2 f64 1.5");
    assert_eq!(workload(&[("from", "2.5"), ("n", "3")]), "f64 2.5 f64 3.0");
    assert_eq!(workload(&[("from", "7")]), "i64 7 f64 1.5");
    let err = load_in(d.path(), &src, &[("from", "two")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--set from=two: param \"from\" is a number (its default is 2)"),
        "{err}"
    );
}

#[test]
fn slo_and_assertions() {
    let plan = load_src(&format!(
        r#"request(#{{ prompt: "x" }}); {PHASE}
        slo(#{{ ttft_ms: 500, tpot_ms: 50 }});
        assert("fast", |s| s.ttft_ms.p95 < 100.0);
        assert("p99", |s| s.phases.a.ttft_ms.p99, "<=", 200);
        assert("missing", |s| s.ttft_ms.p50, ">", 0);"#
    ))
    .unwrap();
    let slo = plan.slo.unwrap();
    assert_eq!(
        (slo.ttft_ms, slo.tpot_ms, slo.e2el_ms),
        (Some(500.0), Some(50.0), None)
    );
    let stats = serde_json::json!({
        "ttft_ms": {"p95": 80.0, "p50": null},
        "phases": {"a": {"ttft_ms": {"p99": 250.5}}},
    });
    let outcomes: Vec<_> = plan
        .assertions
        .iter()
        .map(|a| a.check.check(&stats).unwrap())
        .collect();
    assert!(outcomes[0].passed && outcomes[0].value == "true");
    assert!(
        !outcomes[1].passed && outcomes[1].value == "250.5 <= 200",
        "{:?}",
        outcomes[1]
    );
    assert!(!outcomes[2].passed && outcomes[2].value == "no data");

    let plan = load_src(&format!(
        r#"request(#{{ prompt: "x" }}); {PHASE} assert("bad", |s| s.nope.p95 < 1);"#
    ))
    .unwrap();
    let err = plan.assertions[0].check.check(&stats).unwrap_err();
    assert!(
        err.contains("assert \"bad\"") && err.contains("w.rhai:1:"),
        "{err}"
    );
    for (src, needle) in [
        ("slo(#{});", "at least one"),
        ("slo(#{ ttft: 5 });", "unknown option \"ttft\""),
        ("slo(#{ ttft_ms: -5 });", "greater than 0"),
        ("assert(\"x\", |s| 1, \"~\", 5);", "operator"),
        ("assert(\"x\", |s| 1, \"<\", \"5\");", "must be a number"),
    ] {
        let err = load_src(&format!("request(#{{ prompt: \"x\" }}); {PHASE} {src}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{src}\n  => {err}");
    }
}

#[test]
fn runaway_scripts_stop_with_a_clear_error() {
    for (src, needle) in [
        ("fn f(n) { f(n + 1) } f(0);", "stack overflow"),
        ("let s = \"x\"; loop { s += s; }", "too large"),
        ("let x = 0; loop { x += 1; }", "operations"),
    ] {
        let err = load_src(src).unwrap_err().to_string();
        assert!(err.to_lowercase().contains(needle), "{src}\n  => {err}");
    }
}

#[test]
fn ramps_steps_and_sweeps_become_phases() {
    use crate::plan::{Shape, SweepStep};
    let plan = load_src(
        r#"request(#{ prompt: "x" });
        phase("up", #{ duration: 10, rps: ramp(1, 21), concurrency: ramp(1, 8.5) });
        phase("stairs", #{ duration: 9, rps: steps([1, 2, 3]), concurrency: 4 });
        sweep(#{ concurrency: 32, probe: 5, steps: 3, low: 0.2, high: 1.0, duration: 10, attainment: 0.95 });"#,
    )
    .unwrap();
    let up = &plan.phases[0];
    assert_eq!(
        up.ramp.rate,
        Some(Shape::Linear {
            from: 1.0,
            to: 21.0
        })
    );
    assert_eq!((up.rate, up.concurrency), (Some(1.0), Some(8)));
    assert_eq!(up.expected_requests(), Some(110));
    assert_eq!(plan.phases[1].expected_requests(), Some(18));
    let names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "up",
            "stairs",
            "saturation",
            "sweep-1",
            "sweep-2",
            "sweep-3"
        ]
    );
    assert_eq!(plan.phases[2].sweep, Some(SweepStep::Saturation));
    assert_eq!(plan.phases[2].concurrency, Some(32));
    assert!(plan.phases[2].rate.is_none());
    assert!(
        matches!(plan.phases[4].sweep, Some(SweepStep::Fraction(f)) if (f - 0.6).abs() < 1e-12)
    );
    assert_eq!(plan.attainment, Some(0.95));
    for (src, needle) in [
        (
            "phase(\"a\", #{ requests: 5, rps: ramp(1, 2) });",
            "need a duration",
        ),
        (
            "phase(\"a\", #{ duration: 5, rps: ramp(0, 0) });",
            "not all 0",
        ),
        (
            "phase(\"a\", #{ duration: 5, rps: ramp(-1, 2) });",
            "0 or more",
        ),
        (
            "phase(\"a\", #{ duration: 5, rps: 2, concurrency: ramp(0, 2) });",
            "at least 1",
        ),
        (
            "phase(\"a\", #{ duration: 5, concurrency: ramp(1, 4) });",
            "needs rps",
        ),
        (
            "phase(\"a\", #{ duration: 5, rps: steps([]) });",
            "at least one value",
        ),
        (
            "phase(\"a\", #{ duration: 5, rps: ramp(\"a\", 2) });",
            "must be a number",
        ),
        ("sweep(#{ stpes: 3 });", "unknown option \"stpes\""),
        ("sweep(#{ low: 2, high: 1 });", "must not be above"),
        ("sweep(#{ attainment: 90 });", "at most 1"),
        ("sweep(#{}); sweep(#{});", "one sweep"),
        ("mock(#{ max_running: 0 });", "at least 1"),
    ] {
        let err = load_src(&format!("request(#{{ prompt: \"x\" }}); {src}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{src}\n  => {err}");
    }
}

#[test]
fn targets_and_models_from_configs_name_the_file_on_error() {
    let d = tempfile::tempdir().unwrap();
    let configs = d.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    std::fs::write(
        configs.join("targets.yaml"),
        "targets:\n  - name: local\n    base_url: http://127.0.0.1:9/v1\n",
    )
    .unwrap();
    std::fs::write(
        configs.join("models.yaml"),
        "models:\n  - name: m\n    full_name: org/M\n",
    )
    .unwrap();
    let plan = load_in(
        d.path(),
        &format!("target(\"local\"); model(\"m\"); workload(\"w1\"); request(#{{ prompt: \"x\" }}); {PHASE}"),
        &[],
    )
    .unwrap();
    assert_eq!(plan.target.unwrap().base_url, "http://127.0.0.1:9/v1");
    assert_eq!(
        (plan.model.as_deref(), plan.workload.as_str()),
        (Some("org/M"), "w1")
    );
    let err = load_in(d.path(), "target(\"remote\");", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("targets.yaml") && err.contains("local") && err.contains("w.rhai:1:1"),
        "{err}"
    );
    std::fs::write(configs.join("models.yaml"), "models: [").unwrap();
    let err = load_in(d.path(), "model(\"m\");", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("models.yaml"), "{err}");
    let err = load_in(d.path(), "let ds = dataset(\"d.jsonl\");", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read"), "{err}");
    std::fs::write(d.path().join("d.jsonl"), "\"a\"\n").unwrap();
    let err = load_in(d.path(), "dataset(\"d.jsonl\").get(-1);", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("0 or more"), "{err}");
}
