//! The scripts built into the binary, so llmbench works from any folder: the shipped workload
//! scripts (`scripts/*.rhai`), the script library (`scripts/lib`) and the starter script that
//! `llmbench new` writes. A script is found by path, else by name (`quickstart`,
//! `quickstart.rhai` or `scripts/quickstart.rhai`) in `scripts/`, then in each folder of
//! `LLMBENCH_SCRIPT_PATH`, then among the built-in copies: a file on disk always wins.

use std::path::{Path, PathBuf};

/// Environment variable with extra script and library folders (colon-separated).
pub const SCRIPT_PATH_VAR: &str = "LLMBENCH_SCRIPT_PATH";

/// The folders a script or an import is looked for in by name: `scripts/`, then each folder
/// of `LLMBENCH_SCRIPT_PATH`.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("scripts")];
    if let Some(extra) = std::env::var_os(SCRIPT_PATH_VAR) {
        dirs.extend(std::env::split_paths(&extra));
    }
    dirs
}

/// `scripts/lib` as shipped (names relative to `scripts/`).
pub const LIBRARY: [(&str, &str); 4] = [
    (
        "lib/prompts.rhai",
        include_str!("../../scripts/lib/prompts.rhai"),
    ),
    (
        "lib/ramps.rhai",
        include_str!("../../scripts/lib/ramps.rhai"),
    ),
    ("lib/slo.rhai", include_str!("../../scripts/lib/slo.rhai")),
    (
        "lib/workloads.rhai",
        include_str!("../../scripts/lib/workloads.rhai"),
    ),
];

/// The shipped workload scripts (names relative to `scripts/`).
pub const WORKLOADS: [(&str, &str); 12] = [
    (
        "quickstart.rhai",
        include_str!("../../scripts/quickstart.rhai"),
    ),
    ("low-load.rhai", include_str!("../../scripts/low-load.rhai")),
    (
        "medium-load.rhai",
        include_str!("../../scripts/medium-load.rhai"),
    ),
    (
        "high-load.rhai",
        include_str!("../../scripts/high-load.rhai"),
    ),
    (
        "stress-test.rhai",
        include_str!("../../scripts/stress-test.rhai"),
    ),
    (
        "capacity-sweep.rhai",
        include_str!("../../scripts/capacity-sweep.rhai"),
    ),
    (
        "ramp-and-gate.rhai",
        include_str!("../../scripts/ramp-and-gate.rhai"),
    ),
    (
        "mixed-lengths.rhai",
        include_str!("../../scripts/mixed-lengths.rhai"),
    ),
    ("sessions.rhai", include_str!("../../scripts/sessions.rhai")),
    (
        "prefix-cache.rhai",
        include_str!("../../scripts/prefix-cache.rhai"),
    ),
    (
        "trace-replay.rhai",
        include_str!("../../scripts/trace-replay.rhai"),
    ),
    (
        "cancellation.rhai",
        include_str!("../../scripts/cancellation.rhai"),
    ),
];

/// The commented script `llmbench new NAME` writes.
pub const STARTER: &str = include_str!("starter.rhai");

/// How a built-in copy is named in messages and run metadata.
pub const BUILT_IN: &str = "(built-in) scripts/";

/// The built-in copy of `rel` (e.g. `lib/slo.rhai` or `quickstart.rhai`).
pub fn built_in(rel: &str) -> Option<&'static str> {
    LIBRARY
        .iter()
        .chain(WORKLOADS.iter())
        .find(|(n, _)| *n == rel)
        .map(|(_, t)| *t)
}

/// A workload script found by `locate`: the path it is shown and run as, and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub path: PathBuf,
    pub text: String,
}

/// The script `given` names: the file itself when it exists; else, for a bare name (or a
/// `scripts/NAME` path run outside the checkout), the first `NAME.rhai` on the search path,
/// else the built-in copy. `Ok(None)`: nothing by that name. An existing file that cannot be
/// read is the error.
pub fn locate(given: &Path) -> std::io::Result<Option<Located>> {
    if given.exists() {
        let text = std::fs::read_to_string(given)?;
        return Ok(Some(Located {
            path: given.to_owned(),
            text,
        }));
    }
    let Some(name) = bare_name(given) else {
        return Ok(None);
    };
    for dir in search_path() {
        let file = dir.join(&name);
        if file.is_file()
            && let Ok(text) = std::fs::read_to_string(&file)
        {
            return Ok(Some(Located { path: file, text }));
        }
    }
    Ok(WORKLOADS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, t)| Located {
            path: PathBuf::from(format!("{BUILT_IN}{n}")),
            text: (*t).to_owned(),
        }))
}

/// `NAME.rhai` for `NAME`, `NAME.rhai` or `scripts/NAME[.rhai]`; `None` for any other path.
fn bare_name(given: &Path) -> Option<String> {
    let text = given.to_str()?;
    let text = text
        .strip_prefix("./")
        .unwrap_or(text)
        .strip_prefix("scripts/")
        .unwrap_or(text);
    if text.is_empty() || text.contains('/') || text.starts_with('.') {
        return None;
    }
    Some(if text.ends_with(".rhai") {
        text.to_owned()
    } else {
        format!("{text}.rhai")
    })
}

/// One script `llmbench scripts` lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// What to type after `llmbench`.
    pub name: String,
    /// The file, or `built in`.
    pub place: String,
    /// The first sentence of the script's leading comment.
    pub about: String,
}

/// Every workload script available by name, search path first (a file there hides the
/// built-in copy of the same name), then the built-in copies; each name once.
pub fn available() -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::new();
    let mut add = |file: &str, place: String, text: &str| {
        let name = file.trim_end_matches(".rhai").to_owned();
        if !out.iter().any(|l| l.name == name) {
            out.push(Listed {
                name,
                place,
                about: about(text),
            });
        }
    };
    for dir in search_path() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rhai"))
        {
            let (Some(n), Ok(text)) = (file.file_name(), std::fs::read_to_string(file)) else {
                continue;
            };
            add(&n.to_string_lossy(), file.display().to_string(), &text);
        }
    }
    for (n, t) in WORKLOADS {
        add(n, "built in".into(), t);
    }
    out
}

/// The first sentence of a script's leading `//` comment (at most 100 characters).
fn about(text: &str) -> String {
    let comment: Vec<&str> = text
        .lines()
        .map_while(|l| l.trim().strip_prefix("//"))
        .map(str::trim)
        .collect();
    let joined = comment.join(" ");
    let sentence = match joined.find(". ") {
        Some(end) => &joined[..=end],
        None => joined.trim_end(),
    };
    match sentence.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &sentence[..i]),
        None => sentence.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_script_is_built_in() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".rhai"))
            .collect();
        on_disk.sort();
        let mut built: Vec<String> = WORKLOADS.iter().map(|(n, _)| n.to_string()).collect();
        built.sort();
        assert_eq!(on_disk, built);
        for (n, t) in WORKLOADS {
            assert_eq!(std::fs::read_to_string(format!("{dir}/{n}")).unwrap(), t);
            assert!(
                !about(t).is_empty(),
                "{n} starts with a comment saying what it is"
            );
        }
    }

    #[test]
    fn a_bare_name_or_a_scripts_path_names_a_script() {
        for (given, name) in [
            ("quickstart", Some("quickstart.rhai")),
            ("quickstart.rhai", Some("quickstart.rhai")),
            ("scripts/quickstart.rhai", Some("quickstart.rhai")),
            ("./scripts/high-load", Some("high-load.rhai")),
            ("other/quickstart.rhai", None),
            ("/abs/x.rhai", None),
            ("..", None),
            ("", None),
        ] {
            assert_eq!(bare_name(Path::new(given)).as_deref(), name, "{given}");
        }
        let found = locate(Path::new("/surely/not/here/quickstart.rhai")).unwrap();
        assert!(found.is_none(), "a path elsewhere is not a name");
    }
}
