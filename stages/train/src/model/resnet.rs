//! ResNet-18 trunk (He et al., CVPR 2016) up to `layer4`, with torchvision's `state_dict` names.
//!
//! Variables live at `conv1`, `bn1`, `layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2}` and
//! `layer{2..4}.0.downsample.{0,1}`, so a torchvision checkpoint re-saved as safetensors loads by name with
//! `VarStore::load` (extra keys such as `fc.*` and `num_batches_tracked` are ignored). The trunk stops after
//! `layer4`: a 224×224 frame gives a 512×7×7 map and a 257×276 spectrogram a 512×9×9 map (docs/method.md §1.2).
//!
//! Random init follows NoPrior's audio encoder: Kaiming-normal (fan-out, ReLU) convolutions and BatchNorm
//! weights drawn from N(1, 0.02) with zero bias.

use crate::error::{Result, TrainError};
use crate::shape::expect_dims;
use tch::nn;
use tch::{Kind, Tensor};

const STAGE_WIDTHS: [i64; 4] = [64, 128, 256, 512];
const BLOCKS_PER_STAGE: usize = 2;

/// How to build a [`ResNet18`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Input channels: 3 for RGB frames, 1 for spectrograms (the 1→64, 7×7, stride-2, padding-3 first conv of
    /// the supplementary's audio encoder).
    pub in_channels: i64,
    /// A frozen trunk runs without autograd and with BatchNorm in inference mode whatever `train` says, so
    /// neither its weights nor its running statistics change.
    pub frozen: bool,
    /// Stride of `layer4`'s first block: 2 as in torchvision (output stride 32), or 1 for output stride 16,
    /// which doubles the side of the map at 4x the cost of `layer4` and loads the same weights.
    pub layer4_stride: i64,
}

impl ResNetConfig {
    /// Torchvision's trunk (output stride 32) for `in_channels`, trainable.
    pub fn standard(in_channels: i64) -> Self {
        Self {
            in_channels,
            frozen: false,
            layer4_stride: 2,
        }
    }
}

fn conv_init() -> nn::Init {
    nn::Init::Kaiming {
        dist: nn::init::NormalOrUniform::Normal,
        fan: nn::init::FanInOut::FanOut,
        non_linearity: nn::init::NonLinearity::ReLU,
    }
}

/// How a trunk computes, beside its weights (which stay f32 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compute {
    /// Reduced-precision kind of the convolutions and BatchNorm activations (`BFloat16`/`Half`), `None` for f32.
    /// Weights are cast at each use, so gradients reach the f32 weights: what autocast does, done by hand
    /// because tch 0.24's `autocast` only switches CUDA autocast on.
    pub kind: Option<Kind>,
    /// Run the convolutions on channels-last (NHWC-strided) activations and weights: cuDNN's tensor-core
    /// kernels take NHWC, so on CUDA this saves the layout transposes around every convolution.
    pub channels_last: bool,
}

/// A bias-free convolution with the geometry needed to call it on a cast weight (`nn::Conv2D` keeps its
/// config private).
#[derive(Debug)]
struct Conv {
    conv: nn::Conv2D,
    stride: i64,
    padding: i64,
}

impl Conv {
    /// Gives the weight channels-last strides (or the default ones back), values unchanged. The variable keeps
    /// its identity (`set_data`), so the VarStore and any handle to it see the new layout.
    fn set_channels_last(&self, channels_last: bool) {
        let mut ws = self.conv.ws.shallow_clone();
        let data = if channels_last {
            to_channels_last(&ws)
        } else {
            ws.contiguous()
        };
        tch::no_grad(|| ws.set_data(&data));
    }

    fn forward(&self, xs: &Tensor, kind: Option<Kind>) -> Tensor {
        match kind {
            None => xs.apply(&self.conv),
            Some(k) => xs.conv2d(
                &self.conv.ws.to_kind(k),
                None::<Tensor>,
                [self.stride; 2],
                [self.padding; 2],
                [1, 1],
                1,
            ),
        }
    }
}

fn conv2d(p: nn::Path, c_in: i64, c_out: i64, kernel: i64, stride: i64, padding: i64) -> Conv {
    let cfg = nn::ConvConfig {
        stride,
        padding,
        bias: false,
        ws_init: conv_init(),
        ..Default::default()
    };
    Conv {
        conv: nn::conv2d(p, c_in, c_out, kernel, cfg),
        stride,
        padding,
    }
}

/// The same values with channels-last strides (tch has no memory-format argument; a contiguous copy of the
/// NHWC permutation, permuted back, is what `to(memory_format=torch.channels_last)` produces).
pub fn to_channels_last(xs: &Tensor) -> Tensor {
    xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Whether `xs` is a 4-D tensor whose storage runs N, H, W, C, as [`to_channels_last`] makes it. Where one
/// channel or a 1×1 kernel makes that the default order too (libtorch ignores the strides of size-1
/// dimensions), both layouts hold.
pub fn is_channels_last(xs: &Tensor) -> bool {
    xs.dim() == 4 && xs.permute([0, 2, 3, 1]).is_contiguous()
}

fn batch_norm(p: nn::Path, channels: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Randn {
            mean: 1.0,
            stdev: 0.02,
        },
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, channels, cfg)
}

/// torchvision's `BasicBlock`: two 3×3 convolutions with a residual connection.
#[derive(Debug)]
struct BasicBlock {
    conv1: Conv,
    bn1: nn::BatchNorm,
    conv2: Conv,
    bn2: nn::BatchNorm,
    downsample: Option<(Conv, nn::BatchNorm)>,
}

impl BasicBlock {
    fn new(p: &nn::Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            let d = p / "downsample";
            (
                conv2d(&d / "0", c_in, c_out, 1, stride, 0),
                batch_norm(&d / "1", c_out),
            )
        });
        Self {
            conv1: conv2d(p / "conv1", c_in, c_out, 3, stride, 1),
            bn1: batch_norm(p / "bn1", c_out),
            conv2: conv2d(p / "conv2", c_out, c_out, 3, 1, 1),
            bn2: batch_norm(p / "bn2", c_out),
            downsample,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool, kind: Option<Kind>) -> Tensor {
        let ys = self
            .conv1
            .forward(xs, kind)
            .apply_t(&self.bn1, train)
            .relu();
        let ys = self.conv2.forward(&ys, kind).apply_t(&self.bn2, train);
        let shortcut = match &self.downsample {
            Some((conv, bn)) => conv.forward(xs, kind).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (ys + shortcut).relu()
    }
}

/// ResNet-18 without `avgpool` and `fc`: returns the `layer4` map `[B, 512, H/32, W/32]` (`H/16` with
/// `layer4_stride` 1).
#[derive(Debug)]
pub struct ResNet18 {
    conv1: Conv,
    bn1: nn::BatchNorm,
    stages: Vec<Vec<BasicBlock>>,
    cfg: ResNetConfig,
    compute: Compute,
}

impl ResNet18 {
    /// Output channels of `layer4`.
    pub const OUT_CHANNELS: i64 = 512;

    /// Creates the trunk under `p` with random weights (see the module doc).
    pub fn new(p: &nn::Path, cfg: ResNetConfig) -> Result<Self> {
        if cfg.in_channels < 1 {
            return Err(TrainError::Config {
                field: "in_channels",
                reason: format!("must be >= 1, got {}", cfg.in_channels),
            });
        }
        if !matches!(cfg.layer4_stride, 1 | 2) {
            return Err(TrainError::Config {
                field: "layer4_stride",
                reason: format!("must be 1 or 2, got {}", cfg.layer4_stride),
            });
        }
        let mut c_in = 64;
        let stages = STAGE_WIDTHS
            .iter()
            .enumerate()
            .map(|(s, &width)| {
                let stage = p / format!("layer{}", s + 1);
                (0..BLOCKS_PER_STAGE)
                    .map(|b| {
                        let stride = match (s, b) {
                            (3, 0) => cfg.layer4_stride,
                            (1..=2, 0) => 2,
                            _ => 1,
                        };
                        let block = BasicBlock::new(&(&stage / b), c_in, width, stride);
                        c_in = width;
                        block
                    })
                    .collect()
            })
            .collect();
        Ok(Self {
            conv1: conv2d(p / "conv1", cfg.in_channels, 64, 7, 2, 3),
            bn1: batch_norm(p / "bn1", 64),
            stages,
            cfg,
            compute: Compute::default(),
        })
    }

    /// Sets how later forward passes compute (f32 and contiguous by default). A change of layout converts
    /// the convolution weights too, so call this before an optimizer takes the weights (see
    /// `stage::adam::Adam::new`, which keeps each variable's layout from then on).
    pub fn set_compute(&mut self, compute: Compute) {
        if compute.channels_last != self.compute.channels_last {
            for conv in self.convs() {
                conv.set_channels_last(compute.channels_last);
            }
        }
        self.compute = compute;
    }

    /// Every convolution of the trunk.
    fn convs(&self) -> Vec<&Conv> {
        let mut convs = vec![&self.conv1];
        for block in self.stages.iter().flatten() {
            convs.extend([&block.conv1, &block.conv2]);
            convs.extend(block.downsample.as_ref().map(|(conv, _)| conv));
        }
        convs
    }

    /// How forward passes compute.
    pub fn compute(&self) -> Compute {
        self.compute
    }

    /// The configuration this trunk was built with.
    pub fn config(&self) -> ResNetConfig {
        self.cfg
    }

    /// `xs: [B, in_channels, H, W]` → `[B, 512, ⌈H/32⌉, ⌈W/32⌉]`. `train` selects batch statistics in
    /// BatchNorm (ignored when frozen).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        expect_dims(
            "ResNet18::forward_t",
            "xs",
            xs,
            &[None, Some(self.cfg.in_channels), None, None],
        )?;
        if self.cfg.frozen {
            Ok(tch::no_grad(|| self.trunk(xs, false)))
        } else {
            Ok(self.trunk(xs, train))
        }
    }

    fn trunk(&self, xs: &Tensor, train: bool) -> Tensor {
        let Compute {
            kind,
            channels_last,
        } = self.compute;
        let xs = match kind {
            Some(k) => xs.to_kind(k),
            None => xs.shallow_clone(),
        };
        // Convolutions keep the layout of their input, so converting the input once is enough.
        let xs = if channels_last {
            to_channels_last(&xs)
        } else {
            xs
        };
        let mut ys = self
            .conv1
            .forward(&xs, kind)
            .apply_t(&self.bn1, train)
            .relu()
            .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for block in self.stages.iter().flatten() {
            ys = block.forward_t(&ys, train, kind);
        }
        // The losses `view` their inputs, which needs the default layout.
        if channels_last {
            ys.contiguous()
        } else {
            ys
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn variable_names_follow_torchvision() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = ResNet18::new(&vs.root(), ResNetConfig::standard(3)).unwrap();
        let vars = vs.variables();
        for name in [
            "conv1.weight",
            "bn1.weight",
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "layer1.0.conv1.weight",
            "layer1.1.bn2.running_var",
            "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.weight",
            "layer4.1.conv2.weight",
        ] {
            assert!(vars.contains_key(name), "missing {name}");
        }
        assert!(!vars.contains_key("layer1.0.downsample.0.weight"));
        assert_eq!(vars["conv1.weight"].size(), [64, 3, 7, 7]);
        assert_eq!(
            vars["layer4.0.downsample.0.weight"].size(),
            [512, 256, 1, 1]
        );
        // 11,176,512 trainable parameters = torchvision resnet18 (11,689,512) minus fc (513,000).
        let n: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(n, 11_176_512);
    }

    #[test]
    fn channels_last_converts_every_conv_weight_and_keeps_the_outputs() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut net = ResNet18::new(&vs.root(), ResNetConfig::standard(3)).unwrap();
        let xs = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let before = net.forward_t(&xs, false).unwrap();
        let handle = vs.variables()["layer2.0.conv1.weight"].shallow_clone();
        let values = handle.copy();
        let conv_weights = |vs: &nn::VarStore| -> Vec<Tensor> {
            let vars = vs.variables();
            let convs: Vec<Tensor> = vars
                .values()
                .filter(|t| t.dim() == 4)
                .map(|t| t.shallow_clone())
                .collect();
            assert_eq!(
                convs.len(),
                20,
                "conv1, 16 block convolutions, 3 downsample convolutions"
            );
            convs
        };

        net.set_compute(Compute {
            kind: None,
            channels_last: true,
        });
        for w in conv_weights(&vs) {
            assert!(
                is_channels_last(&w),
                "strides {:?} of {:?}",
                w.stride(),
                w.size()
            );
        }
        // The handle taken before sees the new layout and the same values.
        assert!(is_channels_last(&handle));
        assert!(!handle.is_contiguous());
        assert!(handle.equal(&values));
        let after = net.forward_t(&xs, false).unwrap();
        assert!(after.is_contiguous(), "the losses view the map");
        let diff = (&after - &before).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "channels-last changed the map by {diff}");

        net.set_compute(Compute::default());
        for w in conv_weights(&vs) {
            assert!(
                w.is_contiguous(),
                "strides {:?} of {:?}",
                w.stride(),
                w.size()
            );
        }
        assert!(!is_channels_last(&handle));
        assert!(handle.equal(&values));
    }

    #[test]
    fn one_channel_trunk_has_a_1_to_64_first_conv() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = ResNet18::new(&vs.root(), ResNetConfig::standard(1)).unwrap();
        assert_eq!(vs.variables()["conv1.weight"].size(), [64, 1, 7, 7]);
    }

    /// The `layer4` map of a zero batch `[n, c, side, side]`.
    fn map_of_zeros(net: &ResNet18, n: i64, c: i64, side: i64) -> Result<Tensor> {
        net.forward_t(
            &Tensor::zeros([n, c, side, side], (Kind::Float, Device::Cpu)),
            false,
        )
    }

    #[test]
    fn output_is_input_over_32() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet18::new(&vs.root(), ResNetConfig::standard(3)).unwrap();
        let ys = map_of_zeros(&net, 2, 3, 64).unwrap();
        assert_eq!(ys.size(), [2, 512, 2, 2]);
        let err = map_of_zeros(&net, 2, 1, 64).unwrap_err();
        assert!(err.to_string().contains("`xs`"), "{err}");
    }

    #[test]
    fn layer4_stride_1_doubles_the_map_side_with_the_same_weights() {
        let standard = nn::VarStore::new(Device::Cpu);
        let _ = ResNet18::new(&standard.root(), ResNetConfig::standard(3)).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ResNetConfig {
            layer4_stride: 1,
            ..ResNetConfig::standard(3)
        };
        let net = ResNet18::new(&vs.root(), cfg).unwrap();
        let ys = map_of_zeros(&net, 1, 3, 128).unwrap();
        assert_eq!(ys.size(), [1, 512, 8, 8]);
        // Same names and shapes, so torchvision weights load into either.
        let (a, b) = (standard.variables(), vs.variables());
        assert_eq!(a.len(), b.len());
        for (name, t) in &a {
            assert_eq!(b[name].size(), t.size(), "{name}");
        }
        let bad = ResNet18::new(
            &nn::VarStore::new(Device::Cpu).root(),
            ResNetConfig {
                layer4_stride: 3,
                ..ResNetConfig::standard(3)
            },
        )
        .unwrap_err();
        assert!(bad.to_string().contains("layer4_stride"), "{bad}");
    }

    #[test]
    fn frozen_trunk_produces_no_gradient_and_keeps_running_stats() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ResNetConfig {
            in_channels: 1,
            frozen: true,
            layer4_stride: 2,
        };
        let net = ResNet18::new(&vs.root(), cfg).unwrap();
        let xs = Tensor::randn([2, 1, 32, 32], (Kind::Float, Device::Cpu));
        let ys = net.forward_t(&xs, true).unwrap();
        assert!(!ys.requires_grad());
        let running_mean = vs.variables()["bn1.running_mean"].abs().sum(Kind::Float);
        assert_eq!(f64::try_from(running_mean).unwrap(), 0.0);
    }
}
