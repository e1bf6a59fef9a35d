//! A shard of a run: this process is shard `index` of `count` processes that together send one
//! plan's load (`--shard I/N`). The one rule that says which global items are this shard's
//! (`owns`: round-robin by global index) and how a global count splits (`share`); the scheduler
//! deals arrivals and closed-loop users with them, the feed picks prompts by global request
//! index, and other dealers (trace lines, sessions) take the same rule.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Shard `index` (0-based) of `count` (at least 1, `index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Shard `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Self> {
        (index < count).then_some(Self { index, count })
    }

    /// Whether global item `k` (an arrival, a request, a trace line, a session) is this
    /// shard's: item k goes to shard k mod count.
    pub fn owns(&self, k: u64) -> bool {
        k % u64::from(self.count) == u64::from(self.index)
    }

    /// How many of the global items 0..n are this shard's (the shares of every shard add up
    /// to n and differ by at most one).
    pub fn share(&self, n: u64) -> u64 {
        let (count, index) = (u64::from(self.count), u64::from(self.index));
        n / count + u64::from(index < n % count)
    }

    /// The global index of this shard's `j`-th item (0-based): `index + j · count`.
    pub fn global(&self, j: u64) -> u64 {
        u64::from(self.index) + j * u64::from(self.count)
    }

    /// The seed of this shard's substream of a seeded process seeded `seed` (a SplitMix64 step
    /// over the seed and the shard index: independent streams, the same on every run).
    pub fn substream_seed(&self, seed: u64) -> u64 {
        crate::seeded::mix(seed, u64::from(self.index))
    }
}

/// What identifies a plan across the shards that run it: a 64-bit FNV-1a hash of its JSON
/// (labels and telemetry aside, which may differ per shard; a script closure's name without
/// the per-process hash Rhai gives it), in hex. Stable across runs and machines of the same
/// llmbench version.
pub fn fingerprint(plan: &super::Plan) -> String {
    let mut value = serde_json::to_value(plan).expect("a plan serializes");
    if let Some(map) = value.as_object_mut() {
        map.remove("labels");
        map.remove("telemetry");
    }
    let text = value.to_string();
    let mut stable = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("anon$") {
        stable.push_str(&rest[..at + 4]);
        rest = rest[at + 5..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    stable.push_str(rest);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stable.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N`, e.g. `0/4` (shard 0 of 4).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("{s:?} is not a shard: give I/N with 0 <= I < N, e.g. 0/4 (shard 0 of 4)");
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let (i, n) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        Self::new(i, n).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_has_one_owner_and_shares_add_up() {
        for count in 1..=5 {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            for k in 0..50 {
                assert_eq!(shards.iter().filter(|s| s.owns(k)).count(), 1, "item {k}");
            }
            for n in 0..23 {
                let shares: Vec<u64> = shards.iter().map(|s| s.share(n)).collect();
                assert_eq!(shares.iter().sum::<u64>(), n);
                for s in &shards {
                    assert_eq!(s.share(n), (0..n).filter(|k| s.owns(*k)).count() as u64);
                }
            }
            for s in &shards {
                for j in 0..10 {
                    assert!(s.owns(s.global(j)));
                }
            }
        }
    }

    #[test]
    fn shards_parse_from_i_of_n() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("I/N"), "{e}");
        }
        let a = Shard::new(0, 4).unwrap().substream_seed(7);
        let b = Shard::new(1, 4).unwrap().substream_seed(7);
        assert_ne!(a, b);
        assert_eq!(a, Shard::new(0, 4).unwrap().substream_seed(7));
    }
}
