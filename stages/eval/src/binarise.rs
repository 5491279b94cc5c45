//! Binarisation rules: the two different "top 50 %" rules and the absolute/relative thresholds.

use crate::map::Map;
use serde::{Deserialize, Serialize};

/// How a score map `p` becomes the binary prediction `B`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Binarisation {
    /// LVS/SSL-TIE/NoPrior/SIRA (strict median): with `t = sort(p)[⌊N/2⌋]`,
    /// `p[p > t] = 1; p[p < 1] = 0; B = p ≥ 0.5`, i.e. `B = (p > t) ∨ (p ≥ 1)`.
    /// Ties at `t` go to 0, but pixels ≥ 1 always survive (plateau at the maximum).
    LvsTopHalf,
    /// EZ-VSL/FNAC/SLAVC-relative/AVGN (non-strict median): `B = p ≥ sort(p)[⌊N/2⌋]`.
    EzTopHalf,
    /// `B = p ≥ t` (SLAVC/AVGN absolute 0.5, T-VSL `ciou_thr`).
    Absolute(f64),
    /// DSOL: `B = p > frac · max(p)`.
    RelativeToMax(f64),
}

/// `sort(p)[⌊N/2⌋]`, the median index every peer uses (`int(H·W/2)`).
pub fn median_threshold(p: &[f64]) -> f64 {
    let mut sorted = p.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[p.len() / 2]
}

impl Binarisation {
    /// Returns the binary map (values 0.0 / 1.0).
    pub fn apply(self, p: &Map) -> Map {
        let keep: Box<dyn Fn(f64) -> bool> = match self {
            Binarisation::LvsTopHalf => {
                let t = median_threshold(&p.data);
                Box::new(move |v| v > t || v >= 1.0)
            }
            Binarisation::EzTopHalf => {
                let t = median_threshold(&p.data);
                Box::new(move |v| v >= t)
            }
            Binarisation::Absolute(t) => Box::new(move |v| v >= t),
            Binarisation::RelativeToMax(frac) => {
                let hi = p.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                Box::new(move |v| v > frac * hi)
            }
        };
        Map {
            height: p.height,
            width: p.width,
            data: p
                .data
                .iter()
                .map(|&v| if keep(v) { 1.0 } else { 0.0 })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &[f64]) -> Map {
        Map::from_vec(1, v.len(), v.to_vec()).unwrap()
    }

    #[test]
    fn strict_and_non_strict_median_on_ties() {
        // N = 6, sorted = [0, .2, .5, .5, .5, 1], t = sorted[3] = 0.5.
        let p = m(&[0.5, 0.0, 0.5, 1.0, 0.2, 0.5]);
        // LVS: only p > 0.5 (and p >= 1) -> the single 1.0.
        assert_eq!(
            Binarisation::LvsTopHalf.apply(&p).data,
            vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        );
        // EZ-VSL: p >= 0.5 -> four pixels.
        assert_eq!(
            Binarisation::EzTopHalf.apply(&p).data,
            vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
        );
    }

    #[test]
    fn plateau_at_max_survives_lvs_rule() {
        // sorted = [0, 1, 1, 1], t = sorted[2] = 1: nothing is > t, but all 1.0 pixels stay.
        let p = m(&[1.0, 0.0, 1.0, 1.0]);
        assert_eq!(
            Binarisation::LvsTopHalf.apply(&p).data,
            vec![1.0, 0.0, 1.0, 1.0]
        );
    }

    #[test]
    fn constant_maps() {
        // Constant c < 1 (not normalised): LVS selects nothing, EZ-VSL everything.
        let p = m(&[0.25; 4]);
        assert_eq!(Binarisation::LvsTopHalf.apply(&p).data, vec![0.0; 4]);
        assert_eq!(Binarisation::EzTopHalf.apply(&p).data, vec![1.0; 4]);
        // Constant 1.25 (LVS negated normalisation of 0.25): everything.
        assert_eq!(
            Binarisation::LvsTopHalf.apply(&m(&[1.25; 4])).data,
            vec![1.0; 4]
        );
    }

    #[test]
    fn absolute_and_relative() {
        let p = m(&[0.1, 0.3, 0.6]);
        assert_eq!(
            Binarisation::Absolute(0.3).apply(&p).data,
            vec![0.0, 1.0, 1.0]
        );
        // 0.2 * 0.6 = 0.12 -> strict: 0.1 out.
        assert_eq!(
            Binarisation::RelativeToMax(0.2).apply(&p).data,
            vec![0.0, 1.0, 1.0]
        );
    }
}
