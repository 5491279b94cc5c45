//! Which clips stage three reads, checked before the first step.
//!
//! A training sample joins a manifest row (its frame and WAV under `extract/`) with its text vectors from
//! `embed/sample_text.parquet`: K foreground vectors (K = number of labels) and one background vector, all of
//! one width D. Every problem names the sample and the file; with `skip_bad_samples` the sample is left out
//! and counted instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use oassl_pipeline::manifest::{Manifest, ManifestRow};
use oassl_pipeline::tables::SampleText;
use oassl_pipeline::{Layout, SampleId};

/// One training clip with everything the loader needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSample {
    /// The clip.
    pub id: SampleId,
    /// Its frame.
    pub frame: PathBuf,
    /// Its WAV.
    pub audio: PathBuf,
    /// K foreground text vectors of D values.
    pub foreground: Vec<Vec<f32>>,
    /// The background text vector.
    pub background: Vec<f32>,
}

/// A sample that was left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedSample {
    /// The clip.
    pub id: SampleId,
    /// What is wrong, naming the file.
    pub reason: String,
}

/// The training set: samples, the text width D and the samples left out.
#[derive(Debug, Clone)]
pub struct TrainSet {
    /// Usable samples in manifest order.
    pub samples: Vec<TrainSample>,
    /// Width D of the text vectors.
    pub text_dim: usize,
    /// Samples left out (only with `skip_bad_samples`).
    pub skipped: Vec<SkippedSample>,
}

/// Checks that a frame and a WAV exist and can be opened (header only).
pub fn check_media(frame: &Path, audio: &Path) -> std::result::Result<(), String> {
    if !frame.is_file() {
        return Err(format!(
            "frame {} is missing (run `make captions` / stage one)",
            frame.display()
        ));
    }
    if let Err(e) = image::image_dimensions(frame) {
        return Err(format!("frame {} cannot be read: {e}", frame.display()));
    }
    if !audio.is_file() {
        return Err(format!(
            "audio {} is missing (run `make captions` / stage one)",
            audio.display()
        ));
    }
    if let Err(e) = hound::WavReader::open(audio) {
        return Err(format!(
            "audio {} is not a readable WAV: {e}",
            audio.display()
        ));
    }
    Ok(())
}

/// Joins the manifest rows of `splits` with their text vectors.
pub fn training_set(
    layout: &Layout,
    manifest: &Manifest,
    splits: &[String],
    texts: &[SampleText],
    sample_text_path: &Path,
    skip_bad: bool,
) -> Result<TrainSet> {
    let by_id: HashMap<&SampleId, &SampleText> = texts.iter().map(|t| (&t.sample_id, t)).collect();
    let rows: Vec<_> = manifest
        .rows
        .iter()
        .filter(|r| splits.contains(&r.split))
        .collect();
    if rows.is_empty() {
        bail!(
            "manifest {} has no rows in splits {:?}",
            layout.manifest().display(),
            splits
        );
    }
    let mut text_dim: Option<usize> = None;
    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    for row in rows {
        let checked = check_sample(row, &by_id, text_dim, layout, sample_text_path);
        match checked {
            Ok(s) => {
                text_dim.get_or_insert(s.background.len());
                samples.push(s);
            }
            Err(reason) if skip_bad => {
                tracing::warn!("train: skipping sample {}: {reason}", row.id);
                skipped.push(SkippedSample { id: row.id.clone(), reason });
            }
            Err(reason) => bail!(
                "sample {}: {reason} (set `[train] skip_bad_samples = true` to leave such samples out)",
                row.id
            ),
        }
    }
    let Some(text_dim) = text_dim else {
        bail!("no usable training samples ({} left out)", skipped.len());
    };
    Ok(TrainSet {
        samples,
        text_dim,
        skipped,
    })
}

/// One manifest row joined with its text vectors and checked; the error names the file.
fn check_sample(
    row: &ManifestRow,
    by_id: &HashMap<&SampleId, &SampleText>,
    text_dim: Option<usize>,
    layout: &Layout,
    sample_text_path: &Path,
) -> std::result::Result<TrainSample, String> {
    let frame = layout.frame(&row.id);
    let audio = layout.audio(&row.id);
    let text = by_id.get(&row.id).ok_or_else(|| {
        format!(
            "no captions/embeddings in {} (run `make captions` and `make embed`)",
            sample_text_path.display()
        )
    })?;
    if text.foreground.len() != row.labels.len() {
        return Err(format!(
            "{} has K = {} foreground vectors but the manifest lists {} labels",
            sample_text_path.display(),
            text.foreground.len(),
            row.labels.len()
        ));
    }
    let d = text.background.len();
    if let Some(expected) = text_dim {
        if d != expected || text.foreground.iter().any(|f| f.len() != d) {
            return Err(format!(
                "{}: text vectors of width {d}, expected {expected} like the other samples",
                sample_text_path.display()
            ));
        }
    }
    if text
        .foreground
        .iter()
        .chain(std::iter::once(&text.background))
        .any(|v| v.iter().any(|x| !x.is_finite()))
    {
        return Err(format!(
            "{}: non-finite text vector values",
            sample_text_path.display()
        ));
    }
    check_media(&frame, &audio)?;
    Ok(TrainSample {
        id: row.id.clone(),
        frame,
        audio,
        foreground: text.foreground.clone(),
        background: text.background.clone(),
    })
}
