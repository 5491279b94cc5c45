//! Per-sample and aggregate localisation metrics, one file per metric.

pub mod auc;
pub mod cap;
pub mod ciou;
pub mod detection;
pub mod pixel_ap;

pub use auc::{auc21, success_rate, Comparison};
pub use cap::{greedy_match, GreedyMatch, SlotScore};
pub use ciou::{ciou, iou_smoothed};
pub use detection::{Detection, DetectionReport, DetectionSpec};
pub use pixel_ap::{average_precision, PixelApFlavour};
