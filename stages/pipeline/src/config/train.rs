//! `[train]` and `[train.loss]`: stage three, the OA-SSL training run.
//!
//! [`TrainLossConfig`] is the one definition of the objective's constants: plain data, validated here at config
//! load, and used as it is by the loss code of stage three. Enumerated options ([`Method`], [`MapScaling`]) are
//! parsed here too, so a misspelt value is a config error naming its `[section] key`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ensure, ensure_device, ensure_output_stride, InvalidValue};

/// What stage three trains on, how long, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Objective: `lvs`, `noprior` or `oassl` (docs/method.md §3), so baselines train in the same loop.
    pub method: Method,
    /// Manifest splits to train on (AVS-Synth: `train_single`, `train_duet`).
    pub splits: Vec<String>,
    /// Seed of the weight init, the shuffling and the augmentation.
    pub seed: u64,
    /// `auto` (CUDA when available), `cpu` or `cuda`.
    pub device: String,
    /// Crop side in pixels (224 in the paper). Training resizes the shorter side to `image_size · 246 / 224`
    /// first (NoPrior's 246 for 224), evaluation resizes to `image_size` square.
    pub image_size: u32,
    /// Random horizontal flip (AVGN / T-VSL; NoPrior has it commented out).
    pub flip: bool,
    /// Audio window in seconds (3 s, docs/method.md §1.2): the first seconds for training, the centre for evaluation.
    pub audio_seconds: f64,
    /// Samples per step (128 in NoPrior).
    pub batch_size: usize,
    /// Passes over the training samples; the run ends after `epochs · ⌊N / (batch_size · compose)⌋` steps
    /// (`drop_last`).
    pub epochs: usize,
    /// Clips per training sample (NoPrior's `concat_num`): 1 trains on clips as they are; N > 1 builds each
    /// sample from N single-source clips, frames stacked vertically, log-spectrograms averaged, the clips'
    /// foreground captions together and the mean of their background vectors. Left out of the fingerprint
    /// at 1, so runs from before the setting stay up to date.
    #[serde(skip_serializing_if = "is_one")]
    pub compose: usize,
    /// Adam learning rate (1e-4, NoPrior scripts).
    pub learning_rate: f64,
    /// Adam β1 (0.9).
    pub beta1: f64,
    /// Adam β2 (0.999).
    pub beta2: f64,
    /// Adam ε (1e-8).
    pub adam_epsilon: f64,
    /// Mixed precision: fp16 autocast of the forward pass on CUDA with dynamic loss scaling; bf16 trunks over
    /// f32 weights on CPU.
    pub autocast: bool,
    /// cuDNN autotuner (`cudnn.benchmark = True`).
    pub cudnn_benchmark: bool,
    /// Channels-last (NHWC) activations and convolution weights in both trunks on CUDA, the layout cuDNN's
    /// tensor-core kernels take (BENCHMARKS.md, "Channels-last on an H200"); ignored on the CPU, where it
    /// showed no gain. Evaluation on CUDA always runs channels-last. Not part of the run's fingerprint (a
    /// layout changes rounding, not what is trained), and not written while on, so configurations from before
    /// the setting read the same.
    #[serde(skip_serializing_if = "is_true")]
    pub channels_last: bool,
    /// Write a checkpoint every this many steps (and always at the end).
    pub checkpoint_every: usize,
    /// Read the loss terms back from the device every this many steps (also at checkpoints and at the end):
    /// the step's only host synchronisation. The step log still gets one row per step.
    pub log_every: usize,
    /// Data-loading threads (rayon) that decode frames and compute spectrograms.
    pub workers: usize,
    /// Batches prepared ahead of the training thread (bounded channel depth).
    pub prefetch: usize,
    /// libtorch intra-op CPU threads (0: libtorch's default).
    pub torch_threads: usize,
    /// Skip (and count) samples with missing or inconsistent inputs instead of stopping with an error.
    pub skip_bad_samples: bool,
    /// Keep the visual ResNet-18 fixed (NoPrior); default fine-tuned (docs/method.md §11.2).
    pub freeze_visual: bool,
    /// Output stride of the visual ResNet-18: 32 (the paper: a 7x7 map at 224 px) or 16 (`layer4` at stride 1,
    /// a 14x14 map at 224 px, 8x8 at 128 px) for small frames.
    pub visual_output_stride: u32,
    /// A trainable 1×1 convolution after the visual trunk (identity at init): with `freeze_visual`, the way the
    /// caption losses still shape the visual features while the pretrained trunk stays fixed.
    pub visual_projection: bool,
    /// Optional torchvision `resnet18` state_dict for the visual trunk: the downloaded `resnet18-f37072fd.pth`
    /// as is (`.pth`, `.pt`, `.bin`: torch.save) or re-saved as `.safetensors`; relative to the config file's
    /// folder unless absolute; empty = random init.
    pub visual_weights: PathBuf,
    /// Every constant of the objective.
    pub loss: TrainLossConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            method: Method::Oassl,
            splits: vec!["train_single".into(), "train_duet".into()],
            seed: 0,
            device: "auto".into(),
            image_size: 224,
            flip: false,
            audio_seconds: 3.0,
            batch_size: 128,
            compose: 1,
            epochs: 100,
            learning_rate: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            adam_epsilon: 1e-8,
            autocast: false,
            cudnn_benchmark: true,
            channels_last: true,
            checkpoint_every: 100,
            log_every: 10,
            workers: 2,
            prefetch: 2,
            torch_threads: 0,
            skip_bad_samples: false,
            freeze_visual: false,
            visual_output_stride: 32,
            visual_projection: false,
            visual_weights: PathBuf::new(),
            loss: TrainLossConfig::default(),
        }
    }
}

/// `[train.loss]`: every constant of the objective `L_base + λ1·L_oca + λ2·L_ori` (docs/method.md §3). `Default`
/// holds the paper's values where it gives them and this project's documented choices elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainLossConfig {
    /// α_p, trimap foreground threshold: 0.65 (supplementary §1, following LVS).
    pub alpha_p: f64,
    /// α_n, trimap background threshold: 0.4 (supplementary §1, following LVS).
    pub alpha_n: f64,
    /// ω, trimap sigmoid sharpness: 0.03 (supplementary §1, following LVS).
    pub omega: f64,
    /// T of L_LVS: 0.07 (LVS and NoPrior code, docs/method.md §3.1).
    pub lvs_temperature: f64,
    /// Add L_OSC to L_base for `oassl`: true (docs/method.md §11.4). `noprior` always includes it.
    pub base_includes_osc: bool,
    /// Weight of L_OSC inside L_base: 1 (NoPrior trains L_LVS + L_OSC 1:1, docs/method.md §2.4).
    pub osc_weight: f64,
    /// IOI stop threshold on the remaining saliency: 0.1 (NoPrior code, docs/method.md §2.3).
    pub ioi_stop_saliency: f64,
    /// IOI background cosine threshold: 0.7 (NoPrior code, docs/method.md §2.3).
    pub ioi_background_similarity: f64,
    /// IOI merge cosine threshold: 0.6 (NoPrior code, docs/method.md §2.3).
    pub ioi_merge_similarity: f64,
    /// IOI iterations per training step when set: a fixed count with no host read, so a GPU step never waits
    /// on IOI (a sample still going after it stops there); absent: until every sample stops, as NoPrior does
    /// (docs/method.md §2.3). Evaluation always runs until every sample stops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ioi_iteration_budget: Option<usize>,
    /// λ1, weight of L_oca: 1 (supplementary Table 3).
    pub lambda1: f64,
    /// T of L_oca: 0.07 (not retrieved; LVS's value, docs/method.md §11.6).
    pub oca_temperature: f64,
    /// δ, OCA false-negative caption-cosine threshold: 0.5 (not retrieved; docs/method.md §11.6, sweepable).
    pub oca_false_negative_threshold: f64,
    /// λ2, weight of L_ori: 0.1 (supplementary Table 3).
    pub lambda2: f64,
    /// Sinkhorn iterations: 100 (supplementary §1).
    pub sinkhorn_iterations: usize,
    /// Sinkhorn ε: 0.05 (not retrieved; docs/method.md §3.4 suggests 0.05–0.1).
    pub sinkhorn_epsilon: f64,
    /// λ_c, weight of the coordinate distance in the ORI cost: 1 (not retrieved; docs/method.md §3.4).
    pub ori_coordinate_weight: f64,
    /// How reference maps are rescaled to [0, 1] before transport: `minmax` (docs/method.md §11.7) or `affine`.
    pub ori_map_scaling: MapScaling,
}

impl Default for TrainLossConfig {
    fn default() -> Self {
        Self {
            alpha_p: 0.65,
            alpha_n: 0.4,
            omega: 0.03,
            lvs_temperature: 0.07,
            base_includes_osc: true,
            osc_weight: 1.0,
            ioi_stop_saliency: 0.1,
            ioi_background_similarity: 0.7,
            ioi_merge_similarity: 0.6,
            ioi_iteration_budget: None,
            lambda1: 1.0,
            oca_temperature: 0.07,
            oca_false_negative_threshold: 0.5,
            lambda2: 0.1,
            sinkhorn_iterations: 100,
            sinkhorn_epsilon: 0.05,
            ori_coordinate_weight: 1.0,
            ori_map_scaling: MapScaling::MinMax,
        }
    }
}

impl TrainConfig {
    /// The resize before the random crop: `round(image_size · 246 / 224)`.
    pub fn resize_before_crop(&self) -> u32 {
        ((self.image_size as f64) * 246.0 / 224.0).round() as u32
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidValue> {
        const S: &str = "train";
        ensure(!self.splits.is_empty(), S, "splits", || {
            "must name at least one manifest split".into()
        })?;
        ensure_device(S, &self.device)?;
        ensure(
            (32..=1024).contains(&self.image_size),
            S,
            "image_size",
            || format!("{} is outside 32..=1024", self.image_size),
        )?;
        ensure_output_stride(S, self.visual_output_stride)?;
        ensure(
            self.audio_seconds.is_finite() && (0.1..=60.0).contains(&self.audio_seconds),
            S,
            "audio_seconds",
            || format!("{} is outside 0.1..=60", self.audio_seconds),
        )?;
        ensure(
            (2..=4096).contains(&self.batch_size),
            S,
            "batch_size",
            || {
                format!(
                    "{} is outside 2..=4096 (the contrastive losses need negatives)",
                    self.batch_size
                )
            },
        )?;
        ensure((1..=8).contains(&self.compose), S, "compose", || {
            format!(
                "must be 1 (clips as they are) to 8 clips per sample, got {}",
                self.compose
            )
        })?;
        ensure(self.epochs >= 1, S, "epochs", || {
            "must be at least 1".into()
        })?;
        ensure(
            self.learning_rate.is_finite() && self.learning_rate > 0.0,
            S,
            "learning_rate",
            || format!("{} must be > 0", self.learning_rate),
        )?;
        for (key, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            ensure((0.0..1.0).contains(&v), S, key, || {
                format!("{v} is outside [0, 1)")
            })?;
        }
        ensure(self.adam_epsilon > 0.0, S, "adam_epsilon", || {
            "must be > 0".into()
        })?;
        ensure(self.checkpoint_every >= 1, S, "checkpoint_every", || {
            "must be at least 1".into()
        })?;
        // Steps whose loss terms wait on the device until the next read.
        ensure(
            (1..=10_000).contains(&self.log_every),
            S,
            "log_every",
            || format!("{} is outside 1..=10000", self.log_every),
        )?;
        // Threads and queued batches are allocated up front.
        for (key, n, max) in [
            ("workers", self.workers, 256),
            ("prefetch", self.prefetch, 1024),
        ] {
            ensure((1..=max).contains(&n), S, key, || {
                format!("{n} is outside 1..={max}")
            })?;
        }
        ensure(self.torch_threads <= 1024, S, "torch_threads", || {
            format!("{} is more than 1024", self.torch_threads)
        })?;
        self.loss.validate()
    }
}

impl TrainLossConfig {
    /// Rejects values no loss can use (non-positive temperatures, ε or ω; negative weights; zero iterations).
    pub fn validate(&self) -> Result<(), InvalidValue> {
        const S: &str = "train.loss";
        for (key, v) in [
            ("omega", self.omega),
            ("lvs_temperature", self.lvs_temperature),
            ("oca_temperature", self.oca_temperature),
            ("sinkhorn_epsilon", self.sinkhorn_epsilon),
        ] {
            ensure(v.is_finite() && v > 0.0, S, key, || {
                format!("{v} must be > 0")
            })?;
        }
        for (key, v) in [
            ("osc_weight", self.osc_weight),
            ("lambda1", self.lambda1),
            ("lambda2", self.lambda2),
            ("ori_coordinate_weight", self.ori_coordinate_weight),
        ] {
            ensure(v.is_finite() && v >= 0.0, S, key, || {
                format!("{v} must be >= 0")
            })?;
        }
        ensure(self.alpha_n <= self.alpha_p, S, "alpha_n", || {
            format!("{} must not exceed alpha_p {}", self.alpha_n, self.alpha_p)
        })?;
        ensure(
            self.sinkhorn_iterations >= 1,
            S,
            "sinkhorn_iterations",
            || "must be at least 1".into(),
        )?;
        ensure(
            self.ioi_iteration_budget != Some(0),
            S,
            "ioi_iteration_budget",
            || "must be at least 1 (leave it out to iterate until every sample stops)".into(),
        )?;
        Ok(())
    }
}

/// Which objective stage three trains (docs/method.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Method {
    /// L_LVS alone (LVS, CVPR 2021).
    Lvs,
    /// L_LVS + L_OSC (NoPrior, CVPR 2024).
    NoPrior,
    /// L_base + λ1·L_oca + λ2·L_ori (OA-SSL, CVPR 2025).
    Oassl,
}

impl Method {
    /// Every objective, in the order of the paper's tables.
    pub const ALL: [Method; 3] = [Method::Lvs, Method::NoPrior, Method::Oassl];

    /// The name used in configs, file names and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lvs => "lvs",
            Self::NoPrior => "noprior",
            Self::Oassl => "oassl",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("[train] method: {s:?} is not one of lvs, noprior, oassl"))
    }
}

impl TryFrom<String> for Method {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Method> for String {
    fn from(m: Method) -> String {
        m.name().to_string()
    }
}

/// How L_ori rescales reference maps to [0, 1] before transport (docs/method.md §11.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MapScaling {
    /// `(S − min) / (max − min)` per map (`minmax`).
    MinMax,
    /// `(S + 1) / 2` (`affine`).
    Affine,
}

impl TryFrom<String> for MapScaling {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "minmax" => Ok(Self::MinMax),
            "affine" => Ok(Self::Affine),
            other => Err(format!(
                "[train.loss] ori_map_scaling: {other:?} is not one of minmax, affine"
            )),
        }
    }
}

impl From<MapScaling> for String {
    fn from(m: MapScaling) -> String {
        match m {
            MapScaling::MinMax => "minmax",
            MapScaling::Affine => "affine",
        }
        .to_string()
    }
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

fn is_true(v: &bool) -> bool {
    *v
}
