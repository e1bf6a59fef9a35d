//! Tests of the statistics pass against records with known timings.

use super::*;

/// A successful streamed record with exact timings (µs) and `n` evenly spaced tokens.
pub(crate) fn rec(id: u64, phase: usize, sent: u64, ttft: u64, itl: u64, n: u64) -> RequestRecord {
    let mut r = RequestRecord::synthetic(id, &format!("p{phase}"), phase, sent, ttft, itl, n);
    r.headers_us = Some(sent + 100);
    r.end_us += 50;
    r.output_chars = n * 4;
    r
}

#[test]
fn known_timings_give_exact_statistics() {
    // 100 requests: TTFT 1..=100 ms, ITL 10 ms, 11 tokens, one every 100 ms.
    let records: Vec<_> = (0..100)
        .map(|i| rec(i, 0, i * 100_000, (i + 1) * 1000, 10_000, 11))
        .collect();
    let s = summarize(&records);
    let p = &s.all;
    assert_eq!((p.requests, p.ok, p.failed), (100, 100, 0));
    assert_eq!(p.success_rate, 100.0);
    let ttft = p.metric(Metric::TtftMs);
    assert_eq!(ttft.count, 100);
    assert!((ttft.mean.unwrap() - 50.5).abs() < 1e-9);
    assert!((ttft.p50.unwrap() - 50.0).abs() < 0.05, "{:?}", ttft.p50);
    assert!((ttft.p90.unwrap() - 90.0).abs() < 0.1);
    assert!((ttft.p99.unwrap() - 99.0).abs() < 0.1);
    assert_eq!(ttft.min, Some(1.0));
    assert_eq!(ttft.max, Some(100.0));
    let sd = (((1..=100).map(|x| (x as f64 - 50.5).powi(2)).sum::<f64>()) / 100.0).sqrt();
    assert!((ttft.stddev.unwrap() - sd).abs() < 1e-6);
    let tpot = p.metric(Metric::TpotMs);
    assert!((tpot.p50.unwrap() - 10.0).abs() < 0.01);
    let itl = p.metric(Metric::ItlMs);
    assert_eq!(itl.count, 1000, "10 gaps per request, pooled");
    assert!((itl.mean.unwrap() - 10.0).abs() < 1e-9);
    assert_eq!(p.output_tokens, 1100);
    // Window: first send at 0, last end at 9.9 s + 100 ms + 100 ms + 50 µs.
    let window = (9_900_000 + 100_000 + 100_000 + 50) as f64 / 1e6;
    assert!((p.duration_s - window).abs() < 1e-9);
    assert!((p.req_per_s - 100.0 / window).abs() < 1e-9);
    assert!((p.output_tok_per_s - 1100.0 / window).abs() < 1e-9);
    assert!((p.total_tok_per_s.unwrap() - 2100.0 / window).abs() < 1e-9);
}

#[test]
fn failures_are_counted_by_class_and_warmup_is_left_out() {
    let mut records = vec![rec(0, 0, 0, 1000, 1000, 3), rec(1, 1, 0, 1000, 1000, 3)];
    let mut bad = rec(2, 1, 10, 1000, 1000, 3);
    bad.outcome = Outcome::HttpStatus;
    bad.status = Some(503);
    records.push(bad);
    let mut warm = rec(3, 0, 0, 5000, 1000, 3);
    warm.warmup = true;
    records.push(warm);
    let s = summarize(&records);
    assert_eq!(s.warmup_requests, 1);
    assert_eq!(s.phases.len(), 2);
    let p1 = &s.phases[1];
    assert_eq!((p1.requests, p1.ok, p1.failed), (2, 1, 1));
    assert_eq!(p1.outcomes["http_status"], 1);
    assert_eq!(p1.http_statuses[&503], 1);
    assert_eq!(p1.success_rate, 50.0);
    assert_eq!(
        p1.metric(Metric::TtftMs).count,
        1,
        "failed requests have no TTFT"
    );
    assert_eq!(s.all.requests, 3);
    assert_eq!(s.rows().count(), 3);
}

#[test]
fn shapes_describe_the_distribution() {
    // TTFT 1..=100 ms.
    let records: Vec<_> = (0..100)
        .map(|i| rec(i, 0, i * 100_000, (i + 1) * 1000, 10_000, 11))
        .collect();
    let s = summarize(&records);
    let shape = &s.all.metric(Metric::TtftMs).shape;
    assert_eq!(shape.bins.len(), shape::SHAPE_BINS);
    assert_eq!(shape.bins.iter().map(|b| b.count).sum::<u64>(), 100);
    assert_eq!(shape.bins[0].lo, 1.0);
    assert!((shape.bins.last().unwrap().hi - 99.0).abs() < 0.1);
    assert_eq!(shape.cdf.first(), Some(&(1.0, 0.0)));
    assert_eq!(shape.cdf.last(), Some(&(100.0, 1.0)));
    assert!(
        shape
            .cdf
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1)
    );
    let (v, q) = shape.cdf[50];
    assert_eq!(q, 0.5);
    assert!((v - 50.0).abs() < 0.1);
}

#[test]
fn whole_microseconds_add_as_their_millisecond_value_scaled() {
    let values = [
        0,
        1,
        999,
        1000,
        2003,
        123_456_789,
        (1 << 43) - 1,
        1 << 43,
        u64::MAX,
    ];
    let (mut a, mut b) = (Acc::new(), Acc::new());
    for us in values {
        a.add_us(us);
        // What ITL gaps were added as before `add_us`.
        b.add(us as f64 * Metric::ItlMs.scale() / 1000.0);
    }
    assert_eq!(a.hist, b.hist);
    assert_eq!((a.n, a.sum, a.sum_sq), (b.n, b.sum, b.sum_sq));
    assert_eq!((a.min, a.max), (b.min, b.max));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..100_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let us = seed >> (21 + seed % 40);
        assert_eq!(us as f64 * 1000.0 / 1000.0, us as f64, "{us}");
    }
}

#[test]
fn empty_input_has_no_values() {
    let s = summarize(&[]);
    assert_eq!(s.all.requests, 0);
    assert_eq!(s.all.metric(Metric::TtftMs).p50, None);
    assert_eq!(s.all.req_per_s, 0.0);
}

proptest::proptest! {
    /// Every percentile lies within the exact [min, max], and they rise with the quantile,
    /// whatever the values (here up to an hour in µs, including values between buckets).
    #[test]
    fn percentiles_lie_within_min_and_max(values in proptest::collection::vec(1u64..3_600_000_000, 1..200)) {
        let mut acc = Acc::new();
        for v in &values {
            acc.add_us(*v);
        }
        let d = acc.distribution(Metric::E2elMs);
        let (min, max) = (d.min.unwrap(), d.max.unwrap());
        let ps = [d.p50, d.p90, d.p95, d.p99, d.p999].map(Option::unwrap);
        for (i, p) in ps.iter().enumerate() {
            proptest::prop_assert!(min <= *p && *p <= max, "{p} outside [{min}, {max}]");
            if i > 0 {
                proptest::prop_assert!(ps[i - 1] <= *p);
            }
        }
    }
}
