//! The decoded-data cache: every training clip decoded once per set of inputs and parameters, so that an epoch
//! only crops, flips and copies.
//!
//! Layout under `train/decoded/` (a flat format, memory-mapped for reading):
//!
//! ```text
//! frames.u8          each clip's frame after the training resize (shorter side R = round(S·246/224),
//!                    Catmull-Rom), u8 RGB, row-major H × W × 3, clips one after the other
//! spectrograms.f32   each clip's normalised log spectrogram of the first `audio_seconds`, f32 little-endian,
//!                    F × T per clip (one shape for all clips)
//! index.json         [`CacheIndex`]: format, key, per-clip offsets and sides, size and BLAKE3 hash of each file;
//!                    written last, so a cache without it is incomplete
//! ```
//!
//! The key hashes the format version, R, the audio window and every clip's id and frame/WAV content hash: any
//! change rebuilds the cache, nothing else does. On opening, each data file's size and hash are checked against
//! the index; a file that fails is rebuilt with a warning naming it, never trusted. Text vectors are not cached:
//! they come from one Parquet table read once per run.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use image::imageops::{self, FilterType};
use image::RgbImage;
use memmap2::Mmap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use oassl_pipeline::atomic;
use oassl_pipeline::fingerprint::hash_parts;

use super::audio_clip::{audio_input, AudioWindow};
use super::frames::read_frame;
use super::samples::TrainSample;

/// Version of the cache layout; part of the key.
const FORMAT: u32 = 1;
/// Clips decoded per parallel chunk while building (bounds memory, keeps the file order).
const BUILD_CHUNK: usize = 256;

/// What the cached data depends on besides the clips.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheParams {
    /// Shorter side after the training resize.
    pub resize: u32,
    /// Side of the crops that will be cut from it (a resized side never falls below it).
    pub crop: u32,
    /// Seconds of audio from the start of each WAV.
    pub audio_seconds: f64,
}

/// One clip's place in the data files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The clip.
    pub id: String,
    /// Byte offset of its frame in `frames.u8`.
    pub frame_offset: u64,
    /// Frame height after the resize.
    pub height: u32,
    /// Frame width after the resize.
    pub width: u32,
}

/// Size and hash of one data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedFile {
    /// Bytes.
    pub size: u64,
    /// BLAKE3 of the contents.
    pub hash: String,
}

/// `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheIndex {
    /// Layout version.
    pub format: u32,
    /// Hash of the inputs and parameters the data was built from.
    pub key: String,
    /// F and T of every spectrogram.
    pub spec_shape: (usize, usize),
    /// Clips in training-set order.
    pub entries: Vec<CacheEntry>,
    /// `frames.u8`.
    pub frames: CachedFile,
    /// `spectrograms.f32`.
    pub spectrograms: CachedFile,
}

/// The cache, open for reading.
pub struct DecodedCache {
    index: CacheIndex,
    frames: Mmap,
    spectrograms: Mmap,
}

/// What opening the cache did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheState {
    /// The existing files were valid for these inputs.
    Reused,
    /// Built anew; the reason.
    Built(String),
}

impl DecodedCache {
    /// The cache key of `samples` (with their frame/WAV content hashes, in order) under `params`.
    pub fn key(content_hashes: &[(String, String, String)], params: &CacheParams) -> String {
        let head = format!(
            "decoded-cache v{FORMAT} resize {} crop {} audio {:?}",
            params.resize, params.crop, params.audio_seconds
        );
        let parts = content_hashes
            .iter()
            .flat_map(|(id, frame, wav)| [id.as_bytes(), frame.as_bytes(), wav.as_bytes()]);
        hash_parts(std::iter::once(head.as_bytes()).chain(parts))
    }

    /// Opens the cache under `dir` for `samples` (the key from [`DecodedCache::key`]), building it first when it
    /// is missing, built from other inputs, or damaged.
    pub fn open_or_build(
        dir: &Path,
        samples: &[TrainSample],
        key: &str,
        params: &CacheParams,
        workers: usize,
    ) -> Result<(Self, CacheState)> {
        let reason = match Self::open(dir, key) {
            Ok(Some(cache)) if cache.index.entries.len() == samples.len() => {
                return Ok((cache, CacheState::Reused))
            }
            Ok(Some(_)) => "its clip list differs".to_string(),
            Ok(None) => "none for these inputs".to_string(),
            Err(e) => {
                tracing::warn!("decoded cache: {e:#}; rebuilding it");
                format!("{e:#}")
            }
        };
        build(dir, samples, key, params, workers)?;
        match Self::open(dir, key)? {
            Some(cache) => Ok((cache, CacheState::Built(reason))),
            None => bail!(
                "decoded cache {} was just built but does not open",
                dir.display()
            ),
        }
    }

    /// Opens a valid cache with this key; `Ok(None)` when there is none (or one for other inputs), an error
    /// naming the file when a data file fails its size or hash check.
    pub fn open(dir: &Path, key: &str) -> Result<Option<Self>> {
        let index_path = dir.join("index.json");
        let bytes = match std::fs::read(&index_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", index_path.display())),
        };
        let Ok(index) = serde_json::from_slice::<CacheIndex>(&bytes) else {
            bail!("{} is not a cache index", index_path.display());
        };
        if index.format != FORMAT || index.key != key {
            return Ok(None);
        }
        let frames = map_checked(&dir.join("frames.u8"), &index.frames)?;
        let spectrograms = map_checked(&dir.join("spectrograms.f32"), &index.spectrograms)?;
        let cache = Self {
            index,
            frames,
            spectrograms,
        };
        cache.check_entries()?;
        Ok(Some(cache))
    }

    /// Every entry lies inside the data files (a valid hash of a file the index does not describe is still
    /// refused).
    fn check_entries(&self) -> Result<()> {
        let (f, t) = self.index.spec_shape;
        let spec_bytes = (self.index.entries.len() * f * t * 4) as u64;
        if spec_bytes != self.spectrograms.len() as u64 {
            bail!(
                "spectrograms.f32 does not hold {} spectrograms of {f}x{t}",
                self.index.entries.len()
            );
        }
        for e in &self.index.entries {
            let end = e.frame_offset + u64::from(e.height) * u64::from(e.width) * 3;
            if end > self.frames.len() as u64 {
                bail!("frames.u8 is too short for clip {}", e.id);
            }
        }
        Ok(())
    }

    /// Number of clips.
    pub fn len(&self) -> usize {
        self.index.entries.len()
    }

    /// True when the cache holds no clip.
    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }

    /// F and T of every spectrogram.
    pub fn spec_shape(&self) -> (usize, usize) {
        self.index.spec_shape
    }

    /// Clip `i`'s resized frame: `(height, width, H × W × 3 bytes)`.
    pub fn frame(&self, i: usize) -> (usize, usize, &[u8]) {
        let e = &self.index.entries[i];
        let (h, w) = (e.height as usize, e.width as usize);
        let start = e.frame_offset as usize;
        (h, w, &self.frames[start..start + h * w * 3])
    }

    /// Clip `i`'s spectrogram, F × T f32 values as little-endian bytes.
    pub fn spectrogram_bytes(&self, i: usize) -> &[u8] {
        let (f, t) = self.index.spec_shape;
        let n = f * t * 4;
        &self.spectrograms[i * n..(i + 1) * n]
    }
}

/// Maps a data file after checking its size and hash against the index.
fn map_checked(path: &Path, expected: &CachedFile) -> Result<Mmap> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: the cache files are only ever replaced by rename, never written in place, so the mapped
    // contents cannot change under us while this process holds the stage lock.
    let map = unsafe { Mmap::map(&file) }.with_context(|| format!("mapping {}", path.display()))?;
    if map.len() as u64 != expected.size {
        bail!(
            "{} has {} bytes, its index says {}",
            path.display(),
            map.len(),
            expected.size
        );
    }
    let hash = blake3::hash(&map).to_hex().to_string();
    if hash != expected.hash {
        bail!("{} does not match the hash in its index", path.display());
    }
    Ok(map)
}

/// The training resize of a frame: shorter side to `resize`, no side below `crop` (Catmull-Rom, as the decode
/// path in [`super::frames`]).
pub fn train_resize(img: &RgbImage, resize: u32, crop: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let scale = resize as f64 / w.min(h).max(1) as f64;
    let nw = ((w as f64 * scale).round() as u32).max(crop);
    let nh = ((h as f64 * scale).round() as u32).max(crop);
    imageops::resize(img, nw, nh, FilterType::CatmullRom)
}

/// One clip decoded: resized frame and spectrogram bytes.
struct Decoded {
    frame: RgbImage,
    spec: Vec<f32>,
    spec_shape: (usize, usize),
}

fn decode(sample: &TrainSample, params: &CacheParams) -> Result<Decoded> {
    let img = read_frame(&sample.frame).with_context(|| format!("sample {}", sample.id))?;
    let audio = audio_input(&sample.audio, params.audio_seconds, AudioWindow::First)
        .with_context(|| format!("sample {}", sample.id))?;
    Ok(Decoded {
        frame: train_resize(&img, params.resize, params.crop),
        spec: audio.data,
        spec_shape: (audio.n_bins, audio.n_frames),
    })
}

/// Streams the data files in chunks decoded in parallel, then writes the index last.
fn build(
    dir: &Path,
    samples: &[TrainSample],
    key: &str,
    params: &CacheParams,
    workers: usize,
) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .context("starting the cache-building threads")?;
    let frames_path = dir.join("frames.u8");
    let spec_path = dir.join("spectrograms.f32");
    let mut entries = Vec::with_capacity(samples.len());
    let mut spec_shape: Option<(usize, usize)> = None;
    let (mut frame_hash, mut spec_hash) = (blake3::Hasher::new(), blake3::Hasher::new());
    let (mut frame_size, mut spec_size) = (0u64, 0u64);
    // Both data files are written through temporaries and renamed only when complete; the index that vouches
    // for them comes last.
    atomic::write_with(&spec_path, |spec_out| {
        atomic::write_with(&frames_path, |frames_out| {
            for chunk in samples.chunks(BUILD_CHUNK) {
                let decoded = pool.install(|| {
                    chunk
                        .par_iter()
                        .map(|s| decode(s, params))
                        .collect::<Result<Vec<_>>>()
                })?;
                for (sample, d) in chunk.iter().zip(decoded) {
                    let shape = *spec_shape.get_or_insert(d.spec_shape);
                    if d.spec_shape != shape {
                        bail!(
                            "sample {}: spectrogram of {} is {:?}, the other clips' {:?} (all WAVs need one \
                             sample rate)",
                            sample.id,
                            sample.audio.display(),
                            d.spec_shape,
                            shape
                        );
                    }
                    let (w, h) = d.frame.dimensions();
                    let frame = d.frame.as_raw();
                    frames_out.write_all(frame)?;
                    frame_hash.update(frame);
                    entries.push(CacheEntry {
                        id: sample.id.to_string(),
                        frame_offset: frame_size,
                        height: h,
                        width: w,
                    });
                    frame_size += frame.len() as u64;
                    let spec: Vec<u8> = d.spec.iter().flat_map(|v| v.to_le_bytes()).collect();
                    spec_out.write_all(&spec)?;
                    spec_hash.update(&spec);
                    spec_size += spec.len() as u64;
                }
            }
            Ok(())
        })
    })?;
    let index = CacheIndex {
        format: FORMAT,
        key: key.to_string(),
        spec_shape: spec_shape.unwrap_or((0, 0)),
        entries,
        frames: CachedFile {
            size: frame_size,
            hash: frame_hash.finalize().to_hex().to_string(),
        },
        spectrograms: CachedFile {
            size: spec_size,
            hash: spec_hash.finalize().to_hex().to_string(),
        },
    };
    atomic::write_json(&dir.join("index.json"), &index)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::batch::{BatchLoader, LoaderSettings, Source};
    use crate::data::FrameTransform;
    use oassl_pipeline::SampleId;
    use std::sync::Arc;

    /// `n` clips of different frame shapes with a 0.5 s WAV each.
    pub(crate) fn clips(dir: &Path, n: usize) -> Vec<TrainSample> {
        (0..n)
            .map(|i| {
                let id = SampleId::parse(&format!("clip-{i}")).unwrap();
                let frame = dir.join(format!("{i}.jpg"));
                let (w, h) = (40 + 8 * i as u32, 36 + 4 * i as u32);
                RgbImage::from_fn(w, h, |x, y| {
                    image::Rgb([(x * 5 + i as u32) as u8, (y * 7) as u8, ((x + y) * 3) as u8])
                })
                .save(&frame)
                .unwrap();
                let audio = dir.join(format!("{i}.wav"));
                let spec = hound::WavSpec {
                    channels: 1,
                    sample_rate: 8_000,
                    bits_per_sample: 16,
                    sample_format: hound::SampleFormat::Int,
                };
                let mut wav = hound::WavWriter::create(&audio, spec).unwrap();
                for k in 0..4_000 {
                    let v = ((k as f32 * 0.01 * (i + 1) as f32).sin() * 9000.0) as i16;
                    wav.write_sample(v).unwrap();
                }
                wav.finalize().unwrap();
                TrainSample {
                    id,
                    frame,
                    audio,
                    foreground: vec![vec![1.0, 0.0]],
                    background: vec![0.0, 1.0],
                }
            })
            .collect()
    }

    const PARAMS: CacheParams = CacheParams {
        resize: 35,
        crop: 32,
        audio_seconds: 0.5,
    };

    fn key_of(samples: &[TrainSample]) -> String {
        let content: Vec<_> = samples
            .iter()
            .map(|s| {
                let h = |p: &Path| {
                    blake3::hash(&std::fs::read(p).unwrap())
                        .to_hex()
                        .to_string()
                };
                (s.id.to_string(), h(&s.frame), h(&s.audio))
            })
            .collect();
        DecodedCache::key(&content, &PARAMS)
    }

    fn batches(samples: &[TrainSample], source: Source) -> Vec<(Vec<u8>, Vec<u8>)> {
        let plan = vec![(0, vec![0, 1, 2]), (1, vec![3, 1, 0]), (7, vec![2, 3, 1])];
        let settings = LoaderSettings {
            transform: FrameTransform::Train {
                resize: PARAMS.resize,
                crop: PARAMS.crop,
                flip: true,
            },
            audio_seconds: PARAMS.audio_seconds,
            seed: 9,
            workers: 2,
            prefetch: 1,
            compose: 1,
        };
        BatchLoader::spawn(Arc::new(samples.to_vec()), source, plan, settings)
            .unwrap()
            .map(|b| {
                let b = b.unwrap();
                (b.frames, b.spec)
            })
            .collect()
    }

    #[test]
    fn the_cache_gives_the_batches_the_decode_path_gives() {
        let dir = tempfile::tempdir().unwrap();
        let samples = clips(dir.path(), 4);
        let key = key_of(&samples);
        let (cache, state) =
            DecodedCache::open_or_build(&dir.path().join("c"), &samples, &key, &PARAMS, 2).unwrap();
        assert!(matches!(state, CacheState::Built(_)));
        let cached = batches(&samples, Source::Cache(Arc::new(cache)));
        let decoded = batches(&samples, Source::Files);
        assert_eq!(cached.len(), 3);
        assert!(cached == decoded, "cached and decoded batches differ");
        // Crops differ between steps: the draws are not constant.
        assert_ne!(cached[0].0, cached[2].0);
    }

    #[test]
    fn reused_when_unchanged_rebuilt_when_inputs_change_or_a_file_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("c");
        let mut samples = clips(dir.path(), 3);
        let key = key_of(&samples);
        let open = |samples: &[TrainSample], key: &str| {
            DecodedCache::open_or_build(&folder, samples, key, &PARAMS, 1)
                .unwrap()
                .1
        };
        assert!(matches!(open(&samples, &key), CacheState::Built(_)));
        assert_eq!(open(&samples, &key), CacheState::Reused);
        // Another frame: another key, rebuilt.
        RgbImage::from_pixel(50, 50, image::Rgb([9, 9, 9]))
            .save(&samples[1].frame)
            .unwrap();
        let changed = key_of(&samples);
        assert_ne!(changed, key);
        assert!(matches!(open(&samples, &changed), CacheState::Built(_)));
        let (cache, _) =
            DecodedCache::open_or_build(&folder, &samples, &changed, &PARAMS, 1).unwrap();
        assert_eq!(&cache.frame(1).2[..3], &[9, 9, 9]);
        drop(cache);
        // A flipped byte and a truncated file are caught by the hash and size checks and rebuilt.
        let frames = folder.join("frames.u8");
        let mut bytes = std::fs::read(&frames).unwrap();
        bytes[7] ^= 0xFF;
        std::fs::write(&frames, &bytes).unwrap();
        let err = DecodedCache::open(&folder, &changed)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("frames.u8") && err.contains("hash"), "{err}");
        assert!(matches!(open(&samples, &changed), CacheState::Built(_)));
        let spec = folder.join("spectrograms.f32");
        let len = std::fs::metadata(&spec).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&spec)
            .unwrap()
            .set_len(len - 4)
            .unwrap();
        let err = DecodedCache::open(&folder, &changed)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("spectrograms.f32"), "{err}");
        match open(&samples, &changed) {
            CacheState::Built(why) => assert!(why.contains("spectrograms.f32"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(open(&samples, &changed), CacheState::Reused);
        // A clip whose WAV is gone stops the build naming it.
        samples.push(samples[0].clone());
        samples[3].audio = dir.path().join("gone.wav");
        let err = DecodedCache::open_or_build(&folder, &samples, "k2", &PARAMS, 1)
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("gone.wav"), "{err:#}");
    }
}
