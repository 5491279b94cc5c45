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
    assert!(manifest.video_paths(row)[0].is_file());

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

#[test]
fn a_folder_of_videos_becomes_a_manifest_labelled_by_folder_or_csv() {
    let ws = Workspace::with_config("");
    let videos = ws.path().join("clips");
    for rel in ["acoustic_guitar/g1.mp4", "cello/c1.mkv", "cello/c2.mp4"] {
        let path = videos.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }
    let dir = videos.to_str().unwrap();
    let folder = [
        "import", "--format", "folder", "--videos", dir, "--split", "train",
    ];
    assert_ok(&ws.oassl(&folder));
    let manifest_path = ws.data().join("dataset/manifest.csv");
    let manifest = Manifest::read(&manifest_path).unwrap();
    let rows: Vec<(&str, Vec<String>)> = manifest
        .rows
        .iter()
        .map(|r| (r.id.as_str(), r.labels.clone()))
        .collect();
    assert_eq!(
        rows,
        [
            ("g1", vec!["acoustic guitar".to_string()]),
            ("c1", vec!["cello".to_string()]),
            ("c2", vec!["cello".to_string()]),
        ]
    );
    assert!(manifest
        .rows
        .iter()
        .all(|r| r.split == "train" && manifest.video_paths(r)[0].is_file()));

    // A video outside any class folder, and a second video with a taken stem, are refused by name.
    std::fs::write(videos.join("loose.mp4"), b"").unwrap();
    let mut force = folder.to_vec();
    force.push("--force");
    let out = ws.oassl(&force);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("loose.mp4"), "{err}");
    std::fs::remove_file(videos.join("loose.mp4")).unwrap();
    std::fs::write(videos.join("acoustic_guitar/c2.webm"), b"").unwrap();
    let out = ws.oassl(&force);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("acoustic_guitar/c2.webm") && err.contains("cello/c2.mp4"),
        "{err}"
    );
    std::fs::remove_file(videos.join("acoustic_guitar/c2.webm")).unwrap();

    // Labels from a CSV: a video it does not list stops the import unless --skip-missing leaves it out.
    let csv = ws.path().join("labels.csv");
    std::fs::write(
        &csv,
        "id,labels\nc1,cello,violin\ng1,acoustic_guitar\nzz,horn\n",
    )
    .unwrap();
    let mut with_csv = force.clone();
    with_csv.extend(["--labels-csv", csv.to_str().unwrap()]);
    let out = ws.oassl(&with_csv);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("c2") && err.contains("--skip-missing"),
        "{err}"
    );
    with_csv.push("--skip-missing");
    let out = ws.oassl(&with_csv);
    assert_ok(&out);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("2 clips")
            && said.contains("1 videos not in the labels CSV")
            && said.contains("first: zz"),
        "{said}"
    );
    let manifest = Manifest::read(&manifest_path).unwrap();
    let labels: Vec<Vec<String>> = manifest.rows.iter().map(|r| r.labels.clone()).collect();
    assert_eq!(labels, [vec!["acoustic guitar"], vec!["cello", "violin"]]);

    // A list belongs to the list formats, not to a folder import.
    let mut listed = force.clone();
    listed.extend(["--list", "list.txt"]);
    let out = ws.oassl(&listed);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("takes no --list"));
}

#[test]
fn a_vggsound_duet_list_becomes_pair_rows_of_two_videos() {
    let root = std::env::var("OASSL_DATASETS").unwrap_or_else(|_| "/work/shared/datasets".into());
    let list = Path::new(&root).join("vggsound-duet/vggsound_duet_test.csv");
    let boxes = Path::new(&root).join("vggss/vggss.json");
    let ws = Workspace::with_config("");
    let videos = ws.path().join("vggsound");
    for rel in ["a/zpWuikVorYg_000032.mp4", "b/Rtg1SUrxOPY_000130.mkv"] {
        let path = videos.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }
    let args = [
        "import",
        "--format",
        "vggsound-duet",
        "--list",
        list.to_str().unwrap(),
        "--annotations",
        boxes.to_str().unwrap(),
        "--videos",
        videos.to_str().unwrap(),
        "--split",
        "test",
        "--skip-missing",
    ];
    let out = ws.oassl(&args);
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("5157 pairs without both videos left out"),
        "{text}"
    );
    let manifest = Manifest::read(&ws.data().join("dataset/manifest.csv")).unwrap();
    assert_eq!(manifest.rows.len(), 1);
    let row = &manifest.rows[0];
    assert_eq!(row.id.as_str(), "zpWuikVorYg_000032+Rtg1SUrxOPY_000130");
    assert_eq!(row.labels, vec!["elk bugling", "people coughing"]);
    let paths = manifest.video_paths(row);
    assert_eq!(paths.len(), 2);
    assert!(paths[0].ends_with("a/zpWuikVorYg_000032.mp4"), "{paths:?}");
    assert!(paths[1].ends_with("b/Rtg1SUrxOPY_000130.mkv"), "{paths:?}");

    // Labels come from the list: a labels file is refused.
    let mut with_labels = args.to_vec();
    with_labels.extend(["--labels", "vggsound.csv", "--force"]);
    let out = ws.oassl(&with_labels);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("takes no --labels"));
}
