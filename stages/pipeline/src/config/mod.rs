//! `pipeline.toml`: one section per stage, parsed into typed structs and validated.
//!
//! Unknown keys are refused (`deny_unknown_fields` on every section) and every bad value is reported with its
//! `[section] key` and the file, so a typo never silently falls back to a default.

mod captions;
mod embed;
mod eval;
mod pretrain;
mod report;
mod stub;
mod synth;
mod train;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use captions::{preset, CaptionsConfig, ModelPreset, PRESETS};
pub use embed::EmbedConfig;
pub use eval::{EvalConfig, GroundTruthFile, GROUND_TRUTH_FORMATS};
pub use pretrain::PretrainConfig;
pub use report::ReportConfig;
pub use stub::StubConfig;
pub use synth::SynthConfig;
pub use train::{MapScaling, Method, TrainConfig, TrainLossConfig};

/// The whole `pipeline.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    pub data: DataConfig,
    pub synth: SynthConfig,
    pub stub: StubConfig,
    pub embed: EmbedConfig,
    pub captions: CaptionsConfig,
    pub pretrain: PretrainConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    pub report: ReportConfig,
}

/// `[data]`: where the pipeline's files live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Data folder, relative to the config file's folder unless absolute.
    pub root: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("data"),
        }
    }
}

/// A bad value in the config: the key and why.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("[{section}] {key}: {reason}")]
pub struct InvalidValue {
    pub section: &'static str,
    pub key: &'static str,
    pub reason: String,
}

/// Where a stage's libtorch work runs, as resolved from its `device` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    /// The CPU.
    Cpu,
    /// The first CUDA device.
    Cuda,
}

/// Resolves a `device` key (`auto`: CUDA when available, `cpu`, `cuda`) given whether CUDA is available; the
/// one rule every stage follows, so `cuda` on a machine without it is an error naming `[section] device`.
pub fn resolve_device(
    section: &str,
    device: &str,
    cuda_available: bool,
) -> anyhow::Result<Accelerator> {
    match (device, cuda_available) {
        ("cpu", _) | ("auto", false) => Ok(Accelerator::Cpu),
        ("cuda", true) | ("auto", true) => Ok(Accelerator::Cuda),
        ("cuda", false) => bail!("[{section}] device = \"cuda\" but CUDA is not available here"),
        (other, _) => bail!("[{section}] device: {}", not_a_device(other)),
    }
}

/// The values a `device` key takes.
const DEVICES: [&str; 3] = ["auto", "cpu", "cuda"];

fn not_a_device(value: &str) -> String {
    format!("{value:?} is not one of {}", DEVICES.join(", "))
}

/// Checks a section's `device` key: `auto` (CUDA when available), `cpu` or `cuda`.
pub(crate) fn ensure_device(section: &'static str, device: &str) -> Result<(), InvalidValue> {
    ensure(DEVICES.contains(&device), section, "device", || {
        not_a_device(device)
    })
}

/// Checks a section's `visual_output_stride`: 32 (torchvision's ResNet-18) or 16 (`layer4` at stride 1).
pub(crate) fn ensure_output_stride(section: &'static str, stride: u32) -> Result<(), InvalidValue> {
    ensure(
        matches!(stride, 16 | 32),
        section,
        "visual_output_stride",
        || format!("{stride} is not 16 or 32"),
    )
}

/// Checks one condition of a section; used by each section's `validate`.
pub(crate) fn ensure(
    ok: bool,
    section: &'static str,
    key: &'static str,
    reason: impl FnOnce() -> String,
) -> Result<(), InvalidValue> {
    if ok {
        Ok(())
    } else {
        Err(InvalidValue {
            section,
            key,
            reason: reason(),
        })
    }
}

/// A loaded config and the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: PipelineConfig,
}

impl LoadedConfig {
    /// A path from the config, resolved against the config file's folder unless absolute.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let base = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        base.join(path)
    }

    /// `[eval]` with the annotation files of `[eval.ground_truth]` resolved against the config file's folder.
    pub fn eval(&self) -> EvalConfig {
        let mut eval = self.config.eval.clone();
        for gt in eval.ground_truth.values_mut() {
            gt.path = self.resolve(&gt.path);
            gt.boxes = gt.boxes.as_deref().map(|b| self.resolve(b));
        }
        eval
    }

    /// The data folder, resolved against the config file's folder.
    pub fn data_root(&self) -> PathBuf {
        if self.config.data.root.is_absolute() {
            return self.config.data.root.clone();
        }
        let base = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        base.join(&self.config.data.root)
    }
}

impl PipelineConfig {
    /// Parses TOML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let config: PipelineConfig = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!("{}: {}", origin.display(), e.message().trim()).context(
                match e.span() {
                    Some(span) => format!(
                        "invalid config {} (at line {})",
                        origin.display(),
                        line_of(text, span.start)
                    ),
                    None => format!("invalid config {}", origin.display()),
                },
            )
        })?;
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?;
        Ok(config)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<LoadedConfig> {
        if !path.exists() {
            bail!(
                "config file {} not found (the repository's pipeline.toml is the default; set CONFIG=FILE to use another)",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let config = Self::parse(&text, path)?;
        Ok(LoadedConfig {
            path: path.to_path_buf(),
            config,
        })
    }

    /// Checks every section's values.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        ensure(
            !self.data.root.as_os_str().is_empty(),
            "data",
            "root",
            || "must not be empty".into(),
        )?;
        self.synth.validate()?;
        self.stub.validate()?;
        self.embed.validate()?;
        self.captions.validate()?;
        self.pretrain.validate()?;
        self.train.validate()?;
        self.eval.validate()?;
        self.report.validate()?;
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let cfg = PipelineConfig::parse("", Path::new("p.toml")).unwrap();
        assert_eq!(cfg, PipelineConfig::default());
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let err = PipelineConfig::parse("[synth]\nsed = 3\n", Path::new("my.toml")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("my.toml") && msg.contains("sed") && msg.contains("line 2"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_section_is_refused() {
        let err = PipelineConfig::parse("[trian]\n", Path::new("p.toml")).unwrap_err();
        assert!(format!("{err:#}").contains("trian"));
    }

    #[test]
    fn bad_value_names_section_key_and_file() {
        let err = PipelineConfig::parse("[synth]\nwidth = 8\n", Path::new("p.toml")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("p.toml") && msg.contains("[synth] width"),
            "{msg}"
        );
    }

    #[test]
    fn benchmark_configs_load_and_validate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        names.sort();
        assert_eq!(names.len(), 4, "{names:?}");
        for path in names {
            let loaded = PipelineConfig::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
            // Every scored split reads its benchmark's annotation file, next to the config.
            for split in &loaded.config.eval.splits {
                let gt = &loaded.eval().ground_truth[split];
                assert!(
                    gt.path.starts_with(&dir),
                    "{}: {}",
                    path.display(),
                    gt.path.display()
                );
            }
        }
    }

    #[test]
    fn ground_truth_files_name_a_split_a_known_format_and_boxes_for_pairs() {
        let parse = |body: &str| PipelineConfig::parse(body, Path::new("p.toml"));
        let ok = parse(
            "[eval]\nsplits = [\"test_duet\"]\n[eval.ground_truth.test_duet]\n\
             format = \"vggsound-pairs\"\npath = \"lists/duet.csv\"\nboxes = \"/d/vggss.json\"\n",
        )
        .unwrap();
        let gt = &ok.eval.ground_truth["test_duet"];
        assert_eq!(gt.path, PathBuf::from("lists/duet.csv"));
        assert_eq!(gt.boxes.as_deref(), Some(Path::new("/d/vggss.json")));
        for (body, needle) in [
            (
                "[eval]\nsplits = [\"test\"]\n[eval.ground_truth.tset]\nformat = \"vggss\"\npath = \"v.json\"\n",
                "\"tset\" is not one of the splits",
            ),
            (
                "[eval]\nsplits = [\"test\"]\n[eval.ground_truth.test]\nformat = \"coco\"\npath = \"v.json\"\n",
                "test: format \"coco\"",
            ),
            (
                "[eval]\nsplits = [\"test\"]\n[eval.ground_truth.test]\nformat = \"vggsound-pairs\"\npath = \"d.csv\"\n",
                "`boxes`",
            ),
            (
                "[eval]\nsplits = [\"test\"]\n[eval.ground_truth.test]\nformat = \"vggss\"\npath = \"v.json\"\nboxes = \"b.json\"\n",
                "`boxes`",
            ),
        ] {
            let msg = format!("{:#}", parse(body).unwrap_err());
            assert!(
                msg.contains("[eval] ground_truth") && msg.contains(needle),
                "{msg}"
            );
        }
    }

    #[test]
    fn shipped_configs_load_and_validate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for name in ["pipeline.toml", "pipeline.gpu.toml"] {
            let path = root.join(name);
            if name != "pipeline.toml" && !path.exists() {
                continue;
            }
            let loaded = PipelineConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            if name == "pipeline.toml" {
                // The file documents the defaults: it must not drift from them.
                assert_eq!(
                    loaded.config.embed,
                    EmbedConfig::default(),
                    "{name}: [embed]"
                );
                // Except the pretraining split, which the shipped file turns on (a config that does not ask for
                // one gets none, so small test datasets render no pretraining frames).
                assert!(loaded.config.synth.pretrain > 0, "{name}: [synth] pretrain");
                assert_eq!(
                    SynthConfig {
                        pretrain: 0,
                        ..loaded.config.synth.clone()
                    },
                    SynthConfig::default(),
                    "{name}: [synth]"
                );
                assert_eq!(
                    loaded.config.report,
                    ReportConfig::default(),
                    "{name}: [report]"
                );
            }
        }
    }

    /// The one device rule: `cuda` without CUDA is an error naming the key, never the CPU instead.
    #[test]
    fn devices_resolve_by_the_one_rule() {
        use Accelerator::{Cpu, Cuda};
        for (device, cuda, want) in [
            ("cpu", false, Cpu),
            ("cpu", true, Cpu),
            ("auto", false, Cpu),
            ("auto", true, Cuda),
            ("cuda", true, Cuda),
        ] {
            assert_eq!(
                resolve_device("train", device, cuda).unwrap(),
                want,
                "{device} {cuda}"
            );
        }
        let err = resolve_device("eval", "cuda", false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "[eval] device = \"cuda\" but CUDA is not available here"
        );
        let err = resolve_device("embed", "gpu", true)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[embed] device: \"gpu\" is not one of"),
            "{err}"
        );
    }

    /// The message of the error `PipelineConfig::parse` must give for `toml` (read as `p.toml`).
    fn refusal(toml: &str) -> String {
        let err = PipelineConfig::parse(toml, Path::new("p.toml")).unwrap_err();
        format!("{err:#}")
    }

    #[test]
    fn train_and_eval_sections_refuse_unknown_keys() {
        for (toml, named) in [
            ("[train.loss]\nlambda3 = 1.0\n", "lambda3"),
            ("[eval]\nprotocl = \"lvs\"\n", "protocl"),
            ("[train]\nmethod = \"x\"\n", "[train] method"),
            (
                "[train.loss]\nsinkhorn_epsilon = 0.0\n",
                "[train.loss] sinkhorn_epsilon",
            ),
            (
                "[train]\nvisual_output_stride = 8\n",
                "[train] visual_output_stride",
            ),
            (
                "[train.loss]\nioi_iteration_budget = 0\n",
                "[train.loss] ioi_iteration_budget",
            ),
        ] {
            let msg = refusal(toml);
            assert!(msg.contains(named), "{toml:?}: {msg}");
        }
        let msg = refusal("[train.loss]\nori_map_scaling = \"min-max\"\n");
        assert!(
            msg.contains("[train.loss] ori_map_scaling") && msg.contains("line 2"),
            "{msg}"
        );
        let parsed = PipelineConfig::parse(
            "[train]\nmethod = \"noprior\"\n[train.loss]\nori_map_scaling = \"affine\"\n",
            Path::new("p.toml"),
        )
        .unwrap();
        assert_eq!(parsed.train.method, train::Method::NoPrior);
        assert_eq!(parsed.train.loss.ori_map_scaling, train::MapScaling::Affine);
        let ok =
            PipelineConfig::parse("[train.loss]\nlambda2 = 0.5\n", Path::new("p.toml")).unwrap();
        assert_eq!(ok.train.loss.lambda2, 0.5);
        assert_eq!(ok.train.loss.ioi_iteration_budget, None);
        let budget = PipelineConfig::parse(
            "[train.loss]\nioi_iteration_budget = 12\n",
            Path::new("p.toml"),
        )
        .unwrap();
        assert_eq!(budget.train.loss.ioi_iteration_budget, Some(12));
    }

    #[test]
    fn values_that_feed_a_duration_or_an_allocation_are_bounded() {
        for (text, key) in [
            ("[captions]\ntimeout_s = 1e20\n", "[captions] timeout_s"),
            ("[captions]\ntimeout_s = nan\n", "[captions] timeout_s"),
            ("[captions]\ntimeout_s = inf\n", "[captions] timeout_s"),
            ("[captions]\ntimeout_s = -1.0\n", "[captions] timeout_s"),
            ("[captions]\ntimeout_s = 0.0\n", "[captions] timeout_s"),
            (
                "[captions]\nbackoff_ms = 1\nbackoff_max_ms = 9223372036854775807\n",
                "[captions] backoff_max_ms",
            ),
            (
                "[captions]\nbackoff_ms = 2000\nbackoff_max_ms = 1000\n",
                "[captions] backoff_ms",
            ),
            (
                "[captions]\nextract_threads = 1000000\n",
                "[captions] extract_threads",
            ),
            (
                "[captions]\naudio_seconds = nan\n",
                "[captions] audio_seconds",
            ),
            (
                "[captions]\naudio_seconds = 1e300\n",
                "[captions] audio_seconds",
            ),
            (
                "[stub]\nlatency_ms = 9223372036854775807\n",
                "[stub] latency_ms",
            ),
            ("[stub]\nrate_500 = nan\n", "[stub] rate_500"),
            ("[synth]\nclip_seconds = inf\n", "[synth] clip_seconds"),
            (
                "[synth]\ntrain_single = 100000000000\n",
                "[synth] train_single",
            ),
            ("[synth]\ntest_duet = 100000000000\n", "[synth] test_duet"),
            ("[embed]\nchunk_size = 100000000000\n", "[embed] chunk_size"),
            ("[embed]\nmax_len = 100000000000\n", "[embed] max_len"),
            ("[eval]\nbatch_size = 100000000000\n", "[eval] batch_size"),
            (
                "[eval]\ngallery_best = 100000000000\n",
                "[eval] gallery_best",
            ),
            ("[eval]\nprior_sigma = nan\n", "[eval] prior_sigma"),
            (
                "[eval]\nmulti_source = \"sourcewise\"\n",
                "[eval] multi_source",
            ),
            ("[pretrain]\nheld_out = nan\n", "[pretrain] held_out"),
            ("[train]\nbatch_size = 100000000000\n", "[train] batch_size"),
            ("[train]\nworkers = 100000000000\n", "[train] workers"),
            ("[train]\nprefetch = 100000000000\n", "[train] prefetch"),
            (
                "[train]\ntorch_threads = 100000000000\n",
                "[train] torch_threads",
            ),
            ("[train]\naudio_seconds = nan\n", "[train] audio_seconds"),
        ] {
            let err = PipelineConfig::parse(text, Path::new("p.toml"))
                .expect_err(&format!("{text:?} was accepted"));
            let msg = format!("{err:#}");
            assert!(
                msg.contains(key) && msg.contains("p.toml"),
                "{text:?}: {msg}"
            );
        }
        // The largest accepted values still convert without a panic.
        let cfg = PipelineConfig::parse(
            "[captions]\ntimeout_s = 86400.0\nbackoff_max_ms = 3600000\n",
            Path::new("p.toml"),
        )
        .unwrap();
        let _ = std::time::Duration::from_secs_f64(cfg.captions.timeout_s);
    }

    #[test]
    fn data_root_is_relative_to_config_folder() {
        let loaded = LoadedConfig {
            path: PathBuf::from("/etc/oassl/p.toml"),
            config: PipelineConfig::default(),
        };
        assert_eq!(loaded.data_root(), PathBuf::from("/etc/oassl/data"));
    }
}
