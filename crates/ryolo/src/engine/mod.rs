//! Engines on one generic core: the trainer ([`train::Trainer`]), the validator ([`val`]), the
//! predictor ([`predict::Predictor`], images, batches and video streams), `yolo benchmark`, the
//! micro-benchmarks of `yolo bench`, the optimizers, and the inference backends (libtorch, ONNX
//! Runtime, also for libtorch models through an in-memory export: [`ortpath`]) behind
//! [`backend::ModelRef::run_batch`].

pub mod backend;
pub mod bench;
pub mod benchmark;
pub mod dist;
pub mod onnx;
pub mod onnx_check;
pub mod optim;
pub mod ortpath;
pub mod predict;
pub mod train;
pub mod val;
