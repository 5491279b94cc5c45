//! `[embed]`: stage two, text embeddings of the captions.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ensure, ensure_device, InvalidValue};

/// Which frozen text encoder turns captions into reference features, and how it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedConfig {
    /// `bert` (the paper's choice; any BERT-architecture Hugging Face folder) or `clip` (CLIP's text tower,
    /// supplementary Table 2).
    pub encoder: String,
    /// Hugging Face model folder (`config.json`, `model.safetensors`, `tokenizer.json`), relative to the config
    /// file's folder unless absolute.
    pub model_dir: PathBuf,
    /// `mean` (attention-masked, sentence-transformers' MiniLM pooling) or `cls` for BERT; `eos` for CLIP.
    pub pooling: String,
    /// L2-normalise each vector.
    pub normalize: bool,
    /// Truncate tokenised captions to this length (default: the model's own limit).
    pub max_len: Option<usize>,
    /// Captions per forward pass.
    pub batch_size: usize,
    /// `auto` (CUDA when available), `cpu` or `cuda`.
    pub device: String,
    /// Captions embedded between two durable checkpoints of the cache.
    pub chunk_size: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            encoder: "bert".into(),
            model_dir: PathBuf::from("data/models/all-MiniLM-L6-v2"),
            pooling: "mean".into(),
            normalize: true,
            max_len: None,
            batch_size: 64,
            device: "auto".into(),
            chunk_size: 2048,
        }
    }
}

impl EmbedConfig {
    pub(crate) fn validate(&self) -> Result<(), InvalidValue> {
        const S: &str = "embed";
        ensure(
            matches!(self.encoder.as_str(), "bert" | "clip"),
            S,
            "encoder",
            || format!("{:?} is not one of bert, clip", self.encoder),
        )?;
        let pooling_ok = match self.encoder.as_str() {
            "clip" => self.pooling == "eos",
            _ => matches!(self.pooling.as_str(), "mean" | "cls"),
        };
        ensure(pooling_ok, S, "pooling", || {
            format!(
                "{:?} does not fit encoder {:?} (bert: mean or cls; clip: eos)",
                self.pooling, self.encoder
            )
        })?;
        ensure_device(S, &self.device)?;
        ensure(
            (1..=4096).contains(&self.batch_size),
            S,
            "batch_size",
            || format!("{} is outside 1..=4096", self.batch_size),
        )?;
        ensure(
            (1..=1_000_000).contains(&self.chunk_size),
            S,
            "chunk_size",
            || format!("{} is outside 1..=1000000", self.chunk_size),
        )?;
        ensure(
            self.max_len.is_none_or(|m| (2..=65_536).contains(&m)),
            S,
            "max_len",
            || "must be within 2..=65536 (room for the special tokens)".into(),
        )?;
        Ok(())
    }
}
