//! `llmbench calibrate`: how much error llmbench itself adds on this machine, and where its limits
//! are.
//!
//! Runs the built-in mock in-process (on its own thread and runtime, same monotonic clock) and
//! drives it through the ordinary run pipeline (`run::run`, writing nothing: the records are
//! collected in memory) at rising stream counts and
//! rising open-loop rates (evenly spaced arrivals, short responses). A stream step holds N
//! streams in flight the way a busy server sees them: Poisson arrivals at N / (request length)
//! per second, streams at 25 tokens/s each, measured once the count has built up (closed-loop
//! lanes would start together and keep every token of every stream in lock-step). The mock logs when
//! it really read each request and wrote its first token, so per request:
//!
//! - added TTFT error (`added_ttft_us`) = the TTFT llmbench measured minus the TTFT the mock
//!   really produced: both ways over the connection plus everything llmbench does in between;
//! - scheduler lateness = `dispatched_us - intended_us`;
//! - achieved rate = (requests - 1) / (last dispatch - first dispatch), open-loop steps only.
//!
//! A step is sustained when it had no errors, its added error p50 is under 1 ms, it kept its
//! schedule by the run warning's own criterion (`stats::behind_schedule`: lateness p99 at most
//! 1 ms or 5 % of the TTFT p50) and (open loop) its achieved rate is within 1% of the requested
//! one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::cli::CalibrateArgs;
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::mock::{MOCK_MODEL, MockConfig, MockServer, MockTiming};
use crate::plan::{
    Arrival, Endpoint, MockSpec, Phase, Plan, Prompt, RequestSpec, Target, TelemetrySpec,
};
use crate::record::{Outcome, RequestRecord};
use crate::run::{MemorySink, RunError};
use crate::settings::Settings;
use crate::stats::sample::Sample;

/// Added TTFT error (p50) a sustained step stays under, ms.
pub const MAX_ADDED_P50_MS: f64 = 1.0;
/// Largest shortfall of the achieved rate a sustained open-loop step may have.
pub const MAX_RATE_SHORTFALL: f64 = 0.01;

/// The TTFT error llmbench added to one request, µs: the TTFT it measured (first token read
/// minus request sent, `RequestRecord::ttft_us`) minus the TTFT the server really produced
/// (`server_ttft_us`: first token written minus request body read, from the server's own
/// clock). Each side uses only its own clock, so it holds for a server in another process.
/// `None` when the request has no TTFT.
pub fn added_ttft_us(record: &RequestRecord, server_ttft_us: u64) -> Option<i64> {
    Some(record.ttft_us()? as i64 - server_ttft_us as i64)
}

/// Up to this many streams a step runs closed-loop lanes; above it, spread-out arrivals.
const FEW_STREAMS: u32 = 16;

/// How a step sends its load.
#[derive(Debug, Clone, Copy)]
enum Sending {
    /// A few streams: that many closed-loop lanes.
    Lanes(u32),
    /// Many streams: Poisson arrivals that keep that many in flight on average.
    Spread(u32),
    /// Evenly spaced arrivals at this rate.
    Rate(f64),
}

impl Sending {
    fn of(load: Load) -> Self {
        match load {
            Load::Streams(c) if c <= FEW_STREAMS => Self::Lanes(c),
            Load::Streams(c) => Self::Spread(c),
            Load::Rate(r) => Self::Rate(r),
        }
    }
}

/// What one step asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Closed loop: this many concurrent streams.
    Streams(u32),
    /// Open loop: this many requests per second.
    Rate(f64),
}

/// What one step measured (times in ms).
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub load: Load,
    pub requests: u64,
    pub errors: u64,
    /// Open loop only.
    pub achieved_rate: Option<f64>,
    pub lateness_p50_ms: f64,
    pub lateness_p99_ms: f64,
    /// TTFT p50 as llmbench measured it (what lateness is weighed against).
    pub ttft_p50_ms: f64,
    pub added_p50_ms: f64,
    pub added_p99_ms: f64,
}

impl StepResult {
    /// No errors, added p50 under 1 ms, on schedule as a run's warning judges it (lateness
    /// p99), and (open loop) the rate held within 1%.
    pub fn sustained(&self) -> bool {
        let rate_held = match (self.load, self.achieved_rate) {
            (Load::Rate(r), Some(a)) => a >= r * (1.0 - MAX_RATE_SHORTFALL),
            (Load::Rate(_), None) => false,
            (Load::Streams(_), _) => true,
        };
        self.errors == 0
            && self.requests > 0
            && self.added_p50_ms < MAX_ADDED_P50_MS
            && !crate::stats::behind_schedule(self.lateness_p99_ms, self.ttft_p50_ms)
            && rate_held
    }

    fn line(&self) -> String {
        let (kind, level, achieved) = match self.load {
            Load::Streams(c) => ("streams", c.to_string(), "-".to_owned()),
            Load::Rate(r) => (
                "rate",
                format!("{r}/s"),
                self.achieved_rate
                    .map_or("-".into(), |a| format!("{a:.1}/s")),
            ),
        };
        format!(
            "{kind:<8} {level:>8} {:>8} {achieved:>11} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>6}  {}",
            self.requests,
            self.lateness_p50_ms,
            self.lateness_p99_ms,
            self.added_p50_ms,
            self.added_p99_ms,
            self.errors,
            if self.sustained() { "yes" } else { "no" },
        )
    }
}

const HEADER: &str = "step        level requests    achieved  late p50  late p99 added p50 added p99 errors  sustained";

/// The command: runs every step, prints a line each, then the limits found.
pub async fn calibrate(args: &CalibrateArgs) -> u8 {
    if args.streams.contains(&0) || args.rates.iter().any(|&r| !(r > 0.0 && r.is_finite())) {
        eprintln!(
            "llmbench calibrate: --streams and --rates take positive numbers, e.g. --streams 1,16 --rates 100,500"
        );
        return EXIT_USAGE;
    }
    println!(
        "llmbench calibrate: built-in mock in this process; times in ms (late: scheduler lateness; added: TTFT error llmbench adds)"
    );
    println!("{HEADER}");
    let mut results = Vec::new();
    let steps = args
        .streams
        .iter()
        .map(|&c| Load::Streams(c))
        .chain(args.rates.iter().map(|&r| Load::Rate(r)));
    for load in steps {
        match step(load, args).await {
            Ok(r) => {
                println!("{}", r.line());
                results.push(r);
            }
            Err(e) => {
                eprintln!("llmbench calibrate: step {load:?} failed: {e}");
                return EXIT_FAILED;
            }
        }
    }
    let best_rate = results
        .iter()
        .filter(|r| r.sustained())
        .filter_map(|r| match r.load {
            Load::Rate(x) => Some(x),
            Load::Streams(_) => None,
        })
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let best_streams = results
        .iter()
        .filter(|r| r.sustained())
        .filter_map(|r| match r.load {
            Load::Streams(c) => Some(c),
            Load::Rate(_) => None,
        })
        .max();
    println!(
        "highest rate sustained (added p50 < {MAX_ADDED_P50_MS} ms, on schedule, rate within {:.0}%, no errors): {}",
        MAX_RATE_SHORTFALL * 100.0,
        best_rate.map_or("none of the levels tried".into(), |r| format!("{r} req/s"))
    );
    println!(
        "most streams sustained (added p50 < {MAX_ADDED_P50_MS} ms, on schedule, no errors): {}",
        best_streams.map_or("none of the levels tried".into(), |c| c.to_string())
    );
    EXIT_OK
}

/// Runs one step against a fresh mock (request ids restart with each run) and measures it.
pub async fn step(load: Load, args: &CalibrateArgs) -> Result<StepResult, RunError> {
    let sending = Sending::of(load);
    let mock = mock_for(sending);
    let server = MockServer::start(mock.clone(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(|e| RunError::Usage(format!("cannot start the mock on 127.0.0.1: {e}")))?;
    let duration = Duration::from_secs_f64(args.duration);
    // How long one request lasts at the mock's pace.
    let length = mock.ttft + mock.itl * mock.output_tokens.saturating_sub(1);
    let phases = phases_for(sending, length, duration);
    let built_up_us = match sending {
        Sending::Spread(_) => length.as_micros() as u64,
        Sending::Lanes(_) | Sending::Rate(_) => 0,
    };
    let plan = plan_for(load, server.base_url(), &mock, phases);
    let settings = Settings {
        grace: Duration::from_secs(1),
        preflight: false,
        ..Settings::in_memory("calibrate")
    };
    let collected = MemorySink::new();
    let outcome = crate::run::run(plan, &settings, vec![Box::new(collected.clone())]).await?;
    if let Some(signal) = outcome.interrupted {
        return Err(RunError::Usage(format!("interrupted ({signal:?})")));
    }
    let records = collected.take();
    let log = server.timings();
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .ok();
    Ok(measure(load, &records, &log, built_up_us))
}

/// The mock's pace for a step: what kind of load it sends decides how long a response is.
fn mock_for(sending: Sending) -> MockConfig {
    match sending {
        // A few streams: short requests, so a few seconds hold many of them.
        Sending::Lanes(_) => MockConfig {
            ttft: Duration::from_millis(20),
            itl: Duration::from_millis(5),
            output_tokens: 16,
            ..MockConfig::default()
        },
        // A busy server's pace: 100 ms to the first token, then 25 tokens/s per stream.
        Sending::Spread(_) => MockConfig {
            ttft: Duration::from_millis(100),
            itl: Duration::from_millis(40),
            output_tokens: 32,
            ..MockConfig::default()
        },
        // Short responses: the rate, not the streams, is what is tested.
        Sending::Rate(_) => MockConfig {
            ttft: Duration::from_millis(5),
            itl: Duration::from_millis(1),
            output_tokens: 4,
            ..MockConfig::default()
        },
    }
}

/// The phases of a step, given how long one request lasts and how long to measure.
fn phases_for(sending: Sending, length: Duration, duration: Duration) -> Vec<Phase> {
    match sending {
        // A few streams: that many lanes, each sending its next request when the last ends
        // (in step with each other, which costs nothing at this count).
        Sending::Lanes(c) => {
            let requests = (c as f64 * duration.as_secs_f64() / length.as_secs_f64()).ceil();
            vec![phase(
                "measure",
                false,
                Some((requests as u64).max(c as u64 * 4)),
                None,
                None,
                Some(c),
            )]
        }
        // Arrivals for the build-up plus `duration`; requests that started during the build-up
        // (fewer than N in flight) are left out of the measurement below.
        Sending::Spread(c) => vec![Phase {
            arrival: Arrival::Poisson,
            seed: 1,
            ..phase(
                "measure",
                false,
                None,
                Some(length + duration),
                Some(c as f64 / length.as_secs_f64()),
                None,
            )
        }],
        Sending::Rate(r) => vec![
            phase(
                "warmup",
                true,
                None,
                Some(Duration::from_millis(300)),
                Some(r),
                None,
            ),
            phase("measure", false, None, Some(duration), Some(r), None),
        ],
    }
}

/// The plan of a step: streamed chat requests to the mock at `base_url`, no telemetry.
fn plan_for(load: Load, base_url: String, mock: &MockConfig, phases: Vec<Phase>) -> Plan {
    Plan {
        workload: match load {
            Load::Streams(c) => format!("calibrate-streams-{c}"),
            Load::Rate(r) => format!("calibrate-rate-{r}"),
        },
        target: Some(Target {
            name: "mock".into(),
            base_url,
            api_key: None,
        }),
        model: Some(MOCK_MODEL.into()),
        known_models: Vec::new(),
        mock: MockSpec::default(),
        request: RequestSpec {
            endpoint: Endpoint::Chat,
            max_tokens: Some(mock.output_tokens),
            stream: true,
            prompt: Prompt::Text("calibrate".into()),
            system: None,
            body: Default::default(),
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
            tokenizer: None,
        },
        phases,
        telemetry: TelemetrySpec {
            nvml: false,
            ..Default::default()
        },
        slo: None,
        assertions: Vec::new(),
        params: Default::default(),
        attainment: None,
        repeat: None,
        labels: Default::default(),
        cancel: Default::default(),
    }
}

/// A step's result from its records and the mock's log, leaving out warmup and build-up.
fn measure(
    load: Load,
    records: &[RequestRecord],
    log: &HashMap<u64, MockTiming>,
    built_up_us: u64,
) -> StepResult {
    let mut lateness = Vec::new();
    let mut added = Vec::new();
    let mut ttft = Vec::new();
    let mut dispatched = Vec::new();
    let mut errors = 0;
    let first_us = records.iter().map(|r| r.intended_us).min().unwrap_or(0);
    let measured = records
        .iter()
        .filter(|r| !r.warmup && r.intended_us >= first_us + built_up_us);
    for r in measured {
        lateness.push(r.lateness_us() as f64 / 1000.0);
        ttft.extend(r.ttft_us().map(|us| us as f64 / 1000.0));
        dispatched.push(r.dispatched_us);
        if r.outcome != Outcome::Ok {
            errors += 1;
        }
        let server_ttft = log.get(&r.id).and_then(|t| t.ttft());
        if let Some(us) = server_ttft.and_then(|t| added_ttft_us(r, t.as_micros() as u64)) {
            added.push(us as f64 / 1000.0);
        }
    }
    let achieved_rate = match load {
        Load::Rate(_) if dispatched.len() > 1 => {
            let span = dispatched.iter().max().unwrap() - dispatched.iter().min().unwrap();
            (span > 0).then(|| (dispatched.len() - 1) as f64 * 1e6 / span as f64)
        }
        _ => None,
    };
    let (lateness, added) = (Sample::new(lateness), Sample::new(added));
    StepResult {
        load,
        requests: lateness.len() as u64,
        errors,
        achieved_rate,
        lateness_p50_ms: lateness.quantile(0.5),
        lateness_p99_ms: lateness.quantile(0.99),
        ttft_p50_ms: Sample::new(ttft).quantile(0.5),
        added_p50_ms: added.quantile(0.5),
        added_p99_ms: added.quantile(0.99),
    }
}

fn phase(
    name: &str,
    warmup: bool,
    requests: Option<u64>,
    duration: Option<Duration>,
    rate: Option<f64>,
    concurrency: Option<u32>,
) -> Phase {
    Phase {
        name: name.into(),
        duration,
        requests,
        rate,
        concurrency,
        arrival: Arrival::Constant,
        seed: 0,
        warmup,
        ramp: Default::default(),
        sweep: None,
        replay: None,
        cancel: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sustained_needs_the_lateness_p99_the_run_warning_needs() {
        let step = |lateness_p99_ms| StepResult {
            load: Load::Rate(500.0),
            requests: 1000,
            errors: 0,
            achieved_rate: Some(500.0),
            lateness_p50_ms: 0.05,
            lateness_p99_ms,
            ttft_p50_ms: 5.5,
            added_p50_ms: 0.2,
            added_p99_ms: 0.9,
        };
        assert!(step(0.4).sustained());
        // p99 lateness 44 ms against a 5.5 ms TTFT: a run would warn, so it is not sustained.
        assert!(!step(44.0).sustained());
        assert_eq!(
            step(44.0).sustained(),
            !crate::stats::behind_schedule(44.0, 5.5)
        );
    }
}
