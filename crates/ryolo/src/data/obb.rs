//! Oriented boxes on the data side (spec/obb.md §1): corner sets to Ultralytics 8.4's canonical
//! `xywhr` (OpenCV `minAreaRect`, then w ≥ h and θ ∈ [−π/4, 3π/4)) and the normalised rotated-box
//! targets of a sample (`Format` with `return_obb=True`); the rest of the rotated-box geometry is
//! `ops::obb`.

use super::instances::Instances;
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
            let got = xywhr_from_points(&crate::ops::obb::xywhr_to_corners(&input));
            assert!(
                close(&got, &want, 1e-4),
                "{input:?} -> {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn targets_are_normalised_per_axis() {
        let mut inst = Instances::from_boxes(vec![0], vec![[0.0, 0.0, 40.0, 20.0]], false);
        inst.corners = Some(vec![[[0.0, 0.0], [40.0, 0.0], [40.0, 20.0], [0.0, 20.0]]]);
        let t = rbox_targets(&inst, 80, 40);
        assert!(close(&t[0], &[0.25, 0.25, 0.5, 0.5, 0.0], 1e-7), "{t:?}");
    }
}
