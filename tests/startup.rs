//! Start-up costs stay out of the measurements: whatever a run must load before its first
//! request (a tokenizer for `tokens(...)` prompts) is ready before the first phase's clock
//! starts, so the first request is not late. Each run is its own `llmbench` process, so every
//! one starts with nothing loaded.

mod common;

use common::{llmbench, raw_records};

/// Runs a three-request open-loop script whose prompts are exact-length token prompts, against
/// the built-in mock, and returns request 0's scheduler lateness in ms.
fn first_request_lateness_ms() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tokens.rhai");
    std::fs::write(
        &script,
        "mock(#{ ttft_ms: 1, itl_ms: 1, output_tokens: 2 });\n\
         request(#{ max_tokens: 2, prompt: |i, rng| rng.tokens(256, \"cl100k_base\") });\n\
         phase(\"p\", #{ requests: 3, rps: 20 });\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = llmbench()
        .arg(&script)
        .arg("--no-progress")
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = raw_records(&results);
    let first = records.iter().find(|r| r.id == 0).expect("request 0");
    first.lateness_us() as f64 / 1e3
}

#[test]
fn the_first_request_of_a_tokens_prompt_run_is_not_late() {
    // Loading the tokenizer takes ~100 ms; were it loaded after the phase started, request 0
    // would be that late in every run. The median of five fresh processes holds on a busy
    // machine (a run preempted once does not move it) and still catches the load.
    let lateness: Vec<f64> = (0..5).map(|_| first_request_lateness_ms()).collect();
    let median = common::median(lateness.clone());
    assert!(
        median < 20.0,
        "request 0 is {median:.1} ms late (median of {lateness:?})"
    );
}
