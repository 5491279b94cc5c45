//! Loss terms that stay on the device until the next logging step.
//!
//! Reading a loss value on the host waits for the device to finish the step; doing it six times per step (as
//! the loop once did) keeps a GPU idle between steps. Each step instead stacks its six terms, and whether its
//! update applied (decided on the device under loss scaling), into one device tensor; every `log_every` steps
//! (and at checkpoints and the end) one copy brings all of them back, and the step log still gets one row per
//! step. A non-finite loss is found there, naming its step.

use std::time::Instant;

use anyhow::{bail, Result};
use tch::{Kind, Tensor};

use super::step_log::StepRow;
use crate::loss::LossTerms;

/// Host wall time of a step's phases, seconds. On CUDA the device runs behind the host: forward, backward and
/// optimizer are the time to queue their work, and the wait shows up in the step that reads the terms back.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimes {
    /// Waiting for the loader's next batch.
    pub loader: f64,
    /// Batch to device, forward pass and loss.
    pub forward: f64,
    /// Backward pass.
    pub backward: f64,
    /// Optimizer step.
    pub optimizer: f64,
}

struct Pending {
    step: usize,
    epoch: usize,
    /// The six loss terms, the applied flag (1 or 0) and IOI's cut-short count, `[8]`.
    terms: Tensor,
    times: StepTimes,
    samples: usize,
}

/// Values per pending step: six loss terms, the applied flag and IOI's cut-short count.
const VALUES: usize = 8;

/// Steps since the last read-back.
pub struct PendingSteps {
    steps: Vec<Pending>,
    window_started: Instant,
}

impl Default for PendingSteps {
    fn default() -> Self {
        Self {
            steps: Vec::new(),
            window_started: Instant::now(),
        }
    }
}

impl PendingSteps {
    /// Keeps step `step`'s loss terms on the device (detached, with `applied` and IOI's cut-short count in
    /// one `[8]` tensor); `applied` is the optimizer's device-side decision, `None` when the update always
    /// applies.
    pub fn push(
        &mut self,
        (step, epoch): (usize, usize),
        terms: &LossTerms,
        times: StepTimes,
        applied: Option<&Tensor>,
        samples: usize,
    ) {
        let device = terms.total.device();
        let flag = |t: Option<&Tensor>, absent: f64| match t {
            Some(t) => t.to_kind(Kind::Float).to_device(device),
            None => Tensor::full([], absent, (Kind::Float, device)),
        };
        let applied = flag(applied, 1.0);
        let cut_short = flag(terms.ioi_cut_short.as_ref(), 0.0);
        let stacked = Tensor::stack(
            &[
                &terms.total,
                &terms.base,
                &terms.lvs,
                &terms.osc,
                &terms.oca,
                &terms.ori,
            ]
            .map(|t| t.detach().to_kind(Kind::Float))
            .into_iter()
            .chain([applied, cut_short])
            .collect::<Vec<_>>(),
            0,
        );
        self.steps.push(Pending {
            step,
            epoch,
            terms: stacked,
            times,
            samples,
        });
    }

    /// Reads every pending step back with one device-to-host copy and appends their rows; fails on the first
    /// step with a non-finite term, naming it and `last_good` (the newest checkpoint written before it).
    pub fn flush(&mut self, rows: &mut Vec<StepRow>, last_good: &str) -> Result<()> {
        if self.steps.is_empty() {
            return Ok(());
        }
        let stacked = Tensor::stack(&self.steps.iter().map(|p| &p.terms).collect::<Vec<_>>(), 0);
        let values = Vec::<f64>::try_from(
            stacked
                .to_kind(Kind::Double)
                .to_device(tch::Device::Cpu)
                .flatten(0, -1),
        )?;
        let seconds = self.window_started.elapsed().as_secs_f64().max(1e-9);
        let samples: usize = self.steps.iter().map(|p| p.samples).sum();
        let samples_per_s = samples as f64 / seconds;
        for (p, v) in self.steps.iter().zip(values.chunks_exact(VALUES)) {
            if v[..6].iter().any(|x| !x.is_finite()) {
                bail!(
                    "step {}: the loss is not finite: total {}, base {}, lvs {}, osc {}, oca {}, ori {}; last \
                     good checkpoint: {last_good}",
                    p.step,
                    v[0],
                    v[1],
                    v[2],
                    v[3],
                    v[4],
                    v[5]
                );
            }
            rows.push(StepRow {
                step: p.step,
                epoch: p.epoch,
                total: v[0],
                base: v[1],
                lvs: v[2],
                osc: v[3],
                oca: v[4],
                ori: v[5],
                samples_per_s,
                applied: v[6] > 0.5,
                loader_s: p.times.loader,
                forward_s: p.times.forward,
                backward_s: p.times.backward,
                optimizer_s: p.times.optimizer,
                ioi_cut_short: v[7] as usize,
            });
        }
        self.steps.clear();
        self.window_started = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(total: f64) -> LossTerms {
        let s = |v: f64| Tensor::from(v as f32);
        LossTerms {
            total: s(total),
            base: s(1.0),
            lvs: s(2.0),
            osc: s(3.0),
            oca: s(4.0),
            ori: s(5.0),
            sources_per_sample: None,
            ioi_cut_short: None,
        }
    }

    #[test]
    fn rows_come_back_in_order_and_a_nan_names_its_step() {
        let mut pending = PendingSteps::default();
        let mut rows = Vec::new();
        let times = StepTimes {
            loader: 0.5,
            ..StepTimes::default()
        };
        pending.push((1, 0), &terms(0.25), times, None, 4);
        pending.push((2, 0), &terms(0.5), times, Some(&Tensor::from(false)), 4);
        pending.flush(&mut rows, "none").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].step, rows[0].total, rows[0].ori, rows[0].loader_s),
            (1, 0.25, 5.0, 0.5)
        );
        assert!(rows[0].applied && !rows[1].applied);
        let mut cut = terms(1.0);
        cut.ioi_cut_short = Some(Tensor::from(3i64));
        pending.push((3, 0), &cut, times, Some(&Tensor::from(true)), 4);
        pending.push((4, 0), &terms(f64::NAN), times, None, 4);
        let err = pending.flush(&mut rows, "step-3").unwrap_err().to_string();
        assert!(
            err.starts_with("step 4:") && err.contains("step-3"),
            "{err}"
        );
        // Step 3, read back with the failing step, keeps its row and IOI count.
        assert_eq!(
            (rows[2].step, rows[2].ioi_cut_short, rows[0].ioi_cut_short),
            (3, 3, 0)
        );
    }
}
