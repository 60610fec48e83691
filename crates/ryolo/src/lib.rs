//! ryolo: the Ultralytics YOLO (v8, 11) toolchain in Rust on libtorch.
//!
//! The modules read as the pipeline: [`cfg`] (arguments, typed settings, run folders), [`task`]
//! (which task a run is and what each task owns), [`data`] (data.yaml, labels, augmentation, the
//! loader), [`nn`] (YAML-built models), [`weights`] (Ultralytics `.pt` and our checkpoints),
//! [`loss`], [`engine`] (trainer, validator, predictor, benchmarks over one inference path),
//! [`metrics`], [`export`] (ONNX), [`ops`] (letterbox, NMS, box math), [`plot`] and [`util`].
//! Detection is implemented; segment, classify, pose and obb are recognised and refused clearly.

#![warn(missing_docs)]

pub mod cfg;
pub mod data;
pub mod engine;
pub mod export;
pub mod hub;
pub mod loss;
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod plot;
pub mod task;
pub mod track;
pub mod util;
pub mod weights;

/// The `image` crate, re-exported: predictions take and return its types.
pub use image;
