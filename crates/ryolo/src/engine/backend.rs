//! One inference interface over the model formats: our libtorch model and ONNX files.

use super::onnx::OnnxModel;
use crate::nn::DetectionModel;
use anyhow::{bail, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A loaded model of any format.
#[derive(Debug)]
pub enum Backend {
    /// `.pt`, `.safetensors` or `.yaml`, on libtorch.
    Torch(DetectionModel),
    /// `.onnx`, on ONNX Runtime (CPU).
    Onnx(OnnxModel),
}

/// A borrowed model of any format (what validation and prediction need).
#[derive(Debug, Clone, Copy)]
pub enum ModelRef<'a> {
    /// libtorch model.
    Torch(&'a DetectionModel),
    /// ONNX model.
    Onnx(&'a OnnxModel),
}

impl<'a> From<&'a DetectionModel> for ModelRef<'a> {
    fn from(m: &'a DetectionModel) -> Self {
        ModelRef::Torch(m)
    }
}

impl<'a> From<&'a Backend> for ModelRef<'a> {
    fn from(b: &'a Backend) -> Self {
        b.as_ref()
    }
}

impl Backend {
    /// Loads `.onnx` with ONNX Runtime (2 threads per physical core budget: all cores), anything
    /// else with [`crate::weights::load_model`] on `device`, fused for inference.
    pub fn load(model: &str, device: Device) -> Result<Self> {
        if model.to_ascii_lowercase().ends_with(".onnx") {
            if device != Device::Cpu {
                bail!("ONNX models run on the CPU here (device={device:?} asked); use a .pt model for CUDA");
            }
            return Ok(Backend::Onnx(OnnxModel::load(Path::new(model), 0)?));
        }
        let mut m = crate::weights::load_model(model, None, device)?.model;
        m.fuse();
        Ok(Backend::Torch(m))
    }

    /// Borrows it.
    pub fn as_ref(&self) -> ModelRef<'_> {
        match self {
            Backend::Torch(m) => ModelRef::Torch(m),
            Backend::Onnx(m) => ModelRef::Onnx(m),
        }
    }
}

impl<'a> ModelRef<'a> {
    /// Class names.
    pub fn names(self) -> &'a [String] {
        match self {
            ModelRef::Torch(m) => &m.names,
            ModelRef::Onnx(m) => &m.names,
        }
    }

    /// Largest stride.
    pub fn stride(self) -> usize {
        match self {
            ModelRef::Torch(m) => m.stride.iter().cloned().fold(32.0, f64::max) as usize,
            ModelRef::Onnx(m) => m.stride,
        }
    }

    /// The device inputs must be on.
    pub fn device(self) -> Device {
        match self {
            ModelRef::Torch(m) => m.device(),
            ModelRef::Onnx(_) => Device::Cpu,
        }
    }

    /// A fixed input size `(H, W)` the model requires (static ONNX graphs).
    pub fn fixed_imgsz(self) -> Option<(usize, usize)> {
        match self {
            ModelRef::Torch(_) => None,
            ModelRef::Onnx(m) => m.imgsz,
        }
    }

    /// A fixed batch size the model requires (static ONNX graphs).
    pub fn fixed_batch(self) -> Option<usize> {
        match self {
            ModelRef::Torch(_) => None,
            ModelRef::Onnx(m) => m.batch,
        }
    }

    /// Decoded predictions `(B, 4+nc, A)` for a `(B, 3, H, W)` float input in [0, 1].
    pub fn infer(self, x: &Tensor) -> Result<Tensor> {
        match self {
            ModelRef::Torch(m) => Ok(tch::no_grad(|| m.predict(x))),
            ModelRef::Onnx(m) => {
                let x = x.to_kind(Kind::Float).to_device(Device::Cpu).contiguous();
                let s = x.size();
                if s.len() != 4 {
                    bail!("input of shape {s:?}, expected (batch, 3, height, width)");
                }
                let n = x.numel();
                let mut v = vec![0f32; n];
                x.copy_data(&mut v, n);
                let shape = [s[0] as usize, s[1] as usize, s[2] as usize, s[3] as usize];
                let (y, d) = m.run(&v, shape)?;
                Ok(Tensor::from_slice(&y).view([d[0] as i64, d[1] as i64, d[2] as i64]))
            }
        }
    }

    /// One line describing the model (`YOLO11n summary (fused): ...` or the ONNX file).
    pub fn describe(self) -> String {
        match self {
            ModelRef::Torch(m) => m.info().to_string(),
            ModelRef::Onnx(m) => {
                let shape = match (m.batch, m.imgsz) {
                    (Some(b), Some((h, w))) => format!("({b}, 3, {h}, {w})"),
                    _ => "dynamic".into(),
                };
                format!(
                    "ONNX model {} (ONNX Runtime, input {shape}, {} classes)",
                    m.path.display(),
                    m.names.len()
                )
            }
        }
    }
}
