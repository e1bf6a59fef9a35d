//! The measured numbers against the mock's injected timing, on 127.0.0.1.

mod common;

use std::collections::BTreeSet;

use llmbench::record::{Outcome, TokenSource};
use llmbench::stats::Metric;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttft_tpot_and_tokens_match_the_injected_timing() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(100, 10, 50);
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ max_tokens: 50, prompt: |i| `question ${i}` });
           phase("one", #{ requests: 12, concurrency: 1 });"#,
    );
    common::target(&mut plan, &server);
    let (finished, records) = common::run(plan, dir.path()).await;

    assert_eq!(records.len(), 12);
    for r in &records {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.output_tokens, 50, "exactly the injected token count");
        assert_eq!(r.tokens_source, TokenSource::Usage);
        assert_eq!(r.content_chunks, 50);
        assert_eq!(r.input_tokens, Some(2), "two words in the prompt");
    }
    let s = &finished.summary.all;
    assert_eq!(s.success_rate, 100.0);
    let ttft = s.metric(Metric::TtftMs).p50.unwrap();
    let tpot = s.metric(Metric::TpotMs).p50.unwrap();
    assert!((ttft - 100.0).abs() <= 3.0, "TTFT median {ttft} ms");
    assert!((tpot - 10.0).abs() <= 1.0, "TPOT median {tpot} ms");
    // The same from the raw records, independently of the histograms.
    let raw_ttft = common::median(
        records
            .iter()
            .map(|r| r.ttft_us().unwrap() as f64 / 1e3)
            .collect(),
    );
    assert!((raw_ttft - 100.0).abs() <= 3.0, "{raw_ttft}");
    let itl = s.metric(Metric::ItlMs).p50.unwrap();
    assert!((itl - 10.0).abs() <= 1.0, "ITL median {itl} ms");
    let e2el = s.metric(Metric::E2elMs).p50.unwrap();
    assert!(
        (e2el - 590.0).abs() <= 5.0,
        "E2EL median {e2el} ms (100 + 49 × 10)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_streams_are_all_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(200, 10, 20);
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ max_tokens: 20, prompt: |i| `q ${i}` });
           phase("wide", #{ requests: 256, concurrency: 64 });"#,
    );
    common::target(&mut plan, &server);
    let (finished, records) = common::run(plan, dir.path()).await;

    assert_eq!(records.len(), 256, "one record per request");
    let ids: BTreeSet<u64> = records.iter().map(|r| r.id).collect();
    assert_eq!(ids, (0..256).collect(), "every id once");
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Ok && r.output_tokens == 20)
    );
    let seen_by_server = server.timings();
    assert_eq!(seen_by_server.len(), 256, "the server saw every request");
    assert!(ids.iter().all(|id| seen_by_server.contains_key(id)));
    let ttft = finished.summary.all.metric(Metric::TtftMs).p50.unwrap();
    assert!((ttft - 200.0).abs() <= 5.0, "TTFT median {ttft} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_non_streaming_requests_work() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(20, 2, 8);
    for (endpoint, stream) in [
        ("completions", true),
        ("completions", false),
        ("chat", false),
    ] {
        let mut plan = common::plan(
            dir.path(),
            &format!(
                r#"request(#{{ endpoint: "{endpoint}", stream: {stream}, max_tokens: 5, prompt: "a b c" }});
                   phase("p", #{{ requests: 3, concurrency: 1 }});"#
            ),
        );
        common::target(&mut plan, &server);
        let (finished, records) = common::run(plan, dir.path()).await;
        assert_eq!(finished.summary.all.ok, 3, "{endpoint} stream={stream}");
        for r in &records {
            assert_eq!(r.output_tokens, 5, "max_tokens caps the mock");
            assert_eq!(r.input_tokens, Some(3));
            assert_eq!(r.streamed, stream);
            if !stream {
                assert_eq!(r.ttft_us(), None, "no TTFT without streaming");
            }
        }
        let ms = |f: &dyn Fn(&llmbench::record::RequestRecord) -> Option<u64>| {
            common::median(records.iter().map(|r| f(r).unwrap() as f64 / 1e3).collect())
        };
        let e2el = ms(&|r| r.e2el_us());
        assert!(
            (e2el - 28.0).abs() < 5.0,
            "median E2EL {e2el} ms = 20 + 4 × 2"
        );
        if stream {
            let ttft = ms(&|r| r.ttft_us());
            assert!((ttft - 20.0).abs() < 5.0, "median TTFT {ttft} ms");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_serves_its_own_timing_log_and_added_error_is_never_negative() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::mock(30, 4, 6);
    let mut plan = common::plan(
        dir.path(),
        r#"request(#{ max_tokens: 6, prompt: |i| `q ${i}` });
           phase("p", #{ requests: 8, concurrency: 2 });"#,
    );
    common::target(&mut plan, &server);
    let (_, records) = common::run(plan, dir.path()).await;

    llmbench::client::install_tls_provider();
    let logged: Vec<llmbench::mock::LoggedTiming> =
        reqwest::get(format!("http://{}/mock/timings", server.addr()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(logged.len(), 8, "one entry per request");
    for r in &records {
        let t = logged.iter().find(|t| t.id == r.id).expect("logged by id");
        let server_ttft = t.ttft_us().unwrap();
        assert!(
            (30_000..35_000).contains(&server_ttft),
            "the mock's own TTFT is the injected 30 ms: {t:?}"
        );
        // Tokens go out on absolute deadlines: a busy machine can make the first one late but
        // never the last one early, so the last is timed from the body read, not the first.
        let last = t.last_token_us.unwrap() - t.received_us;
        assert!(
            (50_000..60_000).contains(&last),
            "the last token at 30 ms + 5 gaps of 4 ms: {t:?}"
        );
        // The client sends before the server reads and reads after the server writes, so the
        // TTFT it measures can only be longer than the server's (µs rounding aside).
        let added = llmbench::app::calibrate::added_ttft_us(r, server_ttft).unwrap();
        assert!(added >= -2, "{added} µs: {r:?} {t:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_to_stream_close_shows_the_tail_after_the_last_content_chunk() {
    // 20 ms to the first token, 8 tokens 5 ms apart (E2EL 55 ms), then the usage chunk and
    // [DONE] held back 150 ms, as a proxy holds the end of a stream; and without a tail.
    for (tail_ms, tail) in [(150.0, 150), (0.0, 0)] {
        let dir = tempfile::tempdir().unwrap();
        let server = llmbench::mock::MockServer::start(
            llmbench::mock::MockConfig {
                ttft: std::time::Duration::from_millis(20),
                itl: std::time::Duration::from_millis(5),
                output_tokens: 8,
                tail: std::time::Duration::from_millis(tail),
                ..Default::default()
            },
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .unwrap();
        let mut plan = common::plan(
            dir.path(),
            r#"request(#{ max_tokens: 8, prompt: |i| `q ${i}` });
               phase("p", #{ requests: 6, concurrency: 1 });"#,
        );
        common::target(&mut plan, &server);
        let (finished, records) = common::run(plan, dir.path()).await;
        assert!(records.iter().all(|r| r.outcome == Outcome::Ok));
        let ms = |f: &dyn Fn(&llmbench::record::RequestRecord) -> Option<u64>| {
            common::median(records.iter().map(|r| f(r).unwrap() as f64 / 1e3).collect())
        };
        let e2el = ms(&|r| r.e2el_us());
        assert!((e2el - 55.0).abs() < 10.0, "median E2EL {e2el} ms");
        let gap = ms(&|r| Some(r.stream_close_us()? - r.e2el_us()?));
        assert!(
            (gap - tail_ms).abs() < 10.0,
            "time to stream close − E2EL is the {tail_ms} ms tail: {gap} ms"
        );
        // The statistics carry it (histograms: three significant digits).
        let s = &finished.summary.all;
        let close = s.metric(Metric::StreamCloseMs);
        assert_eq!(close.count, 6);
        let p50_gap = close.p50.unwrap() - s.metric(Metric::E2elMs).p50.unwrap();
        assert!(
            (p50_gap - tail_ms).abs() < 10.0,
            "p50s differ by {p50_gap} ms"
        );
    }
}
