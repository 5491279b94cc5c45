//! The first, host-driven IOI: one device-to-host and one host-to-device copy per iteration and union–find on
//! the host. Kept unchanged as the reference the batched implementation in the parent module is tested
//! against.

use super::{EntryKind, IoiConfig, ObjectGroup};
use crate::error::Result;
use crate::model::normalize::cosine;
use tch::{Kind, Tensor};

/// What the reference IOI returns: the bank, `e_n`, the maps, and the grouping read back on the host.
#[derive(Debug)]
pub(crate) struct ReferenceOutput {
    pub objects: Tensor,
    pub background: Tensor,
    pub maps: Tensor,
    pub kinds: Vec<Vec<EntryKind>>,
    pub groups: Vec<Vec<ObjectGroup>>,
}

pub(crate) fn iterative_object_identification(
    visual: &Tensor,
    audio: &Tensor,
    cfg: &IoiConfig,
) -> Result<ReferenceOutput> {
    let super::Prepared {
        b,
        c,
        h,
        w,
        n,
        device,
        kind,
        sim,
        weighted,
        background,
        weighted_d,
        d_n,
    } = super::prepare(visual, audio, cfg)?;
    let mut remaining = sim.detach();
    let mut taken = Tensor::zeros([b, n], (Kind::Bool, device));
    let mut done = vec![false; b as usize];
    let mut alive_at: Vec<Vec<bool>> = Vec::new();
    let mut bank = Vec::new();
    let mut maps = Vec::new();
    // Each live iteration takes at least its anchor pixel or stops the sample, so n + 1 bounds the loop.
    for _ in 0..=n {
        let alive: Vec<bool> = done.iter().map(|d| !d).collect();
        let alive_f: Vec<f64> = alive.iter().map(|&a| if a { 1.0 } else { 0.0 }).collect();
        let alive_t = Tensor::from_slice(&alive_f).to_kind(kind).to_device(device);
        let anchor_idx = remaining.argmax(1, false); // [B]
        let gather_idx = anchor_idx.view([b, 1, 1]).expand([b, 1, c], false);
        let anchor = weighted.gather(1, &gather_idx, false).squeeze_dim(1) * alive_t.unsqueeze(-1);
        let d_p = (&weighted_d - anchor.detach().unsqueeze(1)).norm_scalaropt_dim(2.0, [-1], false);
        let alive_mask = alive_t.to_kind(Kind::Bool).unsqueeze(-1);
        let region = d_p
            .lt_tensor(&d_n)
            .logical_and(&taken.logical_not())
            .logical_and(&alive_mask);
        taken = taken.logical_or(&region);
        remaining = &remaining * region.logical_not().to_kind(kind);
        bank.push(anchor);
        maps.push(-d_p);
        alive_at.push(alive);

        // One host transfer per iteration: [region size, max remaining saliency] per sample.
        let status = Tensor::stack(
            &[
                region.sum_dim_intlist(1i64, false, Kind::Double),
                remaining.amax([1], false).to_kind(Kind::Double),
            ],
            1,
        );
        let status = Vec::<f64>::try_from(status.flatten(0, -1))?;
        for (i, flag) in done.iter_mut().enumerate() {
            let (region_size, max_left) = (status[2 * i], status[2 * i + 1]);
            if !*flag && (region_size == 0.0 || max_left < cfg.stop_saliency) {
                *flag = true;
            }
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    let objects = Tensor::stack(&bank, 1); // [B, T, C]
    let maps = Tensor::stack(&maps, 1).view([b, -1, h, w]);
    let (kinds, groups) = group_entries(&objects, &background, &alive_at, cfg)?;
    Ok(ReferenceOutput {
        objects,
        background,
        maps,
        kinds,
        groups,
    })
}

/// Per sample: the kind of every bank entry, and the object groups.
type Grouping = (Vec<Vec<EntryKind>>, Vec<Vec<ObjectGroup>>);

/// Classifies bank entries and merges object entries with union–find (roots are the smallest index).
pub(crate) fn group_entries(
    objects: &Tensor,
    background: &Tensor,
    alive_at: &[Vec<bool>],
    cfg: &IoiConfig,
) -> Result<Grouping> {
    let objects = objects.detach();
    let background = background.detach();
    let (b, t) = (objects.size()[0], objects.size()[1]);
    // [B, T] cosines to the background and [B, T, T] pairwise cosines, computed once on the device.
    let to_bg = Vec::<f64>::try_from(
        cosine(&objects, &background.unsqueeze(1))
            .to_kind(Kind::Double)
            .flatten(0, -1),
    )?;
    let pair = Vec::<f64>::try_from(
        cosine(&objects.unsqueeze(2), &objects.unsqueeze(1))
            .to_kind(Kind::Double)
            .flatten(0, -1),
    )?;
    let (b, t) = (b as usize, t as usize);
    let mut all_kinds = Vec::with_capacity(b);
    let mut all_groups = Vec::with_capacity(b);
    for i in 0..b {
        let mut kinds = Vec::with_capacity(t);
        let mut parent: Vec<usize> = (0..t).collect();
        for j in 0..t {
            if !alive_at[j][i] {
                kinds.push(EntryKind::Finished);
                continue;
            }
            if to_bg[i * t + j] > cfg.background_similarity {
                kinds.push(EntryKind::Background);
                continue;
            }
            kinds.push(EntryKind::Object);
            for k in 0..j {
                if kinds[k] == EntryKind::Object && pair[(i * t + j) * t + k] > cfg.merge_similarity
                {
                    let (rj, rk) = (find(&mut parent, j), find(&mut parent, k));
                    parent[rj.max(rk)] = rj.min(rk);
                }
            }
        }
        let mut groups: Vec<ObjectGroup> = Vec::new();
        let mut root_of_group: Vec<usize> = Vec::new();
        for (j, kind) in kinds.iter().enumerate() {
            if *kind != EntryKind::Object {
                continue;
            }
            let root = find(&mut parent, j);
            match root_of_group.iter().position(|&r| r == root) {
                Some(g) => groups[g].members.push(j),
                None => {
                    root_of_group.push(root);
                    groups.push(ObjectGroup { members: vec![j] });
                }
            }
        }
        all_kinds.push(kinds);
        all_groups.push(groups);
    }
    Ok((all_kinds, all_groups))
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}
