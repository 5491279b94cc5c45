//! `oassl import`: a manifest from a video folder and a real benchmark list file.

use std::path::Path;

use oassl_pipeline::manifest::Manifest;

use crate::common::{assert_ok, Workspace};

/// MUSIC-Duet's training list from the benchmarks' annotation copies (`OASSL_DATASETS`).
fn music_list() -> String {
    let root = std::env::var("OASSL_DATASETS").unwrap_or_else(|_| "/work/shared/datasets".into());
    Path::new(&root)
        .join("music/train_lists/music_duet_train.txt")
        .display()
        .to_string()
}

#[test]
fn music_list_becomes_a_manifest_that_refuses_silent_overwrites() {
    let ws = Workspace::with_config("");
    let videos = ws.path().join("videos");
    std::fs::create_dir_all(videos.join("a")).unwrap();
    std::fs::write(videos.join("a/K_U5-GbPgi0_098_02961.mp4"), b"").unwrap();
    let list = music_list();
    let args = [
        "import",
        "--format",
        "music",
        "--list",
        list.as_str(),
        "--videos",
        videos.to_str().unwrap(),
        "--split",
        "train",
    ];
    // Without --skip-missing the first clip without a video stops the import.
    let out = ws.oassl(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--skip-missing"));

    let mut skip = args.to_vec();
    skip.push("--skip-missing");
    let out = ws.oassl(&skip);
    assert_ok(&out);
    let manifest = Manifest::read(&ws.data().join("dataset/manifest.csv")).unwrap();
    assert_eq!(manifest.rows.len(), 1);
    let row = &manifest.rows[0];
    assert_eq!(row.labels, vec!["cello", "acoustic guitar"]);
    assert_eq!(row.split, "train");
    assert!(manifest.video_path(row).unwrap().is_file());

    let again = ws.oassl(&skip);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--append"));
    let mut append = skip.clone();
    append.push("--append");
    let dup = ws.oassl(&append);
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already in"));
    let mut force = skip;
    force.push("--force");
    assert_ok(&ws.oassl(&force));
}
