//! `oassl localize`: a trained model on one's own clips (videos, or frame + WAV pairs); overlay PNGs and maps.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use rayon::prelude::*;

use oassl_captions::extraction::ExtractParams;
use oassl_evaluate::localize::{localize, Clip, LocalizeOptions};
use oassl_evaluate::TrainedModel;
use oassl_train::data::audio_clip::read_wav;
use oassl_train::data::frames::read_frame;
use oassl_train::stage::{settings, TrainFiles};

#[derive(Debug, Args)]
pub struct LocalizeArgs {
    /// Video files (needs the `ffmpeg` feature); the frame is taken at the centre or at --timestamp, the audio
    /// window around it as `[captions]` configures.
    #[arg(long = "video", num_args = 1..)]
    pub videos: Vec<PathBuf>,
    /// A frame picture (JPEG or PNG), with --audio.
    #[arg(long, requires = "audio")]
    pub frame: Option<PathBuf>,
    /// The WAV that goes with --frame.
    #[arg(long, requires = "frame")]
    pub audio: Option<PathBuf>,
    /// A text file with one clip per line: a video path, or `frame,wav`; relative paths are relative to it.
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// Seconds into each video for the frame (default: its centre).
    #[arg(long)]
    pub timestamp: Option<f64>,
    /// Folder of the trained model (`model.safetensors` + `model.json`; default: the data folder's `train/`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Output folder (default: the data folder's `localize/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Clips per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// auto | cpu | cuda
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Tile side of the overlay pictures, pixels.
    #[arg(long, default_value_t = 224)]
    pub tile: u32,
}

/// Where one clip's media come from.
#[derive(Debug, Clone)]
enum Source {
    Video(PathBuf),
    Pair { frame: PathBuf, audio: PathBuf },
}

impl Source {
    fn name(&self) -> String {
        let path = match self {
            Source::Video(p) => p,
            Source::Pair { frame, .. } => frame,
        };
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn shown(&self) -> String {
        match self {
            Source::Video(p) => p.display().to_string(),
            Source::Pair { frame, audio } => format!("{} + {}", frame.display(), audio.display()),
        }
    }
}

fn read_list(path: &Path) -> Result<Vec<Source>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading list {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split(',').map(str::trim).collect();
        out.push(match parts.as_slice() {
            [video] => Source::Video(base.join(video)),
            [frame, audio] => Source::Pair {
                frame: base.join(frame),
                audio: base.join(audio),
            },
            _ => bail!(
                "{} line {}: expected `video` or `frame,wav`, got {line:?}",
                path.display(),
                n + 1
            ),
        });
    }
    Ok(out)
}

fn load_clip(source: &Source, params: &ExtractParams, timestamp: Option<f64>) -> Result<Clip> {
    match source {
        Source::Pair { frame, audio } => {
            let (samples, rate) = read_wav(audio)?;
            Ok(Clip {
                name: source.name(),
                frame: read_frame(frame)?,
                audio: samples,
                rate,
            })
        }
        Source::Video(path) => decode_video(path, params, timestamp).map(|(frame, audio)| Clip {
            name: source.name(),
            frame,
            audio,
            rate: params.audio_rate,
        }),
    }
}

#[cfg(feature = "ffmpeg")]
fn decode_video(
    path: &Path,
    params: &ExtractParams,
    timestamp: Option<f64>,
) -> Result<(image::RgbImage, Vec<f32>)> {
    use oassl_captions::extraction::decode;
    if !path.is_file() {
        bail!("video file not found: {}", path.display());
    }
    decode::init();
    let media = decode::decode_clip(path, timestamp, params)
        .with_context(|| format!("decoding {}", path.display()))?;
    Ok((media.frame, media.audio))
}

#[cfg(not(feature = "ffmpeg"))]
fn decode_video(
    path: &Path,
    _params: &ExtractParams,
    _timestamp: Option<f64>,
) -> Result<(image::RgbImage, Vec<f32>)> {
    bail!(
        "{}: this build has no FFmpeg support (feature `ffmpeg`); pass --frame and --audio instead",
        path.display()
    )
}

pub fn run(config: &Path, args: LocalizeArgs) -> Result<ExitCode> {
    let (loaded, layout) = super::load(config)?;
    let mut sources: Vec<Source> = args.videos.iter().cloned().map(Source::Video).collect();
    if let (Some(frame), Some(audio)) = (&args.frame, &args.audio) {
        sources.push(Source::Pair {
            frame: frame.clone(),
            audio: audio.clone(),
        });
    }
    if let Some(list) = &args.list {
        sources.extend(read_list(list)?);
    }
    if sources.is_empty() {
        bail!("nothing to localise: give --video, --frame with --audio, or --list");
    }
    let params = ExtractParams::from_config(&loaded.config.captions);
    let loaded_clips: Vec<(Source, Result<Clip>)> = sources
        .into_par_iter()
        .map(|s| {
            let clip = load_clip(&s, &params, args.timestamp);
            (s, clip)
        })
        .collect();
    let mut clips = Vec::new();
    let mut failed = 0usize;
    for (source, clip) in loaded_clips {
        match clip {
            Ok(c) => clips.push(c),
            Err(e) => {
                failed += 1;
                eprintln!("localize: skipped {}: {e:#}", source.shown());
            }
        }
    }
    if clips.is_empty() {
        bail!("no clip could be read ({failed} failed)");
    }
    let files = match &args.model {
        Some(dir) => TrainFiles { dir: dir.clone() },
        None => TrainFiles::new(&layout),
    };
    let device = settings::device(&args.device, "localize")?;
    let trained = TrainedModel::load(&files, device)?;
    let opts = LocalizeOptions {
        out_dir: args.out.unwrap_or_else(|| layout.stage_dir("localize")),
        batch_size: args.batch_size,
        tile: args.tile,
    };
    let report = localize(&trained, &clips, device, &opts)?;
    for c in &report.clips {
        println!(
            "{}: {} source(s), S_a peak at ({:.2}, {:.2}) -> {}",
            c.name,
            c.sources,
            c.peak[0],
            c.peak[1],
            c.picture.display()
        );
    }
    println!(
        "localize: {} clip(s), {failed} skipped, {:.1} images/s (forward), {:.1} images/s (end to end) on {}; {}",
        report.clips.len(),
        report.images_per_s,
        report.end_to_end_images_per_s,
        report.device,
        opts.out_dir.join("localize.json").display()
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
