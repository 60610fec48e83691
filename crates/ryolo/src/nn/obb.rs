//! The OBB head (spec/obb.md §3): Detect plus an angle branch `cv4` per level, and the rotated box
//! decoding `dist2rbox` / its inverse `rbox2dist`.

use super::model::Detect;
use super::modules::{Conv, Conv2d};
use tch::{nn, Tensor};

/// OBB = [`Detect`] + `cv4` (Conv 3x3, Conv 3x3, Conv2d 1x1 to `ne`) per level; the angle is
/// `(sigmoid(logit) − 0.25)·π` in radians, in (−π/4, 3π/4).
#[derive(Debug)]
pub struct Obb {
    /// The box and class branches.
    pub detect: Detect,
    pub(crate) cv4: Vec<(Conv, Conv, Conv2d)>,
    /// Extra values per anchor (the angle: 1).
    pub ne: i64,
}

impl Obb {
    /// Builds the head's angle branch under `p` (layer path) for input channels `ch`.
    pub(crate) fn new(p: nn::Path, detect: Detect, ne: i64, ch: &[i64]) -> Self {
        let cv4 = super::cv4::new(&p, ch, ne);
        Self { detect, cv4, ne }
    }

    /// Angles `(B, ne, A)` in radians from the feature maps (train and eval alike).
    pub(crate) fn forward_angle(&self, xs: &[&Tensor], t: bool) -> Tensor {
        let logits = super::cv4::forward(&self.cv4, xs, t, self.ne);
        (logits.sigmoid() - 0.25) * std::f64::consts::PI
    }

    /// Every fusable convolution: Detect's, then cv4's.
    pub(crate) fn convs_mut(&mut self) -> Vec<&mut Conv> {
        let mut v = self.detect.convs_mut();
        v.extend(super::cv4::convs_mut(&mut self.cv4));
        v
    }

    /// Leaf modules of the angle branch.
    pub(crate) fn leaves(&self) -> usize {
        super::cv4::leaves(&self.cv4)
    }
}

/// Rotated decode (`dist2rbox`): side distances `(l, t, r, b)` in the box frame, the angle and the
/// anchor points → `(cx, cy, w, h)`, all along dimension `dim` (sizes 4, 1 and 2 there; the rest
/// broadcasts). Grid units in, grid units out.
pub fn dist2rbox(dist: &Tensor, angle: &Tensor, anchors: &Tensor, dim: i64) -> Tensor {
    let lt = dist.narrow(dim, 0, 2);
    let rb = dist.narrow(dim, 2, 2);
    let (cos, sin) = (angle.cos(), angle.sin());
    let half = (&rb - &lt) / 2.0;
    let xf = half.narrow(dim, 0, 1);
    let yf = half.narrow(dim, 1, 1);
    let x = &xf * &cos - &yf * &sin;
    let y = &xf * &sin + &yf * &cos;
    let xy = Tensor::cat(&[x, y], dim) + anchors;
    Tensor::cat(&[xy, lt + rb], dim)
}

/// Inverse of [`dist2rbox`] along the last dimension (`rbox2dist`): boxes `(.., 4)` `cx cy w h`,
/// anchors `(.., 2)`, angles `(.., 1)` → `(l, t, r, b)` in the box frame, clamped to
/// `[0, reg_max − 0.01]` when `reg_max` is given.
pub fn rbox2dist(boxes: &Tensor, anchors: &Tensor, angle: &Tensor, reg_max: Option<f64>) -> Tensor {
    let off = boxes.narrow(-1, 0, 2) - anchors;
    let (ox, oy) = (off.narrow(-1, 0, 1), off.narrow(-1, 1, 1));
    let (cos, sin) = (angle.cos(), angle.sin());
    let xf = &ox * &cos + &oy * &sin;
    let yf = -(&ox * &sin) + &oy * &cos;
    let hw = boxes.narrow(-1, 2, 1) / 2.0;
    let hh = boxes.narrow(-1, 3, 1) / 2.0;
    let d = Tensor::cat(&[&hw - &xf, &hh - &yf, &hw + &xf, &hh + &yf], -1);
    match reg_max {
        Some(r) => d.clamp(0.0, r - 0.01),
        None => d,
    }
}
