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

/// Checks that a frame and a WAV exist and decode to the end (a truncated file must fail here, before the first
/// step, not at the step that loads it); returns the WAV's sample rate.
pub fn check_media(frame: &Path, audio: &Path) -> std::result::Result<u32, String> {
    if !frame.is_file() {
        return Err(format!(
            "frame {} is missing (run `make captions` / stage one)",
            frame.display()
        ));
    }
    let bytes = std::fs::read(frame)
        .map_err(|e| format!("frame {} cannot be read: {e}", frame.display()))?;
    if let Err(e) = image::load_from_memory(&bytes) {
        return Err(format!("frame {} cannot be decoded: {e}", frame.display()));
    }
    if is_cut_jpeg(&bytes) {
        return Err(format!(
            "frame {} is a truncated JPEG (no end-of-image marker; the decoder would fill the rest with grey)",
            frame.display()
        ));
    }
    if !audio.is_file() {
        return Err(format!(
            "audio {} is missing (run `make captions` / stage one)",
            audio.display()
        ));
    }
    match crate::data::audio_clip::read_wav(audio) {
        Ok((_, rate)) => Ok(rate),
        Err(e) => Err(format!(
            "audio {} is not a readable WAV: {e:#}",
            audio.display()
        )),
    }
}

/// A JPEG whose data stops before its end-of-image marker (`FF D9`, possibly followed by padding). JPEG decoders
/// accept such a file and paint the missing rows grey, so decoding alone does not find it.
fn is_cut_jpeg(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    !bytes[..end].ends_with(&[0xFF, 0xD9])
}

/// The sample rate most WAVs share, and the reason to refuse each sample at another rate: one batch's
/// spectrograms must have one shape.
fn rate_outliers(
    rates: &[(usize, u32)],
    audio_of: impl Fn(usize) -> PathBuf,
) -> Vec<(usize, String)> {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for (_, r) in rates {
        *counts.entry(*r).or_default() += 1;
    }
    let Some(common) = counts
        .iter()
        .max_by_key(|(rate, n)| (**n, std::cmp::Reverse(**rate)))
        .map(|(r, _)| *r)
    else {
        return Vec::new();
    };
    rates
        .iter()
        .filter(|(_, r)| *r != common)
        .map(|(i, r)| {
            (
                *i,
                format!(
                    "audio {} is at {r} Hz but the other training WAVs are at {common} Hz (re-extract it with \
                     stage one)",
                    audio_of(*i).display()
                ),
            )
        })
        .collect()
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
    let mut by_id: HashMap<&SampleId, &SampleText> = HashMap::with_capacity(texts.len());
    for t in texts {
        if by_id.insert(&t.sample_id, t).is_some() {
            // Which of two rows the model would learn from is not ours to guess.
            bail!(
                "{}: sample {} has more than one row; rerun `make embed` to rewrite the table",
                sample_text_path.display(),
                t.sample_id
            );
        }
    }
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
    if let Some(pair) = rows.iter().find(|r| r.videos.len() > 1) {
        // A pair's frame is a mosaic the training crops would cut through; NoPrior trains on single clips and
        // composes them itself.
        bail!(
            "sample {} (split {}) is a pair of {} videos: pair samples are for `oassl eval`; train on single \
             clips, composed with `[train] compose = 2` as NoPrior does",
            pair.id,
            pair.split,
            pair.videos.len()
        );
    }
    let mut text_dim: Option<usize> = None;
    let mut checked: Vec<(&ManifestRow, Checked)> = Vec::new();
    for row in rows {
        let sample = check_sample(row, &by_id, text_dim, layout, sample_text_path);
        if let Ok((s, _)) = &sample {
            text_dim.get_or_insert(s.background.len());
        }
        checked.push((row, sample));
    }
    let rates: Vec<(usize, u32)> = checked
        .iter()
        .enumerate()
        .filter_map(|(i, (_, c))| c.as_ref().ok().map(|(_, rate)| (i, *rate)))
        .collect();
    for (i, reason) in rate_outliers(&rates, |i| layout.audio(&checked[i].0.id)) {
        checked[i].1 = Err(reason);
    }
    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    for (row, sample) in checked {
        match sample {
            Ok((s, _)) => samples.push(s),
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

/// A checked sample with its WAV's sample rate, or what is wrong with it.
type Checked = std::result::Result<(TrainSample, u32), String>;

/// One manifest row joined with its text vectors and checked; the error names the file.
fn check_sample(
    row: &ManifestRow,
    by_id: &HashMap<&SampleId, &SampleText>,
    text_dim: Option<usize>,
    layout: &Layout,
    sample_text_path: &Path,
) -> Checked {
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
    let rate = check_media(&frame, &audio)?;
    let sample = TrainSample {
        id: row.id.clone(),
        frame,
        audio,
        foreground: text.foreground.clone(),
        background: text.background.clone(),
    };
    Ok((sample, rate))
}
