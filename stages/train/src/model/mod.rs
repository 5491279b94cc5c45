//! The OA-SSL network and the maps read off its features.

pub mod checkpoint;
pub mod ioi;
pub mod normalize;
pub mod oassl;
pub mod resnet;
pub mod sound_map;
pub mod torch_save;
pub mod weights_file;

pub use checkpoint::load_torchvision_trunk;
pub use ioi::{iterative_object_identification, EntryKind, IoiConfig, IoiOutput, ObjectGroup};
pub use oassl::{ModelConfig, OasslModel, Outputs, SampleMaps};
pub use resnet::{ResNet18, ResNetConfig};
pub use weights_file::save_weights;

/// Runs `f` under CUDA fp16 autocast when `enabled`, plainly otherwise. tch's `autocast` is entered only when
/// it is wanted: it calls libtorch's deprecated autocast switches, which log a warning on every call, even to
/// keep autocast off.
pub fn cuda_autocast<T>(enabled: bool, f: impl FnOnce() -> T) -> T {
    if enabled {
        tch::autocast(true, f)
    } else {
        f()
    }
}
