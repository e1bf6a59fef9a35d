//! The metrics every phase reports (`Metric`): their CSV keys, report labels and histogram
//! units.

/// The latency and token metrics every phase reports, in CSV column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Time to first token, from the actual send.
    TtftMs,
    /// Time to the first answer token (after any reasoning), from the actual send.
    TtftAnswerMs,
    /// Time to first token, from the intended start (includes queueing and lateness).
    TtftIntendedMs,
    /// Time per output token after the first.
    TpotMs,
    /// Gap between consecutive content chunks, pooled over requests.
    ItlMs,
    /// End-to-end latency, from the actual send to the last content.
    E2elMs,
    /// End-to-end latency from the intended start.
    E2elIntendedMs,
    /// Wait for a concurrency slot.
    QueueMs,
    /// Scheduler lateness: released minus intended.
    LatenessMs,
    /// Output tokens per second of a request's E2EL.
    OutputTokS,
    /// Prompt tokens per request (server usage).
    InputTokens,
    /// Output tokens per request.
    OutputTokens,
    /// Time to stream close: from the actual send to `[DONE]` or the end of the body (last in
    /// the CSV, which only ever gains columns at its end).
    StreamCloseMs,
}

impl Metric {
    pub const ALL: [Metric; 13] = [
        Metric::TtftMs,
        Metric::TtftAnswerMs,
        Metric::TtftIntendedMs,
        Metric::TpotMs,
        Metric::ItlMs,
        Metric::E2elMs,
        Metric::E2elIntendedMs,
        Metric::QueueMs,
        Metric::LatenessMs,
        Metric::OutputTokS,
        Metric::InputTokens,
        Metric::OutputTokens,
        Metric::StreamCloseMs,
    ];

    /// Column prefix, e.g. `ttft_ms` in `ttft_ms_p95`.
    pub fn key(self) -> &'static str {
        match self {
            Metric::TtftMs => "ttft_ms",
            Metric::TtftAnswerMs => "ttft_answer_ms",
            Metric::TtftIntendedMs => "ttft_intended_ms",
            Metric::TpotMs => "tpot_ms",
            Metric::ItlMs => "itl_ms",
            Metric::E2elMs => "e2el_ms",
            Metric::E2elIntendedMs => "e2el_intended_ms",
            Metric::QueueMs => "queue_ms",
            Metric::LatenessMs => "lateness_ms",
            Metric::OutputTokS => "output_tok_s",
            Metric::InputTokens => "input_tokens",
            Metric::OutputTokens => "output_tokens",
            Metric::StreamCloseMs => "stream_close_ms",
        }
    }

    /// Human label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Metric::TtftMs => "TTFT (ms)",
            Metric::TtftAnswerMs => "Time to first answer token (ms)",
            Metric::TtftIntendedMs => "TTFT from intended start (ms)",
            Metric::TpotMs => "TPOT (ms)",
            Metric::ItlMs => "ITL (ms)",
            Metric::E2elMs => "E2E latency (ms)",
            Metric::E2elIntendedMs => "E2E latency from intended start (ms)",
            Metric::QueueMs => "Queue time (ms)",
            Metric::LatenessMs => "Scheduler lateness (ms)",
            Metric::OutputTokS => "Output tokens/s per request",
            Metric::InputTokens => "Input tokens per request",
            Metric::OutputTokens => "Output tokens per request",
            Metric::StreamCloseMs => "Time to stream close (ms)",
        }
    }

    /// Histogram units per displayed unit: µs for milliseconds, thousandths for the rest.
    pub(super) fn scale(self) -> f64 {
        match self {
            Metric::InputTokens | Metric::OutputTokens => 1.0,
            _ => 1000.0,
        }
    }
}
