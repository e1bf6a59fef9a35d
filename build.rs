//! Names the commit the binary is built from: sets `LLMBENCH_VERSION` (what `--version`
//! prints) to `0.1.0 (commit abc1234)`, with `, dirty tree` when tracked files had changes,
//! or to the bare package version where git or the repository is absent (a crates.io or
//! tarball build). The script reruns only when `HEAD` or the branch it points to moves, so
//! builds stay incremental; "dirty tree" is as of that moment.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let version = env!("CARGO_PKG_VERSION");
    let described = match commit() {
        Some((hash, dirty)) => {
            let dirty = if dirty { ", dirty tree" } else { "" };
            format!("{version} (commit {hash}{dirty})")
        }
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=LLMBENCH_VERSION={described}");
}

/// The short hash of `HEAD` and whether tracked files differ from it; `None` without git or a
/// repository. Registers the files whose change moves `HEAD`.
fn commit() -> Option<(String, bool)> {
    let git_dir = PathBuf::from(git(&["rev-parse", "--absolute-git-dir"])?);
    let common_dir = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .map_or_else(|| git_dir.clone(), PathBuf::from);
    watch(&git_dir.join("HEAD"));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(&common_dir.join(&branch));
        watch(&common_dir.join("packed-refs"));
    }
    let hash = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some((hash, dirty))
}

/// Reruns this script when `path` changes (a file that does not exist is left out: Cargo
/// would rerun on every build).
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// `git ARGS` in the package folder: its trimmed output, or `None` if it did not succeed.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
