//! llmbench: load tests and benchmarks for LLM servers that speak the OpenAI API.
//!
//! Data flows one way (see DESIGN.md); the modules in the order a run goes through them:
//! `app` (the command line, dispatch, exit codes) → `settings` (flags shared by every
//! load-running command, overrides on a plan) → `config` + `script` → `plan` → `run`
//! (prepare → measure → finish) driving `schedule` → `client` → `record` → `stats` →
//! `outcome` (verdicts, sweeps) → `report`. Beside them: `telemetry` (GPU and Prometheus
//! samples on the run clock), `mock` (the built-in server), `redact` (the one redactor of a
//! run's secrets, and how URLs may be shown), `clock`, `host`.
//! `main.rs` only parses the command line and hands it to `app`.

pub mod app;
pub mod client;
pub mod clock;
pub mod config;
pub mod escape;
pub mod host;
pub mod mock;
pub mod outcome;
pub mod plan;
pub mod record;
pub mod redact;
pub mod report;
pub mod run;
pub mod schedule;
pub mod script;
pub mod seeded;
pub mod settings;
pub mod stats;
pub mod telemetry;
pub mod units;
