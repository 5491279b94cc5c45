//! The second phase of a training run: the model and its optimizer on their device, either fresh (the
//! checkpoints of any earlier run cleared) or restored from the interrupted run's newest checkpoint.

use anyhow::Result;
use tch::{nn, Device};

use oassl_pipeline::config::TrainConfig;

use super::adam::{Adam, AdamParams};
use super::checkpoint::CheckpointState;
use super::loss_scaler::INITIAL_LOSS_SCALE;
use super::plan::RunPlan;
use super::step_log::{self, StepRow};
use super::{settings, TrainFiles, TrainOptions};
use crate::model::resnet::Compute;
use crate::model::{load_torchvision_trunk, ModelConfig, OasslModel};

/// The trainable state of a run.
pub(super) struct Session {
    /// Where the steps run.
    pub device: Device,
    /// Owns every parameter.
    pub vs: nn::VarStore,
    /// The network.
    pub model: OasslModel,
    /// Its shape, recorded in `model.json`.
    pub model_cfg: ModelConfig,
    /// The optimizer (moments, step count, loss scale).
    pub adam: Adam,
    /// fp16 autocast with loss scaling (CUDA only).
    pub autocast: bool,
    /// Step-log rows so far (those of the interrupted run when resuming).
    pub rows: Vec<StepRow>,
    /// First step this invocation trains.
    pub start_step: usize,
    /// Newest checkpoint written, named when a loss turns non-finite.
    pub last_good: Option<CheckpointState>,
    /// Why the run trains: the staleness, `forced`, `restarted` or `resumed at step N`.
    pub reason: String,
}

impl Session {
    /// Builds the model and optimizer of `cfg` (libtorch seeded, visual trunk loaded if given) and restores the
    /// plan's checkpoint, or clears the checkpoint folder for a fresh run.
    pub fn start(
        cfg: &TrainConfig,
        plan: &RunPlan,
        files: &TrainFiles,
        opts: &TrainOptions,
    ) -> Result<Self> {
        let device = settings::device(&cfg.device, "train")?;
        if cfg.torch_threads > 0 {
            tch::set_num_threads(cfg.torch_threads as i32);
        }
        if device.is_cuda() && cfg.cudnn_benchmark {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        tch::manual_seed(cfg.seed as i64);
        let mut vs = nn::VarStore::new(device);
        let model_cfg = ModelConfig {
            text_dim: plan.set.text_dim as i64,
            freeze_visual: cfg.freeze_visual,
            freeze_audio: false,
            visual_output_stride: i64::from(cfg.visual_output_stride),
            visual_projection: cfg.visual_projection,
        };
        let mut model = OasslModel::new(vs.root(), &model_cfg)?;
        model.set_compute(Compute {
            // CPU mixed precision: bf16 trunks over f32 master weights; bf16 keeps fp32's range, so no loss scaling.
            kind: (cfg.autocast && !device.is_cuda()).then_some(tch::Kind::BFloat16),
            // Before Adam takes the weights: it keeps the layout they have then.
            channels_last: settings::channels_last(cfg, device),
        });
        if let Some(w) = &opts.visual_weights {
            // Fails, naming the file and the tensor, unless every visual trunk tensor is in it with its shape.
            load_torchvision_trunk(&vs, "visual", w)?;
        }
        let autocast = cfg.autocast && device.is_cuda();
        let params = AdamParams {
            lr: cfg.learning_rate,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.adam_epsilon,
        };
        let mut adam = if autocast {
            Adam::with_loss_scaling(&vs, params, INITIAL_LOSS_SCALE)?
        } else {
            Adam::new(&vs, params)?
        };

        let checkpoints = files.checkpoints();
        let mut rows: Vec<StepRow> = Vec::new();
        let mut start_step = 0;
        let mut last_good: Option<CheckpointState> = None;
        let reason = match &plan.resume_from {
            Some(state) => {
                checkpoints.restore(state, &mut vs, &mut adam)?;
                start_step = state.step;
                rows = step_log::read_rows(&files.steps())?;
                rows.retain(|r| r.step <= start_step);
                last_good = Some(state.clone());
                format!("resumed at step {start_step}")
            }
            None => {
                checkpoints.clear()?;
                if opts.restart {
                    "restarted".to_string()
                } else if opts.force {
                    "forced".to_string()
                } else {
                    plan.staleness.to_string()
                }
            }
        };
        tracing::info!(
            "train ({reason}): {} samples, {} steps/epoch, {} steps, method {}, device {device:?}",
            plan.set.samples.len(),
            plan.steps.steps_per_epoch(),
            plan.total_steps,
            cfg.method
        );
        Ok(Self {
            device,
            vs,
            model,
            model_cfg,
            adam,
            autocast,
            rows,
            start_step,
            last_good,
            reason,
        })
    }

    /// Writes the step log, then a checkpoint at `step`, and remembers it as the last good one.
    ///
    /// The log goes first: a run killed between the two writes resumes from the older checkpoint and drops the
    /// extra rows, while the other order would resume from the new checkpoint with the rows since the previous
    /// one missing (and a run killed after its final checkpoint would take its final loss from an older step).
    pub fn save_checkpoint(
        &mut self,
        cfg: &TrainConfig,
        plan: &RunPlan,
        files: &TrainFiles,
        step: usize,
    ) -> Result<()> {
        step_log::write_rows(&files.steps(), &self.rows)?;
        let state = self.checkpoint_state(cfg, plan, step)?;
        self.last_good = Some(files.checkpoints().save(&self.vs, &self.adam, state)?);
        Ok(())
    }

    /// What a checkpoint written now at `step` records (reads Adam's counters, a wait for the device).
    fn checkpoint_state(
        &self,
        cfg: &TrainConfig,
        plan: &RunPlan,
        step: usize,
    ) -> Result<CheckpointState> {
        let counters = self.adam.counters()?;
        Ok(CheckpointState {
            step,
            total_steps: plan.total_steps,
            config_hash: plan.config_hash.clone(),
            inputs_hash: plan.inputs_hash.clone(),
            text_dim: plan.set.text_dim,
            adam_t: counters.t,
            loss_scale: counters.loss_scale,
            clean_steps: counters.clean_steps,
            rng_seed: cfg.seed,
            model_file: std::path::PathBuf::new(),
            optim_file: std::path::PathBuf::new(),
        })
    }
}
