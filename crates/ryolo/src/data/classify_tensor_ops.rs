//! torchvision's uint8-tensor image ops (`_functional_tensor`), as AugMix runs them: float32
//! blends truncated to bytes, a truncated grey, grid-sample warps rounded to bytes.

use super::classify::{
    equalize, inverse_affine_matrix, posterize, shear_translate, smooth_filter, solarize,
};
use super::classify_policy::Op;

/// `_blend(img1, img2, ratio)` on bytes: `ratio * a + (1 - ratio) * b` in float32, clamped to
/// [0, 255] and truncated.
fn blend(img: &mut [u8], other: impl Fn(usize) -> f32, ratio: f64) {
    let (r, q) = (ratio as f32, (1.0 - ratio) as f32);
    for (i, v) in img.iter_mut().enumerate() {
        *v = (r * *v as f32 + q * other(i)).clamp(0.0, 255.0) as u8;
    }
}

/// `rgb_to_grayscale` on bytes: `0.2989 r + 0.587 g + 0.114 b` in float32, truncated.
fn grey(img: &[u8]) -> Vec<u8> {
    img.chunks_exact(3)
        .map(|p| (0.2989f32 * p[0] as f32 + 0.587f32 * p[1] as f32 + 0.114f32 * p[2] as f32) as u8)
        .collect()
}

/// `adjust_contrast`: blend with the float32 mean of the truncated grey.
fn contrast(img: &mut [u8], f: f64) {
    let g = grey(img);
    let sum: u64 = g.iter().map(|&v| v as u64).sum();
    let mean = sum as f32 / g.len().max(1) as f32;
    blend(img, |_| mean, f);
}

/// `adjust_sharpness`: blend with the 3x3 smooth (1 1 1 / 1 5 1 / 1 1 1, / 13, rounded) inside a
/// one-pixel border that keeps the input; images under 3 px a side are unchanged.
fn sharpness(img: &mut [u8], (w, h): (usize, usize), f: f64) {
    if w <= 2 || h <= 2 {
        return;
    }
    let smooth = smooth_filter(img, (w, h));
    blend(img, |i| smooth[i] as f32, f);
}

/// `autocontrast`: per channel `(v - min) * (reciprocal(max - min) * 255)` in float32, clamped
/// and truncated; a flat channel is kept.
fn autocontrast(img: &mut [u8]) {
    for c in 0..3 {
        let ch = img.iter().skip(c).step_by(3);
        let (lo, hi) = ch.fold((255u8, 0u8), |(l, h), &v| (l.min(v), h.max(v)));
        if hi == lo {
            continue;
        }
        let lo = lo as f32;
        let scale = (1.0f32 / (hi as f32 - lo)) * 255.0;
        for v in img.iter_mut().skip(c).step_by(3) {
            *v = ((*v as f32 - lo) * scale).clamp(0.0, 255.0) as u8;
        }
    }
}

/// `F_t.affine` / `F_t.rotate` with bilinear `grid_sample` (zeros padding, align_corners=False)
/// of `matrix` (output-to-input, about the image centre) in float32, rounded to bytes (half to
/// even). Bit-exact with libtorch's vectorised CPU kernel on FMA machines.
fn grid_warp(img: &[u8], (w, h): (usize, usize), matrix: [f64; 6]) -> Vec<u8> {
    let t = matrix.map(|v| v as f32);
    let (hw, hh) = (0.5 * w as f32, 0.5 * h as f32);
    // theta^T / [w/2, h/2]: rows x, y, 1; columns grid x, grid y.
    let r = [
        [t[0] / hw, t[3] / hh],
        [t[1] / hw, t[4] / hh],
        [t[2] / hw, t[5] / hh],
    ];
    let (sw, sh) = (w as f32 / 2.0, h as f32 / 2.0);
    let mut out = vec![0u8; img.len()];
    for y in 0..h {
        let by = -(h as f32) * 0.5 + 0.5 + y as f32;
        for x in 0..w {
            let bx = -(w as f32) * 0.5 + 0.5 + x as f32;
            // The grid product in order, unfused; the unnormalisation and the interpolation as
            // the AVX2/AVX-512 kernel compiles them, with fused multiply-adds.
            let gx = bx * r[0][0] + by * r[1][0] + r[2][0];
            let gy = bx * r[0][1] + by * r[1][1] + r[2][1];
            let ix = (gx + 1.0).mul_add(sw, -0.5);
            let iy = (gy + 1.0).mul_add(sh, -0.5);
            let (xw, yn) = (ix.floor(), iy.floor());
            let (we, ns) = (ix - xw, iy - yn);
            let (e, s) = (1.0 - we, 1.0 - ns);
            let wts = [s * e, s * we, ns * e, ns * we];
            let (xi, yi) = (xw as i64, yn as i64);
            let corners = [(xi, yi), (xi + 1, yi), (xi, yi + 1), (xi + 1, yi + 1)];
            for c in 0..3 {
                let val = |(cx, cy): (i64, i64)| -> f32 {
                    if cx >= 0 && cy >= 0 && (cx as usize) < w && (cy as usize) < h {
                        img[(cy as usize * w + cx as usize) * 3 + c] as f32
                    } else {
                        0.0
                    }
                };
                let v = val(corners[0]) * wts[0];
                let v = val(corners[1]).mul_add(wts[1], v);
                let v = val(corners[2]).mul_add(wts[2], v);
                let v = val(corners[3]).mul_add(wts[3], v);
                out[(y * w + x) * 3 + c] = v.round_ties_even().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// torchvision's `_apply_op(img, op, magnitude)` on a uint8 tensor (`w x h` RGB bytes here), as
/// AugMix calls it: bilinear warps with zero fill.
pub(crate) fn tensor_op(img: &mut Vec<u8>, (w, h): (usize, usize), op: Op, magnitude: f64) {
    // Shears pivot on the top-left corner: centre (0, 0) in pixels, (-w/2, -h/2) about the middle.
    let corner = (-(w as f64) * 0.5, -(h as f64) * 0.5);
    match op {
        Op::Identity => {}
        Op::ShearX | Op::ShearY => {
            let (shear, _) = shear_translate(op, magnitude);
            let m = inverse_affine_matrix(corner, 0.0, (0.0, 0.0), shear);
            *img = grid_warp(img, (w, h), m);
        }
        Op::TranslateX | Op::TranslateY => {
            let (_, t) = shear_translate(op, magnitude);
            let m = inverse_affine_matrix((0.0, 0.0), 0.0, t, (0.0, 0.0));
            *img = grid_warp(img, (w, h), m);
        }
        Op::Rotate => {
            let m = inverse_affine_matrix((0.0, 0.0), -magnitude, (0.0, 0.0), (0.0, 0.0));
            *img = grid_warp(img, (w, h), m);
        }
        Op::Brightness => blend(img, |_| 0.0, 1.0 + magnitude),
        Op::Color => {
            let g = grey(img);
            blend(img, |i| g[i / 3] as f32, 1.0 + magnitude);
        }
        Op::Contrast => contrast(img, 1.0 + magnitude),
        Op::Sharpness => sharpness(img, (w, h), 1.0 + magnitude),
        Op::Posterize => posterize(img, magnitude as i64),
        Op::Solarize => solarize(img, magnitude as f32 as f64),
        Op::AutoContrast => autocontrast(img),
        Op::Equalize => equalize(img),
        Op::Invert => img.iter_mut().for_each(|v| *v = 255 - *v),
    }
}
