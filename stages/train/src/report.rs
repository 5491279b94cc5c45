//! `oassl report`: the method comparison of the supplementary's Tables 1-3 on one dataset.
//!
//! Every run trains from the same manifest, the same extracted clips and the same seed, changing one thing: the
//! objective (`lvs`, `noprior`, `oassl`), the balance λ1 / λ2 (Table 3), or the text encoder of the captions
//! (Table 2). Each run has its own `train/` and `eval/` under `<report dir>/<run>/`, so a rerun of the report
//! retrains only the runs whose settings or inputs changed (stage locks). The tables are written as
//! `<report dir>/report.md` and `report.json`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use oassl_eval::Aggregates;
use oassl_pipeline::config::{EvalConfig, TrainConfig};
use oassl_pipeline::Layout;

use crate::evaluation::{self, EvalReport};
use crate::stage::{self, TrainOptions};

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

/// One training + evaluation run of the comparison.
#[derive(Debug, Clone)]
pub struct ReportRun {
    /// Folder name under the report dir.
    pub name: String,
    /// Its table.
    pub group: RunGroup,
    /// Text encoder of the captions it trains on (e.g. `all-MiniLM-L6-v2`).
    pub encoder: String,
    /// `[train]` of the run.
    pub train: TrainConfig,
    /// Where it reads its inputs (its `embed/` may be its own) and writes `train/` and `eval/`.
    pub layout: Layout,
}

impl ReportRun {
    /// A run named `name` whose `train/` and `eval/` live under `dir/name/`.
    pub fn new(
        name: &str,
        group: RunGroup,
        encoder: &str,
        train: TrainConfig,
        layout: &Layout,
        dir: &std::path::Path,
    ) -> Self {
        let own = dir.join(name);
        Self {
            name: name.to_string(),
            group,
            encoder: encoder.to_string(),
            train,
            layout: layout
                .clone()
                .with_stage_dir("train", own.join("train"))
                .with_stage_dir("eval", own.join("eval")),
        }
    }
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
    /// Whether training was skipped because nothing changed.
    pub reused: bool,
    /// The evaluation.
    pub eval: EvalReport,
}

/// Trains (unless up to date) and evaluates one run.
pub fn run_one(run: &ReportRun, eval_cfg: &EvalConfig, opts: &TrainOptions) -> Result<RunResult> {
    let summary = stage::run(&run.train, &run.layout, opts)
        .with_context(|| format!("report run {}: training", run.name))?;
    let eval = evaluation::run(eval_cfg, &run.layout)
        .with_context(|| format!("report run {}: evaluation", run.name))?;
    let uses_text = run.train.method == "oassl";
    Ok(RunResult {
        name: run.name.clone(),
        group: run.group,
        method: run.train.method.clone(),
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
        reused: summary.up_to_date,
        eval: eval.report,
    })
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}", 100.0 * v)
    } else {
        "NaN".into()
    }
}

fn success(a: &Aggregates, t: f64) -> f64 {
    a.success
        .iter()
        .find(|s| (s.threshold - t).abs() < 1e-9)
        .map_or(f64::NAN, |s| s.value)
}

/// The three numbers a split is read by: CAP / CIoU@0.3 / AUC for multi-source splits, IoU@0.5 / AUC / AP
/// for single-source ones.
fn split_cells(a: &Aggregates, multi: bool) -> [String; 3] {
    let ap = a.mean_ap.unwrap_or(f64::NAN);
    if multi {
        [pct(ap), pct(success(a, 0.3)), pct(a.auc)]
    } else {
        [pct(success(a, 0.5)), pct(a.auc), pct(ap)]
    }
}

fn display_method(m: &str) -> &str {
    match m {
        "lvs" => "LVS",
        "noprior" => "NoPrior",
        "oassl" => "OA-SSL",
        other => other,
    }
}

/// The report tables as Markdown: one table per group, columns per split, reference rows (random map, centre
/// prior) first.
pub fn markdown(results: &[RunResult]) -> String {
    let Some(first) = results.first() else {
        return "No runs.\n".into();
    };
    let splits = &first.eval.splits;
    let mut header = "| Method | Text encoder | λ1 | λ2 |".to_string();
    let mut rule = "|---|---|---:|---:|".to_string();
    for s in splits {
        let names = if s.max_sources > 1 {
            ["CAP", "CIoU@0.3", "AUC"]
        } else {
            ["IoU@0.5", "AUC", "AP"]
        };
        for n in names {
            header.push_str(&format!(" {} {n} (%) |", s.split));
            rule.push_str("---:|");
        }
    }
    let row = |label: &str, enc: &str, l1: &str, l2: &str, cells: Vec<String>| {
        format!(
            "| {label} | {enc} | {l1} | {l2} | {} |\n",
            cells.join(" | ")
        )
    };
    let reference = |pick: fn(&evaluation::SplitReport) -> &Aggregates| -> Vec<String> {
        splits
            .iter()
            .flat_map(|s| split_cells(pick(s), s.max_sources > 1))
            .collect()
    };
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
        out.push_str(&row("random map", "–", "–", "–", reference(|s| &s.random)));
        out.push_str(&row(
            "centre prior",
            "–",
            "–",
            "–",
            reference(|s| &s.centre_prior),
        ));
        for r in members {
            let cells = r
                .eval
                .splits
                .iter()
                .flat_map(|s| split_cells(&s.model.aggregates, s.max_sources > 1))
                .collect();
            let (l1, l2) = if r.method == "oassl" {
                (format!("{}", r.lambda1), format!("{}", r.lambda2))
            } else {
                ("–".into(), "–".into())
            };
            out.push_str(&row(display_method(&r.method), &r.encoder, &l1, &l2, cells));
        }
        out.push('\n');
    }
    out
}

/// Writes `report.md` (with `preamble` above the tables) and `report.json` under `dir`, atomically.
pub fn write(dir: &std::path::Path, preamble: &str, results: &[RunResult]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let md = dir.join("report.md");
    let text = format!("{preamble}\n{}", markdown(results));
    oassl_pipeline::atomic::write_bytes(&md, text.as_bytes())?;
    oassl_pipeline::atomic::write_json(&dir.join("report.json"), &results)?;
    Ok(md)
}
