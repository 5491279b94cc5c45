//! The OA-SSL network in its ResNet-18 setting (docs/method.md §1, §4, §11).
//!
//! ```text
//! frames [B, 3, H, W]   → visual ResNet-18 → F_v [B, 512, H/32, W/32], L2-normalised per pixel
//! spec   [B, 1, F, T]   → audio ResNet-18 → global max pool → l_a [B, 512], L2-normalised
//! fg_text [B, K, D]     → Linear D→512 → F_r^p [B, K, 512], L2-normalised per vector
//! bg_text [B, D]        → same Linear  → l_r^n [B, 512], L2-normalised
//! ```
//!
//! The text vectors are frozen, cached sentence embeddings (D = 384 for MiniLM, 768 for BERT-base); only the
//! projection trains. The visual trunk is fine-tuned by default (docs/method.md §11.2: OCA and ORI can only change
//! inference through trainable visual features); `freeze_visual` restores NoPrior's frozen encoder, and
//! `visual_projection` adds a trainable 1×1 convolution on top of it (initialised to the identity), the other
//! way docs/method.md §11.2 names to let OCA and ORI shape the maps while the pretrained trunk stays fixed.

use crate::error::{Result, TrainError};
use crate::model::ioi::{iterative_object_identification, IoiConfig};
use crate::model::normalize::l2_normalize;
use crate::model::resnet::{Compute, ResNet18, ResNetConfig};
use crate::model::sound_map::sound_map;
use crate::shape::expect_dims;
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// Model shape and trainability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Width D of the cached caption embeddings (384 for all-MiniLM-L6-v2, 768 for BERT-base [CLS]).
    pub text_dim: i64,
    /// Keep the visual ResNet-18 fixed (NoPrior's `freeze_vision=1`); default false (docs/method.md §11.2).
    pub freeze_visual: bool,
    /// Keep the audio ResNet-18 fixed; default false (it is trained from scratch in NoPrior).
    pub freeze_audio: bool,
    /// Output stride of the visual trunk: 32 (the paper's 7x7 map at 224 px) or 16 (`layer4` at stride 1).
    pub visual_output_stride: i64,
    /// A trainable 1×1 convolution 512→512 after the visual trunk (`visual_proj.*`), identity at init.
    pub visual_projection: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            text_dim: 384,
            freeze_visual: false,
            freeze_audio: false,
            visual_output_stride: 32,
            visual_projection: false,
        }
    }
}

/// Normalised features of one batch; the input of every loss in [`crate::loss`].
#[derive(Debug)]
pub struct Outputs {
    /// F_v, `[B, 512, h, w]`, unit length along channels at every pixel.
    pub visual: Tensor,
    /// l_a, `[B, 512]`, unit length.
    pub audio: Tensor,
    /// F_r^p, `[B, K, 512]`, projected foreground captions, unit length.
    pub fg_refs: Tensor,
    /// l_r^n, `[B, 512]`, projected background caption, unit length.
    pub bg_ref: Tensor,
    /// Optional `[B, K]` mask (bool or 0/1) of real foreground captions, for batches that mix clips with
    /// different K padded to the largest; `None` means all K are real.
    pub fg_valid: Option<Tensor>,
}

impl Outputs {
    /// Marks which of the K foreground captions are real (see [`Outputs::fg_valid`]). Every sample needs at
    /// least one; a mask on the host is checked here, one already on a device is the caller's to check.
    pub fn with_fg_valid(mut self, mask: Tensor) -> Result<Self> {
        let k = self.fg_refs.size();
        expect_dims(
            "Outputs::with_fg_valid",
            "mask",
            &mask,
            &[Some(k[0]), Some(k[1])],
        )?;
        // Checked where the mask is still on the host: reading it back from a GPU would stall the step.
        let on_host = mask.device() == tch::Device::Cpu;
        let mask = mask.to_kind(Kind::Bool);
        if on_host
            && i64::try_from(
                mask.to_kind(Kind::Int64)
                    .sum_dim_intlist(1i64, false, None::<Kind>)
                    .min(),
            )? < 1
        {
            return Err(TrainError::Shape {
                op: "Outputs::with_fg_valid",
                input: "mask",
                expected: "at least one true entry per sample".into(),
                actual: k[..2].to_vec(),
            });
        }
        self.fg_valid = Some(mask.to_device(self.fg_refs.device()));
        Ok(self)
    }
}

/// Evaluation maps of one sample.
#[derive(Debug)]
pub struct SampleMaps {
    /// S_a, `[h, w]`, cosine in [−1, 1]; the single-source heatmap (docs/method.md §11.15).
    pub single: Tensor,
    /// IOI object maps `[G, h, w]` (−distance, higher is more likely), one per predicted source; G may be 0.
    pub objects: Option<Tensor>,
}

/// Visual and audio ResNet-18 encoders plus the caption projection.
#[derive(Debug)]
pub struct OasslModel {
    visual: ResNet18,
    visual_proj: Option<nn::Conv2D>,
    audio: ResNet18,
    text_proj: nn::Linear,
    cfg: ModelConfig,
}

impl OasslModel {
    /// Feature width shared by all modalities (ResNet-18's `layer4`).
    pub const EMBED_DIM: i64 = ResNet18::OUT_CHANNELS;

    /// Builds the model under `p`: `visual.*` and `audio.*` (torchvision ResNet-18 names) and `text_proj.*`.
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Result<Self> {
        if cfg.text_dim < 1 {
            return Err(TrainError::Config {
                field: "text_dim",
                reason: format!("must be >= 1, got {}", cfg.text_dim),
            });
        }
        let layer4_stride = match cfg.visual_output_stride {
            32 => 2,
            16 => 1,
            other => {
                return Err(TrainError::Config {
                    field: "visual_output_stride",
                    reason: format!("must be 16 or 32, got {other}"),
                })
            }
        };
        let visual = ResNet18::new(
            &(&p / "visual"),
            ResNetConfig {
                frozen: cfg.freeze_visual,
                layer4_stride,
                ..ResNetConfig::standard(3)
            },
        )?;
        let audio = ResNet18::new(
            &(&p / "audio"),
            ResNetConfig {
                frozen: cfg.freeze_audio,
                ..ResNetConfig::standard(1)
            },
        )?;
        let text_proj = nn::linear(
            &p / "text_proj",
            cfg.text_dim,
            Self::EMBED_DIM,
            Default::default(),
        );
        let visual_proj = cfg
            .visual_projection
            .then(|| identity_conv(&p / "visual_proj"));
        Ok(Self {
            visual,
            visual_proj,
            audio,
            text_proj,
            cfg: cfg.clone(),
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Sets how both trunks compute (see [`Compute`]); the text projection stays f32 (it is tiny).
    pub fn set_compute(&mut self, compute: Compute) {
        self.visual.set_compute(compute);
        self.audio.set_compute(compute);
    }

    /// `frames [B, 3, H, W]` (ImageNet-normalised) → F_v `[B, 512, H/32, W/32]`, unit length per pixel.
    pub fn encode_visual(&self, frames: &Tensor, train: bool) -> Result<Tensor> {
        expect_dims(
            "OasslModel::encode_visual",
            "frames",
            frames,
            &[None, Some(3), None, None],
        )?;
        let trunk = self.visual.forward_t(frames, train)?;
        let features = match &self.visual_proj {
            // A reduced-precision trunk feeds the f32 projection its own kind, as autocast would.
            Some(proj) if trunk.kind() != proj.ws.kind() => trunk.conv2d(
                &proj.ws.to_kind(trunk.kind()),
                proj.bs.as_ref().map(|b| b.to_kind(trunk.kind())),
                [1, 1],
                [0, 0],
                [1, 1],
                1,
            ),
            Some(proj) => trunk.apply(proj),
            None => trunk,
        };
        Ok(l2_normalize(&features, 1))
    }

    /// `spec [B, 1, F, T]` (log spectrogram / 12) → l_a `[B, 512]`: global max pool, unit length.
    pub fn encode_audio(&self, spec: &Tensor, train: bool) -> Result<Tensor> {
        expect_dims(
            "OasslModel::encode_audio",
            "spec",
            spec,
            &[None, Some(1), None, None],
        )?;
        let map = self.audio.forward_t(spec, train)?;
        Ok(l2_normalize(&map.amax([2, 3], false), 1))
    }

    /// `text [..., D]` → `[..., 512]`, projected and unit length.
    pub fn project_text(&self, text: &Tensor) -> Result<Tensor> {
        let size = text.size();
        if size.last() != Some(&self.cfg.text_dim) {
            return Err(TrainError::Shape {
                op: "OasslModel::project_text",
                input: "text",
                expected: format!("[..., {}]", self.cfg.text_dim),
                actual: size,
            });
        }
        Ok(l2_normalize(&text.apply(&self.text_proj), -1))
    }

    /// Training forward pass. `fg_text [B, K, D]` and `bg_text [B, D]` are the cached caption embeddings;
    /// `train` selects BatchNorm batch statistics.
    pub fn forward(
        &self,
        frames: &Tensor,
        spec: &Tensor,
        fg_text: &Tensor,
        bg_text: &Tensor,
        train: bool,
    ) -> Result<Outputs> {
        const OP: &str = "OasslModel::forward";
        let f = expect_dims(OP, "frames", frames, &[None, Some(3), None, None])?;
        let b = Some(f[0]);
        let d = Some(self.cfg.text_dim);
        expect_dims(OP, "spec", spec, &[b, Some(1), None, None])?;
        expect_dims(OP, "fg_text", fg_text, &[b, None, d])?;
        expect_dims(OP, "bg_text", bg_text, &[b, d])?;
        Ok(Outputs {
            visual: self.encode_visual(frames, train)?,
            audio: self.encode_audio(spec, train)?,
            fg_refs: self.project_text(fg_text)?,
            bg_ref: self.project_text(bg_text)?,
            fg_valid: None,
        })
    }

    /// Evaluation maps without captions, in inference mode and without autograd: per sample S_a and the IOI
    /// object maps (docs/method.md §2.2).
    pub fn infer_maps(
        &self,
        frames: &Tensor,
        spec: &Tensor,
        ioi: &IoiConfig,
    ) -> Result<Vec<SampleMaps>> {
        let f = expect_dims(
            "OasslModel::infer_maps",
            "frames",
            frames,
            &[None, Some(3), None, None],
        )?;
        expect_dims(
            "OasslModel::infer_maps",
            "spec",
            spec,
            &[Some(f[0]), Some(1), None, None],
        )?;
        let _guard = tch::no_grad_guard();
        let visual = self.encode_visual(frames, false)?;
        let audio = self.encode_audio(spec, false)?;
        let single = sound_map(&visual, &audio)?;
        let objects = iterative_object_identification(&visual, &audio, ioi)?;
        (0..f[0])
            .map(|i| {
                Ok(SampleMaps {
                    single: single.get(i),
                    objects: objects.object_maps(i as usize)?,
                })
            })
            .collect()
    }
}

/// A 512→512 1×1 convolution with bias that starts as the identity, so training starts from the trunk's
/// features exactly.
fn identity_conv(p: nn::Path) -> nn::Conv2D {
    let c = OasslModel::EMBED_DIM;
    let conv = nn::conv2d(p, c, c, 1, Default::default());
    tch::no_grad(|| {
        let eye = Tensor::eye(c, (Kind::Float, conv.ws.device())).view([c, c, 1, 1]);
        conv.ws.shallow_clone().copy_(&eye);
        if let Some(bias) = &conv.bs {
            let _ = bias.shallow_clone().zero_();
        }
    });
    conv
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn zeros(dims: &[i64]) -> Tensor {
        Tensor::zeros(dims, (Kind::Float, Device::Cpu))
    }

    #[test]
    fn forward_shapes_on_small_inputs() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = OasslModel::new(vs.root(), &ModelConfig::default()).unwrap();
        let out = model
            .forward(
                &zeros(&[2, 3, 64, 64]),
                &zeros(&[2, 1, 64, 64]),
                &zeros(&[2, 2, 384]),
                &zeros(&[2, 384]),
                true,
            )
            .unwrap();
        assert_eq!(out.visual.size(), [2, 512, 2, 2]);
        assert_eq!(out.audio.size(), [2, 512]);
        assert_eq!(out.fg_refs.size(), [2, 2, 512]);
        assert_eq!(out.bg_ref.size(), [2, 512]);
        let vars = vs.variables();
        assert!(vars.contains_key("visual.layer4.1.bn2.weight"));
        assert!(vars.contains_key("audio.conv1.weight"));
        assert_eq!(vars["audio.conv1.weight"].size(), [64, 1, 7, 7]);
        assert_eq!(vars["text_proj.weight"].size(), [512, 384]);
    }

    #[test]
    fn features_are_unit_length() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = OasslModel::new(vs.root(), &ModelConfig::default()).unwrap();
        let frames = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let spec = Tensor::randn([2, 1, 64, 64], (Kind::Float, Device::Cpu));
        let text = Tensor::randn([2, 3, 384], (Kind::Float, Device::Cpu));
        let out = model.forward(&frames, &spec, &text, &text.get(0), false);
        // bg_text [3, 384] has the wrong batch size; the error names it.
        let err = out.unwrap_err().to_string();
        assert!(err.contains("`bg_text`"), "{err}");
        let out = model
            .forward(&frames, &spec, &text, &text.select(1, 0), false)
            .unwrap();
        for (name, t, dim) in [
            ("visual", &out.visual, 1),
            ("audio", &out.audio, 1),
            ("fg", &out.fg_refs, 2),
        ] {
            let norms = t.norm_scalaropt_dim(2.0, [dim], false);
            let err = f64::try_from((norms - 1.0).abs().max()).unwrap();
            assert!(err < 1e-5, "{name} not unit length: {err}");
        }
    }

    #[test]
    fn full_resolution_gives_7x7_visual_map() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig {
            freeze_visual: true,
            ..Default::default()
        };
        let model = OasslModel::new(vs.root(), &cfg).unwrap();
        let maps = model
            .infer_maps(
                &zeros(&[1, 3, 224, 224]),
                &zeros(&[1, 1, 257, 276]),
                &IoiConfig::default(),
            )
            .unwrap();
        assert_eq!(maps.len(), 1);
        assert_eq!(maps[0].single.size(), [7, 7]);
    }

    #[test]
    fn fg_valid_needs_one_real_caption_per_sample() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = OasslModel::new(vs.root(), &ModelConfig::default()).unwrap();
        let out = model
            .forward(
                &zeros(&[2, 3, 32, 32]),
                &zeros(&[2, 1, 32, 32]),
                &zeros(&[2, 2, 384]),
                &zeros(&[2, 384]),
                false,
            )
            .unwrap();
        let bad = Tensor::from_slice(&[1i64, 0, 0, 0]).view([2, 2]);
        assert!(out.with_fg_valid(bad).is_err());
    }
}
