//! `oassl report`: trains and evaluates the comparison runs of `[report]` and writes the tables.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use oassl_embed::stage::{run as embed_stage, RunOptions};
use oassl_pipeline::config::{EmbedConfig, LoadedConfig, Method, TrainConfig};
use oassl_report::{self as report, ReportRun, RunGroup};
use oassl_train::stage::TrainOptions;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Retrain every run even if nothing changed.
    #[arg(long)]
    pub force: bool,
}

fn encoder_name(cfg: &EmbedConfig) -> String {
    let dir = cfg
        .model_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if dir.is_empty() {
        cfg.encoder.clone()
    } else {
        dir
    }
}

fn lambda_tag(v: f64) -> String {
    format!("{v}").replace('.', "p")
}

fn runs(loaded: &LoadedConfig, layout: &oassl_pipeline::Layout) -> Result<Vec<ReportRun>> {
    let cfg = &loaded.config;
    let dir = layout.root().join(&cfg.report.dir);
    let seeds = cfg.report.seeds;
    let base = TrainConfig {
        epochs: if cfg.report.epochs > 0 {
            cfg.report.epochs
        } else {
            cfg.train.epochs
        },
        ..cfg.train.clone()
    };
    let encoder = encoder_name(&cfg.embed);
    let mut out = Vec::new();
    for m in &cfg.report.methods {
        let train = TrainConfig {
            method: m.parse().map_err(anyhow::Error::msg)?,
            ..base.clone()
        };
        out.push(ReportRun::new(
            m,
            RunGroup::Method,
            &encoder,
            train,
            layout,
            &dir,
            seeds,
        ));
    }
    for [l1, l2] in &cfg.report.lambda_sweep {
        let mut train = TrainConfig {
            method: Method::Oassl,
            ..base.clone()
        };
        train.loss.lambda1 = *l1;
        train.loss.lambda2 = *l2;
        let name = format!("oassl-l1-{}-l2-{}", lambda_tag(*l1), lambda_tag(*l2));
        out.push(ReportRun::new(
            &name,
            RunGroup::LambdaSweep,
            &encoder,
            train,
            layout,
            &dir,
            seeds,
        ));
    }
    if !cfg.report.clip_model_dir.as_os_str().is_empty() {
        let clip = EmbedConfig {
            encoder: "clip".into(),
            model_dir: cfg.report.clip_model_dir.clone(),
            pooling: "eos".into(),
            max_len: None,
            ..cfg.embed.clone()
        };
        let run_dir = dir.join("oassl-clip");
        let clip_layout = layout
            .clone()
            .with_stage_dir("embed", run_dir.join("embed"));
        let model_dir = loaded.resolve(&clip.model_dir);
        let s = embed_stage(
            &clip,
            &model_dir,
            &clip_layout,
            &RunOptions { force: false },
        )
        .with_context(|| {
            format!(
                "report: embedding the captions with CLIP from {}",
                model_dir.display()
            )
        })?;
        eprintln!(
            "report: CLIP text embeddings {} ({} texts)",
            if s.up_to_date {
                "up to date"
            } else {
                "written"
            },
            s.distinct_texts
        );
        let train = TrainConfig {
            method: Method::Oassl,
            ..base.clone()
        };
        out.push(ReportRun::new(
            "oassl-clip",
            RunGroup::TextEncoder,
            &encoder_name(&clip),
            train,
            &clip_layout,
            &dir,
            seeds,
        ));
    }
    Ok(out)
}

pub fn run(config: &Path, args: ReportArgs) -> Result<ExitCode> {
    let (loaded, layout) = super::load(config)?;
    let started = Instant::now();
    let runs = runs(&loaded, &layout)?;
    let visual_weights = (!loaded.config.train.visual_weights.as_os_str().is_empty())
        .then(|| loaded.resolve(&loaded.config.train.visual_weights));
    // A report killed mid-run continues each interrupted training where it stopped.
    let opts = TrainOptions {
        force: args.force,
        resume: true,
        visual_weights,
        ..TrainOptions::default()
    };
    let seeds = loaded.config.report.seeds;
    let mut results = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        eprintln!(
            "report: run {}/{}: {} ({seeds} seed(s))",
            i + 1,
            runs.len(),
            run.name
        );
        results.push(report::run_one(run, &loaded.eval(), &opts)?);
    }
    let train = &loaded.config.train;
    let first = results.first().and_then(|r| r.seeds.first());
    let seed_text = if seeds > 1 {
        let last = train.seed.wrapping_add(seeds as u64 - 1);
        format!("seeds {}..={last} (mean ± sample std)", train.seed)
    } else {
        format!("seed {}", train.seed)
    };
    let preamble = format!(
        "Config `{}`: {} steps of batch {} per run ({} epochs of {}), {} px, {} s audio, {seed_text}, \
         protocol `{}` (multi-source scoring: {}); device {}; {} trainings of {} runs in {:.0} s.\n",
        loaded.path.display(),
        first.map_or(0, |s| s.eval.meta.step),
        train.batch_size,
        runs.first().map_or(0, |r| r.train.epochs),
        train.splits.join(" + "),
        train.image_size,
        train.audio_seconds,
        loaded.config.eval.protocol,
        loaded.config.eval.multi_source,
        first.map_or(String::new(), |s| s.eval.device.clone()),
        results.iter().map(|r| r.seeds.len()).sum::<usize>(),
        results.len(),
        started.elapsed().as_secs_f64()
    );
    let dir = layout.root().join(&loaded.config.report.dir);
    let md = report::write(&dir, &preamble, &results)?;
    print!("{preamble}\n{}", report::markdown(&results));
    println!("report: {}", md.display());
    Ok(ExitCode::SUCCESS)
}
