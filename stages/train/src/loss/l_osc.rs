//! L_OSC, NoPrior's object-similarity-aware clustering loss over the IOI bank (method.md §2.4).
//!
//! For sample i and each of its object groups g (see [`crate::model::ioi`]), with bank entries obj_j and the
//! background prototype e_n:
//!
//! ```text
//! u  = obj_root(g)                                   (skipped if it is the zero vector)
//! v⁺ = mean_{j ∈ g} obj_j
//! v⁻ = mean_{j ∉ g} obj_j + e_n                      (all other entries: background entries and the zero
//!                                                      rows of stopped samples included; the term is
//!                                                      skipped if v⁻ is zero, or undefined because g holds
//!                                                      every entry)
//! ℓ  = (1 − cos(u, v⁺)) + cos(u, v⁻)
//! L_OSC = (1/B) Σ_i Σ_g ℓ_{i,g}
//! ```

use crate::error::Result;
use crate::model::ioi::IoiOutput;
use crate::model::normalize::cosine;
use crate::shape::expect_dims;
use tch::{Kind, Tensor};

/// L_OSC of an IOI result; a scalar (zero, without gradient, when no group contributes).
pub fn object_similarity_clustering(ioi: &IoiOutput) -> Result<Tensor> {
    let o = expect_dims(
        "object_similarity_clustering",
        "ioi.objects",
        &ioi.objects,
        &[None, None, None],
    )?;
    expect_dims(
        "object_similarity_clustering",
        "ioi.background",
        &ioi.background,
        &[Some(o[0]), Some(o[2])],
    )?;
    let (b, t) = (o[0], o[1] as usize);
    let device = ioi.objects.device();
    // Zero tests happen on a detached copy so that skipping never depends on a traced value.
    let host = Vec::<f64>::try_from(ioi.objects.detach().to_kind(Kind::Double).flatten(0, -1))?;
    let host_bg =
        Vec::<f64>::try_from(ioi.background.detach().to_kind(Kind::Double).flatten(0, -1))?;
    let c = o[2] as usize;
    let mut terms = Vec::new();
    for (i, groups) in ioi.groups.iter().enumerate() {
        let bank = ioi.objects.get(i as i64);
        let row = |j: usize| &host[(i * t + j) * c..(i * t + j + 1) * c];
        for g in groups {
            let root = g.members[0];
            if row(root).iter().all(|v| *v == 0.0) {
                continue;
            }
            let rest: Vec<usize> = (0..t).filter(|j| !g.members.contains(j)).collect();
            if rest.is_empty() {
                continue;
            }
            let neg_host: Vec<f64> = (0..c)
                .map(|ch| {
                    rest.iter().map(|&j| row(j)[ch]).sum::<f64>() / rest.len() as f64
                        + host_bg[i * c + ch]
                })
                .collect();
            if neg_host.iter().all(|v| *v == 0.0) || neg_host.iter().any(|v| !v.is_finite()) {
                continue;
            }
            let pick = |idx: &[usize]| {
                let idx: Vec<i64> = idx.iter().map(|&j| j as i64).collect();
                bank.index_select(0, &Tensor::from_slice(&idx).to_device(device))
                    .mean_dim(0, false, None::<Kind>)
            };
            let anchor = bank.get(root as i64);
            let positive = pick(&g.members);
            let negative = pick(&rest) + ioi.background.get(i as i64);
            terms.push(1.0 - cosine(&anchor, &positive) + cosine(&anchor, &negative));
        }
    }
    if terms.is_empty() {
        return Ok(Tensor::zeros([], (ioi.objects.kind(), device)));
    }
    Ok(Tensor::stack(&terms, 0).sum(ioi.objects.kind()) / b as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ioi::tests::{audio_e0, blob_scene};
    use crate::model::ioi::{iterative_object_identification, EntryKind, IoiConfig, ObjectGroup};

    fn cos(a: [f64; 2], b: [f64; 2]) -> f64 {
        (a[0] * b[0] + a[1] * b[1])
            / ((a[0] * a[0] + a[1] * a[1]).sqrt() * (b[0] * b[0] + b[1] * b[1]).sqrt())
    }

    #[test]
    fn hand_computed_two_groups() {
        // Bank (1,0), (1,0.2), (0,1); e_n = (0,0.5); groups {0,1} and {2}.
        // Group {0,1}: u = (1,0), v⁺ = (1,0.1), v⁻ = (0,1) + e_n = (0,1.5).
        // Group {2}:   u = (0,1), v⁺ = (0,1),   v⁻ = mean((1,0),(1,0.2)) + e_n = (1,0.6).
        let ioi = IoiOutput {
            objects: Tensor::from_slice(&[1.0f64, 0.0, 1.0, 0.2, 0.0, 1.0]).view([1, 3, 2]),
            background: Tensor::from_slice(&[0.0f64, 0.5]).view([1, 2]),
            maps: Tensor::zeros([1, 3, 1, 1], (Kind::Double, tch::Device::Cpu)),
            kinds: vec![vec![EntryKind::Object; 3]],
            groups: vec![vec![
                ObjectGroup {
                    members: vec![0, 1],
                },
                ObjectGroup { members: vec![2] },
            ]],
        };
        let got = f64::try_from(object_similarity_clustering(&ioi).unwrap()).unwrap();
        let want = (1.0 - cos([1.0, 0.0], [1.0, 0.1]) + cos([1.0, 0.0], [0.0, 1.5]))
            + (1.0 - cos([0.0, 1.0], [0.0, 1.0]) + cos([0.0, 1.0], [1.0, 0.6]));
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn single_group_covering_the_bank_is_skipped() {
        let ioi = IoiOutput {
            objects: Tensor::from_slice(&[1.0f64, 0.0]).view([1, 1, 2]),
            background: Tensor::from_slice(&[0.0f64, 0.5]).view([1, 2]),
            maps: Tensor::zeros([1, 1, 1, 1], (Kind::Double, tch::Device::Cpu)),
            kinds: vec![vec![EntryKind::Object]],
            groups: vec![vec![ObjectGroup { members: vec![0] }]],
        };
        assert_eq!(
            f64::try_from(object_similarity_clustering(&ioi).unwrap()).unwrap(),
            0.0
        );
    }

    #[test]
    fn gradient_flows_from_ioi_blobs() {
        let visual = Tensor::cat(&[blob_scene(2), blob_scene(3)], 0).set_requires_grad(true);
        let ioi =
            iterative_object_identification(&visual, &audio_e0(2), &IoiConfig::default()).unwrap();
        let loss = object_similarity_clustering(&ioi).unwrap();
        // Blob features have cosine 0.31 with each other and about −0.06 with e_n, so every group pays
        // (1 − 1) + cos(u, v⁻) < 0.5; five groups over two samples.
        let v = f64::try_from(&loss).unwrap();
        assert!(v.is_finite() && v > 0.0 && v < 2.5 * 0.5, "{v}");
        loss.backward();
        let g = Vec::<f64>::try_from(visual.grad().flatten(0, -1)).unwrap();
        assert!(g.iter().all(|x| x.is_finite()) && g.iter().any(|x| x.abs() > 1e-8));
    }
}
