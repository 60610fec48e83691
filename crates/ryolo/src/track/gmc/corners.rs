//! Shi–Tomasi corners as OpenCV's `goodFeaturesToTrack` (min-eigenvalue response, `minDistance` 0).

use super::gray::{reflect101, Gray};

/// Parameters of the corner search (Ultralytics' GMC: 400 corners, quality 0.01, block 3).
#[derive(Clone, Copy, Debug)]
pub struct CornerParams {
    /// Most corners returned (strongest first).
    pub max_corners: usize,
    /// Corners weaker than `quality × strongest` are dropped.
    pub quality: f64,
}

impl Default for CornerParams {
    fn default() -> Self {
        Self {
            max_corners: 400,
            quality: 0.01,
        }
    }
}

/// OpenCV `cornerMinEigenVal(img, blockSize=3, ksize=3)`: 3×3 Sobel gradients scaled by 1/(4·3·255), their
/// products summed over a 3×3 box (border reflect-101), then the smaller eigenvalue of the 2×2 matrix —
/// in OpenCV's arithmetic (bit-identical on the car video): the Sobel passes accumulate with fused
/// multiply-adds (its dispatched AVX2 code), the box sums run in double as running sums.
pub fn min_eigen(img: &Gray) -> Vec<f32> {
    let (w, h) = (img.w, img.h);
    let s1 = (1.0f64 / (4.0 * 3.0 * 255.0)) as f32;
    let s2 = 2.0 * s1;
    // A fused multiply-add `a·b + c` of these operands is exact in f64 (integer pixels times the kernel
    // weights need at most ~34 significant bits), so one rounding to f32 gives the FMA's result.
    let (d1, d2) = (s1 as f64, s2 as f64);
    // Row passes: d/dx [-1, 0, 1]; d/dy smoothing [s, 2s, s] (fused: s·l, then +2s·c, then +s·r).
    let mut rdx = vec![0f32; w * h];
    let mut rdy = vec![0f32; w * h];
    let (xl, xr) = (reflect101(-1, w), reflect101(w as isize, w));
    for y in 0..h {
        let row = &img.data[y * w..(y + 1) * w];
        let (ox, oy) = (&mut rdx[y * w..(y + 1) * w], &mut rdy[y * w..(y + 1) * w]);
        for x in 0..w {
            let l = row[if x == 0 { xl } else { x - 1 }] as f32;
            let r = row[if x + 1 == w { xr } else { x + 1 }] as f32;
            let c = row[x] as f32;
            ox[x] = r - l;
            let a = s1 * l;
            let b = (d2 * c as f64 + a as f64) as f32;
            oy[x] = (d1 * r as f64 + b as f64) as f32;
        }
    }
    // Column passes: d/dx smoothing (2s·centre, then + s·(up + down) fused); d/dy [-1, 0, 1].
    let mut xx = vec![0f32; w * h];
    let mut xy = vec![0f32; w * h];
    let mut yy = vec![0f32; w * h];
    for y in 0..h as isize {
        let (u, d) = (reflect101(y - 1, h) * w, reflect101(y + 1, h) * w);
        let c = y as usize * w;
        let (ru, rc, rd) = (&rdx[u..u + w], &rdx[c..c + w], &rdx[d..d + w]);
        let (vu, vd) = (&rdy[u..u + w], &rdy[d..d + w]);
        for x in 0..w {
            let dx = (d1 * (ru[x] + rd[x]) as f64 + (s2 * rc[x]) as f64) as f32;
            let dy = vd[x] - vu[x];
            xx[c + x] = dx * dx;
            xy[c + x] = dx * dy;
            yy[c + x] = dy * dy;
        }
    }
    let (sxx, sxy, syy) = (box3(&xx, w, h), box3(&xy, w, h), box3(&yy, w, h));
    (0..w * h)
        .map(|i| {
            let a = sxx[i] * 0.5;
            let b = sxy[i];
            let c = syy[i] * 0.5;
            (a + c) - ((a - c) * (a - c) + b * b).sqrt()
        })
        .collect()
}

/// OpenCV's unnormalised 3×3 `boxFilter` on float data (border reflect-101): running sums in double along
/// each row (`s += new − old`), then down each column (`out = sum + new; sum = out − old`).
fn box3(v: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut rows = vec![0f64; w * h];
    for y in 0..h {
        let r = &v[y * w..(y + 1) * w];
        let at = |i: isize| r[reflect101(i, w)] as f64;
        let mut s = 0f64;
        for i in -1..=1 {
            s += at(i);
        }
        rows[y * w] = s;
        for x in 1..w as isize {
            s += at(x + 1) - at(x - 2);
            rows[y * w + x as usize] = s;
        }
    }
    let mut out = vec![0f32; w * h];
    let row = |y: isize| reflect101(y, h) * w;
    for x in 0..w {
        let mut sum = 0f64;
        for y in -1..=0 {
            sum += rows[row(y) + x];
        }
        for y in 0..h as isize {
            let s0 = sum + rows[row(y + 1) + x];
            out[y as usize * w + x] = s0 as f32;
            sum = s0 - rows[row(y - 1) + x];
        }
    }
    out
}

/// `goodFeaturesToTrack(img, maxCorners, qualityLevel, minDistance=0, blockSize=3)`: local maxima (3×3) of
/// the min-eigenvalue response above `quality × max`, inner pixels only, strongest first (equal responses:
/// the later raster position first, as OpenCV's pointer-ordered sort), at most `max_corners`, as `(x, y)`.
pub fn good_features(img: &Gray, p: CornerParams) -> Vec<[f32; 2]> {
    let (w, h) = (img.w, img.h);
    if w < 3 || h < 3 || p.max_corners == 0 {
        return Vec::new();
    }
    let mut eig = min_eigen(img);
    let max = eig.iter().copied().fold(f32::MIN, f32::max);
    let thr = (max as f64 * p.quality) as f32;
    for v in &mut eig {
        if *v <= thr {
            *v = 0.0;
        }
    }
    let mut cand: Vec<(f32, usize)> = Vec::new();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let v = eig[y * w + x];
            if v == 0.0 {
                continue;
            }
            let mut m = v;
            for yy in y - 1..=y + 1 {
                for xx in x - 1..=x + 1 {
                    m = m.max(eig[yy * w + xx]);
                }
            }
            if v == m {
                cand.push((v, y * w + x));
            }
        }
    }
    cand.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    cand.truncate(p.max_corners);
    cand.iter()
        .map(|&(_, i)| [(i % w) as f32, (i / w) as f32])
        .collect()
}
