//! Oriented-box tracking pieces: the rotated detection input, the IoU-or-ProbIoU distance of track lists and
//! the camera-motion warp of an OBB track (Ultralytics 8.4.190 `iou_distance`, `multi_gmc`).

#![allow(clippy::needless_range_loop)] // index loops mirror the matrix formulas

use super::kalman::{Cov, KalmanKind, Mean};
use super::matching::{iou_distance, CostMatrix};
use super::strack::STrack;
use crate::ops::obb::batch_probiou;

/// One rotated detection of the current frame (a row `[cx, cy, w, h, θ, conf, cls]` of `Results.obb`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObbDetection {
    /// Centre, size (pixels) and rotation (radians) as the detector gives them.
    pub xywhr: [f32; 5],
    /// Confidence.
    pub conf: f32,
    /// Class index.
    pub cls: f32,
}

/// The box a cost sees for `t`: its rotated `xywha` when it has an angle, else its `xyxy`.
enum Shape {
    /// Rotated box.
    Rot([f32; 5]),
    /// Axis-aligned box.
    Axis([f32; 4]),
}

fn shape(t: &STrack, kind: KalmanKind) -> Shape {
    match t.xywha(kind) {
        Some(r) => Shape::Rot(r),
        None => Shape::Axis(match t.kf {
            Some(_) => t.xyxy(kind),
            None => t.det_xyxy(),
        }),
    }
}

/// `1 − IoU` of tracks `a` against `b` as Ultralytics' `iou_distance`: ProbIoU on `xywha` when the first
/// entries of both lists are rotated, the float32 box IoU on `xyxy` otherwise.
pub fn track_distance(a: &[&STrack], b: &[&STrack], kind: KalmanKind) -> CostMatrix {
    let sa: Vec<Shape> = a.iter().map(|t| shape(t, kind)).collect();
    let sb: Vec<Shape> = b.iter().map(|t| shape(t, kind)).collect();
    let rotated =
        matches!(sa.first(), Some(Shape::Rot(_))) && matches!(sb.first(), Some(Shape::Rot(_)));
    if rotated {
        let ra: Vec<[f32; 5]> = sa.iter().map(rot).collect();
        let rb: Vec<[f32; 5]> = sb.iter().map(rot).collect();
        let p = batch_probiou(&ra, &rb);
        let mut m = CostMatrix::filled(a.len(), b.len(), 0.0);
        for (i, row) in p.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                m.set(i, j, 1.0 - v);
            }
        }
        m
    } else {
        let xa: Vec<[f32; 4]> = sa.iter().map(axis).collect();
        let xb: Vec<[f32; 4]> = sb.iter().map(axis).collect();
        iou_distance(&xa, &xb)
    }
}

/// The rotated box of a shape (an axis-aligned one gets angle 0).
fn rot(s: &Shape) -> [f32; 5] {
    match s {
        Shape::Rot(r) => *r,
        Shape::Axis(b) => [
            (b[0] + b[2]) / 2.0,
            (b[1] + b[3]) / 2.0,
            b[2] - b[0],
            b[3] - b[1],
            0.0,
        ],
    }
}

/// The axis-aligned box of a shape (a rotated one ignores its angle).
fn axis(s: &Shape) -> [f32; 4] {
    match s {
        Shape::Axis(b) => *b,
        Shape::Rot(r) => [
            r[0] - r[2] / 2.0,
            r[1] - r[3] / 2.0,
            r[0] + r[2] / 2.0,
            r[1] + r[3] / 2.0,
        ],
    }
}

/// The box a candidate shows the motion compensation: the bounds of its rotated box (`OBB.xyxy`), or its
/// `xyxy`.
pub fn gmc_box(d: &STrack, kind: KalmanKind) -> [f32; 4] {
    match d.xywha(kind) {
        Some(r) => crate::ops::obb::xywhr_to_xyxy(&r),
        None => d.det_xyxy(),
    }
}

/// Applies a 2×3 camera-motion warp to an OBB track's XYWH state as Ultralytics' `multi_gmc` does for
/// rotated tracks: centre and velocity follow the signed rotation, the size blocks only scale by
/// `‖R[:, 0]‖` (sizes never flip), the translation moves the centre and the angle gains `atan2(R10, R00)`.
pub fn warp_obb(mean: &mut Mean, cov: &mut Cov, angle: &mut f64, h: &[[f64; 3]; 2]) {
    let r = [[h[0][0], h[0][1]], [h[1][0], h[1][1]]];
    let s = (r[0][0] * r[0][0] + r[1][0] * r[1][0]).sqrt();
    let size = [[s, 0.0], [0.0, s]];
    let mut m = [[0.0; 8]; 8];
    for (b, blk) in [r, size, r, size].iter().enumerate() {
        for i in 0..2 {
            for j in 0..2 {
                m[2 * b + i][2 * b + j] = blk[i][j];
            }
        }
    }
    let mut nm = [0.0; 8];
    for i in 0..8 {
        nm[i] = (0..8).map(|k| m[i][k] * mean[k]).sum();
    }
    nm[0] += h[0][2];
    nm[1] += h[1][2];
    *mean = nm;
    let mut mp = [[0.0; 8]; 8];
    for i in 0..8 {
        for j in 0..8 {
            mp[i][j] = (0..8).map(|k| m[i][k] * cov[k][j]).sum();
        }
    }
    for i in 0..8 {
        for j in 0..8 {
            cov[i][j] = (0..8).map(|k| mp[i][k] * m[j][k]).sum();
        }
    }
    *angle += r[1][0].atan2(r[0][0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_edge_form_swaps_sides_and_turns_a_quarter() {
        let t = STrack::from_xywha([10.0, 20.0, 4.0, 8.0, 0.25], 0.9, 0.0, 0);
        assert_eq!(t.tlwh, [6.0, 18.0, 8.0, 4.0]);
        assert!((t.angle.unwrap() - (0.25f32 as f64 + std::f64::consts::FRAC_PI_2)).abs() < 1e-12);
    }

    #[test]
    fn the_angle_follows_the_nearest_half_turn() {
        let mut t = STrack::from_xywha([0.0, 0.0, 8.0, 4.0, 3.0], 0.9, 0.0, 0);
        let d = STrack::from_xywha([0.0, 0.0, 8.0, 4.0, -0.1], 0.9, 0.0, 1);
        t.follow_angle(&d);
        let want = -0.1f32 as f64 + std::f64::consts::PI;
        assert!((t.angle.unwrap() - want).abs() < 1e-12);
    }

    #[test]
    fn rotated_lists_use_probiou_and_plain_lists_iou() {
        let a = STrack::from_xywha([50.0, 50.0, 40.0, 20.0, 0.3], 0.9, 0.0, 0);
        let b = STrack::from_xywha([52.0, 50.0, 40.0, 20.0, 0.35], 0.9, 0.0, 1);
        let d = track_distance(&[&a], &[&b], KalmanKind::Xywh);
        let want = 1.0
            - crate::ops::obb::probiou(
                &a.xywha(KalmanKind::Xywh).unwrap(),
                &b.xywha(KalmanKind::Xywh).unwrap(),
                0.0,
            );
        assert_eq!(d.get(0, 0), want);
        let p = STrack::candidate([0.0, 0.0, 10.0, 10.0], 0.9, 0.0, 0);
        let q = STrack::candidate([5.0, 0.0, 15.0, 10.0], 0.9, 0.0, 1);
        let d = track_distance(&[&p], &[&q], KalmanKind::Xywh);
        assert!((d.get(0, 0) - (1.0 - 50.0 / 150.0)).abs() < 1e-6);
    }
}
