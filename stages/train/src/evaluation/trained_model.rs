//! The trained model of a `train/` folder, loaded for inference (`oassl eval`, `oassl localize`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use tch::{nn, Device};

use crate::model::ioi::IoiConfig;
use crate::model::OasslModel;
use crate::stage::settings;
use crate::stage::{ModelMeta, TrainFiles};

/// Final weights, their description and the IOI settings they were trained with.
pub struct TrainedModel {
    /// The network, in inference use.
    pub model: OasslModel,
    /// `train/model.json`.
    pub meta: ModelMeta,
    /// IOI thresholds of the training run, reused to split multi-source maps.
    pub ioi: IoiConfig,
    /// The weights file.
    pub weights: PathBuf,
    // Owns the parameters `model` refers to.
    _vars: nn::VarStore,
}

impl TrainedModel {
    /// Reads `model.json` and `model.safetensors` of `files` onto `device`.
    pub fn load(files: &TrainFiles, device: Device) -> Result<Self> {
        let meta = ModelMeta::read(&files.meta())?;
        let ioi = settings::loss_config(&meta.loss)?.ioi();
        let mut vars = nn::VarStore::new(device);
        let model = OasslModel::new(vars.root(), &meta.model_config())?;
        let weights = files.model();
        vars.load(&weights)
            .with_context(|| format!("loading weights {}", weights.display()))?;
        Ok(Self {
            model,
            meta,
            ioi,
            weights,
            _vars: vars,
        })
    }
}
