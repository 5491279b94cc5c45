//! Hand-derived matching cases on 1x4 maps (one tile unless stated).

use super::*;

fn m(v: &[f64]) -> Map {
    Map::from_vec(1, v.len(), v.to_vec()).unwrap()
}

fn slots(gts: &[&[f64]]) -> Vec<GtSlot> {
    gts.iter().map(|g| GtSlot { tile: 0, map: m(g) }).collect()
}

#[test]
fn two_sources_matched_in_order_with_ap() {
    let s = slots(&[&[1.0, 1.0, 0.0, 0.0], &[0.0, 0.0, 1.0, 1.0]]);
    // Map a = G1 exactly: cIoU (0, 1) -> slot 1, AP 1.
    // Map b = {0}: vs G0 1/2 = .5, vs zeroed G1 0 -> slot 0; AP r=.5,p=1,ρ=.5 -> .75.
    let b = vec![
        vec![m(&[0.0, 0.0, 1.0, 1.0])],
        vec![m(&[1.0, 0.0, 0.0, 0.0])],
    ];
    let r = greedy_match(&b, &s, true).unwrap();
    assert_eq!(r.entries.len(), 2);
    assert_eq!((r.entries[0].ciou, r.entries[0].slot), (1.0, Some(1)));
    assert_eq!(r.entries[0].ap, Some(1.0));
    assert_eq!((r.entries[1].ciou, r.entries[1].slot), (0.5, Some(0)));
    assert_eq!(r.entries[1].ap, Some(0.75));
}

#[test]
fn more_maps_than_sources_score_against_zeroed_gt() {
    let s = slots(&[&[1.0, 1.0, 0.0, 0.0]]);
    let b = vec![vec![m(&[1.0, 1.0, 0.0, 0.0])], vec![m(&[1.0; 4])]];
    let r = greedy_match(&b, &s, true).unwrap();
    assert_eq!(r.entries.len(), 2);
    assert_eq!(r.entries[0].ciou, 1.0);
    // Second map: 0 / (0 + 4) = 0 against the zeroed slot; AP with no positive label = 0.
    assert_eq!((r.entries[1].ciou, r.entries[1].ap), (0.0, Some(0.0)));
}

#[test]
fn fewer_maps_than_sources_are_padded_with_zeros() {
    let s = slots(&[&[1.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 1.0]]);
    let b = vec![vec![m(&[0.0, 0.0, 0.0, 1.0])]];
    let r = greedy_match(&b, &s, true).unwrap();
    assert_eq!(r.entries.len(), 2);
    assert_eq!(r.entries[0].slot, Some(1));
    assert_eq!(r.entries[1].slot, None);
    assert_eq!((r.entries[1].ciou, r.entries[1].ap), (0.0, Some(0.0)));
}

#[test]
fn all_zero_scores_still_consume_the_first_slot() {
    // First map misses both slots: argmax of (0, 0) is slot 0, which gets zeroed, so the
    // second map, a perfect match for G0, now scores 0 everywhere and lands on slot 0 again.
    let s = slots(&[&[1.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 1.0]]);
    let b = vec![
        vec![m(&[0.0, 1.0, 1.0, 0.0])],
        vec![m(&[1.0, 0.0, 0.0, 0.0])],
    ];
    let r = greedy_match(&b, &s, false).unwrap();
    assert_eq!(r.entries[0].slot, Some(0));
    assert_eq!((r.entries[1].ciou, r.entries[1].slot), (0.0, Some(0)));
    assert_eq!(r.entries[1].ap, None);
}

#[test]
fn empty_prediction_against_zeroed_slot_is_nan_and_wins_argmax() {
    // Map 2 is empty: vs zeroed G0 0/0 = NaN, vs G1 0/1 = 0; numpy argmax picks the NaN.
    let s = slots(&[&[1.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 1.0]]);
    let b = vec![vec![m(&[1.0, 0.0, 0.0, 0.0])], vec![m(&[0.0; 4])]];
    let r = greedy_match(&b, &s, false).unwrap();
    assert_eq!(r.entries[1].slot, Some(0));
    assert!(r.entries[1].ciou.is_nan());
}

#[test]
fn tiles_select_the_slot_frame() {
    // Two tiles; slot k lives in tile k. Map 0 is empty in tile 0 and hits tile 1 exactly.
    let s = vec![
        GtSlot {
            tile: 0,
            map: m(&[1.0, 1.0, 0.0, 0.0]),
        },
        GtSlot {
            tile: 1,
            map: m(&[0.0, 1.0, 1.0, 0.0]),
        },
    ];
    let b = vec![vec![m(&[0.0; 4]), m(&[0.0, 1.0, 1.0, 0.0])]];
    let r = greedy_match(&b, &s, false).unwrap();
    assert_eq!((r.entries[0].ciou, r.entries[0].slot), (1.0, Some(1)));
    assert_eq!((r.entries[1].ciou, r.entries[1].slot), (0.0, None));
}

#[test]
fn consensus_labels_fail_cap() {
    let s = slots(&[&[0.5, 1.0, 0.0, 0.0]]);
    let b = vec![vec![m(&[1.0, 0.0, 0.0, 0.0])]];
    assert!(greedy_match(&b, &s, true).is_err());
    assert_eq!(np_argmax(&[0.0, 2.0, 2.0]), 1);
}
