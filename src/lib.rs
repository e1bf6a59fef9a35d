//! llmbench: load tests and benchmarks for LLM servers that speak the OpenAI API.
//!
//! Data flows one way (see DESIGN.md):
//! script -> plan -> schedule -> client -> record -> stats -> report, wired together by `run`.
//! `main.rs` only parses the command line and maps the result to an exit code.

pub mod analysis;
pub mod calibrate;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod export;
pub mod feed;
pub mod host;
pub mod live;
pub mod mock;
pub mod plan;
pub mod progress;
pub mod record;
pub mod report;
pub mod run;
pub mod schedule;
pub mod script;
pub mod stats;
pub mod sweep;
pub mod telemetry;
pub mod timeline;
pub mod timer;
pub mod verdict;

pub mod client;
