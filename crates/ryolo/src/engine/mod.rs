//! Engines: the predictor (and, later, trainer, validator, exporter).

pub mod predict;
pub mod val;
