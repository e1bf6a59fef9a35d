//! Warnings: what a reader must know before trusting a run's numbers. One enum, one variant per
//! cause, carrying the numbers that triggered it; its message says what to do and names the
//! flag or setting that fixes it. `Summary::warnings` finds the ones the statistics show; the
//! run adds the ones only it can see (a busy request thread, a failed write, a failed prompt
//! generator, a failed scrape, assertions left unevaluated). Phase-level checks (lateness, the
//! server falling behind) look at every phase and name it. Warnings serialize as their message,
//! so reports, metadata and exports read as text.

use std::fmt;

use serde::Serialize;

use super::{Metric, PhaseStats, Summary};
use crate::record::Requested;

/// Scheduler lateness p99 over this (ms) ...
pub const LATENESS_FLOOR_MS: f64 = 1.0;
/// ... and over this share of the TTFT p50 means the load generator fell behind its schedule.
pub const LATENESS_SHARE_OF_TTFT: f64 = 0.05;
/// A shard whose first phase started more than this (ms) after `--start-at` started late.
pub const START_LATE_MS: f64 = 10.0;

/// The one criterion for "the load generator kept its schedule", shared by the run warning and
/// `calibrate`'s "sustained": lateness p99 at most 1 ms or at most 5 % of the TTFT p50.
pub fn behind_schedule(lateness_p99_ms: f64, ttft_p50_ms: f64) -> bool {
    lateness_p99_ms > LATENESS_FLOOR_MS && lateness_p99_ms > LATENESS_SHARE_OF_TTFT * ttft_p50_ms
}

/// Who counted a run's output tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCounter {
    /// The server, in its usage.
    Server,
    /// llmbench, one token per content chunk (the server sent no usage).
    Chunks,
    /// llmbench, with the request's tokenizer over each whole answer (the server sent no usage).
    Tokenizer,
    /// The server for some requests, llmbench's count for the others.
    Mixed,
}

impl TokenCounter {
    fn of(p: &PhaseStats) -> Self {
        match (
            p.tokens_from_usage,
            p.tokens_from_chunks,
            p.tokens_from_tokenizer,
        ) {
            (_, 0, 0) => Self::Server,
            (0, _, 0) => Self::Chunks,
            (0, 0, _) => Self::Tokenizer,
            _ => Self::Mixed,
        }
    }

    fn counted(self) -> &'static str {
        match self {
            Self::Server => "the server's usage counted",
            Self::Chunks => {
                "llmbench counted (one token per content chunk, the server sent no usage)"
            }
            Self::Tokenizer => {
                "llmbench's tokenizer counted (over each whole answer, the server sent no usage)"
            }
            Self::Mixed => {
                "the server's usage (or, where it sent none, llmbench's own count) counted"
            }
        }
    }
}

/// A reason to doubt (part of) a run's numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Warning {
    /// Requests failed; the classes with their counts.
    Failed {
        failed: u64,
        requests: u64,
        classes: Vec<(String, u64)>,
    },
    /// The load generator fell behind its schedule in a phase.
    BehindSchedule {
        phase: String,
        lateness_p99_ms: f64,
        ttft_p50_ms: f64,
    },
    /// Arrivals waited for a concurrency slot (every slot was busy).
    Queued { queue_p99_ms: f64 },
    /// A phase's requests completed well below the rate they were offered at
    /// (`stats::Pace::fell_behind`); `client_late`: the load generator was behind its schedule
    /// there too, so it may share the blame.
    FellBehind {
        phase: String,
        offered_req_per_s: f64,
        completed_req_per_s: f64,
        client_late: bool,
    },
    /// Successful answers that carried no output token (left out of TTFT, TPOT and E2EL).
    EmptyAnswers { empty: u64, ok: u64 },
    /// Output tokens were counted from chunks (the server sent no usage).
    TokensFromChunks { requests: u64 },
    /// Requests were resent after the server closed a kept-alive connection.
    Reconnects { requests: u64 },
    /// Successful requests whose input tokens nobody counted: no total-token throughput.
    InputTokensUnknown { requests: u64, ok: u64 },
    /// Requests came back with fewer output tokens than `max_tokens` asked for.
    FewerTokens {
        asked: u32,
        counter: TokenCounter,
        min: f64,
        mean: f64,
    },
    /// Requests came back with more output tokens than `max_tokens` asked for.
    MoreTokens {
        asked: u32,
        counter: TokenCounter,
        max: f64,
    },
    /// Every request carried the same prompt text.
    FixedPrompt,
    /// The run's first request found this many of its prompt tokens already in the server's
    /// prefix cache: a cache left warm by an earlier run (or other traffic).
    WarmCache {
        cached_tokens: u64,
        prompt_tokens: Option<u64>,
    },
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
    /// Scrapes of a `--scrape` endpoint failed (unreachable, an error status, not Prometheus
    /// text): `failed` of `tried`, and the first error.
    ScrapeFailed {
        url: String,
        failed: u64,
        tried: u64,
        error: String,
    },
    /// A shard's first phase started `late_ms` after the common `--start-at` (more than
    /// `START_LATE_MS`): its arrivals are that much behind the other shards'.
    ShardStartedLate { shard: String, late_ms: f64 },
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
                phase,
                lateness_p99_ms,
                ttft_p50_ms,
            } => write!(
                f,
                "Phase {phase}: the load generator fell behind its schedule (lateness p99 {lateness_p99_ms:.2} ms against a TTFT p50 of {ttft_p50_ms:.2} ms); latencies from the intended start include this. Lower the rate or run llmbench on a less busy machine."
            ),
            Self::Queued { queue_p99_ms } => write!(
                f,
                "Arrivals waited for a concurrency slot (queue time p99 {queue_p99_ms:.1} ms): every slot of the concurrency cap was busy, so the cap held back part of the offered load. TTFT and E2EL from the intended start include the wait. Raise the phase's concurrency to offer the full rate."
            ),
            Self::FellBehind {
                phase,
                offered_req_per_s,
                completed_req_per_s,
                client_late,
            } => fell_behind(f, phase, *offered_req_per_s, *completed_req_per_s, *client_late),
            Self::EmptyAnswers { empty, ok } => write!(
                f,
                "{empty} of {ok} successful answers carried no output token; they have no TTFT, TPOT or E2EL, so the latency statistics leave them out. Check the prompt and max_tokens, or the server's logs for why it answered with nothing."
            ),
            Self::TokensFromChunks { requests } => write!(
                f,
                "Output tokens of {requests} requests were counted from content chunks because the server sent no usage; a chunk can carry several tokens, so token rates may be low. Use a server that honours stream_options.include_usage, or name the model's tokenizer in the script's request (tokenizer: \"cl100k_base\" or a tokenizer.json path)."
            ),
            Self::InputTokensUnknown { requests, ok } => write!(
                f,
                "Input tokens of {requests} of {ok} successful requests are unknown (the server sent no usage with prompt_tokens), so total_tok_per_s is not reported: it would count their prompts as zero. Use a server that honours stream_options.include_usage."
            ),
            Self::Reconnects { requests } => write!(
                f,
                "{requests} requests were resent on a new connection because the server closed their kept-alive connection before answering; their latency includes the lost time. If this is frequent, check the server's keep-alive settings."
            ),
            Self::FewerTokens {
                asked,
                counter,
                min,
                mean,
            } => fewer_tokens(f, *asked, *counter, *min, *mean),
            Self::MoreTokens {
                asked,
                counter,
                max,
            } => write!(
                f,
                "Requests asked for max_tokens {asked} but {} up to {max:.0} output tokens, more than asked: the server does not honour max_tokens (or counts tokens its own way), so output lengths are the server's choice. Check the server's limit on output length, or whether it expects another parameter name (max_completion_tokens).",
                counter.counted()
            ),
            Self::WarmCache { .. } => f.write_str(&warm_cache(self)),
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
            Self::ScrapeFailed {
                url,
                failed,
                tried,
                error,
            } => scrape_failed(f, url, *failed, *tried, error),
            Self::ShardStartedLate { shard, late_ms } => write!(
                f,
                "Shard {shard} started {late_ms:.1} ms after --start-at, so its arrivals lag the other shards' by that much. Set the start time further ahead (llmbench needs a few seconds to start), or check this machine's clock (NTP)."
            ),
        }
    }
}

/// `Warning::ScrapeFailed`'s message.
fn scrape_failed(
    f: &mut fmt::Formatter<'_>,
    url: &str,
    failed: u64,
    tried: u64,
    error: &str,
) -> fmt::Result {
    write!(
        f,
        "{failed} of {tried} scrapes of {url} failed (first: {error}), so its server telemetry is {}. Check that the address serves Prometheus text (vLLM: /metrics) and is reachable from this machine.",
        if failed == tried {
            "missing"
        } else {
            "partial"
        }
    )
}

/// `Warning::FellBehind`'s message.
fn fell_behind(
    f: &mut fmt::Formatter<'_>,
    phase: &str,
    offered: f64,
    completed: f64,
    client_late: bool,
) -> fmt::Result {
    write!(
        f,
        "Phase {phase}: requests were offered at {offered:.2} req/s but completed at {completed:.2} req/s, "
    )?;
    f.write_str(if client_late {
        "and the load generator was behind its schedule too (see that warning), so llmbench may have held back part of the load. Rerun on a less busy machine to tell the two apart."
    } else {
        "while arrivals left on time: the server, not llmbench, fell behind (it was overloaded at this rate). Latencies rise through the phase; lower the rate to measure the server below saturation."
    })
}

/// `Warning::FewerTokens`'s message: what fewer means depends on who counted.
fn fewer_tokens(
    f: &mut fmt::Formatter<'_>,
    asked: u32,
    counter: TokenCounter,
    min: f64,
    mean: f64,
) -> fmt::Result {
    write!(
        f,
        "Requests asked for max_tokens {asked} but {} as few as {min:.0} output tokens (mean {mean:.1}), fewer than asked: ",
        counter.counted()
    )?;
    f.write_str(match counter {
        TokenCounter::Server => "the server stopped early (end of sequence), so runs with different output lengths do not compare. For fixed lengths ask the server to ignore end-of-sequence (vLLM and llama.cpp: ignore_eos).",
        _ => "a chunk may carry several tokens, so this may not mean the server stopped early; a server that honours stream_options.include_usage says. If it did stop early, ask it to ignore end-of-sequence (vLLM and llama.cpp: ignore_eos).",
    })
}

/// `Warning::WarmCache`'s message.
fn warm_cache(w: &Warning) -> String {
    let Warning::WarmCache {
        cached_tokens,
        prompt_tokens,
    } = w
    else {
        return String::new();
    };
    format!(
        "The run's first request found {cached_tokens}{} prompt tokens already in the server's prefix cache, before this run had sent anything: the cache was warm from an earlier run of these prompts (or other traffic), so the first requests' TTFT is not a cold start. Restart the server (or reset its prefix cache, e.g. vLLM's POST /reset_prefix_cache) before runs you compare, or vary the prompts (prefix_pool's seed, cache_bust).",
        prompt_tokens.map_or(String::new(), |p| format!(" of its {p}"))
    )
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
                    .filter(|(k, n)| !matches!(**k, "ok" | "cancelled_by_client") && **n > 0)
                    .map(|(k, n)| (k.to_string(), *n))
                    .collect(),
            });
        }
        for p in &self.phases {
            w.extend(pace_warnings(p));
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
        if a.ok > 0 && a.input_tokens_unknown > 0 {
            w.push(Warning::InputTokensUnknown {
                requests: a.input_tokens_unknown,
                ok: a.ok,
            });
        }
        if a.reconnects > 0 {
            w.push(Warning::Reconnects {
                requests: a.reconnects,
            });
        }
        if a.empty_answers > 0 {
            w.push(Warning::EmptyAnswers {
                empty: a.empty_answers,
                ok: a.ok,
            });
        }
        w.extend(length_warnings(a, requested));
        if let Some(warm) = self.warm_start {
            w.push(Warning::WarmCache {
                cached_tokens: warm.cached_tokens,
                prompt_tokens: warm.prompt_tokens,
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

/// A phase's lateness and, where its requests completed well below the offered rate, that.
fn pace_warnings(p: &PhaseStats) -> Vec<Warning> {
    let mut w = Vec::new();
    let late_p99 = p.metric(Metric::LatenessMs).p99.unwrap_or(0.0);
    let ttft_p50 = p.metric(Metric::TtftMs).p50.unwrap_or(0.0);
    let client_late = behind_schedule(late_p99, ttft_p50);
    if client_late {
        w.push(Warning::BehindSchedule {
            phase: p.name.clone(),
            lateness_p99_ms: late_p99,
            ttft_p50_ms: ttft_p50,
        });
    }
    if let Some(pace) = p.pace.filter(|pace| pace.fell_behind()) {
        w.push(Warning::FellBehind {
            phase: p.name.clone(),
            offered_req_per_s: pace.offered_req_per_s,
            completed_req_per_s: pace.completed_req_per_s,
            client_late,
        });
    }
    w
}

/// Output lengths against `max_tokens`: fewer, more (or both), saying who counted.
fn length_warnings(a: &PhaseStats, requested: &Requested) -> Vec<Warning> {
    let out = a.metric(Metric::OutputTokens);
    let (Some(asked), Some(min), Some(max)) = (requested.max_tokens, out.min, out.max) else {
        return Vec::new();
    };
    let counter = TokenCounter::of(a);
    let mut w = Vec::new();
    if min < asked as f64 {
        w.push(Warning::FewerTokens {
            asked,
            counter,
            min,
            mean: out.mean.unwrap_or(0.0),
        });
    }
    if max > asked as f64 {
        w.push(Warning::MoreTokens {
            asked,
            counter,
            max,
        });
    }
    w
}

#[cfg(test)]
mod tests;
