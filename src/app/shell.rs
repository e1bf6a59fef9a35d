//! Shell integration: `llmbench completions SHELL` (a completion script) and `llmbench man`
//! (roff man pages), both generated from the clap definitions in `cli`, so they always list
//! the flags the binary really takes.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::cli::{Cli, CompletionsArgs, ManArgs};
use super::{EXIT_OK, usage_error};
use crate::run::write_atomic;

/// `llmbench completions SHELL`: the completion script on standard output.
pub fn completions(args: &CompletionsArgs) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "llmbench", &mut script);
    print(&script)
}

/// `llmbench man [--out DIR]`: llmbench.1 on standard output, or every page written into DIR.
pub fn man(args: &ManArgs) -> u8 {
    let result = match &args.out {
        None => man_pages().map(|pages| print(&pages[0].1)),
        Some(dir) => write_pages(dir).map(|()| EXIT_OK),
    };
    result.unwrap_or_else(usage_error)
}

/// Writes every page into `dir` (rendered first, so a failure leaves no page half-written)
/// and names them.
fn write_pages(dir: &Path) -> Result<(), String> {
    let pages = man_pages()?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, page) in &pages {
        let path = dir.join(name);
        write_atomic(&path, page).map_err(|e| e.to_string())?;
        println!("{}", path.display());
    }
    Ok(())
}

/// The man pages, file name and roff text: llmbench.1 first, then one per command
/// (llmbench-run.1, ...).
fn man_pages() -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    std::iter::once(top.clone())
        .chain(top.get_subcommands().filter(|c| !c.is_hide_set()).cloned())
        .map(|cmd| {
            let man = clap_mangen::Man::new(cmd);
            let mut page = Vec::new();
            man.render(&mut page)
                .map_err(|e| format!("cannot render the man page: {e}"))?;
            Ok((man.get_filename(), page))
        })
        .collect()
}

/// Writes `bytes` to standard output; a closed pipe (`| head`) is not an error.
fn print(bytes: &[u8]) -> u8 {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
    EXIT_OK
}
