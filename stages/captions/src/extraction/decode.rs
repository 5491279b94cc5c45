//! Decoding one clip with libav* (ffmpeg-next): the frame at a timestamp, frame-accurately, and a mono audio
//! window resampled to the configured rate.
//!
//! Seeking lands on the keyframe at or before the target; the decoder then decodes forward and keeps the first
//! frame whose presentation time reaches the target (what `ffmpeg -ss T -i clip -frames:v 1` gives).

use std::path::Path;

use ffmpeg::format::{sample, Pixel, Sample};
use ffmpeg::software::scaling::{Context as Scaler, Flags};
use ffmpeg::{codec, frame, media, ChannelLayout, Rational};
use ffmpeg_next as ffmpeg;
use image::RgbImage;

use super::{ExtractError, ExtractParams};

/// Decoded frame and audio window of one clip.
pub struct ClipMedia {
    pub frame: RgbImage,
    pub audio: Vec<f32>,
}

/// Silences FFmpeg's own stderr logging; safe to call more than once.
pub fn init() {
    let _ = ffmpeg::init();
    ffmpeg::log::set_level(ffmpeg::log::Level::Fatal);
}

fn seconds(ts: i64, tb: Rational) -> f64 {
    ts as f64 * f64::from(tb.numerator()) / f64::from(tb.denominator().max(1))
}

fn av(e: ffmpeg::Error) -> ExtractError {
    ExtractError::Decode(e.to_string())
}

/// Seconds from the container start (format `start_time`) to its first timestamp origin.
fn start_seconds(ictx: &ffmpeg::format::context::Input) -> f64 {
    let start = unsafe { (*ictx.as_ptr()).start_time };
    if start == i64::MIN {
        0.0
    } else {
        start as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    }
}

fn open(path: &Path) -> Result<ffmpeg::format::context::Input, ExtractError> {
    ffmpeg::format::input(path).map_err(|e| ExtractError::Open(e.to_string()))
}

/// The clip duration in seconds, from the container.
fn duration_seconds(ictx: &ffmpeg::format::context::Input) -> f64 {
    let d = ictx.duration();
    if d > 0 {
        d as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    } else {
        0.0
    }
}

/// Decodes the clip's frame and audio window.
pub fn decode_clip(
    path: &Path,
    timestamp: Option<f64>,
    params: &ExtractParams,
) -> Result<ClipMedia, ExtractError> {
    let probe = open(path)?;
    let duration = duration_seconds(&probe);
    drop(probe);
    if duration <= 0.0 {
        return Err(ExtractError::TooShort(format!("duration {duration:.3} s")));
    }
    let t = timestamp.unwrap_or(duration / 2.0);
    if t > duration {
        return Err(ExtractError::Timestamp(t, duration));
    }
    let frame = decode_frame(path, t, params.frame_size)?;
    let audio = decode_audio(path, t, duration, params)?;
    Ok(ClipMedia { frame, audio })
}

fn decode_frame(path: &Path, t: f64, size: u32) -> Result<RgbImage, ExtractError> {
    let mut ictx = open(path)?;
    let start = start_seconds(&ictx);
    let (index, tb, parameters) = {
        let stream = ictx
            .streams()
            .best(media::Type::Video)
            .ok_or(ExtractError::NoVideo)?;
        (stream.index(), stream.time_base(), stream.parameters())
    };
    let mut decoder = codec::context::Context::from_parameters(parameters)
        .and_then(|c| c.decoder().video())
        .map_err(av)?;
    let target = start + t;
    let target_us = (target * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
    if ictx.seek(target_us, ..target_us).is_ok() {
        decoder.flush();
    }
    let mut decoded = frame::Video::empty();
    let mut last: Option<frame::Video> = None;
    let mut picked: Option<frame::Video> = None;
    let mut take = |decoder: &mut ffmpeg::decoder::Video, picked: &mut Option<frame::Video>| {
        while decoder.receive_frame(&mut decoded).is_ok() {
            let pts = decoded
                .timestamp()
                .map(|p| seconds(p, tb))
                .unwrap_or(f64::MIN);
            if pts >= target - 1e-6 {
                *picked = Some(decoded.clone());
                return;
            }
            last = Some(decoded.clone());
        }
    };
    for (stream, packet) in ictx.packets() {
        if stream.index() != index {
            continue;
        }
        if decoder.send_packet(&packet).is_err() {
            continue;
        }
        take(&mut decoder, &mut picked);
        if picked.is_some() {
            break;
        }
    }
    if picked.is_none() {
        let _ = decoder.send_eof();
        take(&mut decoder, &mut picked);
    }
    let chosen = picked.or(last).ok_or(ExtractError::NoFrame)?;
    to_rgb(&chosen, size)
}

fn to_rgb(src: &frame::Video, size: u32) -> Result<RgbImage, ExtractError> {
    let mut scaler = Scaler::get(
        src.format(),
        src.width(),
        src.height(),
        Pixel::RGB24,
        size,
        size,
        Flags::BILINEAR,
    )
    .map_err(av)?;
    let mut rgb = frame::Video::empty();
    scaler.run(src, &mut rgb).map_err(av)?;
    let stride = rgb.stride(0);
    let data = rgb.data(0);
    let row = size as usize * 3;
    let mut pixels = Vec::with_capacity(row * size as usize);
    for y in 0..size as usize {
        pixels.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    RgbImage::from_raw(size, size, pixels).ok_or(ExtractError::NoFrame)
}

/// The audio window of a clip: `window` seconds from `begin`, centred on the frame time where the clip allows.
struct AudioWindow {
    begin: f64,
    window: f64,
    rate: f64,
    /// Samples in the window.
    want: usize,
}

impl AudioWindow {
    fn around(t: f64, duration: f64, params: &ExtractParams) -> Result<Self, ExtractError> {
        let window = params.audio_seconds;
        if duration + 1e-3 < window {
            return Err(ExtractError::TooShort(format!(
                "{duration:.3} s is shorter than the {window} s audio window"
            )));
        }
        let rate = f64::from(params.audio_rate);
        Ok(Self {
            begin: (t - window / 2.0).clamp(0.0, (duration - window).max(0.0)),
            window,
            rate,
            want: (window * rate).round() as usize,
        })
    }

    /// Whether samples from `first_time` on reach one sample past the window's end.
    fn covered(&self, first_time: Option<f64>, n: usize) -> bool {
        first_time.is_some_and(|f| n as f64 >= (self.begin + self.window - f) * self.rate + 1.0)
    }
}

/// Decoded audio resampled to mono f32 at the configured rate, with the time of its first sample.
struct MonoStream {
    decoder: ffmpeg::decoder::Audio,
    resampler: Option<ffmpeg::software::resampling::Context>,
    decoded: frame::Audio,
    time_base: Rational,
    /// Container start, subtracted from timestamps.
    start: f64,
    out_rate: u32,
    first_time: Option<f64>,
    samples: Vec<f32>,
}

const MONO_F32: Sample = Sample::F32(sample::Type::Packed);

impl MonoStream {
    /// Resamples every frame the decoder has ready.
    fn drain(&mut self) -> Result<(), ExtractError> {
        while self.decoder.receive_frame(&mut self.decoded).is_ok() {
            let decoded = &mut self.decoded;
            if decoded.channel_layout().channels() == 0 {
                decoded.set_channel_layout(ChannelLayout::default(i32::from(decoded.channels())));
            }
            if self.first_time.is_none() {
                let pts = decoded
                    .timestamp()
                    .map(|p| seconds(p, self.time_base) - self.start)
                    .unwrap_or(0.0);
                self.first_time = Some(pts);
            }
            if self.resampler.is_none() {
                self.resampler = Some(
                    ffmpeg::software::resampling::Context::get(
                        decoded.format(),
                        decoded.channel_layout(),
                        decoded.rate(),
                        MONO_F32,
                        ChannelLayout::MONO,
                        self.out_rate,
                    )
                    .map_err(av)?,
                );
            }
            if let Some(swr) = self.resampler.as_mut() {
                let capacity = decoded.samples() * self.out_rate as usize
                    / decoded.rate().max(1) as usize
                    + 256;
                let mut out = frame::Audio::new(MONO_F32, capacity, ChannelLayout::MONO);
                swr.run(decoded, &mut out).map_err(av)?;
                self.samples
                    .extend_from_slice(&out.plane::<f32>(0)[..out.samples()]);
            }
        }
        Ok(())
    }

    /// Ends the stream: the decoder's last frames and the resampler's delayed samples.
    fn finish(&mut self) -> Result<(), ExtractError> {
        let _ = self.decoder.send_eof();
        self.drain()?;
        if let Some(swr) = self.resampler.as_mut() {
            for _ in 0..16 {
                let mut out = frame::Audio::new(MONO_F32, 4096, ChannelLayout::MONO);
                match swr.flush(&mut out) {
                    Ok(_) if out.samples() > 0 => self
                        .samples
                        .extend_from_slice(&out.plane::<f32>(0)[..out.samples()]),
                    _ => break,
                }
            }
        }
        Ok(())
    }
}

/// Decodes the audio stream of `path` until it covers `w`.
fn decode_mono(path: &Path, w: &AudioWindow, out_rate: u32) -> Result<MonoStream, ExtractError> {
    let mut ictx = open(path)?;
    let start = start_seconds(&ictx);
    let (index, time_base, parameters) = {
        let stream = ictx
            .streams()
            .best(media::Type::Audio)
            .ok_or(ExtractError::NoAudio)?;
        (stream.index(), stream.time_base(), stream.parameters())
    };
    let mut decoder = codec::context::Context::from_parameters(parameters)
        .and_then(|c| c.decoder().audio())
        .map_err(av)?;
    // Seek a second early: audio frames are all keyframes, but some demuxers land after the target.
    if w.begin > 1.0 {
        let to = ((start + w.begin - 1.0) * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
        if ictx.seek(to, ..to).is_ok() {
            decoder.flush();
        }
    }
    let mut stream = MonoStream {
        decoder,
        resampler: None,
        decoded: frame::Audio::empty(),
        time_base,
        start,
        out_rate,
        first_time: None,
        samples: Vec::new(),
    };
    for (s, packet) in ictx.packets() {
        if s.index() != index || stream.decoder.send_packet(&packet).is_err() {
            continue;
        }
        stream.drain()?;
        if w.covered(stream.first_time, stream.samples.len()) {
            return Ok(stream);
        }
    }
    stream.finish()?;
    Ok(stream)
}

/// The window's samples out of a decoded stream: silence before the stream's first sample (encoder priming),
/// a few ms of silence allowed at the very end (codec padding), anything shorter refused.
fn cut_window(stream: &MonoStream, w: &AudioWindow) -> Result<Vec<f32>, ExtractError> {
    let samples = &stream.samples;
    let first = stream.first_time.ok_or(ExtractError::NoAudioFrames)?;
    let offset = (w.begin - first) * w.rate;
    let mut window_samples = Vec::with_capacity(w.want);
    if offset < 0.0 {
        let pad = ((-offset).round() as usize).min(w.want);
        window_samples.resize(pad, 0.0);
    }
    let skip = offset.max(0.0).round() as usize;
    let available = samples.len().saturating_sub(skip);
    let need = w.want - window_samples.len();
    let tolerance = (0.01 * w.rate) as usize;
    if available + tolerance < need {
        return Err(ExtractError::TooShort(format!(
            "audio ends {:.3} s into the {} s window",
            available as f64 / w.rate,
            w.window
        )));
    }
    window_samples.extend_from_slice(
        &samples[skip.min(samples.len())..(skip + need.min(available)).min(samples.len())],
    );
    window_samples.resize(w.want, 0.0);
    Ok(window_samples)
}

fn decode_audio(
    path: &Path,
    t: f64,
    duration: f64,
    params: &ExtractParams,
) -> Result<Vec<f32>, ExtractError> {
    let window = AudioWindow::around(t, duration, params)?;
    let stream = decode_mono(path, &window, params.audio_rate)?;
    cut_window(&stream, &window)
}
