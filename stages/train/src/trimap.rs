//! LVS trimap: soft foreground and background masks cut from a sound map (docs/method.md §3.1, §3.3).
//!
//! ```text
//! Pos(x) = σ((S(x) − α_p) / ω)
//! Neg(x) = 1 − σ((S(x) − α_n) / ω) = σ(−(S(x) − α_n) / ω)
//! ```
//!
//! with α_p = 0.65, α_n = 0.4 and ω = 0.03 (supplementary §1, following LVS). Pixels between the two thresholds
//! belong to neither mask. `Neg` is evaluated as σ(−z) rather than 1 − σ(z): in f32, 1 − σ(20) rounds to 0,
//! which would make a map whose pixels all exceed 0.9 divide by zero in a masked mean.

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Thresholds and sharpness of the trimap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trimap {
    /// α_p, foreground threshold (0.65, supplementary §1 / LVS).
    pub positive_threshold: f64,
    /// α_n, background threshold (0.4, supplementary §1 / LVS).
    pub negative_threshold: f64,
    /// ω, sigmoid sharpness (0.03, supplementary §1 / LVS).
    pub sharpness: f64,
}

impl Default for Trimap {
    fn default() -> Self {
        Self {
            positive_threshold: 0.65,
            negative_threshold: 0.4,
            sharpness: 0.03,
        }
    }
}

impl Trimap {
    /// `Pos = σ((S − α_p)/ω)`, same shape as `sim`.
    pub fn positive(&self, sim: &Tensor) -> Tensor {
        ((sim - self.positive_threshold) / self.sharpness).sigmoid()
    }

    /// `Neg = σ(−(S − α_n)/ω)`, same shape as `sim`.
    pub fn negative(&self, sim: &Tensor) -> Tensor {
        ((sim - self.negative_threshold) / -self.sharpness).sigmoid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn masks_at_thresholds_and_far_away() {
        let t = Trimap::default();
        let s = Tensor::from_slice(&[0.65f64, 0.4, 1.0, -1.0, 0.95]);
        let pos = Vec::<f64>::try_from(t.positive(&s)).unwrap();
        let neg = Vec::<f64>::try_from(t.negative(&s)).unwrap();
        assert!((pos[0] - 0.5).abs() < 1e-12);
        assert!((neg[1] - 0.5).abs() < 1e-12);
        // σ((1 − 0.65)/0.03) = 1/(1 + e^(−35/3))
        assert!((pos[2] - 1.0 / (1.0 + (-35.0f64 / 3.0).exp())).abs() < 1e-12);
        assert!(pos[3] < 1e-20 && neg[3] > 1.0 - 1e-12);
        // In f32 the background mask stays strictly positive where 1 − σ would round to 0.
        let neg32 = t.negative(&Tensor::from_slice(&[0.95f32]).to_kind(Kind::Float));
        let v = f64::try_from(neg32.squeeze()).unwrap();
        assert!(v > 0.0 && (v - 1.0 / (1.0 + (55.0f64 / 3.0).exp())).abs() < 1e-12);
        assert!(neg[4] > 0.0);
    }
}
