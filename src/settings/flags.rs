//! The flags every command that runs load shares, grouped once (request and load, connection,
//! output, telemetry, run control) and flattened into `llmbench SCRIPT`, `llmbench run`,
//! `llmbench interactive` and `llmbench check` (which shows the plan they make). The runtime
//! group goes into the commands that send or serve (`llmbench SCRIPT`, `run`, `interactive`,
//! `mock`, `calibrate`), so a flag shows only in the help of commands it affects. Pure clap definitions
//! and value parsers: no I/O. `Settings` (the parent module) turns them into what a run uses.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Every flag group of a command that runs load.
#[derive(Debug, Clone, Default, Args)]
pub struct LoadFlags {
    #[command(flatten)]
    pub shape: ShapeFlags,
    #[command(flatten)]
    pub connection: ConnectionFlags,
    #[command(flatten)]
    pub output: OutputFlags,
    #[command(flatten)]
    pub telemetry: TelemetryFlags,
    #[command(flatten)]
    pub control: ControlFlags,
}

/// The request and the load, for the common cases without editing a script.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Request and load (override the script's)")]
pub struct ShapeFlags {
    /// The endpoint requests go to: chat (/chat/completions) or completions (/completions).
    #[arg(long, value_name = "ENDPOINT", value_parser = endpoint)]
    pub endpoint: Option<crate::plan::Endpoint>,
    /// Stream responses (server-sent events).
    #[arg(long, overrides_with = "no_stream")]
    pub stream: bool,
    /// Ask for whole responses (TTFT is then the whole response's time).
    #[arg(long, overrides_with = "stream")]
    pub no_stream: bool,
    /// max_tokens of every request.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens: Option<u32>,
    /// Arrivals per second of the workload's phase (open loop; one measured phase only).
    #[arg(long, value_name = "RATE", value_parser = positive_rate)]
    pub rps: Option<f64>,
    /// Most requests in flight in the workload's phase.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// Seconds the workload's phase lasts (replaces its request count unless --requests is
    /// given too).
    #[arg(long, value_name = "SECONDS", value_parser = positive)]
    pub duration: Option<f64>,
    /// Requests the workload's phase sends (replaces its duration unless --duration is
    /// given too).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
}

/// `chat` or `completions`.
fn endpoint(s: &str) -> Result<crate::plan::Endpoint, String> {
    match s {
        "chat" => Ok(crate::plan::Endpoint::Chat),
        "completions" => Ok(crate::plan::Endpoint::Completions),
        _ => Err(format!(
            "{s:?} is not an endpoint: give chat or completions"
        )),
    }
}

/// A rate above 0 (requests per second).
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("{s:?} is not a rate above 0, e.g. 5 or 0.5")),
    }
}

/// The async runtime that sends requests or serves them: `llmbench SCRIPT`, `run`,
/// `interactive`, `mock` and `calibrate` take it.
#[derive(Debug, Clone, Args)]
pub struct RuntimeFlags {
    /// Threads that send requests and read responses: auto (the default) or a count. auto
    /// takes one (the cheapest per request, about 11 µs of CPU per streamed chunk on a 2-core
    /// VM) unless the plan's rate would keep one thread over half busy or its closed loop
    /// starts 500 streams or more together; mock and calibrate take one.
    #[arg(long, value_name = "N|auto", default_value = "auto", value_parser = super::Threads::parse)]
    pub threads: super::Threads,
}

impl Default for RuntimeFlags {
    fn default() -> Self {
        Self {
            threads: super::Threads::Auto,
        }
    }
}

/// Where requests go and how they get there: the server, its key, timeouts, retries, TLS,
/// proxy, the preflight check.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectionFlags {
    /// Base URL of the server, up to the API version (overrides the script's or config's
    /// target), e.g. http://127.0.0.1:8000/v1.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Name of the environment variable that holds the API key (the key itself never goes on
    /// the command line).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Whole-request timeout in seconds, send to last byte (overrides the script's `timeout`).
    #[arg(long, value_name = "SECONDS", value_parser = positive)]
    pub timeout: Option<f64>,
    /// Seconds allowed to establish a connection (TCP and TLS) [default: 10].
    #[arg(long, value_name = "SECONDS", value_parser = positive)]
    pub connect_timeout: Option<f64>,
    /// Seconds from the send to the first content (or the whole body when not streaming).
    #[arg(long, value_name = "SECONDS", value_parser = positive)]
    pub first_token_timeout: Option<f64>,
    /// Retry a request up to N times after a connection failure, 429 or 5xx that came before
    /// any content (off by default: a retry hides failures and distorts latency).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// PEM file of CA certificates to trust besides the system's (for https targets).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Accept any TLS certificate (recorded in the run metadata).
    #[arg(long)]
    pub insecure: bool,
    /// Send requests through this proxy (HTTP(S)_PROXY is ignored otherwise).
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Skip the one-request check of the target before the run.
    #[arg(long)]
    pub no_preflight: bool,
}

/// Where configs are read and results written.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputFlags {
    /// Folder for raw/, summary/, reports/ and runs/.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// Folder holding targets.yaml, models.yaml and workloads.yaml.
    #[arg(long, value_name = "DIR", default_value = "configs")]
    pub configs: PathBuf,
    /// Folder of report templates overriding the built-in ones (default: ./templates if present).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Do not show the progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Also write the run's results as JSON to FILE (schema llmbench.run/1, see README).
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,
    /// Do not rewrite reports/benchmark_report.md and .html (the comparison of every run in
    /// the results folder) after the run.
    #[arg(long)]
    pub no_compare_report: bool,
    /// Write a JUnit XML file with one test case per assertion (and one saying whether any
    /// request succeeded), for CI systems to show.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Label the run (server version, GPU, config, git sha), repeatable; reports and compare
    /// name and group runs by their labels. Wins over the script's label of the same key.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = crate::record::parse_label)]
    pub labels: Vec<(String, String)>,
}

impl Default for OutputFlags {
    fn default() -> Self {
        Self {
            results: PathBuf::from("results"),
            configs: PathBuf::from("configs"),
            templates: None,
            no_progress: false,
            export_json: None,
            no_compare_report: false,
            junit: None,
            labels: Vec::new(),
        }
    }
}

/// GPU and server telemetry during the run, and llmbench's own live metrics.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Telemetry")]
pub struct TelemetryFlags {
    /// Scrape this Prometheus endpoint during the run (repeatable), e.g.
    /// http://127.0.0.1:8000/metrics for vLLM or a DCGM exporter's /metrics.
    #[arg(long, value_name = "URL")]
    pub scrape: Vec<String>,
    /// Telemetry sampling interval, milliseconds (NVML and scrapes) [default: the script's, else 500].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..))]
    pub telemetry_every_ms: Option<u64>,
    /// Do not read local GPUs through NVML (set LLMBENCH_NO_NVML=1 on machines without an
    /// NVIDIA GPU to make this the default).
    #[arg(long, env = "LLMBENCH_NO_NVML", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_nvml: bool,
    /// GPU indices to read through NVML, e.g. 0,1 (default: all).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub gpus: Option<Vec<u32>>,
    /// Serve llmbench's own counters and latency histograms in Prometheus format here while
    /// the run goes, e.g. 127.0.0.1:9464 (see configs/grafana/llmbench.json).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// How a run stops.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Run control")]
pub struct ControlFlags {
    /// Seconds to wait for in-flight requests after Ctrl-C or SIGTERM before cancelling them.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = non_negative)]
    pub grace: f64,
    /// Run the plan N times, each trial a run of its own, and report each metric's
    /// across-trial mean with a confidence interval and its coefficient of variation.
    /// [default: the script's repeat(N), else 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: Option<u32>,
    /// Seconds to wait between trials.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, value_parser = non_negative)]
    pub cooldown: f64,
    /// Confidence level of the across-trial intervals, percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 95.0, value_parser = level)]
    pub level: f64,
    /// Run shard I of N of the plan (0-based), e.g. 0/4: this process sends its share of the
    /// load, and llmbench merge joins the shards' runs into one.
    #[arg(long, value_name = "I/N", env = "LLMBENCH_SHARD")]
    pub shard: Option<crate::plan::Shard>,
    /// Run one shard of N, its index taken from JOB_COMPLETION_INDEX (set by a Kubernetes
    /// Indexed Job).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub shards: Option<u32>,
    /// Wait until this wall-clock time before the first phase (RFC 3339, e.g.
    /// 2026-05-01T12:00:00Z, or Unix milliseconds), so the shards of a run start together.
    #[arg(long, value_name = "TIME", value_parser = start_time)]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A wall-clock time: RFC 3339 or Unix milliseconds.
pub fn start_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let s = s.trim();
    let parsed = match s.parse::<i64>() {
        Ok(ms) => chrono::DateTime::from_timestamp_millis(ms),
        Err(_) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc)),
    };
    parsed.ok_or_else(|| {
        format!(
            "{s:?} is not a time: give RFC 3339 (e.g. 2026-05-01T12:00:00Z) or Unix milliseconds (e.g. 1777636800000)"
        )
    })
}

impl Default for ControlFlags {
    fn default() -> Self {
        Self {
            grace: 30.0,
            repeat: None,
            cooldown: 0.0,
            level: 95.0,
            shard: None,
            shards: None,
            start_at: None,
        }
    }
}

/// A confidence level in percent, above 50 and below 100.
pub fn level(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 50.0 && x < 100.0 => Ok(x),
        _ => Err(format!(
            "{s:?} is not a confidence level: give a percent between 50 and 100, e.g. 95"
        )),
    }
}

/// A number of seconds above 0.
pub fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("{s:?} is not a number of seconds above 0, e.g. 30")),
    }
}

/// A finite number of 0 or more.
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x >= 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("{s:?} is not a number of 0 or more")),
    }
}

/// `NAME=VALUE`, for `--set`.
pub fn name_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not NAME=VALUE, e.g. --set rps=20")),
    }
}
