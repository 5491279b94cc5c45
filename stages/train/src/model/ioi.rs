//! Iterative object identification (IOI), NoPrior's way of splitting a sound map into a variable number of
//! object maps without knowing how many sources there are (method.md §2.3).
//!
//! With `S = cos(V, a)` per pixel, `L = V ⊙ S` (sound-weighted features) and the background prototype
//! `e_n = mean_x L(x)·Neg(x)` (plain mean over all pixels, trimap `Neg`), each iteration t does
//!
//! ```text
//! p*      = argmax_x R(x)                      R starts as S
//! e_p     = L(p*)                              appended to the object bank (zero once a sample is done)
//! d_p(x)  = ‖L(x) − e_p‖₂,  d_n(x) = ‖L(x) − e_n‖₂,  map_t = −d_p
//! r       = (d_p < d_n) ∧ ¬taken;  taken ∨= r;  R ← R·(1 − r)
//! done    if r is empty or max R < 0.1
//! ```
//!
//! until every sample is done. Bank entries are then grouped per sample: entry j is background when
//! `cos(e_n, obj_j) > 0.7`, otherwise it is merged (union–find) with every earlier object entry k with
//! `cos(obj_j, obj_k) > 0.6`. Each group is one predicted source, and its map is the mean of its members'
//! `−d_p` maps.
//!
//! The argmax, the regions and the maps carry no gradient; the bank and `e_n` do, so the OSC loss
//! (`crate::loss::l_osc`) trains through them.

use crate::error::{Result, TrainError};
use crate::model::normalize::cosine;
use crate::shape::expect_dims;
use crate::trimap::Trimap;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// IOI constants, all hard-coded in NoPrior's `model_base.py` (method.md §2.3, §10).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IoiConfig {
    /// Trimap for the background prototype `e_n` (α_n = 0.4, ω = 0.03).
    pub trimap: Trimap,
    /// A sample stops once its remaining saliency max falls below this (0.1).
    pub stop_saliency: f64,
    /// An entry whose cosine to `e_n` exceeds this is background (0.7).
    pub background_similarity: f64,
    /// Two object entries whose cosine exceeds this are the same source (0.6).
    pub merge_similarity: f64,
}

impl Default for IoiConfig {
    fn default() -> Self {
        Self {
            trimap: Trimap::default(),
            stop_saliency: 0.1,
            background_similarity: 0.7,
            merge_similarity: 0.6,
        }
    }
}

/// What one bank entry turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// An object anchor that belongs to a group.
    Object,
    /// An anchor too similar to the background prototype.
    Background,
    /// A zero placeholder: the sample had already stopped at this iteration.
    Finished,
}

/// One predicted source: indices into the sample's bank, smallest (the group's root and anchor) first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectGroup {
    /// Bank indices in increasing order; `members[0]` is the root.
    pub members: Vec<usize>,
}

/// Everything IOI found for a batch.
#[derive(Debug)]
pub struct IoiOutput {
    /// Object bank `[B, T, C]` (T = iterations run), zero rows where a sample had stopped. Has gradient.
    pub objects: Tensor,
    /// Background prototypes `e_n`, `[B, C]`. Has gradient.
    pub background: Tensor,
    /// Per-iteration localisation maps `−d_p`, `[B, T, h, w]`, no gradient.
    pub maps: Tensor,
    /// `kinds[i][t]`: what entry t of sample i is.
    pub kinds: Vec<Vec<EntryKind>>,
    /// `groups[i]`: sample i's sources, ordered by root index.
    pub groups: Vec<Vec<ObjectGroup>>,
}

impl IoiOutput {
    /// Number of sources found for sample `i` (its group count).
    pub fn num_sources(&self, i: usize) -> usize {
        self.groups.get(i).map_or(0, Vec::len)
    }

    /// Sample `i`'s object maps `[G, h, w]`, each the mean of its members' `−d_p` maps; `None` if it has no
    /// group.
    pub fn object_maps(&self, i: usize) -> Option<Tensor> {
        let groups = self.groups.get(i)?;
        if groups.is_empty() {
            return None;
        }
        let sample = self.maps.get(i as i64);
        let maps: Vec<Tensor> = groups
            .iter()
            .map(|g| {
                let idx: Vec<i64> = g.members.iter().map(|&m| m as i64).collect();
                let idx = Tensor::from_slice(&idx).to_device(sample.device());
                sample
                    .index_select(0, &idx)
                    .mean_dim(0, false, None::<Kind>)
            })
            .collect();
        Some(Tensor::stack(&maps, 0))
    }
}

/// Runs IOI on per-pixel L2-normalised `visual [B, C, h, w]` and L2-normalised `audio [B, C]`.
pub fn iterative_object_identification(
    visual: &Tensor,
    audio: &Tensor,
    cfg: &IoiConfig,
) -> Result<IoiOutput> {
    const OP: &str = "iterative_object_identification";
    let v = expect_dims(OP, "visual", visual, &[None, None, None, None])?;
    expect_dims(OP, "audio", audio, &[Some(v[0]), Some(v[1])])?;
    let (b, c, h, w) = (v[0], v[1], v[2], v[3]);
    let n = h * w;
    if b == 0 || n == 0 {
        return Err(TrainError::Shape {
            op: OP,
            input: "visual",
            expected: "non-empty batch and map".into(),
            actual: v,
        });
    }
    let device = visual.device();
    let kind = visual.kind();
    let feats = visual.view([b, c, n]).transpose(1, 2); // [B, N, C]
    let sim = feats.matmul(&audio.unsqueeze(-1)).squeeze_dim(-1); // [B, N]
    let weighted = &feats * sim.unsqueeze(-1); // L = V ⊙ S
    let background =
        (&weighted * cfg.trimap.negative(&sim).unsqueeze(-1)).mean_dim(1, false, None::<Kind>);

    // Selection runs on detached copies: it only decides indices and regions.
    let weighted_d = weighted.detach();
    let d_n = (&weighted_d - background.detach().unsqueeze(1)).norm_scalaropt_dim(2.0, [-1], false);
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
    Ok(IoiOutput {
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
fn group_entries(
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::normalize::l2_normalize;
    use tch::Device;

    pub(crate) const C: i64 = 8;

    /// A `C`-channel feature map with `blobs` separated 2×2 blobs on a 6×6 grid. Audio is e0; blob k has
    /// features ∝ e0 + 1.5·e_k (cosine 0.555 with the audio, 0.31 between blobs) and the background is
    /// `bg_sim·e0 + √(1 − bg_sim²)·e_7` (cosine `bg_sim`). With bg_sim = −0.1 the worked margins are: a pixel
    /// of another blob has d_p = 0.652 against d_n ≈ 0.55, so every blob becomes its own region and group.
    pub(crate) fn blob_scene_with_background(blobs: usize, bg_sim: f64) -> Tensor {
        let (h, w) = (6usize, 6usize);
        let corners = [(0usize, 0usize), (0, 4), (4, 0)];
        let mut data = vec![0f64; C as usize * h * w];
        for y in 0..h {
            for x in 0..w {
                let mut f = [0f64; C as usize];
                let blob = corners[..blobs]
                    .iter()
                    .position(|&(by, bx)| y >= by && y < by + 2 && x >= bx && x < bx + 2);
                match blob {
                    Some(k) => {
                        f[0] = 1.0;
                        f[k + 1] = 1.5;
                    }
                    None => {
                        f[0] = bg_sim;
                        f[7] = (1.0 - bg_sim * bg_sim).sqrt();
                    }
                }
                for (ch, v) in f.iter().enumerate() {
                    data[(ch * h + y) * w + x] = *v;
                }
            }
        }
        let t = Tensor::from_slice(&data).view([1, C, h as i64, w as i64]);
        l2_normalize(&t, 1)
    }

    pub(crate) fn blob_scene(blobs: usize) -> Tensor {
        blob_scene_with_background(blobs, -0.1)
    }

    pub(crate) fn audio_e0(b: i64) -> Tensor {
        let mut a = vec![0f64; (b * C) as usize];
        for i in 0..b as usize {
            a[i * C as usize] = 1.0;
        }
        Tensor::from_slice(&a).view([b, C])
    }

    #[test]
    fn finds_one_two_and_three_blobs_in_one_batch() {
        let visual = Tensor::cat(&[blob_scene(1), blob_scene(2), blob_scene(3)], 0);
        let out =
            iterative_object_identification(&visual, &audio_e0(3), &IoiConfig::default()).unwrap();
        assert_eq!(
            (0..3).map(|i| out.num_sources(i)).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // Three iterations ran (one per blob of the busiest sample); sample 0 stopped after the first.
        assert_eq!(out.objects.size(), [3, 3, C]);
        assert_eq!(
            out.kinds[0],
            vec![EntryKind::Object, EntryKind::Finished, EntryKind::Finished]
        );
        // Each group's map peaks (−d_p = 0) on its own blob.
        let maps = out.object_maps(2).unwrap();
        assert_eq!(maps.size(), [3, 6, 6]);
        for (g, (y, x)) in [(0i64, (0i64, 0i64)), (1, (0, 4)), (2, (4, 0))] {
            let v = f64::try_from(maps.get(g).get(y).get(x)).unwrap();
            assert!(v.abs() < 1e-9, "group {g} map at its blob is {v}");
        }
        assert_eq!(out.maps.device(), Device::Cpu);
    }

    #[test]
    fn identical_blobs_merge_into_one_source() {
        // A copy of the blob elsewhere is at distance 0 from the first anchor, so the first region takes both
        // blobs and IOI reports a single source.
        let scene = blob_scene(1);
        let two_same = {
            let s = Vec::<f64>::try_from(scene.flatten(0, -1)).unwrap();
            let mut d = s.clone();
            // Copy the blob at (0,0) to (4,4).
            for ch in 0..C as usize {
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    d[(ch * 6 + 4 + dy) * 6 + 4 + dx] = s[(ch * 6 + dy) * 6 + dx];
                }
            }
            Tensor::from_slice(&d).view([1, C, 6, 6])
        };
        let out = iterative_object_identification(&two_same, &audio_e0(1), &IoiConfig::default())
            .unwrap();
        assert_eq!(out.num_sources(0), 1);
    }

    #[test]
    fn salient_background_is_recognised_as_background() {
        // Background at cosine 0.3: above the 0.1 stop level, so IOI anchors a second time on it, but it is
        // inside the trimap's background (Neg(0.3) = σ(10/3) ≈ 0.97), so e_n ≈ 0.86·L_bg and that anchor has
        // cosine ≈ 1 > 0.7 with e_n. One object entry, one background entry, one source.
        let scene = blob_scene_with_background(1, 0.3);
        let out =
            iterative_object_identification(&scene, &audio_e0(1), &IoiConfig::default()).unwrap();
        assert_eq!(out.kinds[0], vec![EntryKind::Object, EntryKind::Background]);
        assert_eq!(out.groups[0], vec![ObjectGroup { members: vec![0] }]);
    }

    #[test]
    fn anchors_carry_gradient_to_the_features() {
        let visual = blob_scene(2).set_requires_grad(true);
        let out =
            iterative_object_identification(&visual, &audio_e0(1), &IoiConfig::default()).unwrap();
        assert!(out.objects.requires_grad() && out.background.requires_grad());
        assert!(!out.maps.requires_grad());
    }
}
