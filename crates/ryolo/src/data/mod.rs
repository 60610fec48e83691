//! Data: data.yaml, image listing, label checks with a verdict per file, the scan and its cache.

pub mod augment;
pub mod batch;
pub mod classify;
pub mod classify_policy;
pub mod classify_tensor_ops;
pub mod convert;
pub mod dataset;
pub mod dota;
pub mod filter;
pub(crate) mod finish;
pub mod hsv;
pub mod image;
pub mod instances;
pub mod labels;
pub mod loader;
pub mod min_area_rect;
pub mod obb;
pub mod plain;
pub mod split_dota;
pub mod synth;
pub mod synth_po;
pub mod video;
pub mod warp_rows;
pub mod yaml_scan;

pub use dataset::{img2label_path, list_images, load_data_yaml, DataConfig};
pub use instances::Instances;
pub use labels::{scan, scan_with, LabelEntry, LabelFormat, Scan};
