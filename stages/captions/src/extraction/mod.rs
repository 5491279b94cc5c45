//! Extraction: per clip, the frame at the centre (or the manifest timestamp) as a JPEG at the training size, and
//! the mono audio window around it as a WAV at the configured rate.
//!
//! Outputs are cached: a stamp file per clip (`extract/stamps/<id>.json`) records the key of what produced them
//! (video path, size, mtime, timestamp, parameters) and the blake3 of the frame and the WAV written; a rerun
//! re-extracts a clip only when that key changed or an output is missing or no longer has its recorded hash. The
//! video is identified by size and mtime rather than by content: hashing every source video on every check
//! would read the whole dataset, while the outputs are small. Stamps without output hashes (written by earlier
//! versions) count as stale, so such clips are extracted once more. Clips run in
//! parallel on a rayon pool, each worker opening its own demuxer and decoders. Built without the `ffmpeg`
//! feature, only clips that are already extracted (frame and audio present) can be used.
//!
//! A pair sample (a manifest row naming several videos) is extracted clip by clip exactly as a single clip, then
//! written as one sample: the frames stacked into a vertical mosaic and the audio windows summed (see
//! [`pair_mosaic`]). Its stamp key covers every video, so replacing either re-extracts the pair; an error names
//! the video it came from.

#[cfg(feature = "ffmpeg")]
pub mod decode;
pub mod pair_mosaic;

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use oassl_pipeline::atomic;
use oassl_pipeline::config::CaptionsConfig;
use oassl_pipeline::fingerprint::{hash_file, hash_json};
use oassl_pipeline::manifest::{Manifest, ManifestRow};
use oassl_pipeline::{Layout, SampleId};

/// Version of the extraction code's output; part of every cache key.
const EXTRACTOR_VERSION: u32 = 1;

/// What extraction produces, from `[captions]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractParams {
    pub frame_size: u32,
    pub audio_rate: u32,
    pub audio_seconds: f64,
    pub jpeg_quality: u8,
}

impl ExtractParams {
    pub fn from_config(cfg: &CaptionsConfig) -> Self {
        Self {
            frame_size: cfg.frame_size,
            audio_rate: cfg.audio_rate,
            audio_seconds: cfg.audio_seconds,
            jpeg_quality: cfg.jpeg_quality,
        }
    }
}

/// Why a clip could not be extracted; the text lands in the row's `error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExtractError {
    #[error("video file not found: {0}")]
    Missing(String),
    #[error("cannot open video: {0}")]
    Open(String),
    #[error("no video stream")]
    NoVideo,
    #[error("no audio stream")]
    NoAudio,
    #[error("no decodable video frame")]
    NoFrame,
    #[error("no decodable audio frame")]
    NoAudioFrames,
    #[error("clip too short: {0}")]
    TooShort(String),
    #[error("timestamp {0} s is past the clip end ({1:.3} s)")]
    Timestamp(f64, f64),
    #[error("decoding failed: {0}")]
    Decode(String),
    #[error("no video in the manifest and no extracted frame and audio")]
    NothingToUse,
    #[error("this build has no FFmpeg support (feature `ffmpeg`); extract on a host that has it")]
    NoFfmpeg,
    #[error("writing outputs: {0}")]
    Write(String),
    /// An error of one video of a pair sample, naming that video.
    #[error("{0}: {1}")]
    InClip(String, Box<ExtractError>),
}

/// One sample to extract.
#[derive(Debug, Clone)]
pub struct ExtractJob {
    pub id: SampleId,
    /// None: written already extracted; one: a clip; several: a pair sample, in mosaic order (top first).
    pub videos: Vec<PathBuf>,
    /// The frame time in every video; `None` = each clip's centre.
    pub timestamp: Option<f64>,
}

impl ExtractJob {
    /// The job of one manifest row, its video paths resolved against the manifest's folder.
    pub fn of_row(manifest: &Manifest, row: &ManifestRow) -> Self {
        Self {
            id: row.id.clone(),
            videos: manifest.video_paths(row),
            timestamp: row.timestamp,
        }
    }
}

/// What happened to one clip.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtractOutcome {
    /// Extracted now (`cached == false`) or earlier with the same key.
    Ready {
        cached: bool,
    },
    Failed(ExtractError),
}

#[derive(Debug, Serialize, Deserialize)]
struct Stamp {
    key: String,
    #[serde(default)]
    outputs: Option<OutputHashes>,
}

/// Content hashes of a clip's outputs when they were written.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct OutputHashes {
    frame: String,
    audio: String,
}

impl OutputHashes {
    /// Hashes the clip's frame and audio as they are now; `None` when either is missing or unreadable.
    fn of(layout: &Layout, id: &SampleId) -> Option<Self> {
        Some(Self {
            frame: hash_file(&layout.frame(id)).ok()?,
            audio: hash_file(&layout.audio(id)).ok()?,
        })
    }
}

fn stamp_path(layout: &Layout, id: &SampleId) -> PathBuf {
    layout
        .extract_dir()
        .join("stamps")
        .join(format!("{id}.json"))
}

/// A video's identity in a cache key: path, size and mtime (nanoseconds, as text).
fn video_identity(video: &Path) -> Result<(String, u64, String), ExtractError> {
    let meta =
        std::fs::metadata(video).map_err(|_| ExtractError::Missing(video.display().to_string()))?;
    if !meta.is_file() {
        return Err(ExtractError::Missing(video.display().to_string()));
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok((
        video.to_string_lossy().into_owned(),
        meta.len(),
        mtime.to_string(),
    ))
}

/// The cache key of a sample's outputs: every video's identity, timestamp and parameters.
fn cache_key(
    videos: &[PathBuf],
    timestamp: Option<f64>,
    params: &ExtractParams,
) -> Result<String, ExtractError> {
    let ids = videos
        .iter()
        .map(|v| video_identity(v))
        .collect::<Result<Vec<_>, _>>()?;
    let key = match &ids[..] {
        // A single clip keeps the key it always had, so existing caches stay valid.
        [(path, len, mtime)] => {
            hash_json(&(EXTRACTOR_VERSION, path, len, mtime, timestamp, params))
        }
        _ => hash_json(&(EXTRACTOR_VERSION, "pair-mosaic", &ids, timestamp, params)),
    };
    key.map_err(|e| ExtractError::Write(e.to_string()))
}

/// Why a clip's outputs cannot be reused for `key`, or `None` when they can.
fn cache_miss(layout: &Layout, id: &SampleId, key: &str) -> Option<&'static str> {
    let Some(stamp) = std::fs::read(stamp_path(layout, id))
        .ok()
        .and_then(|b| serde_json::from_slice::<Stamp>(&b).ok())
    else {
        return Some("never extracted");
    };
    if stamp.key != key {
        return Some("video or parameters changed");
    }
    let Some(recorded) = stamp.outputs else {
        return Some("stamp has no output hashes");
    };
    match OutputHashes::of(layout, id) {
        None => Some("extracted frame or audio missing"),
        Some(now) if now != recorded => Some("extracted frame or audio changed"),
        Some(_) => None,
    }
}

/// Why a clip would be extracted again (or fail) on the next run, or `None` when its outputs are current; the
/// check of an up-to-date stage, which must not trust its lock alone when extracted files went missing or a
/// video was replaced.
pub fn stale_reason(job: &ExtractJob, layout: &Layout, params: &ExtractParams) -> Option<String> {
    if job.videos.is_empty() {
        return (!(layout.frame(&job.id).is_file() && layout.audio(&job.id).is_file()))
            .then(|| format!("{}: extracted frame or audio missing", job.id));
    }
    match cache_key(&job.videos, job.timestamp, params) {
        Err(e) => Some(format!("{}: {e}", job.id)),
        Ok(key) => cache_miss(layout, &job.id, &key).map(|why| format!("{}: {why}", job.id)),
    }
}

/// Extracts one clip (or finds it cached).
pub fn extract_one(
    job: &ExtractJob,
    layout: &Layout,
    params: &ExtractParams,
    force: bool,
) -> ExtractOutcome {
    if job.videos.is_empty() {
        // Written already extracted (AVS-Synth `--layout extracted`, or a pre-extracted dataset).
        return if layout.frame(&job.id).is_file() && layout.audio(&job.id).is_file() {
            ExtractOutcome::Ready { cached: true }
        } else {
            ExtractOutcome::Failed(ExtractError::NothingToUse)
        };
    }
    let key = match cache_key(&job.videos, job.timestamp, params) {
        Ok(k) => k,
        Err(e) => return ExtractOutcome::Failed(e),
    };
    if !force && cache_miss(layout, &job.id, &key).is_none() {
        return ExtractOutcome::Ready { cached: true };
    }
    if let Err(e) = extract_fresh(job, layout, params) {
        return ExtractOutcome::Failed(e);
    }
    let Some(outputs) = OutputHashes::of(layout, &job.id) else {
        return ExtractOutcome::Failed(ExtractError::Write(
            "outputs vanished right after writing".into(),
        ));
    };
    let stamp = Stamp {
        key,
        outputs: Some(outputs),
    };
    match atomic::write_json(&stamp_path(layout, &job.id), &stamp) {
        Ok(()) => ExtractOutcome::Ready { cached: false },
        Err(e) => ExtractOutcome::Failed(ExtractError::Write(format!("{e:#}"))),
    }
}

#[cfg(feature = "ffmpeg")]
fn extract_fresh(
    job: &ExtractJob,
    layout: &Layout,
    params: &ExtractParams,
) -> Result<(), ExtractError> {
    let media = match &job.videos[..] {
        [video] => decode::decode_clip(video, job.timestamp, params)?,
        videos => decode_pair(videos, job.timestamp, params)?,
    };
    write_outputs(layout, &job.id, &media.frame, &media.audio, params)
        .map_err(|e| ExtractError::Write(format!("{e:#}")))
}

/// A pair sample's mosaic frame and mixed audio, each clip decoded as a single clip is.
#[cfg(feature = "ffmpeg")]
fn decode_pair(
    videos: &[PathBuf],
    timestamp: Option<f64>,
    params: &ExtractParams,
) -> Result<decode::ClipMedia, ExtractError> {
    let clips = videos
        .iter()
        .map(|v| {
            decode::decode_clip(v, timestamp, params)
                .map_err(|e| ExtractError::InClip(v.display().to_string(), Box::new(e)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (frames, waves): (Vec<_>, Vec<_>) = clips.into_iter().map(|c| (c.frame, c.audio)).unzip();
    let frame = pair_mosaic::stack_vertically(&frames)
        .ok_or_else(|| ExtractError::Decode("pair frames differ in size".into()))?;
    let audio = pair_mosaic::mix(&waves)
        .ok_or_else(|| ExtractError::Decode("pair audio windows differ in length".into()))?;
    Ok(decode::ClipMedia { frame, audio })
}

#[cfg(not(feature = "ffmpeg"))]
fn extract_fresh(
    _job: &ExtractJob,
    _layout: &Layout,
    _params: &ExtractParams,
) -> Result<(), ExtractError> {
    Err(ExtractError::NoFfmpeg)
}

/// Writes a clip's frame JPEG and audio WAV (16-bit PCM), each atomically. Samples outside [-1, 1] (a pair's
/// summed audio can leave it) are clamped, so they saturate instead of wrapping around in 16 bits.
pub fn write_outputs(
    layout: &Layout,
    id: &SampleId,
    frame: &image::RgbImage,
    audio: &[f32],
    params: &ExtractParams,
) -> Result<()> {
    atomic::write_with(&layout.frame(id), |w| {
        frame
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                w,
                params.jpeg_quality,
            ))
            .context("encoding JPEG")
    })?;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: params.audio_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    atomic::write_with(&layout.audio(id), |w| {
        let mut writer = hound::WavWriter::new(w, spec).context("starting WAV")?;
        for &s in audio {
            let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            writer.write_sample(v)?;
        }
        writer.finalize().context("finishing WAV")
    })
}

/// The first clip (in job order) whose outputs are not current, with the reason; checked on a pool of `threads`
/// workers (0 = one per core).
pub fn first_stale(
    jobs: &[ExtractJob],
    layout: &Layout,
    params: &ExtractParams,
    threads: usize,
) -> Result<Option<String>> {
    Ok(worker_pool(threads)?.install(|| {
        jobs.par_iter()
            .find_map_first(|job| stale_reason(job, layout, params))
    }))
}

/// The extraction workers: `threads` of them, 0 = one per core.
fn worker_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the extraction workers")
}

/// Extracts every job on a pool of `threads` workers (0 = one per core), in job order.
pub fn extract_all(
    jobs: &[ExtractJob],
    layout: &Layout,
    params: &ExtractParams,
    threads: usize,
    force: bool,
    bar: &ProgressBar,
) -> Result<Vec<ExtractOutcome>> {
    #[cfg(feature = "ffmpeg")]
    decode::init();
    Ok(worker_pool(threads)?.install(|| {
        jobs.par_iter()
            .map(|job| {
                let out = extract_one(job, layout, params, force);
                bar.inc(1);
                out
            })
            .collect()
    }))
}
