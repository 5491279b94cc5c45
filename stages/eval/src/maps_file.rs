//! Reads predicted maps from a safetensors file: one tensor per sample id, f32 or f64,
//! shape `[H, W]` (one map) or `[K, H, W]` (K predicted object maps, K may be 0).

use crate::error::EvalError;
use crate::map::Map;
use anyhow::Context;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::Path;

fn bad(id: &str, reason: String) -> EvalError {
    EvalError::BadMap {
        id: id.to_string(),
        reason,
    }
}

fn values(id: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f64>, EvalError> {
    let values: Vec<f64> = match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        other => return Err(bad(id, format!("dtype {other:?}, expected F32 or F64"))),
    };
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(EvalError::NonFinite {
            id: id.to_string(),
            index,
        });
    }
    Ok(values)
}

/// Splits one tensor into its maps, checking rank, shape and finiteness.
pub fn tensor_maps(
    id: &str,
    dtype: Dtype,
    shape: &[usize],
    bytes: &[u8],
) -> Result<Vec<Map>, EvalError> {
    let (k, h, w) = match *shape {
        [h, w] => (1, h, w),
        [k, h, w] => (k, h, w),
        _ => {
            return Err(bad(
                id,
                format!(
                    "rank {} (shape {shape:?}), expected [H, W] or [K, H, W]",
                    shape.len()
                ),
            ))
        }
    };
    if h == 0 || w == 0 {
        return Err(bad(id, format!("empty spatial shape {shape:?}")));
    }
    let data = values(id, dtype, bytes)?;
    if data.len() != k * h * w {
        return Err(bad(
            id,
            format!("{} values for shape {shape:?}", data.len()),
        ));
    }
    Ok(data
        .chunks_exact(h * w)
        .map(|c| Map {
            height: h,
            width: w,
            data: c.to_vec(),
        })
        .collect())
}

/// All maps of a safetensors file, keyed by sample id.
pub fn read_maps(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<Map>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{} is not a safetensors file", path.display()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let maps = tensor_maps(&name, view.dtype(), view.shape(), view.data())
            .with_context(|| format!("in {}", path.display()))?;
        out.insert(name, maps);
    }
    Ok(out)
}
