//! Request cancellation against the mock: a phase's `cancel: #{ share, after_ms }` abandons
//! exactly the seeded set of requests (`CancelSpec::cancels`, the same on every run), each
//! `after_ms` after its send, recorded as `cancelled_by_client`; the statistics keep them apart
//! from failures (success rate over the rest; their own CSV column, last), and the mock saw
//! each of their connections close before the answer ended.

mod common;

use std::time::Duration;

use llmbench::plan::CancelSpec;
use llmbench::record::Outcome;

const REQUESTS: u64 = 40;
const AFTER_MS: u64 = 80;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_seeded_share_is_cancelled_after_its_delay_and_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    // Each answer takes 50 + 19 × 10 = 240 ms, well past the cancel delay.
    let server = common::mock(50, 10, 20);
    let mut plan = common::plan(
        dir.path(),
        &format!(
            r#"request(#{{ prompt: |i| `question ${{i}}` }});
               phase("p", #{{ requests: {REQUESTS}, concurrency: 10, seed: 5,
                              cancel: #{{ share: 0.25, after_ms: {AFTER_MS} }} }});"#
        ),
    );
    common::target(&mut plan, &server);
    let spec = CancelSpec {
        share: 0.25,
        after: Duration::from_millis(AFTER_MS),
        seed: 5,
    };
    let (outcome, records) = common::run(plan, dir.path()).await;
    assert_eq!(records.len(), REQUESTS as usize);
    let want: Vec<u64> = (0..REQUESTS).filter(|i| spec.cancels(*i)).collect();
    assert!(
        (4..=16).contains(&want.len()),
        "about a quarter: {}",
        want.len()
    );
    let mut got: Vec<u64> = records
        .iter()
        .filter(|r| r.outcome == Outcome::CancelledByClient)
        .map(|r| r.id)
        .collect();
    got.sort_unstable();
    let others: Vec<_> = records
        .iter()
        .filter(|r| r.outcome != Outcome::Ok)
        .map(|r| (r.id, r.outcome, r.error.clone()))
        .collect();
    assert_eq!(got, want, "exactly the seeded set: {others:?}");
    for r in &records {
        if r.outcome == Outcome::CancelledByClient {
            let after_us = r.end_us - r.sent_us.unwrap();
            assert!(
                (AFTER_MS * 1000..AFTER_MS * 1000 + 40_000).contains(&after_us),
                "request {} cancelled {after_us} µs after its send",
                r.id
            );
            assert!(
                r.error
                    .as_deref()
                    .unwrap()
                    .contains("cancelled by the client")
            );
        } else {
            assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        }
    }
    let a = &outcome.summary.all;
    assert_eq!(a.cancelled_by_client, want.len() as u64);
    assert_eq!(a.failed, 0);
    assert_eq!(a.ok, REQUESTS - want.len() as u64);
    assert_eq!(
        a.success_rate, 100.0,
        "success over the requests not cancelled"
    );
    assert!(
        !outcome
            .warnings
            .iter()
            .any(|w| matches!(w, llmbench::stats::Warning::Failed { .. })),
        "{:?}",
        outcome.warnings
    );
    let csv = std::fs::read_to_string(&outcome.files().unwrap().csv).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header.last(), Some(&"cancelled_by_client"));
    let all = csv.lines().find(|l| l.starts_with("all,")).unwrap();
    assert_eq!(
        all.rsplit(',').next(),
        Some(want.len().to_string().as_str())
    );
    // The mock saw each cancelled request's connection close before its answer ended.
    let mut gone = 0;
    for _ in 0..100 {
        gone = server.stats().client_gone;
        if gone >= want.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gone, want.len() as u64);
    assert_eq!(server.stats().completed, REQUESTS - want.len() as u64);
}

#[test]
fn a_cancel_share_outside_0_to_1_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.rhai");
    std::fs::write(
        &path,
        r#"request(#{ prompt: "q" }); phase("p", #{ requests: 2, cancel: #{ share: 1.5, after_ms: 10 } });"#,
    )
    .unwrap();
    let err = llmbench::script::load(
        &path,
        &llmbench::config::Configs::new(dir.path().join("configs")),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("share is a fraction"), "{err}");
}
