//! OA-SSL (object-aware sound source localisation, CVPR 2025) for stage three of oassl: the audio front end,
//! the two-stream network and every training loss, on tch (libtorch 2.11).
//!
//! Brief overview (the method and its open choices are specified in `docs/method.md`):
//!
//! - [`audio::spectrogram`]: waveform → `log(S + 1e-7)` spectrogram matching scipy (257 × 276 for 3 s at
//!   22,050 Hz), in plain Rust, for the data loader.
//! - [`model::OasslModel`]: visual and audio ResNet-18 ([`model::resnet`], torchvision names) plus the caption
//!   projection; `forward` returns normalised features ([`model::Outputs`]), `infer_maps` the evaluation
//!   heatmaps. [`model::sound_map`] holds S_a, [`model::ioi`] NoPrior's iterative object identification.
//! - [`loss`]: one file per term (L_LVS, L_OSC, L_oca, L_ori, Sinkhorn) and [`loss::total`], which composes
//!   `L_base + λ1·L_oca + λ2·L_ori` for [`loss::Method::Oassl`] (or the LVS / NoPrior objectives) from a
//!   [`loss::LossConfig`].
//! - [`data`]: frames, spectrograms and text vectors of the training clips, batched by rayon workers.
//! - [`stage`]: `oassl train`, the resumable training loop (Adam, checkpoints, step log, loss curve).
//!
//! Evaluating a trained model (`oassl eval`, `oassl localize`) is `oassl_evaluate`'s job, the method comparison
//! (`oassl report`) `oassl_report`'s and the cost table (`oassl cost`) `oassl_cost`'s.
//!
//! ```no_run
//! use oassl_train::loss::{self, LossConfig, Method};
//! use oassl_train::model::{ModelConfig, OasslModel};
//! use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
//!
//! # fn main() -> anyhow::Result<()> {
//! let vs = nn::VarStore::new(Device::cuda_if_available());
//! let model = OasslModel::new(vs.root(), &ModelConfig::default())?;
//! let mut opt = nn::Adam::default().build(&vs, 1e-4)?;
//! let opts = (Kind::Float, vs.device());
//! let (frames, spec) = (Tensor::zeros([8, 3, 224, 224], opts), Tensor::zeros([8, 1, 257, 276], opts));
//! let (fg, bg) = (Tensor::zeros([8, 2, 384], opts), Tensor::zeros([8, 384], opts));
//! let outputs = model.forward(&frames, &spec, &fg, &bg, true)?;
//! let terms = loss::total(&outputs, &LossConfig::default(), Method::Oassl)?;
//! opt.backward_step(&terms.total);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod audio;
pub mod data;
pub mod error;
pub mod loss;
pub mod model;
pub mod pretrain;
pub(crate) mod shape;
pub mod stage;
#[cfg(any(test, feature = "test-support"))]
pub mod tiny_set;
pub mod trimap;

pub use error::{Result, TrainError};
