//! Run metadata: what a run was (script, target, model, phases, host, versions), written to
//! `results/runs/<id>.json` beside the records it describes and read back by `parse` and
//! `report`.

use serde::{Deserialize, Serialize};

/// What a run was, for the report header and the run metadata (`results/runs/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: String,
    pub workload: String,
    pub script: String,
    pub target: String,
    pub base_url: String,
    pub model: String,
    pub endpoint: String,
    pub stream: bool,
    /// The target was the built-in mock server.
    pub mock: bool,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub wall_s: f64,
    pub interrupted: bool,
    pub llmbench_version: String,
    pub host: String,
    /// One line per phase, e.g. `steady: 5 req/s constant, concurrency 10, 300 s`.
    pub phases: Vec<String>,
    /// `max_tokens` sent with every request.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Every request carried the same prompt text.
    #[serde(default)]
    pub fixed_prompt: bool,
    /// The run is one trial of a `--repeat` set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
}

/// Which trial of which set a run is (`--repeat N`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trial {
    /// The set's id, shared by its trials: `trials_<UTC time>_<workload>`.
    pub set: String,
    /// 1-based.
    pub index: u32,
    pub of: u32,
}

impl RunInfo {
    /// A run with this id and nothing else known: every text is `unknown`.
    pub fn placeholder(id: &str, unknown: &str) -> Self {
        Self {
            id: id.into(),
            workload: unknown.into(),
            script: unknown.into(),
            target: unknown.into(),
            base_url: unknown.into(),
            model: unknown.into(),
            endpoint: unknown.into(),
            stream: true,
            mock: false,
            started_at: unknown.into(),
            wall_s: 0.0,
            interrupted: false,
            llmbench_version: env!("CARGO_PKG_VERSION").into(),
            host: unknown.into(),
            phases: Vec::new(),
            max_tokens: None,
            fixed_prompt: false,
            trial: None,
        }
    }

    /// What the plan asked of each request, for the warnings.
    pub fn requested(&self) -> Requested {
        Requested {
            max_tokens: self.max_tokens,
            fixed_prompt: self.fixed_prompt,
        }
    }
}

/// What the plan asked of every request, for the warnings that compare it with what happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requested {
    /// `max_tokens` sent with each request.
    pub max_tokens: Option<u32>,
    /// Every request carried the same prompt text.
    pub fixed_prompt: bool,
}
