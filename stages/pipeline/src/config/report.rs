//! `[report]`: the method comparison of `make report` (`oassl report`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ensure, InvalidValue};

/// Which runs the comparison trains and evaluates; everything else comes from `[train]` and `[eval]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Objectives compared at the configured λ1, λ2 (`lvs`, `noprior`, `oassl`).
    pub methods: Vec<String>,
    /// Extra `oassl` runs, one per `[λ1, λ2]` pair (the supplementary's Table 3).
    pub lambda_sweep: Vec<[f64; 2]>,
    /// A CLIP text tower (Hugging Face folder) for the text-encoder row; empty leaves the row out.
    pub clip_model_dir: PathBuf,
    /// Epochs of every run; 0 keeps `[train] epochs`. The default (3, 54 steps on the default data) keeps each
    /// run short enough for three seeds of the seven default runs on 2 CPU cores.
    pub epochs: usize,
    /// Output folder, relative to the data folder.
    pub dir: PathBuf,
    /// Trainings per run, with `[train] seed` + k for k in 0..seeds: the tables give the mean ± sample std over
    /// them, since on a few dozen test clips one seed's ranking of the methods is noise.
    pub seeds: usize,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            methods: vec!["lvs".into(), "noprior".into(), "oassl".into()],
            lambda_sweep: vec![[10.0, 0.1], [0.1, 0.1], [1.0, 1.0], [1.0, 0.01]],
            clip_model_dir: PathBuf::new(),
            epochs: 3,
            dir: PathBuf::from("report"),
            seeds: 3,
        }
    }
}

impl ReportConfig {
    pub(crate) fn validate(&self) -> Result<(), InvalidValue> {
        const S: &str = "report";
        for m in &self.methods {
            ensure(
                matches!(m.as_str(), "lvs" | "noprior" | "oassl"),
                S,
                "methods",
                || format!("{m:?} is not one of lvs, noprior, oassl"),
            )?;
        }
        for pair in &self.lambda_sweep {
            ensure(
                pair.iter().all(|l| l.is_finite() && *l >= 0.0),
                S,
                "lambda_sweep",
                || format!("{pair:?}: λ values must be finite and >= 0"),
            )?;
        }
        ensure(self.seeds >= 1, S, "seeds", || {
            "must be at least 1 (one training per run)".into()
        })?;
        ensure(
            !self.methods.is_empty() || !self.lambda_sweep.is_empty(),
            S,
            "methods",
            || "the report needs at least one run (methods or lambda_sweep)".into(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::PipelineConfig;
    use super::*;
    use std::path::Path;

    #[test]
    fn seeds_default_to_three_and_zero_is_refused() {
        assert_eq!(ReportConfig::default().seeds, 3);
        let ok = PipelineConfig::parse("[report]\nseeds = 1\n", Path::new("p.toml")).unwrap();
        assert_eq!(ok.report.seeds, 1);
        let err = PipelineConfig::parse("[report]\nseeds = 0\n", Path::new("p.toml")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("[report] seeds") && msg.contains("p.toml"),
            "{msg}"
        );
    }
}
