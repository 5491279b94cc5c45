//! Evaluation protocols: every choice an evaluator makes, as explicit enums, and the named
//! protocols that reproduce the public evaluators.
//!
//! | name | upsample | normalise | binarise | GT | sources | aggregates |
//! |---|---|---|---|---|---|---|
//! | `lvs` | cv2 linear | `1 − minmax(−u)` | LVS strict median | union / Flickr consensus | one map | cIoU@0.5 (≥), AUC, mean cIoU |
//! | `ezvsl` | torch bilinear, align_corners | minmax | EZ-VSL median (≥) | union / consensus | one map | cIoU@0.5 (≥), AUC, mean cIoU |
//! | `slavc` | torch bicubic, align_corners | minmax | EZ-VSL median | union / consensus | one map | as `ezvsl` (SLAVC/AVGN `--relative_prediction`) |
//! | `slavc-abs` | torch bicubic, align_corners | fixed range `s = (u + 1/τ)/(2/τ)`, τ = 0.03 | `s ≥ 0.5` | union / consensus | one map | cIoU@0.5 (≥), AUC, mean cIoU (SLAVC/AVGN `test.py` default: absolute) |
//! | `slavc-extended` | as `slavc-abs` | as `slavc-abs` | `s ≥ 0.5` | as `slavc-abs`; empty for non-sounding pairs | one map | as `slavc-abs`, plus confidence-based Precision, AP, F1 curve / max-F1 at cIoU 0.5 and 0.75 over all and visible samples, AUC over visible samples |
//! | `noprior` | cv2 cubic to 224c×224 | minmax per tile | LVS strict median | union per frame | greedy | cIoU@0.5, cIoU@0.3, AUC, CAP, PIAP, count |
//! | `oassl` | as `noprior` | | | **one GT map per source** | greedy | as `noprior` |
//! | `tvsl` | torch bicubic, half-pixel | `1 − minmax` over the mosaic | `p ≥ 0.3` | box count per source | map k ↔ source k | mean cIoU ("CIoU@0.3"), mean IoU ("IoU@0.3": `p ≥ 0.3` against `G > 0`, smoothed), AUC, AP |
//! | `avgn-multi` | torch bicubic, half-pixel | `minmax((u + 1/τ)/(2/τ))` | EZ-VSL median | box count of source j alone, in its own frame | map j ↔ source j | `precision_at_10` (`>`), PIAP (swapped AP), `f1_at_30`, each per source then averaged; pooled cIoU@0.1/0.3/0.5 (`>`), AUC |
//! | `dsol` | cv2 linear | none | `u > 0.2·max u` | DSOL xywh, union per class | one map per DSOL class | per-frame mean cIoU over the sounding classes: AUC, cIoU@0.30000000000000004, cIoU@0.5 (≥); NSA over the silent classes |
//! | `dsol-solo` | cv2 linear | none | `u > 0.1·max u` | DSOL xywh, union | one map; frames with a box | AUC, cIoU@0.5 (≥) |
//!
//! `oassl` is NoPrior's `test_step` with one change: each sounding object gets its own GT slot
//! (its own boxes on the 224×224 grid of its frame) instead of NoPrior's per-frame union, so on
//! MUSIC-Duet or AVS-Synth each predicted object map must find a different source (class-aware
//! in the sense of the multi-source papers). On pair mosaics (one source per frame) it equals
//! `noprior`.
//!
//! **Input of the absolute protocols** (`slavc-abs`, `slavc-extended`, `avgn-multi`): the map must
//! be the audio-visual similarity logits SLAVC and AVGN return in `mode='test'`, the cosine
//! similarity divided by the temperature, `cos/τ ∈ [−1/τ, 1/τ]`. Their evaluators rescale it with
//! the fixed range `s = (u + 1/τ)/(2/τ)` (τ = 0.03), so `s ≥ 0.5` means a positive cosine and the
//! confidence is read on `s`. A model trained with another temperature needs that τ:
//! [`Protocol::with_tau`] (CLI `--tau`) rewrites the fixed range of the `normalisation` field and
//! of `detection`. A map that is a plain cosine is the case τ = 1; a map in any other unit (a
//! softmax, an attention map) cannot be scored by the absolute rule and must use a relative
//! protocol (`slavc`).
//!
//! **`slavc-extended`** is SLAVC's `test.py` on `--testset flickr_plus_silent` or
//! `vggss_plus_silent` (absolute prediction, its README's setting): the usual test list plus the
//! non-sounding pairs of `*_test_plus_silent.csv` (see [`crate::annotation::non_sounding`] for the
//! list and the map keys), each with an empty GT. The confidence of a sample is the mean of the top
//! quarter of `s` ([`crate::metrics::detection`]).
//!
//! **`dsol`** is DSOL's `eval_duet.py`: the model gives one map per DSOL class
//! ([`crate::class_maps::DSOL_CLASSES`], the cluster-to-class correspondence already applied);
//! the map of each sounding class is scored against that class's boxes and the frame scores the
//! mean over its sounding classes; frames without a box are skipped. `dsol-solo` is DSOL's
//! `tools.py::cal_ciou`: one map per frame against all its boxes.
//!
//! **`avgn-multi`** is AVGN's `train.py::validate_multi`: for source j the model sees source j's
//! own frame with the mixture audio and class j, and map j is scored on that frame alone
//! ([`crate::own_frame`]).

use crate::binarise::Binarisation;
use crate::gt_map::{BoxReading, GtMerge};
use crate::metrics::auc::{auc_thresholds, Comparison};
use crate::metrics::detection::{DetectionReport, DetectionSpec};
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
    /// DSOL `tools.py` (solo): as [`Assignment::SingleMap`], but a frame without any box is
    /// skipped (not counted).
    SingleMapBoxedOnly,
    /// DSOL `eval_duet.py`: one map per class of [`crate::class_maps::DSOL_CLASSES`]; each
    /// sounding class's map against that class's boxes, one entry per frame (the mean over its
    /// sounding classes), NSA over the other classes' maps; frames without a box are skipped.
    ClassMaps,
    /// AVGN `validate_multi`: map `j` covers source `j`'s own frame (224x224) and is scored
    /// against source `j`'s GT alone.
    OwnFrame,
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
    /// T-VSL `cal_IOU` (`iou_thr`): per entry the smoothed IoU of `p ≥ t` against `G > 0`,
    /// averaged ("IoU@t"); `None` when not computed.
    #[serde(default)]
    pub iou_threshold: Option<f64>,
    /// SLAVC / AVGN `EvaluatorFull`: per-entry confidence and the metrics built on it.
    #[serde(default)]
    pub detection: Option<DetectionSpec>,
}

/// SLAVC's and AVGN's temperature: their maps are `cos/τ` with τ = 0.03.
pub const SLAVC_TAU: f64 = 0.03;

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
            iou_threshold: None,
            detection: None,
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

    /// SLAVC / AVGN single-source `test.py` without `--relative_prediction`: the `cos/τ` map
    /// (see the module doc) rescaled to `s = (u + 1/τ)/(2/τ)` and binarised `s ≥ 0.5`.
    pub fn slavc_abs() -> Self {
        Protocol {
            name: "slavc-abs".into(),
            normalisation: Normalisation::FixedRange {
                lo: -1.0 / SLAVC_TAU,
                hi: 1.0 / SLAVC_TAU,
            },
            binarisation: Binarisation::Absolute(0.5),
            ..Protocol::slavc()
        }
    }

    /// SLAVC `test.py` on the extended Flickr / VGG-SS test sets (with non-sounding pairs):
    /// `slavc-abs` plus `EvaluatorFull.finalize_stats` at cIoU 0.5 and 0.75 (its defaults).
    pub fn slavc_extended() -> Self {
        Protocol {
            name: "slavc-extended".into(),
            detection: Some(DetectionSpec {
                lo: -1.0 / SLAVC_TAU,
                hi: 1.0 / SLAVC_TAU,
                report: DetectionReport::FinalizeStats {
                    ciou_thresholds: vec![0.5, 0.75],
                },
            }),
            ..Protocol::slavc_abs()
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
            iou_threshold: None,
            detection: None,
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
            iou_threshold: Some(0.3),
            detection: None,
        }
    }

    /// AVGN `train.py::validate_multi` (class-aware: map j from source j's frame and class).
    pub fn avgn_multi() -> Self {
        let (lo, hi) = (-1.0 / SLAVC_TAU, 1.0 / SLAVC_TAU);
        Protocol {
            name: "avgn-multi".into(),
            upsample: Upsample::TorchBicubic {
                align_corners: false,
            },
            normalisation: Normalisation::FixedRangeThenMinMax { lo, hi },
            binarisation: Binarisation::EzTopHalf,
            scope: Scope::PerTile,
            mosaic: MosaicAxis::Horizontal,
            gt_merge: GtMerge::Count,
            box_reading: BoxReading::XywhAsXyxy,
            assignment: Assignment::OwnFrame,
            success_thresholds: vec![0.1, 0.3, 0.5],
            comparison: Comparison::Gt,
            pixel_ap: Some(PixelApFlavour::BinaryLabelsGtScores),
            piap: false,
            iou_threshold: None,
            detection: Some(DetectionSpec {
                lo,
                hi,
                report: DetectionReport::PerSource {
                    precision_threshold: 0.1,
                    f1_ciou_threshold: 0.3,
                    default_confidence: 0.5,
                },
            }),
        }
    }

    /// DSOL `eval_duet.py`: class-map selection, `u > 0.2·max u` (see the module doc).
    pub fn dsol() -> Self {
        Protocol {
            name: "dsol".into(),
            upsample: Upsample::CvLinear,
            normalisation: Normalisation::Identity,
            binarisation: Binarisation::RelativeToMax(0.2),
            scope: Scope::PerTile,
            mosaic: MosaicAxis::Vertical,
            gt_merge: GtMerge::Union,
            box_reading: BoxReading::XywhSummed,
            assignment: Assignment::ClassMaps,
            // results[6] and results[10] of the AUC curve: 0.05·6 as Python computes it.
            success_thresholds: vec![auc_thresholds()[6], 0.5],
            comparison: Comparison::Ge,
            pixel_ap: None,
            piap: false,
            iou_threshold: None,
            detection: None,
        }
    }

    /// DSOL `tools.py::cal_ciou` (solo): one map per frame, `u > 0.1·max u`.
    pub fn dsol_solo() -> Self {
        Protocol {
            name: "dsol-solo".into(),
            binarisation: Binarisation::RelativeToMax(0.1),
            assignment: Assignment::SingleMapBoxedOnly,
            success_thresholds: vec![0.5],
            ..Protocol::dsol()
        }
    }

    /// Every name [`Protocol::by_name`] knows.
    pub const NAMES: [&'static str; 11] = [
        "lvs",
        "ezvsl",
        "slavc",
        "slavc-abs",
        "slavc-extended",
        "noprior",
        "oassl",
        "tvsl",
        "avgn-multi",
        "dsol",
        "dsol-solo",
    ];

    /// A named protocol, one of [`Protocol::NAMES`].
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "lvs" => Some(Self::lvs()),
            "ezvsl" => Some(Self::ezvsl()),
            "slavc" => Some(Self::slavc()),
            "slavc-abs" => Some(Self::slavc_abs()),
            "slavc-extended" => Some(Self::slavc_extended()),
            "noprior" => Some(Self::noprior()),
            "oassl" => Some(Self::oassl()),
            "tvsl" => Some(Self::tvsl()),
            "avgn-multi" => Some(Self::avgn_multi()),
            "dsol" => Some(Self::dsol()),
            "dsol-solo" => Some(Self::dsol_solo()),
            _ => None,
        }
    }

    /// True when the protocol reads `cos/τ` maps through a fixed range (see the module doc).
    pub fn has_fixed_range(&self) -> bool {
        matches!(
            self.normalisation,
            Normalisation::FixedRange { .. } | Normalisation::FixedRangeThenMinMax { .. }
        ) || self.detection.is_some()
    }

    /// The protocol for maps `cos/τ` with temperature `tau`: the fixed range `[−1/τ, 1/τ]` of
    /// the normalisation and of the confidence. Protocols without a fixed range are unchanged.
    pub fn with_tau(mut self, tau: f64) -> Self {
        let (lo, hi) = (-1.0 / tau, 1.0 / tau);
        self.normalisation = match self.normalisation {
            Normalisation::FixedRange { .. } => Normalisation::FixedRange { lo, hi },
            Normalisation::FixedRangeThenMinMax { .. } => {
                Normalisation::FixedRangeThenMinMax { lo, hi }
            }
            other => other,
        };
        if let Some(d) = &mut self.detection {
            (d.lo, d.hi) = (lo, hi);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_its_protocol() {
        for name in Protocol::NAMES {
            assert_eq!(
                Protocol::by_name(name).map(|p| p.name),
                Some(name.to_string())
            );
        }
        assert!(Protocol::by_name("slavc_abs").is_none());
    }

    #[test]
    fn slavc_abs_rescales_cos_over_tau_and_keeps_positive_cosines() {
        let p = Protocol::slavc_abs();
        // cos = 0 -> s = 0.5 (kept), cos = 1 -> 1/τ -> 1, cos = −1 -> 0.
        let u =
            crate::map::Map::from_vec(1, 3, vec![0.0, 1.0 / SLAVC_TAU, -1.0 / SLAVC_TAU]).unwrap();
        let s = p.normalisation.apply(&u);
        assert_eq!(s.data, vec![0.5, 1.0, 0.0]);
        assert_eq!(p.binarisation.apply(&s).data, vec![1.0, 1.0, 0.0]);
        assert_eq!(
            p.upsample,
            Upsample::TorchBicubic {
                align_corners: true
            }
        );
    }

    #[test]
    fn with_tau_moves_the_fixed_range_only_where_there_is_one() {
        let p = Protocol::slavc_extended().with_tau(0.5);
        assert_eq!(
            p.normalisation,
            Normalisation::FixedRange { lo: -2.0, hi: 2.0 }
        );
        let d = p.detection.unwrap();
        assert_eq!((d.lo, d.hi), (-2.0, 2.0));
        let a = Protocol::avgn_multi().with_tau(1.0);
        assert_eq!(
            a.normalisation,
            Normalisation::FixedRangeThenMinMax { lo: -1.0, hi: 1.0 }
        );
        assert!(!Protocol::oassl().has_fixed_range());
        assert_eq!(Protocol::oassl().with_tau(0.5), Protocol::oassl());
    }
}
