//! BERT encoder (Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
//! Understanding") in tch, loading Hugging Face `BertModel` weights.
//!
//! The module tree mirrors HF `transformers/models/bert/modeling_bert.py` (`BertEmbeddings`, `BertLayer` with
//! `attention.self`, `attention.output`, `intermediate`, `output`), so the `VarStore` path of every variable is
//! the safetensors key: `embeddings.word_embeddings.weight`, `encoder.layer.3.attention.self.query.weight`, ...
//! The pooler is not built: sentence embeddings here come from [`crate::pooling`] over the last hidden states.
//! Inference only: dropout is the identity.

use std::path::Path;

use serde::Deserialize;
use tch::{nn, nn::VarStore, Device, Kind, Tensor};

use crate::checkpoint::Checkpoint;
use crate::error::{EmbedError, Result};
use crate::hf_config;
use crate::layers::{
    additive_key_mask, multi_head_attention, Activation, Embedding, LayerNorm, Linear,
};

/// The fields of a BERT `config.json` this encoder uses. Unknown keys are ignored (HF configs carry many);
/// absent keys take the `bert-base-uncased` values, as HF's `BertConfig` does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    pub model_type: Option<String>,
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub intermediate_size: i64,
    pub hidden_act: String,
    pub max_position_embeddings: i64,
    pub type_vocab_size: i64,
    pub layer_norm_eps: f64,
    /// Unused by the forward pass (padding is masked); `null` in some configs.
    pub pad_token_id: Option<i64>,
    pub position_embedding_type: String,
}

impl Default for BertConfig {
    fn default() -> Self {
        Self {
            model_type: Some("bert".to_string()),
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".to_string(),
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: Some(0),
            position_embedding_type: "absolute".to_string(),
        }
    }
}

impl BertConfig {
    /// Reads and checks a `config.json` whose `model_type` is `"bert"`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let value = hf_config::read_json(path, "config")?;
        hf_config::expect_model_type(path, &value, &["bert"], "\"bert\"")?;
        let config: Self = hf_config::parse_at(path, value)?;
        config
            .validate()
            .map_err(|message| EmbedError::InvalidConfig {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    /// The values the model cannot be built from, as a message; else the feed-forward activation.
    fn validate(&self) -> std::result::Result<Activation, String> {
        let dims = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        hf_config::check_dims(&dims, self.hidden_size, self.num_attention_heads)?;
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        Activation::from_hf(&self.hidden_act)
            .ok_or_else(|| format!("hidden_act {:?} is not supported", self.hidden_act))
    }
}

#[derive(Debug)]
struct BertEmbeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    layer_norm: LayerNorm,
}

impl BertEmbeddings {
    fn new(p: nn::Path, cfg: &BertConfig) -> Self {
        Self {
            word: Embedding::new(&p / "word_embeddings", cfg.vocab_size, cfg.hidden_size),
            position: Embedding::new(
                &p / "position_embeddings",
                cfg.max_position_embeddings,
                cfg.hidden_size,
            ),
            token_type: Embedding::new(
                &p / "token_type_embeddings",
                cfg.type_vocab_size,
                cfg.hidden_size,
            ),
            layer_norm: LayerNorm::new(&p / "LayerNorm", cfg.hidden_size, cfg.layer_norm_eps),
        }
    }

    fn forward(&self, ids: &Tensor, type_ids: &Tensor) -> Result<Tensor> {
        let (_, len) = ids.size2()?;
        let positions = Tensor::f_arange(len, (Kind::Int64, ids.device()))?;
        let xs = self
            .word
            .forward(ids)?
            .f_add(&self.position.forward(&positions)?)?
            .f_add(&self.token_type.forward(type_ids)?)?;
        Ok(self.layer_norm.forward(&xs)?)
    }
}

/// One `BertLayer`: post-norm self-attention then post-norm feed-forward.
#[derive(Debug)]
struct BertLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
    heads: i64,
    act: Activation,
}

impl BertLayer {
    fn new(p: nn::Path, cfg: &BertConfig, act: Activation) -> Self {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let attn = &p / "attention";
        let attn_self = &attn / "self";
        let attn_output = &attn / "output";
        Self {
            query: Linear::new(&attn_self / "query", h, h, true),
            key: Linear::new(&attn_self / "key", h, h, true),
            value: Linear::new(&attn_self / "value", h, h, true),
            attn_out: Linear::new(&attn_output / "dense", h, h, true),
            attn_norm: LayerNorm::new(&attn_output / "LayerNorm", h, cfg.layer_norm_eps),
            intermediate: Linear::new(&p / "intermediate" / "dense", h, i, true),
            output: Linear::new(&p / "output" / "dense", i, h, true),
            out_norm: LayerNorm::new(&p / "output" / "LayerNorm", h, cfg.layer_norm_eps),
            heads: cfg.num_attention_heads,
            act,
        }
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let ctx = multi_head_attention(
            &self.query.forward(xs)?,
            &self.key.forward(xs)?,
            &self.value.forward(xs)?,
            self.heads,
            Some(mask),
        )?;
        let xs = self
            .attn_norm
            .forward(&self.attn_out.forward(&ctx)?.f_add(xs)?)?;
        let inner = self.act.forward(&self.intermediate.forward(&xs)?)?;
        Ok(self
            .out_norm
            .forward(&self.output.forward(&inner)?.f_add(&xs)?)?)
    }
}

/// A BERT encoder returning the last hidden states `[batch, seq, hidden]`.
#[derive(Debug)]
pub struct Bert {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    config: BertConfig,
    // Owns the variables the layers' tensors share storage with.
    _vs: VarStore,
}

impl Bert {
    /// Loads `config.json` and `model.safetensors` from a Hugging Face model folder onto `device`.
    pub fn load(model_dir: &Path, device: Device) -> Result<Self> {
        let config = BertConfig::from_file(&model_dir.join("config.json"))?;
        Self::from_safetensors(config, &model_dir.join("model.safetensors"), device)
    }

    /// Builds the model `config` describes and fills it from `weights`, a `BertModel` safetensors file whose
    /// keys are bare (`embeddings.…`) or under `bert.` (saved from a task head). Every tensor's shape is
    /// checked against `config`.
    pub fn from_safetensors(config: BertConfig, weights: &Path, device: Device) -> Result<Self> {
        let act = config
            .validate()
            .map_err(|message| EmbedError::InvalidConfig {
                path: weights.to_path_buf(),
                message: format!("config for these weights: {message}"),
            })?;
        let ckpt = Checkpoint::read(weights)?;
        let prefix = ckpt.find_prefix(&["", "bert."], "embeddings.word_embeddings.weight")?;
        let mut vs = VarStore::new(device);
        let p = vs.root();
        let embeddings = BertEmbeddings::new(&p / "embeddings", &config);
        let layer_root = &p / "encoder" / "layer";
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::new(&layer_root / i, &config, act))
            .collect();
        ckpt.copy_into(&vs, prefix)?;
        vs.freeze();
        Ok(Self {
            embeddings,
            layers,
            config,
            _vs: vs,
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// `ids`, `type_ids`, `mask`: `[batch, seq]` int64 on the model's device; `mask` is 1 for real tokens and
    /// 0 for padding. Returns the last hidden states `[batch, seq, hidden]`.
    pub fn forward(&self, ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let additive = additive_key_mask(mask)?;
        let mut xs = self.embeddings.forward(ids, type_ids)?;
        for layer in &self.layers {
            xs = layer.forward(&xs, &additive)?;
        }
        Ok(xs)
    }
}
