//! Shared test plumbing: a temp data folder with its own config, and the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A test's own folder with a `pipeline.toml` whose data root is inside it.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// A folder with `pipeline.toml` = the given TOML text (data root `data`).
    pub fn with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("pipeline.toml"), toml).expect("write config");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("pipeline.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    /// Runs `oassl --config <this config> args...`.
    pub fn oassl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_oassl"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("running oassl")
    }
}

/// A small AVS-Synth config for fast tests.
pub const TINY_SYNTH: &str =
    "[synth]\ntrain_single = 3\ntrain_duet = 3\ntest_single = 2\ntest_duet = 2\n";

/// Asserts a command succeeded, showing its output otherwise.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
