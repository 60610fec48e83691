//! Prediction on images: load, letterbox, forward, NMS, map boxes back (spec/inference.md);
//! classify models: eval transform, forward, class probabilities (spec/classify.md §7).

use super::backend::{Backend, ModelRef, RunOptions};
use crate::data::video::{VideoInfo, VideoReader};
use crate::nn::DetectionModel;
use crate::ops::{letterbox, scale_boxes, Detection, LetterboxInfo, NmsConfig, Rgb};
use crate::task::TaskKind;
use anyhow::{anyhow, Result};
use std::path::Path;
use std::time::Instant;
use tch::Tensor;

pub mod classify;
mod mode;
pub mod obb;
pub mod pose;
pub mod reid;
mod save;
pub mod segment;
mod source;
pub mod track;

pub use crate::data::image::{into_rgb8, load_dynamic, load_image};
pub use classify::Probs;
pub use mode::{predictor, run, save_options};
pub use save::{
    annotate, annotate_styled, save_labels_and_crops, save_prediction, txt_rows, SaveOptions,
};
pub use segment::Masks;
pub use source::expand_source;

/// `(1, 3, H, W)` float tensor in [0, 1], RGB, from a letterboxed image.
pub fn to_tensor(img: &Rgb) -> Tensor {
    crate::ops::images_to_tensor(&img.data, (1, img.h, img.w), tch::Device::Cpu)
}

/// `3 * H * W` floats in [0, 1], planar RGB, from a letterboxed image.
pub fn to_planar(img: &Rgb) -> Vec<f32> {
    crate::ops::nhwc_to_planar(&img.data, (1, img.h, img.w))
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

impl Speed {
    /// Adds another image's stage times (running totals).
    pub fn add(&mut self, s: Speed) {
        self.preprocess += s.preprocess;
        self.inference += s.inference;
        self.postprocess += s.postprocess;
    }

    /// Milliseconds per image of the three stages between four instants, over `b` images.
    fn per_image([t0, t1, t2, t3]: [Instant; 4], b: usize) -> Self {
        let ms = |a: Instant, z: Instant| (z - a).as_secs_f64() * 1e3 / b.max(1) as f64;
        Self {
            preprocess: ms(t0, t1),
            inference: ms(t1, t2),
            postprocess: ms(t2, t3),
        }
    }
}

/// The result of predicting one image.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Detections in original-image pixels, by descending confidence.
    pub detections: Vec<Detection>,
    /// Segment models: one mask per detection (bitmaps and polygons); None for detection models.
    pub masks: Option<Masks>,
    /// Classify models: the class probabilities (no detections then); None for other models.
    pub probs: Option<Probs>,
    /// Pose models: one keypoint set per detection; None for other models.
    pub keypoints: Option<pose::Keypoints>,
    /// OBB models: the rotated boxes (`detections` then hold their axis-aligned bounds); None
    /// for other models.
    pub obb: Option<obb::Obbs>,
    /// Track mode: the track id of each of `detections` (None: plain predict, or a frame the
    /// tracker left without ids).
    pub track_ids: Option<Vec<u64>>,
    /// Track mode with TrackTrack: the detections of a second, loose NMS (`Predictor::loose_iou`).
    pub loose: Option<Vec<Detection>>,
    /// Track mode with ReID `model: auto`: each detection's appearance feature taken from the head's input
    /// maps (`Predictor::reid_feats`; Ultralytics' `Results.feats`).
    pub feats: Option<Vec<Vec<f32>>>,
    /// How the image was letterboxed (classify: `shape` is the model input, no padding).
    pub letterbox: LetterboxInfo,
    /// Time per stage.
    pub speed: Speed,
}

/// A model with its inference settings.
#[derive(Debug)]
pub struct Predictor {
    /// The (fused, eval) model.
    pub model: Backend,
    /// Inference size `(H, W)`, multiples of the stride.
    pub imgsz: (usize, usize),
    /// NMS settings.
    pub nms: NmsConfig,
    /// Minimal-rectangle letterbox (true for libtorch models, false for fixed-shape ONNX graphs).
    pub rect: bool,
    /// Test-time augmentation (`augment=True`; libtorch models).
    pub augment: bool,
    /// FP16 inference through autocast (`half=True`; CUDA only).
    pub half: bool,
    /// `channels_last=False`: libtorch runs NCHW input instead of channels-last.
    pub nchw: bool,
    /// Segment models: masks at the original image size (`retina_masks=True`) instead of the
    /// letterboxed input size.
    pub retina_masks: bool,
    /// Detection and OBB models in track mode (TrackTrack): also run NMS at this IoU into
    /// `Prediction::loose` (OBB: `Obbs::loose`).
    pub loose_iou: Option<f32>,
    /// Track mode with ReID `model: auto` (libtorch detect, segment, pose and obb models): also take each
    /// detection's appearance feature from the head's input maps into `Prediction::feats`.
    pub reid_feats: bool,
}

/// Ultralytics 8.4 has no test-time augmentation for segment models (its `_predict_augment`
/// reverts to single-scale prediction with a warning); said once per process.
fn warn_segment_augment() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        eprintln!("WARNING augment=True is not supported for segment models (Ultralytics 8.4 reverts to single-scale prediction too); predicting without test-time augmentation");
    });
}

/// Ultralytics 8.4 has no test-time augmentation for classify models either; said once.
fn warn_classify_augment() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        eprintln!("WARNING augment=True is not supported for classify models (Ultralytics 8.4 reverts to single-scale prediction too); predicting without test-time augmentation");
    });
}

/// Ultralytics 8.4 has no test-time augmentation for pose and obb models either; said once.
fn warn_no_augment(task: TaskKind) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        eprintln!("WARNING augment=True is not supported for {task} models (Ultralytics 8.4 reverts to single-scale prediction too); predicting without test-time augmentation");
    });
}

/// Rounds an image size up to a multiple of the stride (at least one stride).
pub fn check_imgsz(s: usize, stride: usize) -> usize {
    let stride = stride.max(1);
    s.div_ceil(stride).max(1) * stride
}

impl Predictor {
    /// Wraps a model: fuses it and rounds `imgsz` up to the stride.
    pub fn new(mut model: DetectionModel, imgsz: (usize, usize), nms: NmsConfig) -> Self {
        model.fuse();
        Self::with_backend(Backend::Torch(model), imgsz, nms)
    }

    /// Wraps a model of any format. A fixed-shape ONNX graph imposes its own input size (as
    /// Ultralytics does) and is fed square letterboxes.
    pub fn with_backend(model: Backend, imgsz: (usize, usize), nms: NmsConfig) -> Self {
        let m = model.as_ref();
        let s = m.stride();
        let (imgsz, rect) = match m.fixed_imgsz() {
            Some(fixed) => (fixed, false),
            None => ((check_imgsz(imgsz.0, s), check_imgsz(imgsz.1, s)), true),
        };
        Self {
            model,
            imgsz,
            nms,
            rect,
            augment: false,
            half: false,
            nchw: false,
            retina_masks: false,
            loose_iou: None,
            reid_feats: false,
        }
    }

    /// The model, borrowed.
    pub fn model(&self) -> ModelRef<'_> {
        self.model.as_ref()
    }

    /// Predicts one RGB image.
    pub fn predict(&self, img: &image::RgbImage) -> Result<Prediction> {
        let mut v = self.predict_batch(std::slice::from_ref(img))?;
        v.pop().ok_or_else(|| anyhow!("no prediction"))
    }

    /// Predicts several images in one forward (`batch=`). Images of one size keep the minimal
    /// rectangle; mixed sizes share the square `imgsz` canvas (as Ultralytics). Times are per image.
    pub fn predict_batch(&self, imgs: &[image::RgbImage]) -> Result<Vec<Prediction>> {
        if imgs.is_empty() {
            return Ok(Vec::new());
        }
        let t0 = Instant::now();
        let m = self.model();
        if m.task() == TaskKind::Classify {
            return self.predict_classify(imgs, t0);
        }
        let same = imgs.iter().all(|i| i.dimensions() == imgs[0].dimensions());
        let boxes: Vec<(Rgb, LetterboxInfo)> = imgs
            .iter()
            .map(|img| {
                letterbox(
                    &Rgb::from_image(img),
                    self.imgsz,
                    self.rect && same,
                    true,
                    m.stride(),
                )
            })
            .collect();
        let (h, w) = (boxes[0].0.h, boxes[0].0.w);
        let b = boxes.len();
        let mut pixels = Vec::with_capacity(b * h * w * 3);
        for (lb, _) in &boxes {
            pixels.extend_from_slice(&lb.data);
        }
        let t1 = Instant::now();
        let task = m.task();
        let segment = task == TaskKind::Segment;
        if segment && self.augment {
            warn_segment_augment();
        }
        if matches!(task, TaskKind::Pose | TaskKind::Obb) && self.augment {
            warn_no_augment(task);
        }
        let augment = self.augment && task == TaskKind::Detect;
        let opts = RunOptions {
            half: self.half,
            augment,
            feats: self.reid_feats && !augment && task != TaskKind::Classify,
            nchw: self.nchw,
        };
        let y = m.run_batch(&pixels, (b, h, w), opts)?;
        let t2 = Instant::now();
        let mut out = Vec::with_capacity(b);
        for (k, (_, info)) in boxes.into_iter().enumerate() {
            let mut p = Prediction {
                detections: Vec::new(),
                masks: None,
                probs: None,
                keypoints: None,
                obb: None,
                track_ids: None,
                loose: None,
                feats: None,
                letterbox: info,
                speed: Speed::default(),
            };
            match task {
                TaskKind::Segment => {
                    let (dets, coefs, protos, anchors) =
                        y.detections_with_masks_anchors(k, &self.nms);
                    let protos = protos
                        .ok_or_else(|| anyhow!("the segment model returned no prototype masks"))?;
                    // With `model: auto` features every NMS row stays, empty mask or not (as Ultralytics).
                    p.feats = y.anchor_feats(k, &anchors);
                    let drop_empty = p.feats.is_none();
                    let (dets, masks) = segment::assemble_opt(
                        dets,
                        &coefs,
                        &protos,
                        &info,
                        self.retina_masks,
                        drop_empty,
                    )?;
                    p.detections = dets;
                    p.masks = Some(masks);
                }
                TaskKind::Pose => {
                    let ks = m
                        .kpt_shape()
                        .ok_or_else(|| anyhow!("the pose model does not say its kpt_shape"))?;
                    let (dets, kpts, anchors) = pose::assemble_with_anchors(
                        y.image(k),
                        y.nc,
                        y.anchors,
                        ks,
                        &self.nms,
                        &info,
                    )?;
                    p.feats = y.anchor_feats(k, &anchors);
                    p.detections = dets;
                    p.keypoints = Some(kpts);
                }
                TaskKind::Obb => {
                    let (dets, mut o, anchors) =
                        obb::assemble_with_anchors(y.image(k), y.nc, y.anchors, &self.nms, &info)?;
                    p.feats = y.anchor_feats(k, &anchors);
                    if let Some(iou) = self.loose_iou {
                        let nms = NmsConfig {
                            iou,
                            ..self.nms.clone()
                        };
                        let (_, l) = obb::assemble(y.image(k), y.nc, y.anchors, &nms, &info)?;
                        o.loose = Some(l.boxes);
                    }
                    p.detections = dets;
                    p.obb = Some(o);
                }
                _ => {
                    let found =
                        crate::ops::nms_with_anchors(y.image(k), y.nc, y.anchors, &self.nms);
                    let anchors: Vec<usize> = found.iter().map(|(_, a)| *a).collect();
                    p.feats = y.anchor_feats(k, &anchors);
                    let mut dets: Vec<Detection> = found.into_iter().map(|(d, _)| d).collect();
                    scale_boxes(&mut dets, &info);
                    p.detections = dets;
                    if let Some(iou) = self.loose_iou {
                        let mut loose = y.detections(
                            k,
                            &NmsConfig {
                                iou,
                                ..self.nms.clone()
                            },
                        );
                        scale_boxes(&mut loose, &info);
                        p.loose = Some(loose);
                    }
                }
            }
            out.push(p);
        }
        let t3 = Instant::now();
        let speed = Speed::per_image([t0, t1, t2, t3], b);
        Ok(out.into_iter().map(|p| Prediction { speed, ..p }).collect())
    }

    /// Classify models: each image through the eval transform at `imgsz`, one forward, the
    /// softmax vector per image.
    fn predict_classify(&self, imgs: &[image::RgbImage], t0: Instant) -> Result<Vec<Prediction>> {
        let m = self.model();
        let (h, w) = self.imgsz;
        let b = imgs.len();
        let mut x = Vec::with_capacity(b * 3 * h * w);
        for img in imgs {
            x.extend(classify::preprocess(img, (h, w)));
        }
        let t1 = Instant::now();
        if self.augment {
            warn_classify_augment();
        }
        let opts = RunOptions {
            half: self.half,
            augment: false,
            feats: false,
            nchw: self.nchw,
        };
        let y = m.run_classify(&x, (b, h, w), opts)?;
        let t2 = Instant::now();
        let nc = y.len() / b;
        let names: std::sync::Arc<[String]> = m.names().into();
        let probs: Vec<Probs> = y
            .chunks_exact(nc.max(1))
            .take(b)
            .map(|p| Probs::new(p.to_vec(), names.clone()))
            .collect();
        let t3 = Instant::now();
        let speed = Speed::per_image([t0, t1, t2, t3], b);
        Ok(imgs
            .iter()
            .zip(probs)
            .map(|(img, p)| {
                let orig = (img.height() as usize, img.width() as usize);
                Prediction {
                    detections: Vec::new(),
                    masks: None,
                    keypoints: None,
                    obb: None,
                    probs: Some(p),
                    track_ids: None,
                    loose: None,
                    feats: None,
                    letterbox: LetterboxInfo {
                        orig,
                        shape: (h, w),
                        ratio: h.min(w) as f64 / orig.0.min(orig.1).max(1) as f64,
                        pad: (0, 0),
                    },
                    speed,
                }
            })
            .collect())
    }

    /// Loads a model (`.pt`, `.safetensors`, `.yaml` or `.onnx`) on `device` ready for inference.
    pub fn load(model: &str, imgsz: usize, device: tch::Device) -> Result<Self> {
        let m = Backend::load(model, device)?;
        Ok(Self::with_backend(m, (imgsz, imgsz), NmsConfig::default()))
    }

    /// Predicts an image file.
    pub fn predict_path(&self, path: &Path) -> Result<Prediction> {
        self.predict(&load_image(path)?)
    }

    /// Predicts an `image::DynamicImage` (any pixel format).
    pub fn predict_dynamic(&self, img: &image::DynamicImage) -> Result<Prediction> {
        self.predict(&img.to_rgb8())
    }

    /// Predicts a raw RGB buffer (`h * w * 3` bytes, row-major).
    pub fn predict_rgb(&self, rgb: &[u8], w: u32, h: u32) -> Result<Prediction> {
        let img = image::RgbImage::from_raw(w, h, rgb.to_vec())
            .ok_or_else(|| anyhow!("RGB buffer of {} bytes does not hold {w}x{h}x3", rgb.len()))?;
        self.predict(&img)
    }

    /// Predicts the frames of a video file, webcam (`"0"`) or stream URL, one every `vid_stride`,
    /// as an iterator of `(frame number, frame, prediction)`.
    pub fn predict_video(
        &self,
        source: &str,
        vid_stride: usize,
        stream_buffer: bool,
    ) -> Result<VideoPredictions<'_>> {
        Ok(VideoPredictions {
            p: self,
            reader: VideoReader::open(source, stream_buffer)?,
            stride: vid_stride.max(1),
        })
    }

    /// The class name of an id.
    pub fn name(&self, cls: usize) -> &str {
        self.model()
            .names()
            .get(cls)
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// Ultralytics' `Results.verbose()` of a prediction, with its trailing `", "`: classify
    /// `chair 0.72, person 0.23, bowl 0.05, `, otherwise [`Predictor::describe`] then `", "`.
    pub fn verbose(&self, pred: &Prediction) -> String {
        match &pred.probs {
            Some(p) => p.verbose(),
            None => format!("{}, ", self.describe(&pred.detections)),
        }
    }

    /// The console line of one image: `<what>: 224x224 chair 0.72, person 0.23, bowl 0.05, 12.3ms`
    /// (`what`: `image 1/2 <path>`, a video frame or a stream index).
    pub fn line(&self, what: &str, pred: &Prediction) -> String {
        let (h, w) = pred.letterbox.shape;
        format!(
            "{what}: {h}x{w} {}{:.1}ms",
            self.verbose(pred),
            pred.speed.inference
        )
    }

    /// Ultralytics' per-image summary: `3 persons, 1 bus` or `(no detections)`.
    pub fn describe(&self, dets: &[Detection]) -> String {
        if dets.is_empty() {
            return "(no detections)".into();
        }
        let names = self.model().names();
        let mut counts = vec![0usize; names.len().max(1)];
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
                    names.get(c).map(String::as_str).unwrap_or("?"),
                    if n > 1 { "s" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Streamed predictions over a video's frames.
pub struct VideoPredictions<'a> {
    p: &'a Predictor,
    reader: VideoReader,
    stride: usize,
}

impl VideoPredictions<'_> {
    /// The video's size, rate and estimated frame count.
    pub fn info(&self) -> &VideoInfo {
        &self.reader.info
    }
}

impl Iterator for VideoPredictions<'_> {
    type Item = Result<(usize, image::RgbImage, Prediction)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let frame = match self.reader.next()? {
                Ok(f) => f,
                Err(e) => return Some(Err(e)),
            };
            let n = self.reader.frame;
            if (n - 1).is_multiple_of(self.stride) {
                return Some(self.p.predict(&frame).map(|pr| (n, frame, pr)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn grey_expansion_equals_the_image_crate_conversion() {
        let l = image::GrayImage::from_fn(7, 5, |x, y| image::Luma([(x * 37 + y * 11) as u8]));
        let want = image::DynamicImage::ImageLuma8(l.clone()).to_rgb8();
        assert_eq!(super::into_rgb8(image::DynamicImage::ImageLuma8(l)), want);
    }
}
