//! The one mixing function behind llmbench's seeded choices (SplitMix64's): a request's own
//! generator, which requests a phase cancels, a shard's Poisson substream, the mock's fault
//! draws. The same (seed, key) gives the same value on every run and machine, and neighbouring
//! keys give unrelated values.

/// SplitMix64's increment (2^64 / φ).
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function of `z`.
pub fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A value mixed from `seed` and `key` (an index: a request's, a shard's).
pub fn mix(seed: u64, key: u64) -> u64 {
    finalize(seed ^ key.wrapping_add(1).wrapping_mul(GAMMA))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_splitmix64_and_spreads_neighbouring_keys() {
        // SplitMix64 seeded 0: its first output is finalize(GAMMA) = 0xE220A8397B1DCDAF.
        assert_eq!(finalize(GAMMA), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix(0, 0), finalize(GAMMA));
        let (a, b) = (mix(7, 1), mix(7, 2));
        assert!((a ^ b).count_ones() > 16, "{a:x} {b:x}");
    }
}
