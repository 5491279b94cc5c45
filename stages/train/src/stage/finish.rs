//! The last phase of a finished run: the final checkpoint, the step log and loss curve, the weights and their
//! description, and, last, the stage lock that vouches for them (a crash before it leaves a run that resumes).

use anyhow::Result;

use oassl_pipeline::config::TrainConfig;
use oassl_pipeline::stage_lock::StageLock;

use super::plan::RunPlan;
use super::session::Session;
use super::{loss_curve, ModelMeta, TrainFiles};
use crate::model::save_weights;

/// Writes every output of a run that reached its last step `step`.
pub(super) fn finish(
    cfg: &TrainConfig,
    plan: &RunPlan,
    session: &mut Session,
    files: &TrainFiles,
    step: usize,
    final_loss: f64,
) -> Result<()> {
    session.save_checkpoint(cfg, plan, files, step)?;
    loss_curve::write(&files.curve(), &session.rows)?;
    save_weights(&session.vs, &files.model())?;
    let meta = ModelMeta {
        method: cfg.method.to_string(),
        step,
        text_dim: session.model_cfg.text_dim as usize,
        image_size: cfg.image_size,
        audio_seconds: cfg.audio_seconds,
        freeze_visual: cfg.freeze_visual,
        visual_output_stride: session.model_cfg.visual_output_stride,
        visual_projection: session.model_cfg.visual_projection,
        loss: cfg.loss.clone(),
        final_loss,
    };
    oassl_pipeline::atomic::write_json(&files.meta(), &meta)?;
    let lock = StageLock::finished(
        "train",
        plan.config_hash.clone(),
        plan.digests.clone(),
        &[&files.model(), &files.meta()],
        &[
            ("samples", plan.steps.clips),
            ("skipped", plan.set.skipped.len()),
            ("steps", step),
        ],
    )?;
    lock.write(&files.lock())
}
