//! Network: the model YAML format, the building blocks and the detection model.

pub mod classify;
pub mod cv4;
pub mod model;
pub mod modules;
pub mod obb;
pub mod pose;
pub mod segment;
pub mod summary;
pub mod yaml;

pub use model::{DetectionModel, Head, ModelInfo, RawOutput};
pub use yaml::ModelSpec;
