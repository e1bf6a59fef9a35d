//! Helpers for tests that run the `llmbench` binary: the command, files under a results
//! folder, `llmbench mock` as its own process, signals, and readiness waits (polling what the
//! run writes instead of sleeping a fixed time).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use llmbench::mock::MockStats;
use llmbench::record::{RequestRecord, parse_records};

/// The `llmbench` binary, run from the project folder.
pub fn llmbench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llmbench"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// `llmbench ARGS` run to the end in `dir` (stderr is no terminal: no progress bar), as a user
/// in that folder runs it.
pub fn in_folder(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Every file under `dir`, recursively, sorted.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every file a run wrote under the results folder `results` (its `raw/`, `summary/`,
/// `reports/` and `runs/`), sorted.
pub fn result_files(results: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = llmbench::record::layout::FOLDERS
        .iter()
        .flat_map(|sub| all_files(&results.join(sub)))
        .collect();
    out.sort();
    out
}

/// The one file of the run under `results/<sub>/` ending in `.<ext>` (the comparison report
/// across runs, `reports/benchmark_report.*`, is not a run's; nor is the percentile intervals
/// file `summary/<id>.intervals.csv` its summary CSV).
pub fn only_file(results: &Path, sub: &str, ext: &str) -> PathBuf {
    let found: Vec<PathBuf> = all_files(&results.join(sub))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(&format!(".{ext}")))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            !name.starts_with("benchmark_report.")
                && (ext != "csv" || !name.ends_with(".intervals.csv"))
        })
        .collect();
    assert_eq!(found.len(), 1, "one {sub}/*.{ext} expected: {found:?}");
    found[0].clone()
}

/// The records of the one run under `results` (every line must be a whole record).
pub fn raw_records(results: &Path) -> Vec<RequestRecord> {
    llmbench::record::read_records(&only_file(results, "raw", "jsonl")).unwrap()
}

/// Waits until the run writing into `results` has flushed at least `n` records (its raw file
/// is the readiness signal); panics after 60 s.
pub fn wait_for_records(results: &Path, n: usize) {
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let whole = all_files(&results.join("raw"))
            .iter()
            .filter(|p| {
                p.to_string_lossy().ends_with(".jsonl")
                    && !p.to_string_lossy().contains("telemetry")
            })
            .map(|p| {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                let done = text.rfind('\n').map_or("", |i| &text[..=i]);
                parse_records(done.as_bytes(), p).map_or(0, |r| r.len())
            })
            .sum::<usize>();
        if whole >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "fewer than {n} records under {} after 60 s",
        results.display()
    );
}

/// Reads `child`'s stderr until a line contains `needle` (a readiness signal the run prints);
/// returns the reader, to keep the pipe open until the run ends.
pub fn stderr_until(child: &mut Child, needle: &str) -> BufReader<std::process::ChildStderr> {
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
    let mut line = String::new();
    while !line.contains(needle) {
        line.clear();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "the run ended without printing {needle:?}");
    }
    stderr
}

/// Sends `signal` (e.g. "INT", "TERM") to `child`.
pub fn signal(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal}");
}

/// `llmbench mock` as a child process on a free port, with its base URL.
pub struct MockProcess {
    child: Child,
    pub base_url: String,
}

impl MockProcess {
    pub fn start(args: &[&str]) -> Self {
        let mut child = llmbench()
            .args(["mock", "--port", "0"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let line = lines.next().unwrap().unwrap();
        let base_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Self { child, base_url }
    }

    /// The body of `GET path` from the mock.
    fn get(&self, path: &str) -> String {
        let addr = self
            .base_url
            .trim_start_matches("http://")
            .trim_end_matches("/v1");
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        text.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    /// `GET /mock/stats` now.
    pub fn stats_now(&self) -> MockStats {
        serde_json::from_str(&self.get("/mock/stats")).unwrap()
    }

    /// `GET /mock/timings`: what the mock logged of each request it saw.
    #[allow(dead_code)]
    pub fn timings(&self) -> Vec<llmbench::mock::LoggedTiming> {
        serde_json::from_str(&self.get("/mock/timings")).unwrap()
    }

    /// `GET /mock/stats`, once every request the mock saw has ended.
    pub fn stats(&self) -> MockStats {
        for _ in 0..200 {
            let stats = self.stats_now();
            if stats.ended() == stats.received {
                return stats;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the mock never settled");
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test cases of a JUnit XML file, parsed as XML: (name, failed), in file order.
pub fn junit_cases(path: &Path) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(["testsuite", "testsuites"].contains(&doc.root_element().tag_name().name()));
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            let failed = n.children().any(|c| c.has_tag_name("failure"));
            (n.attribute("name").unwrap().to_owned(), failed)
        })
        .collect()
}
