//! Inter-process stage locks, so two runs never write one stage folder at once and no stage reads a folder that
//! another run is rewriting.
//!
//! `stage.lock.json` says what a stage last ran on; it is not a lock. This module is: one advisory file lock per
//! stage folder under `<data>/.locks/<stage>.lock` (the operating system's `flock`, released when the process
//! exits, even on `kill -9`). A stage that writes a folder takes it exclusively; a stage that reads another
//! stage's outputs takes that folder shared. A run that finds a folder taken refuses at once and names the
//! holder's pid from the note the holder leaves beside the lock (`<stage>.<pid>.holder`).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// How a run uses a stage folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// It writes the folder: nobody else may read or write it meanwhile.
    Exclusive,
    /// It reads the folder: others may read it too, nobody may write it.
    Shared,
}

impl Access {
    fn word(self) -> &'static str {
        match self {
            Access::Exclusive => "writing",
            Access::Shared => "reading",
        }
    }
}

/// The folder a stage's run locks are in.
pub fn lock_dir(data_root: &Path) -> PathBuf {
    data_root.join(".locks")
}

/// A held stage lock; released (and its holder note removed) when dropped or when the process ends.
#[derive(Debug)]
pub struct RunLock {
    stage: String,
    note: PathBuf,
    // The open, locked file: closing it releases the lock.
    _file: File,
}

impl RunLock {
    /// Takes `stage`'s lock under `data_root` without waiting; `command` goes into the holder note so a refused
    /// run can say who holds it.
    pub fn acquire(data_root: &Path, stage: &str, access: Access, command: &str) -> Result<Self> {
        let dir = lock_dir(data_root);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{stage}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening stage lock {}", path.display()))?;
        let taken = match access {
            Access::Exclusive => file.try_lock(),
            Access::Shared => file.try_lock_shared(),
        };
        match taken {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => anyhow::bail!(
                "the `{stage}` folder is in use by another oassl run ({}); {} it now would mix two runs' \
                 files: wait for that run to finish or stop it, then run this again (lock {})",
                describe_holders(&dir, stage),
                access.word(),
                path.display()
            ),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        let pid = std::process::id();
        let note = dir.join(format!("{stage}.{pid}.holder"));
        let text = format!("pid {pid}: {command} ({})\n", access.word());
        // The note is only a hint for the message above; failing to write it does not stop the run.
        let _ = fs::write(&note, text);
        Ok(Self {
            stage: stage.to_string(),
            note,
            _file: file,
        })
    }

    /// The stage folder this lock covers.
    pub fn stage(&self) -> &str {
        &self.stage
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.note);
    }
}

/// Takes every lock a command needs: `exclusive` folders first, then `shared` ones, all or none.
pub fn acquire_all(
    data_root: &Path,
    exclusive: &[&str],
    shared: &[&str],
    command: &str,
) -> Result<Vec<RunLock>> {
    let wanted = exclusive
        .iter()
        .map(|s| (*s, Access::Exclusive))
        .chain(shared.iter().map(|s| (*s, Access::Shared)));
    // On an error the locks taken so far drop here, so a refused run holds nothing.
    wanted
        .map(|(stage, access)| RunLock::acquire(data_root, stage, access, command))
        .collect()
}

/// "pid 12, oassl train (writing)" for each live holder note of `stage`, or a generic phrase when none is left
/// (a holder killed before writing its note, or a platform without `/proc`).
fn describe_holders(dir: &Path, stage: &str) -> String {
    let prefix = format!("{stage}.");
    let mut holders: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix(&prefix)?.strip_suffix(".holder")?;
            let pid: u32 = pid.parse().ok()?;
            if !process_alive(pid) {
                return None;
            }
            fs::read_to_string(entry.path())
                .ok()
                .map(|t| t.trim().to_string())
        })
        .collect();
    holders.sort();
    if holders.is_empty() {
        "holder unknown".to_string()
    } else {
        holders.join("; ")
    }
}

fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.exists() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_naming_the_holder_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = RunLock::acquire(dir.path(), "train", Access::Exclusive, "oassl train").unwrap();
        let err = RunLock::acquire(dir.path(), "train", Access::Exclusive, "oassl train")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("`train`"), "{err}");
        let err = RunLock::acquire(dir.path(), "train", Access::Shared, "oassl eval")
            .unwrap_err()
            .to_string();
        assert!(err.contains("reading it now"), "{err}");
        drop(held);
        RunLock::acquire(dir.path(), "train", Access::Exclusive, "oassl train").unwrap();
    }

    #[test]
    fn readers_share_and_keep_writers_out() {
        let dir = tempfile::tempdir().unwrap();
        let a = RunLock::acquire(dir.path(), "embed", Access::Shared, "oassl train").unwrap();
        let b = RunLock::acquire(dir.path(), "embed", Access::Shared, "oassl report").unwrap();
        assert!(RunLock::acquire(dir.path(), "embed", Access::Exclusive, "oassl embed").is_err());
        drop(a);
        assert!(RunLock::acquire(dir.path(), "embed", Access::Exclusive, "oassl embed").is_err());
        drop(b);
        let w = RunLock::acquire(dir.path(), "embed", Access::Exclusive, "oassl embed").unwrap();
        assert_eq!(w.stage(), "embed");
    }

    #[test]
    fn a_refused_group_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let eval = RunLock::acquire(dir.path(), "eval", Access::Exclusive, "oassl eval").unwrap();
        let err = acquire_all(dir.path(), &["train"], &["eval"], "oassl train");
        assert!(err.is_err());
        // `train` was taken first and must have been released with the failure.
        drop(RunLock::acquire(dir.path(), "train", Access::Exclusive, "oassl train").unwrap());
        drop(eval);
        let all = acquire_all(dir.path(), &["train"], &["eval"], "oassl train").unwrap();
        assert_eq!(all.len(), 2);
        let notes = fs::read_dir(lock_dir(dir.path()))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".holder")
            })
            .count();
        assert_eq!(notes, 2);
    }
}
