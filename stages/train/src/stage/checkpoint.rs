//! Training checkpoints: weights, optimizer state, step and RNG state, each file written atomically and the
//! `latest.json` pointer last, so a run killed at any moment leaves the previous checkpoint intact.
//!
//! ```text
//! <data>/train/checkpoints/step-0000100.model.safetensors   VarStore (every variable, BN statistics included)
//! <data>/train/checkpoints/step-0000100.optim.safetensors   Adam moments m.<var>, v.<var>
//! <data>/train/checkpoints/step-0000100.json                [`CheckpointState`]
//! <data>/train/checkpoints/latest.json                      [`CheckpointState`] of the newest checkpoint
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tch::nn;

use oassl_pipeline::atomic;

use super::adam::{Adam, AdamCounters};
use crate::model::save_weights;

/// Everything besides the tensors that a resumed run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Steps completed.
    pub step: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// Hash of the `[train]` settings that change results.
    pub config_hash: String,
    /// Hash of the training inputs (sample_text, manifest, frames, WAVs).
    pub inputs_hash: String,
    /// Width D of the text vectors.
    pub text_dim: usize,
    /// Adam's update count t.
    pub adam_t: u64,
    /// Loss scale of the fp16 scaler.
    pub loss_scale: f64,
    /// Clean steps since the loss scale last changed.
    pub clean_steps: u64,
    /// RNG state: every random choice after initialisation (sample order, crops, flips) is a function of
    /// `(seed, step, position)`, so the seed and the step are the whole state.
    pub rng_seed: u64,
    /// Model weights file.
    pub model_file: PathBuf,
    /// Optimizer state file.
    pub optim_file: PathBuf,
}

/// The checkpoint folder of a run.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    /// Checkpoints under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The pointer to the newest checkpoint.
    pub fn latest_path(&self) -> PathBuf {
        self.dir.join("latest.json")
    }

    /// The newest checkpoint's state, if any.
    pub fn latest(&self) -> Result<Option<CheckpointState>> {
        let path = self.latest_path();
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("parsing {}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes a checkpoint at `state.step` and moves the pointer to it; older checkpoints are removed.
    pub fn save(
        &self,
        vs: &nn::VarStore,
        adam: &Adam,
        mut state: CheckpointState,
    ) -> Result<CheckpointState> {
        let stem = format!("step-{:07}", state.step);
        state.model_file = self.dir.join(format!("{stem}.model.safetensors"));
        state.optim_file = self.dir.join(format!("{stem}.optim.safetensors"));
        save_weights(vs, &state.model_file)?;
        atomic::write_via_path(&state.optim_file, |tmp| adam.save(tmp))?;
        atomic::write_json(&self.dir.join(format!("{stem}.json")), &state)?;
        let previous = self.latest()?;
        atomic::write_json(&self.latest_path(), &state)?;
        if let Some(prev) = previous.filter(|p| p.step != state.step) {
            let prev_json = self.dir.join(format!("step-{:07}.json", prev.step));
            for old in [prev.model_file, prev.optim_file, prev_json] {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(state)
    }

    /// Loads a checkpoint's weights and optimizer state.
    pub fn restore(
        &self,
        state: &CheckpointState,
        vs: &mut nn::VarStore,
        adam: &mut Adam,
    ) -> Result<()> {
        vs.load(&state.model_file)
            .with_context(|| format!("loading weights from {}", state.model_file.display()))?;
        adam.load(&state.optim_file)?;
        adam.set_counters(AdamCounters {
            t: state.adam_t,
            loss_scale: state.loss_scale,
            clean_steps: state.clean_steps,
        });
        Ok(())
    }

    /// Removes every checkpoint (a fresh run).
    pub fn clear(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", self.dir.display())),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
