//! Source-wise against frame-wise scoring on hand-built 224-grid maps (resizing is the identity).
//!
//! The expected numbers were recomputed with numpy and scikit-learn from the evaluators' formulas
//! by `tests/fixtures/multi_source_cases.py` (its printout names each case below).

use super::*;
use crate::annotation::{source, BoxConvention, FrameLayout};
use crate::reference_maps::random_map;

const Q: [f64; 4] = [0.0, 0.0, 0.5, 0.5];
const A: [f64; 4] = [0.0, 0.0, 0.25, 0.25];
const B: [f64; 4] = [0.5, 0.5, 1.0, 1.0];

fn ann(boxes: &[[f64; 4]], layout: FrameLayout) -> Annotation {
    Annotation {
        id: "x".into(),
        sources: boxes
            .iter()
            .map(|b| source(None, vec![*b], BoxConvention::Xyxy01))
            .collect(),
        convention: BoxConvention::Xyxy01,
        layout,
        silent_same_class: false,
    }
}

/// Adds `v` on the normalised xyxy box (painted `int(224·v)`) of the 224 tile at (`top`, `left`).
fn add_box(m: &mut Map, b: [f64; 4], top: usize, left: usize, v: f64) {
    let px = |x: f64| (GRID as f64 * x) as usize;
    for y in top + px(b[1])..top + px(b[3]) {
        for x in left + px(b[0])..left + px(b[2]) {
            m.data[y * m.width + x] += v;
        }
    }
}

fn cious(s: &SampleScore) -> Vec<f64> {
    s.entries.iter().map(|e| e.ciou).collect()
}

#[test]
fn a_map_weak_on_one_tile_keeps_it_source_wise_but_loses_it_frame_wise() {
    // Pair mosaic (NoPrior vertical, 448x224), Q in each tile; m = 1 + Q on tile 0, Q on tile 1
    // (case 1): per tile, min-max gives each tile its own Q; over the frame the top half is
    // tile 0's Q alone. The second map is m / 2: the scale of a map changes neither scoring.
    let a = ann(&[Q, Q], FrameLayout::OnePerSource);
    let mut m = Map::zeros(2 * GRID, GRID);
    add_box(&mut m, [0.0, 0.0, 1.0, 1.0], 0, 0, 1.0);
    add_box(&mut m, Q, 0, 0, 1.0);
    add_box(&mut m, Q, GRID, 0, 1.0);
    let mut half = m.clone();
    half.data.iter_mut().for_each(|v| *v /= 2.0);
    let maps = [m, half];
    let p = Protocol::oassl();
    let source_wise = MultiSourceScoring::SourceWise
        .score(Some(&maps[..]), &a, &p)
        .unwrap();
    assert_eq!(cious(&source_wise), vec![1.0, 1.0]);
    assert!(source_wise.entries.iter().all(|e| e.ap == Some(1.0)));
    let frame_wise = MultiSourceScoring::FrameWise
        .score(Some(&maps[..]), &a, &p)
        .unwrap();
    // 12544 of the union's 25088 px, nothing outside: 0.5; AP = .5·1 + .5·(25088/100352) = .625.
    assert_eq!(cious(&frame_wise), vec![0.5]);
    assert_eq!(frame_wise.entries[0].ap, Some(0.625));
    assert_eq!((frame_wise.counted, frame_wise.piap), (true, None));
    // The same under NoPrior's per-frame GT slots: a pair's frames hold one source each.
    let np = score_frame(&maps, &a, &Protocol::noprior()).unwrap();
    assert_eq!(cious(&np), vec![0.5]);
}

#[test]
fn one_map_on_both_sources_scores_higher_frame_wise() {
    // One frame, A and B, a single map on A ∪ B (case 2): source-wise it matches B (cIoU .8,
    // against A .2) and the unmatched A scores 0; frame-wise it is the union exactly.
    let a = ann(&[A, B], FrameLayout::Shared);
    let mut m = Map::zeros(GRID, GRID);
    add_box(&mut m, A, 0, 0, 1.0);
    add_box(&mut m, B, 0, 0, 1.0);
    let maps = [m];
    let p = Protocol::oassl();
    let source_wise = MultiSourceScoring::SourceWise
        .score(Some(&maps[..]), &a, &p)
        .unwrap();
    assert_eq!(cious(&source_wise), vec![0.8, 0.0]);
    let frame_wise = MultiSourceScoring::FrameWise
        .score(Some(&maps[..]), &a, &p)
        .unwrap();
    assert_eq!(cious(&frame_wise), vec![1.0]);
    assert_eq!(frame_wise.entries[0].ap, Some(1.0));
}

#[test]
fn maps_are_merged_after_their_own_normalisation() {
    // T-VSL (224x448, low = sounding): map j = 1 − its source's box (case 3). Each map's
    // `1 − minmax` is its own box, so the maximum is the union: cIoU 1, AP 1. Merging the raw maps
    // first would give a constant map (1 everywhere), nothing ≥ 0.3 and cIoU 0.
    let (p_box, r_box) = ([0.1, 0.2, 0.6, 0.7], [0.3, 0.1, 0.9, 0.5]);
    let a = ann(&[p_box, r_box], FrameLayout::OnePerSource);
    let maps: Vec<Map> = [(p_box, 0), (r_box, GRID)]
        .into_iter()
        .map(|(b, left)| {
            let mut m = Map::from_vec(GRID, 2 * GRID, vec![1.0; 2 * GRID * GRID]).unwrap();
            add_box(&mut m, b, 0, left, -1.0);
            m
        })
        .collect();
    let p = Protocol::tvsl();
    let source_wise = MultiSourceScoring::SourceWise
        .score(Some(&maps[..]), &a, &p)
        .unwrap();
    assert_eq!(cious(&source_wise), vec![1.0, 1.0]);
    let frame_wise = MultiSourceScoring::FrameWise
        .score(Some(&maps[..]), &a, &p)
        .unwrap();
    assert_eq!(cious(&frame_wise), vec![1.0]);
    assert_eq!(frame_wise.entries[0].ap, Some(1.0));
    // Class-conditioned: one map per source, under either scoring.
    let err = score_frame(&maps[..1], &a, &p).unwrap_err();
    assert!(err.to_string().contains("one map per source"), "{err}");
}

#[test]
fn one_map_one_source_scores_the_same_either_way() {
    // With one map and one source in one frame both scorings run the same pipeline over the same
    // region against the same GT (a property of the definitions, checked on random maps).
    let a = ann(&[[0.2, 0.1, 0.7, 0.9]], FrameLayout::Shared);
    for seed in 0..8 {
        let maps = [random_map(seed, 14, 14)];
        for p in [Protocol::oassl(), Protocol::noprior(), Protocol::tvsl()] {
            let s = MultiSourceScoring::SourceWise
                .score(Some(&maps[..]), &a, &p)
                .unwrap();
            let f = MultiSourceScoring::FrameWise
                .score(Some(&maps[..]), &a, &p)
                .unwrap();
            assert_eq!(f.entries.len(), 1);
            assert_eq!(
                (f.entries[0].ciou, f.entries[0].ap),
                (s.entries[0].ciou, s.entries[0].ap),
                "{} seed {seed}",
                p.name
            );
        }
    }
}

#[test]
fn frame_wise_does_not_depend_on_the_order_of_the_maps() {
    let a = ann(&[A, B, Q], FrameLayout::Shared);
    for seed in 0..4 {
        let maps: Vec<Map> = (0..3).map(|k| random_map(10 * seed + k, 7, 9)).collect();
        let reversed: Vec<Map> = maps.iter().rev().cloned().collect();
        let p = Protocol::oassl();
        assert_eq!(
            score_frame(&maps, &a, &p).unwrap(),
            score_frame(&reversed, &a, &p).unwrap()
        );
    }
}

#[test]
fn no_map_is_not_counted_and_a_missing_map_is_one_failed_frame() {
    let a = ann(&[A, B], FrameLayout::Shared);
    let p = Protocol::oassl();
    let none = MultiSourceScoring::FrameWise
        .score(Some(&[][..]), &a, &p)
        .unwrap();
    assert!(!none.counted && none.entries.is_empty());
    let missing = MultiSourceScoring::FrameWise.score(None, &a, &p).unwrap();
    assert!(missing.missing_map && missing.counted);
    assert_eq!(cious(&missing), vec![0.0]);
    assert_eq!(missing.entries[0].ap, Some(0.0));
    // Source-wise the same sample fails on both of its sources.
    let missing = MultiSourceScoring::SourceWise.score(None, &a, &p).unwrap();
    assert_eq!(cious(&missing), vec![0.0, 0.0]);
}

#[test]
fn selection_applies_to_multi_source_protocols_only() {
    use MultiSourceScoring::*;
    assert_eq!(
        MultiSourceSelection::Both.scorings(&Protocol::oassl()),
        vec![Some(SourceWise), Some(FrameWise)]
    );
    assert_eq!(
        MultiSourceSelection::FrameWise.scorings(&Protocol::tvsl()),
        vec![Some(FrameWise)]
    );
    assert_eq!(
        MultiSourceSelection::Both.scorings(&Protocol::lvs()),
        vec![None]
    );
    for name in ["source-wise", "frame-wise", "both"] {
        let s = MultiSourceSelection::parse(name).unwrap();
        assert_eq!(serde_json::to_value(s).unwrap(), name);
    }
    assert_eq!(MultiSourceSelection::parse("framewise"), None);
}
