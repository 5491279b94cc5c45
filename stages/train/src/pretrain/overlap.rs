//! The pretraining split must share no scene with the clips the model is trained and tested on: a trunk that
//! had seen a test scene with its labels would make the test a memory test.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};

use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::{Layout, SampleId};

/// Refuses pretraining `ids` that are manifest clips, and pretraining scenes (`dataset/pretrain/scenes.json`)
/// whose background and objects equal a scene of the dataset (`dataset/scenes.json`), naming the first one.
pub fn refuse_shared_scenes<'a>(
    layout: &Layout,
    ids: impl Iterator<Item = &'a SampleId>,
) -> Result<()> {
    let manifest_path = layout.manifest();
    if manifest_path.exists() {
        let manifest = Manifest::read(&manifest_path)?;
        let clips: BTreeSet<&str> = manifest.rows.iter().map(|r| r.id.as_str()).collect();
        for id in ids {
            if clips.contains(id.as_str()) {
                bail!(
                    "pretraining frame `{id}` ({}) is also a clip of {}: the pretraining split must share no \
                     scene with train or test",
                    layout.pretrain_labels().display(),
                    manifest_path.display()
                );
            }
        }
    }
    let (pre, data) = (layout.pretrain_scenes(), layout.scenes());
    if !pre.exists() || !data.exists() {
        return Ok(());
    }
    let dataset: Vec<(String, String)> = scene_keys(&data)?;
    let known: BTreeSet<&str> = dataset.iter().map(|(_, k)| k.as_str()).collect();
    for (id, key) in scene_keys(&pre)? {
        if known.contains(key.as_str()) {
            let twin = dataset
                .iter()
                .find(|(_, k)| *k == key)
                .map_or("?", |(i, _)| i.as_str());
            bail!(
                "pretraining scene `{id}` ({}) shows the same scene as `{twin}` of {}: the pretraining split \
                 must share no scene with train or test",
                pre.display(),
                data.display()
            );
        }
    }
    Ok(())
}

/// `(id, content key)` of every scene of a scenes file; the key is the background and objects only.
fn scene_keys(path: &std::path::Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let scenes: Vec<serde_json::Value> = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a list of scenes", path.display()))?;
    scenes
        .iter()
        .map(|s| {
            let id = s["id"]
                .as_str()
                .with_context(|| format!("{}: a scene has no `id`", path.display()))?;
            let key = serde_json::to_string(&(&s["background"], &s["objects"]))?;
            Ok((id.to_string(), key))
        })
        .collect()
}
