//! The ground truth of one evaluation split: AVS-Synth's `dataset/ground_truth/<split>.json`, or the benchmark
//! annotation file `[eval.ground_truth.<split>]` names (VGG-SS, VGGSound-Duet pairs, MUSIC, Flickr).
//!
//! A benchmark file annotates the whole test list while the manifest holds the clips found on disk, so only the
//! annotated samples that are clips of the split are kept (the others are counted in the log). A pair sample
//! (VGGSound-Duet: one source per frame) is a vertical mosaic of its frames, as stage one writes it; every sample
//! of a split must have the same number of frames, since they are batched together.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use oassl_eval::{load_annotations, Annotation, AnnotationFormat, MosaicAxis, Protocol};
use oassl_pipeline::config::EvalConfig;
use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::Layout;

/// A split's annotations and where they came from.
#[derive(Debug)]
pub struct SplitTruth {
    /// The samples scored, in the file's order.
    pub annotations: Vec<Annotation>,
    /// The file's format.
    pub format: AnnotationFormat,
    /// The annotation file read.
    pub file: PathBuf,
    /// Frames per sample: 1, or the pair's frames stacked vertically.
    pub tiles: usize,
}

/// The annotation file and format of `split`.
fn source(cfg: &EvalConfig, layout: &Layout, split: &str) -> Result<(PathBuf, AnnotationFormat)> {
    let Some(gt) = cfg.ground_truth.get(split) else {
        return Ok((layout.ground_truth(split), AnnotationFormat::AvsSynth));
    };
    let Some(format) = AnnotationFormat::from_name(&gt.format, gt.boxes.clone()) else {
        bail!(
            "[eval] ground_truth.{split}: format {:?} cannot be read",
            gt.format
        );
    };
    Ok((gt.path.clone(), format))
}

/// Keeps the annotated samples that are clips of `split` in the manifest.
fn clips_of_split(
    annotations: Vec<Annotation>,
    layout: &Layout,
    split: &str,
) -> Result<Vec<Annotation>> {
    let manifest = Manifest::read(&layout.manifest())?;
    let clips: HashSet<&str> = manifest
        .rows
        .iter()
        .filter(|r| r.split == split)
        .map(|r| r.id.as_str())
        .collect();
    let total = annotations.len();
    let kept: Vec<Annotation> = annotations
        .into_iter()
        .filter(|a| clips.contains(a.id.as_str()))
        .collect();
    if kept.len() < total {
        tracing::info!(
            "eval: split {split}: {} of {total} annotated samples are not clips of the split in the manifest; \
             scoring the other {}",
            total - kept.len(),
            kept.len()
        );
    }
    Ok(kept)
}

/// Frames per sample, the same for every sample of the split.
fn uniform_tiles(annotations: &[Annotation], split: &str) -> Result<usize> {
    let first = annotations.first().map_or(1, Annotation::tiles);
    if let Some(other) = annotations.iter().find(|a| a.tiles() != first) {
        bail!(
            "[eval] split {split} mixes samples of {first} frame(s) ({}) and of {} ({}): put pairs and single clips \
             in separate splits",
            annotations[0].id,
            other.tiles(),
            other.id
        );
    }
    Ok(first)
}

/// Loads the ground truth of `split`, checked against the protocol.
pub fn load(
    cfg: &EvalConfig,
    layout: &Layout,
    split: &str,
    protocol: &Protocol,
) -> Result<SplitTruth> {
    let (file, format) = source(cfg, layout, split)?;
    if !file.exists() {
        match cfg.ground_truth.contains_key(split) {
            true => bail!("[eval] ground_truth.{split}: {} not found", file.display()),
            false => bail!(
                "ground truth {} not found: run `make data` first, or name the split's annotation file in \
                 [eval.ground_truth.{split}]",
                file.display()
            ),
        }
    }
    let mut annotations = load_annotations(&file, &format)
        .with_context(|| format!("loading ground truth {}", file.display()))?;
    if cfg.ground_truth.contains_key(split) {
        annotations = clips_of_split(annotations, layout, split)?;
    }
    if annotations.is_empty() {
        bail!(
            "[eval] splits: {split} has no samples in {}; remove it from the list or regenerate the data",
            file.display()
        );
    }
    let tiles = uniform_tiles(&annotations, split)?;
    if tiles > 1 && protocol.mosaic != MosaicAxis::Vertical {
        bail!(
            "[eval] protocol {} lays a pair's frames side by side, but stage one stacks them vertically (split \
             {split}): use oassl or noprior",
            protocol.name
        );
    }
    Ok(SplitTruth {
        annotations,
        format,
        file,
        tiles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oassl_eval::annotation::source;
    use oassl_eval::{BoxConvention, FrameLayout};

    fn sample(id: &str, sources: usize, layout: FrameLayout) -> Annotation {
        Annotation {
            id: id.into(),
            sources: (0..sources)
                .map(|_| source(None, vec![[0.1, 0.1, 0.4, 0.4]], BoxConvention::Xyxy01))
                .collect(),
            convention: BoxConvention::Xyxy01,
            layout,
            silent_same_class: false,
        }
    }

    #[test]
    fn a_split_of_pairs_has_two_frames_and_mixing_them_with_clips_is_refused() {
        let pairs = [
            sample("a+b", 2, FrameLayout::OnePerSource),
            sample("c+d", 2, FrameLayout::OnePerSource),
        ];
        assert_eq!(uniform_tiles(&pairs, "test_pairs").unwrap(), 2);
        // A two-source clip in one frame (MUSIC-Duet, AVS-Synth duets) is one frame.
        let duets = [
            sample("x", 2, FrameLayout::Shared),
            sample("y", 1, FrameLayout::Shared),
        ];
        assert_eq!(uniform_tiles(&duets, "test_duet").unwrap(), 1);
        let mixed = [
            sample("x", 1, FrameLayout::Shared),
            sample("a+b", 2, FrameLayout::OnePerSource),
        ];
        let err = uniform_tiles(&mixed, "test").unwrap_err().to_string();
        assert!(err.contains("split test") && err.contains("a+b"), "{err}");
    }

    #[test]
    fn every_format_the_config_accepts_is_an_annotation_format() {
        for name in oassl_pipeline::config::GROUND_TRUTH_FORMATS {
            let boxes = (name == "vggsound-pairs").then(|| PathBuf::from("vggss.json"));
            let format = AnnotationFormat::from_name(name, boxes).unwrap();
            assert_eq!(format.name(), name);
        }
        assert!(AnnotationFormat::from_name("vggsound-pairs", None).is_none());
        assert!(AnnotationFormat::from_name("vggss", Some(PathBuf::from("b.json"))).is_none());
    }

    #[test]
    fn a_named_annotation_file_that_is_missing_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let mut cfg = EvalConfig {
            splits: vec!["test".into()],
            ..EvalConfig::default()
        };
        let protocol = Protocol::by_name("oassl").unwrap();
        let err = load(&cfg, &layout, "test", &protocol)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("make data") && err.contains("ground_truth"),
            "{err}"
        );
        cfg.ground_truth.insert(
            "test".into(),
            oassl_pipeline::config::GroundTruthFile {
                format: "vggss".into(),
                path: dir.path().join("vggss.json"),
                boxes: None,
            },
        );
        let err = load(&cfg, &layout, "test", &protocol)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ground_truth.test") && err.contains("vggss.json"),
            "{err}"
        );
    }
}
