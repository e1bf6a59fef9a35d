//! The entry layer: the command line (`cli`), command dispatch, and the one mapping from every
//! outcome to an exit code. The commands here are thin: `workloads` (check, the original
//! tool's `run --target --model --workload`), `interactive`, `results` (parse, report;
//! `merge` joins a sharded run's shards, `merge_summaries` from their histograms;
//! `chromium` prints the report to PDF), `compare` (two runs, CI gates), `scripts` (list,
//! new), `calibrate`, `shell` (completions, man pages), `suggest` (a mistyped command),
//! `trials` (`--repeat`), `k8s` (the manifests of a sharded run), and `llmbench mock`.
//! Nothing below this layer imports it.
//!
//! Exit codes: 0 success; 1 an assertion or a `compare` gate failed; 2 usage, config, script
//! or output error; 3 the run finished but no request succeeded; 130 / 143 interrupted by
//! SIGINT / SIGTERM (after writing what was measured). README "Exit codes" is the one table.

pub mod calibrate;
pub mod chromium;
pub mod cli;
pub mod compare;
pub mod interactive;
pub mod k8s;
pub mod merge;
mod merge_summaries;
pub mod results;
pub mod runtime;
pub mod scripts;
pub mod shell;
pub mod suggest;
pub mod trials;
pub mod workloads;

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::Configs;
use crate::mock::MockConfig;
use crate::run::{RunError, RunOutcome};
use crate::settings::{self, LoadFlags};
use crate::units::ms_to_duration;
use cli::{Cli, Command, MockArgs, RunArgs};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
/// The run finished but no request succeeded.
pub const EXIT_NO_SUCCESS: u8 = 3;
pub const EXIT_USAGE: u8 = 2;

/// The command line's entry point: runs the command and returns the exit code.
pub fn main(cli: Cli) -> u8 {
    // `--threads auto` starts on one thread; a plan that needs more gets them in
    // `run_with_flags`, once the plan is known.
    let runtime = match runtime::build(cli.threads().before_plan()) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("llmbench: cannot start the async runtime: {e}");
            return EXIT_USAGE;
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Some(Command::Mock(args)) => serve_mock(args).await,
            Some(Command::Parse(args)) => results::parse(&args),
            Some(Command::Report(args)) => results::report(&args),
            Some(Command::Merge(args)) => merge_shards(&args),
            Some(Command::Check(args)) => workloads::check(&args),
            Some(Command::Run(args)) => workloads::run_workload(&args).await,
            Some(Command::Interactive(args)) => {
                interactive::interactive(&args.load, args.runtime.threads).await
            }
            Some(Command::Calibrate(args)) => calibrate::calibrate(&args).await,
            Some(Command::Compare(args)) => compare::compare(&args),
            Some(Command::Scripts) => scripts::list(),
            Some(Command::New(args)) => scripts::new(&args),
            None if cli.run.script.is_none() => interactive::no_script(&cli.run).await,
            Some(Command::K8s(args)) => k8s::k8s(&args),
            Some(Command::Completions(args)) => shell::completions(&args),
            Some(Command::Man(args)) => shell::man(&args),
            None => exit_code(&run_script(&cli.run).await),
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

/// `llmbench merge`: the shards' records (or, `--summaries-only`, their histograms) into one run.
fn merge_shards(args: &cli::MergeArgs) -> u8 {
    let merged = merge::shards(args).and_then(|inputs| {
        if args.summaries_only {
            merge_summaries::merge(&inputs, args)
        } else {
            merge::merge_records(&inputs, args)
        }
    });
    match merged {
        Ok(()) => EXIT_OK,
        Err(e) => usage_error(e),
    }
}

/// The exit code of a run, after saying why it failed where it did.
pub fn exit_code(result: &Result<RunOutcome, RunError>) -> u8 {
    match result {
        Ok(outcome) => {
            if let Some(e) = &outcome.feed_error {
                eprintln!(
                    "llmbench: the prompt generator failed: {}",
                    crate::escape::terminal(e)
                );
            }
            outcome_code(outcome)
        }
        Err(e) => usage_error(e),
    }
}

/// Prints an error the way every llmbench command does (escaped for the terminal: it may
/// carry a server's text) and returns exit code 2.
pub fn usage_error(e: impl std::fmt::Display) -> u8 {
    eprintln!("llmbench: {}", crate::escape::terminal(&e.to_string()));
    EXIT_USAGE
}

/// How a finished run maps to an exit code.
pub fn outcome_code(o: &RunOutcome) -> u8 {
    if let Some(signal) = o.interrupted {
        signal.exit_code()
    } else if o.feed_error.is_some() {
        EXIT_USAGE
    } else if o.summary.all.ok == 0 {
        EXIT_NO_SUCCESS
    } else if o.verdicts.iter().any(|v| !v.passed) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// Runs a plan with the flags of a load-running command: `threads` its `--threads` (with
/// `auto`, a plan that needs more than one thread runs on a runtime of its own), `model` its
/// model override, `label` what ran (for the run metadata).
pub async fn run_with_flags(
    plan: crate::plan::Plan,
    flags: &LoadFlags,
    threads: settings::Threads,
    model: Option<&str>,
    label: &str,
) -> Result<RunOutcome, RunError> {
    let overrides = flags.overrides(model, |var| std::env::var(var).ok())?;
    let plan = settings::apply(plan, &overrides)?;
    if let Some(path) = &flags.output.junit {
        check_output_file("--junit", path).map_err(RunError::Usage)?;
    }
    let shard = flags.control.shard(|var| std::env::var(var).ok())?;
    let repeat = flags.control.repeat.or(plan.repeat).unwrap_or(1);
    if let (Some(s), true) = (shard, repeat > 1) {
        return Err(RunError::Usage(format!(
            "--shard {s} with {repeat} trials (--repeat or the script's repeat): a sharded run is one trial; run the shards once per trial, and merge each"
        )));
    }
    let threads = match threads {
        settings::Threads::Fixed(_) => 1,
        settings::Threads::Auto => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let choice = settings::threads::choose(&plan, shard, cores);
            if choice.threads > 1 {
                eprintln!(
                    "llmbench: --threads auto: {} threads ({})",
                    choice.threads, choice.why
                );
            }
            choice.threads
        }
    };
    let work = move || async move {
        if repeat > 1 {
            trials::run(plan, repeat, flags, label).await
        } else {
            let mut settings = flags.settings(label);
            settings.shard = shard;
            crate::run::run(plan, &settings, Vec::new()).await
        }
    };
    let outcome = if threads > 1 {
        runtime::run_on(threads, work)
            .map_err(|e| RunError::Usage(format!("cannot start the async runtime: {e}")))??
    } else {
        work().await?
    };
    if let Some(path) = &flags.output.junit {
        write_junit(path, &outcome)?;
    }
    if !flags.output.no_compare_report
        && outcome.files().is_some()
        && outcome.summary.all.requests > 0
    {
        refresh_comparison(&flags.output);
    }
    Ok(outcome)
}

/// The run's JUnit file: one case per assertion, and one saying whether any request succeeded.
fn write_junit(path: &std::path::Path, o: &RunOutcome) -> Result<(), RunError> {
    use crate::outcome::ci::{Case, junit};
    let all = &o.summary.all;
    let mut cases = vec![Case {
        name: "at least one request succeeded".into(),
        passed: all.ok > 0,
        message: format!("{} of {} requests succeeded", all.ok, all.requests),
    }];
    cases.extend(o.verdicts.iter().map(|v| Case {
        name: v.name.clone(),
        passed: v.passed,
        message: v.value.clone(),
    }));
    crate::run::write_atomic(path, junit(o.run_id(), &cases))
}

/// An output file's folder must exist and accept files (checked before any work, so a bad
/// path never costs a run).
pub fn check_output_file(flag: &str, path: &std::path::Path) -> Result<(), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if dir.is_some_and(|d| !d.is_dir()) {
        return Err(format!(
            "{flag} {}: the folder does not exist; create it or pick another path",
            path.display()
        ));
    }
    crate::record::layout::check_folder_writable(dir.unwrap_or(std::path::Path::new("."))).map_err(
        |e| {
            format!(
                "{flag} {}: cannot write there ({e}); pick another path",
                path.display()
            )
        },
    )
}

/// Rewrites the comparison report over every run in the results folder (a failure is a
/// warning: the run's own results are written).
fn refresh_comparison(output: &settings::OutputFlags) {
    let templates = settings::templates_folder(output.templates.as_ref());
    match results::refresh_comparison(&output.results, templates.as_ref()) {
        Ok((md, n)) => println!(
            "comparison:  {} ({n} run{} in {})",
            md.display(),
            if n == 1 { "" } else { "s" },
            output.results.display()
        ),
        Err(e) => eprintln!(
            "llmbench: warning: the comparison report was not rewritten: {}",
            crate::escape::terminal(&e)
        ),
    }
}

/// `llmbench SCRIPT.rhai`: evaluates the script, applies the flags, and runs it.
pub async fn run_script(args: &RunArgs) -> Result<RunOutcome, RunError> {
    let path = args
        .script
        .as_deref()
        .ok_or_else(|| RunError::Usage("no script given: llmbench SCRIPT.rhai".into()))?;
    if let Some(message) = suggest::unknown_script(path) {
        return Err(RunError::Usage(message));
    }
    let configs = Configs::new(&args.load.output.configs);
    let overrides = args.set.iter().cloned().collect();
    let plan = crate::script::load_with_access(
        path,
        &configs,
        &overrides,
        &access(args.load.connection.api_key_env.as_deref()),
    )?;
    run_with_flags(
        plan,
        &args.load,
        args.runtime.threads,
        args.model.as_deref(),
        &path.display().to_string(),
    )
    .await
}

/// What a script may read: the variables in `LLMBENCH_ALLOW_ENV` and the one `--api-key-env`
/// names.
fn access(api_key_env: Option<&str>) -> crate::script::Access {
    let access = crate::script::Access::from_env();
    match api_key_env {
        Some(var) => access.allowing(var),
        None => access,
    }
}

async fn serve_mock(args: MockArgs) -> u8 {
    let config = MockConfig {
        ttft: ms_to_duration(args.ttft_ms),
        ttft_jitter: ms_to_duration(args.ttft_jitter_ms),
        itl: ms_to_duration(args.itl_ms),
        output_tokens: args.output_tokens,
        tail: ms_to_duration(args.tail_ms),
        model: args.model,
        faults: crate::mock::FaultConfig {
            seed: args.faults.seed,
            fail_rate: args.faults.fail_rate,
            rate_limit_rate: args.faults.rate_limit_rate,
            drop_rate: args.faults.drop_rate,
            garbage_rate: args.faults.garbage_rate,
            stall_rate: args.faults.stall_rate,
            stall: ms_to_duration(args.faults.stall_ms),
            require_key: args.faults.require_key,
        },
        max_running: args.max_running,
        threads: args.runtime.threads.before_plan(),
        prefix_cache: crate::mock::PrefixCacheConfig {
            blocks: args.prefix_cache,
            block_tokens: args.block_tokens.max(1),
            per_token: std::time::Duration::from_secs_f64(args.ttft_per_token_us / 1e6),
        },
        usage: !args.no_usage,
    };
    if let Err(e) = config.faults.validate() {
        eprintln!("llmbench mock: {e}");
        return EXIT_USAGE;
    }
    match crate::mock::serve_until_ctrl_c(config, SocketAddr::new(args.host, args.port)).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!(
                "llmbench mock: cannot listen on {}:{}: {e}; pick another --port",
                args.host, args.port
            );
            EXIT_USAGE
        }
    }
}
