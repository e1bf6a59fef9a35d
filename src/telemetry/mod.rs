//! Telemetry: GPU readings (NVML) and Prometheus scrapes (vLLM, SGLang, TGI, llama.cpp, DCGM),
//! stamped on the run's clock, streamed to `results/raw/<run-id>.telemetry.jsonl` and kept for
//! the summary (counter deltas and rates, energy per phase and per token).
//!
//! Samplers run beside the load (the GPU sampler on its own thread, scrapers as tokio tasks) and
//! send readings to one recorder thread that owns the file. A missing driver or a failing
//! endpoint is a notice, never a failed run (a missing driver's, once per process).

pub mod gpu;
pub mod prefix_cache;
pub mod prometheus;
pub mod series;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::plan::TelemetrySpec;

/// Said once per process when local GPUs cannot be read: one short line, so it does not wrap
/// under the progress bar (`LLMBENCH_NO_NVML=1` makes `--no-nvml` the default on machines
/// without an NVIDIA GPU).
pub const NO_NVML_NOTICE: &str = "no local GPU telemetry (NVML unavailable; --no-nvml hides this)";

/// Whether this process has already said `NO_NVML_NOTICE` (a sweep or a test runs many times).
static NVML_NOTICE_GIVEN: AtomicBool = AtomicBool::new(false);

/// What kind of series a reading belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Gauge,
    /// Only goes up (or resets to zero): deltas and rates mean something, levels do not.
    Counter,
    Histogram,
    Summary,
    Untyped,
}

impl Kind {
    fn from_type(s: &str) -> Self {
        match s {
            "gauge" => Kind::Gauge,
            "counter" => Kind::Counter,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            _ => Kind::Untyped,
        }
    }
}

/// One value of one series at one time: a line of the telemetry JSONL file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// µs since the run's clock origin.
    pub t_us: u64,
    /// `nvml`, or the scraped URL.
    pub source: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub kind: Kind,
    pub value: f64,
}

enum Msg {
    Readings(Vec<Reading>),
    Notice(String),
    ScrapeFailed(ScrapeFailure),
}

/// A scraped endpoint whose scrapes failed (unreachable, an error status, not Prometheus
/// text): how many of how many, and the first error. The URL and error carry no secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeFailure {
    pub url: String,
    pub failed: u64,
    pub tried: u64,
    pub error: String,
}

/// Where samplers send readings and notices, and how they learn to stop: once `closed`, a
/// sampler takes one last sample (so the end of the run is covered) and returns.
#[derive(Clone)]
pub struct SampleSink {
    tx: Sender<Msg>,
    stop: CancellationToken,
}

impl SampleSink {
    /// Sends a batch; false if the recorder is gone.
    pub fn send_all(&self, readings: impl IntoIterator<Item = Reading>) -> bool {
        let batch: Vec<Reading> = readings.into_iter().collect();
        self.tx.send(Msg::Readings(batch)).is_ok()
    }

    /// Tells the user something once (the recorder drops repeats).
    pub fn notice(&self, message: String) {
        let _ = self.tx.send(Msg::Notice(message));
    }

    /// Reports, once a scraper ends, that some of its scrapes failed.
    pub fn scrape_failed(&self, failure: ScrapeFailure) {
        let _ = self.tx.send(Msg::ScrapeFailed(failure));
    }

    /// Telemetry is stopping.
    pub fn closed(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Resolves when telemetry starts stopping.
    pub async fn stopping(&self) {
        self.stop.cancelled().await
    }
}

/// What telemetry collected, once stopped.
#[derive(Debug, Default)]
pub struct Collected {
    pub readings: Vec<Reading>,
    pub notices: Vec<String>,
    /// Scraped endpoints with failed scrapes, for the run's warnings.
    pub scrape_failures: Vec<ScrapeFailure>,
    pub path: Option<PathBuf>,
}

/// The longest a run waits for the first scrapes before its load (an endpoint that does not
/// answer is given up on: its failures become a run warning).
pub const FIRST_SCRAPE_WAIT: Duration = Duration::from_secs(2);

/// Running samplers and their recorder.
pub struct Telemetry {
    sink: SampleSink,
    scrapers: Vec<tokio::task::JoinHandle<()>>,
    /// Told when each scraper's first scrape is over.
    first: Vec<tokio::sync::oneshot::Receiver<()>>,
    gpu: Option<std::thread::JoinHandle<()>>,
    recorder: std::thread::JoinHandle<Collected>,
}

impl Telemetry {
    /// Starts what `spec` asks for, writing readings to `path` (`None`: kept in memory only).
    /// Must run inside a tokio runtime. The file is created with the first reading, so a run
    /// without telemetry leaves none.
    pub fn start(spec: &TelemetrySpec, clock: Clock, path: Option<&Path>) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        let sink = SampleSink {
            tx,
            stop: CancellationToken::new(),
        };
        let out = path.map(Path::to_owned);
        let recorder = std::thread::Builder::new()
            .name("llmbench-telemetry".into())
            .spawn(move || record(rx, out))?;
        let (scrapers, first) = spec
            .prometheus
            .iter()
            .map(|url| {
                let (told, first) = tokio::sync::oneshot::channel();
                let task = tokio::spawn(prometheus::scrape_loop(
                    url.clone(),
                    spec.every,
                    spec.series.clone(),
                    clock,
                    sink.clone(),
                    told,
                ));
                (task, first)
            })
            .unzip();
        let gpu = if spec.nvml {
            let (gpu_sink, every, gpus) = (sink.clone(), spec.every, spec.gpus.clone());
            Some(
                std::thread::Builder::new()
                    .name("llmbench-gpu".into())
                    .spawn(move || match gpu::NvmlSource::open() {
                        Ok(source) => gpu::sample_loop(source, gpus, every, clock, gpu_sink),
                        Err(_) if NVML_NOTICE_GIVEN.swap(true, Ordering::Relaxed) => {}
                        Err(_) => gpu_sink.notice(NO_NVML_NOTICE.into()),
                    })?,
            )
        } else {
            None
        };
        Ok(Self {
            sink,
            scrapers,
            first,
            gpu,
            recorder,
        })
    }

    /// Resolves once every scraper's first scrape is over (at most `FIRST_SCRAPE_WAIT`), so a
    /// run that starts its load after it has a reading of each counter from before the load:
    /// the first phase's increases then start from there.
    pub fn first_scrapes(&mut self) -> impl std::future::Future<Output = ()> + use<> {
        let first = std::mem::take(&mut self.first);
        async move {
            let all = futures_util::future::join_all(first);
            let _ = tokio::time::timeout(FIRST_SCRAPE_WAIT, all).await;
        }
    }

    /// Stops every sampler (after one last sample each) and returns what was collected.
    pub async fn stop(self) -> Collected {
        self.sink.stop.cancel();
        for mut s in self.scrapers {
            // A last scrape gets a moment; an endpoint that hangs is cut off.
            if tokio::time::timeout(Duration::from_secs(2), &mut s)
                .await
                .is_err()
            {
                s.abort();
                let _ = s.await;
            }
        }
        drop(self.sink);
        let (gpu, recorder) = (self.gpu, self.recorder);
        tokio::task::spawn_blocking(move || {
            if let Some(g) = gpu {
                let _ = g.join();
            }
            recorder.join().unwrap_or_default()
        })
        .await
        .unwrap_or_default()
    }
}

/// The recorder: appends every reading to the file (flushed per batch), keeps it for the
/// summary, and prints each distinct notice once.
fn record(rx: Receiver<Msg>, path: Option<PathBuf>) -> Collected {
    let mut collected = Collected::default();
    let mut seen = BTreeSet::new();
    let mut out: Option<BufWriter<File>> = None;
    let mut write_failed = path.is_none();
    let path = path.unwrap_or_default();
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Readings(batch) if batch.is_empty() => {}
            Msg::Readings(batch) => {
                if out.is_none() && !write_failed {
                    match File::options().write(true).create_new(true).open(&path) {
                        Ok(f) => {
                            out = Some(BufWriter::new(f));
                            collected.path = Some(path.clone());
                        }
                        Err(e) => {
                            write_failed = true;
                            eprintln!(
                                "llmbench: cannot create {}: {e}; the summary still uses every sample",
                                path.display()
                            );
                        }
                    }
                }
                if let Some(w) = out.as_mut().filter(|_| !write_failed) {
                    let ok = batch.iter().all(|r| {
                        serde_json::to_writer(&mut *w, r).is_ok() && w.write_all(b"\n").is_ok()
                    }) && w.flush().is_ok();
                    if !ok {
                        write_failed = true;
                        eprintln!(
                            "llmbench: writing {} failed; the summary still uses every sample",
                            path.display()
                        );
                    }
                }
                collected.readings.extend(batch);
            }
            Msg::ScrapeFailed(f) => collected.scrape_failures.push(f),
            Msg::Notice(n) => {
                if seen.insert(n.clone()) {
                    eprintln!("llmbench: {}", crate::escape::terminal(&n));
                    collected.notices.push(n);
                }
            }
        }
    }
    collected
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs in one process say the missing driver at most once between them (none on a
    /// GPU machine, or when another test of this process said it first).
    #[tokio::test]
    async fn the_missing_driver_is_said_once_per_process() {
        let mut said = 0;
        for _ in 0..2 {
            let telemetry = Telemetry::start(&TelemetrySpec::default(), Clock::start(), None);
            let collected = telemetry.unwrap().stop().await;
            said += collected
                .notices
                .iter()
                .filter(|n| n.as_str() == NO_NVML_NOTICE)
                .count();
        }
        assert!(said <= 1, "{said}");
    }
}
