//! Iterative object identification (IOI), NoPrior's way of splitting a sound map into a variable number of
//! object maps without knowing how many sources there are (docs/method.md §2.3).
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
//!
//! Everything runs batched on the input's device. The loop keeps its state (remaining saliency, taken
//! pixels, live samples) in tensors and masks samples that have stopped; the host reads one scalar every
//! [`CHECK_EVERY`] iterations to learn whether all samples have stopped, or, with an iteration budget
//! ([`IoiConfig::iteration_budget`]), runs a fixed number of iterations and reads nothing; columns in which
//! every sample had already stopped then hold placeholders only. The grouping is a batched
//! connected-components computation that yields per-entry labels ([`IoiOutput::labels`]); the host-side
//! view (kinds, groups) is read back in one copy, and only when asked for.

#[cfg(test)]
pub(crate) mod reference;

use std::cell::OnceCell;

use crate::error::{Result, TrainError};
use crate::model::normalize::cosine;
use crate::shape::expect_dims;
use crate::trimap::Trimap;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Iterations between two host reads of "have all samples stopped?". Each read waits for the device, so
/// reading every iteration would serialise the loop; reading every few costs at most `CHECK_EVERY − 1`
/// masked iterations after the last sample stops, which are dropped from the output.
pub const CHECK_EVERY: i64 = 4;

/// Label of a background entry in [`IoiOutput::labels`].
pub const LABEL_BACKGROUND: i64 = -1;
/// Label of a placeholder entry (the sample had already stopped) in [`IoiOutput::labels`].
pub const LABEL_FINISHED: i64 = -2;

/// IOI constants, all hard-coded in NoPrior's `model_base.py` (docs/method.md §2.3, §10).
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
    /// `None`: iterate until every sample has stopped, as NoPrior does; the host learns that by reading one
    /// scalar every [`CHECK_EVERY`] iterations. `Some(k)`: run exactly `min(k, N + 1)` iterations and never
    /// read, so a training step does not wait for the device; a sample still going after k iterations stops
    /// there. Both give the same result whenever no sample needs more than k iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration_budget: Option<usize>,
}

impl Default for IoiConfig {
    fn default() -> Self {
        Self {
            trimap: Trimap::default(),
            stop_saliency: 0.1,
            background_similarity: 0.7,
            merge_similarity: 0.6,
            iteration_budget: None,
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

/// Per sample: the kind of every bank entry, and the object groups.
type Grouping = (Vec<Vec<EntryKind>>, Vec<Vec<ObjectGroup>>);

/// Everything IOI found for a batch.
#[derive(Debug)]
pub struct IoiOutput {
    /// Object bank `[B, T, C]` (T = iterations run), zero rows where a sample had stopped. Has gradient.
    pub objects: Tensor,
    /// Background prototypes `e_n`, `[B, C]`. Has gradient.
    pub background: Tensor,
    /// Per-iteration localisation maps `−d_p`, `[B, T, h, w]`, no gradient.
    pub maps: Tensor,
    /// Entry labels `[B, T]` (int64, on the bank's device): `g ≥ 0` for an entry of the sample's object group
    /// g (groups numbered in the order of their smallest member), [`LABEL_BACKGROUND`] or
    /// [`LABEL_FINISHED`].
    pub labels: Tensor,
    /// Samples still going when an iteration budget ended the loop, 0-dim int64 on the bank's device (always
    /// 0 without a budget).
    pub cut_short: Tensor,
    /// Kinds and groups read back from `labels`, filled on first use.
    host: OnceCell<Grouping>,
}

impl IoiOutput {
    /// An output from its tensors; `labels` as described on the field.
    pub fn new(objects: Tensor, background: Tensor, maps: Tensor, labels: Tensor) -> Self {
        let cut_short = Tensor::zeros([], (Kind::Int64, labels.device()));
        Self {
            objects,
            background,
            maps,
            labels,
            cut_short,
            host: OnceCell::new(),
        }
    }

    /// Kinds and groups of every sample, from one copy of `labels` on the first call.
    fn host(&self) -> Result<&Grouping> {
        if let Some(g) = self.host.get() {
            return Ok(g);
        }
        let labels = Vec::<Vec<i64>>::try_from(self.labels.to_kind(Kind::Int64))?;
        let grouping = host_grouping(&labels);
        Ok(self.host.get_or_init(|| grouping))
    }

    /// `kinds()[i][t]`: what entry t of sample i is.
    pub fn kinds(&self) -> Result<&[Vec<EntryKind>]> {
        Ok(&self.host()?.0)
    }

    /// `groups()[i]`: sample i's sources, ordered by root index.
    pub fn groups(&self) -> Result<&[Vec<ObjectGroup>]> {
        Ok(&self.host()?.1)
    }

    /// Number of sources found for sample `i` (its group count).
    pub fn num_sources(&self, i: usize) -> Result<usize> {
        Ok(self.groups()?.get(i).map_or(0, Vec::len))
    }

    /// Number of sources found for every sample.
    pub fn source_counts(&self) -> Result<Vec<usize>> {
        Ok(self.groups()?.iter().map(Vec::len).collect())
    }

    /// Number of sources found for every sample, `[B]` int64 on the labels' device (nothing read back):
    /// groups are numbered from 0, so the count is the largest label plus one.
    pub fn source_count_tensor(&self) -> Tensor {
        (self.labels.amax([1], false) + 1).clamp_min(0)
    }

    /// Sample `i`'s object maps `[G, h, w]`, each the mean of its members' `−d_p` maps; `None` if it has no
    /// group.
    pub fn object_maps(&self, i: usize) -> Result<Option<Tensor>> {
        let g = self.num_sources(i)? as i64;
        if g == 0 {
            return Ok(None);
        }
        let (t, h, w) = {
            let s = self.maps.size();
            (s[1], s[2], s[3])
        };
        let sample = self.maps.get(i as i64).view([t, h * w]);
        let slots = Tensor::arange(g, (Kind::Int64, self.labels.device())).unsqueeze(1);
        let member = self
            .labels
            .get(i as i64)
            .unsqueeze(0)
            .eq_tensor(&slots)
            .to_kind(sample.kind()); // [G, T]
        let sums = member.matmul(&sample);
        let counts = member.sum_dim_intlist(1i64, true, sample.kind());
        Ok(Some((sums / counts).view([g, h, w])))
    }
}

/// Kinds and groups from host labels; a group's members come out in increasing order.
fn host_grouping(labels: &[Vec<i64>]) -> Grouping {
    labels
        .iter()
        .map(|row| {
            let mut groups: Vec<ObjectGroup> = Vec::new();
            let kinds = row
                .iter()
                .enumerate()
                .map(|(j, &l)| match l {
                    LABEL_FINISHED => EntryKind::Finished,
                    l if l < 0 => EntryKind::Background,
                    l => {
                        let g = l as usize;
                        if groups.len() <= g {
                            groups.resize(g + 1, ObjectGroup { members: vec![] });
                        }
                        groups[g].members.push(j);
                        EntryKind::Object
                    }
                })
                .collect();
            (kinds, groups)
        })
        .unzip()
}

/// What every IOI iteration reads: shapes, `S`, `L = V ⊙ S`, `e_n`, and detached copies for the selection.
pub(crate) struct Prepared {
    pub b: i64,
    pub c: i64,
    pub h: i64,
    pub w: i64,
    pub n: i64,
    pub device: tch::Device,
    pub kind: Kind,
    /// `S = cos(V, a)`, `[B, N]`.
    pub sim: Tensor,
    /// `L`, `[B, N, C]`, with gradient.
    pub weighted: Tensor,
    /// `e_n`, `[B, C]`, with gradient.
    pub background: Tensor,
    /// `L` detached: selection only decides indices and regions.
    pub weighted_d: Tensor,
    /// `d_n(x) = ‖L(x) − e_n‖₂`, `[B, N]`, detached.
    pub d_n: Tensor,
}

/// Checks the shapes and computes what the iterations read.
pub(crate) fn prepare(visual: &Tensor, audio: &Tensor, cfg: &IoiConfig) -> Result<Prepared> {
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
    let feats = visual.view([b, c, n]).transpose(1, 2); // [B, N, C]
    let sim = feats.matmul(&audio.unsqueeze(-1)).squeeze_dim(-1); // [B, N]
    let weighted = &feats * sim.unsqueeze(-1); // L = V ⊙ S
    let background =
        (&weighted * cfg.trimap.negative(&sim).unsqueeze(-1)).mean_dim(1, false, None::<Kind>);
    let weighted_d = weighted.detach();
    let d_n = (&weighted_d - background.detach().unsqueeze(1)).norm_scalaropt_dim(2.0, [-1], false);
    Ok(Prepared {
        b,
        c,
        h,
        w,
        n,
        device: visual.device(),
        kind: visual.kind(),
        sim,
        weighted,
        background,
        weighted_d,
        d_n,
    })
}

/// Runs IOI on per-pixel L2-normalised `visual [B, C, h, w]` and L2-normalised `audio [B, C]`.
pub fn iterative_object_identification(
    visual: &Tensor,
    audio: &Tensor,
    cfg: &IoiConfig,
) -> Result<IoiOutput> {
    let Prepared {
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
    } = prepare(visual, audio, cfg)?;
    let mut remaining = sim.detach();
    let mut taken = Tensor::zeros([b, n], (Kind::Bool, device));
    let mut alive = Tensor::ones([b], (Kind::Bool, device));
    // Iterations that started with a live sample. Samples only ever stop, so these form a prefix, and the
    // count is the number of iterations the per-sample loop would have run.
    let mut live_iterations = Tensor::zeros([], (Kind::Int64, device));
    let mut anchor_at = Vec::new();
    let mut alive_at = Vec::new();
    let mut maps = Vec::new();
    // Each live iteration takes at least its anchor pixel or stops the sample, so n + 1 bounds the loop.
    let limit = cfg
        .iteration_budget
        .map_or(n + 1, |k| (k as i64).clamp(1, n + 1));
    let mut ran = limit;
    for t in 1..=limit {
        let anchor_idx = remaining.argmax(1, false); // [B]
        let gather_idx = anchor_idx.view([b, 1, 1]).expand([b, 1, c], false);
        let anchor = weighted_d.gather(1, &gather_idx, false).squeeze_dim(1)
            * alive.to_kind(kind).unsqueeze(-1);
        let d_p = (&weighted_d - anchor.unsqueeze(1)).norm_scalaropt_dim(2.0, [-1], false);
        let region = d_p
            .lt_tensor(&d_n)
            .logical_and(&taken.logical_not())
            .logical_and(&alive.unsqueeze(-1));
        taken = taken.logical_or(&region);
        remaining = &remaining * region.logical_not().to_kind(kind);
        // Compared in f64, as the threshold is.
        let stop = region.any_dim(1, false).logical_not().logical_or(
            &remaining
                .amax([1], false)
                .to_kind(Kind::Double)
                .lt(cfg.stop_saliency),
        );
        live_iterations += alive.any().to_kind(Kind::Int64);
        let next = alive.logical_and(&stop.logical_not());
        anchor_at.push(anchor_idx);
        alive_at.push(alive);
        maps.push(-d_p);
        alive = next;
        if cfg.iteration_budget.is_none() && (t % CHECK_EVERY == 0 || t == limit) {
            // The one host read: this equals the live iterations so far when no sample is left, and exceeds
            // t otherwise.
            let seen = i64::try_from(&(&live_iterations + alive.any().to_kind(Kind::Int64)))?;
            if seen <= t || t == limit {
                ran = seen.min(t);
                break;
            }
        }
    }
    let ran = ran.max(1) as usize;
    anchor_at.truncate(ran);
    alive_at.truncate(ran);
    maps.truncate(ran);
    let t = ran as i64;
    // Samples the loop left going (only an iteration budget does that).
    let cut_short = alive.sum(Kind::Int64);
    let alive = Tensor::stack(&alive_at, 1); // [B, T]

    // One gather for the whole bank, so the graph holds one node rather than one per iteration.
    let idx = Tensor::stack(&anchor_at, 1)
        .unsqueeze(-1)
        .expand([b, t, c], false);
    let objects = weighted.gather(1, &idx, false) * alive.to_kind(kind).unsqueeze(-1); // [B, T, C]
    let maps = Tensor::stack(&maps, 1).view([b, t, h, w]);
    let labels = group_labels(&objects.detach(), &background.detach(), &alive, cfg);
    let mut out = IoiOutput::new(objects, background, maps, labels);
    out.cut_short = cut_short;
    Ok(out)
}

/// Entry labels `[B, T]` (see [`IoiOutput::labels`]) of a detached bank `[B, T, C]`, background `[B, C]` and
/// live mask `[B, T]`.
///
/// Union–find over object entries, merging j with every earlier object k when `cos(obj_j, obj_k)` exceeds
/// the threshold, ends in the connected components of that graph, so they are computed directly: the
/// reachability matrix is squared until it spans paths of length T − 1 (⌈log₂(T − 1)⌉ batched products of
/// `[T, T]` matrices, T being the iterations run), each entry's root is its smallest reachable index, and a
/// group's number is how many roots precede its own.
fn group_labels(objects: &Tensor, background: &Tensor, alive: &Tensor, cfg: &IoiConfig) -> Tensor {
    let t = objects.size()[1];
    let device = objects.device();
    // Thresholds compare in f64, as the cosines used to be read back for.
    let to_bg = cosine(objects, &background.unsqueeze(1))
        .to_kind(Kind::Double)
        .gt(cfg.background_similarity);
    let is_object = alive.logical_and(&to_bg.logical_not()); // [B, T]
    let close = cosine(&objects.unsqueeze(2), &objects.unsqueeze(1))
        .to_kind(Kind::Double)
        .gt(cfg.merge_similarity); // [B, T, T]
                                   // Only (j, k < j) pairs were ever tested; mirror them so the graph is undirected.
    let edges = close
        .tril(-1)
        .logical_and(&is_object.unsqueeze(2))
        .logical_and(&is_object.unsqueeze(1));
    let self_loops = Tensor::eye(t, (Kind::Bool, device))
        .unsqueeze(0)
        .logical_and(&is_object.unsqueeze(2));
    let mut reach = edges
        .logical_or(&edges.transpose(1, 2))
        .logical_or(&self_loops)
        .to_kind(Kind::Float);
    let mut span = 1;
    while span < t - 1 {
        reach = reach.bmm(&reach).gt(0.0).to_kind(Kind::Float);
        span *= 2;
    }
    let index = Tensor::arange(t, (Kind::Int64, device));
    let none = Tensor::full([], t, (Kind::Int64, device));
    let root = index
        .view([1, 1, t])
        .where_self(&reach.gt(0.0), &none)
        .amin([-1], false); // [B, T], T where not an object
    let is_root = is_object.logical_and(&root.eq_tensor(&index.unsqueeze(0)));
    let roots_up_to = is_root.cumsum(1, Kind::Int64);
    let group = roots_up_to.gather(1, &root.clamp_max(t - 1), false) - 1;
    let not_object = Tensor::full([], LABEL_BACKGROUND, (Kind::Int64, device)).where_self(
        alive,
        &Tensor::full([], LABEL_FINISHED, (Kind::Int64, device)),
    );
    group.where_self(&is_object, &not_object)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::normalize::l2_normalize;
    use tch::Device;

    use super::reference::{self, ReferenceOutput};

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
        assert_eq!(out.source_counts().unwrap(), vec![1, 2, 3]);
        // Three iterations ran (one per blob of the busiest sample); sample 0 stopped after the first.
        assert_eq!(out.objects.size(), [3, 3, C]);
        assert_eq!(
            out.kinds().unwrap()[0],
            vec![EntryKind::Object, EntryKind::Finished, EntryKind::Finished]
        );
        // Each group's map peaks (−d_p = 0) on its own blob.
        let maps = out.object_maps(2).unwrap().unwrap();
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
        assert_eq!(out.num_sources(0).unwrap(), 1);
    }

    #[test]
    fn salient_background_is_recognised_as_background() {
        // Background at cosine 0.3: above the 0.1 stop level, so IOI anchors a second time on it, but it is
        // inside the trimap's background (Neg(0.3) = σ(10/3) ≈ 0.97), so e_n ≈ 0.86·L_bg and that anchor has
        // cosine ≈ 1 > 0.7 with e_n. One object entry, one background entry, one source.
        let scene = blob_scene_with_background(1, 0.3);
        let out =
            iterative_object_identification(&scene, &audio_e0(1), &IoiConfig::default()).unwrap();
        assert_eq!(
            out.kinds().unwrap()[0],
            vec![EntryKind::Object, EntryKind::Background]
        );
        assert_eq!(
            out.groups().unwrap()[0],
            vec![ObjectGroup { members: vec![0] }]
        );
    }

    #[test]
    fn anchors_carry_gradient_to_the_features() {
        let visual = blob_scene(2).set_requires_grad(true);
        let out =
            iterative_object_identification(&visual, &audio_e0(1), &IoiConfig::default()).unwrap();
        assert!(out.objects.requires_grad() && out.background.requires_grad());
        assert!(!out.maps.requires_grad());
    }

    /// Map sizes, channel counts and batch sizes the batched IOI is checked against the reference on.
    const SHAPES: [(i64, i64); 4] = [(1, 1), (3, 3), (7, 7), (4, 6)];
    const CHANNELS: [i64; 2] = [8, 32];
    const BATCHES: [i64; 3] = [1, 3, 8];

    /// The 48 seeded `(visual, audio)` cases of every shape, channel count and batch size above, in f64 and f32.
    pub(crate) fn random_cases() -> Vec<(Tensor, Tensor)> {
        let mut cases = Vec::new();
        for (s, &hw) in SHAPES.iter().enumerate() {
            for &c in &CHANNELS {
                for &b in &BATCHES {
                    for (k, kind) in [Kind::Double, Kind::Float].into_iter().enumerate() {
                        let seed = (s as i64 * 100 + c) * 10 + b + k as i64 * 1000;
                        cases.push(random_inputs(b, c, hw, kind, seed));
                    }
                }
            }
        }
        cases
    }

    /// Random inputs normalised as IOI expects: `visual = normalise(randn + α_i·a_i)` per pixel and
    /// `a = normalise(randn)`, with α_i spread over [0, 3) so that samples range from barely salient (stops
    /// at once) to salient everywhere (runs long).
    pub(crate) fn random_inputs(
        b: i64,
        c: i64,
        (h, w): (i64, i64),
        kind: Kind,
        seed: i64,
    ) -> (Tensor, Tensor) {
        tch::manual_seed(seed);
        let opts = (Kind::Double, Device::Cpu);
        let audio = l2_normalize(&Tensor::randn([b, c], opts), 1);
        let alpha = Tensor::rand([b, 1, 1, 1], opts) * 3.0;
        let visual = Tensor::randn([b, c, h, w], opts) + alpha * audio.view([b, c, 1, 1]);
        (l2_normalize(&visual, 1).to_kind(kind), audio.to_kind(kind))
    }

    pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.size(), b.size());
        if a.numel() == 0 {
            return 0.0;
        }
        f64::try_from(
            (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
                .abs()
                .max(),
        )
        .unwrap()
    }

    /// The reference's object maps: each group's members' maps picked with `index_select` and averaged.
    fn reference_object_maps(out: &ReferenceOutput, i: usize) -> Option<Tensor> {
        let groups = &out.groups[i];
        if groups.is_empty() {
            return None;
        }
        let sample = out.maps.get(i as i64);
        let maps: Vec<Tensor> = groups
            .iter()
            .map(|g| {
                let idx: Vec<i64> = g.members.iter().map(|&m| m as i64).collect();
                sample
                    .index_select(0, &Tensor::from_slice(&idx))
                    .mean_dim(0, false, None::<Kind>)
            })
            .collect();
        Some(Tensor::stack(&maps, 0))
    }

    /// Runs both implementations and asserts equal kinds, groups, bank, background, maps and object maps.
    pub(crate) fn assert_matches_reference(
        visual: &Tensor,
        audio: &Tensor,
        cfg: &IoiConfig,
    ) -> (IoiOutput, ReferenceOutput) {
        let new = iterative_object_identification(visual, audio, cfg).unwrap();
        let old = reference::iterative_object_identification(visual, audio, cfg).unwrap();
        let what = format!("visual {:?} {:?}", visual.size(), visual.kind());
        assert_eq!(new.kinds().unwrap(), old.kinds.as_slice(), "{what}");
        assert_eq!(new.groups().unwrap(), old.groups.as_slice(), "{what}");
        assert!(max_diff(&new.objects, &old.objects) < 1e-5, "{what}");
        assert!(max_diff(&new.background, &old.background) < 1e-5, "{what}");
        assert!(max_diff(&new.maps, &old.maps) < 1e-5, "{what}");
        for i in 0..old.groups.len() {
            match (new.object_maps(i).unwrap(), reference_object_maps(&old, i)) {
                (Some(a), Some(b)) => assert!(max_diff(&a, &b) < 1e-5, "{what} sample {i}"),
                (None, None) => {}
                (a, b) => panic!("{what} sample {i}: {a:?} vs {b:?}"),
            }
        }
        assert_eq!(new.objects.requires_grad(), old.objects.requires_grad());
        (new, old)
    }

    /// Iteration at which each sample stopped (its count of non-placeholder entries).
    fn stop_iterations(out: &ReferenceOutput) -> Vec<usize> {
        out.kinds
            .iter()
            .map(|k| k.iter().filter(|&&k| k != EntryKind::Finished).count())
            .collect()
    }

    #[test]
    fn matches_reference_on_random_inputs() {
        let cfg = IoiConfig::default();
        let (mut stops, mut backgrounds, mut merges, mut cases) = (Vec::new(), 0, 0, 0);
        for (visual, audio) in random_cases() {
            let (_, old) = assert_matches_reference(&visual, &audio, &cfg);
            stops.extend(stop_iterations(&old));
            backgrounds += old
                .kinds
                .iter()
                .flatten()
                .filter(|&&k| k == EntryKind::Background)
                .count();
            merges += old
                .groups
                .iter()
                .flatten()
                .filter(|g| g.members.len() > 1)
                .count();
            cases += 1;
        }
        assert_eq!(cases, 48);
        // The random cases exercise every branch: early and late stops, background entries and merges.
        stops.sort_unstable();
        stops.dedup();
        assert!(
            stops.len() >= 4 && stops[0] == 1,
            "stop iterations {stops:?}"
        );
        assert!(
            backgrounds > 0 && merges > 0,
            "{backgrounds} background entries, {merges} merges"
        );
    }

    /// With a budget of N + 1 (never binding) the loop reads nothing and gives the unbounded result, with
    /// placeholder columns after the batch's last live iteration; L_OSC is the same too.
    #[test]
    fn an_ample_iteration_budget_gives_the_unbounded_result() {
        let mut padded = 0;
        for (visual, audio) in random_cases() {
            let n = visual.size()[2] * visual.size()[3];
            let exact =
                iterative_object_identification(&visual, &audio, &IoiConfig::default()).unwrap();
            let cfg = IoiConfig {
                iteration_budget: Some(n as usize + 1),
                ..IoiConfig::default()
            };
            let budget = iterative_object_identification(&visual, &audio, &cfg).unwrap();
            let (ran, t) = (exact.objects.size()[1], budget.objects.size()[1]);
            assert_eq!(t, (n + 1).max(1));
            padded += usize::from(t > ran);
            assert!(max_diff(&budget.objects.narrow(1, 0, ran), &exact.objects) < 1e-6);
            assert!(max_diff(&budget.maps.narrow(1, 0, ran), &exact.maps) < 1e-6);
            assert!(budget.labels.narrow(1, 0, ran).equal(&exact.labels));
            assert_eq!(i64::try_from(&budget.cut_short).unwrap(), 0);
            assert_eq!(i64::try_from(&exact.cut_short).unwrap(), 0);
            let tail = budget.labels.narrow(1, ran, t - ran);
            assert!(bool::try_from(tail.eq(LABEL_FINISHED).all()).unwrap());
            assert_eq!(budget.groups().unwrap(), exact.groups().unwrap());
            assert!(
                Vec::<i64>::try_from(budget.source_count_tensor()).unwrap()
                    == exact
                        .source_counts()
                        .unwrap()
                        .iter()
                        .map(|&c| c as i64)
                        .collect::<Vec<_>>()
            );
            let osc = |out: &IoiOutput| {
                f64::try_from(crate::loss::l_osc::object_similarity_clustering(out).unwrap())
                    .unwrap()
            };
            assert!(
                (osc(&budget) - osc(&exact)).abs() < 1e-5,
                "{:?}",
                visual.size()
            );
        }
        assert!(padded > 40, "{padded} cases had placeholder columns");
    }

    /// A budget below what the busiest sample needs stops every sample there: the bank is the first k
    /// entries of the unbounded run, grouped among themselves.
    #[test]
    fn a_binding_iteration_budget_keeps_the_first_iterations() {
        let mut bound = 0;
        for (visual, audio) in random_cases() {
            let exact =
                iterative_object_identification(&visual, &audio, &IoiConfig::default()).unwrap();
            let ran = exact.objects.size()[1];
            if ran < 3 {
                continue;
            }
            bound += 1;
            let k = ran - 1;
            let cfg = IoiConfig {
                iteration_budget: Some(k as usize),
                ..IoiConfig::default()
            };
            let cut = iterative_object_identification(&visual, &audio, &cfg).unwrap();
            assert_eq!(cut.objects.size()[1], k);
            // The samples whose entry k (0-based) is live in the unbounded run were still going.
            let still = exact
                .labels
                .select(1, k)
                .ne(LABEL_FINISHED)
                .sum(Kind::Int64);
            assert_eq!(
                i64::try_from(&cut.cut_short).unwrap(),
                i64::try_from(&still).unwrap()
            );
            assert!(i64::try_from(&cut.cut_short).unwrap() >= 1);
            assert!(max_diff(&cut.objects, &exact.objects.narrow(1, 0, k)) < 1e-6);
            assert!(max_diff(&cut.maps, &exact.maps.narrow(1, 0, k)) < 1e-6);
            let alive = exact.labels.narrow(1, 0, k).ne(LABEL_FINISHED);
            let want = group_labels(
                &exact.objects.narrow(1, 0, k).detach(),
                &exact.background.detach(),
                &alive,
                &cfg,
            );
            assert!(cut.labels.equal(&want), "{:?}", visual.size());
        }
        assert!(bound > 10, "only {bound} cases ran 3 iterations or more");
    }

    #[test]
    fn matches_reference_when_a_sample_stops_at_the_first_iteration() {
        // Sample 0 is one feature everywhere: its first region takes every pixel, so it stops at once while
        // the random samples go on.
        let (visual, audio) = random_inputs(3, 8, (4, 6), Kind::Double, 11);
        let flat = l2_normalize(
            &(audio.get(0) + 0.3)
                .view([1, 8, 1, 1])
                .expand([1, 8, 4, 6], false),
            1,
        );
        let visual = Tensor::cat(&[flat, visual.narrow(0, 1, 2)], 0);
        let (_, old) = assert_matches_reference(&visual, &audio, &IoiConfig::default());
        let stops = stop_iterations(&old);
        assert_eq!(stops[0], 1);
        assert!(stops[1..].iter().any(|&s| s > 1), "{stops:?}");
    }

    #[test]
    fn matches_reference_when_samples_stop_at_different_iterations() {
        let visual = Tensor::cat(&[blob_scene(2), blob_scene(1), blob_scene(3)], 0);
        let (new, old) = assert_matches_reference(&visual, &audio_e0(3), &IoiConfig::default());
        assert_eq!(stop_iterations(&old), vec![2, 1, 3]);
        assert_eq!(new.source_counts().unwrap(), vec![2, 1, 3]);
        // Random batches where every sample stops at its own iteration, with the host check falling before,
        // on and after the last stop.
        let mut distinct = 0;
        for seed in 0..12 {
            let (visual, audio) = random_inputs(8, 32, (7, 7), Kind::Float, 500 + seed);
            let (_, old) = assert_matches_reference(&visual, &audio, &IoiConfig::default());
            let mut stops = stop_iterations(&old);
            stops.sort_unstable();
            stops.dedup();
            distinct = distinct.max(stops.len());
        }
        assert!(distinct >= 4, "{distinct}");
    }

    #[test]
    fn matches_reference_when_everything_is_background() {
        let cfg = IoiConfig {
            background_similarity: -2.0,
            ..IoiConfig::default()
        };
        for (b, c, hw) in [(1, 8, (1, 1)), (3, 32, (3, 3)), (8, 8, (7, 7))] {
            let (visual, audio) = random_inputs(b, c, hw, Kind::Double, 21 + b);
            let (new, _) = assert_matches_reference(&visual, &audio, &cfg);
            assert!(new.groups().unwrap().iter().all(Vec::is_empty));
            assert!(new.object_maps(0).unwrap().is_none());
        }
    }

    #[test]
    fn matches_reference_when_everything_merges_into_one_group() {
        let cfg = IoiConfig {
            background_similarity: 2.0,
            merge_similarity: -2.0,
            ..IoiConfig::default()
        };
        for (b, c, hw) in [(1, 8, (1, 1)), (3, 32, (4, 6)), (8, 8, (7, 7))] {
            let (visual, audio) = random_inputs(b, c, hw, Kind::Double, 31 + b);
            let (new, old) = assert_matches_reference(&visual, &audio, &cfg);
            assert!(new.source_counts().unwrap().iter().all(|&n| n == 1));
            assert!(old.groups.iter().zip(&old.kinds).all(|(g, k)| {
                g[0].members.len() == k.iter().filter(|&&k| k == EntryKind::Object).count()
            }));
        }
    }

    #[test]
    fn labels_stay_on_the_device_of_the_bank() {
        let (visual, audio) = random_inputs(3, 8, (3, 3), Kind::Float, 3);
        let out = iterative_object_identification(&visual, &audio, &IoiConfig::default()).unwrap();
        assert_eq!(out.labels.kind(), Kind::Int64);
        assert_eq!(out.labels.size(), out.objects.size()[..2]);
        assert_eq!(out.labels.device(), out.objects.device());
    }

    /// The batched grouping against the reference's union–find on banks `[B, T, C]` with live masks.
    fn assert_grouping_matches(
        objects: &Tensor,
        background: &Tensor,
        alive: &Tensor,
        cfg: &IoiConfig,
    ) {
        let labels = group_labels(objects, background, alive, cfg);
        let new = host_grouping(&Vec::<Vec<i64>>::try_from(&labels).unwrap());
        let alive_at = Vec::<Vec<bool>>::try_from(&alive.transpose(0, 1).contiguous()).unwrap();
        let old = reference::group_entries(objects, background, &alive_at, cfg).unwrap();
        assert_eq!(new, old);
    }

    #[test]
    fn grouping_matches_union_find_on_long_chains() {
        // obj_j = e_p(j) + e_p(j)+1 + e_p(j)+2 over a shuffled order p: neighbours on the chain have cosine
        // 2/3 > 0.6 and nothing else merges directly, so one component spans 10 entries joined link by link
        // in an order that keeps several partial groups open until the end. Entry 0 sits at one end of the
        // chain, nine links from the other.
        let order = [0i64, 9, 4, 7, 2, 5, 8, 1, 6, 3];
        let (t, c) = (order.len() as i64 + 2, 16i64);
        let mut data = vec![0f64; (t * c) as usize];
        for (j, &p) in order.iter().enumerate() {
            for d in 0..3 {
                data[j * c as usize + (p + d) as usize] = 1.0;
            }
        }
        // Two more entries, a pair of their own on channels 14 and 15.
        data[10 * c as usize + 14] = 1.0;
        data[11 * c as usize + 14] = 1.0;
        data[11 * c as usize + 15] = 0.5;
        let objects = Tensor::from_slice(&data).view([1, t, c]);
        let background = Tensor::zeros([1, c], (Kind::Double, Device::Cpu));
        let alive = Tensor::ones([1, t], (Kind::Bool, Device::Cpu));
        let cfg = IoiConfig::default();
        let labels =
            Vec::<i64>::try_from(group_labels(&objects, &background, &alive, &cfg).view([-1]))
                .unwrap();
        assert_eq!(labels, [vec![0; 10], vec![1, 1]].concat());
        assert_grouping_matches(&objects, &background, &alive, &cfg);
    }

    #[test]
    fn grouping_matches_union_find_on_random_banks() {
        // Three channels crowd the entries, so merges chain often; thresholds vary.
        tch::manual_seed(5);
        for round in 0..40i64 {
            let (b, t) = (4i64, 1 + round % 13);
            let objects = Tensor::randn([b, t, 3], (Kind::Double, Device::Cpu));
            let background = Tensor::randn([b, 3], (Kind::Double, Device::Cpu));
            let alive = Tensor::rand([b, t], (Kind::Double, Device::Cpu)).gt(0.15);
            let objects = objects * alive.to_kind(Kind::Double).unsqueeze(-1);
            let cfg = IoiConfig {
                background_similarity: 0.5 + 0.02 * (round % 10) as f64,
                merge_similarity: 0.2 + 0.05 * (round % 12) as f64,
                ..IoiConfig::default()
            };
            assert_grouping_matches(&objects, &background, &alive, &cfg);
        }
    }
}
