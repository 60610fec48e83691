//! ryolo: the Ultralytics YOLO (v8, 11) detection workflow in Rust on libtorch.
//!
//! The modules read as the pipeline: [`cfg`] (arguments, settings, run folders), [`nn`] (models),
//! [`weights`] (Ultralytics `.pt` and our checkpoints), [`ops`] (letterbox, NMS, box math),
//! [`engine`] (predictor), [`plot`] (drawing).

#![warn(missing_docs)]

pub mod cfg;
pub mod data;
pub mod engine;
pub mod export;
pub mod loss;
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod plot;
pub mod task;
pub mod util;
pub mod weights;

/// The `image` crate, re-exported: predictions take and return its types.
pub use image;
