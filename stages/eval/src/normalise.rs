//! Per-map normalisation applied after upsampling, as each evaluator writes it.

use crate::map::Map;
use serde::{Deserialize, Serialize};

/// How the upsampled map `u` becomes the score map `p`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Normalisation {
    /// `p = (u − min u)/(max u − min u)`; a constant map is returned unchanged
    /// (`normalize_img` of LVS, EZ-VSL, NoPrior).
    MinMax,
    /// LVS/SSL-TIE: `p = 1 − minmax(−u)`; equal to `minmax(u)` except on a constant map `c`,
    /// where `minmax` passes `−c` through and `p = 1 + c`.
    LvsNegated,
    /// T-VSL `inv_normalize_img`: `p = 1 − minmax(u)` (constant map: `1 − c`).
    InvertedMinMax,
    /// Fixed range `p = (u − lo)/(hi − lo)` (SLAVC/AVGN absolute scores, e.g. lo = −1/τ, hi = 1/τ).
    FixedRange { lo: f64, hi: f64 },
    /// AVGN `validate_multi` / `--relative_prediction`: the fixed range, then `normalize_img`
    /// (min-max, constant map passed through). Equal to `MinMax` up to rounding, which can merge
    /// near-ties at the median; kept in two steps to round as AVGN does.
    FixedRangeThenMinMax { lo: f64, hi: f64 },
    /// No normalisation.
    Identity,
}

/// numpy's `normalize_img`: min-max unless `max − min == 0`.
fn min_max(data: &[f64]) -> Vec<f64> {
    let lo = data.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi - lo == 0.0 {
        return data.to_vec();
    }
    data.iter().map(|v| (v - lo) / (hi - lo)).collect()
}

/// `(x − xmin)/(xmax − xmin)` with given bounds (SLAVC/AVGN `min_max_norm`).
fn fixed_range(data: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    data.iter().map(|v| (v - lo) / (hi - lo)).collect()
}

impl Normalisation {
    /// Applies the normalisation to a whole map.
    pub fn apply(self, u: &Map) -> Map {
        let data = match self {
            Normalisation::MinMax => min_max(&u.data),
            Normalisation::LvsNegated => {
                let neg: Vec<f64> = u.data.iter().map(|v| -v).collect();
                min_max(&neg).into_iter().map(|v| 1.0 - v).collect()
            }
            Normalisation::InvertedMinMax => {
                min_max(&u.data).into_iter().map(|v| 1.0 - v).collect()
            }
            Normalisation::FixedRange { lo, hi } => fixed_range(&u.data, lo, hi),
            Normalisation::FixedRangeThenMinMax { lo, hi } => {
                min_max(&fixed_range(&u.data, lo, hi))
            }
            Normalisation::Identity => u.data.clone(),
        };
        Map {
            height: u.height,
            width: u.width,
            data,
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
    fn min_max_and_constant_passthrough() {
        assert_eq!(
            Normalisation::MinMax.apply(&m(&[2.0, 4.0, 3.0])).data,
            vec![0.0, 1.0, 0.5]
        );
        assert_eq!(
            Normalisation::MinMax.apply(&m(&[0.25, 0.25])).data,
            vec![0.25, 0.25]
        );
    }

    #[test]
    fn lvs_negated_constant_map_becomes_one_plus_c() {
        // 1 − (−0.25) = 1.25: every pixel is later selected by the LVS rule.
        assert_eq!(
            Normalisation::LvsNegated.apply(&m(&[0.25, 0.25])).data,
            vec![1.25, 1.25]
        );
        assert_eq!(
            Normalisation::LvsNegated.apply(&m(&[2.0, 4.0, 3.0])).data,
            vec![0.0, 1.0, 0.5]
        );
    }

    #[test]
    fn inverted_and_fixed_range() {
        assert_eq!(
            Normalisation::InvertedMinMax.apply(&m(&[2.0, 4.0])).data,
            vec![1.0, 0.0]
        );
        let f = Normalisation::FixedRange { lo: -1.0, hi: 3.0 };
        assert_eq!(f.apply(&m(&[-1.0, 1.0, 3.0])).data, vec![0.0, 0.5, 1.0]);
        // [0, 0.5, 0.75] after the range, then min-max over [0, 0.75].
        let g = Normalisation::FixedRangeThenMinMax { lo: -1.0, hi: 3.0 };
        assert_eq!(
            g.apply(&m(&[-1.0, 1.0, 2.0])).data,
            vec![0.0, 0.5 / 0.75, 1.0]
        );
        // A constant map stays the fixed-range value.
        assert_eq!(g.apply(&m(&[1.0, 1.0])).data, vec![0.5, 0.5]);
    }
}
