//! CLIP text transformer (Radford et al., 2021, "Learning Transferable Visual Models From Natural Language
//! Supervision") in tch, loading Hugging Face `CLIPTextModel` / `CLIPTextModelWithProjection` / `CLIPModel`
//! weights.
//!
//! The module tree mirrors HF `transformers/models/clip/modeling_clip.py`: `text_model.embeddings`
//! (`token_embedding`, `position_embedding`), `text_model.encoder.layers.N` (pre-norm `layer_norm1`,
//! `self_attn.{q,k,v,out}_proj`, `layer_norm2`, `mlp.fc1`, `mlp.fc2`), `text_model.final_layer_norm`, and the
//! bias-free `text_projection` at the root. Attention is causal. The sentence vector is the final-norm hidden
//! state at the end-of-text token ([`eos_position`]), projected when the checkpoint has `text_projection`.

use std::path::Path;

use serde::Deserialize;
use tch::{nn, nn::VarStore, Device, Kind, Tensor};

use crate::checkpoint::Checkpoint;
use crate::error::{EmbedError, Result};
use crate::hf_config;
use crate::layers::{multi_head_attention, Activation, Embedding, LayerNorm, Linear, MASKED};

/// The text-tower fields of a CLIP `config.json`. For `model_type: "clip"` this is the nested `text_config`
/// (with `projection_dim` taken from the top level); for `"clip_text_model"` it is the file itself. Unknown
/// keys are ignored; absent keys take HF's `CLIPTextConfig` defaults (ViT-B/32 text tower).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    pub model_type: Option<String>,
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub projection_dim: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub max_position_embeddings: i64,
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    /// Unused by the forward pass (padding follows end-of-text); `null` in some configs.
    pub pad_token_id: Option<i64>,
    pub bos_token_id: Option<i64>,
    pub eos_token_id: i64,
}

impl Default for ClipTextConfig {
    fn default() -> Self {
        Self {
            model_type: Some("clip_text_model".to_string()),
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".to_string(),
            layer_norm_eps: 1e-5,
            pad_token_id: Some(1),
            bos_token_id: Some(49406),
            eos_token_id: 49407,
        }
    }
}

impl ClipTextConfig {
    /// Reads and checks a `config.json` of `model_type` `"clip_text_model"` or `"clip"`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let value = hf_config::read_json(path, "config")?;
        let model_type = hf_config::expect_model_type(
            path,
            &value,
            &["clip_text_model", "clip"],
            "\"clip_text_model\" or \"clip\"",
        )?;
        let text = if model_type == "clip" {
            // A full CLIPModel config: the text tower's settings are nested, the projection width is not.
            let mut text = value
                .get("text_config")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({}));
            if let (Some(obj), Some(dim)) = (text.as_object_mut(), value.get("projection_dim")) {
                obj.insert("projection_dim".to_string(), dim.clone());
            }
            text
        } else {
            value
        };
        let config: Self = hf_config::parse_at(path, text)?;
        config
            .validate()
            .map_err(|message| EmbedError::InvalidConfig {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    /// The values the model cannot be built from, as a message; else the MLP activation.
    fn validate(&self) -> std::result::Result<Activation, String> {
        let dims = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("projection_dim", self.projection_dim),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        hf_config::check_dims(&dims, self.hidden_size, self.num_attention_heads)?;
        Activation::from_hf(&self.hidden_act)
            .ok_or_else(|| format!("hidden_act {:?} is not supported", self.hidden_act))
    }
}

/// Index of the token whose hidden state represents the text, following HF `CLIPTextTransformer`:
/// configs with the legacy `eos_token_id == 2` pool at the largest id (the real end-of-text token has the
/// largest id in the original vocabulary); otherwise at the first position equal to `eos_token_id`, or 0 when
/// there is none (HF's argmax over an all-false row).
pub fn eos_position(ids: &[i64], eos_token_id: i64) -> usize {
    if eos_token_id == 2 {
        // First maximum, as torch.argmax returns.
        ids.iter()
            .enumerate()
            .fold(0, |best, (i, &id)| if id > ids[best] { i } else { best })
    } else {
        ids.iter().position(|&id| id == eos_token_id).unwrap_or(0)
    }
}

/// One pre-norm `CLIPEncoderLayer`.
#[derive(Debug)]
struct ClipLayer {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: i64,
    act: Activation,
}

impl ClipLayer {
    fn new(p: nn::Path, cfg: &ClipTextConfig, act: Activation) -> Self {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let attn = &p / "self_attn";
        let mlp = &p / "mlp";
        Self {
            norm1: LayerNorm::new(&p / "layer_norm1", h, cfg.layer_norm_eps),
            q: Linear::new(&attn / "q_proj", h, h, true),
            k: Linear::new(&attn / "k_proj", h, h, true),
            v: Linear::new(&attn / "v_proj", h, h, true),
            out: Linear::new(&attn / "out_proj", h, h, true),
            norm2: LayerNorm::new(&p / "layer_norm2", h, cfg.layer_norm_eps),
            fc1: Linear::new(&mlp / "fc1", h, i, true),
            fc2: Linear::new(&mlp / "fc2", i, h, true),
            heads: cfg.num_attention_heads,
            act,
        }
    }

    fn forward(&self, xs: &Tensor, causal: &Tensor) -> Result<Tensor> {
        let normed = self.norm1.forward(xs)?;
        let ctx = multi_head_attention(
            &self.q.forward(&normed)?,
            &self.k.forward(&normed)?,
            &self.v.forward(&normed)?,
            self.heads,
            Some(causal),
        )?;
        let xs = xs.f_add(&self.out.forward(&ctx)?)?;
        let inner = self
            .act
            .forward(&self.fc1.forward(&self.norm2.forward(&xs)?)?)?;
        Ok(xs.f_add(&self.fc2.forward(&inner)?)?)
    }
}

/// The CLIP text tower, with the optional projection to the joint embedding space.
#[derive(Debug)]
pub struct ClipText {
    token_embedding: Embedding,
    position_embedding: Embedding,
    layers: Vec<ClipLayer>,
    final_layer_norm: LayerNorm,
    projection: Option<Linear>,
    config: ClipTextConfig,
    // Owns the variables the layers' tensors share storage with.
    _vs: VarStore,
}

impl ClipText {
    /// Loads `config.json` and `model.safetensors` from a Hugging Face model folder onto `device`.
    pub fn load(model_dir: &Path, device: Device) -> Result<Self> {
        let config = ClipTextConfig::from_file(&model_dir.join("config.json"))?;
        Self::from_safetensors(config, &model_dir.join("model.safetensors"), device)
    }

    /// Builds the text tower `config` describes and fills it from `weights` (keys `text_model.…`, as saved by
    /// `CLIPTextModel`, `CLIPTextModelWithProjection` or `CLIPModel`). The projection is used when the file has
    /// `text_projection.weight`. Every tensor's shape is checked against `config`.
    pub fn from_safetensors(
        config: ClipTextConfig,
        weights: &Path,
        device: Device,
    ) -> Result<Self> {
        let act = config
            .validate()
            .map_err(|message| EmbedError::InvalidConfig {
                path: weights.to_path_buf(),
                message: format!("config for these weights: {message}"),
            })?;
        let ckpt = Checkpoint::read(weights)?;
        ckpt.find_prefix(&[""], "text_model.embeddings.token_embedding.weight")?;
        let with_projection = ckpt.contains("text_projection.weight");
        let mut vs = VarStore::new(device);
        let p = vs.root();
        let tm = &p / "text_model";
        let emb = &tm / "embeddings";
        let layer_root = &tm / "encoder" / "layers";
        let h = config.hidden_size;
        let token_embedding = Embedding::new(&emb / "token_embedding", config.vocab_size, h);
        let position_embedding = Embedding::new(
            &emb / "position_embedding",
            config.max_position_embeddings,
            h,
        );
        let layers = (0..config.num_hidden_layers)
            .map(|i| ClipLayer::new(&layer_root / i, &config, act))
            .collect();
        let final_layer_norm = LayerNorm::new(&tm / "final_layer_norm", h, config.layer_norm_eps);
        let projection = with_projection
            .then(|| Linear::new(&p / "text_projection", h, config.projection_dim, false));
        ckpt.copy_into(&vs, "")?;
        vs.freeze();
        Ok(Self {
            token_embedding,
            position_embedding,
            layers,
            final_layer_norm,
            projection,
            config,
            _vs: vs,
        })
    }

    pub fn config(&self) -> &ClipTextConfig {
        &self.config
    }

    /// Width of the pooled output: `projection_dim` with a projection, `hidden_size` without.
    pub fn output_dim(&self) -> i64 {
        if self.projection.is_some() {
            self.config.projection_dim
        } else {
            self.config.hidden_size
        }
    }

    /// `ids`: `[batch, seq]` int64; returns the final-norm hidden states `[batch, seq, hidden]`. Padding after
    /// the end-of-text token needs no key mask: the causal mask already hides later positions from it.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (_, len) = ids.size2()?;
        let device = ids.device();
        let positions = Tensor::f_arange(len, (Kind::Int64, device))?;
        let mut xs = self
            .token_embedding
            .forward(ids)?
            .f_add(&self.position_embedding.forward(&positions)?)?;
        // Additive causal mask: MASKED strictly above the diagonal (a query never sees later keys).
        let causal = Tensor::f_full([len, len], MASKED, (Kind::Float, device))?
            .f_triu(1)?
            .f_view([1, 1, len, len])?;
        for layer in &self.layers {
            xs = layer.forward(&xs, &causal)?;
        }
        Ok(self.final_layer_norm.forward(&xs)?)
    }

    /// Pools `hidden` `[batch, seq, hidden]` at `positions` (one per row, see [`eos_position`]) and applies the
    /// projection if present: `[batch, output_dim]`.
    pub fn pool(&self, hidden: &Tensor, positions: &[i64]) -> Result<Tensor> {
        let (b, _, _) = hidden.size3()?;
        let rows = Tensor::f_arange(b, (Kind::Int64, hidden.device()))?;
        let cols = Tensor::f_from_slice(positions)?.f_to_device(hidden.device())?;
        let pooled = hidden.f_index(&[Some(rows), Some(cols)])?;
        match &self.projection {
            Some(proj) => Ok(proj.forward(&pooled)?),
            None => Ok(pooled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::eos_position;

    #[test]
    fn eos_is_first_match_for_modern_configs() {
        // <sot>=0 a b <eot>=1 then padding with <eot>: the first <eot> is at index 3.
        assert_eq!(eos_position(&[0, 17, 23, 1, 1, 1], 1), 3);
        assert_eq!(eos_position(&[49406, 320, 49407], 49407), 2);
    }

    #[test]
    fn eos_without_match_falls_back_to_zero_like_hf() {
        assert_eq!(eos_position(&[5, 6, 7], 9), 0);
    }

    #[test]
    fn legacy_eos_id_two_uses_first_argmax() {
        // Legacy OpenAI configs: eos_token_id = 2 while the real <|endoftext|> is 49407, the largest id.
        assert_eq!(eos_position(&[49406, 320, 1125, 49407, 49407], 2), 3);
        assert_eq!(eos_position(&[49406, 49407], 2), 1);
    }
}
