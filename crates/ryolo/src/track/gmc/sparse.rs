//! Ultralytics' default `sparseOptFlow` GMC: corners of the previous frame tracked by pyramidal LK into
//! the current one, a RANSAC similarity between them (on frames downscaled 2×).

use super::affine::{estimate_partial, RansacParams};
use super::corners::{good_features, CornerParams};
use super::gray::Gray;
use super::{lk, Gmc, Warp, IDENTITY};

/// Sparse optical-flow motion compensation (state: the previous downscaled frame and its corners).
#[derive(Clone, Debug, Default)]
pub struct SparseOptFlow {
    /// The previous frame (gray, downscaled) and its corners; `None` before the first frame or when the
    /// previous frame had no corner.
    prev: Option<(Gray, Vec<[f32; 2]>)>,
    /// Warnings said so far (each kind once per instance, to keep the console readable).
    warned: bool,
}

impl SparseOptFlow {
    /// A fresh instance (the next frame is a first frame).
    pub fn new() -> Self {
        Self::default()
    }

    /// The warp for `frame` given as a gray image at full resolution.
    pub fn apply_gray(&mut self, gray: &Gray) -> Warp {
        let small = gray.half();
        let corners = good_features(&small, CornerParams::default());
        let Some((prev, prev_pts)) = self.prev.take() else {
            self.prev = (!corners.is_empty()).then_some((small, corners));
            return IDENTITY;
        };
        if (prev.w, prev.h) != (small.w, small.h) {
            // OpenCV's optical flow raises on frames of another size; Ultralytics' tracker catches it,
            // uses the identity and keeps the old reference (so every frame of the new size fails too).
            self.warn(&format!(
                "frame size changed ({}x{} to {}x{} after downscaling); keeping the previous reference",
                prev.w, prev.h, small.w, small.h
            ));
            self.prev = Some((prev, prev_pts));
            return IDENTITY;
        }
        let (next, status) = lk::track(&prev, &small, &prev_pts);
        let (from, to): (Vec<[f32; 2]>, Vec<[f32; 2]>) = prev_pts
            .iter()
            .zip(&next)
            .zip(&status)
            .filter(|(_, &s)| s)
            .map(|((a, b), _)| (*a, *b))
            .unzip();
        let mut warp = IDENTITY;
        if from.len() > 4 {
            match estimate_partial(&from, &to, RansacParams::default()) {
                Some((mut h, _)) => {
                    h[0][2] *= 2.0;
                    h[1][2] *= 2.0;
                    warp = h;
                }
                None => self.warn("affine estimation failed"),
            }
        } else {
            self.warn("not enough matching points");
        }
        self.prev = (!corners.is_empty()).then_some((small, corners));
        warp
    }

    /// Says `what` once per instance, as Ultralytics' per-frame warning (but not on every frame).
    fn warn(&mut self, what: &str) {
        if !self.warned {
            eprintln!("WARNING: GMC sparseOptFlow: {what}; using the identity warp (said once per tracker)");
            self.warned = true;
        }
    }
}

impl Gmc for SparseOptFlow {
    fn apply(&mut self, frame: &image::RgbImage, _dets: &[[f32; 4]]) -> Warp {
        self.apply_gray(&Gray::from_rgb(frame))
    }

    fn reset(&mut self) {
        self.prev = None;
    }
}
