//! Tests of per-request shapes through a whole script: a prompt function returning a map, the
//! `lengths::*` distributions drawn from the request's own generator, and dataset lengths.

use super::lengths::{Bounds, lognormal, uniform};
use super::prompts::Rng;
use super::tests::{PHASE, load_in, load_src};
use crate::plan::{Content, Plan, Prompt, PromptGenerator, RequestShape};

fn generated(plan: &Plan) -> &dyn PromptGenerator {
    match &plan.request.prompt {
        Prompt::Generated(g) => g.as_ref(),
        other => panic!("a generated prompt, not {other:?}"),
    }
}

#[test]
fn a_map_return_shapes_each_request_from_its_own_generator() {
    let plan = load_src(&format!(
        r#"request(#{{ seed: 11, max_tokens: 64, prompt: |i, rng| #{{
               max_tokens: lengths::lognormal(rng, 200, 80, #{{ max: 1000 }}),
               prompt: `q ${{i}}`,
               label: if i % 2 == 0 {{ "even" }} else {{ "odd" }},
               body: #{{ temperature: 0.1 }},
               headers: #{{ "x-class": "c" }} }} }}); {PHASE}"#
    ))
    .unwrap();
    let g = generated(&plan);
    let b = Bounds { min: 1, max: 1000 };
    for i in 0..20 {
        let s: RequestShape = g.shape(i).unwrap();
        let want = lognormal(&mut Rng::for_request(11, i), 200.0, 80.0, b).unwrap();
        assert_eq!(s.max_tokens, Some(want as u32), "request {i}");
        assert_eq!(s.content, Content::Text(format!("q {i}")));
        assert_eq!(s.label.as_deref(), Some(["even", "odd"][i as usize % 2]));
        assert_eq!(s.body["temperature"], 0.1);
        assert_eq!(s.headers, vec![("x-class".into(), "c".into())]);
        assert_eq!(g.shape(i).unwrap(), s, "the same on every call");
    }
    // A plain string return keeps working, and generate gives the content alone.
    assert_eq!(g.generate(3).unwrap(), Content::Text("q 3".into()));
}

#[test]
fn each_draw_advances_the_request_generator() {
    let plan = load_src(&format!(
        r#"request(#{{ prompt: |i, rng| {{
               let a = lengths::uniform(rng, 1, 1000000);
               let b = lengths::uniform(rng, 1, 1000000);
               `${{a}} ${{b}}` }} }}); {PHASE}"#
    ))
    .unwrap();
    let Content::Text(t) = generated(&plan).generate(0).unwrap() else {
        panic!()
    };
    let mut rng = Rng::for_request(0, 0);
    let b = Bounds::default();
    let want = format!(
        "{} {}",
        uniform(&mut rng, 1, 1_000_000, b).unwrap(),
        uniform(&mut rng, 1, 1_000_000, b).unwrap()
    );
    assert_eq!(t, want);
}

#[test]
fn bad_shapes_and_lengths_name_the_script_and_the_request() {
    let plan = load_src(&format!(
        r#"request(#{{ prompt: |i, rng| #{{ prompt: "x", max_tokens: lengths::normal(rng, -1, 2) }} }}); {PHASE}"#
    ))
    .unwrap();
    let err = generated(&plan).shape(0).unwrap_err();
    assert!(err.contains("lengths::normal: the mean"), "{err}");
    let plan = load_src(&format!(
        r#"request(#{{ prompt: |i| #{{ prompt: "x", max_token: 5 }} }}); {PHASE}"#
    ))
    .unwrap();
    let err = generated(&plan).shape(2).unwrap_err();
    assert!(
        err.contains("request 2") && err.contains("unknown key \"max_token\""),
        "{err}"
    );
}

#[test]
fn datasets_give_their_own_output_lengths() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("l.jsonl"),
        "{\"prompt\":\"a\",\"max_tokens\":12}\n{\"prompt\":\"b\",\"output_tokens\":7}\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("s.json"),
        r#"[{"conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"hello there, friend"}]}]"#,
    )
    .unwrap();
    let plan = load_in(
        d.path(),
        &format!(
            r#"let l = dataset("l.jsonl"); let s = dataset("s.json");
               request(#{{ prompt: |i, rng| #{{ prompt: l.get(i),
                   max_tokens: lengths::from_dataset(l, i) + lengths::from_dataset(s, 0, "cl100k_base") * 1000
                       + lengths::from_dataset(rng, l) * 0 }} }}); {PHASE}"#
        ),
        &[],
    )
    .unwrap();
    let g = generated(&plan);
    let answer = super::tokens::encoding("cl100k_base")
        .unwrap()
        .encode_ordinary("hello there, friend")
        .len() as u32;
    assert_eq!(g.shape(0).unwrap().max_tokens, Some(12 + answer * 1000));
    assert_eq!(g.shape(1).unwrap().max_tokens, Some(7 + answer * 1000));

    let plan = load_in(
        d.path(),
        &format!(
            r#"let s = dataset("s.json"); request(#{{ prompt: |i, rng| #{{ prompt: "p", max_tokens: lengths::from_dataset(rng, s) }} }}); {PHASE}"#
        ),
        &[],
    )
    .unwrap();
    let err = generated(&plan).shape(0).unwrap_err();
    assert!(err.contains("name an encoding"), "{err}");
}
