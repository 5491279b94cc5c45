//! Adam (Kingma & Ba) over a `VarStore`'s trainable variables, with its state kept in named tensors so a
//! checkpoint can hold it (libtorch's optimizer state is not reachable from tch).
//!
//! ```text
//! m_t = β1·m_{t−1} + (1 − β1)·g_t          v_t = β2·v_{t−1} + (1 − β2)·g_t²
//! θ_t = θ_{t−1} − lr · (m_t / (1 − β1^t)) / (√(v_t / (1 − β2^t)) + ε)
//! ```
//!
//! With loss scaling (fp16 autocast), gradients arrive multiplied by `s` and are divided by it first; a step
//! whose gradients are not all finite is skipped ([`LossScaler`] has the schedule of `s`). That decision stays
//! on the device, so a step never waits for it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{nn, Kind, Tensor};

use super::loss_scaler::LossScaler;

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

/// Updates applied, loss scale and clean steps: the counters a checkpoint records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamCounters {
    /// Number of updates applied (t).
    pub t: u64,
    /// Current loss scale (1 without loss scaling).
    pub loss_scale: f64,
    /// Clean steps since the scale last changed.
    pub clean_steps: u64,
}

/// The optimizer and its state.
pub struct Adam {
    params: AdamParams,
    /// Trainable variables by name, sorted.
    vars: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Number of updates applied (t), on the host when every step applies.
    t: u64,
    /// With loss scaling, the scale and the update count live on the device (see [`LossScaler`]).
    scaler: Option<LossScaler>,
}

impl Adam {
    /// Adam over every variable of `vs` that requires a gradient; every step applies.
    pub fn new(vs: &nn::VarStore, params: AdamParams) -> Self {
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
            scaler: None,
        }
    }

    /// Adam with dynamic loss scaling (fp16 autocast) starting at `initial_scale`.
    pub fn with_loss_scaling(vs: &nn::VarStore, params: AdamParams, initial_scale: f64) -> Self {
        let adam = Self::new(vs, params);
        let device = vs.device();
        Self {
            scaler: Some(LossScaler::new(initial_scale, device)),
            ..adam
        }
    }

    /// The loss to differentiate: `loss · s` with loss scaling, `loss` itself without.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        match &self.scaler {
            Some(scaler) => loss * &scaler.scale,
            None => loss.shallow_clone(),
        }
    }

    /// Clears the gradients.
    pub fn zero_grad(&mut self) {
        for (_, var) in &mut self.vars {
            var.zero_grad();
        }
    }

    /// Applies one update from the current gradients. Without loss scaling it always applies and returns
    /// `None`. With it, gradients are divided by the scale and the step applies only if all are finite,
    /// decided on the device: it returns that decision as a 0-dim bool tensor, which the host reads with the
    /// step's loss terms instead of waiting for it here.
    pub fn step(&mut self) -> Result<Option<Tensor>> {
        let _guard = tch::no_grad_guard();
        match self.scaler.as_mut() {
            None => {
                self.t += 1;
                let bc1 = 1.0 - self.params.beta1.powi(self.t as i32);
                let bc2 = 1.0 - self.params.beta2.powi(self.t as i32);
                update_all(
                    &self.params,
                    &mut self.vars,
                    &mut self.m,
                    &mut self.v,
                    &Moments::Always { bc1, bc2 },
                )?;
                Ok(None)
            }
            Some(scaler) => {
                let grads: Vec<Tensor> = self
                    .vars
                    .iter()
                    .map(|(_, var)| var.grad())
                    .filter(|g| g.defined())
                    .collect();
                let finite = all_finite(&grads, scaler.scale.device());
                let (bc1, bc2) = scaler.bias_corrections(&finite, &self.params);
                let inv = scaler.scale.reciprocal();
                let step_size = bc1.reciprocal() * self.params.lr;
                update_all(
                    &self.params,
                    &mut self.vars,
                    &mut self.m,
                    &mut self.v,
                    &Moments::IfFinite {
                        finite: &finite,
                        inv_scale: &inv,
                        step_size: &step_size,
                        bc2: &bc2,
                    },
                )?;
                scaler.update(&finite);
                Ok(Some(finite))
            }
        }
    }

    /// The counters, read from the device when loss scaling keeps them there (one wait for the device).
    pub fn counters(&self) -> Result<AdamCounters> {
        match &self.scaler {
            None => Ok(AdamCounters {
                t: self.t,
                loss_scale: 1.0,
                clean_steps: 0,
            }),
            Some(scaler) => scaler.counters(),
        }
    }

    /// Sets the counters of a restored checkpoint.
    pub fn set_counters(&mut self, counters: AdamCounters) {
        match self.scaler.as_mut() {
            None => self.t = counters.t,
            Some(scaler) => scaler.set_counters(counters),
        }
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

/// How the moments take this step's gradients.
enum Moments<'a> {
    /// Every step applies; bias corrections computed on the host.
    Always { bc1: f64, bc2: f64 },
    /// Gradients scaled by the loss scale; the step applies where `finite` holds (device tensors throughout).
    IfFinite {
        finite: &'a Tensor,
        inv_scale: &'a Tensor,
        /// `lr / (1 − β1^t)`.
        step_size: &'a Tensor,
        bc2: &'a Tensor,
    },
}

/// `m`, `v` and the weights of every variable with a gradient.
fn update_all(
    params: &AdamParams,
    vars: &mut [(String, Tensor)],
    ms: &mut [Tensor],
    vs: &mut [Tensor],
    moments: &Moments,
) -> Result<()> {
    let AdamParams {
        lr,
        beta1,
        beta2,
        eps,
    } = *params;
    for (((_, var), m), v) in vars.iter_mut().zip(ms).zip(vs) {
        let g = var.grad();
        if !g.defined() {
            continue;
        }
        match moments {
            Moments::Always { bc1, bc2 } => {
                let _ = m.f_mul_scalar_(beta1)?.f_add_(&(&g * (1.0 - beta1)))?;
                let _ = v.f_mul_scalar_(beta2)?.f_add_(&(&g * &g * (1.0 - beta2)))?;
                let denom = (&*v / *bc2).sqrt() + eps;
                let update = &*m / denom * (lr / bc1);
                let _ = var.f_sub_(&update)?;
            }
            Moments::IfFinite {
                finite,
                inv_scale,
                step_size,
                bc2,
            } => {
                let g = g * *inv_scale;
                // A skipped step keeps the old moments; its update is zero (finite: the moments are).
                let m_new = &*m * beta1 + &g * (1.0 - beta1);
                let v_new = &*v * beta2 + &g * &g * (1.0 - beta2);
                m.f_copy_(&m_new.where_self(finite, &*m))?;
                v.f_copy_(&v_new.where_self(finite, &*v))?;
                let denom = (&*v / *bc2).sqrt() + eps;
                let update = (&*m / denom * *step_size).where_scalarother(finite, 0.0);
                let _ = var.f_sub_(&update)?;
            }
        }
    }
    Ok(())
}

/// Whether every gradient is finite, as a 0-dim bool tensor on `device`: one stacked reduction, no read.
fn all_finite(grads: &[Tensor], device: tch::Device) -> Tensor {
    if grads.is_empty() {
        return Tensor::ones([], (Kind::Bool, device));
    }
    let checks: Vec<Tensor> = grads.iter().map(|g| g.isfinite().all()).collect();
    Tensor::stack(&checks, 0).all()
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
        let mut adam = Adam::new(&vs, params);
        adam.zero_grad();
        let loss = (&w * Tensor::from_slice(&[2.0f32, -3.0, 0.5])).sum(Kind::Float);
        loss.backward();
        assert!(adam.step().unwrap().is_none());
        let got: Vec<f32> = Vec::try_from(&w).unwrap();
        for (g, want) in got.iter().zip([0.9f32, 1.1, 0.9]) {
            assert!((g - want).abs() < 1e-5, "{got:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        adam.save(&path).unwrap();
        let mut other = Adam::new(&vs, params);
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
        let mut adam = Adam::with_loss_scaling(&vs, params, 1024.0);
        adam.zero_grad();
        adam.scale_loss(&(&w * f64::INFINITY).sum(Kind::Float))
            .backward();
        let applied = adam
            .step()
            .unwrap()
            .expect("a scaled step reports whether it applied");
        assert!(!bool::try_from(&applied).unwrap());
        let c = adam.counters().unwrap();
        assert_eq!((c.loss_scale, c.t), (512.0, 0));
        assert_eq!(f64::try_from(&w.get(0)).unwrap(), 1.0);
        assert_eq!(f64::try_from(adam.m[0].abs().max()).unwrap(), 0.0);
    }

    /// With finite gradients the scaled path (decided on the device) takes the same steps as the plain one.
    #[test]
    fn scaled_steps_with_finite_gradients_match_unscaled_steps() {
        let params = AdamParams {
            lr: 0.05,
            ..AdamParams::default()
        };
        let run = |scale: Option<f64>| {
            let vs = nn::VarStore::new(Device::Cpu);
            let w = vs.root().var("w", &[4], nn::Init::Const(0.5));
            let mut adam = match scale {
                Some(s) => Adam::with_loss_scaling(&vs, params, s),
                None => Adam::new(&vs, params),
            };
            let x = Tensor::from_slice(&[1.0f32, -2.0, 0.25, 3.0]);
            for step in 0..5 {
                adam.zero_grad();
                let loss = ((&w * &x - 1.0).square() * (step + 1) as f64).sum(Kind::Float);
                adam.scale_loss(&loss).backward();
                if let Some(applied) = adam.step().unwrap() {
                    assert!(bool::try_from(&applied).unwrap());
                }
            }
            (
                Vec::<f32>::try_from(&w).unwrap(),
                adam.counters().unwrap().t,
            )
        };
        let (plain, t_plain) = run(None);
        let (scaled, t_scaled) = run(Some(256.0));
        assert_eq!((t_plain, t_scaled), (5, 5));
        for (a, b) in plain.iter().zip(&scaled) {
            assert!((a - b).abs() < 1e-6, "{plain:?} vs {scaled:?}");
        }
        assert!(plain.iter().all(|&p| (p - 0.5).abs() > 0.1), "{plain:?}");
    }
}
