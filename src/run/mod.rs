//! The run pipeline: evaluates the script, applies command-line overrides, starts the mock when
//! no target is configured, opens every output file before the first request, drives the
//! scheduler and client, streams records to disk and statistics, handles Ctrl-C, renders the
//! reports and maps the result to an exit code (0 ok, 1 nothing succeeded, 2 bad input, 130
//! interrupted).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::analysis::Analyzer;
use crate::cli::{Cli, Command, MockArgs, RunArgs};
use crate::client::preflight::{self, PreflightError};
use crate::client::{Client, ClientError, ClientOptions, PhaseLabel};
use crate::clock::Clock;
use crate::config::{ConfigError, Configs};
use crate::feed::Feed;
use crate::mock::{MOCK_MODEL, MockConfig, MockServer};
use crate::plan::{ApiKey, Arrival, Phase, Plan, Target};
use crate::progress::Progress;
use crate::record::RequestRecord;
use crate::report::{Files, RenderError, Renderer, ReportContext, RunInfo};
use crate::schedule::Scheduler;
use crate::script::{self, ScriptError};
use crate::stats::Summary;
use crate::telemetry::Telemetry;
use crate::telemetry::summary::TelemetrySummary;

mod outputs;

pub use outputs::{RunFiles, write_atomic};
use outputs::{check_results_writable, open_outputs};

/// Exit codes.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

/// Everything that stops a run before or while it starts; all are the user's to fix (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Preflight(#[from] PreflightError),
}

/// How a finished run went.
#[derive(Debug, Clone)]
pub struct Finished {
    pub run_id: String,
    pub files: RunFiles,
    pub summary: Summary,
    /// Telemetry over the measured windows (empty when nothing was sampled).
    pub telemetry: TelemetrySummary,
    /// The run's clock: record stamps are microseconds since its origin.
    pub clock: Clock,
    pub interrupted: bool,
    /// The prompt generator failed mid-run (a script error).
    pub feed_error: Option<String>,
    /// The script's assertions, evaluated against `summary`.
    pub verdicts: Vec<crate::verdict::Verdict>,
    /// What a capacity sweep found, if the plan held one.
    pub sweep: Option<crate::sweep::SweepOutcome>,
}

impl Finished {
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            EXIT_INTERRUPTED
        } else if self.feed_error.is_some() {
            EXIT_USAGE
        } else if self.summary.all.ok == 0 || self.verdicts.iter().any(|v| !v.passed) {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }
}

/// The command line's entry point: runs the command and returns the exit code.
pub fn main(cli: Cli) -> u8 {
    // One thread drives every request by default: no hand-offs between threads on the
    // per-chunk path, which is most of llmbench's own CPU time (see benches/RESULTS.md).
    let mut builder = match cli.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n as usize);
            b
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("llmbench: cannot start the async runtime: {e}");
            return EXIT_USAGE;
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Some(Command::Mock(args)) => serve_mock(args, cli.threads).await,
            Some(Command::Parse(args)) => crate::commands::parse(&args),
            Some(Command::Report(args)) => crate::commands::report(&args),
            Some(Command::Check(args)) => crate::commands::check(&args),
            Some(Command::Run(args)) => crate::commands::run_workload(&args).await,
            Some(Command::Interactive(args)) => crate::commands::interactive(&args.output).await,
            Some(Command::Calibrate(args)) => crate::calibrate::calibrate(&args).await,
            None if cli.run.script.is_none() => crate::commands::no_script(&cli.run).await,
            None => exit_code_of(run_script(&cli.run).await),
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

/// Reports how a run ended and returns its exit code.
pub fn exit_code_of(result: Result<Finished, RunError>) -> u8 {
    match result {
        Ok(finished) => {
            if let Some(e) = &finished.feed_error {
                eprintln!("llmbench: the prompt generator failed: {e}");
            }
            finished.exit_code()
        }
        Err(e) => {
            eprintln!("llmbench: {e}");
            EXIT_USAGE
        }
    }
}

async fn serve_mock(args: MockArgs, threads: u16) -> u8 {
    let config = MockConfig {
        ttft: Duration::from_secs_f64(args.ttft_ms / 1000.0),
        itl: Duration::from_secs_f64(args.itl_ms / 1000.0),
        output_tokens: args.output_tokens,
        model: args.model,
        faults: crate::mock::FaultConfig {
            seed: args.faults.seed,
            fail_rate: args.faults.fail_rate,
            rate_limit_rate: args.faults.rate_limit_rate,
            drop_rate: args.faults.drop_rate,
            garbage_rate: args.faults.garbage_rate,
            stall_rate: args.faults.stall_rate,
            stall: Duration::from_secs_f64(args.faults.stall_ms / 1000.0),
            require_key: args.faults.require_key,
        },
        max_running: args.max_running,
        threads: threads as usize,
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

/// Evaluates the script, applies the flags, and runs it.
pub async fn run_script(args: &RunArgs) -> Result<Finished, RunError> {
    let path = args
        .script
        .as_deref()
        .ok_or_else(|| RunError::Usage("no script given: llmbench SCRIPT.rhai".into()))?;
    let configs = Configs::new(&args.configs);
    let overrides = args.set.iter().cloned().collect();
    let mut plan = script::load_with(path, &configs, &overrides)?;
    if let Some(url) = &args.url {
        plan.target = Some(Target {
            name: url_host(url),
            base_url: url.clone(),
            api_key: plan.target.as_ref().and_then(|t| t.api_key.clone()),
        });
    }
    if let Some(model) = &args.model {
        plan.model = Some(model.clone());
    }
    plan.telemetry
        .prometheus
        .extend(args.scrape.iter().cloned());
    plan.telemetry.every = Duration::from_millis(args.telemetry_every_ms);
    plan.telemetry.nvml &= !args.no_nvml;
    if let Some(gpus) = &args.gpus {
        plan.telemetry.gpus = Some(gpus.clone());
    }
    let conn = &args.connection;
    if let Some(t) = conn.timeout {
        plan.request.timeout = Duration::from_secs_f64(t);
    }
    if let Some(var) = &args.api_key_env {
        let key = std::env::var(var).map_err(|_| {
            RunError::Usage(format!(
                "--api-key-env {var}: the variable is not set; export {var}=<key> first"
            ))
        })?;
        let target = plan.target.as_mut().ok_or_else(|| {
            RunError::Usage("--api-key-env needs a target: add --url or target(...)".into())
        })?;
        target.api_key = Some(ApiKey::new(key));
    }
    if let Some(out) = &args.export_json {
        let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            return Err(RunError::Usage(format!(
                "--export-json {}: the folder does not exist; create it or pick another path",
                out.display()
            )));
        }
    }
    let options = Options {
        templates: templates_folder(args.templates.as_ref()),
        progress: !args.no_progress,
        grace: Duration::from_secs_f64(args.grace),
        export_json: args.export_json.clone(),
        client: ClientOptions {
            connect_timeout: conn.connect_timeout.map(Duration::from_secs_f64),
            first_token_timeout: conn.first_token_timeout.map(Duration::from_secs_f64),
            retries: conn.retries,
            ca_cert: conn.ca_cert.clone(),
            insecure: conn.insecure,
            proxy: conn.proxy.clone(),
        },
        preflight: !conn.no_preflight,
        metrics_listen: args.metrics_listen,
        ..Options::new(path, &args.results)
    };
    execute(plan, &options).await
}

/// How to run a plan, beyond the plan itself.
#[derive(Debug, Clone)]
pub struct Options {
    pub script: PathBuf,
    pub results: PathBuf,
    pub templates: Option<PathBuf>,
    pub progress: bool,
    /// How long in-flight requests may finish after Ctrl-C.
    pub grace: Duration,
    /// Also write the run as JSON (`--export-json`, schema in `export`).
    pub export_json: Option<PathBuf>,
    /// Timeouts, retries, TLS and proxy.
    pub client: ClientOptions,
    /// Send one request before the run to check the target (see `client::preflight`).
    pub preflight: bool,
    /// Serve llmbench's own live metrics here during the run (`--metrics-listen`).
    pub metrics_listen: Option<SocketAddr>,
    /// Print no summary to standard output (the caller reports; files are written as ever).
    pub quiet: bool,
}

impl Options {
    /// Options for running `script` into `results`: no progress bar, built-in templates, 30 s
    /// of grace after Ctrl-C, default client settings, the preflight check, a printed summary.
    pub fn new(script: impl Into<PathBuf>, results: impl Into<PathBuf>) -> Self {
        Self {
            script: script.into(),
            results: results.into(),
            templates: None,
            progress: false,
            grace: Duration::from_secs(30),
            export_json: None,
            client: ClientOptions::default(),
            preflight: true,
            metrics_listen: None,
            quiet: false,
        }
    }
}

/// The templates folder a run uses: the one given, else `./templates` when it exists.
pub fn templates_folder(given: Option<&PathBuf>) -> Option<PathBuf> {
    given
        .cloned()
        .or_else(|| Some(PathBuf::from("templates")).filter(|p| p.is_dir()))
}

/// Runs a plan to the end (or to Ctrl-C) and writes every output.
pub async fn execute(plan: Plan, options: &Options) -> Result<Finished, RunError> {
    let mock = match &plan.target {
        Some(_) => None,
        None => Some(start_mock(&plan)?),
    };
    let target = match (&plan.target, &mock) {
        (Some(t), _) => t.clone(),
        (None, Some(m)) => Target {
            name: "mock".into(),
            base_url: m.base_url(),
            api_key: None,
        },
        (None, None) => unreachable!("a mock starts when there is no target"),
    };
    let model = match (&plan.model, &mock) {
        (Some(m), _) => m.clone(),
        (None, Some(_)) => MOCK_MODEL.to_owned(),
        (None, None) => {
            return Err(RunError::Usage(
                "no model: add model(\"NAME\") to the script or pass --model NAME".into(),
            ));
        }
    };
    if let Some(m) = &mock {
        eprintln!(
            "llmbench: no target configured; using the built-in mock server at {} (TTFT {} ms, ITL {} ms, {} tokens)",
            m.base_url(),
            plan.mock.ttft_ms,
            plan.mock.itl_ms,
            plan.mock.output_tokens
        );
    }

    // Every stream needs a connection (twice over with the mock in this process).
    let streams = plan.concurrency_cap() * if mock.is_some() { 2 } else { 1 };
    crate::host::ensure_fd_limit(streams).map_err(|e| RunError::Usage(e.to_string()))?;
    let clock = Clock::start();
    let started = chrono::DateTime::<chrono::Utc>::from(clock.wall_start());
    let client = Arc::new(Client::with_options(
        &target,
        &plan.request,
        plan.max_concurrency(),
        clock,
        &options.client,
    )?);
    // An unwritable results folder fails before any request, the preflight included.
    check_results_writable(&options.results)?;
    if options.preflight
        && let Some(warning) = client
            .preflight(preflight::body(&plan.request, &model))
            .await?
    {
        eprintln!("llmbench: {warning}");
    }
    // Every output's folder exists and the raw file is open before the first request.
    let (run_id, files, writer) = open_outputs(&options.results, &started, &target, &model, &plan)?;
    let renderer = Renderer::new(options.templates.clone());
    let telemetry =
        Telemetry::start(&plan.telemetry, clock, &files.telemetry).map_err(|source| {
            RunError::Io {
                what: "cannot create the telemetry file",
                path: files.telemetry.clone(),
                source,
            }
        })?;

    let live = match options.metrics_listen {
        None => None,
        Some(addr) => {
            let listener = crate::live::bind(addr).await.map_err(|e| {
                RunError::Usage(format!(
                    "--metrics-listen {addr}: cannot listen there ({e}); pick a free port, e.g. 127.0.0.1:9464"
                ))
            })?;
            let live = Arc::new(crate::live::Live::new(
                &run_id,
                &plan.workload,
                &target.name,
                &model,
            ));
            eprintln!(
                "llmbench: live metrics at http://{}/metrics",
                listener.local_addr().map_or(addr, |a| a)
            );
            Some((live.clone(), crate::live::serve(listener, live)))
        }
    };
    let (bodies, feed_status) = Feed::start(&plan.request, &model).split();
    let (record_tx, record_rx) = mpsc::unbounded_channel::<RequestRecord>();
    let mut progress = Progress::new(plan.expected_requests(), options.progress);
    let slo = plan.slo;
    let sink_live = live.as_ref().map(|(l, _)| l.clone());
    let sink = std::thread::Builder::new()
        .name("llmbench-records".into())
        .spawn(move || {
            let mut writer = writer;
            let mut stats = Analyzer::new().with_slo(slo);
            let mut rx = record_rx;
            let mut write_error = None;
            while let Some(rec) = rx.blocking_recv() {
                if write_error.is_none()
                    && let Err(e) = writer.append(&rec)
                {
                    write_error = Some(format!("{}: {e}", writer.path().display()));
                }
                stats.add(&rec);
                progress.record(&rec);
                if let Some(live) = &sink_live {
                    live.record(&rec);
                }
            }
            progress.finish();
            (stats, write_error)
        })
        .map_err(|e| RunError::Usage(format!("cannot start the record writer: {e}")))?;

    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let ctrl_c = tokio::spawn(watch_ctrl_c(stop.clone(), abort.clone(), options.grace));

    let mut scheduler = Scheduler::new(clock, bodies, stop.clone());
    // Phases as they ran (a sweep step's rate is set from the measured saturation).
    let mut ran_phases = Vec::new();
    let mut saturation = None;
    let busy = crate::host::BusyMeter::start();
    for (index, phase) in plan.phases.iter().enumerate() {
        let phase = &crate::sweep::resolve(phase, saturation);
        ran_phases.push(phase.clone());
        let label = Arc::new(PhaseLabel {
            name: phase.name.clone(),
            warmup: phase.warmup,
        });
        let (client, tx, abort) = (client.clone(), record_tx.clone(), abort.clone());
        let live = live.as_ref().map(|(l, _)| l.clone());
        let exec = move |dispatch: crate::schedule::Dispatch, body: Bytes| {
            let (client, label, tx, abort) =
                (client.clone(), label.clone(), tx.clone(), abort.clone());
            if let Some(live) = live.as_ref().filter(|_| dispatch.admitted_us.is_some()) {
                live.sent();
            }
            async move {
                let record = client.execute(dispatch, &label, body, &abort).await;
                let _ = tx.send(record);
            }
        };
        let ran = scheduler.run_phase(index, phase, exec).await;
        if phase.sweep == Some(crate::plan::SweepStep::Saturation) {
            saturation = crate::sweep::saturation_rps(&ran);
        }
        if stop.is_cancelled() || ran.feed_exhausted {
            break;
        }
    }
    ctrl_c.abort();
    let busy_warning = busy.and_then(|b| b.warning());
    if let Some((_, server)) = &live {
        server.abort();
    }
    let collected = telemetry.stop().await;
    drop(scheduler);
    drop(record_tx);
    let feed_error = tokio::task::spawn_blocking(move || feed_status.failure())
        .await
        .unwrap_or(Some("the prompt generator panicked".into()));
    let (stats, write_error) = tokio::task::spawn_blocking(move || sink.join())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| RunError::Usage("the record writer stopped unexpectedly".into()))?;
    drop(mock);

    let interrupted = stop.is_cancelled();
    let analysis = stats.finish();
    let summary = analysis.summary;
    let telemetry = crate::analysis::telemetry_over(&collected.readings, &summary);
    let verdicts = crate::verdict::evaluate(&plan.assertions, &summary);
    let sweep = crate::sweep::outcome(
        &ran_phases,
        saturation,
        &summary,
        plan.slo.as_ref(),
        plan.attainment.unwrap_or(crate::sweep::DEFAULT_ATTAINMENT),
    );
    let requested = crate::stats::Requested {
        max_tokens: plan.request.max_tokens,
        fixed_prompt: matches!(plan.request.prompt, crate::plan::Prompt::Text(_)),
    };
    let mut warnings = summary.warnings(&requested);
    warnings.extend(busy_warning);
    if let Some(e) = &write_error {
        warnings.insert(0, format!("Writing raw records failed ({e}); the raw file is incomplete, but these statistics cover every request."));
    }
    if let Some(e) = &feed_error {
        warnings.insert(
            0,
            format!("The prompt generator failed, so the run stopped early: {e}"),
        );
    }
    let info = RunInfo {
        id: run_id.clone(),
        workload: plan.workload.clone(),
        script: options.script.display().to_string(),
        target: target.name.clone(),
        base_url: target.base_url.clone(),
        model: model.clone(),
        endpoint: plan.request.endpoint.name().into(),
        stream: plan.request.stream,
        mock: plan.target.is_none(),
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        wall_s: clock.now_us() as f64 / 1e6,
        interrupted,
        llmbench_version: env!("CARGO_PKG_VERSION").into(),
        host: host_description(),
        phases: ran_phases.iter().map(describe_phase).collect(),
        max_tokens: requested.max_tokens,
        fixed_prompt: requested.fixed_prompt,
    };
    let shown = |p: &Path| p.display().to_string();
    let ctx = ReportContext::new(
        &info,
        &summary,
        &analysis.timeline,
        &warnings,
        Files {
            raw: shown(&files.raw),
            csv: shown(&files.csv),
            markdown: shown(&files.markdown),
            html: shown(&files.html),
            metadata: shown(&files.metadata),
        },
    )
    .with_telemetry(
        &summary,
        &analysis.timeline,
        &telemetry,
        &collected.readings,
    )
    .with_verdicts(plan.slo, &verdicts)
    .with_sweep(sweep.as_ref());
    let report = renderer.run_report(&ctx)?;
    write_atomic(&files.csv, &report.csv)?;
    write_atomic(&files.markdown, &report.markdown)?;
    write_atomic(&files.html, &report.html)?;
    if let Some(path) = &options.export_json {
        let export = crate::export::RunExport::new(&info, &summary, &analysis.timeline, &warnings);
        write_atomic(path, &crate::export::to_json(&export))?;
    }
    let metadata = serde_json::json!({
        "run": &info,
        "plan": &plan,
        "target": &target,
        "client": &options.client,
        "summary": &summary,
        "telemetry": &telemetry,
        "warnings": &warnings,
        "assertions": &verdicts,
        "sweep": &sweep,
    });
    write_atomic(
        &files.metadata,
        &serde_json::to_string_pretty(&metadata).expect("metadata serializes"),
    )?;
    // A closed stdout (`| head`) is not an error: everything is already on disk.
    let sweep_line = sweep
        .as_ref()
        .map(|s| format!("\n{}", crate::sweep::describe(s)))
        .unwrap_or_default();
    if !options.quiet {
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}{sweep_line}\n\nraw records: {}\nsummary:     {}\nreports:     {}\n             {}",
            report.terminal.trim_end(),
            files.raw.display(),
            files.csv.display(),
            files.markdown.display(),
            files.html.display()
        );
    }
    Ok(Finished {
        run_id,
        files,
        summary,
        telemetry,
        clock,
        interrupted,
        feed_error,
        verdicts,
        sweep,
    })
}

fn start_mock(plan: &Plan) -> Result<MockServer, RunError> {
    let config = MockConfig {
        ttft: Duration::from_secs_f64(plan.mock.ttft_ms / 1000.0),
        itl: Duration::from_secs_f64(plan.mock.itl_ms / 1000.0),
        output_tokens: plan.mock.output_tokens,
        model: MOCK_MODEL.into(),
        faults: crate::mock::FaultConfig::default(),
        max_running: plan.mock.max_running,
        ..MockConfig::default()
    };
    MockServer::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).map_err(|e| {
        RunError::Usage(format!(
            "cannot start the built-in mock server on 127.0.0.1: {e}"
        ))
    })
}

/// First Ctrl-C: no new arrivals, in-flight requests get `grace` to finish, then are cancelled.
/// Second Ctrl-C: exit now (every completed record is already on disk).
async fn watch_ctrl_c(stop: CancellationToken, abort: CancellationToken, grace: Duration) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    stop.cancel();
    eprintln!(
        "\nllmbench: stopping; no new requests, in-flight ones get {:.0} s to finish (Ctrl-C again quits now)",
        grace.as_secs_f64()
    );
    let timer = {
        let abort = abort.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            abort.cancel();
        })
    };
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("llmbench: quitting now; completed requests are in the raw records");
        std::process::exit(EXIT_INTERRUPTED as i32);
    }
    timer.abort();
}

fn url_host(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .filter(|h| !h.is_empty())
        .unwrap_or(url)
        .to_owned()
}

fn host_description() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown host".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{name} ({cores} cores, {} {})",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// One line per phase, e.g. `steady: 5 req/s poisson, concurrency 10, 300 s`.
pub fn describe_phase(p: &Phase) -> String {
    let rate = match (&p.ramp.rate, p.sweep, p.rate) {
        (Some(crate::plan::Shape::Linear { from, to }), _, _) => Some(format!("ramp {from}→{to}")),
        (Some(crate::plan::Shape::Steps(v)), _, _) => Some(format!("steps {v:?}")),
        (None, Some(crate::plan::SweepStep::Fraction(f)), Some(r)) if r == f => {
            Some(format!("{f:.2} × saturation"))
        }
        (None, _, Some(r)) => Some(
            format!("{r:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned(),
        ),
        (None, _, None) => None,
    };
    let load = match rate {
        Some(r) => format!(
            "{r} req/s {}, {}",
            match p.arrival {
                Arrival::Constant => "constant",
                Arrival::Poisson => "poisson",
            },
            match (&p.ramp.concurrency, p.concurrency) {
                (Some(crate::plan::Shape::Linear { from, to }), _) =>
                    format!("concurrency cap ramp {from}→{to}"),
                (Some(crate::plan::Shape::Steps(v)), _) => format!("concurrency cap steps {v:?}"),
                (None, Some(c)) => format!("concurrency cap {c}"),
                (None, None) => "no concurrency cap".into(),
            }
        ),
        None => format!("closed loop, {} concurrent", p.concurrency.unwrap_or(1)),
    };
    let bound = match (p.duration, p.requests) {
        (Some(d), Some(n)) => format!("{} s or {n} requests", d.as_secs_f64()),
        (Some(d), None) => format!("{} s", d.as_secs_f64()),
        (None, Some(n)) => format!("{n} requests"),
        (None, None) => "unbounded".into(),
    };
    let warm = if p.warmup { " (warmup)" } else { "" };
    format!("{}: {load}, {bound}{warm}", p.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_named_by_its_address() {
        assert_eq!(url_host("http://127.0.0.1:8000/v1"), "127.0.0.1:8000");
    }
}
