//! `oassl localize`: a trained model on clips of one's own (a decoded frame plus mono audio each), without
//! ground truth.
//!
//! Per clip it writes, each atomically, into the output folder:
//! - `<name>.png`: the frame, then `S_a` (the single-source map) and each IOI object map as a heatmap over it;
//! - `<name>.safetensors`: `sound_map` `[h, w]` and, when IOI found sources, `objects` `[G, h, w]`;
//!
//! and `localize.json` ([`LocalizeReport`]) for the whole run, with the inference speed in images/s.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use image::RgbImage;
use rayon::prelude::*;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::gallery::{self, GalleryRow, RowKind};
use crate::run::{to_map, write_maps};
use crate::trained_model::TrainedModel;
use oassl_train::data::batch::{eval_tensors, media_eval_item, EvalItem};

/// One clip to localise.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Output file stem (made file-safe and unique by [`localize`]).
    pub name: String,
    /// The frame as decoded.
    pub frame: RgbImage,
    /// Mono audio around the frame.
    pub audio: Vec<f32>,
    /// Its sample rate.
    pub rate: u32,
}

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct LocalizeOptions {
    /// Folder for the pictures, maps and `localize.json`.
    pub out_dir: PathBuf,
    /// Clips per forward pass.
    pub batch_size: usize,
    /// Side of a tile of the overlay pictures, pixels.
    pub tile: u32,
}

/// What was found in one clip.
#[derive(Debug, Clone, Serialize)]
pub struct LocalizedClip {
    /// The clip's output stem.
    pub name: String,
    /// Sources IOI separated (0 when the map has no salient region).
    pub sources: usize,
    /// Where `S_a` peaks, normalised `[x, y]` (pixel centres of the map grid).
    pub peak: [f64; 2],
    /// The overlay picture.
    pub picture: PathBuf,
    /// The maps.
    pub maps: PathBuf,
}

/// `localize.json`.
#[derive(Debug, Clone, Serialize)]
pub struct LocalizeReport {
    /// Weights used.
    pub model: PathBuf,
    /// Device used.
    pub device: String,
    /// One entry per clip, in input order.
    pub clips: Vec<LocalizedClip>,
    /// Forward passes only (spectrograms and decoding excluded).
    pub images_per_s: f64,
    /// Preparing the inputs (frame resize, spectrogram) through writing the outputs.
    pub end_to_end_images_per_s: f64,
}

/// Keeps ASCII letters, digits, `.`, `-` and `_` (others become `_`), and makes repeated names unique.
fn file_safe_names(clips: &[Clip]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    clips
        .iter()
        .map(|c| {
            let mut base: String = c
                .name
                .chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_') {
                        ch
                    } else {
                        '_'
                    }
                })
                .collect();
            if base.is_empty() {
                base = "clip".into();
            }
            let mut name = base.clone();
            let mut n = 1;
            while !seen.insert(name.clone()) {
                n += 1;
                name = format!("{base}-{n}");
            }
            name
        })
        .collect()
}

/// Normalised `[x, y]` of the largest value of an `[h, w]` map.
fn peak(map: &Tensor) -> Result<[f64; 2]> {
    let size = map.size();
    let (h, w) = (size[0], size[1]);
    let index = i64::try_from(map.flatten(0, -1).argmax(0, false))?;
    let (y, x) = (index / w, index % w);
    Ok([(x as f64 + 0.5) / w as f64, (y as f64 + 0.5) / h as f64])
}

/// Runs `trained` on `clips` and writes the outputs under `opts.out_dir`.
pub fn localize(
    trained: &TrainedModel,
    clips: &[Clip],
    device: Device,
    opts: &LocalizeOptions,
) -> Result<LocalizeReport> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("creating {}", opts.out_dir.display()))?;
    let started = Instant::now();
    let meta = &trained.meta;
    let names = file_safe_names(clips);
    let items: Vec<EvalItem> = clips
        .par_iter()
        .map(|c| {
            media_eval_item(
                &c.frame,
                &c.audio,
                c.rate,
                meta.image_size,
                1,
                meta.audio_seconds,
            )
            .with_context(|| format!("clip {}", c.name))
        })
        .collect::<Result<_>>()?;
    let mut infer_seconds = 0.0;
    let mut out = Vec::with_capacity(clips.len());
    let batch = opts.batch_size.max(1);
    for (chunk_idx, chunk) in items.chunks(batch).enumerate() {
        let (frames, spec) = eval_tensors(chunk, meta.image_size, device)?;
        let t = Instant::now();
        let maps = trained.model.infer_maps(&frames, &spec, &trained.ioi)?;
        if device.is_cuda() {
            tch::Cuda::synchronize(device_index(device));
        }
        infer_seconds += t.elapsed().as_secs_f64();
        for (j, sample) in maps.into_iter().enumerate() {
            let i = chunk_idx * batch + j;
            let single = sample.single.to_device(Device::Cpu).to_kind(Kind::Float);
            let objects = sample
                .objects
                .map(|o| o.to_device(Device::Cpu).to_kind(Kind::Float))
                .filter(|o| o.size()[0] > 0);
            out.push(write_clip(
                &clips[i],
                &names[i],
                &single,
                objects.as_ref(),
                opts,
            )?);
        }
    }
    let report = LocalizeReport {
        model: trained.weights.clone(),
        device: format!("{device:?}"),
        images_per_s: rate(clips.len(), infer_seconds),
        end_to_end_images_per_s: rate(clips.len(), started.elapsed().as_secs_f64()),
        clips: out,
    };
    oassl_pipeline::atomic::write_json(&opts.out_dir.join("localize.json"), &report)?;
    Ok(report)
}

fn rate(n: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

fn device_index(device: Device) -> i64 {
    match device {
        Device::Cuda(i) => i as i64,
        _ => 0,
    }
}

fn write_clip(
    clip: &Clip,
    name: &str,
    single: &Tensor,
    objects: Option<&Tensor>,
    opts: &LocalizeOptions,
) -> Result<LocalizedClip> {
    let mut maps = vec![to_map(single)?];
    if let Some(o) = objects {
        for g in 0..o.size()[0] {
            maps.push(to_map(&o.get(g))?);
        }
    }
    let picture = opts.out_dir.join(format!("{name}.png"));
    let row = GalleryRow {
        frame: clip.frame.clone(),
        maps,
        boxes: Vec::new(),
        kind: RowKind::Unscored,
        label: None,
    };
    let img = gallery::render(&[row], opts.tile);
    oassl_pipeline::atomic::write_with(&picture, |w| {
        img.write_to(w, image::ImageFormat::Png)?;
        Ok(())
    })?;
    let maps_path = opts.out_dir.join(format!("{name}.safetensors"));
    let mut named = vec![("sound_map".to_string(), single.contiguous())];
    if let Some(o) = objects {
        named.push(("objects".to_string(), o.contiguous()));
    }
    write_maps(&maps_path, &named)?;
    Ok(LocalizedClip {
        name: name.to_string(),
        sources: objects.map_or(0, |o| o.size()[0] as usize),
        peak: peak(single)?,
        picture,
        maps: maps_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(name: &str) -> Clip {
        Clip {
            name: name.into(),
            frame: RgbImage::new(4, 4),
            audio: vec![0.0; 8],
            rate: 8,
        }
    }

    #[test]
    fn names_are_file_safe_and_unique() {
        let clips = [
            clip("a b"),
            clip("a_b"),
            clip("../x"),
            clip(""),
            clip("a b"),
        ];
        assert_eq!(
            file_safe_names(&clips),
            vec!["a_b", "a_b-2", "___x", "clip", "a_b-3"]
        );
    }

    #[test]
    fn peak_is_the_normalised_pixel_centre_of_the_maximum() {
        let m = Tensor::from_slice(&[0.0f32, 0.1, 0.2, 0.9, 0.3, 0.4]).view([2, 3]);
        assert_eq!(peak(&m).unwrap(), [0.5 / 3.0, 0.75]);
    }

    /// A model whose maps find red objects, by construction: the visual stem's first channel is
    /// `r − g − b` of the centre tap (positive only on saturated red), its second a constant 1, every residual
    /// branch is switched off (`bn2` = 0) and every downsampling shortcut passes the channels through, so
    /// `F_v(x) ∝ (redness(x), 1, 0, …)`. The audio trunk is zero but for `layer4.1.bn2.bias[0] = 1`, so
    /// `l_a = e_0` and `S_a(x) = redness / √(redness² + 1)` peaks where the frame is reddest.
    fn red_finder() -> TrainedModel {
        use oassl_pipeline::config::TrainLossConfig;
        let vars = tch::nn::VarStore::new(Device::Cpu);
        let cfg = oassl_train::model::ModelConfig {
            text_dim: 4,
            visual_output_stride: 16,
            ..Default::default()
        };
        let model = oassl_train::model::OasslModel::new(vars.root(), &cfg).unwrap();
        let named = vars.variables();
        let _guard = tch::no_grad_guard();
        for (name, t) in &named {
            let mut t = t.shallow_clone();
            if name.ends_with("running_var") || name.ends_with("downsample.1.weight") {
                let _ = t.fill_(1.0);
            } else {
                let _ = t.zero_();
            }
        }
        let set = |name: &str, index: &[i64], value: f64| {
            let mut t = named[name].shallow_clone();
            for &i in index {
                t = t.get(i);
            }
            let _ = t.fill_(value);
        };
        set("visual.conv1.weight", &[0, 0, 3, 3], 1.0);
        set("visual.conv1.weight", &[0, 1, 3, 3], -1.0);
        set("visual.conv1.weight", &[0, 2, 3, 3], -1.0);
        set("visual.bn1.weight", &[0], 1.0);
        set("visual.bn1.bias", &[1], 1.0);
        for (layer, c_in) in [(2, 64), (3, 128), (4, 256)] {
            for c in 0..c_in {
                set(
                    &format!("visual.layer{layer}.0.downsample.0.weight"),
                    &[c, c, 0, 0],
                    1.0,
                );
            }
        }
        set("audio.layer4.1.bn2.bias", &[0], 1.0);
        let meta = oassl_train::stage::ModelMeta {
            method: "oassl".into(),
            step: 0,
            text_dim: 4,
            image_size: 112,
            audio_seconds: 1.0,
            freeze_visual: false,
            visual_output_stride: 16,
            visual_projection: false,
            loss: TrainLossConfig::default(),
            final_loss: 0.0,
        };
        TrainedModel::in_memory(vars, model, meta).unwrap()
    }

    /// A 160×120 grey frame with a green square (a distractor the model must ignore) and a red disc whose
    /// colour fades from its centre, so the reddest point is the disc's centre; returns the frame and the red
    /// disc's box as frame fractions `[x1, y1, x2, y2]`.
    fn scene(red_centre: (f64, f64), green_centre: (f64, f64)) -> (RgbImage, [f64; 4]) {
        let (w, h, r) = (160.0, 120.0, 26.0);
        let img = RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let (px, py) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let d = ((px - red_centre.0).powi(2) + (py - red_centre.1).powi(2)).sqrt();
            if d < r {
                let fade = (160.0 * d / r) as u8;
                return image::Rgb([255, fade, fade]);
            }
            if (px - green_centre.0).abs() < r && (py - green_centre.1).abs() < r {
                return image::Rgb([0, 255, 0]);
            }
            image::Rgb([128, 128, 128])
        });
        let b = [
            (red_centre.0 - r) / w,
            (red_centre.1 - r) / h,
            (red_centre.0 + r) / w,
            (red_centre.1 + r) / h,
        ];
        (img, b)
    }

    #[test]
    fn peaks_fall_inside_the_sounding_objects_box() {
        let trained = red_finder();
        let scenes = [
            scene((118.0, 36.0), (40.0, 84.0)),
            scene((38.0, 82.0), (120.0, 40.0)),
        ];
        let clips: Vec<Clip> = scenes
            .iter()
            .enumerate()
            .map(|(i, (frame, _))| Clip {
                name: format!("scene-{i}"),
                frame: frame.clone(),
                audio: vec![0.0; 22_050],
                rate: 22_050,
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let opts = LocalizeOptions {
            out_dir: dir.path().to_path_buf(),
            batch_size: 2,
            tile: 32,
        };
        let report = localize(&trained, &clips, Device::Cpu, &opts).unwrap();
        for (clip, (_, b)) in report.clips.iter().zip(&scenes) {
            let [x, y] = clip.peak;
            assert!(
                (b[0]..=b[2]).contains(&x) && (b[1]..=b[3]).contains(&y),
                "{}: peak {:?} outside the red object's box {b:?}",
                clip.name,
                clip.peak
            );
        }
        // The two scenes put the object in opposite corners, so a constant peak cannot pass.
        assert_ne!(report.clips[0].peak, report.clips[1].peak);
    }
}
