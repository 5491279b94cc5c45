//! L_oca, object-aware contrastive alignment (docs/method.md §3.3; constants and K > 1 handling per §11.5–6).
//!
//! Masks from the sound map S_a with the LVS trimap, `M^p = σ((S_a − α_p)/ω)`, `M^n = 1 − σ((S_a − α_n)/ω)`,
//! masked average pooling of the visual map, then L2 normalisation:
//!
//! ```text
//! l_v^p = norm(Σ_x M^p(x) F_v(x) / Σ_x M^p(x)),   l_v^n likewise with M^n
//! s(a, b) = cos(a, b) / T
//!
//! L_frg = −(1/B) Σ_i log  e^{s(l_v,i^p, l_r,i^p)} / ( e^{s(l_v,i^p, l_r,i^p)} + e^{s(l_v,i^n, l_r,i^p)}
//!                                                    + Σ_{j≠i, cos(l_r,j^p, l_r,i^p) ≤ δ} e^{s(l_v,j^p, l_r,i^p)} )
//! L_bkg = the same with p ↔ n (positive (l_v^n, l_r^n), hard negative (l_v^p, l_r^n), soft negatives l_v,j^n
//!         for j whose background caption differs: cos(l_r,j^n, l_r,i^n) ≤ δ)
//! L_oca = (L_frg + L_bkg) / 2
//! ```
//!
//! The second term in each denominator is the hard negative (same frame, other region); the sum is the soft
//! negatives with false negatives (clips whose caption is nearly the same) filtered out. T = 0.07 and δ = 0.5
//! are this project's choices (the paper's values were not retrieved). With K foreground captions, l_r^p is
//! the re-normalised mean of the K references (see [`foreground_reference`]).

use crate::error::Result;
use crate::model::normalize::l2_normalize;
use crate::shape::expect_dims;
use crate::trimap::Trimap;
use tch::{Kind, Tensor};

/// L_oca's constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OcaParams {
    /// Masks cut from S_a.
    pub trimap: Trimap,
    /// Softmax temperature T.
    pub temperature: f64,
    /// False-negative filter δ: clip j is a soft negative for i only if its caption cosine is ≤ δ.
    pub false_negative_threshold: f64,
}

/// l_r^p for K captions: `norm(Σ_k valid_k F_r^p[k] / Σ_k valid_k)`; `fg_refs [B, K, C]`, optional
/// `valid [B, K]` → `[B, C]`.
pub fn foreground_reference(fg_refs: &Tensor, valid: Option<&Tensor>) -> Result<Tensor> {
    let r = expect_dims(
        "foreground_reference",
        "fg_refs",
        fg_refs,
        &[None, None, None],
    )?;
    let mean = match valid {
        None => fg_refs.mean_dim(1, false, None::<Kind>),
        Some(v) => {
            expect_dims(
                "foreground_reference",
                "valid",
                v,
                &[Some(r[0]), Some(r[1])],
            )?;
            let w = v.to_kind(fg_refs.kind()).unsqueeze(-1);
            (fg_refs * &w).sum_dim_intlist(1i64, false, None::<Kind>)
                / w.sum_dim_intlist(1i64, false, None::<Kind>)
        }
    };
    Ok(l2_normalize(&mean, -1))
}

/// Masked average pooling `Σ_x M(x) F_v(x) / Σ_x M(x)`, L2-normalised: `visual [B, C, h, w]`,
/// `mask [B, h, w]` → `[B, C]`.
fn masked_pool(visual: &Tensor, mask: &Tensor) -> Tensor {
    let num = Tensor::einsum("bchw,bhw->bc", &[visual, mask], None::<i64>);
    let den = mask
        .sum_dim_intlist(&[1i64, 2][..], false, None::<Kind>)
        .unsqueeze(-1);
    l2_normalize(&(num / den), -1)
}

/// One direction of the alignment (L_frg or L_bkg): `anchor_vis` is the region that should match `refs`,
/// `hard_vis` the other region of the same frame.
fn aligned_term(anchor_vis: &Tensor, hard_vis: &Tensor, refs: &Tensor, p: &OcaParams) -> Tensor {
    let b = refs.size()[0];
    let t = p.temperature;
    let positive = (anchor_vis * refs).sum_dim_intlist(-1i64, false, None::<Kind>) / t; // [B]
    let hard = (hard_vis * refs).sum_dim_intlist(-1i64, false, None::<Kind>) / t; // [B]
                                                                                  // soft[i, j] = s(l_v,j, l_r,i): caption i against clip j's region.
    let soft = refs.matmul(&anchor_vis.transpose(0, 1)) / t;
    let caption_sim = refs.matmul(&refs.transpose(0, 1)).detach();
    let eye = Tensor::eye(b, (Kind::Bool, refs.device()));
    let excluded = eye.logical_or(&caption_sim.gt(p.false_negative_threshold));
    let soft = soft.masked_fill(&excluded, f64::NEG_INFINITY);
    let logits = Tensor::cat(&[positive.unsqueeze(1), hard.unsqueeze(1), soft], 1);
    (logits.logsumexp(1, false) - positive).mean(refs.kind())
}

/// L_oca: `visual [B, C, h, w]` (unit per pixel), `sound_map [B, h, w]` (S_a), `fg_ref [B, C]` and
/// `bg_ref [B, C]` (unit length) → scalar.
pub fn object_aware_contrastive_alignment(
    visual: &Tensor,
    sound_map: &Tensor,
    fg_ref: &Tensor,
    bg_ref: &Tensor,
    params: &OcaParams,
) -> Result<Tensor> {
    const OP: &str = "object_aware_contrastive_alignment";
    let v = expect_dims(OP, "visual", visual, &[None, None, None, None])?;
    expect_dims(
        OP,
        "sound_map",
        sound_map,
        &[Some(v[0]), Some(v[2]), Some(v[3])],
    )?;
    expect_dims(OP, "fg_ref", fg_ref, &[Some(v[0]), Some(v[1])])?;
    expect_dims(OP, "bg_ref", bg_ref, &[Some(v[0]), Some(v[1])])?;
    let vis_fg = masked_pool(visual, &params.trimap.positive(sound_map));
    let vis_bg = masked_pool(visual, &params.trimap.negative(sound_map));
    let frg = aligned_term(&vis_fg, &vis_bg, fg_ref, params);
    let bkg = aligned_term(&vis_bg, &vis_fg, bg_ref, params);
    Ok((frg + bkg) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::reference::{self, Tri};

    const B: usize = 3;
    const C: usize = 4;
    const N: usize = 4;

    struct Case {
        visual: Vec<Vec<Vec<f64>>>,
        smap: Vec<Vec<f64>>,
        fg: Vec<Vec<f64>>,
        bg: Vec<Vec<f64>>,
    }

    fn case() -> Case {
        let pixels = reference::unit_vectors(B * N, C, 11);
        let visual = pixels.chunks(N).map(|p| p.to_vec()).collect();
        let smap = reference::lcg_values(B * N, 5)
            .chunks(N)
            .map(|s| s.to_vec())
            .collect();
        let mut fg = reference::unit_vectors(B, C, 23);
        // Clips 0 and 2 share a caption, so each must drop the other from its soft negatives.
        fg[2] = fg[0].clone();
        let bg = reference::unit_vectors(B, C, 31);
        Case {
            visual,
            smap,
            fg,
            bg,
        }
    }

    fn tensors(c: &Case) -> (Tensor, Tensor, Tensor, Tensor) {
        // visual[i][x][ch] → [B, C, 2, 2]
        let flat: Vec<f64> = c.visual.iter().flatten().flatten().cloned().collect();
        let visual = Tensor::from_slice(&flat)
            .view([B as i64, N as i64, C as i64])
            .transpose(1, 2)
            .reshape([B as i64, C as i64, 2, 2]);
        let smap: Vec<f64> = c.smap.iter().flatten().cloned().collect();
        let fg: Vec<f64> = c.fg.iter().flatten().cloned().collect();
        let bg: Vec<f64> = c.bg.iter().flatten().cloned().collect();
        (
            visual,
            Tensor::from_slice(&smap).view([B as i64, 2, 2]),
            Tensor::from_slice(&fg).view([B as i64, C as i64]),
            Tensor::from_slice(&bg).view([B as i64, C as i64]),
        )
    }

    fn params() -> OcaParams {
        OcaParams {
            trimap: Trimap::default(),
            temperature: 0.07,
            false_negative_threshold: 0.5,
        }
    }

    #[test]
    fn matches_f64_reference_with_filtered_negatives() {
        let c = case();
        let (visual, smap, fg, bg) = tensors(&c);
        let got = f64::try_from(
            object_aware_contrastive_alignment(&visual, &smap, &fg, &bg, &params()).unwrap(),
        )
        .unwrap();
        let want = reference::oca(
            &c.visual,
            &c.smap,
            &c.fg,
            &c.bg,
            &Tri(0.65, 0.4, 0.03),
            0.07,
            0.5,
        );
        assert!(
            (got - want).abs() < 1e-9 * want.abs().max(1.0),
            "{got} vs {want}"
        );
        // At T = 1 the soft negatives weigh enough that dropping the filter (δ = 1, clip 0's twin becomes
        // a negative) visibly changes the loss; the implementation follows the reference in both settings.
        let tri = Tri(0.65, 0.4, 0.03);
        let filtered = reference::oca(&c.visual, &c.smap, &c.fg, &c.bg, &tri, 1.0, 0.5);
        let unfiltered = reference::oca(&c.visual, &c.smap, &c.fg, &c.bg, &tri, 1.0, 1.0);
        assert!(
            (unfiltered - filtered).abs() > 1e-3,
            "{unfiltered} vs {filtered}"
        );
        for (delta, want) in [(0.5, filtered), (1.0, unfiltered)] {
            let p = OcaParams {
                temperature: 1.0,
                false_negative_threshold: delta,
                ..params()
            };
            let got = f64::try_from(
                object_aware_contrastive_alignment(&visual, &smap, &fg, &bg, &p).unwrap(),
            )
            .unwrap();
            assert!((got - want).abs() < 1e-9, "δ = {delta}: {got} vs {want}");
        }
    }

    #[test]
    fn gradients_reach_features_map_and_captions() {
        let c = case();
        let (visual, smap, fg, bg) = tensors(&c);
        let (visual, smap, fg) = (
            visual.set_requires_grad(true),
            smap.set_requires_grad(true),
            fg.set_requires_grad(true),
        );
        let loss = object_aware_contrastive_alignment(&visual, &smap, &fg, &bg, &params()).unwrap();
        loss.backward();
        for (name, t) in [("visual", &visual), ("sound_map", &smap), ("fg_ref", &fg)] {
            let g = Vec::<f64>::try_from(t.grad().flatten(0, -1)).unwrap();
            assert!(g.iter().all(|v| v.is_finite()), "{name}");
            assert!(
                g.iter().map(|v| v.abs()).sum::<f64>() > 1e-8,
                "{name} has no gradient"
            );
        }
    }

    #[test]
    fn foreground_reference_averages_valid_captions() {
        // Captions e0 and e1 (valid) and e2 (padding): the reference is (e0 + e1)/√2.
        let refs =
            Tensor::from_slice(&[1.0f64, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]).view([1, 3, 3]);
        let valid = Tensor::from_slice(&[true, true, false]).view([1, 3]);
        let got = Vec::<f64>::try_from(
            foreground_reference(&refs, Some(&valid))
                .unwrap()
                .flatten(0, -1),
        )
        .unwrap();
        let r = std::f64::consts::FRAC_1_SQRT_2;
        assert!((got[0] - r).abs() < 1e-12 && (got[1] - r).abs() < 1e-12 && got[2] == 0.0);
    }

    #[test]
    fn wrong_caption_width_is_named() {
        let c = case();
        let (visual, smap, fg, _) = tensors(&c);
        let bg = Tensor::zeros([3, 5], (Kind::Double, tch::Device::Cpu));
        let err = object_aware_contrastive_alignment(&visual, &smap, &fg, &bg, &params())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`bg_ref`"), "{err}");
    }
}
