//! Loss constants and the choice of objective.

use crate::error::{Result, TrainError};
use crate::loss::l_oca::OcaParams;
use crate::loss::l_ori::{MapScaling, OriParams};
use crate::model::ioi::IoiConfig;
use crate::trimap::Trimap;
use serde::{Deserialize, Serialize};

/// Which training objective [`crate::loss::total`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// L_LVS alone (LVS, CVPR 2021).
    Lvs,
    /// L_LVS + L_OSC (NoPrior, CVPR 2024).
    NoPrior,
    /// L_base + λ1·L_oca + λ2·L_ori (OA-SSL, CVPR 2025).
    Oassl,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Lvs => "lvs",
            Self::NoPrior => "noprior",
            Self::Oassl => "oassl",
        })
    }
}

impl std::str::FromStr for Method {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "lvs" => Ok(Self::Lvs),
            "noprior" => Ok(Self::NoPrior),
            "oassl" => Ok(Self::Oassl),
            other => Err(TrainError::Config {
                field: "method",
                reason: format!("expected lvs, noprior or oassl, got `{other}`"),
            }),
        }
    }
}

/// Every constant of the objective. `Default` holds the paper's values where it gives them and this project's
/// documented choices elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossConfig {
    /// α_p, trimap foreground threshold: 0.65 (supplementary §1, following LVS).
    pub alpha_p: f64,
    /// α_n, trimap background threshold: 0.4 (supplementary §1, following LVS).
    pub alpha_n: f64,
    /// ω, trimap sigmoid sharpness: 0.03 (supplementary §1, following LVS).
    pub omega: f64,
    /// T of L_LVS: 0.07 (LVS and NoPrior code, docs/method.md §3.1).
    pub lvs_temperature: f64,
    /// Add L_OSC to L_base for `oassl`: true (docs/method.md §11.4). `noprior` always includes it.
    pub base_includes_osc: bool,
    /// Weight of L_OSC inside L_base: 1 (NoPrior trains L_LVS + L_OSC 1:1, docs/method.md §2.4).
    pub osc_weight: f64,
    /// IOI stop threshold on the remaining saliency: 0.1 (NoPrior code, docs/method.md §2.3).
    pub ioi_stop_saliency: f64,
    /// IOI background cosine threshold: 0.7 (NoPrior code, docs/method.md §2.3).
    pub ioi_background_similarity: f64,
    /// IOI merge cosine threshold: 0.6 (NoPrior code, docs/method.md §2.3).
    pub ioi_merge_similarity: f64,
    /// λ1, weight of L_oca: 1 (supplementary Table 3).
    pub lambda1: f64,
    /// T of L_oca: 0.07 (not retrieved; LVS's value, docs/method.md §11.6).
    pub oca_temperature: f64,
    /// δ, OCA false-negative caption-cosine threshold: 0.5 (not retrieved; docs/method.md §11.6, sweepable).
    pub oca_false_negative_threshold: f64,
    /// λ2, weight of L_ori: 0.1 (supplementary Table 3).
    pub lambda2: f64,
    /// Sinkhorn iterations: 100 (supplementary §1).
    pub sinkhorn_iterations: usize,
    /// Sinkhorn ε: 0.05 (not retrieved; docs/method.md §3.4 suggests 0.05–0.1).
    pub sinkhorn_epsilon: f64,
    /// λ_c, weight of the coordinate distance in the ORI cost: 1 (not retrieved; docs/method.md §3.4).
    pub ori_coordinate_weight: f64,
    /// How reference maps are rescaled to [0, 1] before transport: min–max (docs/method.md §11.7).
    pub ori_map_scaling: MapScaling,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            alpha_p: 0.65,
            alpha_n: 0.4,
            omega: 0.03,
            lvs_temperature: 0.07,
            base_includes_osc: true,
            osc_weight: 1.0,
            ioi_stop_saliency: 0.1,
            ioi_background_similarity: 0.7,
            ioi_merge_similarity: 0.6,
            lambda1: 1.0,
            oca_temperature: 0.07,
            oca_false_negative_threshold: 0.5,
            lambda2: 0.1,
            sinkhorn_iterations: 100,
            sinkhorn_epsilon: 0.05,
            ori_coordinate_weight: 1.0,
            ori_map_scaling: MapScaling::MinMax,
        }
    }
}

impl LossConfig {
    /// Rejects values no loss can use (non-positive temperatures, ε or ω; negative weights; zero iterations).
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("omega", self.omega),
            ("lvs_temperature", self.lvs_temperature),
            ("oca_temperature", self.oca_temperature),
            ("sinkhorn_epsilon", self.sinkhorn_epsilon),
        ];
        for (field, value) in positive {
            if value.is_nan() || value <= 0.0 {
                return Err(TrainError::Config {
                    field,
                    reason: format!("must be > 0, got {value}"),
                });
            }
        }
        let non_negative = [
            ("osc_weight", self.osc_weight),
            ("lambda1", self.lambda1),
            ("lambda2", self.lambda2),
            ("ori_coordinate_weight", self.ori_coordinate_weight),
        ];
        for (field, value) in non_negative {
            if value.is_nan() || value < 0.0 {
                return Err(TrainError::Config {
                    field,
                    reason: format!("must be >= 0, got {value}"),
                });
            }
        }
        if self.alpha_n > self.alpha_p {
            return Err(TrainError::Config {
                field: "alpha_n",
                reason: format!(
                    "must not exceed alpha_p ({} > {})",
                    self.alpha_n, self.alpha_p
                ),
            });
        }
        if self.sinkhorn_iterations == 0 {
            return Err(TrainError::Config {
                field: "sinkhorn_iterations",
                reason: "must be >= 1".into(),
            });
        }
        Ok(())
    }

    /// The trimap (α_p, α_n, ω).
    pub fn trimap(&self) -> Trimap {
        Trimap {
            positive_threshold: self.alpha_p,
            negative_threshold: self.alpha_n,
            sharpness: self.omega,
        }
    }

    /// IOI settings, also for evaluation with [`crate::model::OasslModel::infer_maps`].
    pub fn ioi(&self) -> IoiConfig {
        IoiConfig {
            trimap: self.trimap(),
            stop_saliency: self.ioi_stop_saliency,
            background_similarity: self.ioi_background_similarity,
            merge_similarity: self.ioi_merge_similarity,
        }
    }

    /// L_oca's constants.
    pub fn oca(&self) -> OcaParams {
        OcaParams {
            trimap: self.trimap(),
            temperature: self.oca_temperature,
            false_negative_threshold: self.oca_false_negative_threshold,
        }
    }

    /// L_ori's constants.
    pub fn ori(&self) -> OriParams {
        OriParams {
            scaling: self.ori_map_scaling,
            epsilon: self.sinkhorn_epsilon,
            iterations: self.sinkhorn_iterations,
            coordinate_weight: self.ori_coordinate_weight,
        }
    }
}
