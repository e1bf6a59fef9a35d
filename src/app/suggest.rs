//! A mistyped command: `llmbench repot` is taken for a script called `repot` (the SCRIPT
//! argument comes first), so before a script that does not exist is read, the app asks here
//! whether the word was meant as a command, and says so instead of "cannot read the script".

use std::path::Path;
use std::sync::OnceLock;

use clap::CommandFactory;

use super::cli::Cli;

/// Largest edit distance at which a word still counts as a command mistyped.
const MAX_TYPOS: usize = 2;

/// What to say instead of reading `script`, when it names no file and no script available by
/// name (`script::shipped::locate`) and looks like a command mistyped (no `.rhai` extension,
/// no folder, close to a command's name).
pub fn unknown_script(script: &Path) -> Option<String> {
    if script.extension().is_some()
        || script.components().count() != 1
        || !matches!(crate::script::shipped::locate(script), Ok(None))
    {
        return None;
    }
    let arg = script.to_str()?;
    let command = suggest_command(arg)?;
    let hint = if command == arg {
        " (a command's flags go after its name)"
    } else {
        ""
    };
    Some(format!(
        "no such command or script {arg:?}; did you mean `llmbench {command}`?{hint}"
    ))
}

/// The command `arg` was most likely meant to be: the closest of clap's command names within
/// `MAX_TYPOS` edits (and fewer edits than `arg` has letters), or one that `arg` begins.
pub fn suggest_command(arg: &str) -> Option<&'static str> {
    let letters = arg.chars().count();
    commands()
        .filter_map(|name| {
            let edits = strsim::levenshtein(arg, name);
            let close = edits <= MAX_TYPOS && edits < letters;
            let begun = letters > 0 && name.starts_with(arg);
            (close || begun).then_some((edits, name))
        })
        .min_by_key(|(edits, _)| *edits)
        .map(|(_, name)| name)
}

/// The command names, from the clap definitions (`help` included), read once.
fn commands() -> impl Iterator<Item = &'static str> {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES
        .get_or_init(|| {
            let cli = Cli::command();
            cli.get_subcommands()
                .map(|c| c.get_name().to_owned())
                .chain(["help".to_owned()])
                .collect()
        })
        .iter()
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_or_begun_command_is_suggested() {
        for (arg, command) in [
            ("repot", "report"),
            ("reprot", "report"),
            ("mokc", "mock"),
            ("calib", "calibrate"),
            ("interactiv", "interactive"),
            ("rn", "run"),
            ("mock", "mock"),
        ] {
            assert_eq!(suggest_command(arg), Some(command), "{arg}");
        }
        for arg in ["quickstart", "x", "benchmark", ""] {
            assert_eq!(suggest_command(arg), None, "{arg}");
        }
    }

    #[test]
    fn files_and_script_names_are_never_taken_for_commands() {
        assert!(unknown_script(Path::new("repot.rhai")).is_none());
        assert!(unknown_script(Path::new("scripts/repot")).is_none());
        assert!(unknown_script(Path::new("src")).is_none(), "it exists");
        let message = unknown_script(Path::new("repot")).unwrap();
        assert_eq!(
            message,
            "no such command or script \"repot\"; did you mean `llmbench report`?"
        );
    }
}
