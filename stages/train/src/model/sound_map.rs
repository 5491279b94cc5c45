//! Sound-associated maps (docs/method.md §2.1): per-pixel cosine between visual features and an audio (or text
//! reference) vector,
//!
//! ```text
//! S_a(x) = ⟨F_v(x), l_a⟩ / (‖F_v(x)‖ ‖l_a‖)
//! ```
//!
//! The functions here take features that are already L2-normalised (as [`crate::model::Outputs`] holds them),
//! so each map is a plain contraction over channels.

use crate::error::Result;
use crate::shape::expect_dims;
use tch::Tensor;

/// All pairs: `visual [B, C, h, w]`, `audio [B, C]` → `[B, B, h, w]` with `out[i, j] = cos(F_v,i, l_a,j)`.
pub fn sound_map_all(visual: &Tensor, audio: &Tensor) -> Result<Tensor> {
    let v = expect_dims("sound_map_all", "visual", visual, &[None, None, None, None])?;
    expect_dims("sound_map_all", "audio", audio, &[Some(v[0]), Some(v[1])])?;
    Ok(Tensor::einsum(
        "bchw,jc->bjhw",
        &[visual, audio],
        None::<i64>,
    ))
}

/// The matched pairs (the diagonal of [`sound_map_all`]): `[B, h, w]`.
pub fn sound_map(visual: &Tensor, audio: &Tensor) -> Result<Tensor> {
    let v = expect_dims("sound_map", "visual", visual, &[None, None, None, None])?;
    expect_dims("sound_map", "audio", audio, &[Some(v[0]), Some(v[1])])?;
    Ok(Tensor::einsum(
        "bchw,bc->bhw",
        &[visual, audio],
        None::<i64>,
    ))
}

/// Reference-associated maps S_r (docs/method.md §3.4): `visual [B, C, h, w]`, `refs [B, R, C]` → `[B, R, h, w]`.
pub fn reference_maps(visual: &Tensor, refs: &Tensor) -> Result<Tensor> {
    let v = expect_dims(
        "reference_maps",
        "visual",
        visual,
        &[None, None, None, None],
    )?;
    expect_dims(
        "reference_maps",
        "refs",
        refs,
        &[Some(v[0]), None, Some(v[1])],
    )?;
    Ok(Tensor::einsum(
        "bchw,brc->brhw",
        &[visual, refs],
        None::<i64>,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn maps_are_per_pixel_dot_products() {
        // B = 2, C = 2, 1×2 maps. Sample 0 pixels: (1,0), (0,1); sample 1 pixels: (0.6,0.8), (−1,0).
        let visual =
            Tensor::from_slice(&[1.0f64, 0.0, 0.0, 1.0, 0.6, -1.0, 0.8, 0.0]).view([2, 2, 1, 2]);
        let audio = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 1.0]).view([2, 2]);
        let all = sound_map_all(&visual, &audio).unwrap();
        let got = Vec::<f64>::try_from(all.flatten(0, -1)).unwrap();
        assert_eq!(got, vec![1.0, 0.0, 0.0, 1.0, 0.6, -1.0, 0.8, 0.0]);
        let diag =
            Vec::<f64>::try_from(sound_map(&visual, &audio).unwrap().flatten(0, -1)).unwrap();
        assert_eq!(diag, vec![1.0, 0.0, 0.8, 0.0]);
        let refs = audio.view([2, 1, 2]);
        let r = reference_maps(&visual, &refs).unwrap();
        assert_eq!(r.size(), [2, 1, 1, 2]);
        assert_eq!(Vec::<f64>::try_from(r.flatten(0, -1)).unwrap(), diag);
    }

    #[test]
    fn mismatched_channels_name_the_audio_input() {
        let visual = Tensor::zeros([2, 4, 3, 3], (Kind::Float, Device::Cpu));
        let audio = Tensor::zeros([2, 5], (Kind::Float, Device::Cpu));
        let err = sound_map_all(&visual, &audio).unwrap_err().to_string();
        assert!(err.contains("`audio`") && err.contains("[2, 4]"), "{err}");
    }
}
