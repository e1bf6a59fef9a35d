//! Tests of what a request sends: request shapes, prompt functions and the prompt built-ins,
//! datasets, imports and the shipped script library.

use std::time::Duration;

use super::tests::{PHASE, load_in, load_src};
use super::*;
use crate::plan::{Content, Prompt};

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
    for (name, text) in crate::script::shipped::LIBRARY {
        assert_eq!(
            std::fs::read_to_string(root.join(name)).unwrap(),
            text,
            "{name}"
        );
    }
    let listed = std::fs::read_dir(root.join("lib")).unwrap().count();
    assert_eq!(
        listed,
        crate::script::shipped::LIBRARY.len(),
        "every scripts/lib file is built in"
    );
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
