//! The stage-two entry point: a text encoder loaded from a model folder, embedding texts in batches.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::bert::{Bert, BertConfig};
use crate::clip_text::{eos_position, ClipText, ClipTextConfig};
use crate::error::{EmbedError, Result};
use crate::fingerprint::{hash_bytes, hash_file};
use crate::hf_config;
use crate::pooling;
use crate::tokenize::{pad_batch, TextTokenizer};

/// Which architecture the model folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderKind {
    /// HF `BertModel` weights (`model_type: "bert"`), e.g. bert-base-uncased, all-MiniLM-L6-v2.
    #[default]
    Bert,
    /// HF CLIP text tower (`model_type: "clip_text_model"` or `"clip"`).
    Clip,
}

impl EncoderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Clip => "clip",
        }
    }
}

/// How token states become one vector per text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// First token (`[CLS]`); BERT only.
    Cls,
    /// Attention-masked mean over tokens; BERT only.
    #[default]
    Mean,
    /// End-of-text token, then `text_projection` when present; CLIP only.
    Eos,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cls => "cls",
            Self::Mean => "mean",
            Self::Eos => "eos",
        }
    }
}

/// What to load and how to pool. The default is all-MiniLM-L6-v2 as sentence-transformers uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncoderSpec {
    pub kind: EncoderKind,
    /// Folder with `config.json`, `tokenizer.json` and `model.safetensors`.
    pub model_dir: PathBuf,
    pub pooling: Pooling,
    /// L2-normalise each output vector.
    pub normalize: bool,
    /// Maximum tokens per text, special tokens included. `None`: for BERT, `max_seq_length` from
    /// `sentence_bert_config.json` when the folder has one, else `max_position_embeddings`; for CLIP,
    /// `max_position_embeddings` (77 for the released models).
    pub max_len: Option<usize>,
}

impl Default for EncoderSpec {
    fn default() -> Self {
        Self {
            kind: EncoderKind::Bert,
            model_dir: PathBuf::from("data/models/all-MiniLM-L6-v2"),
            pooling: Pooling::Mean,
            normalize: true,
            max_len: None,
        }
    }
}

/// Embeddings of a list of texts.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedOutput {
    /// One vector per input text, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Length of every vector.
    pub dim: usize,
    /// How many texts were cut to the maximum length.
    pub truncated: usize,
}

enum Model {
    Bert(Bert),
    Clip(ClipText),
}

/// A loaded text encoder (BERT or CLIP text tower) with its tokenizer, on one device.
pub struct TextEncoder {
    model: Model,
    tokenizer: TextTokenizer,
    pad_id: i64,
    spec: EncoderSpec,
    device: Device,
    dim: usize,
    fingerprint: String,
}

/// Version of the embedding computation, part of every fingerprint: bump it when a change here alters
/// the vectors produced from the same files and spec.
const FINGERPRINT_VERSION: &str = "oassl-embed/1";

impl TextEncoder {
    /// Loads `spec.model_dir` onto `device`, checking that the folder is complete, that `config.json` matches
    /// `spec.kind`, and that every checkpoint tensor has the shape the config implies.
    pub fn load(spec: &EncoderSpec, device: Device) -> Result<Self> {
        let dir = &spec.model_dir;
        if !dir.is_dir() {
            return Err(EmbedError::MissingModelDir(dir.clone()));
        }
        let config_path = dir.join("config.json");

        let allowed: &[Pooling] = match spec.kind {
            EncoderKind::Bert => &[Pooling::Cls, Pooling::Mean],
            EncoderKind::Clip => &[Pooling::Eos],
        };
        if !allowed.contains(&spec.pooling) {
            return Err(EmbedError::InvalidSpec(format!(
                "pooling {:?} is not available for {} encoders (allowed: {:?})",
                spec.pooling.as_str(),
                spec.kind.as_str(),
                allowed.iter().map(|p| p.as_str()).collect::<Vec<_>>()
            )));
        }

        let tokenizer_path = dir.join("tokenizer.json");
        let weights_path = dir.join("model.safetensors");
        let (model, tokenizer, pad_id) = match spec.kind {
            EncoderKind::Bert => {
                let cfg = BertConfig::from_file(&config_path)?;
                let limit = cfg.max_position_embeddings as usize;
                let default_len = sentence_bert_max_len(dir)?.unwrap_or(limit);
                let max_len = resolve_max_len(spec.max_len, default_len, limit, &config_path)?;
                // The tokenizer first: a cheap check before reading the weights.
                let tokenizer = TextTokenizer::from_file(&tokenizer_path, max_len)?;
                // Padding is masked out of attention and of mean pooling; the id only has to be valid.
                let pad_id = cfg.pad_token_id.unwrap_or(0).clamp(0, cfg.vocab_size - 1);
                let bert = Bert::from_safetensors(cfg, &weights_path, device)?;
                (Model::Bert(bert), tokenizer, pad_id)
            }
            EncoderKind::Clip => {
                let cfg = ClipTextConfig::from_file(&config_path)?;
                let limit = cfg.max_position_embeddings as usize;
                let max_len = resolve_max_len(spec.max_len, limit, limit, &config_path)?;
                let tokenizer = TextTokenizer::from_file(&tokenizer_path, max_len)?;
                // Padding sits after the end-of-text token, which the causal mask hides; any id will do.
                let pad_id = cfg.pad_token_id.unwrap_or(0).clamp(0, cfg.vocab_size - 1);
                let clip = ClipText::from_safetensors(cfg, &weights_path, device)?;
                (Model::Clip(clip), tokenizer, pad_id)
            }
        };
        let dim = match &model {
            Model::Bert(bert) => bert.config().hidden_size as usize,
            Model::Clip(clip) => clip.output_dim() as usize,
        };
        let fingerprint = fingerprint(
            spec,
            tokenizer.max_len(),
            &[&weights_path, &config_path, &tokenizer_path],
        )?;
        tracing::info!(
            model_dir = %dir.display(),
            kind = spec.kind.as_str(),
            max_len = tokenizer.max_len(),
            dim,
            %fingerprint,
            "text encoder loaded"
        );
        Ok(Self {
            model,
            tokenizer,
            pad_id,
            spec: spec.clone(),
            device,
            dim,
            fingerprint,
        })
    }

    /// Embeds `texts`, `batch_size` at a time, and returns one vector per text in input order.
    ///
    /// Texts are ordered by token count before batching so that each batch pads to a similar length; the
    /// vectors are put back in input order. Runs without autograd on the encoder's device.
    pub fn embed(&self, texts: &[String], batch_size: usize) -> Result<EmbedOutput> {
        if batch_size == 0 {
            return Err(EmbedError::InvalidSpec(
                "batch_size must be at least 1".to_string(),
            ));
        }
        let tokens = self.tokenizer.encode(texts)?;
        self.check_vocab(&tokens.ids)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        // Longest first: a batch too large for the device fails at once rather than at the end.
        order.sort_by_key(|&i| std::cmp::Reverse(tokens.ids[i].len()));

        let _no_grad = tch::no_grad_guard();
        let mut vectors = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch_size) {
            let rows: Vec<&[i64]> = chunk.iter().map(|&i| tokens.ids[i].as_slice()).collect();
            let type_rows: Vec<&[i64]> = chunk
                .iter()
                .map(|&i| tokens.type_ids[i].as_slice())
                .collect();
            let pooled = self.forward_batch(&rows, &type_rows)?;
            let pooled = if self.spec.normalize {
                pooling::l2_normalize(&pooled)?
            } else {
                pooled
            };
            let flat = pooled
                .f_to_kind(Kind::Float)?
                .f_to_device(Device::Cpu)?
                .f_contiguous()?
                .f_view([-1])?;
            let flat = Vec::<f32>::try_from(&flat)?;
            for (&i, v) in chunk.iter().zip(flat.chunks_exact(self.dim)) {
                vectors[i] = v.to_vec();
            }
            tracing::debug!(
                rows = rows.len(),
                cols = rows.first().map_or(0, |r| r.len()),
                "embedded batch"
            );
        }
        Ok(EmbedOutput {
            vectors,
            dim: self.dim,
            truncated: tokens.truncated_count(),
        })
    }

    /// Pooled (not yet normalised) vectors `[rows, dim]` for one batch.
    fn forward_batch(&self, rows: &[&[i64]], type_rows: &[&[i64]]) -> Result<Tensor> {
        let batch = pad_batch(rows, type_rows, self.pad_id);
        let shape = [batch.rows as i64, batch.cols as i64];
        let to_dev = |v: &[i64]| -> Result<Tensor> {
            Ok(Tensor::f_from_slice(v)?
                .f_view(shape)?
                .f_to_device(self.device)?)
        };
        let ids = to_dev(&batch.ids)?;
        match &self.model {
            Model::Bert(bert) => {
                let mask = to_dev(&batch.mask)?;
                let hidden = bert.forward(&ids, &to_dev(&batch.type_ids)?, &mask)?;
                match self.spec.pooling {
                    Pooling::Cls => pooling::cls(&hidden),
                    _ => pooling::mean(&hidden, &mask),
                }
            }
            Model::Clip(clip) => {
                let hidden = clip.forward(&ids)?;
                let eos = clip.config().eos_token_id;
                let positions: Vec<i64> =
                    rows.iter().map(|r| eos_position(r, eos) as i64).collect();
                clip.pool(&hidden, &positions)
            }
        }
    }

    fn check_vocab(&self, ids: &[Vec<i64>]) -> Result<()> {
        let vocab_size = match &self.model {
            Model::Bert(bert) => bert.config().vocab_size,
            Model::Clip(clip) => clip.config().vocab_size,
        };
        match ids.iter().flatten().find(|&&id| id < 0 || id >= vocab_size) {
            Some(&id) => Err(EmbedError::TokenOutOfVocab { id, vocab_size }),
            None => Ok(()),
        }
    }

    /// Length of every output vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Maximum tokens per text in effect, special tokens included.
    pub fn max_len(&self) -> usize {
        self.tokenizer.max_len()
    }

    pub fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// A stable key for caching embeddings: `"<kind>-<16 hex digits>"`, an FNV-1a hash over the encoder kind,
    /// the contents of `model.safetensors`, `config.json` and `tokenizer.json`, the pooling, normalisation and
    /// effective maximum length. Equal across runs and machines for the same files and settings.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

fn fingerprint(spec: &EncoderSpec, max_len: usize, files: &[&Path]) -> Result<String> {
    let mut canonical = format!("{FINGERPRINT_VERSION}|kind={}", spec.kind.as_str());
    for file in files {
        let (hash, size) = hash_file(file)?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        canonical.push_str(&format!("|{name}={hash:016x}:{size}"));
    }
    canonical.push_str(&format!(
        "|pooling={}|normalize={}|max_len={max_len}",
        spec.pooling.as_str(),
        spec.normalize
    ));
    Ok(format!(
        "{}-{:016x}",
        spec.kind.as_str(),
        hash_bytes(canonical.as_bytes())
    ))
}

/// `requested` if given (an error when above `limit`, the count of position embeddings), else `default`
/// capped at `limit`.
fn resolve_max_len(
    requested: Option<usize>,
    default: usize,
    limit: usize,
    config_path: &Path,
) -> Result<usize> {
    let max_len = requested.unwrap_or(default.min(limit));
    if max_len > limit {
        return Err(EmbedError::InvalidSpec(format!(
            "max_len {max_len} exceeds max_position_embeddings {limit} of {}",
            config_path.display()
        )));
    }
    Ok(max_len)
}

/// `max_seq_length` from a sentence-transformers `sentence_bert_config.json`, when the folder has one: the
/// length the model was trained and is used at (256 for all-MiniLM-L6-v2, below its 512 positions).
fn sentence_bert_max_len(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join("sentence_bert_config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let value = hf_config::read_json(&path, "sentence-transformers config")?;
    Ok(value
        .get("max_seq_length")
        .and_then(|v| v.as_u64())
        .map(|n| n as usize))
}
