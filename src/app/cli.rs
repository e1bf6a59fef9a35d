//! The command line: clap definitions and typed arguments, no I/O. The flags shared by every
//! command that runs load are defined once in `settings::flags` and flattened in here.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::flags::{level, name_value, non_negative};
use crate::settings::{LoadFlags, RuntimeFlags};

#[derive(Debug, Parser)]
#[command(
    name = "llmbench",
    version = env!("LLMBENCH_VERSION"),
    about = "Load tests and benchmarks LLM servers that speak the OpenAI API",
    long_about = "Runs a workload script (Rhai) against an OpenAI-compatible server and writes raw \
records, a summary CSV and Markdown/HTML reports under results/. With no target configured, \
it starts its built-in mock server.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

impl Cli {
    /// Threads of the async runtime: the `--threads` of a command that sends requests or
    /// serves them; 1 for the others.
    pub fn threads(&self) -> crate::settings::Threads {
        match &self.command {
            None => self.run.runtime.threads,
            Some(Command::Run(a)) => a.runtime.threads,
            Some(Command::Interactive(a)) => a.runtime.threads,
            Some(Command::Mock(a)) => a.runtime.threads,
            Some(Command::Calibrate(a)) => a.runtime.threads,
            Some(_) => crate::settings::Threads::Fixed(1),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in mock OpenAI server with known timing.
    Mock(MockArgs),
    /// Recompute the summary CSV of runs from their raw records.
    Parse(ParseArgs),
    /// Compare runs: writes results/reports/benchmark_report.md and .html.
    Report(ReportArgs),
    /// Merge the shard runs of one sharded run into one run (raw records, summary, reports,
    /// metadata), with the statistics parse computes over their records.
    Merge(MergeArgs),
    /// Evaluate a script and print its plan (phases, rates, expected requests, target with
    /// secrets redacted) without sending a request; takes a run's flags and shows their effect.
    Check(CheckArgs),
    /// Run a workload from configs/workloads.yaml against a target from configs/targets.yaml
    /// (the original llm-benchmark command; each left out takes its default).
    Run(WorkloadArgs),
    /// Ask for target, model and workload (Enter accepts the defaults: a 5-minute high-load
    /// run), show the equivalent command line, then run. `llmbench` alone in a terminal does this.
    Interactive(InteractiveArgs),
    /// Measure the TTFT error llmbench adds and the rate and stream count this machine
    /// sustains, against the built-in mock in this process.
    Calibrate(CalibrateArgs),
    /// List the workload scripts available by name (built in, in scripts/ and on
    /// LLMBENCH_SCRIPT_PATH): `llmbench NAME` runs one.
    Scripts,
    /// Write a commented starter script, NAME.rhai, to edit into a workload of your own.
    New(NewArgs),
    /// Is the difference between two runs real? Each key metric's change with a bootstrap
    /// confidence interval and a verdict, and regression gates for CI (exit 1 when one fails).
    Compare(CompareArgs),
    /// Print the Kubernetes manifests of a sharded run (the workload ConfigMap, an Indexed Job
    /// of shards with one start time, and the Job that merges them) as YAML.
    K8s(K8sArgs),
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell.
    ///
    /// e.g. llmbench completions bash > ~/.local/share/bash-completion/completions/llmbench,
    /// llmbench completions zsh > ~/.zfunc/_llmbench,
    /// llmbench completions fish > ~/.config/fish/completions/llmbench.fish
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a folder.
    Man(ManArgs),
}

/// `llmbench new NAME`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The script's name or path (`.rhai` is added when missing).
    #[arg(value_name = "NAME")]
    pub name: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `llmbench compare BASE NEW`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The run compared against: a run id or a raw records file.
    #[arg(value_name = "BASE")]
    pub base: String,
    /// The run under test: a run id or a raw records file.
    #[arg(value_name = "NEW")]
    pub new: String,
    /// Fail (exit 1) when the change is significant and beyond the threshold, e.g.
    /// 'ttft_ms_p95 > +10%', 'e2el_ms_p99 > +50', 'success_rate < -0.5' (repeatable).
    #[arg(long, value_name = "CONDITION")]
    pub fail_on: Vec<String>,
    /// Confidence level of the intervals, percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 95.0, value_parser = level)]
    pub level: f64,
    /// Bootstrap resamples per metric.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(100..=100_000))]
    pub resamples: u32,
    /// Seed of the resampling (the same seed gives the same intervals).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Folder holding raw/ (where run ids are looked up).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// Write a JUnit XML file with one test case per gate condition.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Append the comparison as Markdown (a pull-request comment; GitHub's
    /// $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// Write the comparison as JSON (schema llmbench.compare/1).
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,
}

/// `llmbench k8s`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    /// Shards: pods that each send their share of the plan's requests.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub shards: u32,
    /// The workload script, carried in a ConfigMap.
    #[arg(long, value_name = "FILE")]
    pub script: PathBuf,
    /// The server's base URL as the pods reach it, e.g. http://vllm.default.svc:8000/v1.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// More files the script reads (datasets, modules), inside the script's folder; they are
    /// mounted beside it at the same relative paths (repeatable).
    #[arg(long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The run's name: the Kubernetes objects' names and the results folder on the volume
    /// (default: llmbench- and the start time).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The llmbench image the pods run (build it from the Containerfile).
    #[arg(long, value_name = "IMAGE", default_value = concat!("llmbench:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// The Secret holding the API key; without one no key is sent.
    #[arg(long, value_name = "NAME")]
    pub api_key_secret: Option<String>,
    /// The key within that Secret.
    #[arg(long, value_name = "KEY", default_value = "api-key")]
    pub api_key_secret_key: String,
    /// The PersistentVolumeClaim (ReadWriteMany) every pod writes results to.
    #[arg(long, value_name = "NAME", default_value = "llmbench-results")]
    pub pvc: String,
    /// When every shard starts: RFC 3339 or Unix milliseconds.
    #[arg(long, value_name = "TIME", value_parser = crate::settings::flags::start_time)]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Without a start time: this many seconds from now (time to pull the image and schedule
    /// the pods).
    #[arg(long, value_name = "SECONDS", default_value_t = 180)]
    pub start_in: u64,
    /// CPU each shard asks for.
    #[arg(long, value_name = "QUANTITY", default_value = "2")]
    pub cpu: String,
    /// Memory each pod asks for.
    #[arg(long, value_name = "QUANTITY", default_value = "1Gi")]
    pub memory: String,
    /// The most memory a pod may use.
    #[arg(long, value_name = "QUANTITY", default_value = "2Gi")]
    pub memory_limit: String,
    /// Seconds after which Kubernetes stops a Job that has not finished.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub deadline: u64,
    /// Flags for every shard, after a lone double dash: e.g. `-- --set rps=400 --model m`.
    #[arg(last = true, value_name = "FLAGS")]
    pub extra: Vec<String>,
}

/// `llmbench completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `llmbench man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write llmbench.1 and a page per command (llmbench-run.1, ...) into DIR (created if
    /// missing) instead of printing llmbench.1.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `llmbench parse`: raw records back to the summary CSV.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Raw record files of runs, e.g. results/raw/*.jsonl.
    #[arg(required = true, value_name = "RAW.jsonl")]
    pub raw: Vec<PathBuf>,
    /// Write the CSV to this file instead of standard output (one raw file only).
    #[arg(long, value_name = "FILE", conflicts_with = "out_dir")]
    pub out: Option<PathBuf>,
    /// Write one CSV per run, DIR/<run-id>.csv (needed for several raw files; DIR is created
    /// if missing).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Folder of report templates overriding the built-in ones (default: ./templates if present).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// `llmbench merge SHARD_RUN...`: one run from the shards of a sharded run.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard runs: run ids, raw record files, results folders (every run in their raw/), or
    /// globs of these, e.g. 'results/raw/*_shard*.jsonl'.
    #[arg(required = true, value_name = "SHARD_RUN")]
    pub runs: Vec<String>,
    /// Folder where run ids are looked up and the merged run is written.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// Combine the shards' histograms and counters (summary/<id>.hdr.json) instead of their
    /// raw records: percentiles, counts and rates without moving the records.
    #[arg(long)]
    pub summaries_only: bool,
    /// Folder of report templates overriding the built-in ones (default: ./templates if present).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// `llmbench report`: the comparison report across runs.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Runs to compare: run ids, or paths of raw record files (default: every run in --results).
    #[arg(value_name = "RUN")]
    pub runs: Vec<String>,
    /// The run the others are compared against (an id or raw file; default: the earliest run).
    #[arg(long, value_name = "RUN")]
    pub baseline: Option<String>,
    /// Folder holding raw/, runs/ and reports/.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// Folder of report templates overriding the built-in ones (default: ./templates if present).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Also print the HTML report to PDF with headless Chromium (with one run named, that
    /// run's own report too).
    #[arg(long)]
    pub pdf: bool,
    /// Also write the comparison as JSON (schema llmbench.comparison/1).
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,
}

/// `llmbench check SCRIPT`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Workload script to evaluate.
    #[arg(value_name = "SCRIPT")]
    pub script: PathBuf,
    /// Override a script param: --set rps=20 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = name_value)]
    pub set: Vec<(String, String)>,
    /// Model name to send (overrides the script's model).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// The flags of a run, so that `check` shows the plan the same command line would run
    /// (an API key is only said to be there).
    #[command(flatten)]
    pub load: LoadFlags,
}

/// `llmbench run [--target T] [--model M] [--workload W]`.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// Target name from targets.yaml (`mock`, when the file has no such target: the built-in
    /// mock server) [default: the first in targets.yaml].
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// Model name from models.yaml (or the name the server knows) [default: the one the
    /// server serves; among several, the first of models.yaml it serves].
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Workload name from workloads.yaml: low-load, medium-load, high-load, stress-test
    /// [default: high-load].
    #[arg(long, value_name = "NAME")]
    pub workload: Option<String>,
    /// Override a workload param: duration, rps, concurrency, input_tokens, output_tokens
    /// (repeatable, e.g. --set duration=60).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = name_value)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub load: LoadFlags,
    #[command(flatten)]
    pub runtime: RuntimeFlags,
}

/// `llmbench interactive`.
#[derive(Debug, Args)]
pub struct InteractiveArgs {
    #[command(flatten)]
    pub load: LoadFlags,
    #[command(flatten)]
    pub runtime: RuntimeFlags,
}

/// `llmbench calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Concurrent-stream levels to try, closed loop.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [1, 16, 64, 256, 1000])]
    pub streams: Vec<u32>,
    /// Open-loop rates to try, requests per second.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [100.0, 500.0, 1000.0, 2000.0])]
    pub rates: Vec<f64>,
    /// Seconds each step measures (after a short warmup).
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0, value_parser = non_negative)]
    pub duration: f64,
    #[command(flatten)]
    pub runtime: RuntimeFlags,
}

/// Running a workload script.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workload script to run, e.g. scripts/quickstart.rhai. Without one, in a terminal,
    /// llmbench asks what to run (see `llmbench interactive`).
    #[arg(value_name = "SCRIPT")]
    pub script: Option<PathBuf>,
    /// Override a script param: --set rps=20 --set duration=60 (the script reads it with
    /// param("rps", 5)).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = name_value)]
    pub set: Vec<(String, String)>,
    /// Model name to send (overrides the script's model).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    #[command(flatten)]
    pub load: LoadFlags,
    #[command(flatten)]
    pub runtime: RuntimeFlags,
}

/// The mock server's settings.
#[derive(Debug, Args)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Time to first token, ms after the request arrives.
    #[arg(long, default_value_t = 50.0, value_parser = non_negative)]
    pub ttft_ms: f64,
    /// Spread of the time to first token: each request's is drawn uniformly from TTFT ± this
    /// many ms (by the seed, in arrival order), so the median stays at the TTFT.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub ttft_jitter_ms: f64,
    /// Time between tokens, ms.
    #[arg(long, default_value_t = 10.0, value_parser = non_negative)]
    pub itl_ms: f64,
    /// Time from the last content token to the end of the stream (usage chunk and [DONE]),
    /// ms: a proxy's tail, which E2EL leaves out and time to stream close shows.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub tail_ms: f64,
    /// Tokens per response (a request's max_tokens caps it).
    #[arg(long, default_value_t = 64)]
    pub output_tokens: u32,
    /// Model name the mock reports.
    #[arg(long, default_value = crate::mock::MOCK_MODEL)]
    pub model: String,
    /// Batch limit: at most N requests generate at once, the rest queue (saturation is then
    /// N / (TTFT + tokens × ITL) requests per second).
    #[arg(long, value_name = "N")]
    pub max_running: Option<u32>,
    /// Model a prefix cache of this many blocks (least recently used evicted): usage reports
    /// cached_tokens and the time to first token leaves out the cost of cached tokens.
    #[arg(long, value_name = "BLOCKS", default_value_t = 0)]
    pub prefix_cache: u32,
    /// Prompt tokens per prefix-cache block.
    #[arg(long, value_name = "B", default_value_t = 16)]
    pub block_tokens: u32,
    /// Time to first token added per prompt token not served from the cache, µs.
    #[arg(long, value_name = "C", default_value_t = 0.0, value_parser = non_negative)]
    pub ttft_per_token_us: f64,
    /// Send no usage (no token counts), like servers that ignore stream_options.include_usage.
    #[arg(long)]
    pub no_usage: bool,
    #[command(flatten)]
    pub runtime: RuntimeFlags,
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// Faults the mock injects, decided per request from the seed and the request id.
#[derive(Debug, Args)]
pub struct FaultArgs {
    /// Seed for choosing which requests get a fault (and for the TTFT jitter).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Share of requests answered with HTTP 500 and an error body (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fail_rate: f64,
    /// Share of requests answered with HTTP 429 and Retry-After (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub rate_limit_rate: f64,
    /// Share of responses whose connection is closed halfway through (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub drop_rate: f64,
    /// Share of responses with a malformed SSE line halfway through (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub garbage_rate: f64,
    /// Share of responses that pause for --stall-ms halfway through, then complete (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub stall_rate: f64,
    /// Length of a stall, ms.
    #[arg(long, default_value_t = 1000.0, value_parser = non_negative)]
    pub stall_ms: f64,
    /// Answer 401 to requests without `Authorization: Bearer KEY`.
    #[arg(long, value_name = "KEY")]
    pub require_key: Option<String>,
}

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "{s:?} is not a probability: give a number from 0 to 1, e.g. 0.05"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_script_or_a_subcommand() {
        let c = Cli::try_parse_from(["llmbench", "s.rhai", "--url", "http://h/v1"]).unwrap();
        assert_eq!(c.run.script, Some(PathBuf::from("s.rhai")));
        let c = Cli::try_parse_from(["llmbench", "mock", "--ttft-ms", "100"]).unwrap();
        assert!(matches!(c.command, Some(Command::Mock(m)) if m.ttft_ms == 100.0));
        assert!(
            Cli::try_parse_from(["llmbench"])
                .unwrap()
                .run
                .script
                .is_none()
        );
        let c = Cli::try_parse_from(["llmbench", "s.rhai", "--set", "rps=20", "--set", "d=1=2"])
            .unwrap();
        assert_eq!(
            c.run.set,
            vec![("rps".into(), "20".into()), ("d".into(), "1=2".into())]
        );
        assert!(Cli::try_parse_from(["llmbench", "s.rhai", "--set", "rps"]).is_err());
        let c = Cli::try_parse_from([
            "llmbench",
            "run",
            "--target",
            "t",
            "--model",
            "m",
            "--workload",
            "high-load",
        ])
        .unwrap();
        assert!(
            matches!(c.command, Some(Command::Run(w)) if w.workload.as_deref() == Some("high-load"))
        );
        assert!(Cli::try_parse_from(["llmbench", "mock", "--itl-ms", "-3"]).is_err());
    }

    #[test]
    fn threads_belong_to_the_commands_that_send_or_serve() {
        use crate::settings::Threads::{Auto, Fixed};
        let threads = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.threads());
        let fixed = [
            (&["llmbench", "--threads", "2", "s.rhai"][..], 2),
            (&["llmbench", "s.rhai", "--threads", "3"], 3),
            (&["llmbench", "mock", "--threads", "4"], 4),
            (&["llmbench", "calibrate", "--threads", "5"], 5),
            (&["llmbench", "interactive", "--threads", "6"], 6),
            (&["llmbench", "report"], 1),
        ];
        for (args, n) in fixed {
            assert_eq!(threads(args).unwrap(), Fixed(n), "{args:?}");
        }
        assert_eq!(threads(&["llmbench", "s.rhai"]).unwrap(), Auto);
        assert_eq!(
            threads(&["llmbench", "run", "--threads", "auto"]).unwrap(),
            Auto
        );
        assert!(threads(&["llmbench", "report", "--threads", "2"]).is_err());
        assert!(threads(&["llmbench", "parse", "--threads", "2", "r.jsonl"]).is_err());
        assert!(threads(&["llmbench", "mock", "--threads", "0"]).is_err());
    }
}
