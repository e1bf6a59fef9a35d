//! Open-loop arrival counts against a mock that answers quickly.

mod common;

use llmbench::record::Outcome;

async fn sent(phase: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(1, 1, 2);
    let mut plan = common::plan(
        dir.path(),
        &format!("request(#{{ max_tokens: 2, prompt: |i| `p ${{i}}` }});\n{phase}"),
    );
    common::target(&mut plan, &server);
    let (_, records) = common::run(plan, dir.path()).await;
    assert!(records.iter().all(|r| r.outcome == Outcome::Ok));
    records.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisson_phase_sends_rate_times_duration() {
    let n = sent(r#"phase("p", #{ duration: 10, rps: 50, arrival: "poisson", seed: 3 });"#).await;
    assert!((430..=570).contains(&n), "{n} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constant_phase_sends_exactly_rate_times_duration() {
    let n = sent(r#"phase("c", #{ duration: 10, rps: 20 });"#).await;
    assert!((199..=201).contains(&n), "{n} requests");
}
