//! `[eval]`: scoring the trained model on the test splits (`oassl eval`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ensure, ensure_device, InvalidValue};

/// Annotation formats a split's ground truth may be read in (`oassl_eval::AnnotationFormat`).
pub const GROUND_TRUTH_FORMATS: [&str; 5] = [
    "avs-synth",
    "vggss",
    "vggsound-pairs",
    "music",
    "flickr-xml",
];

/// A split's ground truth in a benchmark's own annotation file, instead of `dataset/ground_truth/<split>.json`:
/// `[eval.ground_truth.<split>]`. Only the annotated samples that are clips of the split in the manifest are scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundTruthFile {
    /// One of [`GROUND_TRUTH_FORMATS`]: `vggss` (`vggss.json`), `vggsound-pairs` (`vggsound_{single,duet}_test.csv`,
    /// boxes from `boxes`), `music` (AVGN's `music_{solo,duet}.json`), `flickr-xml` (a folder of `<id>.xml`),
    /// `avs-synth` (this project's form).
    pub format: String,
    /// The annotation file (folder for `flickr-xml`), relative to the config file's folder unless absolute.
    pub path: PathBuf,
    /// `vggss.json` holding the boxes of a `vggsound-pairs` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boxes: Option<PathBuf>,
}

/// Which splits are scored, under which protocol, and what the report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Manifest splits to score, each with `dataset/ground_truth/<split>.json` (AVS-Synth: `test_single`,
    /// `test_duet`). Samples with one source are scored on `S_a`, samples with several on the IOI maps.
    pub splits: Vec<String>,
    /// Splits whose ground truth is a benchmark's annotation file rather than `dataset/ground_truth/<split>.json`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ground_truth: BTreeMap<String, GroundTruthFile>,
    /// Evaluation protocol of `oassl_eval` (`oassl`, `noprior`, `lvs`, `ezvsl`, `slavc`, `tvsl`); `oassl` is
    /// NoPrior's protocol with one GT map per source.
    pub protocol: String,
    /// Multi-source scoring of the multi-source protocols (`oassl`, `noprior`, `tvsl`): `source-wise` (one score
    /// per sounding source, the evaluators' own), `frame-wise` (one score per input frame, the merged maps against
    /// the union of its sources) or `both`, reported side by side (see `oassl_eval::multi_source`).
    pub multi_source: String,
    /// Samples per forward pass.
    pub batch_size: usize,
    /// `auto` (CUDA when available), `cpu` or `cuda`.
    pub device: String,
    /// Seed of the random reference map.
    pub random_seed: u64,
    /// σ of the centre Gaussian reference map, as a fraction of the frame side.
    pub prior_sigma: f64,
    /// Samples in the gallery: this many best and this many worst by cIoU.
    pub gallery_best: usize,
    /// Worst samples in the gallery (failure cases).
    pub gallery_worst: usize,
    /// Side of one gallery tile in pixels.
    pub gallery_tile: u32,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            splits: vec!["test_single".into(), "test_duet".into()],
            ground_truth: BTreeMap::new(),
            protocol: "oassl".into(),
            multi_source: "both".into(),
            batch_size: 32,
            device: "auto".into(),
            random_seed: 0,
            prior_sigma: 0.25,
            gallery_best: 4,
            gallery_worst: 4,
            gallery_tile: 160,
        }
    }
}

impl EvalConfig {
    pub(crate) fn validate(&self) -> Result<(), InvalidValue> {
        const S: &str = "eval";
        ensure(!self.splits.is_empty(), S, "splits", || {
            "must name at least one split".into()
        })?;
        ensure(
            matches!(
                self.protocol.as_str(),
                "oassl" | "noprior" | "lvs" | "ezvsl" | "slavc" | "tvsl"
            ),
            S,
            "protocol",
            || {
                format!(
                    "{:?} is not one of oassl, noprior, lvs, ezvsl, slavc, tvsl",
                    self.protocol
                )
            },
        )?;
        for (split, gt) in &self.ground_truth {
            ensure(self.splits.contains(split), S, "ground_truth", || {
                format!("{split:?} is not one of the splits {:?}", self.splits)
            })?;
            ensure(
                GROUND_TRUTH_FORMATS.contains(&gt.format.as_str()),
                S,
                "ground_truth",
                || {
                    format!(
                        "{split}: format {:?} is not one of {}",
                        gt.format,
                        GROUND_TRUTH_FORMATS.join(", ")
                    )
                },
            )?;
            ensure(
                (gt.format == "vggsound-pairs") == gt.boxes.is_some(),
                S,
                "ground_truth",
                || {
                    format!("{split}: `boxes` (the vggss.json of the pairs' boxes) goes with format vggsound-pairs and only with it")
                },
            )?;
        }
        ensure(
            matches!(
                self.multi_source.as_str(),
                "source-wise" | "frame-wise" | "both"
            ),
            S,
            "multi_source",
            || {
                format!(
                    "{:?} is not one of source-wise, frame-wise, both",
                    self.multi_source
                )
            },
        )?;
        ensure(
            (1..=4096).contains(&self.batch_size),
            S,
            "batch_size",
            || format!("{} is outside 1..=4096", self.batch_size),
        )?;
        for (key, n) in [
            ("gallery_best", self.gallery_best),
            ("gallery_worst", self.gallery_worst),
        ] {
            ensure(n <= 1000, S, key, || format!("{n} is more than 1000"))?;
        }
        ensure_device(S, &self.device)?;
        ensure(
            self.prior_sigma.is_finite() && self.prior_sigma > 0.0,
            S,
            "prior_sigma",
            || format!("{} must be > 0", self.prior_sigma),
        )?;
        ensure(
            (32..=1024).contains(&self.gallery_tile),
            S,
            "gallery_tile",
            || format!("{} is outside 32..=1024", self.gallery_tile),
        )?;
        Ok(())
    }
}
