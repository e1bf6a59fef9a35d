//! The words scripts' prompts are made of: a seeded random generator (`Rng`) whose stream for
//! request `i` depends only on the seed and `i`, and `words_from` drawing from a fixed
//! vocabulary.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::RhaiResult;

/// A seeded random generator scripts can hold. Request `i` gets `Rng::for_request(seed, i)`, so a
/// prompt depends only on the seed and its index, never on generation order.
#[derive(Clone)]
pub struct Rng(Xoshiro256PlusPlus);

impl Rng {
    pub fn seeded(seed: u64) -> Self {
        Self(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    pub fn for_request(seed: u64, index: u64) -> Self {
        // Neighbouring indices get unrelated streams.
        Self::seeded(crate::seeded::mix(seed, index))
    }

    pub(super) fn int(&mut self, lo: i64, hi: i64) -> RhaiResult<i64> {
        if lo > hi {
            return Err(format!("rng.int({lo}, {hi}): the low end is above the high end").into());
        }
        Ok(self.0.random_range(lo..=hi))
    }

    pub(super) fn float(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    pub(super) fn index(&mut self, len: usize) -> usize {
        self.0.random_range(0..len)
    }

    /// A draw from the standard normal distribution (mean 0, standard deviation 1).
    pub(super) fn standard_normal(&mut self) -> f64 {
        rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut self.0)
    }
}

/// Words `words(n)` draws from.
pub(super) const VOCABULARY: &[&str] = &[
    "the", "river", "mountain", "engine", "quiet", "lantern", "harbor", "signal", "garden",
    "winter", "copper", "market", "silver", "window", "forest", "paper", "thunder", "valley",
    "orange", "pilot", "candle", "bridge", "castle", "meadow", "rocket", "island", "marble",
    "shadow", "violin", "planet", "pencil", "dragon", "canyon", "circle", "basket", "velvet",
    "anchor", "glacier", "compass", "journey", "kitchen", "library", "morning", "network", "ocean",
    "puzzle", "question", "rainbow", "station", "theory", "umbrella", "village", "whisper",
    "yellow", "zebra", "account", "balance", "cabinet", "decade", "element", "fabric", "gravity",
    "horizon", "impact", "jacket", "kernel", "ladder", "machine", "number", "object", "pattern",
    "quantum", "record", "system", "ticket", "update", "vector", "weather", "answer", "button",
    "choice", "driver", "energy", "future", "history", "income", "method", "nature", "option",
    "process", "reason", "season", "travel", "unit", "value", "water", "bright", "careful",
    "distant", "early", "famous", "gentle", "honest", "little", "modern", "narrow", "simple",
    "strong", "tender", "useful", "warm", "young", "build", "carry", "define", "explain", "follow",
    "gather", "imagine", "measure", "notice", "observe", "prepare", "reach", "select", "travel",
    "wonder", "write", "always", "before", "during", "often", "seldom", "today", "under", "within",
];

pub(super) fn words_from(rng: &mut Rng, n: usize) -> String {
    let mut out = String::with_capacity(n * 7);
    for k in 0..n {
        if k > 0 {
            out.push(' ');
        }
        out.push_str(VOCABULARY[rng.index(VOCABULARY.len())]);
    }
    out
}
