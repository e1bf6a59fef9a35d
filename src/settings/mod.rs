//! The settings layer between the command line and a run (ripgrep's low-level → high-level
//! arguments): `flags` holds the clap groups every load-running command shares; this module
//! turns them into `Settings` (how to run a plan: outputs, client, grace, preflight) and
//! `PlanOverrides` (what the flags change in the plan), and `apply` puts the overrides on a
//! `Plan` as one pure, tested function. Reading the API key's environment variable is the only
//! I/O, done once in `LoadFlags::overrides` through a lookup the caller passes.

pub mod flags;
pub mod shape;
pub mod threads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use flags::{
    ConnectionFlags, ControlFlags, LoadFlags, OutputFlags, RuntimeFlags, ShapeFlags, TelemetryFlags,
};
pub use shape::ShapeOverrides;
pub use threads::Threads;

use crate::client::ClientOptions;
use crate::plan::{ApiKey, Plan, Shard, Target};

/// A flag whose value cannot be used; the message names the flag and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// Where a run's results go.
#[derive(Debug, Clone, PartialEq)]
pub enum Outputs {
    /// The results folder (`raw/`, `summary/`, `reports/`, `runs/`), report templates (the
    /// built-in ones where a file is missing) and an optional `--export-json` file.
    Files {
        results: PathBuf,
        templates: Option<PathBuf>,
        export_json: Option<PathBuf>,
    },
    /// Nothing is written (calibrate, tests): records reach only the sinks the caller passes.
    Memory,
}

/// How to run a plan, beyond the plan itself.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What ran, for the run metadata: the script's path or e.g. `run --workload high-load`.
    pub label: PathBuf,
    pub outputs: Outputs,
    /// Show the progress bar (it is also hidden when stderr is not a terminal).
    pub progress: bool,
    /// How long in-flight requests may finish after Ctrl-C or SIGTERM.
    pub grace: Duration,
    /// Timeouts, retries, TLS and proxy.
    pub client: ClientOptions,
    /// Send one request before the run to check the target (see `client::preflight`).
    pub preflight: bool,
    /// Serve llmbench's own live metrics here during the run (`--metrics-listen`).
    pub metrics_listen: Option<SocketAddr>,
    /// Print no summary to standard output (the caller reports; files are written as ever).
    pub quiet: bool,
    /// The run is one trial of a `--repeat` set.
    pub trial: Option<crate::record::Trial>,
    /// This process is one shard of a sharded run (`--shard I/N`).
    pub shard: Option<Shard>,
    /// Wall-clock time the first phase waits for (`--start-at`).
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Settings {
    /// Settings for running `label` into the results folder `results`: no progress bar,
    /// built-in templates, 30 s of grace, default client settings, the preflight check, a
    /// printed summary.
    pub fn new(label: impl Into<PathBuf>, results: impl Into<PathBuf>) -> Self {
        Self {
            label: label.into(),
            outputs: Outputs::Files {
                results: results.into(),
                templates: None,
                export_json: None,
            },
            progress: false,
            grace: Duration::from_secs(30),
            client: ClientOptions::default(),
            preflight: true,
            metrics_listen: None,
            quiet: false,
            trial: None,
            shard: None,
            start_at: None,
        }
    }

    /// Settings for a run that writes nothing (its records go to the caller's sinks only).
    pub fn in_memory(label: impl Into<PathBuf>) -> Self {
        Self {
            outputs: Outputs::Memory,
            quiet: true,
            ..Self::new(label, "")
        }
    }
}

/// The templates folder a run uses: the one given, else `./templates` when it exists.
pub fn templates_folder(given: Option<&PathBuf>) -> Option<PathBuf> {
    given
        .cloned()
        .or_else(|| Some(PathBuf::from("templates")).filter(|p| p.is_dir()))
}

/// What the command line changes in a plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanOverrides {
    /// `--url`: the target's base URL (its key, if any, is kept).
    pub url: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// The key read from `--api-key-env VAR`, with the variable's name for messages.
    pub api_key: Option<(String, ApiKey)>,
    /// `--scrape`, added to the script's endpoints.
    pub scrape: Vec<String>,
    pub telemetry_every: Option<Duration>,
    pub no_nvml: bool,
    pub gpus: Option<Vec<u32>>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// The request and load flags.
    pub shape: ShapeOverrides,
    /// `--label KEY=VALUE`, added to (and winning over) the script's labels.
    pub labels: Vec<(String, String)>,
}

/// Puts the command line's overrides on `plan`. Pure.
pub fn apply(mut plan: Plan, o: &PlanOverrides) -> Result<Plan, SettingsError> {
    if let Some(url) = &o.url {
        plan.target = Some(Target {
            name: crate::redact::host_port(url),
            base_url: url.clone(),
            api_key: plan.target.as_ref().and_then(|t| t.api_key.clone()),
        });
    }
    if let Some(model) = &o.model {
        plan.model = Some(model.clone());
    }
    plan.telemetry.prometheus.extend(o.scrape.iter().cloned());
    plan.labels.extend(o.labels.iter().cloned());
    if let Some(every) = o.telemetry_every {
        plan.telemetry.every = every;
    }
    plan.telemetry.nvml &= !o.no_nvml;
    if let Some(gpus) = &o.gpus {
        plan.telemetry.gpus = Some(gpus.clone());
    }
    if let Some(t) = o.timeout {
        plan.request.timeout = t;
    }
    let mut plan = shape::apply_shape(plan, &o.shape)?;
    if let Some((var, key)) = &o.api_key {
        let target = plan.target.as_mut().ok_or_else(|| {
            SettingsError(format!(
                "--api-key-env {var} needs a target: add --url or target(...)"
            ))
        })?;
        target.api_key = Some(key.clone());
    }
    Ok(plan)
}

impl LoadFlags {
    /// How to run, for a run labelled `label` (the script's path or the workload command).
    pub fn settings(&self, label: impl Into<PathBuf>) -> Settings {
        let (out, conn) = (&self.output, &self.connection);
        Settings {
            label: label.into(),
            outputs: Outputs::Files {
                results: out.results.clone(),
                templates: templates_folder(out.templates.as_ref()),
                export_json: out.export_json.clone(),
            },
            progress: !out.no_progress,
            grace: Duration::from_secs_f64(self.control.grace),
            client: ClientOptions {
                connect_timeout: conn.connect_timeout.map(Duration::from_secs_f64),
                first_token_timeout: conn.first_token_timeout.map(Duration::from_secs_f64),
                retries: conn.retries,
                ca_cert: conn.ca_cert.clone(),
                insecure: conn.insecure,
                proxy: conn.proxy.clone(),
            },
            preflight: !conn.no_preflight,
            metrics_listen: self.telemetry.metrics_listen,
            quiet: false,
            trial: None,
            shard: None,
            start_at: self.control.start_at,
        }
    }

    /// What the flags change in the plan; `model` is the command's `--model` override.
    /// `env` looks up an environment variable (the API key's).
    pub fn overrides(
        &self,
        model: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<PlanOverrides, SettingsError> {
        let (conn, tel) = (&self.connection, &self.telemetry);
        let api_key = match &conn.api_key_env {
            None => None,
            Some(var) => {
                let key = env(var).ok_or_else(|| {
                    SettingsError(if crate::redact::looks_like_key(var) {
                        "--api-key-env takes the name of an environment variable holding the key, but what was given looks like a key itself (not shown here); export it and pass the name: export OPENAI_API_KEY=<key>; --api-key-env OPENAI_API_KEY".into()
                    } else {
                        format!("--api-key-env {var}: the variable is not set; export {var}=<key> first")
                    })
                })?;
                Some((var.clone(), ApiKey::new(key)))
            }
        };
        Ok(PlanOverrides {
            url: conn.url.clone(),
            model: model.map(str::to_owned),
            api_key,
            scrape: tel.scrape.clone(),
            telemetry_every: tel.telemetry_every_ms.map(Duration::from_millis),
            no_nvml: tel.no_nvml,
            gpus: tel.gpus.clone(),
            timeout: conn.timeout.map(Duration::from_secs_f64),
            shape: self.shape.overrides(),
            labels: self.output.labels.clone(),
        })
    }
}

impl ControlFlags {
    /// The shard this process runs: `--shard I/N` (or `LLMBENCH_SHARD`), or `--shards N` with
    /// the index from `JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job's), looked up in `env`.
    pub fn shard(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Shard>, SettingsError> {
        let Some(n) = self.shards else {
            return Ok(self.shard);
        };
        if let Some(s) = self.shard {
            return Err(SettingsError(format!(
                "--shard {s} and --shards {n} both given (LLMBENCH_SHARD sets --shard): give one"
            )));
        }
        let index = env("JOB_COMPLETION_INDEX").ok_or_else(|| {
            SettingsError(format!(
                "--shards {n} takes this shard's index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it), which is not set; export JOB_COMPLETION_INDEX=I or pass --shard I/{n}"
            ))
        })?;
        index
            .trim()
            .parse::<u32>()
            .ok()
            .and_then(|i| Shard::new(i, n))
            .map(Some)
            .ok_or_else(|| {
                SettingsError(format!(
                    "JOB_COMPLETION_INDEX={index:?} is not a shard index of --shards {n}: it must be 0 to {}",
                    n - 1
                ))
            })
    }
}

impl ShapeFlags {
    pub fn overrides(&self) -> ShapeOverrides {
        ShapeOverrides {
            endpoint: self.endpoint,
            stream: match (self.stream, self.no_stream) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            max_tokens: self.max_tokens,
            rps: self.rps,
            concurrency: self.concurrency,
            duration: self.duration.map(Duration::from_secs_f64),
            requests: self.requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        crate::script::load_source(
            std::path::Path::new("t.rhai"),
            "target(#{ base_url: \"http://a:1/v1\" }); model(\"m\"); request(#{ prompt: \"hi\", max_tokens: 4 }); telemetry(#{ every_ms: 250, prometheus: [\"http://a:1/metrics\"] }); phase(\"p\", #{ requests: 1 });",
            &crate::config::Configs::new("/nonexistent"),
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn no_overrides_leave_the_plan_as_the_script_made_it() {
        let before = serde_json::to_value(plan()).unwrap();
        let after =
            serde_json::to_value(apply(plan(), &PlanOverrides::default()).unwrap()).unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn each_override_changes_its_field_only() {
        let o = PlanOverrides {
            url: Some("http://127.0.0.1:9/v1".into()),
            model: Some("other".into()),
            api_key: Some(("K".into(), ApiKey::new("secret"))),
            scrape: vec!["http://b:2/metrics".into()],
            telemetry_every: Some(Duration::from_millis(100)),
            no_nvml: true,
            gpus: Some(vec![1]),
            timeout: Some(Duration::from_secs(7)),
            shape: ShapeOverrides::default(),
            labels: vec![("gpu".into(), "H100".into())],
        };
        let p = apply(plan(), &o).unwrap();
        let t = p.target.as_ref().unwrap();
        assert_eq!(
            (t.name.as_str(), t.base_url.as_str()),
            ("127.0.0.1:9", "http://127.0.0.1:9/v1")
        );
        assert_eq!(t.api_key.as_ref().unwrap().expose(), "secret");
        assert_eq!(p.model.as_deref(), Some("other"));
        assert_eq!(p.telemetry.prometheus.len(), 2);
        assert_eq!(p.telemetry.every, Duration::from_millis(100));
        assert!(!p.telemetry.nvml);
        assert_eq!(p.telemetry.gpus, Some(vec![1]));
        assert_eq!(p.request.timeout, Duration::from_secs(7));
        assert_eq!(p.labels["gpu"], "H100");
    }

    #[test]
    fn a_label_flag_wins_over_the_scripts_label_of_the_same_key() {
        let mut p = plan();
        p.labels.insert("server".into(), "vllm".into());
        p.labels.insert("gpu".into(), "A100".into());
        let o = PlanOverrides {
            labels: vec![("server".into(), "sglang".into())],
            ..Default::default()
        };
        let p = apply(p, &o).unwrap();
        assert_eq!(
            crate::record::labels_line(&p.labels),
            "gpu=A100 server=sglang"
        );
    }

    #[test]
    fn the_scripts_telemetry_interval_stands_unless_the_flag_is_given() {
        assert_eq!(plan().telemetry.every, Duration::from_millis(250));
        let p = apply(plan(), &PlanOverrides::default()).unwrap();
        assert_eq!(p.telemetry.every, Duration::from_millis(250));
    }

    #[test]
    fn the_shard_comes_from_shard_or_from_shards_and_the_job_index() {
        let flags = |shard: Option<&str>, shards: Option<u32>| ControlFlags {
            shard: shard.map(|s| s.parse().unwrap()),
            shards,
            ..Default::default()
        };
        let env = |v: Option<&'static str>| move |_: &str| v.map(str::to_owned);
        assert_eq!(flags(None, None).shard(env(Some("1"))), Ok(None));
        assert_eq!(
            flags(Some("1/3"), None).shard(env(None)),
            Ok(Shard::new(1, 3))
        );
        assert_eq!(
            flags(None, Some(4)).shard(env(Some("3"))),
            Ok(Shard::new(3, 4))
        );
        let e = flags(None, Some(4)).shard(env(None)).unwrap_err();
        assert!(e.0.contains("JOB_COMPLETION_INDEX"), "{e}");
        let e = flags(None, Some(4)).shard(env(Some("4"))).unwrap_err();
        assert!(e.0.contains("0 to 3"), "{e}");
        let e = flags(Some("0/4"), Some(4))
            .shard(env(Some("0")))
            .unwrap_err();
        assert!(e.0.contains("give one"), "{e}");
        let t = flags::start_time("1777636800000").unwrap();
        assert_eq!(t, flags::start_time("2026-05-01T12:00:00Z").unwrap());
        assert!(flags::start_time("soon").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn a_key_needs_a_target_and_a_set_variable() {
        let mut no_target = plan();
        no_target.target = None;
        let o = PlanOverrides {
            api_key: Some(("K".into(), ApiKey::new("s"))),
            ..Default::default()
        };
        let e = apply(no_target, &o).unwrap_err();
        assert!(e.0.contains("--api-key-env K needs a target"), "{e}");
        let flags = LoadFlags {
            connection: ConnectionFlags {
                api_key_env: Some("LLMBENCH_NOT_SET".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let e = flags.overrides(None, |_| None).unwrap_err();
        assert!(e.0.contains("export LLMBENCH_NOT_SET=<key>"), "{e}");
        let o = flags.overrides(None, |_| Some("k".into())).unwrap();
        assert_eq!(o.api_key.unwrap().1.expose(), "k");
        for key in ["sk-proj-abc123XYZ", "abcdef0123456789abcdef", "hf_AbCdEf"] {
            let flags = LoadFlags {
                connection: ConnectionFlags {
                    api_key_env: Some(key.into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            let e = flags.overrides(None, |_| None).unwrap_err();
            assert!(e.0.contains("looks like a key"), "{e}");
            assert!(!e.0.contains(&key[..6]), "{e}");
        }
    }

    #[test]
    fn a_target_from_url_is_named_by_its_address_without_credentials() {
        for url in [
            "http://127.0.0.1:8000/v1",
            "http://bob:hunter2-pass@127.0.0.1:8000/v1",
            "http://127.0.0.1:8000?api_key=sk-in-the-query",
            "http://127.0.0.1:8000/v1?api-version=1&key=k3y-k3y-k3y",
        ] {
            let o = PlanOverrides {
                url: Some(url.into()),
                ..Default::default()
            };
            let p = apply(plan(), &o).unwrap();
            assert_eq!(p.target.as_ref().unwrap().name, "127.0.0.1:8000", "{url}");
            let json = serde_json::to_string(&p).unwrap();
            for secret in ["hunter2", "sk-in-the-query", "k3y-k3y"] {
                assert!(!json.contains(secret), "{json}");
            }
        }
    }
}
