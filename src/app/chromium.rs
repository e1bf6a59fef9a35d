//! Headless Chromium, for `report --pdf`: finding the binary (`LLMBENCH_CHROMIUM`, else `PATH`)
//! and checking it can be run, the flags that keep it off the network, and printing an HTML
//! file to PDF. A missing or unusable binary is found before any report file is written.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::write_atomic;

/// Names a Chromium or Chrome binary has on `PATH`, in the order they are looked for.
const NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// A Chromium (or Chrome) binary that can be run: `$LLMBENCH_CHROMIUM` (which must then be an
/// executable file), else the first found on `PATH`. The error says how to get one.
pub fn find_chromium() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("LLMBENCH_CHROMIUM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return match executable(&p) {
            Ok(()) => Ok(p),
            Err(why) => Err(format!(
                "LLMBENCH_CHROMIUM={}: {why}; point it at a Chrome/Chromium binary, unset it to look on PATH, or drop --pdf",
                p.display()
            )),
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .flat_map(|dir| NAMES.map(|name| dir.join(name)))
        .find(|p| executable(p).is_ok())
        .ok_or_else(|| {
            "--pdf needs Chromium to print the HTML report: install Debian's `chromium` package (apt-get install chromium), or set LLMBENCH_CHROMIUM to a Chrome/Chromium binary, or drop --pdf".to_owned()
        })
}

/// Whether `path` is a file that can be run; if not, why.
fn executable(path: &Path) -> Result<(), &'static str> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(_) => Err("no such file"),
        Ok(m) if !m.is_file() => Err("not a file"),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err("not executable"),
        Ok(_) => Ok(()),
    }
}

/// Flags for a headless Chromium that never reaches the network on its own.
pub fn headless_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// Prints `html` to PDF with headless Chromium (into its private profile folder), then writes
/// the bytes to `pdf` through the one atomic writer, so no half-printed PDF is ever at `pdf`.
pub fn print_pdf(chromium: &Path, html: &Path, pdf: &Path) -> Result<(), String> {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let profile = tempfile_dir()?;
    let printed = profile.join("printed.pdf");
    let out = Command::new(chromium)
        .args(headless_args(&profile))
        .arg("--no-pdf-header-footer")
        .arg(format!("--print-to-pdf={}", printed.display()))
        .arg(format!("file://{}", abs(html).display()))
        .output();
    let bytes = std::fs::read(&printed);
    let _ = std::fs::remove_dir_all(&profile);
    let out = out.map_err(|e| format!("cannot start {}: {e}", chromium.display()))?;
    match bytes {
        Ok(bytes) if out.status.success() => write_atomic(pdf, bytes).map_err(|e| e.to_string()),
        _ => Err(format!(
            "{} could not print {} to PDF ({}): {}",
            chromium.display(),
            html.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// A fresh, private Chromium profile folder.
fn tempfile_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "llmbench-chromium-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}
