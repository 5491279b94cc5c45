//! Plain f64 re-implementations of the losses, written loop by loop from the formulas in docs/method.md §3 and
//! independent of libtorch, used as the reference in the loss tests. Index loops mirror the Σ of the
//! formulas on purpose.

#![allow(clippy::needless_range_loop)]

pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

fn norm(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|x| x / n).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Trimap thresholds (α_p, α_n, ω).
pub(crate) struct Tri(pub f64, pub f64, pub f64);

impl Tri {
    pub(crate) fn pos(&self, s: f64) -> f64 {
        sigmoid((s - self.0) / self.2)
    }
    pub(crate) fn neg(&self, s: f64) -> f64 {
        1.0 - sigmoid((s - self.1) / self.2)
    }
}

/// L_LVS; `sim[i][j][x]`.
pub(crate) fn lvs(sim: &[Vec<Vec<f64>>], tri: &Tri, t: f64) -> f64 {
    let b = sim.len();
    let wmean = |w: &dyn Fn(f64) -> f64, s: &[f64]| {
        let num: f64 = s.iter().map(|&v| w(v) * v).sum();
        let den: f64 = s.iter().map(|&v| w(v)).sum();
        num / den
    };
    let mut total = 0.0;
    for i in 0..b {
        let p = wmean(&|v| tri.pos(v), &sim[i][i]);
        let h = wmean(&|v| tri.neg(v), &sim[i][i]);
        let mut logits = vec![p / t, h / t];
        for j in (0..b).filter(|&j| j != i) {
            logits.push(wmean(&|v| tri.pos(v), &sim[i][j]) / t);
        }
        total += log_sum_exp(&logits) - p / t;
    }
    total / b as f64
}

/// L_oca; `visual[i][x]` is pixel x's C-vector (unit), `smap[i][x]`, `fg[i]`, `bg[i]` unit vectors.
pub(crate) fn oca(
    visual: &[Vec<Vec<f64>>],
    smap: &[Vec<f64>],
    fg: &[Vec<f64>],
    bg: &[Vec<f64>],
    tri: &Tri,
    t: f64,
    delta: f64,
) -> f64 {
    let b = visual.len();
    let c = fg[0].len();
    let pool = |i: usize, w: &dyn Fn(f64) -> f64| {
        let mut acc = vec![0.0; c];
        let mut den = 0.0;
        for (x, f) in visual[i].iter().enumerate() {
            let m = w(smap[i][x]);
            den += m;
            for ch in 0..c {
                acc[ch] += m * f[ch];
            }
        }
        norm(&acc.iter().map(|a| a / den).collect::<Vec<_>>())
    };
    let vp: Vec<Vec<f64>> = (0..b).map(|i| pool(i, &|s| tri.pos(s))).collect();
    let vn: Vec<Vec<f64>> = (0..b).map(|i| pool(i, &|s| tri.neg(s))).collect();
    let term = |anchor: &[Vec<f64>], hard: &[Vec<f64>], refs: &[Vec<f64>]| {
        let mut total = 0.0;
        for i in 0..b {
            let pos = dot(&anchor[i], &refs[i]) / t;
            let mut logits = vec![pos, dot(&hard[i], &refs[i]) / t];
            for j in (0..b).filter(|&j| j != i && dot(&refs[j], &refs[i]) <= delta) {
                logits.push(dot(&anchor[j], &refs[i]) / t);
            }
            total += log_sum_exp(&logits) - pos;
        }
        total / b as f64
    };
    (term(&vp, &vn, fg) + term(&vn, &vp, bg)) / 2.0
}

/// Standard-domain Sinkhorn (u ← μ/Kv, v ← ν/Kᵀu) returning ⟨Π, C⟩; `cost[p][q]`.
pub(crate) fn sinkhorn_cost(
    mu: &[f64],
    nu: &[f64],
    cost: &[Vec<f64>],
    eps: f64,
    iters: usize,
) -> f64 {
    let (n, m) = (mu.len(), nu.len());
    let k: Vec<Vec<f64>> = cost
        .iter()
        .map(|row| row.iter().map(|c| (-c / eps).exp()).collect())
        .collect();
    let mut u = vec![1.0; n];
    let mut v = vec![1.0; m];
    for _ in 0..iters {
        for p in 0..n {
            u[p] = mu[p] / (0..m).map(|q| k[p][q] * v[q]).sum::<f64>();
        }
        for q in 0..m {
            v[q] = nu[q] / (0..n).map(|p| k[p][q] * u[p]).sum::<f64>();
        }
    }
    (0..n)
        .flat_map(|p| (0..m).map(move |q| (p, q)))
        .map(|(p, q)| u[p] * k[p][q] * v[q] * cost[p][q])
        .sum()
}

/// L_ori with min–max scaling; `visual[i][x]` unit C-vectors on an h×w grid, `refs[i][r]` unit vectors.
pub(crate) fn ori(
    visual: &[Vec<Vec<f64>>],
    refs: &[Vec<Vec<f64>>],
    h: usize,
    w: usize,
    eps: f64,
    iters: usize,
) -> f64 {
    let b = visual.len();
    let n = h * w;
    let coord = |x: usize| {
        let (y, xx) = (x / w, x % w);
        (
            y as f64 / (h - 1).max(1) as f64,
            xx as f64 / (w - 1).max(1) as f64,
        )
    };
    let mut total = 0.0;
    for i in 0..b {
        let maps: Vec<Vec<f64>> = refs[i]
            .iter()
            .map(|r| {
                let s: Vec<f64> = visual[i].iter().map(|f| dot(f, r)).collect();
                let lo = s.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                s.iter().map(|v| (v - lo) / (hi - lo).max(1e-6)).collect()
            })
            .collect();
        for a in 0..maps.len() {
            for c in (0..maps.len()).filter(|&c| c != a) {
                let region: Vec<f64> = maps[a].clone();
                let comp: Vec<f64> = maps[c].iter().map(|v| 1.0 - v).collect();
                let mass = |t: &[f64]| {
                    let s: f64 = t.iter().map(|v| v + 1e-6).sum();
                    t.iter().map(|v| (v + 1e-6) / s).collect::<Vec<_>>()
                };
                let cost: Vec<Vec<f64>> = (0..n)
                    .map(|p| {
                        (0..n)
                            .map(|q| {
                                let ((y1, x1), (y2, x2)) = (coord(p), coord(q));
                                (region[p] - comp[q]).abs()
                                    + ((y1 - y2).powi(2) + (x1 - x2).powi(2)).sqrt()
                            })
                            .collect()
                    })
                    .collect();
                total += sinkhorn_cost(&mass(&region), &mass(&comp), &cost, eps, iters);
            }
        }
    }
    total / b as f64
}

/// Deterministic values in [−1, 1) from a linear congruential generator (test data only).
pub(crate) fn lcg_values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = (state * 1_103_515_245 + 12_345) % (1 << 31);
            2.0 * state as f64 / (1u64 << 31) as f64 - 1.0
        })
        .collect()
}

/// `n` unit vectors of width `c` from [`lcg_values`].
pub(crate) fn unit_vectors(n: usize, c: usize, seed: u64) -> Vec<Vec<f64>> {
    lcg_values(n * c, seed).chunks(c).map(norm).collect()
}
