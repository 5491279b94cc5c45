//! Adam (Kingma & Ba) over a `VarStore`'s trainable variables, with its state kept in named tensors so a
//! checkpoint can hold it (libtorch's optimizer state is not reachable from tch).
//!
//! ```text
//! m_t = β1·m_{t−1} + (1 − β1)·g_t          v_t = β2·v_{t−1} + (1 − β2)·g_t²
//! θ_t = θ_{t−1} − lr · (m_t / (1 − β1^t)) / (√(v_t / (1 − β2^t)) + ε)
//! ```
//!
//! With loss scaling (fp16 autocast), gradients arrive multiplied by `s` and are divided by it first; a step
//! whose gradients are not all finite is skipped and `s` halved, and `s` doubles after 2,000 clean steps
//! (the usual dynamic scaler).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{nn, Kind, Tensor};

/// Adam hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    /// Learning rate.
    pub lr: f64,
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
}

impl Default for AdamParams {
    /// The paper's settings (lr 1e-4, β = (0.9, 0.999)) with PyTorch's ε.
    fn default() -> Self {
        Self {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Clean steps after which the loss scale doubles.
const SCALE_GROWTH_INTERVAL: u64 = 2000;

/// The optimizer and its state.
pub struct Adam {
    params: AdamParams,
    /// Trainable variables by name, sorted.
    vars: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Number of updates applied (t).
    pub t: u64,
    /// Current loss scale (1 without autocast).
    pub loss_scale: f64,
    /// Clean steps since the scale last changed.
    pub clean_steps: u64,
}

impl Adam {
    /// Adam over every variable of `vs` that requires a gradient.
    pub fn new(vs: &nn::VarStore, params: AdamParams, loss_scale: f64) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let m = vars.iter().map(|(_, t)| t.zeros_like()).collect();
        let v = vars.iter().map(|(_, t)| t.zeros_like()).collect();
        Self {
            params,
            vars,
            m,
            v,
            t: 0,
            loss_scale,
            clean_steps: 0,
        }
    }

    /// Clears the gradients.
    pub fn zero_grad(&mut self) {
        for (_, var) in &mut self.vars {
            var.zero_grad();
        }
    }

    /// Applies one update from the current gradients; returns false when it was skipped because a gradient
    /// was not finite (only with loss scaling, `scaled = true`).
    pub fn step(&mut self, scaled: bool) -> Result<bool> {
        let _guard = tch::no_grad_guard();
        let inv = 1.0 / self.loss_scale;
        if scaled {
            // One stacked reduction, one host read: a read per tensor would wait on the device ~60 times a step.
            let checks: Vec<Tensor> = self
                .vars
                .iter()
                .map(|(_, var)| var.grad())
                .filter(|g| g.defined())
                .map(|g| g.isfinite().all())
                .collect();
            let finite = checks.is_empty() || bool::try_from(Tensor::stack(&checks, 0).all())?;
            if !finite {
                self.loss_scale = (self.loss_scale / 2.0).max(1.0);
                self.clean_steps = 0;
                return Ok(false);
            }
        }
        self.t += 1;
        let AdamParams {
            lr,
            beta1,
            beta2,
            eps,
        } = self.params;
        let bc1 = 1.0 - beta1.powi(self.t as i32);
        let bc2 = 1.0 - beta2.powi(self.t as i32);
        for (((_, var), m), v) in self.vars.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            let g = var.grad();
            if !g.defined() {
                continue;
            }
            let g = if scaled { g * inv } else { g };
            let _ = m.f_mul_scalar_(beta1)?.f_add_(&(&g * (1.0 - beta1)))?;
            let _ = v.f_mul_scalar_(beta2)?.f_add_(&(&g * &g * (1.0 - beta2)))?;
            let denom = (&*v / bc2).sqrt() + eps;
            let update = &*m / denom * (lr / bc1);
            let _ = var.f_sub_(&update)?;
        }
        if scaled {
            self.clean_steps += 1;
            if self.clean_steps >= SCALE_GROWTH_INTERVAL {
                self.loss_scale *= 2.0;
                self.clean_steps = 0;
            }
        }
        Ok(true)
    }

    /// Writes `m.<name>` and `v.<name>` for every variable to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(2 * self.vars.len());
        for ((name, _), (m, v)) in self.vars.iter().zip(self.m.iter().zip(&self.v)) {
            named.push((format!("m.{name}"), m.to_device(tch::Device::Cpu)));
            named.push((format!("v.{name}"), v.to_device(tch::Device::Cpu)));
        }
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        Tensor::write_safetensors(&refs, path)
            .with_context(|| format!("writing optimizer state {}", path.display()))
    }

    /// Reads the moments written by [`Adam::save`]; every variable must be present with its shape.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let file: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
            .with_context(|| format!("reading optimizer state {}", path.display()))?
            .into_iter()
            .collect();
        let _guard = tch::no_grad_guard();
        for ((name, var), (m, v)) in self
            .vars
            .iter()
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            for (kind, dst) in [("m", m), ("v", v)] {
                let key = format!("{kind}.{name}");
                let Some(src) = file.get(&key) else {
                    bail!("{}: optimizer state lacks `{key}`", path.display());
                };
                if src.size() != var.size() {
                    bail!(
                        "{}: `{key}` has shape {:?}, the model {:?}",
                        path.display(),
                        src.size(),
                        var.size()
                    );
                }
                dst.f_copy_(&src.to_kind(Kind::Float))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn first_step_moves_each_weight_by_lr_against_its_gradient_sign() {
        // With m̂ = g and v̂ = g², the first update is lr·g/(|g| + ε) ≈ lr·sign(g).
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[3], nn::Init::Const(1.0));
        let params = AdamParams {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut adam = Adam::new(&vs, params, 1.0);
        adam.zero_grad();
        let loss = (&w * Tensor::from_slice(&[2.0f32, -3.0, 0.5])).sum(Kind::Float);
        loss.backward();
        assert!(adam.step(false).unwrap());
        let got: Vec<f32> = Vec::try_from(&w).unwrap();
        for (g, want) in got.iter().zip([0.9f32, 1.1, 0.9]) {
            assert!((g - want).abs() < 1e-5, "{got:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        adam.save(&path).unwrap();
        let mut other = Adam::new(&vs, params, 1.0);
        other.load(&path).unwrap();
        assert!(other.m[0].allclose(&adam.m[0], 0.0, 0.0, false));
    }

    #[test]
    fn non_finite_scaled_gradients_skip_the_step_and_halve_the_scale() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[1], nn::Init::Const(1.0));
        let params = AdamParams {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut adam = Adam::new(&vs, params, 1024.0);
        adam.zero_grad();
        (&w * f64::INFINITY).sum(Kind::Float).backward();
        assert!(!adam.step(true).unwrap());
        assert_eq!(adam.loss_scale, 512.0);
        assert_eq!(f64::try_from(&w.get(0)).unwrap(), 1.0);
    }
}
