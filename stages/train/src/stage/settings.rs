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

/// Whether the trunks run channels-last: as `[train] channels_last` says, on CUDA only (on the CPU it showed no
/// gain, BENCHMARKS.md).
pub fn channels_last(cfg: &TrainConfig, device: Device) -> bool {
    cfg.channels_last && device.is_cuda()
}

/// The part of `[train]` that changes the trained weights (thread counts, prefetch depth and memory layout do
/// not).
pub fn result_relevant(cfg: &TrainConfig) -> TrainConfig {
    TrainConfig {
        channels_last: true,
        workers: 0,
        prefetch: 0,
        torch_threads: 0,
        checkpoint_every: 0,
        log_every: 0,
        ..cfg.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oassl_pipeline::fingerprint::hash_json;

    fn fingerprint(cfg: &TrainConfig) -> String {
        hash_json(&result_relevant(cfg)).unwrap()
    }

    #[test]
    fn layout_and_threads_leave_the_fingerprint_alone_and_the_objective_does_not() {
        let base = TrainConfig::default();
        let nchw = TrainConfig {
            channels_last: false,
            workers: 7,
            torch_threads: 3,
            ..base.clone()
        };
        assert_eq!(fingerprint(&base), fingerprint(&nchw));
        let other = TrainConfig {
            learning_rate: 2e-4,
            ..base.clone()
        };
        assert_ne!(fingerprint(&base), fingerprint(&other));
        // The fingerprinted form has no `channels_last` key: configurations from before it hash as they did.
        let json = serde_json::to_value(result_relevant(&nchw)).unwrap();
        assert!(json.get("channels_last").is_none(), "{json}");
        assert!(json.get("cudnn_benchmark").is_some());
    }
}
