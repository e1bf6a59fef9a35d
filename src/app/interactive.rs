//! Interactive mode (`llmbench interactive`, or `llmbench` alone in a terminal): asks for the
//! target, model and workload of `llmbench run`, offers the workload's params, shows the
//! equivalent command line, then runs it. Enter alone always leads to a run that can work: when
//! no configured target answers, the built-in mock server comes first. Every answer is
//! checked where it is typed, with a message that says what is expected.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::time::Duration;

use dialoguer::{Confirm, Input, Select};

use super::cli::RunArgs;
use super::workloads::{Defaults, workload_plan};
use super::{EXIT_OK, EXIT_USAGE, exit_code, run_with_flags, usage_error};
use crate::config::{Configs, Workload};
use crate::script::Overrides;
use crate::settings::LoadFlags;

/// `llmbench` with no script: interactive in a terminal, a usage error otherwise.
pub async fn no_script(args: &RunArgs) -> u8 {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        interactive(&args.load, args.runtime.threads).await
    } else {
        eprintln!(
            "llmbench: no script given: run llmbench SCRIPT.rhai (e.g. llmbench quickstart; `llmbench scripts` lists them), llmbench run --target T --workload W, or llmbench interactive in a terminal"
        );
        EXIT_USAGE
    }
}

/// Where interactive mode sends requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Server {
    /// A target of targets.yaml.
    Configured(String),
    /// The built-in mock server.
    Mock,
    /// A base URL the user typed.
    Url(String),
}

/// What interactive mode decided to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub server: Server,
    /// `None`: the one the server serves (asked when the run starts).
    pub model: Option<String>,
    pub workload: String,
    pub set: Vec<(String, String)>,
}

impl Choice {
    /// The `llmbench run ...` command line that runs the same thing.
    pub fn command_line(&self, configs: &Path) -> String {
        let mut s = String::from("llmbench run");
        match &self.server {
            Server::Configured(t) => {
                let _ = write!(s, " --target {}", quote(t));
            }
            Server::Mock => s.push_str(" --target mock"),
            Server::Url(u) => {
                let _ = write!(s, " --url {}", quote(u));
            }
        }
        if let Some(m) = &self.model {
            let _ = write!(s, " --model {}", quote(m));
        }
        let _ = write!(s, " --workload {}", quote(&self.workload));
        for (k, v) in &self.set {
            let _ = write!(s, " --set {k}={}", quote(v));
        }
        if configs != Path::new("configs") {
            let _ = write!(s, " --configs {}", quote(&configs.display().to_string()));
        }
        s
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `llmbench interactive`.
pub async fn interactive(load: &LoadFlags, threads: crate::settings::Threads) -> u8 {
    let configs = Configs::new(&load.output.configs);
    let choice = match ask(&configs) {
        Ok(Some(c)) => c,
        Ok(None) => return EXIT_OK,
        Err(e) => return usage_error(e),
    };
    let overrides: Overrides = choice.set.iter().cloned().collect();
    let (target, mut load) = (choice.server.clone(), load.clone());
    let target = match &target {
        Server::Configured(t) => Some(t.as_str()),
        Server::Mock => Some("mock"),
        Server::Url(u) => {
            load.connection.url = Some(u.clone());
            None
        }
    };
    let plan = workload_plan(
        &configs,
        target,
        choice.model.as_deref(),
        &choice.workload,
        &overrides,
    );
    match plan {
        Ok(plan) => {
            let label = format!("run --workload {}", choice.workload);
            exit_code(&run_with_flags(plan, &load, threads, None, &label).await)
        }
        Err(e) => usage_error(e),
    }
}

/// Asks the questions; `None` when the user declines to start.
fn ask(configs: &Configs) -> Result<Option<Choice>, String> {
    let defaults = Defaults::read(configs).map_err(|e| e.to_string())?;
    let server = choose_server(configs)?;
    let model = match server {
        Server::Mock => None,
        _ => choose_model(configs)?,
    };
    let w = choose_workload(configs, &defaults.workload)?;
    let mut set = Vec::new();
    if Confirm::new()
        .with_prompt("Customize duration, rps, concurrency or token counts?")
        .default(false)
        .interact()
        .map_err(io)?
    {
        set = customize(configs, &w)?;
    }
    let choice = Choice {
        server,
        model,
        workload: w.name.clone(),
        set,
    };
    eprintln!(
        "\nThe same run from the command line:\n  {}\n",
        choice.command_line(configs.dir())
    );
    let go = Confirm::new()
        .with_prompt("Start the run?")
        .default(true)
        .interact()
        .map_err(io)?;
    Ok(go.then_some(choice))
}

/// A prompt that could not be shown, as interactive mode reports it.
fn io(e: dialoguer::Error) -> String {
    format!("interactive mode needs a terminal: {e}")
}

/// Asks for the server: the configured targets (the first that answers is the default), the
/// built-in mock (first and the default when none answers), or a URL to type.
fn choose_server(configs: &Configs) -> Result<Server, String> {
    let names = configs.target_names().map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    for name in &names {
        let t = configs.target(name).map_err(|e| e.to_string())?;
        targets.push((name.clone(), answers(&t.base_url)));
    }
    let mut items: Vec<(Server, String)> = targets
        .iter()
        .map(|(n, up)| {
            let label = if *up {
                n.clone()
            } else {
                format!("{n} (not answering)")
            };
            (Server::Configured(n.clone()), label)
        })
        .collect();
    let mock = (
        Server::Mock,
        "mock (the built-in mock server, to try llmbench without a server)".to_owned(),
    );
    // The first target that answers (the run's default target when it does), else the mock.
    let default = match targets.iter().position(|(_, up)| *up) {
        Some(first_up) => {
            items.push(mock);
            first_up
        }
        None => {
            items.insert(0, mock);
            0
        }
    };
    items.push((
        Server::Url(String::new()),
        "another server: type its URL".into(),
    ));
    let labels: Vec<&str> = items.iter().map(|(_, l)| l.as_str()).collect();
    let i = Select::new()
        .with_prompt("Target")
        .items(&labels)
        .default(default)
        .interact()
        .map_err(io)?;
    match &items[i].0 {
        Server::Url(_) => ask_url().map(Server::Url),
        s => Ok(s.clone()),
    }
}

/// Whether something accepts a TCP connection at `base_url`'s host and port within 0.5 s.
fn answers(base_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return false;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .into_iter()
        .flatten()
        .any(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
}

/// Asks for a base URL until one parses as http(s).
fn ask_url() -> Result<String, String> {
    Input::<String>::new()
        .with_prompt("Base URL of the server (e.g. http://127.0.0.1:8000/v1)")
        .validate_with(|s: &String| -> Result<(), String> {
            match reqwest::Url::parse(s.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
                _ => Err("expected an http:// or https:// URL up to the API version, e.g. http://127.0.0.1:8000/v1".into()),
            }
        })
        .interact_text()
        .map(|s| s.trim().to_owned())
        .map_err(io)
}

/// Asks for a model: the one the server serves (the default), or one of `models.yaml`.
fn choose_model(configs: &Configs) -> Result<Option<String>, String> {
    let models = configs.model_names().map_err(|e| e.to_string())?;
    let mut labels = vec!["the one the server serves (asked when the run starts)".to_owned()];
    labels.extend(models.iter().cloned());
    let m = Select::new()
        .with_prompt("Model")
        .items(&labels)
        .default(0)
        .interact()
        .map_err(io)?;
    Ok(m.checked_sub(1).map(|i| models[i].clone()))
}

/// Asks for a workload from `workloads.yaml` (the default one first selected).
fn choose_workload(configs: &Configs, default: &str) -> Result<Workload, String> {
    let workloads = configs.workloads().map_err(|e| e.to_string())?;
    let names: Vec<String> = workloads
        .iter()
        .map(|w| {
            format!(
                "{} ({} req/s, concurrency {}, {} s)",
                w.name, w.rps, w.concurrency, w.duration
            )
        })
        .collect();
    let default = workloads
        .iter()
        .position(|w| w.name == default)
        .unwrap_or(0);
    let wi = Select::new()
        .with_prompt("Workload")
        .items(&names)
        .default(default)
        .interact()
        .map_err(io)?;
    Ok(workloads[wi].clone())
}

/// How each of the standard workloads' params is asked for.
const QUESTIONS: [(&str, &str); 5] = [
    ("duration", "Duration (s)"),
    ("rps", "Requests per second"),
    ("concurrency", "Concurrency"),
    ("input_tokens", "Input tokens"),
    ("output_tokens", "Output tokens"),
];

/// Asks for each param of the workload (its own values the defaults); the `--set` pairs of
/// those that changed.
fn customize(configs: &Configs, w: &Workload) -> Result<Vec<(String, String)>, String> {
    let plan = workload_plan(configs, None, None, &w.name, &Overrides::new())
        .map_err(|e| e.to_string())?;
    let mut params: Vec<(String, String)> = plan.params.into_iter().collect();
    params.sort_by_key(|(k, _)| QUESTIONS.iter().position(|(q, _)| q == k).unwrap_or(99));
    let mut set = Vec::new();
    for (name, default) in params {
        let prompt = QUESTIONS
            .iter()
            .find(|(q, _)| *q == name)
            .map_or(name.as_str(), |(_, p)| p);
        let answer = Input::<String>::new()
            .with_prompt(prompt)
            .default(default.clone())
            .validate_with(|s: &String| valid_number(&name, s))
            .interact_text()
            .map_err(io)?;
        let answer = clean_number(&answer);
        if answer != clean_number(&default) {
            set.push((name, answer));
        }
    }
    Ok(set)
}

/// A param's answer must be a number above 0 (a whole one for counts).
fn valid_number(name: &str, s: &str) -> Result<(), String> {
    let whole = matches!(name, "concurrency" | "input_tokens" | "output_tokens");
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() && (!whole || x.fract() == 0.0) => Ok(()),
        _ if whole => Err(format!("{name}: expected a whole number above 0, e.g. 64")),
        _ => Err(format!("{name}: expected a number above 0, e.g. 30 or 2.5")),
    }
}

/// A number as a person writes it: `8`, not `8.0`.
fn clean_number(s: &str) -> String {
    match s.trim().parse::<f64>() {
        Ok(x) => format!("{x}"),
        Err(_) => s.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_equivalent_command_line_is_quoted() {
        let c = Choice {
            server: Server::Configured("vllm-local".into()),
            model: Some("my model".into()),
            workload: "high-load".into(),
            set: vec![("duration".into(), "60".into())],
        };
        assert_eq!(
            c.command_line(Path::new("configs")),
            "llmbench run --target vllm-local --model 'my model' --workload high-load --set duration=60"
        );
        let c = Choice {
            server: Server::Url("http://h:1/v1".into()),
            model: None,
            ..c
        };
        assert_eq!(
            c.command_line(Path::new("configs")),
            "llmbench run --url http://h:1/v1 --workload high-load --set duration=60"
        );
    }

    #[test]
    fn answers_are_checked_and_numbers_written_cleanly() {
        assert_eq!(clean_number("8.0"), "8");
        assert_eq!(clean_number(" 2.5 "), "2.5");
        assert!(valid_number("duration", "2.5").is_ok());
        assert!(
            valid_number("duration", "0")
                .unwrap_err()
                .contains("above 0")
        );
        assert!(
            valid_number("concurrency", "1.5")
                .unwrap_err()
                .contains("whole")
        );
        assert!(valid_number("rps", "fast").is_err());
    }

    #[test]
    fn a_closed_port_does_not_answer() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(answers(&format!("http://127.0.0.1:{port}/v1")));
        drop(l);
        assert!(!answers(&format!("http://127.0.0.1:{port}/v1")));
        assert!(!answers("not a url"));
    }
}
