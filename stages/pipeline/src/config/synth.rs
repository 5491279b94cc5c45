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
    /// Smallest and largest side of an object's square, in pixels of a 224-pixel frame (scaled with the frame).
    /// The defaults give boxes of about 5-14 % of the frame (twice the area of earlier releases) and still leave
    /// room for about one silent object per scene: the evaluators binarise the top half of a map, so a box of
    /// area fraction `a` caps the cIoU near `2a`.
    pub object_size: [f64; 2],
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
            train_single: 96,
            train_duet: 96,
            test_single: 32,
            test_duet: 32,
            max_silent: 3,
            same_class_silent_share: 0.35,
            noise_level: 0.01,
            motion_px: 4.0,
            object_size: [52.0, 84.0],
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
        let [lo, hi] = self.object_size;
        ensure(
            lo.is_finite() && hi.is_finite() && 16.0 <= lo && lo < hi && hi <= 100.0,
            S,
            "object_size",
            || format!("{:?} must satisfy 16 <= min < max <= 100", self.object_size),
        )?;
        Ok(())
    }
}
