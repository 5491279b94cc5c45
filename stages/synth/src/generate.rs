//! Generating a whole AVS-Synth dataset into the data layout.

use std::path::Path;

use anyhow::{Context, Result};
use indicatif::ParallelProgressIterator;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::Serialize;

use oassl_pipeline::atomic;
use oassl_pipeline::config::SynthConfig;
use oassl_pipeline::fingerprint::hash_parts;
use oassl_pipeline::manifest::{Manifest, ManifestRow};
use oassl_pipeline::{Layout, SampleId};

use crate::audio::{scene_audio, write_wav};
use crate::ground_truth::GroundTruthEntry;
use crate::render::render_frame;
use crate::scene::{background_pool, sample_scene, Background, Scene};

/// Length of the audio window stage one extracts around the clip centre, seconds.
pub const AUDIO_WINDOW_SECONDS: f64 = 3.0;

/// What the generator writes per clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLayout {
    /// mp4 videos (H.264 + AAC) that stage one extracts.
    Video,
    /// The centre frame (JPEG) and audio window (WAV) in stage one's output layout, for hosts without FFmpeg.
    Extracted,
}

/// Counts of what was written.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub clips: usize,
    pub sounding_objects: usize,
    pub silent_objects: usize,
    pub same_class_scenes: usize,
    /// Frames of the pretraining split.
    pub pretrain_frames: usize,
    /// Box areas (fraction of the frame) of single-source clips' sounding objects, for [`GeometryReport`].
    ///
    /// [`GeometryReport`]: crate::geometry::GeometryReport
    pub single_areas: Vec<f64>,
    /// Box areas of duet clips' sounding objects.
    pub duet_areas: Vec<f64>,
}

/// The (split, number of sounding objects, count) plan of a dataset.
fn plan(cfg: &SynthConfig) -> Vec<(&'static str, &'static str, usize, usize)> {
    vec![
        ("train", "single", 1, cfg.train_single),
        ("train", "duet", 2, cfg.train_duet),
        ("test", "single", 1, cfg.test_single),
        ("test", "duet", 2, cfg.test_duet),
    ]
}

/// Split name used in the manifest and ground truth: `train_single`, `test_duet`, ...
fn split_name(split: &str, kind: &str) -> String {
    format!("{split}_{kind}")
}

/// Samples every scene of the dataset; each scene's randomness depends only on the seed and its id, so the output
/// does not depend on thread scheduling.
pub fn sample_all(cfg: &SynthConfig) -> Vec<Scene> {
    let backgrounds = background_pool(cfg);
    let mut scenes = Vec::new();
    for (split, kind, k, count) in plan(cfg) {
        for i in 0..count {
            let id = format!("synth-{split}-{kind}-{i:05}");
            scenes.push(scene_for_id(
                cfg,
                &backgrounds,
                id,
                &split_name(split, kind),
                k,
            ));
        }
    }
    scenes
}

/// The pretraining split: scenes under their own ids (`synth-pretrain-NNNNN`), single and duet alternating, so
/// none is a train or test scene.
pub fn sample_pretrain(cfg: &SynthConfig) -> Vec<Scene> {
    let backgrounds = background_pool(cfg);
    (0..cfg.pretrain)
        .map(|i| {
            let id = format!("synth-pretrain-{i:05}");
            scene_for_id(cfg, &backgrounds, id, PRETRAIN_SPLIT, 1 + i % 2)
        })
        .collect()
}

/// Split name of the pretraining scenes.
pub const PRETRAIN_SPLIT: &str = "pretrain";

fn scene_for_id(
    cfg: &SynthConfig,
    backgrounds: &[Background],
    id: String,
    split: &str,
    sounding: usize,
) -> Scene {
    let key = hash_parts([cfg.seed.to_le_bytes().as_slice(), id.as_bytes()]);
    // The first 16 hex digits of the hash: a per-scene seed independent of scheduling order.
    let seed = u64::from_str_radix(&key[..16], 16).unwrap_or(cfg.seed);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    sample_scene(&mut rng, cfg, backgrounds, id, split, sounding)
}

/// Writes one clip (video or extracted files); errors name the clip.
fn write_clip(cfg: &SynthConfig, layout: &Layout, scene: &Scene, mode: OutputLayout) -> Result<()> {
    if scene.split == PRETRAIN_SPLIT {
        let id = SampleId::parse(&scene.id)?;
        return write_jpeg(&layout.pretrain_frame(&id), &centre_frame(cfg, scene));
    }
    let id = SampleId::parse(&scene.id)?;
    let audio = scene_audio(scene, cfg.sample_rate, cfg.clip_seconds, cfg.noise_level);
    match mode {
        OutputLayout::Video => {
            let out = layout.video(&scene.split, &id);
            atomic::write_via_path(&out, |tmp| {
                crate::video::encode_clip(
                    scene,
                    &audio,
                    cfg.sample_rate,
                    cfg.fps,
                    cfg.clip_seconds,
                    tmp,
                )
            })
        }
        OutputLayout::Extracted => {
            write_jpeg(&layout.frame(&id), &centre_frame(cfg, scene))?;
            let half = (AUDIO_WINDOW_SECONDS / 2.0 * f64::from(cfg.sample_rate)).round() as usize;
            let mid = audio.len() / 2;
            let window = &audio[mid.saturating_sub(half)..(mid + half).min(audio.len())];
            atomic::write_via_path(&layout.audio(&id), |tmp| {
                write_wav(tmp, window, cfg.sample_rate)
            })
        }
    }
}

/// The frame nearest the clip centre (the video's frame times are multiples of 1/fps), as stage one extracts it.
fn centre_frame(cfg: &SynthConfig, scene: &Scene) -> image::RgbImage {
    let centre = cfg.clip_seconds / 2.0;
    let t = (centre * f64::from(cfg.fps)).round() / f64::from(cfg.fps);
    render_frame(scene, t, cfg.clip_seconds)
}

fn write_jpeg(path: &Path, img: &image::RgbImage) -> Result<()> {
    atomic::write_with(path, |w| {
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(w, 92);
        img.write_with_encoder(encoder)?;
        Ok(())
    })
}

/// Writes the pretraining split's labels (`id,classes`, every class shown, `|`-separated) and scenes.
fn write_pretrain_lists(layout: &Layout, scenes: &[Scene]) -> Result<()> {
    let mut text = String::from("id,classes\n");
    for s in scenes {
        let names: Vec<&str> = s
            .visible_classes()
            .into_iter()
            .map(|c| crate::catalogue::CATALOGUE[c].name)
            .collect();
        text.push_str(&format!("{},{}\n", s.id, names.join("|")));
    }
    atomic::write_json(&layout.pretrain_scenes(), &scenes)?;
    atomic::write_bytes(&layout.pretrain_labels(), text.as_bytes())
}

/// Generates the dataset described by `cfg` under `layout`: clips, manifest, ground truth, scene metadata.
pub fn generate(cfg: &SynthConfig, layout: &Layout, mode: OutputLayout) -> Result<Summary> {
    if mode == OutputLayout::Video && !crate::video::ffmpeg_available() {
        anyhow::bail!(
            "the `ffmpeg` program was not found: run `make setup`, or use `--layout extracted`"
        );
    }
    let root = layout.root();
    std::fs::create_dir_all(root)
        .with_context(|| format!("creating data folder {}", root.display()))?;
    let probe = root.join(".write-probe");
    std::fs::write(&probe, b"")
        .with_context(|| format!("data folder {} is not writable", root.display()))?;
    let _ = std::fs::remove_file(&probe);

    let scenes = sample_all(cfg);
    let pretrain = sample_pretrain(cfg);
    let bar = oassl_pipeline::progress::bar("synth", scenes.len() + pretrain.len());
    scenes
        .par_iter()
        .chain(pretrain.par_iter())
        .progress_with(bar.clone())
        .try_for_each(|scene| write_clip(cfg, layout, scene, mode))?;
    bar.finish_and_clear();
    write_pretrain_lists(layout, &pretrain)?;

    let manifest = Manifest {
        base: layout.dataset_dir(),
        rows: scenes
            .iter()
            .map(|s| {
                Ok(ManifestRow {
                    id: SampleId::parse(&s.id)?,
                    videos: match mode {
                        OutputLayout::Video => vec![format!("videos/{}/{}.mp4", s.split, s.id)],
                        OutputLayout::Extracted => Vec::new(),
                    },
                    labels: s.labels(),
                    split: s.split.clone(),
                    timestamp: None,
                })
            })
            .collect::<Result<_>>()?,
    };
    for (split, kind, _, _) in plan(cfg) {
        let name = split_name(split, kind);
        let entries: Vec<GroundTruthEntry> = scenes
            .iter()
            .filter(|s| s.split == name)
            .map(GroundTruthEntry::of)
            .collect();
        atomic::write_json(&layout.ground_truth(&name), &entries)?;
    }
    atomic::write_json(&layout.scenes(), &scenes)?;
    // The manifest last: its presence means the dataset is complete.
    manifest.write(&layout.manifest())?;
    Ok(summarise(&scenes, pretrain.len()))
}

fn summarise(scenes: &[Scene], pretrain_frames: usize) -> Summary {
    let mut s = Summary {
        clips: scenes.len(),
        sounding_objects: 0,
        silent_objects: 0,
        same_class_scenes: 0,
        pretrain_frames,
        single_areas: Vec::new(),
        duet_areas: Vec::new(),
    };
    for scene in scenes {
        let labels = scene.labels();
        s.sounding_objects += labels.len();
        s.silent_objects += scene.objects.len() - labels.len();
        s.same_class_scenes += usize::from(scene.has_silent_twin());
        let areas = scene
            .objects
            .iter()
            .filter(|o| o.sounding)
            .map(|o| (o.bbox[2] - o.bbox[0]) * (o.bbox[3] - o.bbox[1]));
        match labels.len() {
            1 => s.single_areas.extend(areas),
            _ => s.duet_areas.extend(areas),
        }
    }
    s
}

/// Whether `path` holds a complete generated dataset (its manifest exists).
pub fn exists(layout: &Layout) -> bool {
    Path::new(&layout.manifest()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_deterministic_and_seed_dependent() {
        let cfg = SynthConfig {
            train_single: 3,
            train_duet: 3,
            test_single: 2,
            test_duet: 2,
            ..SynthConfig::default()
        };
        let a = sample_all(&cfg);
        assert_eq!(a, sample_all(&cfg));
        assert_eq!(a.len(), 10);
        let b = sample_all(&SynthConfig {
            seed: 8,
            ..cfg.clone()
        });
        assert_ne!(a, b);
    }

    #[test]
    fn extracted_layout_writes_stage_one_files() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let cfg = SynthConfig {
            train_single: 2,
            train_duet: 2,
            test_single: 1,
            test_duet: 1,
            ..SynthConfig::default()
        };
        let summary = generate(&cfg, &layout, OutputLayout::Extracted).unwrap();
        assert_eq!(summary.clips, 6);
        let manifest = Manifest::read(&layout.manifest()).unwrap();
        assert_eq!(manifest.rows.len(), 6);
        for row in &manifest.rows {
            let img = image::open(layout.frame(&row.id)).unwrap();
            assert_eq!((img.width(), img.height()), (224, 224));
            let wav = hound::WavReader::open(layout.audio(&row.id)).unwrap();
            assert_eq!(wav.spec().sample_rate, 22_050);
            assert_eq!(wav.len(), 66_150);
            assert!(row.videos.is_empty());
        }
        let gt: Vec<GroundTruthEntry> =
            serde_json::from_slice(&std::fs::read(layout.ground_truth("test_duet")).unwrap())
                .unwrap();
        assert_eq!(gt.len(), 1);
        assert_eq!(gt[0].bbox.len(), 2);
        assert_eq!(gt[0].classes.len(), 2);
    }

    #[test]
    fn pretraining_split_has_its_own_scenes_with_every_shown_class() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let cfg = SynthConfig {
            width: 64,
            height: 64,
            train_single: 2,
            train_duet: 2,
            test_single: 2,
            test_duet: 2,
            pretrain: 6,
            ..SynthConfig::default()
        };
        let summary = generate(&cfg, &layout, OutputLayout::Extracted).unwrap();
        assert_eq!(summary.pretrain_frames, 6);
        let labels = std::fs::read_to_string(layout.pretrain_labels()).unwrap();
        let lines: Vec<&str> = labels.lines().collect();
        assert_eq!(lines[0], "id,classes");
        assert_eq!(lines.len(), 7);
        let scenes: Vec<Scene> =
            serde_json::from_slice(&std::fs::read(layout.pretrain_scenes()).unwrap()).unwrap();
        let manifest = Manifest::read(&layout.manifest()).unwrap();
        for (line, scene) in lines[1..].iter().zip(&scenes) {
            let (id, classes) = line.split_once(',').unwrap();
            assert_eq!(id, scene.id);
            assert!(manifest.rows.iter().all(|r| r.id.as_str() != id));
            // Sounding and silent objects alike are named.
            let shown: Vec<&str> = scene
                .visible_classes()
                .into_iter()
                .map(|c| crate::catalogue::CATALOGUE[c].name)
                .collect();
            assert_eq!(classes.split('|').collect::<Vec<_>>(), shown);
            let img = image::open(layout.pretrain_frame(&SampleId::parse(id).unwrap())).unwrap();
            assert_eq!((img.width(), img.height()), (64, 64));
        }
    }
}
