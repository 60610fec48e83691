//! The ReID encoder of a tracker's `model: <file>` (Ultralytics 8.4.190 `ReID` for `.pt` models): each
//! detection's crop (`save_one_box`, gain 1.02, pad 10) through a classify model's eval transform, the
//! embedding = the global average of the classifier head's input map (`embed` at the second-to-last layer).

use super::{classify, Predictor};
use crate::engine::backend::ModelRef;
use crate::task::TaskKind;
use anyhow::{anyhow, bail, Context, Result};
use tch::{Kind, Tensor};

/// A classify model used as appearance encoder.
pub struct ReidEncoder {
    /// The classify model at its checkpoint's image size.
    p: Predictor,
}

impl std::fmt::Debug for ReidEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReidEncoder({:?})", self.p.imgsz)
    }
}

impl ReidEncoder {
    /// Loads `model` (a libtorch classify checkpoint) on `device`, at the image size it was trained at.
    pub fn load(model: &str, device: &str) -> Result<Self> {
        let mut m = serde_yaml::Mapping::new();
        m.insert("model".into(), model.into());
        m.insert("device".into(), device.into());
        let args = crate::cfg::Args::new(&m);
        // libtorch, not the CPU ONNX Runtime path: the embedding is taken inside the network.
        let (p, _) = crate::engine::ortpath::scoped(crate::engine::ortpath::Engine::Torch, || {
            super::predictor(&args, model)
        })
        .with_context(|| format!("tracker ReID model {model}"))?;
        if p.model().task() != TaskKind::Classify {
            bail!(
                "tracker ReID model {model} is a {} model; a classify model (embedding of its crops) is needed",
                p.model().task()
            );
        }
        if !matches!(p.model(), ModelRef::Torch(_)) {
            bail!(
                "tracker ReID model {model}: only libtorch classify checkpoints are implemented as ReID \
                 encoders (an exported ReID/ONNX model is not); use a .pt classify model or model: auto"
            );
        }
        Ok(Self { p })
    }

    /// Embeddings of the crops of boxes `xywh` (centre, size in pixels) of `frame`; None where a crop is
    /// empty.
    pub fn encode(
        &self,
        frame: &image::RgbImage,
        xywh: &[[f64; 4]],
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let crops: Vec<Option<image::RgbImage>> = xywh.iter().map(|b| crop(frame, b)).collect();
        let (h, w) = self.p.imgsz;
        let mut x = Vec::new();
        let mut n = 0i64;
        for c in crops.iter().flatten() {
            x.extend(classify::preprocess(c, (h, w)));
            n += 1;
        }
        if n == 0 {
            return Ok(vec![None; xywh.len()]);
        }
        let ModelRef::Torch(tm) = self.p.model() else {
            return Err(anyhow!("ReID encoder without a libtorch model"));
        };
        let t = Tensor::from_slice(&x)
            .view([n, 3, h as i64, w as i64])
            .to_device(tm.device());
        let emb = tch::no_grad(|| {
            let (_, inputs) = tm.forward_raw_with_inputs(&t, false);
            inputs
                .first()
                .map(|m| m.mean_dim([2i64, 3].as_slice(), false, Kind::Float))
        })
        .ok_or_else(|| anyhow!("the ReID classify model has no head input"))?;
        let emb = emb.to_device(tch::Device::Cpu).contiguous();
        let dim = emb.size()[1] as usize;
        let mut v = vec![0f32; emb.numel()];
        let len = v.len();
        emb.copy_data(&mut v, len);
        let mut rows = v.chunks_exact(dim.max(1)).map(<[f32]>::to_vec);
        Ok(crops
            .iter()
            .map(|c| c.as_ref().and_then(|_| rows.next()))
            .collect())
    }
}

/// `save_one_box(xyxy, im, gain=1.02, pad=10, square=False)`: the float64 `xywh → xyxy` corners cast to
/// float32, the size widened in float32, truncated to integers (`.long()`), clipped; None when empty.
fn crop(img: &image::RgbImage, b: &[f64; 4]) -> Option<image::RgbImage> {
    let xyxy = [
        (b[0] - b[2] / 2.0) as f32,
        (b[1] - b[3] / 2.0) as f32,
        (b[0] + b[2] / 2.0) as f32,
        (b[1] + b[3] / 2.0) as f32,
    ];
    let (cx, cy) = ((xyxy[0] + xyxy[2]) / 2.0, (xyxy[1] + xyxy[3]) / 2.0);
    let w = (xyxy[2] - xyxy[0]) * 1.02f32 + 10.0;
    let h = (xyxy[3] - xyxy[1]) * 1.02f32 + 10.0;
    let (hw, hh) = (w / 2.0, h / 2.0);
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let q = |v: f32, hi: i64| (v.trunc() as i64).clamp(0, hi);
    let (a, bb, c, d) = (
        q(cx - hw, iw),
        q(cy - hh, ih),
        q(cx + hw, iw),
        q(cy + hh, ih),
    );
    if c <= a || d <= bb {
        return None;
    }
    Some(
        image::imageops::crop_imm(img, a as u32, bb as u32, (c - a) as u32, (d - bb) as u32)
            .to_image(),
    )
}
