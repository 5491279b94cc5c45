//! Entropic optimal transport by Sinkhorn iterations in the log domain (Cuturi, NeurIPS 2013; the
//! supplementary's solver for L_ori, 100 iterations).
//!
//! For marginals μ ∈ Δ^N, ν ∈ Δ^M and cost C ∈ R^{N×M}, with potentials f, g (log u, log v) starting at 0:
//!
//! ```text
//! f_i ← log μ_i − logsumexp_j(−C_ij/ε + g_j)
//! g_j ← log ν_j − logsumexp_i(−C_ij/ε + f_i)
//! Π_ij = exp(f_i − C_ij/ε + g_j),   D(μ, ν) = ⟨Π, C⟩ = Σ_ij Π_ij C_ij
//! ```
//!
//! This is the `u ← μ/(Kv)`, `v ← ν/(Kᵀu)` scaling of docs/method.md §3.4 written with logsumexp, so a small ε
//! cannot underflow the kernel. All leading dimensions are batch dimensions and every update is one tensor op
//! over the whole batch. The loop is unrolled into the autograd graph, so gradients reach μ, ν and C.
//! After the last update the column marginals Σ_i Π_ij equal ν exactly; the row marginals converge.

use crate::error::{Result, TrainError};
use tch::{Kind, Tensor};

/// Floor applied to the marginals before the log, so empty bins give a finite potential.
const MASS_FLOOR: f64 = 1e-30;

/// Transport plan and cost of a batch of problems.
#[derive(Debug)]
pub struct Transport {
    /// Π, `[..., N, M]`.
    pub plan: Tensor,
    /// ⟨Π, C⟩, `[...]`.
    pub cost: Tensor,
}

/// Solves `mu [..., N]`, `nu [..., M]`, `cost [..., N, M]` with regularisation `epsilon` and a fixed number
/// of `iterations`. The marginals must each sum to 1 along their last dimension (not checked: that needs a
/// device sync).
pub fn sinkhorn(
    mu: &Tensor,
    nu: &Tensor,
    cost: &Tensor,
    epsilon: f64,
    iterations: usize,
) -> Result<Transport> {
    const OP: &str = "sinkhorn";
    let (mu_s, nu_s, c_s) = (mu.size(), nu.size(), cost.size());
    if epsilon.is_nan() || epsilon <= 0.0 {
        return Err(TrainError::Config {
            field: "sinkhorn_epsilon",
            reason: format!("must be > 0, got {epsilon}"),
        });
    }
    if mu_s.is_empty()
        || nu_s.len() != mu_s.len()
        || mu_s[..mu_s.len() - 1] != nu_s[..nu_s.len() - 1]
    {
        return Err(TrainError::Shape {
            op: OP,
            input: "nu",
            expected: format!("[..., M] with the leading dims of mu {mu_s:?}"),
            actual: nu_s,
        });
    }
    let lead = &mu_s[..mu_s.len() - 1];
    let mut want = lead.to_vec();
    want.extend([mu_s[mu_s.len() - 1], nu_s[nu_s.len() - 1]]);
    if c_s != want {
        return Err(TrainError::Shape {
            op: OP,
            input: "cost",
            expected: format!("{want:?}"),
            actual: c_s,
        });
    }
    let log_mu = mu.clamp_min(MASS_FLOOR).log();
    let log_nu = nu.clamp_min(MASS_FLOOR).log();
    let log_kernel = cost / -epsilon;
    let mut f = log_mu.zeros_like();
    let mut g = log_nu.zeros_like();
    for _ in 0..iterations {
        f = &log_mu - (&log_kernel + g.unsqueeze(-2)).logsumexp(-1, false);
        g = &log_nu - (&log_kernel + f.unsqueeze(-1)).logsumexp(-2, false);
    }
    let plan = (f.unsqueeze(-1) + &log_kernel + g.unsqueeze(-2)).exp();
    let transport_cost = (&plan * cost).sum_dim_intlist(&[-2i64, -1][..], false, None::<Kind>);
    Ok(Transport {
        plan,
        cost: transport_cost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], dims: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(dims)
    }

    fn vec(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.flatten(0, -1)).unwrap()
    }

    /// Squared-distance cost between 1-D point sets.
    fn sq_cost(x: &[f64], y: &[f64]) -> Vec<f64> {
        x.iter()
            .flat_map(|a| y.iter().map(move |b| (a - b) * (a - b)))
            .collect()
    }

    #[test]
    fn one_d_sorted_matching_is_the_optimum() {
        // Uniform mass on x and on a shuffled y: the optimal plan matches sorted x to sorted y (convex cost),
        // here x_i ↔ y_sorted_i with squared gaps 0.01, 0.04, 0.09 → cost (0.01 + 0.04 + 0.09)/3.
        let x = [0.0, 1.0, 2.0];
        let y = [2.3, 0.1, 1.2];
        let mu = t(&[1.0 / 3.0; 3], &[3]);
        let out = sinkhorn(&mu, &mu, &t(&sq_cost(&x, &y), &[3, 3]), 0.05, 100).unwrap();
        let cost = f64::try_from(&out.cost).unwrap();
        assert!((cost - 0.14 / 3.0).abs() < 1e-4, "cost {cost}");
        // The plan is (nearly) the permutation x0→y1, x1→y2, x2→y0.
        let plan = vec(&out.plan);
        for (i, j) in [(0usize, 1usize), (1, 2), (2, 0)] {
            assert!((plan[i * 3 + j] - 1.0 / 3.0).abs() < 1e-4);
        }
    }

    #[test]
    fn identical_distributions_cost_nothing() {
        let x = [0.0, 0.5, 1.0, 1.5];
        let mu = t(&[0.1, 0.2, 0.3, 0.4], &[4]);
        let out = sinkhorn(&mu, &mu, &t(&sq_cost(&x, &x), &[4, 4]), 0.01, 100).unwrap();
        assert!(f64::try_from(&out.cost).unwrap().abs() < 1e-4);
    }

    #[test]
    fn batched_plans_have_the_given_marginals() {
        // Two independent problems with non-uniform marginals and an irregular cost.
        let mu = t(&[0.5, 0.3, 0.2, 0.1, 0.1, 0.8], &[2, 3]);
        let nu = t(&[0.25, 0.25, 0.5, 0.6, 0.2, 0.2], &[2, 3]);
        let cost_values: Vec<f64> = (0..18).map(|k| ((k * 7) % 5) as f64 * 0.3).collect();
        // ε = 0.3 against costs up to 1.2: 100 iterations converge (far smaller ε needs more iterations).
        let out = sinkhorn(&mu, &nu, &t(&cost_values, &[2, 3, 3]), 0.3, 100).unwrap();
        let rows = vec(&out.plan.sum_dim_intlist(-1i64, false, None::<Kind>));
        let cols = vec(&out.plan.sum_dim_intlist(-2i64, false, None::<Kind>));
        for (got, want) in rows.iter().zip(vec(&mu)).chain(cols.iter().zip(vec(&nu))) {
            assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        }
        assert_eq!(out.cost.size(), [2]);
    }

    #[test]
    fn gradient_reaches_cost_and_marginals() {
        let mu = t(&[0.7, 0.3], &[2]).set_requires_grad(true);
        let nu = t(&[0.4, 0.6], &[2]);
        let cost = t(&[0.0, 1.0, 1.0, 0.0], &[2, 2]).set_requires_grad(true);
        let out = sinkhorn(&mu, &nu, &cost, 0.1, 100).unwrap();
        // Optimal: keep 0.4 and 0.3 in place, move 0.3 across at cost 1.
        assert!((f64::try_from(&out.cost).unwrap() - 0.3).abs() < 0.01);
        out.cost.backward();
        let gc = vec(&cost.grad());
        let gm = vec(&mu.grad());
        assert!(gc.iter().chain(&gm).all(|v| v.is_finite()));
        assert!(
            gc[1] > 0.1,
            "moving mass 0→1 is what the plan pays for: {gc:?}"
        );
        assert!(gm.iter().any(|v| v.abs() > 1e-3));
    }

    #[test]
    fn bad_cost_shape_is_named() {
        let mu = t(&[0.5, 0.5], &[2]);
        let err = sinkhorn(&mu, &mu, &t(&[0.0; 6], &[2, 3]), 0.1, 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`cost`"), "{err}");
    }
}
