//! Reading a Hugging Face `model.safetensors` into a `VarStore` whose paths spell the checkpoint keys.
//!
//! `VarStore::load` would also match by name, but it neither tries a key prefix nor says which file a bad
//! tensor came from; here every variable is looked up (under the chosen prefix), its shape is checked against
//! the one the config implied when the variable was created, and only then copied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::{nn::VarStore, Tensor};

use crate::error::{EmbedError, Result};

/// All tensors of one safetensors file, held on the CPU until copied into a `VarStore`.
pub(crate) struct Checkpoint {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    pub(crate) fn read(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(EmbedError::MissingFile {
                what: "weights",
                path: path.to_path_buf(),
            });
        }
        let tensors = Tensor::read_safetensors(path)?.into_iter().collect();
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
        })
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// The first of `prefixes` under which `probe` exists, e.g. `""` for a bare `BertModel` and `"bert."` for a
    /// checkpoint saved from a task head such as `BertForMaskedLM`.
    pub(crate) fn find_prefix<'a>(&self, prefixes: &[&'a str], probe: &str) -> Result<&'a str> {
        prefixes
            .iter()
            .find(|prefix| self.contains(&format!("{prefix}{probe}")))
            .copied()
            .ok_or_else(|| EmbedError::MissingTensor {
                path: self.path.clone(),
                tensor: probe.to_string(),
            })
    }

    /// Copies `prefix + name` into every variable of `vs`, checking shapes first.
    ///
    /// Keys in the file that `vs` does not use (the BERT pooler, `position_ids` buffers, a CLIP vision tower)
    /// are ignored. Old BERT checkpoints name layer-norm parameters `gamma`/`beta`; those are accepted too.
    pub(crate) fn copy_into(&self, vs: &VarStore, prefix: &str) -> Result<()> {
        let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        // Sorted so that the first reported problem is the same from run to run.
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        let _guard = tch::no_grad_guard();
        for (name, mut var) in variables {
            let key = format!("{prefix}{name}");
            let src = self.lookup(&key).ok_or_else(|| EmbedError::MissingTensor {
                path: self.path.clone(),
                tensor: key.clone(),
            })?;
            let (expected, found) = (var.size(), src.size());
            if expected != found {
                return Err(EmbedError::ShapeMismatch {
                    path: self.path.clone(),
                    tensor: key,
                    expected,
                    found,
                });
            }
            // copy_ also converts f16/bf16 checkpoints to the store's f32 and moves them to its device.
            var.f_copy_(src)?;
        }
        Ok(())
    }

    fn lookup(&self, key: &str) -> Option<&Tensor> {
        self.tensors.get(key).or_else(|| {
            let legacy = if let Some(stem) = key.strip_suffix("LayerNorm.weight") {
                format!("{stem}LayerNorm.gamma")
            } else if let Some(stem) = key.strip_suffix("LayerNorm.bias") {
                format!("{stem}LayerNorm.beta")
            } else {
                return None;
            };
            self.tensors.get(&legacy)
        })
    }
}
