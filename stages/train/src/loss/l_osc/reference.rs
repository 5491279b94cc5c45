//! The first L_OSC: a host loop over sample × group with host reads of the bank. Kept unchanged as the
//! reference the batched implementation in the parent module is tested against.

use crate::error::Result;
use crate::model::ioi::reference::ReferenceOutput;
use crate::model::normalize::cosine;
use crate::shape::expect_dims;
use tch::{Kind, Tensor};

/// L_OSC of a reference IOI result; a scalar (zero, without gradient, when no group contributes).
pub(crate) fn object_similarity_clustering(ioi: &ReferenceOutput) -> Result<Tensor> {
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
