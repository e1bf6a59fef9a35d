//! Warnings: what a reader must know before trusting a run's numbers. One enum, one variant per
//! cause, carrying the numbers that triggered it; its message says what to do and names the
//! flag or setting that fixes it. `Summary::warnings` finds the ones the statistics show; the
//! run adds the ones only it can see (a busy request thread, a failed write, a failed prompt
//! generator, assertions left unevaluated). Warnings serialize as their message, so reports,
//! metadata and exports read as text.

use std::fmt;

use serde::Serialize;

use super::{Metric, Summary};
use crate::record::Requested;

/// A reason to doubt (part of) a run's numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Warning {
    /// Requests failed; the classes with their counts.
    Failed {
        failed: u64,
        requests: u64,
        classes: Vec<(String, u64)>,
    },
    /// The load generator fell behind its schedule.
    BehindSchedule {
        lateness_p99_ms: f64,
        ttft_p50_ms: f64,
    },
    /// Arrivals waited for a concurrency slot.
    Queued { queue_p99_ms: f64 },
    /// Output tokens were counted from chunks (the server sent no usage).
    TokensFromChunks { requests: u64 },
    /// Requests were resent after the server closed a kept-alive connection.
    Reconnects { requests: u64 },
    /// The server produced other output lengths than `max_tokens` asked for.
    OutputLength {
        asked: u32,
        min: f64,
        max: f64,
        mean: f64,
    },
    /// Every request carried the same prompt text.
    FixedPrompt,
    /// Too few successful requests for stable tails.
    FewSamples { ok: u64 },
    /// llmbench's request thread was on the CPU this share (0..1) of the run.
    BusyRequestThread { share: f64 },
    /// Writing the raw records failed (the error names the file) after `kept` records.
    RawWriteFailed { error: String, kept: u64 },
    /// The prompt generator failed, which ended the run early.
    PromptGeneratorFailed { error: String },
    /// A signal stopped the run before its assertions were evaluated.
    AssertionsNotEvaluated,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed {
                failed,
                requests,
                classes,
            } => {
                let classes: Vec<String> = classes.iter().map(|(k, n)| format!("{k} {n}")).collect();
                write!(
                    f,
                    "{failed} of {requests} requests failed ({}); the `error` field of each raw record says why.",
                    classes.join(", ")
                )
            }
            Self::BehindSchedule {
                lateness_p99_ms,
                ttft_p50_ms,
            } => write!(
                f,
                "The load generator fell behind its schedule (lateness p99 {lateness_p99_ms:.2} ms against a TTFT p50 of {ttft_p50_ms:.2} ms); latencies from the intended start include this. Lower the rate or run llmbench on a less busy machine."
            ),
            Self::Queued { queue_p99_ms } => write!(
                f,
                "Arrivals waited for a concurrency slot (queue time p99 {queue_p99_ms:.1} ms): the concurrency cap, not only the server, shaped this load. TTFT and E2EL from the intended start include the wait."
            ),
            Self::TokensFromChunks { requests } => write!(
                f,
                "Output tokens of {requests} requests were counted from content chunks because the server sent no usage; a chunk can carry several tokens, so token rates may be low. Use a server that honours stream_options.include_usage."
            ),
            Self::Reconnects { requests } => write!(
                f,
                "{requests} requests were resent on a new connection because the server closed their kept-alive connection before answering; their latency includes the lost time. If this is frequent, check the server's keep-alive settings."
            ),
            Self::OutputLength {
                asked,
                min,
                max,
                mean,
            } => {
                let counted = if min == max {
                    format!("{min:.0}")
                } else {
                    format!("{min:.0} to {max:.0} (mean {mean:.1})")
                };
                write!(
                    f,
                    "Requests asked for max_tokens {asked} but the server counted {counted} output tokens: it stopped early (end of sequence) or does not honour max_tokens, so runs with different output lengths do not compare. For fixed lengths ask the server to ignore end-of-sequence (vLLM and llama.cpp: ignore_eos)."
                )
            }
            Self::FixedPrompt => f.write_str(
                "Every request sent the same prompt: a server's prefix cache may answer from cache and flatter TTFT. Make the prompt a function of the request index (prompt: |i| ...) to vary it.",
            ),
            Self::FewSamples { ok } => write!(
                f,
                "Only {ok} successful requests: p99 and p99.9 rest on very few samples. Run longer or at a higher rate for stable tails."
            ),
            Self::BusyRequestThread { share } => write!(
                f,
                "llmbench's request thread was busy {:.0}% of the run, so its own queueing may have delayed sends and first-token stamps: rerun with --threads 2 (or more), on a machine with more free cores, or check this machine's limits with `llmbench calibrate`.",
                share * 100.0
            ),
            Self::RawWriteFailed { error, kept } => write!(
                f,
                "Writing raw records failed ({error}); the raw file keeps the first {kept} records, but these statistics cover every request. Free space there or pass --results DIR."
            ),
            Self::PromptGeneratorFailed { error } => write!(
                f,
                "The prompt generator failed, so the run stopped early: {error}"
            ),
            Self::AssertionsNotEvaluated => f.write_str(
                "The run was interrupted, so its assertions were not evaluated.",
            ),
        }
    }
}

impl Serialize for Warning {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Summary {
    /// What the statistics show a reader must know before trusting them.
    pub fn warnings(&self, requested: &Requested) -> Vec<Warning> {
        let a = &self.all;
        let mut w = Vec::new();
        if a.failed > 0 {
            w.push(Warning::Failed {
                failed: a.failed,
                requests: a.requests,
                classes: a
                    .outcomes
                    .iter()
                    .filter(|(k, n)| **k != "ok" && **n > 0)
                    .map(|(k, n)| (k.to_string(), *n))
                    .collect(),
            });
        }
        let late_p99 = a.metric(Metric::LatenessMs).p99.unwrap_or(0.0);
        let ttft_p50 = a.metric(Metric::TtftMs).p50.unwrap_or(0.0);
        if late_p99 > 1.0 && late_p99 > 0.05 * ttft_p50 {
            w.push(Warning::BehindSchedule {
                lateness_p99_ms: late_p99,
                ttft_p50_ms: ttft_p50,
            });
        }
        let queue_p99 = a.metric(Metric::QueueMs).p99.unwrap_or(0.0);
        if queue_p99 > 1.0 {
            w.push(Warning::Queued {
                queue_p99_ms: queue_p99,
            });
        }
        if a.tokens_from_chunks > 0 {
            w.push(Warning::TokensFromChunks {
                requests: a.tokens_from_chunks,
            });
        }
        if a.reconnects > 0 {
            w.push(Warning::Reconnects {
                requests: a.reconnects,
            });
        }
        let out = a.metric(Metric::OutputTokens);
        if let (Some(asked), Some(min), Some(max)) = (requested.max_tokens, out.min, out.max)
            && (min != asked as f64 || max != asked as f64)
        {
            w.push(Warning::OutputLength {
                asked,
                min,
                max,
                mean: out.mean.unwrap_or(0.0),
            });
        }
        if requested.fixed_prompt && a.requests > 1 {
            w.push(Warning::FixedPrompt);
        }
        if a.ok > 0 && a.ok < 100 {
            w.push(Warning::FewSamples { ok: a.ok });
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
        assert!(
            matches!(
                w.as_slice(),
                [
                    Warning::OutputLength {
                        asked: 12,
                        min: 10.0,
                        max: 12.0,
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
}
