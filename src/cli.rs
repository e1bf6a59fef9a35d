//! The command line: clap definitions and typed arguments, no I/O.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "llmbench",
    version,
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in mock OpenAI server with known timing.
    Mock(MockArgs),
    /// Evaluate a script and print its plan (phases, rates, expected requests, target with
    /// secrets redacted) without sending a request.
    Check(CheckArgs),
    /// Run a workload from configs/workloads.yaml against a target from configs/targets.yaml
    /// (the original llm-benchmark command).
    Run(WorkloadArgs),
    /// Ask for target, model and workload (Enter accepts the defaults: a 5-minute high-load
    /// run), show the equivalent command line, then run. `llmbench` alone in a terminal does this.
    Interactive(InteractiveArgs),
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
    /// Folder holding targets.yaml and models.yaml.
    #[arg(long, value_name = "DIR", default_value = "configs")]
    pub configs: PathBuf,
}

/// `llmbench run --target T --model M --workload W`.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// Target name from targets.yaml (`mock`, when the file has no such target: the built-in
    /// mock server).
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// Model name from models.yaml (or the name the server knows).
    #[arg(long, value_name = "NAME")]
    pub model: String,
    /// Workload name from workloads.yaml: low-load, medium-load, high-load, stress-test.
    #[arg(long, value_name = "NAME")]
    pub workload: String,
    /// Override a workload param: duration, rps, concurrency, input_tokens, output_tokens
    /// (repeatable, e.g. --set duration=60).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = name_value)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `llmbench interactive`.
#[derive(Debug, Args)]
pub struct InteractiveArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where configs are read and results written, for commands that run a workload.
#[derive(Debug, Args)]
pub struct OutputArgs {
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
}

fn name_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not NAME=VALUE, e.g. --set rps=20")),
    }
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
    /// Base URL of the server, up to the API version (overrides the script's target),
    /// e.g. http://127.0.0.1:8000/v1.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Model name to send (overrides the script's model).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Name of the environment variable that holds the API key (the key itself never goes on
    /// the command line).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Folder for raw/, summary/, reports/ and runs/.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// Folder holding targets.yaml and models.yaml.
    #[arg(long, value_name = "DIR", default_value = "configs")]
    pub configs: PathBuf,
    /// Folder of report templates overriding the built-in ones (default: ./templates if present).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Seconds to wait for in-flight requests after Ctrl-C before cancelling them.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = non_negative)]
    pub grace: f64,
    /// Do not show the progress bar.
    #[arg(long)]
    pub no_progress: bool,
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
    /// Time between tokens, ms.
    #[arg(long, default_value_t = 10.0, value_parser = non_negative)]
    pub itl_ms: f64,
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
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x >= 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("{s:?} is not a number of 0 or more")),
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
        assert!(matches!(c.command, Some(Command::Run(w)) if w.workload == "high-load"));
        assert!(Cli::try_parse_from(["llmbench", "mock", "--itl-ms", "-3"]).is_err());
    }
}
