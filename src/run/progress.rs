//! Live progress on the terminal (indicatif), fed by completed records. Hidden when stderr is
//! not a terminal, so logs and pipes stay clean.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::record::{Outcome, RequestRecord};

/// Counts completions and shows them.
pub struct Progress {
    bar: ProgressBar,
    ok: u64,
    failed: u64,
    phase: String,
}

impl Progress {
    /// A bar over `expected` requests when known, else a spinner. `visible` false hides it.
    pub fn new(expected: Option<u64>, visible: bool) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = match expected {
            Some(n) => ProgressBar::with_draw_target(Some(n), target).with_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/~{len} requests {msg}",
                )
                .expect("valid template"),
            ),
            None => ProgressBar::with_draw_target(None, target).with_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} requests {msg}")
                    .expect("valid template"),
            ),
        };
        bar.enable_steady_tick(Duration::from_millis(250));
        Self {
            bar,
            ok: 0,
            failed: 0,
            phase: String::new(),
        }
    }

    pub fn record(&mut self, r: &RequestRecord) {
        if r.outcome == Outcome::Ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        if self.phase != r.phase {
            self.phase.clone_from(&r.phase);
        }
        self.bar.inc(1);
        self.bar.set_message(format!(
            "| phase {} | ok {} | failed {}",
            self.phase, self.ok, self.failed
        ));
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
