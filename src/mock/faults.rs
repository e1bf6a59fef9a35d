//! Fault injection for the mock server: which fault each request gets, and the counters of what
//! the mock did, so tests can compare the client's records with the server's own account.
//!
//! The fault of a request is a pure function of the seed and the request's id (the
//! `x-llmbench-request-id` header), so a run is reproducible whatever the order of arrival.
//! Requests without an id (llmbench's preflight, curl) are never faulted and are counted apart.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the mock breaks, and how often (each rate is a probability per request).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    pub seed: u64,
    /// HTTP 500 with an OpenAI error body.
    pub fail_rate: f64,
    /// HTTP 429 with `Retry-After`.
    pub rate_limit_rate: f64,
    /// The connection is closed mid-stream (after half the tokens).
    pub drop_rate: f64,
    /// A malformed SSE line mid-stream (after half the tokens).
    pub garbage_rate: f64,
    /// A pause of `stall` mid-stream (after half the tokens); the response then completes.
    pub stall_rate: f64,
    pub stall: Duration,
    /// Answer 401 to any request without `Authorization: Bearer <key>`.
    pub require_key: Option<String>,
}

/// The fault one request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Fail,
    RateLimit,
    Drop,
    Garbage,
    Stall,
}

impl FaultConfig {
    /// Checks that every rate is a probability and that they add up to at most 1.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("--fail-rate", self.fail_rate),
            ("--rate-limit-rate", self.rate_limit_rate),
            ("--drop-rate", self.drop_rate),
            ("--garbage-rate", self.garbage_rate),
            ("--stall-rate", self.stall_rate),
        ];
        for (flag, r) in rates {
            if !(0.0..=1.0).contains(&r) {
                return Err(format!("{flag} {r}: a rate is a probability from 0 to 1"));
            }
        }
        let sum: f64 = rates.iter().map(|(_, r)| r).sum();
        if sum > 1.0 + 1e-9 {
            return Err(format!(
                "the fault rates add up to {sum}: each request gets at most one fault, so their sum must be 1 or less"
            ));
        }
        Ok(())
    }

    /// The fault attempt `attempt` (0 the first time the mock sees request `id`, 1 for its
    /// first retry, ...) gets: one uniform draw from a hash of (seed, id, attempt), laid over
    /// the rates in the order fail, rate limit, drop, garbage, stall.
    pub fn fault_for(&self, id: u64, attempt: u32) -> Fault {
        let key = id.wrapping_mul(crate::seeded::GAMMA)
            ^ u64::from(attempt).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let u = unit(splitmix64(self.seed ^ key));
        let mut edge = 0.0;
        for (rate, fault) in [
            (self.fail_rate, Fault::Fail),
            (self.rate_limit_rate, Fault::RateLimit),
            (self.drop_rate, Fault::Drop),
            (self.garbage_rate, Fault::Garbage),
            (self.stall_rate, Fault::Stall),
        ] {
            edge += rate;
            if u < edge {
                return fault;
            }
        }
        Fault::None
    }

    /// Whether a request with this `Authorization` header value may pass.
    pub fn authorized(&self, authorization: Option<&str>) -> bool {
        match &self.require_key {
            None => true,
            Some(key) => authorization
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|given| given == key),
        }
    }
}

/// A uniform draw in [0, 1) from (seed, key): the same pair always gives the same draw.
pub fn uniform(seed: u64, key: u64) -> f64 {
    unit(splitmix64(seed ^ key.wrapping_mul(crate::seeded::GAMMA)))
}

/// One SplitMix64 step from state `x`.
fn splitmix64(x: u64) -> u64 {
    crate::seeded::finalize(x.wrapping_add(crate::seeded::GAMMA))
}

/// A uniform draw in [0, 1) from 53 bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// What the mock did. Every count but `unlabelled` is over requests carrying a request id.
/// Each such request ends in exactly one of `unauthorized`, `bad_request`, `failed`,
/// `rate_limited`, `dropped`, `garbage`, `completed` or `client_gone`, once it has ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MockStats {
    /// Requests received (with a request id).
    pub received: u64,
    /// Answered 401: the `--require-key` key was missing or wrong.
    pub unauthorized: u64,
    /// Answered 400: the body was not a JSON object.
    pub bad_request: u64,
    /// Answered 500 (`--fail-rate`).
    pub failed: u64,
    /// Answered 429 (`--rate-limit-rate`).
    pub rate_limited: u64,
    /// Connection closed mid-response (`--drop-rate`).
    pub dropped: u64,
    /// A malformed SSE line (or body) was sent (`--garbage-rate`).
    pub garbage: u64,
    /// Paused mid-stream (`--stall-rate`); these also count in `completed` when they finish.
    pub stalled: u64,
    /// The whole response was written (`[DONE]` or the whole body).
    pub completed: u64,
    /// The client went away before an unfaulted response was complete.
    pub client_gone: u64,
    /// Requests without a request id (preflight, curl): never faulted, counted only here.
    pub unlabelled: u64,
}

impl MockStats {
    /// Requests (with an id) whose end has been counted; equals `received` once all are over.
    pub fn ended(&self) -> u64 {
        self.unauthorized
            + self.bad_request
            + self.failed
            + self.rate_limited
            + self.dropped
            + self.garbage
            + self.completed
            + self.client_gone
    }
}

/// The TTFT of the `n`-th request read: `ttft` plus a uniform draw in ±`ttft_jitter`.
pub(super) fn jittered_ttft(c: &super::MockConfig, n: u64) -> Duration {
    let u = uniform(c.faults.seed, n);
    let offset = c.ttft_jitter.as_secs_f64() * (2.0 * u - 1.0);
    Duration::from_secs_f64((c.ttft.as_secs_f64() + offset).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_reproducible_and_follow_the_rates() {
        let cfg = FaultConfig {
            seed: 7,
            fail_rate: 0.1,
            rate_limit_rate: 0.2,
            drop_rate: 0.3,
            ..FaultConfig::default()
        };
        let draw: Vec<Fault> = (0..10_000).map(|id| cfg.fault_for(id, 0)).collect();
        assert_eq!(
            draw,
            (0..10_000)
                .map(|id| cfg.fault_for(id, 0))
                .collect::<Vec<_>>()
        );
        let share = |f| draw.iter().filter(|&&x| x == f).count() as f64 / 10_000.0;
        assert!((share(Fault::Fail) - 0.1).abs() < 0.02);
        assert!((share(Fault::RateLimit) - 0.2).abs() < 0.02);
        assert!((share(Fault::Drop) - 0.3).abs() < 0.02);
        assert!((share(Fault::None) - 0.4).abs() < 0.02);
        let other = FaultConfig {
            seed: 8,
            ..cfg.clone()
        };
        assert_ne!(
            draw,
            (0..10_000)
                .map(|id| other.fault_for(id, 0))
                .collect::<Vec<_>>()
        );
        assert_eq!(FaultConfig::default().fault_for(3, 0), Fault::None);
    }

    #[test]
    fn rates_must_be_probabilities_that_fit_together() {
        let bad = FaultConfig {
            drop_rate: 1.5,
            ..FaultConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("--drop-rate"));
        let sum = FaultConfig {
            fail_rate: 0.6,
            garbage_rate: 0.6,
            ..FaultConfig::default()
        };
        assert!(sum.validate().is_err());
        let all = FaultConfig {
            fail_rate: 1.0,
            ..FaultConfig::default()
        };
        assert!(all.validate().is_ok());
        assert!((0..100).all(|id| all.fault_for(id, 1) == Fault::Fail));
    }

    #[test]
    fn a_required_key_must_match_exactly() {
        let cfg = FaultConfig {
            require_key: Some("k1".into()),
            ..FaultConfig::default()
        };
        assert!(cfg.authorized(Some("Bearer k1")));
        assert!(!cfg.authorized(Some("Bearer k2")));
        assert!(!cfg.authorized(Some("k1")));
        assert!(!cfg.authorized(None));
        assert!(FaultConfig::default().authorized(None));
    }

    #[test]
    fn jittered_ttfts_are_uniform_around_the_ttft_and_repeat_with_the_seed() {
        let mut c = super::super::MockConfig {
            ttft: Duration::from_millis(100),
            ttft_jitter: Duration::from_millis(20),
            ..super::super::MockConfig::default()
        };
        let ms = |c: &super::super::MockConfig| -> Vec<f64> {
            (0..10_001)
                .map(|n| jittered_ttft(c, n).as_secs_f64() * 1e3)
                .collect()
        };
        let mut a = ms(&c);
        assert!(a.iter().all(|t| (80.0..=120.0).contains(t)));
        assert_eq!(a, ms(&c));
        a.sort_by(f64::total_cmp);
        assert!((a[5000] - 100.0).abs() < 1.0, "median {}", a[5000]);
        assert!((a[2500] - 90.0).abs() < 1.0 && (a[7500] - 110.0).abs() < 1.0);
        let seed_0 = ms(&c);
        c.faults.seed = 1;
        assert_ne!(ms(&c)[..10], seed_0[..10]);
    }
}
