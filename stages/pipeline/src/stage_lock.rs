//! The stage lock: what a stage last ran on, written last, so a stage can tell whether it is up to date.
//!
//! A stage is up to date when its lock exists, was written by the same lock schema, its config-section hash is the
//! same, and every dependency and output still has the recorded content hash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::fingerprint::FileDigest;

/// Version of the lock file's shape; bump when fields change meaning.
pub const LOCK_SCHEMA: u32 = 1;

/// Contents of `<data>/<stage>/stage.lock.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageLock {
    pub schema: u32,
    pub stage: String,
    pub oassl_version: String,
    /// Hash of the stage's config section (canonical JSON of the typed struct).
    pub config_hash: String,
    pub deps: Vec<FileDigest>,
    pub outs: Vec<FileDigest>,
    /// Counts the stage reports (ok, failed, cached, ...); informational.
    pub counts: BTreeMap<String, u64>,
    /// When the stage finished (RFC 3339-like, informational, not part of the fingerprint).
    pub finished_at: String,
}

/// Why a stage has to run again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    /// Nothing changed: the recorded outputs are current.
    UpToDate,
    /// No lock file, or one of an older schema.
    NeverRun,
    /// The stage's config section changed.
    ConfigChanged,
    /// A dependency or output was added, removed or modified.
    FileChanged(PathBuf),
}

impl std::fmt::Display for Staleness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Staleness::UpToDate => write!(f, "up to date"),
            Staleness::NeverRun => write!(f, "no previous run"),
            Staleness::ConfigChanged => write!(f, "its config section changed"),
            Staleness::FileChanged(p) => write!(f, "{} changed", p.display()),
        }
    }
}

impl StageLock {
    /// Reads a lock; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let lock = serde_json::from_slice(&bytes)
                    .with_context(|| format!("parsing stage lock {}", path.display()))?;
                Ok(Some(lock))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading stage lock {}", path.display())),
        }
    }

    /// Writes the lock atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::atomic::write_json(path, self)
    }

    /// Compares this (recorded) lock with the current config hash and dependency list.
    pub fn staleness(&self, config_hash: &str, deps: &[PathBuf]) -> Result<Staleness> {
        if self.schema != LOCK_SCHEMA {
            return Ok(Staleness::NeverRun);
        }
        if self.config_hash != config_hash {
            return Ok(Staleness::ConfigChanged);
        }
        let recorded: Vec<&PathBuf> = self.deps.iter().map(|d| &d.path).collect();
        for dep in deps {
            if !recorded.contains(&dep) {
                return Ok(Staleness::FileChanged(dep.clone()));
            }
        }
        for digest in self.deps.iter().chain(self.outs.iter()) {
            if !digest.path.exists() {
                return Ok(Staleness::FileChanged(digest.path.clone()));
            }
            let now = FileDigest::of(&digest.path)?;
            if now.hash != digest.hash {
                return Ok(Staleness::FileChanged(digest.path.clone()));
            }
        }
        Ok(Staleness::UpToDate)
    }
}

impl StageLock {
    /// The lock of a stage that just finished: `outs` made from the dependencies `deps` under `config_hash`, with
    /// the counts it reports.
    pub fn finished(
        stage: &str,
        config_hash: String,
        deps: Vec<FileDigest>,
        outs: &[&Path],
        counts: &[(&str, usize)],
    ) -> Result<Self> {
        Ok(Self {
            schema: LOCK_SCHEMA,
            stage: stage.to_string(),
            oassl_version: env!("CARGO_PKG_VERSION").into(),
            config_hash,
            deps,
            outs: digests(outs)?,
            counts: counts
                .iter()
                .map(|(k, v)| (k.to_string(), *v as u64))
                .collect(),
            finished_at: now_stamp(),
        })
    }

    /// Whether `path` is one of the outputs this lock records, with the same content. Outputs are matched by
    /// file name so a data folder that moved (or a config read from another working directory) still matches.
    pub fn vouches_for(&self, path: &Path) -> Result<bool> {
        let Some(name) = path.file_name() else {
            return Ok(false);
        };
        let Some(recorded) = self.outs.iter().find(|d| d.path.file_name() == Some(name)) else {
            return Ok(false);
        };
        if !path.exists() {
            return Ok(false);
        }
        let now = FileDigest::of(path)?;
        Ok(now.size == recorded.size && now.hash == recorded.hash)
    }
}

/// Staleness of a stage given its lock path (a missing lock means it never ran).
pub fn check(lock_path: &Path, config_hash: &str, deps: &[PathBuf]) -> Result<Staleness> {
    match StageLock::read(lock_path)? {
        None => Ok(Staleness::NeverRun),
        Some(lock) => lock.staleness(config_hash, deps),
    }
}

/// The digests of `paths`, in order.
pub fn digests<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<FileDigest>> {
    paths.iter().map(|p| FileDigest::of(p.as_ref())).collect()
}

/// Seconds since the Unix epoch, as text, for the informational `finished_at`.
pub fn now_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("unix:{secs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock_for(dep: &Path, out: &Path, cfg: &str) -> StageLock {
        StageLock {
            schema: LOCK_SCHEMA,
            stage: "embed".into(),
            oassl_version: "0".into(),
            config_hash: cfg.into(),
            deps: vec![FileDigest::of(dep).unwrap()],
            outs: vec![FileDigest::of(out).unwrap()],
            counts: BTreeMap::new(),
            finished_at: now_stamp(),
        }
    }

    #[test]
    fn detects_each_kind_of_change() {
        let dir = tempfile::tempdir().unwrap();
        let dep = dir.path().join("dep");
        let out = dir.path().join("out");
        std::fs::write(&dep, b"d").unwrap();
        std::fs::write(&out, b"o").unwrap();
        let lock_path = dir.path().join("stage.lock.json");
        assert_eq!(
            check(&lock_path, "c", std::slice::from_ref(&dep)).unwrap(),
            Staleness::NeverRun
        );
        lock_for(&dep, &out, "c").write(&lock_path).unwrap();
        assert_eq!(
            check(&lock_path, "c", std::slice::from_ref(&dep)).unwrap(),
            Staleness::UpToDate
        );
        assert_eq!(
            check(&lock_path, "other", std::slice::from_ref(&dep)).unwrap(),
            Staleness::ConfigChanged
        );
        std::fs::write(&out, b"changed").unwrap();
        assert_eq!(
            check(&lock_path, "c", std::slice::from_ref(&dep)).unwrap(),
            Staleness::FileChanged(out.clone())
        );
        std::fs::write(&out, b"o").unwrap();
        let extra = dir.path().join("new-dep");
        assert_eq!(
            check(&lock_path, "c", &[dep.clone(), extra.clone()]).unwrap(),
            Staleness::FileChanged(extra)
        );
        std::fs::remove_file(&dep).unwrap();
        assert_eq!(
            check(&lock_path, "c", std::slice::from_ref(&dep)).unwrap(),
            Staleness::FileChanged(dep)
        );
    }
}
