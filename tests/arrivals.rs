//! Open-loop arrivals through the whole pipeline against a mock that answers quickly: the
//! count a duration-bound constant phase sends is exact whatever the machine's load (the
//! schedule, not the clock, decides it). The arrival processes themselves are tested exactly on
//! tokio's paused clock next to the scheduler (`schedule::tests`).

mod common;

use llmbench::record::Outcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constant_phase_sends_exactly_rate_times_duration() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(1, 1, 2);
    let mut plan = common::plan(
        dir.path(),
        "request(#{ max_tokens: 2, prompt: |i| `p ${i}` });\nphase(\"c\", #{ duration: 2, rps: 20 });",
    );
    common::target(&mut plan, &server);
    let (_, records) = common::run(plan, dir.path()).await;
    assert_eq!(records.len(), 40);
    assert!(records.iter().all(|r| r.outcome == Outcome::Ok));
    let mut intended: Vec<u64> = records.iter().map(|r| r.intended_us).collect();
    intended.sort();
    for (k, w) in intended.windows(2).enumerate() {
        assert!(
            (w[1] - w[0]).abs_diff(50_000) <= 1,
            "arrival {k}: 50 ms apart: {w:?}"
        );
    }
}
