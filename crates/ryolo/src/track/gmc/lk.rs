//! Pyramidal Lucas–Kanade point tracking as OpenCV's `calcOpticalFlowPyrLK` (21×21 window, 3 levels,
//! 30 iterations / ε 0.01, min-eigenvalue threshold 1e-4), in its fixed-point arithmetic.

use super::gray::{reflect101, Gray};

/// Window size (square).
const WIN: usize = 21;
/// Border kept around every pyramid level (the window may reach that far outside the image).
const PAD: usize = WIN;
/// Fixed-point bits of the bilinear weights.
const W_BITS: i32 = 14;

/// One pyramid level: the image with a reflect-101 border of [`PAD`] pixels, and its Scharr derivatives
/// (with a zero border).
struct Level {
    /// Image width and height.
    w: usize,
    h: usize,
    /// `(h + 2·PAD) × (w + 2·PAD)` pixels.
    img: Vec<u8>,
    /// `(dx, dy)` per pixel on the same padded grid (only the previous image's levels need them).
    deriv: Vec<[i16; 2]>,
}

impl Level {
    /// Padded row stride.
    fn stride(&self) -> usize {
        self.w + 2 * PAD
    }

    /// The level holding `g`, bordered; derivatives when `with_deriv`.
    fn new(g: &Gray, with_deriv: bool) -> Self {
        let (w, h) = (g.w, g.h);
        let s = w + 2 * PAD;
        let mut img = vec![0u8; s * (h + 2 * PAD)];
        for py in 0..h + 2 * PAD {
            let y = reflect101(py as isize - PAD as isize, h);
            for px in 0..s {
                img[py * s + px] = g.at(reflect101(px as isize - PAD as isize, w), y);
            }
        }
        let deriv = if with_deriv { scharr(g, s) } else { Vec::new() };
        Self { w, h, img, deriv }
    }
}

/// OpenCV's `calcScharrDeriv`: `dx = 3·(d/dx above + below) + 10·centre` style 3×3 Scharr in 16-bit, border
/// reflect-101 inside the image, written onto a padded grid of stride `s` whose border stays zero.
fn scharr(g: &Gray, s: usize) -> Vec<[i16; 2]> {
    let (w, h) = (g.w, g.h);
    let mut out = vec![[0i16; 2]; s * (h + 2 * PAD)];
    let mut t0 = vec![0i32; w];
    let mut t1 = vec![0i32; w];
    for y in 0..h {
        let (u, d) = (reflect101(y as isize - 1, h), reflect101(y as isize + 1, h));
        for x in 0..w {
            let (a, c, b) = (g.at(x, u) as i32, g.at(x, y) as i32, g.at(x, d) as i32);
            t0[x] = (a + b) * 3 + c * 10;
            t1[x] = b - a;
        }
        for x in 0..w {
            let (l, r) = (reflect101(x as isize - 1, w), reflect101(x as isize + 1, w));
            let dx = t0[r] - t0[l];
            let dy = (t1[r] + t1[l]) * 3 + t1[x] * 10;
            out[(y + PAD) * s + x + PAD] = [dx as i16, dy as i16];
        }
    }
    out
}

/// OpenCV `pyrDown`: 5-tap `[1 4 6 4 1]` Gaussian in both directions, border reflect-101, rounded (÷256),
/// to `((w + 1) / 2, (h + 1) / 2)`.
pub fn pyr_down(g: &Gray) -> Gray {
    let (w, h) = (g.w, g.h);
    let (dw, dh) = (w.div_ceil(2), h.div_ceil(2));
    let k = [1i32, 4, 6, 4, 1];
    let mut rows = vec![0i32; dw * h];
    for y in 0..h {
        for x in 0..dw {
            let mut s = 0;
            for (j, kk) in k.iter().enumerate() {
                s += kk * g.at(reflect101(2 * x as isize + j as isize - 2, w), y) as i32;
            }
            rows[y * dw + x] = s;
        }
    }
    let mut data = Vec::with_capacity(dw * dh);
    for y in 0..dh {
        for x in 0..dw {
            let mut s = 0;
            for (j, kk) in k.iter().enumerate() {
                s += kk * rows[reflect101(2 * y as isize + j as isize - 2, h) * dw + x];
            }
            data.push(((s + 128) >> 8) as u8);
        }
    }
    Gray { w: dw, h: dh, data }
}

/// The pyramid of `g` as `buildOpticalFlowPyramid(winSize 21, maxLevel)`: stops early when a further level
/// would be no larger than the window.
fn pyramid(g: &Gray, max_level: usize, with_deriv: bool) -> Vec<Level> {
    let mut out = vec![Level::new(g, with_deriv)];
    let mut cur = g.clone();
    let (mut w, mut h) = (g.w, g.h);
    for _ in 0..max_level {
        let (nw, nh) = (w.div_ceil(2), h.div_ceil(2));
        if nw <= WIN || nh <= WIN {
            break;
        }
        cur = pyr_down(&cur);
        out.push(Level::new(&cur, with_deriv));
        (w, h) = (nw, nh);
    }
    out
}

/// Round half to even, as `cvRound` on x86.
#[inline]
fn round(v: f32) -> i32 {
    v.round_ties_even() as i32
}

/// Bilinear weights of the fractional offsets `(a, b)` in Q14, summing to 2^14.
#[inline]
fn weights(a: f32, b: f32) -> [i32; 4] {
    let one = (1 << W_BITS) as f32;
    let w00 = round((1.0 - a) * (1.0 - b) * one);
    let w01 = round(a * (1.0 - b) * one);
    let w10 = round((1.0 - a) * b * one);
    [w00, w01, w10, (1 << W_BITS) - w00 - w01 - w10]
}

/// `(x + 2^(n-1)) >> n`.
#[inline]
fn descale(x: i32, n: i32) -> i32 {
    (x + (1 << (n - 1))) >> n
}

/// Sum of four lanes the way SSE's horizontal add does: `(l0 + l2) + (l1 + l3)`.
#[inline]
fn reduce4(l: [f32; 4]) -> f32 {
    (l[0] + l[2]) + (l[1] + l[3])
}

/// Tracks `prev_pts` (pixels of `prev`) into `next`: the new positions and a found flag per point.
pub fn track(prev: &Gray, next: &Gray, prev_pts: &[[f32; 2]]) -> (Vec<[f32; 2]>, Vec<bool>) {
    track_levels(prev, next, prev_pts, 3)
}

/// [`track`] with at most `max_level` pyramid levels above the image (OpenCV's `maxLevel`).
pub fn track_levels(
    prev: &Gray,
    next: &Gray,
    prev_pts: &[[f32; 2]],
    max_level: usize,
) -> (Vec<[f32; 2]>, Vec<bool>) {
    let n = prev_pts.len();
    let mut next_pts = prev_pts.to_vec();
    let mut status = vec![true; n];
    if n == 0 || prev.w != next.w || prev.h != next.h {
        return (next_pts, vec![false; n]);
    }
    let pi = pyramid(prev, max_level, true);
    let pj = pyramid(next, max_level, false);
    let max_level = pi.len().min(pj.len()) - 1;
    for level in (0..=max_level).rev() {
        for k in 0..n {
            track_point(
                &pi[level],
                &pj[level],
                level,
                max_level,
                prev_pts[k],
                &mut next_pts[k],
                &mut status[k],
            );
        }
    }
    (next_pts, status)
}

/// One point on one level (OpenCV's `LKTrackerInvoker`), updating `next_pt` and, on level 0, `status`.
fn track_point(
    li: &Level,
    lj: &Level,
    level: usize,
    max_level: usize,
    prev_pt: [f32; 2],
    next_pt: &mut [f32; 2],
    status: &mut bool,
) {
    let half = ((WIN - 1) as f32) * 0.5;
    let sc = (1.0f64 / (1u32 << level) as f64) as f32;
    let mut pp = [prev_pt[0] * sc, prev_pt[1] * sc];
    let mut np = if level == max_level {
        pp
    } else {
        [next_pt[0] * 2.0, next_pt[1] * 2.0]
    };
    *next_pt = np;
    pp = [pp[0] - half, pp[1] - half];
    let ipx = pp[0].floor() as i32;
    let ipy = pp[1].floor() as i32;
    let win = WIN as i32;
    if ipx < -win || ipx >= li.w as i32 || ipy < -win || ipy >= li.h as i32 {
        if level == 0 {
            *status = false;
        }
        return;
    }
    let wt = weights(pp[0] - ipx as f32, pp[1] - ipy as f32);
    let si = li.stride();
    let base = |x: i32, y: i32| ((y + PAD as i32) as usize) * si + (x + PAD as i32) as usize;
    let mut ival = [0i16; WIN * WIN];
    let mut dval = [[0i16; 2]; WIN * WIN];
    let (mut a11, mut a12, mut a22) = (0f32, 0f32, 0f32);
    let (mut q11, mut q12, mut q22) = ([0f32; 4], [0f32; 4], [0f32; 4]);
    for y in 0..WIN {
        let o = base(ipx, ipy + y as i32);
        for x in 0..WIN {
            let p = o + x;
            let im = &li.img;
            let v = im[p] as i32 * wt[0]
                + im[p + 1] as i32 * wt[1]
                + im[p + si] as i32 * wt[2]
                + im[p + si + 1] as i32 * wt[3];
            ival[y * WIN + x] = descale(v, W_BITS - 5) as i16;
            let d = &li.deriv;
            let mut g = [0i32; 2];
            for (c, gc) in g.iter_mut().enumerate() {
                let v = d[p][c] as i32 * wt[0]
                    + d[p + 1][c] as i32 * wt[1]
                    + d[p + si][c] as i32 * wt[2]
                    + d[p + si + 1][c] as i32 * wt[3];
                *gc = descale(v, W_BITS);
            }
            dval[y * WIN + x] = [g[0] as i16, g[1] as i16];
            let (fx, fy) = (g[0] as f32, g[1] as f32);
            if x < 16 {
                // OpenCV's SIMD loop: 8 pixels a step, four float lanes (pixel x % 4).
                let l = x % 4;
                q22[l] += fy * fy;
                q12[l] += fx * fy;
                q11[l] += fx * fx;
            } else {
                a11 += fx * fx;
                a12 += fx * fy;
                a22 += fy * fy;
            }
        }
    }
    a11 += reduce4(q11);
    a12 += reduce4(q12);
    a22 += reduce4(q22);
    let flt_scale = 1.0f32 / (1u32 << 20) as f32;
    let (a11, a12, a22) = (a11 * flt_scale, a12 * flt_scale, a22 * flt_scale);
    let det = a11 * a22 - a12 * a12;
    let min_eig =
        (a22 + a11 - ((a11 - a22) * (a11 - a22) + 4.0 * a12 * a12).sqrt()) / (2 * WIN * WIN) as f32;
    if min_eig < 1e-4f32 || det < f32::EPSILON {
        if level == 0 {
            *status = false;
        }
        return;
    }
    let inv = 1.0 / det;
    np = [np[0] - half, np[1] - half];
    let sj = lj.stride();
    let mut prev_delta = [0f32; 2];
    for j in 0..30 {
        let inx = np[0].floor() as i32;
        let iny = np[1].floor() as i32;
        if inx < -win || inx >= lj.w as i32 || iny < -win || iny >= lj.h as i32 {
            if level == 0 {
                *status = false;
            }
            break;
        }
        let wt = weights(np[0] - inx as f32, np[1] - iny as f32);
        let (mut b1, mut b2) = (0f32, 0f32);
        let (mut qb, mut qb1) = ([0f32; 4], [0f32; 4]);
        for y in 0..WIN {
            let o = ((iny + y as i32 + PAD as i32) as usize) * sj + (inx + PAD as i32) as usize;
            let (j0, j1) = (&lj.img[o..o + WIN + 1], &lj.img[o + sj..o + sj + WIN + 1]);
            let (iv, dv) = (&ival[y * WIN..(y + 1) * WIN], &dval[y * WIN..(y + 1) * WIN]);
            let mut e = [[0i32; 2]; WIN];
            for x in 0..WIN {
                let v = j0[x] as i32 * wt[0]
                    + j0[x + 1] as i32 * wt[1]
                    + j1[x] as i32 * wt[2]
                    + j1[x + 1] as i32 * wt[3];
                let diff = descale(v, W_BITS - 5) - iv[x] as i32;
                e[x] = [diff * dv[x][0] as i32, diff * dv[x][1] as i32];
            }
            // OpenCV's SIMD loop, 8 pixels a step: lanes (b1 of pixels 0+4, b2 of 0+4, b1 of 1+5, b2 of
            // 1+5) into one accumulator and (2+6, 3+7) into another, each pair summed in int32 and
            // converted to float; the last 5 pixels of the row go to the scalar sums.
            for k in [0, 8] {
                let s = |a: usize, c: usize| (e[k + a][c] + e[k + a + 4][c]) as f32;
                qb[0] += s(0, 0);
                qb[1] += s(0, 1);
                qb[2] += s(1, 0);
                qb[3] += s(1, 1);
                qb1[0] += s(2, 0);
                qb1[1] += s(2, 1);
                qb1[2] += s(3, 0);
                qb1[3] += s(3, 1);
            }
            for ex in &e[16..] {
                b1 += ex[0] as f32;
                b2 += ex[1] as f32;
            }
        }
        let t = [
            qb[0] + qb1[0],
            qb[1] + qb1[1],
            qb[2] + qb1[2],
            qb[3] + qb1[3],
        ];
        b1 += t[0] + t[2];
        b2 += t[1] + t[3];
        let (b1, b2) = (b1 * flt_scale, b2 * flt_scale);
        let delta = [(a12 * b2 - a22 * b1) * inv, (a12 * b1 - a11 * b2) * inv];
        np = [np[0] + delta[0], np[1] + delta[1]];
        *next_pt = [np[0] + half, np[1] + half];
        let dd = delta[0] as f64 * delta[0] as f64 + delta[1] as f64 * delta[1] as f64;
        if dd <= 0.01 * 0.01 {
            break;
        }
        if j > 0
            && ((delta[0] + prev_delta[0]).abs() as f64) < 0.01
            && ((delta[1] + prev_delta[1]).abs() as f64) < 0.01
        {
            *next_pt = [next_pt[0] - delta[0] * 0.5, next_pt[1] - delta[1] * 0.5];
            break;
        }
        prev_delta = delta;
    }
    if *status && level == 0 {
        // The error pass (OpenCV computes it when asked, as Ultralytics does): a point whose final window
        // leaves the padded image is dropped there.
        let fx = next_pt[0] - half;
        let fy = next_pt[1] - half;
        let (ix, iy) = (fx.floor() as i32, fy.floor() as i32);
        if ix < -win || ix >= lj.w as i32 || iy < -win || iy >= lj.h as i32 {
            *status = false;
        }
    }
}
