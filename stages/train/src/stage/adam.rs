//! Adam (Kingma & Ba) over a `VarStore`'s trainable variables, with its state kept in named tensors so a
//! checkpoint can hold it (libtorch's optimizer state is not reachable from tch).
//!
//! ```text
//! m_t = β1·m_{t−1} + (1 − β1)·g_t          v_t = β2·v_{t−1} + (1 − β2)·g_t²
//! θ_t = θ_{t−1} − lr · (m_t / (1 − β1^t)) / (√(v_t / (1 − β2^t)) + ε)
//! ```
//!
//! The trainable weights live in one flat buffer (each variable is a view of its slice) and so do `m` and
//! `v`. On CUDA a step is a handful of kernels over all weights ([`Update::Runs`]), not a handful per variable: tch
//! reaches neither libtorch's multi-tensor (`_foreach_*`) nor its fused Adam, and per-variable updates cost
//! about 1,500 kernel launches per step for the two ResNet-18s, which kept a GPU waiting on the host. On the
//! CPU the update goes variable by variable ([`Update::PerVariable`]) through libtorch's fused CPU kernel
//! (declared in [`super::fused_adam`]): one pass over each variable instead of seven (BENCHMARKS.md, "Fused
//! Adam on the CPU"). Either way a variable without a gradient is left alone, as Adam defines (a missing
//! gradient is not a zero one). A channels-last convolution weight keeps its layout: its slice is stored N,
//! H, W, C and its gradient is flattened the same way, so the set layout must be in place before `Adam::new`.
//!
//! With loss scaling (fp16 autocast), gradients arrive multiplied by `s` and are divided by it first; a step
//! whose gradients are not all finite is skipped ([`LossScaler`] has the schedule of `s`). That decision stays
//! on the device, so a step never waits for it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{nn, Kind, Tensor};

use super::fused_adam::fused_adam_cpu;
use super::loss_scaler::LossScaler;
use crate::model::resnet::is_channels_last;

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

/// One trainable variable and where it sits in the flat buffers.
struct Slot {
    name: String,
    var: Tensor,
    /// First element in the flat buffers.
    offset: i64,
    numel: i64,
    /// The variable's slice runs N, H, W, C (a channels-last convolution weight, see
    /// `model::resnet::to_channels_last`); the moments' slices run the same way.
    channels_last: bool,
}

impl Slot {
    /// This variable's part of a flat buffer, shaped (and strided) like the variable.
    fn of(&self, flat: &Tensor) -> Tensor {
        let part = flat.narrow(0, self.offset, self.numel);
        match self.var.size().as_slice() {
            &[n, c, h, w] if self.channels_last => part.view([n, h, w, c]).permute([0, 3, 1, 2]),
            size => part.view(size),
        }
    }

    /// `grad` as a vector in the order this variable's slice is stored.
    fn flat_grad(&self, grad: &Tensor) -> Tensor {
        if self.channels_last {
            grad.permute([0, 2, 3, 1]).reshape([-1])
        } else {
            grad.reshape([-1])
        }
    }
}

/// How a step walks the flat buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// One update per run of consecutive variables that have a gradient (the whole buffers when all do).
    Runs,
    /// One update per variable that has a gradient: libtorch's fused kernel on the CPU
    /// ([`super::fused_adam`]), this module's update under loss scaling.
    PerVariable,
}

impl Update {
    /// What suits `device`: runs on an accelerator, variable by variable on the CPU.
    pub fn for_device(device: tch::Device) -> Self {
        if device == tch::Device::Cpu {
            Self::PerVariable
        } else {
            Self::Runs
        }
    }
}

/// The gradients of one loss, one per trainable variable in the optimizer's (name) order; an undefined tensor
/// where the loss does not reach the variable.
pub struct Gradients(Vec<Tensor>);

/// The optimizer and its state.
pub struct Adam {
    params: AdamParams,
    /// Trainable variables by name, sorted; each a view of its slice of `weights`.
    slots: Vec<Slot>,
    /// Every trainable weight, f32, in `slots` order.
    weights: Tensor,
    m: Tensor,
    v: Tensor,
    /// Number of updates applied (t), on the host when every step applies.
    t: u64,
    /// How a step walks the buffers.
    update: Update,
    /// With loss scaling, the scale and the update count live on the device (see [`LossScaler`]).
    scaler: Option<LossScaler>,
}

impl Adam {
    /// Adam over every variable of `vs` that requires a gradient; every step applies. The variables are
    /// moved into one flat buffer (values unchanged). Fails if a trainable variable is not f32.
    pub fn new(vs: &nn::VarStore, params: AdamParams) -> Result<Self> {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some((name, var)) = vars.iter().find(|(_, t)| t.kind() != Kind::Float) {
            bail!("Adam keeps f32 weights; `{name}` is {:?}", var.kind());
        }
        let mut offset = 0;
        let slots: Vec<Slot> = vars
            .into_iter()
            .map(|(name, var)| {
                let numel = var.numel() as i64;
                let slot = Slot {
                    name,
                    channels_last: is_channels_last(&var),
                    var,
                    offset,
                    numel,
                };
                offset += numel;
                slot
            })
            .collect();
        let device = vs.device();
        let weights = Tensor::zeros([offset], (Kind::Float, device));
        let mut adam = Self {
            params,
            slots,
            m: weights.zeros_like(),
            v: weights.zeros_like(),
            weights,
            t: 0,
            update: Update::for_device(device),
            scaler: None,
        };
        adam.link_weights()?;
        Ok(adam)
    }

    /// Adam with dynamic loss scaling (fp16 autocast) starting at `initial_scale`.
    pub fn with_loss_scaling(
        vs: &nn::VarStore,
        params: AdamParams,
        initial_scale: f64,
    ) -> Result<Self> {
        let adam = Self::new(vs, params)?;
        let device = vs.device();
        Ok(Self {
            scaler: Some(LossScaler::new(initial_scale, device)),
            ..adam
        })
    }

    /// Makes every variable a view of its slice of `weights` again, copying its current values there first.
    /// Only variables whose storage was replaced since (e.g. a load that changed their kind) are touched; the
    /// check reads pointers on the host, no device work.
    fn link_weights(&mut self) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let base = self.weights.data_ptr() as usize;
        for slot in &mut self.slots {
            let at = base + 4 * slot.offset as usize;
            if slot.var.data_ptr() as usize == at && slot.numel > 0 {
                continue;
            }
            let mut view = slot.of(&self.weights);
            view.f_copy_(&slot.var)?;
            slot.var
                .f_set_data(&view)
                .with_context(|| format!("moving `{}` into the optimizer's buffer", slot.name))?;
        }
        Ok(())
    }

    /// The gradients of `loss` (times the loss scale with loss scaling) with respect to the trainable
    /// variables, returned instead of accumulated into each variable's `.grad` (PyTorch's default
    /// `zero_grad(set_to_none=True)` does the same): no zeroing and no addition into zeros, two kernels per
    /// variable on a GPU, and no gradients held between steps (BENCHMARKS.md "Gradients returned").
    pub fn backward(&self, loss: &Tensor) -> Result<Gradients> {
        let loss = match &self.scaler {
            Some(scaler) => loss * &scaler.scale,
            None => loss.shallow_clone(),
        };
        // The engine is handed the loss's graph edge as it is; a loss outside autograd has none, which it
        // does not check.
        if !loss.requires_grad() {
            bail!(
                "the loss does not depend on any trainable weight (is everything it reads frozen?)"
            );
        }
        let vars: Vec<&Tensor> = self.slots.iter().map(|s| &s.var).collect();
        let grads = Tensor::f_run_backward(&[loss], &vars, false, false)
            .context("back-propagating the loss to the trainable variables")?;
        Ok(Gradients(grads))
    }

    /// Applies one update from `grads` (what [`Adam::backward`] returned). Without loss scaling it always
    /// applies and returns `None`. With it, gradients are divided by the scale and the step applies only if
    /// all are finite, decided on the device: it returns that decision as a 0-dim bool tensor, which the host
    /// reads with the step's loss terms instead of waiting for it here.
    pub fn step(&mut self, grads: Gradients) -> Result<Option<Tensor>> {
        let _guard = tch::no_grad_guard();
        self.link_weights()?;
        let grads = grads.0;
        let parts = self.parts(&grads);
        match self.scaler.as_mut() {
            None if self.update == Update::PerVariable => {
                self.t += 1;
                fused_adam_cpu(&parts, self.t, &self.params)?;
                Ok(None)
            }
            None => {
                self.t += 1;
                let bc1 = 1.0 - self.params.beta1.powi(self.t as i32);
                let bc2 = 1.0 - self.params.beta2.powi(self.t as i32);
                for part in parts {
                    update(&self.params, part, &Moments::Always { bc1, bc2 })?;
                }
                Ok(None)
            }
            Some(scaler) => {
                let finite = all_finite(&parts, scaler.scale.device());
                let (bc1, bc2) = scaler.bias_corrections(&finite, &self.params);
                let inv = scaler.scale.reciprocal();
                let step_size = bc1.reciprocal() * self.params.lr;
                let moments = Moments::IfFinite {
                    finite: &finite,
                    inv_scale: &inv,
                    step_size: &step_size,
                    bc2: &bc2,
                };
                for part in parts {
                    update(&self.params, part, &moments)?;
                }
                scaler.update(&finite);
                Ok(Some(finite))
            }
        }
    }

    /// Walks the buffers as `update` says instead of as the device suggests (tests take both walks on the CPU).
    #[cfg(test)]
    fn with_update(self, update: Update) -> Self {
        Self { update, ..self }
    }

    /// What one step updates, as [`Update`] says.
    fn parts(&self, grads: &[Tensor]) -> Vec<Part> {
        match self.update {
            Update::Runs => self.runs(grads),
            Update::PerVariable => self
                .slots
                .iter()
                .zip(grads)
                .filter(|(_, g)| g.defined())
                .map(|(slot, g)| {
                    let flat = |buffer: &Tensor| buffer.narrow(0, slot.offset, slot.numel);
                    Part {
                        weights: flat(&self.weights),
                        grad: slot.flat_grad(g).contiguous(),
                        m: flat(&self.m),
                        v: flat(&self.v),
                    }
                })
                .collect(),
        }
    }

    /// Each maximal run of consecutive variables (in `slots` order) that have a gradient, as slices of the flat
    /// buffers with the run's gradients concatenated. When every variable has one that is the whole buffers; a
    /// variable that never gets one (a caption projection the objective does not use) splits them in two, not
    /// into one part per variable.
    fn runs(&self, grads: &[Tensor]) -> Vec<Part> {
        let mut parts = Vec::new();
        let mut i = 0;
        while i < self.slots.len() {
            if !grads[i].defined() {
                i += 1;
                continue;
            }
            let start = i;
            while i < self.slots.len() && grads[i].defined() {
                i += 1;
            }
            let run = &self.slots[start..i];
            let (offset, numel) = (run[0].offset, run.iter().map(|s| s.numel).sum::<i64>());
            let flat: Vec<Tensor> = run
                .iter()
                .zip(&grads[start..i])
                .map(|(slot, g)| slot.flat_grad(g))
                .collect();
            parts.push(Part {
                weights: self.weights.narrow(0, offset, numel),
                grad: Tensor::cat(&flat, 0),
                m: self.m.narrow(0, offset, numel),
                v: self.v.narrow(0, offset, numel),
            });
        }
        parts
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
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(2 * self.slots.len());
        for slot in &self.slots {
            for (kind, flat) in [("m", &self.m), ("v", &self.v)] {
                let cpu = slot.of(flat).to_device(tch::Device::Cpu).contiguous();
                named.push((format!("{kind}.{}", slot.name), cpu));
            }
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
        for slot in &self.slots {
            for (kind, flat) in [("m", &self.m), ("v", &self.v)] {
                let key = format!("{kind}.{}", slot.name);
                let Some(src) = file.get(&key) else {
                    bail!("{}: optimizer state lacks `{key}`", path.display());
                };
                if src.size() != slot.var.size() {
                    bail!(
                        "{}: `{key}` has shape {:?}, the model {:?}",
                        path.display(),
                        src.size(),
                        slot.var.size()
                    );
                }
                slot.of(flat).f_copy_(&src.to_kind(Kind::Float))?;
            }
        }
        Ok(())
    }
}

/// Weights, gradient and moments that one update call covers, flat: a run of variables, or one variable.
pub(super) struct Part {
    /// The weights' slice of the flat buffer.
    pub(super) weights: Tensor,
    /// The gradient, in the order the weights' slice is stored.
    pub(super) grad: Tensor,
    /// First moment.
    pub(super) m: Tensor,
    /// Second moment.
    pub(super) v: Tensor,
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

/// Updates `m`, `v` and the weights of one [`Part`] in place.
fn update(params: &AdamParams, part: Part, moments: &Moments) -> Result<()> {
    let AdamParams {
        lr,
        beta1,
        beta2,
        eps,
    } = *params;
    let Part {
        mut weights,
        grad: g,
        mut m,
        mut v,
    } = part;
    match moments {
        Moments::Always { bc1, bc2 } => {
            // In place, two temporaries: on the CPU a pass over the 22 M weights costs as much as a small
            // convolution, so seven passes instead of thirteen (BENCHMARKS.md, "Adam in place").
            // m ← m + (1 − β1)(g − m) = β1·m + (1 − β1)·g, and v alike with g².
            let _ = m.f_lerp_(&g, 1.0 - beta1)?;
            let _ = v.f_lerp_(&g.square(), 1.0 - beta2)?;
            // θ ← θ + m / d with d = −(√(v / bc2) + ε)·bc1 / lr, i.e. θ − (lr / bc1)·m / (√(v / bc2) + ε).
            if lr == 0.0 {
                return Ok(());
            }
            let scale = -bc1 / lr;
            let mut d = v.sqrt();
            let _ = d
                .f_mul_scalar_(scale / bc2.sqrt())?
                .f_add_scalar_(eps * scale)?;
            let _ = weights.f_addcdiv_(&m, &d)?;
        }
        Moments::IfFinite {
            finite,
            inv_scale,
            step_size,
            bc2,
        } => {
            let g = g * *inv_scale;
            // A skipped step keeps the old moments; its update is zero (finite: the moments are).
            let m_new = &m * beta1 + &g * (1.0 - beta1);
            let v_new = &v * beta2 + &g * &g * (1.0 - beta2);
            m.f_copy_(&m_new.where_self(finite, &m))?;
            v.f_copy_(&v_new.where_self(finite, &v))?;
            let denom = (&v / *bc2).sqrt() + eps;
            let step = (&m / denom * *step_size).where_scalarother(finite, 0.0);
            let _ = weights.f_sub_(&step)?;
        }
    }
    Ok(())
}

/// Whether every gradient of `parts` is finite, as a 0-dim bool tensor on `device`: one stacked reduction, no
/// read.
fn all_finite(parts: &[Part], device: tch::Device) -> Tensor {
    let checks: Vec<Tensor> = parts.iter().map(|p| p.grad.isfinite().all()).collect();
    if checks.is_empty() {
        return Tensor::ones([], (Kind::Bool, device));
    }
    Tensor::stack(&checks, 0).all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resnet::to_channels_last;
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
        let mut adam = Adam::new(&vs, params).unwrap();
        let loss = (&w * Tensor::from_slice(&[2.0f32, -3.0, 0.5])).sum(Kind::Float);
        let grads = adam.backward(&loss).unwrap();
        assert!(adam.step(grads).unwrap().is_none());
        let got: Vec<f32> = Vec::try_from(&w).unwrap();
        for (g, want) in got.iter().zip([0.9f32, 1.1, 0.9]) {
            assert!((g - want).abs() < 1e-5, "{got:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        adam.save(&path).unwrap();
        let mut other = Adam::new(&vs, params).unwrap();
        other.load(&path).unwrap();
        assert!(other.m.allclose(&adam.m, 0.0, 0.0, false));
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
        let mut adam = Adam::with_loss_scaling(&vs, params, 1024.0).unwrap();
        let grads = adam
            .backward(&(&w * f64::INFINITY).sum(Kind::Float))
            .unwrap();
        let applied = adam
            .step(grads)
            .unwrap()
            .expect("a scaled step reports whether it applied");
        assert!(!bool::try_from(&applied).unwrap());
        let c = adam.counters().unwrap();
        assert_eq!((c.loss_scale, c.t), (512.0, 0));
        assert_eq!(f64::try_from(&w.get(0)).unwrap(), 1.0);
        assert_eq!(f64::try_from(adam.m.abs().max()).unwrap(), 0.0);
    }

    /// Textbook Adam on one variable, one step at the optimizer's step count `t`.
    fn reference_step(
        w: &mut [f64],
        m: &mut [f64],
        v: &mut [f64],
        g: &[f64],
        t: i32,
        a: AdamParams,
    ) {
        for i in 0..w.len() {
            m[i] = a.beta1 * m[i] + (1.0 - a.beta1) * g[i];
            v[i] = a.beta2 * v[i] + (1.0 - a.beta2) * g[i] * g[i];
            let m_hat = m[i] / (1.0 - a.beta1.powi(t));
            let v_hat = v[i] / (1.0 - a.beta2.powi(t));
            w[i] -= a.lr * m_hat / (v_hat.sqrt() + a.eps);
        }
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.flatten(0, -1).to_kind(Kind::Double)).unwrap()
    }

    /// Four variables of different shapes, `d` a channels-last convolution weight. `b` enters the loss only
    /// from the third step, so the first two steps have a variable without a gradient (`b` left alone; with
    /// [`Update::Runs`] two runs, `a` and `c`+`d`) and the rest update all four. Both ways of walking the
    /// buffers must match textbook Adam, the variables the `VarStore` hands out must be the ones that move,
    /// and `d` must keep its layout.
    #[test]
    fn flat_buffers_take_the_textbook_steps_also_while_a_variable_has_no_gradient() {
        for update in [Update::Runs, Update::PerVariable] {
            textbook_steps(update);
        }
    }

    fn textbook_steps(update: Update) {
        let params = AdamParams {
            lr: 0.03,
            ..AdamParams::default()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let a = root.var("a", &[2, 3], nn::Init::Const(0.5));
        let b = root.var("b", &[4], nn::Init::Const(-1.0));
        let c = root.var("c", &[1, 1, 2], nn::Init::Const(2.0));
        let d = root.var("d", &[2, 3, 2, 2], nn::Init::Const(0.0));
        tch::no_grad(|| {
            let values =
                Tensor::linspace(-1.0, 1.5, 24, (Kind::Float, Device::Cpu)).view([2, 3, 2, 2]);
            d.shallow_clone().set_data(&to_channels_last(&values))
        });
        assert!(is_channels_last(&d));
        let mut adam = Adam::new(&vs, params).unwrap().with_update(update);
        let xa = Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.0, -0.25, 1.5]).view([2, 3]);
        let xb = Tensor::from_slice(&[0.1f32, -0.7, 2.0, 1.0]);
        let xc = Tensor::from_slice(&[-3.0f32, 0.2]).view([1, 1, 2]);
        let xd = Tensor::linspace(2.0, -0.3, 24, (Kind::Float, Device::Cpu)).view([2, 3, 2, 2]);
        let vars = [&a, &b, &c, &d];
        // (weights, m, v) per variable, in name order a, b, c, d.
        let mut reference: Vec<[Vec<f64>; 3]> = vars
            .iter()
            .map(|t| [values(t), vec![0.0; t.numel()], vec![0.0; t.numel()]])
            .collect();
        for step in 1..=6 {
            let mut loss = ((&a * &xa - 1.0).square() * step as f64).sum(Kind::Float)
                + (&c * &xc).sin().sum(Kind::Float)
                + (&d * &xd).cos().sum(Kind::Float);
            if step >= 3 {
                loss += (&b * &xb).exp().sum(Kind::Float);
            }
            let grads = adam.backward(&loss).unwrap();
            // Slots run in name order a, b, c, d, as `vars` does.
            for (r, g) in reference.iter_mut().zip(&grads.0) {
                if g.defined() {
                    let [w, m, v] = r;
                    reference_step(w, m, v, &values(g), step, params);
                }
            }
            assert_eq!(
                grads.0[1].defined(),
                step >= 3,
                "b's gradient at step {step}"
            );
            assert!(adam.step(grads).unwrap().is_none());
        }
        assert!(!reference[1][0].iter().all(|&w| w == -1.0), "b never moved");
        assert_eq!(adam.update, update);
        assert!(is_channels_last(&d), "{update:?} changed d's layout");
        for (name, (var, r)) in ["a", "b", "c", "d"].iter().zip(vars.iter().zip(&reference)) {
            let got = values(var);
            for (x, y) in got.iter().zip(&r[0]) {
                assert!(
                    (x - y).abs() < 1e-5,
                    "{update:?} {name}: {got:?} vs {:?}",
                    r[0]
                );
            }
            // The VarStore's own handle sees the same values (the variables are views of the flat buffer).
            let held = values(&vs.variables()[*name]);
            assert_eq!(held, got, "{name}");
        }
    }

    /// A loss that no trainable weight reaches (every trunk it reads frozen) is an error, not a crash.
    #[test]
    fn a_loss_outside_autograd_is_an_error() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[3], nn::Init::Const(1.0));
        let adam = Adam::new(&vs, AdamParams::default()).unwrap();
        let loss = w.detach().sum(Kind::Float);
        let err = adam.backward(&loss).err().unwrap().to_string();
        assert!(
            err.contains("does not depend on any trainable weight"),
            "{err}"
        );
    }

    /// One part per run of consecutive variables with a gradient, each covering exactly that run's slice.
    #[test]
    fn parts_cover_each_run_of_variables_with_gradients() {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let sizes = [("a", 2), ("b", 3), ("c", 1), ("d", 4), ("e", 5)];
        let vars: Vec<Tensor> = sizes
            .iter()
            .map(|(name, n)| root.var(name, &[*n], nn::Init::Const(1.0)))
            .collect();
        let adam = Adam::new(&vs, AdamParams::default()).unwrap();
        let extent = |p: &Part| {
            let base = adam.weights.data_ptr() as usize;
            (
                (p.weights.data_ptr() as usize - base) / 4,
                p.weights.numel(),
            )
        };
        // a, c, d have gradients; b and e do not.
        let grads: Vec<Tensor> = vars
            .iter()
            .zip([true, false, true, true, false])
            .map(|(v, has)| if has { v.ones_like() } else { Tensor::new() })
            .collect();
        let parts = adam.runs(&grads);
        assert_eq!(
            parts.iter().map(extent).collect::<Vec<_>>(),
            [(0, 2), (5, 5)]
        );
        assert!(parts.iter().all(|p| p.grad.size() == p.weights.size()));
        let all: Vec<Tensor> = vars.iter().map(Tensor::ones_like).collect();
        assert_eq!(
            adam.runs(&all).iter().map(extent).collect::<Vec<_>>(),
            [(0, 15)]
        );
        let none: Vec<Tensor> = vars.iter().map(|_| Tensor::new()).collect();
        assert!(adam.runs(&none).is_empty());
    }

    /// A variable whose storage was replaced after the optimizer was built (what loading a checkpoint of
    /// another dtype does) is moved back into the flat buffer with its new values before the next step.
    #[test]
    fn a_variable_given_new_storage_is_taken_back_into_the_flat_buffer() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut w = vs.root().var("w", &[3], nn::Init::Const(1.0));
        let params = AdamParams {
            lr: 0.1,
            ..AdamParams::default()
        };
        let mut adam = Adam::new(&vs, params).unwrap();
        tch::no_grad(|| w.set_data(&Tensor::from_slice(&[5.0f32, 5.0, 5.0])));
        let loss = (&w * Tensor::from_slice(&[1.0f32, -1.0, 1.0])).sum(Kind::Float);
        let grads = adam.backward(&loss).unwrap();
        adam.step(grads).unwrap();
        let got = values(&w);
        for (g, want) in got.iter().zip([4.9, 5.1, 4.9]) {
            assert!((g - want).abs() < 1e-5, "{got:?}");
        }
        assert_eq!(values(&adam.weights), got);
    }

    /// With finite gradients the scaled path (decided on the device) takes the same steps as the plain one.
    #[test]
    fn scaled_steps_with_finite_gradients_match_unscaled_steps() {
        let params = AdamParams {
            lr: 0.05,
            ..AdamParams::default()
        };
        let run = |scale: Option<f64>, update: Update| {
            let vs = nn::VarStore::new(Device::Cpu);
            let w = vs.root().var("w", &[4], nn::Init::Const(0.5));
            let adam = match scale {
                Some(s) => Adam::with_loss_scaling(&vs, params, s).unwrap(),
                None => Adam::new(&vs, params).unwrap(),
            };
            let mut adam = adam.with_update(update);
            let x = Tensor::from_slice(&[1.0f32, -2.0, 0.25, 3.0]);
            for step in 0..5 {
                let loss = ((&w * &x - 1.0).square() * (step + 1) as f64).sum(Kind::Float);
                let grads = adam.backward(&loss).unwrap();
                if let Some(applied) = adam.step(grads).unwrap() {
                    assert!(bool::try_from(&applied).unwrap());
                }
            }
            (
                Vec::<f32>::try_from(&w).unwrap(),
                adam.counters().unwrap().t,
            )
        };
        let (plain, t_plain) = run(None, Update::PerVariable);
        assert!(plain.iter().all(|&p| (p - 0.5).abs() > 0.1), "{plain:?}");
        for update in [Update::Runs, Update::PerVariable] {
            let (scaled, t_scaled) = run(Some(256.0), update);
            assert_eq!((t_plain, t_scaled), (5, 5));
            for (a, b) in plain.iter().zip(&scaled) {
                assert!((a - b).abs() < 1e-6, "{update:?}: {plain:?} vs {scaled:?}");
            }
        }
    }
}
