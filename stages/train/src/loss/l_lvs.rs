//! L_LVS, the trimap contrastive loss of "Localizing Visual Sounds the Hard Way" (docs/method.md §3.1).
//!
//! With `S_ij(x) = cos(F_v,i(x), l_a,j)`, the trimap masks `Pos_i = σ((S_ii − α_p)/ω)`,
//! `Neg_i = 1 − σ((S_ii − α_n)/ω)`, `PosAll_ij = σ((S_ij − α_p)/ω)` and soft-masked means
//!
//! ```text
//! P_i  = Σ_x Pos_i S_ii / Σ_x Pos_i                (positive)
//! H_i  = Σ_x Neg_i S_ii / Σ_x Neg_i                (hard negative: background of the own frame)
//! N_ij = Σ_x PosAll_ij S_ij / Σ_x PosAll_ij, j ≠ i (other clips' audio)
//!
//! L_LVS = −(1/B) Σ_i log [ e^{P_i/T} / (e^{P_i/T} + Σ_{j≠i} e^{N_ij/T} + e^{H_i/T}) ],   T = 0.07
//! ```
//!
//! The released LVS/NoPrior code removes j = i by scaling that logit by −99, which equals exclusion only while
//! N_ii > 0; here it is excluded exactly.

use crate::error::{Result, TrainError};
use crate::shape::expect_dims;
use crate::trimap::Trimap;
use tch::{Kind, Tensor};

/// L_LVS from the all-pairs sound map `sim_all [B, B, h, w]` (`sim_all[i, j] = S_ij`, see
/// [`crate::model::sound_map::sound_map_all`]); returns a scalar.
pub fn lvs_contrastive(sim_all: &Tensor, trimap: &Trimap, temperature: f64) -> Result<Tensor> {
    let s = expect_dims(
        "lvs_contrastive",
        "sim_all",
        sim_all,
        &[None, None, None, None],
    )?;
    let b = s[0];
    if s[1] != b || b == 0 {
        return Err(TrainError::Shape {
            op: "lvs_contrastive",
            input: "sim_all",
            expected: "[B, B, h, w] with B >= 1".into(),
            actual: s,
        });
    }
    let flat = sim_all.view([b, b, -1]);
    let own = flat.diagonal(0, 0, 1).transpose(0, 1); // [B, N]: S_ii
    let masked_mean = |mask: Tensor, sim: &Tensor| {
        (&mask * sim).sum_dim_intlist(-1i64, false, None::<Kind>)
            / mask.sum_dim_intlist(-1i64, false, None::<Kind>)
    };
    let positive = masked_mean(trimap.positive(&own), &own); // [B]
    let hard = masked_mean(trimap.negative(&own), &own); // [B]
    let others = masked_mean(trimap.positive(&flat), &flat); // [B, B]
    let eye = Tensor::eye(b, (Kind::Bool, sim_all.device()));
    let others = others.masked_fill(&eye, f64::NEG_INFINITY);
    let logits = Tensor::cat(&[positive.unsqueeze(1), others, hard.unsqueeze(1)], 1) / temperature;
    Ok((logits.logsumexp(1, false) - positive / temperature).mean(sim_all.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::reference::{self, Tri};

    fn sim_tensor(sim: &[Vec<Vec<f64>>]) -> Tensor {
        let b = sim.len() as i64;
        let n = sim[0][0].len() as i64;
        let flat: Vec<f64> = sim.iter().flatten().flatten().cloned().collect();
        Tensor::from_slice(&flat).view([b, b, 1, n])
    }

    #[test]
    fn hand_computed_two_clip_case() {
        // Own maps [0.95, 0.05]: Pos picks 0.95 and Neg picks 0.05 (leaks of σ(−20) ≈ 2e-9 are below the
        // tolerance), so P = 0.95 and H = 0.05. Cross maps are constant, so N_01 = 0.95 and N_10 = −0.5.
        // With T = 1: L = ½[log(2e^0.95 + e^0.05) − 0.95 + log(e^0.95 + e^−0.5 + e^0.05) − 0.95].
        let sim = vec![
            vec![vec![0.95, 0.05], vec![0.95, 0.95]],
            vec![vec![-0.5, -0.5], vec![0.95, 0.05]],
        ];
        let got =
            f64::try_from(lvs_contrastive(&sim_tensor(&sim), &Trimap::default(), 1.0).unwrap())
                .unwrap();
        let e = f64::exp;
        let want = 0.5
            * ((2.0 * e(0.95) + e(0.05)).ln() - 0.95 + (e(0.95) + e(-0.5) + e(0.05)).ln() - 0.95);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn matches_f64_reference_near_the_thresholds() {
        // Values spread over [−1, 1), many inside the trimap's soft band.
        let vals = reference::lcg_values(3 * 3 * 5, 7);
        let sim: Vec<Vec<Vec<f64>>> = vals
            .chunks(15)
            .map(|r| r.chunks(5).map(|x| x.to_vec()).collect())
            .collect();
        let got =
            f64::try_from(lvs_contrastive(&sim_tensor(&sim), &Trimap::default(), 0.07).unwrap())
                .unwrap();
        let want = reference::lvs(&sim, &Tri(0.65, 0.4, 0.03), 0.07);
        assert!(
            (got - want).abs() < 1e-9 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }

    #[test]
    fn gradient_is_finite_and_nonzero() {
        let vals = reference::lcg_values(2 * 2 * 9, 3);
        let sim = Tensor::from_slice(&vals)
            .view([2, 2, 3, 3])
            .set_requires_grad(true);
        let loss = lvs_contrastive(&sim, &Trimap::default(), 0.07).unwrap();
        loss.backward();
        let g = Vec::<f64>::try_from(sim.grad().flatten(0, -1)).unwrap();
        assert!(g.iter().all(|v| v.is_finite()));
        assert!(g.iter().map(|v| v.abs()).sum::<f64>() > 1e-6);
    }

    #[test]
    fn non_square_input_is_named() {
        let sim = Tensor::zeros([2, 3, 2, 2], (Kind::Float, tch::Device::Cpu));
        let err = lvs_contrastive(&sim, &Trimap::default(), 0.07)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`sim_all`"), "{err}");
    }
}
