//! The objective's constants as the loss code reads them: `[train.loss]` of the pipeline config
//! ([`LossConfig`], defined once in `oassl_pipeline` as plain data and validated at config load), cut into the
//! parameter sets of the trimap, IOI, L_oca and L_ori.

use crate::loss::l_oca::OcaParams;
use crate::loss::l_ori::OriParams;
use crate::model::ioi::IoiConfig;
use crate::trimap::Trimap;

pub use oassl_pipeline::config::{MapScaling, Method, TrainLossConfig as LossConfig};

impl From<&LossConfig> for Trimap {
    /// The trimap (α_p, α_n, ω).
    fn from(cfg: &LossConfig) -> Self {
        Trimap {
            positive_threshold: cfg.alpha_p,
            negative_threshold: cfg.alpha_n,
            sharpness: cfg.omega,
        }
    }
}

impl From<&LossConfig> for IoiConfig {
    /// IOI settings of a training step (evaluation clears `iteration_budget`).
    fn from(cfg: &LossConfig) -> Self {
        IoiConfig {
            trimap: Trimap::from(cfg),
            stop_saliency: cfg.ioi_stop_saliency,
            background_similarity: cfg.ioi_background_similarity,
            merge_similarity: cfg.ioi_merge_similarity,
            iteration_budget: cfg.ioi_iteration_budget,
        }
    }
}

impl IoiConfig {
    /// IOI at evaluation: the training settings, always iterating until every sample stops, so that the
    /// scores count every source NoPrior's loop would find.
    pub fn for_evaluation(cfg: &LossConfig) -> Self {
        Self {
            iteration_budget: None,
            ..Self::from(cfg)
        }
    }
}

impl From<&LossConfig> for OcaParams {
    /// L_oca's constants.
    fn from(cfg: &LossConfig) -> Self {
        OcaParams {
            trimap: Trimap::from(cfg),
            temperature: cfg.oca_temperature,
            false_negative_threshold: cfg.oca_false_negative_threshold,
        }
    }
}

impl From<&LossConfig> for OriParams {
    /// L_ori's constants.
    fn from(cfg: &LossConfig) -> Self {
        OriParams {
            scaling: cfg.ori_map_scaling,
            epsilon: cfg.sinkhorn_epsilon,
            iterations: cfg.sinkhorn_iterations,
            coordinate_weight: cfg.ori_coordinate_weight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_keeps_the_iteration_budget_and_evaluation_drops_it() {
        let cfg = LossConfig {
            ioi_iteration_budget: Some(8),
            ioi_merge_similarity: 0.5,
            ..LossConfig::default()
        };
        let train = IoiConfig::from(&cfg);
        let eval = IoiConfig::for_evaluation(&cfg);
        assert_eq!(train.iteration_budget, Some(8));
        assert_eq!(eval.iteration_budget, None);
        assert_eq!(
            IoiConfig {
                iteration_budget: None,
                ..train
            },
            eval
        );
        assert_eq!(eval.merge_similarity, 0.5);
    }
}
