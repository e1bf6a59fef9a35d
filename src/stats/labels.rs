//! Per-label statistics: requests whose prompt function gave them a `label` get, per label, the
//! same statistics a phase gets, over every measured phase (warmup left out). A run has at most
//! `MAX_LABELS` distinct labels (the feed refuses more); records read back with more keep rows
//! for the first `MAX_LABELS` seen.

use std::collections::BTreeMap;

use super::{PhaseAcc, PhaseStats};
use crate::plan::Slo;
use crate::record::RequestRecord;

/// The most distinct labels a run may have.
pub const MAX_LABELS: usize = 64;

/// Running statistics per label.
#[derive(Default)]
pub(super) struct Labels {
    by_label: BTreeMap<String, PhaseAcc>,
}

impl Labels {
    /// Adds a measured (non-warmup) record.
    pub(super) fn add(&mut self, r: &RequestRecord, slo: Option<Slo>) {
        let Some(label) = &r.label else { return };
        if let Some(acc) = self.by_label.get_mut(label) {
            return acc.add(r);
        }
        if self.by_label.len() < MAX_LABELS {
            let mut acc = PhaseAcc::new(label.clone(), slo);
            acc.add(r);
            self.by_label.insert(label.clone(), acc);
        }
    }

    /// One row per label, in label order; each row's `name` is the label.
    pub(super) fn finish(&self) -> Vec<PhaseStats> {
        self.by_label.values().map(PhaseAcc::finish).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::stats::tests::rec;
    use crate::stats::{Metric, summarize};

    #[test]
    fn labelled_requests_get_rows_of_their_own() {
        let mut records = Vec::new();
        for i in 0..6 {
            let mut r = rec(i, 0, i * 1000, 20_000, 5_000, 2 + i % 2 * 8);
            r.label = Some(if i % 2 == 0 { "short" } else { "long" }.into());
            records.push(r);
        }
        let mut unlabelled = rec(6, 1, 0, 20_000, 5_000, 3);
        unlabelled.phase = "b".into();
        records.push(unlabelled);
        let mut warm = rec(7, 0, 0, 1, 1, 3);
        warm.warmup = true;
        warm.label = Some("short".into());
        records.push(warm);

        let s = summarize(&records);
        let names: Vec<&str> = s.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["long", "short"]);
        let (long, short) = (&s.labels[0], &s.labels[1]);
        assert_eq!((long.requests, short.requests), (3, 3), "warmup left out");
        assert_eq!(long.output_tokens, 30);
        assert_eq!(short.output_tokens, 6);
        assert_eq!(long.metric(Metric::OutputTokens).p50, Some(10.0));
        assert_eq!(s.all.requests, 7, "labels change nothing of the phase rows");
    }

    #[test]
    fn rows_stop_at_the_label_limit() {
        let records: Vec<_> = (0..super::MAX_LABELS as u64 + 5)
            .map(|i| {
                let mut r = rec(i, 0, 0, 1000, 100, 2);
                r.label = Some(format!("l{i:03}"));
                r
            })
            .collect();
        assert_eq!(summarize(&records).labels.len(), super::MAX_LABELS);
    }
}
