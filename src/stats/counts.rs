//! Who counted a phase's tokens, and how far two counters disagree: the requests counted by
//! llmbench's tokenizer, the successful requests whose input tokens nobody counted (so no
//! total-token throughput is computed from a zero), and, where both the server's usage and a
//! configured tokenizer counted an answer, their relative difference.

use serde::Serialize;

use crate::record::{RequestRecord, TokenSource};

/// How the server's usage and the configured tokenizer differ on the same answers:
/// |tokenizer − usage| / usage per request (usage > 0), in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TokenDiscrepancy {
    /// Successful requests both counted.
    pub requests: u64,
    pub mean_pct: f64,
    pub max_pct: f64,
}

/// The running counts of one phase (successful requests only).
#[derive(Debug, Clone, Default)]
pub(super) struct CountsAcc {
    pub from_tokenizer: u64,
    /// Successful requests without an input token count.
    pub input_unknown: u64,
    compared: u64,
    diff_sum: f64,
    diff_max: f64,
}

impl CountsAcc {
    pub fn add(&mut self, r: &RequestRecord) {
        self.from_tokenizer += u64::from(r.tokens_source == TokenSource::Tokenizer);
        self.input_unknown += u64::from(r.input_tokens.is_none());
        if let (TokenSource::Usage, Some(counted)) = (r.tokens_source, r.tokenizer_tokens)
            && r.output_tokens > 0
        {
            let diff = 100.0 * counted.abs_diff(r.output_tokens) as f64 / r.output_tokens as f64;
            self.compared += 1;
            self.diff_sum += diff;
            self.diff_max = self.diff_max.max(diff);
        }
    }

    pub fn merge(&mut self, o: &CountsAcc) {
        self.from_tokenizer += o.from_tokenizer;
        self.input_unknown += o.input_unknown;
        self.compared += o.compared;
        self.diff_sum += o.diff_sum;
        self.diff_max = self.diff_max.max(o.diff_max);
    }

    pub fn discrepancy(&self) -> Option<TokenDiscrepancy> {
        (self.compared > 0).then(|| TokenDiscrepancy {
            requests: self.compared,
            mean_pct: self.diff_sum / self.compared as f64,
            max_pct: self.diff_max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_tokenizer_differences_are_relative_to_the_usage() {
        let mut acc = CountsAcc::default();
        for (usage, counted) in [(100, 110), (50, 50), (10, 5)] {
            let mut r = RequestRecord::synthetic(0, "p", 0, 0, 10, 10, usage);
            r.counted_by_tokenizer(counted);
            acc.add(&r);
        }
        let d = acc.discrepancy().unwrap();
        assert_eq!(d.requests, 3);
        assert!((d.mean_pct - 20.0).abs() < 1e-9, "{d:?}");
        assert!((d.max_pct - 50.0).abs() < 1e-9);
        let mut r = RequestRecord::synthetic(0, "p", 0, 0, 10, 10, 4);
        r.tokens_source = TokenSource::Chunks;
        r.input_tokens = None;
        r.counted_by_tokenizer(7);
        let mut acc = CountsAcc::default();
        acc.add(&r);
        assert_eq!((acc.from_tokenizer, acc.input_unknown), (1, 1));
        assert_eq!(r.output_tokens, 7);
        assert!(acc.discrepancy().is_none());
    }
}
