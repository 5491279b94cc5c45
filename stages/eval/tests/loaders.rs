//! Loaders on the real annotation files of the public benchmarks (the folder `OASSL_DATASETS`
//! names), checked against the entry and box counts those files hold. Skipped (with a note) when
//! the folder is absent, so the crate also tests without a copy of the benchmarks.

use oassl_eval::gt_map::gt_map;
use oassl_eval::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn datasets() -> Option<PathBuf> {
    let p = std::env::var("OASSL_DATASETS").unwrap_or_else(|_| "/work/shared/datasets".into());
    let p = PathBuf::from(p);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("datasets not found at {}: skipping", p.display());
        None
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn histogram<I: IntoIterator<Item = usize>>(it: I) -> BTreeMap<usize, usize> {
    let mut h = BTreeMap::new();
    for v in it {
        *h.entry(v).or_insert(0) += 1;
    }
    h
}

#[test]
fn vggss_json_counts_and_dirty_boxes() {
    let Some(d) = datasets() else { return };
    let anns = load_annotations(&d.join("vggss/vggss.json"), &AnnotationFormat::VggSs).unwrap();
    assert_eq!(anns.len(), 5158);
    let classes: BTreeSet<_> = anns
        .iter()
        .filter_map(|a| a.sources[0].class.clone())
        .collect();
    assert_eq!(classes.len(), 221);
    let boxes: usize = anns.iter().map(|a| a.sources[0].boxes.len()).sum();
    assert_eq!(boxes, 5941);
    let h = histogram(anns.iter().map(|a| a.sources[0].boxes.len()));
    let want: BTreeMap<usize, usize> = [
        (1, 4619),
        (2, 385),
        (3, 94),
        (4, 37),
        (5, 18),
        (6, 3),
        (7, 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(h, want);
    let dirty = anns
        .iter()
        .flat_map(|a| a.sources[0].raw_boxes.iter())
        .filter(|b| b[0] >= b[2] || b[1] >= b[3] || b.iter().any(|v| !(0.0..=1.0).contains(v)))
        .count();
    assert_eq!(dirty, 18);
    // Normalised boxes are clipped; the sentinel never survives.
    assert!(anns
        .iter()
        .flat_map(|a| a.sources[0].boxes.iter())
        .all(|b| b.iter().all(|v| (0.0..=1.0).contains(v))));
    // After clipping and truncation exactly two frames have an all-zero GT map.
    let p = Protocol::noprior();
    let empty: Vec<&str> = anns
        .iter()
        .filter(|a| {
            let srcs: Vec<_> = a.sources.iter().collect();
            gt_map(&srcs, a.convention, p.box_reading, p.gt_merge)
                .data
                .iter()
                .all(|&v| v == 0.0)
        })
        .map(|a| a.id.as_str())
        .collect();
    let mut sorted = empty.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["M1P1xla8rg0_000000", "MKC9LvRivTM_000030"]);
}

#[test]
fn music_solo_and_duet_json() {
    let Some(d) = datasets() else { return };
    let solo =
        load_annotations(&d.join("music/music_solo.json"), &AnnotationFormat::Music).unwrap();
    assert_eq!(solo.len(), 2124);
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    for a in &solo {
        assert_eq!(a.sources.len(), 1);
        *classes
            .entry(a.sources[0].class.clone().unwrap())
            .or_default() += 1;
    }
    assert_eq!(classes["flute"], 918);
    assert_eq!(classes["saxophone"], 558);
    assert_eq!(classes["accordion"], 454);
    assert_eq!(classes["trumpet"], 180);
    assert_eq!(
        (
            classes["cello"],
            classes["acoustic_guitar"],
            classes["violin"]
        ),
        (8, 5, 1)
    );
    let duet =
        load_annotations(&d.join("music/music_duet.json"), &AnnotationFormat::Music).unwrap();
    assert_eq!(duet.len(), 1020);
    let cg = duet
        .iter()
        .filter(|a| {
            a.sources[0].class.as_deref() == Some("cello")
                && a.sources[1].class.as_deref() == Some("acoustic_guitar")
        })
        .count();
    assert_eq!(cg, 1012);
    // Read as xywh, every box is a proper box (x2 > x1, y2 > y1).
    for a in solo.iter().chain(&duet) {
        assert_eq!(a.convention, BoxConvention::Xywh01);
        for b in a.sources.iter().flat_map(|s| s.boxes.iter()) {
            assert!(b[2] > b[0] && b[3] > b[1], "{}: {b:?}", a.id);
        }
    }
}

#[test]
fn dsol_frames() {
    let Some(d) = datasets() else { return };
    let solo =
        load_annotations(&d.join("music/dsol/solotest.json"), &AnnotationFormat::Dsol).unwrap();
    assert_eq!(solo.len(), 13472);
    let h = histogram(solo.iter().map(|a| a.sources.len()));
    assert_eq!((h[&1], h[&0]), (12356, 1116));
    let duet =
        load_annotations(&d.join("music/dsol/duettest.json"), &AnnotationFormat::Dsol).unwrap();
    assert_eq!(duet.len(), 11512);
    let h = histogram(duet.iter().map(|a| a.sources.len()));
    assert_eq!((h[&1], h[&2], h[&0]), (5533, 4751, 1228));
    let first = duet
        .iter()
        .find(|a| a.id == "4Oy5VmaacaI_0_1000/frame_013/00411.jpg");
    if let Some(a) = first {
        assert_eq!(a.sources[0].class.as_deref(), Some("cello"));
    }
}

#[test]
fn dsol_classes_all_have_a_class_map_index() {
    let Some(d) = datasets() else { return };
    for file in ["solotest.json", "duettest.json"] {
        let anns =
            load_annotations(&d.join("music/dsol").join(file), &AnnotationFormat::Dsol).unwrap();
        for s in anns.iter().flat_map(|a| &a.sources) {
            let class = s.class.as_deref().unwrap();
            assert!(
                oassl_eval::class_maps::DSOL_CLASSES.contains(&class),
                "{file}: {class}"
            );
        }
    }
}

#[test]
fn slavc_extended_lists_append_non_sounding_pairs() {
    let Some(d) = datasets() else { return };
    let vggss = AnnotationFormat::PlusNonSounding {
        base: Box::new(AnnotationFormat::VggSs),
        list: d.join("vggss/extended/vggss_test_plus_silent.csv"),
    };
    let anns = load_annotations(&d.join("vggss/vggss.json"), &vggss).unwrap();
    assert_eq!(anns.len(), 2 * 5158);
    let silent: Vec<&Annotation> = anns.iter().filter(|a| a.sources.is_empty()).collect();
    assert_eq!(silent.len(), 5158);
    assert_eq!(
        silent[0].id,
        "nonsounding/9PmzQI8ZYpg_000147/9PmzQI8ZYpg_000147"
    );
    // 379 rows pair a frame with its own clip id; the keys still never meet a sounding id.
    let same = silent
        .iter()
        .filter(|a| {
            let parts: Vec<&str> = a.id.split('/').collect();
            parts[1] == parts[2]
        })
        .count();
    assert_eq!(same, 379);
    let ids: BTreeSet<&str> = anns.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), anns.len());
    let flickr = AnnotationFormat::PlusNonSounding {
        base: Box::new(AnnotationFormat::FlickrXml),
        list: d.join("flickr-soundnet/extended/flickr_test_plus_silent.csv"),
    };
    let anns = load_annotations(&fixture("flickr"), &flickr).unwrap();
    assert_eq!(anns.len(), 2 + 250);
    assert_eq!(anns[2].id, "nonsounding/10000130166/10437048305");
    assert_eq!(flickr.name(), "flickr-plus-silent");
    // A list with another header is refused, naming the file and line.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad-silent.csv");
    std::fs::write(&bad, "video,audio\na,b\n").unwrap();
    let err = load_annotations(
        &d.join("vggss/vggss.json"),
        &AnnotationFormat::PlusNonSounding {
            base: Box::new(AnnotationFormat::VggSs),
            list: bad.clone(),
        },
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("line 1") && msg.contains(&*bad.to_string_lossy()),
        "{msg}"
    );
}

#[test]
fn vggsound_pair_lists() {
    let Some(d) = datasets() else { return };
    let boxes = d.join("vggss/vggss.json");
    let fmt = AnnotationFormat::VggSoundPairs {
        boxes: boxes.clone(),
    };
    let duet = load_annotations(&d.join("vggsound-duet/vggsound_duet_test.csv"), &fmt).unwrap();
    assert_eq!(duet.len(), 5158);
    assert_eq!(duet[0].id, "zpWuikVorYg_000032+Rtg1SUrxOPY_000130");
    assert!(duet
        .iter()
        .all(|a| a.sources.len() == 2 && a.layout == FrameLayout::OnePerSource));
    let same = duet
        .iter()
        .filter(|a| a.sources[0].class == a.sources[1].class)
        .count();
    assert_eq!(same, 22);
    assert_eq!(
        duet[0].sources[0].boxes,
        vec![[0.403125, 0.253125, 0.6, 0.75]]
    );
    let single = load_annotations(&d.join("vggsound-duet/vggsound_single_test.csv"), &fmt).unwrap();
    assert_eq!(single.len(), 5158);
    assert!(single
        .iter()
        .all(|a| a.sources.len() == 1 && a.layout == FrameLayout::Shared));
}

#[test]
fn wrong_format_is_a_clear_error_naming_the_file() {
    let Some(d) = datasets() else { return };
    let cases = [
        (d.join("vggss/vggss.json"), AnnotationFormat::Music),
        (d.join("music/music_solo.json"), AnnotationFormat::VggSs),
        (
            d.join("music/dsol/duettest.json"),
            AnnotationFormat::AvsSynth,
        ),
        (d.join("vggss/vggss.json"), AnnotationFormat::Dsol),
    ];
    for (path, fmt) in cases {
        let err = load_annotations(&path, &fmt).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(fmt.name()), "{msg}");
    }
    // A Flickr list is not a pair list: wrong ids are named.
    let fmt = AnnotationFormat::VggSoundPairs {
        boxes: d.join("vggss/vggss.json"),
    };
    let err = load_annotations(&d.join("flickr-soundnet/flickr_test.csv"), &fmt).unwrap_err();
    assert!(format!("{err:#}").contains("not in"));
}

#[test]
fn flickr_xml_fixture_and_consensus_map() {
    let anns = load_annotations(&fixture("flickr"), &AnnotationFormat::FlickrXml).unwrap();
    assert_eq!(anns.len(), 2);
    assert_eq!(anns[0].id, "1000001");
    let raw = &anns[0].sources[0].raw_boxes;
    assert_eq!(
        raw,
        &vec![
            [42.0, 60.0, 180.0, 250.0],
            [100.0, 60.0, 256.0, 250.0],
            [0.0, 0.0, 32.0, 32.0]
        ]
    );
    assert_eq!(
        anns[0].sources[0].boxes[1],
        [100.0 / 256.0, 60.0 / 256.0, 1.0, 250.0 / 256.0]
    );
    let p = Protocol::lvs();
    let srcs: Vec<_> = anns[0].sources.iter().collect();
    let g = gt_map(&srcs, anns[0].convention, p.box_reading, p.gt_merge);
    // Pixel boxes: [36,52,157,218], [87,52,224,218], [0,0,28,28] (int(224·v/256)).
    // Overlap x 87..157 weighs 1, single coverage 0.5.
    assert_eq!(g.at(100, 100), 1.0);
    assert_eq!(g.at(100, 50), 0.5);
    assert_eq!(g.at(100, 200), 0.5);
    assert_eq!(g.at(10, 10), 0.5);
    assert_eq!(g.at(230 - 10, 100), 0.0);
    let total: f64 = g.data.iter().sum();
    let (ov, left, right, corner) = (70.0 * 166.0, 51.0 * 166.0, 67.0 * 166.0, 28.0 * 28.0);
    assert_eq!(total, ov + 0.5 * (left + right + corner));
    let err = load_annotations(&fixture("flickr_bad"), &AnnotationFormat::FlickrXml).unwrap_err();
    assert!(format!("{err:#}").contains("1000003.xml"));
}

#[test]
fn avs_synth_fixture() {
    let anns = load_annotations(&fixture("avs_synth.json"), &AnnotationFormat::AvsSynth).unwrap();
    assert_eq!(anns.len(), 3);
    assert_eq!(anns[0].id, "synth_0001");
    let classes: Vec<_> = anns[2]
        .sources
        .iter()
        .map(|s| s.class.clone().unwrap())
        .collect();
    assert_eq!(classes, vec!["cat", "piano", "cello"]);
    assert!(anns
        .iter()
        .all(|a| a.sources.iter().all(|s| s.boxes.len() == 1)));
    // `silent_same_class`: true, absent (files before the generator wrote it), false.
    let flags: Vec<bool> = anns.iter().map(|a| a.silent_same_class).collect();
    assert_eq!(flags, vec![true, false, false]);
}

#[test]
fn avs_synth_refuses_an_unknown_field_but_not_the_distractor_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("avs-synth-flag.json");
    let entry = |extra: &str| {
        format!(
            r#"[{{"file": "a", "class": "dog", "bbox": [[0, 0, 0.5, 0.5]], "classes": ["dog"]{extra}}}]"#
        )
    };
    std::fs::write(&path, entry(r#", "silent_same_class": true"#)).unwrap();
    let anns = load_annotations(&path, &AnnotationFormat::AvsSynth).unwrap();
    assert!(anns[0].silent_same_class);
    std::fs::write(&path, entry(r#", "silent_same_clas": true"#)).unwrap();
    let err = load_annotations(&path, &AnnotationFormat::AvsSynth).unwrap_err();
    assert!(format!("{err:#}").contains("silent_same_clas"), "{err:#}");
}
