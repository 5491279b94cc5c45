//! `oassl cost`: the supplementary's Table 4 (training s/iter and peak memory per objective, inference s/image
//! and peak memory, MLLM seconds per caption request) measured on this machine.
//!
//! Every phase runs in a child process of this binary (`--measure PHASE`), so each peak-memory figure belongs
//! to that phase alone.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::Args;

use oassl_captions::journal::{load_index, CaptionStatus};
use oassl_cost::{markdown, measure, CostRow, CostSettings, Phase, Precision};
use oassl_train::stage::settings;

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Phases to measure, comma-separated: train:lvs, train:noprior, train:oassl, infer.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "train:lvs,train:noprior,train:oassl,infer"
    )]
    pub phases: Vec<String>,
    /// Timed iterations per phase.
    #[arg(long, default_value_t = 10)]
    pub iterations: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Training batch size (default: `[train] batch_size`).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Foreground captions per sample.
    #[arg(long, default_value_t = 2)]
    pub k: i64,
    /// Width of the text vectors (384: all-MiniLM-L6-v2).
    #[arg(long, default_value_t = 384)]
    pub text_dim: i64,
    /// Arithmetic of the training forward pass: fp32, fp16 (CUDA autocast with loss scaling) or bf16 (both
    /// trunks in bf16 with f32 weights; CPU or CUDA).
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
    /// Channels-last trunks on any device; on CUDA they follow `[train] channels_last` without it, as
    /// training does.
    #[arg(long)]
    pub channels_last: bool,
    /// Images per inference call.
    #[arg(long, default_value_t = 1)]
    pub infer_batch: usize,
    /// Run one phase in this process and print its row as JSON (what the parent runs in each child).
    #[arg(long, hide = true)]
    pub measure: Option<String>,
}

fn settings_of(
    loaded: &oassl_pipeline::config::LoadedConfig,
    args: &CostArgs,
    device: tch::Device,
) -> Result<CostSettings> {
    let train = &loaded.config.train;
    Ok(CostSettings {
        batch_size: args.batch_size.unwrap_or(train.batch_size),
        image_size: train.image_size,
        audio_seconds: train.audio_seconds,
        text_dim: args.text_dim,
        visual_output_stride: i64::from(train.visual_output_stride),
        k: args.k,
        warmup: args.warmup,
        iterations: args.iterations,
        loss: train.loss.clone(),
        precision: args.precision,
        channels_last: args.channels_last || settings::channels_last(train, device),
        infer_batch: args.infer_batch,
    })
}

/// Mean request latency of the captions that came back, and the model that answered, from the journals.
fn mllm_latency(dir: &Path) -> Option<(f64, String)> {
    let index = load_index(dir).ok()?;
    let ok: Vec<_> = index
        .values()
        .filter(|e| e.status == CaptionStatus::Ok)
        .collect();
    if ok.is_empty() {
        return None;
    }
    let mean = ok.iter().map(|e| e.latency_ms as f64).sum::<f64>() / ok.len() as f64 / 1000.0;
    Some((mean, ok[0].model.clone()))
}

pub fn run(config: &Path, args: CostArgs) -> Result<ExitCode> {
    let (loaded, layout) = super::load(config)?;
    let device = settings::device(&loaded.config.train.device, "train")?;
    let s = settings_of(&loaded, &args, device)?;
    if let Some(phase) = &args.measure {
        // The same thread count the training loop uses, so the step is timed as `oassl train` runs it.
        let threads = loaded.config.train.torch_threads;
        if threads > 0 {
            tch::set_num_threads(threads as i32);
        }
        let row = measure(Phase::parse(phase)?, &s, device)?;
        println!("{}", serde_json::to_string(&row)?);
        return Ok(ExitCode::SUCCESS);
    }
    let phases: Vec<Phase> = args
        .phases
        .iter()
        .map(|p| Phase::parse(p))
        .collect::<Result<_>>()?;
    let exe = std::env::current_exe().context("locating the oassl binary")?;
    let mut rows: Vec<CostRow> = Vec::new();
    for phase in &phases {
        eprintln!("cost: measuring {} ...", phase.name());
        let out = Command::new(&exe)
            .arg("--config")
            .arg(config)
            .args(["cost", "--measure", &phase.name()])
            .args(["--iterations", &args.iterations.to_string()])
            .args(["--warmup", &args.warmup.to_string()])
            .args(["--batch-size", &s.batch_size.to_string()])
            .args(["--k", &args.k.to_string()])
            .args(["--text-dim", &args.text_dim.to_string()])
            .args(["--precision", &args.precision.to_string()])
            .args(["--infer-batch", &args.infer_batch.to_string()])
            .args(args.channels_last.then_some("--channels-last"))
            .output()
            .with_context(|| format!("running {}", exe.display()))?;
        if !out.status.success() {
            bail!(
                "measuring {} failed: {}",
                phase.name(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or_default();
        rows.push(
            serde_json::from_str(line)
                .with_context(|| format!("reading the {} row {line:?}", phase.name()))?,
        );
    }
    let mllm = mllm_latency(&layout.stage_dir("captions"));
    let mut table = markdown(&rows, mllm.as_ref().map(|m| m.0));
    if let Some((_, model)) = &mllm {
        table.push_str(&format!(
            "Captions: mean request latency of model `{model}` from the stage-one journals.\n"
        ));
    }
    table.push_str(&format!(
        "Inputs: {} px frames, {} s of audio, K = {}, D = {}, output stride {}; {} timed iterations after {} warm-up; {} torch threads.\n",
        s.image_size, s.audio_seconds, s.k, s.text_dim, s.visual_output_stride, s.iterations, s.warmup, tch::get_num_threads()
    ));
    let dir = layout.stage_dir("cost");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    oassl_pipeline::atomic::write_json(&dir.join("cost.json"), &rows)?;
    oassl_pipeline::atomic::write_bytes(&dir.join("cost.md"), table.as_bytes())?;
    print!("{table}");
    println!("cost: {}", dir.join("cost.md").display());
    Ok(ExitCode::SUCCESS)
}
