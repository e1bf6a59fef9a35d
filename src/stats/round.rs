//! Rounding a metric value to whole histogram units, the hot step of every `stats` value.

/// `v.max(0.0).round() as u64` (halves away from zero, NaN as 0, saturating), without the
/// library call `f64::round` compiles to on baseline x86-64: ITL adds dozens of values per
/// request, and `parse` of a million records spent a sixth of its analysis time in `round`.
pub(super) fn round_to_unit(v: f64) -> u64 {
    let v = v.max(0.0);
    // Truncation saturates; for v below 2^53 the fraction `v - whole` is exact.
    let whole = v as u64;
    if whole == u64::MAX || v - (whole as f64) < 0.5 {
        whole
    } else {
        whole + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_unit_is_round_half_away_from_zero() {
        let edge = [
            0.0,
            -0.0,
            -3.7,
            0.5,
            0.49999999999999994,
            1.5,
            2.5,
            2.4999999999999996,
            4503599627370495.5,
            4503599627370496.0,
            9007199254740993.0,
            1.8446744073709552e19,
            1e300,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let random = (0..100_000).map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Values across the ranges metrics take: µs, thousandths, tokens.
            let scale = [1e-3, 1.0, 1e3, 1e6, 1e12][(seed % 5) as usize];
            (seed >> 11) as f64 / (1u64 << 53) as f64 * scale
        });
        for v in edge.into_iter().chain(random) {
            assert_eq!(round_to_unit(v), v.max(0.0).round() as u64, "{v:e}");
        }
    }
}
