//! Precise waits. tokio's timer works in whole milliseconds and fires up to a millisecond late,
//! too coarse for arrival times and injected token gaps. `sleep_until` lets tokio's timer take
//! the bulk of a wait, then hands the last stretch to one shared thread that sleeps to each
//! deadline with the operating system's fine-grained timer and wakes the waiting task. Nothing
//! spins, so precision costs no CPU.
//!
//! `Pacer` is the scheduler's choice of timer: `Precise` for runs, `Tokio` (tokio's own timer
//! alone) for tests on tokio's paused clock, where waits take no real time and every arrival
//! lands exactly on its deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::clock::Instant;

/// How much of a wait tokio's millisecond timer may take (it can fire up to ~1 ms late).
const COARSE_MARGIN: Duration = Duration::from_micros(1_500);

/// How the scheduler waits for an arrival's deadline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pacer {
    /// `sleep_until`: tokio's timer for the bulk, the precise thread for the last stretch.
    #[default]
    Precise,
    /// tokio's timer alone (exact on tokio's paused clock; ~1 ms late in real time).
    Tokio,
}

impl Pacer {
    pub async fn sleep_until(self, deadline: Instant) {
        match self {
            Self::Precise => sleep_until(deadline).await,
            Self::Tokio => tokio::time::sleep_until(deadline).await,
        }
    }
}

/// Waits until `deadline` to within tens of microseconds.
pub async fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    if deadline - now > COARSE_MARGIN {
        tokio::time::sleep_until(deadline - COARSE_MARGIN).await;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return;
    }
    let (tx, rx) = oneshot::channel();
    let at = std::time::Instant::now() + left;
    if timer().send(Waiter { at, wake: tx }).is_ok() {
        let _ = rx.await;
    } else {
        tokio::time::sleep(left).await;
    }
}

struct Waiter {
    at: std::time::Instant,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

fn timer() -> &'static Sender<Waiter> {
    static TIMER: OnceLock<Sender<Waiter>> = OnceLock::new();
    TIMER.get_or_init(|| {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("llmbench-timer".into())
            .spawn(move || run(rx))
            .expect("the timer thread starts");
        tx
    })
}

/// The timer thread: keeps waiters in deadline order and wakes each at its time.
fn run(rx: Receiver<Waiter>) {
    let mut due: BinaryHeap<Reverse<Waiter>> = BinaryHeap::new();
    loop {
        let now = std::time::Instant::now();
        while due.peek().is_some_and(|w| w.0.at <= now) {
            let _ = due.pop().expect("peeked").0.wake.send(());
        }
        let next = match due.peek() {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(w) => rx.recv_timeout(w.0.at.saturating_duration_since(now)),
        };
        match next {
            Ok(w) => {
                due.push(Reverse(w));
                while let Ok(w) = rx.try_recv() {
                    due.push(Reverse(w));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_close_to_the_deadline_and_in_order() {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for k in (1..=20u64).rev() {
            let at = start + Duration::from_micros(2_300 * k);
            tasks.push(tokio::spawn(async move {
                sleep_until(at).await;
                (k, Instant::now().saturating_duration_since(at))
            }));
        }
        for t in tasks {
            let (_, late) = t.await.unwrap();
            // Generous for a busy 2-core machine; typical lateness is tens of microseconds.
            assert!(late < Duration::from_millis(20), "{late:?}");
        }
        sleep_until(start).await; // a past deadline returns at once
    }
}
