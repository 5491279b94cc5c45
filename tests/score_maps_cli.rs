//! `oassl score-maps` on AVS-Synth ground truth: perfect maps score 1, wrong maps score 0, missing maps refused;
//! both multi-source scorings side by side; `slavc-extended` with SLAVC's extended list and another temperature.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};
use serde_json::Value;

use crate::common::{assert_ok, Workspace, TINY_SYNTH};

/// The normalised xyxy boxes of a ground-truth entry.
fn boxes_of(entry: &Value) -> Vec<Vec<f64>> {
    entry["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// Whether pixel (`x`, `y`) of the 224 grid is inside box `b` (painted as `int(224·v)`).
fn inside(b: &[f64], x: usize, y: usize) -> bool {
    let (x, y) = (x as f64, y as f64);
    x >= (b[0] * 224.0).floor()
        && x < (b[2] * 224.0).floor()
        && y >= (b[1] * 224.0).floor()
        && y < (b[3] * 224.0).floor()
}

/// Writes one [K,224,224] f32 map per entry: each source's box filled with 1 (or its complement when `invert`).
fn write_maps(gt: &[Value], path: &std::path::Path, invert: bool) {
    let mut buffers: Vec<(String, Vec<u8>, usize)> = Vec::new();
    for entry in gt {
        let boxes = boxes_of(entry);
        let mut data = Vec::with_capacity(boxes.len() * 224 * 224 * 4);
        for b in &boxes {
            for y in 0..224 {
                for x in 0..224 {
                    let v: f32 = if inside(b, x, y) != invert { 1.0 } else { 0.0 };
                    data.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        buffers.push((
            entry["file"].as_str().unwrap().to_string(),
            data,
            boxes.len(),
        ));
    }
    write_tensors(&buffers, path);
}

/// Writes one [1,224,224] f32 map per entry: 1 on the union of its boxes.
fn write_union_maps(gt: &[Value], path: &std::path::Path) {
    let buffers: Vec<(String, Vec<u8>, usize)> = gt
        .iter()
        .map(|entry| {
            let boxes = boxes_of(entry);
            let mut data = Vec::with_capacity(224 * 224 * 4);
            for y in 0..224 {
                for x in 0..224 {
                    let v: f32 = if boxes.iter().any(|b| inside(b, x, y)) {
                        1.0
                    } else {
                        0.0
                    };
                    data.extend_from_slice(&v.to_le_bytes());
                }
            }
            (entry["file"].as_str().unwrap().to_string(), data, 1)
        })
        .collect();
    write_tensors(&buffers, path);
}

/// Writes `(id, f32 bytes, K)` as `[K,224,224]` tensors.
fn write_tensors(buffers: &[(String, Vec<u8>, usize)], path: &std::path::Path) {
    let views: HashMap<String, TensorView> = buffers
        .iter()
        .map(|(id, data, k)| {
            (
                id.clone(),
                TensorView::new(Dtype::F32, vec![*k, 224, 224], data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(&views, &None, path).unwrap();
}

#[test]
fn perfect_maps_score_one_and_inverted_maps_zero() {
    let ws = Workspace::with_config(TINY_SYNTH);
    assert_ok(&ws.oassl(&["synth", "--layout", "extracted"]));
    let gt_path = ws.data().join("dataset/ground_truth/train_duet.json");
    let gt: Vec<Value> = serde_json::from_slice(&std::fs::read(&gt_path).unwrap()).unwrap();
    let maps = ws.path().join("maps.safetensors");
    let out = ws.path().join("report.json");
    let run = |maps: &std::path::Path| {
        ws.oassl(&[
            "score-maps",
            "--maps",
            maps.to_str().unwrap(),
            "--annotations",
            gt_path.to_str().unwrap(),
            "--format",
            "synth",
            "--protocol",
            "oassl",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let score = |maps: &std::path::Path| {
        assert_ok(&run(maps));
        serde_json::from_slice::<Value>(&std::fs::read(&out).unwrap()).unwrap()
    };
    write_maps(&gt, &maps, false);
    let report = score(&maps);
    assert_eq!(report["aggregates"]["samples"], 3);
    assert!(
        (report["aggregates"]["auc"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "{}",
        report["aggregates"]
    );
    write_maps(&gt, &maps, true);
    let report = score(&maps);
    assert!(
        report["aggregates"]["auc"].as_f64().unwrap() < 0.2,
        "{}",
        report["aggregates"]
    );

    // Maps for another split: every annotated id is missing, and the error says which.
    let other: Vec<Value> = serde_json::from_slice(
        &std::fs::read(ws.data().join("dataset/ground_truth/test_duet.json")).unwrap(),
    )
    .unwrap();
    write_maps(&other, &maps, false);
    let o = run(&maps);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("synth-train-duet-00000"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn multi_source_both_writes_and_prints_both_scorings() {
    let ws = Workspace::with_config(TINY_SYNTH);
    assert_ok(&ws.oassl(&["synth", "--layout", "extracted"]));
    let gt_path = ws.data().join("dataset/ground_truth/train_duet.json");
    let gt: Vec<Value> = serde_json::from_slice(&std::fs::read(&gt_path).unwrap()).unwrap();
    assert!(gt.iter().all(|e| boxes_of(e).len() >= 2), "duet frames");
    let sources: usize = gt.iter().map(|e| boxes_of(e).len()).sum();
    let maps = ws.path().join("maps.safetensors");
    let out = ws.path().join("report.json");
    let score = |multi_source: &str| {
        let o = ws.oassl(&[
            "score-maps",
            "--maps",
            maps.to_str().unwrap(),
            "--annotations",
            gt_path.to_str().unwrap(),
            "--format",
            "synth",
            "--protocol",
            "oassl",
            "--multi-source",
            multi_source,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_ok(&o);
        let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        (report, String::from_utf8_lossy(&o.stdout).to_string())
    };
    // One map per frame on the union of its sources: every frame is found (frame-wise 1), but only
    // one source per frame can be matched to it, so source-wise scores at most half the sources.
    write_union_maps(&gt, &maps);
    let (report, printed) = score("both");
    assert_eq!(report["scoring"], "source-wise");
    let (source, frame) = (&report["aggregates"], &report["frame_wise"]["aggregates"]);
    assert_eq!(source["entries"].as_u64().unwrap() as usize, sources);
    assert_eq!(frame["entries"].as_u64().unwrap() as usize, gt.len());
    assert_eq!(frame["mean_ciou"].as_f64().unwrap(), 1.0, "{frame}");
    let source_mean = source["mean_ciou"].as_f64().unwrap();
    assert!(source_mean <= 0.5, "{source}");
    assert_eq!(
        report["frame_wise"]["samples"].as_array().unwrap().len(),
        gt.len()
    );
    let rows: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("| oassl |"))
        .collect();
    assert_eq!(rows.len(), 2, "{printed}");
    assert!(rows[0].ends_with("| source-wise |"), "{printed}");
    assert!(rows[1].ends_with("| frame-wise |"), "{printed}");
    assert!(rows[1].contains("| 100.00 |"), "{printed}");

    // Frame-wise alone: the report's main aggregates, labelled, and no second set.
    let (report, printed) = score("frame-wise");
    assert_eq!(report["scoring"], "frame-wise");
    assert_eq!(report["aggregates"], *frame);
    assert!(report.get("frame_wise").is_none(), "{report}");
    assert_eq!(
        printed
            .lines()
            .filter(|l| l.starts_with("| oassl |"))
            .count(),
        1
    );
    assert!(printed.contains("| frame-wise |") && !printed.contains("| source-wise |"));
    let (report, _) = score("source-wise");
    assert_eq!(report["scoring"], "source-wise");
    assert_eq!(
        report["aggregates"]["mean_ciou"].as_f64().unwrap(),
        source_mean
    );
    assert!(report.get("frame_wise").is_none(), "{report}");
}

/// Writes one constant [224,224] f32 map per (id, value).
fn write_constant_maps(path: &std::path::Path, maps: &[(&str, f32)]) {
    let bytes: Vec<Vec<u8>> = maps
        .iter()
        .map(|(_, v)| v.to_le_bytes().repeat(224 * 224))
        .collect();
    let views: HashMap<String, TensorView> = maps
        .iter()
        .zip(&bytes)
        .map(|((id, _), b)| {
            (
                id.to_string(),
                TensorView::new(Dtype::F32, vec![224, 224], b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(&views, &None, path).unwrap();
}

#[test]
fn slavc_extended_reads_the_plus_silent_list_and_the_temperature() {
    let ws = Workspace::with_config(TINY_SYNTH);
    let flickr = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/stages/eval/tests/fixtures/flickr"
    );
    let list = ws.path().join("flickr_test_plus_silent.csv");
    std::fs::write(
        &list,
        "video,audio,label\n1000001,1000002,non-sounding\n1000002,1000001,non-sounding\n",
    )
    .unwrap();
    let maps = ws.path().join("maps.safetensors");
    // cos/τ = +1 on the frames with their own audio, −1 on the non-sounding pairs.
    write_constant_maps(
        &maps,
        &[
            ("1000001", 1.0),
            ("1000002", 1.0),
            ("nonsounding/1000001/1000002", -1.0),
            ("nonsounding/1000002/1000001", -1.0),
        ],
    );
    let out = ws.path().join("report.json");
    let run = |protocol: &str, extra: &[&str]| {
        let mut args = vec![
            "score-maps",
            "--maps",
            maps.to_str().unwrap(),
            "--annotations",
            flickr,
            "--format",
            "flickr",
            "--protocol",
            protocol,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ws.oassl(&args)
    };
    let o = run(
        "slavc-extended",
        &["--plus-silent", list.to_str().unwrap(), "--tau", "0.5"],
    );
    assert_ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("| slavc-extended | visible | 0.5 | 2 |"));
    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["annotation_format"], "flickr-plus-silent");
    assert_eq!(report["aggregates"]["samples"], 4);
    // τ = 0.5: s = (u + 2)/4, so the confidences are 0.75 and 0.25 (τ = 0.03 would give ≈ 0.515 / 0.485).
    let conf: Vec<f64> = report["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["entries"][0]["detection"]["confidence"].as_f64().unwrap())
        .collect();
    assert_eq!(conf, vec![0.75, 0.75, 0.25, 0.25]);
    let stats = &report["aggregates"]["evaluator"]["detection"];
    assert_eq!(stats.as_array().unwrap().len(), 4);

    // The list and the temperature only go with the protocols that use them.
    let o = run("oassl", &["--plus-silent", list.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--plus-silent"));
    let o = run("lvs", &["--tau", "0.5"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--tau"));
    let o = run("no-such-protocol", &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for name in [
        "slavc-abs",
        "slavc-extended",
        "avgn-multi",
        "dsol",
        "dsol-solo",
    ] {
        assert!(err.contains(name), "{err}");
    }
}
