//! `--shard I/N`: a cluster job array splits the manifest into N disjoint parts by a hash of the sample id, so
//! every sample belongs to exactly one shard whatever the manifest order.

use std::str::FromStr;

use anyhow::{bail, Context, Error};

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole manifest.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether a sample id falls in this shard.
    pub fn contains(&self, sample_id: &str) -> bool {
        if self.count <= 1 {
            return true;
        }
        let hash = blake3::hash(sample_id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(first) % u64::from(self.count) == u64::from(self.index)
    }

    /// Suffix for this shard's files (`shard-0-of-4`), `None` for the whole manifest.
    pub fn suffix(&self) -> Option<String> {
        (self.count > 1).then(|| format!("shard-{}-of-{}", self.index, self.count))
    }
}

impl FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let (i, n) = s
            .split_once('/')
            .with_context(|| format!("shard {s:?} is not I/N (for example 0/4)"))?;
        let index: u32 = i
            .trim()
            .parse()
            .with_context(|| format!("shard index {i:?}"))?;
        let count: u32 = n
            .trim()
            .parse()
            .with_context(|| format!("shard count {n:?}"))?;
        if count == 0 || index >= count {
            bail!("shard {s:?}: need 0 <= I < N");
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_ids() {
        let ids: Vec<String> = (0..200).map(|i| format!("clip_{i}")).collect();
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for id in &ids {
            assert_eq!(shards.iter().filter(|s| s.contains(id)).count(), 1);
        }
        assert!(shards.iter().all(|s| ids.iter().any(|id| s.contains(id))));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert_eq!(Shard::ALL.suffix(), None);
    }
}
