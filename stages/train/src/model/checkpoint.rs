//! Loading torchvision ResNet-18 weights into one encoder of the model.
//!
//! torchvision names a ResNet's tensors from its root (`conv1.weight`, `layer1.0.bn1.running_mean`, ...), while
//! [`crate::model::OasslModel`] keeps its encoders under `visual.` and `audio.`. This copies a torchvision
//! `state_dict` into the variables under one prefix, leaving the rest of the store alone. Two forms are read,
//! chosen by extension: the file torchvision downloads (`resnet18-f37072fd.pth`: `torch.save(model.state_dict())`,
//! also `.pt` and `.bin`) and a safetensors re-save (`.safetensors`).
//! The `torch.save` form is decoded by [`crate::model::torch_save`].

use anyhow::{bail, ensure, Context};
use std::collections::HashMap;
use std::path::Path;

use super::torch_save::decode_torch_save;
use tch::{nn, Tensor};

/// Copies the tensors of the `state_dict` at `path` into the variables of `vs` under `prefix` (e.g.
/// `"visual"`), matching `prefix.NAME` to the file's `NAME` (or `module.NAME`, as `DataParallel` saves it).
/// Extra file entries (`fc.*`, `num_batches_tracked`) are ignored. Every variable must be in the file with
/// its shape; otherwise the error names the file and the first offending tensor by name, and nothing is
/// copied. Returns the number of tensors copied (every variable under `prefix`).
pub fn load_torchvision_trunk(
    vs: &nn::VarStore,
    prefix: &str,
    path: &Path,
) -> anyhow::Result<usize> {
    let file = read_state_dict(path)?;
    let lead = format!("{prefix}.");
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter_map(|(name, var)| Some((name.strip_prefix(&lead)?.to_string(), var)))
        .collect();
    ensure!(
        !vars.is_empty(),
        "the model has no variable under `{prefix}`"
    );
    // Sorted, so that the tensor an error names does not depend on hash order.
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut missing = Vec::new();
    let mut reshaped = Vec::new();
    let mut pairs = Vec::new();
    for (short, var) in &vars {
        match file.get(short) {
            None => missing.push(short.as_str()),
            Some(src) if src.size() != var.size() => {
                reshaped.push((short.as_str(), src.size(), var.size()))
            }
            Some(src) => pairs.push((var, src)),
        }
    }
    if !missing.is_empty() || !reshaped.is_empty() {
        let mut unused: Vec<&str> = file
            .keys()
            .map(String::as_str)
            .filter(|name| {
                !name.starts_with("fc.")
                    && !name.ends_with("num_batches_tracked")
                    && !vars.iter().any(|(short, _)| short == name)
            })
            .collect();
        unused.sort_unstable();
        bail!(
            "{}: {}",
            path.display(),
            mismatch(prefix, vars.len(), &missing, &reshaped, &unused)
        );
    }
    // Shapes are all checked before the first copy, so a wrong file leaves the model untouched.
    let copied = pairs.len();
    for (var, src) in pairs {
        let mut var = var.shallow_clone();
        tch::no_grad(|| -> Result<(), tch::TchError> {
            var.f_copy_(&src.f_to_device(var.device())?.f_to_kind(var.kind())?)?;
            Ok(())
        })
        .with_context(|| format!("{}: copying into `{lead}`", path.display()))?;
    }
    tracing::info!(path = %path.display(), prefix, copied, "loaded trunk weights");
    Ok(copied)
}

/// Says what is wrong with a file whose tensors do not fit the trunk: the first offending tensor in name
/// order (missing, or another shape; other input channels get their own words), then the counts.
fn mismatch(
    prefix: &str,
    total: usize,
    missing: &[&str],
    reshaped: &[(&str, Vec<i64>, Vec<i64>)],
    unused: &[&str],
) -> String {
    let what = match (missing.first(), reshaped.first()) {
        (Some(name), first) if first.is_none_or(|(other, ..)| name < other) => {
            format!("`{name}` is missing from the file")
        }
        (_, Some((name, file, model))) => {
            let channels_only = file.len() == 4
                && model.len() == 4
                && file[0] == model[0]
                && file[2..] == model[2..]
                && file[1] != model[1];
            if channels_only {
                format!(
                    "`{name}` has shape {file:?} in the file but {model:?} in the model: wrong number of input \
                     channels: {} in the file, {} in the model",
                    file[1], model[1]
                )
            } else {
                format!(
                    "`{name}` has shape {file:?} in the file but {model:?} in the model: wrong architecture \
                     (not torchvision's ResNet-18?)"
                )
            }
        }
        _ => "no mismatch".to_string(),
    };
    let mut text = format!(
        "does not fit the `{prefix}` ResNet-18 trunk: {what} (of the trunk's {total} tensors: {} missing, {} with \
         another shape)",
        missing.len(),
        reshaped.len()
    );
    if let Some(first) = unused.first() {
        text.push_str(&format!(
            "; tensors in the file but not in the trunk: {}, e.g. `{first}`",
            unused.len()
        ));
    }
    text
}

/// The tensors of a torchvision `state_dict` file by name, a `module.` prefix removed.
fn read_state_dict(path: &Path) -> anyhow::Result<HashMap<String, Tensor>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let tensors = match ext.as_deref() {
        Some("safetensors") => Tensor::read_safetensors(path)
            .with_context(|| format!("{}: not a readable safetensors file", path.display()))?,
        Some("pth" | "pt" | "bin") => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            decode_torch_save(&bytes).with_context(|| {
                format!("{}: not a readable torch.save state_dict", path.display())
            })?
        }
        _ => bail!(
            "{}: unknown weights format: expected a torchvision state_dict as `.pth`, `.pt` or `.bin` \
             (torch.save) or as `.safetensors`",
            path.display()
        ),
    };
    let mut file = HashMap::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let short = name.strip_prefix("module.").unwrap_or(&name).to_string();
        if file.insert(short.clone(), tensor).is_some() {
            bail!(
                "{}: `{short}` is in the file twice (with and without `module.`)",
                path.display()
            );
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, OasslModel, ResNet18, ResNetConfig};
    use std::path::PathBuf;
    use std::process::Command;
    use tch::Device;

    /// Re-saves the safetensors file `src` with `torch.save` as the `OrderedDict` (with `_metadata`) that
    /// `model.state_dict()` is, after running the Python statements `edit` on it (`sd`).
    const TORCH_SAVE: &str = r#"
import collections, json, struct, sys, torch
src, dst, edit = sys.argv[1:4]
raw = open(src, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
body = raw[8 + n:]
kinds = {'F32': torch.float32, 'I64': torch.int64}
sd = collections.OrderedDict()
for name in sorted(k for k in header if k != '__metadata__'):
    info = header[name]
    a, b = info['data_offsets']
    sd[name] = torch.frombuffer(bytearray(body[a:b]), dtype=kinds[info['dtype']]).reshape(info['shape'])
sd._metadata = collections.OrderedDict([('', {'version': 1})])
exec(edit)
torch.save(sd, dst)
"#;

    /// The project's Python (torch 2.11, made by `make setup`).
    fn python() -> PathBuf {
        let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python3");
        assert!(
            py.exists(),
            "{} is missing: run `make setup` to create the venv with torch",
            py.display()
        );
        py
    }

    /// A torchvision-named ResNet-18 with `in_channels` inputs and random values in every tensor (running
    /// statistics included, so that a copy that skips them shows).
    fn random_resnet(in_channels: i64) -> nn::VarStore {
        let vs = nn::VarStore::new(Device::Cpu);
        let _trunk = ResNet18::new(&vs.root(), ResNetConfig::standard(in_channels)).unwrap();
        tch::manual_seed(7);
        tch::no_grad(|| {
            for (_, mut var) in vs.variables() {
                var.copy_(&var.randn_like());
            }
        });
        vs
    }

    /// Writes `source` to `dir/NAME` with `torch.save`, via the Python above.
    fn torch_save(source: &nn::VarStore, dir: &Path, name: &str, edit: &str) -> PathBuf {
        let st = dir.join(format!("{name}.safetensors"));
        source.save(&st).unwrap();
        let dst = dir.join(name);
        let out = Command::new(python())
            .arg("-c")
            .arg(TORCH_SAVE)
            .arg(&st)
            .arg(&dst)
            .arg(edit)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "torch.save failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dst
    }

    fn model() -> nn::VarStore {
        let vs = nn::VarStore::new(Device::Cpu);
        let _model = OasslModel::new(vs.root(), &ModelConfig::default()).unwrap();
        vs
    }

    /// The bits of every element, so that equal means bitwise equal.
    fn bits(t: &Tensor) -> Vec<u32> {
        Vec::<f32>::try_from(t.flatten(0, -1))
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    fn load_err(vs: &nn::VarStore, prefix: &str, path: &Path) -> String {
        let err = load_torchvision_trunk(vs, prefix, path).unwrap_err();
        format!("{err:#}")
    }

    #[test]
    fn torchvision_names_load_under_the_visual_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let source = random_resnet(3);
        let path = dir.path().join("resnet18.safetensors");
        source.save(&path).unwrap();

        let target = model();
        let copied = load_torchvision_trunk(&target, "visual", &path).unwrap();
        assert_eq!(copied, 100);
        let (src, dst) = (source.variables(), target.variables());
        for name in src.keys() {
            assert_eq!(
                bits(&src[name]),
                bits(&dst[&format!("visual.{name}")]),
                "{name}"
            );
        }
        // The audio trunk has a 1-channel conv1, so the same file does not fit it.
        let err = load_err(&target, "audio", &path);
        assert!(err.contains("`conv1.weight`"), "{err}");
        assert!(err.contains("input channels"), "{err}");
    }

    #[test]
    fn torch_save_state_dict_loads_bitwise() {
        let dir = tempfile::tempdir().unwrap();
        let source = random_resnet(3);
        // As torchvision's file: plus `fc.*`; also a channels-last conv1 and two tensors sharing one storage
        // (offset 64), so that strides and offsets are honoured.
        let path = torch_save(
            &source,
            dir.path(),
            "resnet18-f37072fd.pth",
            "sd['fc.weight'] = torch.randn(1000, 512); sd['fc.bias'] = torch.zeros(1000)\n\
             sd['conv1.weight'] = sd['conv1.weight'].contiguous(memory_format=torch.channels_last)\n\
             both = torch.cat([sd['bn1.weight'], sd['bn1.bias']]); sd['bn1.weight'], sd['bn1.bias'] = both[:64], both[64:]",
        );
        let target = model();
        let copied = load_torchvision_trunk(&target, "visual", &path).unwrap();
        assert_eq!(copied, 100);
        let (src, dst) = (source.variables(), target.variables());
        for name in src.keys() {
            assert_eq!(
                bits(&src[name]),
                bits(&dst[&format!("visual.{name}")]),
                "{name}"
            );
        }

        // A DataParallel save of a trained model: `module.` names and `num_batches_tracked` (int64, 0-d).
        let path = torch_save(
            &source,
            dir.path(),
            "dp.pt",
            "sd = collections.OrderedDict([('module.' + k, v) for k, v in sd.items()] + \
             [('module.bn1.num_batches_tracked', torch.tensor(5))])",
        );
        let target = model();
        let copied = load_torchvision_trunk(&target, "visual", &path).unwrap();
        assert_eq!(copied, 100);
        let dst = target.variables();
        for name in src.keys() {
            assert_eq!(
                bits(&src[name]),
                bits(&dst[&format!("visual.{name}")]),
                "{name}"
            );
        }
    }

    #[test]
    fn wrong_input_channels_are_named_and_nothing_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let path = torch_save(&random_resnet(1), dir.path(), "gray.pth", "");
        let target = model();
        let before = bits(&target.variables()["visual.bn1.weight"]);
        let err = load_err(&target, "visual", &path);
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("`conv1.weight`"), "{err}");
        assert!(
            err.contains("[64, 1, 7, 7]") && err.contains("[64, 3, 7, 7]"),
            "{err}"
        );
        assert!(err.contains("input channels"), "{err}");
        // bn1 fits and sorts before conv1: it must still hold its random init.
        assert_eq!(before, bits(&target.variables()["visual.bn1.weight"]));
    }

    #[test]
    fn wrong_architecture_names_the_first_tensor_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let source = random_resnet(3);
        let target = model();

        // Half the names: layer3 and layer4 (25 tensors each) are gone.
        let path = torch_save(
            &source,
            dir.path(),
            "half.pth",
            "sd = collections.OrderedDict((k, v) for k, v in sd.items() if not k.startswith(('layer3.', 'layer4.')))",
        );
        let err = load_err(&target, "visual", &path);
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("`layer3.0.bn1.bias` is missing"), "{err}");
        assert!(
            err.contains("of the trunk's 100 tensors: 50 missing"),
            "{err}"
        );

        // Renamed keys (another model's prefix): none of the names fit.
        let path = torch_save(
            &source,
            dir.path(),
            "renamed.pth",
            "sd = collections.OrderedDict(('backbone.' + k, v) for k, v in sd.items())",
        );
        let err = load_err(&target, "visual", &path);
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("`bn1.bias` is missing"), "{err}");
        assert!(
            err.contains("of the trunk's 100 tensors: 100 missing"),
            "{err}"
        );
        assert!(err.contains("e.g. `backbone.bn1.bias`"), "{err}");

        // ResNet-50's first bottleneck: the same names, a 1x1 conv1, and a conv3 ResNet-18 lacks.
        let path = torch_save(
            &source,
            dir.path(),
            "resnet50.pth",
            "sd['layer1.0.conv1.weight'] = torch.zeros(64, 64, 1, 1); sd['layer1.0.conv3.weight'] = torch.zeros(256, 64, 1, 1)",
        );
        let err = load_err(&target, "visual", &path);
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            err.contains(
                "`layer1.0.conv1.weight` has shape [64, 64, 1, 1] in the file but [64, 64, 3, 3]"
            ),
            "{err}"
        );
        assert!(err.contains("architecture"), "{err}");
        assert!(err.contains("`layer1.0.conv3.weight`"), "{err}");
    }

    #[test]
    fn truncated_or_foreign_files_fail_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let source = random_resnet(3);
        let full = std::fs::read(torch_save(&source, dir.path(), "full.pth", "")).unwrap();
        let target = model();
        let names: Vec<String> = source.variables().into_keys().collect();

        // Cut in half: the records before the cut are read, the first tensor after it is named.
        let path = dir.path().join("half.pth");
        std::fs::write(&path, &full[..full.len() / 2]).unwrap();
        let err = load_err(&target, "visual", &path);
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("truncated"), "{err}");
        assert!(
            names.iter().any(|n| err.contains(&format!("`{n}`:"))),
            "{err}"
        );

        // Cut inside the pickle, and an empty file.
        for (name, len) in [("short.pth", 200), ("empty.pth", 0)] {
            let path = dir.path().join(name);
            std::fs::write(&path, &full[..len]).unwrap();
            let err = load_err(&target, "visual", &path);
            assert!(err.contains(&path.display().to_string()), "{err}");
        }

        // A safetensors file cut in half.
        let st = dir.path().join("full.safetensors");
        source.save(&st).unwrap();
        let bytes = std::fs::read(&st).unwrap();
        let path = dir.path().join("half.safetensors");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_err(&target, "visual", &path);
        assert!(err.contains(&path.display().to_string()), "{err}");

        // Text saved as `.pth`, and an extension that says nothing.
        let path = dir.path().join("notes.pth");
        std::fs::write(&path, "not weights").unwrap();
        let err = load_err(&target, "visual", &path);
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("not a zip archive"), "{err}");
        let path = dir.path().join("resnet18.ckpt");
        std::fs::write(&path, &full).unwrap();
        let err = load_err(&target, "visual", &path);
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("unknown weights format"), "{err}");
    }
}
