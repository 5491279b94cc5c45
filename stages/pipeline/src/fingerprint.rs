//! Content fingerprints: the hashes that decide whether something changed.
//!
//! Hashes decide; sizes and mtimes never do (DVC's rule). blake3 is used because stage inputs can be gigabytes.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Hex blake3 of a byte string.
pub fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Hex blake3 of several parts, each length-prefixed so `("ab","c")` and `("a","bc")` differ.
pub fn hash_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_hex().to_string()
}

/// Hex blake3 of a value's canonical JSON (field order of the typed struct), so formatting and comments in the
/// TOML it came from do not count.
pub fn hash_json<T: Serialize>(value: &T) -> Result<String> {
    let json = serde_json::to_vec(value).context("serialising value to fingerprint")?;
    Ok(hash_bytes(&json))
}

/// Hex blake3 of a file's contents.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// A file as recorded in a stage lock: its path, size and content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub path: PathBuf,
    pub size: u64,
    pub hash: String,
}

impl FileDigest {
    /// Hashes the file at `path`.
    pub fn of(path: &Path) -> Result<Self> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("reading metadata of {}", path.display()))?
            .len();
        Ok(Self {
            path: path.to_path_buf(),
            size,
            hash: hash_file(path)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_length_prefixed() {
        assert_ne!(
            hash_parts([b"ab".as_slice(), b"c".as_slice()]),
            hash_parts([b"a".as_slice(), b"bc".as_slice()])
        );
        assert_eq!(hash_parts([b"x".as_slice()]), hash_parts([b"x".as_slice()]));
    }

    #[test]
    fn file_digest_tracks_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let a = FileDigest::of(&p).unwrap();
        assert_eq!(a.size, 5);
        assert_eq!(a.hash, hash_bytes(b"hello"));
        std::fs::write(&p, b"hellp").unwrap();
        assert_ne!(FileDigest::of(&p).unwrap().hash, a.hash);
    }
}
