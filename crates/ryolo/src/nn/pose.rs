//! The Pose head (spec/pose.md §4): Detect plus a keypoint branch `cv4` per level, and the
//! keypoint decoding of Ultralytics' `Pose.kpts_decode`.

use super::model::Detect;
use super::modules::{Conv, Conv2d};
use tch::{nn, Tensor};

/// COCO keypoint OKS sigmas ×10, nose to right ankle; Ultralytics' `OKS_SIGMA` is these as float32
/// divided by 10 in float32 ([`coco_sigmas`]).
const OKS_SIGMA_X10: [f32; 17] = [
    0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89,
    0.89,
];

/// Ultralytics' `OKS_SIGMA` (float32), nose to right ankle.
pub fn coco_sigmas() -> Vec<f32> {
    OKS_SIGMA_X10.iter().map(|&s| s / 10.0f32).collect()
}

/// Most keypoints per object a model may have.
pub const MAX_KEYPOINTS: i64 = 1024;

/// Pose = [`Detect`] + `cv4` (Conv 3x3, Conv 3x3, Conv2d 1x1 to `K·D`) per level.
#[derive(Debug)]
pub struct Pose {
    /// The box and class branches.
    pub detect: Detect,
    pub(crate) cv4: Vec<(Conv, Conv, Conv2d)>,
    /// `(K, D)`: keypoints per object and values per keypoint (2: x, y; 3: x, y, visibility).
    pub kpt_shape: (i64, i64),
    /// Keypoint names per class (`model.kpt_names`), when the checkpoint or dataset gave them.
    pub kpt_names: Option<Vec<(i64, Vec<String>)>>,
    /// Custom OKS sigmas (`model.kpt_oks_sigmas`, 8.4 data key `kpt_oks_sigmas`); None = default.
    pub kpt_oks_sigmas: Option<Vec<f64>>,
}

impl Pose {
    /// Builds the head under `p` (layer path) for input channels `ch`.
    pub(crate) fn new(p: nn::Path, detect: Detect, kpt_shape: (i64, i64), ch: &[i64]) -> Self {
        let nk = kpt_shape.0 * kpt_shape.1;
        let cv4 = super::cv4::new(&p, ch, nk);
        Self {
            detect,
            cv4,
            kpt_shape,
            kpt_names: None,
            kpt_oks_sigmas: None,
        }
    }

    /// Keypoint values per anchor, `K·D`.
    pub fn nk(&self) -> i64 {
        self.kpt_shape.0 * self.kpt_shape.1
    }

    /// The σ of every keypoint as Ultralytics' `v8PoseLoss` / `PoseValidator` pick them: the custom
    /// sigmas if set, the COCO table for `kpt_shape == [17, 3]`, else `1/K` each.
    pub fn sigmas(&self) -> Vec<f32> {
        oks_sigmas(self.kpt_shape, self.kpt_oks_sigmas.as_deref())
    }

    /// Raw keypoint maps `(B, K·D, A)` of the feature maps (levels flattened row-major, concatenated).
    pub(crate) fn forward_kpts(&self, xs: &[&Tensor], t: bool) -> Tensor {
        super::cv4::forward(&self.cv4, xs, t, self.nk())
    }

    /// `Pose.kpts_decode`: raw `(B, K·D, A)` -> keypoints in input pixels, `x = (2·raw + ax − 0.5)·s`
    /// (likewise y), visibility through a sigmoid. `anchors` `(A, 2)` are grid centres (`col + 0.5`),
    /// `strides` `(A, 1)`.
    pub fn decode_kpts(&self, kpts: &Tensor, anchors: &Tensor, strides: &Tensor) -> Tensor {
        let (k, d) = self.kpt_shape;
        let (b, _, a) = kpts.size3().expect("(B, K·D, A) keypoints");
        let y = kpts.view([b, k, d, a]);
        let anc = anchors.transpose(0, 1); // (2, A)
        let s = strides.view([1, 1, a]);
        let x = (y.select(2, 0) * 2.0 + (anc.get(0) - 0.5).view([1, 1, a])) * &s;
        let yy = (y.select(2, 1) * 2.0 + (anc.get(1) - 0.5).view([1, 1, a])) * &s;
        let mut parts = vec![x, yy];
        if d == 3 {
            parts.push(y.select(2, 2).sigmoid());
        }
        Tensor::stack(&parts, 2).view([b, k * d, a])
    }

    /// Every fusable convolution: Detect's, then cv4's.
    pub(crate) fn convs_mut(&mut self) -> Vec<&mut Conv> {
        let mut v = self.detect.convs_mut();
        v.extend(super::cv4::convs_mut(&mut self.cv4));
        v
    }

    /// Leaf modules of the Detect part and cv4.
    pub(crate) fn leaves(&self) -> usize {
        self.detect.leaves() + super::cv4::leaves(&self.cv4)
    }
}

/// OKS sigmas for `kpt_shape` (see [`Pose::sigmas`]); `custom` must hold K values (checked by the
/// caller that accepted it).
pub fn oks_sigmas(kpt_shape: (i64, i64), custom: Option<&[f64]>) -> Vec<f32> {
    if let Some(s) = custom {
        return s.iter().map(|&v| v as f32).collect();
    }
    if kpt_shape == (17, 3) {
        coco_sigmas()
    } else {
        let k = kpt_shape.0.max(1);
        vec![1.0 / k as f32; k as usize]
    }
}
