//! Tests of the DSL: every function, its options and its error cases.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::plan::{Arrival, Content, Endpoint, Prompt};

fn load_src(src: &str) -> Result<Plan, ScriptError> {
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

fn load_in(dir: &Path, src: &str, overrides: &[(&str, &str)]) -> Result<Plan, ScriptError> {
    let path = dir.join("w.rhai");
    std::fs::write(&path, src).unwrap();
    let o = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_with(&path, &Configs::new(dir.join("configs")), &o)
}

fn generated(plan: &Plan) -> &dyn crate::plan::PromptGenerator {
    match &plan.request.prompt {
        Prompt::Generated(g) => g.as_ref(),
        other => panic!("a generated prompt, not {other:?}"),
    }
}

fn text(c: Content) -> String {
    match c {
        Content::Text(t) => t,
        other => panic!("text, not {other:?}"),
    }
}

const PHASE: &str = "phase(\"a\", #{ requests: 1 });";

#[test]
fn request_shapes_system_body_headers_and_messages() {
    let plan = load_src(&format!(
        r#"request(#{{ prompt: [#{{ role: "user", content: "hi" }}, #{{ role: "assistant", content: "yo" }}],
            system: "be brief", stream: false,
            body: #{{ temperature: 0.2, top_p: 0.9, ignore_eos: true, seed: 7, extra: #{{ a: [1, 2] }} }},
            headers: #{{ "x-team": "bench" }} }}); {PHASE}"#
    ))
    .unwrap();
    let r = &plan.request;
    assert!(matches!(&r.prompt, Prompt::Messages(m) if m.len() == 2 && m[1].role == "assistant"));
    assert_eq!(r.system.as_deref(), Some("be brief"));
    assert!(!r.stream);
    assert_eq!(r.body["temperature"], serde_json::json!(0.2));
    assert_eq!(r.body["ignore_eos"], serde_json::json!(true));
    assert_eq!(r.body["extra"], serde_json::json!({"a": [1, 2]}));
    assert_eq!(r.headers, vec![("x-team".to_owned(), "bench".to_owned())]);
    let shown = serde_json::to_string(&plan.request).unwrap();
    assert!(
        !shown.contains("bench"),
        "header values are redacted: {shown}"
    );
}

#[test]
fn request_shape_errors() {
    for (src, needle) in [
        (
            "request(#{ prompt: \"x\", body: #{ max_tokens: 5 } });",
            "body.max_tokens",
        ),
        (
            "request(#{ prompt: \"x\", body: #{ stream: true } });",
            "request option stream",
        ),
        (
            "request(#{ prompt: \"x\", body: 5 });",
            "body must be a map",
        ),
        (
            "request(#{ prompt: \"x\", headers: #{ a: 1 } });",
            "must be a string",
        ),
        (
            "request(#{ prompt: \"x\", headers: \"a\" });",
            "headers must be a map",
        ),
        (
            "request(#{ endpoint: \"completions\", prompt: \"x\", system: \"s\" });",
            "need endpoint \"chat\"",
        ),
        ("request(#{ prompt: [] });", "empty"),
        ("request(#{ prompt: [#{ role: \"user\" }] });", "message 0"),
        ("request(#{ prompt: \"x\", seed: -1 });", "0 or more"),
    ] {
        let err = load_src(&format!("{src} {PHASE}")).unwrap_err().to_string();
        assert!(err.contains(needle), "{src}\n  => {err}");
    }
}

#[test]
fn prompt_functions_get_a_seeded_generator() {
    let plan = load_src(&format!(
        "request(#{{ prompt: |i, rng| `${{i}} ${{rng.words(5)}} ${{rng.int(1, 6)}}`, seed: 3 }}); {PHASE}"
    ))
    .unwrap();
    let g = generated(&plan);
    let a = text(g.generate(4).unwrap());
    assert_eq!(a, text(g.generate(4).unwrap()), "same index, same prompt");
    assert_ne!(a, text(g.generate(5).unwrap()));
    assert!(a.starts_with("4 ") && a.split(' ').count() == 7, "{a}");
    let other_seed = load_src(&format!(
        "request(#{{ prompt: |i, rng| `${{i}} ${{rng.words(5)}} ${{rng.int(1, 6)}}`, seed: 4 }}); {PHASE}"
    ))
    .unwrap();
    assert_ne!(a, text(generated(&other_seed).generate(4).unwrap()));
}

#[test]
fn prompt_built_ins() {
    let plan = load_src(&format!(
        r#"let r = rng(1);
        let x = r.float();
        if x < 0.0 || x >= 1.0 {{ throw "float out of range"; }}
        if r.pick([7]) != 7 {{ throw "pick"; }}
        if words(3).split(" ").len() != 3 {{ throw "words"; }}
        if count_tokens(tokens(37, "o200k_base"), "o200k_base") != 37 {{ throw "tokens"; }}
        if shared_prefix(16) != shared_prefix(16) {{ throw "prefix"; }}
        if count_tokens(shared_prefix(16, "cl100k_base"), "cl100k_base") != 16 {{ throw "prefix len"; }}
        request(#{{ prompt: |i| shared_prefix(8) + " " + words(4) }}); {PHASE}"#
    ))
    .unwrap();
    let g = generated(&plan);
    let (a, b) = (text(g.generate(0).unwrap()), text(g.generate(1).unwrap()));
    assert_ne!(a, b, "distinct prompts by default");
    let prefix: Vec<&str> = a.split(' ').collect();
    assert!(
        b.starts_with(&prefix[..prefix.len() - 4].join(" ")),
        "{a} / {b}"
    );
}

#[test]
fn prompt_built_in_errors() {
    for (src, needle) in [
        ("rng(1).int(5, 1);", "low end"),
        ("rng(1).pick([]);", "empty"),
        ("words(-1);", "0 or more"),
        ("tokens(5, \"gpt9\");", "cl100k_base"),
        ("dataset(\"missing.jsonl\");", "cannot read"),
        (
            "dataset(\"/etc/hostname\");",
            "relative to the script's folder",
        ),
        ("dataset(\"../secrets.jsonl\");", "without \"..\""),
    ] {
        let err = load_src(&format!("{src} request(#{{ prompt: \"x\" }}); {PHASE}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(needle) && err.contains("w.rhai:1:"),
            "{src}\n  => {err}"
        );
    }
    let plan = load_src(&format!("request(#{{ prompt: |i| 5 }}); {PHASE}")).unwrap();
    let err = generated(&plan).generate(0).unwrap_err();
    assert!(err.contains("string or a list of messages"), "{err}");
}

#[test]
fn datasets_are_read_beside_the_script_and_sampled() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("p.jsonl"),
        "{\"prompt\":\"alpha\"}\n{\"messages\":[{\"role\":\"user\",\"content\":\"beta\"}]}\n",
    )
    .unwrap();
    let plan = load_in(
        d.path(),
        &format!(
            "let ds = dataset(\"p.jsonl\"); if ds.len() != 2 {{ throw \"len\"; }}
            request(#{{ prompt: |i, rng| if i < 2 {{ ds.get(i) }} else {{ ds.sample(rng) }} }}); {PHASE}"
        ),
        &[],
    )
    .unwrap();
    let g = generated(&plan);
    assert_eq!(g.generate(0).unwrap(), Content::Text("alpha".into()));
    assert!(matches!(g.generate(1).unwrap(), Content::Messages(m) if m[0].content == "beta"));
    let sampled: Vec<Content> = (2..40).map(|i| g.generate(i).unwrap()).collect();
    assert!(sampled.contains(&Content::Text("alpha".into())));
    assert!(sampled.iter().any(|c| matches!(c, Content::Messages(_))));
}

#[test]
fn imports_resolve_from_the_script_folder_then_scripts_then_the_search_path() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("lib")).unwrap();
    std::fs::write(
        d.path().join("lib/mine.rhai"),
        "fn hello(i) { `mine ${i}` }",
    )
    .unwrap();
    let extra = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(extra.path().join("lib")).unwrap();
    std::fs::write(
        extra.path().join("lib/llmbench_test_extra.rhai"),
        "fn twice(x) { x * 2 }\nfn broken() { undefined_thing() }",
    )
    .unwrap();
    // SAFETY: only this test reads the variable, and it names a module no other test imports.
    unsafe { std::env::set_var(SCRIPT_PATH_VAR, extra.path()) };
    let plan = load_in(
        d.path(),
        &format!(
            r#"import "lib/mine" as mine;
            import "lib/prompts" as prompts;
            import "lib/llmbench_test_extra" as extra;
            if extra::twice(2) != 4 {{ throw "extra"; }}
            request(#{{ prompt: |i, rng| mine::hello(i) + " " + prompts::question(rng, 3) }}); {PHASE}"#
        ),
        &[],
    )
    .unwrap();
    let p = text(generated(&plan).generate(2).unwrap());
    assert!(p.starts_with("mine 2 Answer in one paragraph:"), "{p}");

    let err = load_in(d.path(), "import \"lib/nope\" as n;", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no such script") && err.contains(SCRIPT_PATH_VAR),
        "{err}"
    );
    let err = load_in(
        d.path(),
        "import \"lib/llmbench_test_extra\" as extra;\nextra::broken();",
        &[],
    )
    .unwrap_err();
    assert!(
        err.location.ends_with("llmbench_test_extra.rhai:2:15"),
        "the error names the library file: {err}"
    );
    std::fs::write(d.path().join("lib/bad.rhai"), "fn f( {").unwrap();
    let err = load_in(d.path(), "import \"lib/bad\" as b;", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.rhai:1:"), "{err}");
}

#[test]
fn the_built_in_library_is_a_copy_of_scripts_lib() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    for (name, text) in EMBEDDED {
        assert_eq!(
            std::fs::read_to_string(root.join(name)).unwrap(),
            text,
            "{name}"
        );
    }
    let listed = std::fs::read_dir(root.join("lib")).unwrap().count();
    assert_eq!(listed, EMBEDDED.len(), "every scripts/lib file is built in");
}

#[test]
fn standard_workloads_send_exact_token_prompts() {
    let d = tempfile::tempdir().unwrap();
    let plan = load_in(
        d.path(),
        "import \"lib/workloads\" as w; w::standard(\"medium-load\");",
        &[("input_tokens", "100")],
    )
    .unwrap();
    assert_eq!(plan.workload, "medium-load");
    let p = &plan.phases[0];
    assert_eq!((p.rate, p.concurrency), (Some(5.0), Some(10)));
    assert_eq!(p.duration, Some(Duration::from_secs(300)));
    let prompt = text(generated(&plan).generate(0).unwrap());
    let bpe = tokens::encoding("cl100k_base").unwrap();
    assert_eq!(bpe.encode_ordinary(&prompt).len(), 100);
    assert_eq!(plan.params["input_tokens"], "100");
}

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
        (("rps", "fast"), "whole number"),
        (("duration", "x"), "a number"),
        (("on", "1"), "true or false"),
        (("rsp", "3"), "no param(\"rsp\""),
    ] {
        let err = load_in(d.path(), src, &[set]).unwrap_err().to_string();
        assert!(err.contains(needle), "{set:?} => {err}");
    }
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
fn every_library_function_evaluates() {
    let d = tempfile::tempdir().unwrap();
    let plan = load_in(
        d.path(),
        r#"import "lib/prompts" as prompts;
        import "lib/ramps" as ramps;
        import "lib/slo" as slo;
        request(#{ prompt: |i, rng| switch i % 6 {
            0 => prompts::exact(rng, 12),
            1 => prompts::question(rng, 5),
            2 => prompts::summarize(rng, 5),
            3 => prompts::with_shared_prefix(rng, 8, 4),
            4 => prompts::chat("sys", "hello"),
            _ => prompts::conversation(rng, 2, 3),
        } });
        ramps::warmup(2, 1);
        ramps::staircase([1, 2], 5, 4);
        ramps::users([1, 3], 5);
        ramps::linear("climb", 1, 9, 10, 8);
        slo::batch(9000);
        slo::relaxed();
        slo::interactive();
        slo::gate(400);"#,
        &[],
    )
    .unwrap();
    let names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["warmup", "1rps", "2rps", "1users", "3users", "climb"]
    );
    assert_eq!(plan.phases[5].expected_requests(), Some(50));
    assert_eq!(
        plan.slo.unwrap().ttft_ms,
        Some(500.0),
        "the last SLO call wins"
    );
    assert_eq!(plan.assertions.len(), 2);
    let g = generated(&plan);
    let bpe = tokens::encoding("cl100k_base").unwrap();
    assert_eq!(bpe.encode_ordinary(&text(g.generate(0).unwrap())).len(), 12);
    assert!(text(g.generate(2).unwrap()).starts_with("Summarize"));
    let p3 = text(g.generate(3).unwrap());
    assert!(
        p3.starts_with(&text(g.generate(9).unwrap())[..20]),
        "shared prefix"
    );
    assert!(matches!(g.generate(4).unwrap(), Content::Messages(m) if m[0].role == "system"));
    assert!(matches!(g.generate(5).unwrap(), Content::Messages(m) if m.len() == 5));
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
