//! Time units, in one place. Record stamps and intervals are whole microseconds (`u64`) on the
//! run clock; statistics and reports show milliseconds (`f64`); rates and durations of windows
//! are in seconds (`f64`); waits are `Duration`s. Every conversion between them goes through
//! these functions, so a unit is never guessed at a call site.

use std::time::Duration;

/// Microseconds to milliseconds.
pub fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// Microseconds (fractional, e.g. a mean) to milliseconds.
pub fn us_f_to_ms(us: f64) -> f64 {
    us / 1_000.0
}

/// Microseconds to seconds.
pub fn us_to_s(us: u64) -> f64 {
    us as f64 / 1_000_000.0
}

/// Microseconds (fractional) to seconds.
pub fn us_f_to_s(us: f64) -> f64 {
    us / 1_000_000.0
}

/// Seconds to whole microseconds (truncated; negative becomes 0).
pub fn s_to_us(s: f64) -> u64 {
    (s * 1_000_000.0) as u64
}

/// A duration in whole microseconds.
pub fn duration_us(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// Milliseconds (as flags and scripts give them) to a duration.
pub fn ms_to_duration(ms: f64) -> Duration {
    Duration::from_secs_f64(ms / 1_000.0)
}

/// The microseconds between two stamps, in seconds (0 when `end` is before `start`).
pub fn span_s(start_us: u64, end_us: u64) -> f64 {
    us_to_s(end_us.saturating_sub(start_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_agree_with_each_other() {
        assert_eq!(us_to_ms(1_500), 1.5);
        assert_eq!(us_f_to_ms(2_500.0), 2.5);
        assert_eq!(us_to_s(2_000_000), 2.0);
        assert_eq!(s_to_us(0.25), 250_000);
        assert_eq!(duration_us(ms_to_duration(1.5)), 1_500);
        assert_eq!(span_s(3_000_000, 1_000_000), 0.0);
        assert_eq!(span_s(1_000_000, 3_500_000), 2.5);
    }
}
