//! `oassl score-maps` on AVS-Synth ground truth: perfect maps score 1, wrong maps score 0, missing maps refused.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};
use serde_json::Value;

use crate::common::{assert_ok, Workspace, TINY_SYNTH};

/// Writes one [K,224,224] f32 map per entry: each source's box filled with 1 (or its complement when `invert`).
fn write_maps(gt: &[Value], path: &std::path::Path, invert: bool) {
    let mut buffers: Vec<(String, Vec<u8>, usize)> = Vec::new();
    for entry in gt {
        let boxes = entry["bbox"].as_array().unwrap();
        let mut data = Vec::with_capacity(boxes.len() * 224 * 224 * 4);
        for b in boxes {
            let b: Vec<f64> = b
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            for y in 0..224 {
                for x in 0..224 {
                    let inside = (x as f64) >= (b[0] * 224.0).floor()
                        && (x as f64) < (b[2] * 224.0).floor()
                        && (y as f64) >= (b[1] * 224.0).floor()
                        && (y as f64) < (b[3] * 224.0).floor();
                    let v: f32 = if inside != invert { 1.0 } else { 0.0 };
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
