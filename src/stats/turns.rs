//! Per-turn statistics: session turns (records with a `turn`) get, per turn index, the same
//! statistics a phase gets, over every measured phase (warmup left out): TTFT by turn is the
//! headline of a prefix-cache benchmark. Rows exist for turn indices below `MAX_TURN_ROWS`;
//! later turns count in their phase only.

use std::collections::BTreeMap;

use super::{PhaseAcc, PhaseStats};
use crate::plan::Slo;
use crate::record::RequestRecord;

/// Turn indices that get a row of their own (0..MAX_TURN_ROWS).
pub const MAX_TURN_ROWS: u32 = 64;

/// Running statistics per turn index.
#[derive(Default)]
pub(super) struct Turns {
    by_turn: BTreeMap<u32, PhaseAcc>,
}

impl Turns {
    /// Adds a measured (non-warmup) record.
    pub(super) fn add(&mut self, r: &RequestRecord, slo: Option<Slo>) {
        let Some(turn) = r.turn.filter(|t| *t < MAX_TURN_ROWS) else {
            return;
        };
        self.by_turn
            .entry(turn)
            .or_insert_with(|| PhaseAcc::new(turn.to_string(), slo))
            .add(r);
    }

    /// One row per turn index, in order; each row's `name` is the index.
    pub(super) fn finish(&self) -> Vec<PhaseStats> {
        self.by_turn.values().map(PhaseAcc::finish).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::stats::tests::rec;
    use crate::stats::{Metric, summarize};

    #[test]
    fn turns_get_rows_of_their_own_with_their_cache_hit_share() {
        let mut records = Vec::new();
        for i in 0..8_u64 {
            // Two sessions of four turns; turn k's TTFT is 40 − 10k ms, its cache 25k of 100.
            let k = (i % 4) as u32;
            let mut r = rec(i, 0, i * 1000, 40_000 - 10_000 * k as u64, 5_000, 3);
            r.session = Some(i / 4);
            r.turn = Some(k);
            r.input_tokens = Some(100);
            r.cached_tokens = Some(25 * k as u64);
            records.push(r);
        }
        let s = summarize(&records);
        let names: Vec<&str> = s.turns.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["0", "1", "2", "3"]);
        for (k, t) in s.turns.iter().enumerate() {
            assert_eq!(t.requests, 2);
            assert_eq!(t.metric(Metric::TtftMs).p50, Some(40.0 - 10.0 * k as f64));
            assert_eq!(t.cached_tokens, Some(50 * k as u64));
            assert_eq!(t.cache_hit_share, Some(0.25 * k as f64));
        }
        // 2 × (0 + 25 + 50 + 75) cached of 800 prompt tokens.
        assert_eq!(s.all.cached_tokens, Some(300));
        assert_eq!(s.all.cache_hit_share, Some(0.375));
        assert_eq!(s.phases[0].cache_hit_share, Some(0.375));
        let plain = summarize(&[rec(0, 0, 0, 1000, 100, 2)]);
        assert!(plain.turns.is_empty());
        assert_eq!(plain.all.cache_hit_share, None, "no usage said: unknown");
    }
}
