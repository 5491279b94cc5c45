//! `score_maps` end to end on the AVS-Synth fixture (tests/fixtures/avs_synth.json), with maps
//! written to a temporary safetensors file. Expected values derived by hand in the comments.

use oassl_eval::gt_map::gt_map;
use oassl_eval::*;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh directory for one test's files, removed when the test ends.
fn tmp() -> TempDir {
    tempfile::tempdir().unwrap()
}

/// `(id, dtype, shape, values)` of one tensor to write.
type Tensor<'a> = (&'a str, Dtype, Vec<usize>, Vec<f64>);

/// Writes the tensors to a safetensors file.
fn write(path: &Path, tensors: &[Tensor]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, dt, _, v)| match dt {
            Dtype::F64 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Dtype::F32 => v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect(),
            Dtype::I32 => v.iter().flat_map(|x| (*x as i32).to_le_bytes()).collect(),
            _ => unreachable!(),
        })
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((id, dt, shape, _), b)| {
            (
                id.to_string(),
                TensorView::new(*dt, shape.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::tensor::serialize_to_file(views, &None, path).unwrap();
}

/// One indicator map (224x224) per source, in the given source order.
fn source_maps(ann: &Annotation, order: &[usize]) -> Vec<f64> {
    let p = Protocol::oassl();
    order
        .iter()
        .flat_map(|&i| {
            gt_map(
                &[&ann.sources[i]],
                ann.convention,
                p.box_reading,
                p.gt_merge,
            )
            .data
        })
        .collect()
}

fn perfect_maps(dir: &TempDir, skip: Option<&str>) -> PathBuf {
    let anns = load_annotations(&fixture("avs_synth.json"), &AnnotationFormat::AvsSynth).unwrap();
    let orders: [&[usize]; 3] = [&[0, 1], &[0], &[2, 1, 0]];
    let tensors: Vec<_> = anns
        .iter()
        .zip(orders)
        .filter(|(a, _)| Some(a.id.as_str()) != skip)
        .map(|(a, o)| {
            (
                a.id.as_str(),
                Dtype::F32,
                vec![o.len(), 224, 224],
                source_maps(a, o),
            )
        })
        .collect();
    let path = dir
        .path()
        .join(format!("perfect-{}.safetensors", skip.unwrap_or("all")));
    write(&path, &tensors);
    path
}

fn run(maps: &Path, opts: ScoreOptions) -> anyhow::Result<ScoreReport> {
    score_maps(
        maps,
        &fixture("avs_synth.json"),
        AnnotationFormat::AvsSynth,
        Protocol::oassl(),
        opts,
    )
}

#[test]
fn perfect_object_maps_under_oassl() {
    let report = run(&perfect_maps(&tmp(), None), ScoreOptions::default()).unwrap();
    let a = &report.aggregates;
    assert_eq!((a.samples, a.entries), (3, 6));
    assert!(report
        .samples
        .iter()
        .flat_map(|s| &s.entries)
        .all(|e| e.ciou == 1.0 && e.ap == Some(1.0)));
    // synth_0003 was given in reverse order: map 0 matched source 2.
    assert_eq!(report.samples[2].entries[0].slot, Some(2));
    assert_eq!(
        a.success.iter().map(|s| s.value).collect::<Vec<_>>(),
        vec![1.0, 1.0]
    );
    assert!((a.auc - 1.0).abs() < 1e-12);
    assert_eq!(a.count_accuracy, Some(1.0));
    // PIAP of synth_0003: the three boxes cover 31360 px > N/2, so the summed map's median is
    // 0.5 and only the two 56x56 overlaps (p = 1) survive: precision 1, recall 6272/31360 = .2,
    // base rate 31360/50176 = .625 -> AP = .2 + .8·.625 = .7. The other two samples: 1.
    let piap = report.samples[2].piap.unwrap();
    assert!((piap - 0.7).abs() < 1e-12, "{piap}");
    assert!((a.piap.unwrap() - 0.9).abs() < 1e-12);
    // Frame-wise, the maximum of the indicator maps is the union of the boxes (values 0 / 1), which
    // the strict-median rule keeps whole (p ≥ 1): every frame scores 1, synth_0003 included, where
    // the summed map of PIAP lost all but the overlaps.
    let frame = &report
        .frame_wise
        .as_ref()
        .expect("frame-wise by default")
        .aggregates;
    assert_eq!((frame.samples, frame.entries), (3, 3));
    assert_eq!((frame.mean_ciou, frame.mean_ap), (1.0, Some(1.0)));
    // JSON round trip and the Markdown row.
    let json = serde_json::to_string(&report).unwrap();
    let back: ScoreReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let md = markdown_table(&report);
    assert!(
        md.contains("| oassl | avs-synth | 3 | 6 | 100.00 | 100.00 |"),
        "{md}"
    );
    assert!(md.contains("| 90.00 | 100.00 |"), "{md}");
}

#[test]
fn missing_maps_are_listed_or_scored_as_failures() {
    let dir = tmp();
    let path = perfect_maps(&dir, Some("synth_0002"));
    let err = run(&path, ScoreOptions::default()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("1 annotated sample(s) have no map: synth_0002"),
        "{msg}"
    );
    let opts = ScoreOptions {
        missing: MissingMaps::ScoreAsFailure,
        ..ScoreOptions::default()
    };
    let report = run(&path, opts).unwrap();
    let a = &report.aggregates;
    // Entries 2 + 1 + 3; the failed one is 0: cIoU@0.5 = 5/6, CAP = 5/6, PIAP (1 + 0 + .7)/3.
    assert_eq!((a.entries, a.missing_maps), (6, 1));
    assert_eq!(a.success[0].value, 5.0 / 6.0);
    assert!((a.mean_ap.unwrap() - 5.0 / 6.0).abs() < 1e-12);
    assert!((a.piap.unwrap() - 1.7 / 3.0).abs() < 1e-12);
    assert!((a.count_accuracy.unwrap() - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn bad_maps_name_the_sample() {
    let anns = load_annotations(&fixture("avs_synth.json"), &AnnotationFormat::AvsSynth).unwrap();
    let ok = |a: &Annotation| source_maps(a, &[0]);
    let mut nan = ok(&anns[1]);
    nan[777] = f64::NAN;
    let cases: Vec<(Vec<Tensor>, &str)> = vec![
        (
            vec![("synth_0002", Dtype::F64, vec![224, 224], nan)],
            "non-finite value at flat index 777",
        ),
        (
            vec![("synth_0002", Dtype::F32, vec![50176], ok(&anns[1]))],
            "rank 1",
        ),
        (
            vec![("synth_0002", Dtype::I32, vec![224, 224], ok(&anns[1]))],
            "dtype I32",
        ),
    ];
    let dir = tmp();
    for (i, (tensors, want)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.safetensors"));
        write(&path, &tensors);
        let msg = format!("{:#}", run(&path, ScoreOptions::default()).unwrap_err());
        assert!(msg.contains("synth_0002") && msg.contains(want), "{msg}");
    }
    // A single-source protocol given K = 2 maps names the sample and the protocol.
    let path = dir.path().join("two-maps.safetensors");
    let two = source_maps(&anns[0], &[0, 1]);
    let one = |a: &Annotation| source_maps(a, &[0]);
    write(
        &path,
        &[
            ("synth_0001", Dtype::F32, vec![2, 224, 224], two),
            ("synth_0002", Dtype::F32, vec![224, 224], one(&anns[1])),
            ("synth_0003", Dtype::F32, vec![224, 224], one(&anns[2])),
        ],
    );
    let err = score_maps(
        &path,
        &fixture("avs_synth.json"),
        AnnotationFormat::AvsSynth,
        Protocol::lvs(),
        ScoreOptions::default(),
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("synth_0001") && msg.contains("`lvs`"), "{msg}");
    // A maps file that is not safetensors.
    let err = run(&fixture("avs_synth.json"), ScoreOptions::default()).unwrap_err();
    assert!(format!("{err:#}").contains("not a safetensors file"));
}

#[test]
fn chance_rows_from_reference_maps() {
    // Centre prior (one 7x7 map per sample) under oassl: one predicted map per sample, so
    // entries = 6 and only samples with one source can have K == slots (synth_0002).
    let anns = load_annotations(&fixture("avs_synth.json"), &AnnotationFormat::AvsSynth).unwrap();
    let prior = center_prior_map(7, 7, 2.0).data;
    let tensors: Vec<_> = anns
        .iter()
        .map(|a| (a.id.as_str(), Dtype::F64, vec![7, 7], prior.clone()))
        .collect();
    let dir = tmp();
    let path = dir.path().join("prior.safetensors");
    write(&path, &tensors);
    let report = run(&path, ScoreOptions::default()).unwrap();
    assert_eq!(report.aggregates.entries, 6);
    assert!((report.aggregates.count_accuracy.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    // synth_0002's box [.25, 0, .75, .5] is the top-centre quarter; the centred blob's top half
    // selects the central disc, which overlaps it but is not it.
    let c = report.samples[1].entries[0].ciou;
    assert!(c > 0.0 && c < 1.0, "{c}");
}
