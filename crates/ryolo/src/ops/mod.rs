//! Image and box operations of the inference pipeline (spec/inference.md): OpenCV-style bilinear
//! resize, letterbox, NMS, mapping boxes back to the original image. Free of libtorch types, except
//! the segmentation mask assembly in [`masks`].

pub mod masks;

use crate::util::round_half_even;

pub mod contour;
pub mod keypoints;
pub mod obb;
pub mod raster;
pub mod rle;

/// An 8-bit RGB image, HWC, row-major.
#[derive(Debug, Clone)]
pub struct Rgb {
    /// Width in pixels.
    pub w: usize,
    /// Height in pixels.
    pub h: usize,
    /// `h * w * 3` bytes.
    pub data: Vec<u8>,
}

impl Rgb {
    /// Takes an `image` crate buffer without copying.
    pub fn from_owned(img: image::RgbImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        Self {
            w,
            h,
            data: img.into_raw(),
        }
    }

    /// Wraps an `image` crate buffer.
    pub fn from_image(img: &image::RgbImage) -> Self {
        Self {
            w: img.width() as usize,
            h: img.height() as usize,
            data: img.as_raw().clone(),
        }
    }
}

const COEF_BITS: i32 = 11;
const COEF_SCALE: i32 = 1 << COEF_BITS;

/// Source index pairs and fixed-point weights for one axis of an OpenCV `INTER_LINEAR` resize:
/// the source position in float32 from the double scale `1 / (dst / src)`, each weight rounded
/// from its float32 value separately (as `cv::resize` builds its tables).
fn linear_taps(src: usize, dst: usize) -> Vec<(usize, usize, i32, i32)> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut fx = f - s as f32;
            if s < 0 {
                s = 0;
                fx = 0.0;
            }
            if s >= src as i64 - 1 {
                s = src as i64 - 1;
                fx = 0.0;
            }
            let a0 = ((1.0 - fx) * COEF_SCALE as f32).round_ties_even() as i32;
            let a1 = (fx * COEF_SCALE as f32).round_ties_even() as i32;
            let s = s as usize;
            (s, (s + 1).min(src - 1), a0, a1)
        })
        .collect()
}

/// `(B, 3, H, W)` float tensor in [0, 1] on `device` from `B` RGB images of `H x W`, row-major
/// bytes back to back. The bytes travel to the device before the float conversion. The result keeps
/// the permuted (channels-last) strides on purpose: the network then runs channels-last, which
/// `yolo bench train` measured faster on the CPU than NCHW-contiguous input (yolo11n 320 b16:
/// 18.3-19.0 vs 14.8 images/s).
pub fn images_to_tensor(
    pixels: &[u8],
    (b, h, w): (usize, usize, usize),
    device: tch::Device,
) -> tch::Tensor {
    tch::Tensor::from_slice(pixels)
        .view([b as i64, h as i64, w as i64, 3])
        .to_device(device)
        .permute([0, 3, 1, 2])
        .to_kind(tch::Kind::Float)
        / 255.0
}

/// `B x 3 x H x W` floats in [0, 1], planar RGB, from `B` RGB images of `H x W` (row-major bytes
/// back to back): what ONNX Runtime reads.
pub fn nhwc_to_planar(pixels: &[u8], (b, h, w): (usize, usize, usize)) -> Vec<f32> {
    let n = w * h;
    let mut out = vec![0f32; b * 3 * n];
    for (img, dst) in pixels.chunks_exact(3 * n).zip(out.chunks_exact_mut(3 * n)) {
        let (r, rest) = dst.split_at_mut(n);
        let (g, bl) = rest.split_at_mut(n);
        for (i, px) in img.chunks_exact(3).enumerate() {
            r[i] = px[0] as f32 / 255.0;
            g[i] = px[1] as f32 / 255.0;
            bl[i] = px[2] as f32 / 255.0;
        }
    }
    out
}

/// Grey bytes to RGB (each value three times).
pub fn grey_to_rgb(grey: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; grey.len() * 3];
    for (d, &v) in out.as_chunks_mut::<3>().0.iter_mut().zip(grey) {
        *d = [v, v, v];
    }
    out
}

/// Resizes like OpenCV's `cv2.resize(..., INTER_LINEAR)` on 8-bit images (half-pixel centres,
/// 11-bit fixed-point weights; an exact 2x downscale averages 2x2 blocks as OpenCV does).
pub fn resize_linear(img: &Rgb, w: usize, h: usize) -> Rgb {
    if img.w == w && img.h == h {
        return img.clone();
    }
    Rgb {
        w,
        h,
        data: resize_linear_raw::<3>(&img.data, img.w, img.h, w, h),
    }
}

/// [`resize_linear`] of raw interleaved `C`-channel bytes (`sw x sh` to `w x h`). Channels are
/// independent, so a grey image resized with `C = 1` then expanded equals OpenCV's 3-channel result.
pub fn resize_linear_raw<const C: usize>(
    src: &[u8],
    sw: usize,
    sh: usize,
    w: usize,
    h: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; w * h * C];
    if sw == 2 * w && sh == 2 * h {
        for y in 0..h {
            for x in 0..w {
                for c in 0..C {
                    let p = |yy: usize, xx: usize| src[(yy * sw + xx) * C + c] as u32;
                    let s = p(2 * y, 2 * x)
                        + p(2 * y, 2 * x + 1)
                        + p(2 * y + 1, 2 * x)
                        + p(2 * y + 1, 2 * x + 1);
                    out[(y * w + x) * C + c] = ((s + 2) >> 2) as u8;
                }
            }
        }
        return out;
    }
    let xt = linear_taps(sw, w);
    let yt = linear_taps(sh, h);
    // Horizontal pass into i32 rows (scale 2^11), once per source row that is used, kept in a small
    // ring (destination rows only move forward through the source rows).
    let row_len = w * C;
    let hrow = |sy: usize, r: &mut [i32]| {
        let srow = &src[sy * sw * C..(sy + 1) * sw * C];
        for (d, &(s0, s1, a0, a1)) in r.chunks_exact_mut(C).zip(&xt) {
            let (p0, p1) = (&srow[s0 * C..s0 * C + C], &srow[s1 * C..s1 * C + C]);
            for c in 0..C {
                d[c] = p0[c] as i32 * a0 + p1[c] as i32 * a1;
            }
        }
    };
    let mut ring = [
        (usize::MAX, vec![0i32; row_len]),
        (usize::MAX, vec![0i32; row_len]),
    ];
    for (dst, &(s0, s1, b0, b1)) in out.chunks_exact_mut(row_len).zip(&yt) {
        for sy in [s0, s1] {
            if ring[0].0 != sy && ring[1].0 != sy {
                // Replace the slot holding the older (smaller) source row.
                let k = if ring[0].0 == usize::MAX
                    || (ring[1].0 != usize::MAX && ring[0].0 < ring[1].0)
                {
                    0
                } else {
                    1
                };
                let k = if ring[k].0 == s0 || ring[k].0 == s1 {
                    1 - k
                } else {
                    k
                };
                hrow(sy, &mut ring[k].1);
                ring[k].0 = sy;
            }
        }
        let r0 = if ring[0].0 == s0 {
            &ring[0].1
        } else {
            &ring[1].1
        };
        let r1 = if ring[0].0 == s1 {
            &ring[0].1
        } else {
            &ring[1].1
        };
        for ((d, &a), &b) in dst.iter_mut().zip(r0.iter()).zip(r1.iter()) {
            // OpenCV's vectorised VResizeLinear rounding for 8-bit images.
            let v = (((b0 * (a >> 4)) >> 16) + ((b1 * (b >> 4)) >> 16) + 2) >> 2;
            *d = v.clamp(0, 255) as u8;
        }
    }
    out
}

/// How an image was letterboxed: resize gain and padding, to map boxes back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LetterboxInfo {
    /// Original `(h, w)`.
    pub orig: (usize, usize),
    /// Letterboxed `(h, w)`.
    pub shape: (usize, usize),
    /// Resize gain applied before padding.
    pub ratio: f64,
    /// Padding `(left, top)` in pixels.
    pub pad: (usize, usize),
}

/// Letterboxes to `new_shape = (H, W)`: keep aspect ratio, pad with 114 (centred). With `auto`, pads
/// only up to a multiple of `stride` (the minimal rectangle). `scaleup=false` never enlarges.
pub fn letterbox(
    img: &Rgb,
    new_shape: (usize, usize),
    auto: bool,
    scaleup: bool,
    stride: usize,
) -> (Rgb, LetterboxInfo) {
    let (h0, w0) = (img.h as f64, img.w as f64);
    let (hh, ww) = (new_shape.0 as f64, new_shape.1 as f64);
    let mut r = (hh / h0).min(ww / w0);
    if !scaleup {
        r = r.min(1.0);
    }
    let nw = (round_half_even(w0 * r) as usize).max(1);
    let nh = (round_half_even(h0 * r) as usize).max(1);
    let mut dw = ww - nw as f64;
    let mut dh = hh - nh as f64;
    if auto {
        dw = dw.rem_euclid(stride as f64);
        dh = dh.rem_euclid(stride as f64);
    }
    dw /= 2.0;
    dh /= 2.0;
    let top = round_half_even(dh - 0.1) as usize;
    let bottom = round_half_even(dh + 0.1) as usize;
    let left = round_half_even(dw - 0.1) as usize;
    let right = round_half_even(dw + 0.1) as usize;
    let resized = resize_linear(img, nw, nh);
    let (oh, ow) = (nh + top + bottom, nw + left + right);
    let mut data = vec![114u8; oh * ow * 3];
    for y in 0..nh {
        let d = ((y + top) * ow + left) * 3;
        data[d..d + nw * 3].copy_from_slice(&resized.data[y * nw * 3..(y + 1) * nw * 3]);
    }
    (
        Rgb { w: ow, h: oh, data },
        LetterboxInfo {
            orig: (img.h, img.w),
            shape: (oh, ow),
            ratio: r,
            pad: (left, top),
        },
    )
}

/// A detection: `xyxy` box, confidence and class id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]`.
    pub xyxy: [f32; 4],
    /// Confidence.
    pub conf: f32,
    /// Class id.
    pub cls: usize,
}

/// NMS settings (spec/inference.md §4).
#[derive(Debug, Clone)]
pub struct NmsConfig {
    /// Confidence threshold (strict >).
    pub conf: f32,
    /// IoU threshold.
    pub iou: f32,
    /// Keep at most this many boxes per image.
    pub max_det: usize,
    /// One candidate per (anchor, class) above `conf`.
    pub multi_label: bool,
    /// Class-agnostic suppression.
    pub agnostic: bool,
    /// Keep only these classes.
    pub classes: Option<Vec<usize>>,
}

impl Default for NmsConfig {
    fn default() -> Self {
        Self {
            conf: 0.25,
            iou: 0.7,
            max_det: 300,
            multi_label: false,
            agnostic: false,
            classes: None,
        }
    }
}

impl Detection {
    /// `cx, cy, w, h` in pixels.
    pub fn xywh(&self) -> [f32; 4] {
        let b = self.xyxy;
        [
            (b[0] + b[2]) / 2.0,
            (b[1] + b[3]) / 2.0,
            b[2] - b[0],
            b[3] - b[1],
        ]
    }
    /// `cx, cy, w, h` normalised by the image size.
    pub fn xywhn(&self, img_w: f32, img_h: f32) -> [f32; 4] {
        let v = self.xywh();
        [v[0] / img_w, v[1] / img_h, v[2] / img_w, v[3] / img_h]
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if ua <= 0.0 {
        0.0
    } else {
        inter / ua
    }
}

/// Non-maximum suppression of one image's output, given row-major `(4 + nc [+ extra], A)` values
/// (`cx, cy, w, h`, then class scores). Returns detections by descending confidence.
pub fn nms(pred: &[f32], nc: usize, anchors: usize, cfg: &NmsConfig) -> Vec<Detection> {
    nms_with_anchors(pred, nc, anchors, cfg)
        .into_iter()
        .map(|(d, _)| d)
        .collect()
}

/// [`nms`] also returning the anchor index of each kept detection (to fetch its extra rows, such
/// as mask coefficients).
pub fn nms_with_anchors(
    pred: &[f32],
    nc: usize,
    anchors: usize,
    cfg: &NmsConfig,
) -> Vec<(Detection, usize)> {
    const MAX_WH: f32 = 7680.0;
    let cands = nms_candidates(pred, nc, anchors, cfg);
    let off = |d: &Detection| {
        if cfg.agnostic {
            0.0
        } else {
            d.cls as f32 * MAX_WH
        }
    };
    let shifted: Vec<[f32; 4]> = cands
        .iter()
        .map(|(d, _)| {
            let o = off(d);
            [d.xyxy[0] + o, d.xyxy[1] + o, d.xyxy[2] + o, d.xyxy[3] + o]
        })
        .collect();
    let mut keep: Vec<usize> = Vec::new();
    let mut removed = vec![false; cands.len()];
    for i in 0..cands.len() {
        if removed[i] {
            continue;
        }
        keep.push(i);
        if keep.len() >= cfg.max_det {
            break;
        }
        for j in i + 1..cands.len() {
            if !removed[j] && iou(&shifted[i], &shifted[j]) > cfg.iou {
                removed[j] = true;
            }
        }
    }
    keep.into_iter().map(|i| cands[i]).collect()
}

/// The NMS candidates of one image's raw output (see [`nms`]): per anchor the best class (or every
/// class with `multi_label`) above `conf`, filtered by `classes`, sorted by descending confidence
/// (stable) and capped at 30000, each with its anchor index. Boxes are `xyxy`.
pub fn nms_candidates(
    pred: &[f32],
    nc: usize,
    anchors: usize,
    cfg: &NmsConfig,
) -> Vec<(Detection, usize)> {
    const MAX_NMS: usize = 30000;
    let at = |r: usize, a: usize| pred[r * anchors + a];
    let mut cands: Vec<(Detection, usize)> = Vec::new();
    for a in 0..anchors {
        let (cx, cy, w, h) = (at(0, a), at(1, a), at(2, a), at(3, a));
        let xyxy = [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
        if cfg.multi_label && nc > 1 {
            for c in 0..nc {
                let s = at(4 + c, a);
                if s > cfg.conf {
                    cands.push((
                        Detection {
                            xyxy,
                            conf: s,
                            cls: c,
                        },
                        a,
                    ));
                }
            }
        } else {
            let (mut best, mut bc) = (f32::NEG_INFINITY, 0);
            for c in 0..nc {
                let s = at(4 + c, a);
                if s > best {
                    best = s;
                    bc = c;
                }
            }
            if best > cfg.conf {
                cands.push((
                    Detection {
                        xyxy,
                        conf: best,
                        cls: bc,
                    },
                    a,
                ));
            }
        }
    }
    if let Some(cl) = &cfg.classes {
        cands.retain(|(d, _)| cl.contains(&d.cls));
    }
    cands.sort_by(|a, b| b.0.conf.total_cmp(&a.0.conf));
    cands.truncate(MAX_NMS);
    cands
}

/// Maps boxes from letterboxed-input pixels back to the original image and clips (8.4 rule, in
/// float32 like Ultralytics' in-place tensor ops, so the results are bit-identical).
pub fn scale_boxes(dets: &mut [Detection], info: &LetterboxInfo) {
    let (h0, w0) = (info.orig.0 as f64, info.orig.1 as f64);
    let (hh, ww) = (info.shape.0 as f64, info.shape.1 as f64);
    let gain = (hh / h0).min(ww / w0);
    let nh = round_half_even(h0 * gain).max(1.0);
    let nw = round_half_even(w0 * gain).max(1.0);
    let (gy, gx) = ((nh / h0) as f32, (nw / w0) as f32);
    let px = round_half_even((ww - nw) / 2.0 - 0.1) as f32;
    let py = round_half_even((hh - nh) / 2.0 - 0.1) as f32;
    let (h0, w0) = (h0 as f32, w0 as f32);
    for d in dets {
        let b = &mut d.xyxy;
        b[0] = ((b[0] - px) / gx).clamp(0.0, w0);
        b[2] = ((b[2] - px) / gx).clamp(0.0, w0);
        b[1] = ((b[1] - py) / gy).clamp(0.0, h0);
        b[3] = ((b[3] - py) / gy).clamp(0.0, h0);
    }
}

/// YOLO label rows `cls cx cy w h [conf]` (normalised by the image's `w`, `h`; `%g` numbers) of
/// `xyxy` pixel boxes, one line each: the `save_txt` format of predict and val.
pub fn yolo_txt(
    dets: impl Iterator<Item = ([f32; 4], f32, usize)>,
    w: f64,
    h: f64,
    with_conf: bool,
) -> String {
    let mut text = String::new();
    for (b, conf, cls) in dets {
        let b = b.map(|v| v as f64);
        let row = [
            (b[0] + b[2]) / 2.0 / w,
            (b[1] + b[3]) / 2.0 / h,
            (b[2] - b[0]) / w,
            (b[3] - b[1]) / h,
        ];
        text.push_str(&cls.to_string());
        for v in row {
            text.push(' ');
            text.push_str(&crate::util::fmt_g(v, 6));
        }
        if with_conf {
            text.push(' ');
            text.push_str(&crate::util::fmt_g(conf as f64, 6));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn grey_resize_equals_the_three_channel_resize() {
        for (sw, sh, w, h) in [(512, 512, 640, 640), (256, 192, 640, 480), (37, 53, 20, 29)] {
            let grey: Vec<u8> = (0..sw * sh).map(|i| (i * 31 % 256) as u8).collect();
            let rgb = super::Rgb {
                w: sw,
                h: sh,
                data: super::grey_to_rgb(&grey),
            };
            let want = super::resize_linear(&rgb, w, h).data;
            let got = super::grey_to_rgb(&super::resize_linear_raw::<1>(&grey, sw, sh, w, h));
            assert_eq!(got, want, "{sw}x{sh} -> {w}x{h}");
        }
    }

    use super::*;

    fn solid(w: usize, h: usize, v: u8) -> Rgb {
        Rgb {
            w,
            h,
            data: vec![v; w * h * 3],
        }
    }

    #[test]
    fn letterbox_shapes_match_ultralytics() {
        // Measured in spec/inference.md §2.1 (imgsz 640, auto=True).
        for ((h, w), want) in [
            ((480, 640), (480, 640)),
            ((640, 480), (640, 480)),
            ((375, 500), (480, 640)),
            ((1080, 1920), (384, 640)),
        ] {
            let (_, info) = letterbox(&solid(w, h, 9), (640, 640), true, true, 32);
            assert_eq!(info.shape, want, "{h}x{w}");
        }
        let (out, _) = letterbox(&solid(500, 375, 9), (640, 640), false, true, 32);
        assert_eq!((out.h, out.w), (640, 640));
        assert_eq!(out.data[0], 114);
        assert_eq!(out.data[320 * 640 * 3], 9);
        let (_, info) = letterbox(&solid(640, 480, 9), (320, 320), true, true, 32);
        assert_eq!(info.shape, (256, 320));
    }

    #[test]
    fn resize_is_exact_on_constant_images_and_interpolates() {
        let r = resize_linear(&solid(7, 5, 200), 13, 11);
        assert!(r.data.iter().all(|&v| v == 200));
        // A 2-pixel ramp upscaled to 4: OpenCV gives [0, 64, 191, 255] for [0, 255].
        let img = Rgb {
            w: 2,
            h: 1,
            data: vec![0, 0, 0, 255, 255, 255],
        };
        let r = resize_linear(&img, 4, 1);
        let row: Vec<u8> = r.data.chunks(3).map(|p| p[0]).collect();
        assert_eq!(row, vec![0, 64, 191, 255]);
    }

    #[test]
    fn resize_matches_a_direct_evaluation_of_the_formula() {
        // Any size up and down: each output equals OpenCV's fixed-point formula evaluated directly.
        let mut data = vec![0u8; 37 * 23 * 3];
        let mut x = 12345u32;
        for v in data.iter_mut() {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            *v = (x >> 16) as u8;
        }
        let img = Rgb { w: 37, h: 23, data };
        for (w, h) in [(50, 31), (20, 11), (37, 40), (9, 23), (74, 46)] {
            let r = resize_linear(&img, w, h);
            if (img.w, img.h) == (2 * w, 2 * h) {
                continue;
            }
            let (xt, yt) = (linear_taps(img.w, w), linear_taps(img.h, h));
            for (y, &(s0, s1, b0, b1)) in yt.iter().enumerate() {
                for (xx, &(t0, t1, a0, a1)) in xt.iter().enumerate() {
                    for c in 0..3 {
                        let p = |yy: usize, xs: usize| img.data[(yy * img.w + xs) * 3 + c] as i32;
                        let r0 = p(s0, t0) * a0 + p(s0, t1) * a1;
                        let r1 = p(s1, t0) * a0 + p(s1, t1) * a1;
                        let v = ((((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2) >> 2)
                            .clamp(0, 255) as u8;
                        assert_eq!(r.data[(y * w + xx) * 3 + c], v, "{w}x{h} at ({xx},{y},{c})");
                    }
                }
            }
        }
    }

    #[test]
    fn nms_suppresses_overlaps_per_class() {
        // Three anchors: two overlapping boxes of class 0, one overlapping box of class 1.
        let (nc, a) = (2, 3);
        let mut p = vec![0f32; (4 + nc) * a];
        let boxes = [
            [50.0, 50.0, 20.0, 20.0],
            [51.0, 50.0, 20.0, 20.0],
            [50.0, 50.0, 20.0, 20.0],
        ];
        let scores = [[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]];
        for i in 0..a {
            for r in 0..4 {
                p[r * a + i] = boxes[i][r];
            }
            for c in 0..nc {
                p[(4 + c) * a + i] = scores[i][c];
            }
        }
        let d = nms(&p, nc, a, &NmsConfig::default());
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].cls, d[1].cls), (0, 1));
        assert_eq!(d[0].xyxy, [40.0, 40.0, 60.0, 60.0]);
        let d = nms(
            &p,
            nc,
            a,
            &NmsConfig {
                agnostic: true,
                ..Default::default()
            },
        );
        assert_eq!(d.len(), 1);
        let d = nms(
            &p,
            nc,
            a,
            &NmsConfig {
                classes: Some(vec![1]),
                ..Default::default()
            },
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].cls, 1);
    }

    #[test]
    fn boxes_map_back_to_the_original() {
        let info = LetterboxInfo {
            orig: (375, 500),
            shape: (480, 640),
            ratio: 1.28,
            pad: (0, 0),
        };
        let mut d = [Detection {
            xyxy: [0.0, 0.0, 640.0, 480.0],
            conf: 1.0,
            cls: 0,
        }];
        scale_boxes(&mut d, &info);
        assert_eq!(d[0].xyxy, [0.0, 0.0, 500.0, 375.0]);
    }
}
