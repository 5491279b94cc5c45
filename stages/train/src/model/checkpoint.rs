//! Loading torchvision ResNet-18 weights into one encoder of the model.
//!
//! torchvision names a ResNet's tensors from its root (`conv1.weight`, `layer1.0.bn1.running_mean`, ...), while
//! [`crate::model::OasslModel`] keeps its encoders under `visual.` and `audio.`. This copies a torchvision
//! `state_dict` saved as safetensors (`safetensors.torch.save_file(model.state_dict(), path)`) into the
//! variables under one prefix, leaving the rest of the store alone.

use anyhow::{bail, Context};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn, Tensor};

/// Copies the tensors of the safetensors file at `path` into the variables of `vs` under `prefix` (e.g.
/// `"visual"`), matching `prefix.NAME` to the file's `NAME`. Extra file entries (`fc.*`,
/// `num_batches_tracked`) are ignored. Returns the variable names, without the prefix, that the file lacks;
/// fails on a shape mismatch.
pub fn load_torchvision_trunk(
    vs: &nn::VarStore,
    prefix: &str,
    path: &Path,
) -> anyhow::Result<Vec<String>> {
    let file: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into_iter()
        .collect();
    let lead = format!("{prefix}.");
    let mut missing = Vec::new();
    let mut pairs = Vec::new();
    for (name, var) in vs.variables() {
        let Some(short) = name.strip_prefix(&lead) else {
            continue;
        };
        let Some(src) = file.get(short) else {
            missing.push(short.to_string());
            continue;
        };
        if src.size() != var.size() {
            bail!(
                "{}: `{short}` has shape {:?} in the file but {:?} in the model",
                path.display(),
                src.size(),
                var.size()
            );
        }
        pairs.push((var, src));
    }
    // Shapes are all checked before the first copy, so a wrong file leaves the model untouched.
    let copied = pairs.len();
    for (mut var, src) in pairs {
        tch::no_grad(|| var.copy_(&src.to_device(var.device()).to_kind(var.kind())));
    }
    if copied == 0 {
        bail!(
            "{}: no tensor matched a variable under `{prefix}`",
            path.display()
        );
    }
    missing.sort();
    tracing::info!(path = %path.display(), prefix, copied, missing = missing.len(), "loaded trunk weights");
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, OasslModel, ResNet18, ResNetConfig};
    use tch::Device;

    #[test]
    fn torchvision_names_load_under_the_visual_prefix() {
        let source = nn::VarStore::new(Device::Cpu);
        let _trunk = ResNet18::new(&source.root(), ResNetConfig::standard(3)).unwrap();
        let path = std::env::temp_dir().join(format!(
            "oassl-train-resnet-{}.safetensors",
            std::process::id()
        ));
        source.save(&path).unwrap();

        let target = nn::VarStore::new(Device::Cpu);
        let _model = OasslModel::new(target.root(), &ModelConfig::default()).unwrap();
        let missing = load_torchvision_trunk(&target, "visual", &path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(missing.is_empty(), "{missing:?}");
        let (src, dst) = (source.variables(), target.variables());
        for name in [
            "conv1.weight",
            "layer3.0.downsample.1.running_var",
            "layer4.1.bn2.bias",
        ] {
            let diff =
                f64::try_from((&src[name] - &dst[&format!("visual.{name}")]).abs().max()).unwrap();
            assert_eq!(diff, 0.0, "{name}");
        }
        // The audio trunk has a 1-channel conv1, so the same file does not fit it.
        let path2 = std::env::temp_dir().join(format!(
            "oassl-train-resnet2-{}.safetensors",
            std::process::id()
        ));
        source.save(&path2).unwrap();
        let err = load_torchvision_trunk(&target, "audio", &path2)
            .unwrap_err()
            .to_string();
        std::fs::remove_file(&path2).unwrap();
        assert!(err.contains("conv1.weight"), "{err}");
    }
}
