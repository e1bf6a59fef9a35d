//! Tests of the warnings.

use super::*;
use crate::stats::summarize;
use crate::stats::tests::rec;

#[test]
fn warnings_compare_the_request_with_what_happened() {
    let records: Vec<_> = (0..200)
        .map(|i| rec(i, 0, i * 1000, 1000, 1000, 10 + i % 3))
        .collect();
    let s = summarize(&records);
    let none = s.warnings(&Requested::default());
    assert!(none.is_empty(), "{none:?}");
    let w = s.warnings(&Requested {
        max_tokens: Some(12),
        fixed_prompt: true,
    });
    assert!(
        matches!(
            w.as_slice(),
            [
                Warning::FewerTokens {
                    asked: 12,
                    counter: TokenCounter::Server,
                    min: 10.0,
                    ..
                },
                Warning::FixedPrompt
            ]
        ),
        "{w:?}"
    );
    let exact: Vec<_> = (0..200)
        .map(|i| rec(i, 0, i * 1000, 1000, 1000, 12))
        .collect();
    let w = summarize(&exact).warnings(&Requested {
        max_tokens: Some(12),
        fixed_prompt: false,
    });
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn a_warning_serializes_as_its_message() {
    let w = Warning::FewSamples { ok: 3 };
    assert_eq!(
        serde_json::to_value(&w).unwrap(),
        serde_json::Value::String(w.to_string())
    );
    assert!(w.to_string().starts_with("Only 3 successful requests"));
}

/// The records of `rec`, 200 of them, one every 10 ms, in phase p0.
fn steady() -> Vec<crate::record::RequestRecord> {
    (0..200)
        .map(|i| rec(i, 0, i * 10_000, 50_000, 1000, 12))
        .collect()
}

#[test]
fn output_lengths_say_who_counted_and_which_way() {
    let asked = |n| Requested {
        max_tokens: Some(n),
        fixed_prompt: false,
    };
    // The server's usage says 12 tokens; 10 were asked: more, counted by the server.
    let w = summarize(&steady()).warnings(&asked(10));
    assert!(
        matches!(
            w.as_slice(),
            [Warning::MoreTokens {
                asked: 10,
                counter: TokenCounter::Server,
                max: 12.0
            }]
        ),
        "{w:?}"
    );
    // llmbench counted 12 chunks where 16 tokens were asked: fewer, counted by llmbench.
    let mut chunks = steady();
    for r in &mut chunks {
        r.tokens_source = crate::record::TokenSource::Chunks;
    }
    let w = summarize(&chunks).warnings(&asked(16));
    assert!(
        w.contains(&Warning::FewerTokens {
            asked: 16,
            counter: TokenCounter::Chunks,
            min: 12.0,
            mean: 12.0
        }),
        "{w:?}"
    );
    assert!(!w.iter().any(|w| matches!(w, Warning::MoreTokens { .. })));
    assert!(
        w.iter()
            .any(|w| matches!(w, Warning::TokensFromChunks { requests: 200 }))
    );
    chunks[0].tokens_source = crate::record::TokenSource::Usage;
    let w = summarize(&chunks).warnings(&asked(16));
    assert!(
        w.iter().any(|w| matches!(
            w,
            Warning::FewerTokens {
                counter: TokenCounter::Mixed,
                ..
            }
        )),
        "{w:?}"
    );
}

#[test]
fn lateness_is_checked_in_every_phase_and_names_it() {
    // Phase p0 on time; in phase p1 (100 requests) two were released 273 ms late against a
    // 75 ms TTFT: p1's p99 shows it, the `all` row's p99 (over 300 requests) hides it.
    let mut records = steady();
    for i in 0..100 {
        let mut r = rec(200 + i, 1, 3_000_000 + i * 10_000, 75_000, 1000, 12);
        if i < 2 {
            r.dispatched_us = r.intended_us;
            r.intended_us -= 273_000;
        }
        records.push(r);
    }
    let w = summarize(&records).warnings(&Requested::default());
    let late: Vec<_> = w
        .iter()
        .filter(|w| matches!(w, Warning::BehindSchedule { .. }))
        .collect();
    assert!(
        matches!(late.as_slice(), [Warning::BehindSchedule { phase, lateness_p99_ms, .. }] if phase == "p1" && *lateness_p99_ms > 270.0),
        "{w:?}"
    );
    assert!(
        behind_schedule(1.5, 10.0) && !behind_schedule(0.9, 1.0) && !behind_schedule(4.0, 100.0)
    );
}

#[test]
fn a_server_that_falls_behind_is_named_not_the_cap() {
    // Offered 2 req/s for 12 s (24 arrivals, all sent on time); the server answered one
    // request every 2 s, in order, so they completed at 0.5 req/s.
    let records: Vec<_> = (0..24)
        .map(|i| {
            let mut r = rec(i, 0, i * 500_000, 50_000, 1000, 12);
            r.end_us = (i + 1) * 2_000_000;
            r.last_token_us = Some(r.end_us);
            r
        })
        .collect();
    let w = summarize(&records).warnings(&Requested::default());
    assert!(
        matches!(
            w.as_slice(),
            [Warning::FellBehind { phase, offered_req_per_s, completed_req_per_s, client_late: false }, Warning::FewSamples { .. }]
                if phase == "p0" && (offered_req_per_s - 2.0).abs() < 1e-9 && (completed_req_per_s - 0.5).abs() < 1e-9
        ),
        "{w:?}"
    );
    // A server that keeps up: no such warning.
    let w = summarize(&steady()).warnings(&Requested::default());
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn empty_answers_are_counted_and_warned() {
    let mut records = steady();
    for r in records.iter_mut().take(3) {
        r.output_tokens = 0;
        r.content_chunks = 0;
        r.first_token_us = None;
        r.first_answer_us = None;
        r.last_token_us = None;
        r.chunk_offsets_us.clear();
    }
    let s = summarize(&records);
    assert_eq!(s.all.empty_answers, 3);
    assert_eq!(s.all.metric(Metric::TtftMs).count, 197);
    let w = s.warnings(&Requested::default());
    assert_eq!(w, vec![Warning::EmptyAnswers { empty: 3, ok: 200 }]);
}

#[test]
fn a_cache_hit_on_the_runs_first_request_is_a_warm_cache() {
    // 200 requests, the first (by intended start) a warmup; each later one reuses the one
    // before it, as a prefix cache does.
    let records = |first_cached: u64| -> Vec<crate::record::RequestRecord> {
        (0..200)
            .map(|i| {
                let mut r = rec(i, 0, i * 1000, 1000, 1000, 10);
                r.warmup = i == 0;
                r.input_tokens = Some(100);
                r.cached_tokens = Some(if i == 0 { first_cached } else { 64 });
                r
            })
            .rev() // completion order need not be intended order
            .collect()
    };
    let warm = summarize(&records(48)).warnings(&Requested::default());
    assert_eq!(
        warm,
        [Warning::WarmCache {
            cached_tokens: 48,
            prompt_tokens: Some(100)
        }]
    );
    let text = warm[0].to_string();
    assert!(
        text.contains("found 48 of its 100 prompt tokens already"),
        "{text}"
    );
    // A cold start: the first request found nothing, the later hits are the run's own.
    assert!(
        summarize(&records(0))
            .warnings(&Requested::default())
            .is_empty()
    );
    // No usage on the first request: nothing to go by.
    let mut unknown = records(48);
    unknown.last_mut().unwrap().cached_tokens = None;
    assert!(
        summarize(&unknown)
            .warnings(&Requested::default())
            .is_empty()
    );
}
