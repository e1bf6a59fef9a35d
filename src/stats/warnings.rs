//! Warnings: what a reader must know before trusting a run's numbers, each saying what to do.
//! Computed from a `Summary` and what the plan asked of each request.

use super::{Metric, Summary};
use crate::record::Requested;

impl Summary {
    /// What a reader must know before trusting these numbers, each saying what to do about it.
    pub fn warnings(&self, requested: &Requested) -> Vec<String> {
        let a = &self.all;
        let mut w = Vec::new();
        if a.failed > 0 {
            let classes: Vec<String> = a
                .outcomes
                .iter()
                .filter(|(k, n)| **k != "ok" && **n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            w.push(format!(
                "{} of {} requests failed ({}); the `error` field of each raw record says why.",
                a.failed,
                a.requests,
                classes.join(", ")
            ));
        }
        let late_p99 = a.metric(Metric::LatenessMs).p99.unwrap_or(0.0);
        let ttft_p50 = a.metric(Metric::TtftMs).p50.unwrap_or(0.0);
        if late_p99 > 1.0 && late_p99 > 0.05 * ttft_p50 {
            w.push(format!(
                "The load generator fell behind its schedule (lateness p99 {late_p99:.2} ms against a TTFT p50 of {ttft_p50:.2} ms); latencies from the intended start include this. Lower the rate or run llmbench on a less busy machine."
            ));
        }
        let queue_p99 = a.metric(Metric::QueueMs).p99.unwrap_or(0.0);
        if queue_p99 > 1.0 {
            w.push(format!(
                "Arrivals waited for a concurrency slot (queue time p99 {queue_p99:.1} ms): the concurrency cap, not only the server, shaped this load. TTFT and E2EL from the intended start include the wait."
            ));
        }
        if a.tokens_from_chunks > 0 {
            w.push(format!(
                "Output tokens of {} requests were counted from content chunks because the server sent no usage; a chunk can carry several tokens, so token rates may be low. Use a server that honours stream_options.include_usage.",
                a.tokens_from_chunks
            ));
        }
        if a.reconnects > 0 {
            w.push(format!(
                "{} requests were resent on a new connection because the server closed their kept-alive connection before answering; their latency includes the lost time. If this is frequent, check the server's keep-alive settings.",
                a.reconnects
            ));
        }
        let out = a.metric(Metric::OutputTokens);
        if let (Some(asked), Some(min), Some(max)) = (requested.max_tokens, out.min, out.max)
            && (min != asked as f64 || max != asked as f64)
        {
            let counted = if min == max {
                format!("{min:.0}")
            } else {
                format!("{min:.0} to {max:.0} (mean {:.1})", out.mean.unwrap_or(0.0))
            };
            w.push(format!(
                "Requests asked for max_tokens {asked} but the server counted {counted} output tokens: it stopped early (end of sequence) or does not honour max_tokens, so runs with different output lengths do not compare. For fixed lengths ask the server to ignore end-of-sequence (vLLM and llama.cpp: ignore_eos)."
            ));
        }
        if requested.fixed_prompt && a.requests > 1 {
            w.push(
                "Every request sent the same prompt: a server's prefix cache may answer from cache and flatter TTFT. Make the prompt a function of the request index (prompt: |i| ...) to vary it.".into(),
            );
        }
        if a.ok > 0 && a.ok < 100 {
            w.push(format!(
                "Only {} successful requests: p99 and p99.9 rest on very few samples. Run longer or at a higher rate for stable tails.",
                a.ok
            ));
        }
        w
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("max_tokens 12") && w[0].contains("10 to 12"),
            "{}",
            w[0]
        );
        assert!(w[1].contains("same prompt"), "{}", w[1]);
        let exact: Vec<_> = (0..200)
            .map(|i| rec(i, 0, i * 1000, 1000, 1000, 12))
            .collect();
        let w = summarize(&exact).warnings(&Requested {
            max_tokens: Some(12),
            fixed_prompt: false,
        });
        assert!(w.is_empty(), "{w:?}");
    }
}
