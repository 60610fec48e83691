//! The Segment head (spec/segment.md §4): Detect plus a Proto (prototype masks at stride 4) and a
//! mask-coefficient branch per level.

use super::model::Detect;
use super::modules::{count_macs, Conv, Conv2d};
use tch::{nn, Tensor};

/// `Proto(c1, c_, c2)`: Conv 3x3, ConvTranspose2d 2x2 stride 2 (with bias), Conv 3x3, Conv 1x1.
#[derive(Debug)]
pub struct Proto {
    pub(crate) cv1: Conv,
    pub(crate) upsample: nn::ConvTranspose2D,
    pub(crate) cv2: Conv,
    pub(crate) cv3: Conv,
}

impl Proto {
    fn new(p: nn::Path, c1: i64, c_: i64, c2: i64) -> Self {
        // PyTorch's ConvTranspose2d init: fan_in from weight dim 1 (out channels) x kernel area.
        let b = 1.0 / ((c_ * 4) as f64).sqrt();
        let init = nn::Init::Uniform { lo: -b, up: b };
        let cfg = nn::ConvTransposeConfig {
            stride: 2,
            padding: 0,
            bias: true,
            ws_init: init,
            bs_init: init,
            ..Default::default()
        };
        Self {
            cv1: Conv::new(&p / "cv1", c1, c_, 3, 1, 1, true),
            upsample: nn::conv_transpose2d(&p / "upsample", c_, c_, 2, cfg),
            cv2: Conv::new(&p / "cv2", c_, c_, 3, 1, 1, true),
            cv3: Conv::new(&p / "cv3", c_, c2, 1, 1, 1, true),
        }
    }

    fn forward(&self, x: &Tensor, t: bool) -> Tensor {
        let y = self.cv1.forward(x, t);
        let u = &self.upsample;
        let y = y.conv_transpose2d(&u.ws, u.bs.as_ref(), [2, 2], [0, 0], [0, 0], 1, [1, 1]);
        // Counted as output elements x in-channels (each output pixel sees one kernel tap).
        count_macs((y.numel() as i64 * u.ws.size()[0]) as f64);
        self.cv3.forward(&self.cv2.forward(&y, t), t)
    }
}

/// Segment = [`Detect`] + [`Proto`] on P3 + `cv4` (Conv 3x3, Conv 3x3, Conv2d 1x1 to `nm`) per level.
#[derive(Debug)]
pub struct Segment {
    /// The box and class branches.
    pub detect: Detect,
    pub(crate) proto: Proto,
    pub(crate) cv4: Vec<(Conv, Conv, Conv2d)>,
    /// Mask coefficients (prototypes) per anchor.
    pub nm: i64,
}

impl Segment {
    /// Builds the head under `p` (layer path) for input channels `ch`; `npr` is already width-scaled.
    pub(crate) fn new(p: nn::Path, detect: Detect, nm: i64, npr: i64, ch: &[i64]) -> Self {
        let cv4 = super::cv4::new(&p, ch, nm);
        Self {
            detect,
            proto: Proto::new(&p / "proto", ch[0], npr, nm),
            cv4,
            nm,
        }
    }

    /// Mask coefficients `(B, nm, A)` and prototypes `(B, nm, H/4, W/4)` of the feature maps.
    pub(crate) fn forward_masks(&self, xs: &[&Tensor], t: bool) -> (Tensor, Tensor) {
        let proto = self.proto.forward(xs[0], t);
        (super::cv4::forward(&self.cv4, xs, t, self.nm), proto)
    }

    /// Every fusable convolution: Detect's, then Proto's and cv4's.
    pub(crate) fn convs_mut(&mut self) -> Vec<&mut Conv> {
        let mut v = self.detect.convs_mut();
        v.extend([
            &mut self.proto.cv1,
            &mut self.proto.cv2,
            &mut self.proto.cv3,
        ]);
        v.extend(super::cv4::convs_mut(&mut self.cv4));
        v
    }

    /// Leaf modules of the extras: Proto (3 Convs + ConvTranspose2d) and cv4.
    pub(crate) fn leaves(&self) -> usize {
        let proto = self.proto.cv1.leaves() + self.proto.cv2.leaves() + self.proto.cv3.leaves() + 1;
        proto + super::cv4::leaves(&self.cv4)
    }
}
