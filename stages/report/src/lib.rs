//! `oassl report`: the method comparison of the supplementary's Tables 1-3 on one dataset. Several runs are
//! trained with `oassl_train` and evaluated with `oassl_evaluate`, then compared in one table per split.
//!
//! Every run trains from the same manifest and the same extracted clips, changing one thing: the objective
//! (`lvs`, `noprior`, `oassl`), the balance λ1 / λ2 (Table 3), or the text encoder of the captions (Table 2).
//! Each run is trained and evaluated once per seed (`[train] seed` + k for k in 0..`[report] seeds`), because on
//! small test sets two seeds of one method can differ more than two methods do. Each seed has its own `train/`
//! and `eval/` under `<report dir>/<run>/` (first seed) or `<report dir>/<run>-seed<k>/`, so a rerun of the
//! report retrains only the trainings whose settings or inputs changed (stage locks). The tables, written as
//! `<report dir>/report.md` and `report.json`, give the mean ± sample standard deviation over the seeds of every
//! metric, per split and per slice, and under each table the rows ordered by mean beside their pooled standard
//! deviation. When the evaluations scored multi-source splits both source-wise and frame-wise (`[eval]
//! multi_source`, default both), each multi-source split's frame-wise AP, CIoU@0.3 and AUC columns follow its
//! source-wise CAP, CIoU@0.3 and AUC.

#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use oassl_eval::{Aggregates, MultiSourceScoring};
use oassl_pipeline::config::{EvalConfig, TrainConfig};
use oassl_pipeline::Layout;

use oassl_evaluate::run::{self as evaluation, EvalReport, ScoredPart};
use oassl_train::loss::Method;
use oassl_train::stage::{self, TrainOptions};

/// Which table a run belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunGroup {
    /// Objectives at the configured λ (Tables 1-2's method rows).
    Method,
    /// λ1 / λ2 sweep of `oassl` (Table 3).
    LambdaSweep,
    /// `oassl` with another text encoder (Table 2).
    TextEncoder,
}

/// One row of the comparison: a setting trained and evaluated once per seed.
#[derive(Debug, Clone)]
pub struct ReportRun {
    /// Folder name of its first seed under the report dir.
    pub name: String,
    /// Its table.
    pub group: RunGroup,
    /// Text encoder of the captions it trains on (e.g. `all-MiniLM-L6-v2`).
    pub encoder: String,
    /// `[train]` of its first seed; seed k trains with `train.seed + k`.
    pub train: TrainConfig,
    /// Where it reads its inputs (its `embed/` may be its own).
    pub layout: Layout,
    /// The report dir, which holds one folder per seed.
    pub dir: PathBuf,
    /// Number of seeds (at least 1).
    pub seeds: usize,
}

/// One training + evaluation of a run.
#[derive(Debug, Clone)]
pub struct SeedRun {
    /// Folder name under the report dir.
    pub name: String,
    /// `[train]` with this seed.
    pub train: TrainConfig,
    /// The run's inputs, with `train/` and `eval/` in the seed's folder.
    pub layout: Layout,
}

impl ReportRun {
    /// A run named `name` trained `seeds` times, its seeds' `train/` and `eval/` under `dir`.
    pub fn new(
        name: &str,
        group: RunGroup,
        encoder: &str,
        train: TrainConfig,
        layout: &Layout,
        dir: &Path,
        seeds: usize,
    ) -> Self {
        Self {
            name: name.to_string(),
            group,
            encoder: encoder.to_string(),
            train,
            layout: layout.clone(),
            dir: dir.to_path_buf(),
            seeds,
        }
    }

    /// Its trainings, in seed order. The first keeps the run's own folder, where a one-seed report put it, so
    /// switching to several seeds reuses the finished run.
    pub fn seed_runs(&self) -> Vec<SeedRun> {
        (0..self.seeds)
            .map(|k| {
                let name = if k == 0 {
                    self.name.clone()
                } else {
                    format!("{}-seed{k}", self.name)
                };
                let own = self.dir.join(&name);
                SeedRun {
                    train: TrainConfig {
                        seed: self.train.seed.wrapping_add(k as u64),
                        ..self.train.clone()
                    },
                    layout: self
                        .layout
                        .clone()
                        .with_stage_dir("train", own.join("train"))
                        .with_stage_dir("eval", own.join("eval")),
                    name,
                }
            })
            .collect()
    }
}

/// What one seed of a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct SeedResult {
    /// `[train] seed` of the training.
    pub seed: u64,
    /// Its folder under the report dir.
    pub dir: String,
    /// Whether training was skipped because nothing changed.
    pub reused: bool,
    /// The evaluation.
    pub eval: EvalReport,
}

/// Mean and spread of one metric over the seeds of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedStat {
    /// Mean over the seeds.
    pub mean: f64,
    /// Sample standard deviation (n - 1); absent with one seed, where there is no spread to estimate.
    pub std: Option<f64>,
    /// One value per seed, in seed order.
    pub values: Vec<f64>,
}

impl SeedStat {
    /// The statistics of `values` (at least one).
    pub fn of(values: Vec<f64>) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.len() > 1).then(|| {
            let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (ss / (n - 1.0)).sqrt()
        });
        Self { mean, std, values }
    }
}

/// The model's metrics over the seeds on one split or slice.
#[derive(Debug, Clone, Serialize)]
pub struct PartSummary {
    /// Manifest split name.
    pub split: String,
    /// `None` for the whole split, else the slice (`distractor`, `no_distractor`).
    pub slice: Option<String>,
    /// Largest number of sources of a sample in the split.
    pub max_sources: usize,
    /// Samples scored.
    pub samples: usize,
    /// `ciou@<t>` per success threshold, `auc`, `mean_ciou`, and `ap`, `piap`, `count_accuracy` where the
    /// protocol computes them; the frame-wise ones beside them, prefixed with [`FRAME_WISE`], when the
    /// evaluation scored both ways.
    pub metrics: BTreeMap<String, SeedStat>,
}

/// What a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Run name.
    pub name: String,
    /// Its table.
    pub group: RunGroup,
    /// Objective.
    pub method: String,
    /// λ1 (0 for objectives without L_oca).
    pub lambda1: f64,
    /// λ2 (0 for objectives without L_ori).
    pub lambda2: f64,
    /// Text encoder of the captions.
    pub encoder: String,
    /// Whether training was skipped for every seed because nothing changed.
    pub reused: bool,
    /// One training and evaluation per seed, in seed order.
    pub seeds: Vec<SeedResult>,
    /// Mean ± std over the seeds, per split and slice, in the order of the evaluation.
    pub summary: Vec<PartSummary>,
}

/// Trains (unless up to date) and evaluates every seed of one run.
pub fn run_one(run: &ReportRun, eval_cfg: &EvalConfig, opts: &TrainOptions) -> Result<RunResult> {
    let mut seeds = Vec::new();
    for s in run.seed_runs() {
        let trained = stage::run(&s.train, &s.layout, opts)
            .with_context(|| format!("report run {}: training seed {}", s.name, s.train.seed))?;
        let eval = evaluation::run(eval_cfg, &s.layout)
            .with_context(|| format!("report run {}: evaluating seed {}", s.name, s.train.seed))?;
        seeds.push(SeedResult {
            seed: s.train.seed,
            dir: s.name,
            reused: trained.up_to_date,
            eval: eval.report,
        });
    }
    let evals: Vec<&EvalReport> = seeds.iter().map(|s| &s.eval).collect();
    let summary = summarise(&evals).with_context(|| format!("report run {}", run.name))?;
    let uses_text = run.train.method == Method::Oassl;
    Ok(RunResult {
        name: run.name.clone(),
        group: run.group,
        method: run.train.method.to_string(),
        lambda1: if uses_text {
            run.train.loss.lambda1
        } else {
            0.0
        },
        lambda2: if uses_text {
            run.train.loss.lambda2
        } else {
            0.0
        },
        encoder: if uses_text {
            run.encoder.clone()
        } else {
            "–".into()
        },
        reused: seeds.iter().all(|s| s.reused),
        seeds,
        summary,
    })
}

/// Prefix of the frame-wise metrics in [`PartSummary::metrics`] (`frame_wise/ciou@0.3`).
pub const FRAME_WISE: &str = "frame_wise/";

/// The metrics of one row of a split or slice, by the names of [`PartSummary::metrics`]: its own, and its
/// frame-wise ones when it was scored both ways.
fn row_values(own: &Aggregates, frame_wise: Option<&Aggregates>) -> BTreeMap<String, f64> {
    let mut out = metric_values(own);
    if let Some(f) = frame_wise {
        out.extend(
            metric_values(f)
                .into_iter()
                .map(|(k, v)| (format!("{FRAME_WISE}{k}"), v)),
        );
    }
    out
}

/// The metrics of one aggregate row, by the names of [`PartSummary::metrics`].
fn metric_values(a: &Aggregates) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = a
        .success
        .iter()
        .map(|s| (format!("ciou@{}", s.threshold), s.value))
        .collect();
    out.insert("auc".into(), a.auc);
    out.insert("mean_ciou".into(), a.mean_ciou);
    for (name, v) in [
        ("ap", a.mean_ap),
        ("piap", a.piap),
        ("count_accuracy", a.count_accuracy),
    ] {
        if let Some(v) = v {
            out.insert(name.into(), v);
        }
    }
    out
}

/// Mean ± std over the seeds' evaluations of every metric of the model, per split and slice (the first seed's
/// list; every seed scores the same ground truth, so a part or metric missing from one is an error).
pub fn summarise(evals: &[&EvalReport]) -> Result<Vec<PartSummary>> {
    let Some(first) = evals.first() else {
        bail!("no evaluation to summarise");
    };
    let mut out = Vec::new();
    for part in first.splits.iter().flat_map(|s| s.parts()) {
        let per_seed: Vec<BTreeMap<String, f64>> = evals
            .iter()
            .enumerate()
            .map(|(k, e)| {
                find_part(e, part.split, part.slice)
                    .map(|p| row_values(p.model, p.frame_wise.map(|f| &f.model)))
                    .with_context(|| format!("seed {k} has no scores for {}", part.label()))
            })
            .collect::<Result<_>>()?;
        let mut metrics = BTreeMap::new();
        for name in per_seed[0].keys() {
            let values = per_seed
                .iter()
                .enumerate()
                .map(|(k, m)| {
                    m.get(name)
                        .copied()
                        .with_context(|| format!("seed {k} has no {name} for {}", part.label()))
                })
                .collect::<Result<Vec<f64>>>()?;
            metrics.insert(name.clone(), SeedStat::of(values));
        }
        out.push(PartSummary {
            split: part.split.to_string(),
            slice: part.slice.map(str::to_string),
            max_sources: part.max_sources,
            samples: part.model.samples,
            metrics,
        });
    }
    Ok(out)
}

fn find_part<'a>(eval: &'a EvalReport, split: &str, slice: Option<&str>) -> Option<ScoredPart<'a>> {
    eval.splits
        .iter()
        .flat_map(|s| s.parts())
        .find(|p| p.split == split && p.slice == slice)
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}", 100.0 * v)
    } else {
        "NaN".into()
    }
}

/// `mean ± std` in percent; the mean alone with one seed.
fn stat_cell(s: Option<&SeedStat>) -> String {
    match s {
        None => "–".into(),
        Some(SeedStat {
            mean, std: None, ..
        }) => pct(*mean),
        Some(SeedStat {
            mean,
            std: Some(sd),
            ..
        }) => format!("{} ± {}", pct(*mean), pct(*sd)),
    }
}

/// The metrics a split (and its slices) is read by, as (key, column name): CAP / CIoU@0.3 / AUC for
/// multi-source splits, then frame-wise AP / CIoU@0.3 / AUC when they were also scored frame-wise (the names
/// say frame-wise when that is the only scoring); IoU@0.5 / AUC / AP for single-source ones, where the two
/// scorings coincide.
fn columns(p: &ScoredPart<'_>) -> Vec<(String, String)> {
    let frame_wise_names = [("ap", "AP"), ("ciou@0.3", "CIoU@0.3"), ("auc", "AUC")];
    let own: Vec<(String, String)> = match (p.max_sources > 1, p.scoring) {
        (false, _) => [("ciou@0.5", "IoU@0.5"), ("auc", "AUC"), ("ap", "AP")]
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .to_vec(),
        (true, Some(MultiSourceScoring::FrameWise)) => frame_wise_names
            .map(|(k, n)| (k.to_string(), format!("frame-wise {n}")))
            .to_vec(),
        (true, _) => [("ap", "CAP"), ("ciou@0.3", "CIoU@0.3"), ("auc", "AUC")]
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .to_vec(),
    };
    let beside = (p.max_sources > 1 && p.frame_wise.is_some()).then(|| {
        frame_wise_names.map(|(k, n)| (format!("{FRAME_WISE}{k}"), format!("frame-wise {n}")))
    });
    own.into_iter()
        .chain(beside.into_iter().flatten())
        .collect()
}

fn display_method(m: &str) -> &str {
    match m {
        "lvs" => "LVS",
        "noprior" => "NoPrior",
        "oassl" => "OA-SSL",
        other => other,
    }
}

/// A row's name in the orderings, where the sweep and encoder rows must be told apart.
fn row_name(r: &RunResult, group: RunGroup) -> String {
    let method = display_method(&r.method);
    match group {
        RunGroup::Method => method.to_string(),
        RunGroup::LambdaSweep => format!("{method} (λ1 {}, λ2 {})", r.lambda1, r.lambda2),
        RunGroup::TextEncoder => format!("{method} ({})", r.encoder),
    }
}

/// Pooled sample standard deviation of several rows' seeds, `sqrt(Σ (n_i - 1) s_i² / Σ (n_i - 1))`; absent
/// when no row has two seeds.
pub fn pooled_std(stats: &[&SeedStat]) -> Option<f64> {
    let (mut ss, mut df) = (0.0, 0usize);
    for s in stats {
        if let Some(sd) = s.std {
            let dof = s.values.len() - 1;
            ss += dof as f64 * sd * sd;
            df += dof;
        }
    }
    (df > 0).then(|| (ss / df as f64).sqrt())
}

/// `A 12.0 > B 10.0 = C 10.0`: the rows by decreasing mean (NaN last).
fn ordering(rows: &mut [(String, f64)]) -> String {
    rows.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (false, false) => b.1.total_cmp(&a.1),
        (nan_a, nan_b) => nan_a.cmp(&nan_b),
    });
    let mut out = String::new();
    for (i, (name, mean)) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str(if *mean == rows[i - 1].1 { " = " } else { " > " });
        }
        out.push_str(&format!("{name} {}", pct(*mean)));
    }
    out
}

/// The report tables as Markdown: one table per group, columns per split and slice, reference rows (random map,
/// centre prior) first, then the orderings each column claims beside the pooled seed std.
pub fn markdown(results: &[RunResult]) -> String {
    let Some(reference) = results.first().and_then(|r| r.seeds.first()) else {
        return "No runs.\n".into();
    };
    let parts: Vec<ScoredPart<'_>> = reference
        .eval
        .splits
        .iter()
        .flat_map(|s| s.parts())
        .collect();
    let mut header = "| Method | Text encoder | λ1 | λ2 |".to_string();
    let mut rule = "|---|---|---:|---:|".to_string();
    for p in &parts {
        for (_, name) in columns(p) {
            header.push_str(&format!(" {} {name} (%) |", p.label()));
            rule.push_str("---:|");
        }
    }
    let row = |label: &str, enc: &str, l1: &str, l2: &str, cells: Vec<String>| {
        format!(
            "| {label} | {enc} | {l1} | {l2} | {} |\n",
            cells.join(" | ")
        )
    };
    // The reference maps do not depend on the training seed: the first evaluation's values.
    let reference_cells = |pick: Reference| -> Vec<String> {
        parts
            .iter()
            .flat_map(|p| {
                let values = match pick {
                    Reference::Random => row_values(p.random, p.frame_wise.map(|f| &f.random)),
                    Reference::CentrePrior => {
                        row_values(p.centre_prior, p.frame_wise.map(|f| &f.centre_prior))
                    }
                };
                columns(p)
                    .into_iter()
                    .map(move |(key, _)| values.get(&key).map_or("–".into(), |v| pct(*v)))
            })
            .collect()
    };
    let seeds = results.iter().map(|r| r.seeds.len()).max().unwrap_or(0);
    let mut out = String::new();
    let groups = [
        (RunGroup::Method, "Objectives (Tables 1-2 layout)"),
        (
            RunGroup::LambdaSweep,
            "λ1 / λ2 sweep of OA-SSL (Table 3 layout)",
        ),
        (RunGroup::TextEncoder, "Text encoders (Table 2 layout)"),
    ];
    for (group, title) in groups {
        let own: Vec<&RunResult> = results.iter().filter(|r| r.group == group).collect();
        if own.is_empty() {
            continue;
        }
        // The sweep and the encoder tables start from the configured OA-SSL run they vary.
        let mut members: Vec<&RunResult> = match group {
            RunGroup::Method => Vec::new(),
            _ => results
                .iter()
                .filter(|r| r.group == RunGroup::Method && r.method == "oassl")
                .collect(),
        };
        members.extend(own);
        out.push_str(&format!("### {title}\n\n{header}\n{rule}\n"));
        out.push_str(&row(
            "random map",
            "–",
            "–",
            "–",
            reference_cells(Reference::Random),
        ));
        out.push_str(&row(
            "centre prior",
            "–",
            "–",
            "–",
            reference_cells(Reference::CentrePrior),
        ));
        for r in &members {
            let cells = parts
                .iter()
                .flat_map(|p| {
                    columns(p)
                        .into_iter()
                        .map(|(key, _)| stat_cell(seed_stat(r, p, &key).as_ref()))
                })
                .collect();
            let (l1, l2) = if r.method == "oassl" {
                (format!("{}", r.lambda1), format!("{}", r.lambda2))
            } else {
                ("–".into(), "–".into())
            };
            out.push_str(&row(display_method(&r.method), &r.encoder, &l1, &l2, cells));
        }
        out.push_str(&orderings(&parts, &members, group, seeds));
        out.push('\n');
    }
    out
}

/// The reference rows of the tables.
#[derive(Debug, Clone, Copy)]
enum Reference {
    Random,
    CentrePrior,
}

/// A run's seed statistics of one metric on one split or slice.
fn seed_stat(r: &RunResult, p: &ScoredPart<'_>, key: &str) -> Option<SeedStat> {
    r.summary
        .iter()
        .find(|s| s.split == p.split && s.slice.as_deref() == p.slice)
        .and_then(|s| s.metrics.get(key).cloned())
}

/// The table under a group: for every column, its rows ordered by mean beside their pooled seed std.
fn orderings(
    parts: &[ScoredPart<'_>],
    members: &[&RunResult],
    group: RunGroup,
    seeds: usize,
) -> String {
    let mut out = format!(
        "\nRows by their mean over {seeds} seed(s), beside the pooled seed std of those rows: a gap smaller \
         than it is within seed noise.\n\n| column | ordering (%) | pooled std (%) |\n|---|---|---:|\n"
    );
    for p in parts {
        for (key, name) in columns(p) {
            let stats: Vec<(String, SeedStat)> = members
                .iter()
                .filter_map(|r| seed_stat(r, p, &key).map(|s| (row_name(r, group), s)))
                .collect();
            if stats.is_empty() {
                continue;
            }
            let mut means: Vec<(String, f64)> =
                stats.iter().map(|(n, s)| (n.clone(), s.mean)).collect();
            let spread: Vec<&SeedStat> = stats.iter().map(|(_, s)| s).collect();
            let pooled = pooled_std(&spread).map_or("– (1 seed)".into(), pct);
            out.push_str(&format!(
                "| {} {name} | {} | {pooled} |\n",
                p.label(),
                ordering(&mut means)
            ));
        }
    }
    out
}

/// Writes `report.md` (with `preamble` above the tables) and `report.json` under `dir`, atomically.
pub fn write(dir: &Path, preamble: &str, results: &[RunResult]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let md = dir.join("report.md");
    let text = format!("{preamble}\n{}", markdown(results));
    oassl_pipeline::atomic::write_bytes(&md, text.as_bytes())?;
    oassl_pipeline::atomic::write_json(&dir.join("report.json"), &results)?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oassl_eval::metrics::auc::Comparison;
    use oassl_eval::{Protocol, ScoreReport, SuccessRate};
    use oassl_evaluate::run::{FrameWiseRows, SliceReport, SplitReport, DISTRACTOR, NO_DISTRACTOR};
    use oassl_pipeline::config::TrainLossConfig;
    use oassl_train::stage::ModelMeta;

    /// Aggregates whose AUC, AP (CAP) and cIoU@0.3 are `v`, `v / 2` and 0.
    fn agg(samples: usize, v: f64) -> Aggregates {
        Aggregates {
            samples,
            counted_samples: samples,
            missing_maps: 0,
            entries: samples,
            success: [0.5, 0.3]
                .map(|threshold| SuccessRate {
                    threshold,
                    comparison: Comparison::Ge,
                    value: 0.0,
                })
                .to_vec(),
            auc: v,
            mean_ciou: v,
            mean_ap: Some(v / 2.0),
            piap: None,
            count_accuracy: None,
            ap_dropped: 0,
            evaluator: None,
        }
    }

    /// A split of 5 clips whose model AUC is `whole`, with (when `hard` is given) a 2-clip `distractor` slice of
    /// AUC `hard` and a 3-clip `no_distractor` slice; the reference maps score 0.1.
    fn split(name: &str, max_sources: usize, whole: f64, hard: Option<f64>) -> SplitReport {
        let slices = hard.map_or_else(Vec::new, |h| {
            vec![
                SliceReport {
                    slice: DISTRACTOR.into(),
                    model: agg(2, h),
                    random: agg(2, 0.1),
                    centre_prior: agg(2, 0.1),
                    frame_wise: None,
                },
                SliceReport {
                    slice: NO_DISTRACTOR.into(),
                    model: agg(3, whole),
                    random: agg(3, 0.1),
                    centre_prior: agg(3, 0.1),
                    frame_wise: None,
                },
            ]
        });
        SplitReport {
            split: name.into(),
            max_sources,
            model: ScoreReport {
                protocol: Protocol::oassl(),
                annotation_format: "avs-synth".into(),
                unannotated_maps: Vec::new(),
                scoring: Some(MultiSourceScoring::SourceWise),
                samples: Vec::new(),
                aggregates: agg(5, whole),
                frame_wise: None,
            },
            random: agg(5, 0.1),
            centre_prior: agg(5, 0.1),
            slices,
            frame_wise: None,
        }
    }

    /// `split` also scored frame-wise: the model at `v` (AUC; AP `v / 2`), the reference maps at 0.05, on the
    /// whole split and each slice.
    fn with_frame_wise(mut split: SplitReport, v: f64) -> SplitReport {
        let rows = |n: usize| FrameWiseRows {
            model: agg(n, v),
            random: agg(n, 0.05),
            centre_prior: agg(n, 0.05),
        };
        split.frame_wise = Some(rows(split.model.aggregates.samples));
        for s in &mut split.slices {
            s.frame_wise = Some(rows(s.model.samples));
        }
        split
    }

    fn eval(splits: Vec<SplitReport>) -> EvalReport {
        // Through JSON, so the test does not depend on every field of the model description.
        let meta: ModelMeta = serde_json::from_value(serde_json::json!({
            "method": "oassl", "step": 2, "text_dim": 8, "image_size": 64, "audio_seconds": 1.0,
            "freeze_visual": false, "visual_output_stride": 32,
            "loss": TrainLossConfig::default(), "final_loss": 0.0,
        }))
        .expect("model meta");
        EvalReport {
            protocol: "oassl".into(),
            multi_source: "both".into(),
            model: PathBuf::from("model.safetensors"),
            meta,
            device: "Cpu".into(),
            images_per_s: 1.0,
            splits,
        }
    }

    /// A run of `method` whose seeds score duet AUC `aucs` (distractor slice: AUC - 0.05).
    fn result(method: &str, aucs: &[f64]) -> RunResult {
        let seeds: Vec<SeedResult> = aucs
            .iter()
            .enumerate()
            .map(|(k, &auc)| SeedResult {
                seed: k as u64,
                dir: method.into(),
                reused: false,
                eval: eval(vec![
                    split("test_single", 1, 0.5, None),
                    split("test_duet", 2, auc, Some(auc - 0.05)),
                ]),
            })
            .collect();
        method_result(method, seeds)
    }

    /// The result of `method`'s runs `seeds`, summarised as `oassl report` does.
    fn method_result(method: &str, seeds: Vec<SeedResult>) -> RunResult {
        let evals: Vec<&EvalReport> = seeds.iter().map(|s| &s.eval).collect();
        let summary = summarise(&evals).expect("summary");
        RunResult {
            name: method.into(),
            group: RunGroup::Method,
            method: method.into(),
            lambda1: 0.0,
            lambda2: 0.0,
            encoder: "–".into(),
            reused: false,
            seeds,
            summary,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn seed_stat_is_the_mean_and_the_sample_std() {
        let s = SeedStat::of(vec![0.1, 0.2, 0.3]);
        assert!(close(s.mean, 0.2), "{s:?}");
        // Sample std (n - 1): 0.1; the population std would be 0.0816.
        assert!(close(s.std.expect("3 seeds"), 0.1), "{s:?}");
        let s = SeedStat::of(vec![0.5, 0.7]);
        assert!(close(s.mean, 0.6) && close(s.std.expect("2 seeds"), 0.02f64.sqrt()));
        let one = SeedStat::of(vec![0.4]);
        assert_eq!((one.mean, one.std), (0.4, None));
    }

    #[test]
    fn pooled_std_weighs_each_row_by_its_degrees_of_freedom() {
        let a = SeedStat::of(vec![0.1, 0.2, 0.3]); // s = 0.1, 2 dof
        let b = SeedStat::of(vec![0.0, 0.2]); // s = 0.1414, 1 dof
        let want = ((2.0 * 0.01 + 0.02) / 3.0f64).sqrt();
        assert!(close(pooled_std(&[&a, &b]).expect("seeds"), want));
        let single = SeedStat::of(vec![0.3]);
        assert_eq!(pooled_std(&[&single, &single]), None);
        // One-seed rows add nothing to the pooled spread.
        assert!(close(pooled_std(&[&a, &single]).expect("seeds"), 0.1));
    }

    #[test]
    fn summary_covers_every_split_and_slice_over_the_seeds() {
        let r = result("oassl", &[0.1, 0.2, 0.3]);
        let parts: Vec<(&str, Option<&str>, usize)> = r
            .summary
            .iter()
            .map(|p| (p.split.as_str(), p.slice.as_deref(), p.samples))
            .collect();
        assert_eq!(
            parts,
            [
                ("test_single", None, 5),
                ("test_duet", None, 5),
                ("test_duet", Some(DISTRACTOR), 2),
                ("test_duet", Some(NO_DISTRACTOR), 3),
            ]
        );
        let auc = &r.summary[1].metrics["auc"];
        assert_eq!(auc.values.len(), 3);
        assert!(
            close(auc.mean, 0.2) && close(auc.std.expect("3 seeds"), 0.1),
            "{auc:?}"
        );
        let hard = &r.summary[2].metrics["auc"];
        assert!(close(hard.mean, 0.15), "{hard:?}");
        let ap = &r.summary[1].metrics["ap"];
        assert!(
            close(ap.mean, 0.1) && close(ap.std.expect("3 seeds"), 0.05),
            "{ap:?}"
        );
        assert_eq!(r.summary[0].metrics["auc"].std, Some(0.0));
        assert!(r.summary[0].metrics.contains_key("ciou@0.5"));
        assert!(!r.summary[0].metrics.contains_key("piap"));
    }

    #[test]
    fn a_seed_without_a_slice_is_an_error() {
        let with = eval(vec![split("test_duet", 2, 0.2, Some(0.1))]);
        let without = eval(vec![split("test_duet", 2, 0.2, None)]);
        let err = summarise(&[&with, &without]).unwrap_err();
        assert!(
            format!("{err:#}").contains("test_duet / distractor"),
            "{err:#}"
        );
    }

    #[test]
    fn tables_show_mean_and_std_and_the_ordering_beside_the_pooled_std() {
        let results = [
            result("lvs", &[0.1, 0.2, 0.3]),
            result("oassl", &[0.3, 0.4, 0.5]),
        ];
        let md = markdown(&results);
        for want in [
            "test_duet / distractor CAP (%)",
            "test_duet / no_distractor AUC (%)",
            "test_single IoU@0.5 (%)",
            // CAP, CIoU@0.3, AUC of test_duet, then the distractor slice's.
            "| LVS | – | – | – | 0.0 ± 0.0 | 50.0 ± 0.0 | 25.0 ± 0.0 | 10.0 ± 5.0 | 0.0 ± 0.0 | 20.0 ± 10.0 | \
             7.5 ± 5.0 | 0.0 ± 0.0 | 15.0 ± 10.0 |",
            "| random map | – | – | – | 0.0 | 10.0 | 5.0 | 5.0 | 0.0 | 10.0 | 5.0 | 0.0 | 10.0 |",
            "| test_duet AUC | OA-SSL 40.0 > LVS 20.0 | 10.0 |",
            "| test_duet / distractor AUC | OA-SSL 35.0 > LVS 15.0 | 10.0 |",
            "over 3 seed(s)",
        ] {
            assert!(md.contains(want), "{want} missing:\n{md}");
        }
        // One seed: the value alone, and no spread to pool.
        let md = markdown(&[result("lvs", &[0.2]), result("oassl", &[0.4])]);
        assert!(
            md.contains("| LVS | – | – | – | 0.0 | 50.0 | 25.0 | 10.0 | 0.0 | 20.0 |"),
            "{md}"
        );
        assert!(!md.contains('±'), "{md}");
        assert!(
            md.contains("| test_duet AUC | OA-SSL 40.0 > LVS 20.0 | – (1 seed) |"),
            "{md}"
        );
    }

    #[test]
    fn frame_wise_columns_follow_the_source_wise_ones_of_multi_source_splits() {
        // Seeds whose duet split was scored frame-wise at AUC 0.3 and 0.5 beside source-wise AUC 0.2 and 0.4.
        let run = |method: &str, offset: f64| {
            let seeds: Vec<SeedResult> = [0.2, 0.4]
                .iter()
                .enumerate()
                .map(|(k, &auc)| SeedResult {
                    seed: k as u64,
                    dir: method.into(),
                    reused: false,
                    eval: eval(vec![
                        split("test_single", 1, 0.5, None),
                        with_frame_wise(
                            split("test_duet", 2, auc + offset, Some(auc)),
                            auc + offset + 0.1,
                        ),
                    ]),
                })
                .collect();
            method_result(method, seeds)
        };
        let results = [run("lvs", 0.0), run("oassl", 0.2)];
        let duet = &results[1].summary[1];
        let fw_auc = &duet.metrics["frame_wise/auc"];
        assert!(close(fw_auc.mean, 0.6), "{fw_auc:?}");
        assert!(close(duet.metrics["auc"].mean, 0.5));
        // A slice is scored frame-wise too; the single-source split's frame-wise metrics stay in the JSON only.
        assert!(results[1].summary[2]
            .metrics
            .contains_key("frame_wise/ciou@0.3"));
        let md = markdown(&results);
        for want in [
            "test_duet CAP (%) | test_duet CIoU@0.3 (%) | test_duet AUC (%) | test_duet frame-wise AP (%) | \
             test_duet frame-wise CIoU@0.3 (%) | test_duet frame-wise AUC (%) | test_duet / distractor CAP (%)",
            // Single: IoU@0.5, AUC, AP; duet: CAP, CIoU@0.3, AUC, frame-wise AP, CIoU@0.3, AUC; then the slices.
            "| OA-SSL | – | 0 | 0 | 0.0 ± 0.0 | 50.0 ± 0.0 | 25.0 ± 0.0 | 25.0 ± 7.1 | 0.0 ± 0.0 | 50.0 ± 14.1 | \
             30.0 ± 7.1 | 0.0 ± 0.0 | 60.0 ± 14.1 | 15.0 ± 7.1 |",
            "| random map | – | – | – | 0.0 | 10.0 | 5.0 | 5.0 | 0.0 | 10.0 | 2.5 | 0.0 | 5.0 |",
            "| test_duet frame-wise AUC | OA-SSL 60.0 > LVS 40.0 | 14.1 |",
        ] {
            assert!(md.contains(want), "{want} missing:\n{md}");
        }
        assert!(!md.contains("test_single frame-wise"), "{md}");
    }

    #[test]
    fn each_seed_trains_with_its_own_seed_in_its_own_folder() {
        let train = TrainConfig {
            seed: 5,
            ..TrainConfig::default()
        };
        let layout = Layout::new("/data");
        let run = ReportRun::new(
            "oassl",
            RunGroup::Method,
            "enc",
            train,
            &layout,
            Path::new("/data/report"),
            3,
        );
        let seeds = run.seed_runs();
        let got: Vec<(&str, u64, PathBuf)> = seeds
            .iter()
            .map(|s| (s.name.as_str(), s.train.seed, s.layout.stage_dir("train")))
            .collect();
        assert_eq!(
            got,
            [
                ("oassl", 5, PathBuf::from("/data/report/oassl/train")),
                (
                    "oassl-seed1",
                    6,
                    PathBuf::from("/data/report/oassl-seed1/train")
                ),
                (
                    "oassl-seed2",
                    7,
                    PathBuf::from("/data/report/oassl-seed2/train")
                ),
            ]
        );
        assert_eq!(
            seeds[2].layout.stage_dir("eval"),
            PathBuf::from("/data/report/oassl-seed2/eval")
        );
    }
}
