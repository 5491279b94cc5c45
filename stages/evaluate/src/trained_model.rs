//! The trained model of a `train/` folder, loaded for inference (`oassl eval`, `oassl localize`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use oassl_pipeline::stage_lock::StageLock;
use tch::{nn, Device};

use oassl_train::model::ioi::IoiConfig;
use oassl_train::model::resnet::Compute;
use oassl_train::model::OasslModel;
use oassl_train::stage::{ModelMeta, TrainFiles};

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
    /// Reads `model.json` and `model.safetensors` of `files` onto `device`, once the stage lock vouches for
    /// both: a crash between their renames, or a training run in progress, would otherwise give results of a
    /// model nobody trained to the end.
    pub fn load(files: &TrainFiles, device: Device) -> Result<Self> {
        check_stage_lock(files)?;
        let meta = ModelMeta::read(&files.meta())?;
        let ioi = IoiConfig::for_evaluation(&meta.loss);
        let mut vars = nn::VarStore::new(device);
        let mut model = OasslModel::new(vars.root(), &meta.model_config())?;
        let weights = files.model();
        vars.load(&weights)
            .with_context(|| format!("loading weights {}", weights.display()))?;
        if device.is_cuda() {
            // cuDNN's tensor-core layout (BENCHMARKS.md, "Channels-last on an H200"); values as in training.
            model.set_compute(Compute {
                kind: None,
                channels_last: true,
            });
        }
        Ok(Self {
            model,
            meta,
            ioi,
            weights,
            _vars: vars,
        })
    }
}

#[cfg(test)]
impl TrainedModel {
    /// A model built in memory (tests that set the weights by hand); `vars` owns its parameters.
    pub(crate) fn in_memory(
        vars: nn::VarStore,
        model: OasslModel,
        meta: ModelMeta,
    ) -> Result<Self> {
        let ioi = IoiConfig::for_evaluation(&meta.loss);
        Ok(Self {
            model,
            meta,
            ioi,
            weights: PathBuf::from("in-memory"),
            _vars: vars,
        })
    }
}

/// Refuses model files that the training stage's lock does not record, naming the fix.
fn check_stage_lock(files: &TrainFiles) -> Result<()> {
    let lock_path = files.lock();
    let Some(lock) = StageLock::read(&lock_path)? else {
        bail!(
            "{} has no stage lock ({} is missing): training did not finish; run `make train` \
             (`oassl train --resume` continues an interrupted run)",
            files.dir.display(),
            lock_path.display()
        );
    };
    for path in [files.model(), files.meta()] {
        if !lock.vouches_for(&path)? {
            bail!(
                "{} is not the file the training stage recorded in {} (a training run was interrupted or is \
                 rewriting it): run `make train` (`oassl train --resume` continues an interrupted run)",
                path.display(),
                lock_path.display()
            );
        }
    }
    Ok(())
}
