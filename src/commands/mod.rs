//! The commands around the run pipeline, each a thin layer over the library:
//! `results` reads finished runs back (`parse`, `report`, PDF through Chromium);
//! `workloads` turns other inputs into plans (`check`, the original tool's `run --target
//! --model --workload`, interactive mode).

pub mod results;
pub mod workloads;

pub use results::{
    COMPARISON_NAME, find_chromium, headless_args, parse, render_comparison, report,
};
pub use workloads::{
    DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS, check, describe, interactive, no_script,
    run_workload, workload_plan, workload_source,
};
