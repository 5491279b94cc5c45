//! `[train]` / `[train.loss]` of `pipeline.toml` mapped onto the model crate's own types.

use anyhow::{bail, Result};
use tch::Device;

use oassl_pipeline::config::{TrainConfig, TrainLossConfig};

use crate::loss::l_ori::MapScaling;
use crate::loss::{LossConfig, Method};

/// `[train.loss]` → [`LossConfig`], validated by the loss code's own rules.
pub fn loss_config(cfg: &TrainLossConfig) -> Result<LossConfig> {
    let loss = LossConfig {
        alpha_p: cfg.alpha_p,
        alpha_n: cfg.alpha_n,
        omega: cfg.omega,
        lvs_temperature: cfg.lvs_temperature,
        base_includes_osc: cfg.base_includes_osc,
        osc_weight: cfg.osc_weight,
        ioi_stop_saliency: cfg.ioi_stop_saliency,
        ioi_background_similarity: cfg.ioi_background_similarity,
        ioi_merge_similarity: cfg.ioi_merge_similarity,
        lambda1: cfg.lambda1,
        oca_temperature: cfg.oca_temperature,
        oca_false_negative_threshold: cfg.oca_false_negative_threshold,
        lambda2: cfg.lambda2,
        sinkhorn_iterations: cfg.sinkhorn_iterations,
        sinkhorn_epsilon: cfg.sinkhorn_epsilon,
        ori_coordinate_weight: cfg.ori_coordinate_weight,
        ori_map_scaling: match cfg.ori_map_scaling.as_str() {
            "affine" => MapScaling::Affine,
            _ => MapScaling::MinMax,
        },
    };
    loss.validate()
        .map_err(|e| anyhow::anyhow!("[train.loss] {e}"))?;
    Ok(loss)
}

/// `[train] method` → [`Method`].
pub fn method(cfg: &TrainConfig) -> Result<Method> {
    cfg.method
        .parse()
        .map_err(|e| anyhow::anyhow!("[train] method: {e}"))
}

/// `auto` | `cpu` | `cuda` → a libtorch device.
pub fn device(name: &str, section: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        "cuda" => bail!("[{section}] device = \"cuda\" but CUDA is not available here"),
        _ => Ok(Device::cuda_if_available()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_loss_constant_is_carried_across() {
        let cfg = TrainLossConfig {
            lambda1: 0.5,
            lambda2: 0.25,
            sinkhorn_iterations: 7,
            ori_map_scaling: "affine".into(),
            ..TrainLossConfig::default()
        };
        let loss = loss_config(&cfg).unwrap();
        assert_eq!(
            (loss.lambda1, loss.lambda2, loss.sinkhorn_iterations),
            (0.5, 0.25, 7)
        );
        assert_eq!(loss.ori_map_scaling, MapScaling::Affine);
        // Defaults agree with the loss code's own.
        assert_eq!(
            loss_config(&TrainLossConfig::default()).unwrap(),
            LossConfig::default()
        );
    }
}
