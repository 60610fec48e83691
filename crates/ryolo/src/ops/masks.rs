//! Instance-segmentation mask assembly as Ultralytics 8.4 does it (spec/segment.md §6): prototype ×
//! coefficient logits, box cropping, letterbox-aware rescaling to the original image. Float32
//! libtorch ops in PyTorch's order, so the masks are bit-identical to Ultralytics'.

use crate::util::round_half_even;
use tch::{Kind, Tensor};

/// Zeroes every pixel of `masks (n, h, w)` outside its box `(n, 4)` xyxy: integer pixel `(row, col)`
/// is kept iff `x1 <= col < x2` and `y1 <= row < y2`. Keeps the masks' kind.
pub fn crop_mask(masks: &Tensor, boxes: &Tensor) -> Tensor {
    let (h, w) = (masks.size()[1], masks.size()[2]);
    let boxes = boxes.to_device(masks.device());
    let opts = (boxes.kind(), masks.device());
    let side = |i: i64| boxes.narrow(1, i, 1).unsqueeze(2); // (n, 1, 1)
    let (x1, y1, x2, y2) = (side(0), side(1), side(2), side(3));
    let cols = Tensor::arange(w, opts).view([1, 1, w]);
    let rows = Tensor::arange(h, opts).view([1, h, 1]);
    let keep_c = cols.ge_tensor(&x1).logical_and(&cols.lt_tensor(&x2)); // (n, 1, w)
    let keep_r = rows.ge_tensor(&y1).logical_and(&rows.lt_tensor(&y2)); // (n, h, 1)
    let k = masks.kind();
    masks * keep_c.to_kind(k) * keep_r.to_kind(k)
}

/// Mask logits `(n, mh, mw)` float32: `coefs (n, nm) @ protos (nm, mh, mw)`.
fn mask_logits(protos: &Tensor, coefs: &Tensor) -> Tensor {
    let (nm, mh, mw) = protos.size3().expect("protos must be (nm, mh, mw)");
    coefs
        .matmul(&protos.to_kind(Kind::Float).view([nm, mh * mw]))
        .view([-1, mh, mw])
}

/// Binary uint8 masks of `n` detections from prototypes `(nm, mh, mw)`, coefficients `(n, nm)` and
/// xyxy boxes `(n, 4)` in letterboxed-input pixels of size `shape = (H, W)`. `upsample = false`
/// (validation): `(n, mh, mw)` at prototype resolution; `upsample = true` (predict): `(n, H, W)`.
pub fn process_mask(
    protos: &Tensor,
    coefs: &Tensor,
    boxes: &Tensor,
    shape: (i64, i64),
    upsample: bool,
) -> Tensor {
    let (_, mh, mw) = protos.size3().expect("protos must be (nm, mh, mw)");
    let (hh, ww) = shape;
    let dev = coefs.device();
    if coefs.size()[0] == 0 {
        let size = if upsample { [0, hh, ww] } else { [0, mh, mw] };
        return Tensor::zeros(size, (Kind::Uint8, dev));
    }
    let logits = mask_logits(protos, coefs);
    if upsample {
        let up = logits
            .unsqueeze(0)
            .upsample_bilinear2d([hh, ww], false, None, None)
            .squeeze_dim(0);
        crop_mask(&up.gt(0.0).to_kind(Kind::Uint8), boxes)
    } else {
        let (rw, rh) = (
            (mw as f64 / ww as f64) as f32,
            (mh as f64 / hh as f64) as f32,
        );
        let ratios = Tensor::from_slice(&[rw, rh, rw, rh])
            .view([1, 4])
            .to_device(boxes.device());
        crop_mask(&logits.gt(0.0).to_kind(Kind::Uint8), &(boxes * ratios))
    }
}

/// Python's `round()` of a float to an integer (ties to even).
fn pyround(x: f64) -> i64 {
    round_half_even(x) as i64
}

/// Greatest common divisor of non-negative results (Python `math.gcd`).
fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The pre-upsampling factor (1, 2 or 4) of [`process_mask_native`] for prototypes `(mh, mw)` and an
/// original image `(h0, w0)`: the smallest that makes the letterbox padding a whole number of pixels.
pub fn native_upsample_factor((mh, mw): (i64, i64), (h0, w0): (i64, i64)) -> i64 {
    let gain = (4.0 * mh as f64 / h0 as f64).min(4.0 * mw as f64 / w0 as f64);
    let pad =
        (4 * mh - pyround(h0 as f64 * gain).max(1)) | (4 * mw - pyround(w0 as f64 * gain).max(1));
    4 / gcd(4, pad | pad.div_euclid(2))
}

/// Retina masks: uint8 `(n, h0, w0)` at the original image size from prototypes `(nm, mh, mw)`,
/// coefficients `(n, nm)` and xyxy boxes `(n, 4)` already in original-image pixels (8.4
/// `process_mask_native`, including its f-times pre-upsampling and chunking).
pub fn process_mask_native(
    protos: &Tensor,
    coefs: &Tensor,
    boxes: &Tensor,
    (h0, w0): (i64, i64),
) -> Tensor {
    let (_, mh, mw) = protos.size3().expect("protos must be (nm, mh, mw)");
    let dev = coefs.device();
    let n = coefs.size()[0];
    if n == 0 {
        return Tensor::zeros([0, h0, w0], (Kind::Uint8, dev));
    }
    let logits = mask_logits(protos, coefs).view([1, n, mh, mw]);
    let f = native_upsample_factor((mh, mw), (h0, w0));
    let chunk = (16_000_000 / (h0 * w0 + f * f * mh * mw)).max(1);
    let parts: Vec<Tensor> = logits
        .split(chunk, 1)
        .iter()
        .map(|c| {
            let up = if f > 1 {
                c.upsample_bilinear2d([mh * f, mw * f], false, f as f64, f as f64)
            } else {
                c.shallow_clone()
            };
            scale_masks(&up, (h0, w0), None, true)
                .squeeze_dim(0)
                .gt(0.0)
                .to_kind(Kind::Uint8)
        })
        .collect();
    crop_mask(&Tensor::cat(&parts, 0), boxes)
}

/// Letterbox gains and padding `((gain_h, gain_w), (pad_w, pad_h))`, as Ultralytics' `ratio_pad`.
pub type RatioPad = ((f64, f64), (f64, f64));

/// Maps masks `(N, C, h, w)` of a letterboxed image back to the original size `(h0, w0)` (8.4
/// `scale_masks`, bilinear): crops the padding (rounded letterbox rule, or `ratio_pad`) and resizes.
/// Returns float32 `(N, C, h0, w0)`; the input unchanged when it already has that size.
///
/// Ultralytics' SAM-only branch (`ratio_pad` with `padding = false` and a fractional content edge,
/// resampled with `grid_sample`) is not reproduced: such inputs are cropped to the rounded edge.
pub fn scale_masks(
    masks: &Tensor,
    (h0, w0): (i64, i64),
    ratio_pad: Option<RatioPad>,
    padding: bool,
) -> Tensor {
    let s = masks.size();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    if (h, w) == (h0, w0) {
        return masks.shallow_clone();
    }
    if n == 0 || c == 0 {
        return Tensor::zeros([n, c, h0, w0], (Kind::Float, masks.device()));
    }
    let ((gain_h, gain_w), (pad_w, pad_h)) = ratio_pad.unwrap_or_else(|| {
        let gain = (h as f64 / h0 as f64).min(w as f64 / w0 as f64);
        let pw = (w - pyround(w0 as f64 * gain).max(1)) as f64 / 2.0;
        let ph = (h - pyround(h0 as f64 * gain).max(1)) as f64 / 2.0;
        ((gain, gain), (pw, ph))
    });
    let (top, left) = if padding {
        (pyround(pad_h - 0.1), pyround(pad_w - 0.1))
    } else {
        (0, 0)
    };
    let bottom = (top + pyround(h0 as f64 * gain_h).max(1)).min(h);
    let right = (left + pyround(w0 as f64 * gain_w).max(1)).min(w);
    let (top, left) = (top.max(0), left.max(0));
    if bottom <= top || right <= left {
        return Tensor::zeros([n, c, h0, w0], (Kind::Float, masks.device()));
    }
    masks
        .slice(2, top, bottom, 1)
        .slice(3, left, right, 1)
        .to_kind(Kind::Float)
        .upsample_bilinear2d([h0, w0], false, None, None)
}
