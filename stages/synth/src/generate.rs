//! Generating a whole AVS-Synth dataset into the data layout.

use std::path::Path;

use anyhow::{Context, Result};
use indicatif::{ParallelProgressIterator, ProgressBar, ProgressStyle};
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
use crate::scene::{sample_scene, Scene};

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
    let mut scenes = Vec::new();
    for (split, kind, k, count) in plan(cfg) {
        for i in 0..count {
            let id = format!("synth-{split}-{kind}-{i:05}");
            let key = hash_parts([cfg.seed.to_le_bytes().as_slice(), id.as_bytes()]);
            // The first 16 hex digits of the hash: a per-scene seed independent of scheduling order.
            let seed = u64::from_str_radix(&key[..16], 16).unwrap_or(cfg.seed);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            scenes.push(sample_scene(&mut rng, cfg, id, &split_name(split, kind), k));
        }
    }
    scenes
}

fn progress(n: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(n as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {per_sec}",
    ) {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// Writes one clip (video or extracted files); errors name the clip.
fn write_clip(cfg: &SynthConfig, layout: &Layout, scene: &Scene, mode: OutputLayout) -> Result<()> {
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
            let centre = cfg.clip_seconds / 2.0;
            // Same frame as the video's frame nearest the centre: frame times are multiples of 1/fps.
            let t = (centre * f64::from(cfg.fps)).round() / f64::from(cfg.fps);
            let img = render_frame(scene, t, cfg.clip_seconds);
            let frame_path = layout.frame(&id);
            atomic::write_with(&frame_path, |w| {
                let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(w, 92);
                img.write_with_encoder(encoder)?;
                Ok(())
            })?;
            let half = (AUDIO_WINDOW_SECONDS / 2.0 * f64::from(cfg.sample_rate)).round() as usize;
            let mid = audio.len() / 2;
            let window = &audio[mid.saturating_sub(half)..(mid + half).min(audio.len())];
            atomic::write_via_path(&layout.audio(&id), |tmp| {
                write_wav(tmp, window, cfg.sample_rate)
            })
        }
    }
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
    let bar = progress(scenes.len(), "synth");
    scenes
        .par_iter()
        .progress_with(bar.clone())
        .try_for_each(|scene| write_clip(cfg, layout, scene, mode))?;
    bar.finish_and_clear();

    let manifest = Manifest {
        base: layout.dataset_dir(),
        rows: scenes
            .iter()
            .map(|s| {
                Ok(ManifestRow {
                    id: SampleId::parse(&s.id)?,
                    video: match mode {
                        OutputLayout::Video => Some(format!("videos/{}/{}.mp4", s.split, s.id)),
                        OutputLayout::Extracted => None,
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
    Ok(summarise(&scenes))
}

fn summarise(scenes: &[Scene]) -> Summary {
    let mut s = Summary {
        clips: scenes.len(),
        sounding_objects: 0,
        silent_objects: 0,
        same_class_scenes: 0,
    };
    for scene in scenes {
        let labels = scene.labels();
        s.sounding_objects += labels.len();
        s.silent_objects += scene.objects.len() - labels.len();
        if scene
            .objects
            .iter()
            .any(|o| !o.sounding && labels.contains(&o.class_name))
        {
            s.same_class_scenes += 1;
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
            assert!(row.video.is_none());
        }
        let gt: Vec<GroundTruthEntry> =
            serde_json::from_slice(&std::fs::read(layout.ground_truth("test_duet")).unwrap())
                .unwrap();
        assert_eq!(gt.len(), 1);
        assert_eq!(gt[0].bbox.len(), 2);
        assert_eq!(gt[0].classes.len(), 2);
    }
}
