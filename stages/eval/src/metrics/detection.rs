//! Detection-style metrics of SLAVC's and AVGN's `EvaluatorFull` (`utils.py`): a sample is a
//! detection with a confidence, right when its cIoU passes a threshold.
//!
//! * Confidence of a sample: the mean of the top quarter of its fixed-range scores
//!   `s = (u − lo)/(hi − lo)` (`np.sort(s.flatten())[-n//4:].mean()`, i.e. the top `⌈n/4⌉`).
//! * `calc_precision_recall(θ, τ)`: a sample with no GT box (`nb = 0`, a non-sounding pair) and
//!   `conf ≥ θ` is a false positive; with boxes, `conf ≥ θ` is a true positive when `cIoU ≥ τ`
//!   and a false positive otherwise, `conf < θ` a false negative. `P = TP/(TP+FP)`,
//!   `R = TP/(TP+FN)`, each 1 when its denominator is 0. "Precision" is `P` at `θ = −1000`.
//! * `calc_ap`: thresholds `np.sort(conf)[:-1][::-k]`, `k = max(1, n // 200)` (descending from the
//!   second largest confidence), `P̂_i = max_{j ≥ i} P_j`, `AP = Σ_{i < m−1} P̂_i (R_{i+1} − R_i)`,
//!   summed left to right (Python's `sum` before 3.12); no recall-0 anchor.
//! * F1 curve: `θ ∈ sorted(conf)[::max(1, n // 10)]` (ascending), `F1 = 2·R·P/(R+P)` (0 when
//!   `R + P = 0`); SLAVC prints the curve, its maximum is the reported max-F1.
//! * AUC: the usual 21-point AUC over the samples with a box only.
//!
//! Scores follow the f64 convention of the crate: a float64 map reproduces the evaluator on
//! float64 arrays (SLAVC itself runs these on float32 network outputs).

use crate::map::Map;
use crate::metrics::auc::auc21;
use crate::summation::numpy_mean;
use serde::{Deserialize, Serialize};

/// Which detection report an evaluator prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DetectionReport {
    /// SLAVC `EvaluatorFull.finalize_stats`: Precision, AP, F1 curve and AUC over all samples and
    /// over the visible ones (`nb > 0`), at each cIoU threshold (SLAVC's default `(0.5, 0.75)`).
    FinalizeStats { ciou_thresholds: Vec<f64> },
    /// AVGN `train.py::validate_multi`: one evaluator per source index, each giving
    /// `precision_at_10` (visible samples, `cIoU > precision_threshold`), the mean PIAP and
    /// `f1_at_30` (`θ = default_confidence`, `τ = f1_ciou_threshold`); the report averages each
    /// over the sources.
    PerSource {
        precision_threshold: f64,
        f1_ciou_threshold: f64,
        default_confidence: f64,
    },
}

/// The confidence of a protocol with detection metrics: fixed range of the scores it is read on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionSpec {
    /// `s = (u − lo)/(hi − lo)` (SLAVC/AVGN `min_max_norm(x, −1/τ, 1/τ)`).
    pub lo: f64,
    pub hi: f64,
    pub report: DetectionReport,
}

/// The detection side of one entry: its confidence and the number of GT boxes of its sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub confidence: f64,
    /// `nb`: boxes of the sample (0 for a non-sounding pair).
    pub gt_boxes: usize,
}

impl DetectionSpec {
    /// The detection record of an upsampled map `u` (224x224) whose sample has `gt_boxes` boxes.
    pub fn detect(&self, u: &Map, gt_boxes: usize) -> Detection {
        let s: Vec<f64> = u
            .data
            .iter()
            .map(|v| (v - self.lo) / (self.hi - self.lo))
            .collect();
        Detection {
            confidence: top_quarter_mean(&s),
            gt_boxes,
        }
    }
}

/// `np.sort(s)[-n//4:].mean()`: Python's `-n//4` is `−⌈n/4⌉`, so the top `⌈n/4⌉` values.
pub fn top_quarter_mean(s: &[f64]) -> f64 {
    let mut sorted = s.to_vec();
    sorted.sort_by(f64::total_cmp);
    let top = s.len().div_ceil(4);
    numpy_mean(&sorted[s.len() - top..])
}

/// One sample as the evaluator lists it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub gt_boxes: usize,
    pub ciou: f64,
    pub confidence: f64,
}

/// `calc_precision_recall(bb, ciou, conf, θ, τ)`.
pub fn precision_recall(samples: &[Scored], conf_thr: f64, ciou_thr: f64) -> (f64, f64) {
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for s in samples {
        let detected = s.confidence >= conf_thr;
        if s.gt_boxes == 0 {
            fp += usize::from(detected);
        } else if !detected {
            fneg += 1;
        } else if s.ciou >= ciou_thr {
            tp += 1;
        } else {
            fp += 1;
        }
    }
    let ratio = |num: usize, den: usize| {
        if den == 0 {
            1.0
        } else {
            num as f64 / den as f64
        }
    };
    (ratio(tp, tp + fp), ratio(tp, tp + fneg))
}

fn sorted_confidences(samples: &[Scored]) -> Vec<f64> {
    let mut c: Vec<f64> = samples.iter().map(|s| s.confidence).collect();
    c.sort_by(f64::total_cmp);
    c
}

/// `calc_ap(bb, ciou, conf, τ)` (see the module doc).
pub fn average_precision(samples: &[Scored], ciou_thr: f64) -> f64 {
    let conf = sorted_confidences(samples);
    let skip = (samples.len() / 200).max(1);
    let below_max = &conf[..conf.len().saturating_sub(1)];
    let (precision, recall): (Vec<f64>, Vec<f64>) = below_max
        .iter()
        .rev()
        .step_by(skip)
        .map(|&t| precision_recall(samples, t, ciou_thr))
        .unzip();
    let mut envelope = precision.clone();
    for i in (0..envelope.len().saturating_sub(1)).rev() {
        envelope[i] = envelope[i].max(envelope[i + 1]);
    }
    let mut ap = 0.0;
    for i in 0..envelope.len().saturating_sub(1) {
        ap += envelope[i] * (recall[i + 1] - recall[i]);
    }
    ap
}

/// `2·r·p/(r + p)`, 0 when `r + p = 0`, as SLAVC writes it.
pub fn f1(p: f64, r: f64) -> f64 {
    if r + p > 0.0 {
        2.0 * r * p / (r + p)
    } else {
        0.0
    }
}

/// The F1 curve of `finalize_stats` over `sorted(conf)[::max(1, n // 10)]`.
pub fn f1_curve(samples: &[Scored], ciou_thr: f64) -> Vec<f64> {
    let conf = sorted_confidences(samples);
    conf.iter()
        .step_by((samples.len() / 10).max(1))
        .map(|&t| {
            let (p, r) = precision_recall(samples, t, ciou_thr);
            f1(p, r)
        })
        .collect()
}

/// `cal_auc`: the 21-point AUC over the samples with at least one box.
pub fn visible_auc(samples: &[Scored]) -> f64 {
    let cious: Vec<f64> = samples
        .iter()
        .filter(|s| s.gt_boxes > 0)
        .map(|s| s.ciou)
        .collect();
    auc21(&cious)
}

/// Which samples a statistic runs over (`filter_subset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subset {
    /// Every sample (`bb >= 0`).
    All,
    /// Samples with a box (`bb > 0`).
    Visible,
}

/// One `finalize_stats` block: `Precision-`, `AP-`, `F1-` and `AUC-<subset>@<τ>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionStats {
    pub subset: Subset,
    pub ciou_threshold: f64,
    pub samples: usize,
    pub precision: f64,
    pub ap: f64,
    pub f1: Vec<f64>,
    /// Maximum of the F1 curve (NaN for an empty subset).
    pub max_f1: f64,
    pub auc: f64,
}

/// `finalize_stats` for one subset and cIoU threshold; every value NaN for an empty subset.
pub fn finalize_stats(samples: &[Scored], subset: Subset, ciou_thr: f64) -> DetectionStats {
    let picked: Vec<Scored> = samples
        .iter()
        .filter(|s| subset == Subset::All || s.gt_boxes > 0)
        .copied()
        .collect();
    if picked.is_empty() {
        return DetectionStats {
            subset,
            ciou_threshold: ciou_thr,
            samples: 0,
            precision: f64::NAN,
            ap: f64::NAN,
            f1: Vec::new(),
            max_f1: f64::NAN,
            auc: f64::NAN,
        };
    }
    let f1 = f1_curve(&picked, ciou_thr);
    DetectionStats {
        subset,
        ciou_threshold: ciou_thr,
        samples: picked.len(),
        precision: precision_recall(&picked, -1000.0, ciou_thr).0,
        ap: average_precision(&picked, ciou_thr),
        max_f1: f1.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        f1,
        auc: visible_auc(&picked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(gt_boxes: usize, ciou: f64, confidence: f64) -> Scored {
        Scored {
            gt_boxes,
            ciou,
            confidence,
        }
    }

    #[test]
    fn top_quarter_takes_the_ceiling_like_python_floor_division() {
        // n = 5: -5//4 = -2, the top two values.
        assert_eq!(top_quarter_mean(&[5.0, 1.0, 4.0, 2.0, 3.0]), 4.5);
        assert_eq!(top_quarter_mean(&[1.0, 2.0, 3.0, 4.0]), 4.0);
    }

    #[test]
    fn precision_recall_counts_non_sounding_detections_as_false_positives() {
        let v = [
            s(1, 0.6, 0.9),
            s(0, f64::NAN, 0.8),
            s(2, 0.2, 0.7),
            s(1, 0.9, 0.1),
        ];
        // θ = 0.5: TP 1, FP 2 (silent, wrong place), FN 1.
        assert_eq!(precision_recall(&v, 0.5, 0.5), (1.0 / 3.0, 0.5));
        // θ above every confidence: nothing detected, P = 1 by convention, R = 0.
        assert_eq!(precision_recall(&v, 2.0, 0.5), (1.0, 0.0));
        // Only silent samples, none detected: both undefined -> 1.
        assert_eq!(precision_recall(&[s(0, 0.0, 0.1)], 0.5, 0.5), (1.0, 1.0));
    }

    /// Confidences .9 .8 .7 .1: a found source, a silent sample, a missed pair of boxes, a found one.
    fn four_samples() -> [Scored; 4] {
        [
            s(1, 0.6, 0.9),
            s(0, 0.0, 0.8),
            s(2, 0.2, 0.7),
            s(1, 0.9, 0.1),
        ]
    }

    #[test]
    fn ap_by_hand() {
        // sorted conf [.1 .7 .8 .9]; thresholds [.8 .7 .1] (max dropped, descending).
        let v = four_samples();
        // θ=.8: TP 1 (.9), FP 1 (silent), FN 2 -> P .5, R 1/3.
        // θ=.7: TP 1, FP 2, FN 1 -> P 1/3, R .5.
        // θ=.1: TP 2, FP 2, FN 0 -> P .5, R 1.
        // envelope [.5, .5, .5]; AP = .5·(.5 − 1/3) + .5·(1 − .5).
        let want = 0.0 + 0.5 * (0.5 - 1.0 / 3.0) + 0.5 * (1.0 - 0.5);
        assert_eq!(average_precision(&v, 0.5), want);
        // One sample: no threshold below the maximum, AP 0.
        assert_eq!(average_precision(&v[..1], 0.5), 0.0);
    }

    #[test]
    fn f1_curve_and_stats() {
        let v = four_samples();
        // n = 4 < 10: every sorted confidence. θ=.1: P .5 R 1 -> 2/3; θ=.7: P 1/3 R .5 -> .4;
        // θ=.8: P .5 R 1/3 -> .4; θ=.9: P 1 R 1/3 -> .5.
        let c = f1_curve(&v, 0.5);
        assert_eq!(c.len(), 4);
        assert!((c[0] - 2.0 / 3.0).abs() < 1e-15 && (c[3] - 0.5).abs() < 1e-15);
        let all = finalize_stats(&v, Subset::All, 0.5);
        assert_eq!((all.samples, all.precision), (4, 0.5));
        assert_eq!(all.max_f1, c[0]);
        let vis = finalize_stats(&v, Subset::Visible, 0.5);
        // Visible: 3 samples, at θ = −1000 TP 2 (cIoU .6, .9), FP 1.
        assert_eq!((vis.samples, vis.precision), (3, 2.0 / 3.0));
        assert_eq!(vis.auc, all.auc);
        let none = finalize_stats(&[s(0, 0.0, 0.3)], Subset::Visible, 0.5);
        assert!(none.ap.is_nan() && none.f1.is_empty());
    }
}
