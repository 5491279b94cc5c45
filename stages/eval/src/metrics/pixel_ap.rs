//! Pixel-level average precision, `sklearn.metrics.average_precision_score` on flattened maps.
//!
//! `AP = Σ_k (R_k − R_{k−1})·P_k` over the distinct score thresholds in decreasing order
//! (ties grouped, `R_0 = 0`), evaluated as sklearn does: `−Σ diff(recall)·precision[:-1]` over
//! the increasing-threshold arrays, summed pairwise like numpy. With a binary score this is
//! `r·p + (1 − r)·ρ` (ρ = positive rate), never below ρ. Labels must be 0/1 (sklearn raises
//! otherwise, e.g. on Flickr's 0.5 consensus pixels); with no positive label the AP is 0
//! (sklearn ≥ 1.1 sets recall to 1 and warns).
//!
//! Which map is the label and which the score differs between evaluators: [`PixelApFlavour`].

use crate::error::EvalError;
use crate::summation::pairwise_sum;
use serde::{Deserialize, Serialize};

/// Which arrays an evaluator passes to `average_precision_score`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PixelApFlavour {
    /// NoPrior `CAP`/`PIAP`: `AP(y_true = G, y_score = B)` (B after the LVS rule).
    GtLabelsBinaryScores,
    /// AVGN `PIAP`: `AP(y_true = B, y_score = G)` (arguments swapped).
    BinaryLabelsGtScores,
    /// T-VSL: `AP(y_true = G, y_score = p)` with the continuous normalised map; a source whose
    /// G is not binary is dropped (T-VSL's bare `try/except`), and counted in the report.
    GtLabelsContinuousScores,
}

/// `average_precision_score(labels, scores)` for one flattened map.
pub fn average_precision(labels: &[f64], scores: &[f64]) -> Result<f64, EvalError> {
    if let Some(&bad) = labels.iter().find(|&&v| v != 0.0 && v != 1.0) {
        return Err(EvalError::NonBinaryLabels { value: bad });
    }
    let positives: f64 = labels.iter().sum();
    // (tps, fps) at the end of each group of equal scores, highest score first.
    let counts = if scores.iter().all(|&s| s == 0.0 || s == 1.0) {
        binary_counts(labels, scores)
    } else {
        sorted_counts(labels, scores)
    };
    let m = counts.len();
    let precision: Vec<f64> = counts.iter().map(|&(t, f)| t / (t + f)).collect();
    let recall: Vec<f64> = counts
        .iter()
        .map(|&(t, _)| if positives == 0.0 { 1.0 } else { t / positives })
        .collect();
    // sklearn order: increasing threshold, then recall 0 appended.
    let terms: Vec<f64> = (0..m)
        .map(|j| {
            let k = m - 1 - j;
            let next = if j + 1 < m { recall[k - 1] } else { 0.0 };
            (next - recall[k]) * precision[k]
        })
        .collect();
    Ok(-pairwise_sum(&terms))
}

fn binary_counts(labels: &[f64], scores: &[f64]) -> Vec<(f64, f64)> {
    let (mut tp1, mut n1, mut tp0, mut n0) = (0.0, 0.0, 0.0, 0.0);
    for (&l, &s) in labels.iter().zip(scores) {
        if s == 1.0 {
            tp1 += l;
            n1 += 1.0;
        } else {
            tp0 += l;
            n0 += 1.0;
        }
    }
    let mut out = Vec::with_capacity(2);
    if n1 > 0.0 {
        out.push((tp1, n1 - tp1));
    }
    if n0 > 0.0 {
        let (t, n) = (tp1 + tp0, n1 + n0);
        out.push((t, n - t));
    }
    out
}

fn sorted_counts(labels: &[f64], scores: &[f64]) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out = Vec::new();
    let (mut tp, mut seen) = (0.0, 0.0);
    for (pos, &i) in order.iter().enumerate() {
        tp += labels[i];
        seen += 1.0;
        let last = pos + 1 == order.len() || scores[order[pos + 1]] != scores[i];
        if last {
            out.push((tp, seen - tp));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_score_equals_r_p_plus_base_rate() {
        // labels [1,0,1,0], scores [1,1,0,0]: (p, r) = (.5, .5) then (.5, 1) -> .25 + .25.
        let ap = average_precision(&[1.0, 0.0, 1.0, 0.0], &[1.0, 1.0, 0.0, 0.0]).unwrap();
        assert_eq!(ap, 0.5);
        // G = {0,1} of 8, B = {0,2}: p = .5, r = .5, ρ = .25 -> .25 + .5·.25 = .375.
        let g = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let b = [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(average_precision(&g, &b).unwrap(), 0.375);
    }

    #[test]
    fn continuous_scores_with_ties() {
        // scores .9 (pos), .5 (neg), .5 (pos), .1 (neg): thresholds .9 -> (1,0); .5 -> (2,1);
        // .1 -> (2,2). AP = .5·1 + .5·(2/3) + 0 = 5/6.
        let ap = average_precision(&[1.0, 0.0, 1.0, 0.0], &[0.9, 0.5, 0.5, 0.1]).unwrap();
        assert!((ap - 5.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn constant_score_gives_base_rate_and_no_positive_gives_zero() {
        let ap = average_precision(&[1.0, 0.0, 0.0, 0.0], &[1.0; 4]).unwrap();
        assert_eq!(ap, 0.25);
        assert_eq!(
            average_precision(&[0.0; 4], &[1.0, 0.0, 1.0, 0.0]).unwrap(),
            0.0
        );
    }

    #[test]
    fn consensus_labels_are_rejected() {
        assert!(matches!(
            average_precision(&[0.5, 1.0], &[1.0, 0.0]),
            Err(EvalError::NonBinaryLabels { value }) if value == 0.5
        ));
    }
}
