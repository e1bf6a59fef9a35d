//! The first stage of a run: every check that can fail happens here, before the first request
//! (the preflight's one request aside). The script is tried first (`script_errors`: request 0's
//! prompt, every assertion against statistics of the run's shape). The target and model are
//! settled (the built-in mock is
//! started when the plan has no target; a plan without a model takes the one the server
//! serves, see `client::models`), the open-file limit is raised for the plan's
//! concurrency, the results folder and the `--export-json` folder are proven writable, the
//! report templates are compiled and rendered once against an empty run, the preflight request
//! checks the target, the live listener binds, the run id is claimed with its raw file (the last
//! step that can fail after it, starting telemetry, gives the claim back: a run that fails
//! before its first request leaves no file behind) and telemetry starts. A `Prepared` run holds
//! all of it, ready to measure.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::client::Client;
use crate::client::{models, preflight};
use crate::clock::Clock;
use crate::mock::{MOCK_MODEL, MockConfig, MockServer};
use crate::outcome::verdict;
use crate::plan::{Plan, Target};
use crate::record::{RecordWriter, RunFiles, layout};
use crate::report::Renderer;
use crate::run::live::{self, Live};
use crate::settings::{Outputs, Settings};
use crate::telemetry::Telemetry;
use crate::units::ms_to_duration;

use super::RunError;

/// What a run is: settled before the first request, carried to the end unchanged.
#[derive(Debug, Clone)]
pub struct RunSetup {
    pub plan: Plan,
    /// The target requests go to (the built-in mock's address when the plan has none).
    pub target: Target,
    pub model: String,
    pub settings: Settings,
    pub clock: Clock,
    /// Wall-clock time of the run clock's origin.
    pub started: chrono::DateTime<chrono::Utc>,
    pub run_id: String,
    /// Where the outputs go; `None` for a run that writes nothing.
    pub files: Option<RunFiles>,
}

/// A run ready to measure: every fallible check has passed.
pub struct Prepared {
    pub setup: RunSetup,
    pub(super) raw: Option<RecordWriter>,
    /// The compiled templates, when the run writes reports.
    pub(super) renderer: Option<Renderer>,
    pub(super) client: Arc<Client>,
    pub(super) telemetry: Telemetry,
    pub(super) live: Option<(Arc<Live>, tokio::task::JoinHandle<()>)>,
    /// The built-in mock, when the plan has no target; stopped when the run ends.
    pub(super) mock: Option<MockServer>,
}

/// Runs every check and sets everything up; nothing is measured yet.
pub async fn prepare(plan: Plan, settings: &Settings) -> Result<Prepared, RunError> {
    check_shard(&plan, settings)?;
    let errors = script_errors(&plan, &[0]);
    if !errors.is_empty() {
        return Err(RunError::ScriptFails(errors));
    }
    let mock = match &plan.target {
        Some(_) => None,
        None => Some(start_mock(&plan)?),
    };
    let target = run_target(&plan, mock.as_ref());
    // Every stream needs a connection (twice over with the mock in this process).
    let streams = plan.concurrency_cap() * if mock.is_some() { 2 } else { 1 };
    crate::host::ensure_fd_limit(streams).map_err(|e| RunError::Usage(e.to_string()))?;
    let renderer = match &settings.outputs {
        Outputs::Files {
            results,
            templates,
            export_json,
        } => {
            check_writable(results, export_json.as_deref())?;
            let renderer = Renderer::new(templates.clone());
            renderer.check()?;
            Some(renderer)
        }
        Outputs::Memory => None,
    };
    let clock = Clock::start();
    let started = chrono::DateTime::<chrono::Utc>::from(clock.wall_start());
    let client = Arc::new(Client::with_options(
        &target,
        &plan.request,
        plan.max_concurrency(),
        clock,
        &settings.client,
    )?);
    let model = run_model(&plan, mock.is_some(), &client).await?;
    if settings.preflight {
        let passed = client
            .preflight(preflight::body(&plan.request, &model))
            .await?;
        let mismatch = passed
            .answered_model
            .and_then(|answered| models::mismatch(&model, &answered));
        for warning in passed.busy.iter().chain(mismatch.iter()) {
            eprintln!("llmbench: {}", crate::escape::terminal(warning));
        }
    }
    let listener = match settings.metrics_listen {
        None => None,
        Some(addr) => Some(bind(addr).await?),
    };
    let base = run_base_id(&started, &target.name, &model, &plan.workload, settings);
    let (run_id, files, raw) = match &settings.outputs {
        Outputs::Files { results, .. } => {
            let (id, files, raw) = layout::claim(results, &base).map_err(|(path, source)| {
                RunError::Io {
                    what: "cannot create the raw records file (pass --results DIR to use another folder)",
                    path,
                    source,
                }
            })?;
            (id, Some(files), Some(raw))
        }
        Outputs::Memory => (base, None, None),
    };
    let telemetry_file = files.as_ref().map(|f| f.telemetry.as_path());
    let spec = shard_telemetry(&plan.telemetry, settings.shard);
    let telemetry = Telemetry::start(&spec, clock, telemetry_file).map_err(|source| {
        if let Some(files) = &files {
            unclaim(files);
        }
        RunError::Io {
            what: "cannot start telemetry",
            path: telemetry_file.unwrap_or(Path::new("")).to_owned(),
            source,
        }
    })?;
    let live = listener.map(|l| serve_live(l, &run_id, &plan.workload, &target.name, &model));
    Ok(Prepared {
        setup: RunSetup {
            plan,
            target,
            model,
            settings: settings.clone(),
            clock,
            started,
            run_id,
            files,
        },
        raw,
        renderer,
        client,
        telemetry,
        live,
        mock,
    })
}

/// What would fail in `plan`'s script whatever the server does, found before the first
/// request: the prompt of each of `requests` (made as the feed makes it, then dropped) and
/// every assertion against statistics of the run's shape (`verdict::dry_run`). Each error
/// names the script's file:line:col. A run tries request 0; `llmbench check` tries more.
pub fn script_errors(plan: &Plan, requests: &[u64]) -> Vec<String> {
    let model = plan.model.as_deref().unwrap_or(MOCK_MODEL);
    let prompt = super::feed::try_requests(&plan.request, model, requests).err();
    prompt.into_iter().chain(verdict::dry_run(plan)).collect()
}

/// A sharded run's plan must split into its shards (`schedule::shard::check`).
fn check_shard(plan: &Plan, settings: &Settings) -> Result<(), RunError> {
    match settings.shard {
        Some(shard) => crate::schedule::shard::check(plan, shard).map_err(RunError::Usage),
        None => Ok(()),
    }
}

/// The run id before any suffix; a shard's ends in `_shard<I>of<N>`.
fn run_base_id(
    started: &chrono::DateTime<chrono::Utc>,
    target: &str,
    model: &str,
    workload: &str,
    settings: &Settings,
) -> String {
    let base = layout::base_id(started, target, model, workload);
    match settings.shard {
        Some(s) => format!("{base}_shard{}of{}", s.index, s.count),
        None => base,
    }
}

/// What a shard samples: shard 0 scrapes the Prometheus endpoints, the others do not (no N×
/// load on the server's metrics endpoint); NVML reads each shard's own host.
fn shard_telemetry(
    spec: &crate::plan::TelemetrySpec,
    shard: Option<crate::plan::Shard>,
) -> crate::plan::TelemetrySpec {
    let mut spec = spec.clone();
    if shard.is_some_and(|s| s.index != 0) {
        spec.prometheus.clear();
    }
    spec
}

/// Removes the files a claimed run id has so far (its raw file, its telemetry file), for a run
/// that stops before its first request.
fn unclaim(files: &RunFiles) {
    for path in [&files.raw, &files.telemetry] {
        let _ = std::fs::remove_file(path);
    }
}

/// The target of the run: the plan's, else the built-in mock's (said on stderr).
fn run_target(plan: &Plan, mock: Option<&MockServer>) -> Target {
    match (&plan.target, mock) {
        (Some(t), _) => t.clone(),
        (None, Some(m)) => {
            eprintln!(
                "llmbench: no target configured; using the built-in mock server at {} (TTFT {} ms, ITL {} ms, {} tokens)",
                m.base_url(),
                plan.mock.ttft_ms,
                plan.mock.itl_ms,
                plan.mock.output_tokens
            );
            Target {
                name: "mock".into(),
                base_url: m.base_url(),
                api_key: None,
            }
        }
        (None, None) => unreachable!("a mock starts when there is no target"),
    }
}

/// The model of the run: the plan's; the built-in mock's; else the one `models::choose` picks
/// from the server's list (said on stderr).
async fn run_model(plan: &Plan, mock: bool, client: &Client) -> Result<String, RunError> {
    if let Some(m) = &plan.model {
        return Ok(m.clone());
    }
    if mock {
        return Ok(MOCK_MODEL.to_owned());
    }
    let chosen = models::choose(client.served_models().await, &plan.known_models)
        .map_err(RunError::Usage)?;
    eprintln!(
        "llmbench: model {} ({})",
        crate::escape::terminal(&chosen.model),
        crate::escape::terminal(&chosen.why)
    );
    Ok(chosen.model)
}

/// The results folders and the `--export-json` file's folder accept files.
fn check_writable(results: &Path, export_json: Option<&Path>) -> Result<(), RunError> {
    layout::check_writable(results).map_err(|(path, source)| RunError::Io {
        what: "cannot write into the results folder (pass --results DIR to use another)",
        path,
        source,
    })?;
    if let Some(out) = export_json {
        let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            return Err(RunError::Usage(format!(
                "--export-json {}: the folder does not exist; create it or pick another path",
                out.display()
            )));
        }
        let dir = dir.unwrap_or(Path::new("."));
        layout::check_folder_writable(dir).map_err(|source| RunError::Io {
            what: "--export-json: cannot write into the folder (pick another path)",
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(())
}

fn start_mock(plan: &Plan) -> Result<MockServer, RunError> {
    let config = MockConfig {
        ttft: ms_to_duration(plan.mock.ttft_ms),
        itl: ms_to_duration(plan.mock.itl_ms),
        output_tokens: plan.mock.output_tokens,
        // The built-in mock answers as the model asked for: no mismatch warning.
        model: plan.model.clone().unwrap_or_else(|| MOCK_MODEL.into()),
        faults: crate::mock::FaultConfig::default(),
        max_running: plan.mock.max_running,
        prefix_cache: crate::mock::PrefixCacheConfig {
            blocks: plan.mock.prefix_cache,
            block_tokens: plan.mock.block_tokens,
            per_token: std::time::Duration::from_secs_f64(plan.mock.ttft_per_token_us / 1e6),
        },
        ..MockConfig::default()
    };
    MockServer::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).map_err(|e| {
        RunError::Usage(format!(
            "cannot start the built-in mock server on 127.0.0.1: {e}"
        ))
    })
}

/// Binds `--metrics-listen` (before the run id is claimed: a port in use leaves no file).
async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, RunError> {
    live::bind(addr).await.map_err(|e| {
        RunError::Usage(format!(
            "--metrics-listen {addr}: cannot listen there ({e}); pick a free port, e.g. 127.0.0.1:9464"
        ))
    })
}

/// Starts serving the live view on `listener`.
fn serve_live(
    listener: tokio::net::TcpListener,
    run_id: &str,
    workload: &str,
    target: &str,
    model: &str,
) -> (Arc<Live>, tokio::task::JoinHandle<()>) {
    let view = Arc::new(Live::new(run_id, workload, target, model));
    if let Ok(addr) = listener.local_addr() {
        eprintln!("llmbench: live metrics at http://{addr}/metrics");
    }
    let server = live::serve(listener, view.clone());
    (view, server)
}
