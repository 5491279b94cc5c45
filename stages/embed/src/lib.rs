//! Native libtorch text encoders for the oassl embedding stage.
//!
//! Stage two of the pipeline turns the object captions written by stage one into fixed-size vectors. This
//! crate loads a Hugging Face model folder (`config.json`, `tokenizer.json`, `model.safetensors`) into `tch`
//! and embeds texts in batches, on the CPU or a CUDA device, with no Python at run time.
//!
//! # Brief overview
//!
//! * [`EncoderSpec`]: what to load (`kind`, `model_dir`) and how to pool (`pooling`, `normalize`, `max_len`).
//! * [`TextEncoder::load`] builds a [`bert::Bert`] or [`clip_text::ClipText`] whose variable paths spell the
//!   checkpoint keys, checks every tensor's shape against `config.json`, and loads the tokenizer.
//! * [`TextEncoder::embed`] returns an [`EmbedOutput`]: one vector per text in input order, plus how many
//!   texts were truncated. [`TextEncoder::fingerprint`] is the cache key for those vectors.
//! * Errors are [`EmbedError`]s; each names the file and, for weights, the tensor at fault.
//!
//! ```no_run
//! use oassl_embed::{EncoderSpec, TextEncoder};
//!
//! # fn main() -> anyhow::Result<()> {
//! let spec = EncoderSpec::default(); // all-MiniLM-L6-v2, mean pooling, L2-normalised
//! let encoder = TextEncoder::load(&spec, tch::Device::cuda_if_available())?;
//! let out = encoder.embed(&["a dog barking in a park".to_string()], 64)?;
//! assert_eq!(out.vectors[0].len(), encoder.dim());
//! # Ok(())
//! # }
//! ```

pub mod bert;
mod checkpoint;
pub mod clip_text;
mod encoder;
mod error;
pub mod fingerprint;
mod hf_config;
mod layers;
pub mod pooling;
pub mod stage;
pub mod tokenize;

pub use bert::{Bert, BertConfig};
pub use clip_text::{ClipText, ClipTextConfig};
pub use encoder::{EmbedOutput, EncoderKind, EncoderSpec, Pooling, TextEncoder};
pub use error::{EmbedError, Result};
