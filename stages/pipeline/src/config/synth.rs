//! `[synth]`: the AVS-Synth generator's knobs.

use serde::{Deserialize, Serialize};

use super::{ensure, InvalidValue};

/// AVS-Synth dataset size and rendering parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Seed of the whole dataset: the same seed and knobs give byte-identical scenes and audio.
    pub seed: u64,
    /// Number of object classes drawn from the catalogue (8 to 12).
    pub num_classes: usize,
    /// Frame width and height in pixels.
    pub width: u32,
    pub height: u32,
    /// Video frame rate.
    pub fps: u32,
    /// Clip length in seconds (at least 3: stage one cuts a 3 s window from the centre).
    pub clip_seconds: f64,
    /// Audio sample rate in Hz.
    pub sample_rate: u32,
    /// Scenes per split: one sounding object (`single`) or two (`duet`).
    pub train_single: usize,
    pub train_duet: usize,
    pub test_single: usize,
    pub test_duet: usize,
    /// Most silent objects per scene (0 to 3).
    pub max_silent: usize,
    /// Share of scenes with a silent object of the same class as a sounding one ("three guitars, one played").
    pub same_class_silent_share: f64,
    /// Standard deviation of the background noise added to the audio mixture.
    pub noise_level: f64,
    /// Largest drift of an object over the clip, in pixels.
    pub motion_px: f64,
    /// Box area of a single-source clip's sounding object as a quantile function: `[q, area]` knots with q
    /// rising from 0 to 1 and area a fraction of the frame, linearly interpolated. The defaults follow VGG-SS's
    /// largest box per clip (median 24 %, p25 11 %, p75 45 %, p90 67 %): the evaluators binarise the top half of
    /// a map, so a box of area `a < 0.5` caps the cIoU at `2a`, and objects much smaller than the benchmark's make
    /// cIoU@0.5 unreachable.
    pub single_box_area: Vec<[f64; 2]>,
    /// Box area of each sounding object of a duet clip, and of every silent object, as a quantile function
    /// (MUSIC-Duet's per-source boxes: median 10 %, p10 6 %, p90 19 %).
    pub duet_box_area: Vec<[f64; 2]>,
    /// Number of distinct backgrounds; every scene draws one from this shared pool, so a background is seen
    /// behind many clips of different classes and never identifies a clip.
    pub background_pool: usize,
    /// Scenes of the pretraining split (`dataset/pretrain/`): frames with object labels for `oassl pretrain`,
    /// drawn from their own ids so no scene is shared with train or test. 0 (the default of a config that does
    /// not set it): no pretraining split; the shipped `pipeline.toml` asks for 1,200.
    pub pretrain: usize,
    /// Every scene on the same flat grey instead of a random textured background: no background tells two scenes
    /// apart, so only the objects can (for ablations and for overfitting checks on a handful of clips).
    pub plain_backgrounds: bool,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            num_classes: 10,
            width: 224,
            height: 224,
            fps: 8,
            clip_seconds: 4.0,
            sample_rate: 22_050,
            train_single: 288,
            train_duet: 288,
            test_single: 64,
            test_duet: 96,
            max_silent: 3,
            same_class_silent_share: 0.5,
            noise_level: 0.01,
            motion_px: 4.0,
            single_box_area: vec![
                [0.0, 0.02],
                [0.1, 0.05],
                [0.25, 0.108],
                [0.5, 0.235],
                [0.75, 0.42],
                [0.9, 0.73],
                [1.0, 0.82],
            ],
            duet_box_area: vec![
                [0.0, 0.05],
                [0.1, 0.069],
                [0.25, 0.078],
                [0.5, 0.119],
                [0.75, 0.185],
                [0.9, 0.21],
                [1.0, 0.26],
            ],
            background_pool: 12,
            pretrain: 0,
            plain_backgrounds: false,
        }
    }
}

impl SynthConfig {
    pub(crate) fn validate(&self) -> Result<(), InvalidValue> {
        const S: &str = "synth";
        ensure(
            (8..=12).contains(&self.num_classes),
            S,
            "num_classes",
            || format!("{} is outside 8..=12", self.num_classes),
        )?;
        ensure((64..=1024).contains(&self.width), S, "width", || {
            format!("{} is outside 64..=1024", self.width)
        })?;
        ensure((64..=1024).contains(&self.height), S, "height", || {
            format!("{} is outside 64..=1024", self.height)
        })?;
        ensure((1..=60).contains(&self.fps), S, "fps", || {
            format!("{} is outside 1..=60", self.fps)
        })?;
        ensure(
            self.clip_seconds.is_finite() && (3.0..=60.0).contains(&self.clip_seconds),
            S,
            "clip_seconds",
            || format!("{} is outside 3..=60", self.clip_seconds),
        )?;
        ensure(
            (8_000..=96_000).contains(&self.sample_rate),
            S,
            "sample_rate",
            || format!("{} is outside 8000..=96000", self.sample_rate),
        )?;
        // Every scene of a split is held in memory at once.
        for (key, n) in [
            ("train_single", self.train_single),
            ("train_duet", self.train_duet),
            ("test_single", self.test_single),
            ("test_duet", self.test_duet),
        ] {
            ensure(n <= 1_000_000, S, key, || {
                format!("{n} is more than 1000000")
            })?;
        }
        ensure(self.max_silent <= 3, S, "max_silent", || {
            format!("{} is more than 3", self.max_silent)
        })?;
        ensure(
            (0.0..=1.0).contains(&self.same_class_silent_share),
            S,
            "same_class_silent_share",
            || format!("{} is outside 0..=1", self.same_class_silent_share),
        )?;
        ensure(
            self.noise_level.is_finite() && (0.0..=1.0).contains(&self.noise_level),
            S,
            "noise_level",
            || format!("{} is outside 0..=1", self.noise_level),
        )?;
        ensure(
            self.motion_px.is_finite() && (0.0..=32.0).contains(&self.motion_px),
            S,
            "motion_px",
            || format!("{} is outside 0..=32", self.motion_px),
        )?;
        for (key, knots) in [
            ("single_box_area", &self.single_box_area),
            ("duet_box_area", &self.duet_box_area),
        ] {
            ensure(quantile_knots_valid(knots), S, key, || {
                format!(
                    "{knots:?} must be [q, area] knots with q rising from 0 to 1 and areas rising within 0.001..=0.9"
                )
            })?;
        }
        ensure(
            (1..=10_000).contains(&self.background_pool),
            S,
            "background_pool",
            || format!("{} is outside 1..=10000", self.background_pool),
        )?;
        ensure(self.pretrain <= 1_000_000, S, "pretrain", || {
            format!("{} is more than 1000000", self.pretrain)
        })?;
        Ok(())
    }
}

/// A quantile function's knots: at least two, q from exactly 0 to exactly 1 and rising, areas non-decreasing
/// within 0.001..=0.9.
fn quantile_knots_valid(knots: &[[f64; 2]]) -> bool {
    let finite = knots.iter().all(|[q, a]| q.is_finite() && a.is_finite());
    let ends = knots.first().map(|k| k[0]) == Some(0.0) && knots.last().map(|k| k[0]) == Some(1.0);
    let rising = knots
        .windows(2)
        .all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1]);
    let in_range = knots.iter().all(|[_, a]| (0.001..=0.9).contains(a));
    knots.len() >= 2 && finite && ends && rising && in_range
}
