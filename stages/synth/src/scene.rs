//! Scene sampling: which objects, where, which ones sound.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use oassl_pipeline::config::SynthConfig;

use crate::catalogue::CATALOGUE;
use crate::geometry::{area_at, side_for_area};
use rand::SeedableRng;

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

    /// Whether a silent object shares its class with a sounding one (the paper's hard case).
    pub fn has_silent_twin(&self) -> bool {
        self.objects.iter().any(|silent| {
            !silent.sounding
                && self
                    .objects
                    .iter()
                    .any(|o| o.sounding && o.class == silent.class)
        })
    }

    /// Classes shown, sounding or silent, each once, in catalogue order: the labels of a pretraining frame.
    pub fn visible_classes(&self) -> Vec<usize> {
        let mut classes: Vec<usize> = self.objects.iter().map(|o| o.class).collect();
        classes.sort_unstable();
        classes.dedup();
        classes
    }
}

/// Draws a scene with `sounding` sounding objects (1 or 2, distinct classes) on a background of `backgrounds`
/// (the dataset's shared pool, see [`background_pool`]).
pub fn sample_scene<R: Rng>(
    rng: &mut R,
    cfg: &SynthConfig,
    backgrounds: &[Background],
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
        // Single-source clips' sounding objects follow VGG-SS's box areas; duet sources and every silent
        // object follow MUSIC-Duet's (see `geometry`).
        let knots = if is_sounding && sounding == 1 {
            &cfg.single_box_area
        } else {
            &cfg.duet_box_area
        };
        let area = area_at(knots, rng.gen_range(0.0..1.0));
        let shape = CATALOGUE[class].shape;
        let mut size =
            side_for_area(area, shape, cfg.width, cfg.height).clamp(12.0 * scale, max_side(cfg));
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
        for _ in 0..12 {
            spot = find_spot(rng, cfg, &placed, size, scale);
            if spot.is_some() || !is_sounding {
                break;
            }
            size *= 0.9;
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
    let flat = Background::Gradient {
        hue: 0.0,
        top: 0.7,
        bottom: 0.7,
    };
    let drawn = backgrounds.choose(rng).copied().unwrap_or(flat);
    // Drawn either way, so the flag changes nothing else about the scene.
    let background = if cfg.plain_backgrounds { flat } else { drawn };
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

/// The dataset's shared backgrounds: `cfg.background_pool` of them, fixed by the seed. Scenes draw from this
/// pool, so each background appears behind many clips of different classes and cannot identify a clip.
pub fn background_pool(cfg: &SynthConfig) -> Vec<Background> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x6261_636B_6772_6F75);
    (0..cfg.background_pool.max(1))
        .map(|_| random_background(&mut rng))
        .collect()
}

fn random_background<R: Rng>(rng: &mut R) -> Background {
    let hue = rng.gen_range(0.0..360.0);
    match rng.gen_range(0..4) {
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
    }
}

/// Largest square side that fits the frame with its drift and the cue margin.
fn max_side(cfg: &SynthConfig) -> f64 {
    let scale = f64::from(cfg.width.min(cfg.height)) / 224.0;
    let room_x = f64::from(cfg.width) - 2.0 * (cfg.motion_px + 2.0) - CUE_MARGIN * scale;
    let room_y = f64::from(cfg.height) - 2.0 * (cfg.motion_px + 2.0);
    (room_x.min(room_y) - 2.0).max(12.0 * scale)
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
    if w - half - cue < half || h - half < half {
        return None;
    }
    (0..200).find_map(|_| {
        let cx = rng.gen_range(half..=(w - half - cue));
        let cy = rng.gen_range(half..=(h - half));
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
    use crate::geometry::{AreaReference, GeometryReport};

    /// The benchmarks' numbers: from the annotation files when this checkout sits beside the shared datasets,
    /// else the built-in ones.
    fn reference() -> AreaReference {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
        AreaReference::from_datasets_dir(&dir).unwrap()
    }

    fn scenes(n: usize, sounding: usize, seed: u64) -> Vec<Scene> {
        let cfg = SynthConfig::default();
        let pool = background_pool(&cfg);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| sample_scene(&mut rng, &cfg, &pool, format!("s{i}"), "train", sounding))
            .collect()
    }

    fn sounding_areas(scenes: &[Scene]) -> Vec<f64> {
        scenes
            .iter()
            .flat_map(|s| s.objects.iter().filter(|o| o.sounding))
            .map(|o| (o.bbox[2] - o.bbox[0]) * (o.bbox[3] - o.bbox[1]))
            .collect()
    }

    #[test]
    fn box_areas_follow_the_benchmarks_within_three_points() {
        let single = sounding_areas(&scenes(1500, 1, 1));
        let duet = sounding_areas(&scenes(750, 2, 2));
        let report = GeometryReport::new(&single, &duet, &reference());
        assert_eq!(report.rows.len(), 8);
        for r in &report.rows {
            assert!(
                (r.generated - r.reference).abs() <= 0.03,
                "{} p{}: generated {:.3}, reference {:.3}\n{}",
                r.kind,
                r.q * 100.0,
                r.generated,
                r.reference,
                report.table()
            );
        }
    }

    #[test]
    fn scenes_have_requested_sources_and_valid_boxes() {
        let cfg = SynthConfig::default();
        let mut same_class = 0;
        for (i, s) in scenes(200, 1, 3)
            .iter()
            .chain(&scenes(200, 2, 4))
            .enumerate()
        {
            let k = if i < 200 { 1 } else { 2 };
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
        // Large single-source objects leave little room for a silent twin and a twin that does not fit is left
        // out, so the share is well below the configured 0.5 (56 of 400 with these seeds), but far from 0 and
        // far from all.
        assert!((30..=300).contains(&same_class), "{same_class}");
    }

    #[test]
    fn objects_spread_over_the_frame_and_backgrounds_are_shared() {
        let all = scenes(400, 2, 5);
        let centres: Vec<[f64; 2]> = all
            .iter()
            .flat_map(|s| s.objects.iter().filter(|o| o.sounding))
            .map(|o| [(o.bbox[0] + o.bbox[2]) / 2.0, (o.bbox[1] + o.bbox[3]) / 2.0])
            .collect();
        // Every quadrant holds a fair share of the sounding objects' centres.
        for (qx, qy) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let n = centres
                .iter()
                .filter(|c| usize::from(c[0] >= 0.5) == qx && usize::from(c[1] >= 0.5) == qy)
                .count();
            assert!(
                n * 8 > centres.len(),
                "quadrant ({qx},{qy}): {n} of {}",
                centres.len()
            );
        }
        // 12 backgrounds for 400 scenes, each behind clips of several classes.
        let mut classes_per_background: Vec<(String, std::collections::BTreeSet<usize>)> =
            Vec::new();
        for s in &all {
            let key = format!("{:?}", s.background);
            let classes = s.objects.iter().filter(|o| o.sounding).map(|o| o.class);
            match classes_per_background.iter_mut().find(|(k, _)| *k == key) {
                Some((_, set)) => set.extend(classes),
                None => classes_per_background.push((key, classes.collect())),
            }
        }
        assert_eq!(classes_per_background.len(), 12);
        assert!(classes_per_background.iter().all(|(_, set)| set.len() >= 5));
    }
}
