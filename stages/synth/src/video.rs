//! Encoding a clip as H.264 + AAC mp4 with the `ffmpeg` command-line tool.
//!
//! The CLI (not the library) is used here so that the generator also runs where only the `ffmpeg` program is
//! installed; frames go in as raw RGB on stdin, the audio as a WAV file.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::audio::write_wav;
use crate::render::render_frame;
use crate::scene::Scene;

/// Whether an `ffmpeg` program can be run.
pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Renders every frame of `scene` and encodes them with `audio` into `out` (an mp4 path, written as is: callers
/// give a temporary path and rename it).
pub fn encode_clip(
    scene: &Scene,
    audio: &[f32],
    rate: u32,
    fps: u32,
    seconds: f64,
    out: &Path,
) -> Result<()> {
    let wav = out.with_extension("wav");
    write_wav(&wav, audio, rate)?;
    let frames = (seconds * f64::from(fps)).round() as u32;
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
        .args(["-s", &format!("{}x{}", scene.width, scene.height)])
        .args(["-r", &fps.to_string(), "-i", "pipe:0"])
        .arg("-i")
        .arg(&wav)
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
        ])
        .args(["-g", &fps.to_string(), "-threads", "1"])
        .args(["-ac", "1", "-c:a", "aac", "-b:a", "96k", "-f", "mp4"])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting ffmpeg (is it installed? `make setup` installs it)")?;
    let write_result = (|| -> Result<()> {
        let mut stdin = child.stdin.take().context("ffmpeg stdin")?;
        for i in 0..frames {
            let t = f64::from(i) / f64::from(fps);
            let img = render_frame(scene, t, seconds);
            stdin.write_all(img.as_raw())?;
        }
        Ok(())
    })();
    let output = child.wait_with_output().context("waiting for ffmpeg")?;
    let _ = std::fs::remove_file(&wav);
    if !output.status.success() {
        bail!(
            "ffmpeg failed encoding {}: {}",
            scene.id,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    write_result.with_context(|| format!("feeding frames of {} to ffmpeg", scene.id))
}
