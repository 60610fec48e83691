//! Prediction on images: load, letterbox, forward, NMS, map boxes back (spec/inference.md).

use crate::nn::DetectionModel;
use crate::ops::{letterbox, nms, scale_boxes, Detection, LetterboxInfo, NmsConfig, Rgb};
use anyhow::{anyhow, Context, Result};
use image::ImageDecoder;
use std::path::Path;
use std::time::Instant;
use tch::{Kind, Tensor};

/// Decodes an image file to RGB with its EXIF orientation applied (16-bit and grey become 8-bit RGB).
pub fn load_image(path: &Path) -> Result<image::RgbImage> {
    let ctx = || format!("reading image {}", path.display());
    let reader = image::ImageReader::open(path)
        .with_context(ctx)?
        .with_guessed_format()
        .with_context(ctx)?;
    let mut decoder = reader.into_decoder().with_context(ctx)?;
    let orientation = decoder.orientation().ok();
    let mut img = image::DynamicImage::from_decoder(decoder).with_context(ctx)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img.to_rgb8())
}

/// `(1, 3, H, W)` float tensor in [0, 1], RGB, from a letterboxed image.
pub fn to_tensor(img: &Rgb) -> Tensor {
    Tensor::from_slice(&img.data)
        .view([1, img.h as i64, img.w as i64, 3])
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float)
        / 255.0
}

/// Milliseconds spent per stage.
#[derive(Debug, Default, Clone, Copy)]
pub struct Speed {
    /// Letterbox + tensor conversion.
    pub preprocess: f64,
    /// Forward.
    pub inference: f64,
    /// NMS + box mapping.
    pub postprocess: f64,
}

/// The result of predicting one image.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Detections in original-image pixels, by descending confidence.
    pub detections: Vec<Detection>,
    /// How the image was letterboxed.
    pub letterbox: LetterboxInfo,
    /// Time per stage.
    pub speed: Speed,
}

/// A model with its inference settings.
#[derive(Debug)]
pub struct Predictor {
    /// The (fused, eval) model.
    pub model: DetectionModel,
    /// Inference size `(H, W)`, multiples of the stride.
    pub imgsz: (usize, usize),
    /// NMS settings.
    pub nms: NmsConfig,
    /// Minimal-rectangle letterbox (true for libtorch models).
    pub rect: bool,
}

/// Rounds an image size up to a multiple of the stride (at least one stride).
pub fn check_imgsz(s: usize, stride: usize) -> usize {
    s.div_ceil(stride).max(1) * stride
}

impl Predictor {
    /// Wraps a model: fuses it and rounds `imgsz` up to the stride.
    pub fn new(mut model: DetectionModel, imgsz: (usize, usize), nms: NmsConfig) -> Self {
        model.fuse();
        let s = model.stride.iter().cloned().fold(32.0, f64::max) as usize;
        Self {
            model,
            imgsz: (check_imgsz(imgsz.0, s), check_imgsz(imgsz.1, s)),
            nms,
            rect: true,
        }
    }

    /// Predicts one RGB image.
    pub fn predict(&self, img: &image::RgbImage) -> Result<Prediction> {
        let t0 = Instant::now();
        let rgb = Rgb::from_image(img);
        let stride = self.model.stride.iter().cloned().fold(32.0, f64::max) as usize;
        let (lb, info) = letterbox(&rgb, self.imgsz, self.rect, true, stride);
        let x = to_tensor(&lb).to_device(self.model.device());
        let t1 = Instant::now();
        let y = tch::no_grad(|| self.model.predict(&x))
            .to_device(tch::Device::Cpu)
            .contiguous();
        let (_, rows, anchors) = y.size3().map_err(|e| anyhow!("model output: {e}"))?;
        let mut v = vec![0f32; (rows * anchors) as usize];
        let n = v.len();
        y.copy_data(&mut v, n);
        let t2 = Instant::now();
        let mut dets = nms(&v, rows as usize - 4, anchors as usize, &self.nms);
        scale_boxes(&mut dets, &info);
        let t3 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        Ok(Prediction {
            detections: dets,
            letterbox: info,
            speed: Speed {
                preprocess: ms(t0, t1),
                inference: ms(t1, t2),
                postprocess: ms(t2, t3),
            },
        })
    }

    /// Ultralytics' per-image summary: `3 persons, 1 bus` or `(no detections)`.
    pub fn describe(&self, dets: &[Detection]) -> String {
        if dets.is_empty() {
            return "(no detections)".into();
        }
        let mut counts = vec![0usize; self.model.names.len().max(1)];
        for d in dets {
            if d.cls < counts.len() {
                counts[d.cls] += 1;
            }
        }
        counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(c, &n)| {
                format!(
                    "{n} {}{}",
                    self.model.names[c],
                    if n > 1 { "s" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
