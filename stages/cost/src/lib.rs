//! `oassl cost`: the computational cost of the OA-SSL model and its baselines in the layout of the
//! supplementary's Table 4: training seconds per iteration and peak memory per objective, inference seconds per
//! image and peak memory, and parameter counts. The model, the losses and the optimizer are `oassl_train`'s.
//!
//! Inputs are random tensors of the configured shapes (`[train]` image side, audio seconds, batch size), so the
//! numbers measure the network and the losses, not decoding. Each measurement should run in a fresh process
//! (`oassl cost` does that) because peak memory only grows: on CPU it is the process's peak resident set
//! (`VmHWM`), on CUDA the memory `nvidia-smi` reports for the process (the caching allocator keeps its peak
//! reservation, so reading it after the timed steps gives the peak, CUDA context included).

#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use oassl_train::audio::spectrogram::SpectrogramConfig;
use oassl_train::loss::{self, LossConfig, Method};
use oassl_train::model::ioi::IoiConfig;
use oassl_train::model::resnet::Compute;
use oassl_train::model::{ModelConfig, OasslModel};
use oassl_train::stage::adam::{Adam, AdamParams};
use oassl_train::stage::loss_scaler::INITIAL_LOSS_SCALE;

/// What one measurement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Training steps of an objective (forward, losses, backward, Adam).
    Train(Method),
    /// Inference of one image at a time (`S_a` and the IOI maps).
    Infer,
}

impl Phase {
    /// `train:<method>` or `infer`.
    pub fn name(&self) -> String {
        match self {
            Phase::Train(m) => format!("train:{m}"),
            Phase::Infer => "infer".into(),
        }
    }

    /// Parses [`Phase::name`].
    pub fn parse(s: &str) -> Result<Self> {
        match s.split_once(':') {
            None if s == "infer" => Ok(Phase::Infer),
            Some(("train", m)) => m
                .parse()
                .map(Phase::Train)
                .map_err(|e| anyhow::anyhow!("cost phase {s:?}: {e}")),
            _ => bail!("unknown cost phase {s:?}: expected train:<lvs|noprior|oassl> or infer"),
        }
    }
}

/// Arithmetic of the training step's forward pass. The losses always run in f32 (`oassl_train::loss::total` widens
/// its inputs) and the weights and Adam state stay f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    Fp32,
    /// CUDA autocast (f16) with dynamic loss scaling, as `[train] autocast = true` trains.
    Fp16,
    /// Both trunks in bf16 with f32 weights cast at use (see [`Compute`]); runs on CPU and CUDA, no loss
    /// scaling (bf16 has f32's exponent range).
    Bf16,
}

impl Precision {
    /// Adam with the paper's settings over `vs`, with the training loop's dynamic loss scaling for f16.
    pub fn optimizer(self, vs: &tch::nn::VarStore) -> Result<Adam> {
        match self {
            Precision::Fp16 => {
                Adam::with_loss_scaling(vs, AdamParams::default(), INITIAL_LOSS_SCALE)
            }
            _ => Adam::new(vs, AdamParams::default()),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
        })
    }
}

impl FromStr for Precision {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "fp16" => Ok(Precision::Fp16),
            "bf16" => Ok(Precision::Bf16),
            _ => bail!("unknown precision {s:?}: expected fp32, fp16 or bf16"),
        }
    }
}

/// Random inputs of one batch at the configured shapes.
pub struct StepInputs {
    /// `[B, 3, S, S]`.
    pub frames: Tensor,
    /// `[B, 1, F, T]`.
    pub audio: Tensor,
    /// `[B, K, D]`.
    pub fg: Tensor,
    /// `[B, D]`.
    pub bg: Tensor,
}

impl StepInputs {
    /// Standard-normal inputs of batch `batch` with the shapes of `s` on `device`.
    pub fn random(s: &CostSettings, batch: i64, device: Device) -> Self {
        let side = i64::from(s.image_size);
        let spec = SpectrogramConfig::default();
        let frames_t = spec.n_frames((s.audio_seconds * spec.sample_rate).round() as usize) as i64;
        let bins = (spec.window_len / 2 + 1) as i64;
        let opts = (Kind::Float, device);
        Self {
            frames: Tensor::randn([batch, 3, side, side], opts),
            audio: Tensor::randn([batch, 1, bins, frames_t], opts),
            fg: Tensor::randn([batch, s.k, s.text_dim], opts),
            bg: Tensor::randn([batch, s.text_dim], opts),
        }
    }
}

/// The model of a measurement, built as `s` says (random weights, seed 0), with its variables.
pub fn build_model(s: &CostSettings, device: Device) -> Result<(nn::VarStore, OasslModel)> {
    if s.precision == Precision::Fp16 && !device.is_cuda() {
        bail!("cost: fp16 runs under CUDA autocast only; use bf16 on CPU");
    }
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let mut model = OasslModel::new(
        vs.root(),
        &ModelConfig {
            text_dim: s.text_dim,
            visual_output_stride: s.visual_output_stride,
            ..ModelConfig::default()
        },
    )?;
    model.set_compute(Compute {
        kind: (s.precision == Precision::Bf16).then_some(Kind::BFloat16),
        channels_last: s.channels_last,
    });
    Ok((vs, model))
}

/// One training step the way the training loop takes it: forward (under CUDA autocast for fp16), the losses
/// of `method`, backward of the (scaled, for fp16) total, Adam. Returns the unscaled total, detached.
pub fn train_step(
    model: &OasslModel,
    adam: &mut Adam,
    x: &StepInputs,
    loss_cfg: &LossConfig,
    method: Method,
    precision: Precision,
) -> Result<Tensor> {
    let fp16 = precision == Precision::Fp16;
    let out = oassl_train::model::cuda_autocast(fp16, || {
        model.forward(&x.frames, &x.audio, &x.fg, &x.bg, true)
    })?;
    let terms = loss::total(&out, loss_cfg, method)?;
    let grads = adam.backward(&terms.total)?;
    adam.step(grads)?;
    Ok(terms.total.detach())
}

/// Shapes and repetitions of a measurement.
#[derive(Debug, Clone, Serialize)]
pub struct CostSettings {
    /// Training batch size (inference runs one image at a time).
    pub batch_size: usize,
    /// Frame side S.
    pub image_size: u32,
    /// Seconds of audio.
    pub audio_seconds: f64,
    /// Width D of the text vectors.
    pub text_dim: i64,
    /// Output stride of the visual trunk (16 or 32).
    pub visual_output_stride: i64,
    /// Foreground captions per sample.
    pub k: i64,
    /// Untimed iterations first (allocator warm-up, cuDNN autotuning).
    pub warmup: usize,
    /// Timed iterations.
    pub iterations: usize,
    /// The loss constants.
    pub loss: LossConfig,
    /// Arithmetic of the training forward pass (inference always runs in f32).
    pub precision: Precision,
    /// Channels-last activations and convolution weights in both trunks.
    pub channels_last: bool,
    /// Images per inference call.
    pub infer_batch: usize,
}

/// One measured row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostRow {
    /// [`Phase::name`].
    pub phase: String,
    /// Device used.
    pub device: String,
    /// Images per iteration.
    pub batch_size: usize,
    /// Mean seconds per iteration over the timed iterations.
    pub seconds_per_iter: f64,
    /// `seconds_per_iter / batch_size`.
    pub seconds_per_image: f64,
    /// Peak memory in bytes (see the module doc for what it counts); `None` where it cannot be read.
    pub peak_memory_bytes: Option<u64>,
    /// What `peak_memory_bytes` is.
    pub memory_kind: String,
    /// Trainable parameters of the network.
    pub parameters: i64,
    /// Arithmetic of the forward pass (rows of older runs are f32).
    #[serde(default)]
    pub precision: Precision,
    /// Whether the trunks ran channels-last.
    #[serde(default)]
    pub channels_last: bool,
}

/// Runs one phase in this process and returns its row.
pub fn measure(phase: Phase, s: &CostSettings, device: Device) -> Result<CostRow> {
    if s.iterations == 0 {
        bail!("cost: iterations must be >= 1");
    }
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let (precision, s) = match phase {
        Phase::Train(_) => (s.precision, s.clone()),
        // Inference is measured in f32: the trained model is evaluated that way.
        Phase::Infer => (
            Precision::Fp32,
            CostSettings {
                precision: Precision::Fp32,
                ..s.clone()
            },
        ),
    };
    let (vs, model) = build_model(&s, device)?;
    let parameters: i64 = vs
        .trainable_variables()
        .iter()
        .map(Tensor::numel)
        .map(|n| n as i64)
        .sum();
    let batch = match phase {
        Phase::Train(_) => s.batch_size.max(1) as i64,
        Phase::Infer => s.infer_batch.max(1) as i64,
    };
    let x = StepInputs::random(&s, batch, device);
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let seconds = match phase {
        Phase::Train(method) => {
            let mut adam = precision.optimizer(&vs)?;
            let mut step = || -> Result<()> {
                let _loss = train_step(&model, &mut adam, &x, &s.loss, method, precision)?;
                Ok(())
            };
            timed(&s, &mut step, &sync)?
        }
        Phase::Infer => {
            let ioi = IoiConfig::for_evaluation(&s.loss);
            let mut step = || -> Result<()> {
                model.infer_maps(&x.frames, &x.audio, &ioi)?;
                Ok(())
            };
            timed(&s, &mut step, &sync)?
        }
    };
    let (peak_memory_bytes, memory_kind) = peak_memory(device);
    Ok(CostRow {
        phase: phase.name(),
        device: format!("{device:?}"),
        batch_size: batch as usize,
        seconds_per_iter: seconds,
        seconds_per_image: seconds / batch as f64,
        peak_memory_bytes,
        memory_kind,
        parameters,
        precision,
        channels_last: s.channels_last,
    })
}

/// Mean seconds of `s.iterations` calls of `step` after `s.warmup` untimed ones.
fn timed(s: &CostSettings, step: &mut dyn FnMut() -> Result<()>, sync: &dyn Fn()) -> Result<f64> {
    for _ in 0..s.warmup {
        step()?;
    }
    sync();
    let started = Instant::now();
    for _ in 0..s.iterations {
        step()?;
    }
    sync();
    Ok(started.elapsed().as_secs_f64() / s.iterations as f64)
}

/// Peak memory of this process on `device` and what the number is.
fn peak_memory(device: Device) -> (Option<u64>, String) {
    if device.is_cuda() {
        (
            cuda_process_memory().ok(),
            "CUDA memory of the process (nvidia-smi)".into(),
        )
    } else {
        (peak_resident_set().ok(), "peak resident set (VmHWM)".into())
    }
}

/// `VmHWM` of `/proc/self/status`, in bytes.
fn peak_resident_set() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    parse_kib_field(&status, "VmHWM:")
}

fn parse_kib_field(status: &str, field: &str) -> Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} line"))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("parsing {line:?}"))?;
    Ok(kib * 1024)
}

/// This process's GPU memory as `nvidia-smi --query-compute-apps` lists it, in bytes.
fn cuda_process_memory() -> Result<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-compute-apps=pid,used_memory",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .context("running nvidia-smi")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_process_memory(&text, std::process::id())
}

fn parse_process_memory(csv: &str, pid: u32) -> Result<u64> {
    for line in csv.lines() {
        let mut parts = line.split(',').map(str::trim);
        if parts.next().and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            let mib: u64 = parts
                .next()
                .and_then(|m| m.parse().ok())
                .with_context(|| format!("parsing nvidia-smi line {line:?}"))?;
            return Ok(mib * 1024 * 1024);
        }
    }
    bail!("process {pid} not listed by nvidia-smi")
}

/// The rows as a markdown table in the layout of the supplementary's Table 4.
pub fn markdown(rows: &[CostRow], mllm_seconds_per_image: Option<f64>) -> String {
    let gib = |b: Option<u64>| {
        b.map_or("n/a".to_string(), |b| {
            format!("{:.2}", b as f64 / (1u64 << 30) as f64)
        })
    };
    let mut s = String::from(
        "| Phase | Device | Batch | Time (s) per iter | Time (s) per image | Peak memory (GiB) | Parameters |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    if let Some(m) = mllm_seconds_per_image {
        s.push_str(&format!(
            "| captions (MLLM) | server | 1 | — | {m:.3} | — | — |\n"
        ));
    }
    for r in rows {
        let mut phase = r.phase.clone();
        if r.precision != Precision::Fp32 {
            phase.push_str(&format!(" {}", r.precision));
        }
        if r.channels_last {
            phase.push_str(" channels-last");
        }
        s.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.4} | {} | {:.2} M |\n",
            phase,
            r.device,
            r.batch_size,
            r.seconds_per_iter,
            r.seconds_per_image,
            gib(r.peak_memory_bytes),
            r.parameters as f64 / 1e6
        ));
    }
    if let Some(r) = rows.first() {
        s.push_str(&format!("\nPeak memory: {}.\n", r.memory_kind));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_round_trip_and_bad_names_fail() {
        for p in [
            Phase::Infer,
            Phase::Train(Method::Lvs),
            Phase::Train(Method::Oassl),
        ] {
            assert_eq!(Phase::parse(&p.name()).unwrap(), p);
        }
        assert!(Phase::parse("train:fast").is_err());
        assert!(Phase::parse("eval").is_err());
    }

    #[test]
    fn memory_fields_parse() {
        let status = "Name:\toassl\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\n";
        assert_eq!(parse_kib_field(status, "VmHWM:").unwrap(), 2048 * 1024);
        assert!(parse_kib_field("Name: x\n", "VmHWM:").is_err());
        let smi = "1234, 500\n42, 1536\n";
        assert_eq!(parse_process_memory(smi, 42).unwrap(), 1536 << 20);
        assert!(parse_process_memory(smi, 7).is_err());
    }

    fn tiny(precision: Precision, channels_last: bool) -> CostSettings {
        CostSettings {
            batch_size: 4,
            image_size: 64,
            audio_seconds: 0.25,
            text_dim: 8,
            visual_output_stride: 16,
            k: 2,
            warmup: 0,
            iterations: 1,
            loss: LossConfig::default(),
            precision,
            channels_last,
            infer_batch: 1,
        }
    }

    #[test]
    fn bf16_training_steps_on_cpu_give_finite_losses_and_move_the_weights() {
        let s = tiny(Precision::Bf16, false);
        let (vs, model) = build_model(&s, Device::Cpu).unwrap();
        let names = [
            "visual.layer4.1.conv2.weight",
            "audio.conv1.weight",
            "text_proj.weight",
        ];
        let before: Vec<Tensor> = names.iter().map(|n| vs.variables()[*n].copy()).collect();
        let mut adam = Precision::Bf16.optimizer(&vs).unwrap();
        let x = StepInputs::random(&s, 4, Device::Cpu);
        let out = model
            .forward(&x.frames, &x.audio, &x.fg, &x.bg, true)
            .unwrap();
        assert_eq!(out.visual.kind(), Kind::BFloat16);
        assert_eq!(out.audio.kind(), Kind::BFloat16);
        for step in 0..3 {
            let loss =
                train_step(&model, &mut adam, &x, &s.loss, Method::Oassl, s.precision).unwrap();
            assert_eq!(loss.kind(), Kind::Float);
            let v = f64::try_from(&loss).unwrap();
            assert!(v.is_finite(), "step {step}: loss {v}");
        }
        assert_eq!(adam.counters().unwrap().t, 3);
        let vars = vs.variables();
        for (name, old) in names.iter().zip(&before) {
            let now = &vars[*name];
            // The f32 master weights take the updates.
            assert_eq!(now.kind(), Kind::Float, "{name}");
            let moved = f64::try_from((now - old).abs().max()).unwrap();
            assert!(moved > 0.0, "{name} did not change");
        }
    }

    #[test]
    fn fp16_is_refused_on_cpu() {
        let err = build_model(&tiny(Precision::Fp16, false), Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("bf16"), "{err}");
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("fp8".parse::<Precision>().is_err());
    }

    #[test]
    fn channels_last_gives_the_same_features() {
        let s = tiny(Precision::Fp32, false);
        let (_vs, mut model) = build_model(&s, Device::Cpu).unwrap();
        let x = StepInputs::random(&s, 2, Device::Cpu);
        let plain = model
            .forward(&x.frames, &x.audio, &x.fg, &x.bg, false)
            .unwrap();
        model.set_compute(Compute {
            kind: None,
            channels_last: true,
        });
        let nhwc = model
            .forward(&x.frames, &x.audio, &x.fg, &x.bg, false)
            .unwrap();
        assert!(nhwc.visual.is_contiguous());
        for (a, b) in [(&plain.visual, &nhwc.visual), (&plain.audio, &nhwc.audio)] {
            assert!(a.allclose(b, 1e-4, 1e-5, false));
        }
    }

    /// The same steps from the same weights, once in the default layout and once channels-last: the updates
    /// agree (a gradient flattened in the wrong order would move each weight by another one's step, which
    /// Adam makes just as large), and the weights stay channels-last and save.
    #[test]
    fn channels_last_training_steps_move_the_weights_as_the_default_layout_does() {
        let s = tiny(Precision::Fp32, false);
        let (vs_nchw, model_nchw) = build_model(&s, Device::Cpu).unwrap();
        let (mut vs_nhwc, mut model_nhwc) = build_model(&s, Device::Cpu).unwrap();
        // Other tests draw from libtorch's process-wide generator meanwhile: copy, do not re-seed.
        vs_nhwc.copy(&vs_nchw).unwrap();
        model_nhwc.set_compute(Compute {
            kind: None,
            channels_last: true,
        });
        let name = "audio.layer2.0.conv1.weight";
        let before = vs_nchw.variables()[name].copy();
        let x = StepInputs::random(&s, 4, Device::Cpu);
        let mut moved = Vec::new();
        for (vs, model) in [(&vs_nchw, &model_nchw), (&vs_nhwc, &model_nhwc)] {
            let mut adam = Precision::Fp32.optimizer(vs).unwrap();
            for _ in 0..3 {
                let loss = train_step(model, &mut adam, &x, &s.loss, Method::Lvs, s.precision);
                assert!(f64::try_from(loss.unwrap()).unwrap().is_finite());
            }
            moved.push(&vs.variables()[name] - &before);
        }
        let size = f64::try_from(moved[0].abs().mean(Kind::Float)).unwrap();
        let apart = f64::try_from((&moved[0] - &moved[1]).abs().mean(Kind::Float)).unwrap();
        assert!(size > 0.0);
        assert!(
            apart < 0.05 * size,
            "updates differ by {apart} against a mean update of {size}"
        );
        let held = &vs_nhwc.variables()[name];
        assert!(oassl_train::model::resnet::is_channels_last(held));
        let dir = tempfile::tempdir().unwrap();
        oassl_train::model::save_weights(&vs_nhwc, &dir.path().join("w.safetensors")).unwrap();
    }

    #[test]
    fn a_tiny_measurement_times_and_counts_parameters() {
        let s = CostSettings {
            batch_size: 2,
            audio_seconds: 0.1,
            ..tiny(Precision::Fp32, false)
        };
        let row = measure(Phase::Train(Method::Oassl), &s, Device::Cpu).unwrap();
        assert!(row.seconds_per_iter > 0.0);
        assert_eq!(row.batch_size, 2);
        // Two ResNet-18 trunks (11.2 M each less the fc, the audio one with a 1-channel stem) and the projection.
        assert!(
            row.parameters > 20_000_000 && row.parameters < 24_000_000,
            "{}",
            row.parameters
        );
        assert!(row.peak_memory_bytes.unwrap_or(0) > 0);
        let infer = measure(Phase::Infer, &s, Device::Cpu).unwrap();
        assert_eq!(infer.batch_size, 1);
        let table = markdown(&[row, infer], Some(0.9));
        assert!(table.contains("| train:oassl | Cpu | 2 |"), "{table}");
        assert!(table.contains("captions (MLLM)"));
    }
}
