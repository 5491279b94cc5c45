//! `oassl synth`: playable videos, ground truth that matches the pixels, determinism, bad input.

use std::process::Command;

use crate::common::{assert_ok, Workspace, TINY_SYNTH};

fn ffprobe_streams(path: &std::path::Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,sample_rate",
            "-of",
            "compact",
        ])
        .arg(path)
        .output()
        .expect("ffprobe must be installed (make setup)");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn videos_are_playable_h264_aac_and_ground_truth_matches() {
    let ws = Workspace::with_config(TINY_SYNTH);
    let out = ws.oassl(&["synth"]);
    assert_ok(&out);
    let manifest =
        oassl_pipeline::manifest::Manifest::read(&ws.data().join("dataset/manifest.csv")).unwrap();
    assert_eq!(manifest.rows.len(), 10);
    for row in &manifest.rows {
        let [video] = &manifest.video_paths(row)[..] else {
            panic!("{}: expected one video", row.id)
        };
        let streams = ffprobe_streams(video);
        assert!(
            streams.contains("codec_name=h264|codec_type=video|width=224|height=224"),
            "{streams}"
        );
        assert!(
            streams.contains("codec_name=aac|codec_type=audio|sample_rate=22050"),
            "{streams}"
        );
    }
    // Decode the centre frame with the ffmpeg CLI and check each sounding object's box holds its colour.
    let gt: Vec<serde_json::Value> = serde_json::from_slice(
        &std::fs::read(ws.data().join("dataset/ground_truth/test_duet.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(gt.len(), 2);
    for entry in &gt {
        let id = entry["file"].as_str().unwrap();
        let video = ws.data().join(format!("dataset/videos/test_duet/{id}.mp4"));
        let frame = ws.path().join(format!("{id}.png"));
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-ss", "2.0", "-i"])
            .arg(&video)
            .args(["-frames:v", "1"])
            .arg(&frame)
            .status()
            .unwrap();
        assert!(status.success());
        let img = image::open(&frame).unwrap().to_rgb8();
        let classes = entry["classes"].as_array().unwrap();
        let boxes = entry["bbox"].as_array().unwrap();
        assert_eq!(classes.len(), 2);
        for (class, b) in classes.iter().zip(boxes) {
            let (_, cls) = oassl_synth::catalogue::by_name(class.as_str().unwrap()).unwrap();
            let b: Vec<f64> = b
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let (x0, y0, x1, y1) = (
                (b[0] * 224.0) as u32,
                (b[1] * 224.0) as u32,
                (b[2] * 224.0) as u32,
                (b[3] * 224.0) as u32,
            );
            let mut hits = 0;
            for y in y0..y1 {
                for x in x0..x1 {
                    let (h, s, _) = oassl_synth::catalogue::rgb_to_hsv(img.get_pixel(x, y).0);
                    if s > 0.5 && oassl_synth::catalogue::hue_distance(h, cls.hue) < 15.0 {
                        hits += 1;
                    }
                }
            }
            let area = (x1 - x0) * (y1 - y0);
            assert!(
                hits * 3 > area,
                "{id}: {} covers {hits} of {area} box pixels",
                cls.name
            );
        }
    }
}

#[test]
fn same_seed_same_dataset_other_seed_other_dataset() {
    let a = Workspace::with_config(TINY_SYNTH);
    let b = Workspace::with_config(TINY_SYNTH);
    assert_ok(&a.oassl(&["synth", "--layout", "extracted"]));
    assert_ok(&b.oassl(&["synth", "--layout", "extracted"]));
    let read = |ws: &Workspace, p: &str| std::fs::read(ws.data().join(p)).unwrap();
    for p in [
        "dataset/manifest.csv",
        "dataset/scenes.json",
        "dataset/ground_truth/train_duet.json",
        "extract/audio/synth-test-duet-00001.wav",
        "extract/frames/synth-train-single-00002.jpg",
    ] {
        assert_eq!(read(&a, p), read(&b, p), "{p} differs between runs");
    }
    assert_ok(&b.oassl(&["synth", "--layout", "extracted", "--force", "--seed", "99"]));
    assert_ne!(
        read(&a, "dataset/scenes.json"),
        read(&b, "dataset/scenes.json")
    );
}

#[test]
fn bad_config_and_unwritable_data_dir_give_one_line_errors() {
    let ws = Workspace::with_config("[synth]\nwidht = 3\n");
    let out = ws.oassl(&["synth"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("widht") && err.contains("pipeline.toml"),
        "{err}"
    );

    let ws = Workspace::with_config("[data]\nroot = \"/dev/null/data\"\n");
    let out = ws.oassl(&["synth", "--layout", "extracted"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/null/data"), "{err}");

    let ws = Workspace::with_config("");
    let out = Command::new(env!("CARGO_BIN_EXE_oassl"))
        .args(["--config", "missing.toml", "synth"])
        .current_dir(ws.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}
