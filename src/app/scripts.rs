//! `llmbench scripts` (the workload scripts available by name) and `llmbench new NAME` (a
//! commented starter script to edit). What is built in and how a name is found belongs to
//! `script::shipped`; this module only prints and writes.

use std::path::PathBuf;

use super::cli::NewArgs;
use super::{EXIT_OK, usage_error};
use crate::script::shipped::{self, STARTER};

/// `llmbench scripts`.
pub fn list() -> u8 {
    let scripts = shipped::available();
    let width = scripts.iter().map(|s| s.name.len()).max().unwrap_or(0);
    println!(
        "Workload scripts (run one with `llmbench NAME`; `llmbench check NAME` shows its plan):"
    );
    for s in &scripts {
        println!(
            "  {:width$}  {}\n  {:width$}  [{}]",
            s.name,
            crate::escape::terminal(&s.about),
            "",
            crate::escape::terminal(&s.place)
        );
    }
    println!(
        "A file in scripts/ or on LLMBENCH_SCRIPT_PATH hides the built-in script of its name."
    );
    EXIT_OK
}

/// `llmbench new NAME`: writes the starter script, never over a file unless `--force`.
pub fn new(args: &NewArgs) -> u8 {
    let path = with_extension(&args.name);
    if path.exists() && !args.force {
        return usage_error(format!(
            "{} exists; pick another name or pass --force to replace it",
            path.display()
        ));
    }
    let name = path
        .file_stem()
        .map_or("script".into(), |s| s.to_string_lossy().into_owned());
    let text = STARTER.replace("NAME", &name);
    if let Err(e) = crate::run::write_atomic(&path, text) {
        return usage_error(e);
    }
    println!(
        "wrote {p}\n  llmbench check {p}   shows its plan\n  llmbench {p}         runs it against the built-in mock server",
        p = path.display()
    );
    EXIT_OK
}

/// `name` with `.rhai` added when it has no extension.
fn with_extension(name: &std::path::Path) -> PathBuf {
    if name.extension().is_some() {
        name.to_owned()
    } else {
        name.with_extension("rhai")
    }
}
