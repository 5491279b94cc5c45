//! A trained OA-SSL model (`train/model.safetensors`, loaded as [`TrainedModel`]) on frames and audio: [`run`]
//! is `oassl eval`, the model on the test splits scored with `oassl_eval` beside a random and a centre-prior map
//! (written as a metrics file, a table and a [`gallery`]); [`localize`] is `oassl localize`, the model on clips of
//! one's own without ground truth. Training, the model and the data loading are `oassl_train`'s.

#![deny(missing_docs)]

pub mod gallery;
pub mod localize;
pub mod run;
pub mod split_truth;
pub mod table;
pub mod trained_model;

#[cfg(test)]
mod tests;

pub use trained_model::TrainedModel;
