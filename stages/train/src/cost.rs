//! Computational cost in the layout of the supplementary's Table 4: training seconds per iteration and peak
//! memory per objective, inference seconds per image and peak memory, and parameter counts.
//!
//! Inputs are random tensors of the configured shapes (`[train]` image side, audio seconds, batch size), so the
//! numbers measure the network and the losses, not decoding. Each measurement should run in a fresh process
//! (`oassl cost` does that) because peak memory only grows: on CPU it is the process's peak resident set
//! (`VmHWM`), on CUDA the memory `nvidia-smi` reports for the process (the caching allocator keeps its peak
//! reservation, so reading it after the timed steps gives the peak, CUDA context included).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::audio::spectrogram::SpectrogramConfig;
use crate::loss::{self, LossConfig, Method};
use crate::model::ioi::IoiConfig;
use crate::model::{ModelConfig, OasslModel};
use crate::stage::adam::{Adam, AdamParams};

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
}

/// Runs one phase in this process and returns its row.
pub fn measure(phase: Phase, s: &CostSettings, device: Device) -> Result<CostRow> {
    if s.iterations == 0 {
        bail!("cost: iterations must be >= 1");
    }
    tch::manual_seed(0);
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let vs = nn::VarStore::new(device);
    let model = OasslModel::new(
        vs.root(),
        &ModelConfig {
            text_dim: s.text_dim,
            visual_output_stride: s.visual_output_stride,
            ..ModelConfig::default()
        },
    )?;
    let parameters: i64 = vs
        .trainable_variables()
        .iter()
        .map(Tensor::numel)
        .map(|n| n as i64)
        .sum();
    let batch = match phase {
        Phase::Train(_) => s.batch_size.max(1) as i64,
        Phase::Infer => 1,
    };
    let side = i64::from(s.image_size);
    let spec = SpectrogramConfig::default();
    let frames_t = spec.n_frames((s.audio_seconds * spec.sample_rate).round() as usize) as i64;
    let bins = (spec.window_len / 2 + 1) as i64;
    let opts = (Kind::Float, device);
    let frames = Tensor::randn([batch, 3, side, side], opts);
    let audio = Tensor::randn([batch, 1, bins, frames_t], opts);
    let fg = Tensor::randn([batch, s.k, s.text_dim], opts);
    let bg = Tensor::randn([batch, s.text_dim], opts);
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let seconds = match phase {
        Phase::Train(method) => {
            let mut adam = Adam::new(&vs, AdamParams::default(), 1.0);
            let mut step = || -> Result<()> {
                let out = model.forward(&frames, &audio, &fg, &bg, true)?;
                let terms = loss::total(&out, &s.loss, method)?;
                adam.zero_grad();
                terms.total.backward();
                adam.step(false)?;
                Ok(())
            };
            timed(s, &mut step, &sync)?
        }
        Phase::Infer => {
            let ioi: IoiConfig = s.loss.ioi();
            let mut step = || -> Result<()> {
                model.infer_maps(&frames, &audio, &ioi)?;
                Ok(())
            };
            timed(s, &mut step, &sync)?
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
        s.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.4} | {} | {:.2} M |\n",
            r.phase,
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

    #[test]
    fn a_tiny_measurement_times_and_counts_parameters() {
        let s = CostSettings {
            batch_size: 2,
            image_size: 64,
            audio_seconds: 0.1,
            text_dim: 8,
            visual_output_stride: 16,
            k: 2,
            warmup: 0,
            iterations: 1,
            loss: LossConfig::default(),
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
