//! Extraction against the `ffmpeg` CLI on generated clips: the same frame (frame-accurate seek), audio windows
//! exact to the sample (clamped ends included), the cache and its staleness checks, and bad inputs.
#![cfg(feature = "ffmpeg")]

use std::path::Path;
use std::process::Command;

use indicatif::ProgressBar;
use oassl_captions::extraction::{
    extract_all, first_stale, stale_reason, ExtractError, ExtractJob, ExtractOutcome, ExtractParams,
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
        videos: vec![video.to_path_buf()],
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
}

/// A 6 s clip whose mono 22,050 Hz PCM audio is a counter: sample n holds `floor(n / 8) - 8192` (16-bit). No two
/// positions 1..=132,300 samples apart hold the same run of values, so a window read back names its own start,
/// sample-exactly; PCM at the output rate means neither a lossy codec nor a resampler sits in between.
fn make_counter_clip(path: &Path) {
    let p = path.to_str().unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=224x224:rate=25:duration=6",
        "-f",
        "lavfi",
        "-i",
        "aevalsrc=(floor(n/8)-8192)/32768:s=22050:d=6",
        "-c:v",
        "libx264",
        "-bf",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "pcm_s16le",
        "-ac",
        "1",
        p,
    ]);
}

fn counter(n: usize) -> i16 {
    (n / 8) as i16 - 8192
}

#[test]
fn audio_windows_are_sample_exact_including_both_clamped_ends() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("counter.mov");
    make_counter_clip(&video);
    let layout = Layout::new(dir.path().join("data"));
    // (id, timestamp, first sample of the window): the 3 s window is centred on the frame, unless that would
    // reach before the start (clamped to 0) or past the end (clamped to end - 3 s = 3 s = sample 66150).
    let cases = [
        ("centre", None, 33_075),
        ("t2", Some(2.0), 11_025),
        ("start", Some(0.5), 0),
        ("start_edge", Some(0.0), 0),
        ("end", Some(5.9), 66_150),
        ("end_edge", Some(6.0), 66_150),
    ];
    let jobs: Vec<ExtractJob> = cases.iter().map(|(id, t, _)| job(id, &video, *t)).collect();
    let out = extract_all(&jobs, &layout, &params(), 2, false, &ProgressBar::hidden()).unwrap();
    for ((id, _, first), outcome) in cases.iter().zip(&out) {
        assert_eq!(*outcome, ExtractOutcome::Ready { cached: false }, "{id}");
        let reader = hound::WavReader::open(layout.audio(&SampleId::parse(id).unwrap())).unwrap();
        assert_eq!(reader.spec().sample_rate, 22050, "{id}");
        assert_eq!(reader.spec().channels, 1, "{id}");
        let ours: Vec<i16> = reader.into_samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(ours.len(), 66_150, "{id}");
        let want: Vec<i16> = (*first..first + 66_150).map(counter).collect();
        if ours != want {
            let at = ours.iter().zip(&want).position(|(a, b)| a != b).unwrap();
            panic!(
                "{id}: window should start at sample {first}; sample {at} is {} instead of {}",
                ours[at], want[at]
            );
        }
    }
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

    // A missing or altered output, or a replaced video, is stale and re-extracted; the others stay cached.
    let good_id = SampleId::parse("good").unwrap();
    let three = vec![
        job("good", &good, None),
        job("other", &good, Some(1.0)),
        job("third", &good, Some(2.5)),
    ];
    let hidden = ProgressBar::hidden();
    extract_all(&three, &layout, &params(), 1, false, &hidden).unwrap();
    assert_eq!(first_stale(&three, &layout, &params(), 1).unwrap(), None);
    let first_frame = std::fs::read(layout.frame(&good_id)).unwrap();
    std::fs::remove_file(layout.frame(&good_id)).unwrap();
    let reason = first_stale(&three, &layout, &params(), 1).unwrap().unwrap();
    assert!(
        reason.starts_with("good: ") && reason.contains("missing"),
        "{reason}"
    );
    let again = extract_all(&three, &layout, &params(), 1, false, &hidden).unwrap();
    assert_eq!(
        again,
        vec![
            ExtractOutcome::Ready { cached: false },
            ExtractOutcome::Ready { cached: true },
            ExtractOutcome::Ready { cached: true }
        ]
    );
    // Decoding is deterministic: the same frame bytes come back.
    assert!(std::fs::read(layout.frame(&good_id)).unwrap() == first_frame);
    let other_id = SampleId::parse("other").unwrap();
    let mut wav = std::fs::read(layout.audio(&other_id)).unwrap();
    let last = wav.len() - 1;
    wav[last] ^= 1;
    std::fs::write(layout.audio(&other_id), wav).unwrap();
    let reason = stale_reason(&three[1], &layout, &params()).unwrap();
    assert!(reason.contains("changed"), "{reason}");
    let again = extract_all(&three, &layout, &params(), 1, false, &hidden).unwrap();
    assert_eq!(again[1], ExtractOutcome::Ready { cached: false });
    assert_eq!(again[2], ExtractOutcome::Ready { cached: true });
    // A replaced video (other content, so another size) is stale for every clip cut from it.
    make_clip(&good, 5.0, true);
    assert!(stale_reason(&three[2], &layout, &params())
        .unwrap()
        .contains("video"));
    let again = extract_all(&three, &layout, &params(), 1, false, &hidden).unwrap();
    assert!(again
        .iter()
        .all(|o| *o == ExtractOutcome::Ready { cached: false }));
}

/// A second, different clip: SMPTE bars and a 660 Hz tone.
fn make_other_clip(path: &Path, seconds: f64) {
    let d = format!("{seconds}");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("smptebars=size=320x240:rate=25:duration={d}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=660:sample_rate=48000:duration={d}"),
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        path.to_str().unwrap(),
    ]);
}

fn wav_samples(path: &Path) -> (hound::WavSpec, Vec<i32>) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    let samples = reader
        .samples::<i16>()
        .map(|s| i32::from(s.unwrap()))
        .collect();
    (spec, samples)
}

#[test]
fn a_pair_is_the_vertical_mosaic_of_its_clips_frames_and_the_sum_of_their_audio() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.mp4");
    make_clip(&a, 4.0, true);
    let b = dir.path().join("b.mp4");
    make_other_clip(&b, 5.0);
    let layout = Layout::new(dir.path().join("data"));
    let pair = ExtractJob {
        id: SampleId::parse("a+b").unwrap(),
        videos: vec![a.clone(), b.clone()],
        timestamp: None,
    };
    let jobs = vec![job("a", &a, None), job("b", &b, None), pair.clone()];
    let hidden = ProgressBar::hidden();
    let out = extract_all(&jobs, &layout, &params(), 2, false, &hidden).unwrap();
    assert!(
        out.iter()
            .all(|o| *o == ExtractOutcome::Ready { cached: false }),
        "{out:?}"
    );
    let id = |s: &str| SampleId::parse(s).unwrap();
    let mosaic = image::open(layout.frame(&id("a+b"))).unwrap().to_rgb8();
    assert_eq!(mosaic.dimensions(), (224, 448));
    let tile = |y: u32| {
        image::imageops::crop_imm(&mosaic, 0, y, 224, 224)
            .to_image()
            .into_raw()
    };
    let own = |s: &str| {
        image::open(layout.frame(&id(s)))
            .unwrap()
            .to_rgb8()
            .into_raw()
    };
    let (top, bottom, fa, fb) = (tile(0), tile(224), own("a"), own("b"));
    // Each tile is its clip's own frame up to JPEG noise, and far from the other clip's frame.
    for (tile, same, other) in [(&top, &fa, &fb), (&bottom, &fb, &fa)] {
        let near = mean_abs_diff(tile, same);
        let far = mean_abs_diff(tile, other);
        assert!(near < 3.0 && far > 10.0 * near.max(0.5), "{near} {far}");
    }
    let (spec, mix) = wav_samples(&layout.audio(&id("a+b")));
    let (spec_a, wa) = wav_samples(&layout.audio(&id("a")));
    let (_, wb) = wav_samples(&layout.audio(&id("b")));
    assert_eq!((spec, mix.len()), (spec_a, wa.len()));
    assert_eq!(mix.len(), wb.len());
    // Each WAV rounds its own float samples, so the sum is off by at most one step.
    let worst = mix
        .iter()
        .zip(wa.iter().zip(&wb))
        .map(|(m, (x, y))| (m - x - y).abs())
        .max()
        .unwrap();
    assert!(worst <= 1, "{worst}");
    let energy = |w: &[i32]| w.iter().map(|s| i64::from(*s).pow(2)).sum::<i64>();
    assert!(energy(&wa) > 0 && energy(&wb) > 0);

    // Cached as one sample; replacing the second video makes the pair stale, naming the video.
    let again = extract_all(
        std::slice::from_ref(&pair),
        &layout,
        &params(),
        1,
        false,
        &hidden,
    )
    .unwrap();
    assert_eq!(again, vec![ExtractOutcome::Ready { cached: true }]);
    make_other_clip(&b, 6.0);
    let reason = stale_reason(&pair, &layout, &params()).unwrap();
    assert!(
        reason.starts_with("a+b: ") && reason.contains("video"),
        "{reason}"
    );
    // A missing or silent video of a pair fails the sample, naming that video.
    let silent = dir.path().join("silent.mp4");
    make_clip(&silent, 4.0, false);
    let nope = dir.path().join("nope.mp4");
    let bad = |second: &Path| ExtractJob {
        videos: vec![a.clone(), second.to_path_buf()],
        ..pair.clone()
    };
    let out = extract_all(
        &[bad(&nope), bad(&silent)],
        &layout,
        &params(),
        1,
        true,
        &hidden,
    )
    .unwrap();
    assert_eq!(
        out[0],
        ExtractOutcome::Failed(ExtractError::Missing(nope.display().to_string()))
    );
    assert_eq!(
        out[1],
        ExtractOutcome::Failed(ExtractError::InClip(
            silent.display().to_string(),
            Box::new(ExtractError::NoAudio)
        ))
    );
}
