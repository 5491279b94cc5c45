//! `oassl eval`: runs the trained model on the test splits and scores it with `oassl_eval`.
//!
//! Per split (`dataset/ground_truth/<split>.json`, AVS-Synth / VGG-SS list form), each sample gets
//! - one source: `S_a` (method.md §2.2, §11.15);
//! - several sources: the IOI object maps (any number, possibly none);
//!
//! and is scored under the configured protocol (default `oassl`: NoPrior's evaluator with one GT map per
//! source, so single-source splits report IoU@0.5 / AUC / AP and duet splits CAP / CIoU@0.3 / AUC). Two
//! reference rows are scored the same way on every split: a seeded uniform random map and a centre Gaussian.
//!
//! Writes under `eval/` (each file atomically): `metrics.json` ([`EvalReport`]), `results.md` (the table),
//! `gallery.png` (see [`gallery`]) and `maps.safetensors` (the predicted maps, one `[K, h, w]` tensor per sample,
//! readable by `oassl score-maps`).

pub mod gallery;
pub mod table;
pub mod trained_model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use tch::{Kind, Tensor};

use oassl_eval::{
    center_prior_map, load_annotations, random_map, score_annotations, Aggregates, Annotation,
    AnnotationFormat, Assignment, Map, MissingMaps, Protocol, ScoreOptions, ScoreReport,
};
use oassl_pipeline::config::EvalConfig;
use oassl_pipeline::{Layout, SampleId};

use crate::data::batch::{eval_tensors, load_eval_item};
use crate::data::frames::read_frame;
use crate::stage::settings;
use crate::stage::{ModelMeta, TrainFiles};
use gallery::{GalleryRow, RowKind};
pub use trained_model::TrainedModel;

/// Side of the reference maps (the evaluators' 224 grid).
const REFERENCE_SIDE: usize = 224;

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
}

/// `eval/metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Protocol name.
    pub protocol: String,
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

fn reference_maps(ann: &Annotation, map: &Map, p: &Protocol) -> Vec<Map> {
    match p.assignment {
        Assignment::Conditioned => vec![map.clone(); ann.sources.len().max(1)],
        _ => vec![map.clone()],
    }
}

/// Runs the evaluation.
pub fn run(cfg: &EvalConfig, layout: &Layout) -> Result<EvalSummary> {
    let Some(protocol) = Protocol::by_name(&cfg.protocol) else {
        bail!("[eval] protocol {:?} is unknown", cfg.protocol);
    };
    let device = settings::device(&cfg.device, "eval")?;
    let trained = TrainedModel::load(&TrainFiles::new(layout), device)?;
    let (model, meta, ioi) = (&trained.model, &trained.meta, &trained.ioi);
    let format = AnnotationFormat::AvsSynth;
    let mut splits = Vec::new();
    let mut gallery_rows = Vec::new();
    let mut all_maps: Vec<(String, Tensor)> = Vec::new();
    let mut infer_seconds = 0.0;
    let mut images = 0usize;
    for split in &cfg.splits {
        let gt = layout.ground_truth(split);
        if !gt.exists() {
            bail!(
                "ground truth {} not found: run `make data` first",
                gt.display()
            );
        }
        let anns = load_annotations(&gt, &format)
            .with_context(|| format!("loading ground truth {}", gt.display()))?;
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
                    meta.audio_seconds,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let mut maps: BTreeMap<String, Vec<Map>> = BTreeMap::new();
        for (chunk_idx, chunk) in items.chunks(cfg.batch_size).enumerate() {
            let (frames, spec) = eval_tensors(chunk, meta.image_size, device)?;
            let started = Instant::now();
            let out = model.infer_maps(&frames, &spec, ioi)?;
            if device.is_cuda() {
                tch::Cuda::synchronize(0);
            }
            infer_seconds += started.elapsed().as_secs_f64();
            images += chunk.len();
            for (j, sample) in out.iter().enumerate() {
                let ann = &anns[chunk_idx * cfg.batch_size + j];
                let single = to_map(&sample.single)?;
                let m = sample_maps(
                    single,
                    sample.objects.as_ref(),
                    ann.sources.len(),
                    &protocol,
                )?;
                let stacked = match (&sample.objects, ann.sources.len() > 1) {
                    (Some(o), true) => o.to_device(tch::Device::Cpu).to_kind(Kind::Float),
                    (None, true) => Tensor::zeros([0, 1, 1], (Kind::Float, tch::Device::Cpu)),
                    _ => sample
                        .single
                        .unsqueeze(0)
                        .to_device(tch::Device::Cpu)
                        .to_kind(Kind::Float)
                        .contiguous(),
                };
                all_maps.push((ann.id.clone(), stacked));
                maps.insert(ann.id.clone(), m);
            }
        }
        let opts = ScoreOptions {
            missing: MissingMaps::Error,
        };
        let report = score_annotations(&maps, &anns, &format, &protocol, opts)
            .with_context(|| format!("scoring split {split}"))?;
        let score_ref = |map: &Map| -> Result<Aggregates> {
            let refs: BTreeMap<String, Vec<Map>> = anns
                .iter()
                .map(|a| (a.id.clone(), reference_maps(a, map, &protocol)))
                .collect();
            Ok(score_annotations(&refs, &anns, &format, &protocol, opts)?.aggregates)
        };
        let random = {
            let refs: BTreeMap<String, Vec<Map>> = anns
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let m = random_map(
                        cfg.random_seed.wrapping_add(i as u64),
                        REFERENCE_SIDE,
                        REFERENCE_SIDE,
                    );
                    (a.id.clone(), reference_maps(a, &m, &protocol))
                })
                .collect();
            score_annotations(&refs, &anns, &format, &protocol, opts)?.aggregates
        };
        let side = REFERENCE_SIDE as f64;
        let centre = score_ref(&center_prior_map(
            REFERENCE_SIDE,
            REFERENCE_SIDE,
            cfg.prior_sigma * side,
        ))?;
        gallery_rows.extend(pick_gallery(cfg, layout, &report, &anns, &maps)?);
        splits.push(SplitReport {
            split: split.to_string(),
            max_sources: anns.iter().map(|a| a.sources.len()).max().unwrap_or(0),
            model: report,
            random,
            centre_prior: centre,
        });
    }
    let report = EvalReport {
        protocol: protocol.name.clone(),
        model: trained.weights.clone(),
        meta: meta.clone(),
        device: format!("{device:?}"),
        images_per_s: if infer_seconds > 0.0 {
            images as f64 / infer_seconds
        } else {
            0.0
        },
        splits,
    };
    let dir = layout.stage_dir("eval");
    let metrics = dir.join("metrics.json");
    let table_path = dir.join("results.md");
    let gallery_path = dir.join("gallery.png");
    let markdown = table::markdown(&report);
    oassl_pipeline::atomic::write_json(&metrics, &report)?;
    oassl_pipeline::atomic::write_bytes(&table_path, markdown.as_bytes())?;
    let picture = gallery::render(&gallery_rows, cfg.gallery_tile);
    oassl_pipeline::atomic::write_with(&gallery_path, |w| {
        picture.write_to(w, image::ImageFormat::Png)?;
        Ok(())
    })?;
    write_maps(&dir.join("maps.safetensors"), &all_maps)?;
    Ok(EvalSummary {
        report,
        metrics,
        table: table_path,
        gallery: gallery_path,
        markdown,
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
                boxes: ann.sources.iter().map(|s| s.boxes.clone()).collect(),
                kind,
            });
        }
    }
    Ok(rows)
}
