//! Atomic file writes: write to a temporary file in the same folder, flush it to disk, rename it over the target.
//!
//! A reader (or a rerun after `kill -9`) therefore sees either the old file or the new one, never a partial file.
//! The file is synced before the rename and its folder after it, so after a power loss the new name never points
//! at data that did not reach the disk, and a pointer written after this call returns is ordered after the file.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Temporary sibling path used while `target` is being written.
fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    target.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `target` atomically, creating parent folders.
pub fn write_bytes(target: &Path, bytes: &[u8]) -> Result<()> {
    write_with(target, |w| w.write_all(bytes).map_err(Into::into))
}

/// Writes `value` as pretty JSON to `target` atomically.
pub fn write_json<T: serde::Serialize>(target: &Path, value: &T) -> Result<()> {
    write_with(target, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        w.write_all(b"\n")?;
        Ok(())
    })
}

/// Streams into a temporary file through `fill`, then renames it to `target`.
///
/// If `fill` fails, the temporary file is removed and `target` is left untouched.
pub fn write_with<F>(target: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("creating folder {}", parent.display()))?;
    }
    let tmp = temp_path(target);
    let result = (|| -> Result<()> {
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut writer = BufWriter::new(file);
        fill(&mut writer)?;
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        rename_durably(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", target.display()))
}

/// Writes a file produced by an external step (for example a tool that needs a path) atomically: `produce` gets
/// the temporary path to write to, and the file is renamed to `target` only if `produce` succeeds.
pub fn write_via_path<F>(target: &Path, produce: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("creating folder {}", parent.display()))?;
    }
    let tmp = temp_path(target);
    // Keep the extension so tools that pick a format from it still work.
    let tmp = match target.extension() {
        Some(ext) => tmp.with_extension(format!("tmp.{}", ext.to_string_lossy())),
        None => tmp,
    };
    let result = produce(&tmp).and_then(|()| {
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", tmp.display()))?;
        rename_durably(&tmp, target)
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", target.display()))
}

/// Renames a synced temporary file over `target`, then syncs the folder so the rename itself is on disk.
fn rename_durably(tmp: &Path, target: &Path) -> Result<()> {
    fs::rename(tmp, target)
        .with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))?;
    sync_folder(target.parent().unwrap_or(Path::new(".")))
}

/// Syncs a folder's entries (a rename, a new or removed file) to disk. Folders cannot be opened for syncing on
/// every platform; there the rename's own ordering is all we get.
pub fn sync_folder(folder: &Path) -> Result<()> {
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    #[cfg(unix)]
    File::open(folder)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing folder {}", folder.display()))?;
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write_bytes(&target, b"old").unwrap();
        let err = write_with(&target, |w| {
            w.write_all(b"partial")?;
            anyhow::bail!("boom")
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&target).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
    }

    #[test]
    fn creates_parents_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x/y/z.txt");
        write_bytes(&target, b"1").unwrap();
        write_bytes(&target, b"22").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"22");
    }

    #[test]
    fn via_path_keeps_extension_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("v.mp4");
        write_via_path(&target, |tmp| {
            assert_eq!(tmp.extension().unwrap(), "mp4");
            fs::write(tmp, b"video")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"video");
    }
}
