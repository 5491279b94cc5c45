//! Scene sampling: which objects, where, which ones sound.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use oassl_pipeline::config::SynthConfig;

use crate::catalogue::CATALOGUE;

/// Space kept free to an object's right for its "being played" marks, in pixels at 224 px.
pub const CUE_MARGIN: f64 = 14.0;

/// Background styles; all are nearly grey so objects stand out by hue.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case")]
pub enum Background {
    Gradient {
        hue: f64,
        top: f64,
        bottom: f64,
    },
    Tiles {
        hue: f64,
        light: f64,
        dark: f64,
        tile: u32,
    },
    Stripes {
        hue: f64,
        light: f64,
        dark: f64,
        period: u32,
    },
    Blotches {
        hue: f64,
        base: f64,
        seed: u64,
    },
}

/// One object of a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneObject {
    /// Index into the catalogue.
    pub class: usize,
    pub class_name: String,
    pub sounding: bool,
    /// Centre at the clip's centre time, pixels.
    pub center: [f64; 2],
    /// Side of the square the shape is drawn in, pixels.
    pub size: f64,
    /// Drift in pixels per second (position at time t is `center + velocity * (t - duration / 2)`).
    pub velocity: [f64; 2],
    /// Tight box of the object's pixels in the centre frame, normalised `[x1, y1, x2, y2]`.
    pub bbox: [f64; 4],
}

/// A whole scene: background, objects, and the clip it becomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    pub id: String,
    pub split: String,
    pub width: u32,
    pub height: u32,
    pub background: Background,
    /// Sounding objects first, in label order.
    pub objects: Vec<SceneObject>,
    /// Per-scene seed of the audio synthesis.
    pub audio_seed: u64,
}

impl Scene {
    /// Labels of the sounding objects, in order.
    pub fn labels(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| o.sounding)
            .map(|o| o.class_name.clone())
            .collect()
    }
}

/// Draws a scene with `sounding` sounding objects (1 or 2, distinct classes).
pub fn sample_scene<R: Rng>(
    rng: &mut R,
    cfg: &SynthConfig,
    id: String,
    split: &str,
    sounding: usize,
) -> Scene {
    let scale = f64::from(cfg.width.min(cfg.height)) / 224.0;
    let mut pool: Vec<usize> = (0..cfg.num_classes).collect();
    pool.shuffle(rng);
    let sounding_classes: Vec<usize> = pool[..sounding].to_vec();
    let mut silent_classes = Vec::new();
    let n_silent = rng.gen_range(0..=cfg.max_silent);
    let same_class = cfg.max_silent > 0 && rng.gen_bool(cfg.same_class_silent_share);
    if same_class {
        silent_classes.push(sounding_classes[rng.gen_range(0..sounding)]);
    }
    while silent_classes.len() < n_silent.max(usize::from(same_class)) {
        silent_classes.push(rng.gen_range(0..cfg.num_classes));
    }
    let duration = cfg.clip_seconds;
    let mut objects: Vec<SceneObject> = Vec::new();
    let mut placed: Vec<[f64; 4]> = Vec::new();
    let classes = sounding_classes
        .iter()
        .map(|&c| (c, true))
        .chain(silent_classes.iter().map(|&c| (c, false)));
    for (class, is_sounding) in classes {
        let mut size = rng.gen_range(cfg.object_size[0]..cfg.object_size[1]) * scale;
        let speed = if cfg.motion_px > 0.0 {
            cfg.motion_px / (duration / 2.0)
        } else {
            0.0
        };
        let angle: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
        let velocity = [speed * angle.cos(), speed * angle.sin()];
        // Reserve the object's square, its drift and the cue margin; try a few spots. A silent object that does
        // not fit is left out; a sounding one shrinks until it fits (they are placed first, on an empty frame).
        let mut spot = None;
        for _ in 0..8 {
            spot = find_spot(rng, cfg, &placed, size, scale);
            if spot.is_some() || !is_sounding {
                break;
            }
            size *= 0.85;
        }
        let Some((center, rect)) = spot else {
            continue;
        };
        placed.push(rect);
        objects.push(SceneObject {
            class,
            class_name: CATALOGUE[class].name.to_string(),
            sounding: is_sounding,
            center,
            size,
            velocity,
            bbox: [0.0; 4],
        });
    }
    let hue = rng.gen_range(0.0..360.0);
    let background = match rng.gen_range(0..4) {
        0 => Background::Gradient {
            hue,
            top: rng.gen_range(0.5..0.9),
            bottom: rng.gen_range(0.45..0.85),
        },
        1 => Background::Tiles {
            hue,
            light: rng.gen_range(0.7..0.9),
            dark: rng.gen_range(0.45..0.65),
            tile: rng.gen_range(16..48),
        },
        2 => Background::Stripes {
            hue,
            light: rng.gen_range(0.7..0.9),
            dark: rng.gen_range(0.5..0.7),
            period: rng.gen_range(10..30),
        },
        _ => Background::Blotches {
            hue,
            base: rng.gen_range(0.55..0.8),
            seed: rng.gen(),
        },
    };
    // Drawn either way, so the flag changes nothing else about the scene.
    let background = if cfg.plain_backgrounds {
        Background::Gradient {
            hue: 0.0,
            top: 0.7,
            bottom: 0.7,
        }
    } else {
        background
    };
    let mut scene = Scene {
        id,
        split: split.to_string(),
        width: cfg.width,
        height: cfg.height,
        background,
        objects,
        audio_seed: rng.gen(),
    };
    for i in 0..scene.objects.len() {
        scene.objects[i].bbox = crate::render::object_bbox(&scene, i, duration / 2.0, duration);
    }
    scene
}

/// A free centre for an object of side `size`, and the rectangle it reserves, or `None` after 200 tries.
fn find_spot<R: Rng>(
    rng: &mut R,
    cfg: &SynthConfig,
    placed: &[[f64; 4]],
    size: f64,
    scale: f64,
) -> Option<([f64; 2], [f64; 4])> {
    let half = size / 2.0 + cfg.motion_px + 2.0;
    let cue = CUE_MARGIN * scale;
    let (w, h) = (f64::from(cfg.width), f64::from(cfg.height));
    if w - half - cue <= half || h - half <= half {
        return None;
    }
    (0..200).find_map(|_| {
        let cx = rng.gen_range(half..(w - half - cue));
        let cy = rng.gen_range(half..(h - half));
        let rect = [cx - half, cy - half, cx + half + cue, cy + half];
        placed
            .iter()
            .all(|p| !overlaps(p, &rect))
            .then_some(([cx, cy], rect))
    })
}

fn overlaps(a: &[f64; 4], b: &[f64; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn scenes_have_requested_sources_and_valid_boxes() {
        let cfg = SynthConfig::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut same_class = 0;
        let mut sounding_area = Vec::new();
        for i in 0..200 {
            let k = 1 + i % 2;
            let s = sample_scene(&mut rng, &cfg, format!("s{i}"), "train", k);
            assert_eq!(s.labels().len(), k);
            assert!(s.objects.len() <= k + cfg.max_silent);
            let labels = s.labels();
            if s.objects
                .iter()
                .any(|o| !o.sounding && labels.contains(&o.class_name))
            {
                same_class += 1;
            }
            for o in &s.objects {
                let b = o.bbox;
                if o.sounding {
                    sounding_area.push((b[2] - b[0]) * (b[3] - b[1]));
                }
                assert!(
                    b[0] >= 0.0
                        && b[1] >= 0.0
                        && b[2] <= 1.0
                        && b[3] <= 1.0
                        && b[0] < b[2]
                        && b[1] < b[3]
                );
            }
        }
        // Squares of 52-84 px at 224 px (shrunk only when a second sounding one would not fit): boxes of
        // roughly 5-14 % of the frame, less for shapes that do not fill their square.
        let mean = sounding_area.iter().sum::<f64>() / sounding_area.len() as f64;
        assert!(
            (0.06..0.12).contains(&mean),
            "mean sounding box area {mean}"
        );
        assert!(sounding_area.iter().all(|a| *a > 0.02), "{sounding_area:?}");
        // The configured share (0.35) plus chance coincidences; far from 0 and far from all.
        assert!((50..=130).contains(&same_class), "{same_class}");
    }
}
