//! Stopping a run from outside: SIGINT (Ctrl-C) and SIGTERM (`timeout`, Kubernetes, CI
//! cancellation, `docker stop`) alike. The first signal stops new arrivals (`stop`), gives
//! in-flight requests the grace period, then cancels them (`abort`); the run goes on to record
//! the rest as cancelled and write every output, and exits 130 (SIGINT) or 143 (SIGTERM).
//! A second signal exits at once (every completed record is already on disk). The watcher
//! lives for the whole run, so a signal during the last phase's wind-down, a slow assertion or
//! the report writing is honoured too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Which signal interrupted a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM.
    Term,
}

impl Interrupt {
    /// The shell's exit code for a process ended by this signal: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Int => 130,
            Self::Term => 143,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Int => "Ctrl-C",
            Self::Term => "SIGTERM",
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Int => 1,
            Self::Term => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Self::Int),
            2 => Some(Self::Term),
            _ => None,
        }
    }
}

/// The run's signal watcher. Dropping it stops watching.
pub struct Signals {
    /// Cancelled by the first signal: no new arrivals.
    pub stop: CancellationToken,
    /// Cancelled `grace` after the first signal: in-flight requests are cut off.
    pub abort: CancellationToken,
    which: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl Signals {
    /// Starts watching SIGINT and SIGTERM.
    pub fn watch(grace: Duration) -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
        let which = Arc::new(AtomicU8::new(0));
        let task = {
            let (stop, abort, which) = (stop.clone(), abort.clone(), which.clone());
            tokio::spawn(async move {
                let first = tokio::select! {
                    _ = int.recv() => Interrupt::Int,
                    _ = term.recv() => Interrupt::Term,
                };
                which.store(first.code(), Ordering::SeqCst);
                stop.cancel();
                eprintln!(
                    "\nllmbench: {} received; stopping: no new requests, in-flight ones get {:.0} s to finish, then every output is written (a second signal quits now)",
                    first.name(),
                    grace.as_secs_f64()
                );
                let cut_off = tokio::time::sleep(grace);
                tokio::pin!(cut_off);
                let mut aborted = false;
                loop {
                    let second = tokio::select! {
                        _ = &mut cut_off, if !aborted => {
                            abort.cancel();
                            aborted = true;
                            continue;
                        }
                        _ = int.recv() => Interrupt::Int,
                        _ = term.recv() => Interrupt::Term,
                    };
                    eprintln!(
                        "llmbench: {} again: quitting now; completed requests are in the raw records",
                        second.name()
                    );
                    std::process::exit(first.exit_code() as i32);
                }
            })
        };
        Ok(Self {
            stop,
            abort,
            which,
            task,
        })
    }

    /// Calls `f` once when the run is stopped (for as long as the returned guard lives).
    pub fn on_stop(&self, f: impl FnOnce() + Send + 'static) -> OnStop {
        let stop = self.stop.clone();
        OnStop(tokio::spawn(async move {
            stop.cancelled().await;
            f();
        }))
    }

    /// The signal that interrupted the run, if one came.
    pub fn interrupted(&self) -> Option<Interrupt> {
        Interrupt::from_code(self.which.load(Ordering::SeqCst))
    }

    /// Runs `work` unless the run is stopped, before or while it runs; `None` when it is
    /// (the work is abandoned).
    pub async fn unless_stopped<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => None,
            out = work => Some(out),
        }
    }
}

/// Keeps an `on_stop` callback armed; dropping it disarms it.
pub struct OnStop(tokio::task::JoinHandle<()>);

impl Drop for OnStop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.task.abort();
    }
}
