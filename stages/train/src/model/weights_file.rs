//! Writing a `VarStore`'s weights as one safetensors file (`model.safetensors`, the checkpoints' weights).
//!
//! tch's `VarStore::save` refuses non-contiguous tensors, and channels-last convolution weights
//! (`resnet::to_channels_last`) are not; each variable is written as a contiguous copy, in the logical
//! (N, C, H, W) order any loader expects, whatever layout it trains in.

use std::path::Path;

use anyhow::{Context, Result};
use tch::{nn, Tensor};

/// Writes every variable of `vs` to `path` (safetensors), contiguous, atomically (a temporary file renamed).
pub fn save_weights(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, var)| (name, var.contiguous()))
        .collect();
    oassl_pipeline::atomic::write_via_path(path, |tmp| {
        Tensor::write_safetensors(&named, tmp)
            .with_context(|| format!("saving weights to {}", tmp.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resnet::{is_channels_last, Compute, ResNet18, ResNetConfig};
    use tch::Device;

    #[test]
    fn channels_last_weights_load_back_into_a_default_layout_store() {
        tch::manual_seed(5);
        let source = nn::VarStore::new(Device::Cpu);
        let mut net = ResNet18::new(&source.root(), ResNetConfig::standard(1)).unwrap();
        net.set_compute(Compute {
            kind: None,
            channels_last: true,
        });
        assert!(is_channels_last(
            &source.variables()["layer1.0.conv1.weight"]
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        save_weights(&source, &path).unwrap();

        let mut target = nn::VarStore::new(Device::Cpu);
        let _same = ResNet18::new(&target.root(), ResNetConfig::standard(1)).unwrap();
        target.load(&path).unwrap();
        let (src, dst) = (source.variables(), target.variables());
        assert_eq!(src.len(), dst.len());
        for (name, t) in &dst {
            assert!(t.equal(&src[name]), "{name} differs after the round trip");
        }
    }
}
