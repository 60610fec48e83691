//! Engines: the predictor (and, later, trainer, validator, exporter).

pub mod backend;
pub mod bench;
pub mod onnx;
pub mod optim;
pub mod predict;
pub mod train;
pub mod val;
