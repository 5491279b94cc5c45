//! L_ori, object region isolation (supplementary Algorithm 1; choices of docs/method.md §3.4 and §11.7).
//!
//! References `F_r = [F_r^p ; l_r^n]` (K foreground captions and the background caption, R = K + 1) give
//! maps `S_r[k](x) = cos(F_v(x), F_r[k])`, rescaled to [0, 1] per map (min–max by default, or (S + 1)/2).
//! For every ordered pair n ≠ m:
//!
//! ```text
//! μ = (S̄_n + φ) / Σ(S̄_n + φ),   ν = (1 − S̄_m + φ) / Σ(1 − S̄_m + φ)        (φ = 1e-6 keeps flat maps defined)
//! C_pq = |S̄_n(p) − (1 − S̄_m)(q)| + λ_c ‖c_p − c_q‖₂                    (c = pixel centre, rows and columns
//!                                                                          scaled to [0, 1]; λ_c = 1)
//! D(n, m) = ⟨Π*, C⟩,  Π* = Sinkhorn(μ, ν, C; ε, 100 iterations)
//! L_ori = (1/B) Σ_i Σ_{n≠m} D_i(n, m)
//! ```
//!
//! Making each reference's region look like the complement of every other reference's region pushes the
//! sound-making objects, and the background, into disjoint parts of the frame. All B·R(R−1) transport
//! problems are solved together by one batched [`sinkhorn`] call.

use crate::error::{Result, TrainError};
pub use crate::loss::config::MapScaling;
use crate::loss::sinkhorn::sinkhorn;
use crate::model::sound_map::reference_maps;
use crate::shape::expect_dims;
use tch::{Kind, Tensor};

/// Mass added to every pixel before normalising a map into a distribution.
const MASS_FLOOR: f64 = 1e-6;

/// L_ori's constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OriParams {
    /// Map rescaling.
    pub scaling: MapScaling,
    /// Sinkhorn ε.
    pub epsilon: f64,
    /// Sinkhorn iterations.
    pub iterations: usize,
    /// λ_c, weight of the coordinate distance in the cost.
    pub coordinate_weight: f64,
}

/// Rescales `maps [B, R, N]` to [0, 1] per map.
fn rescale(maps: &Tensor, scaling: MapScaling) -> Tensor {
    match scaling {
        MapScaling::Affine => (maps + 1.0) / 2.0,
        MapScaling::MinMax => {
            let lo = maps.amin(-1, true);
            let hi = maps.amax(-1, true);
            (maps - &lo) / (hi - lo).clamp_min(1e-6)
        }
    }
}

/// Pairwise Euclidean distances between the pixel centres of an h×w grid, coordinates scaled to [0, 1]:
/// `[N, N]`.
fn coordinate_distance(h: i64, w: i64, kind: Kind, device: tch::Device) -> Tensor {
    let scale = |n: i64| if n > 1 { 1.0 / (n - 1) as f64 } else { 0.0 };
    let ys = Tensor::arange(h, (kind, device)) * scale(h);
    let xs = Tensor::arange(w, (kind, device)) * scale(w);
    let grid = Tensor::stack(
        &[
            ys.unsqueeze(1).expand([h, w], false),
            xs.unsqueeze(0).expand([h, w], false),
        ],
        -1,
    )
    .view([h * w, 2]);
    (grid.unsqueeze(1) - grid.unsqueeze(0))
        .square()
        .sum_dim_intlist(-1i64, false, None::<Kind>)
        .sqrt()
}

/// L_ori: `visual [B, C, h, w]` (unit per pixel), `refs [B, R, C]` (unit length, foreground captions then the
/// background caption), optional `valid [B, R]` marking real references (padding pairs get weight 0) → scalar.
pub fn object_region_isolation(
    visual: &Tensor,
    refs: &Tensor,
    valid: Option<&Tensor>,
    params: &OriParams,
) -> Result<Tensor> {
    const OP: &str = "object_region_isolation";
    let v = expect_dims(OP, "visual", visual, &[None, None, None, None])?;
    let r = expect_dims(OP, "refs", refs, &[Some(v[0]), None, Some(v[1])])?;
    let (b, n_refs, h, w) = (v[0], r[1], v[2], v[3]);
    if n_refs < 2 {
        return Err(TrainError::Shape {
            op: OP,
            input: "refs",
            expected: "[B, R, C] with R >= 2".into(),
            actual: r,
        });
    }
    let n = h * w;
    let (kind, device) = (visual.kind(), visual.device());
    let maps = rescale(
        &reference_maps(visual, refs)?.view([b, n_refs, n]),
        params.scaling,
    );

    let (first, second) = ordered_pairs(n_refs, device);
    let region = maps.index_select(1, &first); // [B, P, N]: S̄_n
    let complement: Tensor = 1.0 - maps.index_select(1, &second); // [B, P, N]: 1 − S̄_m
    let to_mass = |t: &Tensor| {
        let t = t + MASS_FLOOR;
        let total = t.sum_dim_intlist(-1i64, true, None::<Kind>);
        t / total
    };
    let cost = (region.unsqueeze(-1) - complement.unsqueeze(-2)).abs()
        + coordinate_distance(h, w, kind, device) * params.coordinate_weight;
    let transport = sinkhorn(
        &to_mass(&region),
        &to_mass(&complement),
        &cost,
        params.epsilon,
        params.iterations,
        cost_bound(params.coordinate_weight),
    )?;
    let per_pair = match valid {
        None => transport.cost,
        Some(m) => {
            expect_dims(OP, "valid", m, &[Some(b), Some(n_refs)])?;
            let m = m.to_kind(kind);
            transport.cost * m.index_select(1, &first) * m.index_select(1, &second)
        }
    };
    Ok(per_pair.sum(kind) / b as f64)
}

/// A bound on |C|: rescaled maps lie in [0, 1], so the value term is at most 1, and scaled pixel centres are at
/// most √2 apart.
fn cost_bound(coordinate_weight: f64) -> f64 {
    1.0 + std::f64::consts::SQRT_2 * coordinate_weight.abs()
}

/// Every ordered pair `(a, c)`, `a ≠ c`, of `0..r` in lexicographic order, as two index tensors on `device`.
/// Built there from `arange` (pair p is `a = p / (r − 1)`, `c = j + [j ≥ a]` with `j = p mod (r − 1)`), so a
/// step copies nothing from the host.
fn ordered_pairs(r: i64, device: tch::Device) -> (Tensor, Tensor) {
    let p = Tensor::arange(r * (r - 1), (Kind::Int64, device));
    let first = p.divide_scalar_mode(r - 1, "floor");
    let j = p.remainder(r - 1);
    let second = &j + j.ge_tensor(&first).to_kind(Kind::Int64);
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::reference;

    const B: usize = 2;
    const C: usize = 3;
    const R: usize = 3;

    fn params(iterations: usize) -> OriParams {
        OriParams {
            scaling: MapScaling::MinMax,
            epsilon: 0.1,
            iterations,
            coordinate_weight: 1.0,
        }
    }

    /// Per-sample pixel vectors and references as nested vectors, and the same as tensors.
    type Case = (Vec<Vec<Vec<f64>>>, Vec<Vec<Vec<f64>>>, Tensor, Tensor);

    fn case() -> Case {
        let pixels = reference::unit_vectors(B * 9, C, 41);
        let refs = reference::unit_vectors(B * R, C, 43);
        let visual: Vec<Vec<Vec<f64>>> = pixels.chunks(9).map(|p| p.to_vec()).collect();
        let refs: Vec<Vec<Vec<f64>>> = refs.chunks(R).map(|r| r.to_vec()).collect();
        let flat: Vec<f64> = visual.iter().flatten().flatten().cloned().collect();
        let vt = Tensor::from_slice(&flat)
            .view([B as i64, 9, C as i64])
            .transpose(1, 2)
            .reshape([B as i64, C as i64, 3, 3]);
        let flat: Vec<f64> = refs.iter().flatten().flatten().cloned().collect();
        let rt = Tensor::from_slice(&flat).view([B as i64, R as i64, C as i64]);
        (visual, refs, vt, rt)
    }

    #[test]
    fn matches_f64_reference() {
        let (visual, refs, vt, rt) = case();
        let got =
            f64::try_from(object_region_isolation(&vt, &rt, None, &params(100)).unwrap()).unwrap();
        let want = reference::ori(&visual, &refs, 3, 3, 0.1, 100);
        assert!(
            (got - want).abs() < 1e-8 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }

    #[test]
    fn padded_references_drop_out() {
        // Marking reference 2 as padding leaves exactly the pairs (0, 1) and (1, 0).
        let (visual, refs, vt, rt) = case();
        let valid = Tensor::from_slice(&[true, true, false, true, true, false]).view([2, 3]);
        let got =
            f64::try_from(object_region_isolation(&vt, &rt, Some(&valid), &params(100)).unwrap())
                .unwrap();
        let two: Vec<Vec<Vec<f64>>> = refs.iter().map(|r| r[..2].to_vec()).collect();
        let want = reference::ori(&visual, &two, 3, 3, 0.1, 100);
        assert!(
            (got - want).abs() < 1e-8 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }

    #[test]
    fn gradient_is_finite_and_nonzero() {
        let (_, _, vt, rt) = case();
        let (vt, rt) = (vt.set_requires_grad(true), rt.set_requires_grad(true));
        object_region_isolation(&vt, &rt, None, &params(100))
            .unwrap()
            .backward();
        for (name, t) in [("visual", &vt), ("refs", &rt)] {
            let g = Vec::<f64>::try_from(t.grad().flatten(0, -1)).unwrap();
            assert!(g.iter().all(|v| v.is_finite()), "{name}");
            assert!(
                g.iter().map(|v| v.abs()).sum::<f64>() > 1e-8,
                "{name} has no gradient"
            );
        }
    }

    #[test]
    fn coordinate_distance_of_a_2x2_grid() {
        let d = coordinate_distance(2, 2, Kind::Double, tch::Device::Cpu);
        let d = Vec::<f64>::try_from(d.flatten(0, -1)).unwrap();
        // Pixels (0,0),(0,1),(1,0),(1,1) at unit spacing: the diagonal neighbours are √2 apart.
        assert_eq!(d[1], 1.0);
        assert!((d[3] - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(d[0], 0.0);
    }

    #[test]
    fn single_reference_is_rejected() {
        let (_, _, vt, rt) = case();
        let err = object_region_isolation(&vt, &rt.narrow(1, 0, 1), None, &params(10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`refs`"), "{err}");
    }

    #[test]
    fn ordered_pairs_list_every_pair_of_distinct_references_in_order() {
        for r in 2..6i64 {
            let (first, second) = ordered_pairs(r, tch::Device::Cpu);
            let got: Vec<(i64, i64)> = Vec::<i64>::try_from(&first)
                .unwrap()
                .into_iter()
                .zip(Vec::<i64>::try_from(&second).unwrap())
                .collect();
            let want: Vec<(i64, i64)> = (0..r)
                .flat_map(|a| (0..r).filter(move |&c| c != a).map(move |c| (a, c)))
                .collect();
            assert_eq!(got, want);
        }
    }
}
