//! Record sinks: everything that consumes a run's records as they complete. The client hands
//! each finished record to a bounded channel; one thread (`RecordPump`) takes them in order and
//! feeds each to every sink in a list: the raw writer, the statistics pass, the progress bar,
//! the live view, and whatever the caller adds (an in-memory collector for calibrate and tests).

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::record::{RecordWriter, RequestRecord};
use crate::run::live::Live;
use crate::run::progress::Progress;
use crate::stats::analysis::Analyzer;

/// How many finished records may wait for the sinks before the requests that finish next wait
/// for room (a sink slower than the requests shows up as latency in nothing but itself: the
/// request's stamps are all taken before the send).
pub const RECORDS_QUEUED: usize = 65_536;

/// Consumes records as they complete.
pub trait RecordSink: Send {
    fn record(&mut self, record: &RequestRecord);
    /// The run's last record has been seen.
    fn finish(&mut self) {}
}

impl RecordSink for Analyzer {
    fn record(&mut self, record: &RequestRecord) {
        self.add(record);
    }
}

impl RecordSink for Progress {
    fn record(&mut self, record: &RequestRecord) {
        Progress::record(self, record);
    }
    fn finish(&mut self) {
        Progress::finish(self);
    }
}

impl RecordSink for Arc<Live> {
    fn record(&mut self, record: &RequestRecord) {
        Live::record(self, record);
    }
}

/// The raw records file. A failed write is kept (the first error, with the file) and later
/// records are not written; the other sinks still see every record.
pub struct RawSink {
    writer: RecordWriter,
    /// Records written.
    pub written: u64,
    pub error: Option<String>,
}

impl RawSink {
    pub fn new(writer: RecordWriter) -> Self {
        Self {
            writer,
            written: 0,
            error: None,
        }
    }
}

impl RecordSink for RawSink {
    fn record(&mut self, record: &RequestRecord) {
        if self.error.is_some() {
            return;
        }
        match self.writer.append(record) {
            Ok(()) => self.written += 1,
            Err(e) => self.error = Some(format!("{}: {e}", self.writer.path().display())),
        }
    }
}

/// Keeps every record in memory; `records()` hands them out once the run is over.
#[derive(Clone, Default)]
pub struct MemorySink(Arc<Mutex<Vec<RequestRecord>>>);

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// The records so far, in completion order (taken out of the sink).
    pub fn take(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut *self.0.lock().expect("memory sink lock"))
    }
}

impl RecordSink for MemorySink {
    fn record(&mut self, record: &RequestRecord) {
        self.0
            .lock()
            .expect("memory sink lock")
            .push(record.clone());
    }
}

/// The sinks every run has (statistics, and the raw file when writing files), plus the rest.
pub struct Sinks {
    pub stats: Analyzer,
    pub raw: Option<RawSink>,
    pub others: Vec<Box<dyn RecordSink>>,
}

impl Sinks {
    /// Every sink, the raw file first: a record is on disk before anything shows it.
    fn each(&mut self) -> impl Iterator<Item = &mut (dyn RecordSink + 'static)> + '_ {
        let raw = self
            .raw
            .as_mut()
            .map(|r| r as &mut (dyn RecordSink + 'static));
        raw.into_iter()
            .chain(std::iter::once(
                &mut self.stats as &mut (dyn RecordSink + 'static),
            ))
            .chain(self.others.iter_mut().map(|s| s.as_mut()))
    }
}

/// The thread that feeds records from the channel to the sinks.
pub struct RecordPump {
    thread: std::thread::JoinHandle<Sinks>,
}

impl RecordPump {
    /// Starts the thread; the returned sender is the clients' end of the bounded channel.
    pub fn start(sinks: Sinks) -> std::io::Result<(mpsc::Sender<RequestRecord>, Self)> {
        let (tx, mut rx) = mpsc::channel::<RequestRecord>(RECORDS_QUEUED);
        let thread = std::thread::Builder::new()
            .name("llmbench-records".into())
            .spawn(move || {
                let mut sinks = sinks;
                while let Some(rec) = rx.blocking_recv() {
                    for sink in sinks.each() {
                        sink.record(&rec);
                    }
                }
                for sink in sinks.each() {
                    sink.finish();
                }
                sinks
            })?;
        Ok((tx, Self { thread }))
    }

    /// Waits until every sender is dropped and the sinks have seen every record.
    pub async fn join(self) -> Option<Sinks> {
        tokio::task::spawn_blocking(move || self.thread.join().ok())
            .await
            .ok()
            .flatten()
    }
}
