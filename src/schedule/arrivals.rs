//! Arrival processes, pure and seeded: the offsets from a phase's start at which its
//! open-loop arrivals come. Constant (evenly spaced) or Poisson (exponential gaps), at a fixed
//! rate or following a rate shape (a linear ramp or steps) by inverting the cumulative rate.
//! Nothing here waits or allocates per arrival beyond the iterator itself.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp};

use crate::plan::{Arrival, Phase, Shape};

/// Offsets from the phase start of each arrival of an open-loop phase. Pure and seeded.
pub fn arrival_offsets(rate: f64, arrival: Arrival, seed: u64) -> impl Iterator<Item = Duration> {
    let mut rng = StdRng::seed_from_u64(seed);
    let exp = Exp::new(rate).expect("rate is validated positive");
    let mut at = 0.0_f64;
    let mut n: u64 = 0;
    std::iter::from_fn(move || {
        let this = match arrival {
            Arrival::Constant => n as f64 / rate,
            Arrival::Poisson => {
                // The first arrival comes at the start; each next one an exponential gap later.
                if n > 0 {
                    at += exp.sample(&mut rng);
                }
                at
            }
        };
        n += 1;
        Some(Duration::from_secs_f64(this))
    })
}

/// Offsets of the arrivals of a phase whose rate follows `shape` over `duration`. Pure and
/// seeded: arrival n (constant) or the n-th point of a unit-rate Poisson process (poisson) is
/// mapped through the inverse of the cumulative rate, so the rate at time t is `shape.at(t/D)`.
pub fn shaped_offsets(
    shape: &Shape,
    duration: Duration,
    arrival: Arrival,
    seed: u64,
) -> impl Iterator<Item = Duration> + use<> {
    let inverse = cumulative_inverse(shape, duration.as_secs_f64());
    let mut rng = StdRng::seed_from_u64(seed);
    let unit = Exp::new(1.0).expect("1 is a valid rate");
    let mut y = 0.0_f64;
    let mut n: u64 = 0;
    std::iter::from_fn(move || {
        let this = match arrival {
            Arrival::Constant => n as f64,
            Arrival::Poisson => {
                if n > 0 {
                    y += unit.sample(&mut rng);
                }
                y
            }
        };
        n += 1;
        inverse(this).map(Duration::from_secs_f64)
    })
}

/// t such that the arrivals expected in [0, t) equal `y`; `None` past the phase's end.
fn cumulative_inverse(shape: &Shape, secs: f64) -> impl Fn(f64) -> Option<f64> + use<> {
    // Piecewise-linear rate: segments (start, length, rate at start, rate at end).
    let segments: Vec<(f64, f64, f64, f64)> = match shape {
        Shape::Linear { from, to } => vec![(0.0, secs, *from, *to)],
        Shape::Steps(v) => {
            let len = secs / v.len() as f64;
            v.iter()
                .enumerate()
                .map(|(i, r)| (i as f64 * len, len, *r, *r))
                .collect()
        }
    };
    move |y: f64| {
        let mut before = 0.0;
        for &(start, len, r0, r1) in &segments {
            let area = (r0 + r1) / 2.0 * len;
            if y < before + area || (area == 0.0 && y == before && r0 > 0.0) {
                let z = y - before;
                let a = (r1 - r0) / len;
                let t = if a.abs() < 1e-12 {
                    z / r0
                } else {
                    (-r0 + (r0 * r0 + 2.0 * a * z).max(0.0).sqrt()) / a
                };
                return Some(start + t.clamp(0.0, len));
            }
            before += area;
        }
        None
    }
}

/// An open-loop phase's arrival offsets from its start: a replayed trace's own, its rate shape
/// over its duration, or its constant rate.
pub fn phase_offsets(phase: &Phase, rate: f64) -> Box<dyn Iterator<Item = Duration> + Send> {
    match (&phase.replay, &phase.ramp.rate, phase.duration) {
        (Some(replay), ..) => {
            let offsets = replay.offsets.clone();
            Box::new((0..offsets.len()).map(move |k| offsets[k]))
        }
        (None, Some(shape), Some(d)) => {
            Box::new(shaped_offsets(shape, d, phase.arrival, phase.seed))
        }
        _ => Box::new(arrival_offsets(rate, phase.arrival, phase.seed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linear_rate_ramp_spaces_arrivals_by_the_rising_rate() {
        // 0 -> 20 req/s over 10 s: 100 arrivals; the n-th at sqrt(n) seconds (Λ(t) = t²).
        let shape = Shape::Linear {
            from: 0.0,
            to: 20.0,
        };
        let d = Duration::from_secs(10);
        let offs: Vec<f64> = shaped_offsets(&shape, d, Arrival::Constant, 1)
            .map(|o| o.as_secs_f64())
            .collect();
        assert_eq!(offs.len(), 100);
        for (n, t) in offs.iter().enumerate() {
            assert!((t - (n as f64).sqrt()).abs() < 1e-9, "{n}: {t}");
        }
        // A falling ramp 20 -> 0 sends the same count, front-loaded.
        let down = Shape::Linear {
            from: 20.0,
            to: 0.0,
        };
        let offs: Vec<_> = shaped_offsets(&down, d, Arrival::Constant, 1).collect();
        assert_eq!(offs.len(), 100);
        assert!(offs[50] < Duration::from_secs(3), "{:?}", offs[50]);
        // A flat ramp is the constant process.
        let flat = Shape::Linear { from: 4.0, to: 4.0 };
        let a: Vec<_> = shaped_offsets(&flat, d, Arrival::Constant, 1).collect();
        let b: Vec<_> = arrival_offsets(4.0, Arrival::Constant, 1)
            .take(40)
            .collect();
        assert_eq!(a.len(), 40);
        for (x, y) in a.iter().zip(&b) {
            assert!(x.abs_diff(*y) < Duration::from_nanos(10));
        }
    }

    #[test]
    fn steps_hold_each_rate_for_an_equal_share_of_the_phase() {
        let shape = Shape::Steps(vec![2.0, 0.0, 10.0]);
        let offs: Vec<f64> = shaped_offsets(&shape, Duration::from_secs(3), Arrival::Constant, 1)
            .map(|o| o.as_secs_f64())
            .collect();
        let in_step = |k: f64| offs.iter().filter(|t| **t >= k && **t < k + 1.0).count();
        assert_eq!(
            (in_step(0.0), in_step(1.0), in_step(2.0)),
            (2, 0, 10),
            "{offs:?}"
        );
        let poisson = shaped_offsets(&shape, Duration::from_secs(300), Arrival::Poisson, 5).count();
        assert!(
            (1100..=1300).contains(&poisson),
            "{poisson} of 1200 expected"
        );
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced() {
        let offs: Vec<_> = arrival_offsets(4.0, Arrival::Constant, 1).take(5).collect();
        let ms: Vec<u128> = offs.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![0, 250, 500, 750, 1000]);
    }

    #[test]
    fn poisson_arrivals_are_seeded_and_have_the_right_mean_rate() {
        let a: Vec<_> = arrival_offsets(50.0, Arrival::Poisson, 42)
            .take(1000)
            .collect();
        let b: Vec<_> = arrival_offsets(50.0, Arrival::Poisson, 42)
            .take(1000)
            .collect();
        assert_eq!(a, b, "same seed, same arrivals");
        let c: Vec<_> = arrival_offsets(50.0, Arrival::Poisson, 43)
            .take(1000)
            .collect();
        assert_ne!(a, c);
        let in_10s = arrival_offsets(50.0, Arrival::Poisson, 42)
            .take_while(|d| d.as_secs_f64() < 10.0)
            .count();
        assert!((430..=570).contains(&in_10s), "{in_10s}");
    }
}
