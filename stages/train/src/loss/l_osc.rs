//! L_OSC, NoPrior's object-similarity-aware clustering loss over the IOI bank (docs/method.md §2.4).
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
//!
//! All groups of all samples are computed at once from the IOI labels: membership masks `[B, G, T]` (G = T
//! slots, the most groups a sample can have) turn the means into batched products, and the skip rules into a
//! mask over `[B, G]`. Nothing is read back to the host. "Other entries" are those of the iterations the
//! batch ran: trailing columns of placeholders only (left by an IOI iteration budget) do not count.

#[cfg(test)]
pub(crate) mod reference;

use crate::error::Result;
use crate::model::ioi::IoiOutput;
use crate::model::normalize::cosine;
use crate::shape::expect_dims;
use tch::{Kind, Tensor};

/// L_OSC of an IOI result; a scalar (zero, with a zero gradient, when no group contributes).
pub fn object_similarity_clustering(ioi: &IoiOutput) -> Result<Tensor> {
    const OP: &str = "object_similarity_clustering";
    let o = expect_dims(OP, "ioi.objects", &ioi.objects, &[None, None, None])?;
    expect_dims(
        OP,
        "ioi.background",
        &ioi.background,
        &[Some(o[0]), Some(o[2])],
    )?;
    expect_dims(OP, "ioi.labels", &ioi.labels, &[Some(o[0]), Some(o[1])])?;
    let (b, t, c) = (o[0], o[1], o[2]);
    let objects = &ioi.objects;
    let kind = objects.kind();
    let device = objects.device();

    let slots = Tensor::arange(t, (Kind::Int64, device));
    let member = ioi
        .labels
        .to_kind(Kind::Int64)
        .unsqueeze(1)
        .eq_tensor(&slots.view([1, t, 1])); // [B, G, T]
    let member_f = member.to_kind(kind);
    let outside_f = member.logical_not().to_kind(kind);
    let size = member.sum_dim_intlist(-1i64, false, Kind::Int64); // [B, G]
                                                                  // The bank's length is the iterations the loop ran for the batch: columns after the last live one (an
                                                                  // iteration budget longer than needed) hold placeholders only and are not entries.
    let ran = ioi
        .labels
        .ne(crate::model::ioi::LABEL_FINISHED)
        .any_dim(0, false)
        .sum(Kind::Int64);
    let rest = ran - &size;

    // A group's root is its smallest member; empty slots point anywhere and are masked below.
    let root = slots
        .view([1, 1, t])
        .where_self(&member, &Tensor::full([], t, (Kind::Int64, device)))
        .amin([-1], false)
        .clamp_max(t - 1);
    let anchor = objects.gather(1, &root.unsqueeze(-1).expand([b, t, c], false), false);
    let positive = member_f.bmm(objects) / size.clamp_min(1).to_kind(kind).unsqueeze(-1);
    let negative = outside_f.bmm(objects) / rest.clamp_min(1).to_kind(kind).unsqueeze(-1)
        + ioi.background.unsqueeze(1);

    // The skip tests run on a detached f64 copy so that skipping never depends on a traced value and v⁻'s
    // zero test sees the precision it was specified in.
    let negative_test = outside_f
        .to_kind(Kind::Double)
        .bmm(&objects.detach().to_kind(Kind::Double))
        / rest.clamp_min(1).to_kind(Kind::Double).unsqueeze(-1)
        + ioi.background.detach().to_kind(Kind::Double).unsqueeze(1);
    let used = size
        .gt(0)
        .logical_and(&rest.gt(0))
        .logical_and(&anchor.detach().ne(0.0).any_dim(-1, false))
        .logical_and(&negative_test.ne(0.0).any_dim(-1, false))
        .logical_and(&negative_test.isfinite().all_dim(-1, false)); // [B, G]

    // Skipped terms see harmless stand-ins, so that neither their values nor their gradients (a zero v⁻
    // would give cos a 1e8 slope) can reach the sum as NaN.
    let keep = used.unsqueeze(-1);
    let stand_in = Tensor::ones([], (kind, device));
    let u = anchor.where_self(&keep, &stand_in);
    let v_pos = positive.where_self(&keep, &stand_in);
    let v_neg = negative.where_self(&keep, &stand_in);
    let terms: Tensor = (1.0 - cosine(&u, &v_pos)) + cosine(&u, &v_neg); // [B, G]
    let terms = terms.where_self(&used, &Tensor::zeros([], (kind, device)));
    Ok(terms.sum(kind) / b as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ioi::reference::{self as ioi_reference, ReferenceOutput};
    use crate::model::ioi::tests::{audio_e0, blob_scene, max_diff, random_cases, random_inputs};
    use crate::model::ioi::{
        iterative_object_identification, EntryKind, IoiConfig, ObjectGroup, LABEL_FINISHED,
    };
    use tch::Device;

    fn cos(a: [f64; 2], b: [f64; 2]) -> f64 {
        (a[0] * b[0] + a[1] * b[1])
            / ((a[0] * a[0] + a[1] * a[1]).sqrt() * (b[0] * b[0] + b[1] * b[1]).sqrt())
    }

    #[test]
    fn hand_computed_two_groups() {
        // Bank (1,0), (1,0.2), (0,1); e_n = (0,0.5); groups {0,1} and {2}.
        // Group {0,1}: u = (1,0), v⁺ = (1,0.1), v⁻ = (0,1) + e_n = (0,1.5).
        // Group {2}:   u = (0,1), v⁺ = (0,1),   v⁻ = mean((1,0),(1,0.2)) + e_n = (1,0.6).
        let ioi = IoiOutput::new(
            Tensor::from_slice(&[1.0f64, 0.0, 1.0, 0.2, 0.0, 1.0]).view([1, 3, 2]),
            Tensor::from_slice(&[0.0f64, 0.5]).view([1, 2]),
            Tensor::zeros([1, 3, 1, 1], (Kind::Double, Device::Cpu)),
            Tensor::from_slice(&[0i64, 0, 1]).view([1, 3]),
        );
        assert_eq!(
            ioi.groups().unwrap()[0],
            vec![
                ObjectGroup {
                    members: vec![0, 1],
                },
                ObjectGroup { members: vec![2] },
            ]
        );
        let got = f64::try_from(object_similarity_clustering(&ioi).unwrap()).unwrap();
        let want = (1.0 - cos([1.0, 0.0], [1.0, 0.1]) + cos([1.0, 0.0], [0.0, 1.5]))
            + (1.0 - cos([0.0, 1.0], [0.0, 1.0]) + cos([0.0, 1.0], [1.0, 0.6]));
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn single_group_covering_the_bank_is_skipped() {
        let ioi = IoiOutput::new(
            Tensor::from_slice(&[1.0f64, 0.0]).view([1, 1, 2]),
            Tensor::from_slice(&[0.0f64, 0.5]).view([1, 2]),
            Tensor::zeros([1, 1, 1, 1], (Kind::Double, Device::Cpu)),
            Tensor::from_slice(&[0i64]).view([1, 1]),
        );
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

    /// L_OSC and its gradients with respect to `visual` and `audio`, through IOI, for both implementations;
    /// asserts they agree within 1e-5 and returns the loss.
    fn assert_loss_matches_reference(visual: &Tensor, audio: &Tensor, cfg: &IoiConfig) -> f64 {
        let run = |reference: bool| {
            let v = visual.detach().set_requires_grad(true);
            let a = audio.detach().set_requires_grad(true);
            let loss = if reference {
                let out = ioi_reference::iterative_object_identification(&v, &a, cfg).unwrap();
                reference::object_similarity_clustering(&out).unwrap()
            } else {
                let out = iterative_object_identification(&v, &a, cfg).unwrap();
                object_similarity_clustering(&out).unwrap()
            };
            let value = f64::try_from(&loss).unwrap();
            if loss.requires_grad() {
                loss.backward();
            }
            let grad = |x: &Tensor| {
                let g = x.grad();
                if g.defined() {
                    g
                } else {
                    x.zeros_like()
                }
            };
            (value, grad(&v), grad(&a))
        };
        let (new, new_gv, new_ga) = run(false);
        let (old, old_gv, old_ga) = run(true);
        let what = format!("visual {:?} {:?}", visual.size(), visual.kind());
        assert!((new - old).abs() < 1e-5, "{what}: {new} vs {old}");
        assert!(max_diff(&new_gv, &old_gv) < 1e-5, "{what}: visual gradient");
        assert!(max_diff(&new_ga, &old_ga) < 1e-5, "{what}: audio gradient");
        new
    }

    #[test]
    fn matches_reference_with_gradients_on_random_inputs() {
        let cfg = IoiConfig::default();
        let mut nonzero = 0;
        for (visual, audio) in random_cases() {
            if assert_loss_matches_reference(&visual, &audio, &cfg) != 0.0 {
                nonzero += 1;
            }
        }
        assert!(nonzero > 24, "{nonzero} of 48 cases had groups that count");
    }

    #[test]
    fn matches_reference_with_gradients_on_edge_cases() {
        // Samples stopping at different iterations, one of them at the first.
        let visual = Tensor::cat(&[blob_scene(2), blob_scene(1), blob_scene(3)], 0);
        let v = assert_loss_matches_reference(&visual, &audio_e0(3), &IoiConfig::default());
        assert!(v > 0.0);
        // Everything background: no group, a zero loss.
        let all_background = IoiConfig {
            background_similarity: -2.0,
            ..IoiConfig::default()
        };
        let (visual, audio) = random_inputs(3, 32, (3, 3), Kind::Double, 41);
        let v = assert_loss_matches_reference(&visual, &audio, &all_background);
        assert_eq!(v, 0.0);
        // Everything in one group: counts where stopped samples left zero rows outside it.
        let one_group = IoiConfig {
            background_similarity: 2.0,
            merge_similarity: -2.0,
            ..IoiConfig::default()
        };
        for (b, hw) in [(1, (1, 1)), (3, (4, 6)), (8, (7, 7))] {
            let (visual, audio) = random_inputs(b, 8, hw, Kind::Double, 51 + b);
            assert_loss_matches_reference(&visual, &audio, &one_group);
        }
    }

    /// A reference output with the host grouping of `ioi`.
    fn as_reference(ioi: &IoiOutput) -> ReferenceOutput {
        ReferenceOutput {
            objects: ioi.objects.shallow_clone(),
            background: ioi.background.shallow_clone(),
            maps: ioi.maps.shallow_clone(),
            kinds: ioi.kinds().unwrap().to_vec(),
            groups: ioi.groups().unwrap().to_vec(),
        }
    }

    #[test]
    fn matches_reference_on_hand_made_banks_with_skipped_terms() {
        // Banks IOI rarely produces: zero anchors, zero v⁻ (zero rows outside the group and a zero e_n),
        // groups holding every entry, and labels in every arrangement.
        tch::manual_seed(7);
        let (b, t, c) = (6i64, 5i64, 4i64);
        for round in 0..20 {
            let mut objects = Tensor::randn([b, t, c], (Kind::Double, Device::Cpu));
            let mut background = Tensor::randn([b, c], (Kind::Double, Device::Cpu));
            let zero_rows = Tensor::rand([b, t, 1], (Kind::Double, Device::Cpu)).lt(0.3);
            objects = objects.masked_fill(&zero_rows, 0.0);
            if round % 2 == 0 {
                background = background.masked_fill(
                    &Tensor::from_slice(&[true, false, true, false, true, false]).view([b, 1]),
                    0.0,
                );
            }
            let labels = Tensor::randint_low(LABEL_FINISHED, 3, [b, t], (Kind::Int64, Device::Cpu));
            // Relabel so groups are numbered by their smallest member, as IOI numbers them.
            let mut rows = Vec::<Vec<i64>>::try_from(&labels).unwrap();
            for row in rows.iter_mut() {
                let mut seen: Vec<i64> = Vec::new();
                for l in row.iter_mut().filter(|l| **l >= 0) {
                    let g = match seen.iter().position(|s| s == l) {
                        Some(g) => g,
                        None => {
                            seen.push(*l);
                            seen.len() - 1
                        }
                    };
                    *l = g as i64;
                }
            }
            let flat: Vec<i64> = rows.concat();
            let labels = Tensor::from_slice(&flat).view([b, t]);
            let objects = objects.set_requires_grad(true);
            let background = background.set_requires_grad(true);
            let maps = Tensor::zeros([b, t, 1, 1], (Kind::Double, Device::Cpu));
            let ioi = IoiOutput::new(
                objects.shallow_clone(),
                background.shallow_clone(),
                maps,
                labels,
            );
            assert!(ioi
                .kinds()
                .unwrap()
                .iter()
                .flatten()
                .any(|k| *k == EntryKind::Background));
            let new = object_similarity_clustering(&ioi).unwrap();
            let old = reference::object_similarity_clustering(&as_reference(&ioi)).unwrap();
            let diff = (f64::try_from(&new).unwrap() - f64::try_from(&old).unwrap()).abs();
            assert!(diff < 1e-5, "round {round}: {new:?} vs {old:?}");
            let grads = |loss: &Tensor| {
                if !loss.requires_grad() {
                    return (objects.zeros_like(), background.zeros_like());
                }
                let g = Tensor::run_backward(&[loss], &[&objects, &background], false, false);
                (g[0].shallow_clone(), g[1].shallow_clone())
            };
            let (new_go, new_gb) = grads(&new);
            let (old_go, old_gb) = grads(&old);
            assert!(max_diff(&new_go, &old_go) < 1e-5, "round {round}");
            assert!(max_diff(&new_gb, &old_gb) < 1e-5, "round {round}");
        }
    }
}
