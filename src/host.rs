//! What the operating system lets one llmbench process do, and what llmbench itself costs:
//! raising the open-file limit so thousands of concurrent streams get their connections, and
//! measuring the CPU time of the thread that drives every request, so a run can say when
//! llmbench (not the server) was the bottleneck; and the host's description for run metadata.

/// File descriptors kept aside for everything that is not a request connection (raw file,
/// telemetry, the mock's listener, the runtime's own).
const SPARE_FDS: u64 = 64;
/// The open-file limit llmbench asks for at least, when the hard limit allows.
const MIN_FDS: u64 = 8_192;

/// The open-file limit is too low for the run and cannot be raised.
#[derive(Debug, thiserror::Error)]
#[error(
    "this run needs up to {streams} connections open at once (one per request in flight, both ends when the built-in mock runs in this process), but this process may open only {soft} files (hard limit {hard}); raise the limit, e.g. `ulimit -n {wanted}` (as root or in /etc/security/limits.conf when the hard limit is lower), or lower the concurrency"
)]
pub struct FdLimitError {
    pub streams: u64,
    pub soft: u64,
    pub hard: u64,
    pub wanted: u64,
}

/// Raises this process's open-file limit (soft, up to the hard limit) so `streams` connections
/// fit at once; returns the limit now in force. An error when they cannot fit.
pub fn ensure_fd_limit(streams: u64) -> Result<u64, FdLimitError> {
    let wanted = streams.saturating_add(SPARE_FDS);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a live local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Ok(u64::MAX); // unknown: let connections fail with their own error
    }
    let (soft, hard) = (lim.rlim_cur, lim.rlim_max);
    // Room for an uncapped open loop's streams too, whatever the plan's cap says.
    if soft >= wanted.max(MIN_FDS) {
        return Ok(soft);
    }
    // Ask for what is needed with room to spare, never more than the hard limit.
    let raised = wanted.saturating_mul(2).max(MIN_FDS).min(hard);
    let new = libc::rlimit {
        rlim_cur: raised,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads a live local.
    let now = if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
        raised
    } else {
        soft
    };
    if now >= wanted {
        Ok(now)
    } else {
        Err(FdLimitError {
            streams,
            soft: now,
            hard,
            wanted,
        })
    }
}

/// How busy the thread driving every request was over a stretch of a run: with one request
/// thread (`--threads 1`, the default) it is that thread's CPU time over the wall time. Several
/// threads cannot be told apart from llmbench's helper threads, so there it measures nothing.
pub struct BusyMeter {
    started: std::time::Instant,
    cpu_s: f64,
}

/// Busy share of the request thread from which a run warns that llmbench itself may have
/// delayed sends and stamps.
pub const BUSY_WARNING: f64 = 0.6;

impl BusyMeter {
    /// Starts measuring, on the thread that drives the requests; `None` on a runtime with
    /// several worker threads.
    pub fn start() -> Option<Self> {
        let flavor = tokio::runtime::Handle::try_current().ok()?.runtime_flavor();
        (flavor == tokio::runtime::RuntimeFlavor::CurrentThread).then(|| Self {
            started: std::time::Instant::now(),
            cpu_s: thread_cpu_s(),
        })
    }

    /// Share of the wall time since `start` the request thread spent on the CPU (0 to 1).
    pub fn busy_share(&self) -> f64 {
        let wall = self.started.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        ((thread_cpu_s() - self.cpu_s) / wall).clamp(0.0, 1.0)
    }
}

/// How far off this host's wall clock may be, as the kernel's clock discipline (NTP, chrony,
/// PTP through `adjtimex`) estimates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClockError {
    /// The estimated error, µs.
    pub estimated_us: u64,
    /// The bound on the error, µs.
    pub max_us: u64,
}

/// The kernel's estimate of the wall clock's error; `None` where the clock is not synchronized
/// (or the kernel cannot say), so no estimate is available.
pub fn clock_error() -> Option<ClockError> {
    // SAFETY: adjtimex with modes 0 only reads, into a zeroed local.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut t) };
    let synced = state >= 0 && state != libc::TIME_ERROR && t.status & libc::STA_UNSYNC == 0;
    synced.then(|| ClockError {
        estimated_us: t.esterror.max(0) as u64,
        max_us: t.maxerror.max(0) as u64,
    })
}

/// CPU time (user + system) of the calling thread so far, seconds.
pub fn thread_cpu_s() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into a live local.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// This machine for the run metadata: host name, cores, OS and architecture.
pub fn description() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown host".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{name} ({cores} cores, {} {})",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_error_estimate_is_within_the_kernels_bound_or_absent() {
        // Synchronized or not depends on the machine; either way no panic, and an estimate
        // stays within the kernel's 16 s ceiling.
        if let Some(e) = clock_error() {
            assert!(
                e.max_us <= 16_000_000 && e.estimated_us <= 16_000_000,
                "{e:?}"
            );
        }
    }

    #[test]
    fn a_small_need_is_met_and_an_impossible_one_is_a_clear_error() {
        assert!(ensure_fd_limit(10).unwrap() >= 10 + SPARE_FDS);
        let err = ensure_fd_limit(u64::MAX / 4).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ulimit -n"), "{msg}");
        assert!(msg.contains("lower the concurrency"), "{msg}");
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = thread_cpu_s();
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_s() > before);
    }
}
