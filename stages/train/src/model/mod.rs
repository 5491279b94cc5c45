//! The OA-SSL network and the maps read off its features.

pub mod autocast;
pub mod checkpoint;
pub mod ioi;
pub mod normalize;
pub mod oassl;
pub mod resnet;
pub mod sound_map;
pub mod torch_save;
pub mod weights_file;

pub use autocast::cuda_autocast;
pub use checkpoint::load_torchvision_trunk;
pub use ioi::{iterative_object_identification, EntryKind, IoiConfig, IoiOutput, ObjectGroup};
pub use oassl::{ModelConfig, OasslModel, Outputs, SampleMaps};
pub use resnet::{ResNet18, ResNetConfig};
pub use weights_file::save_weights;
