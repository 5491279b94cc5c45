//! Stage three, `oassl train`: trains the OA-SSL model (or an LVS / NoPrior baseline) on the manifest's
//! training splits.
//!
//! Reads `dataset/manifest.csv`, `extract/frames/*.jpg`, `extract/audio/*.wav` and `embed/sample_text.parquet`;
//! writes under `train/`:
//! - `checkpoints/` (see [`checkpoint`]), every `checkpoint_every` steps and at the end;
//! - `steps.csv` (see [`step_log`]) and `loss_curve.png` (see [`loss_curve`]);
//! - `model.safetensors` and `model.json` ([`ModelMeta`]): the final weights that `oassl eval` reads;
//! - `stage.lock.json`, last.
//!
//! [`run`] is four phases, one module each: `plan` (inputs, fingerprint, resume decision), `session` (model and
//! optimizer, fresh or restored), `train_loop` (the steps) and `finish` (outputs, then the lock).
//!
//! A rerun is skipped when the lock says nothing changed (inputs, `[train]`). After an interrupted run a plain
//! rerun refuses and touches nothing: `--resume` continues its newest checkpoint to the same final step,
//! `--restart` discards it; a non-finite loss stops the run with the step,
//! the loss terms and the last good checkpoint.

pub mod adam;
pub mod checkpoint;
mod finish;
mod fused_adam;
pub mod loss_curve;
pub mod loss_scaler;
pub mod pending_steps;
mod plan;
mod session;
pub mod settings;
pub mod step_log;
mod train_loop;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use oassl_pipeline::config::{TrainConfig, TrainLossConfig};
use oassl_pipeline::Layout;

use crate::model::ModelConfig;
use checkpoint::Checkpoints;
use plan::Planned;
use session::Session;

/// Options of one run (command-line flags).
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the newest checkpoint instead of starting over.
    pub resume: bool,
    /// Train even if the stage lock says nothing changed.
    pub force: bool,
    /// Discard the checkpoints of an interrupted run and train from the start.
    pub restart: bool,
    /// Stop (as if killed) once this many steps are done, without the final checkpoint; for testing resume.
    pub stop_after: Option<usize>,
    /// Resolved `[train] visual_weights` (None = random init).
    pub visual_weights: Option<PathBuf>,
}

/// What the trained model needs besides its weights; written as `train/model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Objective it was trained with.
    pub method: String,
    /// Steps trained.
    pub step: usize,
    /// Width D of the text vectors.
    pub text_dim: usize,
    /// Input side S.
    pub image_size: u32,
    /// Seconds of audio.
    pub audio_seconds: f64,
    /// Whether the visual trunk was frozen.
    pub freeze_visual: bool,
    /// Output stride of the visual trunk (32 for runs that predate the setting).
    #[serde(default = "default_visual_output_stride")]
    pub visual_output_stride: i64,
    /// Whether a trainable 1×1 projection follows the visual trunk.
    #[serde(default)]
    pub visual_projection: bool,
    /// The loss constants (IOI thresholds are reused at evaluation).
    pub loss: TrainLossConfig,
    /// Loss of the last step.
    pub final_loss: f64,
}

impl ModelMeta {
    /// Reads `train/model.json`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading {} (run `make train` first)", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// The model shape it describes.
    pub fn model_config(&self) -> ModelConfig {
        ModelConfig {
            text_dim: self.text_dim as i64,
            freeze_visual: self.freeze_visual,
            freeze_audio: false,
            visual_output_stride: self.visual_output_stride,
            visual_projection: self.visual_projection,
        }
    }
}

fn default_visual_output_stride() -> i64 {
    32
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrainSummary {
    /// Nothing changed; the existing model was kept.
    pub up_to_date: bool,
    /// Why it ran (or the staleness text).
    pub reason: String,
    /// Training samples used.
    pub samples: usize,
    /// Samples left out (`skip_bad_samples`).
    pub skipped: usize,
    /// Step it started from (non-zero when resumed).
    pub start_step: usize,
    /// Steps completed.
    pub step: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// Stopped early by `stop_after`.
    pub interrupted: bool,
    /// Loss of the last step.
    pub final_loss: f64,
    /// Mean samples/s over the steps of this invocation.
    pub samples_per_s: f64,
    /// Device used.
    pub device: String,
    /// The final weights.
    pub model: PathBuf,
}

/// Files of the training stage.
pub struct TrainFiles {
    /// `train/`.
    pub dir: PathBuf,
}

impl TrainFiles {
    /// The files under `layout`'s `train/`.
    pub fn new(layout: &Layout) -> Self {
        Self {
            dir: layout.stage_dir("train"),
        }
    }
    /// Final weights.
    pub fn model(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }
    /// Final model description.
    pub fn meta(&self) -> PathBuf {
        self.dir.join("model.json")
    }
    /// Per-step log.
    pub fn steps(&self) -> PathBuf {
        self.dir.join("steps.csv")
    }
    /// Loss curve picture.
    pub fn curve(&self) -> PathBuf {
        self.dir.join("loss_curve.png")
    }
    /// The decoded-data cache folder.
    pub fn decoded(&self) -> PathBuf {
        self.dir.join("decoded")
    }
    /// The stage lock, written last.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("stage.lock.json")
    }
    /// Checkpoint folder.
    pub fn checkpoints(&self) -> Checkpoints {
        Checkpoints::new(self.dir.join("checkpoints"))
    }
}

/// Runs stage three: plan the run, start it (or resume it), train, and write the outputs of a finished run.
pub fn run(cfg: &TrainConfig, layout: &Layout, opts: &TrainOptions) -> Result<TrainSummary> {
    let files = TrainFiles::new(layout);
    let mut plan = match plan::plan(cfg, layout, &files, opts)? {
        Planned::UpToDate(summary) => return Ok(summary),
        Planned::Run(plan) => *plan,
    };
    let mut session = Session::start(cfg, &plan, &files, opts)?;
    let outcome = train_loop::train_loop(cfg, &mut plan, &mut session, &files, opts)?;
    let final_loss = session.rows.last().map_or(f64::NAN, |r| r.total);
    let summary = TrainSummary {
        up_to_date: false,
        reason: session.reason.clone(),
        samples: plan.steps.clips,
        skipped: plan.set.skipped.len(),
        start_step: session.start_step,
        step: outcome.step,
        total_steps: plan.total_steps,
        interrupted: outcome.step < plan.total_steps,
        final_loss,
        samples_per_s: if outcome.elapsed > 0.0 {
            (outcome.trained * cfg.batch_size) as f64 / outcome.elapsed
        } else {
            0.0
        },
        device: format!("{:?}", session.device),
        model: files.model(),
    };
    if !summary.interrupted {
        finish::finish(cfg, &plan, &mut session, &files, outcome.step, final_loss)?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests;
