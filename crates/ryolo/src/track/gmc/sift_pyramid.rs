//! SIFT's float Gaussian pyramid as OpenCV builds it: 2× linear upsampling, Gaussian blurs in OpenCV's
//! float order of operations, nearest-neighbour halving between octaves.

use super::gray::{reflect101, Gray};

/// Layers per octave (`nOctaveLayers`).
pub const LAYERS: usize = 3;
/// `sigma` of the first layer.
pub const SIGMA: f64 = 1.6;
/// Blur assumed in the input image.
const INIT_SIGMA: f32 = 0.5;

/// A single-channel float image, row-major.
#[derive(Clone, Debug)]
pub struct Img {
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
    /// `h × w` values (gray levels, 0–255 scale).
    pub d: Vec<f32>,
}

impl Img {
    /// The value at column `x`, row `y`.
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.d[y * self.w + x]
    }
}

/// `getGaussianKernel(ksize, sigma, CV_32F)` with OpenCV's size rule for float images (`round(8σ + 1) | 1`):
/// taps `exp(−0.5/σ² · x²)` in double, times the reciprocal of their sum, stored as f32.
fn gauss_kernel(sigma: f64) -> Vec<f32> {
    let n = ((sigma * 8.0 + 1.0).round_ties_even() as usize) | 1;
    let scale2 = -0.5 / (sigma * sigma);
    let c = (n as f64 - 1.0) * 0.5;
    let k: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 - c;
            (scale2 * x * x).exp()
        })
        .collect();
    let inv = 1.0 / k.iter().sum::<f64>();
    k.iter().map(|v| (v * inv) as f32).collect()
}

/// `a · b + c` rounded once to f32 (a fused multiply-add: the f64 product of two f32 is exact).
#[inline]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    (a as f64 * b as f64 + c as f64) as f32
}

/// Separable Gaussian blur of `sigma` (border reflect-101) in f32, in OpenCV's order of operations (its
/// float row filter accumulates the taps left to right with fused multiply-adds; its symmetric column
/// filter starts from the centre tap and adds the pairs `k·(above + below)` nearest first): equal to
/// `cv2.GaussianBlur` on float images, checked by scripts/gmc/reference_features.py's stage numbers.
fn blur(src: &Img, sigma: f64) -> Img {
    let k = gauss_kernel(sigma);
    let r = k.len() / 2;
    let (w, h) = (src.w, src.h);
    let mut tmp = vec![0f32; w * h];
    let mut pad = vec![0f32; w + 2 * r];
    for y in 0..h {
        let row = &src.d[y * w..(y + 1) * w];
        for (i, p) in pad.iter_mut().enumerate() {
            *p = row[reflect101(i as isize - r as isize, w)];
        }
        // taps outer, pixels inner: per pixel the same sequence of fused steps, in a loop that vectorises
        let out = &mut tmp[y * w..(y + 1) * w];
        for (j, &kv) in k.iter().enumerate() {
            for (o, &v) in out.iter_mut().zip(&pad[j..j + w]) {
                *o = fma(v, kv, *o);
            }
        }
    }
    let mut d = vec![0f32; w * h];
    for y in 0..h {
        let dst_row = &mut d[y * w..(y + 1) * w];
        let mid = &tmp[y * w..(y + 1) * w];
        for (o, &m) in dst_row.iter_mut().zip(mid) {
            *o = m * k[r];
        }
        for j in 1..=r {
            let (ya, yb) = (
                reflect101(y as isize - j as isize, h),
                reflect101(y as isize + j as isize, h),
            );
            let (ra, rb) = (&tmp[ya * w..(ya + 1) * w], &tmp[yb * w..(yb + 1) * w]);
            let kv = k[r - j];
            for ((o, &a), &b) in dst_row.iter_mut().zip(ra).zip(rb) {
                *o = fma(a + b, kv, *o);
            }
        }
    }
    Img { w, h, d }
}

/// `resize(INTER_LINEAR)` of a float image to twice its size (edge samples clamped).
fn upsample2(src: &Img) -> Img {
    let (w, h) = (src.w * 2, src.h * 2);
    let tap = |d: usize, n: usize| -> (usize, usize, f32) {
        let f = (d as f32 + 0.5) * 0.5 - 0.5;
        let s = f.floor();
        let a = f - s;
        let s = s as isize;
        if s < 0 {
            (0, 0, 0.0)
        } else if s as usize >= n - 1 {
            (n - 1, n - 1, 0.0)
        } else {
            (s as usize, s as usize + 1, a)
        }
    };
    let xs: Vec<_> = (0..w).map(|x| tap(x, src.w)).collect();
    let mut d = Vec::with_capacity(w * h);
    for y in 0..h {
        let (y0, y1, b) = tap(y, src.h);
        for &(x0, x1, a) in &xs {
            let top = src.at(x0, y0) * (1.0 - a) + src.at(x1, y0) * a;
            let bot = src.at(x0, y1) * (1.0 - a) + src.at(x1, y1) * a;
            d.push(top * (1.0 - b) + bot * b);
        }
    }
    Img { w, h, d }
}

/// `resize(INTER_NEAREST)` to `(w / 2, h / 2)`.
fn halve_nearest(src: &Img) -> Img {
    let (w, h) = (src.w / 2, src.h / 2);
    let (fx, fy) = (src.w as f64 / w as f64, src.h as f64 / h as f64);
    let mut d = Vec::with_capacity(w * h);
    for y in 0..h {
        let sy = ((y as f64 * fy).floor() as usize).min(src.h - 1);
        for x in 0..w {
            let sx = ((x as f64 * fx).floor() as usize).min(src.w - 1);
            d.push(src.at(sx, sy));
        }
    }
    Img { w, h, d }
}

/// The first pyramid image for a doubled input (upsampled 2×, blurred to σ 1.6): `(w, h, values)`, for
/// stage checks.
pub fn initial_image(img: &Gray) -> (usize, usize, Vec<f32>) {
    let p = gaussian_pyramid(img, -1, 1);
    (p[1].w, p[1].h, p[0].d.clone())
}

/// The second image of the first octave (the initial image blurred by the first layer step), for stage
/// checks.
pub fn second_layer(img: &Gray) -> Vec<f32> {
    gaussian_pyramid(img, -1, 1).swap_remove(1).d
}

/// The Gaussian pyramid (`LAYERS + 3` images per octave) from octave `first` (−1: doubled input).
pub fn gaussian_pyramid(img: &Gray, first: i32, octaves: usize) -> Vec<Img> {
    let g = Img {
        w: img.w,
        h: img.h,
        d: img.data.iter().map(|&v| v as f32).collect(),
    };
    let base = if first < 0 {
        let s = (SIGMA as f32 * SIGMA as f32 - INIT_SIGMA * INIT_SIGMA * 4.0)
            .max(0.01)
            .sqrt();
        blur(&upsample2(&g), s as f64)
    } else {
        let s = (SIGMA as f32 * SIGMA as f32 - INIT_SIGMA * INIT_SIGMA)
            .max(0.01)
            .sqrt();
        blur(&g, s as f64)
    };
    let k = 2f64.powf(1.0 / LAYERS as f64);
    let sig: Vec<f64> = (0..LAYERS + 3)
        .map(|i| {
            if i == 0 {
                SIGMA
            } else {
                let prev = k.powi(i as i32 - 1) * SIGMA;
                let total = prev * k;
                (total * total - prev * prev).sqrt()
            }
        })
        .collect();
    let per = LAYERS + 3;
    let mut pyr: Vec<Img> = Vec::with_capacity(octaves * per);
    for o in 0..octaves {
        for (i, &s) in sig.iter().enumerate() {
            let im = if o == 0 && i == 0 {
                base.clone()
            } else if i == 0 {
                halve_nearest(&pyr[(o - 1) * per + LAYERS])
            } else {
                blur(&pyr[o * per + i - 1], s)
            };
            pyr.push(im);
        }
    }
    pyr
}
