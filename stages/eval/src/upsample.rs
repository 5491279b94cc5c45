//! Resizing kernels reproducing the resizers the public evaluators call on their heat maps.
//!
//! * [`Upsample::CvLinear`]: `cv2.resize(..., INTER_LINEAR)` (LVS, SSL-TIE, DSOL).
//! * [`Upsample::CvCubic`]: `cv2.resize(..., INTER_CUBIC)` (NoPrior, SIRA).
//! * [`Upsample::TorchBilinear`]: `F.interpolate(mode="bilinear", align_corners=..)` (EZ-VSL, FNAC).
//! * [`Upsample::TorchBicubic`]: `F.interpolate(mode="bicubic", align_corners=..)` (SLAVC/AVGN, T-VSL).
//!
//! All four are separable: an output pixel is `Σ_i wy_i · (Σ_j wx_j · src[iy_i][ix_j])`
//! (horizontal pass inside, as both libraries do). Tap positions and weights follow each library:
//!
//! * OpenCV: `fx = (float)((dx + 0.5)·in/out − 0.5)` rounded to f32, `sx = ⌊fx⌋`, `t = fx − sx`.
//!   Linear: weights `(1 − t, t)` in f32, and `t = 0` with `sx` clamped when `sx < 0` or
//!   `sx ≥ in − 1`. The opencv-python wheels route `INTER_LINEAR` on inputs of at least 2x2
//!   through Intel IPP, which keeps `fx` and the weights in double (checked against cv2 5.0 on
//!   float64 input: 2e-16); that path is used for such inputs. A single-row input goes through a
//!   third variant that is reproduced only to about 2e-8. Cubic (`a = −0.75`, f32 weights `c0..c2`, `c3 = 1 − c0 − c1 − c2`): taps
//!   `sx − 1 .. sx + 2` with indices clamped to the border (replicate), `t` never clamped.
//! * torch: `src = scale·dst` (`align_corners`, `scale = (in−1)/(out−1)`) or
//!   `src = (dst + 0.5)·in/out − 0.5` (clamped at 0 for bilinear only), `i = min(⌊src⌋, in−1)`,
//!   `t = clamp(src − i, 0, 1)`. Bilinear taps `i, i + (i < in−1)`; bicubic uses
//!   `W1(x) = ((a+2)x − (a+3))x² + 1`, `W2(x) = ((a·x − 5a)x + 8a)x − 4a`, `a = −0.75`, weights
//!   `W2(t+1), W1(t), W1(1−t), W2(2−t)` at clamped indices `i−1 .. i+2`.
//!
//! Arithmetic is f64 except where OpenCV itself rounds to f32 (source position, weights), so a
//! float64 input reproduces `cv2.resize`/`F.interpolate` on float64 arrays to rounding error.

use crate::error::EvalError;
use crate::map::Map;
use serde::{Deserialize, Serialize};

/// The resizing kernel an evaluator applies to the model's heat map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Upsample {
    /// `cv2.resize(INTER_LINEAR)` (half-pixel centres, border clamp).
    CvLinear,
    /// `cv2.resize(INTER_CUBIC)` (a = −0.75, replicated border).
    CvCubic,
    /// `torch.nn.functional.interpolate(mode="bilinear")`.
    TorchBilinear { align_corners: bool },
    /// `torch.nn.functional.interpolate(mode="bicubic")` (a = −0.75).
    TorchBicubic { align_corners: bool },
}

/// Taps of one output coordinate along one axis: source indices and their weights.
#[derive(Debug, Clone, PartialEq)]
struct Taps {
    index: Vec<usize>,
    weight: Vec<f64>,
}

const A: f64 = -0.75;

fn clamp_index(i: i64, n: usize) -> usize {
    i.clamp(0, n as i64 - 1) as usize
}

/// OpenCV's `interpolateCubic`, evaluated in f32 as OpenCV does.
fn cv_cubic_weights(x: f32) -> [f32; 4] {
    let a = -0.75f32;
    let c0 = ((a * (x + 1.0) - 5.0 * a) * (x + 1.0) + 8.0 * a) * (x + 1.0) - 4.0 * a;
    let c1 = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    let c2 = ((a + 2.0) * (1.0 - x) - (a + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

fn torch_cubic1(x: f64) -> f64 {
    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
}

fn torch_cubic2(x: f64) -> f64 {
    ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
}

/// `exact_position`: the IPP linear path keeps the source position and weights in f64.
fn cv_axis(n_in: usize, n_out: usize, cubic: bool, exact_position: bool) -> Vec<Taps> {
    let inv_scale = n_out as f64 / n_in as f64;
    let scale = 1.0 / inv_scale;
    (0..n_out)
        .map(|d| {
            let pos = (d as f64 + 0.5) * scale - 0.5;
            if exact_position {
                let sx = pos.floor() as i64;
                let (sx, t) = if sx < 0 {
                    (0, 0.0)
                } else if sx >= n_in as i64 - 1 {
                    (n_in as i64 - 1, 0.0)
                } else {
                    (sx, pos - sx as f64)
                };
                return Taps {
                    index: vec![clamp_index(sx, n_in), clamp_index(sx + 1, n_in)],
                    weight: vec![1.0 - t, t],
                };
            }
            let f = pos as f32;
            let mut sx = f.floor() as i64;
            let mut t = f - sx as f32;
            if cubic {
                let w = cv_cubic_weights(t);
                Taps {
                    index: (0..4).map(|k| clamp_index(sx - 1 + k, n_in)).collect(),
                    weight: w.iter().map(|&v| f64::from(v)).collect(),
                }
            } else {
                if sx < 0 {
                    t = 0.0;
                    sx = 0;
                }
                if sx >= n_in as i64 - 1 {
                    t = 0.0;
                    sx = n_in as i64 - 1;
                }
                Taps {
                    index: vec![clamp_index(sx, n_in), clamp_index(sx + 1, n_in)],
                    weight: vec![f64::from(1.0f32 - t), f64::from(t)],
                }
            }
        })
        .collect()
}

fn torch_axis(n_in: usize, n_out: usize, align_corners: bool, cubic: bool) -> Vec<Taps> {
    let scale = if align_corners {
        if n_out > 1 {
            (n_in as f64 - 1.0) / (n_out as f64 - 1.0)
        } else {
            0.0
        }
    } else {
        n_in as f64 / n_out as f64
    };
    (0..n_out)
        .map(|d| {
            if n_in == n_out {
                // torch copies the input unchanged when the size does not change.
                return Taps {
                    index: vec![d],
                    weight: vec![1.0],
                };
            }
            let mut src = if align_corners {
                scale * d as f64
            } else {
                scale * (d as f64 + 0.5) - 0.5
            };
            if !cubic && !align_corners && src < 0.0 {
                src = 0.0;
            }
            let i = (src.floor() as i64).min(n_in as i64 - 1);
            let t = (src - i as f64).clamp(0.0, 1.0);
            if cubic {
                Taps {
                    index: (0..4).map(|k| clamp_index(i - 1 + k, n_in)).collect(),
                    weight: vec![
                        torch_cubic2(t + 1.0),
                        torch_cubic1(t),
                        torch_cubic1(1.0 - t),
                        torch_cubic2(2.0 - t),
                    ],
                }
            } else {
                let i1 = if i < n_in as i64 - 1 { i + 1 } else { i };
                Taps {
                    index: vec![i as usize, i1 as usize],
                    weight: vec![1.0 - t, t],
                }
            }
        })
        .collect()
}

fn axis_taps(kind: Upsample, n_in: usize, n_out: usize, ipp: bool) -> Vec<Taps> {
    match kind {
        Upsample::CvLinear => cv_axis(n_in, n_out, false, ipp),
        Upsample::CvCubic => cv_axis(n_in, n_out, true, false),
        Upsample::TorchBilinear { align_corners } => torch_axis(n_in, n_out, align_corners, false),
        Upsample::TorchBicubic { align_corners } => torch_axis(n_in, n_out, align_corners, true),
    }
}

/// Resizes `src` to `out_h x out_w` with the evaluator's kernel.
///
/// OpenCV switches `INTER_LINEAR` to area averaging for an exact 2x downscale; that path is not
/// reproduced and is refused instead of answered approximately.
pub fn resize(src: &Map, out_h: usize, out_w: usize, kind: Upsample) -> Result<Map, EvalError> {
    if src.is_empty() || out_h == 0 || out_w == 0 {
        return Err(EvalError::UnsupportedResize(format!(
            "{}x{} -> {}x{}",
            src.height, src.width, out_h, out_w
        )));
    }
    if kind == Upsample::CvLinear && src.height == 2 * out_h && src.width == 2 * out_w {
        return Err(EvalError::UnsupportedResize(
            "cv2 INTER_LINEAR exact 2x downscale (OpenCV uses INTER_AREA there)".into(),
        ));
    }
    if src.height == out_h && src.width == out_w {
        // Both libraries return a copy for an identity resize.
        return Ok(src.clone());
    }
    // opencv-python wheels (x86, IPP) run INTER_LINEAR through IPP for inputs of at least
    // 2x2 pixels: positions and weights in double. Smaller inputs take OpenCV's own f32 path.
    let ipp = src.height >= 2 && src.width >= 2;
    let ty = axis_taps(kind, src.height, out_h, ipp);
    let tx = axis_taps(kind, src.width, out_w, ipp);
    // Horizontal pass first (per source row), then the vertical combination.
    let mut rows = vec![0.0; src.height * out_w];
    for y in 0..src.height {
        let line = &src.data[y * src.width..(y + 1) * src.width];
        for (x, taps) in tx.iter().enumerate() {
            let mut acc = 0.0;
            for (i, w) in taps.index.iter().zip(&taps.weight) {
                acc += line[*i] * w;
            }
            rows[y * out_w + x] = acc;
        }
    }
    let mut out = Map::zeros(out_h, out_w);
    for (y, taps) in ty.iter().enumerate() {
        for x in 0..out_w {
            let mut acc = 0.0;
            for (i, w) in taps.index.iter().zip(&taps.weight) {
                acc += rows[i * out_w + x] * w;
            }
            out.data[y * out_w + x] = acc;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "upsample_tests.rs"]
mod tests;
