//! TTFT with and without cache: measured requests whose usage reported `cached_tokens` get the
//! statistics a phase gets, split in two rows, `cached` (cached_tokens > 0) and `uncached`
//! (cached_tokens 0), over every measured phase (warmup left out). Requests whose usage said
//! nothing are in neither row; without any such report there are no rows.

use super::{PhaseAcc, PhaseStats};
use crate::plan::Slo;
use crate::record::RequestRecord;

/// Running statistics of the requests with and without cached prompt tokens.
#[derive(Default)]
pub(super) struct CacheSplit {
    cached: Option<PhaseAcc>,
    uncached: Option<PhaseAcc>,
}

impl CacheSplit {
    /// Adds a measured (non-warmup) record.
    pub(super) fn add(&mut self, r: &RequestRecord, slo: Option<Slo>) {
        let Some(cached) = r.cached_tokens else {
            return;
        };
        let (row, name) = if cached > 0 {
            (&mut self.cached, "cached")
        } else {
            (&mut self.uncached, "uncached")
        };
        row.get_or_insert_with(|| PhaseAcc::new(name.into(), slo))
            .add(r);
    }

    /// `cached` then `uncached`, each when a request fell in it.
    pub(super) fn finish(&self) -> Vec<PhaseStats> {
        [&self.cached, &self.uncached]
            .into_iter()
            .flatten()
            .map(PhaseAcc::finish)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::stats::tests::rec;
    use crate::stats::{Metric, summarize};

    #[test]
    fn requests_split_by_whether_their_prompt_hit_the_cache() {
        let mut records = Vec::new();
        for i in 0..10_u64 {
            // Even requests hit (TTFT 10 ms, 80 of 100 cached), odd ones miss (TTFT 50 ms).
            let hit = i % 2 == 0;
            let mut r = rec(i, 0, i * 1000, if hit { 10_000 } else { 50_000 }, 1_000, 3);
            r.input_tokens = Some(100);
            r.cached_tokens = Some(if hit { 80 } else { 0 });
            records.push(r);
        }
        // A request whose usage said nothing of the cache is in neither row.
        let mut unknown = rec(10, 0, 0, 30_000, 1_000, 3);
        unknown.input_tokens = Some(100);
        records.push(unknown);
        let s = summarize(&records);
        let names: Vec<&str> = s.cache.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cached", "uncached"]);
        let (hit, miss) = (&s.cache[0], &s.cache[1]);
        assert_eq!((hit.requests, miss.requests), (5, 5));
        assert_eq!(hit.metric(Metric::TtftMs).p50, Some(10.0));
        assert_eq!(miss.metric(Metric::TtftMs).p99, Some(50.0));
        assert_eq!(hit.cache_hit_share, Some(0.8));
        assert_eq!(miss.cache_hit_share, Some(0.0));
        assert_eq!(
            s.all.cache_hit_share,
            Some(0.4),
            "400 of 1000 reporting tokens"
        );
        let plain = summarize(&[rec(0, 0, 0, 1000, 100, 2)]);
        assert!(plain.cache.is_empty(), "no usage said: no rows");
    }
}
