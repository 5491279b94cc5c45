//! The journal: an append-only JSON-lines file of finished caption requests, synced to disk after each batch of
//! completions, so `kill -9` loses at most the requests in flight.
//!
//! Each line is a [`JournalEntry`] keyed by its request key. A torn last line (the process died mid-write) is
//! skipped when reading and closed with a newline before the next append. Every shard writes its own file
//! (`journal.jsonl`, `journal.shard-I-of-N.jsonl`); readers merge all of them, later entries of the same key
//! winning except that an `ok` entry is never replaced by a failure.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Final status of a caption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptionStatus {
    Ok,
    Invalid,
    Failed,
}

impl CaptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptionStatus::Ok => "ok",
            CaptionStatus::Invalid => "invalid",
            CaptionStatus::Failed => "failed",
        }
    }
}

/// One finished request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub request_key: String,
    /// The sample that asked first (samples with the same key share the answer).
    pub sample_id: String,
    pub status: CaptionStatus,
    pub foreground: Vec<String>,
    pub background: String,
    pub error: String,
    pub attempts: u32,
    pub latency_ms: u64,
    pub model: String,
    pub prompt_hash: String,
    pub image_hash: String,
    pub raw_response: String,
}

/// An open journal file for appending.
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating) a journal for appending; closes a torn last line first.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating folder {}", parent.display()))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening journal {}", path.display()))?;
        let len = file.metadata()?.len();
        if len > 0 {
            file.seek(SeekFrom::Start(len - 1))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                file.sync_data()?;
            }
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends entries and syncs them to disk.
    pub fn append(&mut self, entries: &[JournalEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("appending to journal {}", self.path.display()))
    }
}

/// Reads one journal file; unreadable lines (a torn write) are skipped with a warning.
pub fn read_file(path: &Path) -> Result<Vec<JournalEntry>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading journal {}", path.display())),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<JournalEntry>(line) {
            Ok(e) => out.push(e),
            Err(e) => tracing::warn!("{}: line {} skipped: {e}", path.display(), i + 1),
        }
    }
    Ok(out)
}

/// Every journal file in a folder (`journal*.jsonl`), sorted by name.
pub fn journal_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("journal") && name.ends_with(".jsonl") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Finished answers by request key, merged over every journal in `dir`.
pub fn load_index(dir: &Path) -> Result<HashMap<String, JournalEntry>> {
    let mut index: HashMap<String, JournalEntry> = HashMap::new();
    for path in journal_files(dir)? {
        for entry in read_file(&path)? {
            let keep_old = index.get(&entry.request_key).is_some_and(|old| {
                old.status == CaptionStatus::Ok && entry.status != CaptionStatus::Ok
            });
            if !keep_old {
                index.insert(entry.request_key.clone(), entry);
            }
        }
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, status: CaptionStatus) -> JournalEntry {
        JournalEntry {
            request_key: key.into(),
            sample_id: "s".into(),
            status,
            foreground: vec!["f".into()],
            background: "b".into(),
            error: String::new(),
            attempts: 1,
            latency_ms: 3,
            model: "m".into(),
            prompt_hash: "p".into(),
            image_hash: "i".into(),
            raw_response: "{}".into(),
        }
    }

    #[test]
    fn torn_line_is_skipped_and_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        Journal::open(&path)
            .unwrap()
            .append(&[entry("a", CaptionStatus::Ok)])
            .unwrap();
        // A write cut off mid-line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"request_key\":\"b\",\"sam").unwrap();
        drop(f);
        Journal::open(&path)
            .unwrap()
            .append(&[entry("c", CaptionStatus::Failed)])
            .unwrap();
        let keys: Vec<String> = read_file(&path)
            .unwrap()
            .into_iter()
            .map(|e| e.request_key)
            .collect();
        assert_eq!(keys, vec!["a", "c"]);
    }

    #[test]
    fn shards_merge_and_ok_is_never_replaced_by_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        Journal::open(&dir.path().join("journal.shard-0-of-2.jsonl"))
            .unwrap()
            .append(&[
                entry("a", CaptionStatus::Ok),
                entry("b", CaptionStatus::Failed),
            ])
            .unwrap();
        Journal::open(&dir.path().join("journal.shard-1-of-2.jsonl"))
            .unwrap()
            .append(&[
                entry("a", CaptionStatus::Failed),
                entry("b", CaptionStatus::Ok),
            ])
            .unwrap();
        std::fs::write(dir.path().join("other.jsonl"), "junk\n").unwrap();
        let index = load_index(dir.path()).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(index["a"].status, CaptionStatus::Ok);
        assert_eq!(index["b"].status, CaptionStatus::Ok);
    }
}
