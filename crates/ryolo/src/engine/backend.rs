//! One inference interface over the model formats (our libtorch model, ONNX files): letterboxed
//! batches in, decoded `(B, 4+nc, A)` rows on the host out, then the task's post-processing.

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

/// The run's arguments with the checkpoint's training `imgsz` adopted unless `imgsz` was given,
/// and its `data` unless `data` was given (Ultralytics keeps both from a checkpoint).
pub fn with_checkpoint_imgsz(
    args: &crate::cfg::Args,
    loaded: &crate::weights::Loaded,
) -> crate::cfg::Args {
    let mut a = args.clone();
    let given = args.get("imgsz")
        != crate::cfg::defaults()
            .get("imgsz")
            .unwrap_or(&serde_yaml::Value::Null);
    if !given {
        if let Some(v) = loaded.train_args.get("imgsz").filter(|v| !v.is_null()) {
            a.0.insert("imgsz".into(), v.clone());
        }
    }
    if args.str("data").is_none() {
        if let Some(v) = loaded.train_args.get("data").filter(|v| v.is_string()) {
            a.0.insert("data".into(), v.clone());
        }
    }
    a
}

impl Backend {
    /// Loads any model format for inference (fused), adopting the checkpoint's imgsz into the
    /// returned arguments (as Ultralytics does for val and predict). A libtorch model on the CPU
    /// runs on ONNX Runtime through an in-memory export when [`super::ortpath::ENV`] allows it
    /// (see [`super::ortpath::select`]); `augment=True` on a detect model keeps libtorch.
    pub fn load_for(args: &crate::cfg::Args, model: &str) -> Result<(Self, crate::cfg::Args)> {
        let device = args.device()?;
        if model.to_ascii_lowercase().ends_with(".onnx") {
            return Ok((Self::load(model, device)?, args.clone()));
        }
        let engine = super::ortpath::Engine::from_env()?;
        // ONNX Runtime loads while the model is read and exported (joined when this returns).
        let _preload = (device == Device::Cpu && engine != super::ortpath::Engine::Torch)
            .then(super::onnx::Preload::start);
        let loaded = crate::weights::load_model(model, None, device)?;
        let a = with_checkpoint_imgsz(args, &loaded);
        let mut m = loaded.model;
        m.fuse();
        // Loaded for inference: no parameter takes gradients (Ultralytics prints 0 gradients).
        m.vs.freeze();
        let needs = if device != Device::Cpu {
            super::ortpath::Needs::Cuda
        } else if args.bool("augment") && m.task() == crate::task::TaskKind::Detect {
            super::ortpath::Needs::Augment
        } else {
            super::ortpath::Needs::Nothing
        };
        let b = super::ortpath::select(m, Path::new(model), engine, needs)?;
        Ok((b, a))
    }

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
        // Loaded for inference: no parameter takes gradients (Ultralytics prints 0 gradients).
        m.vs.freeze();
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

    /// The task of the model's head.
    pub fn task(self) -> crate::task::TaskKind {
        match self {
            ModelRef::Torch(m) => m.task(),
            ModelRef::Onnx(m) => m.task,
        }
    }

    /// Pose models: keypoints per instance and values per keypoint.
    pub fn kpt_shape(self) -> Option<(usize, usize)> {
        match self {
            ModelRef::Torch(m) => m
                .head
                .pose()
                .map(|p| (p.kpt_shape.0 as usize, p.kpt_shape.1 as usize)),
            ModelRef::Onnx(m) => m.kpt_shape,
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
            ModelRef::Onnx(m) if m.exported.is_some() => {
                let e = m.exported.as_ref().expect("checked");
                format!(
                    "{}; running on ONNX Runtime (in-memory export {:.2}s + session {:.2}s; {}=torch \
                     runs libtorch)",
                    e.summary,
                    e.export_secs,
                    e.secs - e.export_secs,
                    super::ortpath::ENV
                )
            }
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

/// How a batch is run: fp16 autocast (CUDA) and test-time augmentation (libtorch models).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// FP16 through autocast.
    pub half: bool,
    /// Test-time augmentation.
    pub augment: bool,
    /// Also return per-anchor appearance features (libtorch models without augmentation; ReID `model: auto`).
    pub feats: bool,
    /// `channels_last=False`: libtorch runs NCHW input instead of channels-last.
    pub nchw: bool,
}

/// A batch's decoded output on the host: `batch x rows x anchors` floats (rows: `cx, cy, w, h`,
/// `nc` class scores, then the task's extra values, e.g. 32 mask coefficients), plus the
/// prototype masks of Segment models.
#[derive(Debug)]
pub struct HostOutput {
    /// Row-major values.
    pub data: Vec<f32>,
    /// Images.
    pub batch: usize,
    /// Values per anchor.
    pub rows: usize,
    /// Anchors per image.
    pub anchors: usize,
    /// Class-score rows.
    pub nc: usize,
    /// Segment models: prototypes `(B, nm, H/4, W/4)` on the CPU.
    pub protos: Option<Tensor>,
    /// Per-anchor appearance features `(B, A, dim)` row-major and `dim`, when asked for
    /// ([`RunOptions::feats`]).
    pub feats: Option<(Vec<f32>, usize)>,
}

impl HostOutput {
    /// Copies a `(B, rows, A)` tensor (and the prototypes, if any) to the host as f32.
    pub fn from_tensor(y: &Tensor, nc: usize, protos: Option<&Tensor>) -> Result<Self> {
        let y = y.to_kind(Kind::Float).to_device(Device::Cpu).contiguous();
        let (b, rows, anchors) = y
            .size3()
            .map_err(|e| anyhow::anyhow!("model output: {e}"))?;
        let mut data = vec![0f32; (b * rows * anchors) as usize];
        let n = data.len();
        y.copy_data(&mut data, n);
        if (rows as usize) < 4 + nc {
            bail!("model output has {rows} rows per anchor, fewer than 4 + {nc} classes");
        }
        Ok(Self {
            data,
            batch: b as usize,
            rows: rows as usize,
            anchors: anchors as usize,
            nc,
            protos: protos.map(|p| p.to_kind(Kind::Float).to_device(Device::Cpu)),
            feats: None,
        })
    }

    /// The appearance features of image `k`'s anchors `idx` (None when none were computed).
    pub fn anchor_feats(&self, k: usize, idx: &[usize]) -> Option<Vec<Vec<f32>>> {
        let (data, dim) = self.feats.as_ref()?;
        let base = k * self.anchors * dim;
        idx.iter()
            .map(|&a| {
                data.get(base + a * dim..base + (a + 1) * dim)
                    .map(<[f32]>::to_vec)
            })
            .collect()
    }

    /// The rows of image `k`.
    pub fn image(&self, k: usize) -> &[f32] {
        let per = self.rows * self.anchors;
        &self.data[k * per..(k + 1) * per]
    }

    /// Mask coefficients per anchor (0 for detection outputs).
    pub fn nm(&self) -> usize {
        self.rows - 4 - self.nc
    }

    /// Detections of image `k` after NMS, in input (letterboxed) pixels.
    pub fn detections(&self, k: usize, cfg: &crate::ops::NmsConfig) -> Vec<crate::ops::Detection> {
        crate::ops::nms(self.image(k), self.nc, self.anchors, cfg)
    }

    /// Detections of image `k` after NMS with the `nm` mask coefficients of each (row-major
    /// `(n, nm)`), and the image's prototypes `(nm, H/4, W/4)` when the model has them.
    pub fn detections_with_masks(
        &self,
        k: usize,
        cfg: &crate::ops::NmsConfig,
    ) -> (Vec<crate::ops::Detection>, Vec<f32>, Option<Tensor>) {
        let (d, c, p, _) = self.detections_with_masks_anchors(k, cfg);
        (d, c, p)
    }

    /// [`HostOutput::detections_with_masks`] plus the anchor each kept detection came from.
    pub fn detections_with_masks_anchors(
        &self,
        k: usize,
        cfg: &crate::ops::NmsConfig,
    ) -> (
        Vec<crate::ops::Detection>,
        Vec<f32>,
        Option<Tensor>,
        Vec<usize>,
    ) {
        let img = self.image(k);
        let found = crate::ops::nms_with_anchors(img, self.nc, self.anchors, cfg);
        let idx: Vec<usize> = found.iter().map(|(_, a)| *a).collect();
        let nm = self.nm();
        let mut coefs = Vec::with_capacity(found.len() * nm);
        for (_, a) in &found {
            for j in 0..nm {
                coefs.push(img[(4 + self.nc + j) * self.anchors + a]);
            }
        }
        let protos = self.protos.as_ref().map(|p| p.get(k as i64));
        (
            found.into_iter().map(|(d, _)| d).collect(),
            coefs,
            protos,
            idx,
        )
    }
}

impl ModelRef<'_> {
    /// Runs letterboxed images (`pixels`: `B x H x W x 3` RGB bytes, one size) and returns the
    /// decoded output on the host.
    pub fn run_batch(
        self,
        pixels: &[u8],
        (b, h, w): (usize, usize, usize),
        o: RunOptions,
    ) -> Result<HostOutput> {
        match self {
            ModelRef::Onnx(om) => {
                // Straight to planar floats: no libtorch tensor in between.
                let x = crate::ops::nhwc_to_planar(pixels, (b, h, w));
                let mut outs = om.run_all(&x, [b, 3, h, w])?.into_iter();
                let (data, d) = outs
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("{}: no outputs", om.path.display()))?;
                if d.len() != 3 {
                    bail!(
                        "{}: output0 has shape {d:?}, expected (batch, rows, anchors)",
                        om.path.display()
                    );
                }
                let protos = match outs.next() {
                    Some((p, pd)) if om.segment && pd.len() == 4 => {
                        let dims: Vec<i64> = pd.iter().map(|&v| v as i64).collect();
                        Some(Tensor::from_slice(&p).view(dims.as_slice()))
                    }
                    _ => None,
                };
                Ok(HostOutput {
                    data,
                    batch: d[0],
                    rows: d[1],
                    anchors: d[2],
                    nc: om.names.len(),
                    protos,
                    feats: None,
                })
            }
            ModelRef::Torch(tm) => {
                let x = crate::util::amp::input_layout(
                    &crate::ops::images_to_tensor(pixels, (b, h, w), self.device()),
                    o.nchw,
                );
                let (y, protos, feats) = crate::util::amp::cuda_autocast(o.half, || {
                    tch::no_grad(|| {
                        if o.augment {
                            (tm.predict_augment(&x), None, None)
                        } else if o.feats {
                            let (y, p, f) = tm.predict_with_feats(&x);
                            (y, p, Some(f))
                        } else {
                            let (y, p) = tm.predict_with_protos(&x);
                            (y, p, None)
                        }
                    })
                });
                let mut out = HostOutput::from_tensor(&y, tm.nc() as usize, protos.as_ref())?;
                if let Some(f) = feats {
                    let f = f.to_kind(Kind::Float).to_device(Device::Cpu).contiguous();
                    let dim = f.size().last().copied().unwrap_or(0) as usize;
                    let mut v = vec![0f32; f.numel()];
                    let n = v.len();
                    f.copy_data(&mut v, n);
                    out.feats = Some((v, dim));
                }
                Ok(out)
            }
        }
    }
}

impl ModelRef<'_> {
    /// Runs a classify model on preprocessed images (`x`: `B x 3 x H x W` floats in [0, 1]) and
    /// returns the softmax probabilities, `B x nc` row-major on the host.
    pub fn run_classify(
        self,
        x: &[f32],
        (b, h, w): (usize, usize, usize),
        o: RunOptions,
    ) -> Result<Vec<f32>> {
        let (data, dims) = match self {
            ModelRef::Onnx(om) => om
                .run_all(x, [b, 3, h, w])?
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("{}: no outputs", om.path.display()))?,
            ModelRef::Torch(tm) => {
                let t = Tensor::from_slice(x)
                    .view([b as i64, 3, h as i64, w as i64])
                    .to_device(self.device());
                let t = crate::util::amp::input_layout(&t, o.nchw);
                let y = crate::util::amp::cuda_autocast(o.half, || tch::no_grad(|| tm.predict(&t)));
                let y = y.to_kind(Kind::Float).to_device(Device::Cpu).contiguous();
                let dims: Vec<usize> = y.size().iter().map(|&d| d as usize).collect();
                let mut v = vec![0f32; y.numel()];
                let n = v.len();
                y.copy_data(&mut v, n);
                (v, dims)
            }
        };
        if dims.len() != 2 || dims[0] < b {
            bail!("classify output of shape {dims:?}, expected ({b}, classes)");
        }
        let per = dims[1];
        Ok(data[..b * per].to_vec())
    }
}
