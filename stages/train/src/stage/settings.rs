//! `[train]` of `pipeline.toml` as stage three needs it: the device it names and the part that changes the weights.

use anyhow::Result;
use tch::Device;

use oassl_pipeline::config::{resolve_device, Accelerator, TrainConfig};

/// `auto` | `cpu` | `cuda` → a libtorch device, by the pipeline's one rule ([`resolve_device`]).
pub fn device(name: &str, section: &str) -> Result<Device> {
    Ok(
        match resolve_device(section, name, tch::Cuda::is_available())? {
            Accelerator::Cpu => Device::Cpu,
            Accelerator::Cuda => Device::Cuda(0),
        },
    )
}

/// The part of `[train]` that changes the trained weights (thread counts and prefetch depth do not).
pub fn result_relevant(cfg: &TrainConfig) -> TrainConfig {
    TrainConfig {
        workers: 0,
        prefetch: 0,
        torch_threads: 0,
        checkpoint_every: 0,
        log_every: 0,
        ..cfg.clone()
    }
}
