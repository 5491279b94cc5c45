//! `oassl eval`: runs the trained model on the test splits and scores it with `oassl_eval`.
//!
//! Per split (`dataset/ground_truth/<split>.json`, AVS-Synth / VGG-SS list form), each sample gets
//! - one source: `S_a` (docs/method.md §2.2, §11.15);
//! - several sources: the IOI object maps (any number, possibly none);
//!
//! and is scored under the configured protocol (default `oassl`: NoPrior's evaluator with one GT map per
//! source, so single-source splits report IoU@0.5 / AUC / AP and duet splits CAP / CIoU@0.3 / AUC). Two
//! reference rows are scored the same way on every split: a seeded uniform random map and a centre Gaussian.
//!
//! Multi-source protocols score each split source-wise (the evaluators' own: one score per sounding source),
//! frame-wise (one score per frame: the merged maps against the union of its sources) or both, by `[eval]
//! multi_source` (default both, see `oassl_eval::multi_source`): the model's report holds the first in `samples` /
//! `aggregates` (named by its `scoring`) and the second in `frame_wise`; the reference rows and slices likewise.
//!
//! A split whose clips differ in whether a silent object of a sounding object's class is in view (the ground
//! truth's `silent_same_class`, the paper's hard case) is also reported as two slices, [`DISTRACTOR`] and
//! [`NO_DISTRACTOR`]: the same per-sample scores, aggregated over each subset.
//!
//! Writes under `eval/` (each file atomically): `metrics.json` ([`EvalReport`]), `results.md` (the table),
//! `gallery.png` (see [`gallery`]), `maps.safetensors` (the predicted maps, one `[K, h, w]` tensor per sample,
//! readable by `oassl score-maps`) and `index.html`, one page with the table, the gallery and the training loss
//! curve (see `oassl_picture::page`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use tch::{Kind, Tensor};

use oassl_eval::report::aggregate;
use oassl_eval::{
    center_prior_map, random_map, score_annotations, Aggregates, Annotation, Assignment, Map,
    MissingMaps, MultiSourceScoring, MultiSourceSelection, Protocol, SampleScore, ScoreOptions,
    ScoreReport,
};
use oassl_picture::page::{self, Figure};
use oassl_pipeline::config::EvalConfig;
use oassl_pipeline::{Layout, SampleId};

use crate::gallery::{self, GalleryRow, RowKind, RowLabel};
use crate::split_truth::{self, SplitTruth};
use crate::table;
use crate::trained_model::TrainedModel;
use oassl_train::data::batch::{eval_tensors, load_eval_item};
use oassl_train::data::frames::read_frame;
use oassl_train::model::oassl::SampleMaps;
use oassl_train::stage::settings;
use oassl_train::stage::{ModelMeta, TrainFiles};

/// Side of the reference maps (the evaluators' 224 grid).
const REFERENCE_SIDE: usize = 224;

/// Slice of the clips that also show a silent object of a sounding object's class: the case object-aware
/// localisation is meant to fix, so it is read apart from the easy clips.
pub const DISTRACTOR: &str = "distractor";
/// Slice of the clips without such a silent twin.
pub const NO_DISTRACTOR: &str = "no_distractor";

/// Scores of one split.
#[derive(Debug, Clone, Serialize)]
pub struct SplitReport {
    /// Manifest split name.
    pub split: String,
    /// Largest number of sources of a sample in the split (1: single-source split).
    pub max_sources: usize,
    /// The model, per sample and aggregated.
    pub model: ScoreReport,
    /// Uniform random map.
    pub random: Aggregates,
    /// Centre Gaussian prior.
    pub centre_prior: Aggregates,
    /// [`DISTRACTOR`] then [`NO_DISTRACTOR`] when the split has clips of both kinds, else empty.
    pub slices: Vec<SliceReport>,
    /// The three rows scored frame-wise, beside the source-wise ones above, when both were asked for (its
    /// `model` is `model.frame_wise.aggregates`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_wise: Option<FrameWiseRows>,
}

/// The model and reference rows of a split or slice, scored frame-wise.
#[derive(Debug, Clone, Serialize)]
pub struct FrameWiseRows {
    /// The model.
    pub model: Aggregates,
    /// Uniform random map.
    pub random: Aggregates,
    /// Centre Gaussian prior.
    pub centre_prior: Aggregates,
}

/// The aggregates of one slice of a split (its samples are a subset of the split's `model.samples`).
#[derive(Debug, Clone, Serialize)]
pub struct SliceReport {
    /// [`DISTRACTOR`] or [`NO_DISTRACTOR`].
    pub slice: String,
    /// The model.
    pub model: Aggregates,
    /// Uniform random map (each sample keeps the map it had in the whole split).
    pub random: Aggregates,
    /// Centre Gaussian prior.
    pub centre_prior: Aggregates,
    /// The three rows scored frame-wise, when both scorings were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_wise: Option<FrameWiseRows>,
}

/// The whole split or one of its slices, with its three rows of aggregates, as the tables list them.
#[derive(Debug, Clone, Copy)]
pub struct ScoredPart<'a> {
    /// Manifest split name.
    pub split: &'a str,
    /// `None` for the whole split.
    pub slice: Option<&'a str>,
    /// Of the whole split: a slice is read with the same metrics as its split.
    pub max_sources: usize,
    /// The model.
    pub model: &'a Aggregates,
    /// Uniform random map.
    pub random: &'a Aggregates,
    /// Centre Gaussian prior.
    pub centre_prior: &'a Aggregates,
    /// Multi-source scoring of the three rows above (`None` under a single-source protocol).
    pub scoring: Option<MultiSourceScoring>,
    /// The three rows scored frame-wise, beside source-wise ones, when both were asked for.
    pub frame_wise: Option<&'a FrameWiseRows>,
}

impl ScoredPart<'_> {
    /// `test_duet` or `test_duet / distractor`.
    pub fn label(&self) -> String {
        match self.slice {
            None => self.split.to_string(),
            Some(slice) => format!("{} / {slice}", self.split),
        }
    }
}

impl SplitReport {
    /// The whole split, then each slice.
    pub fn parts(&self) -> Vec<ScoredPart<'_>> {
        let whole = ScoredPart {
            split: &self.split,
            slice: None,
            max_sources: self.max_sources,
            model: &self.model.aggregates,
            random: &self.random,
            centre_prior: &self.centre_prior,
            scoring: self.model.scoring,
            frame_wise: self.frame_wise.as_ref(),
        };
        std::iter::once(whole)
            .chain(self.slices.iter().map(|s| ScoredPart {
                split: &self.split,
                slice: Some(&s.slice),
                max_sources: self.max_sources,
                model: &s.model,
                random: &s.random,
                centre_prior: &s.centre_prior,
                scoring: self.model.scoring,
                frame_wise: s.frame_wise.as_ref(),
            }))
            .collect()
    }
}

/// `eval/metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Protocol name.
    pub protocol: String,
    /// `[eval] multi_source`: `source-wise`, `frame-wise` or `both`.
    pub multi_source: String,
    /// The evaluated weights.
    pub model: PathBuf,
    /// Its description.
    pub meta: ModelMeta,
    /// Device used.
    pub device: String,
    /// Inference speed (decode excluded): images per second.
    pub images_per_s: f64,
    /// One entry per split.
    pub splits: Vec<SplitReport>,
}

/// What a run wrote.
#[derive(Debug, Clone)]
pub struct EvalSummary {
    /// The report.
    pub report: EvalReport,
    /// `eval/metrics.json`.
    pub metrics: PathBuf,
    /// `eval/results.md`.
    pub table: PathBuf,
    /// `eval/gallery.png`.
    pub gallery: PathBuf,
    /// `eval/index.html`.
    pub page: PathBuf,
    /// The markdown table.
    pub markdown: String,
}

pub(crate) fn to_map(t: &Tensor) -> Result<Map> {
    let size = t.size();
    let (h, w) = (size[0] as usize, size[1] as usize);
    let data: Vec<f64> = Vec::try_from(
        t.to_kind(Kind::Double)
            .to_device(tch::Device::Cpu)
            .contiguous()
            .view(-1),
    )?;
    Map::from_vec(h, w, data).context("map of unexpected size")
}

/// The maps a sample is scored on: `S_a` for one source, the IOI maps for several; class-conditioned
/// protocols get `S_a` once per source.
fn sample_maps(
    single: Map,
    objects: Option<&Tensor>,
    sources: usize,
    p: &Protocol,
) -> Result<Vec<Map>> {
    if p.assignment == Assignment::Conditioned {
        return Ok(vec![single; sources.max(1)]);
    }
    if sources <= 1 || p.assignment == Assignment::SingleMap {
        return Ok(vec![single]);
    }
    match objects {
        None => Ok(Vec::new()),
        Some(t) => (0..t.size()[0]).map(|g| to_map(&t.get(g))).collect(),
    }
}

/// `tiles` copies of `map` stacked vertically: a reference map of a pair mosaic has one per frame (a centre prior
/// of each frame, not one centred on the seam between them).
fn stacked(map: &Map, tiles: usize) -> Map {
    Map {
        height: map.height * tiles,
        width: map.width,
        data: map.data.repeat(tiles),
    }
}

fn reference_maps(ann: &Annotation, map: &Map, p: &Protocol) -> Vec<Map> {
    match p.assignment {
        Assignment::Conditioned => vec![map.clone(); ann.sources.len().max(1)],
        _ => vec![map.clone()],
    }
}

/// The maps of one split: per sample for scoring, stacked per sample for `maps.safetensors`, and the time the
/// forward passes took.
struct SplitMaps {
    maps: BTreeMap<String, Vec<Map>>,
    stacked: Vec<(String, Tensor)>,
    infer_seconds: f64,
    images: usize,
}

/// Runs the model over a split's samples in batches of `[eval] batch_size`.
fn infer_split(
    trained: &TrainedModel,
    truth: &SplitTruth,
    protocol: &Protocol,
    cfg: &EvalConfig,
    layout: &Layout,
    device: tch::Device,
) -> Result<SplitMaps> {
    let (model, meta, ioi) = (&trained.model, &trained.meta, &trained.ioi);
    let (anns, gt) = (&truth.annotations, &truth.file);
    let ids: Vec<SampleId> = anns
        .iter()
        .map(|a| {
            SampleId::parse(&a.id)
                .with_context(|| format!("{}: sample id {:?}", gt.display(), a.id))
        })
        .collect::<Result<_>>()?;
    let items = ids
        .par_iter()
        .map(|id| {
            load_eval_item(
                id.as_str(),
                &layout.frame(id),
                &layout.audio(id),
                meta.image_size,
                truth.tiles,
                meta.audio_seconds,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = SplitMaps {
        maps: BTreeMap::new(),
        stacked: Vec::new(),
        infer_seconds: 0.0,
        images: 0,
    };
    for (chunk_idx, chunk) in items.chunks(cfg.batch_size).enumerate() {
        let (frames, spec) = eval_tensors(chunk, meta.image_size, device)?;
        let started = Instant::now();
        let inferred = model.infer_maps(&frames, &spec, ioi)?;
        if device.is_cuda() {
            tch::Cuda::synchronize(0);
        }
        out.infer_seconds += started.elapsed().as_secs_f64();
        out.images += chunk.len();
        for (j, sample) in inferred.iter().enumerate() {
            let ann = &anns[chunk_idx * cfg.batch_size + j];
            let single = to_map(&sample.single)?;
            let m = sample_maps(single, sample.objects.as_ref(), ann.sources.len(), protocol)?;
            out.stacked
                .push((ann.id.clone(), stacked_maps(sample, ann)));
            out.maps.insert(ann.id.clone(), m);
        }
    }
    Ok(out)
}

/// A sample's maps as one `[K, h, w]` f32 tensor on the CPU: the IOI object maps of a multi-source sample
/// (`K = 0` when IOI found none), the sound map of a single-source one.
fn stacked_maps(sample: &SampleMaps, ann: &Annotation) -> Tensor {
    match (&sample.objects, ann.sources.len() > 1) {
        (Some(o), true) => o.to_device(tch::Device::Cpu).to_kind(Kind::Float),
        (None, true) => Tensor::zeros([0, 1, 1], (Kind::Float, tch::Device::Cpu)),
        _ => sample
            .single
            .unsqueeze(0)
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous(),
    }
}

/// Runs the evaluation.
pub fn run(cfg: &EvalConfig, layout: &Layout) -> Result<EvalSummary> {
    let Some(protocol) = Protocol::by_name(&cfg.protocol) else {
        bail!("[eval] protocol {:?} is unknown", cfg.protocol);
    };
    let device = settings::device(&cfg.device, "eval")?;
    let trained = TrainedModel::load(&TrainFiles::new(layout), device)?;
    let mut splits = Vec::new();
    let mut gallery_rows = Vec::new();
    let mut all_maps: Vec<(String, Tensor)> = Vec::new();
    let (mut infer_seconds, mut images) = (0.0, 0usize);
    for split in &cfg.splits {
        let truth = split_truth::load(cfg, layout, split, &protocol)?;
        let inferred = infer_split(&trained, &truth, &protocol, cfg, layout, device)?;
        infer_seconds += inferred.infer_seconds;
        images += inferred.images;
        all_maps.extend(inferred.stacked);
        let scored = score_split(split, &truth, &inferred.maps, &protocol, cfg)?;
        gallery_rows.extend(pick_gallery(
            cfg,
            layout,
            &scored.model,
            &truth.annotations,
            &inferred.maps,
        )?);
        splits.push(scored);
    }
    let report = EvalReport {
        protocol: protocol.name.clone(),
        multi_source: cfg.multi_source.clone(),
        model: trained.weights.clone(),
        meta: trained.meta.clone(),
        device: format!("{device:?}"),
        images_per_s: if infer_seconds > 0.0 {
            images as f64 / infer_seconds
        } else {
            0.0
        },
        splits,
    };
    write_outputs(report, &gallery_rows, &all_maps, cfg, layout)
}

/// Writes every output under `eval/`, each atomically: `metrics.json`, `results.md`, `gallery.png`,
/// `maps.safetensors` and `index.html`.
fn write_outputs(
    report: EvalReport,
    gallery_rows: &[GalleryRow],
    all_maps: &[(String, Tensor)],
    cfg: &EvalConfig,
    layout: &Layout,
) -> Result<EvalSummary> {
    let dir = layout.stage_dir("eval");
    let metrics = dir.join("metrics.json");
    let table_path = dir.join("results.md");
    let gallery_path = dir.join("gallery.png");
    let markdown = table::markdown(&report);
    oassl_pipeline::atomic::write_json(&metrics, &report)?;
    oassl_pipeline::atomic::write_bytes(&table_path, markdown.as_bytes())?;
    let picture = gallery::render(gallery_rows, cfg.gallery_tile);
    oassl_pipeline::atomic::write_with(&gallery_path, |w| {
        picture.write_to(w, image::ImageFormat::Png)?;
        Ok(())
    })?;
    write_maps(&dir.join("maps.safetensors"), all_maps)?;
    let page_path = dir.join("index.html");
    let html = results_page(&report, &markdown, &dir, layout);
    oassl_pipeline::atomic::write_bytes(&page_path, html.as_bytes())?;
    Ok(EvalSummary {
        report,
        metrics,
        table: table_path,
        gallery: gallery_path,
        page: page_path,
        markdown,
    })
}

/// `index.html`: the table, the gallery and the training loss curve on one page.
fn results_page(report: &EvalReport, markdown: &str, dir: &Path, layout: &Layout) -> String {
    let curve = TrainFiles::new(layout).curve();
    let figures = [
        Figure {
            heading: "Gallery".into(),
            src: "gallery.png".into(),
            caption: "Per split, the best samples by mean cIoU (green edge) then the worst (red edge): the frame \
                      with its ground-truth boxes, then each predicted map over it, each map scaled to its own \
                      min..max (colour bar: low to high)."
                .into(),
        },
        Figure {
            heading: "Training loss".into(),
            src: page::relative_src(dir, &curve).unwrap_or_else(|| curve.display().to_string()),
            caption: format!("`{}`: each loss term by step.", curve.display()),
        },
    ];
    let title = format!(
        "oassl eval: protocol {}, {} model at step {}",
        report.protocol, report.meta.method, report.meta.step
    );
    page::results_page(&title, markdown, &figures)
}

/// Reference maps by sample id.
type RefMaps = BTreeMap<String, Vec<Map>>;

/// The per-sample reference maps of a split: a seeded uniform random map (seeded per sample position, so a slice
/// scores the very maps the whole split did) and the centre Gaussian, each covering every frame of a sample.
fn reference_rows(truth: &SplitTruth, protocol: &Protocol, cfg: &EvalConfig) -> (RefMaps, RefMaps) {
    let anns = &truth.annotations;
    let random = anns
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let m = random_map(
                cfg.random_seed.wrapping_add(i as u64),
                REFERENCE_SIDE * truth.tiles,
                REFERENCE_SIDE,
            );
            (a.id.clone(), reference_maps(a, &m, protocol))
        })
        .collect();
    let side = REFERENCE_SIDE as f64;
    let prior = stacked(
        &center_prior_map(REFERENCE_SIDE, REFERENCE_SIDE, cfg.prior_sigma * side),
        truth.tiles,
    );
    let centre = anns
        .iter()
        .map(|a| (a.id.clone(), reference_maps(a, &prior, protocol)))
        .collect();
    (random, centre)
}

/// [`DISTRACTOR`] and [`NO_DISTRACTOR`] slices of the model's and the reference rows' scores, when the split
/// holds clips of both kinds; none otherwise.
fn distractor_slices(
    split: &str,
    anns: &[Annotation],
    [model, random, centre]: [&ScoreReport; 3],
    protocol: &Protocol,
) -> Result<Vec<SliceReport>> {
    let distractor: Vec<bool> = anns.iter().map(|a| a.silent_same_class).collect();
    let both_kinds = distractor.iter().any(|&d| d) && distractor.iter().any(|&d| !d);
    if !both_kinds {
        return Ok(Vec::new());
    }
    [(DISTRACTOR, true), (NO_DISTRACTOR, false)]
        .into_iter()
        .map(|(name, flag)| {
            let keep: Vec<bool> = distractor.iter().map(|&d| d == flag).collect();
            let sub = |r: &ScoreReport, scoring: Option<MultiSourceScoring>| {
                slice_aggregates(r, scoring, &keep, protocol).with_context(|| {
                    let how = scoring.map_or("single-source", MultiSourceScoring::name);
                    format!("split {split}, slice {name}: no {how} scores")
                })
            };
            Ok(SliceReport {
                slice: name.to_string(),
                model: sub(model, model.scoring)?,
                random: sub(random, model.scoring)?,
                centre_prior: sub(centre, model.scoring)?,
                frame_wise: match model.frame_wise {
                    None => None,
                    Some(_) => {
                        let fw = Some(MultiSourceScoring::FrameWise);
                        Some(FrameWiseRows {
                            model: sub(model, fw)?,
                            random: sub(random, fw)?,
                            centre_prior: sub(centre, fw)?,
                        })
                    }
                },
            })
        })
        .collect::<Result<Vec<_>>>()
}

/// Scores the model's maps of one split and the two reference maps, on the whole split and, when it holds
/// clips with and without a silent same-class object, on each of the two slices.
fn score_split(
    split: &str,
    truth: &SplitTruth,
    maps: &BTreeMap<String, Vec<Map>>,
    protocol: &Protocol,
    cfg: &EvalConfig,
) -> Result<SplitReport> {
    let (anns, format) = (truth.annotations.as_slice(), &truth.format);
    let Some(multi_source) = MultiSourceSelection::parse(&cfg.multi_source) else {
        bail!(
            "[eval] multi_source {:?} is not one of source-wise, frame-wise, both",
            cfg.multi_source
        );
    };
    let opts = ScoreOptions {
        missing: MissingMaps::Error,
        multi_source,
    };
    let score = |maps: &BTreeMap<String, Vec<Map>>| {
        score_annotations(maps, anns, format, protocol, opts)
            .with_context(|| format!("scoring split {split}"))
    };
    let model = score(maps)?;
    let (random_refs, centre_refs) = reference_rows(truth, protocol, cfg);
    let random = score(&random_refs)?;
    let centre = score(&centre_refs)?;
    let slices = distractor_slices(split, anns, [&model, &random, &centre], protocol)?;
    let frame_wise = match (&model.frame_wise, random.frame_wise, centre.frame_wise) {
        (Some(m), Some(r), Some(c)) => Some(FrameWiseRows {
            model: m.aggregates.clone(),
            random: r.aggregates,
            centre_prior: c.aggregates,
        }),
        _ => None,
    };
    Ok(SplitReport {
        split: split.to_string(),
        max_sources: anns.iter().map(|a| a.sources.len()).max().unwrap_or(0),
        model,
        random: random.aggregates,
        centre_prior: centre.aggregates,
        slices,
        frame_wise,
    })
}

/// The protocol's aggregates, under `scoring` (`None`: a single-source protocol's only one), over the samples
/// of `report` whose `keep` is set (samples are in annotation order); `None` when the report lacks that scoring.
fn slice_aggregates(
    report: &ScoreReport,
    scoring: Option<MultiSourceScoring>,
    keep: &[bool],
    protocol: &Protocol,
) -> Option<Aggregates> {
    let all = match scoring {
        None => report.samples.as_slice(),
        Some(s) => report.scored(s)?.0,
    };
    let samples: Vec<SampleScore> = all
        .iter()
        .zip(keep)
        .filter(|(_, &k)| k)
        .map(|(s, _)| s.clone())
        .collect();
    Some(match scoring {
        None => aggregate(&samples, protocol),
        Some(s) => s.aggregate(&samples, protocol),
    })
}

/// Writes named maps as one safetensors file (empty tensors left out), atomically.
pub(crate) fn write_maps(path: &Path, maps: &[(String, Tensor)]) -> Result<()> {
    let refs: Vec<(&str, &Tensor)> = maps
        .iter()
        .filter(|(_, t)| t.numel() > 0)
        .map(|(n, t)| (n.as_str(), t))
        .collect();
    oassl_pipeline::atomic::write_via_path(path, |tmp| {
        Tensor::write_safetensors(&refs, tmp).with_context(|| format!("writing {}", tmp.display()))
    })
}

/// Each source's boxes in the coordinates of the whole frame the model saw: source `i` of a pair is in the
/// `i`-th frame of the vertical mosaic, its boxes normalised to that frame.
fn mosaic_boxes(ann: &Annotation) -> Vec<Vec<[f64; 4]>> {
    let tiles = ann.tiles();
    ann.sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let tile = if tiles > 1 { i as f64 } else { 0.0 };
            let n = tiles as f64;
            s.boxes
                .iter()
                .map(|&[x1, y1, x2, y2]| [x1, (tile + y1) / n, x2, (tile + y2) / n])
                .collect()
        })
        .collect()
}

/// The best and worst samples of a split by mean entry cIoU.
fn pick_gallery(
    cfg: &EvalConfig,
    layout: &Layout,
    report: &ScoreReport,
    anns: &[Annotation],
    maps: &BTreeMap<String, Vec<Map>>,
) -> Result<Vec<GalleryRow>> {
    let mut scored: Vec<(f64, usize)> = report
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = s.entries.len().max(1) as f64;
            let mean = s
                .entries
                .iter()
                .map(|e| if e.ciou.is_finite() { e.ciou } else { 0.0 })
                .sum::<f64>()
                / n;
            (mean, i)
        })
        .collect();
    let ciou: BTreeMap<usize, f64> = scored.iter().map(|&(mean, i)| (i, mean)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let best: Vec<usize> = scored.iter().take(cfg.gallery_best).map(|s| s.1).collect();
    let worst: Vec<usize> = scored
        .iter()
        .rev()
        .filter(|s| !best.contains(&s.1))
        .take(cfg.gallery_worst)
        .map(|s| s.1)
        .collect();
    let mut rows = Vec::new();
    for (list, kind) in [(best, RowKind::Success), (worst, RowKind::Failure)] {
        for i in list {
            let ann = &anns[i];
            let id = SampleId::parse(&ann.id)?;
            rows.push(GalleryRow {
                frame: read_frame(&layout.frame(&id))?,
                maps: maps.get(&ann.id).cloned().unwrap_or_default(),
                boxes: mosaic_boxes(ann),
                kind,
                label: Some(RowLabel {
                    id: ann.id.clone(),
                    classes: ann.sources.iter().map(|s| s.class.clone()).collect(),
                    ciou: ciou.get(&i).copied(),
                }),
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oassl_eval::annotation::source;
    use oassl_eval::{BoxConvention, FrameLayout};

    const SIDE: usize = REFERENCE_SIDE;

    /// Annotations of one-frame samples as an AVS-Synth split.
    fn truth(anns: &[Annotation]) -> SplitTruth {
        SplitTruth {
            annotations: anns.to_vec(),
            format: oassl_eval::AnnotationFormat::AvsSynth,
            file: PathBuf::from("gt.json"),
            tiles: 1,
        }
    }

    /// A single-source clip whose sounding object fills the top-left quarter of the frame side.
    fn clip(id: &str, silent_same_class: bool) -> Annotation {
        Annotation {
            id: id.into(),
            sources: vec![source(
                Some("dog".into()),
                vec![[0.0, 0.0, 0.25, 0.25]],
                BoxConvention::Xyxy01,
            )],
            convention: BoxConvention::Xyxy01,
            layout: FrameLayout::Shared,
            silent_same_class,
        }
    }

    /// 1 on the square of `side` pixels at (`top`, `left`), 0 elsewhere.
    fn square(top: usize, left: usize, side: usize) -> Map {
        let mut m = Map::zeros(SIDE, SIDE);
        for y in top..top + side {
            for x in left..left + side {
                m.data[y * SIDE + x] = 1.0;
            }
        }
        m
    }

    /// Clips flagged `true` get a map on their box (cIoU 1), the others one on the opposite corner (cIoU 0).
    fn scored(split: &str, flags: &[bool]) -> SplitReport {
        let anns: Vec<Annotation> = flags
            .iter()
            .enumerate()
            .map(|(i, &f)| clip(&format!("{split}-{i}"), f))
            .collect();
        let maps: BTreeMap<String, Vec<Map>> = anns
            .iter()
            .map(|a| {
                let m = if a.silent_same_class {
                    square(0, 0, SIDE / 4)
                } else {
                    square(SIDE / 2, SIDE / 2, SIDE / 2)
                };
                (a.id.clone(), vec![m])
            })
            .collect();
        let protocol = Protocol::by_name("oassl").expect("oassl protocol");
        score_split(
            split,
            &truth(&anns),
            &maps,
            &protocol,
            &EvalConfig::default(),
        )
        .expect("scoring")
    }

    #[test]
    fn a_split_with_both_kinds_gets_two_slices_over_its_own_samples() {
        let report = scored("test_duet", &[true, false, true, false, true]);
        let names: Vec<&str> = report.slices.iter().map(|s| s.slice.as_str()).collect();
        assert_eq!(names, [DISTRACTOR, NO_DISTRACTOR]);
        let (hard, easy) = (&report.slices[0], &report.slices[1]);
        assert_eq!(report.model.aggregates.samples, 5);
        assert_eq!((hard.model.samples, easy.model.samples), (3, 2));
        // The maps hit exactly the distractor clips: each slice scores its own samples, not the split's.
        assert!(hard.model.mean_ciou > 0.99, "{:?}", hard.model);
        assert!(easy.model.mean_ciou < 0.01, "{:?}", easy.model);
        assert!((report.model.aggregates.mean_ciou - 0.6).abs() < 0.01);
        // The reference maps of a slice are the split's own (the random map is seeded by the clip's position).
        for (whole, a, b) in [
            (&report.random, &hard.random, &easy.random),
            (&report.centre_prior, &hard.centre_prior, &easy.centre_prior),
        ] {
            assert_eq!(a.samples + b.samples, whole.samples);
            let pooled = (3.0 * a.mean_ciou + 2.0 * b.mean_ciou) / 5.0;
            assert!(
                (pooled - whole.mean_ciou).abs() < 1e-12,
                "{pooled} {whole:?}"
            );
        }
    }

    /// Two sounding objects, in the top-left and the bottom-right quarters of the frame side.
    fn duet(id: &str, silent_same_class: bool) -> Annotation {
        let mut a = clip(id, silent_same_class);
        a.sources.push(source(
            Some("cat".into()),
            vec![[0.75, 0.75, 1.0, 1.0]],
            BoxConvention::Xyxy01,
        ));
        a
    }

    #[test]
    fn multi_source_splits_are_scored_frame_wise_beside_source_wise() {
        let anns = [duet("d-0", true), duet("d-1", false), duet("d-2", true)];
        // One map on both objects (56² px each): source-wise it matches the first (cIoU 3136 / 6272 = .5) and
        // the second source, left without a map, scores 0; frame-wise it is the union of the two, cIoU 1.
        let mut both = square(0, 0, SIDE / 4);
        both.data
            .iter_mut()
            .zip(&square(3 * SIDE / 4, 3 * SIDE / 4, SIDE / 4).data)
            .for_each(|(a, b)| *a += b);
        let maps: BTreeMap<String, Vec<Map>> = anns
            .iter()
            .map(|a| (a.id.clone(), vec![both.clone()]))
            .collect();
        let protocol = Protocol::oassl();
        let cfg = EvalConfig::default();
        let report =
            score_split("test_duet", &truth(&anns), &maps, &protocol, &cfg).expect("scoring");
        assert_eq!(report.model.scoring, Some(MultiSourceScoring::SourceWise));
        assert_eq!(report.model.aggregates.entries, 6);
        assert!((report.model.aggregates.mean_ciou - 0.25).abs() < 1e-12);
        let fw = report.frame_wise.as_ref().expect("frame-wise rows");
        assert_eq!((fw.model.entries, fw.model.mean_ciou), (3, 1.0));
        assert_eq!(
            &fw.model,
            &report.model.frame_wise.as_ref().unwrap().aggregates
        );
        // The reference maps are scored frame-wise too: one entry per frame.
        assert_eq!((fw.random.entries, fw.centre_prior.entries), (3, 3));
        assert_eq!(report.random.entries, 6);
        for (slice, n) in report.slices.iter().zip([2, 1]) {
            let f = slice.frame_wise.as_ref().expect("frame-wise slice");
            assert_eq!(
                (f.model.samples, f.model.mean_ciou),
                (n, 1.0),
                "{}",
                slice.slice
            );
            assert!((slice.model.mean_ciou - 0.25).abs() < 1e-12);
        }
        // Side by side in results.md: the frame-wise cells follow each row's own.
        let md = table::rows(std::slice::from_ref(&report));
        let model = md
            .lines()
            .find(|l| l.starts_with("| test_duet | model |"))
            .unwrap();
        assert_eq!(
            model,
            // cIoU@0.5, @0.3, AUC (numpy trapz over [.5, 0, .5, 0, .5, 0]: .275), CAP (AP .5 and 0), mean cIoU,
            // count accuracy (one map, two sources); then frame-wise: every frame found.
            "| test_duet | model | 3 | 50.00 | 50.00 | 27.50 | 25.00 | 25.00 | 0.00 | \
             100.00 | 100.00 | 100.00 | 100.00 | 100.00 |"
        );
        // Source-wise alone: no frame-wise rows or cells.
        let cfg = EvalConfig {
            multi_source: "source-wise".into(),
            ..EvalConfig::default()
        };
        let alone =
            score_split("test_duet", &truth(&anns), &maps, &protocol, &cfg).expect("scoring");
        assert!(alone.frame_wise.is_none() && alone.slices.iter().all(|s| s.frame_wise.is_none()));
        assert_eq!(alone.model.aggregates, report.model.aggregates);
        let md = table::rows(&[alone]);
        assert!(md.lines().all(|l| l.matches(" | ").count() == 8), "{md}");
    }

    #[test]
    fn a_split_with_one_kind_has_no_slices() {
        assert!(scored("test_single", &[false, false, false])
            .slices
            .is_empty());
        assert!(scored("test_single", &[true, true]).slices.is_empty());
    }

    #[test]
    fn results_table_lists_each_slice_under_its_split() {
        let splits = [
            scored("test_duet", &[true, false, false]),
            scored("test_single", &[false, false]),
        ];
        let md = table::rows(&splits);
        let model_rows: Vec<&str> = md.lines().filter(|l| l.contains("| model |")).collect();
        assert_eq!(
            model_rows
                .iter()
                .map(|l| l.split(" | ").take(3).collect::<Vec<_>>().join(" | "))
                .collect::<Vec<_>>(),
            [
                "| test_duet | model | 3",
                "| test_duet / distractor | model | 1",
                "| test_duet / no_distractor | model | 2",
                "| test_single | model | 2",
            ]
        );
        assert_eq!(md.lines().filter(|l| l.contains(" / ")).count(), 6, "{md}");
        assert!(!md.contains("test_single /"), "{md}");
    }
}
