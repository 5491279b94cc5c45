//! L2 normalisation along one dimension, `x / max(‖x‖₂, 1e-12)`, as `torch.nn.functional.normalize`.

use tch::{Kind, Tensor};

/// Divides `xs` by its L2 norm along `dim` (clamped at 1e-12 so zero vectors stay zero).
pub fn l2_normalize(xs: &Tensor, dim: i64) -> Tensor {
    let norm = xs.norm_scalaropt_dim(2.0, [dim], true);
    xs / norm.clamp_min(1e-12)
}

/// Cosine similarity along the last dimension, `a·b / max(‖a‖‖b‖, 1e-8)` (PyTorch's `cosine_similarity`
/// convention, so a zero vector has cosine 0 with everything).
pub fn cosine(a: &Tensor, b: &Tensor) -> Tensor {
    let dot = (a * b).sum_dim_intlist(-1i64, false, None::<Kind>);
    let na = a.norm_scalaropt_dim(2.0, [-1], false);
    let nb = b.norm_scalaropt_dim(2.0, [-1], false);
    dot / (na * nb).clamp_min(1e-8)
}
