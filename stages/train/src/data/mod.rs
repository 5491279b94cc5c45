//! Data loading for stage three: samples checked up front, frames and spectrograms built by rayon workers into
//! plain buffers, staged as host tensors on a thread of their own, uploaded by the training thread.
//!
//! - [`samples`]: manifest rows joined with their text vectors, validated;
//! - [`frames`]: frame decoding, augmentation, ImageNet normalisation;
//! - [`audio_clip`]: WAV → log spectrogram;
//! - [`decoded_cache`]: every clip decoded once per set of inputs, memory-mapped for the epochs;
//! - [`batch`]: batch buffers and the loader;
//! - [`handover`]: items made on a thread of their own, handed over a bounded channel;
//! - [`composition`]: the clips of each step, alone or composed into multi-source samples;
//! - [`staging`]: batches as (pinned) host tensors, built on a thread of their own;
//! - [`upload`]: batch buffers to the device without the host waiting for it.

pub mod audio_clip;
pub mod batch;
pub mod composition;
pub mod decoded_cache;
pub mod frames;
pub mod handover;
pub mod samples;
pub mod staging;
pub mod upload;

pub use audio_clip::{audio_input, AudioInput, AudioWindow};
pub use batch::{
    epoch_order, eval_tensors, load_eval_item, Batch, BatchLoader, BatchTensors, EvalItem,
    LoaderSettings, Source,
};
pub use composition::StepPlan;
pub use frames::FrameTransform;
pub use samples::{training_set, SkippedSample, TrainSample, TrainSet};
pub use staging::{HostBatch, StagedBatches};
