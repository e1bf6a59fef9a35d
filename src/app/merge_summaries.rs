//! `llmbench merge --summaries-only`: joins shard runs from their histogram files.

use super::cli::MergeArgs;
use super::merge::ShardInput;

/// Merges `inputs` from their histogram files.
pub(super) fn merge(_inputs: &[ShardInput], _args: &MergeArgs) -> Result<(), String> {
    Err("not yet".into())
}
