//! Prediction on images: load, letterbox, forward, NMS, map boxes back (spec/inference.md).

use super::backend::{Backend, ModelRef};
use crate::data::dataset::IMG_FORMATS;
use crate::data::video::{is_video, VideoInfo, VideoReader, VID_FORMATS};
use crate::nn::DetectionModel;
use crate::ops::{letterbox, nms, scale_boxes, Detection, LetterboxInfo, NmsConfig, Rgb};
use crate::util::fmt_g;
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::time::Instant;
use tch::{Kind, Tensor};

pub use crate::data::image::{into_rgb8, load_dynamic, load_image};

/// `(1, 3, H, W)` float tensor in [0, 1], RGB, from a letterboxed image.
pub fn to_tensor(img: &Rgb) -> Tensor {
    crate::ops::images_to_tensor(&img.data, (1, img.h, img.w), tch::Device::Cpu)
}

/// `3 * H * W` floats in [0, 1], planar RGB, from a letterboxed image.
pub fn to_planar(img: &Rgb) -> Vec<f32> {
    let n = img.w * img.h;
    let mut out = vec![0f32; 3 * n];
    let (r, rest) = out.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        r[i] = px[0] as f32 / 255.0;
        g[i] = px[1] as f32 / 255.0;
        b[i] = px[2] as f32 / 255.0;
    }
    out
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
}

/// Rounds an image size up to a multiple of the stride (at least one stride).
pub fn check_imgsz(s: usize, stride: usize) -> usize {
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
        let (v, rows, anchors, t1) = match m {
            ModelRef::Onnx(om) => {
                // Straight to planar floats: no libtorch tensor in between.
                let mut x = Vec::with_capacity(b * 3 * h * w);
                for (lb, _) in &boxes {
                    x.extend(to_planar(lb));
                }
                let t1 = Instant::now();
                let (v, d) = om.run(&x, [b, 3, h, w])?;
                (v, d[1], d[2], t1)
            }
            ModelRef::Torch(tm) => {
                let mut buf = Vec::with_capacity(b * h * w * 3);
                for (lb, _) in &boxes {
                    buf.extend_from_slice(&lb.data);
                }
                let x = crate::ops::images_to_tensor(&buf, (b, h, w), m.device());
                let t1 = Instant::now();
                let y = tch::autocast(self.half, || {
                    if self.augment {
                        tch::no_grad(|| tm.predict_augment(&x))
                    } else {
                        tch::no_grad(|| tm.predict(&x))
                    }
                })
                .to_kind(Kind::Float);
                let y = y.to_device(tch::Device::Cpu).contiguous();
                let (_, rows, anchors) = y.size3().map_err(|e| anyhow!("model output: {e}"))?;
                let mut v = vec![0f32; b * (rows * anchors) as usize];
                let n = v.len();
                y.copy_data(&mut v, n);
                (v, rows as usize, anchors as usize, t1)
            }
        };
        let t2 = Instant::now();
        let per = rows * anchors;
        let mut out = Vec::with_capacity(b);
        for (k, (_, info)) in boxes.into_iter().enumerate() {
            let mut dets = nms(&v[k * per..(k + 1) * per], rows - 4, anchors, &self.nms);
            scale_boxes(&mut dets, &info);
            out.push((dets, info));
        }
        let t3 = Instant::now();
        let ms = |a: Instant, z: Instant| (z - a).as_secs_f64() * 1e3 / b as f64;
        let speed = Speed {
            preprocess: ms(t0, t1),
            inference: ms(t1, t2),
            postprocess: ms(t2, t3),
        };
        Ok(out
            .into_iter()
            .map(|(detections, letterbox)| Prediction {
                detections,
                letterbox,
                speed,
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

/// Expands a `source`: an image or video file, a folder (sorted), a glob, or a `.txt` list of
/// paths. Webcams and URLs are not files: see [`crate::data::video::is_stream`].
pub fn expand_source(source: &str) -> Result<Vec<std::path::PathBuf>> {
    let p = Path::new(source);
    let is_img = |q: &Path| crate::data::dataset::is_image(q) || is_video(q);
    let mut files: Vec<std::path::PathBuf> = if p.is_dir() {
        std::fs::read_dir(p)
            .with_context(|| format!("listing {source}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|q| is_img(q))
            .collect()
    } else if p.is_file() && p.extension().and_then(|e| e.to_str()) == Some("txt") {
        let base = p.parent().unwrap_or(Path::new("."));
        std::fs::read_to_string(p)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| base.join(l))
            .collect()
    } else if p.is_file() {
        if !is_img(p) {
            anyhow::bail!(
                "source '{source}' is not a supported image ({}) or video ({})",
                IMG_FORMATS.join(", "),
                VID_FORMATS.join(", ")
            );
        }
        vec![p.to_path_buf()]
    } else if source.contains(['*', '?', '[']) {
        glob::glob(source)
            .with_context(|| format!("bad glob {source}"))?
            .filter_map(|e| e.ok())
            .filter(|q| is_img(q))
            .collect()
    } else {
        anyhow::bail!("source '{source}' does not exist");
    };
    if !p.is_file() {
        files.sort();
    }
    if files.is_empty() {
        anyhow::bail!(
            "no images or videos found in source '{source}' (looked for {}, {})",
            IMG_FORMATS.join(", "),
            VID_FORMATS.join(", ")
        );
    }
    Ok(files)
}

/// Output options of a predict run.
#[derive(Debug, Clone)]
pub struct SaveOptions {
    /// Run folder.
    pub dir: std::path::PathBuf,
    /// Save annotated images.
    pub save: bool,
    /// Write `labels/<stem>.txt`.
    pub save_txt: bool,
    /// Add confidences to the label rows.
    pub save_conf: bool,
    /// Save each detection's crop under `crops/<class>/<stem>.jpg`.
    pub save_crop: bool,
    /// Draw class names.
    pub show_labels: bool,
    /// Draw confidences.
    pub show_conf: bool,
    /// Draw boxes at all.
    pub show_boxes: bool,
    /// Box line width (None: from the image size).
    pub line_width: Option<u32>,
}

/// Draws a prediction's boxes (with the label style of `o`) on a copy of the image.
pub fn annotate(
    p: &Predictor,
    img: &image::RgbImage,
    pred: &Prediction,
    o: &SaveOptions,
) -> image::RgbImage {
    let mut canvas = img.clone();
    if o.show_boxes {
        let boxes: Vec<([f32; 4], usize, Option<String>)> = pred
            .detections
            .iter()
            .map(|d| {
                let cname = p
                    .model()
                    .names()
                    .get(d.cls)
                    .cloned()
                    .unwrap_or_else(|| d.cls.to_string());
                let label = match (o.show_labels, o.show_conf) {
                    (true, true) => Some(format!("{cname} {:.2}", d.conf)),
                    (true, false) => Some(cname),
                    (false, true) => Some(format!("{:.2}", d.conf)),
                    (false, false) => None,
                };
                (d.xyxy, d.cls, label)
            })
            .collect();
        crate::plot::draw_boxes(&mut canvas, &boxes, o.line_width);
    }
    canvas
}

/// Saves the annotated image and/or label file of one prediction.
pub fn save_prediction(
    p: &Predictor,
    path: &Path,
    img: &image::RgbImage,
    pred: &Prediction,
    o: &SaveOptions,
) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "image.jpg".into());
    let stem = path
        .file_stem()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "image".into());
    if o.save {
        std::fs::create_dir_all(&o.dir)?;
        let out = o.dir.join(&name);
        annotate(p, img, pred, o)
            .save(&out)
            .with_context(|| format!("saving {}", out.display()))?;
    }
    save_labels_and_crops(p, &stem, img, pred, o)
}

/// Writes `labels/<stem>.txt` (save_txt) and `crops/<class>/<stem>.jpg` (save_crop).
pub fn save_labels_and_crops(
    p: &Predictor,
    stem: &str,
    img: &image::RgbImage,
    pred: &Prediction,
    o: &SaveOptions,
) -> Result<()> {
    if o.save_crop {
        // Ultralytics' save_one_box: the box grown by 2% plus 10 px, clipped to the image.
        let (iw, ih) = (img.width() as f32, img.height() as f32);
        for d in &pred.detections {
            let [cx, cy, w, h] = d.xywh();
            let (w, h) = (w * 1.02 + 10.0, h * 1.02 + 10.0);
            let x0 = (cx - w / 2.0).clamp(0.0, iw) as u32;
            let y0 = (cy - h / 2.0).clamp(0.0, ih) as u32;
            let x1 = (cx + w / 2.0).clamp(0.0, iw) as u32;
            let y1 = (cy + h / 2.0).clamp(0.0, ih) as u32;
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            let crop = image::imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image();
            let cdir = o.dir.join("crops").join(p.name(d.cls));
            std::fs::create_dir_all(&cdir)?;
            let mut out = cdir.join(format!("{stem}.jpg"));
            let mut n = 2;
            while out.exists() {
                out = cdir.join(format!("{stem}{n}.jpg"));
                n += 1;
            }
            crop.save(&out)
                .with_context(|| format!("saving {}", out.display()))?;
        }
    }
    if o.save_txt {
        let (h0, w0) = (img.height() as f64, img.width() as f64);
        let mut text = String::new();
        for d in &pred.detections {
            let b = d.xyxy.map(|v| v as f64);
            let row = [
                (b[0] + b[2]) / 2.0 / w0,
                (b[1] + b[3]) / 2.0 / h0,
                (b[2] - b[0]) / w0,
                (b[3] - b[1]) / h0,
            ];
            text.push_str(&d.cls.to_string());
            for v in row {
                text.push(' ');
                text.push_str(&fmt_g(v, 6));
            }
            if o.save_conf {
                text.push(' ');
                text.push_str(&fmt_g(d.conf as f64, 6));
            }
            text.push('\n');
        }
        // As Ultralytics: no file for an image without detections.
        if !text.is_empty() {
            let dir = o.dir.join("labels");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(format!("{stem}.txt")), text)?;
        }
    }
    Ok(())
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
