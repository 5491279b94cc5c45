//! `[pretrain]`: `oassl pretrain`, the visual ResNet-18 trained on object classification of the pretraining
//! split (our stand-in for the ImageNet weights every peer starts from).

use serde::{Deserialize, Serialize};

use super::{ensure, ensure_device, ensure_output_stride, InvalidValue};

/// How the visual trunk is pretrained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainConfig {
    /// Seed of the weight init, the shuffling and the augmentation.
    pub seed: u64,
    /// `auto` (CUDA when available), `cpu` or `cuda`.
    pub device: String,
    /// Crop side in pixels; frames are resized to `image_size · 246 / 224` first, as in training.
    pub image_size: u32,
    /// Samples per step.
    pub batch_size: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Output stride of the trunk while pretraining (16 or 32): the same as `[train] visual_output_stride`
    /// gives `layer4` the receptive field it will be used with.
    pub visual_output_stride: u32,
    /// Share of the pretraining frames held out to report the classification quality.
    pub held_out: f64,
    /// libtorch intra-op CPU threads (0: libtorch's default).
    pub torch_threads: usize,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            device: "auto".into(),
            image_size: 128,
            batch_size: 32,
            steps: 300,
            learning_rate: 1e-3,
            visual_output_stride: 16,
            held_out: 0.1,
            torch_threads: 0,
        }
    }
}

impl PretrainConfig {
    pub(crate) fn validate(&self) -> Result<(), InvalidValue> {
        const S: &str = "pretrain";
        ensure_device(S, &self.device)?;
        ensure(
            (32..=512).contains(&self.image_size),
            S,
            "image_size",
            || format!("{} is outside 32..=512", self.image_size),
        )?;
        ensure(
            (1..=4096).contains(&self.batch_size),
            S,
            "batch_size",
            || format!("{} is outside 1..=4096", self.batch_size),
        )?;
        ensure(self.steps <= 10_000_000, S, "steps", || {
            format!("{} is more than 10000000", self.steps)
        })?;
        ensure(
            self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate < 1.0,
            S,
            "learning_rate",
            || format!("{} is outside (0, 1)", self.learning_rate),
        )?;
        ensure_output_stride(S, self.visual_output_stride)?;
        ensure(
            self.held_out.is_finite() && (0.0..0.9).contains(&self.held_out),
            S,
            "held_out",
            || format!("{} is outside 0..0.9", self.held_out),
        )?;
        ensure(self.torch_threads <= 1024, S, "torch_threads", || {
            format!("{} is more than 1024", self.torch_threads)
        })?;
        Ok(())
    }
}
