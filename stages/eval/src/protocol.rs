//! Evaluation protocols: every choice an evaluator makes, as explicit enums, and the named
//! protocols that reproduce the public evaluators.
//!
//! | name | upsample | normalise | binarise | GT | sources | aggregates |
//! |---|---|---|---|---|---|---|
//! | `lvs` | cv2 linear | `1 − minmax(−u)` | LVS strict median | union / Flickr consensus | one map | cIoU@0.5 (≥), AUC, mean cIoU |
//! | `ezvsl` | torch bilinear, align_corners | minmax | EZ-VSL median (≥) | union / consensus | one map | cIoU@0.5 (≥), AUC, mean cIoU |
//! | `slavc` | torch bicubic, align_corners | minmax | EZ-VSL median | union / consensus | one map | as `ezvsl` (SLAVC/AVGN `--relative_prediction`) |
//! | `noprior` | cv2 cubic to 224c×224 | minmax per tile | LVS strict median | union per frame | greedy | cIoU@0.5, cIoU@0.3, AUC, CAP, PIAP, count |
//! | `oassl` | as `noprior` | | | **one GT map per source** | greedy | as `noprior` |
//! | `tvsl` | torch bicubic, half-pixel | `1 − minmax` over the mosaic | `p ≥ 0.3` | box count per source | map k ↔ source k | mean cIoU ("CIoU@0.3"), AUC, AP |
//!
//! `oassl` is NoPrior's `test_step` with one change: each sounding object gets its own GT slot
//! (its own boxes on the 224×224 grid of its frame) instead of NoPrior's per-frame union, so on
//! MUSIC-Duet or AVS-Synth each predicted object map must find a different source (class-aware
//! in the sense of the multi-source papers). On pair mosaics (one source per frame) it equals
//! `noprior`.

use crate::binarise::Binarisation;
use crate::gt_map::{BoxReading, GtMerge};
use crate::metrics::auc::Comparison;
use crate::metrics::pixel_ap::PixelApFlavour;
use crate::normalise::Normalisation;
use crate::upsample::Upsample;
use serde::{Deserialize, Serialize};

/// How per-source frames are laid out in the mosaic the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MosaicAxis {
    /// Frames stacked along height (NoPrior): a map is resized to `224c x 224`.
    Vertical,
    /// Frames side by side (AVGN, T-VSL): a map is resized to `224 x 224c`.
    Horizontal,
}

/// Which region a normalisation and binarisation sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Each 224x224 frame tile separately (NoPrior `np.split` then `normalize_img`).
    PerTile,
    /// The whole mosaic at once (T-VSL).
    Mosaic,
}

/// How predicted maps are paired with ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assignment {
    /// Single-source evaluators: exactly one map, compared with the union of all sources.
    SingleMap,
    /// NoPrior greedy matching; GT slots are frames (`per_source = false`, union of the frame's
    /// sources) or sources (`per_source = true`).
    Greedy { per_source: bool },
    /// Class-conditioned evaluators (T-VSL, AVGN multi): map `k` belongs to source `k`; each is
    /// scored over the whole mosaic against a GT that is non-zero only for its source.
    Conditioned,
}

/// One evaluation protocol. Build with a named constructor and adjust fields if needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    pub name: String,
    pub upsample: Upsample,
    pub normalisation: Normalisation,
    pub binarisation: Binarisation,
    pub scope: Scope,
    pub mosaic: MosaicAxis,
    pub gt_merge: GtMerge,
    pub box_reading: BoxReading,
    pub assignment: Assignment,
    /// Success-rate thresholds reported (`cIoU@t`).
    pub success_thresholds: Vec<f64>,
    pub comparison: Comparison,
    /// Per-entry pixel AP (AP for single-source, CAP for greedy); `None` when not computed.
    pub pixel_ap: Option<PixelApFlavour>,
    /// NoPrior's PIAP: AP of the summed maps over the whole mosaic against the per-frame unions.
    pub piap: bool,
}

impl Protocol {
    /// LVS `test.py` (also SSL-TIE).
    pub fn lvs() -> Self {
        Protocol {
            name: "lvs".into(),
            upsample: Upsample::CvLinear,
            normalisation: Normalisation::LvsNegated,
            binarisation: Binarisation::LvsTopHalf,
            scope: Scope::PerTile,
            mosaic: MosaicAxis::Vertical,
            gt_merge: GtMerge::DatasetDefault,
            box_reading: BoxReading::AsAnnotated,
            assignment: Assignment::SingleMap,
            success_thresholds: vec![0.5],
            comparison: Comparison::Ge,
            pixel_ap: None,
            piap: false,
        }
    }

    /// EZ-VSL `test.py::validate` (also FNAC `validate`).
    pub fn ezvsl() -> Self {
        Protocol {
            name: "ezvsl".into(),
            upsample: Upsample::TorchBilinear {
                align_corners: true,
            },
            normalisation: Normalisation::MinMax,
            binarisation: Binarisation::EzTopHalf,
            ..Protocol::lvs()
        }
    }

    /// SLAVC / AVGN single-source `test.py` with `--relative_prediction`.
    pub fn slavc() -> Self {
        Protocol {
            name: "slavc".into(),
            upsample: Upsample::TorchBicubic {
                align_corners: true,
            },
            ..Protocol::ezvsl()
        }
    }

    /// NoPrior `train.py::test_step` / `on_test_epoch_end`.
    pub fn noprior() -> Self {
        Protocol {
            name: "noprior".into(),
            upsample: Upsample::CvCubic,
            normalisation: Normalisation::MinMax,
            binarisation: Binarisation::LvsTopHalf,
            scope: Scope::PerTile,
            mosaic: MosaicAxis::Vertical,
            gt_merge: GtMerge::DatasetDefault,
            box_reading: BoxReading::AsAnnotated,
            assignment: Assignment::Greedy { per_source: false },
            success_thresholds: vec![0.5, 0.3],
            comparison: Comparison::Ge,
            pixel_ap: Some(PixelApFlavour::GtLabelsBinaryScores),
            piap: true,
        }
    }

    /// NoPrior's protocol with one GT slot per sounding source (see the module doc).
    pub fn oassl() -> Self {
        Protocol {
            name: "oassl".into(),
            assignment: Assignment::Greedy { per_source: true },
            ..Protocol::noprior()
        }
    }

    /// T-VSL `main.py::validate_multi` (class-conditioned maps, side-by-side mosaic).
    pub fn tvsl() -> Self {
        Protocol {
            name: "tvsl".into(),
            upsample: Upsample::TorchBicubic {
                align_corners: false,
            },
            normalisation: Normalisation::InvertedMinMax,
            binarisation: Binarisation::Absolute(0.3),
            scope: Scope::Mosaic,
            mosaic: MosaicAxis::Horizontal,
            gt_merge: GtMerge::Count,
            box_reading: BoxReading::XywhAsXyxy,
            assignment: Assignment::Conditioned,
            success_thresholds: vec![0.3, 0.5],
            comparison: Comparison::Gt,
            pixel_ap: Some(PixelApFlavour::GtLabelsContinuousScores),
            piap: false,
        }
    }

    /// A named protocol: `lvs`, `ezvsl`, `slavc`, `noprior`, `oassl`, `tvsl`.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "lvs" => Some(Self::lvs()),
            "ezvsl" => Some(Self::ezvsl()),
            "slavc" => Some(Self::slavc()),
            "noprior" => Some(Self::noprior()),
            "oassl" => Some(Self::oassl()),
            "tvsl" => Some(Self::tvsl()),
            _ => None,
        }
    }
}
