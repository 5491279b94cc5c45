//! Hand-derived values for 2x2 -> 4x4 on `src[y][x] = x + 2y`.
//!
//! Along one axis (input `[0, 1]`, output 4) the source positions are `-0.25, 0.25, 0.75, 1.25`
//! (half-pixel) or `0, 1/3, 2/3, 1` (align_corners). Weights sum to one per axis, so the 2-D
//! output is `X[x] + 2·Y[y]` with `X = Y` the 1-D result.
//! Cubic, a = −0.75, t = 0.25: `W2(1.25) = −0.10546875, W1(0.25) = 0.87890625,
//! W1(0.75) = 0.26171875, W2(1.75) = −0.03515625` (all dyadic, exact in f32).

use super::*;

fn ramp() -> Map {
    Map::from_vec(2, 2, vec![0.0, 1.0, 2.0, 3.0]).unwrap()
}

fn check(kind: Upsample, axis: [f64; 4]) {
    let out = resize(&ramp(), 4, 4, kind).unwrap();
    for y in 0..4 {
        for x in 0..4 {
            let want = axis[x] + 2.0 * axis[y];
            assert!(
                (out.at(y, x) - want).abs() < 1e-12,
                "{kind:?} ({y},{x}): {} vs {want}",
                out.at(y, x)
            );
        }
    }
}

#[test]
fn cv_linear_2x2_to_4x4() {
    // -0.25 -> clamped to index 0; 1.25 -> sx = 1 = in-1, t forced to 0.
    check(Upsample::CvLinear, [0.0, 0.25, 0.75, 1.0]);
}

#[test]
fn torch_bilinear_2x2_to_4x4() {
    check(
        Upsample::TorchBilinear {
            align_corners: false,
        },
        [0.0, 0.25, 0.75, 1.0],
    );
    check(
        Upsample::TorchBilinear {
            align_corners: true,
        },
        [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0],
    );
}

#[test]
fn cv_cubic_2x2_to_4x4() {
    // d=0: t=0.75, taps clamp to (0,0,0,1) -> W2(1.25) = -0.10546875;
    // d=1: t=0.25, taps (0,0,1,1) -> W1(0.75)+W2(1.75) = 0.2265625; the rest by symmetry.
    check(
        Upsample::CvCubic,
        [-0.10546875, 0.2265625, 0.7734375, 1.10546875],
    );
}

#[test]
fn torch_bicubic_2x2_to_4x4() {
    check(
        Upsample::TorchBicubic {
            align_corners: false,
        },
        [-0.10546875, 0.2265625, 0.7734375, 1.10546875],
    );
    // align_corners: t = 1/3, taps (0,0,1,1) -> W1(2/3) + W2(5/3) = 10/27 - 1/18 = 17/54.
    check(
        Upsample::TorchBicubic {
            align_corners: true,
        },
        [0.0, 17.0 / 54.0, 37.0 / 54.0, 1.0],
    );
}

#[test]
fn cubic_weights_sum_to_one_and_identity_at_zero() {
    assert_eq!(cv_cubic_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
    let w = cv_cubic_weights(0.25);
    assert_eq!(w, [-0.10546875, 0.87890625, 0.26171875, -0.03515625]);
}

#[test]
fn identity_resize_is_a_copy_and_2x_linear_downscale_is_refused() {
    let m = ramp();
    assert_eq!(resize(&m, 2, 2, Upsample::CvCubic).unwrap(), m);
    let big = Map::zeros(4, 4);
    assert!(matches!(
        resize(&big, 2, 2, Upsample::CvLinear),
        Err(EvalError::UnsupportedResize(_))
    ));
}
