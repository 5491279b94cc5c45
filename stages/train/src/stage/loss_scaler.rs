//! The dynamic loss scale of fp16 training, kept on the device so that no step waits to learn whether its
//! gradients overflowed.
//!
//! ```text
//! finite:      t ← t + 1;  clean ← clean + 1;  if clean = 2000 { s ← 2s; clean ← 0 }
//! not finite:  s ← max(s / 2, 1);  clean ← 0;  (the update is skipped, t unchanged)
//! ```
//!
//! `t` is Adam's update count: its bias corrections `1 − β^t` depend on how many steps applied, which only
//! the device knows until the host reads the counters (at checkpoints).

use anyhow::Result;
use tch::{Device, Kind, Tensor};

use super::adam::{AdamCounters, AdamParams};

/// Loss scale an fp16 run starts from (PyTorch's `GradScaler` default).
pub const INITIAL_LOSS_SCALE: f64 = 65536.0;

/// Clean steps after which the loss scale doubles.
pub const SCALE_GROWTH_INTERVAL: i64 = 2000;

/// Scale, clean-step count and update count as 0-dim tensors on the training device.
pub struct LossScaler {
    /// The scale `s` (f64).
    pub scale: Tensor,
    /// Clean steps since `s` last changed (i64).
    clean_steps: Tensor,
    /// Updates applied (f64, exact up to 2^53).
    t: Tensor,
}

impl LossScaler {
    /// A scaler at `initial_scale` with no step taken.
    pub fn new(initial_scale: f64, device: Device) -> Self {
        Self {
            scale: Tensor::from(initial_scale).to_device(device),
            clean_steps: Tensor::zeros([], (Kind::Int64, device)),
            t: Tensor::zeros([], (Kind::Double, device)),
        }
    }

    /// Adam's bias corrections `(1 − β1^t, 1 − β2^t)` for this step, `t` counting it if `finite` holds.
    /// A step that does not apply still gets finite corrections (t at least 1), as its update is masked.
    pub fn bias_corrections(&self, finite: &Tensor, params: &AdamParams) -> (Tensor, Tensor) {
        let t = (&self.t + finite.to_kind(Kind::Double)).clamp_min(1.0);
        // β^t as exp(t·ln β): device arithmetic only, nothing copied from the host.
        let correction = |beta: f64| ((&t * beta.ln()).exp() * -1.0 + 1.0).to_kind(Kind::Float);
        (correction(params.beta1), correction(params.beta2))
    }

    /// Moves the counters past a step whose gradients were `finite` (or not).
    pub fn update(&mut self, finite: &Tensor) {
        let halved = (&self.scale * 0.5).clamp_min(1.0);
        let scale = self.scale.where_self(finite, &halved);
        let clean = (&self.clean_steps + 1).where_scalarother(finite, 0);
        let grow = clean.ge(SCALE_GROWTH_INTERVAL);
        self.scale = (&scale * 2.0).where_self(&grow, &scale);
        self.clean_steps = clean.where_scalarother(&grow.logical_not(), 0);
        self.t = &self.t + finite.to_kind(Kind::Double);
    }

    /// The counters on the host (waits for the device).
    pub fn counters(&self) -> Result<AdamCounters> {
        Ok(AdamCounters {
            t: f64::try_from(&self.t)? as u64,
            loss_scale: f64::try_from(&self.scale)?,
            clean_steps: i64::try_from(&self.clean_steps)? as u64,
        })
    }

    /// Sets the counters of a restored checkpoint.
    pub fn set_counters(&mut self, counters: AdamCounters) {
        let device = self.scale.device();
        self.scale = Tensor::from(counters.loss_scale).to_device(device);
        self.clean_steps = Tensor::from(counters.clean_steps as i64).to_device(device);
        self.t = Tensor::from(counters.t as f64).to_device(device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(v: bool) -> Tensor {
        Tensor::from(v)
    }

    #[test]
    fn overflow_halves_the_scale_and_clean_steps_double_it() {
        let mut scaler = LossScaler::new(1024.0, Device::Cpu);
        scaler.update(&flag(false));
        let c = scaler.counters().unwrap();
        assert_eq!((c.loss_scale, c.clean_steps, c.t), (512.0, 0, 0));
        for _ in 0..SCALE_GROWTH_INTERVAL - 1 {
            scaler.update(&flag(true));
        }
        let c = scaler.counters().unwrap();
        assert_eq!((c.loss_scale, c.clean_steps, c.t), (512.0, 1999, 1999));
        scaler.update(&flag(true));
        let c = scaler.counters().unwrap();
        assert_eq!((c.loss_scale, c.clean_steps, c.t), (1024.0, 0, 2000));
        // The scale never falls below 1.
        let mut low = LossScaler::new(1.0, Device::Cpu);
        low.update(&flag(false));
        assert_eq!(low.counters().unwrap().loss_scale, 1.0);
    }

    #[test]
    fn bias_corrections_count_the_step_only_when_it_applies() {
        let params = AdamParams::default();
        let mut scaler = LossScaler::new(8.0, Device::Cpu);
        let (bc1, bc2) = scaler.bias_corrections(&flag(true), &params);
        let f = |t: &Tensor| f64::try_from(t).unwrap();
        assert!((f(&bc1) - 0.1).abs() < 1e-7 && (f(&bc2) - 0.001).abs() < 1e-7);
        scaler.update(&flag(true));
        scaler.update(&flag(true));
        let (bc1, _) = scaler.bias_corrections(&flag(false), &params);
        assert!(
            (f(&bc1) - (1.0 - 0.9f64.powi(2))).abs() < 1e-7,
            "{}",
            f(&bc1)
        );
        let (bc1, _) = scaler.bias_corrections(&flag(true), &params);
        assert!(
            (f(&bc1) - (1.0 - 0.9f64.powi(3))).abs() < 1e-7,
            "{}",
            f(&bc1)
        );
        let restored = AdamCounters {
            t: 7,
            loss_scale: 256.0,
            clean_steps: 5,
        };
        scaler.set_counters(restored);
        assert_eq!(scaler.counters().unwrap(), restored);
    }
}
