//! Success rate at a cIoU threshold and the 21-point AUC (LVS `test.py`, EZ-VSL
//! `finalize_AUC`, NoPrior `on_test_epoch_end`).
//!
//! `SR(t) = |{n : cIoU_n ≥ t}| / N`, thresholds `t_i = 0.05·i` computed in f64
//! (`0.15000000000000002`, `0.30000000000000004`, …), and
//! `AUC = Σ_i (t_{i+1} − t_i)·(SR(t_i) + SR(t_{i+1}))/2` (`sklearn.metrics.auc` = `np.trapz`,
//! summed pairwise like numpy). AVGN/T-VSL `precision_at_*` compare with `>` instead: see
//! [`Comparison`].

use crate::summation::pairwise_sum;
use serde::{Deserialize, Serialize};

/// How a per-sample cIoU is compared with a success threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// `cIoU ≥ t` (LVS, EZ-VSL, NoPrior, SLAVC `Precision`).
    Ge,
    /// `cIoU > t` (AVGN / T-VSL `precision_at_{10,30,50}`).
    Gt,
}

impl Comparison {
    fn passes(self, v: f64, t: f64) -> bool {
        match self {
            Comparison::Ge => v >= t,
            Comparison::Gt => v > t,
        }
    }
}

/// Fraction of entries passing threshold `t` (`np.sum(x >= t) / len(x)`; NaN never passes).
/// NaN for an empty list, as numpy's `0/0`.
pub fn success_rate(cious: &[f64], t: f64, cmp: Comparison) -> f64 {
    let hits = cious.iter().filter(|&&v| cmp.passes(v, t)).count();
    hits as f64 / cious.len() as f64
}

/// The 21 thresholds `0.05·i`, i = 0..=20, as Python computes them.
pub fn auc_thresholds() -> [f64; 21] {
    let mut t = [0.0; 21];
    for (i, v) in t.iter_mut().enumerate() {
        *v = 0.05 * i as f64;
    }
    t
}

/// Area under the success-rate curve over `0.05·i`, compared with `≥` as every peer does.
pub fn auc21(cious: &[f64]) -> f64 {
    let x = auc_thresholds();
    let y: Vec<f64> = x
        .iter()
        .map(|&t| success_rate(cious, t, Comparison::Ge))
        .collect();
    // np.trapz: d = diff(x); (d * (y[1:] + y[:-1]) / 2.0).sum()
    let terms: Vec<f64> = (0..20)
        .map(|i| (x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2.0)
        .collect();
    pairwise_sum(&terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_f64_products() {
        let t = auc_thresholds();
        assert_eq!(t[3], 0.15000000000000002);
        assert_eq!(t[6], 0.30000000000000004);
        assert_eq!(t[12], 0.6000000000000001);
        assert_eq!(t[20], 1.0);
    }

    #[test]
    fn literal_point_three_differs_from_auc_grid() {
        // A cIoU of exactly 0.3 passes NoPrior's literal `>= 0.3` but not `>= 0.05*6`.
        let c = [0.3];
        assert_eq!(success_rate(&c, 0.3, Comparison::Ge), 1.0);
        assert_eq!(success_rate(&c, auc_thresholds()[6], Comparison::Ge), 0.0);
        assert_eq!(success_rate(&c, 0.3, Comparison::Gt), 0.0);
    }

    #[test]
    fn auc_of_hand_cases() {
        // All perfect: SR = 1 everywhere -> AUC = Σ 0.05-ish widths = 1 (up to f64 grid).
        let a = auc21(&[1.0, 1.0]);
        assert!((a - 1.0).abs() < 1e-15);
        // All zero: SR(0) = 1, else 0 -> one trapezoid (0.05 - 0)*(1 + 0)/2 = 0.025.
        assert_eq!(auc21(&[0.0]), 0.025);
        // cIoU 0.5: SR = 1 for i ≤ 10 (0.05*10 = 0.5 exactly), 0 after.
        // 10 full steps ≈ 0.5 plus a half step 0.025 -> 0.525.
        assert!((auc21(&[0.5]) - 0.525).abs() < 1e-15);
        // NaN entries count in N but never pass.
        assert_eq!(success_rate(&[f64::NAN, 1.0], 0.0, Comparison::Ge), 0.5);
    }
}
