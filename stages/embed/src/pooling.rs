//! From per-token hidden states to one vector per text.

use tch::{Kind, Tensor};

use crate::error::Result;

/// Attention-masked mean over tokens, as sentence-transformers' `Pooling(pooling_mode_mean_tokens)`:
///
/// `v_b = Σ_t m_bt · h_bt / max(Σ_t m_bt, 1e-9)`
///
/// `hidden`: `[batch, seq, dim]`, `mask`: `[batch, seq]` (1 real, 0 padding). Returns `[batch, dim]`.
pub fn mean(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.f_to_kind(Kind::Float)?.f_unsqueeze(-1)?;
    let summed = hidden.f_mul(&m)?.f_sum_dim_intlist(1, false, Kind::Float)?;
    let counts = m
        .f_sum_dim_intlist(1, false, Kind::Float)?
        .f_clamp_min(1e-9)?;
    Ok(summed.f_div(&counts)?)
}

/// The first token's hidden state (`[CLS]` for BERT): `v_b = h_b0`. Returns `[batch, dim]`.
pub fn cls(hidden: &Tensor) -> Result<Tensor> {
    Ok(hidden.f_select(1, 0)?)
}

/// Row-wise L2 normalisation, as `torch.nn.functional.normalize(x, p=2, dim=1)`:
///
/// `y_b = x_b / max(‖x_b‖₂, 1e-12)`
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor> {
    let norms = xs.f_norm_scalaropt_dim(2, [1], true)?.f_clamp_min(1e-12)?;
    Ok(xs.f_div(&norms)?)
}
