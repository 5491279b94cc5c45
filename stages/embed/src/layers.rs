//! The transformer building blocks shared by BERT and the CLIP text tower.
//!
//! Variables are created at the Hugging Face key names (`weight`, `bias`) under the given `nn::Path`, zero
//! initialised: every one of them is overwritten by [`crate::checkpoint::Checkpoint::copy_into`]. Forward passes
//! use the fallible `f_*` ops so that a bad batch surfaces as an error instead of a panic.

use tch::{nn, Kind, TchError, Tensor};

/// `y = x Wᵀ + b`, with `W` of shape `[out_dim, in_dim]` as in `torch.nn.Linear`.
#[derive(Debug)]
pub(crate) struct Linear {
    ws: Tensor,
    bs: Option<Tensor>,
}

impl Linear {
    pub(crate) fn new(p: nn::Path, in_dim: i64, out_dim: i64, bias: bool) -> Self {
        let ws = p.var("weight", &[out_dim, in_dim], nn::Init::Const(0.));
        let bs = bias.then(|| p.var("bias", &[out_dim], nn::Init::Const(0.)));
        Self { ws, bs }
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        xs.f_linear(&self.ws, self.bs.as_ref())
    }
}

/// `y = (x − mean) / sqrt(var + eps) · γ + β` over the last dimension, as in `torch.nn.LayerNorm`.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    ws: Tensor,
    bs: Tensor,
    dim: i64,
    eps: f64,
}

impl LayerNorm {
    pub(crate) fn new(p: nn::Path, dim: i64, eps: f64) -> Self {
        let ws = p.var("weight", &[dim], nn::Init::Const(1.));
        let bs = p.var("bias", &[dim], nn::Init::Const(0.));
        Self { ws, bs, dim, eps }
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        Tensor::f_layer_norm(
            xs,
            [self.dim],
            Some(&self.ws),
            Some(&self.bs),
            self.eps,
            true,
        )
    }
}

/// A lookup table `[num, dim]`, as in `torch.nn.Embedding`.
#[derive(Debug)]
pub(crate) struct Embedding {
    ws: Tensor,
}

impl Embedding {
    pub(crate) fn new(p: nn::Path, num: i64, dim: i64) -> Self {
        Self {
            ws: p.var("weight", &[num, dim], nn::Init::Const(0.)),
        }
    }

    pub(crate) fn forward(&self, ids: &Tensor) -> Result<Tensor, TchError> {
        Tensor::f_embedding(&self.ws, ids, -1, false, false)
    }
}

/// The feed-forward non-linearities named by `hidden_act` in Hugging Face configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `gelu(x) = x · Φ(x)` with the exact erf form (HF `"gelu"`).
    Gelu,
    /// The tanh approximation of gelu (HF `"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
    /// `x · σ(1.702 x)` (HF `"quick_gelu"`, the original CLIP activation).
    QuickGelu,
    Relu,
    /// `x · σ(x)` (HF `"silu"`, `"swish"`).
    Silu,
}

impl Activation {
    pub(crate) fn from_hf(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Some(Self::GeluTanh),
            "quick_gelu" => Some(Self::QuickGelu),
            "relu" => Some(Self::Relu),
            "silu" | "swish" => Some(Self::Silu),
            _ => None,
        }
    }

    pub(crate) fn forward(self, xs: &Tensor) -> Result<Tensor, TchError> {
        match self {
            Self::Gelu => xs.f_gelu("none"),
            Self::GeluTanh => xs.f_gelu("tanh"),
            Self::QuickGelu => xs.f_mul(&xs.f_mul_scalar(1.702)?.f_sigmoid()?),
            Self::Relu => xs.f_relu(),
            Self::Silu => xs.f_silu(),
        }
    }
}

/// Multi-head attention core: `softmax(Q Kᵀ / sqrt(d_head) + M) V` per head.
///
/// `q`, `k`, `v` are `[batch, seq, heads · d_head]`; `mask` is additive and broadcasts to
/// `[batch, heads, seq, seq]` (0 where attending is allowed, a large negative number where not).
/// Returns `[batch, seq, heads · d_head]`.
pub(crate) fn multi_head_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: i64,
    mask: Option<&Tensor>,
) -> Result<Tensor, TchError> {
    let (b, l, e) = q.size3()?;
    let d = e / heads;
    let split = |t: &Tensor| t.f_view([b, l, heads, d])?.f_transpose(1, 2);
    let (q, k, v) = (split(q)?, split(k)?, split(v)?);
    let scale = 1.0 / (d as f64).sqrt();
    let ctx = Tensor::f_scaled_dot_product_attention(&q, &k, &v, mask, 0.0, false, scale, false)?;
    ctx.f_transpose(1, 2)?.f_contiguous()?.f_view([b, l, e])
}

/// The additive mask value HF uses for "do not attend": the most negative finite f32, so that a masked
/// score can never win a softmax yet `0 · mask` stays finite.
pub(crate) const MASKED: f64 = f32::MIN as f64;

/// Converts a `[batch, seq]` 0/1 key mask into an additive `[batch, 1, 1, seq]` float mask.
pub(crate) fn additive_key_mask(mask: &Tensor) -> Result<Tensor, TchError> {
    let (b, l) = mask.size2()?;
    let keep = mask.f_to_kind(Kind::Float)?.f_view([b, 1, 1, l])?;
    // (1 − m) · MASKED: 0 where m = 1, MASKED where m = 0.
    keep.f_neg()?.f_add_scalar(1.0)?.f_mul_scalar(MASKED)
}
