//! `--shard k/n`: a deterministic split of a catalog by object id, so batch-array
//! jobs each build an independent collection that `astrovec merge` combines.
//!
//! An id belongs to shard `splitmix64(id) mod n`: the mix spreads consecutive ids
//! (DESI TARGETIDs, mock ids) evenly, does not depend on file order or row
//! position, and sends every copy of an id to the same shard, so duplicate
//! detection within a shard equals detection over the whole catalog.

use std::fmt;
use std::str::FromStr;

use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;

use super::error::IngestError;

/// One shard of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// Number of shards (≥ 1).
    pub count: u32,
}

/// The shard hash of an id: the first output of a SplitMix64 generator seeded with the
/// id (Steele et al. 2014), a fixed, well-mixed function of the id alone. Shards written
/// by earlier releases depend on these exact values (a test pins them).
pub fn mix(id: u64) -> u64 {
    SplitMix64::seed_from_u64(id).next_u64()
}

impl Shard {
    /// True when `id` belongs to this shard.
    pub fn contains(&self, id: u64) -> bool {
        mix(id) % self.count as u64 == self.index as u64
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = IngestError;

    /// Parses `k/n` with `0 ≤ k < n`.
    fn from_str(s: &str) -> Result<Self, IngestError> {
        let bad = || IngestError::invalid("shard", format!("`{s}` is not k/n with 0 <= k < n"));
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_ids_evenly() {
        let shards: Vec<Shard> = (0..3).map(|k| format!("{k}/3").parse().unwrap()).collect();
        let mut sizes = [0usize; 3];
        for id in 39_627_000_000_000u64..39_627_000_003_000 {
            let owners: Vec<usize> = (0..3).filter(|&k| shards[k].contains(id)).collect();
            assert_eq!(owners.len(), 1);
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| (900..1100).contains(&n)), "{sizes:?}");
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1-3".parse::<Shard>().is_err());
        assert_eq!("2/5".parse::<Shard>().unwrap().to_string(), "2/5");
    }

    /// `--shard` splits must not move between releases: `merge` and resumed runs rely on
    /// an id landing in the same shard it did when its shard was first written.
    #[test]
    fn shard_hash_is_pinned() {
        assert_eq!(mix(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix(1), 0x910a_2dec_8902_5cc1);
        assert_eq!(mix(39_627_000_000_000), 0x7a16_d98a_db17_5848);
    }
}
