//! Oriented boxes on the data side (spec/obb.md §1): corner sets to Ultralytics 8.4's canonical
//! `xywhr` (OpenCV `minAreaRect`, then w ≥ h and θ ∈ [−π/4, 3π/4)), the 8.3 regularisation, the
//! corners of an `xywhr` box, and the normalised rotated-box targets of a sample (`Format` with
//! `return_obb=True`).

use super::instances::{Corners, Instances};
use super::min_area_rect::min_area_rect;
use std::f64::consts::PI;

/// Canonical `[cx, cy, w, h, θ]` (pixels of the points, θ in radians) of a point set, exactly as
/// Ultralytics 8.4 `xyxyxyxy2xywhr` computes it for a float32 tensor: `minAreaRect`, degrees to
/// radians in double, w/h swapped with θ + π/2 when w < h, θ wrapped into [−π/4, 3π/4), float32.
pub fn xywhr_from_points(points: &[[f32; 2]]) -> [f32; 5] {
    let r = min_area_rect(points);
    let (mut w, mut h) = (r.size[0], r.size[1]);
    let mut t = r.angle as f64 / 180.0 * PI;
    if w < h {
        (w, h) = (h, w);
        t += PI / 2.0;
    }
    while t >= 3.0 * PI / 4.0 {
        t -= PI;
    }
    while t < -PI / 4.0 {
        t += PI;
    }
    [r.center[0], r.center[1], w, h, t as f32]
}

/// Ultralytics `regularize_rboxes` (the 8.3 predictor): w and h swapped when `θ mod π ≥ π/2`, then
/// `θ mod π/2` ∈ [0, π/2) (float32, Python's floored modulo).
pub fn regularize_rbox(b: [f32; 5]) -> [f32; 5] {
    let fmod = |a: f32, m: f32| a - (a / m).floor() * m;
    let (pi, half) = (std::f32::consts::PI, std::f32::consts::FRAC_PI_2);
    let swap = fmod(b[4], pi) >= half;
    let (w, h) = if swap { (b[3], b[2]) } else { (b[2], b[3]) };
    [b[0], b[1], w, h, fmod(b[4], half)]
}

/// The corners `p1..p4` of an `xywhr` box (spec/obb.md notation): `c ± v1 ± v2` with
/// `v1 = w/2 (cos θ, sin θ)`, `v2 = h/2 (−sin θ, cos θ)`.
pub fn xywhr_to_corners(b: [f32; 5]) -> Corners {
    let (c, s) = (b[4].cos(), b[4].sin());
    let v1 = [b[2] / 2.0 * c, b[2] / 2.0 * s];
    let v2 = [-b[3] / 2.0 * s, b[3] / 2.0 * c];
    let p = |a: f32, bb: f32| [b[0] + a * v1[0] + bb * v2[0], b[1] + a * v1[1] + bb * v2[1]];
    [p(1.0, 1.0), p(1.0, -1.0), p(-1.0, -1.0), p(-1.0, 1.0)]
}

/// Points per OBB label polygon in Ultralytics' dataset (`resample_segments(n=100)`).
pub const OBB_POINTS: usize = 100;

/// The rotated-box targets of one sample in pixels of its `w x h` image (`Format`): canonical
/// `xywhr` of every instance's polygon — its resampled outline when `segments` carries one per
/// corner set, else its four corners — with x and w divided by `w`, y and h by `h` (θ untouched).
/// Empty when the instances carry no corners.
pub fn rbox_targets(inst: &Instances, w: usize, h: usize) -> Vec<[f32; 5]> {
    debug_assert!(!inst.normalized, "rbox_targets wants pixel instances");
    let (w, h) = (w as f32, h as f32);
    let Some(corners) = &inst.corners else {
        return Vec::new();
    };
    let outlines = inst.segments.as_ref().filter(|s| s.len() == corners.len());
    corners
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let pts = match outlines.map(|s| &s[i]) {
                Some(p) if !p.is_empty() => p.as_slice(),
                _ => c.as_slice(),
            };
            let b = xywhr_from_points(pts);
            [b[0] / w, b[1] / h, b[2] / w, b[3] / h, b[4]]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn the_spec_examples_come_out_canonical() {
        // spec/obb.md §1: measured corner sets -> 8.4 canonical xywhr
        let quarter = std::f32::consts::FRAC_PI_4;
        let half = std::f32::consts::FRAC_PI_2;
        let cases: [([f32; 5], [f32; 5]); 5] = [
            ([50.0, 50.0, 40.0, 20.0, 0.0], [50.0, 50.0, 40.0, 20.0, 0.0]),
            (
                [50.0, 50.0, 20.0, 40.0, 0.0],
                [50.0, 50.0, 40.0, 20.0, half],
            ),
            (
                [50.0, 50.0, 30.0, 30.0, 0.0],
                [50.0, 50.0, 30.0, 30.0, half],
            ),
            (
                [80.0, 80.0, 60.0, 20.0, quarter],
                [80.0, 80.0, 60.0, 20.0, quarter],
            ),
            (
                [80.0, 80.0, 60.0, 20.0, 3.0 * quarter],
                [80.0, 80.0, 60.0, 20.0, -quarter],
            ),
        ];
        for (input, want) in cases {
            let got = xywhr_from_points(&xywhr_to_corners(input));
            assert!(
                close(&got, &want, 1e-4),
                "{input:?} -> {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn regularisation_matches_the_spec_examples() {
        let half = std::f32::consts::FRAC_PI_2;
        let q = std::f32::consts::FRAC_PI_4;
        let a = regularize_rbox([0.0, 0.0, 40.0, 20.0, half]);
        assert!(close(&a, &[0.0, 0.0, 20.0, 40.0, 0.0], 1e-6), "{a:?}");
        let b = regularize_rbox([0.0, 0.0, 60.0, 20.0, -q]);
        assert!(close(&b, &[0.0, 0.0, 20.0, 60.0, q], 1e-6), "{b:?}");
    }

    #[test]
    fn targets_are_normalised_per_axis() {
        let mut inst = Instances::from_boxes(vec![0], vec![[0.0, 0.0, 40.0, 20.0]], false);
        inst.corners = Some(vec![[[0.0, 0.0], [40.0, 0.0], [40.0, 20.0], [0.0, 20.0]]]);
        let t = rbox_targets(&inst, 80, 40);
        assert!(close(&t[0], &[0.25, 0.25, 0.5, 0.5, 0.0], 1e-7), "{t:?}");
    }
}
