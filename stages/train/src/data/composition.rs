//! Which clips make up each step's samples, alone or composed (`[train] compose = N`, NoPrior's
//! `concat_num`): N single-source clips per sample teach a model trained on single sources to separate
//! several, as NoPrior's VGGSound-Duet setup does.

use anyhow::{bail, Result};

use super::batch::epoch_order;
use super::samples::TrainSample;

/// How a run cuts its epochs into steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepPlan {
    /// Training clips.
    pub clips: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Clips per sample.
    pub compose: usize,
    /// Seed of the epochs' permutations.
    pub seed: u64,
}

impl StepPlan {
    /// A plan over `samples`, refused (naming the setting, and the first offending clip) when they cannot fill
    /// one step or, with `compose > 1`, when a clip has more than one sounding source: composing it would make
    /// a sample with more sources than the composition says.
    pub fn new(
        samples: &[TrainSample],
        batch_size: usize,
        compose: usize,
        seed: u64,
    ) -> Result<Self> {
        let compose = compose.max(1);
        if compose > 1 {
            if let Some(s) = samples.iter().find(|s| s.foreground.len() != 1) {
                bail!(
                    "[train] compose = {compose} builds samples from single-source clips, but {} has {} \
                     foreground captions: train on single-source splits only (e.g. splits = [\"train_single\"])",
                    s.id,
                    s.foreground.len()
                );
            }
        }
        let needed = batch_size * compose;
        if samples.len() < needed {
            bail!(
                "[train] batch_size = {batch_size} with compose = {compose} needs {needed} training clips per \
                 step, but only {} are usable",
                samples.len()
            );
        }
        Ok(Self {
            clips: samples.len(),
            batch_size,
            compose,
            seed,
        })
    }

    /// Steps per epoch, `⌊clips / (batch_size · compose)⌋` (the remainder is dropped, as `drop_last`).
    pub fn steps_per_epoch(&self) -> usize {
        self.clips / (self.batch_size * self.compose)
    }

    /// The clip indices of `step`: `batch_size · compose` of them, the clips of one sample consecutive. Each
    /// epoch is a fresh permutation, so compositions change from epoch to epoch.
    pub fn step_clips(&self, step: usize) -> Vec<usize> {
        let per_step = self.batch_size * self.compose;
        let epoch = step / self.steps_per_epoch();
        let order = epoch_order(self.clips, self.seed, epoch);
        let offset = (step % self.steps_per_epoch()) * per_step;
        order[offset..offset + per_step].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oassl_pipeline::SampleId;

    fn clip(i: usize, k: usize) -> TrainSample {
        TrainSample {
            id: SampleId::parse(&format!("clip-{i:03}")).unwrap(),
            frame: "f.jpg".into(),
            audio: "a.wav".into(),
            foreground: vec![vec![0.0; 2]; k],
            background: vec![0.0; 2],
        }
    }

    #[test]
    fn composed_steps_cover_each_clip_at_most_once_per_epoch() {
        let clips: Vec<_> = (0..23).map(|i| clip(i, 1)).collect();
        let plan = StepPlan::new(&clips, 3, 2, 5).unwrap();
        assert_eq!(plan.steps_per_epoch(), 3);
        let epoch: Vec<usize> = (0..3).flat_map(|s| plan.step_clips(s)).collect();
        assert_eq!(epoch.len(), 18);
        let mut seen = epoch.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 18, "a clip repeats within one epoch: {epoch:?}");
        assert_ne!(
            plan.step_clips(0),
            plan.step_clips(3),
            "epochs draw new compositions"
        );
    }

    #[test]
    fn compose_one_is_the_plain_plan() {
        let clips: Vec<_> = (0..10).map(|i| clip(i, 2)).collect();
        let plan = StepPlan::new(&clips, 4, 1, 9).unwrap();
        assert_eq!(plan.steps_per_epoch(), 2);
        assert_eq!(plan.step_clips(1), epoch_order(10, 9, 0)[4..8].to_vec());
    }

    #[test]
    fn multi_source_clips_and_too_few_clips_are_refused_by_name() {
        let mut clips: Vec<_> = (0..8).map(|i| clip(i, 1)).collect();
        clips[5] = clip(5, 2);
        let err = StepPlan::new(&clips, 2, 2, 0).unwrap_err().to_string();
        assert!(
            err.contains("clip-005") && err.contains("compose = 2"),
            "{err}"
        );
        let clips: Vec<_> = (0..5).map(|i| clip(i, 1)).collect();
        let err = StepPlan::new(&clips, 2, 3, 0).unwrap_err().to_string();
        assert!(err.contains("needs 6") && err.contains("only 5"), "{err}");
    }
}
