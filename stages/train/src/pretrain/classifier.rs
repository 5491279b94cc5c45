//! The pretraining network: the visual ResNet-18 trunk plus a per-pixel linear classifier pooled over the map.
//!
//! ```text
//! frames [B, 3, S, S] → ResNet-18 → F [B, 512, h, w] → fc per pixel → z [B, C, h, w]
//! logit_c = (1/r) · log( (1/hw) Σ_x exp(r · z_c(x)) )        (log-sum-exp pooling, r = 5)
//! L = BCE(logit, y),  y ∈ {0,1}^C the classes shown
//! ```
//!
//! Pooling the class scores of every pixel (instead of torchvision's average pool before `fc`) makes the trunk's
//! features at an object's pixels carry its class: what the localisation model reads off them. The linear map
//! is stored as torchvision's `fc.weight [C, 512]` / `fc.bias [C]`, so the file has the layout of a torchvision
//! checkpoint.

use tch::{nn, Kind, Tensor};

use crate::error::Result;
use crate::model::resnet::{ResNet18, ResNetConfig};

/// Sharpness r of the log-sum-exp pooling: between the mean (r → 0) and the max (r → ∞).
const POOL_SHARPNESS: f64 = 5.0;

/// Visual trunk and its per-pixel classifier.
#[derive(Debug)]
pub struct ObjectClassifier {
    trunk: ResNet18,
    fc: nn::Linear,
}

impl ObjectClassifier {
    /// Builds the trunk at the root of `p` (torchvision names) and `fc` for `classes` outputs.
    pub fn new(p: &nn::Path, classes: i64, layer4_stride: i64) -> Result<Self> {
        let trunk = ResNet18::new(
            p,
            ResNetConfig {
                layer4_stride,
                ..ResNetConfig::standard(3)
            },
        )?;
        let fc = nn::linear(
            p / "fc",
            ResNet18::OUT_CHANNELS,
            classes,
            Default::default(),
        );
        Ok(Self { trunk, fc })
    }

    /// Pooled class logits `[B, C]`.
    pub fn forward_t(&self, frames: &Tensor, train: bool) -> Result<Tensor> {
        let map = self.trunk.forward_t(frames, train)?;
        let per_pixel = map.permute([0, 2, 3, 1]).apply(&self.fc); // [B, h, w, C]
        let (h, w) = (per_pixel.size()[1], per_pixel.size()[2]);
        let pooled = (per_pixel * POOL_SHARPNESS).logsumexp([1, 2], false) / POOL_SHARPNESS
            - ((h * w) as f64).ln() / POOL_SHARPNESS;
        Ok(pooled)
    }

    /// Mean binary cross-entropy of `logits` against the multi-hot `targets`.
    pub fn loss(logits: &Tensor, targets: &Tensor) -> Tensor {
        logits.binary_cross_entropy_with_logits::<Tensor>(
            &targets.to_kind(Kind::Float),
            None,
            None,
            tch::Reduction::Mean,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn logits_have_one_column_per_class_and_names_follow_torchvision() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ObjectClassifier::new(&vs.root(), 10, 1).unwrap();
        let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let logits = net.forward_t(&x, false).unwrap();
        assert_eq!(logits.size(), [2, 10]);
        let vars = vs.variables();
        for name in [
            "conv1.weight",
            "layer4.1.bn2.running_var",
            "fc.weight",
            "fc.bias",
        ] {
            assert!(vars.contains_key(name), "{name}");
        }
        assert_eq!(vars["fc.weight"].size(), [10, 512]);
        let targets = Tensor::from_slice(&[1i64, 0, 0, 0, 0, 0, 0, 0, 0, 1]).view([1, 10]);
        let loss = ObjectClassifier::loss(&logits.narrow(0, 0, 1), &targets);
        assert!(f64::try_from(loss).unwrap() > 0.0);
    }
}
