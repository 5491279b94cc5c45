//! Training objectives (docs/method.md §3):
//!
//! ```text
//! lvs:     L = L_LVS
//! noprior: L = L_base = L_LVS + w_osc·L_OSC
//! oassl:   L = L_base + λ1·L_oca + λ2·L_ori     (λ1 = 1, λ2 = 0.1, supplementary Table 3)
//! ```

pub mod config;
pub mod l_lvs;
pub mod l_oca;
pub mod l_ori;
pub mod l_osc;
pub mod sinkhorn;

#[cfg(test)]
mod reference;

pub use config::{LossConfig, Method};
pub use l_lvs::lvs_contrastive;
pub use l_oca::{foreground_reference, object_aware_contrastive_alignment};
pub use l_ori::object_region_isolation;
pub use l_osc::object_similarity_clustering;
pub use sinkhorn::{sinkhorn, Transport};

use crate::error::{Result, TrainError};
use crate::loss::l_oca::OcaParams;
use crate::loss::l_ori::OriParams;
use crate::model::ioi::{iterative_object_identification, IoiConfig};
use crate::model::sound_map::sound_map_all;
use crate::model::Outputs;
use crate::trimap::Trimap;
use tch::Tensor;

/// The scalar terms of one step. Terms a method does not use are zero tensors; `total` is the one to
/// back-propagate.
#[derive(Debug)]
pub struct LossTerms {
    /// The objective of the chosen method.
    pub total: Tensor,
    /// L_base (L_LVS, plus w_osc·L_OSC where the method uses it).
    pub base: Tensor,
    /// L_LVS.
    pub lvs: Tensor,
    /// L_OSC (unweighted).
    pub osc: Tensor,
    /// L_oca (unweighted).
    pub oca: Tensor,
    /// L_ori (unweighted).
    pub ori: Tensor,
    /// Sources IOI found per sample, `[B]` int64 on the device (`None` when the method runs no IOI); kept on
    /// the device so that a step does not wait to count them.
    pub sources_per_sample: Option<Tensor>,
    /// Samples IOI's iteration budget stopped before they finished, 0-dim int64 on the device (`None` when
    /// the method runs no IOI).
    pub ioi_cut_short: Option<Tensor>,
}

/// A view of `outputs` with f16/bf16 features converted to f32 (other kinds shared as they are).
fn upcast(outputs: &Outputs) -> Outputs {
    let widen = |t: &Tensor| match t.kind() {
        tch::Kind::Half | tch::Kind::BFloat16 => t.to_kind(tch::Kind::Float),
        _ => t.shallow_clone(),
    };
    Outputs {
        visual: widen(&outputs.visual),
        audio: widen(&outputs.audio),
        fg_refs: widen(&outputs.fg_refs),
        bg_ref: widen(&outputs.bg_ref),
        fg_valid: outputs.fg_valid.as_ref().map(Tensor::shallow_clone),
    }
}

/// Computes the objective of `method` on one batch of model outputs.
pub fn total(outputs: &Outputs, cfg: &LossConfig, method: Method) -> Result<LossTerms> {
    cfg.validate().map_err(|e| TrainError::Config {
        field: e.key,
        reason: e.reason,
    })?;
    // Trimap sigmoids reach 1e-24 and masked means divide by their sums: half precision would flush them
    // to zero, so the losses always run in at least f32.
    let outputs = &upcast(outputs);
    let visual = &outputs.visual;
    let zero = || Tensor::zeros([], (visual.kind(), visual.device()));
    let sim_all = sound_map_all(visual, &outputs.audio)?;
    let lvs = lvs_contrastive(&sim_all, &Trimap::from(cfg), cfg.lvs_temperature)?;

    let use_osc = match method {
        Method::Lvs => false,
        Method::NoPrior => true,
        Method::Oassl => cfg.base_includes_osc,
    };
    let (osc, sources_per_sample, ioi_cut_short) = if use_osc {
        let ioi = iterative_object_identification(visual, &outputs.audio, &IoiConfig::from(cfg))?;
        let osc = object_similarity_clustering(&ioi)?;
        (
            osc,
            Some(ioi.source_count_tensor()),
            Some(ioi.cut_short.shallow_clone()),
        )
    } else {
        (zero(), None, None)
    };
    let base = &lvs + &osc * cfg.osc_weight;

    let (oca, ori) = if method == Method::Oassl {
        let b = sim_all.size()[0];
        let own = sim_all.diagonal(0, 0, 1).permute([2, 0, 1]); // [B, h, w]
        let fg = foreground_reference(&outputs.fg_refs, outputs.fg_valid.as_ref())?;
        let oca = object_aware_contrastive_alignment(
            visual,
            &own,
            &fg,
            &outputs.bg_ref,
            &OcaParams::from(cfg),
        )?;
        let refs = Tensor::cat(&[&outputs.fg_refs, &outputs.bg_ref.unsqueeze(1)], 1);
        let valid = outputs.fg_valid.as_ref().map(|m| {
            let bg = Tensor::ones([b, 1], (m.kind(), m.device()));
            Tensor::cat(&[m, &bg], 1)
        });
        let ori = object_region_isolation(visual, &refs, valid.as_ref(), &OriParams::from(cfg))?;
        (oca, ori)
    } else {
        (zero(), zero())
    };
    let total = &base + &oca * cfg.lambda1 + &ori * cfg.lambda2;
    Ok(LossTerms {
        total,
        base,
        lvs,
        osc,
        oca,
        ori,
        sources_per_sample,
        ioi_cut_short,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, OasslModel};
    use tch::{nn, Device, Kind};

    fn batch(model: &OasslModel, k: i64) -> Outputs {
        tch::manual_seed(0);
        let opts = (Kind::Float, Device::Cpu);
        model
            .forward(
                &Tensor::randn([2, 3, 64, 64], opts),
                &Tensor::randn([2, 1, 64, 64], opts),
                &Tensor::randn([2, k, 384], opts),
                &Tensor::randn([2, 384], opts),
                true,
            )
            .unwrap()
    }

    #[test]
    fn methods_select_their_terms() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = OasslModel::new(vs.root(), &ModelConfig::default()).unwrap();
        let out = batch(&model, 2);
        let cfg = LossConfig::default();
        let value = |t: &Tensor| f64::try_from(t).unwrap();
        let lvs = total(&out, &cfg, Method::Lvs).unwrap();
        assert_eq!(value(&lvs.oca), 0.0);
        assert_eq!(value(&lvs.ori), 0.0);
        assert_eq!(value(&lvs.osc), 0.0);
        assert!(lvs.sources_per_sample.is_none());
        assert!((value(&lvs.total) - value(&lvs.lvs)).abs() < 1e-6);
        let noprior = total(&out, &cfg, Method::NoPrior).unwrap();
        let counts = noprior.sources_per_sample.as_ref().unwrap();
        assert_eq!(counts.size(), [2]);
        assert!((value(&noprior.total) - value(&noprior.lvs) - value(&noprior.osc)).abs() < 1e-5);
        let oassl = total(&out, &cfg, Method::Oassl).unwrap();
        let want = value(&oassl.base) + value(&oassl.oca) + 0.1 * value(&oassl.ori);
        assert!((value(&oassl.total) - want).abs() < 1e-4);
        assert!(value(&oassl.oca) > 0.0 && value(&oassl.ori) > 0.0);
    }

    #[test]
    fn oassl_step_trains_every_part() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = OasslModel::new(vs.root(), &ModelConfig::default()).unwrap();
        let out = batch(&model, 2);
        let valid = Tensor::from_slice(&[true, true, true, false]).view([2, 2]);
        let out = out.with_fg_valid(valid).unwrap();
        let terms = total(&out, &LossConfig::default(), Method::Oassl).unwrap();
        terms.total.backward();
        let vars = vs.variables();
        for name in [
            "text_proj.weight",
            "audio.conv1.weight",
            "visual.layer4.1.conv2.weight",
        ] {
            let g = vars[name].grad();
            assert!(g.defined(), "{name} has no gradient");
            let sum = f64::try_from(g.abs().sum(Kind::Double)).unwrap();
            assert!(sum.is_finite() && sum > 0.0, "{name}: {sum}");
        }
    }

    #[test]
    fn full_size_maps_in_half_precision_give_finite_terms_and_gradients() {
        // 7×7×512 features as the 224-pixel model produces them, K = 2, stored in bf16.
        tch::manual_seed(1);
        let opts = (Kind::Float, Device::Cpu);
        let unit = |t: Tensor, dim: i64| crate::model::normalize::l2_normalize(&t, dim);
        let visual = Tensor::randn([4, 512, 7, 7], opts).set_requires_grad(true);
        let text = Tensor::randn([4, 2, 512], opts).set_requires_grad(true);
        let out = Outputs {
            visual: unit(visual.to_kind(Kind::BFloat16), 1),
            audio: unit(Tensor::randn([4, 512], opts), 1).to_kind(Kind::BFloat16),
            fg_refs: unit(text.to_kind(Kind::BFloat16), 2),
            bg_ref: unit(Tensor::randn([4, 512], opts), 1).to_kind(Kind::BFloat16),
            fg_valid: None,
        };
        let terms = total(&out, &LossConfig::default(), Method::Oassl).unwrap();
        assert_eq!(terms.total.kind(), Kind::Float);
        for (name, t) in [
            ("lvs", &terms.lvs),
            ("oca", &terms.oca),
            ("ori", &terms.ori),
            ("total", &terms.total),
        ] {
            let v = f64::try_from(t).unwrap();
            assert!(v.is_finite(), "{name} = {v}");
        }
        terms.total.backward();
        for (name, t) in [("visual", &visual), ("text", &text)] {
            let g = f64::try_from(t.grad().abs().sum(Kind::Double)).unwrap();
            assert!(g.is_finite() && g > 0.0, "{name}: {g}");
        }
    }

    #[test]
    fn config_defaults_are_the_paper_values_and_unknown_keys_fail() {
        let cfg = LossConfig::default();
        assert_eq!(
            (cfg.lambda1, cfg.lambda2, cfg.sinkhorn_iterations),
            (1.0, 0.1, 100)
        );
        assert_eq!((cfg.alpha_p, cfg.alpha_n, cfg.omega), (0.65, 0.4, 0.03));
        let partial: LossConfig =
            serde_json::from_str(r#"{"lambda2": 1.0, "ori_map_scaling": "affine"}"#).unwrap();
        assert_eq!(partial.lambda2, 1.0);
        assert_eq!(partial.lambda1, 1.0);
        assert!(serde_json::from_str::<LossConfig>(r#"{"lambda3": 1.0}"#).is_err());
        let bad = LossConfig {
            sinkhorn_epsilon: 0.0,
            ..LossConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "sinkhorn_epsilon");
        assert_eq!("noprior".parse::<Method>().unwrap(), Method::NoPrior);
        assert_eq!(serde_json::to_string(&Method::Oassl).unwrap(), "\"oassl\"");
        assert!("hard-way".parse::<Method>().is_err());
    }
}
