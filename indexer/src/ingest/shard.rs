//! `--shard k/n`: a deterministic split of a catalog by object id, so batch-array
//! jobs each build an independent collection that `astrovec merge` combines.
//!
//! An id belongs to shard `splitmix64(id) mod n`: the mix spreads consecutive ids
//! (DESI TARGETIDs, mock ids) evenly, does not depend on file order or row
//! position, and sends every copy of an id to the same shard, so duplicate
//! detection within a shard equals detection over the whole catalog.

use std::fmt;
use std::str::FromStr;

use super::error::IngestError;

/// One shard of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// Number of shards (≥ 1).
    pub count: u32,
}

/// The splitmix64 finaliser (Steele et al. 2014): a fixed, well-mixed hash of an id.
pub fn mix(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
}
