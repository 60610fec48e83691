//! Oriented boxes (spec/obb.md): `xywhr` ↔ corners, `regularize_rboxes`, ProbIoU (float32, in
//! Ultralytics' operation order), Fast-NMS and the rotated `non_max_suppression`, mapping rotated
//! boxes back to the original image and the OBB `save_txt` line. Plain Rust, no libtorch.

use super::{nms_candidates, NmsConfig};
use crate::util::{fmt_g, round_half_even};
use anyhow::{ensure, Result};

/// A rotated detection: `[cx, cy, w, h, θ]` (pixels, radians), confidence and class id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedDetection {
    /// `[cx, cy, w, h, θ]`.
    pub xywhr: [f32; 5],
    /// Confidence.
    pub conf: f32,
    /// Class id.
    pub cls: usize,
}

/// The four corners `p1…p4` of an `xywhr` box (`xywhr2xyxyxyxy`, float32 in Ultralytics' order):
/// `v1 = (w/2·cosθ, w/2·sinθ)`, `v2 = (−h/2·sinθ, h/2·cosθ)`, `p1 = c + v1 + v2`, `p2 = c + v1 − v2`,
/// `p3 = c − v1 − v2`, `p4 = c − v1 + v2`.
pub fn xywhr_to_corners(b: &[f32; 5]) -> [[f32; 2]; 4] {
    let (cos, sin) = (b[4].cos(), b[4].sin());
    let v1 = [b[2] / 2.0 * cos, b[2] / 2.0 * sin];
    let v2 = [-b[3] / 2.0 * sin, b[3] / 2.0 * cos];
    let c = [b[0], b[1]];
    [
        std::array::from_fn(|i| c[i] + v1[i] + v2[i]),
        std::array::from_fn(|i| c[i] + v1[i] - v2[i]),
        std::array::from_fn(|i| c[i] - v1[i] - v2[i]),
        std::array::from_fn(|i| c[i] - v1[i] + v2[i]),
    ]
}

/// Canonical `xywhr` of a point set (`xyxyxyxy2xywhr`, 8.4): OpenCV's `minAreaRect` (bit-exact,
/// [`crate::data::obb::xywhr_from_points`]), then w ≥ h and θ ∈ [−π/4, 3π/4). None for an empty set.
pub fn points_to_xywhr(points: &[[f32; 2]]) -> Option<[f32; 5]> {
    (!points.is_empty()).then(|| crate::data::obb::xywhr_from_points(points))
}

/// Axis-aligned bounds `[x1, y1, x2, y2]` of a rotated box's corners (`OBB.xyxy`).
pub fn xywhr_to_xyxy(b: &[f32; 5]) -> [f32; 4] {
    let p = xywhr_to_corners(b);
    let (xs, ys) = (p.map(|q| q[0]), p.map(|q| q[1]));
    let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
    let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
    [min(xs), min(ys), max(xs), max(ys)]
}

/// `regularize_rboxes` (8.3 predictor): swap w and h when `θ mod π ≥ π/2`, then `θ = θ mod π/2`
/// (Python's floor modulo), so θ ∈ [0, π/2).
pub fn regularize_rbox(b: &[f32; 5]) -> [f32; 5] {
    let pi = std::f32::consts::PI;
    let swap = b[4].rem_euclid(pi) >= pi / 2.0;
    let (w, h) = if swap { (b[3], b[2]) } else { (b[2], b[3]) };
    [b[0], b[1], w, h, py_mod(b[4], pi / 2.0)]
}

/// Python / torch float modulo (result has the sign of the divisor).
fn py_mod(a: f32, m: f32) -> f32 {
    let r = a % m;
    if r != 0.0 && (r < 0.0) != (m < 0.0) {
        r + m
    } else {
        r
    }
}

/// Gaussian covariance `(a, b, c)` of an `xywhr` box (`_get_covariance_matrix`, `floor` added to
/// `w²/12` and `h²/12`).
fn covariance(b: &[f32; 5], floor: f32) -> (f32, f32, f32) {
    let a = b[2] * b[2] / 12.0 + floor;
    let bb = b[3] * b[3] / 12.0 + floor;
    let (cos, sin) = (b[4].cos(), b[4].sin());
    let (cos2, sin2) = (cos * cos, sin * sin);
    (
        a * cos2 + bb * sin2,
        a * sin2 + bb * cos2,
        (a - bb) * cos * sin,
    )
}

/// ProbIoU of two boxes from their centres and covariances (spec/obb.md §4, eps 1e-7).
fn probiou_cov(p1: (f32, f32), c1: (f32, f32, f32), p2: (f32, f32), c2: (f32, f32, f32)) -> f32 {
    const EPS: f32 = 1e-7;
    let ((x1, y1), (a1, b1, k1)) = (p1, c1);
    let ((x2, y2), (a2, b2, k2)) = (p2, c2);
    let (sa, sb, sc) = (a1 + a2, b1 + b2, k1 + k2);
    let dy = y1 - y2;
    let dx = x1 - x2;
    let den = sa * sb - sc * sc + EPS;
    let t1 = ((sa * (dy * dy) + sb * (dx * dx)) / den) * 0.25;
    let t2 = ((sc * (x2 - x1) * dy) / den) * 0.5;
    let det1 = (a1 * b1 - k1 * k1).max(0.0);
    let det2 = (a2 * b2 - k2 * k2).max(0.0);
    let t3 = ((sa * sb - sc * sc) / (4.0 * (det1 * det2).sqrt() + EPS) + EPS).ln() * 0.5;
    let bd = (t1 + t2 + t3).clamp(EPS, 100.0);
    let hd = (1.0 - (-bd).exp() + EPS).sqrt();
    1.0 - hd
}

/// Element-wise ProbIoU of two boxes (`probiou`), `floor` as in the 8.4 box loss (0.01) or 0.
pub fn probiou(a: &[f32; 5], b: &[f32; 5], floor: f32) -> f32 {
    probiou_cov(
        (a[0], a[1]),
        covariance(a, floor),
        (b[0], b[1]),
        covariance(b, floor),
    )
}

/// ProbIoU matrix `(a.len(), b.len())` of `xywhr` boxes (`batch_probiou`).
pub fn batch_probiou(a: &[[f32; 5]], b: &[[f32; 5]]) -> Vec<Vec<f32>> {
    let cb: Vec<(f32, f32, f32)> = b.iter().map(|q| covariance(q, 0.0)).collect();
    a.iter()
        .map(|p| {
            let cp = covariance(p, 0.0);
            b.iter()
                .zip(&cb)
                .map(|(q, &cq)| probiou_cov((p[0], p[1]), cp, (q[0], q[1]), cq))
                .collect()
        })
        .collect()
}

/// Fast-NMS (`TorchNMS.fast_nms` with ProbIoU): sorts by descending score (stable), keeps a box
/// unless any higher-scored box — kept or not — overlaps it with ProbIoU `> iou_thres`. Returns the
/// kept indices into `boxes`, by descending score.
pub fn fast_nms(boxes: &[[f32; 5]], scores: &[f32], iou_thres: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len().min(scores.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let cov: Vec<(f32, f32, f32)> = order.iter().map(|&i| covariance(&boxes[i], 0.0)).collect();
    let ctr: Vec<(f32, f32)> = order.iter().map(|&i| (boxes[i][0], boxes[i][1])).collect();
    (0..order.len())
        .filter(|&j| (0..j).all(|i| probiou_cov(ctr[i], cov[i], ctr[j], cov[j]) <= iou_thres))
        .map(|j| order[j])
        .collect()
}

/// Rotated `non_max_suppression` of one image's raw output, row-major `(4 + nc + 1, A)`
/// (`cx, cy, w, h`, class scores, θ): candidates as for boxes (conf, single/multi label, classes,
/// 30000 cap), class offset `cls·7680` added to both cx and cy (not when agnostic), Fast-NMS,
/// then `max_det`. Returns the kept detections (descending confidence) with their anchor index;
/// an output of the wrong size is an error.
pub fn nms_rotated(
    pred: &[f32],
    nc: usize,
    anchors: usize,
    cfg: &NmsConfig,
) -> Result<Vec<(RotatedDetection, usize)>> {
    ensure!(
        pred.len() == (5 + nc) * anchors,
        "OBB output has {} values, expected (4 + {nc} + 1) x {anchors}",
        pred.len()
    );
    let at = |r: usize, a: usize| pred[r * anchors + a];
    let cands: Vec<(RotatedDetection, usize)> = nms_candidates(pred, nc, anchors, cfg)
        .into_iter()
        .map(|(d, a)| {
            let xywhr = [at(0, a), at(1, a), at(2, a), at(3, a), at(4 + nc, a)];
            let det = RotatedDetection {
                xywhr,
                conf: d.conf,
                cls: d.cls,
            };
            (det, a)
        })
        .collect();
    let shifted: Vec<[f32; 5]> = cands
        .iter()
        .map(|(d, _)| {
            let off = if cfg.agnostic {
                0.0
            } else {
                d.cls as f32 * 7680.0
            };
            let b = d.xywhr;
            [b[0] + off, b[1] + off, b[2], b[3], b[4]]
        })
        .collect();
    let scores: Vec<f32> = cands.iter().map(|(d, _)| d.conf).collect();
    let mut keep = fast_nms(&shifted, &scores, cfg.iou);
    keep.truncate(cfg.max_det);
    Ok(keep.into_iter().map(|i| cands[i]).collect())
}

/// Maps rotated boxes from letterboxed-input pixels (`input_hw`) back to the original image
/// (`orig_hw`), 8.4 `scale_boxes(xywh=True)` in float32: `cx = (cx − pad_x)/gain_x`,
/// `cy = (cy − pad_y)/gain_y`, `w /= gain_x`, `h /= gain_y`; no clipping, θ unchanged.
pub fn scale_rboxes(
    dets: &mut [RotatedDetection],
    input_hw: (usize, usize),
    orig_hw: (usize, usize),
) {
    let (h0, w0) = (orig_hw.0 as f64, orig_hw.1 as f64);
    let (hh, ww) = (input_hw.0 as f64, input_hw.1 as f64);
    let gain = (hh / h0).min(ww / w0);
    let nh = round_half_even(h0 * gain).max(1.0);
    let nw = round_half_even(w0 * gain).max(1.0);
    let (gy, gx) = ((nh / h0) as f32, (nw / w0) as f32);
    let px = round_half_even((ww - nw) / 2.0 - 0.1) as f32;
    let py = round_half_even((hh - nh) / 2.0 - 0.1) as f32;
    for d in dets {
        let b = &mut d.xywhr;
        b[0] = (b[0] - px) / gx;
        b[1] = (b[1] - py) / gy;
        b[2] /= gx;
        b[3] /= gy;
    }
}

/// One OBB `save_txt` line: `cls x1 y1 x2 y2 x3 y3 x4 y4 [conf]`, the corners normalised by the
/// original `(h, w)` (float32), Python `%g` numbers.
pub fn obb_txt_line(d: &RotatedDetection, orig_hw: (usize, usize), with_conf: bool) -> String {
    let (h0, w0) = (orig_hw.0 as f32, orig_hw.1 as f32);
    let mut s = d.cls.to_string();
    for p in xywhr_to_corners(&d.xywhr) {
        for v in [p[0] / w0, p[1] / h0] {
            s.push(' ');
            s.push_str(&fmt_g(v as f64, 6));
        }
    }
    if with_conf {
        s.push(' ');
        s.push_str(&fmt_g(d.conf as f64, 6));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_of_an_axis_aligned_box() {
        let p = xywhr_to_corners(&[10.0, 20.0, 8.0, 4.0, 0.0]);
        assert_eq!(p, [[14.0, 22.0], [14.0, 18.0], [6.0, 18.0], [6.0, 22.0]]);
        assert_eq!(
            xywhr_to_xyxy(&[10.0, 20.0, 8.0, 4.0, 0.0]),
            [6.0, 18.0, 14.0, 22.0]
        );
    }

    #[test]
    fn regularize_examples_from_the_spec() {
        let pi = std::f32::consts::PI;
        let r = regularize_rbox(&[0.0, 0.0, 40.0, 20.0, pi / 2.0]);
        assert_eq!((r[2], r[3]), (20.0, 40.0));
        assert!(r[4].abs() < 1e-6);
        let r = regularize_rbox(&[0.0, 0.0, 60.0, 20.0, -pi / 4.0]);
        assert_eq!((r[2], r[3]), (20.0, 60.0));
        assert!((r[4] - pi / 4.0).abs() < 1e-6);
    }

    #[test]
    fn probiou_is_symmetric_and_parameterisation_free() {
        let a = [50.0, 40.0, 30.0, 10.0, 0.3];
        let b = [52.0, 41.0, 28.0, 12.0, 0.1];
        let swapped = [50.0, 40.0, 10.0, 30.0, 0.3 + std::f32::consts::FRAC_PI_2];
        assert_eq!(probiou(&a, &b, 0.0), probiou(&b, &a, 0.0));
        assert!((probiou(&a, &a, 0.0) - 0.99955).abs() < 1e-4);
        assert!((probiou(&swapped, &b, 0.0) - probiou(&a, &b, 0.0)).abs() < 1e-4);
        assert!(probiou(&a, &[500.0, 400.0, 30.0, 10.0, 0.0], 0.0) < 1e-6);
    }

    #[test]
    fn fast_nms_of_nothing_is_empty() {
        assert!(fast_nms(&[], &[], 0.5).is_empty());
        assert!(nms_rotated(&[], 1, 0, &NmsConfig::default())
            .unwrap()
            .is_empty());
        assert!(nms_rotated(&[0.0; 7], 1, 2, &NmsConfig::default()).is_err());
    }
}
