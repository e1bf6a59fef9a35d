//! The async runtimes llmbench runs on: the one a command starts on (`build`, sized by a fixed
//! `--threads`, one thread for `auto`), and, when `--threads auto` finds that a plan needs more
//! (`settings::threads::choose`), a runtime of its own for that run (`run_on`).

use std::future::Future;

/// A runtime with `threads` workers: a current-thread runtime for one (no hand-offs between
/// threads on the per-chunk path, most of llmbench's own CPU time: benches/RESULTS.md).
pub fn build(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder.enable_all().build()
}

/// Runs the future `work` makes to its end on a fresh runtime of `threads` workers, on a thread
/// of its own, and returns its output. The caller's thread waits: it is the one-thread runtime
/// a command starts on, which has nothing else to do while its run goes on elsewhere.
pub fn run_on<F, T>(threads: usize, work: impl FnOnce() -> F + Send) -> std::io::Result<T>
where
    F: Future<Output = T>,
    T: Send,
{
    std::thread::scope(|s| {
        s.spawn(move || {
            let runtime = build(threads)?;
            let out = runtime.block_on(work());
            runtime.shutdown_timeout(std::time::Duration::from_millis(100));
            Ok(out)
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_gets_the_workers_it_asked_for() {
        let flavor = |threads| {
            run_on(threads, || async {
                let handle = tokio::runtime::Handle::current();
                (handle.runtime_flavor(), handle.metrics().num_workers())
            })
            .unwrap()
        };
        use tokio::runtime::RuntimeFlavor::{CurrentThread, MultiThread};
        assert_eq!(flavor(1), (CurrentThread, 1));
        assert_eq!(flavor(3), (MultiThread, 3));
    }
}
