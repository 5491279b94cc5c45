//! What a run reads first and whether it has anything to do: the manifest, the prompt, the config fingerprint,
//! and the stage lock checked against them and against every clip's extraction.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use oassl_pipeline::config::CaptionsConfig;
use oassl_pipeline::fingerprint::hash_json;
use oassl_pipeline::manifest::{Manifest, ManifestRow};
use oassl_pipeline::stage_lock::{self, StageLock, Staleness};
use oassl_pipeline::Layout;

use super::{Endpoints, RunOptions, Summary};
use crate::extraction::{first_stale, ExtractJob, ExtractParams};
use crate::prompt::PromptTemplate;
use crate::shard::Shard;

/// The inputs of a run.
pub(super) struct Plan {
    pub manifest: Manifest,
    pub prompt: PromptTemplate,
    /// Files the lock records (manifest, prompt).
    pub deps: Vec<PathBuf>,
    /// The config fingerprint: the section, the prompt and the model the stand-in would give.
    pub cfg_hash: String,
    pub params: ExtractParams,
}

impl Plan {
    /// Reads the manifest and the prompt; a missing manifest names what makes one.
    pub fn read(
        cfg: &CaptionsConfig,
        prompt_path: &Path,
        layout: &Layout,
        endpoints: &Endpoints,
    ) -> Result<Self> {
        let manifest_path = layout.manifest();
        if !manifest_path.exists() {
            bail!(
                "manifest {} not found: run `make data` (AVS-Synth) or import a dataset first",
                manifest_path.display()
            );
        }
        let manifest = Manifest::read(&manifest_path)?;
        let prompt = PromptTemplate::load(prompt_path)?;
        let cfg_hash = hash_json(&(cfg, prompt.hash(), &endpoints.default_model))?;
        Ok(Self {
            manifest,
            prompt,
            deps: vec![manifest_path, prompt_path.to_path_buf()],
            cfg_hash,
            params: ExtractParams::from_config(cfg),
        })
    }

    /// Why the run has work, or `None` when the table is up to date. Only a whole (unsharded), unforced run can
    /// be up to date: its lock must match, record no failed or invalid caption, and every clip's extraction
    /// must still match its video (the lock covers neither the extracted files nor the videos).
    pub fn work_to_do(
        &self,
        cfg: &CaptionsConfig,
        layout: &Layout,
        opts: &RunOptions,
    ) -> Result<Option<String>> {
        if opts.shard.count > 1 || opts.force {
            return Ok(Some("forced".to_string()));
        }
        let lock_path = layout.stage_lock("captions");
        let staleness = stage_lock::check(&lock_path, &self.cfg_hash, &self.deps)?;
        let clean = StageLock::read(&lock_path)?.is_some_and(|l| {
            l.counts.get("failed").copied().unwrap_or(0) == 0
                && l.counts.get("invalid").copied().unwrap_or(0) == 0
        });
        let batch = opts.export_batch.is_some() || opts.import_batch.is_some();
        let mut stale_clip = None;
        if staleness == Staleness::UpToDate && clean && !opts.retry_failed && !opts.merge && !batch
        {
            let jobs: Vec<ExtractJob> = self
                .manifest
                .rows
                .iter()
                .map(|r| ExtractJob::of_row(&self.manifest, r))
                .collect();
            stale_clip = first_stale(&jobs, layout, &self.params, cfg.extract_threads)?;
            if stale_clip.is_none() {
                return Ok(None);
            }
        }
        Ok(Some(match (stale_clip, &staleness) {
            (Some(clip), _) => format!("extraction stale: {clip}"),
            (None, Staleness::UpToDate) => "rows to retry".to_string(),
            (None, other) => other.to_string(),
        }))
    }

    /// The summary of a run that found nothing to do.
    pub fn up_to_date_summary(&self, layout: &Layout) -> Summary {
        Summary {
            up_to_date: true,
            reason: Staleness::UpToDate.to_string(),
            table: layout.captions(),
            ..Summary::default()
        }
    }

    /// The manifest rows of `shard`, in manifest order.
    pub fn rows(&self, shard: Shard) -> Vec<&ManifestRow> {
        self.manifest
            .rows
            .iter()
            .filter(|r| shard.contains(r.id.as_str()))
            .collect()
    }
}
