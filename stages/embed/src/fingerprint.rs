//! Stable 64-bit content hashes for cache keys.
//!
//! FNV-1a (Fowler–Noll–Vo): `h₀ = 0xcbf29ce484222325`, then for each byte `h = (h ⊕ byte) · 0x100000001b3`
//! (mod 2⁶⁴). It is not cryptographic; it only has to change when a model file or setting changes, and to be
//! identical across runs, machines and versions of this crate, which `std`'s `DefaultHasher` does not promise.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{EmbedError, Result};

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a hasher.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(OFFSET)
    }
}

impl Fnv1a {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a of `bytes`.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::default();
    h.update(bytes);
    h.finish()
}

/// FNV-1a of a file's content, read in chunks, and its size in bytes.
pub fn hash_file(path: &Path) -> Result<(u64, u64)> {
    let io = |source| EmbedError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut h = Fnv1a::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((h.finish(), size))
}

#[cfg(test)]
mod tests {
    use super::hash_bytes;

    #[test]
    fn matches_published_fnv1a_64_vectors() {
        // Test vectors from the FNV reference (Noll's fnv test suite): "" and "a", "foobar".
        assert_eq!(hash_bytes(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash_bytes(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash_bytes(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
