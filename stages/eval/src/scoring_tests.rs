//! Hand-derived protocol cases on 224x224 maps (resizing is then the identity for every kernel).
//!
//! Boxes: A = [0, 0, .25, .25] -> 56x56 = 3136 px, B = [.5, .5, 1, 1] -> 112x112 = 12544 px,
//! Q = [0, 0, .5, .5] -> 12544 px. N = 50176, so all are below the median index 25088 and an
//! indicator map binarises to exactly its support (t = 0, B = p > 0 or p ≥ 0).

use super::*;
use crate::annotation::{source, BoxConvention, FrameLayout};

const A: [f64; 4] = [0.0, 0.0, 0.25, 0.25];
const B: [f64; 4] = [0.5, 0.5, 1.0, 1.0];
const Q: [f64; 4] = [0.0, 0.0, 0.5, 0.5];

fn ann(sources: &[&[[f64; 4]]], layout: FrameLayout) -> Annotation {
    Annotation {
        id: "x".into(),
        sources: sources
            .iter()
            .map(|b| source(None, b.to_vec(), BoxConvention::Xyxy01))
            .collect(),
        convention: BoxConvention::Xyxy01,
        layout,
        silent_same_class: false,
    }
}

fn indicator(boxes: &[[f64; 4]]) -> Map {
    let a = ann(&[boxes], FrameLayout::Shared);
    gt_map(
        &[&a.sources[0]],
        a.convention,
        crate::gt_map::BoxReading::AsAnnotated,
        crate::gt_map::GtMerge::Union,
    )
}

fn cious(s: &SampleScore) -> Vec<f64> {
    s.entries.iter().map(|e| e.ciou).collect()
}

#[test]
fn constant_map_differs_between_lvs_ezvsl_and_noprior() {
    let a = ann(&[&[Q]], FrameLayout::Shared);
    let flat = Map::from_vec(14, 14, vec![0.25; 196]).unwrap();
    // LVS: 1 − minmax(−u) = 1.25 everywhere -> all selected -> 12544 / 50176 = 0.25.
    let lvs = score_sample(std::slice::from_ref(&flat), &a, &Protocol::lvs()).unwrap();
    assert_eq!(cious(&lvs), vec![0.25]);
    // EZ-VSL: p ≥ t with p constant -> all selected.
    let ez = score_sample(std::slice::from_ref(&flat), &a, &Protocol::ezvsl()).unwrap();
    assert_eq!(cious(&ez), vec![0.25]);
    // NoPrior: p = 0.25 < 1 and nothing > t -> empty B -> 0 / 12544 = 0; AP = base rate 0.25.
    let np = score_sample(&[flat], &a, &Protocol::noprior()).unwrap();
    assert_eq!(cious(&np), vec![0.0]);
    assert_eq!(np.entries[0].ap, Some(0.25));
}

#[test]
fn union_slot_versus_per_source_slots() {
    let a = ann(&[&[A], &[B]], FrameLayout::Shared);
    let m = indicator(&[A, B]);
    // NoPrior: one slot (union) -> perfect match, AP 1, K = 1 = slots.
    let np = score_sample(std::slice::from_ref(&m), &a, &Protocol::noprior()).unwrap();
    assert_eq!(cious(&np), vec![1.0]);
    assert_eq!(np.entries[0].ap, Some(1.0));
    assert_eq!(np.piap, Some(1.0));
    assert_eq!(np.count_correct, Some(true));
    // oassl: vs A 3136/15680 = .2, vs B 12544/15680 = .8 -> B; second slot padded with 0.
    // AP vs B: precision .8, recall 1 -> .8.
    let oa = score_sample(&[m], &a, &Protocol::oassl()).unwrap();
    assert_eq!(cious(&oa), vec![0.8, 0.0]);
    assert_eq!(oa.entries[0].slot, Some(1));
    assert_eq!(oa.entries[0].ap, Some(0.8));
    assert_eq!(oa.count_correct, Some(false));
}

#[test]
fn oassl_two_maps_two_sources_any_order() {
    let a = ann(&[&[A], &[B]], FrameLayout::Shared);
    let maps = [indicator(&[B]), indicator(&[A])];
    let s = score_sample(&maps, &a, &Protocol::oassl()).unwrap();
    assert_eq!(cious(&s), vec![1.0, 1.0]);
    assert_eq!(s.entries[0].slot, Some(1));
    assert_eq!(s.count_correct, Some(true));
}

#[test]
fn zero_maps_are_skipped_by_noprior() {
    let a = ann(&[&[A], &[B]], FrameLayout::Shared);
    let s = score_sample(&[], &a, &Protocol::oassl()).unwrap();
    assert!(!s.counted);
    assert!(s.entries.is_empty());
    assert_eq!(s.count_correct, Some(false));
}

#[test]
fn empty_gt_gives_zero_and_overlapping_boxes_union() {
    // Degenerate box only: empty G, non-empty B -> 0.
    let a = ann(&[&[[0.5, 0.5, 0.5, 0.9]]], FrameLayout::Shared);
    let s = score_sample(&[indicator(&[A])], &a, &Protocol::noprior()).unwrap();
    assert_eq!(cious(&s), vec![0.0]);
    // Overlapping boxes Q and A (A inside Q): union = Q -> predicting Q is perfect under LVS
    // (p > t = 0) ...
    let o = ann(&[&[Q, A]], FrameLayout::Shared);
    let s = score_sample(&[indicator(&[Q])], &o, &Protocol::lvs()).unwrap();
    assert_eq!(cious(&s), vec![1.0]);
    // ... but EZ-VSL's p ≥ t with t = 0 (more than half the pixels are 0) selects every pixel:
    // 12544 / 50176 = 0.25.
    let s = score_sample(&[indicator(&[Q])], &o, &Protocol::ezvsl()).unwrap();
    assert_eq!(cious(&s), vec![0.25]);
}

#[test]
fn pair_mosaic_tiles_and_tvsl_conditioning() {
    // Two frames stacked vertically: map 448x224 with A in the top tile, B in the bottom.
    let a = ann(&[&[A], &[B]], FrameLayout::OnePerSource);
    let mosaic = Map::concat(&[indicator(&[A]), indicator(&[B])], true);
    let np = score_sample(&[mosaic], &a, &Protocol::noprior()).unwrap();
    // One map, two slots: tile scores (1, 1) -> first wins; second slot padded.
    assert_eq!(cious(&np), vec![1.0, 0.0]);
    // T-VSL side by side: map k must be source k. Inverted normalisation keeps the *low*
    // pixels: an indicator of A in the left tile gives p = 1 outside A, so for source 0
    // B = everything but A: inter 0 -> cIoU 0.
    let tv_maps = [
        Map::concat(&[indicator(&[A]), Map::zeros(224, 224)], false),
        Map::concat(&[Map::zeros(224, 224), indicator(&[B])], false),
    ];
    let tv = score_sample(&tv_maps, &a, &Protocol::tvsl()).unwrap();
    assert_eq!(cious(&tv), vec![0.0, 0.0]);
    // Inverted inputs (0 on the box, 1 elsewhere, over the whole mosaic) are what T-VSL
    // rewards: after 1 − minmax only the box has p = 1 ≥ 0.3 -> cIoU 1 for both sources.
    let inv = |m: &Map| Map {
        data: m.data.iter().map(|v| 1.0 - v).collect(),
        ..m.clone()
    };
    let good = [inv(&tv_maps[0]), inv(&tv_maps[1])];
    let tv = score_sample(&good, &a, &Protocol::tvsl()).unwrap();
    assert_eq!(cious(&tv), vec![1.0, 1.0]);
    // Swapping the maps breaks the class conditioning: both sources score 0.
    let swapped = [good[1].clone(), good[0].clone()];
    let tv = score_sample(&swapped, &a, &Protocol::tvsl()).unwrap();
    assert_eq!(cious(&tv), vec![0.0, 0.0]);
    assert!(matches!(
        score_sample(&good[..1], &a, &Protocol::tvsl()),
        Err(EvalError::Incompatible { .. })
    ));
}

#[test]
fn single_source_protocols_refuse_several_maps() {
    let a = ann(&[&[A]], FrameLayout::Shared);
    let m = indicator(&[A]);
    assert!(matches!(
        score_sample(&[m.clone(), m], &a, &Protocol::lvs()),
        Err(EvalError::Incompatible { .. })
    ));
}

#[test]
fn failure_entries_are_zero() {
    let a = ann(&[&[A], &[B]], FrameLayout::Shared);
    let f = failure(&a, &Protocol::oassl());
    assert_eq!(cious(&f), vec![0.0, 0.0]);
    assert_eq!(f.piap, Some(0.0));
    assert!(f.missing_map);
}
