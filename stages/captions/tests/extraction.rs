//! Extraction against the `ffmpeg` CLI on generated clips: the same frame (frame-accurate seek), the same audio
//! window, the cache, and bad inputs.
#![cfg(feature = "ffmpeg")]

use std::path::Path;
use std::process::Command;

use indicatif::ProgressBar;
use oassl_captions::extraction::{
    extract_all, ExtractError, ExtractJob, ExtractOutcome, ExtractParams,
};
use oassl_pipeline::{Layout, SampleId};

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg must be installed (make setup)");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// 25 fps test pattern with a frame counter (GOP 50, so seeks land between keyframes) and a 440 Hz tone.
fn make_clip(path: &Path, seconds: f64, audio: bool) {
    let d = format!("{seconds}");
    let video = format!("testsrc=size=224x224:rate=25:duration={d}");
    let tone = format!("sine=frequency=440:sample_rate=44100:duration={d}");
    let p = path.to_str().unwrap();
    if audio {
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &video,
            "-f",
            "lavfi",
            "-i",
            &tone,
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-ac",
            "2",
            "-shortest",
            p,
        ]);
    } else {
        ffmpeg(&[
            "-f", "lavfi", "-i", &video, "-c:v", "libx264", "-g", "50", "-pix_fmt", "yuv420p", p,
        ]);
    }
}

fn cli_frame(video: &Path, t: f64) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{t}"), "-i"])
        .arg(video)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
        .sum::<f64>()
        / a.len() as f64
}

fn params() -> ExtractParams {
    ExtractParams {
        frame_size: 224,
        audio_rate: 22050,
        audio_seconds: 3.0,
        jpeg_quality: 95,
    }
}

fn job(id: &str, video: &Path, t: Option<f64>) -> ExtractJob {
    ExtractJob {
        id: SampleId::parse(id).unwrap(),
        video: Some(video.to_path_buf()),
        timestamp: t,
    }
}

#[test]
fn frame_matches_ffmpeg_cli_at_the_same_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    make_clip(&video, 6.0, true);
    let layout = Layout::new(dir.path().join("data"));
    let jobs = vec![
        job("centre", &video, None),
        job("t1_32", &video, Some(1.32)),
        job("t4_96", &video, Some(4.96)),
    ];
    let out = extract_all(&jobs, &layout, &params(), 2, false, &ProgressBar::hidden()).unwrap();
    assert!(
        out.iter()
            .all(|o| *o == ExtractOutcome::Ready { cached: false }),
        "{out:?}"
    );
    for (id, t) in [("centre", 3.0), ("t1_32", 1.32), ("t4_96", 4.96)] {
        let ours = image::open(layout.frame(&SampleId::parse(id).unwrap()))
            .unwrap()
            .to_rgb8();
        assert_eq!(ours.dimensions(), (224, 224));
        let same = mean_abs_diff(ours.as_raw(), &cli_frame(&video, t));
        let next = mean_abs_diff(ours.as_raw(), &cli_frame(&video, t + 0.04));
        let prev = mean_abs_diff(ours.as_raw(), &cli_frame(&video, t - 0.04));
        assert!(same < 3.0, "{id}: differs from the CLI frame by {same}");
        assert!(
            same < next && same < prev,
            "{id}: {same} vs neighbours {prev} / {next}"
        );
    }
    // Audio: 3 s at 22050 Hz, the 440 Hz tone, matching the CLI's resampled window.
    let reader = hound::WavReader::open(layout.audio(&SampleId::parse("centre").unwrap())).unwrap();
    assert_eq!(reader.spec().sample_rate, 22050);
    assert_eq!(reader.spec().channels, 1);
    let ours: Vec<f32> = reader
        .into_samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32767.0)
        .collect();
    assert_eq!(ours.len(), 66150);
    let cli = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", "1.5", "-t", "3", "-i"])
        .arg(&video)
        .args(["-vn", "-ac", "1", "-ar", "22050", "-f", "f32le", "-"])
        .output()
        .unwrap();
    let cli: Vec<f32> = cli
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let n = ours.len().min(cli.len()) - 100;
    assert!(n > 60000, "CLI gave {} samples", cli.len());
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    let diff: Vec<f32> = ours[..n]
        .iter()
        .zip(&cli[..n])
        .map(|(a, b)| a - b)
        .collect();
    assert!(rms(&ours) > 0.05, "tone missing: rms {}", rms(&ours));
    assert!(
        rms(&diff) < 0.2 * rms(&ours),
        "window differs from the CLI: {} vs {}",
        rms(&diff),
        rms(&ours)
    );
}

#[test]
fn rerun_is_cached_and_bad_inputs_fail_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.mp4");
    make_clip(&good, 4.0, true);
    let silent = dir.path().join("silent.mp4");
    make_clip(&silent, 4.0, false);
    let short = dir.path().join("short.mp4");
    make_clip(&short, 0.5, true);
    let corrupt = dir.path().join("corrupt.mp4");
    std::fs::write(&corrupt, b"this is not a video at all").unwrap();
    let layout = Layout::new(dir.path().join("data"));
    let jobs = vec![
        job("good", &good, None),
        job("silent", &silent, None),
        job("short", &short, None),
        job("corrupt", &corrupt, None),
        job("missing", &dir.path().join("nope.mp4"), None),
        job("late", &good, Some(30.0)),
    ];
    let out = extract_all(&jobs, &layout, &params(), 2, false, &ProgressBar::hidden()).unwrap();
    assert_eq!(out[0], ExtractOutcome::Ready { cached: false });
    assert_eq!(out[1], ExtractOutcome::Failed(ExtractError::NoAudio));
    assert!(
        matches!(out[2], ExtractOutcome::Failed(ExtractError::TooShort(_))),
        "{:?}",
        out[2]
    );
    assert!(
        matches!(out[3], ExtractOutcome::Failed(ExtractError::Open(_))),
        "{:?}",
        out[3]
    );
    assert!(
        matches!(out[4], ExtractOutcome::Failed(ExtractError::Missing(_))),
        "{:?}",
        out[4]
    );
    assert!(
        matches!(out[5], ExtractOutcome::Failed(ExtractError::Timestamp(..))),
        "{:?}",
        out[5]
    );
    let again = extract_all(
        &jobs[..1],
        &layout,
        &params(),
        1,
        false,
        &ProgressBar::hidden(),
    )
    .unwrap();
    assert_eq!(again[0], ExtractOutcome::Ready { cached: true });
    // Other parameters are another cache key.
    let bigger = ExtractParams {
        frame_size: 112,
        ..params()
    };
    let other = extract_all(
        &jobs[..1],
        &layout,
        &bigger,
        1,
        false,
        &ProgressBar::hidden(),
    )
    .unwrap();
    assert_eq!(other[0], ExtractOutcome::Ready { cached: false });
}
