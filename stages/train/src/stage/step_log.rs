//! The per-step training log `<data>/train/steps.csv`: loss terms and throughput of every step.
//!
//! The whole table is rewritten atomically at each checkpoint and at the end; a resumed run first drops the
//! rows after its checkpoint, so the table always matches the weights next to it.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    /// 1-based step number.
    pub step: usize,
    /// 0-based epoch.
    pub epoch: usize,
    /// The objective that was minimised.
    pub total: f64,
    /// L_base = L_LVS + w·L_OSC.
    pub base: f64,
    /// L_LVS.
    pub lvs: f64,
    /// L_OSC (0 when unused).
    pub osc: f64,
    /// L_oca (0 when unused).
    pub oca: f64,
    /// L_ori (0 when unused).
    pub ori: f64,
    /// Samples per second of this step, data waiting included.
    pub samples_per_s: f64,
    /// Whether the update was applied (false when the fp16 scaler skipped it).
    pub applied: bool,
    /// Seconds waiting for the batch (see [`super::pending_steps::StepTimes`]; 0 in logs that predate it).
    #[serde(default)]
    pub loader_s: f64,
    /// Seconds of batch upload, forward pass and loss.
    #[serde(default)]
    pub forward_s: f64,
    /// Seconds of the backward pass.
    #[serde(default)]
    pub backward_s: f64,
    /// Seconds of the optimizer step.
    #[serde(default)]
    pub optimizer_s: f64,
    /// Samples of the batch that IOI's iteration budget stopped before they finished (0 without a budget).
    #[serde(default)]
    pub ioi_cut_short: usize,
}

/// Reads the rows written so far (none when the file is missing).
pub fn read_rows(path: &Path) -> Result<Vec<StepRow>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| r.with_context(|| format!("{}: line {}", path.display(), i + 2)))
        .collect()
}

/// Writes all rows atomically.
pub fn write_rows(path: &Path, rows: &[StepRow]) -> Result<()> {
    oassl_pipeline::atomic::write_with(path, |w| {
        let mut writer = csv::Writer::from_writer(w);
        for row in rows {
            writer.serialize(row)?;
        }
        writer.flush()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.csv");
        let rows = vec![StepRow {
            step: 1,
            epoch: 0,
            total: 1.5,
            base: 1.0,
            lvs: 0.75,
            osc: 0.25,
            oca: 0.25,
            ori: 2.5,
            samples_per_s: 3.0,
            applied: true,
            loader_s: 0.125,
            forward_s: 0.25,
            backward_s: 0.5,
            optimizer_s: 0.0625,
            ioi_cut_short: 2,
        }];
        write_rows(&path, &rows).unwrap();
        assert_eq!(read_rows(&path).unwrap(), rows);
    }
}
